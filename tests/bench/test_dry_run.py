"""``run --dry-run``: the expanded matrix and an estimated time, for every suite, without measuring."""

from __future__ import annotations

import inspect
import re

import pytest

from bench import estimate, runner, suite as suites, timing
from bench.cli import main

SUMMARY = re.compile(r"^suite (\S+): (\d+) configurations, (\d+) torch\.compile builds", re.M)
ESTIMATE = re.compile(r"^estimated ([\d.]+) min on one NVIDIA H200, caches cold: configurations ([\d.]+) min "
                      r"\+ torch\.compile builds ([\d.]+) min \+ worker start ([\d.]+) min", re.M)
WORST = re.compile(r"^expected: every configuration's timing stops at its first check \(the median known within "
                   r"1%\); worst case ([\d.]+) min: every one timed to its cap \(max_time_s ([^)]+)\); "
                   r"a budget is charged the expected figure$", re.M)
# Issue 14's limits on the estimate, in minutes.
TARGET_MIN = {"default": 20, "device-check": 8}


def dry_run(capsys, monkeypatch, tmp_path, *args) -> str:
    monkeypatch.chdir(tmp_path)  # a run would write results/runs/ here
    assert main(["run", "--dry-run", "--device", "cpu", *args]) == 0
    assert not (tmp_path / "results").exists()
    return capsys.readouterr().out


def totals(text: str) -> dict:
    (suite, configurations, builds), = SUMMARY.findall(text)
    total, measuring, compiling, starting = map(float, ESTIMATE.search(text).groups())
    worst, caps = WORST.search(text).groups()
    return {"suite": suite, "configurations": int(configurations), "builds": int(builds), "expected_min": total,
            "parts_min": measuring + compiling + starting, "worst_min": float(worst), "caps": caps}


def test_every_suite_prints_its_matrix_builds_and_expected_and_worst_estimates(capsys, monkeypatch, tmp_path):
    listed = {}
    for name in suites.list_suites():
        text = dry_run(capsys, monkeypatch, tmp_path, "--suite", name)
        configs = suites.expand(suites.load_suite(name))
        listed[name] = found = totals(text)
        assert (found["suite"], found["configurations"], found["builds"]) == (
            name, len(configs), sum(c["backend"] == "compile" for c in configs))
        assert found["expected_min"] == pytest.approx(found["parts_min"], abs=0.15)
        assert found["expected_min"] <= found["worst_min"]
        assert found["caps"] == "10 s"  # a GPU's cap, though expanded on this CPU
        assert "estimated from measured H200 rows in results/h200/" in text
        assert "this machine has no GPU: the estimate is for the GPU the suites are written for" in text
        assert len([line for line in text.splitlines() if line.startswith(("model ", "kernel "))]) == len(configs)
    assert {"smoke", "default", "device-check", "families", "full", "kernels"} <= set(listed)


@pytest.mark.parametrize("name", sorted(TARGET_MIN))
def test_the_suites_issue_14_bounds_are_estimated_within_them(capsys, monkeypatch, tmp_path, name):
    assert totals(dry_run(capsys, monkeypatch, tmp_path, "--suite", name))["expected_min"] <= TARGET_MIN[name]


def test_the_estimate_counts_a_compile_build_per_compile_configuration():
    configs = suites.expand(suites.load_suite("smoke"), suites.Overrides(models=["resnet18"]))
    cards = estimate.model_cards_of(configs)
    total = estimate.estimate(configs, cards)
    builds = [c for c in configs if c["backend"] == "compile"]
    assert total.compile_builds == len(builds) == 2
    assert total.compiling_s == sum(estimate.COMPILE_BUILD_S[c["mode"]] for c in builds)
    assert total.measuring_s == pytest.approx(sum(estimate.measuring_s(c, cards) for c in configs))
    assert total.worst_measuring_s == pytest.approx(sum(estimate.measuring_s(c, cards, worst=True) for c in configs))
    assert total.worst_total_s - total.total_s == pytest.approx(total.worst_measuring_s - total.measuring_s)


def test_a_model_step_scales_with_its_work():
    card = {"gmacs": 4.0, "input_size": 224}
    base = {"mode": "infer", "batch_size": 64, "input_size": 224}
    step = estimate.model_step_s(base, card)
    assert estimate.model_step_s({**base, "batch_size": 128}, card) == pytest.approx(2 * step)
    assert estimate.model_step_s({**base, "input_size": 112}, card) == pytest.approx(step / 4)


TIMING = {"warmup": 5, "repeats": 20, "min_time_s": 0.5, "max_time_s": 10.0}


def test_the_shortest_timed_phase_is_the_repeats_or_the_minimum_time_in_whole_batches():
    assert estimate.shortest_timed_s(TIMING, 0.001) == pytest.approx(0.5)  # 25 batches of 20 ms
    assert estimate.shortest_timed_s(TIMING, 0.1) == pytest.approx(2.0)  # one batch passes 0.5 s
    assert estimate.shortest_timed_s(TIMING, 0.015) == pytest.approx(0.6)  # 2 batches of 0.3 s
    assert estimate.shortest_timed_s({**TIMING, "min_time_s": 0.0}, 0.001) == pytest.approx(0.02)


def test_the_longest_timed_phase_runs_to_the_cap_and_at_most_one_batch_past_it():
    assert estimate.longest_timed_s(TIMING, 0.001) == pytest.approx(10.0)
    assert estimate.longest_timed_s(TIMING, 0.15) == pytest.approx(12.0)  # 4 batches of 3 s
    assert 10.0 <= estimate.longest_timed_s(TIMING, 0.15) < 10.0 + 20 * 0.15
    assert estimate.longest_timed_s(TIMING, 0.0001) == pytest.approx(1.0)  # MAX_REPEATS end it first
    no_cap = {**TIMING, "max_time_s": 0.0}
    assert estimate.longest_timed_s(no_cap, 0.001) == estimate.shortest_timed_s(no_cap, 0.001)


