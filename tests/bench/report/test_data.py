"""The report's data preparation (bench/report/data.py): flags, speedups, normalization across
GPUs, roofline references and per-run environment warnings, on small hand-made rows."""

from __future__ import annotations

import pandas as pd
import pytest

from bench import results
from bench.report import data
from bench.summary import status_cell
from tests.bench.report.helpers import row


def frame(*rows) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=list(results.COLUMNS) + ["source"])


def prepared(*rows) -> pd.DataFrame:
    return data.prepare(frame(*rows))


# --- flags --------------------------------------------------------------------------------------

def test_a_clean_row_has_no_flag():
    assert data.row_flags(row()) == []


@pytest.mark.parametrize("changes, flag", [
    ({"iqr": 10.0 * data.NOISY_IQR_RATIO * 1.01}, "noisy"),
    ({"samples": data.MIN_SAMPLES - 1}, "noisy"),
    ({"throttle_reasons": ["sw_power_cap"]}, "throttled"),
    ({"sm_clock_mhz_min": 1500, "sm_clock_mhz_max": 1980}, "clocks moved"),
    ({"status": "incorrect"}, "incorrect"),
    ({"status": "oom"}, "oom"),
    ({"status": "error"}, "error"),
    ({"status": "skipped"}, "skipped"),
])
def test_each_flag(changes, flag):
    assert flag in data.row_flags(row(**changes))


def test_thresholds_are_boundaries_not_approximations():
    at_limit = row(iqr=10.0 * data.NOISY_IQR_RATIO)  # exactly the ratio: not noisy
    assert "noisy" not in data.row_flags(at_limit)
    steady = row(sm_clock_mhz_min=1980 * (1 - data.CLOCK_SPREAD_RATIO), sm_clock_mhz_max=1980)
    assert "clocks moved" not in data.row_flags(steady)
    assert data.row_flags(row(throttle_reasons=[])) == []


def test_flags_combine_in_one_order():
    assert data.combine_flags(["noisy"], ["throttled", "incorrect"], ["noisy"]) == ["incorrect", "noisy", "throttled"]


# --- preparation --------------------------------------------------------------------------------

def test_prepare_keeps_the_latest_row_of_a_configuration_per_platform():
    old = row(median=20.0, started="2025-01-01T00:00:00+0000")
    new = row(median=10.0, started="2025-01-02T00:00:00+0000")
    other_gpu = row(median=30.0, env={"device_name": "NVIDIA A100-SXM4-80GB"})
    cpu = row(median=900.0, env={"device_name": "cpu", "cpu": "Xeon"})
    assert len(prepared(new, old, other_gpu, cpu)) == 4
    f = data.latest(prepared(new, old, other_gpu, cpu))
    assert len(f) == 3
    assert sorted(f["platform"]) == ["CPU Xeon", "NVIDIA A100-SXM4-80GB", "NVIDIA H200"]
    assert f[f["platform"] == "NVIDIA H200"]["device_ms"].item() == 10.0
    assert isinstance(f["batch_size"][0], int) and isinstance(f["samples"][0], int)


def test_prepare_takes_quartiles_as_the_timing_does():
    r = row(device_times_ms=[1.0, 2.0, 3.0, 4.0, 100.0], median=3.0)
    f = prepared(r)
    assert (f["q1_ms"][0], f["q3_ms"][0]) == (2.0, 4.0)
    assert data.quartiles([5.0]) == (5.0, 5.0) and data.quartiles(None) == (None, None)


def test_prepare_of_no_rows_is_an_empty_frame_with_the_report_columns():
    f = data.latest(data.prepare(results.load([])))
    assert f.empty and {"platform", "flags", "q1_ms"} <= set(f.columns)
    assert data.model_summary(f) == [] and data.speedups(f) == [] and data.correctness(f) == []
    assert data.across_platforms(f) == ([], None) and data.roofline(f) == ([], {}) and data.environment(f) == []


# --- speedups -----------------------------------------------------------------------------------

def test_speedup_is_torch_time_over_backend_time_and_flags_follow_both_rows():
    f = prepared(row(median=10.0, iqr=2.0), row(backend="triton", median=8.0),
                 row(backend="compile", median=5.0, status="incorrect"))
    by = {p["backend"]: p for p in data.speedups(f)}
    assert by["triton"]["speedup"] == pytest.approx(1.25)
    assert by["triton"]["flags"] == ["noisy"]  # torch's noise makes the ratio noisy too
    assert by["compile"]["speedup"] == pytest.approx(2.0)
    assert by["compile"]["flags"] == ["incorrect", "noisy"]


