"""Timing on the CPU (bench/timing.py): how many calls are made, which of them are timed, and the
phases told along the way. A fake clock that only the measured function moves makes every timed
repetition's length known exactly, so no assertion depends on how fast this machine is."""

from __future__ import annotations

import pytest
import torch

from bench import timing

CPU = torch.device("cpu")


def test_repeats_samples_after_warmup_calls_that_are_not_timed(clock):
    calls = []

    def fn():
        calls.append(len(calls))
        clock.now += 1.0 if len(calls) <= 3 else 0.002  # warm-up calls take 1 s, timed ones 2 ms

    result = timing.time_function(fn, CPU, warmup=3, repeats=5)
    assert len(calls) == 3 + 5
    assert result["samples"] == len(result["device_times_ms"]) == 5
    assert result["device_times_ms"] == [pytest.approx(2.0)] * 5  # none of the warm-up's seconds
    assert result["device_ms"] == pytest.approx(2.0) and result["iqr_ms"] == pytest.approx(0.0)


def test_min_time_extends_the_repetitions_until_it_has_passed(clock):
    def fn():
        clock.now += 1 / 64  # exact in binary: eight calls are exactly 0.125 s

    result = timing.time_function(fn, CPU, warmup=1, repeats=2, min_time_s=0.125)
    assert result["samples"] == 8


def test_max_repeats_bounds_what_min_time_asks_for(clock):
    def fn():
        clock.now += 0.001

    result = timing.time_function(fn, CPU, warmup=0, repeats=2, min_time_s=3600.0, max_repeats=20)
    assert result["samples"] == 20


def test_repeats_are_a_minimum_even_when_min_time_has_passed(clock):
    def fn():
        clock.now += 1.0

    assert timing.time_function(fn, CPU, warmup=0, repeats=4, min_time_s=0.5)["samples"] == 4


def test_phases_are_told_as_each_begins_outside_the_calls(clock):
    events = []

    def fn():
        events.append("call")
        clock.now += 0.01  # three warm-up calls pass the warm-up's 25 ms

    timing.time_function(fn, CPU, warmup=2, repeats=3, on_phase=events.append)
    assert events == ["warming up", "call", "call", "call", "timing", "call", "call", "call"]


def test_summary_is_the_median_and_interquartile_range_of_the_repetitions():
    result = timing.summarize([4.0, 1.0, 3.0, 2.0, 100.0])
    assert result["device_ms"] == 3.0 and result["samples"] == 5
    assert result["iqr_ms"] == 4.0 - 2.0  # inclusive quartiles: an outlier moves neither
    assert result["device_times_ms"] == [4.0, 1.0, 3.0, 2.0, 100.0]  # in the order they were taken
    assert timing.summarize([1.23456789])["device_times_ms"] == [1.234568]
    assert timing.summarize([5.0])["iqr_ms"] == 0.0


def test_no_repetitions_is_an_error():
    with pytest.raises(ValueError, match="no timed repetitions"):
        timing.summarize([])
