"""What a result ran on: software, host, GPU, clocks, and the copy bandwidth it can reach.

Collected once per run and device, stored with every row. GPU fields are ``None`` on a CPU
(present, never missing). Clocks and throttle reasons are also sampled while each
configuration runs (:class:`ClockSampler`), so a row can say whether its GPU throttled.
"""

from __future__ import annotations

import math
import os
import platform
import socket
import subprocess
import time
from pathlib import Path

import torch

from .devices import physical_gpu

REPO = Path(__file__).resolve().parent.parent


def _git(*args: str) -> str | None:
    try:
        result = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _nvml():
    """pynvml, initialised, or None where NVML is not there (CPU machines)."""
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml
    except Exception:  # ImportError, or NVMLError when there is no driver
        return None


def _nvml_handle(nvml, device: torch.device):
    """NVML's handle of the GPU that torch calls ``device``. NVML numbers every GPU of the machine in
    PCI order; torch numbers those ``CUDA_VISIBLE_DEVICES`` names (indices or UUIDs), in CUDA's
    order. The UUID torch reports is the name both share; where it is not found (a MIG instance),
    the visible entry itself."""
    if torch.cuda.is_available():
        try:
            return nvml.nvmlDeviceGetHandleByUUID(f"GPU-{torch.cuda.get_device_properties(device).uuid}")
        except nvml.NVMLError:
            pass
    entry = physical_gpu(device.index or 0, os.environ.get("CUDA_VISIBLE_DEVICES"))
    return nvml.nvmlDeviceGetHandleByIndex(int(entry)) if entry.isdigit() else nvml.nvmlDeviceGetHandleByUUID(entry)


def copy_bandwidth_gbps(device: torch.device, size_bytes: int | None = None) -> float:
    """A large device-to-device copy, bytes read plus written per second: the roofline reference."""
    from .timing import time_function

    size_bytes = size_bytes or ((1 << 30) if device.type == "cuda" else (256 << 20))
    src = torch.empty(size_bytes, dtype=torch.uint8, device=device).random_()
    dst = torch.empty_like(src)
    result = time_function(lambda: dst.copy_(src), device, warmup=3, repeats=10 if device.type == "cuda" else 5)
    return 2 * size_bytes / (result["device_ms"] * 1e-3) / 1e9


def bf16_matmul_tflops(device: torch.device, n: int = 8192) -> float | None:
    """A large bf16 matrix product through torch (cuBLAS) on random data, 2 n^3 FLOPs per second:
    the tensor-core roofline reference of the GPU (None on a CPU, where it would mean nothing)."""
    from .timing import time_function

    if device.type != "cuda":
        return None
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    result = time_function(lambda: a @ b, device, warmup=3, repeats=10)
    return 2 * n ** 3 / (result["device_ms"] * 1e-3) / 1e12


