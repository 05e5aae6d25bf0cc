"""Fused BatchNorm (+ residual) (+ ReLU) for 4-D activations, inference and training.

``y = relu(batch_norm(x) [+ residual])`` in fp32 arithmetic on fp32, fp16 or bf16 storage, for
contiguous NCHW and channels_last inputs (the output keeps the input's memory format).

Every kernel sees an activation as ``(n, c, p)`` with ``p = h * W + w`` and per-tensor strides
(``_common.pixel_view``): NCHW has ``p`` unit-stride, channels_last has ``c`` unit-stride and folds
the batch into ``p``, so one ``[BLOCK_P, BLOCK_C]`` tile kernel reads either layout coalesced,
with no copy. Triton specialises a stride of 1 at compile time, so each layout gets its own
vectorised binary.

Kernels and passes over memory (``T`` = one activation-sized read or write; the contract's
table counts 2 / 3 / 7, plus one with a residual):

===================  ===========================================  ==============================
path                 kernels                                      activation traffic
===================  ===========================================  ==============================
inference            apply (folds the running statistics)         read x, write y: 2T
                                                                  (+ read residual: 3T)
training forward     stats (split reduction; its last program     read x; read x, write y: 3T (4T)
                     per channel block folds) -> apply
training backward    reduce (split) -> fold -> dx                 read x, y, dy; read x, y, dy,
                                                                  write dx: 7T. With a residual:
                                                                  read x, y, dy, write d(res) = g;
                                                                  read x, g, write dx: 7T
inference backward   [reduce, if dgamma/dbeta are wanted] ->      [read x, y, dy] read y, dy,
                     fold -> dx                                   write dx: 3T or 6T (+1T)
===================  ===========================================  ==============================

Without ReLU the backward does not read ``y`` (5T in training). The training backward cannot
do with fewer: every dx needs the per-channel sums of ``g = dy * (y > 0)`` and ``g * x_hat``
over the whole batch, so x, y and dy are read once to reduce and once more to write dx (keeping
``g`` instead would add a write and a read of its own), except with a residual, whose gradient
is ``g``: the reduce writes it, and the dx kernel reads it in place of dy and y (the contract
counts 8T there).

Bytes = T * numel * itemsize; the per-channel vectors and the split-reduction workspace
(``3 * chunks * C`` floats) are noise. Example, ResNet-50's first stage at batch 256 in bf16:
x is 256*64*56*56 = 51.4M elements = 103 MB, so inference moves 2T = 206 MB (48 us at 4.3 TB/s),
the training forward 308 MB (72 us) and its backward 719 MB (167 us). FLOPs per element: apply
3 (sub, fma, max; +1 with a residual), stats 4, backward reduce 5, dx 5.

The elementwise kernels (apply, dx) run about four programs per SM, each walking a strided set of
pixel tiles of one channel block, so the per-channel coefficients are loaded (in inference:
folded from the running statistics, weight and bias) once per program, not once per 16 elements
a thread: at 64x64 tiles of a 103 MB activation that is 528 programs instead of 12,544.

The training statistics are a split reduction: ``chunks`` programs per channel block, counted
for the channel blocks of the config the autotuner chose (so C=64 still puts ~4 programs on each
of an H200's 132 SMs whether its blocks are 16 or 256 wide), each reduce a strided set of pixel
tiles, two at a time, to ``(count, mean, M2)`` in fp32, shifted by their first tile's mean so
that a large mean does not cancel the variance; the last program of each channel block to finish
(an atomic arrival counter per block) merges the chunks (two-level: a tile of chunks at a time, then
Chan's parallel update), updates the running statistics as ``F.batch_norm`` does (momentum;
unbiased variance) and folds ``gamma * invstd``, in the same launch: two launches in all, where a
separate fold kernel made three. Predicted at ResNet-50's 512x7x7, batch 256, bf16 (sm_90a): the
statistics with their fold 6.6 us, where statistics 5.1 and a fold kernel 2.1 were 7.2, and the
host's launch of a dependent kernel, which the inspector leaves out, is gone. The fold reads half
a tile of chunks a trip, so the fold costs the kernel no registers (80 in channels_last, 6 CTAs
per SM; a whole tile took 124 and 4, a quarter made the merge of hundreds of chunks, at C <= 128,
twice as long a tail). Over the 91 training-forward cases of the kernel suite at batch 256: median 94.4 -> 98.3%
of copy bandwidth predicted, 3 cases (C = 32 to 128 at 35x35 and 17x17) 2 to 3.5 points lower. The backward
recomputes ``x_hat`` from ``x`` and the saved mean/invstd and takes the ReLU mask from ``y``.
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

# [BLOCK_P pixels, BLOCK_C channels] tiles of the elementwise kernels (apply, dx): 4096 elements,
# 16 per thread; 64x64, 256x16 and 16x256, for C >= 64 in either layout, NCHW with large H*W and
# channels_last with C >= 256 (ResNet's 64 to 2048 channels, 56x56 to 7x7 pixels).
TILE_CONFIGS = _common.tile_configs(4096, num_warps=8)
# Tiles of the reductions: 2048 elements (32x64, 128x16, 8x256), two fp32 accumulators per element.
REDUCE_CONFIGS = _common.tile_configs(2048, num_warps=4)
# The backward's fold kernel touches C floats and chunks * C partials: one fixed config. Its time
# is a memory latency per block of chunks, one after another: 128 chunks a block (four blocks at
# the most chunks, 528 on an H200) and 16 channels a program, so even C=64 gets four programs.
FOLD_BLOCK_C, FOLD_BLOCK_K, FOLD_WARPS = 16, 128, 4
# Programs per SM of the elementwise kernels, each walking several tiles (the grid shrinks to
# one tile a program when there are fewer): four 8-warp programs fit an SM at up to 64 registers.
PROGRAMS_PER_SM = 4
# The shape fields that change the best tile: N' (images, 1 once folded into P), C, P (pixels
# per image) and the channel stride (1 for channels_last). Autotune adds the dtypes.
TUNE_KEY = ["N", "C", "P"]  # + every operand's layout (_common.autotune)
# N' is a compile-time constant of every kernel that walks pixel tiles: where it is 1 (every
# channels_last tensor) ``folded_pixel_block`` computes a tile's first pixel without
# ``pixel_block``'s runtime division, and where it is not (NCHW) the kernel has no runtime branch
# between the two. A constant N' compiles once per batch size in NCHW, which the key above
# already tunes once per batch size.


# The statistics kernel updates the running statistics in place: the autotuner puts them back
# after each config it benchmarks.
@_common.autotune(REDUCE_CONFIGS, key=TUNE_KEY, interpreter_config=_common.INTERPRETER_TILE,
                  restore_value=("RM", "RV"))
@triton.jit
def _bn_stats_kernel(X, WS, ARRIVED, W, B, RM, RV, COEF, N: tl.constexpr, C, P, x_stride_n, x_stride_c, x_stride_p,
                     ws_stride, w_stride, b_stride, rm_stride, rv_stride, momentum, eps, unbias, UPDATE: tl.constexpr,
                     BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr):
    """Per (chunk, channel): count, mean and M2 of the pixel tiles chunk, chunk + chunks, ...;
    ``chunks`` is the grid's axis 0, which the launcher sizes for the config chosen. Then the
    last program of each channel block to finish merges every chunk and folds the coefficients
    (:func:`_fold_statistics`): one launch, as PyTorch's channels_last Welford kernel does.

    WS is fp32 ``[3, >= chunks, C]``, its planes ``ws_stride`` apart; a chunk that owns no tile
    writes zeros. A trip sums two tiles, ``t`` and ``t + chunks``, both loaded before either is
    used: four 16-byte loads in flight per thread in bf16 (two tiles of 16 values), where one tile
    a trip leaves each thread waiting a memory latency per two.

    ARRIVED is int32, one counter per channel block, zero between launches: each program adds 1
    once its partials are stored (a CTA barrier, then one acquire-release atomic at GPU scope:
    the pattern of CUDA's grid synchronisation), the program that finds ``chunks - 1`` there is
    the last, reads the partials past L1 (``.cg``: another SM wrote them) and sets the counter
    back to zero for the next launch, so no memset precedes any launch.
    """
    chunk = tl.program_id(0)
    chunks = tl.num_programs(0)
    c, cmask = _common.channel_block(C, BLOCK_C)
    n_tiles = N * tl.cdiv(P, BLOCK_P)
    # Shift: the mean of the chunk's first tile, so sum((x - shift)^2) does not cancel; rounded to
    # x's dtype, so that a masked load returning it contributes exactly 0 (no select per element).
    shift = tl.zeros([BLOCK_C], dtype=X.dtype.element_ty)
    if chunk < n_tiles:
        # pixel_block's division runs once a program here; the folded form made ptxas spill 4 bytes
        # (sm_80, bf16, 8x256 tiles)
        n, p0, rows, rmask = _common.pixel_block(chunk, P, BLOCK_P)
        x = tl.load(_common.tile_ptrs(X, n, p0, rows, c, x_stride_n, x_stride_c, x_stride_p),
                    mask=rmask[:, None] & cmask[None, :], other=0.0).to(tl.float32)
        shift = (tl.sum(x, axis=0) / tl.minimum(P - p0, BLOCK_P).to(tl.float32)).to(X.dtype.element_ty)
    shift32 = shift.to(tl.float32)
    s1 = tl.zeros([BLOCK_P, BLOCK_C], dtype=tl.float32)
    s2 = tl.zeros([BLOCK_P, BLOCK_C], dtype=tl.float32)
    count = tl.zeros([BLOCK_P], dtype=tl.float32)
    for t in range(chunk, n_tiles, 2 * chunks):
        n, p0, rows, rmask = _common.folded_pixel_block(t, N, P, BLOCK_P)
        n2, p2, _, rmask2 = _common.folded_pixel_block(t + chunks, N, P, BLOCK_P)
        rmask2 = rmask2 & (t + chunks < n_tiles)
        xa = tl.load(_common.tile_ptrs(X, n, p0, rows, c, x_stride_n, x_stride_c, x_stride_p),
                     mask=rmask[:, None] & cmask[None, :], other=shift[None, :])
        xb = tl.load(_common.tile_ptrs(X, n2, p2, rows, c, x_stride_n, x_stride_c, x_stride_p),
                     mask=rmask2[:, None] & cmask[None, :], other=shift[None, :])
        da = xa.to(tl.float32) - shift32[None, :]
        db = xb.to(tl.float32) - shift32[None, :]
        s1 += da + db
        s2 += da * da  # two FFMAs, where (da * da + db * db) would be an FMUL, an FFMA and an FADD
        s2 += db * db
        count += rmask.to(tl.float32) + rmask2.to(tl.float32)
    n = tl.sum(count, axis=0)
    sum1 = tl.sum(s1, axis=0)
    safe = tl.maximum(n, 1.0)
    mean = tl.where(n > 0, shift32 + sum1 / safe, 0.0)
    m2 = tl.maximum(tl.sum(s2, axis=0) - sum1 * sum1 / safe, 0.0)
    ws = WS + chunk * C + c
    tl.store(ws, tl.zeros([BLOCK_C], dtype=tl.float32) + n, mask=cmask)
    tl.store(ws + ws_stride, mean, mask=cmask)
    tl.store(ws + 2 * ws_stride, m2, mask=cmask)
    if _common.last_arrival(ARRIVED, tl.program_id(1), chunks):  # every chunk's partials are in
        # half a tile of chunks a trip: the fold's registers within the statistics' own
        _fold_statistics(WS, chunks, ws_stride, W, B, RM, RV, COEF, C, c, cmask, w_stride, b_stride, rm_stride,
                         rv_stride, momentum, eps, unbias, UPDATE, BLOCK_P // 2)
        tl.store(ARRIVED + tl.program_id(1), 0)  # zero again for the next launch


@triton.jit
def _fold_statistics(WS, NUM_CHUNKS, ws_stride, W, B, RM, RV, COEF, C, c, cmask, w_stride, b_stride, rm_stride,
                     rv_stride, momentum, eps, unbias, UPDATE: tl.constexpr, BLOCK_K: tl.constexpr):
    """For channels ``c``: the chunks' (count, mean, M2) merged, ``BLOCK_K`` chunks a trip (exactly
    within a block, then Chan et al.'s parallel update across blocks), the running-statistics
    update as ``F.batch_norm`` makes it (momentum; unbiased variance) and COEF = fp32
    [mean, invstd, gamma * invstd, beta]."""
    total = tl.zeros(c.shape, dtype=tl.float32)
    mean = tl.zeros(c.shape, dtype=tl.float32)
    m2 = tl.zeros(c.shape, dtype=tl.float32)
    for k0 in range(0, NUM_CHUNKS, BLOCK_K):
        k = k0 + tl.arange(0, BLOCK_K)
        mask = (k < NUM_CHUNKS)[:, None] & cmask[None, :]
        ptr = WS + k[:, None] * C + c[None, :]
        cnt = tl.load(ptr, mask=mask, other=0.0, cache_modifier=".cg")
        mu = tl.load(ptr + ws_stride, mask=mask, other=0.0, cache_modifier=".cg")
        q = tl.load(ptr + 2 * ws_stride, mask=mask, other=0.0, cache_modifier=".cg")
        # this block of chunks, exactly (two-level): its count, mean and M2 ...
        nb = tl.sum(cnt, axis=0)
        mb = tl.sum(cnt * mu, axis=0) / tl.maximum(nb, 1.0)
        dev = mu - mb[None, :]
        qb = tl.sum(q + cnt * dev * dev, axis=0)
        # ... merged into the running result (Chan et al.)
        merged = total + nb
        delta = mb - mean
        frac = nb / tl.maximum(merged, 1.0)
        mean += delta * frac
        m2 += qb + delta * delta * total * frac
        total = merged
    var = m2 / tl.maximum(total, 1.0)
    if UPDATE:
        rm = tl.load(RM + c * rm_stride, mask=cmask, other=0.0).to(tl.float32)
        rv = tl.load(RV + c * rv_stride, mask=cmask, other=0.0).to(tl.float32)
        rm = (1.0 - momentum) * rm + momentum * mean
        rv = (1.0 - momentum) * rv + momentum * (var * unbias)
        tl.store(RM + c * rm_stride, rm.to(RM.dtype.element_ty), mask=cmask)
        tl.store(RV + c * rv_stride, rv.to(RV.dtype.element_ty), mask=cmask)
    invstd = 1.0 / tl.sqrt_rn(var + eps)
    w = tl.load(W + c * w_stride, mask=cmask, other=0.0).to(tl.float32)
    b = tl.load(B + c * b_stride, mask=cmask, other=0.0).to(tl.float32)
    tl.store(COEF + c, mean, mask=cmask)
    tl.store(COEF + C + c, invstd, mask=cmask)
    tl.store(COEF + 2 * C + c, w * invstd, mask=cmask)
    tl.store(COEF + 3 * C + c, b, mask=cmask)


@_common.autotune(TILE_CONFIGS, key=TUNE_KEY, interpreter_config=_common.INTERPRETER_TILE)
@triton.jit
def _bn_apply_kernel(X, RES, Y, COEF, W, B, RM, RV, N: tl.constexpr, C, P,
                     x_stride_n, x_stride_c, x_stride_p, res_stride_n, res_stride_c, res_stride_p,
                     y_stride_n, y_stride_c, y_stride_p, w_stride, b_stride, rm_stride, rv_stride, eps,
                     FOLD: tl.constexpr, STORE_COEF: tl.constexpr, HAS_RES: tl.constexpr, RELU: tl.constexpr,
                     BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr):
    """y = relu((x - mean) * gamma * invstd + beta [+ res]) on the pixel tiles program_id(0),
    program_id(0) + programs, ... of channel block program_id(1): the folded per-channel scale,
    applied without cancelling a large mean (one more FADD than x * scale + shift, same traffic).

    The coefficients are loaded once per program, not once per tile. FOLD (inference): they are
    folded here from the running statistics, weight and bias, and if STORE_COEF (a backward may
    follow) the first program of each channel block stores them to COEF (fp32 [mean, invstd,
    gamma * invstd, beta]); otherwise (training) they are read from COEF, which the statistics'
    fold wrote. STORE_COEF costs four scalar loads and stores per program in the compiled code
    (the store's layout is not the tile's, and Triton reloads rather than shuffles), so it is
    left out of the no-grad inference that a serving model runs.
    """
    c, cmask = _common.channel_block(C, BLOCK_C)
    if FOLD:
        mean = tl.load(RM + c * rm_stride, mask=cmask, other=0.0).to(tl.float32)
        var = tl.load(RV + c * rv_stride, mask=cmask, other=1.0).to(tl.float32)
        invstd = 1.0 / tl.sqrt_rn(var + eps)
        scale = tl.load(W + c * w_stride, mask=cmask, other=0.0).to(tl.float32) * invstd
        beta = tl.load(B + c * b_stride, mask=cmask, other=0.0).to(tl.float32)
        if STORE_COEF and tl.program_id(0) == 0:
            tl.store(COEF + c, mean, mask=cmask)
            tl.store(COEF + C + c, invstd, mask=cmask)
            tl.store(COEF + 2 * C + c, scale, mask=cmask)
            tl.store(COEF + 3 * C + c, beta, mask=cmask)
    else:
        mean = tl.load(COEF + c, mask=cmask, other=0.0)
        scale = tl.load(COEF + 2 * C + c, mask=cmask, other=0.0)
        beta = tl.load(COEF + 3 * C + c, mask=cmask, other=0.0)
    for tile in range(tl.program_id(0), N * tl.cdiv(P, BLOCK_P), tl.num_programs(0)):
        n, p0, rows, _ = _common.folded_pixel_block(tile, N, P, BLOCK_P)
        mask = (rows[:, None] < P - p0) & cmask[None, :]  # program_tile's form of the mask
        x = tl.load(_common.tile_ptrs(X, n, p0, rows, c, x_stride_n, x_stride_c, x_stride_p), mask=mask,
                    other=0.0)
        y = (x.to(tl.float32) - mean[None, :]) * scale[None, :] + beta[None, :]
        y = _common.residual_relu(y, RES, n, p0, rows, c, mask, res_stride_n, res_stride_c, res_stride_p,
                                  HAS_RES, RELU)
        tl.store(_common.tile_ptrs(Y, n, p0, rows, c, y_stride_n, y_stride_c, y_stride_p),
                 y.to(Y.dtype.element_ty), mask=mask)


@_common.autotune(REDUCE_CONFIGS, key=TUNE_KEY, interpreter_config=_common.INTERPRETER_TILE)
@triton.jit
def _bn_bwd_reduce_kernel(X, Y, DY, G, COEF, WS, N: tl.constexpr, C, P, x_stride_n, x_stride_c, x_stride_p,
                          y_stride_n, y_stride_c, y_stride_p, dy_stride_n, dy_stride_c, dy_stride_p,
                          g_stride_n, g_stride_c, g_stride_p, ws_stride,
                          RELU: tl.constexpr, HAS_G: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr):
    """Per (chunk, channel): sum(g) and sum(g * x_hat), g = dy * (y > 0), over the pixel tiles chunk,
    chunk + chunks, ... (chunks = grid axis 0); WS is fp32 [2, >= chunks, C], planes ws_stride apart.
    With HAS_G, g itself is written to G (the residual's gradient) as it goes. Three tensors a tile
    already put six 16-byte loads in flight per thread in bf16."""
    chunk = tl.program_id(0)
    chunks = tl.num_programs(0)
    c, cmask = _common.channel_block(C, BLOCK_C)
    mean = tl.load(COEF + c, mask=cmask, other=0.0)[None, :]
    invstd = tl.load(COEF + C + c, mask=cmask, other=0.0)[None, :]
    n_tiles = N * tl.cdiv(P, BLOCK_P)
    acc_g = tl.zeros([BLOCK_P, BLOCK_C], dtype=tl.float32)
    acc_gx = tl.zeros([BLOCK_P, BLOCK_C], dtype=tl.float32)
    for t in range(chunk, n_tiles, chunks):
        n, p0, rows, rmask = _common.folded_pixel_block(t, N, P, BLOCK_P)
        mask = rmask[:, None] & cmask[None, :]
        g = tl.load(_common.tile_ptrs(DY, n, p0, rows, c, dy_stride_n, dy_stride_c, dy_stride_p), mask=mask,
                    other=0.0)
        if RELU:
            y = tl.load(_common.tile_ptrs(Y, n, p0, rows, c, y_stride_n, y_stride_c, y_stride_p), mask=mask,
                        other=0.0)
            g = tl.where(y <= 0.0, 0.0, g)  # torch's threshold_backward on the output
        if HAS_G:
            tl.store(_common.tile_ptrs(G, n, p0, rows, c, g_stride_n, g_stride_c, g_stride_p),
                     g.to(G.dtype.element_ty), mask=mask)
        g = g.to(tl.float32)
        x = tl.load(_common.tile_ptrs(X, n, p0, rows, c, x_stride_n, x_stride_c, x_stride_p), mask=mask,
                    other=0.0).to(tl.float32)
        acc_g += g
        acc_gx += g * ((x - mean) * invstd)
    ws = WS + chunk * C + c
    tl.store(ws, tl.sum(acc_g, axis=0), mask=cmask)
    tl.store(ws + ws_stride, tl.sum(acc_gx, axis=0), mask=cmask)


@triton.jit
def _bn_bwd_fold_kernel(WS, NUM_CHUNKS, ws_stride, COEF, BCOEF, DW, DB, C, count,
                        HAS_PARTIALS: tl.constexpr, TRAINING: tl.constexpr,
                        BLOCK_K: tl.constexpr, BLOCK_C: tl.constexpr):
    """dgamma = sum(g * x_hat), dbeta = sum(g), and BCOEF = fp32 [mean, A, A * mean(g),
    A * invstd * mean(g * x_hat)] with A = gamma * invstd, so that
    dx = A * g - A * mean(g) - (x - mean) * A * invstd * mean(g * x_hat) (training; the two
    batch-mean terms vanish in inference, where mean and invstd are constants)."""
    c = tl.program_id(0) * BLOCK_C + tl.arange(0, BLOCK_C)
    cmask = c < C
    # the coefficients first, so that their loads are in flight with the partials': one round for both
    mean = tl.load(COEF + c, mask=cmask, other=0.0)
    invstd = tl.load(COEF + C + c, mask=cmask, other=0.0)
    a = tl.load(COEF + 2 * C + c, mask=cmask, other=0.0)
    sum_g = tl.zeros([BLOCK_C], dtype=tl.float32)
    sum_gx = tl.zeros([BLOCK_C], dtype=tl.float32)
    if HAS_PARTIALS:
        for k0 in range(0, NUM_CHUNKS, BLOCK_K):
            k = k0 + tl.arange(0, BLOCK_K)
            mask = (k < NUM_CHUNKS)[:, None] & cmask[None, :]
            ptr = WS + k[:, None] * C + c[None, :]
            sum_g += tl.sum(tl.load(ptr, mask=mask, other=0.0), axis=0)
            sum_gx += tl.sum(tl.load(ptr + ws_stride, mask=mask, other=0.0), axis=0)
        tl.store(DW + c, sum_gx.to(DW.dtype.element_ty), mask=cmask)
        tl.store(DB + c, sum_g.to(DB.dtype.element_ty), mask=cmask)
    tl.store(BCOEF + c, mean, mask=cmask)
    tl.store(BCOEF + C + c, a, mask=cmask)
    if TRAINING:
        tl.store(BCOEF + 2 * C + c, a * (sum_g / count), mask=cmask)
        tl.store(BCOEF + 3 * C + c, a * invstd * (sum_gx / count), mask=cmask)
    else:
        tl.store(BCOEF + 2 * C + c, tl.zeros([BLOCK_C], dtype=tl.float32), mask=cmask)
        tl.store(BCOEF + 3 * C + c, tl.zeros([BLOCK_C], dtype=tl.float32), mask=cmask)


@_common.autotune(TILE_CONFIGS, key=TUNE_KEY, interpreter_config=_common.INTERPRETER_TILE)
@triton.jit
def _bn_bwd_dx_kernel(X, Y, DY, DX, DRES, BCOEF, N: tl.constexpr, C, P, x_stride_n, x_stride_c, x_stride_p,
                      y_stride_n, y_stride_c, y_stride_p, dy_stride_n, dy_stride_c, dy_stride_p,
                      dx_stride_n, dx_stride_c, dx_stride_p, dres_stride_n, dres_stride_c, dres_stride_p,
                      RELU: tl.constexpr, HAS_DX: tl.constexpr, HAS_DRES: tl.constexpr, TRAINING: tl.constexpr,
                      BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr):
    """dx = A * g - K2 - (x - mean) * K3 (HAS_DX) and d(res) = g (HAS_DRES), g = dy * (y > 0), on
    the pixel tiles program_id(0), program_id(0) + programs, ... of channel block program_id(1),
    the per-channel coefficients loaded once per program."""
    c, cmask = _common.channel_block(C, BLOCK_C)
    if HAS_DX:
        a = tl.load(BCOEF + C + c, mask=cmask, other=0.0)[None, :]
        if TRAINING:
            mean = tl.load(BCOEF + c, mask=cmask, other=0.0)[None, :]
            k2 = tl.load(BCOEF + 2 * C + c, mask=cmask, other=0.0)[None, :]
            k3 = tl.load(BCOEF + 3 * C + c, mask=cmask, other=0.0)[None, :]
    for tile in range(tl.program_id(0), N * tl.cdiv(P, BLOCK_P), tl.num_programs(0)):
        n, p0, rows, _ = _common.folded_pixel_block(tile, N, P, BLOCK_P)
        mask = (rows[:, None] < P - p0) & cmask[None, :]  # program_tile's form of the mask
        g = tl.load(_common.tile_ptrs(DY, n, p0, rows, c, dy_stride_n, dy_stride_c, dy_stride_p), mask=mask,
                    other=0.0).to(tl.float32)
        if RELU:
            y = tl.load(_common.tile_ptrs(Y, n, p0, rows, c, y_stride_n, y_stride_c, y_stride_p), mask=mask,
                        other=0.0)
            g = tl.where(y <= 0.0, 0.0, g)
        if HAS_DX:
            dx = a * g
            if TRAINING:
                x = tl.load(_common.tile_ptrs(X, n, p0, rows, c, x_stride_n, x_stride_c, x_stride_p), mask=mask,
                            other=0.0).to(tl.float32)
                dx = dx - k2 - (x - mean) * k3
            tl.store(_common.tile_ptrs(DX, n, p0, rows, c, dx_stride_n, dx_stride_c, dx_stride_p),
                     dx.to(DX.dtype.element_ty), mask=mask)
        if HAS_DRES:
            tl.store(_common.tile_ptrs(DRES, n, p0, rows, c, dres_stride_n, dres_stride_c, dres_stride_p),
                     g.to(DRES.dtype.element_ty), mask=mask)


# --- launchers ----------------------------------------------------------------------------------

def _fold_grid(c: int):
    return (_common.cdiv(c, FOLD_BLOCK_C),)


def _tile_grid(n: int, p: int, c: int, device):
    """Grid of the elementwise kernels: per channel block, as many programs as there are pixel
    tiles, up to about PROGRAMS_PER_SM per SM in all; each program walks its tiles with the
    coefficients of its channel block loaded once."""
    programs = PROGRAMS_PER_SM * _common.num_sms(device)

    def grid(meta):
        blocks = _common.cdiv(c, meta["BLOCK_C"])
        return (max(1, min(n * _common.cdiv(p, meta["BLOCK_P"]), _common.cdiv(programs, blocks))), blocks)

    return grid


def _chunks(pixels: int, c: int, block_c: int, device) -> int:
    """Programs per channel block of a split reduction with ``block_c``-wide channel blocks.
    ``split_chunks`` counts 64-wide blocks, so it is given the chosen blocks' count in those units:
    the grid keeps about four programs per SM whichever config the autotuner picks."""
    return _common.split_chunks(pixels, _common.cdiv(c, block_c) * 64, device)


class _SplitReduction:
    """A split reduction of ``planes`` fp32 partials per (chunk, channel) over ``pixels``.

    The chunk count depends on the BLOCK_C of the config the autotuner picks, known only at the
    launch: the counts of every config are computed here, the workspace is sized for the config
    with the most, the grid takes the count of the config it is called with, and :attr:`chunks`
    is the count of the last launch (what the fold merges). A launch recorded but not run
    (``kernels.inspect``) calls no grid: the fold is then given the most chunks, the dearer case.
    """

    def __init__(self, planes: int, pixels: int, c: int, device):
        self.c = c
        self.by_block = {block: _chunks(pixels, c, block, device)
                         for block in {config.kwargs["BLOCK_C"] for config in REDUCE_CONFIGS}}
        self.chunks = max(self.by_block.values())
        self.blocks = _common.cdiv(c, min(self.by_block))  # channel blocks of the narrowest config
        self.ws = _common.empty((planes, self.chunks, c), torch.float32, device)
        self.stride = self.chunks * c  # between the workspace's planes

    def grid(self, meta):
        self.chunks = self.by_block[meta["BLOCK_C"]]
        return (self.chunks, _common.cdiv(self.c, meta["BLOCK_C"]))


def _forward(x, weight, bias, running_mean, running_var, residual, training, momentum, eps, relu,
             backward=True):
    """Launch the forward; returns ``(y, coef)``, coef = fp32 [4, C] (mean, invstd, scale, beta),
    written in inference only if ``backward`` (a backward may follow)."""
    n, c, h, w = x.shape
    device = x.device
    ones = zeros = None
    if weight is None:
        ones = torch.ones(c, dtype=torch.float32, device=device)
    if bias is None:
        zeros = torch.zeros(c, dtype=torch.float32, device=device)
    weight = ones if weight is None else weight
    bias = zeros if bias is None else bias
    update = training and running_mean is not None
    rm = running_mean if running_mean is not None else weight  # unused pointers when not update
    rv = running_var if running_var is not None else weight
    tensors = [x] + ([residual] if residual is not None else [])
    y = _common.empty_like(x)
    n_, p, strides = _common.pixel_view(*tensors, y)
    x_strides, y_strides = strides[0], strides[-1]
    res_strides = strides[1] if residual is not None else x_strides
    coef = _common.empty((4, c), torch.float32, device)
    count = n * h * w
    with _common.device_guard(x):
        if training:
            split = _SplitReduction(3, n_ * p, c, device)
            _bn_stats_kernel[split.grid](
                x, split.ws,  # input; fp32 [count, mean, M2] per (chunk, channel)
                _common.arrival_counters(device, split.blocks),  # int32 per channel block, zero between launches
                weight, bias, rm, rv,  # per-channel parameters and running statistics (updated if UPDATE)
                coef,  # output: fp32 [mean, invstd, gamma * invstd, beta] per channel
                n_, c, p, *x_strides,  # the (n, c, p) view and x's strides in it
                split.stride,  # between the workspace's planes
                weight.stride(0), bias.stride(0), rm.stride(0), rv.stride(0),
                float(momentum), float(eps), count / max(count - 1, 1),  # the last: the unbiased variance's factor
                UPDATE=update)
        # One launch in inference: the apply folds the running statistics itself (and writes coef
        # for the backward, even for an empty batch, when one may follow).
        _bn_apply_kernel[_tile_grid(n_, p, c, device)](
            x, residual if residual is not None else x, y,  # the residual pointer is not read without one
            coef,  # fp32 [mean, invstd, gamma * invstd, beta] per channel: read in training, written in inference
            weight, bias, rm, rv,  # folded in inference
            n_, c, p,  # the (n, c, p) view
            *x_strides, *res_strides, *y_strides,
            weight.stride(0), bias.stride(0), rm.stride(0), rv.stride(0), float(eps),
            FOLD=not training, STORE_COEF=backward and not training, HAS_RES=residual is not None, RELU=relu)
    return y, coef


def _backward(x, y, coef, dy, weight, *, training, relu, need_dx, need_dw, need_db, need_dr):
    n, c, h, w = x.shape
    device = x.device
    dy = _common.mergeable(dy)
    with_partials = need_dw or need_db or (training and need_dx)
    # Where the reduce runs and d(res) is wanted, the reduce writes d(res) = g, and the dx kernel
    # reads g (1T) instead of dy and y (2T) and does not write it again: 7T with residual, not 8T.
    # d(res) alone needs no statistics and no coefficients: the dx kernel writes g alone (3T).
    g_by_reduce = with_partials and need_dr and x.numel() > 0
    dx = _common.empty_like(x) if need_dx else None
    dr = _common.empty_like(x) if need_dr else None
    param_dtype = weight.dtype if weight is not None else torch.float32
    dw = _common.empty((c,), param_dtype, device)
    db = _common.empty((c,), param_dtype, device)
    bcoef = _common.empty((4, c), torch.float32, device)
    ys = y if relu else x  # y is only read for the ReLU mask
    outs = [t for t in (dx, dr) if t is not None]
    n_, p, strides = _common.pixel_view(x, ys, dy, *outs)
    x_strides, y_strides, dy_strides = strides[:3]
    dx_strides = strides[3] if dx is not None else x_strides
    dres_strides = strides[-1] if dr is not None else x_strides
    with _common.device_guard(x):
        if with_partials:
            split = _SplitReduction(2, n_ * p, c, device)
            _bn_bwd_reduce_kernel[split.grid](
                x, ys, dy,  # ys: y for the ReLU mask, x (not read) without ReLU
                dr if g_by_reduce else dy,  # output: g = d(res) where asked (dy, not written, otherwise)
                coef, split.ws,  # the forward's fp32 coefficients; fp32 [sum(g), sum(g * x_hat)] partials
                n_, c, p,  # the (n, c, p) view
                *x_strides, *y_strides, *dy_strides, *(dres_strides if g_by_reduce else dy_strides),
                split.stride,  # between the workspace's planes
                RELU=relu, HAS_G=g_by_reduce)
            ws, chunks, ws_stride = split.ws, split.chunks, split.stride
        else:
            ws, chunks, ws_stride = bcoef, 1, 0  # not read
        if need_dx or need_dw or need_db:
            _bn_bwd_fold_kernel[_fold_grid(c)](
                ws, chunks, ws_stride,  # the reduction's partials (not read without them)
                coef, bcoef,  # the forward's coefficients; output: the dx kernel's
                dw, db,  # gradients of gamma and beta
                c, float(max(n * h * w, 1)),  # values per channel, for the batch means
                HAS_PARTIALS=with_partials, TRAINING=training,
                BLOCK_K=FOLD_BLOCK_K, BLOCK_C=FOLD_BLOCK_C, num_warps=FOLD_WARPS)
        if g_by_reduce:  # dx from g as written: no mask, no second write of d(res)
            (mask_source, g), g_strides, mask = (dr, dr), (dres_strides, dres_strides), False
        else:
            (mask_source, g), g_strides, mask = (ys, dy), (y_strides, dy_strides), relu
        write_dr = dr is not None and not g_by_reduce
        if (dx is not None or write_dr) and x.numel():
            _bn_bwd_dx_kernel[_tile_grid(n_, p, c, device)](
                x, mask_source, g,  # y for the ReLU mask (not read without it); g: dy, or d(res) as written
                dx if dx is not None else dr, dr if dr is not None else dx,  # outputs: only those asked are written
                bcoef,  # fp32 [mean, A, A * mean(g), A * invstd * mean(g * x_hat)] per channel (dx only)
                n_, c, p,  # the (n, c, p) view
                *x_strides, *g_strides[0], *g_strides[1], *dx_strides, *dres_strides,
                RELU=mask, HAS_DX=dx is not None, HAS_DRES=write_dr, TRAINING=training)
    return (dx if need_dx else None, dw if need_dw else None, db if need_db else None, dr)


# --- autograd -----------------------------------------------------------------------------------

class BatchNormReLUFunction(torch.autograd.Function):
    """Saves x, y (only with ReLU: the mask) and the fp32 per-channel [mean, invstd, scale, beta];
    recomputes x_hat in the backward. ``grad_enabled``: whether grad mode was on at the call (inside
    ``forward`` it is always off), so that a no-grad inference skips what only a backward reads."""

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, residual, training, momentum, eps, relu,
                grad_enabled=True):
        backward = grad_enabled and any(ctx.needs_input_grad[i] for i in (0, 1, 2, 5))
        y, coef = _forward(x, weight, bias, running_mean, running_var, residual, training, momentum, eps, relu,
                           backward)
        ctx.save_for_backward(x, y if relu else None, coef, weight)
        ctx.training, ctx.relu = training, relu
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, dy):
        x, y, coef, weight = ctx.saved_tensors
        need = ctx.needs_input_grad
        dx, dw, db, dr = _backward(x, y, coef, dy, weight, training=ctx.training, relu=ctx.relu,
                                   need_dx=need[0], need_dw=need[1], need_db=need[2], need_dr=need[5])
        return (dx, dw, db, None, None, dr, None, None, None, None, None)[:len(need)]


# --- public API ---------------------------------------------------------------------------------

def _check(x, weight, bias, running_mean, running_var, training, momentum, eps, relu, residual):
    _common.check_tensor(x, "x", ndim=4, layout="[N, C, H, W]")
    channels = x.shape[1]
    for name, t in (("weight", weight), ("bias", bias), ("running_mean", running_mean),
                    ("running_var", running_var)):
        if t is not None:
            _common.check_per_channel(t, name, channels, x)
    if (running_mean is None) != (running_var is None):
        missing = "running_var" if running_var is None else "running_mean"
        raise ValueError(f"{missing}: expected a tensor (running_mean and running_var come together), got None")
    _common.check_bool(training, "training")
    if not training and running_mean is None:
        raise ValueError("running_mean: expected the running statistics when training=False, got None")
    if momentum is None:
        raise TypeError("momentum: expected a float, got None (a cumulative average needs num_batches_tracked: "
                        "use the module, TritonBatchNormReLU2d(momentum=None))")
    _common.check_real(momentum, "momentum")
    _common.check_real(eps, "eps", minimum=0.0)
    _common.check_bool(relu, "relu")
    if residual is not None:
        _common.check_like(residual, "residual", x)
    if training:
        count = x.shape[0] * x.shape[2] * x.shape[3]
        if count <= 1:
            raise ValueError(f"x: expected more than 1 value per channel when training, got input size "
                             f"{list(x.shape)}")


def bn_relu(x, weight, bias, running_mean, running_var, *, training, momentum=0.1, eps=1e-5, relu=True,
            residual=None):
    """``relu(batch_norm(x) [+ residual])``, fused; ``relu=False`` leaves out the ReLU.

    Exactly ``F.relu(F.batch_norm(x, running_mean, running_var, weight, bias, training, momentum,
    eps) + residual)``:

    * ``x``: ``[N, C, H, W]``, float32, float16 or bfloat16, contiguous or channels_last (other
      strides work too; only tensors whose H and W axes do not merge are copied first). The
      output has ``x``'s dtype and memory format; arithmetic is fp32.
    * ``weight``, ``bias`` (``None``: 1 and 0), ``running_mean``, ``running_var``: ``[C]``, any of
      the three float dtypes (usually fp32 under autocast).
    * ``training=True``: normalise with the batch mean and biased variance over N*H*W; if the
      running statistics are given, update them in place:
      ``running = (1 - momentum) * running + momentum * batch`` with the *unbiased* variance.
      ``training=False``: normalise with the running statistics (required then).
    * ``residual``: same shape and dtype as ``x``, added after the affine, before the ReLU.

    Differentiable in ``x``, ``weight``, ``bias`` and ``residual`` (first order). Inputs outside
    this are a ``TypeError``/``ValueError`` naming the argument.
    """
    _check(x, weight, bias, running_mean, running_var, training, momentum, eps, relu, residual)
    return _bn_relu(x, weight, bias, running_mean, running_var, residual, training, momentum, eps, relu)


def _bn_relu(x, weight, bias, running_mean, running_var, residual, training, momentum, eps, relu):
    x = _common.mergeable(x)
    residual = _common.mergeable(residual) if residual is not None else None
    return BatchNormReLUFunction.apply(x, weight, bias, running_mean, running_var, residual, training,
                                       float(momentum), float(eps), relu, torch.is_grad_enabled())


# --- module twin --------------------------------------------------------------------------------

class TritonBatchNormReLU2d(nn.BatchNorm2d):
    """The twin of ``models.blocks.BatchNormReLU2d``: ``relu(bn(x) [+ residual])`` on the Triton
    kernels. A ``BatchNorm2d`` with a ``relu`` flag: same parameters, buffers (including
    ``num_batches_tracked``), state_dict keys and ``extra_repr``; ``momentum=None`` is the
    cumulative average, exactly as in ``nn.BatchNorm2d``."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, relu: bool = True,
                 **kwargs) -> None:
        super().__init__(num_features, eps=eps, momentum=momentum, **kwargs)
        self.relu = relu

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        # nn.BatchNorm2d.forward's bookkeeping, then the fused kernel.
        bn_training = self.training or (self.running_mean is None and self.running_var is None)
        track = not self.training or self.track_running_stats
        running_mean = self.running_mean if track else None
        running_var = self.running_var if track else None
        factor = 0.0 if self.momentum is None else self.momentum
        _check(x, self.weight, self.bias, running_mean, running_var, bn_training, factor, self.eps, self.relu,
               residual)
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        return _bn_relu(x, self.weight, self.bias, running_mean, running_var, residual, bn_training, factor,
                        self.eps, self.relu)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, relu={self.relu}"


register_swap("bn_relu", "models.blocks:BatchNormReLU2d", TritonBatchNormReLU2d)


# --- compile check ------------------------------------------------------------------------------

def compile_cases():
    """Every kernel with example arguments per dtype and layout, for ``kernels.compile_check``.

    Example shapes are ResNet-50's stage-1 activation at batch 64 (C=64, 56x56); the values
    matter only through what Triton specialises on (a stride of 1, divisibility by 16). The
    constexpr flags are those that make each kernel do the most work.
    """
    from .compile_check import Case, ptr, strides

    c, hw, n = 64, 56 * 56, 64
    layouts = {  # (N', P, (sn, sc, sp)) as pixel_view gives them
        "nchw": (n, hw, (c * hw, hw, 1)),
        "nhwc": (1, n * hw, (0, 1, c)),
    }
    cases = []
    for dtype in _common.DTYPES:
        for layout, (n_, p, s) in layouts.items():
            ws_stride = 528 * c
            # Under autocast the parameters and running statistics stay fp32 (after model.to(dtype)
            # they are the activation's dtype: the fold's few loads and stores, noise either way).
            cases.append(Case(_bn_stats_kernel, dtype, layout, dict(
                X=ptr(dtype), WS=ptr(torch.float32), ARRIVED=ptr(torch.int32), W=ptr(torch.float32),
                B=ptr(torch.float32), RM=ptr(torch.float32), RV=ptr(torch.float32), COEF=ptr(torch.float32),
                N=n_, C=c, P=p, **strides("x", values=s), ws_stride=ws_stride, w_stride=1, b_stride=1, rm_stride=1,
                rv_stride=1, momentum=0.1, eps=1e-5, unbias=1.0001, UPDATE=True)))
            for fold in (False, True):  # training reads the coefficients; inference folds them ("-fold")
                cases.append(Case(_bn_apply_kernel, dtype, layout + "-fold" * fold, dict(
                    X=ptr(dtype), RES=ptr(dtype), Y=ptr(dtype), COEF=ptr(torch.float32), W=ptr(torch.float32),
                    B=ptr(torch.float32), RM=ptr(torch.float32), RV=ptr(torch.float32), N=n_, C=c, P=p,
                    **strides("x", "res", "y", values=s), w_stride=1, b_stride=1, rm_stride=1, rv_stride=1,
                    eps=1e-5, FOLD=fold, STORE_COEF=fold, HAS_RES=True, RELU=True)))
            # ReLU without a residual (the dx kernel masks dy itself), and with one (the reduce
            # writes g = d(res), the dx kernel reads it back)
            for residual in (False, True):
                cases.append(Case(_bn_bwd_reduce_kernel, dtype, layout + ("-res" if residual else ""), dict(
                    X=ptr(dtype), Y=ptr(dtype), DY=ptr(dtype), G=ptr(dtype), COEF=ptr(torch.float32),
                    WS=ptr(torch.float32), N=n_, C=c, P=p, **strides("x", "y", "dy", "g", values=s),
                    ws_stride=ws_stride, RELU=True, HAS_G=residual)))
                cases.append(Case(_bn_bwd_dx_kernel, dtype, layout + ("-res" if residual else ""), dict(
                    X=ptr(dtype), Y=ptr(dtype), DY=ptr(dtype), DX=ptr(dtype), DRES=ptr(dtype),
                    BCOEF=ptr(torch.float32), N=n_, C=c, P=p, **strides("x", "y", "dy", "dx", "dres", values=s),
                    RELU=not residual, HAS_DX=True, HAS_DRES=False, TRAINING=True)))
        # The backward's fold sees the parameters' dtype (fp32 under autocast; the model's dtype
        # after model.to(dtype)), never the activation's.
        fold = dict(BLOCK_K=FOLD_BLOCK_K, BLOCK_C=FOLD_BLOCK_C)
        cases.append(Case(_bn_bwd_fold_kernel, dtype, "-", dict(
            WS=ptr(torch.float32), NUM_CHUNKS=132, ws_stride=528 * c, COEF=ptr(torch.float32), BCOEF=ptr(torch.float32),
            DW=ptr(dtype), DB=ptr(dtype), C=c, count=200704.0, HAS_PARTIALS=True, TRAINING=True, **fold),
            num_warps=FOLD_WARPS))
    return cases
