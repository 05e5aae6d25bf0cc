"""Kernel inspector: a kernel's GPU time, predicted on a CPU from its compiled code (issue 15).

    python -m kernels.inspect --op conv2d --shapes '64x256x56x56*' --batch-size 64 --json
    python -m kernels.inspect --calibrate

For every Triton launch an op makes in each harness kernel row (the kernel suite's model-captured
cases; ``infer``, ``train-forward`` and ``train-backward`` exactly as ``bench run --suite kernels``
runs them), the inspector compiles the specialisation the JIT would build at that shape
(:mod:`.launches` captures the launches on the meta device, :mod:`.binary` compiles and reads the
SASS), and predicts its time on an H200 (``sm_90a``) or an A100 (``sm_80``) with the model of
:mod:`.model`. No GPU is needed and none is used.

**Which autotune config.** A GPU autotuner times every config and keeps the fastest; with no GPU
the inspector keeps the config its own model predicts fastest (ties: the first listed), and
``all_configs=True`` (``--all-configs``) reports every config of every launch.

Public API:

* :func:`inspect_op` - one JSON-ready row per (case, mode), the CLI's ``--json`` output;
* :func:`predict_rows` - predictions for harness result rows (a report's predicted-vs-measured);
* :func:`calibrate` (``kernels.inspect.calibrate``) - predicted against every GPU-measured Triton time in ``results/``.

The compiler needs plain ``JITFunction`` objects: under ``TRITON_INTERPRET=1`` the CLI and
:func:`predict_rows` run the inspector in a subprocess without it.
"""

from __future__ import annotations

import fnmatch
import glob
import json
import os
import subprocess
import sys
from pathlib import Path

from bench.suite import DTYPES, MEMORY_FORMATS  # the harness's names: "bf16", "tf32", "channels_last", "nchw"

from .model import ARCHS, Arch

MODES = ("infer", "train-forward", "train-backward")
REPO = Path(__file__).resolve().parent.parent.parent


class InspectError(ValueError):
    """Input the inspector cannot work with (the CLI prints it as one line, exit status 2)."""


def suite_cases(op_name: str, batch_size: int, shapes: str | None = None, suite: str = "kernels") -> list[dict]:
    """The cases of ``op_name`` in ``suite``'s kernel matrices at ``batch_size`` (each shape once),
    those whose shape string matches the glob ``shapes`` if given."""
    from bench.ops import list_ops
    from bench.suite import list_suites, load_suite, matrix_cases

    if op_name not in list_ops():
        raise InspectError(f"--op: expected one of {', '.join(list_ops())}, got {op_name!r}")
    if suite not in list_suites():
        raise InspectError(f"--suite: expected one of {', '.join(list_suites())}, got {suite!r}")
    cases, seen = [], set()
    for matrix in load_suite(suite)["matrix"]:
        if matrix["kind"] != "kernel" or op_name not in matrix["ops"]:
            continue
        for case in matrix_cases(matrix, batch_size, [op_name]):
            if case["shape"] not in seen and (shapes is None or fnmatch.fnmatchcase(case["shape"], shapes)):
                seen.add(case["shape"])
                cases.append(case)
    if not cases:
        raise InspectError(f"--shapes: expected a glob matching a {op_name} case of suite {suite!r} at batch "
                           f"{batch_size}, got {shapes!r}, which matches none")
    return cases


def check_arch(arch: str) -> Arch:
    if arch not in ARCHS:
        raise InspectError(f"--arch: expected one of {', '.join(ARCHS)} (the architectures this triton compiles "
                           f"for here), got {arch!r}")
    return ARCHS[arch]


def _compile_jobs(launch, arch: Arch) -> list[tuple]:
    """``compile_launch``'s arguments for every config of ``launch``."""
    from ..compile_check import jit_function

    return [(jit_function(launch.kernel), {**launch.args, **config.kwargs}, arch.name, config.num_warps,
             config.num_stages, config.maxnreg) for config in launch.configs]


def _launch_rows(launch, arch: Arch, copy_gbps: float, all_configs: bool) -> tuple[dict, list[dict]]:
    """The chosen config's prediction for one launch, and every config's when asked."""
    from .binary import compile_launch
    from .model import execution, predict_launch

    rows = []
    for config, job in zip(launch.configs, _compile_jobs(launch, arch), strict=True):
        args = job[1]
        binary = compile_launch(*job)
        grid = launch.grid_for(config)
        run = execution(binary, args, grid)
        prediction = predict_launch(binary, run, launch.tensor_bytes, arch, copy_gbps)
        rows.append({"kernel": launch.name, **({"direction": launch.direction} if launch.direction else {}),
                     "config": _config_text(config), "grid": list(grid), **prediction})
    chosen = min(rows, key=lambda r: r["predicted_ms"])  # min keeps the first of equals
    return chosen, (rows if all_configs else [])


def _config_text(config) -> str:
    return ",".join([f"{k}={v}" for k, v in config.kwargs.items()] +
                    [f"warps={config.num_warps}", f"stages={config.num_stages}"] +
                    ([f"maxnreg={config.maxnreg}"] if config.maxnreg else []))


def _captured(op, case: dict, mode: str, dtype: str, memory_format: str, arch: Arch, package=None) -> list:
    """The launches of one (case, mode), as the harness runs its row (fp32: no tf32; tf32: fp32
    storage, tf32 products)."""
    from bench.workloads import STORAGE_DTYPE, memory_format_of, precision

    from .launches import capture

    with precision(dtype):
        return capture(op, case, mode, STORAGE_DTYPE[dtype], memory_format_of(memory_format), arch.sms, package)


