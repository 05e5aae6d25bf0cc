"""Timing that excludes warm-up and reports distributions, not single numbers.

On a GPU every repetition is bracketed by CUDA events (device time, no host clock), the L2
cache can be flushed between repetitions so a kernel never reads its inputs from the cache,
and small launches can be replayed from a CUDA graph. On a CPU, ``time.perf_counter``.

The timed region is quiet: garbage collection is off while timing, and whatever samples the
machine (the NVML clock sampler) runs between timed batches, never during one. Repetitions go
on until the 95% confidence interval of the median lies within ``TARGET_CI_REL`` of it, or until
the configuration's time cap has passed (see :func:`enough`).
"""

from __future__ import annotations

import contextlib
import gc
import math
import statistics
import time
from typing import Callable, Iterator

import torch

# Repetitions stop once the 95% confidence interval of the median is within this fraction of the
# median on both sides (nvbench's criterion); a row stopped by its time cap above it is noisy.
TARGET_CI_REL = 0.01
CI_Z = 1.96  # two-sided 95%, normal approximation of the binomial
# Warm-up goes on past the configured count until both have passed, so one-time work
# (autotuning, allocator growth, lazy initialisation) is over before the first timed call.
WARMUP_MIN_CALLS = 3
WARMUP_MIN_S = 0.025

# What runs between timed batches, never inside one (see ``between_batches``).
BETWEEN_BATCHES: list[Callable[[], None]] = []


@contextlib.contextmanager
def between_batches(callback: Callable[[], None]) -> Iterator[None]:
    """Call ``callback`` before the first timed batch, between batches and after the last,
    so that work such as sampling clocks never competes with a timed call."""
    BETWEEN_BATCHES.append(callback)
    try:
        yield
    finally:
        BETWEEN_BATCHES.remove(callback)


@contextlib.contextmanager
def gc_disabled() -> Iterator[None]:
    """No garbage collection pauses inside; the collector's previous state restored after, errors included."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def median_ci_rel(times_ms: list[float]) -> float:
    """How far the 95% confidence interval of the median reaches from it, over the median: the
    larger of its two sides, since an interval of order statistics is not symmetric.

    Distribution-free: the number of samples below the true median is Binomial(n, 1/2), so the
    order statistics of ranks n/2 - z*sqrt(n)/2 (rounded down) and 1 + n/2 + z*sqrt(n)/2
    (rounded up), 1-based, bracket it with about 95% probability (normal approximation, z = 1.96).
    ``inf`` where those ranks fall outside the samples (fewer than 8): nothing bounds the median."""
    n = len(times_ms)
    ordered = sorted(times_ms)
    median = statistics.median(ordered)
    reach = CI_Z * math.sqrt(n) / 2
    lower, upper = math.floor(n / 2 - reach), math.ceil(1 + n / 2 + reach)
    if lower < 1 or upper > n or median <= 0:
        return math.inf
    return max(median - ordered[lower - 1], ordered[upper - 1] - median) / median


def summarize(times_ms: list[float]) -> dict:
    """Median and interquartile range of the timed repetitions, with their count and how
    tightly the median is known (``ci_rel``: :func:`median_ci_rel`, None where unbounded)."""
    if not times_ms:
        raise ValueError("no timed repetitions")
    quartiles = statistics.quantiles(times_ms, n=4, method="inclusive") if len(times_ms) > 1 else [times_ms[0]] * 3
    ci_rel = median_ci_rel(times_ms)
    return {"times_ms": [round(t, 6) for t in times_ms], "median_ms": statistics.median(times_ms),
            "iqr_ms": quartiles[2] - quartiles[0], "samples": len(times_ms),
            "ci_rel": round(ci_rel, 6) if math.isfinite(ci_rel) else None}


def enough(times_ms: list[float], elapsed_s: float, *, repeats: int, min_time_s: float, max_time_s: float,
           max_repeats: int) -> bool:
    """Whether timing can stop: at least ``repeats`` repetitions and ``min_time_s``, and then the
    median known within ``TARGET_CI_REL`` or the time cap ``max_time_s`` passed; ``max_repeats``
    ends it whatever the rest says."""
    n = len(times_ms)
    if n >= max_repeats:
        return True
    if n < repeats or elapsed_s < min_time_s:
        return False
    return elapsed_s >= max_time_s or median_ci_rel(times_ms) <= TARGET_CI_REL


def warm_up(fn: Callable[[], object], calls: int) -> None:
    """``calls`` untimed calls, and more until ``WARMUP_MIN_CALLS`` calls and ``WARMUP_MIN_S`` have passed."""
    made, started = 0, time.perf_counter()
    while made < max(calls, WARMUP_MIN_CALLS) or time.perf_counter() - started < WARMUP_MIN_S:
        fn()
        made += 1


class L2Flusher:
    """Overwrites a buffer twice the size of the L2 cache before each timed repetition."""

    def __init__(self, device: torch.device) -> None:
        size = 2 * getattr(torch.cuda.get_device_properties(device), "L2_cache_size", 64 << 20)
        self.buffer = torch.empty(max(size, 64 << 20), dtype=torch.uint8, device=device)

    def __call__(self) -> None:
        self.buffer.zero_()


def cpu_batch(fn: Callable[[], object], count: int) -> list[float]:
    """``count`` calls, each timed by the host clock, in ms."""
    times = []
    for _ in range(count):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def cuda_batch(fn: Callable[[], object], count: int, device: torch.device,
               flush: Callable[[], None] | None) -> list[float]:
    """``count`` calls, each bracketed by CUDA events (after the flush, if any), in ms of device time."""
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(count)]
    for start, end in events:
        if flush is not None:
            flush()
        start.record()
        fn()
        end.record()
    torch.cuda.synchronize(device)
    return [start.elapsed_time(end) for start, end in events]


def time_function(fn: Callable[[], object], device: torch.device, *, warmup: int, repeats: int,
                  min_time_s: float = 0.0, max_time_s: float = 0.0, flush_l2: bool = False,
                  cuda_graphs: bool = False, max_repeats: int = 10_000,
                  on_phase: Callable[[str], None] = lambda name: None) -> dict:
    """Warm ``fn`` up (:func:`warm_up`), then time it in batches of ``repeats`` calls until
    :func:`enough` says so. The caps are checked between batches, so timing can pass
    ``max_time_s`` by up to one batch.

    ``on_phase`` hears "warming up" and "timing" as each begins (outside the timed region)."""
    on_phase("warming up")
    with gc_disabled():
        warm_up(fn, warmup)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            if cuda_graphs:
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    fn()
                fn = graph.replay
                fn()  # the first replay uploads the graph
            flush = L2Flusher(device) if flush_l2 else None

            def batch(count: int) -> list[float]:
                return cuda_batch(fn, count, device, flush)
        else:
            def batch(count: int) -> list[float]:
                return cpu_batch(fn, count)
        on_phase("timing")
        times: list[float] = []
        started = time.perf_counter()
        while True:
            for callback in BETWEEN_BATCHES:
                callback()
            times += batch(min(max(repeats, 1), max_repeats - len(times)))
            if enough(times, time.perf_counter() - started, repeats=repeats, min_time_s=min_time_s,
                      max_time_s=max_time_s, max_repeats=max_repeats):
                break
        for callback in BETWEEN_BATCHES:
            callback()
    return summarize(times)
