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
# the first suits channels_last with C >= 64 (AlexNet's 96, GoogLeNet's 64 and 192), the second
# NCHW, the third channels_last with C >= 128 (AlexNet's 256).
LRN_CONFIGS = [
    triton.Config({"BLOCK_P": 16, "BLOCK_C": 64}, num_warps=4),
    triton.Config({"BLOCK_P": 64, "BLOCK_C": 16}, num_warps=4),
    triton.Config({"BLOCK_P": 8, "BLOCK_C": 128}, num_warps=4),
]
TUNE_KEY = ["N", "C", "P", "sxc", "SIZE"]


@_common.autotune(LRN_CONFIGS, key=TUNE_KEY, interpreter_config=_common.INTERPRETER_TILE)
@triton.jit
def _lrn_fwd_kernel(X, Y, N, C, P, sxn, sxc, sxp, syn, syc, syp, SIZE, LO, k, alpha_n, beta,
                    BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr):
    """y = x * (k + alpha_n * S)^-beta, S the window sum of x^2 (LO = size // 2 channels below)."""
    tiles_p = (P + BLOCK_P - 1) // BLOCK_P
    pid = tl.program_id(0)
    n = (pid // tiles_p).to(tl.int64)
    p0 = (pid % tiles_p) * BLOCK_P
    rows = tl.arange(0, BLOCK_P)
    c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    pmask = (rows < P - p0)[:, None]
    p0 = p0.to(tl.int64)
    xb = X + (n * sxn + p0 * sxp) + rows[:, None] * sxp
    s = tl.zeros([BLOCK_P, BLOCK_C], dtype=tl.float32)
    for i in range(0, SIZE):
        q = c + (i - LO)
        v = tl.load(xb + q[None, :] * sxc, mask=pmask & ((q >= 0) & (q < C))[None, :], other=0.0).to(tl.float32)
        s += v * v
    mask = pmask & (c < C)[None, :]
    x = tl.load(xb + c[None, :] * sxc, mask=mask, other=0.0).to(tl.float32)
    y = x * tl.exp2(-beta * tl.log2(k + alpha_n * s))
    tl.store(Y + (n * syn + p0 * syp) + (rows[:, None] * syp + c[None, :] * syc), y.to(Y.dtype.element_ty),
             mask=mask)


@_common.autotune(LRN_CONFIGS, key=TUNE_KEY, interpreter_config=_common.INTERPRETER_TILE)
@triton.jit
def _lrn_bwd_kernel(X, DY, DX, N, C, P, sxn, sxc, sxp, sdn, sdc, sdp, sgn, sgc, sgp, SIZE, LO, k, alpha_n, beta,
                    BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr):
    """dx_c = dy_c d_c^-beta - 2 beta alpha_n x_c sum_{q: c in window(q)} dy_q x_q d_q^(-beta-1)."""
    HI = SIZE - 1 - LO
    tiles_p = (P + BLOCK_P - 1) // BLOCK_P
    pid = tl.program_id(0)
    n = (pid // tiles_p).to(tl.int64)
    p0 = (pid % tiles_p) * BLOCK_P
    rows = tl.arange(0, BLOCK_P)
    c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    pmask = (rows < P - p0)[:, None]
    p0 = p0.to(tl.int64)
    xb = X + (n * sxn + p0 * sxp) + rows[:, None] * sxp
    db = DY + (n * sdn + p0 * sdp) + rows[:, None] * sdp
    # S of the first q whose window holds c (q = c - HI): channels c - HI - LO ... c.
    s = tl.zeros([BLOCK_P, BLOCK_C], dtype=tl.float32)
    for i in range(0, SIZE):
        j = c + (i - HI - LO)
        v = tl.load(xb + j[None, :] * sxc, mask=pmask & ((j >= 0) & (j < C))[None, :], other=0.0).to(tl.float32)
        s += v * v
    acc = tl.zeros([BLOCK_P, BLOCK_C], dtype=tl.float32)
    log_own = tl.zeros([BLOCK_P, BLOCK_C], dtype=tl.float32)
    x_own = tl.zeros([BLOCK_P, BLOCK_C], dtype=tl.float32)
    dy_own = tl.zeros([BLOCK_P, BLOCK_C], dtype=tl.float32)
    for i in range(0, SIZE):
        q = c + (i - HI)
        qmask = pmask & ((q >= 0) & (q < C))[None, :]
        xq = tl.load(xb + q[None, :] * sxc, mask=qmask, other=0.0).to(tl.float32)
        dyq = tl.load(db + q[None, :] * sdc, mask=qmask, other=0.0).to(tl.float32)
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
            va = tl.load(xb + a[None, :] * sxc, mask=pmask & ((a >= 0) & (a < C))[None, :], other=0.0).to(tl.float32)
            vb = tl.load(xb + b[None, :] * sxc, mask=pmask & ((b >= 0) & (b < C))[None, :], other=0.0).to(tl.float32)
            s += va * va - vb * vb
    dx = dy_own * tl.exp2(-beta * log_own) - (2.0 * beta * alpha_n) * x_own * acc
    mask = pmask & (c < C)[None, :]
    tl.store(DX + (n * sgn + p0 * sgp) + (rows[:, None] * sgp + c[None, :] * sgc), dx.to(DX.dtype.element_ty),
             mask=mask)


# --- launchers ----------------------------------------------------------------------------------

def _scalars(size, alpha, beta, k):
    return dict(SIZE=size, LO=size // 2, k=float(k), alpha_n=float(alpha) / size, beta=float(beta))


def _forward(x, size, alpha, beta, k):
    n, c, h, w = x.shape
    y = _common.empty_like(x)
    n_, p, (sx, sy) = _common.pixel_view(x, y)
    if x.numel():
        with _common.device_guard(x):
            _lrn_fwd_kernel[_common.tile_grid(n_, p, c)](x, y, n_, c, p, *sx, *sy, **_scalars(size, alpha, beta, k))
    return y


def _backward(x, dy, size, alpha, beta, k):
    n, c, h, w = x.shape
    dy = _common.mergeable(dy)
    dx = _common.empty_like(x)
    n_, p, (sx, sd, sg) = _common.pixel_view(x, dy, dx)
    if x.numel():
        with _common.device_guard(x):
            _lrn_bwd_kernel[_common.tile_grid(n_, p, c)](x, dy, dx, n_, c, p, *sx, *sd, *sg,
                                                         **_scalars(size, alpha, beta, k))
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
    from .compile_check import Case, ptr

    c, hw, n = 96, 55 * 55, 64
    layouts = {"nchw": (n, hw, (c * hw, hw, 1)), "nhwc": (1, n * hw, (0, 1, c))}
    scalars = dict(SIZE=5, LO=2, k=2.0, alpha_n=2e-5, beta=0.75)
    cases = []
    for dtype in _common.DTYPES:
        for layout, (n_, p, s) in layouts.items():
            cases.append(Case(_lrn_fwd_kernel, dtype, layout, dict(
                X=ptr(dtype), Y=ptr(dtype), N=n_, C=c, P=p, sxn=s[0], sxc=s[1], sxp=s[2],
                syn=s[0], syc=s[1], syp=s[2], **scalars)))
            cases.append(Case(_lrn_bwd_kernel, dtype, layout, dict(
                X=ptr(dtype), DY=ptr(dtype), DX=ptr(dtype), N=n_, C=c, P=p, sxn=s[0], sxc=s[1], sxp=s[2],
                sdn=s[0], sdc=s[1], sdp=s[2], sgn=s[0], sgc=s[1], sgp=s[2], **scalars)))
    return cases
