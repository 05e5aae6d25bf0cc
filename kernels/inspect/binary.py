"""One launch's compiled code, read: what ``ptxas -v`` and the SASS say, and how often each
instruction runs.

A launch is compiled exactly as ``@triton.jit`` would specialise it (``kernels.compile_check``'s
``specialise``: constexprs, ints equal to 1 folded, ``tt.divisibility=16`` on ints and pointers
that are multiples of 16) for one architecture and autotune config. From the binary:

* ``ptxas -v`` (the ptxas inside the triton package, with Triton's own flags): registers, spills;
* Triton's metadata: shared memory per CTA;
* the SASS, disassembled with line information by the bundled ``nvdisasm``: every instruction with
  the source line it came from. A backward branch closes a loop; the loop is matched to the
  ``scf.for`` of the Triton IR (TTIR) that carries the same source line, and that loop's bounds
  are evaluated from the launch's arguments for every program of the grid (the scalar arithmetic
  of the TTIR, vectorised over program ids). So each instruction's dynamic count is the product
  of the trip counts of the loops around it: exact for the loops themselves; an ``if`` inside a
  program is counted as taken (an upper bound), and a loop whose bounds change from one
  iteration of an enclosing loop to the next is counted at the enclosing loop's first iteration.
* the TTIR's integer arithmetic again, with its tensors, for the grid's middle program: the byte
  offsets (and mask) of every load's pointer tensor, which with the load's TTGIR layout say which
  addresses a warp's lanes touch (``load_addresses``, ``load_lanes``).

Compiled analyses are cached on disk (``KERNELS_INSPECT_CACHE``, default
``~/.cache/classic-cnn-bench/inspect``), keyed by Triton's hash of the specialised source (the
kernel's source and every function it calls, signature, constants, hints), the options and the
triton version: a second run compiles nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from .. import compile_check


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "classic-cnn-bench" / "inspect"
    return Path(os.environ.get("KERNELS_INSPECT_CACHE", default))


# --- SASS ----------------------------------------------------------------------------------

_LINE = re.compile(r'//## File "(?P<file>[^"]+)", line (?P<line>\d+)')
_INSTRUCTION = re.compile(r"/\*(?P<addr>[0-9a-f]{4,})\*/\s+(?P<pred>@!?U?P\w+\s+)?(?P<op>[A-Z][A-Za-z0-9_.]*)"
                          r"(?P<rest>[^;]*);")
_LABEL = re.compile(r"^(\.L_x_\d+):")
_TARGET = re.compile(r"`\((\.L_x_\d+)\)")


def disassemble(cubin: bytes) -> list[dict]:
    """Every SASS instruction: ``addr``, ``op`` (with modifiers), ``operands``, ``line`` (source
    ``file:line``) and, for a branch, ``target`` (an address)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "k.cubin"
        path.write_bytes(cubin)
        text = subprocess.run([str(compile_check.nvidia_tool("nvdisasm")), "-g", "-c", str(path)],
                              capture_output=True, text=True, check=True).stdout
    instructions, labels, pending, line = [], {}, [], None
    for raw in text.splitlines():
        if m := _LINE.search(raw):
            line = f"{m['file']}:{m['line']}"
        elif m := _LABEL.match(raw.strip()):
            pending.append(m.group(1))
        elif m := _INSTRUCTION.search(raw):
            addr = int(m["addr"], 16)
            labels.update({label: addr for label in pending})
            pending = []
            target = _TARGET.search(m["rest"])
            instructions.append({"addr": addr, "op": m["op"], "operands": m["rest"].strip(), "line": line,
                                 "target": target.group(1) if target else None,
                                 "pred": m["pred"].strip() if m["pred"] else None})
    for ins in instructions:
        if ins["target"] is not None:
            ins["target"] = labels.get(ins["target"])
    # the trailing ``BRA self`` after EXIT and the NOP padding never run
    while instructions and instructions[-1]["op"] in ("NOP", "BRA") and (
            instructions[-1]["op"] == "NOP" or instructions[-1]["target"] == instructions[-1]["addr"]):
        instructions.pop()
    return instructions


