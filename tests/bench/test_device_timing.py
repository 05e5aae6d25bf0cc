"""Device time and host time on a GPU (bench/timing.py), through a fake GPU on the fake clock.

The fake keeps what makes GPU timing hard: the host queues work and returns at once, the GPU
runs it in order on its own timeline, an event is stamped when the GPU reaches it, and a call
can spend longer on the host (Python, checks, the launch) than its kernels take on the device.
So each test knows exactly what the device spent and what the host spent, and can check that
each ruler reads the one it claims to."""

from __future__ import annotations

import itertools
import json

import pytest
import torch

from bench import results, timing
from tests.bench.helpers import FakeClock

GPU = torch.device("cuda", 0)
FLUSH_MS = 0.03
FLUSH_KERNEL = "vectorized_elementwise_kernel<BitwiseNotFunctor<unsigned char>>"
LAUNCH_MS = 0.005  # host time to queue a flush, a graph replay or an event


class FakeEvent:
    def __init__(self, gpu: "FakeGpu") -> None:
        self.gpu, self.at = gpu, None

    def record(self) -> None:
        self.at = self.gpu.reached()

    def elapsed_time(self, end: "FakeEvent") -> float:
        return (end.at - self.at) * 1e3


class FakeGpu:
    """``bench.timing.Cuda`` on a fake clock: one stream, work run in the order queued."""

    def __init__(self, clock: FakeClock, capture_error: str | None = None) -> None:
        self.clock = clock
        self.free_at = 0.0  # when the GPU finishes what is queued (s)
        self.work: list[tuple[str, float, float]] = []  # (kernel, start s, end s) as run
        self.recording: list[tuple[str, float]] | None = None  # a graph being captured
        self.capture_error = capture_error
        self.graphs: list[list[str]] = []  # the kernels of each captured graph

    def launch(self, kernel: str, device_ms: float, host_ms: float) -> None:
        """The host spends ``host_ms`` on the call, then queues ``device_ms`` of GPU work."""
        self.clock.now += host_ms / 1e3
        if self.recording is not None:
            self.recording.append((kernel, device_ms))
        else:
            self.run(kernel, device_ms)

    def run(self, kernel: str, device_ms: float) -> None:
        start = self.reached()
        self.free_at = start + device_ms / 1e3
        self.work.append((kernel, start, self.free_at))

    def reached(self) -> float:
        """When the GPU reaches what the host queues now."""
        return max(self.clock.now, self.free_at)

    # --- bench.timing.Cuda ---

    def synchronize(self) -> None:
        self.clock.now = self.reached()

    def event(self) -> FakeEvent:
        return FakeEvent(self)

    def flusher(self):
        return lambda: self.launch(FLUSH_KERNEL, FLUSH_MS, LAUNCH_MS)

    def reset_peak_memory(self) -> None:
        self.synchronize()

    def capture(self, body):
        if self.capture_error is not None:
            raise timing.TimingUnavailable(f"CUDA graph capture failed: {self.capture_error}")
        self.recording = []
        body()
        recorded, self.recording = self.recording, None
        self.graphs.append([kernel for kernel, _ in recorded])

        def replay():
            self.clock.now += LAUNCH_MS / 1e3
            for kernel, device_ms in recorded:
                self.run(kernel, device_ms)
        return replay

    def trace(self, body):
        first = len(self.work)
        body()
        self.synchronize()
        return [(kernel, (end - start) * 1e3) for kernel, start, end in self.work[first:]]


def op(gpu: FakeGpu, kernels_ms: dict[str, float], host_ms: float):
    """A call that spends ``host_ms`` on the host, then runs ``kernels_ms`` on the GPU. (Calls take
    some host time: the fake clock moves only with them, and warm-up lasts 25 ms of it.)"""
    def fn():
        for index, (kernel, device_ms) in enumerate(kernels_ms.items()):
            gpu.launch(kernel, device_ms, host_ms if index == 0 else 0.0)
    return fn


@pytest.fixture
def gpu(clock) -> FakeGpu:
    return FakeGpu(clock)


def time_on(gpu: FakeGpu, fn, **kwargs) -> dict:
    settings = {"warmup": 1, "repeats": 10, "flush_l2": True, "methods": timing.DEVICE_METHODS} | kwargs
    return timing.time_function(fn, GPU, cuda=gpu, **settings)


def row_of(measurement: dict) -> dict:
    config = {"kind": "kernel", "name": "bn_relu", "backend": "triton", "mode": "infer", "device": "cuda:0"}
    return results.make_row(config, {"status": "ok", **measurement}, {"device_name": "Fake GPU"})


# --- each ruler reads what it claims ---------------------------------------------------------------

