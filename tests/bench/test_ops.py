"""The ops (bench/ops/) and the backend registry: a new op is one file that registers itself, and
nothing else; the cases captured from the models, their bytes and FLOPs, and conv2d's path messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import ops, suite
from bench.backends import get_backend, list_backends
from bench.ops.conv2d import decisions_message, depthwise_cases
from tests import REPO

# An op as a contributor writes it, registered from outside bench/ops/: an elementwise scale at
# every 4-D ReLU of a model. The script expands a suite of it and runs its rows, as the worker does.
TOY_OP = '''
import json

import torch

from bench.errors import Skip
from bench.ops import Op, random_tensor, register_op
from bench.suite import expand
from bench.workloads import run_kernel


@register_op
class Scale(Op):
    name = "scale"
    passes = {"infer": 2, "train-forward": 2, "train-backward": 2}  # read x, write y; read dy, write dx
    flops_per_element = {"infer": 1, "train-forward": 1, "train-backward": 1}

    @staticmethod
    def reference(x, factor=2.0):
        return x * factor

    def module_type(self):
        return torch.nn.ReLU

    def capture(self, module, args, kwargs):
        return {"x": list(args[0].shape)} if args[0].dim() == 4 else None

    def make_inputs(self, case, dtype, device, memory_format, generator):
        return {"x": random_tensor(case["x"], dtype, device, memory_format, generator=generator)}, {"factor": 2.0}


toy = {"name": "toy", "timing": {"warmup": 1, "repeats": 2},
       "matrix": [{"kind": "kernel", "ops": ["scale"], "shapes_from": ["alexnet"], "backends": ["torch", "triton"],
                   "modes": ["infer", "train"], "dtypes": ["fp32"], "batch_sizes": [1]}]}
rows = []
for config in expand(toy):
    try:
        result = run_kernel(config, torch.device("cpu"))
    except Skip as reason:
        result = {"skipped": str(reason)}
    rows.append({"shape": config["shape"], "backend": config["backend"], "mode": config["mode"], **result})
print(json.dumps(rows))
'''


def test_a_new_op_runs_through_suites_and_rows_from_its_own_file():
    env = {**os.environ, "TRITON_INTERPRET": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO)] + [p for p in [os.environ.get("PYTHONPATH")] if p])}
    result = subprocess.run([sys.executable, "-c", TOY_OP], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    shapes = ["1x64x55x55", "1x192x27x27", "1x384x13x13", "1x256x13x13"]  # alexnet's conv ReLUs, each once
    assert [r["shape"] for r in rows if r["backend"] == "torch" and r["mode"] == "infer"] == shapes
    assert {(r["backend"], r["mode"]) for r in rows} == {(b, m) for b in ("torch", "triton")
                                                         for m in ("infer", "train-forward", "train-backward")}
    for row in rows:
        if row["backend"] == "triton":
            assert row == {"shape": row["shape"], "backend": "triton", "mode": row["mode"],
                           "skipped": "kernels.scale is not implemented yet"}
            continue
        n, c, h, w = map(int, row["shape"].split("x"))
        assert row["bytes_moved"] == 2 * n * c * h * w * 4 and row["flops"] == n * c * h * w
        assert row["samples"] == 2 and "rel_error" not in row  # eager torch is the baseline


def test_every_op_file_registers_its_op():
    files = sorted(p.stem for p in Path(ops.__file__).parent.glob("*.py") if not p.stem.startswith("_"))
    assert ops.list_ops() == files == ["bn_relu", "conv2d", "lrn", "squeeze_excite"]
    assert all(ops.get_op(name).name == name for name in files)


def test_an_unknown_op_or_backend_names_the_known_ones():
    with pytest.raises(ValueError, match=r"^unknown op 'gelu'; choose from bn_relu, conv2d, lrn, squeeze_excite$"):
        ops.get_op("gelu")
    with pytest.raises(ValueError, match=r"^unknown backend 'cudnn'; choose from compile, torch, triton$"):
        get_backend("cudnn")


def test_suites_name_the_registered_backends():
    """suite.BACKENDS names them without importing torch, in the order reports show them."""
    assert sorted(suite.BACKENDS) == list_backends()


def test_kernel_cases_are_the_shapes_in_the_models():
    cases = ops.capture_cases(["lrn", "conv2d", "bn_relu", "squeeze_excite"], ["alexnet_paper", "se_resnext50_32x4d"],
                              64)
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
    (case,) = [c for c in ops.capture_cases(["bn_relu"], ["resnet18"], 2) if c["shape"] == "2x64x56x56 +res relu"]
    numel = 2 * 64 * 56 * 56
    op = ops.get_op("bn_relu")
    assert op.bytes_moved(case, "infer", 2) == 3 * numel * 2  # read x and residual, write y
    assert op.bytes_moved(case, "train-forward", 2) == 4 * numel * 2
    assert op.bytes_moved(case, "train-backward", 2) == 8 * numel * 2


def test_conv_flops_equal_torchs_flop_counter():
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    cases = ops.capture_cases(["conv2d"], ["alexnet_paper"], 4)
    assert len(cases) == 3  # conv2, conv4, conv5
    for case in cases + depthwise_cases(["resnet50"], 4):
        counter = FlopCounterMode(display=False)
        x = torch.empty(case["x"], device="meta")
        w = torch.empty(case["weight"], device="meta")
        with counter:
            torch.nn.functional.conv2d(x, w, None, case["stride"], case["padding"], case["dilation"], case["groups"])
        assert ops.get_op("conv2d").flops(case, "infer") == counter.get_total_flops()


# resnet50's 3x3 layers (input channels, input size, stride), in order: one per stage, and the
# stride-2 first block of stages 2-4 (torchvision's layout: the stride is on the 3x3).
RESNET50_3X3 = [(64, 56, 1), (128, 56, 2), (128, 28, 1), (256, 28, 2), (256, 14, 1), (512, 14, 2), (512, 7, 1)]


def test_depthwise_cases_come_from_resnet50s_3x3_layers():
    cases = depthwise_cases(["resnet50"], 2)
    expected = [(c, size, stride, k) for c, size, stride in RESNET50_3X3 for k in (3, 5)]
    assert [(c["x"][1], c["x"][2], c["stride"][0], c["weight"][2]) for c in cases] == expected
    for case in cases:
        n, c, h, w = case["x"]
        k, stride = case["weight"][2], case["stride"][0]
        assert n == 2 and h == w and case["weight"] == [c, 1, k, k] and case["groups"] == c
        assert case["y"] == [2, c, (h - 1) // stride + 1, (w - 1) // stride + 1]
        assert case["padding"] == [k // 2] * 2 and case["stride"] == [stride] * 2 and case["dilation"] == [1, 1]
        assert case["bias"] is False and case["op"] == "conv2d"
        assert case["models"] == ["resnet50 (3x3 -> depthwise)"]
    assert len({c["shape"] for c in cases}) == len(cases) == 14
    assert cases[3]["shape"] == "2x128x56x56 k=5x5 s=2 p=2 d=1 g=128 -> 128"


def test_depthwise_bytes_follow_the_conv_formula():
    case = depthwise_cases(["resnet50"], 64)[0]  # 64x64x56x56, 3x3, stride 1
    x = y = 64 * 64 * 56 * 56
    conv2d = ops.get_op("conv2d")
    assert conv2d.bytes_moved(case, "infer", 2) == (x + 64 * 9 + y) * 2
    assert conv2d.bytes_moved(case, "train-backward", 2) == 2 * (x + 64 * 9 + y) * 2
    assert conv2d.flops(case, "infer") == 2 * y * 9


def decision(direction, path, source="rule", times=None):
    return {"direction": direction, "path": path, "source": source, "times_ms": times or {}}


def test_conv2d_messages_are_one_line_per_row():
    measured = [decision("weight_grad", "triton-grouped", "cache", {"torch": 0.2, "triton-grouped": 0.15}),
                decision("forward", "torch", "measured", {"triton-grouped": 0.1234, "torch": 0.101})]
    assert decisions_message(measured, "paths") == "paths: forward=torch; weight_grad=triton-grouped"
    assert decisions_message(measured, "auto") == ("auto: forward=torch (triton 0.123 ms, torch 0.101 ms); "
                                                "weight_grad=triton-grouped (cached: triton 0.150 ms, torch 0.200 ms)")
    model = [decision("forward", "triton-grouped")] * 3 + [decision("forward", "torch"),
                                                           decision("input_grad", "triton-depthwise")]
    assert decisions_message(model, "counts") == ("conv2d shapes: forward torch 1, triton-grouped 3; "
                                               "input_grad triton-depthwise 1")
    assert decisions_message([], "paths") is None
