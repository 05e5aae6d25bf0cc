"""``run --dry-run``: the expanded matrix and an estimated time, for every suite, without measuring."""

from __future__ import annotations

import re

import pytest

from bench import estimate, runner, suite as suites
from bench.cli import main

SUMMARY = re.compile(r"^suite (\S+): (\d+) configurations, (\d+) torch\.compile builds", re.M)
ESTIMATE = re.compile(r"^estimated ([\d.]+) min on one NVIDIA H200, caches cold: configurations ([\d.]+) min "
                      r"\+ torch\.compile builds ([\d.]+) min \+ worker start ([\d.]+) min", re.M)


def dry_run(capsys, monkeypatch, tmp_path, *args) -> str:
    monkeypatch.chdir(tmp_path)  # a run would write results/runs/ here
    assert main(["run", "--dry-run", "--device", "cpu", *args]) == 0
    assert not (tmp_path / "results").exists()
    return capsys.readouterr().out


@pytest.mark.parametrize("name", suites.list_suites())
def test_every_suite_prints_its_matrix_builds_and_estimate(capsys, monkeypatch, tmp_path, name):
    text = dry_run(capsys, monkeypatch, tmp_path, "--suite", name)
    configs = suites.expand(suites.load_suite(name))
    (summary,) = SUMMARY.findall(text)
    assert summary == (name, str(len(configs)), str(sum(c["backend"] == "compile" for c in configs)))
    total, measuring, compiling, starting = map(float, ESTIMATE.search(text).groups())
    assert total == pytest.approx(measuring + compiling + starting, abs=0.15)
    assert "estimated from measured H200 rows in results/h200/" in text
    assert "this machine has no GPU: the estimate is for the GPU the suites are written for" in text
    assert len([line for line in text.splitlines() if line.startswith(("model ", "kernel "))]) == len(configs)


def test_the_default_suite_fits_in_20_minutes_on_an_h200(capsys, monkeypatch, tmp_path):
    text = dry_run(capsys, monkeypatch, tmp_path, "--suite", "default")
    assert float(ESTIMATE.search(text).group(1)) <= 20


def test_the_estimate_counts_a_compile_build_per_compile_configuration():
    configs = suites.expand(suites.load_suite("smoke"), suites.Overrides(models=["resnet18"]))
    cards = estimate.model_cards_of(configs)
    total = estimate.estimate(configs, cards)
    builds = [c for c in configs if c["backend"] == "compile"]
    assert total.compile_builds == len(builds) == 2
    assert total.compiling_s == sum(estimate.COMPILE_BUILD_S[c["mode"]] for c in builds)
    assert total.measuring_s == pytest.approx(sum(estimate.measuring_s(c, cards) for c in configs))


def test_a_model_step_scales_with_its_work():
    card = {"gmacs": 4.0, "input_size": 224}
    base = {"mode": "infer", "batch_size": 64, "input_size": 224}
    step = estimate.model_step_s(base, card)
    assert estimate.model_step_s({**base, "batch_size": 128}, card) == pytest.approx(2 * step)
    assert estimate.model_step_s({**base, "input_size": 112}, card) == pytest.approx(step / 4)


def test_the_timed_part_is_the_repeats_or_the_minimum_time_whichever_is_longer():
    config = {"warmup": 5, "repeats": 20, "min_time_s": 0.5}
    assert estimate.timed_s(config, 0.001) == pytest.approx(0.005 + 0.5)
    assert estimate.timed_s(config, 0.1) == pytest.approx(0.5 + 2.0)


def test_a_dry_run_starts_no_worker(capsys, monkeypatch, tmp_path):
    def refuse(*args, **kwargs):
        raise AssertionError("a dry run started a run")

    monkeypatch.setattr(runner.Runner, "__init__", refuse)
    monkeypatch.setattr(runner.Runner, "_start", refuse)
    dry_run(capsys, monkeypatch, tmp_path, "--suite", "smoke")


def test_a_dry_run_with_a_budget_orders_by_family_and_says_how_many_configurations_fit(capsys, monkeypatch,
                                                                                       tmp_path):
    text = dry_run(capsys, monkeypatch, tmp_path, "--suite", "full", "--budget", "60")
    configs = suites.expand(suites.load_suite("full"))
    cards = estimate.model_cards_of(configs)
    ordered = estimate.order_by_value(configs, lambda c: estimate.family(c, cards))
    count = estimate.fitting(ordered, cards, 3600)
    assert 0 < count < len(configs)
    assert f"with --budget 60: the first {count} configurations in the order above fit, " \
           f"{len(configs) - count} would not run" in text
    names = [line.split()[1] for line in text.splitlines() if line.startswith("model ")]
    families = {cards[name]["family"] for name in cards}
    assert {cards[name]["family"] for name in names[:len(families)]} == families  # every family once first


def test_the_configurations_that_fit_are_those_whose_estimates_end_within_the_budget():
    configs = suites.expand(suites.load_suite("smoke"))
    cards = estimate.model_cards_of(configs)
    costs = [estimate.config_s(c, cards) for c in configs]
    start = estimate.WORKER_START_S
    assert estimate.fitting(configs, cards, start + costs[0] + costs[1]) == 2
    assert estimate.fitting(configs, cards, start + costs[0] + costs[1] - 0.01) == 1
    assert estimate.fitting(configs, cards, start) == 0
    assert estimate.fitting(configs, cards, 1e9) == len(configs)
