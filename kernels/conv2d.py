"""Grouped and depthwise 2-D convolution, forward and both backwards, with a measured dispatcher.

``kernels.conv2d(x, weight, bias, stride, padding, dilation, groups)`` has the semantics of
``torch.nn.functional.conv2d`` for any groups, stride, padding (ints, pairs, 'same', 'valid') and
dilation. Three ways to compute each direction (forward, input gradient, weight gradient):

``triton-depthwise`` (one input channel per group: depthwise, with any channel multiplier)
    A stencil, not a GEMM: there is nothing to contract. A program owns ``[BLOCK_P output pixels,
    BLOCK_C channels]`` (channels contiguous in channels_last, so each tap's load is one coalesced
    row per pixel); the taps are unrolled at compile time (every tap's load in flight at once),
    each loading its ``BLOCK_C`` weights once into registers, with fp32 FMAs. The input gradient
    is the same stencil gathered from ``dy`` (a tap contributes where ``ih + pad - kh * d`` is a
    multiple of the stride; one row of taps unrolled at a time). The weight gradient is a
    split reduction over N*H*W: ``chunks`` programs per channel block each sum ``x_tap * dy`` over
    their pixel tiles for every tap at once (``[taps, BLOCK_C]`` accumulator) and write fp32
    partials that one small sum merges: not one program per channel.

``triton-grouped`` (any groups; meant for ResNeXt's 4-64 channels per group and AlexNet's 2)
    Implicit GEMM per group, ``Y_g [pixels, C_out/g] = im2col(X_g) [pixels, K] @ W_g [K, C_out/g]``
    with the taps folded into the reduction (K = kh * kw * C_in/g: a loop over taps, and inside it
    over the group's input channels). A group of 4 output channels would waste a 16-wide tensor
    core tile, so a tile of ``BLOCK_N`` output channels packs ``BLOCK_N / (C_out/g)`` groups: its A
    tile is the packed groups' input channels (a contiguous channels_last slab), its B tile the
    block-diagonal weight (entries of other groups masked to zero). The tensor cores do
    ``groups per tile`` times the useful FLOPs, which they have to spare in a memory-bound layer,
    and every byte loaded is used. The input gradient is the same kernel run as the transposed
    convolution (``dy`` as the source, the weight read transposed per group); the weight
    gradient is ``dy^T [C_out/g, pixels] @ im2col(X_g) [pixels, K]`` per tap, packed the same way,
    split over pixel chunks with fp32 partials. fp32 inputs use tf32 dot products when
    ``torch.backends.cudnn.allow_tf32`` is on, like cuDNN, and fp32-accurate products when it is
    off (3xTF32: see ``_dot``).

``torch`` (``F.conv2d`` and ``aten.convolution_backward``: cuDNN on a GPU)
    The baseline, and the path that dense convolution (groups=1) takes by rule.

The dispatcher picks one per (direction, shape, dtype, layout, tf32). On a GPU it times every
candidate once on the call's own tensors (each Triton candidate autotuned first) and keeps the
fastest, so ``kernels.conv2d`` is never slower than cuDNN on a shape it was tuned on; decisions
are cached per GPU and software version in a JSON file (``KERNELS_CONV2D_CACHE``, default
``~/.cache/classic-cnn-bench/conv2d-dispatch.json``) and listed by :func:`conv2d_decisions`.
Under the Triton interpreter nothing can be timed: groups > 1 takes its Triton path by rule.
:func:`conv2d_dispatch` forces a policy ("triton", "torch" or "auto").

Bytes and FLOPs (``../shared/kernel-contract.md``: input, weight and output once per direction):
``bytes = (|x| + |w| + |y|) * itemsize``, ``FLOPs = 2 * N * C_out * H_out * W_out * (C_in/g) * kh * kw``.
Example, ResNeXt-50 32x4d's first-stage 3x3 (x = y = 256x128x56x56, g = 32, bf16): 205 MB each
way, 411 MB in all, 96 us at 4.3 TB/s; 7.4 GFLOP useful, 59 GFLOP with 8 groups packed in a
32-wide tile, 60 us at ~1 PFLOP/s dense bf16: the packing costs more than half the time of the
bytes, so narrower tiles (16, 4 groups) are among the autotune configs. A depthwise 3x3 at
256x256x56x56 moves 822 MB (191 us) for 3.7 GFLOP: pure bandwidth. Measured figures, with the
commit they ran on, are in results/h200/README.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import numbers
import os
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
import triton
import triton.language as tl
from torch import nn

from . import _common
from ._patch import register_swap

# --- depthwise kernels: stencils --------------------------------------------------------------

@triton.jit
def _pixel(p, H, W, BIG: tl.constexpr):
    """(image, row, column) of flat pixel indices p = (n * H + h) * W + w. Offsets are int32 (one
    register per element of a tile, not a 64-bit pointer) unless a tensor may need 64 (BIG)."""
    n = p // (H * W)
    if BIG:
        n = n.to(tl.int64)
    return n, (p // W) % H, p % W


@triton.jit
def _tap_source(oh, ow, kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, H_SRC, W_SRC,
                TRANSPOSED: tl.constexpr):
    """Where tap (kh, kw) of output pixel (oh, ow) reads, and whether that pixel exists.

    Convolution: (oh * s - pad + kh * d). Transposed (the input gradient, reading dy): the
    (ih + pad - kh * d) / s that divide exactly; operands of // and % are kept >= 0, since the
    interpreter floors and the GPU truncates."""
    if TRANSPOSED:
        th = oh + pad_h - kh * dil_h
        tw = ow + pad_w - kw * dil_w
        th_pos = tl.where(th >= 0, th, 0)
        tw_pos = tl.where(tw >= 0, tw, 0)
        sh = th_pos // stride_h
        sw = tw_pos // stride_w
        valid = (th >= 0) & (tw >= 0) & (th_pos % stride_h == 0) & (tw_pos % stride_w == 0) \
            & (sh < H_SRC) & (sw < W_SRC)
    else:
        sh = oh * stride_h - pad_h + kh * dil_h
        sw = ow * stride_w - pad_w + kw * dil_w
        valid = (sh >= 0) & (sh < H_SRC) & (sw >= 0) & (sw < W_SRC)
    return sh, sw, valid


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
    n, oh, ow = _pixel(p, H_OUT, W_OUT, BIG)
    x_img = n * sxn
    x_chan = (c // MULT) * sxc
    acc = tl.zeros([BLOCK_P, BLOCK_C], dtype=tl.float32)
    # The taps are unrolled (kh, kw are compile-time): all kh*kw loads of a tile are in flight
    # at once instead of one latency per tap.
    for tap in tl.static_range(KH * KW):
        kh = tap // KW
        kw = tap % KW
        ih, iw, valid = _tap_source(oh, ow, kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, H, WD, False)
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
    n, ih, iw = _pixel(p, H, WD, BIG)
    dy_img = n * sdn
    acc = tl.zeros([BLOCK_P, BLOCK_C], dtype=tl.float32)
    # A row of taps unrolled at a time: the stride tests make a tap costlier than the forward's,
    # and all kh*kw unrolled spill in NCHW on sm_80 (ptxas).
    for kh in range(0, KH):
        for kw in tl.static_range(KW):
            oh, ow, valid = _tap_source(ih, iw, kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, H_OUT,
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
        n, oh, ow = _pixel(p, H_OUT, W_OUT, BIG)
        dy = tl.load(DY + ((n * sdn + oh * sdh + ow * sdw)[:, None] + (c * sdc)[None, :]),
                     mask=pmask[:, None] & cmask[None, :], other=0.0).to(tl.float32)
        dsum += dy
        x_img = n * sxn
        for tap in tl.static_range(KH * KW):  # unrolled: every tap's load of the tile in flight at once
            ih, iw, valid = _tap_source(oh, ow, tap // KW, tap % KW, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w,
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


# --- grouped kernels: implicit GEMM with packed groups -----------------------------------------

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
    n, oh, ow = _pixel(rows, H_DST, W_DST, BIG)
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
        sh, sw, valid = _tap_source(oh, ow, kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, H_SRC, W_SRC,
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
                n, oh, ow = _pixel(p, H_OUT, W_OUT, BIG)
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
            n, oh, ow = _pixel(p, H_OUT, W_OUT, BIG)
            dy_t = tl.load(DY + ((n * sdn + oh * sdh + ow * sdw)[None, :] + (cols * sdc)[:, None]),
                           mask=cmask[:, None] & pmask[None, :], other=0.0)
            ih, iw, valid = _tap_source(oh, ow, kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, H, WD, False)
            valid = valid & pmask
            xv = tl.load(X + ((n * sxn + ih * sxh + iw * sxw)[:, None] + (ks * sxc)[None, :]),
                         mask=valid[:, None] & kmask[None, :], other=0.0)
            acc = _dot(dy_t, xv, acc, IEEE)
        g_k = ks // CIG
        same = (g_k[None, :] == g_col[:, None]) & kmask[None, :] & cmask[:, None]
        ws = WS + chunk * C_OUT * CIG * n_taps + cols[:, None] * (CIG * n_taps) \
            + (ks[None, :] - g_col[:, None] * CIG) * n_taps + tap
        tl.store(ws, acc, mask=same)


# --- geometry and launchers --------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Geometry:
    """A convolution's shape arithmetic, after the checks: padding is (top, left, bottom, right)
    (bottom/right differ from top/left only for 'same' with an even dilated kernel, which torch
    pads one more at the end)."""

    n: int
    c_in: int
    h: int
    w: int
    c_out: int
    kh: int
    kw: int
    stride: tuple[int, int]
    padding: tuple[int, int, int, int]
    dilation: tuple[int, int]
    groups: int
    h_out: int
    w_out: int

    @property
    def cin_per_group(self) -> int:
        return self.c_in // self.groups

    @property
    def cout_per_group(self) -> int:
        return self.c_out // self.groups

    @property
    def depthwise(self) -> bool:
        return self.cin_per_group == 1

    def scalars(self) -> dict:
        return dict(KH=self.kh, KW=self.kw, stride_h=self.stride[0], stride_w=self.stride[1],
                    pad_h=self.padding[0], pad_w=self.padding[1], dil_h=self.dilation[0], dil_w=self.dilation[1])


def _strides(t: torch.Tensor) -> tuple[int, int, int, int]:
    return tuple(t.stride())


def _memory_format(t: torch.Tensor):
    """channels_last when ``t`` is laid out so, else contiguous; a tensor that is both (1x1
    spatial, or one channel) counts as channels_last when its channel stride is the smallest,
    as torch's own suggestion does."""
    if t.is_contiguous(memory_format=torch.channels_last) and (not t.is_contiguous() or t.stride(1) < t.stride(3)):
        return torch.channels_last
    return torch.contiguous_format