def width_bits(op: str) -> int:
    """Bits per thread of a load or store (``LDG.E.128`` -> 128, ``LDG.E.U16`` -> 16, ``LDG.E`` -> 32)."""
    mods = op.split(".")[1:]
    for bits, names in ((128, ("128",)), (64, ("64",)), (16, ("U16", "S16", "16")), (8, ("U8", "S8", "8"))):
        if any(m in names for m in mods):
            return bits
    return 32


_MMA_SHAPE = re.compile(r"(\d+)x(\d+)x(\d+)")
_HMMA_SHAPES = {"16816": (16, 8, 16), "1688": (16, 8, 8), "1684": (16, 8, 4), "884": (8, 8, 4)}


def mma_fmas(op: str) -> int:
    """Multiply-adds of one tensor-core instruction (per warp for HMMA, per warpgroup for HGMMA)."""
    mods = op.split(".")
    if mods[0] == "HGMMA" and (m := _MMA_SHAPE.match(mods[1])):
        return int(m[1]) * int(m[2]) * int(m[3])
    if mods[0] == "HMMA" and mods[1] in _HMMA_SHAPES:
        m, n, k = _HMMA_SHAPES[mods[1]]
        return m * n * k
    return 0


def instruction_class(op: str) -> str:
    head = op.split(".")[0]
    if head == "LDG":
        return "global_load"
    if head == "STG":
        return "global_store"
    if head == "LDGSTS":
        return "async_copy"
    if head.startswith("UTMA") or head == "UBLKCP":
        return "tma"
    if head in ("HGMMA", "HMMA"):
        return "tensor_core"
    if head == "BAR":
        return "barrier"
    return "other"


def last_arrival_tail(instructions: list[dict]) -> tuple[int, int] | None:
    """Addresses ``(first, last)`` of the code only the last-arriving program runs
    (``kernels._common.last_arrival``): after the arrival's global atomic (``ATOMG``), the first
    predicated forward exit skips it. ``@P EXIT``: the tail runs to the next unpredicated ``EXIT``;
    ``@P BRA``: up to the branch's target. None for a kernel without an arrival counter."""
    atomic = next((i for i, ins in enumerate(instructions) if ins["op"].startswith("ATOMG")), None)
    if atomic is None:
        return None
    for i in range(atomic + 1, len(instructions)):
        ins = instructions[i]
        if ins.get("pred") is None or i + 1 == len(instructions):
            continue
        first = instructions[i + 1]["addr"]
        if ins["op"] == "EXIT":
            last = next((e["addr"] for e in instructions[i + 1:] if e["op"] == "EXIT" and e.get("pred") is None), None)
            return (first, last) if last is not None else None
        if ins["op"].startswith("BRA") and ins["target"] is not None and ins["target"] > ins["addr"]:
            return first, ins["target"] - 1
    return None


def loops(instructions: list[dict]) -> list[dict]:
    """Loops closed by backward branches: ``start``/``end`` addresses and the branch's source line."""
    found = []
    for ins in instructions:
        if ins["op"].startswith("BRA") and ins["target"] is not None and ins["target"] < ins["addr"]:
            found.append({"start": ins["target"], "end": ins["addr"], "line": ins["line"]})
    return sorted(found, key=lambda lp: (lp["start"], -lp["end"]))


# --- TTIR: loops and their trip counts -------------------------------------------------------

_LOC_DEF = re.compile(r"^#(loc\d*) = loc\((.*)\)\s*$")
_ARG = re.compile(r"%(\w+): (i1|i32|i64|f32|!tt\.ptr<[^>]+>)")
_OP = re.compile(r"^\s*%([\w.]+) = ([a-z_]+\.[a-z_]+) (.*?) : ([^:]*?)(?: loc\(#?([\w]+)\))?\s*$")
_FOR = re.compile(r"scf\.for %([\w.]+) = %([\w.]+) to %([\w.]+) step %([\w.]+)")
_CLOSE_LOC = re.compile(r"^\s*\}.* loc\(#(loc\d*)\)\s*$")


