"""The timer's rules (bench/timing.py): when repetitions stop (the median's 95% confidence interval
within 1%, or the time cap), a quiet timed region (no garbage collection, nothing sampled during
a timed batch) and warm-up by time. A fake clock that only the measured function moves makes
every timed repetition's length known exactly, so no assertion depends on how fast this machine
is. The GPU paths are in test_device_timing.py."""

from __future__ import annotations

import gc
import itertools
import math
import random

import pytest
import torch

from bench import timing
from tests.bench.helpers import FakeClock
from bench.report import data

CPU = torch.device("cpu")


def advancing(clock: FakeClock, durations_ms):
    """A measured function whose calls take ``durations_ms`` in turn (repeated when a list)."""
    cycle = itertools.cycle(durations_ms) if isinstance(durations_ms, list) else durations_ms

    def fn():
        clock.now += next(cycle) / 1e3

    return fn


QUIET_MS = [2.0, 2.002, 1.998, 2.001, 1.999]  # within 0.1% of 2 ms


def noisy_ms():
    """Calls of 1 to 3 ms, none the same: the median of n is known to about +-1/sqrt(n)."""
    generator = random.Random(14)
    while True:
        yield generator.uniform(1.0, 3.0)


def noisy_list(n: int) -> list[float]:
    return list(itertools.islice(noisy_ms(), n))


# --- the confidence interval of the median -------------------------------------------------

def test_the_interval_of_the_median_is_between_order_statistics():
    # n = 8: ranks floor(4 - 1.96*sqrt(8)/2) = 1 and ceil(5 + 1.96*sqrt(8)/2) = 8, so min and max
    assert timing.median_ci_rel([1, 2, 3, 4, 5, 6, 7, 8]) == pytest.approx(3.5 / 4.5)
    # n = 100: ranks 40 and 61 of 1..100, around the median 50.5
    assert timing.median_ci_rel(list(range(1, 101))) == pytest.approx(max(50.5 - 40, 61 - 50.5) / 50.5)
    # an outlier does not widen it
    assert timing.median_ci_rel([2.0] * 99 + [1000.0]) == 0.0


def test_too_few_samples_bound_nothing():
    assert timing.median_ci_rel([2.0] * 7) == math.inf
    assert timing.summarize([2.0] * 7)["ci_rel"] is None
    assert timing.summarize([2.0] * 8)["ci_rel"] == 0.0


def test_the_interval_tells_quiet_from_noisy():
    assert timing.median_ci_rel(QUIET_MS * 4) <= timing.TARGET_CI_REL < timing.median_ci_rel(noisy_list(140))


@pytest.mark.parametrize("n, elapsed, kwargs, stop", [
    (10, 0.1, {"repeats": 20}, False),  # below the minimum count
    (20, 0.1, {"min_time_s": 0.5}, False),  # below the minimum time
    (20, 0.6, {"min_time_s": 0.5}, True),  # quiet once the minimums are met
    (10_000, 0.1, {"repeats": 20_000, "min_time_s": 9.0}, True),  # max_repeats ends it
])
def test_enough_on_quiet_samples(n, elapsed, kwargs, stop):
    settings = {"repeats": 20, "min_time_s": 0.0, "max_time_s": 10.0, "max_repeats": 10_000, **kwargs}
    assert timing.enough([2.0] * n, elapsed, **settings) is stop


def test_enough_on_noisy_samples_only_at_the_cap():
    settings = {"repeats": 20, "min_time_s": 0.0, "max_time_s": 10.0, "max_repeats": 10_000}
    noisy = noisy_list(70)
    assert not timing.enough(noisy, 9.9, **settings)
    assert timing.enough(noisy, 10.0, **settings)


# --- the stopping rule, as the timer runs it -------------------------------------------------

def test_quiet_samples_stop_at_the_minimum(clock):
    result = timing.time_function(advancing(clock, QUIET_MS), CPU, warmup=1, repeats=10, max_time_s=10.0)
    assert result["samples"] == 10
    assert result["ci_rel"] <= timing.TARGET_CI_REL
    assert data.row_flags({"status": "ok", **result}) == []


def test_noisy_samples_run_to_the_cap_and_are_flagged(clock):
    result = timing.time_function(advancing(clock, noisy_ms()), CPU, warmup=1, repeats=10, max_time_s=1.0)
    timed_s = sum(result["device_times_ms"]) / 1e3
    assert 1.0 <= timed_s < 1.0 + 10 * 3.0 / 1e3  # the cap is checked between batches of 10
    assert result["samples"] % 10 == 0 and result["samples"] > 10
    assert result["ci_rel"] > timing.TARGET_CI_REL
    assert "noisy" in data.row_flags({"status": "ok", **result})


