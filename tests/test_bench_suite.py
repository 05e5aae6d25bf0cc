"""Suites are data: loading, overrides, expansion, and every bad name."""

from __future__ import annotations

import pytest

from bench import suite as suites
from bench.kernel_cases import OPS, capture_cases


def test_every_suite_loads_and_expands():
    assert {"smoke", "default", "kernels", "device-check"} <= set(suites.list_suites())
    for name in ("smoke", "default"):
        configs = suites.expand(suites.load_suite(name))
        assert configs and all(c["kind"] == "model" for c in configs)


def test_default_covers_every_model_backend_dtype_mode_and_batch():
    import models

    configs = suites.expand(suites.load_suite("default"))
    assert {c["name"] for c in configs} == set(models.list_models())
    assert {c["backend"] for c in configs} == {"torch", "triton", "compile"}
    assert {c["dtype"] for c in configs} == {"bf16", "fp32"}
    assert {c["mode"] for c in configs} == {"infer", "train"}
    assert {c["batch_size"] for c in configs} == {64, 256}
    assert {c["memory_format"] for c in configs} == {"channels_last"}
    assert len(configs) == len(models.list_models()) * 3 * 2 * 2 * 2


def test_overrides_replace_the_lists_in_every_matrix_without_duplicates():
    configs = suites.expand(suites.load_suite("smoke"),
                            suites.Overrides(models=["resnet18"], backends=["torch"], dtypes=["bf16", "fp32"],
                                             batch_sizes=[1], input_size=32))
    keys = [(c["name"], c["backend"], c["mode"], c["dtype"], c["batch_size"], c["input_size"]) for c in configs]
    assert sorted(keys) == sorted([("resnet18", "torch", m, d, 1, 32) for m in ("infer", "train")
                                   for d in ("bf16", "fp32")])


def test_models_take_their_native_size_unless_the_suite_sets_one():
    configs = suites.expand(suites.load_suite("default"), suites.Overrides(models=["inception_v3", "alexnet_paper"]))
    assert {(c["name"], c["input_size"]) for c in configs} == {("inception_v3", 299), ("alexnet_paper", 227)}


@pytest.mark.parametrize("overrides, message", [
    (suites.Overrides(models=["resnet5"]), r"unknown model 'resnet5'; did you mean resnet50"),
    (suites.Overrides(backends=["cudnn"]), r"unknown backend 'cudnn'; choose from torch, triton, compile"),
    (suites.Overrides(dtypes=["fp8"]), r"unknown dtype 'fp8'; choose from fp32, tf32, fp16, bf16"),
    (suites.Overrides(modes=["eval"]), r"unknown mode 'eval'; choose from infer, train"),
    (suites.Overrides(memory_formats=["nhwc"]), r"unknown memory format 'nhwc'; choose from nchw, channels_last"),
    (suites.Overrides(batch_sizes=[0]), r"batch size must be a positive integer, got 0"),
])
def test_bad_overrides_name_the_valid_choices(overrides, message):
    with pytest.raises(ValueError, match=message):
        suites.expand(suites.load_suite("smoke"), overrides)


def test_unknown_suite_lists_the_suites():
    with pytest.raises(suites.SuiteError, match=r"unknown suite 'fast'; choose from default, device-check, kernels"):
        suites.load_suite("fast")


def test_unknown_op_lists_the_ops():
    with pytest.raises(suites.SuiteError, match=r"unknown op 'gelu'; choose from bn_relu, conv2d, lrn, squeeze_excite"):
        suites.expand(suites.load_suite("kernels"), suites.Overrides(ops=["gelu"]))


def test_kernel_cases_are_the_shapes_in_the_models():
    cases = capture_cases(["lrn", "conv2d", "bn_relu", "squeeze_excite"], ["alexnet_paper", "se_resnext50_32x4d"], 64)
    lrn = [c["shape"] for c in cases if c["op"] == "lrn"]
    assert lrn == ["64x96x55x55 n=5 a=0.0005 b=0.75 k=2", "64x256x27x27 n=5 a=0.0005 b=0.75 k=2"]
    convs = {c["shape"] for c in cases if c["op"] == "conv2d"}
    assert "64x96x27x27 k=5x5 s=1 p=2 d=1 g=2 -> 256" in convs  # AlexNet's conv2 on two GPUs
    assert "64x128x56x56 k=3x3 s=1 p=1 d=1 g=32 -> 128" in convs  # ResNeXt stage 1
    assert all(c["groups"] > 1 for c in cases if c["op"] == "conv2d")
    se = [c for c in cases if c["op"] == "squeeze_excite"]
    assert {c["shape"] for c in se} == {f"64x{c}x{s}x{s} hidden={c // 16} +res relu"
                                         for c, s in ((256, 56), (512, 28), (1024, 14), (2048, 7))}
    tail = [c for c in cases if c["op"] == "bn_relu" and c["residual"]]
    assert not tail  # in SE blocks the residual joins at the SE block, not the BN


def test_kernel_bytes_follow_the_contract_passes():
    (case,) = [c for c in capture_cases(["bn_relu"], ["resnet18"], 2) if c["shape"] == "2x64x56x56 +res relu"]
    numel = 2 * 64 * 56 * 56
    op = OPS["bn_relu"]
    assert op.bytes_moved(case, "infer", 2) == 3 * numel * 2  # read x and residual, write y
    assert op.bytes_moved(case, "train-forward", 2) == 4 * numel * 2
    assert op.bytes_moved(case, "train-backward", 2) == 8 * numel * 2


def test_conv_flops_equal_torchs_flop_counter():
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    cases = capture_cases(["conv2d"], ["alexnet_paper"], 4)
    assert len(cases) == 3  # conv2, conv4, conv5
    for case in cases:
        counter = FlopCounterMode(display=False)
        x = torch.empty(case["x"], device="meta")
        w = torch.empty(case["weight"], device="meta")
        with counter:
            torch.nn.functional.conv2d(x, w, None, case["stride"], case["padding"], case["dilation"], case["groups"])
        assert OPS["conv2d"].flops(case, "infer") == counter.get_total_flops()
