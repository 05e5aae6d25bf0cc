"""Squeeze-and-excitation, fused with a residual block's tail, forward and backward.

``y = x * sigmoid(w2 @ relu(w1 @ mean_hw(x) + b1) + b2)``, then ``+ residual`` and ``relu`` if
asked (``models.blocks.SqueezeExcite``), in fp32 arithmetic on fp32, fp16 or bf16 storage, for
contiguous NCHW and channels_last inputs (the output keeps the input's memory format).

The activation kernels see a tensor as ``(n, c, p)`` per image (``_common.pixel_view``, with the
batch kept as its own axis: the squeeze is a mean *per image*), so one ``[BLOCK_P, BLOCK_C]``
tile kernel reads either layout coalesced, with no copy.

Kernels and passes over memory (``T`` = one activation-sized read or write; the contract counts
4 for the forward with residual and ReLU, 3 without the residual):

==================  ==============================================  ============================
path                kernels                                         activation traffic
==================  ==============================================  ============================
forward             squeeze (split: fp32 partial sums per image,    read x (squeeze); read x,
                    chunk, channel) -> excite twice (mean, w1,      write y: 3T
                    ReLU: [N, R] fp32; w2, sigmoid) -> scale        (+ read residual: 4T)
forward, batch      squeeze, its last programs finishing the        the same
<= FUSED_MAX_BATCH  hidden layer -> scale, computing s per tile
backward            reduce (split: partial sum_hw(g * x), g = dy    read x, dy [, y]; read dy
                    masked by y > 0; writes g as d(res) when        [, y], write dx [, d(res)]:
                    asked) -> excitation backward (hidden ->        4T; +1T with residual,
                    params, [N, C]-sized) -> dx                     +2T with ReLU; with both,
                                                                    read x, dy, y, write d(res);
                                                                    read d(res), write dx: 6T
==================  ==============================================  ============================

Backward arithmetic (per image n, channel c; ``m = mean_hw(x)``, ``z1 = w1 m + b1``,
``h = relu(z1)``, ``s = sigmoid(w2 h + b2)``, ``g = dy * (y > 0)`` or ``dy`` without ReLU):

    d(s)_c   = sum_hw g * x                      (the reduce kernel: the only pass over x)
    dz2      = d(s) * s * (1 - s);  dw2 = dz2^T h;  db2 = sum_n dz2
    dz1      = (w2^T dz2) * (z1 > 0);  dw1 = dz1^T m;  db1 = sum_n dz1
    dx       = g * s + (w1^T dz1) / (H*W)        (the dx kernel: the mean's gradient broadcast)
    d(res)   = g                                 (the reduce kernel, where x's gradient also needs it)

The excitation's backward (``[N, C]``- and ``[R, C]``-sized: the lines with dz2 and dz1 above)
is two small kernels between the reduce and the dx kernel; they move no activation-sized tensor,
so their time is latency, and both are cut into enough programs to fill the GPU:

* "hidden": z1, h and dz1 per block of images and hidden units, both products in one loop over
  the channels. The loop is split into channel slices among programs (about two per SM); each
  stores its slice's share, and the last of a block to arrive (an arrival counter, as in
  ``bn_relu``'s statistics) sums the slices in a fixed order, so the result is deterministic and no
  second launch is needed. At C=2048, R=128, batch 256: 256 programs of 7 steps, where one
  program per block looped over all 32 steps (predicted 8.5 us instead of 28.5, sm_90a).
* "params": per block of channels and of hidden units, dw1, dw2, db1 and db2 as sums over the
  batch, and the mean's gradient ``w1^T dz1 / (H*W)`` for the block's channels and its share of
  the images (512 programs at C=2048, R=128, where 128 programs recomputed the chunk sums for
  every block of hidden units: predicted 13.9 us instead of 32.1).

Saved for the backward: x, y (only with ReLU, for the mask: reading y costs the same as
recomputing ``x * s + residual`` from x and the residual, and the residual need not be kept),
the squeeze's fp32 partial sums ``[N, chunks, C]`` and the fp32 scale ``s [N, C]``; ``m``,
``z1`` and ``h`` are recomputed (``[N, C]``-sized, noise next to T).

Bytes = T * numel * itemsize; the weights (``2 * R * C``) and the partials are noise. Example,
SE-ResNet-50's first stage at batch 256 in bf16: x is 256*256*56*56 = 205.5M elements = 411 MB,
so the forward with residual and ReLU moves 4T = 1.64 GB (382 us at 4.3 TB/s) and the backward 6T
= 2.47 GB (574 us). FLOPs per element: squeeze 1, scale 1 (+1 residual, +1 ReLU), reduce 2, dx 2;
the excitation adds ``4 * N * C * R`` (0.27 GFLOP at batch 256, C=2048, R=128), its backward twice that.

The forward excitation is one small kernel, launched once per layer: the hidden layer (per
[16 images, BLOCK_R hidden units]: the mean from the partials, ``w1``, ReLU; writes ``h`` [N, R]
fp32, 128 KB at batch 256, R=128), then the scale (per [16 images, BLOCK_C channels]: ``w2 h``,
sigmoid). The hidden layer's loop over the channels is split into slices among programs, as in
the backward's "hidden" kernel below (about two programs per SM; the last of a tile sums the
slices, eight a trip): at C=2048, R=128, batch 256, 256 programs of 4 steps, predicted 5.3 us at
sm_90a, where 64 programs of 16 steps were predicted 10.7. Each product is computed once,
2 * N * C * R FLOPs per layer; a single kernel per channel block would recompute the hidden
layer C / BLOCK_C times (8.6 GFLOP instead of 0.27 at C=2048, R=128, batch 256). Both run on
the tensor cores (``_dot_acc``): the fp32 activation operand split into two halves in the
weights' dtype for bf16/fp16 weights, 3xTF32 for fp32 weights, so the products keep fp32
accuracy. Tiles of 16 images are the least a tensor-core product takes; smaller batches mask
the rest.

At batches of at most ``FUSED_MAX_BATCH`` images the forward is two launches instead of four,
since there each dependent launch costs about what moving the activations does. The squeeze's
last program of each (image, channel block) stores the block's share of ``w1 m``. The last block
of an image to arrive sums the shares in block order, adds ``b1`` and stores ``h``. The scale's
programs then compute ``s = sigmoid(w2 h + b2)`` for their own tile, in fp32 FMAs, and the first
pixel tile of each image stores it for the backward. Predicted at sm_90a, bf16, channels_last
(the kernel inspector; launch gaps not counted), batch 8: 12.6 -> 8.3 us at 7x7 (C=2048),
11.3 -> 6.9 at 14x14, 14.9 -> 11.7 at 28x28, 22.0 -> 17.9 at 56x56.

The excitation's backward runs matrix-vector products (broadcast and sum) below batch
``MM_MIN_BATCH`` and ``tl.dot`` at and above it: on the tensor cores where one operand is a
bf16/fp16 weight (split as above), IEEE fp32 where both are fp32 (the weight gradients' products
of two activations, and every product with fp32 weights).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch.autograd.function import once_differentiable

from models.blocks import SqueezeExcite

from . import _common
from ._patch import register_swap

# --- kernels ------------------------------------------------------------------------------------

# [BLOCK_P pixels, BLOCK_C channels] tiles of the elementwise kernels (scale, dx): 4096 elements,
# 16 per thread. SE-ResNet's SE blocks have C = 256 to 2048 and 56x56 to 7x7 pixels per image:
# 64x64 suits both layouts at every stage (at 7x7 it masks 15 of 64 pixel rows), 256x16 NCHW at
# 56x56 and 28x28, 16x256 channels_last.
TILE_CONFIGS = _common.tile_configs(4096, num_warps=8)
# Tiles of the reductions over one image's pixels (squeeze, backward reduce): 2048 elements
# (32x64, 128x16, 8x256), an fp32 accumulator per element; the same three regimes.
REDUCE_CONFIGS = _common.tile_configs(2048, num_warps=4)
# The shape fields that change the best tile: N (images), C, P (pixels per image) and the
# channel stride (1 for channels_last). Autotune adds the dtypes.
TUNE_KEY = ["N", "C", "P"]  # + every operand's layout (_common.autotune)
# Under the interpreter: the per-image pixel axis of an SE is short (7x7 ... 56x56, far fewer in
# tests), so a tile of 32 pixels wastes less masked work than _common.INTERPRETER_TILE's 256.
INTERPRETER_TILE = triton.Config({"BLOCK_P": 32, "BLOCK_C": 256}, num_warps=4)
# The excitation: fixed configs (it touches N*C and R*C elements; not worth autotuning). The
# forward: tensor-core tiles of 16 images (the least a tl.dot tile may be; masked below 16), the
# hidden layer [16, 32] per program over channel steps of 128, then the scale [16, 64] per
# program over hidden steps of 32: at C=2048, R=128, batch 256 that is 16x4 and 16x32 programs.
# The hidden layer's launch has few tiles and a long loop over the channels (split into slices
# among programs, _channel_slice): its time is the loop's memory rounds, so wide steps, 8 warps
# to hold them without spilling (4 warps spill on sm_80 with bf16 weights at steps of 64) and 4
# stages in flight.
EXCITE_FWD = dict(BLOCK_N=16, BLOCK_C=64, BLOCK_R=32, BLOCK_K=128)
HIDDEN_WARPS, HIDDEN_STAGES = 8, 4
HIDDEN_MERGE = 8  # slices the hidden layer's last program sums a trip ([8, 16, 32] fp32: 16 a thread)
# The backward: matrix-vector below MM_MIN_BATCH images (one image per program: [1, BLOCK_K,
# BLOCK_R] broadcast products), tl.dot tiles from it. The "hidden" kernel's loop over the
# channels is split into slices among programs (HIDDEN_PER_SM per SM; the last of a block merges
# them, HIDDEN_MERGE slices a trip, where two a trip made the merge most of the kernel): in the
# matrix-vector form 8 per SM, 32 slices of [1, 32] a trip (predicted at C=2048, 7x7, sm_90a,
# bf16: batch 1, 18.4 -> 3.2 us; batch 8, 12.2 -> 3.6); in the tl.dot form 2 per SM, 8 slices of
# [16, 64] a trip (batch 64: 10.5 -> 6.8 us), steps of 64 channels with 4 warps. The "params" kernel's programs own
# [16 channels, 32 hidden units] each and loop over the whole batch: where they are fewer than
# the SMs (C * R small) each takes 128 images a trip with 8 warps and 3 stages (fewer, longer
# trips), where they are many, 64 images with 4 warps and 2 stages (5 CTAs per SM, one wave at
# C=2048, R=128). Its weight gradients' products (two fp32 activations) are FMAs: tf32x3 tiles
# take 242 registers and predict twice the time (ptxas, sm_90a).
MM_MIN_BATCH = 16
# Batches of at most FUSED_MAX_BATCH images: the forward in two launches, not four (at batch 8 and
# 7x7 the activations are a few MB, and each dependent launch costs as much as moving them). The
# squeeze's last programs compute the hidden layer (fp32 FMAs, w1 read once per image), and the
# scale's programs compute s for their own tile (BLOCK_C * R FMAs each, w2 read from L2 once per
# tile: at batch 8, C=2048, R=128 and 7x7, 256 tiles read 4 MB of w2, where x is 1.6 MB). Above it
# the hidden layer and s are computed once per image on the tensor cores, in their own launches.
FUSED_MAX_BATCH = 8
FUSED_BLOCK_R = tl.constexpr(32)  # hidden units a step of the fused kernels' products
EXCITE_MV = dict(BLOCK_N=1, BLOCK_C=32, BLOCK_R=32, HIDDEN_BLOCK_R=32, BLOCK_K=32, DOT=False, HIDDEN_MERGE=32,
                 HIDDEN_PER_SM=8)
EXCITE_MM = dict(BLOCK_N=16, BLOCK_C=16, BLOCK_R=32, HIDDEN_BLOCK_R=64, BLOCK_K=64, DOT=True,
                 HIDDEN_MERGE=8, HIDDEN_PER_SM=2)
EXCITE_WARPS = 4
BWD_HIDDEN_OPTIONS = {False: dict(num_warps=4), True: dict(num_warps=4, num_stages=3)}
BWD_HIDDEN_FP32_WEIGHTS = dict(num_warps=8, num_stages=3)  # 3xTF32's six products: 4 warps spill on sm_90a
PARAMS_MV = dict(num_warps=4)
# The params kernel's images a trip in the matrix-vector form: 4 ([32, 4, 32] broadcast products,
# 72 registers, sm_90a) where one image a trip spent a memory round per image and chunk: predicted
# at batch 8, sm_90a, bf16: 32.2 -> 9.0 us at 56x56 (C=256), 9.1 -> 4.2 at 7x7 (C=2048); 8 images
# take 128 registers and gain little more.
PARAMS_MV_IMAGES = 4
PARAMS_FEW = dict(BLOCK_N=128, num_warps=8, num_stages=3)  # fewer programs than SMs
PARAMS_MANY = dict(BLOCK_N=64, num_warps=4, num_stages=2)
# Under the interpreter (cost per program and per op, hardly per element) all channels, hidden
# units and (matrix-vector form) images in one tile; use_config() selects the GPU configs.


@_common.autotune(REDUCE_CONFIGS, key=TUNE_KEY, interpreter_config=INTERPRETER_TILE)
@triton.jit
def _se_squeeze_kernel(X, WS, N, C, P, x_stride_n, x_stride_c, x_stride_p, NUM_CHUNKS,
                       W1, B1, ZP, H, ARRIVED, R, inv_hw, w1_stride_r, w1_stride_c,
                       HIDDEN: tl.constexpr, MAX_BLOCKS: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr):
    """WS[n, chunk, c] = fp32 sum of x[n, c, p] over the pixel tiles chunk, chunk + NUM_CHUNKS, ...
    of image n (grid: N * NUM_CHUNKS, channel blocks); a chunk owning no tile writes zeros.

    HIDDEN (small batches, :data:`FUSED_MAX_BATCH`): the hidden layer too, in this launch. The last
    chunk of an (image, channel block) to arrive takes the block's mean and stores its share of
    ``w1 m`` (fp32 ``ZP[n, block, R]``); the last block of an image to arrive sums the shares in
    block order (``MAX_BLOCKS``: the channel blocks at the smallest config, a power of two), adds
    ``b1`` and stores ``relu`` of it (fp32 ``H[n, R]``). ARRIVED: one counter per (image, block),
    then one per image."""
    pid = tl.program_id(0)
    n = pid // NUM_CHUNKS
    chunk = pid % NUM_CHUNKS
    c, cmask = _common.channel_block(C, BLOCK_C)
    rows = tl.arange(0, BLOCK_P)
    x_image = X + n.to(tl.int64) * x_stride_n
    acc = tl.zeros([BLOCK_P, BLOCK_C], dtype=tl.float32)
    for p0 in range(chunk * BLOCK_P, P, NUM_CHUNKS * BLOCK_P):
        mask = (rows[:, None] < P - p0) & cmask[None, :]
        acc += tl.load(x_image + _common.image_offsets(p0, rows, c, x_stride_c, x_stride_p), mask=mask,
                       other=0.0).to(tl.float32)
    tl.store(WS + (n * NUM_CHUNKS + chunk) * C + c, tl.sum(acc, axis=0), mask=cmask)
    if HIDDEN:
        blocks = tl.num_programs(1)
        block = n * blocks + tl.program_id(1)
        if _common.last_arrival(ARRIVED, block, NUM_CHUNKS):  # every chunk of this block is in WS
            m = tl.zeros([BLOCK_C], dtype=tl.float32)
            for k in range(0, NUM_CHUNKS):  # in chunk order, as the excitation kernels sum them
                m += tl.load(WS + (n * NUM_CHUNKS + k) * C + c, mask=cmask, other=0.0, cache_modifier=".cg")
            m = m * inv_hw
            for r0 in range(0, R, FUSED_BLOCK_R):
                r = r0 + tl.arange(0, FUSED_BLOCK_R)
                w = tl.load(W1 + r[:, None] * w1_stride_r + c[None, :] * w1_stride_c,
                            mask=(r < R)[:, None] & cmask[None, :], other=0.0)
                tl.store(ZP + block * R + r, tl.sum(w.to(tl.float32) * m[None, :], axis=1), mask=r < R)
            tl.store(ARRIVED + block, 0)  # zero again for the next launch
            image = N * blocks + n  # the image's counter, after the blocks'
            if _common.last_arrival(ARRIVED, image, blocks):  # every block's share of image n is in ZP
                b = tl.arange(0, MAX_BLOCKS)
                for r0 in range(0, R, FUSED_BLOCK_R):
                    r = r0 + tl.arange(0, FUSED_BLOCK_R)
                    shares = tl.load(ZP + (n * blocks + b[:, None]) * R + r[None, :],
                                     mask=(b < blocks)[:, None] & (r < R)[None, :], other=0.0, cache_modifier=".cg")
                    z = tl.sum(shares, axis=0) + tl.load(B1 + r, mask=r < R, other=0.0).to(tl.float32)
                    tl.store(H + n * R + r, tl.where(z > 0.0, z, 0.0), mask=r < R)
                tl.store(ARRIVED + image, 0)


@triton.jit
def _tf32_round(x):
    """x rounded to the nearest tf32 value (10 mantissa bits; ties away from zero), as an fp32 whose
    13 low mantissa bits are zero: the tensor cores read it exactly, and ``x - _tf32_round(x)`` is
    exact and at most 2**-11 |x| (the error-free split of 3xTF32)."""
    return ((x.to(tl.uint32, bitcast=True) + 0x1000) & 0xFFFFE000).to(tl.float32, bitcast=True)


@triton.jit
def _dot_acc(a, w, acc):
    """``acc + a @ w`` on the tensor cores, fp32 accurate: ``a`` [M, K] is fp32, ``w`` [K, N] in
    its storage dtype, every dimension at least 16.

    * w in bf16 or fp16: w is exact in its dtype, so only ``a`` is split, ``a = hi + lo`` both in
      w's dtype (``lo`` holds the next 8 or 11 bits): two bf16/fp16 products, fp32 accumulate,
      relative error about 2**-16 (bf16) or 2**-22 (fp16) per product instead of a's rounding.
    * w in fp32: 3xTF32, ``hi*hi + hi*lo + lo*hi`` of tf32 halves, each half rounded to nearest
      (the dropped ``lo*lo`` and the rounding of ``lo`` are about 2**-22 relative): three tf32
      products instead of FP32 FMAs.

    The small products first, so they are not lost against the large one. The interpreter
    multiplies bf16 operands as raw integers: there they are widened to fp32 first (exact)."""
    if w.dtype == tl.float32:
        a_hi = _tf32_round(a)
        w_hi = _tf32_round(w)
        acc = tl.dot(a_hi, _tf32_round(w - w_hi), acc, input_precision="tf32")
        acc = tl.dot(_tf32_round(a - a_hi), w_hi, acc, input_precision="tf32")
        return tl.dot(a_hi, w_hi, acc, input_precision="tf32")
    else:
        a_hi = a.to(w.dtype)
        a_lo = (a - a_hi.to(tl.float32)).to(w.dtype)
        if _common.INTERPRETED:
            return tl.dot(a_hi.to(tl.float32), w.to(tl.float32), tl.dot(a_lo.to(tl.float32), w.to(tl.float32), acc))
        else:
            return tl.dot(a_hi, w, tl.dot(a_lo, w, acc))


@triton.jit
def _matmul(a, b, DOT: tl.constexpr):
    """[M, K] @ [K, N] in fp32 (the backward's): a broadcast product and sum, or tl.dot: for
    ``b`` a bf16/fp16 weight tile on the tensor cores (``_dot_acc``), for fp32 ``b`` in IEEE fp32
    (no tf32)."""
    if DOT:
        if b.dtype == tl.float32:
            return tl.dot(a, b, input_precision="ieee")
        else:
            return _dot_acc(a, b, tl.zeros([a.shape[0], b.shape[1]], dtype=tl.float32))
    else:
        return tl.sum(a[:, :, None] * b[None, :, :], axis=1)


@triton.jit
def _se_excite_kernel(IN, W, B, OUT, ZP, ARRIVED, N, K, M, NUM_CHUNKS, K_SPLIT, scale, w_stride_m, w_stride_k,
                      BLOCK_N: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr, SIGMOID: tl.constexpr,
                      SPLIT: tl.constexpr, MERGE: tl.constexpr):
    """One layer of the excitation, launched twice: OUT[n, j] = act(b[j] + sum_k w[j, k] a[n, k]),
    fp32 [N, M], with a = scale * the sum over the chunks of IN[n, :, k] (IN: [N, NUM_CHUNKS, K]
    fp32) and act = ReLU (the hidden layer: IN = the squeeze's partials, scale = 1 / (H*W), w =
    w1) or the sigmoid (SIGMOID: IN = the hidden layer, NUM_CHUNKS = 1, w = w2). One [BLOCK_N
    images, BLOCK_M outputs] tile per program, a loop over the inputs; each layer is computed
    once per image. SPLIT: the loop over the inputs is cut into slices of K_SPLIT (grid axis 2,
    one a program); each program stores its slice's sum in ZP (fp32 ``[slices, N, M]``) and the
    last of a tile to arrive (:func:`_common.last_arrival`) adds them, MERGE slices a trip (a
    ``[MERGE, BLOCK_N, BLOCK_M]`` load summed over the slices, then the trips in order: the same
    sums whichever program is last), and finishes the layer."""
    n = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    nmask = n < N
    j = tl.program_id(1) * BLOCK_M + tl.arange(0, BLOCK_M)
    jmask = j < M
    omask = nmask[:, None] & jmask[None, :]
    z = tl.zeros([BLOCK_N, BLOCK_M], dtype=tl.float32)
    first = tl.program_id(2) * K_SPLIT
    for k0 in range(first, tl.minimum(first + K_SPLIT, K), BLOCK_K):
        k = k0 + tl.arange(0, BLOCK_K)
        kmask = k < K
        amask = nmask[:, None] & kmask[None, :]
        a = tl.zeros([BLOCK_N, BLOCK_K], dtype=tl.float32)
        for c in range(0, NUM_CHUNKS):
            a += tl.load(IN + (n[:, None] * NUM_CHUNKS + c) * K + k[None, :], mask=amask, other=0.0)
        w = tl.load(W + j[None, :] * w_stride_m + k[:, None] * w_stride_k, mask=kmask[:, None] & jmask[None, :],
                    other=0.0)  # [BLOCK_K, BLOCK_M] = w^T, in its storage dtype (the tensor cores' operand)
        z = _dot_acc(a * scale, w, z)
    finish = True
    if SPLIT:
        tl.store(ZP + (tl.program_id(2) * N + n[:, None]) * M + j[None, :], z, mask=omask)
        slices = tl.num_programs(2)
        block = tl.program_id(0) * tl.num_programs(1) + tl.program_id(1)
        finish = _common.last_arrival(ARRIVED, block, slices)  # every slice of this tile is in ZP
        if finish:
            z = tl.zeros([BLOCK_N, BLOCK_M], dtype=tl.float32)
            sl = tl.arange(0, MERGE)
            for sl0 in range(0, slices, MERGE):  # MERGE slices a trip, one load, summed over them
                shares = ZP + (((sl0 + sl) * N)[:, None, None] + n[None, :, None]) * M + j[None, None, :]
                mask = (sl0 + sl < slices)[:, None, None] & omask[None, :, :]
                z += tl.sum(tl.load(shares, mask=mask, other=0.0, cache_modifier=".cg"), axis=0)
            tl.store(ARRIVED + block, 0)  # zero again for the next launch
    if finish:
        z += tl.load(B + j, mask=jmask, other=0.0).to(tl.float32)[None, :]
        if SIGMOID:
            z = 1.0 / (1.0 + tl.exp(-z))
        else:
            z = tl.where(z > 0.0, z, 0.0)
        tl.store(OUT + n[:, None] * M + j[None, :], z, mask=omask)


@triton.jit
def _chunk_sums(WS, DWS, n, k, K, NUM_CHUNKS, mask):
    """``(sum_j WS[n, j, k], sum_j DWS[n, j, k])`` over the NUM_CHUNKS partials of ``[N, NUM_CHUNKS, K]``
    fp32 workspaces, for a ``[len(n), len(k)]`` tile: the squeeze's sums of x and the reduce's of
    d(s), both loaded before either is added (two loads in flight a trip)."""
    m = tl.zeros(mask.shape, dtype=tl.float32)
    ds = tl.zeros(mask.shape, dtype=tl.float32)
    for j in range(0, NUM_CHUNKS):
        off = (n[:, None] * NUM_CHUNKS + j) * K + k[None, :]
        m += tl.load(WS + off, mask=mask, other=0.0)
        ds += tl.load(DWS + off, mask=mask, other=0.0)
    return m, ds


@triton.jit
def _se_excite_bwd_hidden_kernel(WS, DWS, S, W1, B1, W2, ZP, H, DZ1, ARRIVED, N, C, R, NUM_CHUNKS, C_SPLIT, inv_hw,
                                 w1_stride_r, w1_stride_c, w2_stride_c, w2_stride_r,
                                 BLOCK_N: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_K: tl.constexpr,
                                 DOT: tl.constexpr, MERGE: tl.constexpr):
    """Per [BLOCK_N images, BLOCK_R hidden units] and slice of C_SPLIT channels (grid axis 2, one
    slice per program): the slice's share of ``w1 m`` and of ``w2^T dz2`` (dz2 = d(s) * s * (1 - s),
    d(s) the sum over the chunks of DWS), stored in ZP (fp32 ``[slices, 2, N, R]``). The slices of
    a block split the long loop over the channels among programs; the last to finish
    (:func:`_common.last_arrival`, one counter per block) sums them, MERGE slices a trip (one
    ``[MERGE, BLOCK_N, BLOCK_R]`` load per plane, summed over the slices, then the trips in order:
    the same sums whichever program is last), adds b1 and writes H = relu(z1) and
    DZ1 = (w2^T dz2) * (z1 > 0), fp32 [N, R] each."""
    n = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    nmask = n < N
    r = tl.program_id(1) * BLOCK_R + tl.arange(0, BLOCK_R)
    rmask = r < R
    omask = nmask[:, None] & rmask[None, :]
    z = tl.zeros([BLOCK_N, BLOCK_R], dtype=tl.float32)
    dh = tl.zeros([BLOCK_N, BLOCK_R], dtype=tl.float32)
    first = tl.program_id(2) * C_SPLIT
    for k0 in range(first, tl.minimum(first + C_SPLIT, C), BLOCK_K):
        k = k0 + tl.arange(0, BLOCK_K)
        kmask = k < C
        mmask = nmask[:, None] & kmask[None, :]
        m, ds = _chunk_sums(WS, DWS, n, k, C, NUM_CHUNKS, mmask)
        s = tl.load(S + n[:, None] * C + k[None, :], mask=mmask, other=0.0)
        wmask = kmask[:, None] & rmask[None, :]
        # the weights in their storage dtype: the tensor cores' operands in the tl.dot form
        w1 = tl.load(W1 + r[None, :] * w1_stride_r + k[:, None] * w1_stride_c, mask=wmask, other=0.0)  # w1^T
        w2 = tl.load(W2 + k[:, None] * w2_stride_c + r[None, :] * w2_stride_r, mask=wmask, other=0.0)
        z += _matmul(m * inv_hw, w1, DOT)
        dh += _matmul(ds * s * (1.0 - s), w2, DOT)
    zp = ZP + (tl.program_id(2) * 2 * N + n[:, None]) * R + r[None, :]
    tl.store(zp, z, mask=omask)
    tl.store(zp + N * R, dh, mask=omask)
    block = tl.program_id(0) * tl.num_programs(1) + tl.program_id(1)
    slices = tl.num_programs(2)
    if _common.last_arrival(ARRIVED, block, slices):  # every slice of this block is in ZP
        z = tl.zeros([BLOCK_N, BLOCK_R], dtype=tl.float32)
        dh = tl.zeros([BLOCK_N, BLOCK_R], dtype=tl.float32)
        j = tl.arange(0, MERGE)
        for j0 in range(0, slices, MERGE):
            shares = ZP + (((j0 + j) * 2 * N)[:, None, None] + n[None, :, None]) * R + r[None, None, :]
            mask = (j0 + j < slices)[:, None, None] & omask[None, :, :]
            z_j = tl.load(shares, mask=mask, other=0.0, cache_modifier=".cg")  # both planes in flight
            dh_j = tl.load(shares + N * R, mask=mask, other=0.0, cache_modifier=".cg")
            z += tl.sum(z_j, axis=0)
            dh += tl.sum(dh_j, axis=0)
        z += tl.load(B1 + r, mask=rmask, other=0.0).to(tl.float32)[None, :]
        tl.store(H + n[:, None] * R + r[None, :], tl.where(z > 0.0, z, 0.0), mask=omask)
        tl.store(DZ1 + n[:, None] * R + r[None, :], tl.where(z > 0.0, dh, 0.0), mask=omask)
        tl.store(ARRIVED + block, 0)  # zero again for the next launch


@triton.jit
def _se_excite_bwd_params_kernel(WS, DWS, S, W1, H, DZ1, DM, DW1, DB1, DW2, DB2, N, C, R, NUM_CHUNKS, N_SPLIT, inv_hw,
                                 w1_stride_r, w1_stride_c, dw1_stride_r, dw1_stride_c, dw2_stride_c, dw2_stride_r,
                                 BLOCK_N: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_R: tl.constexpr,
                                 DOT: tl.constexpr):
    """Per [BLOCK_C channels, BLOCK_R hidden units] (grid axes 0 and 1): dw2[c, r] = dz2^T h,
    dw1[r, c] = dz1^T m over the whole batch, db2[c] = sum_n dz2 (the r-block 0 programs) and
    db1[r] = sum_n dz1 (the c-block 0 programs); and the mean's gradient DM = (dz1 w1) / (H*W)
    (fp32 [N, C]) for the block's channels and its share of the images (the r-block's N_SPLIT of
    them), so the R / BLOCK_R programs of a channel block split that product among them."""
    c = tl.program_id(0) * BLOCK_C + tl.arange(0, BLOCK_C)
    cmask = c < C
    r = tl.program_id(1) * BLOCK_R + tl.arange(0, BLOCK_R)
    rmask = r < R
    # the weights' and biases' gradients: sums over the batch
    g2 = tl.zeros([BLOCK_C, BLOCK_R], dtype=tl.float32)
    g1 = tl.zeros([BLOCK_C, BLOCK_R], dtype=tl.float32)  # dw1^T
    db1 = tl.zeros([BLOCK_R], dtype=tl.float32)
    db2 = tl.zeros([BLOCK_C], dtype=tl.float32)
    for n0 in range(0, N, BLOCK_N):
        n = n0 + tl.arange(0, BLOCK_N)
        nmask = n < N
        mmask = nmask[:, None] & cmask[None, :]
        m, ds = _chunk_sums(WS, DWS, n, c, C, NUM_CHUNKS, mmask)
        s = tl.load(S + n[:, None] * C + c[None, :], mask=mmask, other=0.0)
        dz2 = ds * s * (1.0 - s)
        hmask = nmask[:, None] & rmask[None, :]
        h = tl.load(H + n[:, None] * R + r[None, :], mask=hmask, other=0.0)
        dz1 = tl.load(DZ1 + n[:, None] * R + r[None, :], mask=hmask, other=0.0)
        g2 += _matmul(tl.trans(dz2), h, DOT)
        g1 += _matmul(tl.trans(m * inv_hw), dz1, DOT)
        db1 += tl.sum(dz1, axis=0)
        db2 += tl.sum(dz2, axis=0)
    wmask = cmask[:, None] & rmask[None, :]
    tl.store(DW2 + c[:, None] * dw2_stride_c + r[None, :] * dw2_stride_r, g2.to(DW2.dtype.element_ty), mask=wmask)
    tl.store(DW1 + r[None, :] * dw1_stride_r + c[:, None] * dw1_stride_c, g1.to(DW1.dtype.element_ty), mask=wmask)
    tl.store(DB1 + r, db1.to(DB1.dtype.element_ty), mask=rmask & (tl.program_id(0) == 0))
    tl.store(DB2 + c, db2.to(DB2.dtype.element_ty), mask=cmask & (tl.program_id(1) == 0))
    # the mean's gradient for this program's share of the images, over every hidden unit
    n_first = tl.program_id(1) * N_SPLIT
    for n0 in range(n_first, tl.minimum(n_first + N_SPLIT, N), BLOCK_N):
        n = n0 + tl.arange(0, BLOCK_N)
        nmask = (n < N) & (n < n_first + N_SPLIT)
        acc = tl.zeros([BLOCK_N, BLOCK_C], dtype=tl.float32)
        for r0 in range(0, R, BLOCK_R):
            rr = r0 + tl.arange(0, BLOCK_R)
            rrmask = rr < R
            dz1 = tl.load(DZ1 + n[:, None] * R + rr[None, :], mask=nmask[:, None] & rrmask[None, :], other=0.0)
            w1 = tl.load(W1 + rr[:, None] * w1_stride_r + c[None, :] * w1_stride_c,
                         mask=rrmask[:, None] & cmask[None, :], other=0.0)  # in its storage dtype: tl.dot's operand
            acc += _matmul(dz1, w1, DOT)
        tl.store(DM + n[:, None] * C + c[None, :], acc * inv_hw, mask=nmask[:, None] & cmask[None, :])


@_common.autotune(TILE_CONFIGS, key=TUNE_KEY, interpreter_config=INTERPRETER_TILE)
@triton.jit
def _se_scale_kernel(X, RES, Y, S, H, W2, B2, N, C, P, R, w2_stride_c, w2_stride_r,
                     x_stride_n, x_stride_c, x_stride_p, res_stride_n, res_stride_c, res_stride_p,
                     y_stride_n, y_stride_c, y_stride_p, HAS_RES: tl.constexpr, RELU: tl.constexpr,
                     EXCITE: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr):
    """y = relu(x * s[n, c] [+ res]): one read of x (and res), one write of y.

    EXCITE (with the squeeze's HIDDEN): s is computed here from the hidden layer H (fp32 [N, R]),
    ``sigmoid(b2 + w2 h)`` for the tile's image and channels (``BLOCK_C * R`` FMAs, w2's rows
    read from L2), and stored by the image's first pixel tile for the backward."""
    n, p0, rows, c, cmask, mask = _common.program_tile(P, C, BLOCK_P, BLOCK_C)
    if EXCITE:
        z = tl.load(B2 + c, mask=cmask, other=0.0).to(tl.float32)
        for r0 in range(0, R, FUSED_BLOCK_R):
            r = r0 + tl.arange(0, FUSED_BLOCK_R)
            h = tl.load(H + n * R + r, mask=r < R, other=0.0)
            w = tl.load(W2 + c[None, :] * w2_stride_c + r[:, None] * w2_stride_r,
                        mask=(r < R)[:, None] & cmask[None, :], other=0.0)
            z += tl.sum(w.to(tl.float32) * h[:, None], axis=0)
        s = 1.0 / (1.0 + tl.exp(-z))
        if p0 == 0:
            tl.store(S + n * C + c, s, mask=cmask)
        s = s[None, :]
    else:
        s = tl.load(S + n * C + c, mask=cmask, other=0.0)[None, :]
    x = tl.load(_common.tile_ptrs(X, n, p0, rows, c, x_stride_n, x_stride_c, x_stride_p), mask=mask, other=0.0)
    y = x.to(tl.float32) * s
    y = _common.residual_relu(y, RES, n, p0, rows, c, mask, res_stride_n, res_stride_c, res_stride_p, HAS_RES, RELU)
    tl.store(_common.tile_ptrs(Y, n, p0, rows, c, y_stride_n, y_stride_c, y_stride_p), y.to(Y.dtype.element_ty),
             mask=mask)


