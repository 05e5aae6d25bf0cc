"""Grouped and depthwise convolution: every ``nn.Conv2d`` with ``groups > 1``, ``kernels.conv2d``.

Beyond the models' own grouped layers, :func:`depthwise_cases` derives depthwise convolutions
from the models' 3x3 layers (groups = channels). ``kernels.conv2d`` picks a path per direction
(``triton-depthwise``, ``triton-grouped`` or ``torch``), measured against cuDNN on a GPU unless a
policy is forced: a ``triton`` row runs under the ``triton`` policy and says which paths ran
(:func:`decisions_message`).
"""

from __future__ import annotations

import contextlib
import sys

import torch
import torch.nn.functional as F

from ..errors import one_line
from ..progress import phase
from ._capture import CaseSet, module_calls
from ._registry import Op, numel, random_tensor, register_op, shape_text

DEPTHWISE_KERNEL_SIZES = (3, 5)
DIRECTIONS = ("forward", "input_grad", "weight_grad")


@register_op
class Conv2d(Op):
    name = "conv2d"

    @staticmethod
    def reference(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)

    def module_type(self) -> type:
        return torch.nn.Conv2d

    def matches(self, module):
        """``nn.Conv2d`` exactly: a subclass may compute something else."""
        return type(module) is torch.nn.Conv2d

    def capture(self, module, args, kwargs):
        if module.groups == 1:
            return None  # dense convolution stays with cuDNN
        x = args[0]
        if x.device.type == "meta":
            y = F.conv2d(x, module.weight, None, module.stride, module.padding, module.dilation, module.groups)
        else:
            y = module._conv_forward(torch.empty(x.shape, device="meta"), module.weight.to("meta"), None)
        return {"x": list(x.shape), "weight": list(module.weight.shape), "y": list(y.shape),
                "stride": list(module.stride), "padding": list(module.padding), "dilation": list(module.dilation),
                "groups": module.groups, "bias": module.bias is not None}

    def make_inputs(self, case, dtype, device, memory_format, generator):
        fan_in = numel(case["weight"][1:])
        tensors = {"x": random_tensor(case["x"], dtype, device, memory_format, generator=generator),
                   "weight": random_tensor(case["weight"], dtype, device, memory_format, scale=fan_in ** -0.5,
                                           generator=generator)}
        if case["bias"]:
            tensors["bias"] = random_tensor([case["weight"][0]], dtype, device, generator=generator)
        return tensors, {"stride": tuple(case["stride"]), "padding": tuple(case["padding"]),
                         "dilation": tuple(case["dilation"]), "groups": case["groups"]}

    def describe(self, case):
        kh, kw = case["weight"][2:]
        return (shape_text(case["x"]) + f" k={kh}x{kw} s={case['stride'][0]} p={case['padding'][0]} "
                f"d={case['dilation'][0]} g={case['groups']} -> {case['weight'][0]}")

    def bytes_moved(self, case, mode, element_size):
        """Input, weight and output once each, forward; as much again for the two backwards."""
        one = (numel(case["x"]) + numel(case["weight"]) + numel(case["y"])) * element_size
        return one if mode in ("infer", "train-forward") else 2 * one

    def flops(self, case, mode):
        n, c_out, h_out, w_out = case["y"]
        _, c_in_per_group, kh, kw = case["weight"]
        forward = 2 * n * c_out * h_out * w_out * c_in_per_group * kh * kw
        return forward if mode in ("infer", "train-forward") else 2 * forward

    @contextlib.contextmanager
    def policy(self, backend):
        """A triton row measures the Triton kernels themselves, never cuDNN under their name; earlier
        rows' decisions are forgotten, so that the row's message is its own."""
        taken_decisions()
        if backend != "triton":
            yield
            return
        import kernels

        with kernels.conv2d_dispatch("triton"):
            yield

    def message(self, backend, device, run_again):
        """A triton row: the paths that ran, and on a GPU what the default ``auto`` policy chooses
        when the op runs once more, with the times it measured."""
        if backend != "triton":
            return None
        messages = [decisions_message(taken_decisions(), "paths")]
        if device.type == "cuda":
            phase("timing the dispatcher's own choice")
            try:
                run_again()
                messages.append(decisions_message(taken_decisions(), "auto"))
            except Exception as error:  # noqa: BLE001 - the row measured the Triton path; say what failed
                messages.append(f"auto: failed ({one_line(error)})")
        return " | ".join(m for m in messages if m) or None