def _big(*tensors: torch.Tensor) -> bool:
    """Whether an offset into one of ``tensors`` may need 64 bits (any strides: the largest
    offset, not the element count)."""
    return any(sum((size - 1) * abs(stride) for size, stride in zip(t.shape, t.stride())) >= 2**31 - 1
               for t in tensors)


def _ieee(dtype: torch.dtype) -> bool:
    return dtype == torch.float32 and not torch.backends.cudnn.allow_tf32


def _chunks(pixels: int, programs_per_chunk: int, device: torch.device) -> int:
    """Programs that share the pixels of a split reduction: enough for ~4 per SM in all,
    never fewer than 1024 pixels a chunk (the interpreter: a few tiny ones, to test the merge)."""
    if _common.INTERPRET:
        return max(1, min(_common.cdiv(pixels, 16), 3))
    return max(1, min(_common.cdiv(pixels, 1024), _common.cdiv(4 * _common.num_sms(device), programs_per_chunk)))


def _depthwise_forward(x, weight, bias, geo: Geometry):
    y = _common.empty((geo.n, geo.c_out, geo.h_out, geo.w_out), x.dtype, x.device, _memory_format(x))
    npix = geo.n * geo.h_out * geo.w_out
    if y.numel():
        grid = lambda meta: (_common.cdiv(npix, meta["BLOCK_P"]), _common.cdiv(geo.c_out, meta["BLOCK_C"]))  # noqa: E731
        with _common.device_guard(x):
            _depthwise_fwd_kernel[grid](x, weight, bias if bias is not None else weight, y, npix, geo.c_out, geo.h,
                                        geo.w, geo.h_out, geo.w_out, MULT=geo.cout_per_group, **geo.scalars(),
                                        **_named("sx", x), **_depthwise_weight(weight), **_named("sy", y),
                                        HAS_BIAS=bias is not None, BIG=_big(x, y))
    return y


