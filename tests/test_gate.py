"""The regression gate: decision rule, statistics, exit codes and every kind of bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench import gate, results, stats
from bench.gate_calibration import calibrate, synthetic_run
from bench_cli import run_bench


def rows_of(run, **changes):
    return [{**row, **changes} for row in run]


def test_identical_distributions_never_fail_and_a_planted_5_percent_slowdown_is_always_caught():
    # 100 seeds x 40 configurations of 2-5% noise with outliers (README: 1000-seed figures).
    result = calibrate(seeds=100)
    assert result["aa_runs_with_false_alarm"] == 0
    assert result["planted_caught"] == 100


def test_a_slowdown_under_the_threshold_is_significant_but_not_a_regression():
    rng = np.random.default_rng(0)
    baseline = synthetic_run(rng, configs=1)
    candidate = synthetic_run(rng, configs=1, slowdown=0.02)
    (comparison,) = gate.compare(baseline, candidate).comparisons
    assert comparison.verdict == "unchanged" and comparison.reason == "significant but under the threshold"
    assert comparison.change == pytest.approx(1 / 1.02 - 1, abs=0.01)


def test_a_speedup_is_an_improvement_and_exits_zero():
    rng = np.random.default_rng(1)
    baseline = synthetic_run(rng, configs=3)
    candidate = synthetic_run(rng, configs=3, slowdown=-0.2)
    result = gate.compare(baseline, candidate)
    assert [c.key["name"] for c in result.by("improvement")] == ["model0"]
    assert result.exit_code == 0


def test_latency_metric_reports_slowdowns_as_positive():
    rng = np.random.default_rng(2)
    baseline = synthetic_run(rng, configs=1)
    candidate = synthetic_run(rng, configs=1, slowdown=0.3)
    (comparison,) = gate.compare(baseline, candidate, metric="latency").by("regression")
    assert comparison.change == pytest.approx(0.3, abs=0.05)
    assert comparison.interval[0] < 0.3 < comparison.interval[1]


@pytest.mark.parametrize("status, verdict, reason", [
    ("incorrect", "regression", "incorrect: error 0.2"),
    ("error", "regression", "new error: error 0.2"),
    ("oom", "regression", "new oom: error 0.2"),
    ("skipped", "regression", "now skipped: error 0.2"),
])
def test_failures_are_regressions_whatever_the_speed(status, verdict, reason):
    rng = np.random.default_rng(3)
    baseline = synthetic_run(rng, configs=2)
    candidate = synthetic_run(rng, configs=2)
    candidate[1].update(status=status, message="error 0.2")
    result = gate.compare(baseline, candidate)
    (comparison,) = result.by("regression")
    assert (comparison.key["name"], comparison.reason) == ("model1", reason)
    assert result.exit_code == 1


def test_failing_on_both_sides_is_not_new():
    rng = np.random.default_rng(4)
    baseline = rows_of(synthetic_run(rng, configs=1), status="oom", message="out of memory")
    candidate = rows_of(synthetic_run(rng, configs=1), status="oom", message="out of memory")
    result = gate.compare(baseline, candidate)
    assert [c.verdict for c in result.comparisons] == ["failing"] and result.exit_code == 0


def test_a_vanished_configuration_is_a_regression():
    rng = np.random.default_rng(5)
    baseline = synthetic_run(rng, configs=3)
    result = gate.compare(baseline, baseline[:2])
    (comparison,) = result.by("regression")
    assert comparison.reason == "vanished from the candidate" and comparison.key["name"] == "model2"


def test_memory_metric_uses_the_threshold_on_the_peak():
    rng = np.random.default_rng(6)
    baseline = rows_of(synthetic_run(rng, configs=1), peak_memory_bytes=1000)
    assert gate.compare(baseline, rows_of(baseline, peak_memory_bytes=1049), metric="memory").exit_code == 0
    result = gate.compare(baseline, rows_of(baseline, peak_memory_bytes=1100), metric="memory")
    assert result.by("regression")[0].change == pytest.approx(0.1)


def test_too_few_samples_are_inconclusive_not_a_verdict():
    rng = np.random.default_rng(7)
    baseline = synthetic_run(rng, configs=1, samples=2)
    candidate = synthetic_run(rng, configs=1, samples=2, slowdown=0.5)
    (comparison,) = gate.compare(baseline, candidate).comparisons
    assert comparison.verdict == "inconclusive"


@pytest.mark.parametrize("change, message", [
    ({"device_name": "NVIDIA A100"}, "the baseline ran on synthetic GPU and the candidate on NVIDIA A100"),
    ({"torch_version": "2.12.0"}, "torch 2.11 in the baseline, 2.12 in the candidate"),
])
def test_refuses_to_compare_across_gpus_or_major_versions_unless_told(change, message):
    rng = np.random.default_rng(8)
    baseline = rows_of(synthetic_run(rng, configs=2), torch_version="2.11.0+cu130")
    candidate = rows_of(baseline, **change)
    with pytest.raises(gate.GateInputError, match=message + r".*--allow-mismatch"):
        gate.compare(baseline, candidate)
    result = gate.compare(baseline, candidate, allow_mismatch=True)
    assert result.mismatch_notes and result.exit_code == 0


def test_no_common_configuration_is_unusable():
    rng = np.random.default_rng(9)
    baseline = synthetic_run(rng, configs=1)
    with pytest.raises(gate.GateInputError, match="no configuration in common"):
        gate.compare(baseline, rows_of(baseline, dtype="fp32"))


@pytest.mark.parametrize("seed", range(5))
def test_mann_whitney_equals_scipy(seed):
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(1.0, 0.05, 20), 2)  # rounded: ties, as real timings have
    y = np.round(rng.normal(1.02, 0.05, 25), 2)
    expected = scipy_stats.mannwhitneyu(x, y, alternative="greater", method="asymptotic").pvalue
    assert stats.mann_whitney_greater(x, y) == pytest.approx(expected, rel=1e-9)


def test_holm_against_the_textbook_example():
    # Holm (1979) step-down at 0.05 with p sorted 0.005, 0.01, 0.03, 0.04: thresholds
    # 0.05/4, 0.05/3, 0.05/2, 0.05/1 - the first two pass, 0.03 > 0.025 stops.
    assert stats.holm([0.01, 0.04, 0.03, 0.005], alpha=0.05) == [True, False, False, True]


def test_hodges_lehmann_interval_covers_a_known_shift():
    rng = np.random.default_rng(10)
    baseline = np.exp(rng.normal(0, 0.01, 50))
    ratio, low, high = stats.ratio_interval(baseline * 1.05, baseline[rng.permutation(50)])
    assert ratio == pytest.approx(1.05, abs=1e-9) and low <= 1.05 <= high


def write_jsonl(path, rows):
    with results.ResultsWriter(path) as writer:
        for row in rows:
            config = {k: row.get(k) for k in results.CONFIG_COLUMNS}
            measurement = {k: row[k] for k in ("status", "times_ms", "median_ms", "throughput", "message") if k in row}
            writer.write(results.make_row(config, measurement, {"device_name": row["device_name"], "run_id": "x"}))


def gate_cli(*args, cwd=None):
    return run_bench("gate", *args, cwd=cwd)


def test_cli_exit_codes_and_formats(tmp_path):
    rng = np.random.default_rng(11)
    baseline, same, slower = (synthetic_run(rng, configs=3), synthetic_run(rng, configs=3),
                              synthetic_run(rng, configs=3, slowdown=0.25))
    for name, rows in (("base", baseline), ("same", same), ("slower", slower)):
        write_jsonl(tmp_path / f"{name}.jsonl", rows)
    clean = gate_cli("--baseline", tmp_path / "base.jsonl", "--candidate", tmp_path / "same.jsonl")
    assert clean.returncode == 0 and clean.stdout.startswith("PASS: 0 regressions")
    bad = gate_cli("--baseline", tmp_path / "base.jsonl", "--candidate", tmp_path / "slower.jsonl",
                   "--format", "markdown", "--threshold", "5%")
    assert bad.returncode == 1
    assert bad.stdout.startswith("### Benchmark gate: FAIL: 1 regressions")
    assert "| model0 torch infer bf16 bs64 channels_last synthetic GPU | regression | slower |" in bad.stdout
    as_json = gate_cli("--baseline", tmp_path / "base.jsonl", "--candidate", tmp_path / "slower.jsonl",
                       "--format", "json")
    document = json.loads(as_json.stdout)
    assert document["exit_code"] == 1 and document["counts"]["regression"] == 1


@pytest.mark.parametrize("args, message", [
    (["--baseline", "missing.jsonl", "--candidate", "missing.jsonl"], "error: candidate: missing.jsonl: no such results file"),
    (["--candidate", "c.jsonl", "--threshold", "lots"], "expected a percentage such as 5% or a fraction such as 0.05"),
    (["--candidate", "c.jsonl"], "error: no stored baseline for synthetic GPU"),
])
def test_cli_unusable_input_exits_2(tmp_path, args, message):
    write_jsonl(tmp_path / "c.jsonl", synthetic_run(np.random.default_rng(12), configs=1))
    result = gate_cli(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_baseline_save_then_gate_finds_it_by_gpu(tmp_path):
    write_jsonl(tmp_path / "run.jsonl", synthetic_run(np.random.default_rng(13), configs=2))
    saved = run_bench("baseline", "save", "run.jsonl", cwd=tmp_path)
    assert saved.returncode == 0, saved.stderr
    assert (tmp_path / "results" / "baselines" / "synthetic-GPU.jsonl").exists()
    result = gate_cli("--candidate", "run.jsonl", cwd=tmp_path)
    assert result.returncode == 0 and "PASS" in result.stdout
