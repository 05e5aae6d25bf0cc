"""The numbers behind the HTML report (:mod:`bench.report`): pure pandas, no plotly.

Everything the report shows is derived here from the rows of :func:`bench.results.load`, so
it can be tested without a browser: which rows to trust (flags), speedups over eager torch,
values normalized across GPUs, the roofline references and one line per run of environment.

Where a configuration was measured more than once on the same platform (``--resume``, a rerun,
two machines with the same GPU, ``--device all``) the row that started last is the one shown.
"""

from __future__ import annotations

import math
import re
import statistics

from ..gate import MIN_SAMPLES as _GATE_MIN_SAMPLES
from ..results import CONFIGURATION, KEY_COLUMNS
from ..suite import BACKENDS
from ..summary import status_cell

# --- What makes a row untrustworthy: every threshold the report applies, in one place ---------

# A row is *noisy* when the interquartile range of its timed repetitions is more than this
# fraction of their median ...
NOISY_IQR_RATIO = 0.10
# ... or when the 95% confidence interval of its median reaches further than this fraction from it
# (``ci_rel``): the timer stopped at its time cap before the median was known that well. The
# timer's own target, ``bench.timing.TARGET_CI_REL``, named here without importing torch (a test
# checks that the two agree); rows from before ``ci_rel`` have only the IQR rule ...
NOISY_CI_REL = 0.01
# ... or when it has fewer timed repetitions than the regression gate needs to see a change
# (``bench.gate.MIN_SAMPLES``, 3): no meaningful IQR.
MIN_SAMPLES = _GATE_MIN_SAMPLES
# The SM clock *moved* during a row (or a run) when the range of the clocks sampled while it ran,
# set-up included, is more than this fraction of the highest: (max - min) / max.
CLOCK_SPREAD_RATIO = 0.10
# A row *throttled* when NVML reported any throttle reason while it ran: bench.environment
# records only the reasons that mean the GPU ran slower than it could (idle is not one).

# Every flag a row can carry, most severe first: its status if not ok, then the soft flags above.
FLAG_ORDER = ("incorrect", "error", "oom", "skipped", "noisy", "host bound", "throttled", "clocks moved")

MODE_ORDER = ("infer", "train", "train-forward", "train-backward")
INTEGER_COLUMNS = ("batch_size", "input_size", "world_size", "samples", "peak_memory_bytes", "peak_reserved_bytes", "bytes_moved",
                   "flops", "sm_clock_mhz_min", "sm_clock_mhz_max", "cudnn_version")
FAST_BACKENDS = tuple(b for b in BACKENDS if b != "torch")  # compared against torch
REFERENCE_BACKEND = "torch"

# Datasheet peaks (dense, no sparsity) of the GPUs this harness meets: memory bandwidth in GB/s
# and TFLOP/s per dtype (fp32: CUDA cores; tf32/bf16/fp16: tensor cores). Matched against
# ``device_name`` in order, first match wins; a GPU not listed gets no peak line.
DEVICE_PEAKS = (
    (r"B200", 8000, {"fp32": 80, "tf32": 1100, "bf16": 2250, "fp16": 2250}),
    (r"H200", 4800, {"fp32": 67, "tf32": 494, "bf16": 989, "fp16": 989}),
    (r"H100.*PCIe", 2000, {"fp32": 51, "tf32": 378, "bf16": 756, "fp16": 756}),
    (r"H100.*NVL", 3900, {"fp32": 60, "tf32": 418, "bf16": 835, "fp16": 835}),
    (r"H100", 3350, {"fp32": 67, "tf32": 494, "bf16": 989, "fp16": 989}),
    (r"A100.*80GB.*PCIe", 1935, {"fp32": 19.5, "tf32": 156, "bf16": 312, "fp16": 312}),
    (r"A100.*80GB", 2039, {"fp32": 19.5, "tf32": 156, "bf16": 312, "fp16": 312}),
    (r"A100", 1555, {"fp32": 19.5, "tf32": 156, "bf16": 312, "fp16": 312}),
    (r"L40S", 864, {"fp32": 91.6, "tf32": 183, "bf16": 362, "fp16": 362}),
    (r"\bL4\b", 300, {"fp32": 30.3, "tf32": 60, "bf16": 121, "fp16": 121}),
    (r"\bA10\b", 600, {"fp32": 31.2, "tf32": 62.5, "bf16": 125, "fp16": 125}),
    (r"V100", 900, {"fp32": 15.7, "fp16": 125}),
    (r"\bT4\b", 320, {"fp32": 8.1, "fp16": 65}),
)


