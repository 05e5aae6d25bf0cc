"""``python -m kernels.inspect``: see ``kernels/inspect/__init__.py`` and the README's "Kernel inspector".

Bad input (an unknown op, a shape glob matching nothing, an architecture it cannot compile for,
a results file without GPU rows) is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from . import ARCHS, DTYPES, MEMORY_FORMATS, REPO, InspectError, check_arch, inspect_op
from .model import arch_of_gpu


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kernels.inspect",
                                     description="A Triton kernel's GPU time, predicted on a CPU from its code.")
    parser.add_argument("--op", help="the op (bench.ops name: bn_relu, lrn, conv2d, squeeze_excite)")
    parser.add_argument("--shapes", default=None, help="glob on the cases' shape strings (default: all)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--dtype", default="bf16", help=f"one of {', '.join(DTYPES)}")
    parser.add_argument("--memory-format", default="channels_last", help=f"one of {', '.join(MEMORY_FORMATS)}")
    parser.add_argument("--arch", default="sm_90a", help=f"one of {', '.join(ARCHS)}")
    parser.add_argument("--suite", default="kernels", help="the suite whose kernel cases to take (default kernels)")
    parser.add_argument("--results", nargs="+", type=Path, default=None,
                        help="results files: .jsonl rows give the copy bandwidth; with --calibrate, the "
                             "dispatcher caches to compare with (default results/*/*-dispatch-*.json)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--calibrate", action="store_true", help="predicted against every GPU-measured Triton time")
    parser.add_argument("--all-configs", action="store_true", help="every autotune config of every launch")
    return parser


def measured_copy_bandwidth(paths: list[Path], arch: str) -> float:
    """The copy bandwidth of the GPU rows of ``paths`` measured on an ``arch`` GPU (their median)."""
    values = []
    for path in paths:
        try:
            lines = Path(path).read_text().splitlines()
        except OSError as error:
            raise InspectError(f"--results: expected a readable results file, got {path} ({error.strerror})") from None
        for line in lines:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            on_gpu = isinstance(row, dict) and str(row.get("device", "")).startswith("cuda")
            if on_gpu and row.get("copy_bandwidth_gbps") and arch_of_gpu(str(row.get("device_name", ""))) == arch:
                values.append(row["copy_bandwidth_gbps"])
    if not values:
        raise InspectError(f"--results: expected rows of an {arch} GPU with copy_bandwidth_gbps in "
                           f"{', '.join(map(str, paths))}, found none")
    return sorted(values)[len(values) // 2]


def _fraction(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _table(rows: list[dict]) -> str:
    lines = [f"{'shape':<44} {'mode':<15} {'MB':>8} {'mem ms':>8} {'issue ms':>8} {'pred ms':>8} {'%copy':>6}  "
             f"launches"]
    for r in rows:
        launches = "; ".join(f"{l['kernel']}{'/' + l['direction'] if l.get('direction') else ''} [{l['config']}] "
                             f"{l['registers']} regs {l['warps_per_sm']} warps/SM "
                             f"ld128 {_fraction(l['load_128bit_fraction'])} "
                             f"{l['predicted_ms']:.3f} ms" for l in r["launches"])
        lines.append(f"{r['shape']:<44} {r['mode']:<15} {r['bytes_moved'] / 1e6:>8.1f} {r['memory_floor_ms']:>8.3f} "
                     f"{r['issue_floor_ms']:>8.3f} {r['predicted_ms']:>8.3f} "
                     f"{r['predicted_percent_of_copy_bandwidth']:>6.1f}  "
                     f"{launches}")
    return "\n".join(lines)


def _calibration_table(rows: list[dict], summary: dict) -> str:
    lines = [f"{'op':<14} {'direction/mode':<15} {'shape':<46} {'dtype':<5} {'measured ms':>11} {'predicted ms':>12} "
             f"{'ratio':>6}"]
    for r in rows:
        lines.append(f"{r['op']:<14} {r.get('direction') or r['mode']:<15} {r['shape']:<46} {r['dtype']:<5} "
                     f"{r['measured_ms']:>11.3f} {r['predicted_ms']:>12.3f} {r['ratio']:>6.2f}")
    for commit, how in dict.fromkeys((r["kernels_commit"], r["kernels_commit_is"]) for r in rows):
        lines.append(f"kernels compiled from {commit} ({how})")
    lines.append(f"measured / predicted over {summary['rows']} rows: geometric mean {summary['geometric_mean']:.2f}, "
                 f"worst {summary['worst']:.2f}, {summary['within_2_5x']} within 2.5x")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    from .. import _common

    if _common.INTERPRET:  # the kernels were built for the interpreter: compile in a clean process
        env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
        return subprocess.call([sys.executable, "-m", "kernels.inspect", *(sys.argv[1:] if argv is None else argv)],
                               env=env, cwd=REPO)
    try:
        if args.calibrate:
            from .calibrate import calibrate, summary

            rows = calibrate(args.results or None)  # None: every file under results/
            print(json.dumps([{k: v for k, v in r.items() if k != "launches"} for r in rows], indent=1) if args.json
                  else _calibration_table(rows, summary(rows)))
            return 0
        if args.op is None:
            raise InspectError("--op: expected an op name (or --calibrate), got none")
        check_arch(args.arch)
        copy = measured_copy_bandwidth(args.results, args.arch) if args.results else None
        rows = inspect_op(args.op, shapes=args.shapes, batch_size=args.batch_size, dtype=args.dtype,
                          memory_format=args.memory_format, arch=args.arch, copy_gbps=copy,
                          all_configs=args.all_configs, suite=args.suite)
    except InspectError as error:
        print(f"kernels.inspect: {error}", file=sys.stderr)
        return 2
    print(json.dumps(rows, indent=1) if args.json else _table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