@_common.autotune(REDUCE_CONFIGS, key=TUNE_KEY, interpreter_config=INTERPRETER_TILE)
@triton.jit
def _se_bwd_reduce_kernel(X, Y, DY, G, WS, N, C, P, x_stride_n, x_stride_c, x_stride_p, y_stride_n, y_stride_c,
                          y_stride_p, dy_stride_n, dy_stride_c, dy_stride_p, g_stride_n, g_stride_c, g_stride_p,
                          NUM_CHUNKS, RELU: tl.constexpr, HAS_G: tl.constexpr, BLOCK_P: tl.constexpr,
                          BLOCK_C: tl.constexpr):
    """WS[n, chunk, c] = fp32 sum of g * x over the chunk's pixel tiles of image n, g = dy * (y > 0);
    with HAS_G, g itself is written to G (the residual's gradient) as it goes."""
    pid = tl.program_id(0)
    n = pid // NUM_CHUNKS
    chunk = pid % NUM_CHUNKS
    c, cmask = _common.channel_block(C, BLOCK_C)
    rows = tl.arange(0, BLOCK_P)
    n64 = n.to(tl.int64)
    x_image, y_image, dy_image = X + n64 * x_stride_n, Y + n64 * y_stride_n, DY + n64 * dy_stride_n
    g_image = G + n64 * g_stride_n
    acc = tl.zeros([BLOCK_P, BLOCK_C], dtype=tl.float32)
    for p0 in range(chunk * BLOCK_P, P, NUM_CHUNKS * BLOCK_P):
        mask = (rows[:, None] < P - p0) & cmask[None, :]
        g = tl.load(dy_image + _common.image_offsets(p0, rows, c, dy_stride_c, dy_stride_p), mask=mask,
                    other=0.0)
        if RELU:
            y = tl.load(y_image + _common.image_offsets(p0, rows, c, y_stride_c, y_stride_p), mask=mask, other=0.0)
            g = tl.where(y <= 0.0, 0.0, g)  # torch's threshold_backward on the output
        if HAS_G:
            tl.store(g_image + _common.image_offsets(p0, rows, c, g_stride_c, g_stride_p), g.to(G.dtype.element_ty),
                     mask=mask)
        g = g.to(tl.float32)
        x = tl.load(x_image + _common.image_offsets(p0, rows, c, x_stride_c, x_stride_p), mask=mask,
                    other=0.0).to(tl.float32)
        acc += g * x
    tl.store(WS + (n * NUM_CHUNKS + chunk) * C + c, tl.sum(acc, axis=0), mask=cmask)