def test_no_speedup_where_either_side_did_not_measure():
    f = prepared(row(status="error"), row(backend="triton", median=8.0),
                 row(name="vgg16", median=10.0), row(name="vgg16", backend="compile", status="oom"))
    by = {(p["name"], p["backend"]): p for p in data.speedups(f)}
    assert by[("resnet50", "triton")]["speedup"] is None and "error" in by[("resnet50", "triton")]["flags"]
    assert by[("vgg16", "compile")]["speedup"] is None and by[("vgg16", "compile")]["flags"] == ["oom"]


def test_model_summary_matches_the_terminal_summary():
    rows = [row(median=10.0), row(backend="triton", median=8.0, status="incorrect"),
            row(backend="compile", status="skipped")]
    (line,) = data.model_summary(prepared(*rows))
    assert line["triton_speedup"] == pytest.approx(1.25) and line["compile_speedup"] is None
    for backend, r in zip(("torch", "triton", "compile"), rows):
        assert line[f"{backend}_cell"] == status_cell(r)
    assert line["flags"] == ["incorrect", "skipped"]
    assert line["messages"] == ["compile: skipped happened"]


def test_speedups_compare_kernels_per_shape():
    f = prepared(row(kind="kernel", name="bn_relu", mode="train-backward", median=2.0),
                 row(kind="kernel", name="bn_relu", mode="train-backward", backend="triton", median=1.0),
                 row(kind="kernel", name="bn_relu", mode="infer", backend="triton", median=1.0))
    pairs = {p["mode"]: p for p in data.speedups(f)}
    assert pairs["train-backward"]["speedup"] == pytest.approx(2.0)
    assert pairs["infer"]["speedup"] is None  # no torch row of that mode


# --- across platforms ---------------------------------------------------------------------------

def test_normalization_to_the_platform_with_the_most_rows():
    a100 = {"device_name": "NVIDIA A100-SXM4-80GB"}
    f = prepared(row(median=10.0), row(median=20.0, env=a100),
                 row(name="vgg16", median=10.0), row(name="vgg16", median=40.0, env=a100),
                 row(name="alexnet", median=1.0),  # only on the H200: not compared
                 row(name="densenet121", median=1.0), row(name="densenet121", status="error", env=a100))
    entries, reference = data.across_platforms(f)
    assert reference == "NVIDIA A100-SXM4-80GB"  # two shared rows each: the first by name
    by = {(e["name"], e["platform"]): e for e in entries}
    assert set(by) == {("resnet50", "NVIDIA H200"), ("resnet50", "NVIDIA A100-SXM4-80GB"),
                       ("vgg16", "NVIDIA H200"), ("vgg16", "NVIDIA A100-SXM4-80GB")}
    assert by[("resnet50", "NVIDIA H200")]["relative"] == pytest.approx(2.0)
    assert by[("vgg16", "NVIDIA H200")]["relative"] == pytest.approx(4.0)
    assert by[("vgg16", "NVIDIA A100-SXM4-80GB")]["relative"] == pytest.approx(1.0)
    assert by[("vgg16", "NVIDIA H200")]["unit"] == "images/s"
    entries, reference = data.across_platforms(f, reference="NVIDIA H200")
    relative = {(e["name"], e["platform"]): e["relative"] for e in entries}
    assert relative[("resnet50", "NVIDIA A100-SXM4-80GB")] == pytest.approx(0.5)
    assert relative[("vgg16", "NVIDIA A100-SXM4-80GB")] == pytest.approx(0.25)


def test_one_platform_has_nothing_to_compare():
    assert data.across_platforms(prepared(row(), row(backend="triton"))) == ([], None)


def test_kernels_compare_by_bandwidth():
    f = prepared(row(kind="kernel", name="lrn", bytes_moved=10**10),  # 1000 GB/s in 10 ms
                 row(kind="kernel", name="lrn", bytes_moved=3 * 10**10, env={"device_name": "NVIDIA H100 PCIe"}))
    entries, reference = data.across_platforms(f)
    assert reference == "NVIDIA H100 PCIe"  # one shared row each: the first by name
    assert {e["platform"]: e["relative"] for e in entries} == {"NVIDIA H100 PCIe": 1.0,
                                                               "NVIDIA H200": pytest.approx(1 / 3)}
    assert {e["unit"] for e in entries} == {"GB/s"}


