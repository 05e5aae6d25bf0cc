"""Ahead-of-time compile check: every kernel, autotune config, dtype and layout, for sm_80 and
sm_90a, on a machine without a GPU (``../shared/kernel-contract.md``, "Compile check").

    python -m kernels.compile_check            # compile all, write kernels/compile_report.json
    python -m kernels.compile_check --check    # compile all, fail if anything spills (no write)
    python -m kernels.compile_check --quick --out /tmp/r.json   # one variant per kernel and arch

(``KERNELS_COMPILE_MODULES=kernels.lrn`` limits a run to some op modules while iterating on them.)

Each op module lists its kernels with example arguments (``compile_cases()``); the signature is
specialised the way ``@triton.jit`` specialises a launch (an int equal to 1 becomes a constant,
ints and pointers divisible by 16 carry that hint), so NCHW (pixel stride 1) and channels_last
(channel stride 1) compile to the binaries a GPU would run. Registers and spills come from
``ptxas -v`` (the ptxas inside the triton package), shared memory from Triton's metadata.
``specialise``, ``compile_kernel`` and ``ptxas_usage`` are the one way the package builds and
reads a binary; the kernel inspector (``kernels/inspect``) compiles captured launches with them.

The kernels must be plain ``JITFunction`` objects here, so when ``TRITON_INTERPRET=1`` is set this
module re-runs itself in a subprocess without it.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import functools
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

REPORT = Path(__file__).with_name("compile_report.json")
ARCHS = {"sm_80": 80, "sm_90a": 90}
SOURCES = ("_common.py", "bn_relu.py", "lrn.py", "squeeze_excite.py", "conv2d/__init__.py", "conv2d/geometry.py",
           "conv2d/depthwise.py", "conv2d/grouped.py", "compile_check.py")  # what the report depends on
MODULES = tuple(os.environ.get("KERNELS_COMPILE_MODULES",
                               "kernels.bn_relu,kernels.lrn,kernels.squeeze_excite,kernels.conv2d").split(","))


@dataclasses.dataclass(frozen=True)
class Ptr:
    dtype: torch.dtype


def ptr(dtype: torch.dtype) -> Ptr:
    return Ptr(dtype)


def strides(*tensors: str, values: tuple[int, int, int]) -> dict[str, int]:
    """The ``<tensor>_stride_n``, ``_c`` and ``_p`` arguments of each named tensor of a tile kernel
    (``kernels._common``'s naming), all set to one layout's ``(n, c, p)`` strides."""
    return {f"{t}_stride_{axis}": v for t in tensors for axis, v in zip("ncp", values, strict=True)}


@dataclasses.dataclass
class Case:
    kernel: object  # a triton Autotuner (every config is compiled) or a JITFunction
    dtype: torch.dtype
    layout: str
    args: dict
    num_warps: int = 4  # for kernels that are not autotuned
    num_stages: int = 3


_TYPE = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16", torch.int32: "i32"}


def jit_function(kernel):
    """The ``JITFunction`` inside an autotuner (or any other wrapper that keeps it as ``.fn``)."""
    fn = kernel
    while not hasattr(fn, "arg_names") or hasattr(fn, "configs"):
        fn = fn.fn
    return fn


def specialise(jit_fn, args: dict):
    """The ``ASTSource`` that ``@triton.jit`` would build for a launch with ``args`` (by name; a
    tensor given as :class:`Ptr`): constexprs, ints equal to 1 folded, divisibility hints."""
    from triton.compiler import ASTSource

    signature, constexprs, attrs = {}, {}, {}
    for i, param in enumerate(jit_fn.params):
        name, value = param.name, args[param.name]
        if param.is_constexpr:
            signature[name], constexprs[name] = "constexpr", value
        elif isinstance(value, Ptr):
            signature[name] = "*" + _TYPE[value.dtype]
            attrs[(i,)] = [["tt.divisibility", 16]]  # torch allocations are 16-byte aligned
        elif isinstance(value, bool):
            signature[name] = "i1"
        elif isinstance(value, int):
            if value == 1:  # what the JIT does with an int argument equal to 1
                signature[name], constexprs[name] = "constexpr", 1
            else:
                signature[name] = "i32" if -2**31 <= value < 2**31 else "i64"
                if value % 16 == 0:
                    attrs[(i,)] = [["tt.divisibility", 16]]
        elif isinstance(value, float):
            signature[name] = "fp32"
        else:
            raise TypeError(f"{jit_fn.__name__}: cannot type argument {name}={value!r}")
    return ASTSource(jit_fn, signature, constexprs, attrs)


def nvidia_tool(name: str) -> Path:
    """A binary shipped in the triton package (``ptxas``, ``cuobjdump``, ``nvdisasm``)."""
    import triton

    return Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / name


def compile_kernel(jit_fn, args: dict, arch: str, num_warps: int, num_stages: int, maxnreg: int | None = None):
    """``triton.compile`` of :func:`specialise`'s source for ``arch`` (a key of :data:`ARCHS`), with a
    config's register cap (``maxnreg``) when it has one."""
    import triton
    from triton.backends.compiler import GPUTarget

    options = {"num_warps": num_warps, "num_stages": num_stages, **({"maxnreg": maxnreg} if maxnreg else {})}
    return triton.compile(specialise(jit_fn, args), target=GPUTarget("cuda", ARCHS[arch], 32), options=options)


def ptxas_usage(ptx: str, arch: str) -> dict:
    """Registers, spill bytes and stack frame that ``ptxas -v`` reports for ``ptx``."""
    ptxas = nvidia_tool("ptxas")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "k.ptx"
        src.write_text(ptx)
        # the flags triton's own make_cubin passes (triton 3.8), so the numbers are those of its binary
        cmd = [str(ptxas), "-lineinfo", "-v", "--regAllocOptLevel=2", f"--gpu-name={arch}", str(src), "-o",
               str(Path(tmp) / "k.cubin")]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    log = out.stdout + out.stderr
    regs = re.search(r"Used (\d+) registers", log)
    stores = re.search(r"(\d+) bytes spill stores", log)
    loads = re.search(r"(\d+) bytes spill loads", log)
    stack = re.search(r"(\d+) bytes stack frame", log)
    return {"registers": int(regs.group(1)), "spill_stores": int(stores.group(1)), "spill_loads": int(loads.group(1)),
            "stack_bytes": int(stack.group(1))}


def _variants(case: Case):
    kernel = case.kernel
    if hasattr(kernel, "configs"):
        for index, cfg in enumerate(kernel.configs):
            name = ",".join(f"{k}={v}" for k, v in cfg.kwargs.items()) + f",warps={cfg.num_warps}"
            name += f",maxnreg={cfg.maxnreg}" if cfg.maxnreg else ""
            yield index, name, cfg.kwargs, cfg.num_warps, cfg.num_stages, cfg.maxnreg
    else:
        yield 0, f"warps={case.num_warps}", {}, case.num_warps, case.num_stages, None


@functools.lru_cache(maxsize=None)
def _jobs():
    import importlib

    jobs = []
    for module in MODULES:
        for case in importlib.import_module(module).compile_cases():
            for index, config, kwargs, warps, stages, maxnreg in _variants(case):
                for arch in ARCHS:
                    name = jit_function(case.kernel).__name__
                    jobs.append((module, name, case, index, config, kwargs, warps, stages, maxnreg, arch))
    return tuple(jobs)


def _compile(index: int) -> dict:
    module, name, case, config_index, config, kwargs, warps, stages, maxnreg, arch = _jobs()[index]
    compiled = compile_kernel(jit_function(case.kernel), {**case.args, **kwargs}, arch, warps, stages, maxnreg)
    usage = ptxas_usage(compiled.asm["ptx"], arch)
    return {"kernel": name, "module": module, "config": config, "config_index": config_index,
            "dtype": _TYPE[case.dtype], "layout": case.layout, "arch": arch, **usage,
            "shared_bytes": compiled.metadata.shared, "num_warps": warps}


def source_hash() -> str:
    """Of the files the binaries are built from (the triton version is recorded beside it)."""
    digest = hashlib.sha256()
    for name in SOURCES:
        digest.update((Path(__file__).parent / name).read_bytes())
    return digest.hexdigest()


def quick_jobs() -> list[int]:
    """One variant per kernel and arch (bf16, channels_last, the first config: the benchmarks'
    case): what the test suite compiles live; the full sweep is the report's."""
    seen, picked = set(), []
    for i, (_, name, case, config_index, *_, arch) in enumerate(_jobs()):
        if case.dtype == torch.bfloat16 and case.layout in ("nhwc", "-") and config_index == 0 \
                and (name, arch) not in seen:
            seen.add((name, arch))
            picked.append(i)
    return picked


def map_per_core(fn, items: list, workers: int | None = None, chunksize: int = 1) -> list:
    """``[fn(item) for item in items]`` on a worker process per core (a compile is one core's work
    for seconds; the CPU machines have two), forked so the workers inherit the kernels as imported
    here (the inspector's calibration imports a past commit's); in this process with one worker."""
    workers = min(len(items), workers or os.cpu_count() or 1)
    if workers < 2:
        return [fn(item) for item in items]
    import multiprocessing

    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        return list(pool.map(fn, items, chunksize=chunksize))


def run(workers: int | None = None, quick: bool = False) -> dict:
    jobs = quick_jobs() if quick else list(range(len(_jobs())))
    rows = map_per_core(_compile, jobs, workers, chunksize=2 if quick else 4)
    import triton

    return {"triton": triton.__version__, "source_hash": source_hash(), "archs": list(ARCHS), "kernels": rows}


def table(report: dict) -> str:
    lines = [f"{'kernel':<24} {'config':<34} {'dtype':<5} {'layout':<6} {'arch':<7} {'regs':>4} {'spill':>5} "
             f"{'smem':>6}"]
    for r in report["kernels"]:
        lines.append(f"{r['kernel']:<24} {r['config']:<34} {r['dtype']:<5} {r['layout']:<6} {r['arch']:<7} "
                     f"{r['registers']:>4} {r['spill_stores'] + r['spill_loads']:>5} {r['shared_bytes']:>6}")
    return "\n".join(lines)


def spills(report: dict) -> list[dict]:
    return [r for r in report["kernels"] if r["spill_stores"] or r["spill_loads"] or r["stack_bytes"]]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kernels.compile_check", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compile and verify only; do not write the report")
    parser.add_argument("--out", type=Path, default=REPORT, help=f"where to write the report (default {REPORT})")
    parser.add_argument("--quick", action="store_true", help="one variant per kernel and arch (implies no write "
                        "to the default report)")
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args(argv)

    from . import _common

    if _common.INTERPRET:  # the kernels were built for the interpreter: compile in a clean process
        env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
        return subprocess.call([sys.executable, "-m", "kernels.compile_check", *(argv or sys.argv[1:])], env=env,
                               cwd=Path(__file__).resolve().parent.parent)
    report = run(args.workers, quick=args.quick)
    print(table(report))
    bad = spills(report)
    if args.quick and args.out == REPORT:
        args.check = True  # a partial sweep never replaces the full report
    if not args.check:
        args.out.write_text(json.dumps(report, indent=1) + "\n")
        print(f"wrote {args.out} ({len(report['kernels'])} variants)")
    if bad:
        print(f"{len(bad)} variant(s) spill registers", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    # Run as kernels.compile_check, not __main__, so the op modules' Case/ptr are this module's.
    from kernels.compile_check import main as _main

    sys.exit(_main())
