"""The regression gate: decision rule, power, exit codes and every kind of bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from bench import gate, results, stats
from bench.gate_calibration import calibrate, reach, synthetic_run
from tests import REPO
from tests.bench.helpers import run_bench


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


def write_jsonl(path, rows):
    with results.ResultsWriter(path) as writer:
        for row in rows:
            config = {k: row.get(k) for k in results.CONFIG_COLUMNS}
            measurement = {k: row[k] for k in ("status", "device_times_ms", "device_ms", "throughput", "message") if k in row}
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
    (["--candidate", "c.jsonl", "--threshold", "lots"], "threshold must lie in (0, 10), such as 0.05 (5%); got 'lots'"),
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


# --- power: a gate that cannot see a slowdown says so -------------------------------------------

def slowed(run, factor):
    """The same run with every configuration ``factor`` times slower."""
    return [{**row, "device_times_ms": [t * factor for t in row["device_times_ms"]], "device_ms": row["device_ms"] * factor,
             "throughput": row["throughput"] / factor} for row in run]


def test_smallest_p_value_is_complete_separation_under_the_gates_own_test():
    # 5 vs 5: the normal approximation's floor (the exact test's is 1/252 = 0.004); 20 vs 20: the
    # p-value the README's real comparison shows for a complete slowdown.
    assert stats.smallest_p_value(5, 5) == pytest.approx(6.09e-3, rel=1e-2)
    assert stats.smallest_p_value(20, 20) == pytest.approx(3.40e-8, rel=1e-2)
    assert stats.smallest_p_value(5, 5) == stats.mann_whitney_greater([10, 11, 12, 13, 14], [1, 2, 3, 4, 5])
    assert stats.smallest_p_value(0, 5) == 1.0
    assert [stats.repetitions_needed(level) for level in (0.001, 0.001 / 14, 0.001 / 840)] == [8, 11, 16]


def test_a_tenfold_slowdown_at_5_repetitions_is_inconclusive_not_unchanged():
    # 5 vs 5 can reach p = 6.1e-3 at best; Holm over 3 comparisons needs 3.3e-4: no slowdown,
    # however large, can be significant, so none may be called unchanged.
    rng = np.random.default_rng(14)
    baseline = synthetic_run(rng, configs=3, samples=5)
    result = gate.compare(baseline, slowed(baseline, 10))
    assert [c.verdict for c in result.comparisons] == ["inconclusive"] * 3
    assert {c.reason for c in result.comparisons} == {
        "needs ≥ 9 repetitions per side at alpha 0.001 (p ≤ 3.3e-04 = 0.001 / 3 by Holm; has 5 and 5)"}
    assert result.exit_code == 2
    assert gate.headline(result).startswith("INCONCLUSIVE: 0 regressions")
    assert "--repeats 9" in result.advice and "--benchmark-min-rounds 9" in result.advice


def test_enough_repetitions_catch_the_same_slowdown():
    rng = np.random.default_rng(14)
    baseline = synthetic_run(rng, configs=3, samples=9)
    result = gate.compare(baseline, slowed(baseline, 10))
    assert [c.verdict for c in result.comparisons] == ["regression"] * 3 and result.exit_code == 1


def test_too_few_samples_on_some_configurations_leave_the_rest_decided():
    rng = np.random.default_rng(15)
    baseline = synthetic_run(rng, configs=3)
    candidate = synthetic_run(rng, configs=3)
    candidate[2]["device_times_ms"] = candidate[2]["device_times_ms"][:5]
    result = gate.compare(baseline, candidate)
    assert [c.verdict for c in result.comparisons] == ["unchanged", "unchanged", "inconclusive"]
    assert result.comparisons[2].reason.startswith("needs ≥ 9 repetitions per side at alpha 0.001")
    assert result.exit_code == 0 and result.advice is None


@pytest.mark.parametrize("factor, verdict", [(1, "unchanged"), (10, "regression")])
def test_the_level_a_comparison_needs_is_holms_after_the_rejections_before_it(factor, verdict):
    # Two configurations 10x slower at 20 repetitions are rejected first; Holm then tests the
    # third at alpha / 1, which 8 vs 8 can reach (4.7e-4) though alpha / 3 (3.3e-4) is out of
    # reach: it is decided, not inconclusive.
    rng = np.random.default_rng(16)
    baseline = synthetic_run(rng, configs=3)
    baseline[2]["device_times_ms"] = baseline[2]["device_times_ms"][:8]
    candidate = slowed(baseline[:2], 10) + slowed(baseline[2:], factor)
    result = gate.compare(baseline, candidate)
    assert [c.verdict for c in result.comparisons] == ["regression", "regression", verdict]


def test_an_all_inconclusive_gate_exits_2_and_says_what_to_change(tmp_path):
    rng = np.random.default_rng(17)
    baseline = synthetic_run(rng, configs=3, samples=5)
    write_jsonl(tmp_path / "base.jsonl", baseline)
    write_jsonl(tmp_path / "slower.jsonl", slowed(baseline, 10))
    result = gate_cli("--baseline", tmp_path / "base.jsonl", "--candidate", tmp_path / "slower.jsonl")
    assert result.returncode == 2
    assert result.stdout.startswith("INCONCLUSIVE: 0 regressions, 0 improvements, 0 unchanged")
    assert "unchanged" not in result.stdout.split("\n", 1)[1]
    assert "--repeats 9" in result.stderr and "--benchmark-min-rounds 9" in result.stderr


@pytest.mark.parametrize("extra, verdict", [(0, "regression"), (1, "inconclusive")])
def test_the_largest_suite_the_reach_table_states_is_where_the_gate_stops_being_able_to_fail(extra, verdict):
    (row,) = reach(repetitions=[12])
    assert row == {"repetitions": 12, "smallest_p": stats.smallest_p_value(12, 12), "largest_suite": 54}
    baseline = synthetic_run(np.random.default_rng(20), configs=row["largest_suite"] + extra, samples=12)
    candidate = slowed(baseline[:1], 10) + baseline[1:]
    assert gate.compare(baseline, candidate).comparisons[0].verdict == verdict


def test_the_readme_states_the_reach_that_the_gate_has():
    lines = (REPO / "README.md").read_text().splitlines()
    start = lines.index("| repetitions per side | smallest p | largest suite it can fail at alpha 0.001 |") + 2
    stated = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        stated.append([cell.strip() for cell in line.strip("|").split("|")])
    computed = {row["repetitions"]: row for row in reach()}
    assert stated and all(int(n) in computed for n, _, _ in stated)
    for n, smallest, largest in stated:
        row = computed[int(n)]
        assert smallest == f"{row['smallest_p']:.1e}"
        assert largest == (f"{row['largest_suite']:,}" if row["largest_suite"] else "none: no slowdown can fail it")


def test_the_pytest_benchmark_path_records_enough_rounds_for_the_gate_to_fail(tmp_path):
    # benchmarks/conftest.py as the plugin of a one-benchmark file whose time budget (1 us) every
    # round exceeds: the minimum rounds are all it records (pytest-benchmark's own minimum: 5).
    (tmp_path / "test_one.py").write_text("def test_one(benchmark):\n    benchmark(sum, range(1000))\n")
    # without the xdist worker's variables: pytest-benchmark writes no JSON from a worker
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")},
           "PYTHONPATH": os.pathsep.join([str(REPO / "benchmarks"), str(REPO)])}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "conftest",
                          "test_one.py", "--benchmark-max-time=0.000001", "--benchmark-json=base.json",
                          "--benchmark-save-data"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    document = json.loads((tmp_path / "base.json").read_text())
    (stats_of_run,) = [b["stats"] for b in document["benchmarks"]]
    assert len(stats_of_run["data"]) >= 20
    for key in ("data", "median"):
        stats_of_run[key] = np.multiply(stats_of_run[key], 10).tolist()
    (tmp_path / "slower.json").write_text(json.dumps(document))
    result = gate.compare(results.load_rows(tmp_path / "base.json"), results.load_rows(tmp_path / "slower.json"))
    assert [c.verdict for c in result.comparisons] == ["regression"] and result.exit_code == 1


# --- arguments ----------------------------------------------------------------------------------

@pytest.mark.parametrize("options, message", [
    ({"alpha": 5}, "alpha must lie in (0, 0.5), such as 0.001; got 5"),
    ({"alpha": 0}, "alpha must lie in (0, 0.5), such as 0.001; got 0"),
    ({"alpha": 0.5}, "alpha must lie in (0, 0.5), such as 0.001; got 0.5"),
    ({"alpha": float("nan")}, "alpha must lie in (0, 0.5), such as 0.001; got nan"),
    ({"threshold": 0}, "threshold must lie in (0, 10), such as 0.05 (5%); got 0"),
    ({"threshold": 10}, "threshold must lie in (0, 10), such as 0.05 (5%); got 10"),
    ({"threshold": -0.05}, "threshold must lie in (0, 10), such as 0.05 (5%); got -0.05"),
])
def test_alpha_and_threshold_out_of_range_are_refused(options, message):
    run = synthetic_run(np.random.default_rng(18), configs=1)
    with pytest.raises(gate.GateInputError) as error:
        gate.compare(run, run, **options)
    assert str(error.value) == message


def test_argument_types_read_percentages_and_fractions():
    assert gate.parse_threshold("5%") == pytest.approx(0.05) and gate.parse_threshold("0.03") == 0.03
    assert gate.parse_alpha("0.01") == 0.01


@pytest.mark.parametrize("args, message", [
    (["--alpha", "5"], "argument --alpha: alpha must lie in (0, 0.5), such as 0.001; got '5'"),
    (["--alpha", "often"], "argument --alpha: alpha must lie in (0, 0.5), such as 0.001; got 'often'"),
    (["--threshold", "1000%"], "argument --threshold: threshold must lie in (0, 10), such as 0.05 (5%); got '1000%'"),
    (["--threshold", "0"], "argument --threshold: threshold must lie in (0, 10), such as 0.05 (5%); got '0'"),
])
def test_cli_refuses_alpha_and_threshold_out_of_range(tmp_path, args, message):
    result = gate_cli("--candidate", "c.jsonl", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].startswith(f"python -m bench gate: error: {message}")


# --- markdown -----------------------------------------------------------------------------------

def test_markdown_escapes_html_pipes_and_newlines_from_results():
    rng = np.random.default_rng(19)
    baseline = synthetic_run(rng, configs=2)
    candidate = rows_of(baseline)
    candidate[1].update(status="incorrect", message="<script>alert(1)</script> a|b\nsecond line",
                        name="<b>model1</b>")
    baseline[1]["name"] = "<b>model1</b>"
    text = gate.render(gate.compare(baseline, candidate), "markdown")
    assert "<script>" not in text and "<b>" not in text
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert len(table) == 3  # header, rule, the one regression: the newline did not split the row
    unescaped_pipes = [line.replace("\\|", "").count("|") for line in table]
    assert unescaped_pipes == [len(gate.COLUMNS) + 1] * 3
    assert ("| &lt;b&gt;model1&lt;/b&gt; torch infer bf16 bs64 channels_last synthetic GPU | regression | "
            "incorrect: &lt;script&gt;alert(1)&lt;/script&gt; a\\|b<br>second line |") in text


# --- the example CI workflow ------------------------------------------------------------------

def load_workflow() -> dict:
    import yaml  # PyYAML: in the test extra

    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "bench.yml").read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads the key `on` as true
    return workflow


def test_ci_workflow_runs_only_on_pushes_to_main_and_pull_requests_from_this_repository():
    workflow = load_workflow()
    assert set(workflow["on"]) == {"push", "pull_request"}
    assert workflow["on"]["push"] == {"branches": ["main"]}
    for name, job in workflow["jobs"].items():
        condition = " ".join(job["if"].split())
        # a fork's pull request must never reach the self-hosted runner
        assert condition == ("github.event_name == 'push' || "
                             "github.event.pull_request.head.repo.full_name == github.repository"), name


def test_ci_workflow_gates_against_the_base_branchs_baseline():
    (job,) = load_workflow()["jobs"].values()
    steps = job["steps"]
    checkouts = [s for s in steps if s.get("uses", "").startswith("actions/checkout@")]
    base = [s for s in checkouts if s.get("with", {}).get("path") == "base"]
    assert len(base) == 1 and base[0]["with"]["ref"] == "${{ github.base_ref || github.sha }}"
    assert base[0]["with"]["sparse-checkout"] == "results/baselines"
    (gate_step,) = [s for s in steps if "bench gate" in s.get("run", "")]
    # the gate's default baseline is results/baselines/<GPU>.jsonl under its working directory:
    # the base branch's checkout; -P keeps the pull request's installed bench, not base/bench
    assert gate_step["working-directory"] == "base"
    assert "python -P -m bench gate" in gate_step["run"] and "--baseline" not in gate_step["run"]