def _loc_line(locs: dict, name: str) -> str | None:
    """The ``file:line`` a location comes down to, through call sites and names (a loop's names
    chain once per value it carries: 36 deep for a 5x5's accumulators)."""
    seen = set()
    while name not in seen:
        seen.add(name)
        text = locs.get(name)
        if text is None:
            return None
        if m := re.match(r'"([^"]+)":(\d+):\d+', text):
            return f"{m[1]}:{m[2]}"
        m = re.match(r"callsite\(#(loc\d*) at", text) or re.search(r"#(loc\d*)", text)
        if m is None:
            return None
        name = m[1]
    return None


def _trunc_div(a, b):
    b = np.where(b == 0, 1, b)
    q = np.abs(a) // np.abs(b)
    return np.where((a < 0) ^ (b < 0), -q, q)


_BINARY = {"arith.addi": np.add, "arith.subi": np.subtract, "arith.muli": np.multiply,
           "arith.divsi": _trunc_div, "arith.divui": _trunc_div,
           "arith.remsi": lambda a, b: a - _trunc_div(a, b) * np.where(b == 0, 1, b),
           "arith.ceildivsi": lambda a, b: -((-a) // np.where(b == 0, 1, b)),
           "arith.floordivsi": lambda a, b: a // np.where(b == 0, 1, b),
           "arith.minsi": np.minimum, "arith.maxsi": np.maximum, "arith.minui": np.minimum, "arith.maxui": np.maximum,
           "arith.andi": np.bitwise_and, "arith.ori": np.bitwise_or, "arith.xori": np.bitwise_xor,
           "arith.shli": np.left_shift, "arith.shrsi": np.right_shift, "arith.shrui": np.right_shift}
_COMPARE = {"eq": np.equal, "ne": np.not_equal, "slt": np.less, "sle": np.less_equal, "sgt": np.greater,
            "sge": np.greater_equal, "ult": np.less, "ule": np.less_equal, "ugt": np.greater, "uge": np.greater_equal}


_SHAPE = re.compile(r"tensor<((?:\d+x)+)")
_ITER_ARG = re.compile(r"%([\w.]+) = %([\w.]+)")


def _shape_of(type_text: str) -> tuple[int, ...]:
    """The shape of the (last) tensor type in ``type_text``: ``i32 -> tensor<64x32xi32>`` -> (64, 32)."""
    shapes = _SHAPE.findall(type_text)
    return tuple(int(v) for v in shapes[-1].rstrip("x").split("x")) if shapes else ()


@dataclasses.dataclass
class _Pointer:
    """A pointer (or a tensor of them) as an argument plus a byte offset."""

    base: str
    offset: np.ndarray
    element_bytes: int


def _walk_ttir(ttir: str, args: dict, program: dict, *, tensors: bool, on_loop=None, on_loop_end=None,
               on_load=None) -> None:
    """Evaluate a TTIR function's integer arithmetic with numpy, top to bottom, once: scalars (for
    a set of programs at once when ``program``'s ids are arrays over them), and with ``tensors``
    the tensors of integers, masks and pointers too (for one program). A loop's body is evaluated
    once, at its first iteration (its induction variable at the lower bound, its carried values at
    their initial ones). Values it cannot know (loaded from memory, floats) stay unknown, and so
    does what depends on them.

    Callbacks: ``on_loop(lower, upper, step)`` at each ``scf.for`` (each None where unknown),
    ``on_loop_end(where)`` at its end (its source ``file:line``), ``on_load(where, pointer, mask)``
    at each ``tt.load`` of a pointer tensor (``mask`` None when it has none or it is unknown)."""
    lines = ttir.splitlines()
    locs = {m[1]: m[2] for line in lines if (m := _LOC_DEF.match(line))}
    env: dict = {}
    for line in lines:
        if "tt.func public" in line:
            for name, type_text in _ARG.findall(line):
                value = args.get(name)
                if type_text.startswith("!tt.ptr"):
                    if tensors:
                        element = type_text[len("!tt.ptr<"):-1]
                        env[name] = _Pointer(name, np.int64(0), _ELEMENT_BYTES.get(element, 4))
                elif isinstance(value, (bool, int)):
                    env[name] = int(value)
            break
    regions: list[bool] = []  # the open regions: True for an scf.for's body

    def value(token: str):
        return env[token.strip().split()[0].lstrip("%")]

    for line in lines:
        stripped = line.strip()
        if stripped.startswith("}"):
            if regions and regions.pop() and on_loop_end is not None:
                m = _CLOSE_LOC.match(line)
                on_loop_end(_loc_line(locs, m[1]) if m else None)
            if stripped.endswith("{"):  # "} else {"
                regions.append(False)
            continue
        if (m := _FOR.search(line)) is not None:
            iv, lb, ub, st = m.groups()
            bounds = [env.get(v) for v in (lb, ub, st)]
            if on_loop is not None:
                on_loop(*bounds)
            if bounds[0] is not None:
                env[iv] = bounds[0]
            if tensors and (carried := re.search(r"iter_args\((.*?)\) ->", line)) is not None:
                for name, init in _ITER_ARG.findall(carried[1]):
                    if init in env:
                        env[name] = env[init]
            regions.append(True)
            continue
        if stripped.endswith("{"):
            regions.append(False)
        m = _OP.match(line)
        if m is None:
            continue
        name, op, operands, type_text = m[1], m[2], m[3], m[4]
        if "tensor<" in type_text and not tensors:
            continue
        try:
            if op == "arith.constant":
                text = operands.removeprefix("dense<").split(">")[0] if operands.startswith("dense<") else operands
                if (c := re.match(r"(-?\d+)(?: : \w+)?$", text)) is not None:
                    number = int(c[1])
                elif text in ("true", "false"):
                    number = int(text == "true")
                else:
                    continue
                env[name] = np.full(_shape_of(type_text), number, dtype=np.int64) if "tensor<" in type_text else number
            elif op == "tt.get_program_id":
                env[name] = program[operands.strip()]
            elif op == "tt.get_num_programs":
                env[name] = program["num_" + operands.strip()]
            elif op == "tt.make_range":
                bounds = dict(re.findall(r"(start|end) = (-?\d+)", operands))
                env[name] = np.arange(int(bounds["start"]), int(bounds["end"]), dtype=np.int64)
            elif op in ("tt.splat", "tt.broadcast"):
                shape, source = _shape_of(type_text.split("->")[-1]), value(operands)
                if isinstance(source, _Pointer):
                    env[name] = _Pointer(source.base, np.broadcast_to(source.offset, shape), source.element_bytes)
                else:
                    env[name] = np.broadcast_to(np.asarray(source, dtype=np.int64), shape)
            elif op == "tt.expand_dims":
                axis, source = int(re.search(r"axis = (-?\d+)", operands)[1]), value(operands)
                if isinstance(source, _Pointer):
                    env[name] = _Pointer(source.base, np.expand_dims(source.offset, axis), source.element_bytes)
                else:
                    env[name] = np.expand_dims(source, axis)
            elif op == "tt.addptr":
                pointer, offset = (value(v) for v in operands.split(","))
                env[name] = _Pointer(pointer.base, pointer.offset + np.asarray(offset, dtype=np.int64)
                                     * pointer.element_bytes, pointer.element_bytes)
            elif op == "tt.load":
                if on_load is not None and "tensor<" in type_text:
                    parts = [v.strip() for v in operands.split(",")]
                    pointer = env.get(parts[0].lstrip("%"))
                    mask = env.get(parts[1].lstrip("%")) if len(parts) > 1 else None
                    where = _loc_line(locs, m[5]) if m[5] else None
                    if isinstance(pointer, _Pointer) and where is not None:
                        on_load(where, pointer, mask)
            elif op in _BINARY:
                a, b = (value(v) for v in operands.split(","))
                env[name] = _BINARY[op](np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64))
            elif op == "arith.cmpi":
                pred, a, b = (v.strip().lstrip("%") for v in operands.split(","))
                env[name] = _COMPARE[pred](np.asarray(env[a]), np.asarray(env[b])).astype(np.int64)
            elif op == "arith.select":
                c, a, b = (value(v) for v in operands.split(","))
                env[name] = np.where(np.asarray(c) != 0, a, b)
            elif op in ("arith.extsi", "arith.extui", "arith.trunci", "arith.index_cast", "arith.bitcast"):
                env[name] = value(operands)
        except (KeyError, AttributeError, TypeError, ValueError):
            continue  # an operand it does not know (loaded, float, an op it does not evaluate)


