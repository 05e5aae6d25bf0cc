"""pytest-benchmark fixtures for the project's kernels and models.

``pytest --benchmark-only`` times every hot-path op (at the shapes where it occurs in the
models) and whole models, per backend. GPU cases are timed through a callable that ends in
``torch.cuda.synchronize()``, so each round is the device's time, not the launch's; on a
machine without CUDA they are collected and skipped with the reason. Each benchmark's
``extra_info`` holds its configuration, so ``--benchmark-json`` output (with
``--benchmark-save-data`` for every repetition) feeds ``python -m bench gate`` as well as
pytest-benchmark's own ``--benchmark-compare``.

Every benchmark records at least ``MIN_ROUNDS`` rounds: pytest-benchmark's default minimum, 5,
is all a benchmark slower than its 1 s budget gets, and at 5 vs 5 the gate's rank test cannot
return a p-value below 6.1e-3, so no slowdown, however large, could fail it.
"""

from __future__ import annotations

import pytest
import torch


# The gate holds every benchmark of a run to Holm's first level, alpha / benchmarks: on a GPU
# 130 kernel cases x 2 backends + 35 models x 3 backends = 365 benchmarks, 0.001 / 365 = 2.7e-6.
# The rank test's smallest p-value is 1.7e-6 at 15 rounds a side and 3.4e-8 at 20, enough for
# suites of up to 29,000 benchmarks (the default suite of `bench run` records 20 too).
MIN_ROUNDS = 20


def pytest_collection_modifyitems(config, items):
    """Raise every benchmark's minimum rounds to MIN_ROUNDS (a larger --benchmark-min-rounds wins)."""
    rounds = max(MIN_ROUNDS, config.getoption("benchmark_min_rounds"))
    for item in items:
        if "benchmark" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.benchmark(min_rounds=rounds))


@pytest.fixture
def device(device_kind: str) -> torch.device:
    """The device of a benchmark parametrized by ``device_kind`` ("cpu" or "cuda"); a CUDA case
    is skipped, with the reason, where there is no CUDA device."""
    if device_kind == "cuda" and not torch.cuda.is_available():
        pytest.skip("CUDA is not available: the GPU benchmark cases need a CUDA device")
    return torch.device(device_kind)


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
