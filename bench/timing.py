"""Timing that excludes warm-up and reports distributions, not single numbers.

Every row has two times, never mixed:

- **device time** (``device_ms``, the median of the samples ``device_times_ms``): what the GPU
  spent on the call, the host's launch cost excluded. ``timing_method`` says how it was taken:

  - ``graph``: the calls are captured in a CUDA graph, ``calls_per_replay`` of them (each after
    the L2 flush, when flushing) per replay, and each replay is bracketed by CUDA events; the
    flushes' own time, from a graph of flushes alone, is subtracted. No host work runs between
    the calls, so none can be counted (``triton.testing.do_bench_cudagraph``'s method, with the
    flush).
  - ``cupti``: where a graph cannot hold the call (a host synchronisation, an allocation the
    capture refuses), the durations of the call's kernels as CUPTI records them through
    ``torch.profiler``, summed per call. Gaps between the kernels are not counted.
  - ``events``: CUDA events around each call (a whole training step: the optimizer included).
    A call whose host side outlasts what the GPU has queued leaves the GPU idle inside the
    events, and that idle time is counted; ``host_bound`` tells such rows.
  - ``host-clock``: on a CPU, ``time.perf_counter`` around each call; there the device is the
    host and the two times are one measurement.

  A method that cannot time the call hands over to the next in the row's order, and the row
  says why in ``timing_fallback``.
- **host time** (``host_ms``): wall time per call of a plain loop of calls, synchronised at its
  ends, as a user's Python loop sees it (``torch.utils.benchmark.Timer``'s measurement), with no
  L2 flush. A row whose host time exceeds its device time is ``host_bound`` (``bench.results``
  derives it): the GPU waits for Python.

The timed region is quiet: garbage collection is off while timing, and whatever samples the
machine (the NVML clock sampler) runs between timed batches, never during one. Repetitions go
on until the 95% confidence interval of the median lies within ``TARGET_CI_REL`` of it, or until
the configuration's time cap has passed (see :func:`enough`).
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import os
import statistics
import tempfile
import time
from typing import Callable, Iterator, Sequence

import torch

# Repetitions stop once the 95% confidence interval of the median is within this fraction of the
# median on both sides (nvbench's criterion); a row stopped by its time cap above it is noisy.
TARGET_CI_REL = 0.01
CI_Z = 1.96  # two-sided 95%, normal approximation of the binomial
# Warm-up goes on past the configured count until both have passed, so one-time work
# (autotuning, allocator growth, lazy initialisation) is over before the first timed call.
WARMUP_MIN_CALLS = 3
WARMUP_MIN_S = 0.025

# How device time can be taken on a GPU, and the one way on a CPU (module docstring).
GRAPH, CUPTI, EVENTS, HOST_CLOCK = "graph", "cupti", "events", "host-clock"
DEVICE_METHODS = (GRAPH, CUPTI, EVENTS)
# A graph replay holds calls until it lasts about this long: the event pair around a replay
# costs a few microseconds, under 1% of it.
REPLAY_TARGET_MS = 1.0
MAX_CALLS_PER_REPLAY = 32
# Host time: blocks of calls lasting at least this long each (and 3 calls), the median of these many.
HOST_BLOCK_S = 0.02
HOST_BLOCKS = 5
# Device work a profiler trace counts as the call's: its kernels and the copies and fills it makes.
TRACE_CATEGORIES = ("kernel", "gpu_memcpy", "gpu_memset")

# What runs between timed batches, never inside one (see ``between_batches``).
BETWEEN_BATCHES: list[Callable[[], None]] = []


class TimingUnavailable(Exception):
    """A device-timing method cannot time this call; the message says why."""


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


# --- statistics and the stopping rule -----------------------------------------------------------

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
    """Median and interquartile range of the device-time samples, with their count and how
    tightly the median is known (``ci_rel``: :func:`median_ci_rel`, None where unbounded)."""
    if not times_ms:
        raise ValueError("no timed repetitions")
    quartiles = statistics.quantiles(times_ms, n=4, method="inclusive") if len(times_ms) > 1 else [times_ms[0]] * 3
    ci_rel = median_ci_rel(times_ms)
    return {"device_times_ms": [round(t, 6) for t in times_ms], "device_ms": statistics.median(times_ms),
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


# --- the CUDA operations the GPU timers use ----------------------------------------------------

class L2Flusher:
    """Rewrites a buffer twice the size of the L2 cache before each timed repetition.

    By inverting its bytes: a uint8 ``bitwise_not`` is a kernel no op here runs (a fill or a
    memset could be), so a CUPTI trace tells the flush's work from the call's by name."""

    def __init__(self, device: torch.device) -> None:
        size = 2 * getattr(torch.cuda.get_device_properties(device), "L2_cache_size", 64 << 20)
        self.buffer = torch.zeros(max(size, 64 << 20), dtype=torch.uint8, device=device)

    def __call__(self) -> None:
        self.buffer.bitwise_not_()


class Cuda:
    """Every CUDA operation the GPU timers make, in one place: tests stand a fake in for it."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def synchronize(self) -> None:
        torch.cuda.synchronize(self.device)

    def event(self):
        return torch.cuda.Event(enable_timing=True)

    def flusher(self) -> Callable[[], None]:
        return L2Flusher(self.device)

    def reset_peak_memory(self) -> None:
        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)

    def capture(self, body: Callable[[], None]) -> Callable[[], None]:
        """``body`` captured in a CUDA graph; returns its replay. Raises TimingUnavailable where
        the capture fails (the error's first line says why)."""
        graph = torch.cuda.CUDAGraph()
        stream = torch.cuda.Stream(self.device)
        try:
            # One run on the capture stream first, as PyTorch's CUDA graphs notes advise: state that
            # a library sets up lazily per stream (a cuBLAS workspace) is then not created in capture.
            stream.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(stream):
                body()
            torch.cuda.current_stream(self.device).wait_stream(stream)
            with torch.cuda.graph(graph, stream=stream):
                body()
        except Exception as error:  # noqa: BLE001 - any capture failure means: use another method
            torch.cuda.synchronize(self.device)
            raise TimingUnavailable(f"CUDA graph capture failed: {first_line(error)}") from error
        return graph.replay

    def trace(self, body: Callable[[], None]) -> list[tuple[str, float]]:
        """``(name, duration in ms)`` of each piece of device work ``body`` makes (kernels, copies,
        fills), in the order they started, as CUPTI records them through ``torch.profiler``."""
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CUDA]) as profiler:
            body()
            torch.cuda.synchronize(self.device)
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "trace.json")
            profiler.export_chrome_trace(path)
            with open(path) as f:
                return device_work(json.load(f).get("traceEvents", []))