def loop_trips(ttir: str, args: dict, grid: tuple[int, int, int]) -> dict[str, np.ndarray]:
    """Trip count per program of every ``scf.for`` (keyed by its source ``file:line``), an int64
    array over the grid's programs (x fastest), from the launch's scalar arguments."""
    count = grid[0] * grid[1] * grid[2]
    pid = np.arange(count, dtype=np.int64)
    program = {"x": pid % grid[0], "y": (pid // grid[0]) % grid[1], "z": pid // (grid[0] * grid[1]),
               "num_x": grid[0], "num_y": grid[1], "num_z": grid[2]}
    trips: dict[str, np.ndarray] = {}
    open_loops: list[np.ndarray | None] = []  # trips of the open scf.for bodies (None: bounds unknown)

    def on_loop(lo, hi, step):
        if lo is None or hi is None or step is None:
            open_loops.append(None)
            return
        lo, hi, step = (np.broadcast_to(np.asarray(b, dtype=np.int64), (count,)) for b in (lo, hi, step))
        open_loops.append(np.maximum(0, -((lo - hi) // np.where(step == 0, 1, step))))

    def on_loop_end(where):
        n = open_loops.pop()
        if where is not None and n is not None:
            # the same line closing two loops (a helper called twice) counts both
            trips[where] = trips[where] + n if where in trips else n

    _walk_ttir(ttir, args, program, tensors=False, on_loop=on_loop, on_loop_end=on_loop_end)
    return trips


def load_addresses(ttir: str, args: dict, grid: tuple[int, int, int]) -> dict[str, dict]:
    """Per source ``file:line``, the first ``tt.load`` of a pointer tensor there, as the middle
    program of the grid issues it on its loops' first iteration: ``offsets`` (bytes from the
    pointer argument ``base``, one per element of the loaded tensor) and ``mask`` (None when it
    has none, or when it is not known from the arguments)."""
    program = {axis: n // 2 for axis, n in zip("xyz", grid)}
    program.update({f"num_{axis}": n for axis, n in zip("xyz", grid)})
    out: dict[str, dict] = {}

    def on_load(where, pointer, mask):
        if where not in out:
            offsets = np.asarray(pointer.offset)
            mask = None if mask is None else np.broadcast_to(np.asarray(mask) != 0, offsets.shape)
            out[where] = {"base": pointer.base, "offsets": offsets, "mask": mask}

    _walk_ttir(ttir, args, program, tensors=True, on_load=on_load)
    return out


# --- TTGIR: how a load's lanes spread over memory -----------------------------------------------

_BLOCKED = re.compile(r"^#(\w+) = #ttg\.blocked<\{sizePerThread = \[([\d, ]+)\], threadsPerWarp = \[([\d, ]+)\], "
                      r"warpsPerCTA = \[[\d, ]+\], order = \[([\d, ]+)\]")
# a load, or an async copy (a load the pipeliner moved): its pointer tensor's type and layout
_MEMORY_OP = re.compile(r"= (?:tt\.load|ttg\.async_copy_global_to_local) .*: tensor<(?P<shape>[\dx]+)x!tt\.ptr<"
                        r"(?P<dtype>\w+)>, (?P<layout>#.+?)>(?: -> <[^>]*>)? loc\(#(?P<loc>loc\d*)\)")
_SLICE = re.compile(r"#ttg\.slice<\{dim = (\d+), parent = (.+)\}>$")
_ELEMENT_BYTES = {"bf16": 2, "f16": 2, "f32": 4, "f64": 8, "i8": 1, "i16": 2, "i32": 4, "i64": 8, "i1": 1}
CACHE_LINE = 128


def _ints_of(text: str) -> list[int]:
    return [int(v) for v in text.split(",")]


def load_lanes(ttgir: str, addresses: dict[str, dict] | None = None) -> dict[str, dict]:
    """Per source ``file:line``, the lanes of a warp's load from its TTGIR layout: ``rows`` (lanes
    on distinct rows: the dimensions other than the fastest), ``row_span_bytes`` (the bytes one
    instruction's lanes cover along the fastest dimension, taken as unit-stride in memory, which
    is how Triton's coalescing picks the order), ``distinct_lanes`` (32, less the lanes of a
    sliced layout that repeat another's address: a ``[BC]`` weight vector broadcast over a tile's
    rows) and ``dtype`` (of the elements loaded: ``bf16``, ``f32``...).

    With the load's ``addresses`` (:func:`load_addresses`), also ``lane_offsets``: the byte offset
    of the first element each of warp 0's 32 lanes loads (None for a lane its mask turns off), so
    that a gather along a runtime stride counts the lines it really touches."""
    lines = ttgir.splitlines()
    locs = {m[1]: m[2] for line in lines if (m := _LOC_DEF.match(line))}
    blocked = {m[1]: (_ints_of(m[2]), _ints_of(m[3]), _ints_of(m[4])) for line in lines if (m := _BLOCKED.match(line))}
    out = {}
    for line in lines:
        m = _MEMORY_OP.search(line)
        if m is None:
            continue
        name, slices = _unsliced(m["layout"])
        if name not in blocked:
            continue
        per_thread, per_warp, order = blocked[name]
        dims = list(range(len(per_warp)))  # the blocked layout's dimensions the loaded tensor has
        for dim in reversed(slices):  # the innermost slice drops one of the blocked layout's first
            dims.pop(dim)
        dropped = [d for d in range(len(per_warp)) if d not in dims]
        kept = [d for d in order if d in dims]
        fast = kept[0]
        rows = math.prod(per_warp[d] for d in kept[1:])
        span = per_warp[fast] * per_thread[fast] * _ELEMENT_BYTES.get(m["dtype"], 4)
        distinct = 32 // math.prod(per_warp[d] for d in dropped)
        where = _loc_line(locs, m["loc"])
        if where is not None:
            out[where] = {"rows": rows, "row_span_bytes": span, "distinct_lanes": distinct, "dtype": m["dtype"]}
            address = (addresses or {}).get(where)
            if address is not None:
                offsets = _lane_offsets(address, per_thread, per_warp, order, dims)
                if offsets is not None:
                    out[where]["lane_offsets"] = offsets
    return out


def _unsliced(layout: str) -> tuple[str, list[int]]:
    """The layout under a (possibly nested) slice layout, and the dimension each slice drops of
    its parent's, outermost first: ``#ttg.slice<{dim = 0, parent = #ttg.slice<{dim = 1, parent =
    #blocked}>}>`` -> ``("blocked", [0, 1])`` (of a 3-d ``#blocked``, dimension 2 is left)."""
    slices = []
    while (m := _SLICE.match(layout)) is not None:
        slices.append(int(m[1]))
        layout = m[2]
    return layout.lstrip("#"), slices


def _lane_offsets(address: dict, per_thread: list[int], per_warp: list[int], order: list[int],
                  dims: list[int]) -> list[int | None] | None:
    """The byte offset of the first element each lane of warp 0 loads, from a blocked layout (of
    the parent, for a sliced one) and the load's evaluated ``address``; None when the shapes do
    not agree. Lane ``l``'s coordinate along dimension ``d`` is its digit in the mixed radix of
    ``threadsPerWarp`` taken in ``order``, times ``sizePerThread``, wrapped by the tensor's size
    (a layout wider than the tensor repeats lanes)."""
    offsets, mask = address["offsets"], address["mask"]
    if offsets.ndim != len(dims):
        return None
    at = []
    for lane in range(32):
        digits, rest = {}, lane
        for d in order:
            digits[d], rest = rest % per_warp[d], rest // per_warp[d]
        at.append(tuple((digits[d] * per_thread[d]) % size for d, size in zip(dims, offsets.shape)))
    if mask is None or not any(mask[a] for a in at):
        # a warp its mask turns off entirely (a tile in the padding): its addresses still say how
        # the warps that do load spread over memory
        return [int(offsets[a]) for a in at]
    return [int(offsets[a]) if mask[a] else None for a in at]


def lanes_at(lanes: dict[str, dict], line: str | None) -> dict | None:
    """The load of :func:`load_lanes` at a SASS instruction's source line: that line's, else the
    nearest load's in the same file (ptxas may attribute a load to the line of the expression
    around it, e.g. a helper's call)."""
    if line is None or line in lanes:
        return lanes.get(line)
    file, _, number = line.rpartition(":")
    near = [(abs(int(n) - int(number)), key) for key in lanes for f, _, n in [key.rpartition(":")] if f == file]
    return lanes[min(near)[1]] if near else None


SECTOR = 32
# NVIDIA describes an L1TEX wavefront (one a clock) as resolving the tags of up to 4 cache lines
# ("4 sets x 4 sectors per cycle" on GV100 and later: forums.developer.nvidia.com/t/273699) and
# moving up to 128 bytes, 4 sectors (the L1's 128 B/clock/SM of the A100 and H100 whitepapers).
LINES_PER_WAVEFRONT = 4
SECTORS_PER_WAVEFRONT = 4


def l1_access(lanes: dict | None, bits: int) -> tuple[int, int]:
    """``(lines, wavefronts)`` of one warp-wide access of ``bits`` a lane: the distinct 128-byte
    lines it touches, and the L1 wavefronts it takes by NVIDIA's description (the more of its
    lines ÷ 4 and its distinct 32-byte sectors ÷ 4). Lines and sectors are those the active
    lanes' bytes fall in when ``lane_offsets`` are known; otherwise ``rows`` x those of one row's
    span (at least what its distinct lanes' bytes fill); without a layout, as if 32 lanes were
    perfectly coalesced (a 128-bit load: 4 lines, 16 sectors, 4 wavefronts)."""
    size = bits // 8
    active = [o for o in (lanes or {}).get("lane_offsets", ()) if o is not None]
    if active:
        lines = len({b // CACHE_LINE for o in active for b in (o, o + size - 1)})
        sectors = len({s for o in active for s in range(o // SECTOR, (o + size - 1) // SECTOR + 1)})
    elif lanes is None:
        lines, sectors = math.ceil(32 * size / CACHE_LINE), math.ceil(32 * size / SECTOR)
    else:
        least, rows = lanes["distinct_lanes"] * size, min(32, lanes["rows"])
        lines = max(math.ceil(least / CACHE_LINE), min(32, rows * math.ceil(lanes["row_span_bytes"] / CACHE_LINE)))
        sectors = max(math.ceil(least / SECTOR), rows * math.ceil(lanes["row_span_bytes"] / SECTOR))
    return lines, max(math.ceil(lines / LINES_PER_WAVEFRONT), math.ceil(sectors / SECTORS_PER_WAVEFRONT))


# --- one compiled launch -----------------------------------------------------------------------

@dataclasses.dataclass
class Binary:
    """What the inspector reads from one compiled specialisation."""

    name: str
    arch: str
    num_warps: int
    num_stages: int
    registers: int
    spill_bytes: int
    shared_memory_bytes: int
    instructions: list[dict]  # from disassemble()
    ttir: str
    ttgir: str

    def counts(self, ops: list[dict] | None = None) -> dict:
        """Static SASS counts: loads and stores by width, async copies, TMA, tensor-core
        instructions, barriers, over ``ops`` (default: every instruction)."""
        ops = self.instructions if ops is None else ops
        out = {"instructions": len(ops), "global_loads": {}, "global_stores": {}, "async_copies": 0, "tma": 0,
               "tensor_core": 0, "barriers": 0}
        for ins in ops:
            kind = instruction_class(ins["op"])
            if kind in ("global_load", "global_store"):
                table = out["global_loads" if kind == "global_load" else "global_stores"]
                table[width_bits(ins["op"])] = table.get(width_bits(ins["op"]), 0) + 1
            elif kind == "async_copy":
                out["async_copies"] += 1
            elif kind == "tma":
                out["tma"] += 1
            elif kind == "tensor_core":
                out["tensor_core"] += 1
            elif kind == "barrier":
                out["barriers"] += 1
        return out


_CACHE_FORMAT = 3  # of the cached analysis: bumped when what is read from a binary changes


def _cache_key(src, arch: str, num_warps: int, num_stages: int, maxnreg: int | None) -> str:
    import triton

    text = f"{src.hash()}|{arch}|{num_warps}|{num_stages}|{maxnreg}|{triton.__version__}|{_CACHE_FORMAT}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _cache_path(jit_fn, args: dict, arch: str, num_warps: int, num_stages: int, maxnreg: int | None) -> Path:
    src = compile_check.specialise(jit_fn, args)
    return cache_dir() / f"{jit_fn.__name__}-{_cache_key(src, arch, num_warps, num_stages, maxnreg)}.json"


def compile_launch(jit_fn, args: dict, arch: str, num_warps: int, num_stages: int, maxnreg: int | None = None
                   ) -> Binary:
    """Compile (or load from the cache) one specialisation and read it."""
    path = _cache_path(jit_fn, args, arch, num_warps, num_stages, maxnreg)
    if path.exists():
        try:
            return Binary(**json.loads(path.read_text()))
        except (ValueError, TypeError):
            pass  # a cache file from another version of this module: compile again
    compiled = compile_check.compile_kernel(jit_fn, args, arch, num_warps, num_stages, maxnreg)
    usage = compile_check.ptxas_usage(compiled.asm["ptx"], arch)
    binary = Binary(name=jit_fn.__name__, arch=arch, num_warps=num_warps, num_stages=num_stages,
                    registers=usage["registers"], spill_bytes=usage["spill_stores"] + usage["spill_loads"],
                    shared_memory_bytes=compiled.metadata.shared, instructions=disassemble(compiled.asm["cubin"]),
                    ttir=compiled.asm["ttir"], ttgir=compiled.asm["ttgir"])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(dataclasses.asdict(binary)))
    os.replace(tmp, path)
    return binary


_PENDING: list[tuple] = []  # compile_launch's arguments for the workers of compile_all (inherited by fork)


def _compile_pending(index: int) -> None:
    compile_launch(*_PENDING[index])


def compile_all(jobs: list[tuple], workers: int | None = None) -> None:
    """Fill the cache with every ``compile_launch(*job)`` of ``jobs`` not in it yet, a worker
    process per core (``compile_check.map_per_core``)."""
    global _PENDING
    missing, seen = [], set()
    for job in jobs:
        path = _cache_path(*job)
        if path not in seen and not path.exists():
            seen.add(path)
            missing.append(job)
    _PENDING = missing
    try:
        compile_check.map_per_core(_compile_pending, list(range(len(missing))), workers)
    finally:
        _PENDING = []