def device_peak(device_name: str | None) -> tuple[float | None, dict]:
    """(peak GB/s, {dtype: peak TFLOP/s}) from the datasheet table, or (None, {}) if unknown."""
    for pattern, gbps, tflops in DEVICE_PEAKS:
        if device_name and re.search(pattern, device_name):
            return float(gbps), dict(tflops)
    return None, {}


# --- Small helpers -----------------------------------------------------------------------------

def value(x):
    """A cell as a plain Python value: NaN and pandas' missing markers become None."""
    if x is None:
        return None
    try:
        if x != x:  # NaN, pd.NA raises TypeError below
            return None
    except (TypeError, ValueError):
        return None if str(x) in ("<NA>", "NaT") else x
    if hasattr(x, "item") and not isinstance(x, (list, tuple, str)):
        return x.item()
    return x


def number(x) -> float | None:
    """A cell as a finite float, or None: missing, NaN, infinite, a bool or not a number."""
    x = value(x)
    if x is None or isinstance(x, bool):
        return None
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def rows_of_kind(frame, kind: str) -> list[dict]:
    """The rows of one kind (``model`` or ``kernel``) as dicts."""
    return frame[frame["kind"] == kind].to_dict("records") if not frame.empty else []


def one_process(row) -> bool:
    """Whether one process measured the row. Data-parallel rows (``world_size`` over 1) are the
    scaling section's: beside one-process rows they would read as another bar of the same model."""
    return (value(row.get("world_size")) or 1) == 1


def quartiles(times_ms) -> tuple[float, float] | tuple[None, None]:
    """First and third quartile of the timed repetitions, as ``bench.timing.summarize`` takes them."""
    if not isinstance(times_ms, (list, tuple)) or not times_ms:
        return None, None
    times = [float(t) for t in times_ms]
    if len(times) == 1:
        return times[0], times[0]
    q = statistics.quantiles(times, n=4, method="inclusive")
    return q[0], q[2]


def platform_of(row) -> str:
    """What a row ran on: the GPU's name, or ``CPU <model name>`` on a CPU."""
    name = value(row.get("device_name"))
    if name and name != "cpu":
        return str(name)
    cpu = value(row.get("cpu"))
    return f"CPU {cpu}" if cpu else "CPU"


def row_flags(row) -> list[str]:
    """Why a row cannot be taken at face value, in FLAG_ORDER; empty for a clean ``ok`` row."""
    flags = []
    status = value(row.get("status"))
    if status and status != "ok":
        flags.append(status)
    if status in ("ok", "incorrect"):
        median, iqr, samples = number(row.get("device_ms")), number(row.get("iqr_ms")), number(row.get("samples"))
        ci_rel = number(row.get("ci_rel"))
        if (samples is not None and samples < MIN_SAMPLES) or (
                median and iqr is not None and iqr / median > NOISY_IQR_RATIO) or (
                ci_rel is not None and ci_rel > NOISY_CI_REL):
            flags.append("noisy")
        if row.get("host_bound") is True:  # bench.timing: host time per call over device time
            flags.append("host bound")
    reasons = value(row.get("throttle_reasons"))
    if isinstance(reasons, (list, tuple)) and reasons:
        flags.append("throttled")
    if clocks_moved(row.get("sm_clock_mhz_min"), row.get("sm_clock_mhz_max")):
        flags.append("clocks moved")
    return flags


def clocks_moved(low, high) -> bool:
    low, high = number(low), number(high)
    return bool(low is not None and high and (high - low) / high > CLOCK_SPREAD_RATIO)


def mode_rank(mode) -> int:
    return MODE_ORDER.index(mode) if mode in MODE_ORDER else len(MODE_ORDER)


def combine_flags(*flag_lists) -> list[str]:
    seen = {f for flags in flag_lists for f in flags}
    return [f for f in FLAG_ORDER if f in seen]


# --- Preparation -------------------------------------------------------------------------------

