"""Grouped convolution (any groups with more than one input channel per group): ResNeXt's 4-64
channels per group on packed block-diagonal tiles, and AlexNet's large groups on a general
implicit GEMM; both with every shape constant compiled in.

Dispatch inside this module, by channels per group (``_packed``): with ``CIG``/``COG`` the input
and output channels per group, each padded to a power of two (``CIG_P``/``COG_P``: 3 -> 4, 6 -> 8,
12 -> 16, for ``tl.arange``), a tile packs ``GPB = max(1, 16 / CIG_P, 16 / COG_P)`` groups so that
both of its tensor-core dimensions reach 16 (``tl.dot``'s minimum). When both packed widths are
at most 64 (ResNeXt 32x4d and 32x8d, SE-ResNeXt: 4-64 channels a group) the packed kernels below
run; otherwise (AlexNet's two groups of 48-192) the general implicit GEMM (``_grouped_conv_kernel``,
``_grouped_wgrad_kernel``), for layers bound by their tensor-core work.

The general kernels (channels per group, kernel, stride, padding, dilation and spatial sizes
``tl.constexpr``, as in the packed ones):

* **Forward and input gradient** ``_grouped_conv_kernel``: a CTA owns ``BLOCK_M`` pixels x
  ``BLOCK_N`` destination channels of one group (grid axis 1 is group-major), so its reduction
  is that group's source channels x taps in ``BLOCK_K`` chunks, a compile-time trip count, and
  no tile multiplies across groups. The weight is laid out once per weight version with the
  destination channels contiguous (``_gemm_weight``), so both operands stream as 16-byte async
  copies. bf16/fp16 take K = 64 a step; fp32 (3xTF32 products) K = 16.
* **Weight gradient** ``_grouped_wgrad_kernel``: a program per (pixel chunk, output-channel block,
  tap), fp32 partials merged once; the bias gradient comes from the dy tiles the tap-0 programs
  load anyway. The chunk count gives about four programs an SM at the widest config's blocks.

The packed kernels:

* **Forward** ``_packed_conv_kernel``: a CTA owns ``BLOCK_M`` output pixels x one packed tile of
  ``GPB`` groups (neighbouring programs: the same pixels, the next groups, so a pixel's halo is
  read from DRAM once and from L2 after). Channels per group, kernel, stride, padding, dilation
  and the spatial sizes are ``tl.constexpr`` (one compilation per layer shape: a network has a
  handful): the source tile ``[BLOCK_M, GPB * CIG]`` is a contiguous channels_last slab read as
  16-byte vectors, every division of the index arithmetic folds to multiplies and shifts, and
  the tap loop is software-pipelined (async copies). Per tap one ``[BLOCK_M, BK] @ [BK, BN]``
  product with a block-diagonal weight tile; the weight is packed once per weight version
  (``_pack_weight_kernel``: ``[tiles, taps, BK, BN]``, zeros across groups, a few hundred KB at
  most, read by every program from L2 as one unmasked vector per thread and tap; cached by
  ``geometry.DerivedWeights``, so repacked only after an update).
* **Input gradient**, the same kernel with ``DGRAD``: stride-phase decomposition. Each phase
  ``(ih mod s_h, iw mod s_w)`` of dx (grid axis 1) is a dense convolution of dy over just the taps
  whose ``ih + pad - kh * d`` divides by the stride (``kh = kh0 + j * s / gcd(s, d)``, ``kh0``
  found once per CTA from the phase); a 3x3 stride-2 layer runs 1, 2, 2 and 4 taps in its four
  phases, 2.25 on average, not 9, and a phase that no tap hits stores zeros. A phase's source
  row is ``i + (ph + pad - kh * d) / s``, an exact division of scalars.
* **Weight gradient**, all taps of a tile of groups in one CTA, over a contiguous chunk of pixel
  tiles (whole rows of one image: no division per pixel), fp32 partials per chunk merged by one
  deterministic sum (``geometry.merge_partials``), the bias gradient from the same programs.
  Stride 1 along rows (``_packed_wgrad_rows_kernel``): over input rows ``r`` and output columns,
  ``acc[(kh, o), (kw, i)] += dy[r - kh*d, ow, o] * x[r - pad, ow + kw*d - pad, i]``: each operand
  gathered over one kernel axis (``KH_P + KW_P`` slots a pixel). Otherwise
  (``_packed_wgrad_kernel``): per pixel tile dy once and the taps' shifted x tiles as one im2col
  tile ``[BLOCK_M, TB * BK]`` (``TB``: all taps, up to 16 slots of 16 packed channels).
  Either way x and dy come from memory once per chunk, not once per tap. The chunks number
  about four programs per SM over all programs (``_wgrad_chunks``: two left a 132-SM GPU with
  one short wave; the partials stay ~1% of the bytes).

fp32 inputs use tf32 products when ``torch.backends.cudnn.allow_tf32`` is on, like cuDNN, and
fp32-accurate ones when it is off (3xTF32: see ``_dot``).

Bytes and FLOPs (the contract: input, weight and output once per direction):
``bytes = (|x| + |w| + |y|) * itemsize``, ``FLOPs = 2 * N * C_out * H_out * W_out * CIG * kh * kw``.
Example, ResNeXt-50 32x4d's stage-2 stride-2 3x3 at batch 64 (x = 64x256x56x56, y = 64x256x28x28,
g = 32, bf16): 103 + 26 MB = 128.5 MB a direction, 30 us at 4.25 TB/s; 1.85 GFLOP useful, 3.7 on
16-wide tiles of two groups (2 us of dense bf16). Every direction is bound by its bytes, so the
kernels spend their instructions on wide loads and few index computations per byte.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from .. import _common
from .geometry import (DerivedWeights, Geometry, ieee_products, memory_format, merge_partials, needs_int64, pixel,
                       split_count, stride_args, tap_source)


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


# --- packed kernels: 4-64 channels per group ------------------------------------------------------

@triton.jit
def _pack_weight_kernel(W, WP, GROUPS, swo, swi, swh, sww, CIG: tl.constexpr, COG: tl.constexpr,
                        CIG_P: tl.constexpr, COG_P: tl.constexpr, GPB: tl.constexpr, KH: tl.constexpr,
                        KW: tl.constexpr, TRANSPOSED: tl.constexpr):
    """WP[tile, tap] = the block-diagonal [BK, BN] weight of tile's GPB groups at one tap, zeros
    across groups and in the padding lanes. Forward: rows are input channels (BK = GPB * CIG_P),
    columns output channels; TRANSPOSED (the input gradient): rows are output channels."""
    pid = tl.program_id(0)
    tile = pid // (KH * KW)
    tap = pid % (KH * KW)
    if TRANSPOSED:
        RP: tl.constexpr = COG_P
        CP: tl.constexpr = CIG_P
    else:
        RP: tl.constexpr = CIG_P
        CP: tl.constexpr = COG_P
    r = tl.arange(0, GPB * RP)
    c = tl.arange(0, GPB * CP)
    g = tile * GPB + r // RP
    same = ((r // RP)[:, None] == (c // CP)[None, :]) & (g < GROUPS)[:, None]
    if TRANSPOSED:
        co = (r % RP)[:, None]
        ci = (c % CP)[None, :]
    else:
        ci = (r % RP)[:, None]
        co = (c % CP)[None, :]
    valid = same & (ci < CIG) & (co < COG)
    src = W + (g[:, None] * COG + co) * swo + ci * swi + (tap // KW) * swh + (tap % KW) * sww
    val = tl.load(src, mask=valid, other=0.0)
    tl.store(WP + pid * (GPB * RP * GPB * CP) + r[:, None] * (GPB * CP) + c[None, :], val)


@triton.jit
def _channels(tile, GROUPS, CPG: tl.constexpr, CPG_P: tl.constexpr, GPB: tl.constexpr):
    """The tensor channels of a packed tile's GPB * CPG_P lanes, and which lanes exist. With
    CPG a power of two the lanes are one contiguous run (16-byte vectors in channels_last)."""
    lane = tl.arange(0, GPB * CPG_P)
    if CPG == CPG_P:
        ch = tile * (GPB * CPG) + lane
        ok = ch < GROUPS * CPG
    else:
        g = tile * GPB + lane // CPG_P
        ch = g * CPG + lane % CPG_P
        ok = (g < GROUPS) & (lane % CPG_P < CPG)
    return ch, ok


CONV_CONFIGS = [
    # two stages: three spill on sm_80 (fp32 input gradient) for no predicted gain
    triton.Config({"BLOCK_M": 128}, num_warps=4, num_stages=2),
    triton.Config({"BLOCK_M": 64}, num_warps=4, num_stages=4),
]
CONV_KEY = ["N", "H_DST", "W_DST", "GROUPS", "CIG", "COG", "KH", "KW", "S_H", "S_W", "DGRAD"]  # + the layouts
CONV_INTERPRETER = triton.Config({"BLOCK_M": 128}, num_warps=4)


@_common.autotune(CONV_CONFIGS, key=CONV_KEY, interpreter_config=CONV_INTERPRETER)
@triton.jit
def _packed_conv_kernel(SRC, WP, B, DST, N, GROUPS, ssn, ssc, ssh, ssw, sdn, sdc, sdh, sdw, H_SRC: tl.constexpr,
                        W_SRC: tl.constexpr, H_DST: tl.constexpr, W_DST: tl.constexpr, CIG: tl.constexpr,
                        COG: tl.constexpr, CIG_P: tl.constexpr, COG_P: tl.constexpr,
                        GPB: tl.constexpr, KH: tl.constexpr, KW: tl.constexpr, S_H: tl.constexpr,
                        S_W: tl.constexpr, PAD_H: tl.constexpr, PAD_W: tl.constexpr, DIL_H: tl.constexpr,
                        DIL_W: tl.constexpr, STEP_H: tl.constexpr, STEP_W: tl.constexpr, DGRAD: tl.constexpr,
                        HAS_BIAS: tl.constexpr, IEEE: tl.constexpr, BIG: tl.constexpr, BLOCK_M: tl.constexpr):
    """One [BLOCK_M pixels, BN channels] tile of DST for one packed tile of GPB groups.

    Forward: SRC = x, DST = y, DST pixel (i, j) reads SRC at (i*s - pad + kh*d, ...), every tap.
    DGRAD: SRC = dy, DST = dx; axis 1 is the stride phase (ph, pw), and the tile's pixels are the
    phase's dx pixels (ph + s*i, pw + s*j), which read dy at (i + (ph + pad - kh*d) / s, ...) for
    the taps where that divides. Either way the source offset of a tap is the tile's per-pixel
    offset plus one scalar, and its mask four compares against scalars."""
    if DGRAD:
        CS: tl.constexpr = COG  # source (dy) and destination (dx) channels per group
        CS_P: tl.constexpr = COG_P
        CD: tl.constexpr = CIG
        CD_P: tl.constexpr = CIG_P
    else:
        CS: tl.constexpr = CIG
        CS_P: tl.constexpr = CIG_P
        CD: tl.constexpr = COG
        CD_P: tl.constexpr = COG_P
    BK: tl.constexpr = GPB * CS_P
    BN: tl.constexpr = GPB * CD_P
    n_tiles = tl.cdiv(GROUPS, GPB)
    pid = tl.program_id(0)
    tile_m = pid // n_tiles  # neighbouring programs share pixels: their halos meet in L2
    tile = pid % n_tiles
    if DGRAD:
        phase = tl.program_id(1)
        ph = phase // S_W
        pw = phase % S_W
        # every phase on the grid of phase (0, 0), the largest: the others mask a last row or column
        HP: tl.constexpr = (H_DST + S_H - 1) // S_H
        WP_: tl.constexpr = (W_DST + S_W - 1) // S_W
    else:
        ph = 0
        pw = 0
        HP: tl.constexpr = H_DST
        WP_: tl.constexpr = W_DST
    rows = tile_m * BLOCK_M + tl.arange(0, BLOCK_M)
    n, i, j = pixel(rows, HP, WP_, BIG)  # constant divisors: multiplies and shifts
    rmask = rows < N * (HP * WP_)
    if DGRAD:
        rmask = rmask & (ph + i * S_H < H_DST) & (pw + j * S_W < W_DST)
    src_ch, src_ok = _channels(tile, GROUPS, CS, CS_P, GPB)
    src_row = n * ssn
    if DGRAD:
        # the taps that hit this phase: kh = kh0 + t * STEP_H (STEP = s / gcd(s, d)), none if no
        # kh < STEP solves kh * d = ph + pad (mod s); numerators kept >= 0 for %
        kh0 = KH  # none
        for t in tl.static_range(STEP_H - 1, -1, -1):
            kh0 = tl.where((ph + PAD_H + S_H * DIL_H * STEP_H - t * DIL_H) % S_H == 0, t, kh0)
        kw0 = KW
        for t in tl.static_range(STEP_W - 1, -1, -1):
            kw0 = tl.where((pw + PAD_W + S_W * DIL_W * STEP_W - t * DIL_W) % S_W == 0, t, kw0)
        nkh = tl.where(kh0 < KH, (KH - kh0 + STEP_H - 1) // STEP_H, 0)
        nkw = tl.where(kw0 < KW, (KW - kw0 + STEP_W - 1) // STEP_W, 0)
        n_taps = nkh * nkw
        ih = i
        iw = j
    else:
        n_taps = KH * KW
        ih = i * S_H
        iw = j * S_W
    acc = tl.zeros([BLOCK_M, BN], dtype=tl.float32)
    kk = tl.arange(0, BK)
    nn = tl.arange(0, BN)
    if DGRAD:
        kh = kh0
        kw = kw0
    for t in range(0, n_taps):
        if DGRAD:
            # the phase's taps row by row, kept as a running (kh, kw): no division per tap
            # exact divisions (kept >= 0 by adding a multiple of s: // truncates on the GPU)
            dh = (ph + PAD_H - kh * DIL_H + S_H * DIL_H * KH) // S_H - DIL_H * KH
            dw = (pw + PAD_W - kw * DIL_W + S_W * DIL_W * KW) // S_W - DIL_W * KW
        else:
            kh = t // KW
            kw = t % KW
            dh = kh * DIL_H - PAD_H
            dw = kw * DIL_W - PAD_W
        sh = ih + dh
        sw = iw + dw
        valid = rmask & (sh >= 0) & (sh < H_SRC) & (sw >= 0) & (sw < W_SRC)
        a = tl.load(SRC + ((src_row + sh * ssh + sw * ssw)[:, None] + (src_ch * ssc)[None, :]),
                    mask=valid[:, None] & src_ok[None, :], other=0.0)
        b = tl.load(WP + (tile * (KH * KW) + kh * KW + kw) * (BK * BN) + kk[:, None] * BN + nn[None, :])
        acc = _dot(a, b, acc, IEEE)
        if DGRAD:
            wrap = kw + STEP_W >= KW
            kh = tl.where(wrap, kh + STEP_H, kh)
            kw = tl.where(wrap, kw0, kw + STEP_W)
    dst_ch, dst_ok = _channels(tile, GROUPS, CD, CD_P, GPB)
    if HAS_BIAS:
        acc += tl.load(B + dst_ch, mask=dst_ok, other=0.0).to(tl.float32)[None, :]
    if DGRAD:
        oh = ph + i * S_H
        ow = pw + j * S_W
    else:
        oh = i
        ow = j
    dst = DST + ((n * sdn + oh * sdh + ow * sdw)[:, None] + (dst_ch * sdc)[None, :])
    tl.store(dst, acc.to(DST.dtype.element_ty), mask=rmask[:, None] & dst_ok[None, :])


# fp32 operands take the smaller tiles only: 3xTF32 splits each operand in two, and the larger
# ones spill (ptxas, sm_80 and sm_90a); the im2col kernel's fp32 tile in two stages, not three
# (102 KB of shared memory in three). The rows kernel adds a 64-pixel tile (16-bit only).
WGRAD_CONFIGS = [
    triton.Config({"BLOCK_M": 32}, num_warps=8, num_stages=3),
    triton.Config({"BLOCK_M": 32}, num_warps=4, num_stages=3),
]
WGRAD_FP32_CONFIGS = [triton.Config({"BLOCK_M": 32}, num_warps=8, num_stages=2)]
ROWS_CONFIGS = [triton.Config({"BLOCK_M": 64}, num_warps=8, num_stages=3)] + WGRAD_CONFIGS
ROWS_FP32_CONFIGS = WGRAD_CONFIGS
WGRAD_KEY = ["N", "H_OUT", "W_OUT", "GROUPS", "CIG", "COG", "KH", "KW", "S_H", "S_W", "CHUNKS"]  # + the layouts
WGRAD_INTERPRETER = triton.Config({"BLOCK_M": 64}, num_warps=4)


@triton.jit
def _packed_wgrad_kernel(X, DY, WS, DBS, N, GROUPS, CHUNKS, sxn, sxc, sxh, sxw, sdn, sdc, sdh, sdw, H: tl.constexpr,
                         WD: tl.constexpr, H_OUT: tl.constexpr, W_OUT: tl.constexpr, W_OUT_P: tl.constexpr,
                         CIG: tl.constexpr, COG: tl.constexpr, CIG_P: tl.constexpr, COG_P: tl.constexpr,
                         GPB: tl.constexpr, TB: tl.constexpr, KH: tl.constexpr, KW: tl.constexpr,
                         S_H: tl.constexpr, S_W: tl.constexpr, PAD_H: tl.constexpr, PAD_W: tl.constexpr,
                         DIL_H: tl.constexpr, DIL_W: tl.constexpr, HAS_BIAS: tl.constexpr, IEEE: tl.constexpr,
                         BIG: tl.constexpr, BLOCK_M: tl.constexpr):
    """Partial weight gradient of one (packed tile of groups, block of TB taps, pixel chunk):
    WS[chunk, o, i, tap] = sum_p dy[p, o] * x[src(p, tap), g(o)*CIG + i] (fp32
    [CHUNKS, C_out, CIG, KH*KW]); with a bias, the tap block 0 also writes DBS[chunk, o] =
    sum_p dy[p, o]. Per pixel tile: dy once, the TB taps' x tiles as one im2col tile, one product.
    A chunk is a contiguous run of pixel tiles (chunk c: tiles [c*T/CHUNKS, (c+1)*T/CHUNKS))."""
    BK: tl.constexpr = GPB * CIG_P
    BN: tl.constexpr = GPB * COG_P
    TAPS: tl.constexpr = KH * KW
    # pixel tiles of TH output rows x TW columns of one image: no division per pixel
    TW: tl.constexpr = BLOCK_M if W_OUT_P >= BLOCK_M else W_OUT_P
    TH: tl.constexpr = BLOCK_M // TW
    CB: tl.constexpr = (W_OUT + TW - 1) // TW
    RB: tl.constexpr = (H_OUT + TH - 1) // TH
    n_tiles = tl.cdiv(GROUPS, GPB)
    pid = tl.program_id(0)
    tile = pid % n_tiles
    tb = pid // n_tiles
    chunk = tl.program_id(1)
    m_tiles = N * (RB * CB)
    first = (chunk * m_tiles) // CHUNKS
    last = ((chunk + 1) * m_tiles) // CHUNKS
    x_ch, x_ok = _channels(tile, GROUPS, CIG, CIG_P, GPB)
    dy_ch, dy_ok = _channels(tile, GROUPS, COG, COG_P, GPB)
    tap = tb * TB + tl.arange(0, TB)
    tap_ok = tap < TAPS
    dh = (tap // KW) * DIL_H - PAD_H  # [TB]: each tap's source offset from (oh*s, ow*s)
    dw = (tap % KW) * DIL_W - PAD_W
    acc = tl.zeros([BN, TB * BK], dtype=tl.float32)
    dsum = tl.zeros([BLOCK_M, BN], dtype=tl.float32)  # reduced over pixels once, at the end
    pix = tl.arange(0, BLOCK_M)
    for mt in range(first, last):
        n = mt // (RB * CB)
        rc = mt % (RB * CB)
        oh = (rc // CB) * TH + pix // TW
        ow = (rc % CB) * TW + pix % TW
        pmask = (oh < H_OUT) & (ow < W_OUT)
        if BIG:
            n = n.to(tl.int64)
        dy_t = tl.load(DY + ((n * sdn + oh * sdh + ow * sdw)[:, None] + (dy_ch * sdc)[None, :]),
                       mask=pmask[:, None] & dy_ok[None, :], other=0.0)
        ih = (oh * S_H)[:, None] + dh[None, :]  # [BLOCK_M, TB]
        iw = (ow * S_W)[:, None] + dw[None, :]
        valid = pmask[:, None] & tap_ok[None, :] & (ih >= 0) & (ih < H) & (iw >= 0) & (iw < WD)
        off = (n * sxn)[:, None] + ih * sxh + iw * sxw
        xt = tl.load(X + (off[:, :, None] + (x_ch * sxc)[None, None, :]),
                     mask=valid[:, :, None] & x_ok[None, None, :], other=0.0)
        acc = _dot(tl.trans(dy_t), tl.reshape(xt, [BLOCK_M, TB * BK]), acc, IEEE)
        if HAS_BIAS:
            dsum += dy_t.to(tl.float32)
    # keep the diagonal blocks: output lane (gj, o) with input lane (gi, i) of the same group
    acc3 = tl.reshape(acc, [BN, TB, BK])
    r = tl.arange(0, BN)
    c = tl.arange(0, BK)
    same = ((r // COG_P)[:, None] == (c // CIG_P)[None, :]) & dy_ok[:, None] & ((c % CIG_P) < CIG)[None, :]
    ws = WS + ((chunk * GROUPS * COG + dy_ch[:, None, None]) * CIG + (c % CIG_P)[None, None, :]) * TAPS \
        + tap[None, :, None]
    tl.store(ws, acc3, mask=same[:, None, :] & tap_ok[None, :, None])
    if HAS_BIAS:
        if tb == 0:
            tl.store(DBS + chunk * GROUPS * COG + dy_ch, tl.sum(dsum, axis=0), mask=dy_ok)

@triton.jit
def _packed_wgrad_rows_kernel(X, DY, WS, DBS, N, GROUPS, CHUNKS, sxn, sxc, sxh, sxw, sdn, sdc, sdh, sdw,
                              H: tl.constexpr, WD: tl.constexpr, H_OUT: tl.constexpr, W_OUT: tl.constexpr,
                              W_OUT_P: tl.constexpr, CIG: tl.constexpr, COG: tl.constexpr, CIG_P: tl.constexpr,
                              COG_P: tl.constexpr, GPB: tl.constexpr, KH: tl.constexpr, KW: tl.constexpr,
                              S_H: tl.constexpr, S_W: tl.constexpr, PAD_H: tl.constexpr, PAD_W: tl.constexpr,
                              DIL_H: tl.constexpr, DIL_W: tl.constexpr, KHB: tl.constexpr, KW_P: tl.constexpr,
                              HAS_BIAS: tl.constexpr, IEEE: tl.constexpr, BIG: tl.constexpr, BLOCK_M: tl.constexpr):
    """The weight gradient of a stride-1 row axis with the kernel's rows in the product's M and
    its columns in N: over input rows r (x row r - pad) and output columns,
    acc[(kh, o), (kw, i)] += dy[r - kh*d, ow, o] * x[r - pad, ow*s + kw*d - pad, i].
    Each operand is gathered over one kernel axis only (KH_P + KW_P slots a pixel, not
    KH*KW padded to a power of two), and every tap comes out of one [KH_P*BN, KW_P*BK] product.
    Same partials as ``_packed_wgrad_kernel``; the bias sum from a plain dy tile."""
    BK: tl.constexpr = GPB * CIG_P
    BN: tl.constexpr = GPB * COG_P
    TAPS: tl.constexpr = KH * KW
    HE: tl.constexpr = H_OUT + (KH - 1) * DIL_H  # rows r = oh + kh*d
    TW: tl.constexpr = BLOCK_M if W_OUT_P >= BLOCK_M else W_OUT_P
    TH: tl.constexpr = BLOCK_M // TW
    CB: tl.constexpr = (W_OUT + TW - 1) // TW
    RB: tl.constexpr = (HE + TH - 1) // TH
    n_tiles = tl.cdiv(GROUPS, GPB)
    tile = tl.program_id(0) % n_tiles
    khb = tl.program_id(0) // n_tiles  # this program's KHB kernel rows (all of them, but for wide groups)
    chunk = tl.program_id(1)
    m_tiles = N * (RB * CB)
    first = (chunk * m_tiles) // CHUNKS
    last = ((chunk + 1) * m_tiles) // CHUNKS
    x_ch, x_ok = _channels(tile, GROUPS, CIG, CIG_P, GPB)
    dy_ch, dy_ok = _channels(tile, GROUPS, COG, COG_P, GPB)
    kh = khb * KHB + tl.arange(0, KHB)
    kw = tl.arange(0, KW_P)
    acc = tl.zeros([KHB * BN, KW_P * BK], dtype=tl.float32)
    dsum = tl.zeros([BLOCK_M, BN], dtype=tl.float32)  # reduced over pixels once, at the end
    pix = tl.arange(0, BLOCK_M)
    for mt in range(first, last):
        n = mt // (RB * CB)
        rc = mt % (RB * CB)
        r = (rc // CB) * TH + pix // TW
        ow = (rc % CB) * TW + pix % TW
        if BIG:
            n = n.to(tl.int64)
        col_ok = ow < W_OUT
        oh = r[:, None] - kh[None, :] * DIL_H  # [BLOCK_M, KHB]
        dy_ok2 = col_ok[:, None] & (kh < KH)[None, :] & (oh >= 0) & (oh < H_OUT)
        dy_off = (n * sdn + ow * sdw)[:, None] + oh * sdh
        a = tl.load(DY + (dy_off[:, :, None] + (dy_ch * sdc)[None, None, :]),
                    mask=dy_ok2[:, :, None] & dy_ok[None, None, :], other=0.0)
        ih = r - PAD_H
        iw = (ow * S_W - PAD_W)[:, None] + kw[None, :] * DIL_W  # [BLOCK_M, KW_P]
        x_ok2 = (col_ok & (r < HE) & (ih >= 0) & (ih < H))[:, None] & (kw < KW)[None, :] & (iw >= 0) & (iw < WD)
        x_off = (n * sxn + ih * sxh)[:, None] + iw * sxw
        b = tl.load(X + (x_off[:, :, None] + (x_ch * sxc)[None, None, :]),
                    mask=x_ok2[:, :, None] & x_ok[None, None, :], other=0.0)
        acc = _dot(tl.trans(tl.reshape(a, [BLOCK_M, KHB * BN])), tl.reshape(b, [BLOCK_M, KW_P * BK]), acc, IEEE)
        if HAS_BIAS:
            pm = col_ok & (r < H_OUT)
            dy_t = tl.load(DY + ((n * sdn + r * sdh + ow * sdw)[:, None] + (dy_ch * sdc)[None, :]),
                           mask=pm[:, None] & dy_ok[None, :], other=0.0)
            dsum += dy_t.to(tl.float32)
    # keep the diagonal blocks of real taps: (kh, output lane of group gj) x (kw, input lane of gj)
    acc4 = tl.reshape(acc, [KHB, BN, KW_P, BK])
    o = tl.arange(0, BN)
    c = tl.arange(0, BK)
    same = ((o // COG_P)[:, None] == (c // CIG_P)[None, :]) & dy_ok[:, None] & ((c % CIG_P) < CIG)[None, :]
    tap_ok = (kh < KH)[:, None] & (kw < KW)[None, :]  # [KHB, KW_P]
    base = (chunk * GROUPS * COG + dy_ch[:, None]) * CIG + (c % CIG_P)[None, :]  # [BN, BK]
    ws = WS + base[None, :, None, :] * TAPS + (kh * KW)[:, None, None, None] + kw[None, None, :, None]
    tl.store(ws, acc4, mask=same[None, :, None, :] & tap_ok[:, None, :, None])
    if HAS_BIAS:
        if khb == 0:
            tl.store(DBS + chunk * GROUPS * COG + dy_ch, tl.sum(dsum, axis=0), mask=dy_ok)


_packed_wgrad_rows_kernel_fp32 = _common.autotune(ROWS_FP32_CONFIGS, key=WGRAD_KEY,
                                                  interpreter_config=WGRAD_INTERPRETER)(_packed_wgrad_rows_kernel)
_packed_wgrad_rows_kernel = _common.autotune(ROWS_CONFIGS, key=WGRAD_KEY,
                                             interpreter_config=WGRAD_INTERPRETER)(_packed_wgrad_rows_kernel)
_packed_wgrad_kernel_fp32 = _common.autotune(WGRAD_FP32_CONFIGS, key=WGRAD_KEY,
                                             interpreter_config=WGRAD_INTERPRETER)(_packed_wgrad_kernel)
_packed_wgrad_kernel = _common.autotune(WGRAD_CONFIGS, key=WGRAD_KEY,
                                        interpreter_config=WGRAD_INTERPRETER)(_packed_wgrad_kernel)


# --- the general implicit GEMM: large groups (AlexNet's 48-192 channels per group) -----------------

# [BLOCK_M pixels, BLOCK_N output channels], reduction chunk BLOCK_K channels: wide tiles for
# groups wider than 64 packed lanes. bf16/fp16: K = 64, so that a step's tensor-core work (a
# 64x128x64 wgmma a warpgroup) outweighs its ~100 instructions of addressing and pipeline
# bookkeeping (at K = 16 the loop issues 4x as many steps and is bound by them). fp32 operands
# (three products each, in _dot) spill at K = 32: K = 16 and 8 warps.
GROUPED_CONFIGS = [
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 128, "BLOCK_K": 64}, num_warps=8, num_stages=3),
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 64, "BLOCK_K": 32}, num_warps=8, num_stages=3),
]
GROUPED_FP32_CONFIGS = [
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 64, "BLOCK_K": 16}, num_warps=8, num_stages=3),
    triton.Config({"BLOCK_M": 64, "BLOCK_N": 128, "BLOCK_K": 16}, num_warps=8, num_stages=3),
]
# GROUPS sets only the grid, but the best tile for 2 groups (AlexNet) need not be the best for 3
GROUPED_KEY = ["M", "GROUPS", "CPG_SRC", "CPG_DST", "KH", "KW", "stride_h"]  # + the layouts (_common.autotune)
GROUPED_INTERPRETER = triton.Config({"BLOCK_M": 128, "BLOCK_N": 128, "BLOCK_K": 64}, num_warps=4)


@triton.jit
def _grouped_conv_kernel(SRC, W, B, DST, M, GROUPS, ssn, ssc, ssh, ssw, swo, swi, swh, sww, sdn, sdc, sdh, sdw,
                         H_SRC: tl.constexpr, W_SRC: tl.constexpr, H_DST: tl.constexpr, W_DST: tl.constexpr,
                         KH: tl.constexpr, KW: tl.constexpr, stride_h: tl.constexpr, stride_w: tl.constexpr,
                         pad_h: tl.constexpr, pad_w: tl.constexpr, dil_h: tl.constexpr, dil_w: tl.constexpr,
                         CPG_SRC: tl.constexpr, CPG_DST: tl.constexpr, DGRAD: tl.constexpr, HAS_BIAS: tl.constexpr,
                         IEEE: tl.constexpr, BIG: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                         BLOCK_K: tl.constexpr):
    """One [BLOCK_M, BLOCK_N] tile of DST = conv(SRC) as an implicit GEMM over taps x channels.

    Forward (DGRAD=False): SRC = x, DST = y; DST pixel (oh, ow) reads SRC at oh*s - pad + kh*d.
    Input gradient (DGRAD=True): SRC = dy, DST = dx, the transposed convolution: DST pixel
    (ih, iw) reads SRC at (ih + pad - kh*d) / s where that divides. M = DST pixels (N*H*W);
    GROUPS (the autotune key's, not the code's) and CPG_* = channels per group. A tile's channels lie in one group (axis 1: group-major,
    ``cdiv(CPG_DST, BLOCK_N)`` tiles a group), so its reduction is that group's ``CPG_SRC``
    channels x taps, a compile-time trip count, with no product across groups. The weight
    (``_gemm_weight``) is w[C_out, C_in/g, kh, kw] with the destination channels contiguous:
    B[k, n] = w[g*CPG_DST + n, k] forward, w[g*CPG_SRC + k, n] transposed.
    """
    TILES_N: tl.constexpr = (CPG_DST + BLOCK_N - 1) // BLOCK_N
    K_STEPS: tl.constexpr = (CPG_SRC + BLOCK_K - 1) // BLOCK_K
    pid_m = tl.program_id(0)
    g = tl.program_id(1) // TILES_N
    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    j = (tl.program_id(1) % TILES_N) * BLOCK_N + tl.arange(0, BLOCK_N)  # channels within the group
    rmask = rows < M
    cmask = j < CPG_DST
    n, oh, ow = pixel(rows, H_DST, W_DST, BIG)
    src_px = n * ssn + g * CPG_SRC * ssc  # each row's image and the group's first channel
    acc = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
    # One flat loop over (tap, channel chunk): few values live across iterations, and one loop
    # for the pipeliner to overlap loads with the tensor-core work.
    for step in range(0, KH * KW * K_STEPS):
        tap = step // K_STEPS
        kh = tap // KW
        kw = tap % KW
        sh, sw, valid = tap_source(oh, ow, kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, H_SRC, W_SRC,
                                    DGRAD)
        k = (step % K_STEPS) * BLOCK_K + tl.arange(0, BLOCK_K)  # source channels within the group
        kmask = k < CPG_SRC
        a = tl.load(SRC + ((src_px + sh * ssh + sw * ssw)[:, None] + (k * ssc)[None, :]),
                    mask=(valid & rmask)[:, None] & kmask[None, :], other=0.0)
        if DGRAD:
            w_off = (g * CPG_SRC + k)[:, None] * swo + j[None, :] * swi
        else:
            w_off = (g * CPG_DST + j)[None, :] * swo + k[:, None] * swi
        b = tl.load(W + (w_off + (kh * swh + kw * sww)), mask=kmask[:, None] & cmask[None, :], other=0.0)
        acc = _dot(a, b, acc, IEEE)
    cols = g * CPG_DST + j
    if HAS_BIAS:
        acc += tl.load(B + cols, mask=cmask, other=0.0).to(tl.float32)[None, :]
    dst = DST + ((n * sdn + oh * sdh + ow * sdw)[:, None] + (cols * sdc)[None, :])
    tl.store(dst, acc.to(DST.dtype.element_ty), mask=rmask[:, None] & cmask[None, :])


_grouped_conv_kernel_fp32 = _common.autotune(GROUPED_FP32_CONFIGS, key=GROUPED_KEY,
                                             interpreter_config=GROUPED_INTERPRETER)(_grouped_conv_kernel)
_grouped_conv_kernel = _common.autotune(GROUPED_CONFIGS, key=GROUPED_KEY,
                                        interpreter_config=GROUPED_INTERPRETER)(_grouped_conv_kernel)


# [BLOCK_N output channels, BLOCK_K input channels] of one tap, reduced over BLOCK_M pixels a step.
# (64-pixel steps of a 64x64 tile for bf16/fp16; wider tiles take a stack frame at sm_90a.)
GROUPED_WGRAD_CONFIGS = [
    triton.Config({"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_K": 64}, num_warps=8, num_stages=3),
]
GROUPED_WGRAD_FP32_CONFIGS = [
    triton.Config({"BLOCK_M": 32, "BLOCK_N": 64, "BLOCK_K": 32}, num_warps=8, num_stages=3),
]
GROUPED_WGRAD_KEY = ["M", "C_OUT", "CIG", "COG", "KH", "KW", "stride_h"]  # + every operand's layout (_common.autotune)


@triton.jit
def _grouped_wgrad_kernel(X, DY, WS, DBS, M, C_OUT, NUM_CHUNKS, sxn, sxc, sxh, sxw, sdn, sdc, sdh, sdw,
                          H: tl.constexpr, WD: tl.constexpr, H_OUT: tl.constexpr, W_OUT: tl.constexpr,
                          KH: tl.constexpr, KW: tl.constexpr, stride_h: tl.constexpr, stride_w: tl.constexpr,
                          pad_h: tl.constexpr, pad_w: tl.constexpr, dil_h: tl.constexpr, dil_w: tl.constexpr,
                          CIG: tl.constexpr, COG: tl.constexpr, HAS_BIAS: tl.constexpr, IEEE: tl.constexpr,
                          BIG: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
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
    # the bias gradient from the dy tiles the first channel block of the tap-0 programs loads anyway
    bias_here = HAS_BIAS & (tap == 0)
    dsum = tl.zeros([BLOCK_N], dtype=tl.float32)
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
            if bias_here & (k0 == k_lo):
                dsum += tl.sum(dy_t.to(tl.float32), axis=1)
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
    if bias_here:
        tl.store(DBS + chunk * C_OUT + cols, dsum, mask=cmask)



_grouped_wgrad_kernel_fp32 = _common.autotune(GROUPED_WGRAD_FP32_CONFIGS, key=GROUPED_WGRAD_KEY,
                                              interpreter_config=GROUPED_INTERPRETER)(_grouped_wgrad_kernel)
_grouped_wgrad_kernel = _common.autotune(GROUPED_WGRAD_CONFIGS, key=GROUPED_WGRAD_KEY,
                                         interpreter_config=GROUPED_INTERPRETER)(_grouped_wgrad_kernel)


# --- launchers ------------------------------------------------------------------------------------

PACKED_MAX_LANES = 64
WGRAD_LANES = 16


def _pow2(n: int) -> int:
    return 1 << (n - 1).bit_length()


def _packing(geo: Geometry, lanes: int = 16):
    """(CIG_P, COG_P, GPB): channels per group padded to powers of two, and groups per tile."""
    cig_p, cog_p = _pow2(geo.cin_per_group), _pow2(geo.cout_per_group)
    return cig_p, cog_p, max(1, lanes // cig_p, lanes // cog_p)


def _packed(geo: Geometry) -> bool:
    """Whether the packed kernels serve this shape (both packed widths <= 64 lanes)."""
    cig_p, cog_p, gpb = _packing(geo)
    return gpb * max(cig_p, cog_p) <= PACKED_MAX_LANES


def _constants(geo: Geometry, lanes: int = 16) -> dict:
    cig_p, cog_p, gpb = _packing(geo, lanes)
    return dict(CIG=geo.cin_per_group, COG=geo.cout_per_group, CIG_P=cig_p, COG_P=cog_p, GPB=gpb, KH=geo.kh,
                KW=geo.kw, S_H=geo.stride[0], S_W=geo.stride[1], PAD_H=geo.padding[0], PAD_W=geo.padding[1],
                DIL_H=geo.dilation[0], DIL_W=geo.dilation[1])


_PACKED = DerivedWeights(64)  # a network's grouped layers, forward and transposed


def _pack_weight(weight, geo: Geometry, transposed: bool):
    """The block-diagonal weight tiles [tiles, taps, BK, BN] of the packed conv kernel (a few
    hundred KB at most: read from L2 by every program), once per weight version
    (:class:`geometry.DerivedWeights`)."""
    c = _constants(geo)

    def build():
        tiles = _common.cdiv(geo.groups, c["GPB"])
        lanes = c["GPB"] * c["CIG_P"] * c["GPB"] * c["COG_P"]
        wp = torch.empty((tiles * geo.kh * geo.kw * lanes,), dtype=weight.dtype, device=weight.device)
        _pack_weight_kernel[(tiles * geo.kh * geo.kw,)](
            weight, wp, geo.groups, **stride_args("sw", weight, "oihw"), CIG=c["CIG"], COG=c["COG"],
            CIG_P=c["CIG_P"], COG_P=c["COG_P"], GPB=c["GPB"], KH=geo.kh, KW=geo.kw, TRANSPOSED=transposed)
        return wp

    return _PACKED.get(weight, (transposed, geo.groups), build)


def _packed_conv(src, weight, bias, dst, geo: Geometry, dgrad: bool):
    c = _constants(geo)
    tiles = _common.cdiv(geo.groups, c["GPB"])
    src_hw, dst_hw = ((geo.h_out, geo.w_out), (geo.h, geo.w)) if dgrad else ((geo.h, geo.w), (geo.h_out, geo.w_out))
    phases = geo.stride[0] * geo.stride[1] if dgrad else 1
    # the largest phase's pixels (phase (0, 0)): the other phases mask their last tile's extra rows
    pixels = geo.n * _common.cdiv(dst_hw[0], c["S_H"] if dgrad else 1) \
        * _common.cdiv(dst_hw[1], c["S_W"] if dgrad else 1)
    steps = dict(STEP_H=geo.stride[0] // math.gcd(geo.stride[0], geo.dilation[0]),
                 STEP_W=geo.stride[1] // math.gcd(geo.stride[1], geo.dilation[1]))
    wp = _pack_weight(weight, geo, transposed=dgrad)
    grid = lambda meta: (_common.cdiv(pixels, meta["BLOCK_M"]) * tiles, phases)  # noqa: E731
    with _common.device_guard(src):
        _packed_conv_kernel[grid](src, wp, bias if bias is not None else wp, dst, geo.n, geo.groups,
                                  **stride_args("ss", src), **stride_args("sd", dst), H_SRC=src_hw[0], W_SRC=src_hw[1],
                                  H_DST=dst_hw[0], W_DST=dst_hw[1], **c, **steps, DGRAD=dgrad,
                                  HAS_BIAS=bias is not None, IEEE=ieee_products(src.dtype), BIG=needs_int64(src, dst))


def forward(x, weight, bias, geo: Geometry):
    y = _common.empty((geo.n, geo.c_out, geo.h_out, geo.w_out), x.dtype, x.device, memory_format(x))
    if y.numel():
        if _packed(geo):
            _packed_conv(x, weight, bias, y, geo, dgrad=False)
        else:
            _launch(x, weight, bias, y, geo, geo.n * geo.h_out * geo.w_out, (geo.h, geo.w), (geo.h_out, geo.w_out),
                    geo.cin_per_group, geo.cout_per_group, dgrad=False)
    return y


def input_grad(dy, x, weight, geo: Geometry):
    dx = _common.empty(x.shape, x.dtype, x.device, memory_format(x))
    if dx.numel():
        if _packed(geo):
            _packed_conv(dy, weight, None, dx, geo, dgrad=True)
        else:
            _launch(dy, weight, None, dx, geo, geo.n * geo.h * geo.w, (geo.h_out, geo.w_out), (geo.h, geo.w),
                    geo.cout_per_group, geo.cin_per_group, dgrad=True)
    return dx


_GEMM_B = DerivedWeights(16)  # the general path's weights, destination channels contiguous


def _gemm_weight(weight, dgrad: bool):
    """``weight`` ``[C_out, CIG, kh, kw]`` laid out so that the implicit GEMM's B operand (a tap's
    ``[K, N]`` slab: N the destination channels) is contiguous along N: ``[kh, kw, CIG, C_out]``
    forward, ``[kh, kw, C_out, CIG]`` transposed; returned as a view with the ``oihw`` axes, once
    per weight version (:class:`geometry.DerivedWeights`)."""
    order = (2, 3, 0, 1) if dgrad else (2, 3, 1, 0)  # the kept axes, slowest first
    back = [order.index(axis) for axis in range(4)]
    return _GEMM_B.get(weight, dgrad, lambda: weight.detach().permute(order).contiguous().permute(back))


def _launch(src, weight, bias, dst, geo, m, src_hw, dst_hw, cpg_src, cpg_dst, dgrad):
    def grid(meta):  # axis 1 group-major: cdiv(cpg_dst, BLOCK_N) tiles a group
        return _common.cdiv(m, meta["BLOCK_M"]), geo.groups * _common.cdiv(cpg_dst, meta["BLOCK_N"])

    weight = _gemm_weight(weight, dgrad)
    with _common.device_guard(src):
        kernel = _grouped_conv_kernel_fp32 if src.dtype == torch.float32 else _grouped_conv_kernel
        kernel[grid](src, weight, bias if bias is not None else weight, dst, m, geo.groups, **stride_args("ss", src),
                     **stride_args("sw", weight, "oihw"), **stride_args("sd", dst), H_SRC=src_hw[0], W_SRC=src_hw[1],
                     H_DST=dst_hw[0], W_DST=dst_hw[1], **geo.scalars(), CPG_SRC=cpg_src, CPG_DST=cpg_dst,
                     DGRAD=dgrad, HAS_BIAS=bias is not None, IEEE=ieee_products(src.dtype),
                     BIG=needs_int64(src, dst))


def _tap_block(geo: Geometry) -> int:
    """Taps per weight-gradient program: all of them while the fp32 accumulator [BN, TB * BK]
    stays within 8K elements (64 registers a thread at 4 warps, no more) and the im2col tile
    within 256 lanes."""
    cig_p, cog_p, gpb = _packing(geo, WGRAD_LANES)
    bk, bn = gpb * cig_p, gpb * cog_p
    return max(1, min(_pow2(geo.kh * geo.kw), 8192 // (bn * bk), 256 // bk))


def _rows_formulation(geo: Geometry) -> int:
    """Kernel rows per program of ``_packed_wgrad_rows_kernel`` (all KH, padded to a power of two,
    or fewer while the [KHB * BN, KW_P * BK] accumulator exceeds 8K fp32), or 0: stride 2 along
    rows, or groups too wide for even one kernel row, take ``_packed_wgrad_kernel``."""
    cig_p, cog_p, gpb = _packing(geo, WGRAD_LANES)
    if geo.stride[0] != 1:
        return 0
    khb = _pow2(geo.kh)
    while khb and khb * _pow2(geo.kw) * gpb * cog_p * gpb * cig_p > 8192:
        khb //= 2
    return khb


def _wgrad_chunks(geo: Geometry, device) -> int:
    """Pixel chunks of the weight gradient: about four programs per SM over all tiles of groups
    and tap blocks (each program reads its chunk's x and dy once; twice the SMs left most SMs one
    short-lived program and the longest chunk setting the time), never more chunks than 64-pixel
    tiles."""
    khb = _rows_formulation(geo)
    blocks = _common.cdiv(geo.kh, khb) if khb else _common.cdiv(geo.kh * geo.kw, _tap_block(geo))
    programs = _common.cdiv(geo.groups, _packing(geo, WGRAD_LANES)[2]) * blocks
    m = geo.n * geo.h_out * geo.w_out
    return max(1, min(_common.cdiv(m, 64), _common.cdiv(4 * _common.num_sms(device), programs)))


def weight_grad(dy, x, weight, geo: Geometry, need_bias: bool):
    if _packed(geo):
        return _packed_weight_grad(dy, x, weight, geo, need_bias, _wgrad_chunks(geo, x.device))
    m = geo.n * geo.h_out * geo.w_out
    taps = geo.kh * geo.kw
    kernel = _grouped_wgrad_kernel_fp32 if x.dtype == torch.float32 else _grouped_wgrad_kernel
    # chunks for ~4 programs an SM at the widest config's output-channel blocks (any config then has as many or more)
    widest = max(config.kwargs["BLOCK_N"] for config in kernel.configs)
    chunks = split_count(m, _common.cdiv(geo.c_out, widest) * taps, x.device)
    ws = _common.empty((chunks, geo.c_out, geo.cin_per_group, taps), torch.float32, x.device)
    dbs = _common.empty((chunks, geo.c_out), torch.float32, x.device) if need_bias else ws
    grid = lambda meta: (chunks, _common.cdiv(geo.c_out, meta["BLOCK_N"]), taps)  # noqa: E731
    with _common.device_guard(x):
        kernel[grid](x, dy, ws, dbs, m, geo.c_out, chunks, **stride_args("sx", x), **stride_args("sd", dy), H=geo.h,
                     WD=geo.w, H_OUT=geo.h_out, W_OUT=geo.w_out, **geo.scalars(), CIG=geo.cin_per_group,
                     COG=geo.cout_per_group, HAS_BIAS=need_bias, IEEE=ieee_products(x.dtype),
                     BIG=needs_int64(x, dy))
    return merge_partials(ws, weight), (merge_partials(dbs, None, weight.dtype) if need_bias else None)


def _packed_weight_grad(dy, x, weight, geo: Geometry, need_bias: bool, chunks: int):
    """The packed weight gradient over ``chunks`` pixel chunks (a chunk may own no pixel tile:
    its partials are zeros)."""
    c = _constants(geo, WGRAD_LANES)
    tb = _tap_block(geo)
    taps = geo.kh * geo.kw
    ws = _common.empty((chunks, geo.c_out, geo.cin_per_group, taps), torch.float32, x.device)
    dbs = _common.empty((chunks, geo.c_out), torch.float32, x.device) if need_bias else ws
    tiles = _common.cdiv(geo.groups, c["GPB"])
    khb = _rows_formulation(geo)
    if khb:
        with _common.device_guard(x):
            kernel = _packed_wgrad_rows_kernel_fp32 if x.dtype == torch.float32 else _packed_wgrad_rows_kernel
            kernel[(tiles * _common.cdiv(geo.kh, khb), chunks)](
                x, dy, ws, dbs, geo.n, geo.groups, chunks, **stride_args("sx", x), **stride_args("sd", dy), H=geo.h,
                WD=geo.w, H_OUT=geo.h_out, W_OUT=geo.w_out, W_OUT_P=_pow2(geo.w_out), **c, KHB=khb, KW_P=_pow2(geo.kw),
                HAS_BIAS=need_bias, IEEE=ieee_products(x.dtype), BIG=needs_int64(x, dy))
        return merge_partials(ws, weight), (merge_partials(dbs, None, weight.dtype) if need_bias else None)
    grid = (tiles * _common.cdiv(taps, tb), chunks)
    kernel = _packed_wgrad_kernel_fp32 if x.dtype == torch.float32 else _packed_wgrad_kernel
    with _common.device_guard(x):
        kernel[grid](x, dy, ws, dbs, geo.n, geo.groups, chunks, **stride_args("sx", x),
                                   **stride_args("sd", dy), H=geo.h, WD=geo.w, H_OUT=geo.h_out, W_OUT=geo.w_out,
                                   W_OUT_P=_pow2(geo.w_out), **c, TB=tb, HAS_BIAS=need_bias,
                                   IEEE=ieee_products(x.dtype), BIG=needs_int64(x, dy))
    return merge_partials(ws, weight), (merge_partials(dbs, None, weight.dtype) if need_bias else None)


# --- compile check --------------------------------------------------------------------------------

def compile_cases():
    """Every kernel per dtype and layout: the packed kernels at ResNeXt-50 32x4d's stage-2
    stride-2 3x3 (x 64x256x56x56, 32 groups of 8) and, for the stride-1 rows kernel, its stage-1
    3x3 (64x128x56x56, 32 groups of 4); the general ones at AlexNet-like groups of 128
    (x 64x256x13x13, 2 groups)."""
    from ..compile_check import Case, ptr

    n = 64
    def act(prefix, c, hw, nhwc):  # noqa: E306
        s = (c * hw * hw, 1, hw * c, c) if nhwc else (c * hw * hw, hw * hw, hw, 1)
        return dict(zip((f"{prefix}n", f"{prefix}c", f"{prefix}h", f"{prefix}w"), s))

    packed = dict(CIG=8, COG=8, CIG_P=8, COG_P=8, GPB=2, KH=3, KW=3, S_H=2, S_W=2, PAD_H=1, PAD_W=1, DIL_H=1,
                  DIL_W=1)
    old_geo = dict(KH=3, KW=3, stride_h=1, stride_w=1, pad_h=1, pad_w=1, dil_h=1, dil_w=1)
    cases = []
    for dtype in _common.DTYPES:
        cases.append(Case(_pack_weight_kernel, dtype, "oihw", dict(
            W=ptr(dtype), WP=ptr(dtype), GROUPS=32, swo=72, swi=9, swh=3, sww=1, CIG=8, COG=8, CIG_P=8, COG_P=8,
            GPB=2, KH=3, KW=3, TRANSPOSED=False)))
        for nhwc in (False, True):
            # fp32 twice: IEEE-accurate (3xTF32, the heavier) and tf32, as allow_tf32 selects
            for ieee in ((True, False) if dtype == torch.float32 else (False,)):
                tag = ("nhwc" if nhwc else "nchw") + ("-tf32" if dtype == torch.float32 and not ieee else "")
                for dgrad in (False, True):
                    src = act("ss", 256, 28, nhwc) if dgrad else act("ss", 256, 56, nhwc)
                    dst = act("sd", 256, 56, nhwc) if dgrad else act("sd", 256, 28, nhwc)
                    hw = (28, 28, 56, 56) if dgrad else (56, 56, 28, 28)
                    cases.append(Case(_packed_conv_kernel, dtype, tag + ("-dgrad" if dgrad else ""), dict(
                        SRC=ptr(dtype), WP=ptr(dtype), B=ptr(dtype), DST=ptr(dtype), N=n, H_SRC=hw[0], W_SRC=hw[1],
                        H_DST=hw[2], W_DST=hw[3], GROUPS=32, **src, **dst, **packed, STEP_H=2, STEP_W=2,
                        DGRAD=dgrad, HAS_BIAS=not dgrad, IEEE=ieee, BIG=False)))
                fp32 = dtype == torch.float32
                cases.append(Case(_packed_wgrad_kernel_fp32 if fp32 else _packed_wgrad_kernel, dtype, tag, dict(
                    X=ptr(dtype), DY=ptr(dtype), WS=ptr(torch.float32), DBS=ptr(torch.float32), N=n, H=56, WD=56,
                    H_OUT=28, W_OUT=28, W_OUT_P=32, GROUPS=32, CHUNKS=17, **act("sx", 256, 56, nhwc),
                    **act("sd", 256, 28, nhwc),
                    **packed, TB=16, HAS_BIAS=True, IEEE=ieee, BIG=False)))
                # the stride-1 rows kernel at ResNeXt-50 32x4d's stage-1 3x3 (128 channels, 56x56, 4 a group)
                rows = _packed_wgrad_rows_kernel_fp32 if fp32 else _packed_wgrad_rows_kernel
                cases.append(Case(rows, dtype, tag, dict(
                    X=ptr(dtype), DY=ptr(dtype), WS=ptr(torch.float32), DBS=ptr(torch.float32), N=n, GROUPS=32,
                    CHUNKS=17, **act("sx", 128, 56, nhwc), **act("sd", 128, 56, nhwc), H=56, WD=56, H_OUT=56,
                    W_OUT=56, W_OUT_P=64, **{**packed, "CIG": 4, "COG": 4, "CIG_P": 4, "COG_P": 4, "GPB": 4, "S_H": 1,
                                             "S_W": 1}, KHB=4, KW_P=4, HAS_BIAS=True, IEEE=ieee, BIG=False)))
                for dgrad in (False, True):
                    # _gemm_weight's layouts of w[256, 128, 3, 3]: destination channels contiguous
                    gw = (dict(swo=128, swi=1, swh=3 * 256 * 128, sww=256 * 128) if dgrad else
                          dict(swo=1, swi=256, swh=3 * 128 * 256, sww=128 * 256))
                    conv = _grouped_conv_kernel_fp32 if fp32 else _grouped_conv_kernel
                    cases.append(Case(conv, dtype, tag + ("-dgrad" if dgrad else ""), dict(
                        SRC=ptr(dtype), W=ptr(dtype), B=ptr(dtype), DST=ptr(dtype), M=n * 169, GROUPS=2, H_SRC=13,
                        W_SRC=13, H_DST=13, W_DST=13, CPG_SRC=128, CPG_DST=128, **old_geo, **act("ss", 256, 13, nhwc),
                        **gw, **act("sd", 256, 13, nhwc), DGRAD=dgrad, HAS_BIAS=not dgrad, IEEE=ieee, BIG=False)))
                cases.append(Case(_grouped_wgrad_kernel_fp32 if fp32 else _grouped_wgrad_kernel, dtype, tag, dict(
                    X=ptr(dtype), DY=ptr(dtype), WS=ptr(torch.float32), DBS=ptr(torch.float32), M=n * 169, C_OUT=256,
                    H=13, WD=13, H_OUT=13, W_OUT=13, CIG=128, COG=128, NUM_CHUNKS=132, **old_geo,
                    **act("sx", 256, 13, nhwc), **act("sd", 256, 13, nhwc), HAS_BIAS=True, IEEE=ieee, BIG=False)))
    return cases