@_common.autotune(TILE_CONFIGS, key=TUNE_KEY, interpreter_config=INTERPRETER_TILE)
@triton.jit
def _se_bwd_dx_kernel(Y, DY, DX, DRES, S, DM, N, C, P, y_stride_n, y_stride_c, y_stride_p,
                      dy_stride_n, dy_stride_c, dy_stride_p, dx_stride_n, dx_stride_c, dx_stride_p,
                      dres_stride_n, dres_stride_c, dres_stride_p,
                      RELU: tl.constexpr, HAS_DX: tl.constexpr, HAS_DRES: tl.constexpr,
                      BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr):
    """dx = g * s[n, c] + dm[n, c] (dm: the mean's gradient, already / (H*W)); d(res) = g."""
    n, p0, rows, c, cmask, mask = _common.program_tile(P, C, BLOCK_P, BLOCK_C)
    s = tl.load(S + n * C + c, mask=cmask, other=0.0)[None, :]
    dm = tl.load(DM + n * C + c, mask=cmask, other=0.0)[None, :]
    g = tl.load(_common.tile_ptrs(DY, n, p0, rows, c, dy_stride_n, dy_stride_c, dy_stride_p), mask=mask,
                other=0.0).to(tl.float32)
    if RELU:
        y = tl.load(_common.tile_ptrs(Y, n, p0, rows, c, y_stride_n, y_stride_c, y_stride_p), mask=mask, other=0.0)
        g = tl.where(y <= 0.0, 0.0, g)
    if HAS_DX:
        tl.store(_common.tile_ptrs(DX, n, p0, rows, c, dx_stride_n, dx_stride_c, dx_stride_p),
                 (g * s + dm).to(DX.dtype.element_ty), mask=mask)
    if HAS_DRES:
        tl.store(_common.tile_ptrs(DRES, n, p0, rows, c, dres_stride_n, dres_stride_c, dres_stride_p),
                 g.to(DRES.dtype.element_ty), mask=mask)


