"""Cross-channel Local Response Normalization, forward and backward, one pass each.

``y_c = x_c * d_c^-beta``, ``d_c = k + alpha/size * S_c``, ``S_c = sum of x_j^2`` over the window
``j in [c - size//2, c + (size-1)//2]`` clipped to ``[0, C)``: exactly
``torch.nn.functional.local_response_norm`` (which zero-pads the channel axis and average-pools
with window ``size``, i.e. divides alpha by ``size``), for odd and even ``size``.

Both kernels work on ``[BLOCK_P pixels, BLOCK_C channels]`` tiles of the ``(n, c, p)`` view of
``_common.pixel_view`` (NCHW and channels_last alike, no copy). A channel window is a sum over
``size`` channel-shifted loads of the same tile: each load is coalesced in either layout and all
but the first come from L1/L2, so DRAM sees each tensor once (plus a halo of ``size - 1``
channels per channel block). ``d^-beta`` is ``exp2(-beta * log2(d))``. (A sequential sliding sum
along the channels of each pixel would serialise C and, in channels_last, turn every load into a
32-sector gather; the sliding is done across the window's shifts in the backward instead.)

The backward needs, at channel ``c``, ``T_q = dy_q * x_q * d_q^(-beta-1)`` for every ``q`` whose
window holds ``c`` (``q in [c - (size-1)//2, c + size//2]``):

    dx_c = dy_c * d_c^-beta - 2 * beta * alpha/size * x_c * sum_q T_q

It recomputes ``d_q`` from ``x`` instead of saving anything but ``x``: the window sum slides
from ``q`` to ``q + 1`` (add one shifted tile, subtract one), so a pass costs ``5 * size`` L1
loads and ``2 * size + 1`` exp2/log2 per element, and reads x and dy and writes dx once each
from DRAM.

Passes over memory (T = one activation-sized read or write; the contract's table):
forward 2T (read x, write y), backward 3T (read x and dy, write dx); bytes = T * numel * itemsize.
Example, AlexNet's norm1 at batch 256 in bf16: x is 256*96*55*55 = 74.3M elements = 149 MB, so
the forward moves 297 MB (69 us at 4.3 TB/s) and the backward 446 MB (104 us). FLOPs per
element: forward ~2 * size + 6, backward ~7 * size + 8 (exp2/log2 counted as one); with
``2 * size + 1`` transcendentals per element the backward may be bound by the SFUs rather than
by DRAM in bf16 on an H200 (about 0.4 T elements/s of exp2+log2 at size 5 against 0.7 T/s of
bandwidth): the price of saving nothing but x.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import nn
from torch.autograd.function import once_differentiable

from . import _common
from ._patch import register_swap

# --- kernels ------------------------------------------------------------------------------------

# [BLOCK_P pixels, BLOCK_C channels], 1024 elements (8 per thread: the backward keeps five fp32
# tiles live across its window loop). Wide channel blocks keep the size - 1 channel halo small:
# 16x64 suits channels_last with C >= 64 (AlexNet's 96, GoogLeNet's 64 and 192), 64x16 NCHW,
# 8x128 channels_last with C >= 128 (AlexNet's 256).
LRN_CONFIGS = _common.tile_configs(1024, num_warps=4, channel_blocks=(64, 16, 128))
TUNE_KEY = ["N", "C", "P", "SIZE"]  # + every operand's layout (_common.autotune)


@triton.jit
def _window_mask(row_mask, q, C):
    """The tile's rows at channels ``q``, where ``0 <= q < C`` (outside: torch's zero padding)."""
    return row_mask[:, None] & ((q >= 0) & (q < C))[None, :]


@_common.autotune(LRN_CONFIGS, key=TUNE_KEY, interpreter_config=_common.INTERPRETER_TILE)
@triton.jit
def _lrn_fwd_kernel(X, Y, N, C, P, x_stride_n, x_stride_c, x_stride_p, y_stride_n, y_stride_c, y_stride_p,
                    SIZE, LO, k, alpha_n, beta, BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr):
    """y = x * (k + alpha_n * S)^-beta, S the window sum of x^2 (LO = size // 2 channels below)."""
    n, p0, rows, rmask = _common.pixel_block(tl.program_id(0), P, BLOCK_P)
    c, cmask = _common.channel_block(C, BLOCK_C)
    x_rows = _common.row_ptrs(X, n, p0, rows, x_stride_n, x_stride_p)
    s = tl.zeros([BLOCK_P, BLOCK_C], dtype=tl.float32)
    for i in range(0, SIZE):
        q = c + (i - LO)
        v = tl.load(x_rows + q[None, :] * x_stride_c, mask=_window_mask(rmask, q, C), other=0.0).to(tl.float32)
        s += v * v
    mask = rmask[:, None] & cmask[None, :]
    x = tl.load(x_rows + c[None, :] * x_stride_c, mask=mask, other=0.0).to(tl.float32)
    y = x * tl.exp2(-beta * tl.log2(k + alpha_n * s))
    tl.store(_common.tile_ptrs(Y, n, p0, rows, c, y_stride_n, y_stride_c, y_stride_p), y.to(Y.dtype.element_ty),
             mask=mask)


@_common.autotune(LRN_CONFIGS, key=TUNE_KEY, interpreter_config=_common.INTERPRETER_TILE)
@triton.jit
def _lrn_bwd_kernel(X, DY, DX, N, C, P, x_stride_n, x_stride_c, x_stride_p, dy_stride_n, dy_stride_c, dy_stride_p,
                    dx_stride_n, dx_stride_c, dx_stride_p, SIZE, LO, k, alpha_n, beta,
                    BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr):
    """dx_c = dy_c d_c^-beta - 2 beta alpha_n x_c sum_{q: c in window(q)} dy_q x_q d_q^(-beta-1)."""
    HI = SIZE - 1 - LO
    n, p0, rows, rmask = _common.pixel_block(tl.program_id(0), P, BLOCK_P)
    c, cmask = _common.channel_block(C, BLOCK_C)
    x_rows = _common.row_ptrs(X, n, p0, rows, x_stride_n, x_stride_p)
    dy_rows = _common.row_ptrs(DY, n, p0, rows, dy_stride_n, dy_stride_p)
    # S of the first q whose window holds c (q = c - HI): channels c - HI - LO ... c.
    s = tl.zeros([BLOCK_P, BLOCK_C], dtype=tl.float32)
    for i in range(0, SIZE):
        j = c + (i - HI - LO)
        v = tl.load(x_rows + j[None, :] * x_stride_c, mask=_window_mask(rmask, j, C), other=0.0).to(tl.float32)
        s += v * v
    acc = tl.zeros([BLOCK_P, BLOCK_C], dtype=tl.float32)
    log_own = tl.zeros([BLOCK_P, BLOCK_C], dtype=tl.float32)
    x_own = tl.zeros([BLOCK_P, BLOCK_C], dtype=tl.float32)
    dy_own = tl.zeros([BLOCK_P, BLOCK_C], dtype=tl.float32)
    for i in range(0, SIZE):
        q = c + (i - HI)
        qmask = _window_mask(rmask, q, C)
        xq = tl.load(x_rows + q[None, :] * x_stride_c, mask=qmask, other=0.0).to(tl.float32)
        dyq = tl.load(dy_rows + q[None, :] * dy_stride_c, mask=qmask, other=0.0).to(tl.float32)
        lg = tl.log2(k + alpha_n * tl.where(s < 0.0, 0.0, s))  # sliding sums may round below 0
        acc += tl.where(qmask, dyq * xq * tl.exp2((-beta - 1.0) * lg), 0.0)
        own = i == HI
        log_own = tl.where(own, lg, log_own)
        x_own = tl.where(own, xq, x_own)
        dy_own = tl.where(own, dyq, dy_own)
        # slide the window from q to q + 1: channel q + 1 + HI enters, channel q - LO leaves
        if i + 1 < SIZE:
            a = q + 1 + HI
            b = q - LO
            va = tl.load(x_rows + a[None, :] * x_stride_c, mask=_window_mask(rmask, a, C), other=0.0).to(tl.float32)
            vb = tl.load(x_rows + b[None, :] * x_stride_c, mask=_window_mask(rmask, b, C), other=0.0).to(tl.float32)
            s += va * va - vb * vb
    dx = dy_own * tl.exp2(-beta * log_own) - (2.0 * beta * alpha_n) * x_own * acc
    tl.store(_common.tile_ptrs(DX, n, p0, rows, c, dx_stride_n, dx_stride_c, dx_stride_p), dx.to(DX.dtype.element_ty),
             mask=rmask[:, None] & cmask[None, :])


# --- launchers ----------------------------------------------------------------------------------

def _scalars(size, alpha, beta, k):
    return dict(SIZE=size, LO=size // 2, k=float(k), alpha_n=float(alpha) / size, beta=float(beta))


def _forward(x, size, alpha, beta, k):
    n, c, h, w = x.shape
    y = _common.empty_like(x)
    n_, p, (x_strides, y_strides) = _common.pixel_view(x, y)
    if x.numel():
        with _common.device_guard(x):
            _lrn_fwd_kernel[_common.tile_grid(n_, p, c)](
                x, y,  # input, output
                n_, c, p,  # the (n, c, p) view
                *x_strides, *y_strides,
                **_scalars(size, alpha, beta, k))  # the window and the formula's constants
    return y


def _backward(x, dy, size, alpha, beta, k):
    n, c, h, w = x.shape
    dy = _common.mergeable(dy)
    dx = _common.empty_like(x)
    n_, p, (x_strides, dy_strides, dx_strides) = _common.pixel_view(x, dy, dx)
    if x.numel():
        with _common.device_guard(x):
            _lrn_bwd_kernel[_common.tile_grid(n_, p, c)](
                x, dy, dx,  # the forward's input, the incoming gradient, the output
                n_, c, p,  # the (n, c, p) view
                *x_strides, *dy_strides, *dx_strides,
                **_scalars(size, alpha, beta, k))  # the window and the formula's constants
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
    """Both kernels per dtype and layout, at AlexNet's norm1 (C=96, 55x55, batch 64)."""
    from .compile_check import Case, ptr, strides

    c, hw, n = 96, 55 * 55, 64
    layouts = {"nchw": (n, hw, (c * hw, hw, 1)), "nhwc": (1, n * hw, (0, 1, c))}
    scalars = dict(SIZE=5, LO=2, k=2.0, alpha_n=2e-5, beta=0.75)
    cases = []
    for dtype in _common.DTYPES:
        for layout, (n_, p, s) in layouts.items():
            cases.append(Case(_lrn_fwd_kernel, dtype, layout, dict(
                X=ptr(dtype), Y=ptr(dtype), N=n_, C=c, P=p, **strides("x", "y", values=s), **scalars)))
            cases.append(Case(_lrn_bwd_kernel, dtype, layout, dict(
                X=ptr(dtype), DY=ptr(dtype), DX=ptr(dtype), N=n_, C=c, P=p, **strides("x", "dy", "dx", values=s),
                **scalars)))
    return cases