def test_moderate_noise_stops_once_the_median_is_known_before_the_cap(clock):
    # +-5%: 20 samples leave the interval wider than 1%, a few hundred do not
    spread = [2.0 * (1 + 0.05 * math.sin(i)) for i in range(97)]
    result = timing.time_function(advancing(clock, spread), CPU, warmup=0, repeats=20, max_time_s=60.0)
    assert 20 < result["samples"] and sum(result["device_times_ms"]) / 1e3 < 60.0
    assert result["ci_rel"] <= timing.TARGET_CI_REL


def test_no_cap_keeps_todays_count(clock):
    result = timing.time_function(advancing(clock, noisy_ms()), CPU, warmup=0, repeats=12)
    assert result["samples"] == 12 and result["ci_rel"] > timing.TARGET_CI_REL


def test_the_report_flags_a_wide_interval_and_agrees_with_the_timer():
    assert data.NOISY_CI_REL == timing.TARGET_CI_REL
    row = {"status": "ok", "device_ms": 2.0, "iqr_ms": 0.0, "samples": 100}
    assert "noisy" in data.row_flags({**row, "ci_rel": 0.02})
    assert data.row_flags({**row, "ci_rel": 0.005}) == []
    assert data.row_flags({**row, "ci_rel": None}) == []  # a row from before ci_rel: the IQR rule alone


# --- a quiet timed region ----------------------------------------------------------------------

def test_garbage_collection_is_off_while_timing_and_back_on_after(clock):
    seen = []

    def fn():
        seen.append(gc.isenabled())
        clock.now += 0.01

    assert gc.isenabled()
    timing.time_function(fn, CPU, warmup=2, repeats=3)
    assert seen and not any(seen)
    assert gc.isenabled()


def test_garbage_collection_is_back_on_after_an_error(clock):
    def fn():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        timing.time_function(fn, CPU, warmup=1, repeats=3)
    assert gc.isenabled()


def test_garbage_collection_left_off_stays_off(clock):
    gc.disable()
    try:
        timing.time_function(advancing(clock, [1.0]), CPU, warmup=0, repeats=3)
        assert not gc.isenabled()
    finally:
        gc.enable()


class Sampler:
    """Records, for each sample, whether a measured call was running."""

    def __init__(self) -> None:
        self.running = False
        self.during_a_call: list[bool] = []

    def __call__(self) -> None:
        self.during_a_call.append(self.running)

    def measured(self, clock: FakeClock, duration_ms: float):
        def fn():
            self.running = True
            clock.now += duration_ms / 1e3
            self.running = False  # a CUDA call returns at once: see the GPU test for the batch's end

        return fn


def test_the_sampler_runs_between_timed_batches_never_during_one(clock):
    sampler = Sampler()
    with timing.between_batches(sampler):
        result = timing.time_function(sampler.measured(clock, 1.0), CPU, warmup=0, repeats=4, min_time_s=0.016)
    assert result["samples"] == 16  # four batches of four
    assert sampler.during_a_call == [False] * 5  # before each batch and after the last
    assert timing.BETWEEN_BATCHES == []


# --- warm-up by time -----------------------------------------------------------------------------

def count_warmup_calls(clock: FakeClock, warmup: int, duration_ms: float) -> int:
    calls, phases = [], []

    def fn():
        calls.append(phases[-1])
        clock.now += duration_ms / 1e3

    timing.time_function(fn, CPU, warmup=warmup, repeats=1, on_phase=phases.append)
    return calls.count("warming up")


@pytest.mark.parametrize("warmup, duration_ms, calls", [
    (0, 1.0, 25),  # 25 ms of 1 ms calls
    (0, 100.0, 3),  # three calls however long
    (10, 100.0, 10),  # the configured count when it is more
    (5, 2.0, 13),  # 25 ms when the count passes sooner
])
def test_warmup_lasts_three_calls_and_25_ms_at_least(clock, warmup, duration_ms, calls):
    assert count_warmup_calls(clock, warmup, duration_ms) == calls


# --- the cap's defaults ------------------------------------------------------------------------

def test_the_cap_is_ten_seconds_on_a_gpu_and_none_past_the_minimum_on_a_cpu():
    from bench import suite

    toy = {"name": "toy", "matrix": [{"kind": "model", "models": ["resnet18"], "backends": ["torch"],
                                      "modes": ["infer"], "dtypes": ["fp32"], "batch_sizes": [1]}]}
    assert suite.expand(toy, device="cuda:0")[0]["max_time_s"] == 10.0
    assert suite.expand(toy, device="cpu")[0]["max_time_s"] == 0.0
    assert suite.expand({**toy, "timing": {"max_time_s": 2.5}}, device="cpu")[0]["max_time_s"] == 2.5