# --- launchers ----------------------------------------------------------------------------------

def _image_view(*tensors):
    """``(N, P, strides)``: ``_common.pixel_view`` with the batch kept as an axis (the squeeze
    is per image). Where pixel_view folded the batch into the pixels (channels_last, batch 1,
    1x1), image n starts ``P`` pixels after image n - 1."""
    n, _, h, w = tensors[0].shape
    n_, p, strides = _common.pixel_view(*tensors)
    if n_ == 1 and n > 1:
        p = h * w
        strides = [(p * sp, sc, sp) for _, sc, sp in strides]
    return n, p, strides


def _chunks(n: int, p: int, c: int, device) -> int:
    """Programs per (image, channel block) of a split reduction over one image's pixels: the
    shared rule, with the N*C (image, channel) pairs as the channels to fill the GPU with."""
    return _common.split_chunks(p, n * c, device)


def _whole(v: int) -> int:
    """Under the interpreter: one block for the whole axis (at least 16, tl.dot's least)."""
    return max(triton.next_power_of_2(v), 16)


def _excite_forward_config(c: int, r: int) -> dict:
    if _common.INTERPRET and _common._FORCED_CONFIG is None:
        return {**EXCITE_FWD, "BLOCK_C": _whole(c), "BLOCK_K": _whole(c), "BLOCK_R": _whole(r)}
    return EXCITE_FWD


