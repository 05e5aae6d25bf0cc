"""Grouped convolution (any groups; meant for ResNeXt's 4-64 channels per group and AlexNet's 2):
implicit GEMM with packed groups.

``Y_g [pixels, C_out/g] = im2col(X_g) [pixels, K] @ W_g [K, C_out/g]`` with the taps folded into
the reduction (K = kh * kw * C_in/g: a loop over taps, and inside it over the group's input
channels). A group of 4 output channels would waste a 16-wide tensor core tile, so a tile of
``BLOCK_N`` output channels packs ``BLOCK_N / (C_out/g)`` groups: its A tile is the packed groups'
input channels (a contiguous channels_last slab), its B tile the block-diagonal weight (entries
of other groups masked to zero). The tensor cores do ``groups per tile`` times the useful FLOPs,
which they have to spare in a memory-bound layer, and every byte loaded is used. The input
gradient is the same kernel run as the transposed convolution (``dy`` as the source, the weight
read transposed per group); the weight gradient is ``dy^T [C_out/g, pixels] @ im2col(X_g)
[pixels, K]`` per tap, packed the same way, split over pixel chunks with fp32 partials. fp32
inputs use tf32 dot products when ``torch.backends.cudnn.allow_tf32`` is on, like cuDNN, and
fp32-accurate products when it is off (3xTF32: see ``_dot``).

Bytes and FLOPs (the contract: input, weight and output once per direction):
``bytes = (|x| + |w| + |y|) * itemsize``, ``FLOPs = 2 * N * C_out * H_out * W_out * (C_in/g) * kh * kw``.
Example, ResNeXt-50 32x4d's first-stage 3x3 (x = y = 256x128x56x56, g = 32, bf16): 205 MB each
way, 411 MB in all, 96 us at 4.3 TB/s; 7.4 GFLOP useful, 59 GFLOP with 8 groups packed in a
32-wide tile, 60 us at ~1 PFLOP/s dense bf16: the packing costs more than half the time of the
bytes, so narrower tiles (16, 4 groups) are among the autotune configs.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .. import _common
from .geometry import (Geometry, ieee_products, memory_format, merge_partials, needs_int64, pixel, split_count,
                       stride_args, tap_source)


# --- kernels --------------------------------------------------------------------------------------

# [BLOCK_M pixels, BLOCK_N output channels], reduction chunk BLOCK_K channels. N = 16 packs 4
# groups of 4 (ResNeXt 32x4d's first stage) with 4x the useful FLOPs; the wide tiles serve
# 32-64 channels per group (stage 4, 32x8d) and AlexNet's two groups of 128-192. The wide tiles
# use K = 16 and 8 warps: with fp32 operands (three products each, below) K = 32 spills.
GROUPED_CONFIGS = [
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 16, "BLOCK_K": 16}, num_warps=4, num_stages=3),
    triton.Config({"BLOCK_M": 64, "BLOCK_N": 32, "BLOCK_K": 32}, num_warps=4, num_stages=3),
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 32, "BLOCK_K": 16}, num_warps=8, num_stages=3),
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 64, "BLOCK_K": 16}, num_warps=8, num_stages=3),
    triton.Config({"BLOCK_M": 64, "BLOCK_N": 128, "BLOCK_K": 16}, num_warps=8, num_stages=3),
]
GROUPED_KEY = ["M", "N_DST", "CPG_SRC", "CPG_DST", "KH", "KW", "stride_h"]  # + the layouts (_common.autotune)
GROUPED_INTERPRETER = triton.Config({"BLOCK_M": 128, "BLOCK_N": 128, "BLOCK_K": 64}, num_warps=4)


@triton.jit
def _dot(a, b, acc, IEEE: tl.constexpr):
    """acc + a @ b with fp32 accumulation. fp32 operands: tf32 products, or with IEEE the
    3xTF32 split (a = a_hi + a_lo in tf32, three tensor-core products, ~1e-7 relative error,
    fp32's accuracy): a plain fp32 FMA tile ("ieee") needs 255 registers and spills at every
    tile size worth having (ptxas, sm_80 and sm_90a)."""
    if IEEE:
        return tl.dot(a, b, acc, input_precision="tf32x3")
    else:
        return tl.dot(a, b, acc)


@_common.autotune(GROUPED_CONFIGS, key=GROUPED_KEY, interpreter_config=GROUPED_INTERPRETER)
@triton.jit
def _grouped_conv_kernel(SRC, W, B, DST, M, N_DST, H_SRC, W_SRC, H_DST, W_DST, KH, KW, stride_h, stride_w,
                         pad_h, pad_w, dil_h, dil_w, CPG_SRC, CPG_DST, ssn, ssc, ssh, ssw, swo, swi, swh, sww,
                         sdn, sdc, sdh, sdw, DGRAD: tl.constexpr, HAS_BIAS: tl.constexpr, IEEE: tl.constexpr,
                         BIG: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    """One [BLOCK_M, BLOCK_N] tile of DST = conv(SRC) as an implicit GEMM over taps x channels.

    Forward (DGRAD=False): SRC = x, DST = y; DST pixel (oh, ow) reads SRC at oh*s - pad + kh*d.
    Input gradient (DGRAD=True): SRC = dy, DST = dx, the transposed convolution: DST pixel
    (ih, iw) reads SRC at (ih + pad - kh*d) / s where that divides. M = DST pixels (N*H*W),
    N_DST = DST channels; CPG_* = channels per group. The weight is w[C_out, C_in/g, kh, kw]:
    B[k, n] = w[n, k - g*CPG_SRC] forward, w[k, n - g*CPG_DST] transposed, zero across groups.
    """
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rmask = rows < M
    cmask = cols < N_DST
    n, oh, ow = pixel(rows, H_DST, W_DST, BIG)
    # The SRC channels this tile needs: those of the groups its output channels belong to.
    g_col = cols // CPG_DST
    g_lo = (pid_n * BLOCK_N) // CPG_DST
    g_hi = (tl.minimum(pid_n * BLOCK_N + BLOCK_N, N_DST) - 1) // CPG_DST
    k_lo = g_lo * CPG_SRC
    k_hi = (g_hi + 1) * CPG_SRC
    src_img = n * ssn
    acc = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
    # One flat loop over (tap, channel chunk): few values live across iterations, and one loop
    # for the pipeliner to overlap loads with the tensor-core work.
    k_steps = (k_hi - k_lo + BLOCK_K - 1) // BLOCK_K
    for step in range(0, KH * KW * k_steps):
        tap = step // k_steps
        kh = tap // KW
        kw = tap % KW
        sh, sw, valid = tap_source(oh, ow, kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, H_SRC, W_SRC,
                                    DGRAD)
        valid = valid & rmask
        ks = k_lo + (step % k_steps) * BLOCK_K + tl.arange(0, BLOCK_K)
        kmask = ks < k_hi
        a = tl.load(SRC + ((src_img + sh * ssh + sw * ssw)[:, None] + (ks * ssc)[None, :]),
                    mask=valid[:, None] & kmask[None, :], other=0.0)
        g_k = ks // CPG_SRC
        same = (g_k[:, None] == g_col[None, :]) & kmask[:, None] & cmask[None, :]
        if DGRAD:
            w_off = ks[:, None] * swo + (cols[None, :] - g_k[:, None] * CPG_DST) * swi
        else:
            w_off = cols[None, :] * swo + (ks[:, None] - g_k[:, None] * CPG_SRC) * swi
        b = tl.load(W + (w_off + (kh * swh + kw * sww)), mask=same, other=0.0)
        acc = _dot(a, b, acc, IEEE)
    if HAS_BIAS:
        acc += tl.load(B + cols, mask=cmask, other=0.0).to(tl.float32)[None, :]
    dst = DST + ((n * sdn + oh * sdh + ow * sdw)[:, None] + (cols * sdc)[None, :])
    tl.store(dst, acc.to(DST.dtype.element_ty), mask=rmask[:, None] & cmask[None, :])


# [BLOCK_N output channels, BLOCK_K input channels] of one tap, reduced over BLOCK_M pixels a step.
GROUPED_WGRAD_CONFIGS = [
    triton.Config({"BLOCK_M": 64, "BLOCK_N": 16, "BLOCK_K": 16}, num_warps=4, num_stages=2),
    triton.Config({"BLOCK_M": 32, "BLOCK_N": 64, "BLOCK_K": 32}, num_warps=8, num_stages=3),
    triton.Config({"BLOCK_M": 32, "BLOCK_N": 128, "BLOCK_K": 16}, num_warps=8, num_stages=3),
]
GROUPED_WGRAD_KEY = ["M", "C_OUT", "CIG", "COG", "KH", "KW", "stride_h"]  # + every operand's layout (_common.autotune)


@_common.autotune(GROUPED_WGRAD_CONFIGS, key=GROUPED_WGRAD_KEY, interpreter_config=GROUPED_INTERPRETER)
@triton.jit
def _grouped_wgrad_kernel(X, DY, WS, DBS, M, C_OUT, H, WD, H_OUT, W_OUT, KH, KW, stride_h, stride_w, pad_h,
                          pad_w, dil_h, dil_w, CIG, COG, NUM_CHUNKS, sxn, sxc, sxh, sxw, sdn, sdc, sdh, sdw,
                          HAS_BIAS: tl.constexpr, IEEE: tl.constexpr, BIG: tl.constexpr,
                          BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    """Partial weight gradient of one (pixel chunk, output-channel tile, tap):
    WS[chunk, o, i, tap] = sum_p dy[p, o] * x_tap[p, g(o)*CIG + i] (fp32 [NUM_CHUNKS, C_OUT, CIG, KH*KW]);
    with a bias, the tap-0 programs also write DBS[chunk, o] = sum_p dy[p, o]. M = output pixels."""
    chunk = tl.program_id(0)
    pid_n = tl.program_id(1)
    tap = tl.program_id(2)
    kh = tap // KW
    kw = tap % KW
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)  # output channels
    cmask = cols < C_OUT
    g_col = cols // COG
    g_lo = (pid_n * BLOCK_N) // COG
    g_hi = (tl.minimum(pid_n * BLOCK_N + BLOCK_N, C_OUT) - 1) // COG
    k_lo = g_lo * CIG
    k_hi = (g_hi + 1) * CIG
    n_taps = KH * KW
    pix = tl.arange(0, BLOCK_M)
    if HAS_BIAS:
        if tap == 0:  # the bias gradient: one more read of dy, by the tap-0 programs only
            dsum = tl.zeros([BLOCK_N], dtype=tl.float32)
            for p0 in range(chunk * BLOCK_M, M, NUM_CHUNKS * BLOCK_M):
                p = p0 + pix
                pmask = p < M
                n, oh, ow = pixel(p, H_OUT, W_OUT, BIG)
                dy_off = n * sdn + oh * sdh + ow * sdw
                dy_t = tl.load(DY + (dy_off[None, :] + (cols * sdc)[:, None]), mask=cmask[:, None] & pmask[None, :],
                               other=0.0)
                dsum += tl.sum(dy_t.to(tl.float32), axis=1)
            tl.store(DBS + chunk * C_OUT + cols, dsum, mask=cmask)
    for k0 in range(k_lo, k_hi, BLOCK_K):
        ks = k0 + tl.arange(0, BLOCK_K)  # input channels
        kmask = ks < k_hi
        acc = tl.zeros([BLOCK_N, BLOCK_K], dtype=tl.float32)
        for p0 in range(chunk * BLOCK_M, M, NUM_CHUNKS * BLOCK_M):
            p = p0 + pix
            pmask = p < M
            n, oh, ow = pixel(p, H_OUT, W_OUT, BIG)
            dy_t = tl.load(DY + ((n * sdn + oh * sdh + ow * sdw)[None, :] + (cols * sdc)[:, None]),
                           mask=cmask[:, None] & pmask[None, :], other=0.0)
            ih, iw, valid = tap_source(oh, ow, kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, H, WD, False)
            valid = valid & pmask
            xv = tl.load(X + ((n * sxn + ih * sxh + iw * sxw)[:, None] + (ks * sxc)[None, :]),
                         mask=valid[:, None] & kmask[None, :], other=0.0)
            acc = _dot(dy_t, xv, acc, IEEE)
        g_k = ks // CIG
        same = (g_k[None, :] == g_col[:, None]) & kmask[None, :] & cmask[:, None]
        ws = WS + chunk * C_OUT * CIG * n_taps + cols[:, None] * (CIG * n_taps) \
            + (ks[None, :] - g_col[:, None] * CIG) * n_taps + tap
        tl.store(ws, acc, mask=same)


# --- launchers ------------------------------------------------------------------------------------

def forward(x, weight, bias, geo: Geometry):
    y = _common.empty((geo.n, geo.c_out, geo.h_out, geo.w_out), x.dtype, x.device, memory_format(x))
    m = geo.n * geo.h_out * geo.w_out
    if y.numel():
        _launch(x, weight, bias, y, geo, m, geo.c_out, (geo.h, geo.w), (geo.h_out, geo.w_out),
                        geo.cin_per_group, geo.cout_per_group, dgrad=False)
    return y


def input_grad(dy, x, weight, geo: Geometry):
    dx = _common.empty(x.shape, x.dtype, x.device, memory_format(x))
    m = geo.n * geo.h * geo.w
    if dx.numel():
        _launch(dy, weight, None, dx, geo, m, geo.c_in, (geo.h_out, geo.w_out), (geo.h, geo.w),
                        geo.cout_per_group, geo.cin_per_group, dgrad=True)
    return dx


def _launch(src, weight, bias, dst, geo, m, n_dst, src_hw, dst_hw, cpg_src, cpg_dst, dgrad):
    grid = lambda meta: (_common.cdiv(m, meta["BLOCK_M"]), _common.cdiv(n_dst, meta["BLOCK_N"]))  # noqa: E731
    with _common.device_guard(src):
        _grouped_conv_kernel[grid](src, weight, bias if bias is not None else weight, dst, m, n_dst, *src_hw,
                                   *dst_hw, CPG_SRC=cpg_src, CPG_DST=cpg_dst, **geo.scalars(), **stride_args("ss", src),
                                   **stride_args("sw", weight, "oihw"), **stride_args("sd", dst), DGRAD=dgrad,
                                   HAS_BIAS=bias is not None, IEEE=ieee_products(src.dtype), BIG=needs_int64(src, dst))


def weight_grad(dy, x, weight, geo: Geometry, need_bias: bool):
    m = geo.n * geo.h_out * geo.w_out
    taps = geo.kh * geo.kw
    chunks = split_count(m, _common.cdiv(geo.c_out, 32) * taps, x.device)
    ws = _common.empty((chunks, geo.c_out, geo.cin_per_group, taps), torch.float32, x.device)
    dbs = _common.empty((chunks, geo.c_out), torch.float32, x.device) if need_bias else ws
    grid = lambda meta: (chunks, _common.cdiv(geo.c_out, meta["BLOCK_N"]), taps)  # noqa: E731
    with _common.device_guard(x):
        _grouped_wgrad_kernel[grid](x, dy, ws, dbs, m, geo.c_out, geo.h, geo.w, geo.h_out, geo.w_out,
                                    CIG=geo.cin_per_group, COG=geo.cout_per_group, NUM_CHUNKS=chunks,
                                    **geo.scalars(), **stride_args("sx", x), **stride_args("sd", dy), HAS_BIAS=need_bias,
                                    IEEE=ieee_products(x.dtype), BIG=needs_int64(x, dy))
    return merge_partials(ws, weight), (merge_partials(dbs, None, weight.dtype) if need_bias else None)


# --- compile check --------------------------------------------------------------------------------

def compile_cases():
    """Every kernel per dtype and layout at ResNeXt-50's first-stage grouped 3x3 (128 channels,
    32 groups, 56x56, batch 64)."""
    from ..compile_check import Case, ptr

    n, c, hw = 64, 128, 56
    layouts = {"nchw": (c * hw * hw, hw * hw, hw, 1), "nhwc": (c * hw * hw, 1, hw * c, c)}
    geo = dict(KH=3, KW=3, stride_h=1, stride_w=1, pad_h=1, pad_w=1, dil_h=1, dil_w=1)
    npix = n * hw * hw
    cases = []
    for dtype in _common.DTYPES:
        for layout, s in layouts.items():
            act = lambda prefix: dict(zip((f"{prefix}n", f"{prefix}c", f"{prefix}h", f"{prefix}w"), s))  # noqa: E731
            gw = dict(swo=4 * 9, swi=9, swh=3, sww=1)
            # fp32 twice: IEEE-accurate (3xTF32, the heavier) and tf32, as allow_tf32 selects
            for ieee in ((True, False) if dtype == torch.float32 else (False,)):
                tag = layout + ("-tf32" if dtype == torch.float32 and not ieee else "")
                for dgrad in (False, True):
                    cases.append(Case(_grouped_conv_kernel, dtype, tag + ("-dgrad" if dgrad else ""), dict(
                        SRC=ptr(dtype), W=ptr(dtype), B=ptr(dtype), DST=ptr(dtype), M=npix, N_DST=c, H_SRC=hw,
                        W_SRC=hw, H_DST=hw, W_DST=hw, CPG_SRC=4, CPG_DST=4, **geo, **act("ss"), **gw, **act("sd"),
                        DGRAD=dgrad, HAS_BIAS=not dgrad, IEEE=ieee, BIG=False)))
                cases.append(Case(_grouped_wgrad_kernel, dtype, tag, dict(
                    X=ptr(dtype), DY=ptr(dtype), WS=ptr(torch.float32), DBS=ptr(torch.float32), M=npix, C_OUT=c,
                    H=hw, WD=hw, H_OUT=hw, W_OUT=hw, CIG=4, COG=4, NUM_CHUNKS=132, **geo, **act("sx"), **act("sd"),
                    HAS_BIAS=True, IEEE=ieee, BIG=False)))
    return cases