# --- roofline -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name, gbps", [
    ("NVIDIA H200", 4800), ("NVIDIA H100 80GB HBM3", 3350), ("NVIDIA H100 PCIe", 2000),
    ("NVIDIA A100-SXM4-80GB", 2039), ("NVIDIA A100-SXM4-40GB", 1555), ("NVIDIA A100 80GB PCIe", 1935),
    ("NVIDIA A100-PCIE-40GB", 1555), ("NVIDIA L40S", 864), ("NVIDIA L4", 300), ("Tesla T4", 320),
    ("cpu", None), ("Some Future GPU", None), (None, None),
])
def test_device_peaks(name, gbps):
    assert data.device_peak(name)[0] == gbps


def test_roofline_references_per_platform():
    kernel = dict(kind="kernel", name="conv2d", bytes_moved=10**9, flops=5 * 10**10)  # 100 GB/s, 5 TFLOP/s
    f = prepared(row(**kernel), row(backend="triton", **kernel, env={"run_id": "r2", "copy_bandwidth_gbps": 4200.0}),
                 row(backend="compile", **{**kernel, "bytes_moved": None}),
                 row(backend="torch", mode="train", status="error", kind="kernel", name="conv2d"),
                 row(env={"device_name": "cpu", "copy_bandwidth_gbps": 6.0}, **kernel))
    rows, references = data.roofline(f)
    assert len(rows) == 3  # the failed row and the one without GB/s are not points
    assert references["NVIDIA H200"] == {"copy_gbps": 4100.0, "peak_gbps": 4800.0,
                                         "peak_tflops": {"fp32": 67, "tf32": 494, "bf16": 989, "fp16": 989}}
    assert references["CPU some cpu"] == {"copy_gbps": 6.0, "peak_gbps": None, "peak_tflops": {}}


# --- correctness and environment ---------------------------------------------------------------

def test_correctness_rows_are_those_checked_against_the_reference():
    f = prepared(row(), row(backend="triton", rel_error=1e-2, tolerance=0.1),
                 row(mode="train", grad_rel_error=3e-3), row(backend="compile", status="error"))
    checked = data.correctness(f)
    assert [(r["backend"], r["mode"], r["fast"]) for r in checked] == [("triton", "infer", True),
                                                                        ("torch", "train", False)]


def test_errors_are_held_to_their_own_tolerance():
    shared = row(backend="triton", mode="train", rel_error=0.01, grad_rel_error=0.05, tolerance=0.1)
    assert data.tolerance_of(shared, "grad_rel_error") == 0.1  # no gradient bound: the output's, as the worker
    assert data.error_ratio(shared) == pytest.approx(0.5)
    own = {**shared, "grad_tolerance": 0.02}
    assert data.tolerance_of(own, "grad_rel_error") == 0.02 and data.error_ratio(own) == pytest.approx(2.5)
    assert data.tolerance_of(row(rel_error=0.01)) is None and data.error_ratio(row(rel_error=0.01)) is None


def test_environment_warns_where_the_gpu_throttled_or_clocks_moved():
    hot = {"run_id": "hot"}
    f = prepared(row(sm_clock_mhz_min=1970, sm_clock_mhz_max=1980, throttle_reasons=[]),
                 row(env=hot, throttle_reasons=["sw_power_cap"], sm_clock_mhz_min=1400, sm_clock_mhz_max=1980),
                 row(env=hot, name="vgg16", throttle_reasons=["sw_power_cap", "hw_slowdown"],
                     sm_clock_mhz_min=1900, sm_clock_mhz_max=1980),
                 row(env={"run_id": "synthetic-x"}))
    runs = {r["run_id"]: r for r in data.environment(f)}
    assert runs["r1"]["warnings"] == [] and not runs["r1"]["synthetic"]
    assert runs["hot"]["throttle_reasons"] == ["hw_slowdown", "sw_power_cap"]
    assert runs["hot"]["warnings"][0] == "GPU throttled: hw_slowdown (1 rows), sw_power_cap (2 rows)"
    assert "1400-1980 MHz" in runs["hot"]["warnings"][1] and "(1 rows moved" in runs["hot"]["warnings"][1]
    assert runs["synthetic-x"]["synthetic"]


def test_data_parallel_rows_stay_out_of_the_one_process_summary_and_speedups():
    f = prepared(row(mode="train"), row(mode="train", backend="triton", median=8.0),
                 row(mode="train", world_size=2), row(mode="train", backend="triton", world_size=2, median=9.0))
    assert [(line["name"], line["mode"]) for line in data.model_summary(f)] == [("resnet50", "train")]
    assert [p["speedup"] for p in data.speedups(f)] == [10.0 / 8.0]
