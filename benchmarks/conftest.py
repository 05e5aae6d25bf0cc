"""pytest-benchmark fixtures for the project's kernels and models.

``pytest --benchmark-only`` times every hot-path op (at the shapes where it occurs in the
models) and whole models, per backend. GPU cases are timed through a callable that ends in
``torch.cuda.synchronize()``, so each round is the device's time, not the launch's; on a
machine without CUDA they are collected and skipped with the reason. Each benchmark's
``extra_info`` holds its configuration, so ``--benchmark-json`` output (with
``--benchmark-save-data`` for every repetition) feeds ``python -m bench gate`` as well as
pytest-benchmark's own ``--benchmark-compare``.
"""

from __future__ import annotations

import pytest
import torch


def device_or_skip(device: str) -> torch.device:
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("CUDA is not available: the GPU benchmark cases need a CUDA device")
    return torch.device(device)


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


@pytest.fixture
def run_benchmark(benchmark):
    """``run_benchmark(fn, device, config)``: time ``fn`` with device synchronisation."""

    def run(fn, device: torch.device, config: dict):
        benchmark.extra_info.update(config, device_name=device_name(device))
        if device.type == "cuda":
            def timed():
                fn()
                torch.cuda.synchronize(device)
            fn()  # warm-up outside the timing: compilation, autotuning
            torch.cuda.synchronize(device)
            return benchmark(timed)
        return benchmark(fn)

    return run