def prepare(frame):
    """The loaded rows with what the report needs beside them.

    Adds ``platform``, ``q1_ms``/``q3_ms`` (quartiles of ``device_times_ms``), ``iqr_ratio``, ``flags``
    (a list, see :func:`row_flags`) and ``flag_text``; cells are plain Python values (None, not NaN).
    """
    import pandas as pd

    frame = frame.copy()
    if frame.empty:
        for column in ("platform", "q1_ms", "q3_ms", "iqr_ratio", "flags", "flag_text"):
            frame[column] = pd.Series(dtype=object)
        return frame.reset_index(drop=True)
    frame = frame.astype(object).where(frame.notna(), None)
    for column in INTEGER_COLUMNS:  # pandas turns an integer column with a gap into floats
        frame[column] = pd.Series([int(v) if isinstance(v, float) and v.is_integer() else v for v in frame[column]],
                                  index=frame.index, dtype=object)
    records = frame.to_dict("records")
    frame["platform"] = [platform_of(r) for r in records]
    q = [quartiles(r.get("device_times_ms")) for r in records]
    frame["q1_ms"] = [a for a, _ in q]
    frame["q3_ms"] = [b for _, b in q]
    frame["iqr_ratio"] = [(number(r.get("iqr_ms")) / number(r.get("device_ms")))
                          if number(r.get("iqr_ms")) is not None and number(r.get("device_ms")) else None
                          for r in records]
    frame["flags"] = [row_flags(r) for r in records]
    frame["flag_text"] = [", ".join(f) for f in frame["flags"]]
    return frame.reset_index(drop=True)


def latest(frame):
    """One row per configuration and platform: the one that started last (file order breaks ties)."""
    if frame.empty:
        return frame
    frame = frame.assign(_order=range(len(frame)))
    frame = frame.sort_values(["started_at", "_order"], na_position="first", key=_sortable)
    key = [c for c in KEY_COLUMNS if c != "device_name"] + ["platform"]
    frame = frame.drop_duplicates(subset=key, keep="last").sort_values("_order").drop(columns="_order")
    return frame.reset_index(drop=True)


def _sortable(column):
    return column.map(lambda v: "" if value(v) is None else str(v)) if column.name == "started_at" else column


# --- Speedups ----------------------------------------------------------------------------------

# A configuration on one platform, across backends: what a speedup compares.
GROUP = ("platform",) + tuple(c for c in CONFIGURATION if c != "backend")


def _group_key(row) -> tuple:
    return tuple(value(row.get(c)) for c in GROUP)


def speedups(frame) -> list[dict]:
    """Each triton/compile row beside the torch row of its configuration.

    ``speedup`` is torch's median time over the backend's (for models: the ratio of images/s),
    defined where torch is ``ok`` and the backend measured (``ok`` or ``incorrect``, the latter
    flagged), as in the terminal summary; otherwise None. ``flags`` combine both rows' flags.
    """
    by_group: dict[tuple, dict] = {}
    for row in filter(one_process, frame.to_dict("records")):
        by_group.setdefault(_group_key(row), {})[row["backend"]] = row
    out = []
    for key, backends in by_group.items():
        base = backends.get(REFERENCE_BACKEND)
        for backend, row in backends.items():
            if backend == REFERENCE_BACKEND:
                continue
            speedup = None
            if (base is not None and base["status"] == "ok" and row["status"] in ("ok", "incorrect")
                    and number(base.get("device_ms")) and number(row.get("device_ms"))):
                speedup = number(base["device_ms"]) / number(row["device_ms"])
            out.append({**dict(zip(GROUP, key)), "backend": backend, "speedup": speedup, "row": row, "base": base,
                        "flags": combine_flags(row["flags"], base["flags"] if base is not None else [])})
    return out