def device_work(trace_events: list[dict]) -> list[tuple[str, float]]:
    """``(name, duration in ms)`` of the device work in a Chrome trace's events (Kineto's export:
    ``cat`` kernel, gpu_memcpy or gpu_memset, ``ts`` and ``dur`` in microseconds), by start."""
    work = sorted((e["ts"], e["name"], e["dur"]) for e in trace_events
                  if e.get("cat") in TRACE_CATEGORIES and "dur" in e)
    return [(name, duration_us * 1e-3) for _, name, duration_us in work]


def first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")


# --- device timers: each returns ``batch(count) -> count samples in ms`` -----------------------

Batch = Callable[[int], list]


def host_clock_timer(fn: Callable[[], object]) -> Batch:
    """Each call timed by the host clock."""
    def batch(count: int) -> list[float]:
        times = []
        for _ in range(count):
            start = time.perf_counter()
            fn()
            times.append((time.perf_counter() - start) * 1e3)
        return times
    return batch


def event_timer(cuda: Cuda, fn: Callable[[], object], flush: Callable[[], None] | None) -> Batch:
    """Each call bracketed by CUDA events, after the flush (if any)."""
    def batch(count: int) -> list[float]:
        events = [(cuda.event(), cuda.event()) for _ in range(count)]
        for start, end in events:
            if flush is not None:
                flush()
            start.record()
            fn()
            end.record()
        cuda.synchronize()
        return [start.elapsed_time(end) for start, end in events]
    return batch


def calls_per_replay(call_ms: float) -> int:
    """How many calls one graph replay holds: enough to last ``REPLAY_TARGET_MS``, within bounds."""
    if call_ms <= 0:
        return MAX_CALLS_PER_REPLAY
    return max(1, min(MAX_CALLS_PER_REPLAY, math.ceil(REPLAY_TARGET_MS / call_ms)))


def replay_ms(cuda: Cuda, replay: Callable[[], None], count: int) -> list[float]:
    """``count`` replays, each between events. An untimed replay leads, so the GPU is busy while
    the host queues the first timed one: no replay's time includes the host's launch of it."""
    events = [(cuda.event(), cuda.event()) for _ in range(count)]
    replay()
    for start, end in events:
        start.record()
        replay()
        end.record()
    cuda.synchronize()
    return [start.elapsed_time(end) for start, end in events]


def graph_timer(cuda: Cuda, fn: Callable[[], object], flush: Callable[[], None] | None, calls: int) -> Batch:
    """``calls`` (flush, call) pairs per graph replay; a sample is a replay's time less the median
    time of a graph of the flushes alone, over ``calls``."""
    def calls_body() -> None:
        for _ in range(calls):
            if flush is not None:
                flush()
            fn()

    def flushes_body() -> None:
        for _ in range(calls):
            flush()

    replay_calls = cuda.capture(calls_body)
    replay_flushes = cuda.capture(flushes_body) if flush is not None else None
    replay_calls()  # the first replay uploads the graph
    if replay_flushes is not None:
        replay_flushes()
    cuda.synchronize()

    def batch(count: int) -> list[float]:
        flushes_ms = statistics.median(replay_ms(cuda, replay_flushes, 3)) if replay_flushes is not None else 0.0
        return [max(t - flushes_ms, 0.0) / calls for t in replay_ms(cuda, replay_calls, count)]
    return batch