def collect(device: torch.device, run_id: str, measure_bandwidth: bool = True) -> dict:
    """The environment columns of every row (see ``results.ENVIRONMENT_COLUMNS``)."""
    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    env = {
        "run_id": run_id, "host": socket.gethostname(), "cpu": _cpu_name(), "python": platform.python_version(),
        "torch_version": torch.__version__, "triton_version": triton_version,
        "cuda_version": torch.version.cuda,
        "cudnn_version": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "git_commit": _git("rev-parse", "HEAD"), "git_dirty": None,
        "device_name": "cpu", "device_uuid": None, "driver_version": None, "compute_capability": None,
        "device_memory_bytes": None, "sm_clock_max_mhz": None, "memory_clock_max_mhz": None,
        "sm_clock_mhz": None, "memory_clock_mhz": None, "power_limit_w": None, "temperature_c": None,
        "copy_bandwidth_gbps": None, "bf16_matmul_tflops": None,
        "cluster_node": None,  # the Ray node's id where a cluster ran the row (bench.cluster)
    }
    status = _git("status", "--porcelain", "--untracked-files=no")
    env["git_dirty"] = None if status is None else bool(status)
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(device_name=props.name, compute_capability=f"{props.major}.{props.minor}",
                   device_memory_bytes=props.total_memory)
        nvml = _nvml()
        if nvml is not None:
            handle = _nvml_handle(nvml, device)
            uuid = nvml.nvmlDeviceGetUUID(handle)
            env.update(
                device_uuid=uuid.decode() if isinstance(uuid, bytes) else uuid,
                driver_version=_text(nvml.nvmlSystemGetDriverVersion()),
                sm_clock_max_mhz=nvml.nvmlDeviceGetMaxClockInfo(handle, nvml.NVML_CLOCK_SM),
                memory_clock_max_mhz=nvml.nvmlDeviceGetMaxClockInfo(handle, nvml.NVML_CLOCK_MEM),
                sm_clock_mhz=nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM),
                memory_clock_mhz=nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_MEM),
                power_limit_w=nvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000,
                temperature_c=nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU),
            )
    if measure_bandwidth:  # the two roofline references, measured once per run
        env["copy_bandwidth_gbps"] = round(copy_bandwidth_gbps(device), 1)
        rate = bf16_matmul_tflops(device)
        env["bf16_matmul_tflops"] = None if rate is None else round(rate, 1)
    return env


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# NVML's clocks-event reasons that mean the GPU ran slower than it could; idle is not one.
_THROTTLE_NAMES = {
    "nvmlClocksThrottleReasonApplicationsClocksSetting": "applications_clocks",
    "nvmlClocksThrottleReasonSwPowerCap": "sw_power_cap",
    "nvmlClocksThrottleReasonHwSlowdown": "hw_slowdown",
    "nvmlClocksThrottleReasonSyncBoost": "sync_boost",
    "nvmlClocksThrottleReasonSwThermalSlowdown": "sw_thermal_slowdown",
    "nvmlClocksThrottleReasonHwThermalSlowdown": "hw_thermal_slowdown",
    "nvmlClocksThrottleReasonHwPowerBrakeSlowdown": "hw_power_brake",
}


class ClockSampler:
    """Samples SM clock and throttle reasons when entered, when ``sample`` is called (at most
    every ``interval_s``) and when left. It has no thread of its own: the timing loop calls
    ``sample`` between timed batches (``bench.timing.between_batches``), so no NVML call competes
    with a timed call for the interpreter."""

    def __init__(self, device: torch.device, interval_s: float = 0.05) -> None:
        self.nvml = _nvml() if device.type == "cuda" else None
        self.handle = _nvml_handle(self.nvml, device) if self.nvml else None
        self.interval_s = interval_s
        self.clocks: list[int] = []
        self.reasons: set[str] = set()
        self.sampled_at = -math.inf

    def sample(self) -> None:
        """Read the clock and throttle reasons, unless the last reading is under ``interval_s`` old."""
        if self.nvml is None or time.monotonic() - self.sampled_at < self.interval_s:
            return
        self.read()

    def read(self) -> None:
        nvml = self.nvml
        self.sampled_at = time.monotonic()
        self.clocks.append(nvml.nvmlDeviceGetClockInfo(self.handle, nvml.NVML_CLOCK_SM))
        mask = nvml.nvmlDeviceGetCurrentClocksThrottleReasons(self.handle)
        for attr, name in _THROTTLE_NAMES.items():
            if mask & getattr(nvml, attr, 0):
                self.reasons.add(name)

    def __enter__(self) -> "ClockSampler":
        if self.nvml is not None:
            self.read()
        return self

    def __exit__(self, *exc) -> None:
        if self.nvml is not None:
            self.read()

    def fields(self) -> dict:
        if self.nvml is None:
            return {}
        return {"sm_clock_mhz_min": min(self.clocks), "sm_clock_mhz_max": max(self.clocks),
                "throttle_reasons": sorted(self.reasons)}