def _depthwise_input_grad(dy, x, weight, geo: Geometry):
    dx = _common.empty(x.shape, x.dtype, x.device, _memory_format(x))
    npix = geo.n * geo.h * geo.w
    if dx.numel():
        grid = lambda meta: (_common.cdiv(npix, meta["BLOCK_P"]), _common.cdiv(geo.c_in, meta["BLOCK_C"]))  # noqa: E731
        with _common.device_guard(x):
            _depthwise_dgrad_kernel[grid](dy, weight, dx, npix, geo.c_in, geo.h, geo.w, geo.h_out, geo.w_out,
                                          MULT=geo.cout_per_group, **geo.scalars(), **_named("sd", dy),
                                          **_depthwise_weight(weight), **_named("sx", dx), BIG=_big(dy, dx))
    return dx


def _depthwise_weight_grad(dy, x, weight, geo: Geometry, need_bias: bool):
    npix = geo.n * geo.h_out * geo.w_out
    taps = geo.kh * geo.kw
    chunks = _chunks(npix, _common.cdiv(geo.c_out, 32), x.device)
    ws = _common.empty((chunks, geo.c_out, taps), torch.float32, x.device)
    dbs = _common.empty((chunks, geo.c_out), torch.float32, x.device) if need_bias else ws
    grid = lambda meta: (chunks, _common.cdiv(geo.c_out, meta["BLOCK_C"]))  # noqa: E731
    with _common.device_guard(x):
        _depthwise_wgrad_kernel[grid](x, dy, ws, dbs, npix, geo.c_out, geo.h, geo.w, geo.h_out, geo.w_out,
                                      MULT=geo.cout_per_group, NUM_CHUNKS=chunks, **geo.scalars(),
                                      **_named("sx", x), **_named("sd", dy), HAS_BIAS=need_bias,
                                      TAPS=triton.next_power_of_2(taps), BIG=_big(x, dy))
    return _merge_chunks(ws, weight), (_merge_chunks(dbs, None, weight.dtype) if need_bias else None)


