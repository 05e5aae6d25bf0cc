"""A kernel row's backward sees one output-gradient layout (bench/workloads.py): the check's and the
timed step's ``dy`` are laid out as the output is, so an autotuner never tunes on one layout and is
timed on another."""

from __future__ import annotations

import torch

from bench import workloads
from bench.ops import capture_cases, get_op

CPU = torch.device("cpu")


class GradientLayout(torch.autograd.Function):
    """The identity, recording whether each gradient that reaches it is channels_last."""

    seen: list[bool] = []

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, dy):
        GradientLayout.seen.append(dy.is_contiguous(memory_format=torch.channels_last) and not dy.is_contiguous())
        return dy


def recording(op):
    def fn(*args, **kwargs):
        return GradientLayout.apply(op.reference(*args, **kwargs))

    return fn


def test_the_gradient_follows_the_outputs_layout_and_the_generator():
    out = torch.empty(2, 8, 5, 5).to(memory_format=torch.channels_last)
    dy = workloads.gradient_like(out, torch.Generator().manual_seed(3))
    assert dy.is_contiguous(memory_format=torch.channels_last) and not dy.is_contiguous()
    assert torch.equal(dy, torch.randn(out.shape, generator=torch.Generator().manual_seed(3)))


def test_the_check_and_the_timed_step_give_the_backward_the_same_layout(monkeypatch):
    op = get_op("bn_relu")
    case = next(c for c in capture_cases(["bn_relu"], ["resnet18"], 1) if c["residual"])
    GradientLayout.seen = []
    generator = torch.Generator().manual_seed(0)
    tensors, kwargs = op.make_inputs(case, torch.float32, CPU, torch.channels_last, generator)
    grads = list(op.differentiable(tensors))
    for name in grads:
        tensors[name].requires_grad_(True)
    workloads.check_kernel(op, recording(op), tensors, kwargs, grads, True, "fp32", generator, CPU)
    assert GradientLayout.seen == [True]

    class Recording:
        def kernel(self, op, device):
            return recording(op)

    monkeypatch.setattr(workloads, "get_backend", lambda name: Recording())
    config = {"kind": "kernel", "name": "bn_relu", "shape": case["shape"], "case": case, "backend": "torch",
              "mode": "train-backward", "dtype": "fp32", "batch_size": case["x"][0],
              "memory_format": "channels_last", "device": "cpu", "warmup": 0, "repeats": 2, "min_time_s": 0.0}
    GradientLayout.seen = []
    workloads.run_kernel(config, CPU)
    assert GradientLayout.seen and all(GradientLayout.seen)