def inspect_case(op, case: dict, mode: str, dtype: str, memory_format: str, arch: Arch, copy_gbps: float,
                 all_configs: bool = False, package=None, launches: list | None = None) -> dict:
    """The row of one (case, mode): the op call's floors and prediction, and its launches (captured
    here unless given)."""
    from bench.workloads import STORAGE_DTYPE

    if launches is None:
        launches = _captured(op, case, mode, dtype, memory_format, arch, package)
    storage = STORAGE_DTYPE[dtype]
    chosen = [_launch_rows(launch, arch, copy_gbps, all_configs) for launch in launches]
    bytes_moved = op.bytes_moved(case, mode, storage.itemsize)
    predicted = sum(row["predicted_ms"] for row, _ in chosen)
    memory_floor = bytes_moved / (copy_gbps * 1e9) * 1e3
    row = {"op": op.name, "shape": case["shape"], "mode": mode, "dtype": dtype, "memory_format": memory_format,
           "batch_size": case["x"][0], "arch": arch.name, "gpu": arch.gpu, "bytes_moved": bytes_moved,
           "copy_bandwidth_gbps": copy_gbps, "memory_floor_ms": memory_floor,
           "issue_floor_ms": sum(r["issue_floor_ms"] for r, _ in chosen), "predicted_ms": predicted,
           "predicted_percent_of_copy_bandwidth": 100 * memory_floor / predicted if predicted else None,
           "launches": [r for r, _ in chosen]}
    if all_configs:
        row["all_configs"] = [every for _, every in chosen]
    return row


def inspect_op(op_name: str, *, shapes: str | None = None, batch_size: int = 64, dtype: str = "bf16",
               memory_format: str = "channels_last", arch: str = "sm_90a", copy_gbps: float | None = None,
               all_configs: bool = False, suite: str = "kernels", modes=MODES) -> list[dict]:
    """One row per (case, mode) of ``op_name`` in ``suite`` at ``batch_size`` (see the module
    docstring); ``copy_gbps`` defaults to the architecture's table figure."""
    from bench.ops import get_op

    target = check_arch(arch)
    if dtype not in DTYPES:
        raise InspectError(f"--dtype: expected one of {', '.join(DTYPES)}, got {dtype!r}")
    if memory_format not in MEMORY_FORMATS:
        raise InspectError(f"--memory-format: expected one of {', '.join(MEMORY_FORMATS)}, got {memory_format!r}")
    from .binary import compile_all

    cases = suite_cases(op_name, batch_size, shapes, suite)  # checks op_name first
    op = get_op(op_name)
    rows = [(case, mode) for case in cases for mode in op.modes("infer") + op.modes("train") if mode in modes]
    captured = [_captured(op, case, mode, dtype, memory_format, target) for case, mode in rows]
    compile_all([job for launches in captured for launch in launches for job in _compile_jobs(launch, target)])
    return [inspect_case(op, case, mode, dtype, memory_format, target, copy_gbps or target.copy_gbps, all_configs,
                         launches=launches) for (case, mode), launches in zip(rows, captured, strict=True)]


def predict_rows(rows: list[dict], arch: str = "sm_90a") -> list[dict]:
    """Predictions for harness kernel result rows (``kind == "kernel"``, triton backend): for each
    row, ``{"op", "shape", "mode", "dtype", "memory_format", "batch_size", "measured_ms",
    "predicted_ms", "copy_bandwidth_gbps"}`` at the row's own copy bandwidth. Rows of other kinds
    or backends, rows without a time and rows of a shape no suite captures are left out. The
    kernels are today's: for rows of an older commit, see :func:`kernels.inspect.calibrate.calibrate`."""
    wanted = [r for r in rows if r.get("kind") == "kernel" and r.get("backend") == "triton" and r.get("device_ms")]
    if not wanted:
        return []
    if _interpreted():
        return _in_subprocess("predict_rows", wanted, arch)
    from bench.ops import get_op

    out = []
    for r in wanted:
        op = get_op(r["name"])
        case = case_of(r)
        if case is None:
            continue  # a shape no suite captures today
        row = inspect_case(op, case, r["mode"], r["dtype"], r["memory_format"], check_arch(arch),
                           r.get("copy_bandwidth_gbps") or ARCHS[arch].copy_gbps)
        out.append({k: row[k] for k in ("op", "shape", "mode", "dtype", "memory_format", "batch_size",
                                        "predicted_ms", "copy_bandwidth_gbps")} | {"measured_ms": r["device_ms"]})
    return out


def case_of(row: dict) -> dict | None:
    """The case of a result row: the kernel suite's or the device check's case of that shape."""
    for suite in ("kernels", "device-check"):
        try:
            return suite_cases(row["name"], row["batch_size"], glob.escape(row["shape"]), suite)[0]
        except InspectError:
            continue
    return None


def _interpreted() -> bool:
    from .. import _common

    return _common.INTERPRET


def _in_subprocess(function: str, *args):
    """Call ``kernels.inspect.<function>(*args)`` in a Python without TRITON_INTERPRET (JSON in and out)."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    code = (f"import json, sys, kernels.inspect as k; "
            f"print(json.dumps(k.{function}(*json.load(sys.stdin))))")
    out = subprocess.run([sys.executable, "-c", code], input=json.dumps(args), capture_output=True, text=True,
                         env=env, cwd=REPO, check=True)
    return json.loads(out.stdout)


__all__ = ["inspect_op", "inspect_case", "predict_rows", "suite_cases", "ARCHS", "InspectError"]