def model_summary(frame) -> list[dict]:
    """Per platform, model, mode, dtype, batch: each backend's row and the fast paths' speedups."""
    groups: dict[tuple, dict] = {}
    for row in filter(one_process, rows_of_kind(frame, "model")):
        groups.setdefault(_group_key(row), {})[row["backend"]] = row
    lines = []
    for key, backends in groups.items():
        line = dict(zip(GROUP, key))
        base = backends.get(REFERENCE_BACKEND)
        for backend in BACKENDS:
            row = backends.get(backend)
            line[backend] = row
            line[f"{backend}_cell"] = status_cell(row)
            line[f"{backend}_throughput"] = number(row.get("throughput")) if row is not None else None
            if backend != REFERENCE_BACKEND:
                ok = (row is not None and base is not None and base["status"] == "ok"
                      and row["status"] in ("ok", "incorrect") and line[f"{backend}_throughput"]
                      and number(base.get("throughput")))
                line[f"{backend}_speedup"] = (line[f"{backend}_throughput"] / number(base["throughput"])
                                              if ok else None)
        line["flags"] = combine_flags(*(r["flags"] for r in backends.values()))
        line["messages"] = [f"{b}: {r['message']}" for b, r in backends.items() if value(r.get("message"))]
        lines.append(line)
    return lines


# --- Across platforms --------------------------------------------------------------------------

def metric_of(row) -> tuple[float | None, str]:
    """The speed a row is compared by across GPUs: images/s (models), GB/s or 1/time (kernels)."""
    if row["kind"] == "model":
        return number(row.get("throughput")), "images/s"
    gbps = number(row.get("achieved_gbps"))
    if gbps is not None:
        return gbps, "GB/s"
    median = number(row.get("device_ms"))
    return (1e3 / median if median else None), "runs/s"


def across_platforms(frame, reference: str | None = None) -> tuple[list[dict], str | None]:
    """Configurations measured ``ok`` on at least two platforms, each platform's value and its
    ratio to the reference platform's (``relative``; above 1 is faster than the reference)."""
    if frame.empty:
        return [], None
    ok = frame[frame["status"] == "ok"]
    config = [c for c in GROUP if c != "platform"] + ["backend"]
    groups: dict[tuple, dict] = {}
    for row in ok.to_dict("records"):
        groups.setdefault(tuple(value(row.get(c)) for c in config), {})[row["platform"]] = row
    shared = {k: v for k, v in groups.items() if len(v) >= 2}
    if not shared:
        return [], None
    if reference is None:
        counts: dict[str, int] = {}
        for by_platform in shared.values():
            for p in by_platform:
                counts[p] = counts.get(p, 0) + 1
        reference = sorted(counts, key=lambda p: (-counts[p], p))[0]
    out = []
    for key, by_platform in shared.items():
        ref_row = by_platform.get(reference)
        ref_value = metric_of(ref_row)[0] if ref_row is not None else None
        for platform, row in sorted(by_platform.items()):
            metric, unit = metric_of(row)
            out.append({**dict(zip(config, key)), "platform": platform, "value": metric, "unit": unit,
                        "relative": (metric / ref_value) if metric is not None and ref_value else None,
                        "row": row, "flags": row["flags"]})
    return out, reference


# --- Roofline ----------------------------------------------------------------------------------

def roofline(frame) -> tuple[list[dict], dict]:
    """Kernel rows that measured (``ok``/``incorrect``) with their achieved GB/s and TFLOP/s,
    and per platform the references: measured copy bandwidth (median over its runs) and the
    datasheet peaks (None where the device is not in DEVICE_PEAKS)."""
    if frame.empty:
        return [], {}
    kernels = frame[(frame["kind"] == "kernel") & frame["status"].isin(["ok", "incorrect"])]
    rows = [r for r in kernels.to_dict("records") if number(r.get("achieved_gbps")) is not None]
    references = {}
    for platform in sorted({r["platform"] for r in rows}):
        mine = frame[frame["platform"] == platform]
        per_run = mine.drop_duplicates(subset=["run_id", "device"])  # measured once per run and device
        copies = [c for c in (number(v) for v in per_run["copy_bandwidth_gbps"]) if c is not None]
        device_name = next((value(n) for n in mine["device_name"] if value(n)), None)
        peak_gbps, peak_tflops = device_peak(device_name)
        references[platform] = {"copy_gbps": statistics.median(copies) if copies else None,
                                "peak_gbps": peak_gbps, "peak_tflops": peak_tflops}
    return rows, references


# --- Correctness -------------------------------------------------------------------------------

