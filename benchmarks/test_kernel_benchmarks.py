"""Every hot-path op at the models' shapes, torch (eager) and triton, one benchmark each."""

from __future__ import annotations

import pytest
import torch

from bench.backends import get_backend
from bench.errors import Skip
from bench.ops import capture_cases, get_op
from bench.ops.conv2d import depthwise_cases
from bench.suite import load_suite, matrix_cases
from bench.workloads import STORAGE_DTYPE, memory_format_of


def _gpu_cases():
    """The shapes of the ``kernels`` suite at batch 64 (one benchmark per op and shape)."""
    cases = []
    for matrix in load_suite("kernels")["matrix"]:
        cases += matrix_cases(matrix, 64)
    return cases


# On a CPU: one shape of each op at batch 1, enough to show the fixtures work: the first, but for
# conv2d the last depthwise case of resnet50 (512 channels at 7x7), which the Triton interpreter
# runs in a second where a grouped convolution takes a minute.
CPU_CASES = [capture_cases(["bn_relu"], ["resnet18"], 1)[0], capture_cases(["lrn"], ["alexnet_paper"], 1)[0],
             depthwise_cases(["resnet50"], 1, kernel_sizes=(3,))[-1],
             capture_cases(["squeeze_excite"], ["se_resnet50"], 1)[0]]
GPU_CASES = _gpu_cases()
PARAMS = ([pytest.param("cpu", c, id=f"cpu-{c['op']}-{c['shape']}") for c in CPU_CASES]
          + [pytest.param("cuda", c, id=f"cuda-{c['op']}-{c['shape']}") for c in GPU_CASES])


@pytest.mark.parametrize("backend", ["torch", "triton"])
@pytest.mark.parametrize("device_kind, case", PARAMS)
def test_kernel(run_benchmark, device, case, backend):
    dtype = "bf16" if device.type == "cuda" else "fp32"
    op = get_op(case["op"])
    try:
        fn = get_backend(backend).kernel(op, device)
    except Skip as reason:
        pytest.skip(str(reason))
    tensors, kwargs = op.make_inputs(case, STORAGE_DTYPE[dtype], device, memory_format_of("channels_last"),
                                     torch.Generator().manual_seed(0))
    config = {"kind": "kernel", "name": op.name, "shape": case["shape"], "backend": backend, "mode": "infer",
              "dtype": dtype, "batch_size": case["x"][0], "memory_format": "channels_last"}
    with op.policy(backend):  # conv2d on triton: the Triton kernels themselves, never cuDNN
        run_benchmark(lambda: op.call(fn, tensors, kwargs, training=False), device, config)