def test_a_graph_replay_times_the_kernels_and_the_host_loop_times_the_host(gpu):
    """The case the harness once got wrong: 0.05 ms of kernels behind 0.2 ms of Python."""
    result = time_on(gpu, op(gpu, {"bn_relu_apply": 0.05}, host_ms=0.2))
    assert result["timing_method"] == "graph" and result["timing_fallback"] is None
    assert result["device_ms"] == pytest.approx(0.05)  # the flushes' 0.03 ms each subtracted
    assert result["device_times_ms"] == [pytest.approx(0.05)] * result["samples"]
    assert result["host_ms"] == pytest.approx(0.2, rel=1e-3)  # and the last call's kernel, over 400 calls
    assert row_of(result)["host_bound"] is True


def test_events_around_each_call_count_the_gpu_waiting_for_the_host(gpu):
    """Why events are not the kernel rows' ruler: the GPU idles while the host prepares the call."""
    result = time_on(gpu, op(gpu, {"bn_relu_apply": 0.05}, host_ms=0.2), methods=(timing.EVENTS,))
    assert result["timing_method"] == "events"
    # From the start event (when the flush ends) to the kernel's end: the host's 0.2 ms, less the
    # 0.075 ms of the previous kernel and the flush that ran while the host queued the flush and
    # then prepared the call, plus the kernel's 0.05 ms. 3.5x the kernel.
    assert result["device_ms"] == pytest.approx(0.2 - (0.05 + FLUSH_MS - LAUNCH_MS) + 0.05)


def test_a_device_bound_call_is_not_host_bound(gpu):
    result = time_on(gpu, op(gpu, {"conv": 1.0}, host_ms=0.01))
    assert result["device_ms"] == pytest.approx(1.0)
    assert result["host_ms"] == pytest.approx(1.0, rel=1e-3)  # the host loop waits for the GPU at its end
    assert row_of(result)["host_bound"] is False


def test_a_replay_holds_enough_calls_to_last_a_millisecond(gpu):
    assert timing.calls_per_replay(0.05) == 20 and timing.calls_per_replay(5.0) == 1
    assert timing.calls_per_replay(0.0) == timing.MAX_CALLS_PER_REPLAY
    time_on(gpu, op(gpu, {"k": 0.3}, host_ms=0.01))  # sized by three event-timed calls of about 0.3 ms
    assert gpu.graphs == [[FLUSH_KERNEL, "k"] * 4, [FLUSH_KERNEL] * 4]  # the calls, then the flushes alone


# --- fallbacks, with their reasons ----------------------------------------------------------------

def test_a_capture_failure_falls_back_to_cupti_and_says_why(clock):
    gpu = FakeGpu(clock, capture_error="operation not permitted when stream is capturing")
    result = time_on(gpu, op(gpu, {"wgrad_partials": 0.02, "wgrad_merge": 0.01}, host_ms=0.3))
    assert result["timing_method"] == "cupti"
    assert result["timing_fallback"] == ("graph: CUDA graph capture failed: operation not permitted when stream "
                                         "is capturing")
    assert result["device_ms"] == pytest.approx(0.03)  # both kernels of each call, no flush, no gap
    assert row_of(result)["timing_fallback"] == result["timing_fallback"]


def test_cupti_that_cannot_tell_the_call_from_the_flush_falls_back_to_events(clock):
    gpu = FakeGpu(clock, capture_error="capture refused")
    result = time_on(gpu, op(gpu, {FLUSH_KERNEL: 0.01, "apply": 0.05}, host_ms=0.01))
    assert result["timing_method"] == "events"
    assert result["timing_fallback"] == (f"graph: CUDA graph capture failed: capture refused; cupti: CUPTI cannot tell "
                                         f"the call's work from the L2 flush's: both run {FLUSH_KERNEL}")


def test_cupti_refuses_a_batch_whose_kernels_do_not_divide_into_calls(gpu):
    calls = itertools.count()

    def changing():  # every third call runs one kernel more: calls are no longer alike
        gpu.launch("a", 0.01, 0.01)
        if next(calls) % 3 == 2:
            gpu.launch("b", 0.01, 0.01)

    batch = timing.profiler_timer(gpu, changing, None)
    with pytest.raises(timing.TimingUnavailable, match=r"CUPTI traced 4 pieces of device work for 3 calls of 1 each"):
        batch(3)


def test_a_forced_method_that_cannot_time_the_call_is_an_error_with_its_reason(clock):
    gpu = FakeGpu(clock, capture_error="capture refused")
    with pytest.raises(timing.TimingUnavailable, match=r"no device timing method could time this call \(graph: CUDA "
                                                       r"graph capture failed: capture refused\)"):
        time_on(gpu, op(gpu, {"k": 0.05}, host_ms=0.01), methods=(timing.GRAPH,))


def test_an_unknown_method_is_refused_by_name(gpu):
    with pytest.raises(ValueError, match="device timing method 'nvtx'; choose from graph, cupti, events"):
        time_on(gpu, op(gpu, {"k": 0.05}, host_ms=0.01), methods=("nvtx",))


# --- the timed region and the stopping rule on a GPU ------------------------------------------------