def _grouped_forward(x, weight, bias, geo: Geometry):
    y = _common.empty((geo.n, geo.c_out, geo.h_out, geo.w_out), x.dtype, x.device, _memory_format(x))
    m = geo.n * geo.h_out * geo.w_out
    if y.numel():
        _launch_grouped(x, weight, bias, y, geo, m, geo.c_out, (geo.h, geo.w), (geo.h_out, geo.w_out),
                        geo.cin_per_group, geo.cout_per_group, dgrad=False)
    return y


def _grouped_input_grad(dy, x, weight, geo: Geometry):
    dx = _common.empty(x.shape, x.dtype, x.device, _memory_format(x))
    m = geo.n * geo.h * geo.w
    if dx.numel():
        _launch_grouped(dy, weight, None, dx, geo, m, geo.c_in, (geo.h_out, geo.w_out), (geo.h, geo.w),
                        geo.cout_per_group, geo.cin_per_group, dgrad=True)
    return dx


def _launch_grouped(src, weight, bias, dst, geo, m, n_dst, src_hw, dst_hw, cpg_src, cpg_dst, dgrad):
    grid = lambda meta: (_common.cdiv(m, meta["BLOCK_M"]), _common.cdiv(n_dst, meta["BLOCK_N"]))  # noqa: E731
    with _common.device_guard(src):
        _grouped_conv_kernel[grid](src, weight, bias if bias is not None else weight, dst, m, n_dst, *src_hw,
                                   *dst_hw, CPG_SRC=cpg_src, CPG_DST=cpg_dst, **geo.scalars(), **_named("ss", src),
                                   **_named("sw", weight, "oihw"), **_named("sd", dst), DGRAD=dgrad,
                                   HAS_BIAS=bias is not None, IEEE=_ieee(src.dtype), BIG=_big(src, dst))


def _grouped_weight_grad(dy, x, weight, geo: Geometry, need_bias: bool):
    m = geo.n * geo.h_out * geo.w_out
    taps = geo.kh * geo.kw
    chunks = _chunks(m, _common.cdiv(geo.c_out, 32) * taps, x.device)
    ws = _common.empty((chunks, geo.c_out, geo.cin_per_group, taps), torch.float32, x.device)
    dbs = _common.empty((chunks, geo.c_out), torch.float32, x.device) if need_bias else ws
    grid = lambda meta: (chunks, _common.cdiv(geo.c_out, meta["BLOCK_N"]), taps)  # noqa: E731
    with _common.device_guard(x):
        _grouped_wgrad_kernel[grid](x, dy, ws, dbs, m, geo.c_out, geo.h, geo.w, geo.h_out, geo.w_out,
                                    CIG=geo.cin_per_group, COG=geo.cout_per_group, NUM_CHUNKS=chunks,
                                    **geo.scalars(), **_named("sx", x), **_named("sd", dy), HAS_BIAS=need_bias,
                                    IEEE=_ieee(x.dtype), BIG=_big(x, dy))
    return _merge_chunks(ws, weight), (_merge_chunks(dbs, None, weight.dtype) if need_bias else None)


