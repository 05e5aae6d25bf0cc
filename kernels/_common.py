"""What every kernel family shares, in one place (``../shared/kernel-contract.md``).

* the dtype table and the reference-tolerance table;
* input checks that raise ``TypeError``/``ValueError`` naming the argument, what was expected and
  what came, including the rule that a CPU tensor is accepted only when the kernels run through
  the Triton interpreter (``TRITON_INTERPRET=1`` set before triton was imported);
* the ``(n, c, p)`` view of a 4-D activation that lets one kernel serve contiguous NCHW
  (``p`` unit-stride) and channels_last (``c`` unit-stride) without copying either;
* the ``@triton.jit`` helpers of the tile kernels: which ``[BLOCK_P, BLOCK_C]`` tile a program
  owns, the pointers to a tile of one tensor from that tensor's three strides, and a residual
  block's tail (``+ residual``, ReLU);
* grid and split-reduction helpers, output allocation (poisoned with NaN under
  :func:`poison_outputs`, so tests see any element a kernel failed to write) and the autotune
  wrapper (one config under the interpreter: a big tile by default, any GPU config under
  :func:`use_config`).
"""

from __future__ import annotations

import contextlib
import math
import numbers
import re
from typing import Iterable, Sequence

import torch
import triton
import triton.language as tl


# --- how triton was set up ---------------------------------------------------------------------

@triton.jit
def _probe(X):
    pass


# ``@triton.jit`` returns an InterpretedFunction when TRITON_INTERPRET was set at import time
# (triton 3.6 and 3.8 alike); asking the decorated object is more reliable than re-reading the
# environment, which may have changed since.
INTERPRET: bool = type(_probe).__name__ == "InterpretedFunction"


def _fix_interpreter_bf16_dot() -> None:
    """Make the interpreter's ``tl.dot`` multiply bfloat16 values, not their bit patterns.

    The interpreter stores bfloat16 as uint16 and its ``create_dot`` converts only 8-bit float
    operands before ``np.matmul`` (triton-lang/triton#11584, unfixed in triton 3.8), so a bf16
    dot returns values around 1e10. The GPU path is untouched: this corrects the simulator the
    tests run on, converting bf16 operands to fp32 exactly the way its own cast does (every bf16
    is an fp32, so the products are those of the tensor cores' fp32 accumulation).
    """
    from triton.runtime import interpreter

    builder = interpreter.InterpreterBuilder
    if getattr(builder.create_dot, "bf16_fixed", False):
        return
    original = builder.create_dot

    def create_dot(self, a, b, d, *args, **kwargs):
        def fp32(t):
            if t.dtype.scalar != tl.bfloat16:
                return t
            data = interpreter._convert_float(t.data, tl.bfloat16, tl.float32, None).view("float32")
            return interpreter.TensorHandle(data.reshape(t.data.shape), tl.float32)

        return original(self, fp32(a), fp32(b), d, *args, **kwargs)

    create_dot.bf16_fixed = True
    builder.create_dot = create_dot


def _skip_interpreter_overflow_checks_it_drops() -> None:
    """Stop the interpreter computing int32-overflow checks that it then throws away.

    Its options sanitize overflow by default, so every int32 add, sub and mul is done again in
    int64 and compared with the bounds; but the result goes to ``device_assert``, which does
    nothing unless ``debug`` is set, and the interpreter's options never set it. That wasted
    arithmetic was about a third of the time of AlexNet's patched forward and backward through
    the interpreter (37.8 -> 24.9 s on a 2-core machine). With ``debug`` on, the checks stay.
    """
    import dataclasses

    from triton.runtime import interpreter

    builder = getattr(interpreter, "interpreter_builder", None)
    options = getattr(builder, "options", None)
    if dataclasses.is_dataclass(options) and getattr(options, "sanitize_overflow", False) \
            and getattr(options, "debug", True) is False:
        builder.options = dataclasses.replace(options, sanitize_overflow=False)


if INTERPRET:
    _fix_interpreter_bf16_dot()
    _skip_interpreter_overflow_checks_it_drops()


# --- dtypes and tolerances ---------------------------------------------------------------------

DTYPES: dict[torch.dtype, str] = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}
TL_DTYPES: dict[torch.dtype, object] = {torch.float32: tl.float32, torch.float16: tl.float16,
                                        torch.bfloat16: tl.bfloat16}