def test_the_sampler_runs_only_when_the_gpu_has_finished_every_timed_call(gpu, clock):
    idle_when_sampled = []

    def sample():
        idle_when_sampled.append(gpu.free_at <= clock.now)

    with timing.between_batches(sample):
        result = time_on(gpu, op(gpu, {"k": 0.05}, host_ms=0.2), repeats=8, min_time_s=0.0)
    assert result["samples"] == 8 and result["ci_rel"] <= timing.TARGET_CI_REL
    assert idle_when_sampled == [True, True]  # before the first batch and after the last


def test_on_a_gpu_quiet_kernels_stop_at_the_minimum_and_noisy_ones_run_to_the_cap(gpu):
    quiet = time_on(gpu, op(gpu, {"k": 0.5}, host_ms=0.01), repeats=10, max_time_s=10.0)
    assert quiet["samples"] == 10

    durations = itertools.cycle([1.0, 3.0, 1.7, 2.4, 1.2, 2.9, 2.0])

    def noisy():
        gpu.launch("k", next(durations), 0.01)

    capped = time_on(gpu, noisy, repeats=10, max_time_s=0.2, methods=(timing.EVENTS,))
    assert capped["samples"] > 10 and capped["ci_rel"] > timing.TARGET_CI_REL


# --- rows ---------------------------------------------------------------------------------------

def test_on_a_cpu_the_host_clock_is_both_times_and_nothing_is_host_bound(clock):
    def fn():
        clock.now += 0.002

    result = timing.time_function(fn, torch.device("cpu"), warmup=0, repeats=4)
    assert result["timing_method"] == "host-clock" and result["host_ms"] == result["device_ms"] == pytest.approx(2.0)
    row = results.make_row({"kind": "model", "name": "m", "backend": "torch", "mode": "infer", "batch_size": 2},
                           {"status": "ok", **result}, {"device_name": "cpu"})
    assert row["host_bound"] is None
    assert row["throughput"] == pytest.approx(2 / 2e-3)  # from device time


def test_bandwidth_comes_from_device_time_never_host_time(gpu):
    result = time_on(gpu, op(gpu, {"apply": 0.05}, host_ms=0.2))
    row = results.make_row({"kind": "kernel", "name": "bn_relu", "backend": "triton", "mode": "infer"},
                           {"status": "ok", "bytes_moved": 10 ** 8, **result},
                           {"device_name": "Fake GPU", "copy_bandwidth_gbps": 4000.0})
    assert row["achieved_gbps"] == pytest.approx(10 ** 8 / 0.05e-3 / 1e9)
    assert row["percent_of_copy_bandwidth"] == pytest.approx(50.0)


def test_schema_1_rows_read_as_event_timed_device_time(tmp_path):
    old = {"schema_version": 1, "kind": "kernel", "name": "conv2d", "backend": "triton", "mode": "infer",
           "status": "ok", "device": "cuda:0", "median_ms": 0.235, "times_ms": [0.23, 0.235, 0.24]}
    path = tmp_path / "old.jsonl"
    path.write_text(json.dumps(old) + "\n")
    row = results.read_rows(path)[0]
    assert row["device_ms"] == 0.235 and row["device_times_ms"] == [0.23, 0.235, 0.24]
    assert row["timing_method"] == results.EVENTS_PER_CALL_V1 and "median_ms" not in row


def test_a_suite_or_the_command_line_forces_one_method_over_the_rows_own_order(monkeypatch):
    from bench import workloads

    asked = []
    monkeypatch.setattr(workloads, "time_function", lambda fn, device, **kwargs: asked.append(kwargs["methods"]) or {})
    config = {"warmup": 0, "repeats": 1, "min_time_s": 0.0}
    workloads.measure(lambda: None, torch.device("cpu"), config, (timing.GRAPH, timing.CUPTI, timing.EVENTS))
    workloads.measure(lambda: None, torch.device("cpu"), config | {"device_timing": "auto"}, (timing.EVENTS,))
    workloads.measure(lambda: None, torch.device("cpu"), config | {"device_timing": "cupti"}, (timing.GRAPH,))
    assert asked == [("graph", "cupti", "events"), ("events",), ("cupti",)]


def test_the_device_work_of_a_kineto_trace_is_its_kernels_copies_and_fills_by_start():
    events = [  # as torch.profiler's export_chrome_trace writes them (abridged)
        {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "ts": 100.0, "dur": 5.0},
        {"ph": "X", "cat": "kernel", "name": "_bn_apply_kernel", "ts": 130.5, "dur": 41.25},
        {"ph": "X", "cat": "gpu_memset", "name": "Memset (Device)", "ts": 120.0, "dur": 2.0},
        {"ph": "X", "cat": "cpu_op", "name": "aten::empty", "ts": 90.0, "dur": 3.0},
        {"ph": "X", "cat": "gpu_memcpy", "name": "Memcpy DtoD (Device -> Device)", "ts": 180.0, "dur": 8.0},
        {"ph": "i", "cat": "kernel", "name": "an instant event has no duration", "ts": 200.0},
    ]
    assert timing.device_work(events) == [("Memset (Device)", 0.002), ("_bn_apply_kernel", 0.04125),
                                          ("Memcpy DtoD (Device -> Device)", 0.008)]