def _named(prefix: str, t: torch.Tensor, axes: str = "nchw") -> dict:
    """A tensor's four strides as the kernels' keyword arguments (``sxn, sxc, sxh, sxw``...)."""
    return {f"{prefix}{axis}": s for axis, s in zip(axes, t.stride())}


def _depthwise_weight(weight: torch.Tensor) -> dict:
    """A depthwise weight [C_out, 1, kH, kW] is indexed by channel and tap only."""
    return dict(swc=weight.stride(0), swh=weight.stride(2), sww=weight.stride(3))


def _merge_chunks(partials: torch.Tensor, like: torch.Tensor | None, dtype: torch.dtype | None = None):
    """The split reductions' last step: sum the fp32 partials over the chunks (a few rows of a
    weight-sized tensor), then round once to the parameter's dtype and memory format."""
    total = partials.sum(0)
    if like is None:
        return total.to(dtype)
    return total.view(like.shape).to(like.dtype).contiguous(memory_format=_memory_format(like))


# --- the torch path (cuDNN on a GPU) -------------------------------------------------------------

def _torch_padded(x: torch.Tensor, geo: Geometry) -> torch.Tensor:
    """x with the extra bottom/right row and column of an asymmetric 'same' padding (torch's own
    F.conv2d does the same copy)."""
    top, left, bottom, right = geo.padding
    return x if (bottom, right) == (top, left) else F.pad(x, (0, right - left, 0, bottom - top))


def _torch_forward(x, weight, bias, geo: Geometry):
    return F.conv2d(_torch_padded(x, geo), weight, bias, geo.stride, geo.padding[:2], geo.dilation, geo.groups)


def _torch_backward(dy, x, weight, geo: Geometry, need_dx: bool, need_dw: bool, need_db: bool):
    xp = _torch_padded(x, geo)
    dx, dw, db = torch.ops.aten.convolution_backward(
        dy, xp, weight, [geo.c_out] if need_db else None, list(geo.stride), list(geo.padding[:2]),
        list(geo.dilation), False, [0, 0], geo.groups, [need_dx, need_dw, need_db])
    if dx is not None and xp is not x:
        dx = dx[:, :, :geo.h, :geo.w]
    return dx, dw, db


# --- the dispatcher ------------------------------------------------------------------------------

DIRECTIONS = ("forward", "input_grad", "weight_grad")
POLICIES = ("auto", "triton", "torch")
_POLICY = "auto"


@dataclasses.dataclass
class Decision:
    """Which path computes one direction of one convolution shape, and why."""

    direction: str
    x: tuple
    weight: tuple
    stride: tuple
    padding: tuple
    dilation: tuple
    groups: int
    dtype: str
    layout: str
    tf32: bool
    path: str
    source: str  # "measured" | "cache" (measured earlier on this GPU) | "rule" | "policy"
    times_ms: dict = dataclasses.field(default_factory=dict)
    calls: int = 0

    def key(self) -> str:
        return _key_text(self.direction, self.x, self.weight, self.stride, self.padding, self.dilation,
                         self.groups, self.dtype, self.layout, self.tf32)


def _key_text(direction, x, weight, stride, padding, dilation, groups, dtype, layout, tf32) -> str:
    fmt = lambda t: "x".join(map(str, t))  # noqa: E731
    return (f"{direction} x={fmt(x)} w={fmt(weight)} s={fmt(stride)} p={fmt(padding)} d={fmt(dilation)} "
            f"g={groups} {dtype} {layout}" + (" tf32" if tf32 else ""))


_DECISIONS: dict[tuple, Decision] = {}
_DISK_CACHE: dict[str, dict] | None = None


@contextlib.contextmanager
def conv2d_dispatch(policy: str):
    """Within the block, :func:`conv2d` computes every direction on ``policy``'s paths:
    ``"auto"`` (the default: measured on a GPU, by rule under the interpreter), ``"triton"``
    (always the Triton path: depthwise when each group has one input channel, grouped otherwise,
    dense convolutions included), ``"torch"`` (always F.conv2d / cuDNN)."""
    global _POLICY
    if policy not in POLICIES:
        raise ValueError(f"policy: expected one of {', '.join(map(repr, POLICIES))}, got {policy!r}")
    saved, _POLICY = _POLICY, policy
    try:
        yield
    finally:
        _POLICY = saved


