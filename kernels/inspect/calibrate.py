"""Predicted against measured: every Triton kernel time measured on a GPU in ``results/``.

Two kinds of measurement are calibration data:

* the dispatcher caches (``results/<gpu>/*-dispatch-*.json``): the median
  ``triton.testing.do_bench`` time of each Triton path per convolution direction, L2 flushed;
* the harness's kernel rows of the ``triton`` backend (``results/<gpu>/*.jsonl``) whose device time
  holds nothing but the kernels: ``timing_method`` ``graph`` (a replayed CUDA graph) or ``cupti``
  (kernel durations). Rows timed with events per call (schema 1's, the H200 rows of 2026-11-28)
  include host time between launches; they are not calibration data.

A measurement is compared with the kernels that were measured, never today's: the rows of the
run (the ``.jsonl`` files beside a cache, same date) name the ``git_commit`` it ran on. When that
commit holds the kernel file, its source is compiled; when the run was on a dirty tree whose
kernel file was not yet committed (the H200 rows: ``eecc39c``, dirty), the last commit of the file
made before the run started stands in for it, and the table says so. The kernels package of that
commit is extracted from git into the inspector's cache and imported under its own name.

The dispatcher's key names the shapes but not the bias: the cases are taken without one, as
every grouped and derived depthwise convolution of the models is.
"""

from __future__ import annotations

import functools
import importlib
import json
import math
import re
import subprocess
import sys
from pathlib import Path

from . import REPO, InspectError, case_of, inspect_case
from .binary import cache_dir
from .model import ARCHS, arch_of_gpu

RESULTS = REPO / "results"
_KEY = re.compile(r"(?P<direction>\w+) x=(?P<x>[\dx]+) w=(?P<w>[\dx]+) s=(?P<s>[\dx]+) p=(?P<p>[\dx]+) "
                  r"d=(?P<d>[\dx]+) g=(?P<g>\d+) (?P<dtype>\w+) (?P<layout>\w+)(?P<tf32> tf32)?")


KERNEL_ONLY_TIMING = ("graph", "cupti")  # bench.timing's methods whose device time is the kernels' alone


SAMPLES = RESULTS / "samples"  # example files (CPU runs, synthetic GPUs): not measurements


def default_files() -> list[Path]:
    """Every measurement under ``results/``: the dispatcher caches and harness files of each GPU's
    directory (``results/<gpu>/``)."""
    return [path for path in sorted(RESULTS.glob("*/*-dispatch-*.json")) + sorted(RESULTS.rglob("*.jsonl"))
            if SAMPLES not in path.parents]


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split("x")]


def _conv_case(m: re.Match) -> dict:
    """A ``bench.ops`` conv2d case from a dispatcher key (no bias: see the module docstring)."""
    import torch
    import torch.nn.functional as F

    from bench.ops import get_op

    x, w, stride, padding, dilation, groups = (_ints(m["x"]), _ints(m["w"]), _ints(m["s"]), _ints(m["p"])[:2],
                                               _ints(m["d"]), int(m["g"]))
    y = F.conv2d(torch.empty(x, device="meta"), torch.empty(w, device="meta"), None, stride, padding, dilation, groups)
    case = {"op": "conv2d", "x": x, "weight": w, "y": list(y.shape), "stride": stride, "padding": padding,
            "dilation": dilation, "groups": groups, "bias": False}
    return {**case, "shape": get_op("conv2d").describe(case)}


def _run_rows(cache: Path) -> list[dict]:
    """The GPU harness rows of the run a dispatcher cache belongs to (same directory and date)."""
    date = cache.name[:10]
    rows = []
    for path in sorted(cache.parent.glob(f"{date}*.jsonl")):
        rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if str(r.get("device", "")).startswith("cuda")]


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()


def kernel_commit(commit: str, started_at: str, paths: tuple[str, ...] = ("kernels/conv2d", "kernels/conv2d.py")
                  ) -> tuple[str, str]:
    """``(commit, how)``: the commit whose conv2d kernels (``paths``: the package, or the module it
    was before) to compile for a measurement on ``commit``."""
    for path in paths:
        if subprocess.run(["git", "cat-file", "-e", f"{commit}:{path}"], cwd=REPO, capture_output=True).returncode == 0:
            return _git("rev-parse", "--short", commit), "the run's commit"
    before = _git("log", "-1", f"--before={started_at}", "--format=%h", "--", *paths)
    if not before:
        raise InspectError(f"results: expected {' or '.join(paths)} in git at or before {started_at} (the run's "
                           f"start), found none")
    return before, f"last commit of the conv2d kernels before the run ({started_at}; the run's {commit[:7]} was dirty)"


@functools.lru_cache(maxsize=None)
def kernels_at(commit: str):
    """The ``kernels`` package as of ``commit``, imported as ``kernels_<commit>``."""
    name = f"kernels_{commit}"
    root = cache_dir() / f"src-{commit}"
    if not (root / name / "__init__.py").exists():
        root.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", "--format=tar", commit, "kernels"], cwd=REPO, capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
        (root / "kernels").rename(root / name)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return importlib.import_module(name)


def measured_rows(files: list[Path], strict: bool = True) -> list[dict]:
    """One row per Triton time in ``files`` (dispatcher caches and harness ``.jsonl``), with the
    run's provenance. ``strict``: a file without GPU rows is bad input (not so for the defaults,
    which hold CPU samples too)."""
    rows = []
    for path in files:
        rows += _harness_rows(Path(path), strict) if Path(path).suffix == ".jsonl" else _cache_rows(Path(path))
    return rows