def _excite_config(n: int, c: int, r: int) -> dict:
    """The backward's."""
    cfg = EXCITE_MM if n >= MM_MIN_BATCH else EXCITE_MV
    if _common.INTERPRET and _common._FORCED_CONFIG is None:
        cfg = {**cfg, "BLOCK_C": _whole(c), "BLOCK_K": _whole(c), "BLOCK_R": _whole(r), "HIDDEN_BLOCK_R": _whole(r)}
        if not cfg["DOT"]:
            cfg["BLOCK_N"] = triton.next_power_of_2(n)
    return cfg


def _backward_configs(cfg: dict, n: int, params_programs: int, sms: int, weight_dtype: torch.dtype):
    """(hidden kernel's meta-parameters and options, params kernel's) of an _excite_config for
    ``n`` images, the params kernel's by how many programs it has (``params_programs``) against
    ``sms``."""
    hidden = {"BLOCK_R": cfg["HIDDEN_BLOCK_R"], "MERGE": cfg["HIDDEN_MERGE"],
              **{k: cfg[k] for k in ("BLOCK_N", "BLOCK_K", "DOT")}}
    if not cfg["DOT"]:
        # images a trip: up to PARAMS_MV_IMAGES (the interpreter's whole-batch tile, if larger)
        params = {**PARAMS_MV, "BLOCK_N": max(cfg["BLOCK_N"], min(triton.next_power_of_2(n), PARAMS_MV_IMAGES))}
    else:
        params = PARAMS_FEW if params_programs <= sms else PARAMS_MANY
    options = {k: v for k, v in params.items() if k.startswith("num_")}
    params = {"BLOCK_N": params["BLOCK_N"], **{k: cfg[k] for k in ("BLOCK_C", "BLOCK_R", "DOT")}}
    hidden_options = BWD_HIDDEN_OPTIONS[cfg["DOT"]]
    if cfg["DOT"] and weight_dtype == torch.float32:
        hidden_options = BWD_HIDDEN_FP32_WEIGHTS
    return (hidden, hidden_options), (params, options)