# Relative error ||out - ref|| / ||ref|| against the torch op in float64 (the contract's bounds).
TOLERANCE: dict[str, float] = {"fp32": 1e-5, "fp16": 2e-3, "bf16": 1.6e-2, "tf32": 5e-4}


def tolerance(dtype: torch.dtype | str) -> float:
    return TOLERANCE[dtype if isinstance(dtype, str) else DTYPES[dtype]]


def _dtype_names(dtypes: Iterable[torch.dtype]) -> str:
    names = [str(d).replace("torch.", "") for d in dtypes]
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]


# --- input checks ------------------------------------------------------------------------------

def check_tensor(t, name: str, *, ndim: int | None = None, layout: str = "",
                 dtypes: Sequence[torch.dtype] = tuple(DTYPES), like: torch.Tensor | None = None,
                 like_name: str = "x") -> torch.Tensor:
    """``t`` is a tensor of rank ``ndim`` and one of ``dtypes``, on ``like``'s device if given,
    otherwise on a device the kernels can run on."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
    if like is not None and t.device != like.device:
        raise ValueError(f"{name}: expected a tensor on {like.device} (the device of {like_name}), got {t.device}")
    if ndim is not None and t.dim() != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D tensor{' ' + layout if layout else ''}, "
                         f"got a {t.dim()}-D tensor of shape {list(t.shape)}")
    if t.dtype not in dtypes:
        raise TypeError(f"{name}: expected dtype {_dtype_names(dtypes)}, got {t.dtype}")
    if like is None:
        check_runnable_device(t, name)
    return t


def check_runnable_device(t: torch.Tensor, name: str) -> None:
    """CUDA tensors always; CPU tensors only through the Triton interpreter."""
    if t.device.type == "cuda":
        return
    if t.device.type == "cpu":
        if INTERPRET:
            return
        raise ValueError(f"{name}: expected a CUDA tensor, got a CPU tensor; CPU tensors run only through the "
                         f"Triton interpreter (set TRITON_INTERPRET=1 before triton is imported)")
    raise ValueError(f"{name}: expected a CUDA tensor{' (or a CPU one)' if INTERPRET else ''}, "
                     f"got a tensor on {t.device}")


def check_per_channel(t, name: str, channels: int, ref: torch.Tensor) -> torch.Tensor:
    """A 1-D float tensor with one value per channel of ``ref``, on ``ref``'s device."""
    check_tensor(t, name, like=ref)
    if t.dim() != 1 or t.shape[0] != channels:
        raise ValueError(f"{name}: expected shape [{channels}] (one value per channel of x), "
                         f"got {list(t.shape)}")
    return t


def check_like(t, name: str, ref: torch.Tensor, ref_name: str = "x") -> torch.Tensor:
    """Same shape, dtype and device as ``ref`` (a residual, an incoming gradient)."""
    check_tensor(t, name, ndim=ref.dim(), like=ref, like_name=ref_name)
    if t.shape != ref.shape:
        raise ValueError(f"{name}: expected shape {list(ref.shape)} (the shape of {ref_name}), got {list(t.shape)}")
    if t.dtype != ref.dtype:
        raise TypeError(f"{name}: expected dtype {ref.dtype} (the dtype of {ref_name}), got {t.dtype}")
    return t


