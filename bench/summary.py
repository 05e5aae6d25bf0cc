"""The compact table printed at the end of a run: images/s per backend, speedups over eager."""

from __future__ import annotations

from .results import STATUS_MARKS
from .tables import format_table


def status_cell(row: dict | None) -> str | None:
    """A model row's images/s (marked ``!`` if incorrect), or its status mark; None for no row."""
    if row is None:
        return None
    if row["status"] in ("ok", "incorrect") and row.get("throughput"):
        value = f"{row['throughput']:,.1f}"
        return value + (" !" if row["status"] == "incorrect" else "")
    return STATUS_MARKS.get(row["status"], row["status"])


def model_summary(rows: list[dict]) -> str:
    """One line per model configuration; marks: ! incorrect, E error, M out of memory, - skipped."""
    groups: dict[tuple, dict] = {}
    for row in rows:
        if row["kind"] != "model":
            continue
        key = (row["name"], row["mode"], row["dtype"], row["batch_size"], row["memory_format"], row["device"])
        groups.setdefault(key, {})[row["backend"]] = row
    lines = []
    for (name, mode, dtype, batch, fmt, device), by_backend in groups.items():
        line = {"model": name, "mode": mode, "dtype": dtype, "batch": batch, "device": device}
        for backend in ("torch", "triton", "compile"):
            line[backend] = status_cell(by_backend.get(backend))
        base = by_backend.get("torch")
        for backend in ("triton", "compile"):
            other = by_backend.get(backend)
            if base and other and base["status"] == "ok" and other["status"] in ("ok", "incorrect"):
                line[f"{backend} x"] = f"{other['throughput'] / base['throughput']:.2f}x"
        lines.append(line)
    if not lines:
        return ""
    columns = ["model", "mode", "dtype", "batch", "device", "torch", "triton", "compile", "triton x", "compile x"]
    return format_table(lines, columns) + "\n(images/s; ! incorrect, E error, M out of memory, - skipped)"


def kernel_summary(rows: list[dict]) -> str:
    lines = []
    for row in rows:
        if row["kind"] != "kernel":
            continue
        lines.append({"op": row["name"], "shape": row["shape"], "backend": row["backend"], "mode": row["mode"],
                      "dtype": row["dtype"], "status": row["status"],
                      "median us": None if row.get("median_ms") is None else row["median_ms"] * 1e3,
                      "GB/s": row.get("achieved_gbps"), "% copy": row.get("percent_of_copy_bandwidth"),
                      "rel err": None if row.get("rel_error") is None else f"{row['rel_error']:.1e}"})
    if not lines:
        return ""
    return format_table(lines, list(lines[0]))


def status_counts(rows: list[dict]) -> str:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
