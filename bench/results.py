"""Results files: JSON Lines, one self-describing row per measured configuration.

Every row carries its configuration, its measurements and the environment it ran in, so a
file means the same on its own as when merged with runs from other machines. Rows are
appended and flushed as each configuration finishes: a crash or Ctrl-C loses nothing done.

A row that a full disk or a kill cut off halfway never costs the rest of the file:

- The writer writes each row, newline included, with one ``write`` call on an append-only
  descriptor, then syncs it to disk; a cut can only leave the start of one row as the last
  line, without its newline.
- The next writer (the next run, or ``--resume``) that finds the file not ending in a newline
  terminates that last line before its own first row. A complete row is kept; anything else
  gets ``TRUNCATED_MARK`` appended, so the line says what it is and readers can tell it from
  a corrupt one. It logs a warning naming the file and line.
- Readers skip, with a one-line warning naming the file and line, a last line without its
  newline that is not a complete row (a row cut off, or one still being written) and any line
  ending in ``TRUNCATED_MARK``. Every other line that is not a row of this schema, including
  bytes that are not UTF-8, is an error naming the file and line.

The column names below are public API (the README documents them); ``SCHEMA_VERSION`` changes
whenever one changes meaning.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from pathlib import Path
from typing import Iterable

SCHEMA_VERSION = 2
# Schema 1 had one time per row, ``median_ms`` of ``times_ms``: on a GPU, CUDA events around each
# call, which counted the GPU's idle time when the host launched slower than the GPU ran. Those
# columns read as schema 2's device time with ``timing_method`` EVENTS_PER_CALL_V1, so old files
# stay readable and nobody mistakes their times for graph- or CUPTI-timed ones.
READABLE_SCHEMA_VERSIONS = (1, SCHEMA_VERSION)
SCHEMA_1_RENAMED = {"times_ms": "device_times_ms", "median_ms": "device_ms"}
EVENTS_PER_CALL_V1 = "events (schema 1)"

STATUSES = ("ok", "skipped", "oom", "error", "incorrect")
# How tables mark a row that has no number to show (an incorrect row keeps its number, marked).
STATUS_MARKS = {"incorrect": "!", "error": "E", "oom": "M", "skipped": "-"}

# The configuration: what was measured, whatever it ran on. Rows of one device with equal
# values measure the same thing.
# ``world_size``: the data-parallel ranks of a training model row (``bench.distributed``); None
# where one process ran it without torch.distributed, which a scaling sweep's 1 means too.
CONFIGURATION = ("kind", "name", "shape", "backend", "mode", "dtype", "batch_size", "memory_format", "input_size",
                 "protocol", "world_size")

# What identifies a configuration across runs: the GPU model is part of it.
KEY_COLUMNS = CONFIGURATION + ("device_name",)

# As a run asks for it: the logical device (``cuda:N``) and the suite it came from.
CONFIG_COLUMNS = CONFIGURATION + ("device", "suite")

MEASUREMENT_COLUMNS = (
    "status", "message", "views_per_image", "device_times_ms", "device_ms", "iqr_ms", "samples", "ci_rel",
    "timing_method",
    "timing_fallback", "host_ms", "host_bound", "do_bench_ms", "do_bench_cudagraph_ms", "predicted_ms", "throughput",
    "per_rank_throughput", "scaling_efficiency",
    "peak_memory_bytes", "peak_reserved_bytes", "rel_error", "max_abs_error", "top1_agreement",
    "grad_rel_error", "tolerance", "grad_tolerance", "bytes_moved", "flops", "achieved_gbps", "achieved_tflops",
    "percent_of_copy_bandwidth", "percent_of_matmul_rate", "sm_clock_mhz_min", "sm_clock_mhz_max", "throttle_reasons",
    "started_at", "wall_s", "compile_s", "compile_cache",
)

ENVIRONMENT_COLUMNS = (
    "run_id", "host", "cpu", "python", "torch_version", "triton_version", "cuda_version",
    "cudnn_version", "git_commit", "git_dirty", "device_name", "device_uuid", "driver_version",
    "compute_capability", "device_memory_bytes", "sm_clock_max_mhz", "memory_clock_max_mhz",
    "sm_clock_mhz", "memory_clock_mhz", "power_limit_w", "temperature_c",
    "copy_bandwidth_gbps", "bf16_matmul_tflops", "cluster_node",
)

COLUMNS = ("schema_version",) + CONFIG_COLUMNS + MEASUREMENT_COLUMNS + ENVIRONMENT_COLUMNS


class ResultsError(ValueError):
    """A results file that cannot be read: names the file and line."""


def config_key(row: dict) -> tuple:
    return tuple(row.get(column) for column in KEY_COLUMNS)


def resume_key(row_or_config: dict) -> tuple:
    """What ``--resume`` matches on besides the device (see ``unfinished``): the configuration
    as asked for, suite included. ``device`` (``cuda:N``) is left out: an index names no GPU."""
    return tuple(row_or_config.get(column) for column in CONFIG_COLUMNS if column != "device")


def same_device(row: dict, environment: dict) -> bool:
    """Whether a row ran on this device: the same ``device_name``, and the same ``device_uuid``
    where both know one (NVML gives it; a CPU has none)."""
    if row.get("device_name") != environment.get("device_name"):
        return False
    uuids = row.get("device_uuid"), environment.get("device_uuid")
    return None in uuids or uuids[0] == uuids[1]


def unfinished(configs: list[dict], rows: Iterable[dict], environments: list[dict] | None = None) -> list[dict]:
    """The configurations that no row finished on one of these devices (the environments of
    the run's workers): rows of another GPU, or of another suite, never count as done. Without
    ``environments`` (a cluster run, whose devices are the cluster's), a row on any device counts."""
    devices_done = {}
    for row in rows:
        devices_done.setdefault(resume_key(row), []).append(row)
    if environments is None:
        return [config for config in configs if resume_key(config) not in devices_done]
    return [config for config in configs
            if not any(same_device(row, environment) for row in devices_done.get(resume_key(config), ())
                       for environment in environments)]


def make_row(config: dict, measurement: dict, environment: dict) -> dict:
    """A complete row: every column present (``None`` where it does not apply)."""
    row = {column: None for column in COLUMNS}
    row.update({k: config.get(k) for k in CONFIG_COLUMNS})
    row.update(environment)
    row.update(measurement)
    row.update(derive(row))
    row["schema_version"] = SCHEMA_VERSION
    unknown = set(row) - set(COLUMNS)
    if unknown:
        raise KeyError(f"columns not in the schema: {sorted(unknown)}")
    if row["status"] not in STATUSES:
        raise ValueError(f"status {row['status']!r} is not one of {STATUSES}")
    return row


# Host time must exceed device time by this much for a row to be host-bound: two clocks and two
# loops, each known to about 1% (``bench.timing.TARGET_CI_REL``), so a smaller excess is no evidence.
HOST_BOUND_MARGIN = 0.05
# Where the two times are one measurement, no row can be host-bound.
ONE_CLOCK_METHODS = ("host-clock", "pytest-benchmark")


def derive(row: dict) -> dict:
    """Every column computed from others, in one place: a model row's images/s, a kernel row's
    achieved GB/s and TFLOP/s, and those as percentages of the roofline references measured in
    the same run (the matrix rate only for fp16/bf16, the dtypes it is measured in). All of them
    from device time (``device_ms``), never host time; and whether the row is ``host_bound``, its
    host time per call over its device time by more than ``HOST_BOUND_MARGIN``. A column whose
    inputs are missing is None. (``scaling_efficiency`` needs a second row: :func:`scaling_efficiency`.)"""
    seconds = row["device_ms"] * 1e-3 if row.get("device_ms") else None
    derived = dict.fromkeys(("throughput", "per_rank_throughput", "achieved_gbps", "achieved_tflops", "percent_of_copy_bandwidth",
                             "percent_of_matmul_rate", "host_bound"))
    if seconds is not None and row.get("host_ms") is not None and row.get("timing_method") not in ONE_CLOCK_METHODS:
        derived["host_bound"] = row["host_ms"] > row["device_ms"] * (1 + HOST_BOUND_MARGIN)
    if seconds is None:
        return derived
    if row.get("kind") == "model" and row.get("batch_size"):
        # A data-parallel step trains ``batch_size`` images on each of ``world_size`` ranks.
        derived["throughput"] = (row.get("world_size") or 1) * row["batch_size"] / seconds
        if row.get("world_size"):
            derived["per_rank_throughput"] = row["batch_size"] / seconds
    if row.get("bytes_moved") is not None:
        derived["achieved_gbps"] = row["bytes_moved"] / seconds / 1e9
        if row.get("copy_bandwidth_gbps"):
            derived["percent_of_copy_bandwidth"] = 100 * derived["achieved_gbps"] / row["copy_bandwidth_gbps"]
    if row.get("flops") is not None:
        derived["achieved_tflops"] = row["flops"] / seconds / 1e12
        if row.get("bf16_matmul_tflops") and row.get("dtype") in ("fp16", "bf16"):
            derived["percent_of_matmul_rate"] = 100 * derived["achieved_tflops"] / row["bf16_matmul_tflops"]
    return derived


def single_rank_key(row: dict) -> tuple:
    """What a multi-rank row shares with its single-rank row: the configuration less
    ``world_size``, on the same GPU model (``world_size`` None and 1 are both one rank)."""
    return tuple(row.get(column) for column in KEY_COLUMNS if column != "world_size")


def scaling_efficiency(row: dict, rows: Iterable[dict]) -> float | None:
    """A data-parallel row's images/s over ``world_size`` times its single-rank row's (the newest
    ``ok`` one among ``rows``): 1.0 is perfect scaling. None for a single-rank row, or where no
    single-rank row of the same configuration and GPU model was measured."""
    if (row.get("world_size") or 1) == 1 or not row.get("throughput"):
        return None
    key = single_rank_key(row)
    singles = [r for r in rows if (r.get("world_size") or 1) == 1 and r.get("status") == "ok"
               and r.get("throughput") and single_rank_key(r) == key]
    return row["throughput"] / (row["world_size"] * singles[-1]["throughput"]) if singles else None


TRUNCATED_MARK = b"  <- cut off by an interrupted write; readers skip this line"

log = logging.getLogger(__name__)


def _is_json_object(data: bytes) -> bool:
    try:
        return isinstance(json.loads(data), dict)
    except ValueError:  # not JSON, or not UTF-8
        return False


class ResultsWriteError(OSError):
    """A row that could not be written (a full disk, a lost mount): every earlier row is on disk."""


class ResultsWriter:
    """Appends rows to a JSON Lines file, each in one write call, synced to disk as it is written."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        self._last_write_failed = False
        try:
            self._terminate_last_line()
        except OSError:
            self.close()
            raise

    def _terminate_last_line(self) -> None:
        """Puts the next row on a line of its own when a cut-off row (see the module docstring)
        is the last line."""
        with open(self.path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            if size == 0:
                return
            f.seek(size - 1)
            if f.read(1) == b"\n":
                return
            f.seek(0)
            data = f.read()
        start = data.rfind(b"\n") + 1
        if _is_json_object(data[start:]):  # a complete row, only its newline missing
            self._write_all(b"\n")
            return
        self._write_all(TRUNCATED_MARK + b"\n")
        log.warning("warning: %s:%d: a row cut off by an interrupted write; marked, and the next row starts "
                    "on the line after", self.path, data.count(b"\n") + 1)

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:  # one call unless the disk fills halfway; then the next raises ENOSPC
            view = view[os.write(self._fd, view):]
        os.fsync(self._fd)

    def write(self, row: dict) -> None:
        if self._last_write_failed:  # perhaps halfway through its row: start on a fresh line
            self._terminate_last_line()
        self._last_write_failed = True
        try:
            self._write_all((json.dumps(row, sort_keys=False, allow_nan=False) + "\n").encode("utf-8"))
        except OSError as error:
            raise ResultsWriteError(error.errno, f"writing {self.path}: {error.strerror}") from error
        self._last_write_failed = False

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "ResultsWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_rows(path: str | os.PathLike) -> list[dict]:
    """Every row of one results file. A line cut off by an interrupted write is skipped with a
    warning; any other line that is not a row of this schema is an error (module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise ResultsError(f"{path}: no such results file")
    rows = []
    with open(path, "rb") as f:
        for number, data in enumerate(f, start=1):
            complete = data.endswith(b"\n")
            if data.rstrip().endswith(TRUNCATED_MARK):
                log.warning("warning: %s:%d: skipped a row cut off by an interrupted write", path, number)
                continue
            if not complete and not _is_json_object(data):
                log.warning("warning: %s:%d: skipped an incomplete last line (no newline: a row cut off, "
                            "or still being written)", path, number)
                continue
            try:
                line = data.decode("utf-8")
            except UnicodeDecodeError as error:
                raise ResultsError(f"{path}:{number}: not UTF-8 text (byte 0x{data[error.start]:02x} "
                                   f"at column {error.start + 1})") from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ResultsError(f"{path}:{number}: not JSON ({error.msg})") from None
            if not isinstance(row, dict) or "schema_version" not in row:
                raise ResultsError(f"{path}:{number}: not a results row (no schema_version)")
            if row["schema_version"] not in READABLE_SCHEMA_VERSIONS:
                raise ResultsError(f"{path}:{number}: schema_version {row['schema_version']!r}, "
                                   f"this version reads {', '.join(map(str, READABLE_SCHEMA_VERSIONS))}")
            missing = [c for c in ("kind", "name", "backend", "mode", "status") if c not in row]
            if missing:
                raise ResultsError(f"{path}:{number}: row lacks {', '.join(missing)}")
            rows.append(upgrade(row))
    return rows


def upgrade(row: dict) -> dict:
    """A row of an older schema in today's columns (see ``SCHEMA_1_RENAMED``)."""
    if row["schema_version"] == 1:
        row = {SCHEMA_1_RENAMED.get(k, k): v for k, v in row.items()}
        if row.get("kind") == "model":  # every model row of schema 1 evaluated single crops
            row.setdefault("protocol", "single")
        if row.get("device_ms") is not None:
            gpu = str(row.get("device") or "").startswith("cuda")
            row.setdefault("timing_method", EVENTS_PER_CALL_V1 if gpu else "host-clock")
    return row


def expand_paths(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files as given; a directory stands for every ``*.jsonl`` below it."""
    expanded = []
    for path in map(Path, paths):
        expanded.extend(sorted(path.rglob("*.jsonl")) if path.is_dir() else [path])
    return expanded


def read_pytest_benchmark(path: str | os.PathLike) -> list[dict]:
    """Rows from ``pytest --benchmark-json`` output (the project's benchmarks put their
    configuration in ``extra_info``; ``--benchmark-save-data`` keeps every repetition)."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:  # ValueError: not JSON, or not UTF-8
        raise ResultsError(f"{path}: not a pytest-benchmark JSON file ({error})") from None
    if not isinstance(document, dict) or not isinstance(document.get("benchmarks"), list):
        raise ResultsError(f"{path}: not a pytest-benchmark JSON file (no 'benchmarks' list)")
    machine = document.get("machine_info", {})
    commit = document.get("commit_info", {})
    rows = []
    for number, bench in enumerate(document["benchmarks"], start=1):
        stats, info = bench.get("stats", {}), dict(bench.get("extra_info", {}))
        if "median" not in stats:
            raise ResultsError(f"{path}: benchmark {number} ({bench.get('fullname')}) has no stats.median")
        config = {"kind": info.pop("kind", "pytest"), "name": info.pop("name", bench.get("fullname")),
                  "backend": info.pop("backend", "pytest"), "mode": info.pop("mode", "-"), **info}
        times = [t * 1e3 for t in stats.get("data", [])]
        # pytest-benchmark times each round by the host clock (benchmarks/ synchronises a GPU call
        # before the clock stops): device and host time are that one measurement.
        measurement = {"status": "ok", "device_times_ms": times or None, "device_ms": stats["median"] * 1e3,
                       "host_ms": stats["median"] * 1e3, "timing_method": "pytest-benchmark",
                       "iqr_ms": stats.get("iqr", 0) * 1e3, "samples": len(times) or stats.get("rounds")}
        environment = {"run_id": f"pytest-benchmark-{document.get('datetime', '')}", "host": machine.get("node"),
                       "git_commit": commit.get("id"), "git_dirty": commit.get("dirty"),
                       "device_name": info.get("device_name") or "cpu"}
        rows.append(make_row({k: v for k, v in config.items() if k in CONFIG_COLUMNS},
                             measurement, {k: v for k, v in {**environment, **{k: info[k] for k in info
                                           if k in ENVIRONMENT_COLUMNS}}.items()}))
    return rows


def load_rows(paths) -> list[dict]:
    """Rows of any number of results files, directories of them, or pytest-benchmark JSON files."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    rows = []
    for path in expand_paths(paths):
        for row in (read_pytest_benchmark(path) if path.suffix == ".json" else read_rows(path)):
            row["source"] = str(path)
            rows.append(row)  # read_rows upgraded it
    return rows


def load(paths) -> "pandas.DataFrame":  # noqa: F821
    """Any number of results files (or directories of them) as one tidy DataFrame."""
    import pandas as pd

    return pd.DataFrame(load_rows(paths), columns=list(COLUMNS) + ["source"])


def device_slug(device_name: str) -> str:
    """A file-name-safe GPU name: ``NVIDIA H200`` -> ``NVIDIA-H200``."""
    return re.sub(r"[^A-Za-z0-9]+", "-", device_name).strip("-")


RUN_FILE_TIME = "%Y%m%d-%H%M%S"


def run_file_name(suite: str, device_name: str) -> str:
    """The file a run writes into a directory: ``SUITE-DEVICE-TIME.jsonl``."""
    return f"{suite}-{device_slug(device_name)}-{time.strftime(RUN_FILE_TIME)}.jsonl"


def resumable_file(directory: str | os.PathLike, suite: str, environments: list[dict]) -> Path | None:
    """The newest file of ``directory`` that a run of ``suite`` on these devices (their
    ``device_name`` and ``device_uuid``) resumes: named as ``run_file_name`` names that run's
    files, and whose first row is of this suite on one of these devices. Names alone are not
    enough: ``kernels`` on ``big-cpu`` and ``kernels-big`` on ``cpu`` name their files alike."""
    slugs = "|".join(re.escape(device_slug(e["device_name"])) for e in environments)
    name = re.compile(rf"{re.escape(suite)}-(?:{slugs})-\d{{8}}-\d{{6}}\.jsonl")
    candidates = [p for p in Path(directory).glob("*.jsonl") if name.fullmatch(p.name)]
    for path in sorted(candidates, key=lambda p: p.stat().st_mtime, reverse=True):
        rows = read_rows(path)
        if rows and rows[0].get("suite") == suite and any(same_device(rows[0], e) for e in environments):
            return path
    return None