def depthwise_cases(model_names: list[str], batch_size: int,
                    kernel_sizes: tuple[int, ...] = DEPTHWISE_KERNEL_SIZES) -> list[dict]:
    """Depthwise convolutions derived from the named models' 3x3 convolutions at ``batch_size``.

    For every distinct call of a 3x3 ``nn.Conv2d`` (input ``[N, C, H, W]``, its stride) and each
    ``k`` in ``kernel_sizes``: groups = C_in = C_out = C, weight ``[C, 1, k, k]``, padding
    ``k // 2``, the layer's stride, dilation 1, no bias; in order of appearance, ``k`` innermost.
    Each case's ``models`` says where it comes from: ``"resnet50 (3x3 -> depthwise)"``.
    """
    cases = CaseSet()
    for model_name in model_names:
        layers = [(list(args[0].shape), list(m.stride)) for m, args, _ in module_calls(model_name, batch_size)
                  if type(m) is torch.nn.Conv2d and tuple(m.kernel_size) == (3, 3)]
        if not layers:
            raise ValueError(f"depthwise_from: {model_name} has no 3x3 convolution to derive depthwise cases from")
        for x, stride in layers:
            c = x[1]
            for k in kernel_sizes:
                y = F.conv2d(torch.empty(x, device="meta"), torch.empty(c, 1, k, k, device="meta"), None, stride,
                             k // 2, 1, c)
                cases.add({"op": "conv2d", "x": x, "weight": [c, 1, k, k], "y": list(y.shape), "stride": stride,
                           "padding": [k // 2, k // 2], "dilation": [1, 1], "groups": c, "bias": False},
                          f"{model_name} (3x3 -> depthwise)")
    return cases.cases()


def taken_decisions() -> list[dict]:
    """The conv2d dispatcher's decisions since the last call (then forgotten); [] if none could be taken."""
    kernels = sys.modules.get("kernels")
    return kernels.conv2d_decisions(clear=True) if hasattr(kernels, "conv2d_decisions") else []


def _times(decision: dict) -> str:
    """'triton 0.123 ms, torch 0.101 ms' (Triton first), 'cached: ...', or why nothing was timed."""
    times = sorted((decision.get("times_ms") or {}).items(), key=lambda item: item[0] == "torch")
    if not times:
        return decision["source"]
    text = ", ".join(f"{path.split('-')[0]} {ms:.3f} ms" for path, ms in times)
    return f"cached: {text}" if decision["source"] == "cache" else text


def decisions_message(decisions: list[dict], how: str) -> str | None:
    """The decisions in one line, directions in order (None if there are none).

    ``how``: "paths" (a kernel row's own: ``paths: forward=triton-grouped; ...``), "auto" (the
    dispatcher's own choice with the times it measured: ``auto: forward=torch (triton 0.123 ms,
    torch 0.101 ms); ...``), "counts" (a model row: shapes per path, ``conv2d shapes: forward
    triton-grouped 16, torch 2; ...``)."""
    parts = []
    for direction in DIRECTIONS:
        mine = [d for d in decisions if d["direction"] == direction]
        if not mine:
            continue
        if how == "paths":
            parts.append(f"{direction}=" + "/".join(sorted({d['path'] for d in mine})))
        elif how == "auto":
            parts.append(f"{direction}=" + ", ".join(f"{d['path']} ({_times(d)})" for d in mine))
        else:
            paths = [d["path"] for d in mine]
            parts.append(f"{direction} " + ", ".join(f"{p} {paths.count(p)}" for p in sorted(set(paths))))
    label = {"paths": "paths", "auto": "auto", "counts": "conv2d shapes"}[how]
    return f"{label}: " + "; ".join(parts) if parts else None