def _forward(x, w1, b1, w2, b2, residual, relu):
    """Returns ``(y, ws, s)``: ws = fp32 [N, chunks, C] partial sums of x, s = fp32 [N, C] scale."""
    n, c, h, w = x.shape
    r_ = w1.shape[0]
    device = x.device
    y = _common.empty_like(x)
    tensors = [x] + ([residual] if residual is not None else []) + [y]
    n_, p, strides = _image_view(*tensors)
    x_strides, y_strides = strides[0], strides[-1]
    res_strides = strides[1] if residual is not None else x_strides
    chunks = _chunks(n_, p, c, device)
    ws = _common.empty((n, chunks, c), torch.float32, device)
    s = _common.empty((n, c), torch.float32, device)
    if x.numel() == 0:
        return y, ws.zero_(), s.zero_()
    hidden = _common.empty((n, r_), torch.float32, device)
    fused = n <= FUSED_MAX_BATCH
    w1_strides, w2_strides = (w1.stride(0), w1.stride(1)), (w2.stride(0), w2.stride(1))
    blocks = _common.cdiv(c, min(cfg.kwargs["BLOCK_C"] for cfg in REDUCE_CONFIGS + [INTERPRETER_TILE]))
    with _common.device_guard(x):
        _se_squeeze_kernel[lambda meta: (n_ * chunks, _common.cdiv(c, meta["BLOCK_C"]))](
            x, ws,  # input; fp32 partial sums per (image, chunk, channel)
            n_, c, p, *x_strides,  # the (n, c, p) view, one image per n, and x's strides in it
            chunks,  # programs per (image, channel block)
            w1, b1,  # the first layer (HIDDEN only)
            # fp32 shares of w1 m per (image, channel block), at most `blocks` blocks (HIDDEN only)
            _common.empty((n, blocks, r_), torch.float32, device) if fused else ws,
            hidden,  # output (HIDDEN): fp32 hidden layer per (image, hidden unit)
            _common.arrival_counters(device, n * (blocks + 1)) if fused else ws,  # zero between launches
            r_, 1.0 / (h * w), *w1_strides,  # hidden units, 1/(H*W), w1's strides
            HIDDEN=fused, MAX_BLOCKS=triton.next_power_of_2(blocks))
        if not fused:
            _excite_forward(ws, hidden, s, w1, b1, w2, b2, chunks, h * w)
        _se_scale_kernel[_common.tile_grid(n_, p, c)](
            x, residual if residual is not None else x, y,  # the residual pointer is not read without one
            s,  # fp32 scale per (image, channel): written here when fused, else read
            hidden, w2, b2,  # the hidden layer and the second layer (fused only)
            n_, c, p, r_, *w2_strides,  # the (n, c, p) view, one image per n; hidden units; w2's strides
            *x_strides, *res_strides, *y_strides,
            HAS_RES=residual is not None, RELU=relu, EXCITE=fused)
    return y, ws, s


def _excite_forward(ws, hidden, s, w1, b1, w2, b2, chunks: int, hw: int):
    """The excitation on the tensor cores, once per image: the hidden layer (fp32 [N, R]) from the
    squeeze's partials ``ws``, then the scale ``s`` (fp32 [N, C])."""
    n, _, c = ws.shape
    r_ = w1.shape[0]
    device = ws.device
    cfg = _excite_forward_config(c, r_)
    hidden_tiles = (_common.cdiv(n, cfg["BLOCK_N"]), _common.cdiv(r_, cfg["BLOCK_R"]))
    c_split = _channel_slice(c, cfg["BLOCK_K"], hidden_tiles[0] * hidden_tiles[1], device)
    slices = _common.cdiv(c, c_split)
    arrived = _common.arrival_counters(device, hidden_tiles[0] * hidden_tiles[1])
    _se_excite_kernel[(*hidden_tiles, slices)](
        ws, w1, b1,  # the squeeze's partials; the first layer's parameters
        hidden,  # output: fp32 hidden layer per (image, hidden unit)
        # workspace: each channel slice's sums (not touched, so none allocated, without a split)
        _common.empty((slices, n, r_), torch.float32, device) if slices > 1 else hidden,
        arrived,  # int32 per tile, zero between launches
        n, c, r_, chunks, c_split, 1.0 / hw,  # images, inputs (channels), outputs (hidden units),
        w1.stride(0), w1.stride(1),  # chunks, channels a slice, 1/(H*W); w1's strides
        BLOCK_N=cfg["BLOCK_N"], BLOCK_M=cfg["BLOCK_R"], BLOCK_K=cfg["BLOCK_K"], SIGMOID=False, SPLIT=slices > 1,
        MERGE=HIDDEN_MERGE, num_warps=HIDDEN_WARPS, num_stages=HIDDEN_STAGES)
    _se_excite_kernel[(_common.cdiv(n, cfg["BLOCK_N"]), _common.cdiv(c, cfg["BLOCK_C"]), 1)](
        hidden, w2, b2,  # the hidden layer; the second layer's parameters
        s,  # output: fp32 scale per (image, channel)
        s, arrived,  # no split: no workspace or counter is touched
        n, r_, c, 1, r_, 1.0,  # images, inputs (hidden units), outputs (channels); no chunks, one slice,
        w2.stride(0), w2.stride(1),  # no scaling; w2's strides
        BLOCK_N=cfg["BLOCK_N"], BLOCK_M=cfg["BLOCK_C"], BLOCK_K=cfg["BLOCK_R"], SIGMOID=True, SPLIT=False,
        MERGE=1, num_warps=EXCITE_WARPS)


def _excite_backward(ws, s, dws, w1, b1, w2, b2, hw: int):
    """The excitation's backward on the [N, C]-sized fp32 partials and scale (two small kernels,
    recomputing m, z1 and h): returns (dm / (H*W), dw1, db1, dw2, db2) in the parameters'
    dtypes and shapes."""
    n, chunks, c = ws.shape
    r_ = w1.shape[0]
    device = ws.device
    assert dws.shape == ws.shape
    cfg = _excite_config(n, c, r_)
    r_blocks = _common.cdiv(r_, cfg["BLOCK_R"])
    params_grid = (_common.cdiv(c, cfg["BLOCK_C"]), r_blocks)
    (cfg_h, opts_h), (cfg_p, opts_p) = _backward_configs(cfg, n, params_grid[0] * params_grid[1],
                                                          _common.num_sms(device), w1.dtype)
    h = _common.empty((n, r_), torch.float32, device)
    dz1 = _common.empty((n, r_), torch.float32, device)
    dm = _common.empty((n, c), torch.float32, device)
    dw1 = _common.empty(w1.shape, w1.dtype, device)
    dw2 = _common.empty(w2.shape, w2.dtype, device)
    db1 = _common.empty((r_,), b1.dtype, device)
    db2 = _common.empty((c,), b2.dtype, device)
    if n == 0:
        return dm, dw1.zero_(), db1.zero_(), dw2.zero_(), db2.zero_()
    hidden_blocks = (_common.cdiv(n, cfg["BLOCK_N"]), _common.cdiv(r_, cfg["HIDDEN_BLOCK_R"]))
    c_split = _channel_slice(c, cfg["BLOCK_K"], hidden_blocks[0] * hidden_blocks[1], device, cfg["HIDDEN_PER_SM"])
    slices = _common.cdiv(c, c_split)
    zp = _common.empty((slices, 2, n, r_), torch.float32, device)
    _se_excite_bwd_hidden_kernel[(*hidden_blocks, slices)](
        ws, dws, s,  # fp32 partials of x and of d(s); the forward's scale
        w1, b1, w2,  # parameters
        zp,  # workspace: fp32 [slices, 2, N, R] partial products of each channel slice
        h, dz1,  # outputs: fp32 hidden layer and its gradient per (image, hidden unit)
        _common.arrival_counters(device, hidden_blocks[0] * hidden_blocks[1]),  # int32 per block, zero between launches
        n, c, r_, chunks, c_split, 1.0 / hw,  # images, channels, hidden units, partials per sum, slice, 1 / (H*W)
        w1.stride(0), w1.stride(1), w2.stride(0), w2.stride(1),
        **cfg_h, **opts_h)
    _se_excite_bwd_params_kernel[params_grid](
        ws, dws, s, w1, h, dz1,  # inputs, as above, and the hidden kernel's outputs
        dm, dw1, db1, dw2, db2,  # outputs: the mean's gradient (fp32, / (H*W)), the parameters' gradients
        n, c, r_, chunks,  # images, channels, hidden units, partials per sum
        _common.cdiv(n, r_blocks),  # images per r-block in the mean's gradient
        1.0 / hw,
        w1.stride(0), w1.stride(1), dw1.stride(0), dw1.stride(1), dw2.stride(0), dw2.stride(1),
        **cfg_p, **opts_p)
    return dm, dw1, db1, dw2, db2


