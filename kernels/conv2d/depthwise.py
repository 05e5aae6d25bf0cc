"""Depthwise convolution (one input channel per group, any channel multiplier): stencils.

A stencil, not a GEMM: there is nothing to contract. A program owns ``[BLOCK_P output pixels,
BLOCK_C channels]`` (channels contiguous in channels_last, so each tap's load is one coalesced
row per pixel); the taps are unrolled at compile time (every tap's load in flight at once),
each loading its ``BLOCK_C`` weights once into registers, with fp32 FMAs. The input gradient
is the same stencil gathered from ``dy`` (a tap contributes where ``ih + pad - kh * d`` is a
multiple of the stride; one row of taps unrolled at a time). The weight gradient is a
split reduction over N*H*W: ``chunks`` programs per channel block each sum ``x_tap * dy`` over
their pixel tiles for every tap at once (``[taps, BLOCK_C]`` accumulator) and write fp32
partials that one small sum merges: not one program per channel.

Bytes (the contract: input, weight and output once per direction): a depthwise 3x3 at
256x256x56x56 bf16 moves 822 MB (191 us at 4.3 TB/s) for 3.7 GFLOP: pure bandwidth.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .. import _common
from .geometry import (Geometry, memory_format, merge_partials, needs_int64, pixel, split_count, stride_args,
                       tap_source)


# --- kernels --------------------------------------------------------------------------------------

# [BLOCK_P pixels, BLOCK_C channels]: wide channel blocks for channels_last (one 128-byte row per
# pixel and tap at C >= 64), tall pixel blocks for NCHW and small C.
DEPTHWISE_CONFIGS = [
    triton.Config({"BLOCK_P": 32, "BLOCK_C": 64}, num_warps=4),
    triton.Config({"BLOCK_P": 16, "BLOCK_C": 128}, num_warps=4),
    triton.Config({"BLOCK_P": 64, "BLOCK_C": 32}, num_warps=4),
    triton.Config({"BLOCK_P": 128, "BLOCK_C": 16}, num_warps=4),
]
DEPTHWISE_KEY = ["NPIX", "C", "KH", "KW", "stride_h", "stride_w"]  # + every operand's layout (_common.autotune)
# Under the interpreter the cost is per program and per op: one big tile (the GPU tiles are all
# run through it by the tests that force each config).
DEPTHWISE_INTERPRETER = triton.Config({"BLOCK_P": 128, "BLOCK_C": 64}, num_warps=4)


@_common.autotune(DEPTHWISE_CONFIGS, key=DEPTHWISE_KEY, interpreter_config=DEPTHWISE_INTERPRETER)
@triton.jit
def _depthwise_fwd_kernel(X, W, B, Y, NPIX, C, H, WD, H_OUT, W_OUT, KH: tl.constexpr, KW: tl.constexpr, stride_h,
                          stride_w, pad_h, pad_w, dil_h, dil_w, MULT, sxn, sxc, sxh, sxw, swc, swh, sww, syn, syc, syh,
                          syw, HAS_BIAS: tl.constexpr, BIG: tl.constexpr, BLOCK_P: tl.constexpr,
                          BLOCK_C: tl.constexpr):
    """y[n, c, oh, ow] = sum_{kh, kw} x[n, c // MULT, oh*s - pad + kh*d, ...] * w[c, 0, kh, kw] (+ b[c]).

    NPIX = N * H_OUT * W_OUT output pixels, C output channels."""
    p = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)
    c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    pmask = p < NPIX
    cmask = c < C
    n, oh, ow = pixel(p, H_OUT, W_OUT, BIG)
    x_img = n * sxn
    x_chan = (c // MULT) * sxc
    acc = tl.zeros([BLOCK_P, BLOCK_C], dtype=tl.float32)
    # The taps are unrolled (kh, kw are compile-time): all kh*kw loads of a tile are in flight
    # at once instead of one latency per tap.
    for tap in tl.static_range(KH * KW):
        kh = tap // KW
        kw = tap % KW
        ih, iw, valid = tap_source(oh, ow, kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, H, WD, False)
        m = pmask & valid
        xv = tl.load(X + ((x_img + ih * sxh + iw * sxw)[:, None] + x_chan[None, :]),
                     mask=m[:, None] & cmask[None, :], other=0.0)
        wv = tl.load(W + c * swc + (kh * swh + kw * sww), mask=cmask, other=0.0)
        acc += xv.to(tl.float32) * wv.to(tl.float32)[None, :]
    if HAS_BIAS:
        acc += tl.load(B + c, mask=cmask, other=0.0).to(tl.float32)[None, :]
    y_ptr = Y + ((n * syn + oh * syh + ow * syw)[:, None] + (c * syc)[None, :])
    tl.store(y_ptr, acc.to(Y.dtype.element_ty), mask=pmask[:, None] & cmask[None, :])


@_common.autotune(DEPTHWISE_CONFIGS, key=DEPTHWISE_KEY, interpreter_config=DEPTHWISE_INTERPRETER)
@triton.jit
def _depthwise_dgrad_kernel(DY, W, DX, NPIX, C, H, WD, H_OUT, W_OUT, KH: tl.constexpr, KW: tl.constexpr, stride_h,
                            stride_w, pad_h, pad_w, dil_h, dil_w, MULT, sdn, sdc, sdh, sdw, swc, swh, sww, sxn, sxc,
                            sxh, sxw, BIG: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr):
    """dx[n, c, ih, iw] = sum_{m, kh, kw} dy[n, c*MULT + m, oh, ow] * w[c*MULT + m, 0, kh, kw] over the
    taps with ih + pad - kh*d = oh * stride (and likewise in w). NPIX = N * H * WD input pixels,
    C input channels."""
    p = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)
    c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    pmask = p < NPIX
    cmask = c < C
    n, ih, iw = pixel(p, H, WD, BIG)
    dy_img = n * sdn
    acc = tl.zeros([BLOCK_P, BLOCK_C], dtype=tl.float32)
    # A row of taps unrolled at a time: the stride tests make a tap costlier than the forward's,
    # and all kh*kw unrolled spill in NCHW on sm_80 (ptxas).
    for kh in range(0, KH):
        for kw in tl.static_range(KW):
            oh, ow, valid = tap_source(ih, iw, kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, H_OUT,
                                        W_OUT, True)
            m = pmask & valid
            dy_row = (dy_img + oh * sdh + ow * sdw)[:, None]
            for j in range(0, MULT):  # the channel multiplier: 1 (specialised away) in every model here
                oc = c * MULT + j
                dyv = tl.load(DY + (dy_row + (oc * sdc)[None, :]), mask=m[:, None] & cmask[None, :], other=0.0)
                wv = tl.load(W + oc * swc + (kh * swh + kw * sww), mask=cmask, other=0.0)
                acc += dyv.to(tl.float32) * wv.to(tl.float32)[None, :]
    dx_ptr = DX + ((n * sxn + ih * sxh + iw * sxw)[:, None] + (c * sxc)[None, :])
    tl.store(dx_ptr, acc.to(DX.dtype.element_ty), mask=pmask[:, None] & cmask[None, :])


# The weight gradient keeps one [TAPS, BLOCK_C] fp32 accumulator (TAPS = kh*kw rounded up to a
# power of two) beside its tiles: one channels_last and one NCHW tile (ptxas spills a few bytes
# of [64, 32] in NCHW at 4 and at 8 warps).
DEPTHWISE_WGRAD_CONFIGS = [
    triton.Config({"BLOCK_P": 32, "BLOCK_C": 64}, num_warps=4),
    triton.Config({"BLOCK_P": 128, "BLOCK_C": 16}, num_warps=8),
]


@_common.autotune(DEPTHWISE_WGRAD_CONFIGS, key=DEPTHWISE_KEY, interpreter_config=DEPTHWISE_INTERPRETER)
@triton.jit
def _depthwise_wgrad_kernel(X, DY, WS, DBS, NPIX, C, H, WD, H_OUT, W_OUT, KH: tl.constexpr, KW: tl.constexpr,
                            stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, MULT, NUM_CHUNKS, sxn, sxc, sxh, sxw, sdn, sdc, sdh, sdw,
                            HAS_BIAS: tl.constexpr, TAPS: tl.constexpr, BIG: tl.constexpr,
                            BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr):
    """Partial sums of one chunk of output pixels (tiles chunk, chunk + NUM_CHUNKS, ...):
    WS[chunk, c, tap] = sum_p x_tap[p, c // MULT] * dy[p, c] (fp32 [NUM_CHUNKS, C, KH*KW]) and, with
    a bias, DBS[chunk, c] = sum_p dy[p, c]. A chunk that owns no tile writes zeros."""
    chunk = tl.program_id(0)
    c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    cmask = c < C
    rows = tl.arange(0, BLOCK_P)
    taps = tl.arange(0, TAPS)
    x_chan = ((c // MULT) * sxc)[None, :]
    acc = tl.zeros([TAPS, BLOCK_C], dtype=tl.float32)
    dsum = tl.zeros([BLOCK_P, BLOCK_C], dtype=tl.float32)
    for p0 in range(chunk * BLOCK_P, NPIX, NUM_CHUNKS * BLOCK_P):
        p = p0 + rows
        pmask = p < NPIX
        n, oh, ow = pixel(p, H_OUT, W_OUT, BIG)
        dy = tl.load(DY + ((n * sdn + oh * sdh + ow * sdw)[:, None] + (c * sdc)[None, :]),
                     mask=pmask[:, None] & cmask[None, :], other=0.0).to(tl.float32)
        dsum += dy
        x_img = n * sxn
        for tap in tl.static_range(KH * KW):  # unrolled: every tap's load of the tile in flight at once
            ih, iw, valid = tap_source(oh, ow, tap // KW, tap % KW, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w,
                                        H, WD, False)
            m = pmask & valid
            xv = tl.load(X + ((x_img + ih * sxh + iw * sxw)[:, None] + x_chan),
                         mask=m[:, None] & cmask[None, :], other=0.0).to(tl.float32)
            part = tl.sum(xv * dy, axis=0)  # [BLOCK_C]: this tap, this pixel tile
            acc += tl.where(taps[:, None] == tap, part[None, :], 0.0)
    n_taps = KH * KW
    ws = WS + chunk * C * n_taps + (c * n_taps)[None, :] + taps[:, None]
    tl.store(ws, acc, mask=(taps < n_taps)[:, None] & cmask[None, :])
    if HAS_BIAS:
        tl.store(DBS + chunk * C + c, tl.sum(dsum, axis=0), mask=cmask)


# --- launchers ------------------------------------------------------------------------------------

def forward(x, weight, bias, geo: Geometry):
    y = _common.empty((geo.n, geo.c_out, geo.h_out, geo.w_out), x.dtype, x.device, memory_format(x))
    npix = geo.n * geo.h_out * geo.w_out
    if y.numel():
        grid = lambda meta: (_common.cdiv(npix, meta["BLOCK_P"]), _common.cdiv(geo.c_out, meta["BLOCK_C"]))  # noqa: E731
        with _common.device_guard(x):
            _depthwise_fwd_kernel[grid](x, weight, bias if bias is not None else weight, y, npix, geo.c_out, geo.h,
                                        geo.w, geo.h_out, geo.w_out, MULT=geo.cout_per_group, **geo.scalars(),
                                        **stride_args("sx", x), **_depthwise_weight(weight), **stride_args("sy", y),
                                        HAS_BIAS=bias is not None, BIG=needs_int64(x, y))
    return y


def input_grad(dy, x, weight, geo: Geometry):
    dx = _common.empty(x.shape, x.dtype, x.device, memory_format(x))
    npix = geo.n * geo.h * geo.w
    if dx.numel():
        grid = lambda meta: (_common.cdiv(npix, meta["BLOCK_P"]), _common.cdiv(geo.c_in, meta["BLOCK_C"]))  # noqa: E731
        with _common.device_guard(x):
            _depthwise_dgrad_kernel[grid](dy, weight, dx, npix, geo.c_in, geo.h, geo.w, geo.h_out, geo.w_out,
                                          MULT=geo.cout_per_group, **geo.scalars(), **stride_args("sd", dy),
                                          **_depthwise_weight(weight), **stride_args("sx", dx), BIG=needs_int64(dy, dx))
    return dx


def weight_grad(dy, x, weight, geo: Geometry, need_bias: bool):
    npix = geo.n * geo.h_out * geo.w_out
    taps = geo.kh * geo.kw
    chunks = split_count(npix, _common.cdiv(geo.c_out, 32), x.device)
    ws = _common.empty((chunks, geo.c_out, taps), torch.float32, x.device)
    dbs = _common.empty((chunks, geo.c_out), torch.float32, x.device) if need_bias else ws
    grid = lambda meta: (chunks, _common.cdiv(geo.c_out, meta["BLOCK_C"]))  # noqa: E731
    with _common.device_guard(x):
        _depthwise_wgrad_kernel[grid](x, dy, ws, dbs, npix, geo.c_out, geo.h, geo.w, geo.h_out, geo.w_out,
                                      MULT=geo.cout_per_group, NUM_CHUNKS=chunks, **geo.scalars(),
                                      **stride_args("sx", x), **stride_args("sd", dy), HAS_BIAS=need_bias,
                                      TAPS=triton.next_power_of_2(taps), BIG=needs_int64(x, dy))
    return merge_partials(ws, weight), (merge_partials(dbs, None, weight.dtype) if need_bias else None)


def _depthwise_weight(weight: torch.Tensor) -> dict:
    """A depthwise weight [C_out, 1, kH, kW] is indexed by channel and tap only."""
    return dict(swc=weight.stride(0), swh=weight.stride(2), sww=weight.stride(3))


# --- compile check --------------------------------------------------------------------------------

def compile_cases():
    """Every kernel per dtype and layout at ResNeXt-50's first-stage 3x3 made depthwise (128
    channels, 56x56, batch 64)."""
    from ..compile_check import Case, ptr

    n, c, hw = 64, 128, 56
    layouts = {"nchw": (c * hw * hw, hw * hw, hw, 1), "nhwc": (c * hw * hw, 1, hw * c, c)}
    geo = dict(KH=3, KW=3, stride_h=1, stride_w=1, pad_h=1, pad_w=1, dil_h=1, dil_w=1)
    npix = n * hw * hw
    cases = []
    for dtype in _common.DTYPES:
        for layout, s in layouts.items():
            act = lambda prefix: dict(zip((f"{prefix}n", f"{prefix}c", f"{prefix}h", f"{prefix}w"), s))  # noqa: E731
            dw_w = dict(swc=9, swh=3, sww=1)
            cases.append(Case(_depthwise_fwd_kernel, dtype, layout, dict(
                X=ptr(dtype), W=ptr(dtype), B=ptr(dtype), Y=ptr(dtype), NPIX=npix, C=c, H=hw, WD=hw, H_OUT=hw,
                W_OUT=hw, MULT=1, **geo, **act("sx"), **dw_w, **act("sy"), HAS_BIAS=True, BIG=False)))
            cases.append(Case(_depthwise_dgrad_kernel, dtype, layout, dict(
                DY=ptr(dtype), W=ptr(dtype), DX=ptr(dtype), NPIX=npix, C=c, H=hw, WD=hw, H_OUT=hw, W_OUT=hw,
                MULT=1, **geo, **act("sd"), **dw_w, **act("sx"), BIG=False)))
            cases.append(Case(_depthwise_wgrad_kernel, dtype, layout, dict(
                X=ptr(dtype), DY=ptr(dtype), WS=ptr(torch.float32), DBS=ptr(torch.float32), NPIX=npix, C=c, H=hw,
                WD=hw, H_OUT=hw, W_OUT=hw, MULT=1, NUM_CHUNKS=132, **geo, **act("sx"), **act("sd"),
                HAS_BIAS=True, TAPS=16, BIG=False)))
    return cases