def check_real(value, name: str, *, minimum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    value = float(value)
    if math.isnan(value) or (minimum is not None and value < minimum):
        raise ValueError(f"{name}: expected a number >= {minimum}, got {value}" if minimum is not None
                         else f"{name}: expected a number, got {value}")
    return value


def check_int(value, name: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value}")
    return int(value)


def check_bool(value, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name}: expected a bool, got {type(value).__name__}")
    return value


# --- the (n, c, p) view of an activation -------------------------------------------------------

def _pixel_strides(t: torch.Tensor) -> tuple[int, int, int] | None:
    """Strides (n, c, p) with p = h * W + w, or None if h and w do not merge into one axis."""
    _, _, h, w = t.shape
    sn, sc, sh, sw = t.stride()
    if h * w == 1:
        return sn, sc, sn  # one pixel per image: p indexes n once merged below
    if h == 1 or sh == w * sw:
        return sn, sc, sw
    if w == 1:
        return sn, sc, sh
    return None


def mergeable(t: torch.Tensor) -> torch.Tensor:
    """``t`` itself when its H and W axes merge into one strided pixel axis (every contiguous,
    channels_last, expanded or channel-sliced tensor); otherwise a copy in ``t``'s suggested
    memory format. The copy is the one hidden copy in these kernels, for e.g. ``x[:, :, ::2]``."""
    if _pixel_strides(t) is not None:
        return t
    fmt = torch.channels_last if t.stride(1) == 1 else torch.contiguous_format
    return t.contiguous(memory_format=fmt)


def pixel_view(*tensors: torch.Tensor) -> tuple[int, int, list[tuple[int, int, int]]]:
    """``(N', P, strides)`` so element ``(n, c, p)`` of every tensor is at
    ``n * sn + c * sc + p * sp`` for ``n < N'``, ``p < P``.

    The batch axis is folded into the pixel axis when every tensor allows it (channels_last:
    ``sn == H * W * C``; any layout at batch 1 or 1x1 spatial size), so a channels_last tensor is
    one ``[N*H*W, C]`` matrix and a program never crosses an image boundary in NCHW.
    """
    n, _, h, w = tensors[0].shape
    strides = [_pixel_strides(t) for t in tensors]
    assert all(s is not None for s in strides), "call mergeable() first"
    p = h * w
    if n == 1 or all(sn == p * sp for sn, _, sp in strides):
        return 1, n * p, [(0, sc, sp) for _, sc, sp in strides]
    return n, p, strides


def empty_like(x: torch.Tensor) -> torch.Tensor:
    """An output in ``x``'s memory format (``x`` is dense after :func:`mergeable`)."""
    return _poison(torch.empty_like(x, memory_format=torch.preserve_format))


def empty(shape, dtype: torch.dtype, device, memory_format=torch.contiguous_format) -> torch.Tensor:
    return _poison(torch.empty(shape, dtype=dtype, device=device, memory_format=memory_format))


_POISON = False


def _poison(t: torch.Tensor) -> torch.Tensor:
    return t.fill_(float("nan")) if _POISON and t.is_floating_point() else t


@contextlib.contextmanager
def poison_outputs():
    """Every output and workspace a launcher allocates starts as NaN (a test hook)."""
    global _POISON
    saved, _POISON = _POISON, True
    try:
        yield
    finally:
        _POISON = saved


# --- grids, split reductions, devices ----------------------------------------------------------

cdiv = triton.cdiv


def tile_grid(n: int, p: int, c: int):
    """Grid over ``[BLOCK_P, BLOCK_C]`` tiles: axis 0 = (image, pixel block), axis 1 = channel block."""
    return lambda meta: (n * cdiv(p, meta["BLOCK_P"]), cdiv(c, meta["BLOCK_C"]))


def split_grid(chunks: int, c: int):
    """Grid of a split reduction: axis 0 = chunk of the pixels, axis 1 = channel block."""
    return lambda meta: (chunks, cdiv(c, meta["BLOCK_C"]))


def num_sms(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).multi_processor_count
    return 4  # the interpreter runs programs one after another; a small grid is a fast one


def split_chunks(pixels: int, channels: int, device: torch.device) -> int:
    """How many programs share each channel block of a reduction over N*H*W.

    Enough for about four programs per SM in all (so C=64 still fills a 132-SM GPU), but never
    fewer than 1024 pixels a chunk, where the fixed cost of a program would dominate. Under the
    interpreter: many tiny chunks, so small test shapes exercise the multi-chunk merge, chunks
    that own no tile at all, and chunks that own several, included.
    """
    if INTERPRET:
        return max(1, min(cdiv(pixels, 16), 3))
    programs = 4 * num_sms(device)
    return max(1, min(cdiv(pixels, 1024), cdiv(programs, cdiv(channels, 64))))


def device_guard(t: torch.Tensor):
    """Launch on ``t``'s device (Triton launches on the current device's stream)."""
    return torch.cuda.device(t.device) if t.device.type == "cuda" else contextlib.nullcontext()


# --- tile helpers (@triton.jit) ---------------------------------------------------------------
#
# The activation kernels work on [BLOCK_P pixels, BLOCK_C channels] tiles of the (n, c, p) view
# above. Each tensor comes with its own three strides, passed as ``<tensor>_stride_n``,
# ``<tensor>_stride_c`` and ``<tensor>_stride_p`` in that order (pixel_view's order), because
# the tensors of one launch need not share a layout (an NCHW gradient beside a channels_last
# input) and Triton specialises each stride of 1 separately.

@triton.jit
def channel_block(C, BLOCK_C: tl.constexpr):
    """The channels ``c`` of this program's channel block (grid axis 1) and their mask ``c < C``."""
    c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    return c, c < C


@triton.jit
def pixel_block(tile, P, BLOCK_P: tl.constexpr):
    """Pixel block ``tile`` of ``N * cdiv(P, BLOCK_P)``, image by image: its image ``n``, its first
    pixel ``p0``, ``rows = arange(BLOCK_P)`` and their mask ``p0 + rows < P``."""
    tiles_p = tl.cdiv(P, BLOCK_P)
    n = tile // tiles_p
    p0 = (tile % tiles_p) * BLOCK_P
    rows = tl.arange(0, BLOCK_P)
    return n, p0, rows, rows < P - p0


@triton.jit
def program_tile(P, C, BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr):
    """This program's tile of a :func:`tile_grid` launch: ``(n, p0, rows, c, channel_mask, mask)``,
    as :func:`pixel_block` (grid axis 0) and :func:`channel_block` (axis 1) give them, and the
    tile's ``[BLOCK_P, BLOCK_C]`` mask."""
    n, p0, rows, _ = pixel_block(tl.program_id(0), P, BLOCK_P)
    c, channel_mask = channel_block(C, BLOCK_C)
    # The same mask as row_mask[:, None] & channel_mask[None, :], in the form for which ptxas
    # gives the elementwise kernels up to 4 fewer registers (sm_80, fp32).
    mask = (rows[:, None] < P - p0) & channel_mask[None, :]
    return n, p0, rows, c, channel_mask, mask


@triton.jit
def tile_ptrs(base, n, p0, rows, c, stride_n, stride_c, stride_p):
    """Pointers ``[len(rows), len(c)]`` to the elements ``(n, c, p0 + rows)`` of the tensor at
    ``base`` with strides ``(stride_n, stride_c, stride_p)``.

    The image and first pixel make one scalar offset in int64 (``p0 * stride_p`` passes 2**31 in
    a large channels_last batch, where ``P`` holds every image), added to ``base`` before the
    tile's own offsets, which stay int32: one 64-bit add per element, no 64-bit multiply.
    """
    start = n.to(tl.int64) * stride_n + p0.to(tl.int64) * stride_p
    return base + start + (rows[:, None] * stride_p + c[None, :] * stride_c)


@triton.jit
def row_ptrs(base, n, p0, rows, stride_n, stride_p):
    """Pointers ``[len(rows), 1]`` to channel 0 of the pixels ``(n, p0 + rows)``, for a kernel that
    reads one tile at several channel offsets ``q`` (``row_ptrs(...) + q[None, :] * stride_c``):
    the rows' 64-bit pointers are computed once, only the channels' int32 offsets change."""
    return base + (n.to(tl.int64) * stride_n + p0.to(tl.int64) * stride_p) + rows[:, None] * stride_p


@triton.jit
def image_offsets(p0, rows, c, stride_c, stride_p):
    """Offsets ``[len(rows), len(c)]`` of the elements ``(c, p0 + rows)`` from the start of their
    image, in int32 (an image has fewer than 2**31 elements): for a kernel that walks the pixels of
    one image from a pointer to it, computed once in int64."""
    return p0 * stride_p + (rows[:, None] * stride_p + c[None, :] * stride_c)


@triton.jit
def residual_relu(y, RES, n, p0, rows, c, mask, res_stride_n, res_stride_c, res_stride_p,
                  HAS_RES: tl.constexpr, RELU: tl.constexpr):
    """The tail of a residual block on an fp32 tile ``y`` of ``(n, c, p0 + rows)``: ``+ res``
    (read from ``RES``) if ``HAS_RES``, then ReLU if ``RELU``, NaN staying NaN as in torch.relu."""
    if HAS_RES:
        r = tl.load(tile_ptrs(RES, n, p0, rows, c, res_stride_n, res_stride_c, res_stride_p), mask=mask, other=0.0)
        y += r.to(tl.float32)
    if RELU:
        y = tl.where(y < 0.0, 0.0, y)
    return y


# --- last-arriving program (split reductions finished in one launch) ---------------------------
#
# A split reduction's programs each store a partial, then count their arrival on an int32 counter
# per output block; the program that arrives last reads every partial and finishes the block, so
# no second, dependent launch is needed (the pattern of CUDA's grid synchronisation and of
# PyTorch's channels_last Welford kernel). The counters stay zero between launches: the last
# program sets its counter back, so no memset precedes a launch.

_ARRIVALS: dict[tuple, torch.Tensor] = {}


def arrival_counters(device, count: int) -> torch.Tensor:
    """At least ``count`` zeroed int32 counters that every kernel using :func:`last_arrival` leaves
    at zero: kept per device and stream (two streams running such kernels at once must not share
    them; kernels of one stream run one after another) and grown when a launch needs more."""
    device = torch.device(device)
    stream = torch.cuda.current_stream(device).cuda_stream if device.type == "cuda" else 0
    counters = _ARRIVALS.get((device, stream))
    if counters is None or counters.numel() < count:
        counters = _ARRIVALS[device, stream] = torch.zeros(max(count, 64), dtype=torch.int32, device=device)
    return counters


@triton.jit
def last_arrival(ARRIVED, block, programs):
    """Whether this program is the last of the ``programs`` that share counter ``ARRIVED[block]``
    to arrive, once every thread's stores are done (a CTA barrier, then one acquire-release atomic
    at GPU scope). The last must read the others' partials past L1 (``cache_modifier=".cg"``:
    another SM wrote them) and then store 0 to ``ARRIVED + block`` for the next launch."""
    tl.debug_barrier()  # every thread's partials stored before this program's arrival is counted
    arrived = tl.atomic_add(ARRIVED + block, 1, sem="acq_rel")
    return arrived == programs - 1


# --- autotuning --------------------------------------------------------------------------------

AUTOTUNED: list = []  # every autotuned kernel of the package (for use_config and the compile check)
_FORCED_CONFIG: int | None = None

# The interpreter's cost is per program and per op, hardly per element: by default it runs one
# big tile, so a CPU test launches a handful of programs. Every GPU config is still run through
# the interpreter by the tests that select it with use_config().
INTERPRETER_TILE = triton.Config({"BLOCK_P": 256, "BLOCK_C": 256}, num_warps=4)


def tile_configs(elements: int, num_warps: int, channel_blocks: Sequence[int] = (64, 16, 256)) -> list:
    """Autotune configs of a ``[BLOCK_P, BLOCK_C]`` tile kernel: tiles of ``elements`` elements,
    one per ``BLOCK_C`` of ``channel_blocks``, in that order. The default three cover the
    layouts: a balanced tile (channels_last with C >= 64, NCHW with H*W >= 64), a tall one
    (NCHW with large H*W: long unit-stride pixel rows) and a wide one (channels_last with
    C >= 256: long unit-stride channel rows)."""
    return [triton.Config({"BLOCK_P": elements // block_c, "BLOCK_C": block_c}, num_warps=num_warps)
            for block_c in channel_blocks]


def layout_strides(arg_names: list[str]) -> list[str]:
    """A kernel's channel-stride arguments, one per tensor (``<t>_stride_c`` in the tile kernels,
    ``s<t>c`` in the convolutions): 1 for channels_last, the pixel count for NCHW. The best tile
    of a kernel depends on every operand's layout (a channels_last ``dy`` beside an NCHW ``x``
    reads otherwise), so each is part of its autotune key."""
    return [name for name in arg_names if name.endswith("_stride_c") or re.fullmatch(r"s[a-z]c", name)]


def autotune(configs: list, key: list[str], interpreter_config: triton.Config | None = None,
             restore_value: tuple[str, ...] = ()):
    """``triton.autotune`` with the package's pruning. Autotuning runs a kernel several times on
    the same arguments: a kernel that updates an argument in place names it in ``restore_value``
    (Triton saves it before each benchmarked run and puts it back after), and any other side
    effect must leave the arguments as it found them. The key is ``key`` (each a name of the
    kernel's arguments: Triton would ignore one that is not) and every operand's layout
    (:func:`layout_strides`).

    On a GPU every config is benchmarked once per key. The interpreter cannot time anything and
    runs programs one after another, so it runs one config: ``interpreter_config`` (default: the
    first), or the ``index``-th of ``configs`` under :func:`use_config`.
    """
    def prune(candidates, named_args, **kwargs):
        if not INTERPRET:
            return candidates
        if _FORCED_CONFIG is None:
            return [interpreter_config or candidates[0]]
        return [candidates[_FORCED_CONFIG % len(candidates)]]

    def decorator(fn):
        unknown = [name for name in [*key, *restore_value] if name not in fn.arg_names]
        if unknown:
            raise ValueError(f"autotune of {fn.__name__}: {unknown} are not its arguments")
        full_key = key + [name for name in layout_strides(fn.arg_names) if name not in key]
        tuned = triton.autotune(configs=configs, key=full_key, prune_configs_by={"early_config_prune": prune},
                                restore_value=list(restore_value) or None)(fn)
        AUTOTUNED.append(tuned)
        return tuned

    return decorator


@contextlib.contextmanager
def use_config(index: int):
    """Under the interpreter, run every autotuned kernel with its ``index``-th config (a test hook)."""
    global _FORCED_CONFIG
    saved, _FORCED_CONFIG = _FORCED_CONFIG, index
    for tuned in AUTOTUNED:
        tuned.cache.clear()
    try:
        yield
    finally:
        _FORCED_CONFIG = saved
        for tuned in AUTOTUNED:
            tuned.cache.clear()


# --- correctness measure (tests and the harness's device check) ------------------------------

def relative_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    """``||out - ref|| / ||ref||`` in float64 on the CPU; NaN (never within a bound) if ``out`` has
    a NaN or an infinity that ``ref`` has not, or the shapes differ."""
    out = out.detach().to("cpu", torch.float64)
    ref = ref.detach().to("cpu", torch.float64)
    if out.shape != ref.shape:
        return float("nan")
    bad = ~torch.isfinite(ref)
    if not torch.equal(~torch.isfinite(out), bad) or not torch.equal(out[bad].nan_to_num(), ref[bad].nan_to_num()):
        return float("nan")
    out, ref = out[~bad], ref[~bad]
    diff, norm = (out - ref).norm().item(), ref.norm().item()
    return diff / norm if norm > 0 else (0.0 if diff == 0 else float("inf"))


# --- hardware approximations (@triton.jit) ----------------------------------------------------

# INTERPRET as a constexpr, so @triton.jit code can keep a plain path for the interpreter, which
# runs no PTX (an inline_asm_elementwise there raises).
INTERPRETED = tl.constexpr(INTERPRET)


@triton.jit
def log2_approx(x):
    """``log2(x)`` of an fp32 tensor by the SFU (``lg2.approx.ftz.f32``, one MUFU.LG2, as CUDA's
    ``__log2f``: absolute error 2**-22 in [0.5, 2], 2 ulp elsewhere; denormals flushed to zero).
    ``tl.log2`` compiles to libdevice's software polynomial (a dozen FMAs); ``tl.exp2`` is already
    ``ex2.approx.ftz.f32``. Under the interpreter: ``tl.log2``."""
    if INTERPRETED:
        return tl.log2(x)
    else:
        return tl.inline_asm_elementwise("lg2.approx.ftz.f32 $0, $1;", "=r,r", [x], dtype=tl.float32,
                                         is_pure=True, pack=1)


@triton.jit
def folded_pixel_block(tile, N, P, BLOCK_P: tl.constexpr):
    """:func:`pixel_block` of a launch over ``N`` images, without its runtime division (48 SASS
    instructions a program in LRN's kernels at sm_90a) when ``N`` is 1: :func:`pixel_view`
    folds the batch into ``P`` for every channels_last tensor, and the JIT turns an int argument
    equal to 1 into a constant, so there the branch is decided at compile time. A kernel whose
    ``N`` is a ``tl.constexpr`` (BN+ReLU's) decides it at compile time for every ``N``: no
    runtime branch, and no registers for the path not taken."""
    if N == 1:
        tile = tl.cast(tile, tl.int32)  # the interpreter's loop counters are Python ints
        rows = tl.arange(0, BLOCK_P)
        p0 = tile * BLOCK_P
        return tile * 0, p0, rows, rows < P - p0
    else:
        return pixel_block(tile, P, BLOCK_P)