def _channel_slice(c: int, block_k: int, blocks: int, device, per_sm: int = 2) -> int:
    """Channels per program of a hidden-layer kernel (the forward's, the backward's): its ``blocks``
    (image, hidden-unit) blocks split the loop over the channels into slices of whole ``block_k``
    steps until there are about ``per_sm`` programs per SM (the interpreter: a slice per step, so
    small tests merge several)."""
    steps = _common.cdiv(c, block_k)
    slices = steps if _common.INTERPRET else max(1, min(steps, _common.cdiv(per_sm * _common.num_sms(device), blocks)))
    return _common.cdiv(steps, slices) * block_k


def _backward(x, y, ws, s, dy, w1, b1, w2, b2, relu, need):
    """need = (x, w1, b1, w2, b2, residual) as in ctx.needs_input_grad."""
    n, c, h, w = x.shape
    device = x.device
    dy = _common.mergeable(dy)
    need_dx, need_dr = need[0], need[5]
    dx = _common.empty_like(x) if need_dx else None
    dr = _common.empty_like(x) if need_dr else None
    ys = y if relu else x  # y is only read for the ReLU mask
    outs = [t for t in (dx, dr) if t is not None]
    n_, p, strides = _image_view(x, ys, dy, *outs)
    x_strides, y_strides, dy_strides = strides[:3]
    dx_strides = strides[3] if dx is not None else x_strides
    dres_strides = strides[-1] if dr is not None else x_strides
    needs_excite = need_dx or any(need[1:5])
    # The reduce writes d(res) = g where both are needed, so that the dx kernel reads g (1T)
    # instead of dy and y (2T) and writes dx alone: 6T in all with residual and ReLU, not 7T.
    g_by_reduce = needs_excite and dr is not None and x.numel() > 0
    dm = dw1 = db1 = dw2 = db2 = None
    with _common.device_guard(x):
        if needs_excite:
            chunks = _chunks(n_, p, c, device)
            dws = _common.empty((n, chunks, c), torch.float32, device)
            if x.numel():
                _se_bwd_reduce_kernel[lambda meta: (n_ * chunks, _common.cdiv(c, meta["BLOCK_C"]))](
                    x, ys, dy,  # ys: y for the ReLU mask, x (not read) without ReLU
                    dr if g_by_reduce else dy,  # output: g = d(res) where asked (dy, not written, otherwise)
                    dws,  # output: fp32 partial sums of g * x per (image, chunk, channel)
                    n_, c, p,  # the (n, c, p) view, one image per n
                    *x_strides, *y_strides, *dy_strides, *(dres_strides if g_by_reduce else dy_strides),
                    chunks,  # programs per (image, channel block)
                    RELU=relu, HAS_G=g_by_reduce)
            else:
                dws.zero_()
            dm, dw1, db1, dw2, db2 = _excite_backward(ws, s, dws, w1, b1, w2, b2, max(h * w, 1))
        if g_by_reduce:  # dx = g * s + dm from g as written: no mask, no second write of d(res)
            (mask_source, g), g_strides, mask = (dr, dr), (dres_strides, dres_strides), False
        else:
            (mask_source, g), g_strides, mask = (ys, dy), (y_strides, dy_strides), relu
        write_dr = dr is not None and not g_by_reduce
        if (dx is not None or write_dr) and x.numel():
            _se_bwd_dx_kernel[_common.tile_grid(n_, p, c)](
                mask_source, g,  # y for the ReLU mask (not read without it); g: dy, or d(res) as written
                dx if dx is not None else dr, dr if dr is not None else dx,  # outputs: only those asked are written
                s, dm if dm is not None else s,  # fp32 scale and mean's gradient per (image, channel)
                n_, c, p,  # the (n, c, p) view, one image per n
                *g_strides[0], *g_strides[1], *dx_strides, *dres_strides,
                RELU=mask, HAS_DX=dx is not None, HAS_DRES=write_dr)
    grads = (dw1, db1, dw2, db2)
    return (dx, *(g if wanted else None for g, wanted in zip(grads, need[1:5], strict=True)), dr)


# --- autograd -----------------------------------------------------------------------------------

class SqueezeExciteFunction(torch.autograd.Function):
    """Saves x, y (only with ReLU: the mask), the squeeze's fp32 partials and the fp32 scale;
    recomputes the mean and the hidden layer in the backward."""

    @staticmethod
    def forward(ctx, x, w1, b1, w2, b2, residual, relu):
        y, ws, s = _forward(x, w1, b1, w2, b2, residual, relu)
        ctx.save_for_backward(x, y if relu else None, ws, s, w1, b1, w2, b2)
        ctx.relu = relu
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, dy):
        x, y, ws, s, w1, b1, w2, b2 = ctx.saved_tensors
        dx, dw1, db1, dw2, db2, dr = _backward(x, y, ws, s, dy, w1, b1, w2, b2, ctx.relu, ctx.needs_input_grad)
        return dx, dw1, db1, dw2, db2, dr, None


# --- public API ---------------------------------------------------------------------------------

def _check_weight(t, name: str, out: int | None, inp: int | None, x, out_name: str, in_name: str):
    """[out, in] (Linear) or [out, in, 1, 1] (1x1 conv); returns (out, in)."""
    _common.check_tensor(t, name, like=x)
    if not (t.dim() == 2 or (t.dim() == 4 and t.shape[2] == 1 and t.shape[3] == 1)):
        raise ValueError(f"{name}: expected a Linear weight [{out_name}, {in_name}] or a 1x1-conv weight "
                         f"[{out_name}, {in_name}, 1, 1], got shape {list(t.shape)}")
    if (out is not None and t.shape[0] != out) or (inp is not None and t.shape[1] != inp):
        want = f"[{out if out is not None else out_name}, {inp if inp is not None else in_name}]"
        raise ValueError(f"{name}: expected shape {want} (or {want[:-1]}, 1, 1]) to match x's {x.shape[1]} "
                         f"channels, got {list(t.shape)}")
    if t.shape[0] == 0:
        raise ValueError(f"{name}: expected at least one hidden unit, got shape {list(t.shape)}")
    return t.shape[0], t.shape[1]


def _check_bias(t, name: str, size: int, x, what: str):
    _common.check_tensor(t, name, like=x)
    if t.dim() != 1 or t.shape[0] != size:
        raise ValueError(f"{name}: expected shape [{size}] ({what}), got {list(t.shape)}")


def _check(x, w1, b1, w2, b2, residual, relu):
    _common.check_tensor(x, "x", ndim=4, layout="[N, C, H, W]")
    c = x.shape[1]
    r_, _ = _check_weight(w1, "w1", None, c, x, "R", "C")
    _check_weight(w2, "w2", c, r_, x, "C", "R")
    if b1 is not None:
        _check_bias(b1, "b1", r_, x, "one value per row of w1")
    if b2 is not None:
        _check_bias(b2, "b2", c, x, "one value per channel of x")
    if residual is not None:
        _common.check_like(residual, "residual", x)
    _common.check_bool(relu, "relu")


