"""What the harness says about its own ruler: the end-of-run table comparing each kernel row's
device time with Triton's do_bench and do_bench_cudagraph (the device check's ruler check), the
host-bound marks, and the gate comparing device times only when they were taken the same way."""

from __future__ import annotations

import numpy as np

from bench import gate, results, summary
from bench.gate_calibration import synthetic_run


def kernel_row(device_ms, do_bench_ms=None, cudagraph_ms=None, host_ms=None, method="graph") -> dict:
    config = {"kind": "kernel", "name": "conv2d", "shape": "64x64x56x56 k=3x3", "backend": "triton",
              "mode": "infer", "dtype": "bf16", "device": "cuda:0"}
    measurement = {"status": "ok", "device_ms": device_ms, "device_times_ms": [device_ms] * 20, "iqr_ms": 0.001,
                   "samples": 20, "timing_method": method, "host_ms": host_ms, "do_bench_ms": do_bench_ms,
                   "do_bench_cudagraph_ms": cudagraph_ms, "bytes_moved": 51_000_000}
    return results.make_row(config, measurement, {"device_name": "NVIDIA H200", "copy_bandwidth_gbps": 4254.0})


def test_the_ruler_check_counts_rows_within_five_percent_of_do_bench():
    rows = [kernel_row(0.082, do_bench_ms=0.080, cudagraph_ms=0.081), kernel_row(0.235, do_bench_ms=0.082),
            kernel_row(1.0)]  # the last was not cross-checked
    text = summary.ruler_check(rows)
    assert "ruler check: 1 of 2 kernel rows within 5% of triton.testing.do_bench" in text
    assert "1.025" in text and "2.866" in text  # device / do_bench per row
    assert summary.ruler_check([kernel_row(1.0)]) == ""


def test_host_bound_kernel_rows_are_marked_and_their_bandwidth_is_from_device_time():
    slow_host = kernel_row(0.05, host_ms=0.2)
    assert slow_host["host_bound"] is True
    assert slow_host["achieved_gbps"] == 51_000_000 / 0.05e-3 / 1e9
    lines = summary.kernel_summary([slow_host, kernel_row(1.0, host_ms=1.01)]).splitlines()
    column = lines[0].index("host-bound")
    assert [line[column] for line in lines[2:4]] == ["H", "-"]
    assert kernel_row(1.0, host_ms=1.04)["host_bound"] is False  # within the 5% margin


def test_the_gate_compares_device_times_taken_the_same_way_only():
    rng = np.random.default_rng(3)
    baseline = [{**row, "timing_method": "events"} for row in synthetic_run(rng, configs=2)]
    candidate = [{**row, "timing_method": "graph"} for row in baseline[:1]] + baseline[1:]
    result = gate.compare(baseline, candidate)
    differing = [c for c in result.comparisons if "not like for like" in c.reason]
    assert len(differing) == 1 and differing[0].verdict == "inconclusive"
    assert "device time taken by events in the baseline and graph in the candidate" in differing[0].reason
    assert "of device time" in gate.headline(result)
