"""What the report's tests share: the committed sample results, a results row made by hand and a
results file of such rows."""

from __future__ import annotations

import json
from pathlib import Path

from bench import results
from tests import REPO

SAMPLES = REPO / "results" / "samples"

GPU_ENV = {"run_id": "r1", "host": "h1", "device_name": "NVIDIA H200", "copy_bandwidth_gbps": 4000.0,
           "cpu": "some cpu", "sm_clock_max_mhz": 1980}


def row(name="resnet50", backend="torch", mode="infer", status="ok", median=10.0, iqr=0.1, samples=20,
        batch=64, kind="model", env=None, started="2025-01-01T00:00:00+0000", **measurement) -> dict:
    config = {"kind": kind, "name": name, "shape": None if kind == "model" else "64x64x56x56", "backend": backend,
              "mode": mode, "dtype": "bf16", "batch_size": batch, "memory_format": "channels_last",
              "input_size": 224 if kind == "model" else None, "device": "cuda:0"}
    values = {"status": status, "started_at": started}
    if status in ("ok", "incorrect"):
        values.update(device_ms=median, iqr_ms=iqr, samples=samples, device_times_ms=[median] * samples)
        if kind == "model":
            values["throughput"] = batch / (median / 1e3)
    else:
        values["message"] = f"{status} happened"
    values.update(measurement)
    return results.make_row(config, values, {**GPU_ENV, **(env or {})})


def write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path