def _source(path: Path) -> str:
    return str(path.relative_to(REPO) if path.is_absolute() and path.is_relative_to(REPO) else path)


def _cache_rows(path: Path) -> list[dict]:
    """A dispatcher cache's Triton times, one per path and convolution direction."""
    try:
        caches = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise InspectError(f"--results: expected a readable JSON dispatcher cache, got {path} ({error})") from None
    run = _run_rows(path)
    if not run or not isinstance(caches, dict):
        raise InspectError(f"--results: expected GPU rows beside {path} (a .jsonl of the same date with a cuda "
                           f"device), found none")
    first = min(run, key=lambda r: r["started_at"])
    rows = []
    for gpu, entries in caches.items():
        arch = arch_of_gpu(gpu)
        for key, decision in entries.items():
            m = _KEY.match(key)
            times = {p: t for p, t in decision.get("times_ms", {}).items() if p.startswith("triton")}
            if m is None or not times or arch is None:
                continue
            for path_name, ms in times.items():
                rows.append({"op": "conv2d", "case": _conv_case(m), "direction": m["direction"],
                             "dtype": "tf32" if m["tf32"] else m["dtype"], "memory_format": m["layout"],
                             "arch": arch, "measured_ms": ms,
                             "copy_bandwidth_gbps": first.get("copy_bandwidth_gbps") or ARCHS[arch].copy_gbps,
                             "git_commit": first["git_commit"], "started_at": first["started_at"],
                             "source": f"{_source(path)}: {path_name} {key}"})
    return rows


def _harness_rows(path: Path, strict: bool) -> list[dict]:
    """A results file's Triton kernel rows timed on a GPU by kernels alone (``KERNEL_ONLY_TIMING``)."""
    from bench.results import ResultsError, read_rows

    try:
        rows = read_rows(path)
    except (OSError, ResultsError) as error:
        raise InspectError(f"--results: expected a readable results file, got {path} ({error})") from None
    gpu = [r for r in rows if str(r.get("device", "")).startswith("cuda")]
    if strict and not gpu:
        raise InspectError(f"--results: expected GPU rows (a cuda device) in {path}, found none")
    out = []
    for r in gpu:
        arch = arch_of_gpu(str(r.get("device_name", "")))
        if (r["kind"] != "kernel" or r["backend"] != "triton" or r["status"] != "ok" or not r.get("device_ms")
                or r.get("timing_method") not in KERNEL_ONLY_TIMING or arch is None):
            continue
        case = case_of(r)
        if case is None:
            continue  # a shape no suite captures today
        out.append({"op": r["name"], "case": case, "mode": r["mode"], "dtype": r["dtype"],
                    "memory_format": r["memory_format"], "arch": arch, "measured_ms": r["device_ms"],
                    "copy_bandwidth_gbps": r.get("copy_bandwidth_gbps") or ARCHS[arch].copy_gbps,
                    "git_commit": r["git_commit"], "git_dirty": bool(r.get("git_dirty")),
                    "started_at": r["started_at"],
                    "source": f"{_source(path)}: {r['name']} {r['shape']} {r['mode']} ({r['timing_method']})"})
    return out


def calibrate(files: list[Path] | None = None) -> list[dict]:
    """Every measured row with the prediction of the kernels it was measured on: per convolution
    direction for a dispatcher's time, per op call for a harness row."""
    from bench.ops import get_op

    out = []
    for row in measured_rows(files or default_files(), strict=files is not None):
        op = get_op(row["op"])
        if "direction" in row:  # a dispatcher's time of one convolution direction
            commit, how = kernel_commit(row["git_commit"], row["started_at"])
            mode = "infer" if row["direction"] == "forward" else "train-backward"
        else:
            commit, how = kernel_commit(row["git_commit"], row["started_at"], ("kernels",))
            mode = row["mode"]
            if row["git_dirty"]:
                how += "; its tree was dirty, and uncommitted kernel changes are not in it"
        inspected = inspect_case(op, row["case"], mode, row["dtype"], row["memory_format"], ARCHS[row["arch"]],
                                 row["copy_bandwidth_gbps"], package=kernels_at(commit))
        if "direction" in row:
            launches = [launch for launch in inspected["launches"] if launch.get("direction") == row["direction"]]
            predicted, which = sum(launch["predicted_ms"] for launch in launches), {"direction": row["direction"]}
        else:
            launches, predicted, which = inspected["launches"], inspected["predicted_ms"], {"mode": mode}
        out.append({"op": row["op"], "shape": row["case"]["shape"], **which,
                    "dtype": row["dtype"], "arch": row["arch"], "measured_ms": row["measured_ms"],
                    "predicted_ms": predicted, "ratio": row["measured_ms"] / predicted if predicted else None,
                    "kernels_commit": commit, "kernels_commit_is": how, "source": row["source"],
                    "launches": launches})
    return out


def summary(rows: list[dict]) -> dict:
    """Geometric mean and worst of measured ÷ predicted (worst: furthest from 1 either way)."""
    ratios = [r["ratio"] for r in rows if r["ratio"]]
    if not ratios:
        return {"rows": 0, "geometric_mean": None, "worst": None}
    worst = max(ratios, key=lambda v: abs(math.log(v)))
    return {"rows": len(ratios), "geometric_mean": math.exp(sum(map(math.log, ratios)) / len(ratios)),
            "worst": worst, "within_2_5x": sum(1 / 2.5 <= v <= 2.5 for v in ratios)}
