"""Timing that excludes warm-up and reports distributions, not single numbers.

On a GPU every repetition is bracketed by CUDA events (device time, no host clock), the L2
cache can be flushed between repetitions so a kernel never reads its inputs from the cache,
and small launches can be replayed from a CUDA graph. On a CPU, ``time.perf_counter``.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable

import torch


def summarize(times_ms: list[float]) -> dict:
    """Median and interquartile range of the timed repetitions, with their count."""
    if not times_ms:
        raise ValueError("no timed repetitions")
    quartiles = statistics.quantiles(times_ms, n=4, method="inclusive") if len(times_ms) > 1 else [times_ms[0]] * 3
    return {"times_ms": [round(t, 6) for t in times_ms], "median_ms": statistics.median(times_ms),
            "iqr_ms": quartiles[2] - quartiles[0], "samples": len(times_ms)}


class L2Flusher:
    """Overwrites a buffer twice the size of the L2 cache before each timed repetition."""

    def __init__(self, device: torch.device) -> None:
        size = 2 * getattr(torch.cuda.get_device_properties(device), "L2_cache_size", 64 << 20)
        self.buffer = torch.empty(max(size, 64 << 20), dtype=torch.uint8, device=device)

    def __call__(self) -> None:
        self.buffer.zero_()


def time_function(fn: Callable[[], object], device: torch.device, *, warmup: int, repeats: int,
                  min_time_s: float = 0.0, flush_l2: bool = False, cuda_graphs: bool = False,
                  max_repeats: int = 10_000, on_phase: Callable[[str], None] = lambda name: None) -> dict:
    """Run ``fn`` ``warmup`` times untimed, then at least ``repeats`` times and ``min_time_s``.

    ``on_phase`` hears "warming up" and "timing" as each begins (outside the timed region)."""
    on_phase("warming up")
    for _ in range(warmup):
        fn()
    if device.type != "cuda":
        on_phase("timing")
        times = []
        start_all = time.perf_counter()
        while len(times) < repeats or (time.perf_counter() - start_all < min_time_s and len(times) < max_repeats):
            start = time.perf_counter()
            fn()
            times.append((time.perf_counter() - start) * 1e3)
        return summarize(times)

    torch.cuda.synchronize(device)
    if cuda_graphs:
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            fn()
        fn = graph.replay
        fn()  # the first replay uploads the graph
    flush = L2Flusher(device) if flush_l2 else None
    on_phase("timing")
    times = []
    start_all = time.perf_counter()
    while len(times) < repeats or (time.perf_counter() - start_all < min_time_s and len(times) < max_repeats):
        batch = max(repeats, 1)
        events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(batch)]
        for start, end in events:
            if flush is not None:
                flush()
            start.record()
            fn()
            end.record()
        torch.cuda.synchronize(device)
        times.extend(start.elapsed_time(end) for start, end in events)
    return summarize(times)
