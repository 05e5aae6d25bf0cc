"""Cross-channel Local Response Normalization, forward and backward, one pass each.

``y_c = x_c * d_c^-beta``, ``d_c = k + alpha/size * S_c``, ``S_c = sum of x_j^2`` over the window
``j in [c - size//2, c + (size-1)//2]`` clipped to ``[0, C)``: exactly
``torch.nn.functional.local_response_norm`` (which zero-pads the channel axis and average-pools
with window ``size``, i.e. divides alpha by ``size``), for odd and even ``size``.

Both kernels work on ``[BLOCK_P pixels, BLOCK_C channels]`` tiles of the ``(n, c, p)`` view of
``_common.pixel_view`` (NCHW and channels_last alike, no copy). The window size is a compile-time
constant (``SIZE``), so every loop below unrolls and every window index names a register.

**The window by register renaming.** In channels_last each thread loads ``VEC`` consecutive
channels of a pixel (``VEC = 16 bytes / itemsize``: 8 in bf16/fp16, 4 in fp32) as one 128-bit
vector, aligned when ``C`` is a multiple of ``VEC`` (the tile's start, its row stride ``C`` and
its channel offsets are then all multiples of 16 bytes, and the compiler can prove it).
``_lanes`` splits a tile into ``VEC`` lane tensors (lane ``j`` holds channel ``VEC*g + j`` of
every group ``g``); reshape and split only rename a thread's registers, so channel
``VEC*g + j + i`` of a window is lane ``j + i`` of the same group, or a lane of the group before
or after it. A window sum is then adds of squares in registers, sharing pair sums with the
windows beside it. The neighbour groups come one of two ways:

* **Row tiles** (channels_last with at most 32 vectors a pixel: ``C <= 256`` in bf16/fp16, 128 in
  fp32; every LRN of the models): a tile holds every channel of its pixels (``BLOCK_C`` = ``C``
  padded to a power of two), one vector a thread, a pixel's vectors in one warp. The group
  before is the same lanes of the thread before: ``tl.gather`` along the group axis, which
  lowers to one warp shuffle a register (``SHFL.IDX``), no shared memory. Every load is one
  aligned 128-bit vector, and the tile's edges are the tensor's (zero padding): no halo at all.
  The padding costs instructions, not bytes: at ``C`` = 96 and 192 a quarter of the threads hold
  no channel (predicted, sm_90a, bf16, batch 256x192x56x56: the backward's issue floor 200 us
  under its 217 us memory floor).
* **Channel blocks** (NCHW, and wider channels_last rows): the groups before and after are loaded
  as the same tile shifted by ``-VEC`` and ``+VEC`` channels, hitting L1 (the lines the
  neighbouring threads load); ptxas keeps only the lanes a window reaches (4-byte loads at
  ``size`` 5 in bf16). In NCHW the loads are coalesced along the pixels, not vectorised.

**The power.** ``d^-beta = exp2(-beta * log2 d)``: ``tl.exp2`` compiles to the SFU's
``ex2.approx.ftz``, ``_common.log2_approx`` to ``lg2.approx.ftz`` (``tl.log2`` would be
libdevice's polynomial): two MUFU per element, relative error below 1e-6 for the ``d`` and
``beta`` of these networks (fp32's bound is 1e-5).

**The backward** needs, at channel ``c``, ``T_q = dy_q * x_q * d_q^(-beta-1)`` for every ``q``
whose window holds ``c`` (``q in [c - (size-1)//2, c + size//2]``):

    dx_c = dy_c * d_c^-beta - 2 * beta * alpha/size * x_c * sum_q T_q

It computes ``T`` once for each channel of a group and of the ``size - 1`` channels around it
that its windows reach (one ``log2`` and one ``exp2`` each; ``d^-beta = d^(-beta-1) * d`` for the
group's own channels), then sums the windows of ``T`` as the forward sums ``x^2``. Nothing but
``x`` is saved: ``d`` is recomputed from ``x``, whose halo reaches ``size - 1`` channels each side
(the tiles shifted by ``-VEC`` and ``+VEC`` up to ``size`` ``VEC + 1``). A channel outside
``[0, C)`` has ``x = dy = 0``, so its ``T`` is 0 without a select wherever ``d > 0`` is certain
(``k > 0`` and ``alpha >= 0``: ``D_POSITIVE``).

Passes over memory (T = one activation-sized read or write; the contract's table):
forward 2T (read x, write y), backward 3T (read x and dy, write dx); bytes = T * numel * itemsize.
Example, AlexNet's norm1 at batch 256 in bf16: x is 256*96*55*55 = 74.3M elements = 149 MB, so
the forward moves 297 MB (70 us at the H200's measured 4.25 TB/s copy bandwidth) and the backward
446 MB (105 us). Work per element at size 5 in bf16: forward 2 MUFU and about 10 FP32 operations;
backward 3 MUFU and about 25 (the ``T`` of the halo channels is computed by both groups beside
them: 12 ``T`` per 8 channels in bf16, 8 per 4 in fp32). At 16 MUFU results per clock per SM
(132 SMs, 1.98 GHz) that is 36 us and 53 us of SFU time, under the memory times above.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import nn
from torch.autograd.function import once_differentiable

from . import _common
from ._patch import register_swap

# --- configs ------------------------------------------------------------------------------------

# [BLOCK_P pixels, BLOCK_C channels] tiles of 4 warps. Channel blocks (NCHW, wide channels_last
# rows): 32 divides every C of the models (AlexNet's 96 and 256, GoogLeNet's 64 and 192), so no
# lane is masked off (the halo is per 16-byte vector, not per block: a wider block saves
# nothing); 16 is the NCHW tile (long unit-stride pixel rows, no layout conversion through
# shared memory).
# The forward's first tile has 32 elements a thread (40 registers at sm_90a in bf16: 48 warps an
# SM), which spreads the program's index arithmetic over twice the elements of 16 a thread; the
# backward stops at 16 a thread, where its lanes of x, dy and T already take 72 registers (at 32
# a thread, about 150).
LRN_FWD_CONFIGS = (_common.tile_configs(4096, num_warps=4, channel_blocks=(32,))
                   + _common.tile_configs(2048, num_warps=4, channel_blocks=(32, 16)))
LRN_BWD_CONFIGS = (_common.tile_configs(2048, num_warps=4, channel_blocks=(32,))
                   + _common.tile_configs(1024, num_warps=4, channel_blocks=(32,))
                   + _common.tile_configs(2048, num_warps=4, channel_blocks=(16,)))
# Row tiles (channels_last, a pixel's channels all in one warp's 32 threads): BLOCK_C is every
# channel (C padded to a power of two, one 16-byte vector at least), so tiles are sized by their
# elements only, the same counts a thread as above (bf16 at sm_90a: forward 48 registers, 40
# warps an SM; backward 80 and 24).
ROW_MAX_GROUPS = 32  # vectors of a pixel row: one a thread of a warp, so that a shift is a shuffle
ROW_BLOCKS = tuple(1 << i for i in range(2, 9))  # 4 (one fp32 vector) ... 256 (32 bf16 vectors)
LRN_FWD_ROW_TILES = (4096, 2048)
LRN_BWD_ROW_TILES = (2048, 1024)
TUNE_KEY = ["N", "C", "P", "SIZE"]  # + every operand's layout (_common.autotune)


def _row_configs(tiles: tuple[int, ...], block_c: int) -> list:
    return [config for elements in tiles
            for config in _common.tile_configs(elements, num_warps=4, channel_blocks=(block_c,))]


# --- kernels ------------------------------------------------------------------------------------


@triton.jit
def _lanes(t, VEC: tl.constexpr):
    """The ``VEC`` lanes of a ``[BLOCK_P, BLOCK_C]`` tile: a tuple of ``[BLOCK_P, BLOCK_C // VEC]``
    tensors, lane ``j`` holding channels ``j, VEC + j, 2 * VEC + j, ...`` (a renaming of the
    registers of a thread that holds ``VEC`` consecutive channels: no instruction)."""
    BP: tl.constexpr = t.shape[0]
    G: tl.constexpr = t.shape[1] // VEC
    if VEC == 8:
        a, b = tl.split(tl.reshape(t, [BP, G, 2, 2, 2]))  # channel 8g + 4 i2 + 2 i1 + i0, split on i0
        a0, a1 = tl.split(a)
        b0, b1 = tl.split(b)
        l0, l4 = tl.split(a0)
        l2, l6 = tl.split(a1)
        l1, l5 = tl.split(b0)
        l3, l7 = tl.split(b1)
        return (l0, l1, l2, l3, l4, l5, l6, l7)
    else:
        tl.static_assert(VEC == 4, "VEC is 16 bytes of a 16- or 32-bit dtype")
        a, b = tl.split(tl.reshape(t, [BP, G, 2, 2]))  # channel 4g + 2 i1 + i0
        l0, l2 = tl.split(a)
        l1, l3 = tl.split(b)
        return (l0, l1, l2, l3)


@triton.jit
def _tile(lanes, VEC: tl.constexpr):
    """The inverse of :func:`_lanes`: ``VEC`` lanes back into one ``[BLOCK_P, BLOCK_C]`` tile."""
    if VEC == 8:
        a = tl.join(tl.join(tl.join(lanes[0], lanes[4]), tl.join(lanes[2], lanes[6])),
                    tl.join(tl.join(lanes[1], lanes[5]), tl.join(lanes[3], lanes[7])))
        return tl.reshape(a, [a.shape[0], a.shape[1] * 8])
    else:
        a = tl.join(tl.join(lanes[0], lanes[2]), tl.join(lanes[1], lanes[3]))
        return tl.reshape(a, [a.shape[0], a.shape[1] * 4])


@triton.jit
def _shift(lane, by: tl.constexpr):
    """``lane[:, g + by]`` at every group ``g`` (zero past either end): the same lane of the group
    ``by`` groups after (before, for ``by < 0``). Along the group axis, held by the threads of one
    warp, ``tl.gather`` lowers to one warp shuffle (``SHFL.IDX``) a register."""
    G: tl.constexpr = lane.shape[1]
    src = tl.arange(0, G) + by
    index = tl.broadcast_to(tl.minimum(tl.maximum(src, 0), G - 1)[None, :], lane.shape)
    return tl.where(((src >= 0) & (src < G))[None, :], tl.gather(lane, index, 1), 0.0)


@triton.jit
def _window_lanes(rows, row_mask, c, C, stride_c, LEFT: tl.constexpr, RIGHT: tl.constexpr, VEC: tl.constexpr,
                  ROW: tl.constexpr):
    """The tile's channels ``c - LEFT * VEC`` to ``c + (RIGHT + 1) * VEC - 1`` as fp32 lanes, with
    the lanes of their masks: element ``LEFT * VEC + m`` of each tuple is channel ``m`` of every
    group (``m < 0``: the groups before; ``m >= VEC``: after). Zero outside ``[0, C)`` (torch's
    zero padding) and in masked rows. ``rows``: :func:`_common.row_ptrs` of the tensor. ``ROW``:
    the tile holds every channel of its pixels, so the groups before and after are its own,
    shifted (:func:`_shift`); else they are loaded."""
    values = ()
    masks = ()
    if ROW:
        mask = row_mask[:, None] & (c < C)[None, :]
        own = _lanes(tl.load(rows + c[None, :] * stride_c, mask=mask, other=0.0).to(tl.float32), VEC)
    for r in tl.static_range(-LEFT, RIGHT + 1):
        q = c + r * VEC
        mask = row_mask[:, None] & ((q >= 0) & (q < C))[None, :]
        if ROW:
            for j in tl.static_range(VEC):
                values = values + ((own[j] if r == 0 else _shift(own[j], r)),)
        else:
            values = values + _lanes(tl.load(rows + q[None, :] * stride_c, mask=mask, other=0.0).to(tl.float32), VEC)
        masks = masks + _lanes(mask, VEC)
    return values, masks


@triton.jit
def _pair_sums(lanes, COUNT: tl.constexpr):
    """``lanes[i] + lanes[i + 1]`` for ``i < COUNT - 1``: shared by the windows of neighbouring
    channels, so a window of ``size`` costs ``size // 2 + size % 2 - 1`` adds of its own instead
    of ``size - 1`` (ptxas drops the pairs no window uses)."""
    pairs = ()
    for i in tl.static_range(COUNT - 1):
        pairs = pairs + (lanes[i] + lanes[i + 1],)
    return pairs


@triton.jit
def _window_sum(lanes, pairs, first: tl.constexpr, SIZE: tl.constexpr):
    """``lanes[first] + ... + lanes[first + SIZE - 1]``, from :func:`_pair_sums`' ``pairs``."""
    if SIZE == 1:
        s = lanes[first]
    else:
        s = pairs[first]
        for i in tl.static_range(1, SIZE // 2):
            s += pairs[first + 2 * i]
        if SIZE % 2 == 1:
            s += lanes[first + SIZE - 1]
    return s


@triton.jit
def _lrn_fwd_kernel(X, Y, N, C, P, x_stride_n, x_stride_c, x_stride_p, y_stride_n, y_stride_c, y_stride_p,
                    k, alpha_n, beta, SIZE: tl.constexpr, VEC: tl.constexpr, ROW: tl.constexpr,
                    BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr):
    """y = x * (k + alpha_n * S)^-beta, S the window sum of x^2."""
    LO: tl.constexpr = SIZE // 2  # channels below c in its window
    HI: tl.constexpr = SIZE - 1 - LO  # channels above
    LEFT: tl.constexpr = (LO + VEC - 1) // VEC  # neighbour groups the window reaches
    RIGHT: tl.constexpr = (HI + VEC - 1) // VEC
    n, p0, rows, rmask = _common.folded_pixel_block(tl.program_id(0), N, P, BLOCK_P)
    c, cmask = _common.channel_block(C, BLOCK_C)
    x, _ = _window_lanes(_common.row_ptrs(X, n, p0, rows, x_stride_n, x_stride_p), rmask, c, C, x_stride_c,
                         LEFT, RIGHT, VEC, ROW)
    sq = ()
    for i in tl.static_range((LEFT + 1 + RIGHT) * VEC):
        sq = sq + (x[i] * x[i],)
    sq2 = _pair_sums(sq, (LEFT + 1 + RIGHT) * VEC)
    y = ()
    for j in tl.static_range(VEC):
        s = _window_sum(sq, sq2, LEFT * VEC + j - LO, SIZE)
        y = y + (x[LEFT * VEC + j] * tl.exp2(-beta * _common.log2_approx(k + alpha_n * s)),)
    tl.store(_common.tile_ptrs(Y, n, p0, rows, c, y_stride_n, y_stride_c, y_stride_p),
             _tile(y, VEC).to(Y.dtype.element_ty), mask=rmask[:, None] & cmask[None, :])


@triton.jit
def _lrn_bwd_kernel(X, DY, DX, N, C, P, x_stride_n, x_stride_c, x_stride_p, dy_stride_n, dy_stride_c, dy_stride_p,
                    dx_stride_n, dx_stride_c, dx_stride_p, k, alpha_n, beta, SIZE: tl.constexpr,
                    VEC: tl.constexpr, ROW: tl.constexpr, D_POSITIVE: tl.constexpr, BLOCK_P: tl.constexpr,
                    BLOCK_C: tl.constexpr):
    """dx_c = dy_c d_c^-beta - 2 beta alpha_n x_c sum_{q: c in window(q)} T_q, T_q = dy_q x_q d_q^(-beta-1)."""
    LO: tl.constexpr = SIZE // 2
    HI: tl.constexpr = SIZE - 1 - LO
    # T is needed at channels m in [-HI, VEC - 1 + LO] of a group, so d there, so x at
    # [-HI - LO, VEC - 1 + LO + HI] = [-(SIZE - 1), VEC - 1 + SIZE - 1] and dy at [-HI, VEC - 1 + LO].
    XS: tl.constexpr = (SIZE - 1 + VEC - 1) // VEC
    DL: tl.constexpr = (HI + VEC - 1) // VEC
    DR: tl.constexpr = (LO + VEC - 1) // VEC
    n, p0, rows, rmask = _common.folded_pixel_block(tl.program_id(0), N, P, BLOCK_P)
    c, cmask = _common.channel_block(C, BLOCK_C)
    x, _ = _window_lanes(_common.row_ptrs(X, n, p0, rows, x_stride_n, x_stride_p), rmask, c, C, x_stride_c,
                         XS, XS, VEC, ROW)
    dy, dy_mask = _window_lanes(_common.row_ptrs(DY, n, p0, rows, dy_stride_n, dy_stride_p), rmask, c, C,
                                dy_stride_c, DL, DR, VEC, ROW)
    sq = ()
    for i in tl.static_range((2 * XS + 1) * VEC):
        sq = sq + (x[i] * x[i],)
    sq2 = _pair_sums(sq, (2 * XS + 1) * VEC)
    t = ()  # T at channel i - HI of each group
    own = ()  # d^-beta at the group's own channels
    for i in tl.static_range(HI + VEC + LO):
        d = k + alpha_n * _window_sum(sq, sq2, XS * VEC + i - HI - LO, SIZE)
        d_pow = tl.exp2((-beta - 1.0) * _common.log2_approx(d))  # d^(-beta-1)
        tq = dy[DL * VEC + i - HI] * x[XS * VEC + i - HI] * d_pow
        if not D_POSITIVE:  # a channel outside [0, C) is no q at all, not 0 * 0 * inf where d = 0
            tq = tl.where(dy_mask[DL * VEC + i - HI], tq, 0.0)
        t = t + (tq,)
        if i >= HI and i < HI + VEC:
            own = own + (d_pow * d,)
    t2 = _pair_sums(t, HI + VEC + LO)
    dx = ()
    for j in tl.static_range(VEC):
        dx = dx + (dy[DL * VEC + j] * own[j] - (2.0 * beta * alpha_n) * x[XS * VEC + j] * _window_sum(t, t2, j, SIZE),)
    tl.store(_common.tile_ptrs(DX, n, p0, rows, c, dx_stride_n, dx_stride_c, dx_stride_p),
             _tile(dx, VEC).to(DX.dtype.element_ty), mask=rmask[:, None] & cmask[None, :])


# One autotuner per kernel and tiling: the channel blocks (``LRN_*_CONFIGS``) and the rows, by
# BLOCK_C; under the interpreter the rows too run one big tile, of _common.INTERPRETER_TILE's size.
_INTERPRETER_ELEMENTS = _common.INTERPRETER_TILE.kwargs["BLOCK_P"] * _common.INTERPRETER_TILE.kwargs["BLOCK_C"]


def _rows_autotuned(kernel, tiles: tuple[int, ...]) -> dict:
    return {block_c: _common.autotune(_row_configs(tiles, block_c), key=TUNE_KEY,
                                      interpreter_config=_row_configs((_INTERPRETER_ELEMENTS,), block_c)[0])(kernel)
            for block_c in ROW_BLOCKS}


_lrn_fwd_rows = _rows_autotuned(_lrn_fwd_kernel, LRN_FWD_ROW_TILES)
_lrn_bwd_rows = _rows_autotuned(_lrn_bwd_kernel, LRN_BWD_ROW_TILES)
_lrn_fwd_kernel = _common.autotune(LRN_FWD_CONFIGS, key=TUNE_KEY,
                                   interpreter_config=_common.INTERPRETER_TILE)(_lrn_fwd_kernel)
_lrn_bwd_kernel = _common.autotune(LRN_BWD_CONFIGS, key=TUNE_KEY,
                                   interpreter_config=_common.INTERPRETER_TILE)(_lrn_bwd_kernel)


# --- launchers ----------------------------------------------------------------------------------

def _row_block(x, c_stride: int) -> int:
    """BLOCK_C of the row tiles where they serve ``x`` (channels_last, ``C`` within
    ``ROW_MAX_GROUPS`` vectors), else 0: the channel blocks."""
    vec = 16 // x.element_size()
    block_c = max(vec, triton.next_power_of_2(x.shape[1]))
    return block_c if c_stride == 1 and block_c // vec <= ROW_MAX_GROUPS else 0


def _kernel(blocks, rows, x, c_stride: int):
    """The autotuner for ``x`` (channel blocks or rows) and the ROW flag it runs with."""
    block_c = _row_block(x, c_stride)
    return (rows[block_c], True) if block_c else (blocks, False)


def _scalars(x, size, alpha, beta, k):
    return dict(k=float(k), alpha_n=float(alpha) / size, beta=float(beta), SIZE=size, VEC=16 // x.element_size())


def _backward_scalars(x, size, alpha, beta, k):
    return dict(_scalars(x, size, alpha, beta, k), D_POSITIVE=k > 0 and alpha >= 0)


def _forward(x, size, alpha, beta, k):
    n, c, h, w = x.shape
    y = _common.empty_like(x)
    n_, p, (x_strides, y_strides) = _common.pixel_view(x, y)
    kernel, row = _kernel(_lrn_fwd_kernel, _lrn_fwd_rows, x, x_strides[1])
    if x.numel():
        with _common.device_guard(x):
            kernel[_common.tile_grid(n_, p, c)](
                x, y,  # input, output
                n_, c, p,  # the (n, c, p) view
                *x_strides, *y_strides,
                **_scalars(x, size, alpha, beta, k), ROW=row)  # the formula's constants, the window, the vector width
    return y


def _backward(x, dy, size, alpha, beta, k):
    n, c, h, w = x.shape
    dy = _common.mergeable(dy)
    dx = _common.empty_like(x)
    n_, p, (x_strides, dy_strides, dx_strides) = _common.pixel_view(x, dy, dx)
    kernel, row = _kernel(_lrn_bwd_kernel, _lrn_bwd_rows, x, x_strides[1])
    if x.numel():
        with _common.device_guard(x):
            kernel[_common.tile_grid(n_, p, c)](
                x, dy, dx,  # the forward's input, the incoming gradient, the output
                n_, c, p,  # the (n, c, p) view
                *x_strides, *dy_strides, *dx_strides,
                **_backward_scalars(x, size, alpha, beta, k), ROW=row)  # constants, window, vector width
    return dx


# --- autograd -----------------------------------------------------------------------------------

class LocalResponseNormFunction(torch.autograd.Function):
    """Saves only x; the backward recomputes the window sums."""

    @staticmethod
    def forward(ctx, x, size, alpha, beta, k):
        ctx.save_for_backward(x)
        ctx.params = (size, alpha, beta, k)
        return _forward(x, size, alpha, beta, k)

    @staticmethod
    @once_differentiable
    def backward(ctx, dy):
        (x,) = ctx.saved_tensors
        return _backward(x, dy, *ctx.params), None, None, None, None


# --- public API ---------------------------------------------------------------------------------

def _check(x, size, alpha, beta, k):
    _common.check_tensor(x, "x", ndim=4, layout="[N, C, H, W]")
    size = _common.check_int(size, "size", minimum=1)
    return size, _common.check_real(alpha, "alpha"), _common.check_real(beta, "beta"), _common.check_real(k, "k")


def lrn(x, size=5, alpha=1e-4, beta=0.75, k=2.0):
    """Local response normalization across channels, with the semantics of
    ``torch.nn.functional.local_response_norm(x, size, alpha, beta, k)``:

    ``y[n, c] = x[n, c] / (k + alpha / size * sum_{j} x[n, j]^2) ** beta`` over
    ``j in [c - size // 2, c + (size - 1) // 2]`` clipped to the channels that exist (torch's zero
    padding); note that alpha is divided by ``size``, as in torch and Caffe (not AlexNet's paper).

    ``x``: ``[N, C, H, W]``, float32, float16 or bfloat16, contiguous or channels_last; the output
    has ``x``'s dtype and memory format, arithmetic is fp32. ``size``: an int >= 1 (odd or even).
    Differentiable in ``x`` (first order).
    """
    size, alpha, beta, k = _check(x, size, alpha, beta, k)
    return LocalResponseNormFunction.apply(_common.mergeable(x), size, alpha, beta, k)


# --- module twin --------------------------------------------------------------------------------

class TritonLocalResponseNorm(nn.LocalResponseNorm):
    """The twin of ``nn.LocalResponseNorm`` (and ``models.blocks.LocalResponseNorm``) on the
    Triton kernel: same attributes (size, alpha, beta, k), no parameters, same ``extra_repr``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return lrn(x, self.size, self.alpha, self.beta, self.k)


register_swap("lrn", ("models.blocks:LocalResponseNorm", "torch.nn:LocalResponseNorm"), TritonLocalResponseNorm)


# --- compile check ------------------------------------------------------------------------------

def compile_cases():
    """Both kernels per dtype and layout, at AlexNet's norm1 (C=96, 55x55, batch 64), channels_last
    also on the row tiles; the backward also with the padded channels' select (``D_POSITIVE``
    false: k <= 0 or alpha < 0), in bf16 channels_last."""
    from .compile_check import Case, ptr, strides

    c, hw, n = 96, 55 * 55, 64
    layouts = {"nchw": (n, hw, (c * hw, hw, 1)), "nhwc": (1, n * hw, (0, 1, c))}
    cases = []
    for dtype in _common.DTYPES:
        scalars = dict(k=2.0, alpha_n=2e-5, beta=0.75, SIZE=5, VEC=16 // dtype.itemsize)
        for layout, (n_, p, s) in layouts.items():
            cases.append(Case(_lrn_fwd_kernel, dtype, layout, dict(
                X=ptr(dtype), Y=ptr(dtype), N=n_, C=c, P=p, **strides("x", "y", values=s), **scalars, ROW=False)))
            cases.append(Case(_lrn_bwd_kernel, dtype, layout, dict(
                X=ptr(dtype), DY=ptr(dtype), DX=ptr(dtype), N=n_, C=c, P=p, **strides("x", "dy", "dx", values=s),
                **scalars, ROW=False, D_POSITIVE=True)))
        n_, p, s = layouts["nhwc"]
        block_c = triton.next_power_of_2(c)  # one row tile: 16 bf16/fp16 vectors, 32 fp32 ones
        cases.append(Case(_lrn_fwd_rows[block_c], dtype, "nhwc-rows", dict(
            X=ptr(dtype), Y=ptr(dtype), N=n_, C=c, P=p, **strides("x", "y", values=s), **scalars, ROW=True)))
        cases.append(Case(_lrn_bwd_rows[block_c], dtype, "nhwc-rows", dict(
            X=ptr(dtype), DY=ptr(dtype), DX=ptr(dtype), N=n_, C=c, P=p, **strides("x", "dy", "dx", values=s),
            **scalars, ROW=True, D_POSITIVE=True)))
    n_, p, s = layouts["nhwc"]
    cases.append(Case(_lrn_bwd_kernel, torch.bfloat16, "nhwc-select", dict(
        X=ptr(torch.bfloat16), DY=ptr(torch.bfloat16), DX=ptr(torch.bfloat16), N=n_, C=c, P=p,
        **strides("x", "dy", "dx", values=s), k=0.0, alpha_n=2e-5, beta=0.75, SIZE=5, VEC=8, ROW=False,
        D_POSITIVE=False)))
    return cases
