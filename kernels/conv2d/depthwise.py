"""Depthwise convolution (one input channel per group, any channel multiplier): stencils.

A stencil, not a GEMM: there is nothing to contract. A program's rows, columns and channels come
from its program ids (one scalar division a program, none per element), the bounds are per row
and per column (a row's mask is one scalar), and in channels_last each thread's 8 consecutive
channels are one 16-byte load. The weights are transposed once to ``[taps, C]`` fp32,
zero-padded to the widest channel block (:func:`transposed_weight`, cached per weight version),
so a tap's weights are two unmasked 16-byte vectors a thread and need no conversion.

* **Forward, by rows** (:func:`_depthwise_rows_kernel`: row stride and dilation 1, at most 9
  taps, maps of 24 rows and more at 3x3): a program walks down a band of output rows, a
  ``[BW columns, BC channels]`` segment at a time. Each input row is loaded and converted once
  per column tap and added into the 3 output rows it feeds, whose partial sums stay in registers,
  as do all 9 taps' weights: about 2 instructions an FMA, where a tile reloads and converts its
  input for every tap (4). Each step's input row is loaded a step ahead. Up to 25 taps (a 5x5,
  channels_last, on maps of 10 rows and more with programs enough: :func:`by_rows`) the weights
  are loaded again each step, a column tap's at a time (L1 hits), as the registers hold only the
  5 open rows and the input.
* **Forward, by tiles** (:func:`_depthwise_stencil_kernel`: strides, dilations, small maps):
  ``[BH rows, BW columns, BC channels]`` tiles of one image; each tap loads the tile's shifted
  input (the reuse between taps and rows is the L1's: DRAM sees about one pass over ``x``) and
  multiplies it by that tap's ``BC`` weights; one row of taps is unrolled at a time, so only its
  weights are live (72 registers at 3x3).
* **Input gradient**: at stride 1, the forward's kernels on ``dy`` with the weights flipped. A
  stride ``s`` splits ``dx`` into ``s * s`` phases ``(ih mod s, iw mod s)``; in each, only the
  taps with ``ih + pad - kh * d = 0 (mod s)`` hit, each at a fixed offset into ``dy``, so a phase
  is a dense stencil over its own taps. One launch holds every phase: the padding's residue mod
  ``s`` is compile-time, so each phase's taps are, and a program computes its tile of each phase
  in turn, unrolled over that phase's taps only. No tap is executed that contributes nothing (a
  3x3 at stride 2 runs 2.25 taps a pixel on average, not 9).
* **Weight gradient**: a split reduction. ``chunks`` programs per channel block (about four
  programs per SM in all) each walk a strided set of units of work and keep one fp32
  accumulator tile per tap, ``acc[tap] += x_tap * dy`` elementwise, reduced across the tile once
  at the end into deterministic fp32 partials ``[chunks, C, taps]`` that
  :func:`geometry.merge_partials` sums. **By rows** (:func:`_depthwise_wgrad_rows_kernel`: row
  stride and dilation 1, at most 25 taps, maps of four rows a tap row and more (two past 9 taps),
  enough units to fill the GPU; :func:`wgrad_by_rows`) a unit is a band of rows of one image: its
  input rows are walked once, each loaded and converted once per column tap, against the rows of
  ``dy`` they meet (3 at 3x3, 5 at 5x5), held in registers. **By tiles**
  (:func:`_depthwise_wgrad_kernel`: the rest) a unit is a pixel tile, each tap loading its
  shifted input; kernels of more than 10 taps split their rows of taps over a third grid axis, so
  the accumulators stay in registers.

Predicted on an H200 (the kernel inspector, bf16 channels_last, batch 64, 64x64x56x56 3x3):
forward 16 us, input gradient 16 us, weight gradient 22 us (all three by rows; cuDNN measured 29,
46 and 44 us). In the tiles each tap costs a thread an FMA and a bf16 -> fp32 conversion per
output, so 5x5 stencils are bound by instruction issue, not bandwidth (25 taps a pixel): the 5x5
forward at 64x64x56x56 is predicted at 60.8 us by tiles and 35.0 by rows, against a memory floor
of 12.1 (by rows the issue floor is 26.8 and a band's walk the bound).

Bytes (the contract: input, weight and output once per direction): a depthwise 3x3 at
256x256x56x56 bf16 moves 822 MB (191 us at 4.3 TB/s) for 3.7 GFLOP: pure bandwidth.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .. import _common
from .geometry import DerivedWeights, Geometry, memory_format, merge_partials, needs_int64, stride_args


# --- the weight, transposed once per version ---------------------------------------------------

_TRANSPOSED = DerivedWeights(32)
WEIGHT_PAD = 128  # the widest channel block of the stencil configs


def weight_columns(c_out: int, mult: int) -> int:
    """Columns of the transposed weight: ``c_out`` padded so that every channel a program of any
    config touches (forward: ``c < cdiv(c_out, BC) * BC``; input gradient: ``c * mult + j`` for
    ``c < cdiv(c_out / mult, BC) * BC``) is in it, as zeros: the kernels load weights unmasked."""
    return _common.cdiv(c_out // mult, WEIGHT_PAD) * WEIGHT_PAD * mult


def transposed_weight(weight: torch.Tensor, mult: int = 1) -> torch.Tensor:
    """``weight`` ``[C, 1, kH, kW]`` as fp32 ``[kH * kW, weight_columns(C, mult)]`` (tap-major: a
    tap's channels contiguous; the padding columns zero), once per weight version
    (:class:`geometry.DerivedWeights`)."""
    def build():
        c = weight.shape[0]
        wt = torch.zeros((weight[0].numel(), weight_columns(c, mult)), dtype=torch.float32, device=weight.device)
        wt[:, :c] = weight.detach().reshape(c, -1).t()
        return wt

    return _TRANSPOSED.get(weight, mult, build)


# --- kernels --------------------------------------------------------------------------------------

# [BH, BW, BC] tiles of 2048 outputs, 16 a thread (two pixels of 8 channels): 8 columns fit the
# models' 56/28/14/7-wide maps with little waste; 64 or 128 channels are one 128-byte row a pixel.
STENCIL_CONFIGS = [
    triton.Config({"BH": 4, "BW": 8, "BC": 64}, num_warps=4),
    triton.Config({"BH": 2, "BW": 8, "BC": 128}, num_warps=4),
]
STENCIL_KEY = ["H_OUT", "W_OUT", "C", "KH", "KW", "SH", "SW", "DH", "DW"]  # + every operand's layout
# Under the interpreter the cost is per program and per op: one big tile.
STENCIL_INTERPRETER = triton.Config({"BH": 8, "BW": 16, "BC": 64}, num_warps=4)


@triton.jit
def _tile_ids(tiles_h, BH: tl.constexpr, BW: tl.constexpr, BC: tl.constexpr, BIG: tl.constexpr):
    """``(n, a, b, c)`` of a ``[BH rows, BW columns, BC channels]`` tile: the image, its rows,
    columns and channels, from the program ids (axis 0: ``tiles_h`` row tiles an image, image by
    image; axis 1: columns; axis 2: channels). One scalar division a program."""
    pid = tl.program_id(0)
    n = pid // tiles_h
    a = (pid - n * tiles_h) * BH + tl.arange(0, BH)
    b = tl.program_id(1) * BW + tl.arange(0, BW)
    c = tl.program_id(2) * BC + tl.arange(0, BC)
    if BIG:
        a = a.to(tl.int64)
        b = b.to(tl.int64)
    return n, a, b, c


@triton.jit
def _unit_blocks(unit, per_image, col_blocks):
    """``(n, row block, column block)`` of unit ``unit`` of a chunk's walk, whose images each hold
    ``per_image`` units, row block by row block of ``col_blocks`` units."""
    n = unit // per_image
    rest = unit - n * per_image
    row_block = rest // col_blocks
    return n, row_block, rest - row_block * col_blocks


@_common.autotune(STENCIL_CONFIGS, key=STENCIL_KEY, interpreter_config=STENCIL_INTERPRETER)
@triton.jit
def _depthwise_stencil_kernel(IN, WT, B, OUT, H_IN, W_IN, H_OUT, W_OUT, C, DIV, off_h, off_w, w_off, swt_h, swt_w,
                    sin, sic, sih, siw, son, soc, soh, sow, KH: tl.constexpr,
                    KW: tl.constexpr, SH: tl.constexpr, SW: tl.constexpr, DH: tl.constexpr, DW: tl.constexpr,
                    J: tl.constexpr, HAS_BIAS: tl.constexpr, BIG: tl.constexpr, BH: tl.constexpr,
                    BW: tl.constexpr, BC: tl.constexpr):
    """out[n, c, a, b] = sum_{j < J, t < KH, u < KW}
        in[n, (c // DIV) * J + j, a*SH + off_h + t*DH, b*SW + off_w + u*DW]
        * WT[w_off + t*swt_h + u*swt_w + c*J + j]    (+ bias[c])
    for a < H_OUT, b < W_OUT, c < C (zero where the input index is outside H_IN x W_IN).

    The forward: in = x, J = 1, DIV = the channel multiplier, weight steps KW*C and C. The input
    gradient at stride 1: in = dy, J = the multiplier, DIV = 1, the weights flipped (w_off at the
    last tap, negative steps)."""
    n, a, b, c = _tile_ids(tl.cdiv(H_OUT, BH), BH, BW, BC, BIG)
    cmask = c < C
    in_img = IN + n.to(tl.int64) * sin
    acc = tl.zeros([BH, BW, BC], dtype=tl.float32)
    for j in tl.static_range(J):
        chan = (((c // DIV) * J + j) * sic)[None, None, :]
        w_chan = WT + w_off + c * J + j
        # A row of taps unrolled at a time: its KW loads in flight at once (their columns
        # overlap, and the next rows' too: after the first they come from L1) and its KW weight
        # vectors live, where all KH*KW of them took 146 registers (12 warps per SM).
        for t in range(KH):
            ih = a * SH + off_h + t * DH
            row = (ih * sih)[:, None, None]
            row_ok = ((ih >= 0) & (ih < H_IN))[:, None, None]
            for u in tl.static_range(KW):
                iw = b * SW + off_w + u * DW
                col = (iw * siw)[None, :, None]
                col_ok = ((iw >= 0) & (iw < W_IN))[None, :, None]
                xv = tl.load(in_img + (row + col + chan), mask=row_ok & col_ok & cmask[None, None, :], other=0.0)
                wv = tl.load(w_chan + (t * swt_h + u * swt_w))  # padded: no mask (weight_columns)
                acc += xv.to(tl.float32) * wv[None, None, :]
    if HAS_BIAS:
        acc += tl.load(B + c, mask=cmask, other=0.0).to(tl.float32)[None, None, :]
    out_row = (a * soh)[:, None, None]
    out_col = (b * sow)[None, :, None]
    mask = ((a < H_OUT)[:, None, None] & (b < W_OUT)[None, :, None]) & cmask[None, None, :]
    out = OUT + n.to(tl.int64) * son + (out_row + out_col + (c * soc)[None, None, :])
    tl.store(out, acc.to(OUT.dtype.element_ty), mask=mask)



# --- stride 1, few taps: a band of rows walked top to bottom -------------------------------------

# [BW, BC] row segments: 8 channels a thread (one 16-byte load a pixel), or 4 with 32 channels
# (half the registers: 24 warps per SM).
ROWS_CONFIGS = [
    triton.Config({"BW": 16, "BC": 64}, num_warps=4),
    triton.Config({"BW": 8, "BC": 128}, num_warps=4),
    triton.Config({"BW": 8, "BC": 64}, num_warps=2),
    triton.Config({"BW": 16, "BC": 32}, num_warps=4),
]
ROWS_INTERPRETER = triton.Config({"BW": 16, "BC": 64}, num_warps=4)
ROWS_TAPS = 9  # the most taps (times the multiplier) whose weights a thread holds: 72 registers at 3x3
ROWS_MAX_TAPS = 25  # the most taps (times the multiplier) by rows
# Past ROWS_TAPS the weights are loaded each step, and a thread's 4 channels keep the 5 open rows,
# the input and a column tap's weights in 112 registers (bf16 5x5, sm_90a); 8 channels take 188
# to 222, and NCHW's 2-byte loads spill, so it is channels_last only.
ROWS_STREAMED_CONFIGS = [triton.Config({"BW": 16, "BC": 32}, num_warps=4)]


@triton.jit
def _rows_step_inputs(in_img, ih, b, c, cmask, H_IN, W_IN, off_w, DIV, sic, sih, siw, KW: tl.constexpr,
                      SW: tl.constexpr, DW: tl.constexpr, J: tl.constexpr):
    """Input row ``ih`` as a step of :func:`_depthwise_rows_kernel` reads it, as loaded: for each of
    the J input channels of an output channel and each of the KW column taps, a ``[BW, BC]``
    tile (zero outside the map), in that order."""
    row = in_img + ih * sih
    row_ok = (ih >= 0) & (ih < H_IN)
    xs = ()
    for j in tl.static_range(J):
        chan = (((c // DIV) * J + j) * sic)[None, :]
        for u in tl.static_range(KW):
            iw = b * SW + off_w + u * DW
            ok = (row_ok & (iw >= 0) & (iw < W_IN))[:, None] & cmask[None, :]
            xs = xs + (tl.load(row + ((iw * siw)[:, None] + chan), mask=ok, other=0.0),)
    return xs


@triton.jit
def _rows_weight(wts, w_cols, q, swt_h, swt_w, KH: tl.constexpr, KW: tl.constexpr, HOLD_W: tl.constexpr):
    """Tap ``q`` (of ``[J, KH, KW]``) of :func:`_depthwise_rows_kernel`'s weights, ``[BC]`` fp32:
    held in registers (``wts``) or loaded from the transposed weight (``w_cols``: tap 0's
    channels; the padding columns make it safe unmasked)."""
    if HOLD_W:
        w = wts[q]
    else:
        w = tl.load(w_cols + (q // (KH * KW) + ((q // KW % KH) * swt_h + (q % KW) * swt_w)))
    return w


@triton.jit
def _rows_step(accs, xs, wts, w_cols, swt_h, swt_w, out_img, a, a_first, a_end, H_OUT, out_cols, out_ok, bias, soh,
               KH: tl.constexpr, KW: tl.constexpr, J: tl.constexpr, HAS_BIAS: tl.constexpr, HOLD_W: tl.constexpr,
               BW: tl.constexpr, BC: tl.constexpr):
    """One step of the walk: input row ``xs`` added into the KH - 1 open output rows ``accs`` and
    a new one (open row k takes tap row KH - 1 - k); the oldest, row ``a``, is then complete and
    stored when it is one of the band's (``a_first <= a < min(a_end, H_OUT)``). Returns the rows
    still open."""
    cur = accs + (tl.zeros([BW, BC], dtype=tl.float32),)
    for j in tl.static_range(J):
        for u in tl.static_range(KW):
            xv = xs[j * KW + u].to(tl.float32)
            nxt = ()
            for k in tl.static_range(KH):
                w = _rows_weight(wts, w_cols, (j * KH + KH - 1 - k) * KW + u, swt_h, swt_w, KH, KW, HOLD_W)
                nxt = nxt + (cur[k] + xv * w[None, :],)
            cur = nxt
            if not HOLD_W:
                # Without it the compiler issues every tap's weight loads at the step's start: at
                # 5x5, 168 registers (3 CTAs an SM) against 91 (5).
                tl.debug_barrier()
    done = cur[0]
    if HAS_BIAS:
        done += bias
    tl.store(out_img + (a * soh + out_cols), done.to(out_img.dtype.element_ty),
             mask=out_ok & ((a >= a_first) & (a < a_end) & (a < H_OUT)))
    rest = ()
    for k in tl.static_range(1, KH):
        rest = rest + (cur[k],)
    return rest


@_common.autotune(ROWS_CONFIGS, key=STENCIL_KEY, interpreter_config=ROWS_INTERPRETER)
@triton.jit
def _depthwise_rows_kernel(IN, WT, B, OUT, H_IN, W_IN, H_OUT, W_OUT, C, DIV, ROWS, off_h, off_w, w_off,
                           swt_h: tl.constexpr, swt_w: tl.constexpr, sin, sic, sih, siw, son, soc, soh, sow,
                           KH: tl.constexpr, KW: tl.constexpr,
                           SH: tl.constexpr, SW: tl.constexpr, DH: tl.constexpr, DW: tl.constexpr,
                           J: tl.constexpr, HAS_BIAS: tl.constexpr, HOLD_W: tl.constexpr, BIG: tl.constexpr,
                           BW: tl.constexpr, BC: tl.constexpr):
    """:func:`_depthwise_stencil_kernel`'s sum at row stride and dilation 1 (SH = DH = 1), for
    kernels of at most ``ROWS_TAPS`` taps, by rows: a program owns a band of ROWS output rows
    (BW columns, BC channels) and walks down its input rows, each loaded and converted once per
    column tap; input row a + off_h + t feeds output row a at tap row t, so KH output rows are
    open at once (their partial sums in registers) and each step completes one. Every tap's
    weights stay in registers for the whole band. A stencil tile instead reloads and converts
    each input element for every tap row (3x: twice the instructions an FMA)."""
    tl.static_assert(SH == 1)
    tl.static_assert(DH == 1)
    pid = tl.program_id(0)
    bands = tl.cdiv(H_OUT, ROWS)
    n = pid // bands
    a0 = (pid - n * bands) * ROWS
    b = tl.program_id(1) * BW + tl.arange(0, BW)
    c = tl.program_id(2) * BC + tl.arange(0, BC)
    cmask = c < C
    if BIG:
        a0 = a0.to(tl.int64)
        b = b.to(tl.int64)
    in_img = IN + n.to(tl.int64) * sin
    out_img = OUT + n.to(tl.int64) * son
    out_cols = (b * sow)[:, None] + (c * soc)[None, :]
    out_ok = (b < W_OUT)[:, None] & cmask[None, :]
    bias = tl.load(B + c, mask=cmask & HAS_BIAS, other=0.0).to(tl.float32)[None, :]
    w_cols = WT + w_off + c * J
    wts = ()  # [J, KH, KW] of [BC] fp32, when held
    if HOLD_W:
        for q in tl.static_range(J * KH * KW):
            wts = wts + (_rows_weight(wts, w_cols, q, swt_h, swt_w, KH, KW, False),)
    accs = ()  # accs[k]: output row a0 + i - (KH - 1) + k, before step i
    for k in tl.static_range(KH - 1):
        accs = accs + (tl.zeros([BW, BC], dtype=tl.float32),)
    # Two steps a trip, each step's input loaded one step ahead, as loaded: a load's latency is
    # spent on the step before's multiply-adds, and the two steps' inputs keep registers of their
    # own (with one step a trip the loop's end copies the prefetched registers, which waits for
    # the load).
    ih0 = a0 + off_h
    xs = _rows_step_inputs(in_img, ih0, b, c, cmask, H_IN, W_IN, off_w, DIV, sic, sih, siw, KW, SW, DW, J)
    for i in range(0, ROWS + KH - 1, 2):
        odd = _rows_step_inputs(in_img, ih0 + i + 1, b, c, cmask, H_IN, W_IN, off_w, DIV, sic, sih, siw, KW, SW, DW, J)
        accs = _rows_step(accs, xs, wts, w_cols, swt_h, swt_w, out_img, a0 + i - (KH - 1), a0, a0 + ROWS, H_OUT,
                          out_cols, out_ok, bias, soh, KH, KW, J, HAS_BIAS, HOLD_W, BW, BC)
        xs = _rows_step_inputs(in_img, ih0 + i + 2, b, c, cmask, H_IN, W_IN, off_w, DIV, sic, sih, siw, KW, SW, DW, J)
        accs = _rows_step(accs, odd, wts, w_cols, swt_h, swt_w, out_img, a0 + i + 1 - (KH - 1), a0, a0 + ROWS,
                          H_OUT, out_cols, out_ok, bias, soh, KH, KW, J, HAS_BIAS, HOLD_W, BW, BC)


_depthwise_rows_streamed_kernel = _common.autotune(ROWS_STREAMED_CONFIGS, key=STENCIL_KEY)(_depthwise_rows_kernel.fn)


DGRAD_KEY = ["H", "WD", "C", "KH", "KW", "SH", "SW", "DH", "DW", "PMH", "PMW"]  # + every operand's layout


@_common.autotune(STENCIL_CONFIGS, key=DGRAD_KEY, interpreter_config=STENCIL_INTERPRETER)
@triton.jit
def _depthwise_dgrad_phases_kernel(DY, WT, DX, H, WD, H_OUT, W_OUT, C, pad_div_h, pad_div_w, w_cols, sdn, sdc, sdh, sdw,
                         sxn, sxc, sxh, sxw, KH: tl.constexpr, KW: tl.constexpr, SH: tl.constexpr,
                         SW: tl.constexpr, DH: tl.constexpr, DW: tl.constexpr, PMH: tl.constexpr,
                         PMW: tl.constexpr, J: tl.constexpr, BIG: tl.constexpr, BH: tl.constexpr,
                         BW: tl.constexpr, BC: tl.constexpr):
    """The input gradient of a strided depthwise convolution, all its stride phases in one launch:
    dx[n, c, p + a*SH, q + b*SW] = sum_{j < J} sum over the taps (kh, kw) with
    (p + pad_h - kh*DH) = 0 (mod SH) and (q + pad_w - kw*DW) = 0 (mod SW) of
        dy[n, c*J + j, a + (p + pad_h - kh*DH) / SH, b + (q + pad_w - kw*DW) / SW] * w[c*J + j, kh, kw]
    (pad = PM + SH * pad_div: its residue is compile-time, so each phase's taps are). A program
    owns rows a and columns b of every phase and computes the phases in turn, each unrolled over
    its own taps only (a branch per phase would leave each program's instructions the same and
    its grid s*s times larger)."""
    n, a, b, c = _tile_ids(tl.cdiv(tl.cdiv(H, SH), BH), BH, BW, BC, BIG)
    cmask = c < C
    dy_img = DY + n.to(tl.int64) * sdn
    for p in tl.static_range(SH):
        for q in tl.static_range(SW):
            acc = tl.zeros([BH, BW, BC], dtype=tl.float32)
            for j in tl.static_range(J):
                chan = ((c * J + j) * sdc)[None, None, :]
                w_chan = WT + c * J + j
                for kh in tl.static_range(KH):
                    if (p + PMH - kh * DH) % SH == 0:
                        oh = a + ((p + PMH - kh * DH) // SH + pad_div_h)
                        row = (oh * sdh)[:, None, None]
                        row_ok = ((oh >= 0) & (oh < H_OUT))[:, None, None]
                        for kw in tl.static_range(KW):
                            if (q + PMW - kw * DW) % SW == 0:
                                ow = b + ((q + PMW - kw * DW) // SW + pad_div_w)
                                col_ok = ((ow >= 0) & (ow < W_OUT))[None, :, None]
                                dyv = tl.load(dy_img + (row + (ow * sdw)[None, :, None] + chan),
                                              mask=row_ok & col_ok & cmask[None, None, :], other=0.0)
                                wv = tl.load(w_chan + (kh * KW + kw) * w_cols)  # padded: no mask
                                acc += dyv.to(tl.float32) * wv[None, None, :]
            ih = p + a * SH
            iw = q + b * SW
            mask = ((ih < H)[:, None, None] & (iw < WD)[None, :, None]) & cmask[None, None, :]
            dx = DX + n.to(tl.int64) * sxn + ((ih * sxh)[:, None, None] + (iw * sxw)[None, :, None]
                                              + (c * sxc)[None, None, :])
            tl.store(dx, acc.to(DX.dtype.element_ty), mask=mask)


# One fp32 accumulator tile per tap: [BH, BW, BC] of 8 a thread (9 taps: 72 registers).
WGRAD_CONFIGS = [
    triton.Config({"BH": 2, "BW": 8, "BC": 64}, num_warps=4),
    triton.Config({"BH": 4, "BW": 8, "BC": 64}, num_warps=8),
]
WGRAD_KEY = ["H_OUT", "W_OUT", "C", "KH", "KW", "SH", "SW", "DH", "DW", "KH_G"]
WGRAD_INTERPRETER = triton.Config({"BH": 8, "BW": 16, "BC": 64}, num_warps=4)
# Rows of taps a program accumulates: at most 10 taps (80 fp32 registers at 8 outputs a thread; a
# 5x5 takes two rows a program, three programs in all, where one row a program re-read x and dy
# five times: 256x64x56x56 predicted 398 -> 322 us).
WGRAD_TAPS = 10
# Channel block the chunk count is sized for (every wgrad config's).
WGRAD_BC = 64


@_common.autotune(WGRAD_CONFIGS, key=WGRAD_KEY, interpreter_config=WGRAD_INTERPRETER)
@triton.jit
def _depthwise_wgrad_kernel(X, DY, WS, DBS, N, H, WD, H_OUT, W_OUT, C, DIV, NUM_CHUNKS, pad_h, pad_w,
                  sxn, sxc, sxh, sxw, sdn, sdc, sdh, sdw, KH: tl.constexpr, KW: tl.constexpr, SH: tl.constexpr,
                  SW: tl.constexpr, DH: tl.constexpr, DW: tl.constexpr, KH_G: tl.constexpr,
                  HAS_BIAS: tl.constexpr, BIG: tl.constexpr, BH: tl.constexpr, BW: tl.constexpr,
                  BC: tl.constexpr):
    """Partial sums of one chunk of pixel tiles (tiles chunk, chunk + NUM_CHUNKS, ...) for the
    tap rows g*KH_G ... g*KH_G + KH_G - 1 (g = program_id(2)):
    WS[chunk, c, kh*KW + kw] = sum_p x[n, c // DIV, oh*SH - pad_h + kh*DH, ow*SW - pad_w + kw*DW] * dy[n, c, oh, ow]
    (fp32 [NUM_CHUNKS, C, KH*KW]) and, with a bias, DBS[chunk, c] = sum_p dy[n, c, oh, ow] (by g = 0).
    A chunk that owns no tile writes zeros."""
    chunk = tl.program_id(0)
    c = tl.program_id(1) * BC + tl.arange(0, BC)
    g = tl.program_id(2)
    cmask = c < C
    rows = tl.arange(0, BH)
    cols = tl.arange(0, BW)
    x_chan = ((c // DIV) * sxc)[None, None, :]
    dy_chan = (c * sdc)[None, None, :]
    # The accumulators are a tuple (one tile per tap): an elementwise FMA per tap and output, no
    # reduction across threads until the program ends.
    accs = ()
    for i in tl.static_range(KH_G * KW):
        accs = accs + (tl.zeros([BH, BW, BC], dtype=tl.float32),)
    dsum = tl.zeros([BH, BW, BC], dtype=tl.float32)
    kh0 = g * KH_G
    tiles_w = tl.cdiv(W_OUT, BW)
    per_image = tl.cdiv(H_OUT, BH) * tiles_w
    for tile in range(chunk, N * per_image, NUM_CHUNKS):
        n, th, tw = _unit_blocks(tile, per_image, tiles_w)
        oh = th * BH + rows
        ow = tw * BW + cols
        if BIG:
            oh = oh.to(tl.int64)
            ow = ow.to(tl.int64)
        n64 = n.to(tl.int64)
        out_ok = ((oh < H_OUT)[:, None, None] & (ow < W_OUT)[None, :, None]) & cmask[None, None, :]
        dy = tl.load(DY + n64 * sdn + ((oh * sdh)[:, None, None] + (ow * sdw)[None, :, None] + dy_chan),
                     mask=out_ok, other=0.0).to(tl.float32)
        if HAS_BIAS:
            dsum += dy
        x_img = X + n64 * sxn
        new = ()
        for t in tl.static_range(KH_G):
            ih = oh * SH - pad_h + (kh0 + t) * DH
            row = (ih * sxh)[:, None, None]
            # tap rows past KH (the last group of a kernel whose rows do not divide evenly) read nothing
            row_ok = ((ih >= 0) & (ih < H) & (kh0 + t < KH))[:, None, None]
            for u in tl.static_range(KW):
                iw = ow * SW - pad_w + u * DW
                col_ok = ((iw >= 0) & (iw < WD))[None, :, None]
                xv = tl.load(x_img + (row + (iw * sxw)[None, :, None] + x_chan),
                             mask=row_ok & col_ok & cmask[None, None, :], other=0.0)  # dy is 0 past the map's edge
                new = new + (accs[t * KW + u] + xv.to(tl.float32) * dy,)
        accs = new
    n_taps = KH * KW
    ws = WS + chunk * C * n_taps + c * n_taps
    for t in tl.static_range(KH_G):
        for u in tl.static_range(KW):
            part = tl.sum(tl.sum(accs[t * KW + u], axis=1), axis=0)
            tl.store(ws + (kh0 + t) * KW + u, part, mask=cmask & (kh0 + t < KH))
    if HAS_BIAS:
        tl.store(DBS + chunk * C + c, tl.sum(tl.sum(dsum, axis=1), axis=0), mask=cmask & (g == 0))


# One fp32 accumulator per tap ([BW, BC], four a thread: 36 registers at 3x3) and the KH rows of dy
# a step pairs with its input row.
WGRAD_ROWS_CONFIGS = [
    triton.Config({"BW": 16, "BC": 32}, num_warps=4),
    triton.Config({"BW": 8, "BC": 64}, num_warps=4),
    triton.Config({"BW": 16, "BC": 64}, num_warps=8),
]
WGRAD_ROWS_KEY = ["N", "H_OUT", "W_OUT", "C", "ROWS", "KH", "KW", "SW", "DW"]  # + every operand's layout
WGRAD_ROWS_INTERPRETER = triton.Config({"BW": 16, "BC": 64}, num_warps=4)
WGRAD_ROWS_BW = 16  # the widest column block of the configs: the fewest units a launch has
# Past ROWS_TAPS two elements a thread, so that 25 accumulators fit:
# 128 registers (bf16, channels_last, 5x5), 154 to 168 in NCHW, no spills.
WGRAD_ROWS_WIDE_CONFIGS = [triton.Config({"BW": 8, "BC": 32}, num_warps=4)]


@triton.jit
def _wgrad_rows_inputs(x_img, dy_img, ih, a, a_end, iw0, x_chan, dy_cols, col_ok, H, WD, sxh, sxw, sdh,
                       KW: tl.constexpr, DW: tl.constexpr):
    """Step inputs of :func:`_depthwise_wgrad_rows_kernel`, as loaded: input row ``ih`` at each of
    the KW column taps (zero outside the map) and dy row ``a`` (zero unless ``a < a_end``, the
    end of the program's band)."""
    row = x_img + ih * sxh
    row_ok = (ih >= 0) & (ih < H)
    xs = ()
    for u in tl.static_range(KW):
        iw = iw0 + u * DW
        ok = (row_ok & (iw >= 0) & (iw < WD))[:, None] & col_ok
        xs = xs + (tl.load(row + ((iw * sxw)[:, None] + x_chan), mask=ok, other=0.0),)
    dy = tl.load(dy_img + a * sdh + dy_cols, mask=col_ok & (a < a_end), other=0.0)
    return xs, dy


@triton.jit
def _wgrad_rows_step(accs, ring, dsum, xs, dy, KH: tl.constexpr, KW: tl.constexpr, HAS_BIAS: tl.constexpr):
    """One step of the walk: dy row ``a`` joins the open rows ``ring`` (``cur[t]``: dy row ``a - t``)
    and input row ``ih = a - pad_h`` is multiplied into every tap, ``accs[t*KW + u] += x[ih, iw_u]
    * cur[t]`` (input row ``ih`` meets dy row ``a - t`` at tap row t). Returns the accumulators, the
    KH - 1 newest dy rows and the bias sum."""
    dyv = dy.to(tl.float32)
    if HAS_BIAS:
        dsum += dyv
    cur = (dyv,) + ring
    new = accs
    for u in tl.static_range(KW):
        xv = xs[u].to(tl.float32)
        out = ()
        for q in tl.static_range(KH * KW):
            if q % KW == u:
                out = out + (new[q] + xv * cur[q // KW],)
            else:
                out = out + (new[q],)
        new = out
    rest = ()
    for t in tl.static_range(KH - 1):
        rest = rest + (cur[t],)
    return new, rest, dsum


@_common.autotune(WGRAD_ROWS_CONFIGS, key=WGRAD_ROWS_KEY, interpreter_config=WGRAD_ROWS_INTERPRETER)
@triton.jit
def _depthwise_wgrad_rows_kernel(X, DY, WS, DBS, N, H, WD, H_OUT, W_OUT, C, DIV, ROWS, NUM_CHUNKS, pad_h, pad_w,
                                 sxn, sxc, sxh, sxw, sdn, sdc, sdh, sdw, KH: tl.constexpr, KW: tl.constexpr,
                                 SW: tl.constexpr, DW: tl.constexpr, HAS_BIAS: tl.constexpr, BIG: tl.constexpr,
                                 BW: tl.constexpr, BC: tl.constexpr):
    """:func:`_depthwise_wgrad_kernel`'s partial sums at row stride and dilation 1, by rows. The
    units of work are (image, band of ROWS dy rows, BW columns); program ``chunk`` takes units
    chunk, chunk + NUM_CHUNKS, ... and walks each unit's input rows, each loaded and converted
    once per column tap, with the KH rows of dy it meets held in registers (each dy row loaded
    once). A tile instead reloads and converts its input for every tap (3x the instructions an
    FMA). A chunk that owns no unit writes zeros."""
    chunk = tl.program_id(0)
    c = tl.program_id(1) * BC + tl.arange(0, BC)
    cmask = c < C
    x_chan = ((c // DIV) * sxc)[None, :]
    accs = ()
    for q in tl.static_range(KH * KW):
        accs = accs + (tl.zeros([BW, BC], dtype=tl.float32),)
    dsum = tl.zeros([BW, BC], dtype=tl.float32)
    col_blocks = tl.cdiv(W_OUT, BW)
    per_image = tl.cdiv(H_OUT, ROWS) * col_blocks
    for unit in range(chunk, N * per_image, NUM_CHUNKS):
        n, band, col_block = _unit_blocks(unit, per_image, col_blocks)
        a0 = band * ROWS
        b = col_block * BW + tl.arange(0, BW)
        if BIG:
            a0 = a0.to(tl.int64)
            b = b.to(tl.int64)
        a_end = tl.minimum(a0 + ROWS, H_OUT)
        x_img = X + n.to(tl.int64) * sxn
        dy_img = DY + n.to(tl.int64) * sdn
        dy_cols = (b * sdw)[:, None] + (c * sdc)[None, :]
        col_ok = (b < W_OUT)[:, None] & cmask[None, :]
        iw0 = b * SW - pad_w
        ring = ()  # the KH - 1 dy rows before the step's (rows above the band: zero)
        for t in tl.static_range(KH - 1):
            ring = ring + (tl.zeros([BW, BC], dtype=tl.float32),)
        # Step i pairs input row a0 - pad_h + i with dy rows a0 + i - t; a band of ROWS rows takes
        # ROWS + KH - 1 steps (the last KH - 1 only finish the band's rows). Two steps a trip, each
        # step's inputs loaded one step ahead, as the forward by rows does.
        ih0 = a0 - pad_h
        xs, dy = _wgrad_rows_inputs(x_img, dy_img, ih0, a0, a_end, iw0, x_chan, dy_cols, col_ok, H, WD, sxh, sxw,
                                    sdh, KW, DW)
        for i in range(0, ROWS + KH - 1, 2):
            xs_odd, dy_odd = _wgrad_rows_inputs(x_img, dy_img, ih0 + i + 1, a0 + i + 1, a_end, iw0, x_chan,
                                                dy_cols, col_ok, H, WD, sxh, sxw, sdh, KW, DW)
            accs, ring, dsum = _wgrad_rows_step(accs, ring, dsum, xs, dy, KH, KW, HAS_BIAS)
            xs, dy = _wgrad_rows_inputs(x_img, dy_img, ih0 + i + 2, a0 + i + 2, a_end, iw0, x_chan, dy_cols,
                                        col_ok, H, WD, sxh, sxw, sdh, KW, DW)
            accs, ring, dsum = _wgrad_rows_step(accs, ring, dsum, xs_odd, dy_odd, KH, KW, HAS_BIAS)
    ws = WS + chunk * C * (KH * KW) + c * (KH * KW)
    for q in tl.static_range(KH * KW):
        tl.store(ws + q, tl.sum(accs[q], axis=0), mask=cmask)
    if HAS_BIAS:
        tl.store(DBS + chunk * C + c, tl.sum(dsum, axis=0), mask=cmask)


_depthwise_wgrad_rows_wide_kernel = _common.autotune(WGRAD_ROWS_WIDE_CONFIGS, key=WGRAD_ROWS_KEY)(
    _depthwise_wgrad_rows_kernel.fn)


# --- launchers ------------------------------------------------------------------------------------

def _band_programs(n: int, w_out: int, channels: int) -> int:
    """Programs of one band of :func:`_depthwise_rows_kernel` over the batch at its smallest tile
    (16 columns, 32 channels)."""
    return n * _common.cdiv(w_out, 16) * _common.cdiv(channels, 32)


def band_rows(n: int, h_out: int, w_out: int, channels: int, kh: int, device: torch.device, ctas_per_sm: int) -> int:
    """Output rows a program of a rows kernel owns: the band count whose waves of programs times a
    program's walk is least, ``ceil(programs / (SMs * ctas_per_sm)) * (rows + 2 * kh - 1)``;
    programs counted at the smallest tile (16 columns, 32 channels), ties to the fewer bands. A
    walk is the band's rows, ``kh - 1`` steps for rows outside it (its halo), and about ``kh`` steps'
    worth of fixed cost (the first loads, the epilogue): the kernel inspector's predictions (sm_90a,
    bf16, 3x3 forward, batch 64) put that cost at 2 to 4 steps. There, at 28x28 and C=128, 3 bands
    of 10 rows (2 waves) are predicted at 9.3 us, where 2 bands of 14 (2 waves, the second 29%
    full) take 12.0 and one band 10.6."""
    per_band = max(1, _band_programs(n, w_out, channels))  # an empty batch launches nothing: any count
    slots = _common.num_sms(device) * ctas_per_sm

    def cost(bands: int) -> int:
        return _common.cdiv(per_band * bands, slots) * (_common.cdiv(h_out, bands) + 2 * kh - 1)

    return max(1, _common.cdiv(h_out, min(range(1, max(1, h_out // kh) + 1), key=cost)))  # 1 on an empty map


# CTAs per SM of the rows kernels at their smallest tile (the kernel inspector, sm_90a, bf16,
# channels_last), by whether the weights are held: held 6, loaded each step 5. The weight
# gradient runs about four programs per SM over its units (_wgrad_chunks).
ROWS_CTAS_PER_SM = {True: 6, False: 5}
WGRAD_ROWS_CTAS_PER_SM = 4


# On maps of 4 to 8 rows per open row (3x3 at 14x14) one band holds the map, and the rows kernel
# wins only with enough programs to fill the GPU: predicted (the kernel inspector, sm_90a, bf16,
# 3x3 at 14x14, C=256) batch 128, 7.8 programs per SM: tiles 11.0 us, rows 12.1; batch 192, 11.6
# per SM: 16.6 and 12.1; batch 256, 15.5 per SM: 22.1 and 18.1.
ROWS_SMALL_MAP_PROGRAMS_PER_SM = 10

# With its weights loaded each step (5x5) a band's walk is long (about 19 us for 28 rows of a 5x5
# at 56x56), so the rows kernel needs programs enough to overlap walks: predicted (sm_90a, bf16,
# 5x5 at stride 1) with one band's programs per SM at 3.9 (batch 64), rows 35.0 us against tiles
# 60.8 at 56x56, 19.0 against 31.7 at 28x28, 11.0 against 15.9 at 14x14; at 1.9 (batch 32), 19.0
# against about 16 at 28x28 and 11.0 against about 10 at 14x14 (and 19.0 against 30 at 56x56,
# a win the rule leaves to the tiles).
ROWS_STREAMED_PROGRAMS_PER_SM = 3


def by_rows(h_out: int, taps: tuple[int, int], steps: tuple[int, int], dil: tuple[int, int], mult: int,
            programs_per_sm: float, channels_last: bool) -> bool:
    """Whether :func:`_depthwise_rows_kernel` computes this stencil: row stride and dilation 1 and
    at most ``ROWS_MAX_TAPS`` taps (times the multiplier). Weights held in registers (at
    most ``ROWS_TAPS``): a map of at least eight rows per open row, or of four with
    ``programs_per_sm`` (of one band over the batch) at least ``ROWS_SMALL_MAP_PROGRAMS_PER_SM``;
    on smaller maps, or with fewer programs, its bands are short or few, and the tiles were
    predicted faster (the kernel inspector, 3x3 at 14x14 and 7x7, batches 32 to 256). Weights
    loaded each step: channels_last, two rows per open row and ``ROWS_STREAMED_PROGRAMS_PER_SM``."""
    if steps[0] != 1 or dil[0] != 1 or taps[0] * taps[1] * mult > ROWS_MAX_TAPS:
        return False
    if taps[0] * taps[1] * mult > ROWS_TAPS:  # weights loaded each step
        return channels_last and h_out >= 2 * taps[0] and programs_per_sm >= ROWS_STREAMED_PROGRAMS_PER_SM
    return h_out >= 8 * taps[0] or (h_out >= 4 * taps[0] and programs_per_sm >= ROWS_SMALL_MAP_PROGRAMS_PER_SM)


def _launch_stencil(inp, wt, bias, out, *, h_out, w_out, channels, div, mult, off, steps, taps, dil, w_off, w_steps):
    """One launch over an ``h_out x w_out`` grid of outputs (the forward, or the input gradient at
    stride 1): :func:`_depthwise_rows_kernel` where :func:`by_rows` says so, else
    :func:`_depthwise_stencil_kernel`."""
    common = dict(KH=taps[0], KW=taps[1], SH=steps[0], SW=steps[1], DH=dil[0], DW=dil[1], J=mult,
                  HAS_BIAS=bias is not None, BIG=needs_int64(inp, out))
    operands = (inp, wt, bias if bias is not None else wt, out, inp.shape[2], inp.shape[3], h_out, w_out, channels, div)
    weights = dict(off_h=off[0], off_w=off[1],  # input row/column of output (0, 0) at tap (0, 0)
                   w_off=w_off, swt_h=w_steps[0], swt_w=w_steps[1])  # tap (t, u): w_off + t*swt_h + u*swt_w
    strides = {**stride_args("si", inp), **stride_args("so", out)}
    programs_per_sm = _band_programs(inp.shape[0], w_out, channels) / _common.num_sms(inp.device)
    if by_rows(h_out, taps, steps, dil, mult, programs_per_sm, memory_format(inp) == torch.channels_last):
        hold = taps[0] * taps[1] * mult <= ROWS_TAPS
        rows = band_rows(inp.shape[0], h_out, w_out, channels, taps[0], inp.device, ROWS_CTAS_PER_SM[hold])
        grid = lambda meta: (inp.shape[0] * _common.cdiv(h_out, rows), _common.cdiv(w_out, meta["BW"]),  # noqa: E731
                             _common.cdiv(channels, meta["BC"]))
        kernel = _depthwise_rows_kernel if hold else _depthwise_rows_streamed_kernel
        kernel[grid](*operands, rows, **weights, **strides, **common, HOLD_W=hold)
    else:
        grid = lambda meta: (inp.shape[0] * _common.cdiv(h_out, meta["BH"]), _common.cdiv(w_out, meta["BW"]),  # noqa: E731
                             _common.cdiv(channels, meta["BC"]))
        _depthwise_stencil_kernel[grid](*operands, **weights, **strides, **common)


def forward(x, weight, bias, geo: Geometry):
    y = _common.empty((geo.n, geo.c_out, geo.h_out, geo.w_out), x.dtype, x.device, memory_format(x))
    if y.numel():
        with _common.device_guard(x):
            wt = transposed_weight(weight, geo.cout_per_group)
            _launch_stencil(x, wt, bias, y, h_out=geo.h_out, w_out=geo.w_out,
                            channels=geo.c_out, div=geo.cout_per_group, mult=1,
                            off=(-geo.padding[0], -geo.padding[1]), steps=geo.stride, taps=(geo.kh, geo.kw),
                            dil=geo.dilation, w_off=0,
                            w_steps=(geo.kw * wt.shape[1], wt.shape[1]))
    return y


def input_grad(dy, x, weight, geo: Geometry):
    dx = _common.empty(x.shape, x.dtype, x.device, memory_format(x))
    if not dx.numel():
        return dx
    wt = transposed_weight(weight, geo.cout_per_group)
    sh, sw = geo.stride
    with _common.device_guard(x):
        if (sh, sw) == (1, 1):
            # the forward's stencil on dy with the weights flipped (the last tap first, steps negative)
            c = wt.shape[1]
            dh, dw = geo.dilation
            _launch_stencil(dy, wt, None, dx, h_out=geo.h, w_out=geo.w, channels=geo.c_in, div=1,
                            mult=geo.cout_per_group,
                            off=(geo.padding[0] - (geo.kh - 1) * dh, geo.padding[1] - (geo.kw - 1) * dw),
                            steps=(1, 1), taps=(geo.kh, geo.kw), dil=(dh, dw), w_off=(geo.kh * geo.kw - 1) * c,
                            w_steps=(-geo.kw * c, -c))
        else:
            grid = lambda meta: (geo.n * _common.cdiv(_common.cdiv(geo.h, sh), meta["BH"]),  # noqa: E731
                                 _common.cdiv(_common.cdiv(geo.w, sw), meta["BW"]),
                                 _common.cdiv(geo.c_in, meta["BC"]))
            _depthwise_dgrad_phases_kernel[grid](
                dy, wt, dx, geo.h, geo.w, geo.h_out, geo.w_out, geo.c_in,
                geo.padding[0] // sh, geo.padding[1] // sw,  # the padding's multiple of the stride (runtime)
                wt.shape[1], **stride_args("sd", dy), **stride_args("sx", dx), KH=geo.kh, KW=geo.kw, SH=sh, SW=sw,
                DH=geo.dilation[0], DW=geo.dilation[1],
                PMH=geo.padding[0] % sh, PMW=geo.padding[1] % sw,  # its residue (compile-time: the phases' taps)
                J=geo.cout_per_group, BIG=needs_int64(dy, dx))
    return dx


def _wgrad_chunks(programs_per_chunk: int, device: torch.device) -> int:
    """Chunks of pixel tiles per channel block and tap group: about four programs per SM in all
    (the four 4-warp CTAs of 128 registers an SM holds; a chunk that owns no tile writes zeros)."""
    return max(1, _common.cdiv(4 * _common.num_sms(device), programs_per_chunk))


# Predicted (the kernel inspector, sm_90a, bf16, 3x3 at stride 1) weight gradient by rows against
# by tiles, bands chosen by band_rows: batch 8 at 56x56 5.1 against 5.1 us, at 28x28 3.8 against
# 3.7; batch 32 at 28x28 7.2 against 9.2; batch 64 at 56x56 21.8 against 27.5, at 14x14 7.2
# against 9.2; batch 256 at 56x56 81.5 against 104.2. On 7x7 maps (batch 64: 9.0 against 6.1) a
# band is mostly its halo steps and a 16-column block half empty. A 5x5 (batch 64): 44.0 against
# 82.2 at 56x56, 28.1 against 47.9 at 28x28, 17.1 against 25.0 at 14x14.
WGRAD_ROWS_PROGRAMS_PER_SM = 3


def wgrad_by_rows(h_out: int, taps: tuple[int, int], steps: tuple[int, int], dil: tuple[int, int],
                  programs_per_sm: float) -> bool:
    """Whether :func:`_depthwise_wgrad_rows_kernel` computes this weight gradient: row stride and
    dilation 1, at most ``ROWS_MAX_TAPS`` taps (their accumulators stay in registers), a map
    of at least four rows per tap row (two past ``ROWS_TAPS``: a 5x5's tiles cost more), and
    ``programs_per_sm`` (units of work times 32-channel blocks, per SM) at least
    ``WGRAD_ROWS_PROGRAMS_PER_SM``: each program's walk is a chain of dependent steps, so the rows
    kernel needs programs enough to fill the GPU."""
    if steps[0] != 1 or dil[0] != 1 or taps[0] * taps[1] > ROWS_MAX_TAPS:
        return False
    rows_per_tap_row = 4 if taps[0] * taps[1] <= ROWS_TAPS else 2
    return h_out >= rows_per_tap_row * taps[0] and programs_per_sm >= WGRAD_ROWS_PROGRAMS_PER_SM


def _weight_grad_by_rows(dy, x, geo: Geometry, rows: int, units: int, need_bias: bool):
    """Partials ``([chunks, C, taps], [chunks, C] or None)`` of :func:`_depthwise_wgrad_rows_kernel`
    over ``units`` (image, band of ``rows`` rows, 16 columns) a channel block; past ``ROWS_TAPS``
    taps, with the configs of two elements a thread."""
    chunks = min(_wgrad_chunks(_common.cdiv(geo.c_out, 32), x.device), units)
    ws = _common.empty((chunks, geo.c_out, geo.kh * geo.kw), torch.float32, x.device)
    dbs = _common.empty((chunks, geo.c_out), torch.float32, x.device) if need_bias else ws
    grid = lambda meta: (chunks, _common.cdiv(geo.c_out, meta["BC"]))  # noqa: E731
    wide = geo.kh * geo.kw > ROWS_TAPS
    kernel = _depthwise_wgrad_rows_wide_kernel if wide else _depthwise_wgrad_rows_kernel
    kernel[grid](x, dy, ws, dbs, geo.n, geo.h, geo.w, geo.h_out, geo.w_out, geo.c_out, geo.cout_per_group, rows,
                 chunks, geo.padding[0], geo.padding[1], **stride_args("sx", x), **stride_args("sd", dy),
                 KH=geo.kh, KW=geo.kw, SW=geo.stride[1], DW=geo.dilation[1], HAS_BIAS=need_bias,
                 BIG=needs_int64(x, dy))
    return ws, (dbs if need_bias else None)


def _weight_grad_by_tiles(dy, x, geo: Geometry, need_bias: bool):
    """Partials ``([chunks, C, taps], [chunks, C] or None)`` of :func:`_depthwise_wgrad_kernel`."""
    kh_g = min(geo.kh, max(1, WGRAD_TAPS // geo.kw))
    groups = _common.cdiv(geo.kh, kh_g)
    chunks = _wgrad_chunks(_common.cdiv(geo.c_out, WGRAD_BC) * groups, x.device)
    # never more chunks than the smallest config's tiles could feed (a tiny map)
    chunks = min(chunks, max(1, geo.n * _common.cdiv(geo.h_out, 2) * _common.cdiv(geo.w_out, 8)))
    ws = _common.empty((chunks, geo.c_out, geo.kh * geo.kw), torch.float32, x.device)
    dbs = _common.empty((chunks, geo.c_out), torch.float32, x.device) if need_bias else ws
    grid = lambda meta: (chunks, _common.cdiv(geo.c_out, meta["BC"]), groups)  # noqa: E731
    _depthwise_wgrad_kernel[grid](x, dy, ws, dbs, geo.n, geo.h, geo.w, geo.h_out, geo.w_out, geo.c_out,
                                  geo.cout_per_group, chunks, geo.padding[0], geo.padding[1],
                                  **stride_args("sx", x), **stride_args("sd", dy), KH=geo.kh, KW=geo.kw,
                                  SH=geo.stride[0], SW=geo.stride[1], DH=geo.dilation[0], DW=geo.dilation[1],
                                  KH_G=kh_g, HAS_BIAS=need_bias, BIG=needs_int64(x, dy))
    return ws, (dbs if need_bias else None)


def weight_grad(dy, x, weight, geo: Geometry, need_bias: bool):
    rows = band_rows(geo.n, geo.h_out, geo.w_out, geo.c_out, geo.kh, x.device, WGRAD_ROWS_CTAS_PER_SM)
    units = geo.n * _common.cdiv(geo.h_out, rows) * _common.cdiv(geo.w_out, WGRAD_ROWS_BW)
    programs_per_sm = units * _common.cdiv(geo.c_out, 32) / _common.num_sms(x.device)
    with _common.device_guard(x):
        if wgrad_by_rows(geo.h_out, (geo.kh, geo.kw), geo.stride, geo.dilation, programs_per_sm):
            ws, dbs = _weight_grad_by_rows(dy, x, geo, rows, units, need_bias)
        else:
            ws, dbs = _weight_grad_by_tiles(dy, x, geo, need_bias)
    return merge_partials(ws, weight), (merge_partials(dbs, None, weight.dtype) if need_bias else None)


# --- compile check --------------------------------------------------------------------------------

def compile_cases():
    """Every kernel per dtype and layout at ResNeXt-50's first-stage 3x3 made depthwise (128
    channels, 56x56, batch 64): the forward by rows at stride 1 (the stride-1 input gradient is the
    same kernel), also as a channels_last 5x5 (its weights loaded each step), and by tiles at
    stride 2, the input gradient of the same 3x3 at stride 2 (four phases), and the weight
    gradient by rows at stride 1 (also as a 5x5) and by tiles at stride 2."""
    from ..compile_check import Case, ptr

    n, c, hw = 64, 128, 56
    layouts = {"nchw": (c * hw * hw, hw * hw, hw, 1), "nhwc": (c * hw * hw, 1, hw * c, c)}
    half = {"nchw": (c * 28 * 28, 28 * 28, 28, 1), "nhwc": (c * 28 * 28, 1, 28 * c, c)}
    taps = dict(KH=3, KW=3, SH=1, SW=1, DH=1, DW=1)
    cases = []
    for dtype in _common.DTYPES:
        for layout, s in layouts.items():
            act = lambda prefix, st=s: dict(zip([prefix + axis for axis in "nchw"], st))  # noqa: E731
            cases.append(Case(_depthwise_rows_kernel, dtype, layout, dict(
                IN=ptr(dtype), WT=ptr(torch.float32), B=ptr(dtype), OUT=ptr(dtype), H_IN=hw, W_IN=hw, H_OUT=hw,
                W_OUT=hw, C=c, DIV=1, ROWS=14, off_h=-1, off_w=-1, w_off=0, swt_h=3 * c, swt_w=c, **act("si"),
                **act("so"), **taps, J=1, HAS_BIAS=True, HOLD_W=True, BIG=False)))
            if layout == "nhwc":
                cases.append(Case(_depthwise_rows_streamed_kernel, dtype, layout + "-5x5", dict(
                    IN=ptr(dtype), WT=ptr(torch.float32), B=ptr(dtype), OUT=ptr(dtype), H_IN=hw, W_IN=hw,
                    H_OUT=hw, W_OUT=hw, C=c, DIV=1, ROWS=28, off_h=-2, off_w=-2, w_off=0, swt_h=5 * c, swt_w=c,
                    **act("si"), **act("so"), **dict(taps, KH=5, KW=5), J=1, HAS_BIAS=True, HOLD_W=False,
                    BIG=False)))
            cases.append(Case(_depthwise_stencil_kernel, dtype, layout, dict(
                IN=ptr(dtype), WT=ptr(torch.float32), B=ptr(dtype), OUT=ptr(dtype), H_IN=hw, W_IN=hw, H_OUT=28,
                W_OUT=28, C=c, DIV=1, off_h=-1, off_w=-1, w_off=0, swt_h=3 * c, swt_w=c, **act("si"),
                **act("so", half[layout]), **dict(taps, SH=2, SW=2), J=1, HAS_BIAS=True, BIG=False)))
            cases.append(Case(_depthwise_dgrad_phases_kernel, dtype, layout, dict(
                DY=ptr(dtype), WT=ptr(torch.float32), DX=ptr(dtype), H=hw, WD=hw, H_OUT=28, W_OUT=28, C=c,
                pad_div_h=0, pad_div_w=0, w_cols=c, **act("sd", half[layout]), **act("sx"),
                **dict(taps, SH=2, SW=2), PMH=1, PMW=1, J=1, BIG=False)))
            cases.append(Case(_depthwise_wgrad_rows_kernel, dtype, layout, dict(
                X=ptr(dtype), DY=ptr(dtype), WS=ptr(torch.float32), DBS=ptr(torch.float32), N=n, H=hw, WD=hw,
                H_OUT=hw, W_OUT=hw, C=c, DIV=1, ROWS=19, NUM_CHUNKS=132, pad_h=1, pad_w=1, **act("sx"),
                **act("sd"), KH=3, KW=3, SW=1, DW=1, HAS_BIAS=True, BIG=False)))
            cases.append(Case(_depthwise_wgrad_rows_wide_kernel, dtype, layout + "-5x5", dict(
                X=ptr(dtype), DY=ptr(dtype), WS=ptr(torch.float32), DBS=ptr(torch.float32), N=n, H=hw, WD=hw,
                H_OUT=hw, W_OUT=hw, C=c, DIV=1, ROWS=28, NUM_CHUNKS=132, pad_h=2, pad_w=2, **act("sx"),
                **act("sd"), KH=5, KW=5, SW=1, DW=1, HAS_BIAS=True, BIG=False)))
            cases.append(Case(_depthwise_wgrad_kernel, dtype, layout, dict(
                X=ptr(dtype), DY=ptr(dtype), WS=ptr(torch.float32), DBS=ptr(torch.float32), N=n, H=hw, WD=hw,
                H_OUT=28, W_OUT=28, C=c, DIV=1, NUM_CHUNKS=132, pad_h=1, pad_w=1, **act("sx"),
                **act("sd", half[layout]), **dict(taps, SH=2, SW=2), KH_G=3, HAS_BIAS=True, BIG=False)))
    return cases
