"""The environment stored with every row, and the clock/throttle sampler (with a fake NVML)."""

from __future__ import annotations

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

    def nvmlDeviceGetClockInfo(self, handle, clock):
        return next(self.clocks)

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle):
        return next(self.reasons)


def test_clock_sampler_reports_the_range_and_the_throttle_reasons(monkeypatch):
    fake = FakeNVML()
    monkeypatch.setattr(environment, "_nvml", lambda: fake)
    with environment.ClockSampler(torch.device("cuda", 0), interval_s=0.001) as sampler:
        while len(sampler.clocks) < 4:
            pass
    fields = sampler.fields()
    assert fields["sm_clock_mhz_min"] == 1600 and fields["sm_clock_mhz_max"] == 1980
    assert fields["throttle_reasons"] == ["sw_power_cap"]  # idle is not a throttle


def test_clock_sampler_is_silent_on_a_cpu():
    with environment.ClockSampler(torch.device("cpu")) as sampler:
        pass
    assert sampler.fields() == {}
