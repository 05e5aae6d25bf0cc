"""The environment stored with every row, and the clock/throttle sampler (with a fake NVML)."""

from __future__ import annotations

import pytest
import torch

from bench import environment, results


def test_cpu_environment_has_every_gpu_field_as_null():
    env = environment.collect(torch.device("cpu"), "run-1")
    assert set(env) == set(results.ENVIRONMENT_COLUMNS)
    assert env["device_name"] == "cpu" and env["run_id"] == "run-1"
    gpu_fields = ["device_uuid", "driver_version", "compute_capability", "device_memory_bytes", "sm_clock_mhz",
                  "memory_clock_mhz", "sm_clock_max_mhz", "memory_clock_max_mhz", "power_limit_w", "temperature_c"]
    assert all(env[f] is None for f in gpu_fields)
    assert env["copy_bandwidth_gbps"] > 0
    assert env["bf16_matmul_tflops"] is None  # a CPU bf16 product is no tensor-core reference
    assert env["torch_version"] == torch.__version__
    assert env["git_commit"] is None or len(env["git_commit"]) == 40


class FakeNVML:
    """Just enough of pynvml: the SM clock steps down and a power cap appears mid-run."""

    NVML_CLOCK_SM = 0
    nvmlClocksThrottleReasonSwPowerCap = 0x4
    nvmlClocksThrottleReasonHwSlowdown = 0x8
    nvmlClocksThrottleReasonGpuIdle = 0x1

    def __init__(self):
        self.clocks = iter([1980, 1980, 1755, 1600] + [1600] * 1000)
        self.reasons = iter([0, 0x1, 0x4] + [0x4] * 1000)

    def nvmlDeviceGetHandleByIndex(self, index):
        return ("handle", index)

    def nvmlDeviceGetHandleByUUID(self, uuid):
        return ("handle", uuid)

    def nvmlDeviceGetClockInfo(self, handle, clock):
        return next(self.clocks)

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle):
        return next(self.reasons)


def test_clock_sampler_reports_the_range_and_the_throttle_reasons(monkeypatch):
    fake = FakeNVML()
    monkeypatch.setattr(environment, "_nvml", lambda: fake)
    with environment.ClockSampler(torch.device("cuda", 0), interval_s=0.0) as sampler:
        sampler.sample()
        sampler.sample()
    fields = sampler.fields()
    assert fields["sm_clock_mhz_min"] == 1600 and fields["sm_clock_mhz_max"] == 1980
    assert fields["throttle_reasons"] == ["sw_power_cap"]  # idle is not a throttle


@pytest.mark.parametrize("visible, device, handle", [
    (None, 1, ("handle", 1)),
    ("2,3", 0, ("handle", 2)),
    ("GPU-aaaa,GPU-bbbb", 1, ("handle", "GPU-bbbb")),
    ("MIG-cccc", 0, ("handle", "MIG-cccc")),
])
def test_nvml_reads_the_gpu_that_cuda_visible_devices_names(monkeypatch, visible, device, handle):
    """Where torch gives no UUID to look up (here: no CUDA), the caller's visible entry decides;
    it was int(entry), which failed on a UUID and read GPU 0's clocks for cuda:0 under 2,3."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert environment._nvml_handle(FakeNVML(), torch.device("cuda", device)) == handle


def test_clock_sampler_is_silent_on_a_cpu():
    with environment.ClockSampler(torch.device("cpu")) as sampler:
        pass
    assert sampler.fields() == {}