def correctness(frame) -> list[dict]:
    """Rows checked against the reference (a ``rel_error`` or ``grad_rel_error``), ``fast`` True
    for the fast paths (triton, compile) that a tolerance applies to."""
    if frame.empty:
        return []
    out = []
    for row in frame.to_dict("records"):
        if number(row.get("rel_error")) is None and number(row.get("grad_rel_error")) is None:
            continue
        out.append({**row, "fast": row["backend"] in FAST_BACKENDS})
    return out


def tolerance_of(row, field: str = "rel_error") -> float | None:
    """The bound an error is held to: ``tolerance`` for outputs; for gradients ``grad_tolerance``,
    else ``tolerance`` (as the worker decides ``incorrect``). None: a baseline, no bound."""
    tolerance = number(row.get("tolerance"))
    return (number(row.get("grad_tolerance")) or tolerance) if field == "grad_rel_error" else tolerance


def error_ratio(row) -> float | None:
    """The worst of a row's errors over its bound (above 1: incorrect)."""
    ratios = [number(row.get(field)) / tolerance_of(row, field) for field in ("rel_error", "grad_rel_error")
              if number(row.get(field)) is not None and tolerance_of(row, field)]
    return max(ratios) if ratios else None


# --- Environment -------------------------------------------------------------------------------

def environment(frame) -> list[dict]:
    """One line per run and device: what it ran on, clocks seen, and its warnings."""
    if frame.empty:
        return []
    lines = []
    for (run_id, device, platform), rows in frame.groupby(
            [frame["run_id"].map(str), frame["device"].map(str), "platform"], sort=True):
        first = rows.iloc[0].to_dict()
        mins = [m for m in map(number, rows["sm_clock_mhz_min"]) if m is not None]
        maxs = [m for m in map(number, rows["sm_clock_mhz_max"]) if m is not None]
        reasons: dict[str, int] = {}
        for rs in rows["throttle_reasons"]:
            for reason in (value(rs) if isinstance(value(rs), (list, tuple)) else []):
                reasons[reason] = reasons.get(reason, 0) + 1
        warnings = []
        if reasons:
            warnings.append("GPU throttled: " + ", ".join(f"{r} ({n} rows)" for r, n in sorted(reasons.items())))
        low, high = (min(mins), max(maxs)) if mins and maxs else (None, None)
        moved_rows = sum(clocks_moved(a, b) for a, b in zip(rows["sm_clock_mhz_min"], rows["sm_clock_mhz_max"]))
        if clocks_moved(low, high) or moved_rows:
            warnings.append(f"SM clock moved during the run: {low:.0f}-{high:.0f} MHz, over "
                            f"{CLOCK_SPREAD_RATIO:.0%} of the highest ({moved_rows} rows moved that much while "
                            "they ran)")
        started = sorted(str(s) for s in rows["started_at"] if value(s))
        statuses = rows["status"].value_counts()
        lines.append({
            "run_id": run_id, "device": device, "platform": platform, "host": value(first.get("host")),
            "rows": len(rows), "statuses": ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())),
            "started": started[0] if started else None, "finished": started[-1] if started else None,
            "device_name": value(first.get("device_name")), "device_uuid": value(first.get("device_uuid")),
            "driver_version": value(first.get("driver_version")),
            "compute_capability": value(first.get("compute_capability")),
            "cpu": value(first.get("cpu")), "python": value(first.get("python")),
            "torch_version": value(first.get("torch_version")), "triton_version": value(first.get("triton_version")),
            "cuda_version": value(first.get("cuda_version")), "cudnn_version": value(first.get("cudnn_version")),
            "git_commit": value(first.get("git_commit")), "git_dirty": value(first.get("git_dirty")),
            "sm_clock_mhz": number(first.get("sm_clock_mhz")),
            "sm_clock_max_mhz": number(first.get("sm_clock_max_mhz")),
            "memory_clock_mhz": number(first.get("memory_clock_mhz")),
            "power_limit_w": number(first.get("power_limit_w")), "temperature_c": number(first.get("temperature_c")),
            "copy_bandwidth_gbps": number(first.get("copy_bandwidth_gbps")),
            "sm_clock_seen_min": low, "sm_clock_seen_max": high,
            "throttle_reasons": sorted(reasons), "warnings": warnings,
            "synthetic": str(run_id).startswith("synthetic-") or value(first.get("host")) == "synthetic",
        })
    return lines
