"""A run under a budget: the most valuable configurations first, and a clean stop when the time is spent."""

from __future__ import annotations

from bench import estimate, results, suite as suites
from bench.runner import RunOptions, Runner
from tests.bench.helpers import run_bench
from tests.bench.helpers import config

ORDER_CASES = ["a1", "a2", "a3", "b1", "c1", "c2"]


def test_every_family_comes_once_before_any_comes_twice_in_the_suites_order():
    configs = [{"name": name} for name in ORDER_CASES]
    ordered = estimate.order_by_value(configs, lambda c: c["name"][0])
    assert [c["name"] for c in ordered] == ["a1", "b1", "c1", "a2", "c2", "a3"]


def test_ordering_by_value_keeps_every_configuration_and_an_already_ordered_list():
    configs = [{"name": name} for name in ("a1", "b1", "a2", "b2")]
    assert estimate.order_by_value(configs, lambda c: c["name"][0]) == configs
    assert estimate.order_by_value([], lambda c: c) == []


def comparing(name: str, mode: str, backend: str) -> dict:
    return {"kind": "model", "name": name, "mode": mode, "backend": backend}


def test_a_familys_round_is_one_comparison_on_every_backend_kept_together():
    configs = [comparing(name, mode, backend) for name in ("a", "b") for backend in ("torch", "triton", "compile")
               for mode in ("infer", "train")]
    ordered = estimate.order_by_value(configs, lambda c: c["name"])
    assert [(c["name"], c["mode"], c["backend"]) for c in ordered] == [
        (name, mode, backend) for mode in ("infer", "train") for name in ("a", "b")
        for backend in ("torch", "triton", "compile")]


def test_a_budget_reaches_every_familys_backend_comparison_before_any_familys_second():
    suite = suites.load_suite("families")
    configs = suites.expand(suite, device="cuda:0")
    cards = estimate.model_cards_of(configs)
    ordered = estimate.order_by_value(configs, lambda c: estimate.family(c, cards))
    families = {card["family"] for card in cards.values()}
    first_round = ordered[:3 * len(families)]
    assert {(c["mode"], c["dtype"]) for c in first_round} == {("infer", "bf16")}
    assert {cards[c["name"]]["family"] for c in first_round} == families
    assert [c["backend"] for c in first_round] == ["torch", "triton", "compile"] * len(families)
    assert len({estimate.comparison(c) for c in first_round}) == len(families)
    second_round = ordered[3 * len(families):6 * len(families)]
    assert {(c["mode"], c["dtype"]) for c in second_round} == {("train", "bf16")}  # the suite's order
    fitting = estimate.fitting(ordered, cards, 20 * 60)
    assert fitting >= len(first_round)  # --budget 20 answers the backend question for every family


def test_models_are_grouped_by_family_and_kernels_by_op():
    cards = {"resnet50": {"family": "ResNet"}, "resnet18": {"family": "ResNet"}}
    assert estimate.family({"kind": "model", "name": "resnet18"}, cards) == "ResNet"
    assert estimate.family({"kind": "kernel", "name": "lrn"}, cards) == "op lrn"


def run_with_budget(configs, path, budget_s, cost_s):
    lines = []
    options = RunOptions(run_id="test", devices=["cpu"], progress=False, log=lines.append,
                         environments={"cpu": {"device_name": "cpu", "run_id": "test"}},
                         budget_s=budget_s, cost_s=cost_s)
    runner = Runner(configs, path, options)
    return runner.run(), runner.not_run, lines


def test_the_budget_stops_the_run_keeps_finished_rows_and_lists_what_did_not_run(tmp_path):
    path = tmp_path / "r.jsonl"
    configs = [config("succeed", name) for name in ("a", "b", "expensive", "cheap-after")]
    hour = 3600.0
    rows, not_run, log = run_with_budget(configs, path, budget_s=hour,
                                         cost_s=lambda c: 2 * hour if c["name"] == "expensive" else 0.0)
    assert [r["name"] for r in rows] == ["a", "b"]
    assert [r["name"] for r in results.read_rows(path)] == ["a", "b"]
    assert [c["name"] for c in not_run] == ["expensive", "cheap-after"]  # a stop, not a skip
    assert "budget of 60 min spent: 2 configurations not run" in log
    assert [line.split()[3] for line in log if line.startswith("not run (budget)")] == ["expensive", "cheap-after"]


def test_without_a_budget_every_configuration_runs(tmp_path):
    rows, not_run, _ = run_with_budget([config("succeed", "a")], tmp_path / "r.jsonl", budget_s=None,
                                       cost_s=lambda c: 1e9)
    assert [r["name"] for r in rows] == ["a"] and not_run == []


def test_a_spent_budget_exits_0_and_the_summary_and_log_list_what_did_not_run(tmp_path):
    out = tmp_path / "r.jsonl"
    done = run_bench("run", "--suite", "smoke", "--models", "resnet18", "--backends", "torch", "--modes", "infer",
                     "--budget", "0.001", "--out", out, "--no-progress")
    assert done.returncode == 0, done.stderr
    assert "1 configurations not run: the budget of 0.001 min was spent" in done.stdout
    assert "not run (budget) resnet18 torch infer fp32 bs4 channels_last cpu" in done.stdout
    assert "not run (budget) resnet18 torch infer fp32 bs4 channels_last cpu" in out.with_suffix(".log").read_text()
    assert not out.exists() or results.read_rows(out) == []


def test_a_budget_must_be_a_number_of_minutes_above_zero():
    done = run_bench("run", "--budget", "0")
    assert done.returncode == 2
    assert "--budget: expected a number of minutes above 0, got 0" in done.stderr