def profiler_timer(cuda: Cuda, fn: Callable[[], object], flush: Callable[[], None] | None) -> Batch:
    """The summed durations of each call's device work, from a CUPTI trace of ``count`` calls.

    One call traced alone says which work a call makes; one flush alone, which work is the
    flush's. In the trace of a batch, the flush's work is dropped and the rest is cut into calls
    of that many pieces each: this holds as long as every call makes the same work, and a batch
    whose count disagrees raises TimingUnavailable rather than guess."""
    call_work = [name for name, _ in cuda.trace(fn)]
    if not call_work:
        raise TimingUnavailable("CUPTI traced no device work in one call")
    flush_work = {name for name, _ in cuda.trace(flush)} if flush is not None else set()
    shared = flush_work & set(call_work)
    if shared:
        raise TimingUnavailable(f"CUPTI cannot tell the call's work from the L2 flush's: both run {sorted(shared)[0]}")

    def body(count: int) -> Callable[[], None]:
        def run() -> None:
            for _ in range(count):
                if flush is not None:
                    flush()
                fn()
        return run

    def batch(count: int) -> list[float]:
        work = [ms for name, ms in cuda.trace(body(count)) if name not in flush_work]
        per_call = len(call_work)
        if len(work) != count * per_call:
            raise TimingUnavailable(f"CUPTI traced {len(work)} pieces of device work for {count} calls of "
                                    f"{per_call} each")
        return [sum(work[i * per_call:(i + 1) * per_call]) for i in range(count)]
    return batch


def device_timer(methods: Sequence[str], cuda: Cuda, fn: Callable[[], object],
                 flush: Callable[[], None] | None) -> tuple[str, Batch, str | None]:
    """The first of ``methods`` that can time ``fn`` (each is tried on one call), its batch
    function, and why the ones before it could not (None where the first could)."""
    reasons = []
    for method in methods:
        try:
            if method == EVENTS:
                batch = event_timer(cuda, fn, flush)
            elif method == GRAPH:
                call_ms = statistics.median(event_timer(cuda, fn, None)(3))
                batch = graph_timer(cuda, fn, flush, calls_per_replay(call_ms))
            elif method == CUPTI:
                batch = profiler_timer(cuda, fn, flush)
            else:
                raise ValueError(f"device timing method {method!r}; choose from {', '.join(DEVICE_METHODS)}")
            batch(1)  # proves the method on this call before any sample counts
            return method, batch, "; ".join(reasons) or None
        except TimingUnavailable as reason:
            reasons.append(f"{method}: {reason}")
    raise TimingUnavailable("no device timing method could time this call (" + "; ".join(reasons) + ")")


def host_ms(fn: Callable[[], object], cuda: Cuda, device_ms: float) -> float:
    """Wall time per call of a synchronised loop of calls, no flush: the median over
    ``HOST_BLOCKS`` blocks, each of at least 3 calls and about ``HOST_BLOCK_S``."""
    calls = max(3, min(1000, math.ceil(HOST_BLOCK_S * 1e3 / device_ms) if device_ms > 0 else 1000))
    per_call = []
    for _ in range(HOST_BLOCKS):
        cuda.synchronize()
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        cuda.synchronize()
        per_call.append((time.perf_counter() - start) * 1e3 / calls)
    return statistics.median(per_call)


# --- the timer ---------------------------------------------------------------------------------

def time_function(fn: Callable[[], object], device: torch.device, *, warmup: int, repeats: int,
                  min_time_s: float = 0.0, max_time_s: float = 0.0, flush_l2: bool = False,
                  methods: Sequence[str] = (EVENTS,), max_repeats: int = 10_000,
                  on_phase: Callable[[str], None] = lambda name: None, cuda: Cuda | None = None) -> dict:
    """Warm ``fn`` up (:func:`warm_up`), then time it in batches of ``repeats`` calls until
    :func:`enough` says so, then (on a GPU) take its host time. The caps are checked between
    batches, so timing can pass ``max_time_s`` by up to one batch.

    ``methods``: the device-timing methods to try on a GPU, in order (module docstring).
    ``on_phase`` hears "warming up" and "timing" as each begins (outside the timed region).
    ``cuda``: the CUDA operations (a fake in tests). Returns :func:`summarize`'s columns with
    ``timing_method``, ``timing_fallback`` and ``host_ms``."""
    on_phase("warming up")
    with gc_disabled():
        warm_up(fn, warmup)
        if device.type == "cuda":
            cuda = cuda or Cuda(device)
            cuda.synchronize()
            flush = cuda.flusher() if flush_l2 else None
            method, batch, fallback = device_timer(methods, cuda, fn, flush)
        else:
            method, batch, fallback = HOST_CLOCK, host_clock_timer(fn), None
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
        result = summarize(times) | {"timing_method": method, "timing_fallback": fallback}
        if device.type == "cuda":
            # The device timer's graphs hold one output per captured call: freed, so that the peak
            # memory a caller reads after this is the plain loop's, as a user's program sees it.
            del batch
            cuda.reset_peak_memory()
            result["host_ms"] = host_ms(fn, cuda, result["device_ms"])
        else:  # the host clock timed each call of a plain loop: the same measurement
            result["host_ms"] = result["device_ms"]
        for callback in BETWEEN_BATCHES:
            callback()
    return result
