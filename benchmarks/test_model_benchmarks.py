"""Whole models per backend: inference at batch 64 in bf16 on a GPU, a small CPU case."""

from __future__ import annotations

import pytest
import torch

import models
from bench.backends import get_backend
from bench.errors import Skip
from bench.workloads import autocast

GPU_MODELS = models.list_models()
CPU_MODELS = ["resnet18", "alexnet_paper"]
PARAMS = ([pytest.param("cpu", name, 2, 96, id=f"cpu-{name}") for name in CPU_MODELS]
          + [pytest.param("cuda", name, 64, None, id=f"cuda-{name}") for name in GPU_MODELS])


@pytest.mark.parametrize("backend", ["torch", "triton", "compile"])
@pytest.mark.parametrize("device_kind, name, batch, size", PARAMS)
def test_model(run_benchmark, device, name, batch, size, backend):
    if backend == "compile" and device.type == "cpu":
        pytest.skip("torch.compile on a CPU costs a minute per model; the smoke suite covers it")
    dtype = "bf16" if device.type == "cuda" else "fp32"
    size = size or models.get_entry(name).input_size
    model = models.create(name).to(device=device, memory_format=torch.channels_last).eval()
    try:
        model = get_backend(backend).model(model, device)
    except Skip as reason:
        pytest.skip(str(reason))
    x = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)

    def infer():
        with torch.inference_mode(), autocast(device, dtype):
            return model(x)

    config = {"kind": "model", "name": name, "backend": backend, "mode": "infer", "dtype": dtype,
              "batch_size": batch, "memory_format": "channels_last", "input_size": size}
    run_benchmark(infer, device, config)
