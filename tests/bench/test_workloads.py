"""Workloads (bench/workloads.py): a kernel row's bytes and FLOPs, the check of a kernel against its
float64 reference, and the phases a configuration reports while it runs."""

from __future__ import annotations

import math

import pytest
import torch

from bench import progress, results
from bench.ops import capture_cases, get_op
from bench.workloads import check_kernel, run_kernel


def kernel_config(op, backend, mode, dtype, case):
    return {"kind": "kernel", "name": op, "shape": case["shape"], "case": case, "backend": backend, "mode": mode,
            "dtype": dtype, "batch_size": case["x"][0], "memory_format": "channels_last", "device": "cpu",
            "warmup": 1, "repeats": 2, "min_time_s": 0.0, "flush_l2": False}


@pytest.mark.parametrize("mode", ["infer", "train-forward", "train-backward"])
def test_kernel_rows_carry_bytes_and_flops(mode):
    case = next(c for c in capture_cases(["bn_relu"], ["resnet18"], 1) if c["residual"])
    result = run_kernel(kernel_config("bn_relu", "torch", mode, "fp32", case), torch.device("cpu"))
    assert "rel_error" not in result  # eager torch is the baseline, not under test
    passes = {"infer": 3, "train-forward": 4, "train-backward": 8}[mode]
    assert result["bytes_moved"] == passes * 64 * 56 * 56 * 4
    row = results.make_row(kernel_config("bn_relu", "torch", mode, "fp32", case), {"status": "ok", **result}, {})
    assert row["achieved_gbps"] == pytest.approx(result["bytes_moved"] / (result["device_ms"] * 1e-3) / 1e9)


@pytest.mark.parametrize("op_name, model", [("bn_relu", "resnet18"), ("lrn", "alexnet_paper"),
                                            ("conv2d", "alexnet_paper"), ("squeeze_excite", "se_resnet50")])
@pytest.mark.parametrize("training", [False, True])
def test_kernel_check_passes_the_reference_and_fails_a_wrong_op(op_name, model, training):
    op = get_op(op_name)
    case = capture_cases([op_name], [model], 1)[-1]
    generator = torch.Generator().manual_seed(0)
    tensors, kwargs = op.make_inputs(case, torch.float32, torch.device("cpu"), torch.channels_last, generator)
    grads = list(op.differentiable(tensors)) if training else []
    for name in grads:
        tensors[name].requires_grad_(True)
    args = (tensors, kwargs, grads, training, "fp32", generator, torch.device("cpu"))
    good = check_kernel(op, op.reference, *args)
    assert good["rel_error"] < 1e-6 and (good.get("grad_rel_error", 0) < 1e-6)
    assert ("grad_rel_error" in good) == training

    def off_by_a_bit(*a, **k):
        return op.reference(*a, **k) * 1.001

    bad = check_kernel(op, off_by_a_bit, *args)
    assert bad["rel_error"] == pytest.approx(1e-3, rel=0.01)


def test_a_kernel_check_is_not_a_number_where_any_output_or_gradient_is_not():
    """An infinity the reference has not, in the output or in any one gradient (here the last),
    makes the error NaN, which no bound passes."""
    op = get_op("bn_relu")
    case = capture_cases(["bn_relu"], ["resnet18"], 1)[0]
    generator = torch.Generator().manual_seed(0)
    tensors, kwargs = op.make_inputs(case, torch.float32, torch.device("cpu"), torch.channels_last, generator)
    grads = list(op.differentiable(tensors))
    assert grads[-1] == "bias"
    for name in grads:
        tensors[name].requires_grad_(True)
    args = (tensors, kwargs, grads, True, "fp32", generator, torch.device("cpu"))

    def infinite_bias_gradient(x, weight, bias, *rest, **options):
        bias = bias * 1.0
        bias.register_hook(lambda g: g * float("inf"))
        return op.reference(x, weight, bias, *rest, **options)

    result = check_kernel(op, infinite_bias_gradient, *args)
    assert result["rel_error"] < 1e-6 and math.isnan(result["grad_rel_error"])

    def one_infinity(*rest, **options):
        y = op.reference(*rest, **options)
        return y + torch.zeros_like(y).index_put_((torch.tensor(0),) * y.dim(), torch.tensor(float("inf")))

    assert math.isnan(check_kernel(op, one_infinity, *args)["rel_error"])


def test_compiled_kernel_is_checked_against_float64():
    case = capture_cases(["lrn"], ["alexnet_paper"], 1)[1]
    result = run_kernel(kernel_config("lrn", "compile", "train-backward", "fp32", case), torch.device("cpu"))
    assert result["tolerance"] == 1e-5
    assert result["rel_error"] < 1e-5 and result["grad_rel_error"] < 1e-5


def test_the_real_workloads_report_their_phases():
    seen = []
    case = capture_cases(["bn_relu"], ["resnet18"], 1)[0]
    kernel = {"kind": "kernel", "name": "bn_relu", "shape": case["shape"], "case": case, "backend": "torch",
              "mode": "infer", "dtype": "fp32", "batch_size": 1, "memory_format": "nchw", "device": "cpu",
              "warmup": 1, "repeats": 1, "min_time_s": 0.0}
    progress.listen(seen.append)
    try:
        run_kernel(kernel, torch.device("cpu"))
    finally:
        progress.listen(None)
    assert seen == ["building", "warming up", "timing"]  # eager torch is the reference: no check