def conv2d_decisions(clear: bool = False) -> list[dict]:
    """Every decision taken in this process (path, why, the candidates' times, how many calls it
    served), as dicts; ``clear=True`` also forgets them (the per-GPU file is kept)."""
    out = [dataclasses.asdict(d) | {"key": d.key()} for d in _DECISIONS.values()]
    if clear:
        _DECISIONS.clear()
    return out


def cache_path() -> Path:
    default = Path.home() / ".cache" / "classic-cnn-bench" / "conv2d-dispatch.json"
    return Path(os.environ.get("KERNELS_CONV2D_CACHE", default))


def _gpu_signature(device: torch.device) -> str:
    name = torch.cuda.get_device_name(device)
    return f"{name} | torch {torch.__version__} | triton {triton.__version__}"


def _disk_cache() -> dict:
    global _DISK_CACHE
    if _DISK_CACHE is None:
        try:
            _DISK_CACHE = json.loads(cache_path().read_text())
        except (OSError, ValueError):
            _DISK_CACHE = {}
    return _DISK_CACHE


def _save_disk_cache() -> None:
    path = cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as f:
            json.dump(_disk_cache(), f, indent=1, sort_keys=True)
        os.replace(f.name, path)
    except OSError:
        pass  # a read-only home: decisions stay in memory for this process


def _triton_path(geo: Geometry) -> str:
    return "triton-depthwise" if geo.depthwise else "triton-grouped"


def _choose(direction: str, geo: Geometry, x: torch.Tensor, weight: torch.Tensor, candidates: dict) -> str:
    """The path for one direction: by policy, by rule, from the cache, or by timing
    ``candidates`` (path -> zero-argument callable) on the call's own tensors."""
    tf32 = x.dtype == torch.float32 and torch.backends.cudnn.allow_tf32
    layout = "channels_last" if _memory_format(x) == torch.channels_last else "nchw"
    seen = (direction, geo, x.dtype, layout, tf32, _POLICY)  # hashed every call: no text formatting
    decision = _DECISIONS.get(seen)
    if decision is None:
        fields = dict(direction=direction, x=tuple(x.shape), weight=tuple(weight.shape), stride=geo.stride,
                      padding=geo.padding, dilation=geo.dilation, groups=geo.groups, dtype=_common.DTYPES[x.dtype],
                      layout=layout, tf32=tf32)
        key = _key_text(**fields) + f" policy={_POLICY}"
        decision = Decision(**fields, **_decide(key, direction, geo, x, candidates))
        _DECISIONS[seen] = decision
    decision.calls += 1
    return decision.path


def _decide(key: str, direction: str, geo: Geometry, x: torch.Tensor, candidates: dict) -> dict:
    if _POLICY == "triton":
        return {"path": _triton_path(geo), "source": "policy"}
    if _POLICY == "torch":
        return {"path": "torch", "source": "policy"}
    if geo.groups == 1:
        return {"path": "torch", "source": "rule"}  # dense convolution: cuDNN's home ground
    if not _can_time(x):
        return {"path": _triton_path(geo), "source": "rule"}
    gpu = _gpu_signature(x.device)
    cached = _disk_cache().get(gpu, {}).get(key)
    if cached:
        return {"path": cached["path"], "source": "cache", "times_ms": cached["times_ms"]}
    times = _measure(direction, candidates)
    path = min(times, key=times.get)
    _disk_cache().setdefault(gpu, {})[key] = {"path": path, "times_ms": times}
    _save_disk_cache()
    return {"path": path, "source": "measured", "times_ms": times}


def _can_time(x: torch.Tensor) -> bool:
    """Not under the interpreter (no clock worth the name), nor while a CUDA graph is being
    captured (timing would break the capture): then the rule decides."""
    return x.device.type == "cuda" and not torch.cuda.is_current_stream_capturing()


def _measure(direction: str, candidates: dict) -> dict:
    """Median milliseconds of each candidate on the call's tensors (L2 flushed between runs);
    the first call of a Triton candidate runs its autotuning."""
    times = {}
    for path, fn in candidates.items():
        fn()
        times[path] = triton.testing.do_bench(fn, warmup=5, rep=25, return_mode="median")
    return times


def _forward(x, weight, bias, geo: Geometry):
    triton_fn = _depthwise_forward if geo.depthwise else _grouped_forward
    candidates = {_triton_path(geo): lambda: triton_fn(x, weight, bias, geo),
                  "torch": lambda: _torch_forward(x, weight, bias, geo)}
    return candidates[_choose("forward", geo, x, weight, candidates)]()


