"""The compact tables printed at the end of a run: images/s per backend and speedups over eager;
each kernel row's device and host time; and, where the device check timed them, the ruler check:
the harness's device time against Triton's ``do_bench`` and ``do_bench_cudagraph``."""

from __future__ import annotations

from .results import STATUS_MARKS, scaling_efficiency
from .tables import format_table


def status_cell(row: dict | None) -> str | None:
    """A model row's images/s (marked ``!`` if incorrect, ``H`` if host-bound), or its status mark;
    None for no row."""
    if row is None:
        return None
    if row["status"] in ("ok", "incorrect") and row.get("throughput"):
        value = f"{row['throughput']:,.1f}"
        return value + (" !" if row["status"] == "incorrect" else "") + (" H" if row.get("host_bound") else "")
    return STATUS_MARKS.get(row["status"], row["status"])


def model_summary(rows: list[dict]) -> str:
    """One line per model configuration; marks: ! incorrect, E error, M out of memory, - skipped."""
    groups: dict[tuple, dict] = {}
    for row in rows:
        if row["kind"] != "model":
            continue
        key = (row["name"], row["mode"], row.get("protocol"), row["dtype"], row["batch_size"], row["memory_format"],
               row["device"], row.get("world_size"))
        groups.setdefault(key, {})[row["backend"]] = row
    lines = []
    for (name, mode, protocol, dtype, batch, fmt, device, ranks), by_backend in groups.items():
        line = {"model": name, "mode": mode, "protocol": protocol, "dtype": dtype, "batch": batch, "device": device,
                "ranks": ranks}
        for backend in ("torch", "triton", "compile"):
            line[backend] = status_cell(by_backend.get(backend))
        # A cluster's rows arrive in any order: a multi-rank row may have come before its one-rank row.
        efficiency = {backend: row.get("scaling_efficiency") or scaling_efficiency(row, rows)
                      for backend, row in by_backend.items()}
        line["scaling"] = ", ".join(f"{backend} {value:.0%}" for backend, value in efficiency.items()
                                    if value is not None) or None
        base = by_backend.get("torch")
        for backend in ("triton", "compile"):
            other = by_backend.get(backend)
            if base and other and base["status"] == "ok" and other["status"] in ("ok", "incorrect"):
                line[f"{backend} x"] = f"{other['throughput'] / base['throughput']:.2f}x"
        lines.append(line)
    if not lines:
        return ""
    columns = ["model", "mode", "dtype", "batch", "device", "torch", "triton", "compile", "triton x", "compile x"]
    if any(line["protocol"] not in (None, "single") for line in lines):  # the papers' test protocols
        columns.insert(2, "protocol")
    note = "images/s from device time"
    if any(line["ranks"] for line in lines):  # data-parallel rows: images/s of all ranks together
        columns[columns.index("batch") + 1:columns.index("batch") + 1] = ["ranks"]
        columns.append("scaling")
        note += ", all ranks; batch per rank; scaling: efficiency against one rank"
    return format_table(lines, columns) + (f"\n({note}; ! incorrect, H host-bound, E error, M out of memory, "
                                           "- skipped)")


def kernel_summary(rows: list[dict]) -> str:
    lines = []
    for row in rows:
        if row["kind"] != "kernel":
            continue
        lines.append({"op": row["name"], "shape": row["shape"], "backend": row["backend"], "mode": row["mode"],
                      "dtype": row["dtype"], "status": row["status"],
                      "device us": microseconds(row.get("device_ms")), "timed by": row.get("timing_method"),
                      "host us": microseconds(row.get("host_ms")), "host-bound": "H" if row.get("host_bound") else None,
                      "GB/s": row.get("achieved_gbps"), "% copy": row.get("percent_of_copy_bandwidth"),
                      "rel err": None if row.get("rel_error") is None else f"{row['rel_error']:.1e}"})
    if not lines:
        return ""
    return format_table(lines, list(lines[0])) + "\n(GB/s and % copy from device time; H: host time over device time)"


def microseconds(ms: float | None) -> float | None:
    return None if ms is None else ms * 1e3


def ratio(numerator: float | None, denominator: float | None) -> str | None:
    return None if not numerator or not denominator else f"{numerator / denominator:.3f}"


# The ruler agrees with do_bench when their ratio lies within this (issue target: 5%).
RULER_AGREEMENT = 0.05


def ruler_check(rows: list[dict]) -> str:
    """Per kernel row timed by the device check's rulers: device time over ``do_bench``'s (both with
    the L2 flushed, when the suite flushes) and over ``do_bench_cudagraph``'s (no flush), with a
    count of rows outside ``RULER_AGREEMENT`` of do_bench."""
    checked = [row for row in rows if row.get("do_bench_ms") and row.get("device_ms")]
    if not checked:
        return ""
    lines = [{"op": row["name"], "shape": row["shape"], "backend": row["backend"], "mode": row["mode"],
              "timed by": row.get("timing_method"), "device us": microseconds(row["device_ms"]),
              "do_bench us": microseconds(row["do_bench_ms"]),
              "/ do_bench": ratio(row["device_ms"], row["do_bench_ms"]),
              "cudagraph us": microseconds(row.get("do_bench_cudagraph_ms")),
              "/ cudagraph": ratio(row["device_ms"], row.get("do_bench_cudagraph_ms")),
              "IQR %": None if not row.get("iqr_ms") else f"{100 * row['iqr_ms'] / row['device_ms']:.1f}"}
             for row in checked]
    outside = sum(abs(row["device_ms"] / row["do_bench_ms"] - 1) > RULER_AGREEMENT for row in checked)
    return (format_table(lines, list(lines[0])) + f"\nruler check: {len(checked) - outside} of {len(checked)} kernel "
            f"rows within {RULER_AGREEMENT:.0%} of triton.testing.do_bench")


def status_counts(rows: list[dict]) -> str:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