def test_a_configuration_is_expected_to_converge_and_charged_so_and_its_worst_case_is_its_cap():
    config = {**TIMING, "kind": "kernel", "backend": "triton", "mode": "infer"}
    step = estimate.KERNEL_STEP_S
    around = estimate.untimed_s(config, step) + estimate.KERNEL_FIXED_S["triton"]["infer"]
    assert estimate.config_s(config, {}) == pytest.approx(around + estimate.shortest_timed_s(config, step))
    assert estimate.config_s(config, {}, worst=True) == pytest.approx(around + estimate.longest_timed_s(config, step))
    configs = [config]
    assert estimate.fitting(configs, {}, estimate.WORKER_START_S + estimate.config_s(config, {})) == 1


def test_around_the_timed_phase_come_warm_up_the_host_time_and_where_asked_the_cross_check():
    kernel = {**TIMING, "kind": "kernel"}
    warm_up = estimate.WARMUP_MIN_S  # 5 calls of 1 ms are shorter than the minimum warm-up
    host = estimate.HOST_BLOCKS * estimate.HOST_BLOCK_S  # 3 calls of 1 ms are shorter than a block
    assert estimate.untimed_s(kernel, 0.001) == pytest.approx(warm_up + host)
    assert estimate.untimed_s({**kernel, "cross_check": True}, 0.001) == pytest.approx(
        warm_up + host + estimate.CROSS_CHECK_S)
    model = {**TIMING, "kind": "model", "cross_check": True}  # the cross-check times kernels only
    assert estimate.untimed_s(model, 0.1) == pytest.approx(5 * 0.1 + estimate.HOST_BLOCKS * 3 * 0.1)


def test_the_estimates_copies_of_the_timers_rules_agree_with_it():
    assert (estimate.WARMUP_MIN_CALLS, estimate.WARMUP_MIN_S) == (timing.WARMUP_MIN_CALLS, timing.WARMUP_MIN_S)
    assert estimate.MAX_REPEATS == inspect.signature(timing.time_function).parameters["max_repeats"].default
    assert (estimate.HOST_BLOCKS, estimate.HOST_BLOCK_S) == (timing.HOST_BLOCKS, timing.HOST_BLOCK_S)


def test_configurations_expanded_on_a_cpu_are_estimated_with_the_gpus_time_cap():
    toy = {"name": "toy", "matrix": [{"kind": "model", "models": ["resnet18"], "backends": ["torch"],
                                      "modes": ["infer"], "dtypes": ["fp32"], "batch_sizes": [1]}]}
    (on_cpu,) = suites.expand(toy, device="cpu")
    (on_gpu,) = suites.expand(toy, device="cuda:0")
    assert on_cpu["max_time_s"] == 0.0
    assert estimate.as_on_the_gpu([on_cpu], toy) == [{**on_cpu, "max_time_s": on_gpu["max_time_s"]}]
    capped = {**toy, "timing": {"max_time_s": 2.5}}
    assert estimate.as_on_the_gpu(suites.expand(capped, device="cpu"), capped)[0]["max_time_s"] == 2.5
    assert estimate.as_on_the_gpu([on_gpu], toy) == [on_gpu]


def test_a_dry_run_starts_no_worker(capsys, monkeypatch, tmp_path):
    def refuse(*args, **kwargs):
        raise AssertionError("a dry run started a run")

    monkeypatch.setattr(runner.Runner, "__init__", refuse)
    monkeypatch.setattr(runner.Runner, "_start", refuse)
    dry_run(capsys, monkeypatch, tmp_path, "--suite", "smoke")


def test_a_dry_run_with_a_budget_orders_by_family_and_says_how_many_configurations_fit(capsys, monkeypatch,
                                                                                       tmp_path):
    text = dry_run(capsys, monkeypatch, tmp_path, "--suite", "full", "--budget", "60")
    configs = estimate.as_on_the_gpu(suites.expand(suites.load_suite("full")), suites.load_suite("full"))
    cards = estimate.model_cards_of(configs)
    ordered = estimate.order_by_value(configs, lambda c: estimate.family(c, cards))
    count = estimate.fitting(ordered, cards, 3600)
    assert 0 < count < len(configs)
    assert f"with --budget 60: the first {count} configurations in the order above fit, " \
           f"{len(configs) - count} would not run" in text
    lines = [line.split() for line in text.splitlines() if line.startswith("model ")]
    families = {cards[name]["family"] for name in cards}
    first_round = lines[:3 * len(families)]  # one comparison of the three backends a family
    assert {cards[line[1]]["family"] for line in first_round} == families
    assert [line[2] for line in first_round] == ["torch", "triton", "compile"] * len(families)


def test_the_configurations_that_fit_are_those_whose_estimates_end_within_the_budget():
    configs = suites.expand(suites.load_suite("smoke"))
    cards = estimate.model_cards_of(configs)
    costs = [estimate.config_s(c, cards) for c in configs]
    start = estimate.WORKER_START_S
    assert estimate.fitting(configs, cards, start + costs[0] + costs[1]) == 2
    assert estimate.fitting(configs, cards, start + costs[0] + costs[1] - 0.01) == 1
    assert estimate.fitting(configs, cards, start) == 0
    assert estimate.fitting(configs, cards, 1e9) == len(configs)