def _input_grad(dy, x, weight, geo: Geometry):
    triton_fn = _depthwise_input_grad if geo.depthwise else _grouped_input_grad
    candidates = {_triton_path(geo): lambda: triton_fn(dy, x, weight, geo),
                  "torch": lambda: _torch_backward(dy, x, weight, geo, True, False, False)[0]}
    return candidates[_choose("input_grad", geo, x, weight, candidates)]()


def _weight_grad(dy, x, weight, geo: Geometry, need_bias: bool):
    triton_fn = _depthwise_weight_grad if geo.depthwise else _grouped_weight_grad
    candidates = {_triton_path(geo): lambda: triton_fn(dy, x, weight, geo, need_bias),
                  "torch": lambda: _torch_backward(dy, x, weight, geo, False, True, need_bias)[1:]}
    return candidates[_choose("weight_grad", geo, x, weight, candidates)]()


# --- autograd ------------------------------------------------------------------------------------

class Conv2dFunction(torch.autograd.Function):
    """Saves x and the weight; each backward direction is dispatched on its own."""

    @staticmethod
    def forward(ctx, x, weight, bias, geo):
        ctx.save_for_backward(x, weight)
        ctx.geo = geo
        ctx.has_bias = bias is not None
        return _forward(x, weight, bias, geo)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dy):
        x, weight = ctx.saved_tensors
        geo = ctx.geo
        need_dx, need_dw, need_db = ctx.needs_input_grad[:3]
        need_db = need_db and ctx.has_bias
        dx = dw = db = None
        if need_dx:
            dx = _input_grad(dy, x, weight, geo)
        if need_dw or need_db:
            dw, db = _weight_grad(dy, x, weight, geo, need_db)
            dw = dw if need_dw else None
        return dx, dw, db, None


# --- public API ----------------------------------------------------------------------------------