def squeeze_excite(x, w1, b1, w2, b2, *, residual=None, relu=False):
    """Squeeze-and-excitation, fused with the residual tail:
    ``y = x * sigmoid(w2 @ relu(w1 @ mean_hw(x) + b1) + b2)``, then ``+ residual`` and ``relu``.

    Exactly ``models.blocks.SqueezeExcite.forward(x, residual, relu)``:

    * ``x``: ``[N, C, H, W]``, float32, float16 or bfloat16, contiguous or channels_last (other
      strides work too; only tensors whose H and W axes do not merge are copied first). The
      output has ``x``'s dtype and memory format; arithmetic is fp32.
    * ``w1``: ``[R, C]`` (Linear) or ``[R, C, 1, 1]`` (1x1 conv); ``b1``: ``[R]`` or ``None``
      (zero); ``w2``: ``[C, R]`` or ``[C, R, 1, 1]``; ``b2``: ``[C]`` or ``None``. Any of the
      three float dtypes (usually fp32 under autocast), independently of ``x``.
    * ``residual``: same shape and dtype as ``x``, added after the scale, before the ReLU.

    Differentiable in ``x``, ``w1``, ``b1``, ``w2``, ``b2`` and ``residual`` (first order); the
    gradients have their inputs' dtypes and shapes. Inputs outside this are a
    ``TypeError``/``ValueError`` naming the argument.
    """
    _check(x, w1, b1, w2, b2, residual, relu)
    return _squeeze_excite(x, w1, b1, w2, b2, residual, relu)


def _squeeze_excite(x, w1, b1, w2, b2, residual, relu):
    x = _common.mergeable(x)
    residual = _common.mergeable(residual) if residual is not None else None
    if b1 is None or b2 is None:
        # the zero biases are not leaves the caller holds: their gradients are dropped
        if b1 is None:
            b1 = torch.zeros(w1.shape[0], dtype=torch.float32, device=x.device)
        if b2 is None:
            b2 = torch.zeros(w2.shape[0], dtype=torch.float32, device=x.device)
    return SqueezeExciteFunction.apply(x, w1, b1, w2, b2, residual, relu)


# --- module twin --------------------------------------------------------------------------------

class TritonSqueezeExcite(SqueezeExcite):
    """The twin of ``models.blocks.SqueezeExcite`` on the Triton kernels: the same ``fc1``/``fc2``
    1x1 convolutions (parameters, state_dict keys, ``extra_repr``); the residual tail
    (``residual=``, ``relu=``) is fused into the scale pass."""

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None, relu: bool = False) -> torch.Tensor:
        return squeeze_excite(x, self.fc1.weight, self.fc1.bias, self.fc2.weight, self.fc2.bias,
                              residual=residual, relu=relu)


register_swap("squeeze_excite", "models.blocks:SqueezeExcite", TritonSqueezeExcite)


# --- compile check ------------------------------------------------------------------------------

def compile_cases():
    """Every kernel per dtype and layout, at SE-ResNet-50's first-stage SE (C=256, 56x56, reduction
    16, batch 64); the excitation's kernels at its last stage (C=2048, R=128): the forward's kernel
    per layer (layout "hidden" and "-"), and the backward's two in both forms: tl.dot tiles (layout
    "-", the form the benchmarks' batches use, so the quick check compiles it; "few": the params
    kernel's options for fewer programs than SMs) and matrix-vector (layout "mv", batches below
    MM_MIN_BATCH)."""
    from .compile_check import Case, ptr, strides

    c, hw, n = 256, 56 * 56, 64
    layouts = {"nchw": (n, hw, (c * hw, hw, 1)), "nhwc": (n, hw, (hw * c, 1, c))}
    chunks = 3
    cases = []
    for dtype in _common.DTYPES:
        for layout, (n_, p, s) in layouts.items():
            for fused in (False, True):  # the squeeze and the scale alone, and with the excitation
                batch = FUSED_MAX_BATCH if fused else n_
                excite = dict(R=c // 16, w1_stride_r=c, w1_stride_c=1)
                cases.append(Case(_se_squeeze_kernel, dtype, layout + ("-fused" if fused else ""), dict(
                    X=ptr(dtype), WS=ptr(torch.float32), N=batch, C=c, P=p, **strides("x", values=s),
                    NUM_CHUNKS=chunks, W1=ptr(dtype), B1=ptr(dtype), ZP=ptr(torch.float32), H=ptr(torch.float32),
                    ARRIVED=ptr(torch.int32), inv_hw=1.0 / hw, **excite, HIDDEN=fused,
                    MAX_BLOCKS=triton.next_power_of_2(c // 16))))
                cases.append(Case(_se_scale_kernel, dtype, layout + ("-fused" if fused else ""), dict(
                    X=ptr(dtype), RES=ptr(dtype), Y=ptr(dtype), S=ptr(torch.float32), H=ptr(torch.float32),
                    W2=ptr(dtype), B2=ptr(dtype), N=batch, C=c, P=p, R=c // 16, w2_stride_c=c // 16, w2_stride_r=1,
                    **strides("x", "res", "y", values=s), HAS_RES=True, RELU=True, EXCITE=fused)))
            # with residual and ReLU: the reduce writes g = d(res), the dx kernel reads it back
            cases.append(Case(_se_bwd_reduce_kernel, dtype, layout, dict(
                X=ptr(dtype), Y=ptr(dtype), DY=ptr(dtype), G=ptr(dtype), WS=ptr(torch.float32), N=n_, C=c, P=p,
                **strides("x", "y", "dy", "g", values=s), NUM_CHUNKS=chunks, RELU=True, HAS_G=True)))
            cases.append(Case(_se_bwd_dx_kernel, dtype, layout, dict(
                Y=ptr(dtype), DY=ptr(dtype), DX=ptr(dtype), DRES=ptr(dtype), S=ptr(torch.float32),
                DM=ptr(torch.float32), N=n_, C=c, P=p, **strides("y", "dy", "dx", "dres", values=s),
                RELU=False, HAS_DX=True, HAS_DRES=False)))
        # the excitation sees the parameters' dtype (fp32 under autocast; the model's after .to())
        f32 = ptr(torch.float32)
        w1_strides = dict(w1_stride_r=2048, w1_stride_c=1)  # contiguous [R, C] and [C, R] weights
        w2_strides = dict(w2_stride_c=128, w2_stride_r=1)
        small = dict(N=n, C=2048, R=128, NUM_CHUNKS=chunks, inv_hw=1.0 / 49)
        fwd = EXCITE_FWD
        cases.append(Case(_se_excite_kernel, dtype, "hidden", dict(
            IN=f32, W=ptr(dtype), B=ptr(dtype), OUT=f32, ZP=f32, ARRIVED=ptr(torch.int32), N=n, K=2048, M=128,
            NUM_CHUNKS=chunks, K_SPLIT=512, scale=1.0 / 49, w_stride_m=2048, w_stride_k=1, BLOCK_N=fwd["BLOCK_N"],
            BLOCK_M=fwd["BLOCK_R"], BLOCK_K=fwd["BLOCK_K"], SIGMOID=False, SPLIT=True, MERGE=HIDDEN_MERGE),
            num_warps=HIDDEN_WARPS, num_stages=HIDDEN_STAGES))
        cases.append(Case(_se_excite_kernel, dtype, "-", dict(
            IN=f32, W=ptr(dtype), B=ptr(dtype), OUT=f32, ZP=f32, ARRIVED=ptr(torch.int32), N=n, K=128, M=2048,
            NUM_CHUNKS=1, K_SPLIT=128, scale=1.0, w_stride_m=128, w_stride_k=1, BLOCK_N=fwd["BLOCK_N"],
            BLOCK_M=fwd["BLOCK_C"], BLOCK_K=fwd["BLOCK_R"], SIGMOID=True, SPLIT=False, MERGE=1), num_warps=EXCITE_WARPS))
        for layout, cfg, params_programs in (("-", EXCITE_MM, 512), ("few", EXCITE_MM, 16), ("mv", EXCITE_MV, 256)):
            (cfg_h, opts_h), (cfg_p, opts_p) = _backward_configs(cfg, n, params_programs, 132, dtype)
            cases.append(Case(_se_excite_bwd_hidden_kernel, dtype, layout, dict(
                WS=f32, DWS=f32, S=f32, W1=ptr(dtype), B1=ptr(dtype), W2=ptr(dtype), ZP=f32, H=f32, DZ1=f32,
                ARRIVED=ptr(torch.int32), **small, C_SPLIT=512, **w1_strides, **w2_strides, **cfg_h), **opts_h))
            cases.append(Case(_se_excite_bwd_params_kernel, dtype, layout, dict(
                WS=f32, DWS=f32, S=f32, W1=ptr(dtype), H=f32, DZ1=f32, DM=f32, DW1=ptr(dtype), DB1=ptr(dtype),
                DW2=ptr(dtype), DB2=ptr(dtype), **small, N_SPLIT=16, **w1_strides,
                dw1_stride_r=2048, dw1_stride_c=1, dw2_stride_c=128, dw2_stride_r=1, **cfg_p), **opts_p))
    return cases
