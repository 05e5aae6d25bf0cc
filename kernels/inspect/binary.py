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


def loop_trips(ttir: str, args: dict, grid: tuple[int, int, int]) -> dict[str, np.ndarray]:
    """Trip count per program of every ``scf.for`` (keyed by its source ``file:line``), an int64
    array over the grid's programs (x fastest), from the launch's scalar arguments."""
    locs = {m[1]: m[2] for line in ttir.splitlines() if (m := _LOC_DEF.match(line))}
    count = grid[0] * grid[1] * grid[2]
    pid = np.arange(count, dtype=np.int64)
    values = {"x": pid % grid[0], "y": (pid // grid[0]) % grid[1], "z": pid // (grid[0] * grid[1])}
    env: dict[str, np.ndarray | int] = {}
    lines = ttir.splitlines()
    for line in lines:
        if "tt.func public" in line:
            for name, _type in _ARG.findall(line):
                value = args.get(name)
                if isinstance(value, (bool, int)) and not isinstance(value, float):
                    env[name] = int(value)
            break
    trips: dict[str, np.ndarray] = {}
    regions: list[bool] = []  # the open regions: True for an scf.for's body
    open_loops: list[np.ndarray | None] = []  # trips of the open scf.for bodies (None: bounds unknown)
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("}"):
            if regions and regions.pop():
                n = open_loops.pop()
                m = _CLOSE_LOC.match(line)
                where = _loc_line(locs, m[1]) if m else None
                if where is not None and n is not None:
                    # the same line closing two loops (a helper called twice) counts both
                    trips[where] = trips[where] + n if where in trips else n
            if stripped.endswith("{"):  # "} else {"
                regions.append(False)
            continue
        if (m := _FOR.search(line)) is not None:
            iv, lb, ub, st = m.groups()
            bounds = [env.get(v) for v in (lb, ub, st)]
            if all(b is not None for b in bounds):
                lo, hi, step = (np.broadcast_to(np.asarray(b, dtype=np.int64), (count,)) for b in bounds)
                step = np.where(step == 0, 1, step)
                n = np.maximum(0, -((lo - hi) // step))
                env[iv] = lo
            else:
                n = None
            open_loops.append(n)
            regions.append(True)
            continue
        if stripped.endswith("{"):
            regions.append(False)
        m = _OP.match(line)
        if m is None or "tensor<" in m[4]:
            continue
        name, op, operands = m[1], m[2], m[3]
        try:
            if op == "arith.constant":
                if (c := re.match(r"(-?\d+)(?: : \w+)?$", operands)) is not None:
                    env[name] = int(c[1])
                elif operands in ("true", "false"):
                    env[name] = int(operands == "true")
            elif op == "tt.get_program_id":
                env[name] = values[operands.strip()]
            elif op == "tt.get_num_programs":
                env[name] = grid["xyz".index(operands.strip())]
            elif op in _BINARY:
                a, b = (env[v.strip().lstrip("%")] for v in operands.split(","))
                env[name] = _BINARY[op](np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64))
            elif op == "arith.cmpi":
                pred, a, b = (v.strip().lstrip("%") for v in operands.split(","))
                env[name] = _COMPARE[pred](np.asarray(env[a]), np.asarray(env[b])).astype(np.int64)
            elif op == "arith.select":
                c, a, b = (env[v.strip().lstrip("%")] for v in operands.split(","))
                env[name] = np.where(np.asarray(c) != 0, a, b)
            elif op in ("arith.extsi", "arith.extui", "arith.trunci", "arith.index_cast", "arith.bitcast"):
                env[name] = env[operands.split()[0].lstrip("%")]
        except KeyError:
            continue  # an operand that is not a scalar integer known before the loops
    return trips


# --- TTGIR: how a load's lanes spread over memory -----------------------------------------------

_BLOCKED = re.compile(r"^#(\w+) = #ttg\.blocked<\{sizePerThread = \[([\d, ]+)\], threadsPerWarp = \[([\d, ]+)\], "
                      r"warpsPerCTA = \[[\d, ]+\], order = \[([\d, ]+)\]")
_MEMORY_OP = re.compile(r"= tt\.load .*: tensor<(?P<shape>[\dx]+)x!tt\.ptr<(?P<dtype>\w+)>, (?P<layout>.+)> "
                        r"loc\(#(?P<loc>loc\d*)\)")
_SLICE = re.compile(r"#ttg\.slice<\{dim = (\d+), parent = #(\w+)\}>")
_ELEMENT_BYTES = {"bf16": 2, "f16": 2, "f32": 4, "f64": 8, "i8": 1, "i16": 2, "i32": 4, "i64": 8, "i1": 1}
CACHE_LINE = 128


def _ints_of(text: str) -> list[int]:
    return [int(v) for v in text.split(",")]


def load_lanes(ttgir: str) -> dict[str, dict]:
    """Per source ``file:line``, the lanes of a warp's load from its TTGIR layout: ``rows`` (lanes
    on distinct rows: the dimensions other than the fastest), ``row_span_bytes`` (the bytes one
    instruction's lanes cover along the fastest dimension, taken as unit-stride in memory, which
    is how Triton's coalescing picks the order), ``distinct_lanes`` (32, less the lanes of a
    sliced layout that repeat another's address: a ``[BC]`` weight vector broadcast over a tile's
    rows) and ``dtype`` (of the elements loaded: ``bf16``, ``f32``...)."""
    lines = ttgir.splitlines()
    locs = {m[1]: m[2] for line in lines if (m := _LOC_DEF.match(line))}
    blocked = {m[1]: (_ints_of(m[2]), _ints_of(m[3]), _ints_of(m[4])) for line in lines if (m := _BLOCKED.match(line))}
    out = {}
    for line in lines:
        m = _MEMORY_OP.search(line)
        if m is None:
            continue
        sliced = _SLICE.match(m["layout"])
        name = sliced[2] if sliced else m["layout"].lstrip("#")
        if name not in blocked:
            continue
        per_thread, per_warp, order = blocked[name]
        kept = [d for d in order if not sliced or d != int(sliced[1])]
        fast = kept[0]
        rows = math.prod(per_warp[d] for d in kept[1:])
        span = per_warp[fast] * per_thread[fast] * _ELEMENT_BYTES.get(m["dtype"], 4)
        distinct = 32 // per_warp[int(sliced[1])] if sliced else 32
        where = _loc_line(locs, m["loc"])
        if where is not None:
            out[where] = {"rows": rows, "row_span_bytes": span, "distinct_lanes": distinct, "dtype": m["dtype"]}
    return out


def lanes_at(lanes: dict[str, dict], line: str | None) -> dict | None:
    """The load of :func:`load_lanes` at a SASS instruction's source line: that line's, else the
    nearest load's in the same file (ptxas may attribute a load to the line of the expression
    around it, e.g. a helper's call)."""
    if line is None or line in lanes:
        return lanes.get(line)
    file, _, number = line.rpartition(":")
    near = [(abs(int(n) - int(number)), key) for key in lanes for f, _, n in [key.rpartition(":")] if f == file]
    return lanes[min(near)[1]] if near else None


def cache_lines(lanes: dict | None, bits: int) -> int:
    """128-byte lines one warp-wide access touches: ``rows`` x lines per row (at least what its
    distinct lanes of ``bits`` each need); without a layout, as if 32 lanes were perfectly
    coalesced."""
    if lanes is None:
        return math.ceil(32 * bits / 8 / CACHE_LINE)
    least = math.ceil(lanes["distinct_lanes"] * bits / 8 / CACHE_LINE)
    return max(least, min(32, lanes["rows"] * math.ceil(lanes["row_span_bytes"] / CACHE_LINE)))


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