def _pair(value, name: str, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints, each >= minimum (TypeError for a non-int, ValueError otherwise)."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    expected = f"{name}: expected an int >= {minimum} or a pair of them, got {value!r}"
    if any(isinstance(v, bool) or not isinstance(v, numbers.Integral) for v in items):
        raise TypeError(expected)
    if len(items) != 2 or min(items) < minimum:
        raise ValueError(expected)
    return int(items[0]), int(items[1])


def _check(x, weight, bias, stride, padding, dilation, groups) -> Geometry:
    _common.check_tensor(x, "x", ndim=4, layout="[N, C_in, H, W]")
    _common.check_tensor(weight, "weight", ndim=4, layout="[C_out, C_in/groups, kH, kW]", like=x)
    if weight.dtype != x.dtype:
        raise TypeError(f"weight: expected dtype {x.dtype} (the dtype of x), got {weight.dtype}")
    groups = _common.check_int(groups, "groups", minimum=1)
    n, c_in, h, w = x.shape
    c_out, cin_per_group, kh, kw = weight.shape
    if c_in % groups or c_out % groups:
        raise ValueError(f"groups: expected a divisor of both x's {c_in} input channels and weight's {c_out} "
                         f"output channels, got {groups}")
    if cin_per_group * groups != c_in or kh == 0 or kw == 0:
        raise ValueError(f"weight: expected shape [{c_out}, {c_in // groups}, kH >= 1, kW >= 1] (x's {c_in} channels "
                         f"/ groups={groups}), got {list(weight.shape)}")
    if bias is not None:
        _common.check_tensor(bias, "bias", like=x)
        if bias.dim() != 1 or bias.shape[0] != c_out:
            raise ValueError(f"bias: expected shape [{c_out}] (one value per output channel), got {list(bias.shape)}")
        if bias.dtype != x.dtype:
            raise TypeError(f"bias: expected dtype {x.dtype} (the dtype of x), got {bias.dtype}")
    args = [tuple(v) if isinstance(v, list) else v for v in (stride, padding, dilation)]
    try:
        hash(tuple(args))
    except TypeError:  # e.g. a dict: let the checks say what is wrong with it
        return _geometry.__wrapped__(tuple(x.shape), tuple(weight.shape), *args, groups)
    return _geometry(tuple(x.shape), tuple(weight.shape), *args, groups)


@functools.lru_cache(maxsize=4096)
def _geometry(x_shape, w_shape, stride, padding, dilation, groups) -> Geometry:
    """The shape arithmetic and its checks, once per distinct call signature (a network calls the
    same few; a check costs more than a small kernel's launch)."""
    n, c_in, h, w = x_shape
    c_out, _, kh, kw = w_shape
    stride = _pair(stride, "stride", 1)
    dilation = _pair(dilation, "dilation", 1)
    if isinstance(padding, str):
        if padding == "valid":
            pads = (0, 0, 0, 0)
        elif padding == "same":
            if stride != (1, 1):
                raise ValueError(f"padding: 'same' needs stride 1 (as in torch), got stride {stride}")
            total_h, total_w = dilation[0] * (kh - 1), dilation[1] * (kw - 1)
            pads = (total_h // 2, total_w // 2, total_h - total_h // 2, total_w - total_w // 2)
        else:
            raise ValueError(f"padding: expected an int >= 0, a pair of them, 'same' or 'valid', got {padding!r}")
    else:
        ph, pw = _pair(padding, "padding", 0)
        pads = (ph, pw, ph, pw)
    h_out = (h + pads[0] + pads[2] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    w_out = (w + pads[1] + pads[3] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    if h_out < 1 or w_out < 1:
        raise ValueError(f"x: expected a padded input at least as large as the dilated kernel "
                         f"({dilation[0] * (kh - 1) + 1}x{dilation[1] * (kw - 1) + 1}), got {h}x{w} with padding {pads}")
    return Geometry(n, c_in, h, w, c_out, kh, kw, stride, pads, dilation, groups, h_out, w_out)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution with the semantics of ``torch.nn.functional.conv2d`` (cross-correlation):

    ``y[n, o, i, j] = b[o] + sum_{c, u, v} x[n, g*C_in/groups + c, i*s_h - p_top + u*d_h,
    j*s_w - p_left + v*d_w] * w[o, c, u, v]`` with ``g = o // (C_out/groups)`` and zero padding.

    ``x``: ``[N, C_in, H, W]``; ``weight``: ``[C_out, C_in/groups, kH, kW]``; ``bias``: ``[C_out]`` or
    None; all float32, float16 or bfloat16 alike, any strides (contiguous NCHW and channels_last
    need no copy). ``stride``/``dilation``: int >= 1 or a pair; ``padding``: int >= 0, a pair,
    ``'valid'`` or ``'same'`` (stride 1; an odd total padding puts the extra row/column at the
    bottom/right, as torch does). ``groups`` divides C_in and C_out. The output has x's dtype and
    memory format; arithmetic is fp32 (fp32 inputs: tf32 products if
    ``torch.backends.cudnn.allow_tf32``). Inside ``torch.autocast`` all three are cast to the
    autocast dtype first, as F.conv2d's are. Differentiable in x, weight and bias (first order).
    Each direction runs on the path :func:`conv2d_decisions` records (see the module docstring).
    """
    x, weight, bias = _autocast(x, weight, bias)
    geo = _check(x, weight, bias, stride, padding, dilation, groups)
    return Conv2dFunction.apply(x, weight, bias, geo)


def _autocast(x, weight, bias):
    """Inside ``torch.autocast`` F.conv2d computes in the autocast dtype (its inputs cast, the
    casts differentiable); a custom op is not on autocast's list, so it casts for itself."""
    if not isinstance(x, torch.Tensor) or x.device.type not in ("cuda", "cpu") \
            or not torch.is_autocast_enabled(x.device.type):
        return x, weight, bias
    dtype = torch.get_autocast_dtype(x.device.type)
    cast = lambda t: t.to(dtype) if isinstance(t, torch.Tensor) and t.is_floating_point() else t  # noqa: E731
    return cast(x), cast(weight), cast(bias)


# --- module twin -----------------------------------------------------------------------------------

class TritonConv2d(nn.Conv2d):
    """The twin of ``nn.Conv2d`` on :func:`conv2d`: same parameters, keys and ``extra_repr``;
    non-zero ``padding_mode`` pads first, as ``nn.Conv2d`` does."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding_mode != "zeros":
            x = F.pad(x, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)
        return conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


# Dense convolution stays with cuDNN; every grouped and depthwise one is swapped.
register_swap("conv2d", "torch.nn:Conv2d", TritonConv2d, when=lambda m: m.groups > 1)


# --- compile check -------------------------------------------------------------------------------

def compile_cases():
    """Every kernel per dtype and layout at ResNeXt-50's first-stage grouped 3x3 (128 channels,
    32 groups, 56x56, batch 64) and its depthwise counterpart (groups = channels)."""
    from .compile_check import Case, ptr

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
