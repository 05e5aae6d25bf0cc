"""The hot-path ops, and the shapes at which they occur in the models.

Benchmark cases are never invented: :func:`capture_cases` builds the named models on the meta
device, runs one forward with hooks on the blocks the Triton kernels replace, and records
every distinct call (input shape and the block's arguments); :func:`depthwise_cases` derives
depthwise convolutions from the models' 3x3 layers the same way (groups = channels). Each op knows how to make its
inputs, its torch reference, and the bytes and FLOPs of a case, counted as
``../shared/kernel-contract.md`` prescribes: whole-tensor passes over memory of the best
algorithm, so that a percentage of the copy bandwidth means the same for every kernel.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F


def _numel(shape) -> int:
    return math.prod(shape)


def _fmt(shape) -> str:
    return "x".join(map(str, shape))


# --- torch references: the eager path each Triton kernel replaces ---------------------------

def bn_relu_reference(x, weight, bias, running_mean, running_var, *, training, momentum=0.1, eps=1e-5,
                      relu=True, residual=None):
    y = F.batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)
    if residual is not None:
        y = y + residual
    return F.relu(y) if relu else y


def lrn_reference(x, size=5, alpha=1e-4, beta=0.75, k=2.0):
    return F.local_response_norm(x, size, alpha, beta, k)


def conv2d_reference(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return F.conv2d(x, weight, bias, stride, padding, dilation, groups)


def squeeze_excite_reference(x, w1, b1, w2, b2, *, residual=None, relu=False):
    scale = x.mean((2, 3))
    scale = torch.sigmoid(F.linear(F.relu(F.linear(scale, w1.flatten(1), b1)), w2.flatten(1), b2))
    y = x * scale[:, :, None, None].to(x.dtype)
    if residual is not None:
        y = y + residual
    return F.relu(y) if relu else y


@dataclass(frozen=True)
class Op:
    """One hot-path op: how to find it in a model, build its inputs, and count its traffic."""

    name: str
    module_type: Callable[[], type]  # lazily, so importing this file does not import models
    capture: Callable  # (module, args, kwargs) -> case dict or None
    make_inputs: Callable  # (case, dtype, device, memory_format, training) -> (tensors, kwargs)
    reference: Callable
    passes: dict  # mode -> whole-tensor passes (elementwise ops)
    flops_per_element: dict

    def modes(self, mode: str) -> list[str]:
        return ["infer"] if mode == "infer" else ["train-forward", "train-backward"]

    def bytes_moved(self, case: dict, mode: str, element_size: int) -> int:
        if self.name == "conv2d":
            x, w, y = _numel(case["x"]), _numel(case["weight"]), _numel(case["y"])
            one = (x + w + y) * element_size  # forward; each backward (data, weight) likewise
            return one if mode in ("infer", "train-forward") else 2 * one
        passes = self.passes[mode] + (1 if case.get("residual") else 0)
        return passes * _numel(case["x"]) * element_size

    def flops(self, case: dict, mode: str) -> int:
        if self.name == "conv2d":
            n, c_out, h_out, w_out = case["y"]
            _, c_in_per_group, kh, kw = case["weight"]
            forward = 2 * n * c_out * h_out * w_out * c_in_per_group * kh * kw
            return forward if mode in ("infer", "train-forward") else 2 * forward
        return self.flops_per_element[mode] * _numel(case["x"])


def _tensor(shape, dtype, device, memory_format=torch.contiguous_format, scale=1.0, generator=None):
    t = torch.randn(shape, dtype=torch.float32, generator=generator) * scale
    t = t.to(device=device, dtype=dtype)
    return t.contiguous(memory_format=memory_format) if t.dim() == 4 else t


def _capture_bn(module, args, kwargs):
    residual = kwargs.get("residual", args[1] if len(args) > 1 else None)
    return {"x": list(args[0].shape), "relu": bool(module.relu), "residual": residual is not None,
            "eps": module.eps}


def _inputs_bn(case, dtype, device, memory_format, generator):
    c = case["x"][1]
    tensors = {"x": _tensor(case["x"], dtype, device, memory_format, generator=generator),
               "weight": _tensor([c], torch.float32, device, generator=generator) * 0.2 + 1.0,
               "bias": _tensor([c], torch.float32, device, generator=generator) * 0.1,
               "running_mean": _tensor([c], torch.float32, device, generator=generator) * 0.1,
               "running_var": torch.rand(c, generator=generator).to(device) + 0.5}
    if case["residual"]:
        tensors["residual"] = _tensor(case["x"], dtype, device, memory_format, generator=generator)
    return tensors, {"relu": case["relu"], "eps": case["eps"]}


def _capture_lrn(module, args, kwargs):
    return {"x": list(args[0].shape), "size": module.size, "alpha": module.alpha, "beta": module.beta,
            "k": module.k}


def _inputs_lrn(case, dtype, device, memory_format, generator):
    return ({"x": _tensor(case["x"], dtype, device, memory_format, generator=generator)},
            {"size": case["size"], "alpha": case["alpha"], "beta": case["beta"], "k": case["k"]})


def _capture_conv(module, args, kwargs):
    if module.groups == 1:
        return None  # dense convolution stays with cuDNN
    x = args[0]
    y_shape = list(module._conv_forward(torch.empty(x.shape, device="meta"), module.weight.to("meta"), None).shape) \
        if x.device.type != "meta" else list(F.conv2d(x, module.weight, None, module.stride, module.padding,
                                                       module.dilation, module.groups).shape)
    return {"x": list(x.shape), "weight": list(module.weight.shape), "y": y_shape, "stride": list(module.stride),
            "padding": list(module.padding), "dilation": list(module.dilation), "groups": module.groups,
            "bias": module.bias is not None}


def _inputs_conv(case, dtype, device, memory_format, generator):
    fan_in = _numel(case["weight"][1:])
    tensors = {"x": _tensor(case["x"], dtype, device, memory_format, generator=generator),
               "weight": _tensor(case["weight"], dtype, device, memory_format, scale=fan_in ** -0.5,
                                 generator=generator)}
    if case["bias"]:
        tensors["bias"] = _tensor([case["weight"][0]], dtype, device, generator=generator)
    return tensors, {"stride": tuple(case["stride"]), "padding": tuple(case["padding"]),
                     "dilation": tuple(case["dilation"]), "groups": case["groups"]}


def _capture_se(module, args, kwargs):
    residual = kwargs.get("residual", args[1] if len(args) > 1 else None)
    return {"x": list(args[0].shape), "hidden": module.fc1.out_channels, "residual": residual is not None,
            "relu": bool(kwargs.get("relu", args[2] if len(args) > 2 else False))}


def _inputs_se(case, dtype, device, memory_format, generator):
    c, hidden = case["x"][1], case["hidden"]
    tensors = {"x": _tensor(case["x"], dtype, device, memory_format, generator=generator),
               "w1": _tensor([hidden, c], dtype, device, scale=c ** -0.5, generator=generator),
               "b1": _tensor([hidden], dtype, device, scale=0.1, generator=generator),
               "w2": _tensor([c, hidden], dtype, device, scale=hidden ** -0.5, generator=generator),
               "b2": _tensor([c], dtype, device, scale=0.1, generator=generator)}
    if case["residual"]:
        tensors["residual"] = _tensor(case["x"], dtype, device, memory_format, generator=generator)
    return tensors, {"relu": case["relu"]}


def _blocks():
    from models import blocks

    return blocks


OPS: dict[str, Op] = {
    # Passes from the kernel contract; SE backward: read x and dy for the excitation's
    # gradient, then read x and dy again and write dx (+ the residual's gradient).
    "bn_relu": Op("bn_relu", lambda: _blocks().BatchNormReLU2d, _capture_bn, _inputs_bn, bn_relu_reference,
                  passes={"infer": 2, "train-forward": 3, "train-backward": 7},
                  flops_per_element={"infer": 3, "train-forward": 7, "train-backward": 11}),
    "lrn": Op("lrn", lambda: _blocks().LocalResponseNorm, _capture_lrn, _inputs_lrn, lrn_reference,
              passes={"infer": 2, "train-forward": 2, "train-backward": 3},
              flops_per_element={"infer": 16, "train-forward": 16, "train-backward": 24}),
    "conv2d": Op("conv2d", lambda: torch.nn.Conv2d, _capture_conv, _inputs_conv, conv2d_reference,
                 passes={}, flops_per_element={}),
    "squeeze_excite": Op("squeeze_excite", lambda: _blocks().SqueezeExcite, _capture_se, _inputs_se,
                         squeeze_excite_reference,
                         passes={"infer": 3, "train-forward": 3, "train-backward": 5},
                         flops_per_element={"infer": 3, "train-forward": 3, "train-backward": 6}),
}


def describe(case: dict) -> str:
    """A short, unique, human-readable shape string: the ``shape`` column of kernel rows."""
    op = case["op"]
    text = _fmt(case["x"])
    if op == "bn_relu":
        text += (" +res" if case["residual"] else "") + (" relu" if case["relu"] else "")
    elif op == "lrn":
        text += f" n={case['size']} a={case['alpha']:g} b={case['beta']:g} k={case['k']:g}"
    elif op == "conv2d":
        kh, kw = case["weight"][2:]
        text += (f" k={kh}x{kw} s={case['stride'][0]} p={case['padding'][0]} d={case['dilation'][0]} "
                 f"g={case['groups']} -> {case['weight'][0]}")
    elif op == "squeeze_excite":
        text += f" hidden={case['hidden']}" + (" +res" if case["residual"] else "") + (" relu" if case["relu"] else "")
    return text


def _matches(module, module_type) -> bool:
    """nn.Conv2d exactly (a subclass may compute something else); the blocks and their subclasses."""
    return type(module) is module_type or (module_type is not torch.nn.Conv2d and isinstance(module, module_type))


def _trace(model_name: str, batch_size: int, wanted: Callable, record: Callable) -> None:
    """Call ``record(module, args, kwargs)`` for every call, in one forward of ``model_name`` at
    ``batch_size``, of a module for which ``wanted(module)``."""
    for module, args, kwargs in _module_calls(model_name, batch_size):
        if wanted(module):
            record(module, args, kwargs)


@functools.lru_cache(maxsize=None)
def _meta_model(model_name: str) -> torch.nn.Module:
    """The model on the meta device, built once: its initialisation costs as much as a forward."""
    import models

    with torch.device("meta"):
        return models.create(model_name).eval()


@functools.lru_cache(maxsize=None)
def _module_calls(model_name: str, batch_size: int) -> tuple:
    """Every module call of one forward of ``model_name`` on the meta device at its native input
    size, as ``(module, args, kwargs)`` in the order the calls finish. Cached: a suite asks for
    the same model and batch size once per op and matrix."""
    import models

    model = _meta_model(model_name)
    size = models.get_entry(model_name).input_size
    calls = []
    handles = [module.register_forward_hook(lambda m, args, kwargs, output: calls.append((m, args, kwargs)),
                                            with_kwargs=True) for module in model.modules()]
    try:
        with torch.no_grad():
            model(torch.empty(batch_size, 3, size, size, device="meta"))
    finally:
        for handle in handles:
            handle.remove()
    return tuple(calls)


def _add(cases: dict, case: dict, source: str) -> None:
    """Record ``case`` once per (op, shape string), noting every model it comes from."""
    case["shape"] = describe(case)
    cases.setdefault((case["op"], case["shape"]), {**case, "models": []})["models"].append(source)


def _sorted_sources(cases: dict) -> list[dict]:
    for case in cases.values():
        case["models"] = sorted(set(case["models"]))
    return list(cases.values())


def capture_cases(ops: list[str], model_names: list[str], batch_size: int) -> list[dict]:
    """Distinct calls of each op in the named models at ``batch_size``, in order of appearance."""
    cases: dict[tuple, dict] = {}
    for model_name in model_names:
        types = [(OPS[op_name], OPS[op_name].module_type()) for op_name in ops]

        def record(module, args, kwargs, model_name=model_name, types=types):
            for op, module_type in types:
                case = op.capture(module, args, kwargs) if _matches(module, module_type) else None
                if case is not None:
                    _add(cases, {**case, "op": op.name}, model_name)

        _trace(model_name, batch_size, lambda m, types=types: any(_matches(m, t) for _, t in types), record)
    return _sorted_sources(cases)


DEPTHWISE_KERNEL_SIZES = (3, 5)


def depthwise_cases(model_names: list[str], batch_size: int,
                    kernel_sizes: tuple[int, ...] = DEPTHWISE_KERNEL_SIZES) -> list[dict]:
    """Depthwise convolutions derived from the named models' 3x3 convolutions at ``batch_size``.

    For every distinct call of a 3x3 ``nn.Conv2d`` (input ``[N, C, H, W]``, its stride) and each
    ``k`` in ``kernel_sizes``: groups = C_in = C_out = C, weight ``[C, 1, k, k]``, padding
    ``k // 2``, the layer's stride, dilation 1, no bias; in order of appearance, ``k`` innermost.
    Each case's ``models`` says where it comes from: ``"resnet50 (3x3 -> depthwise)"``.
    """
    cases: dict[tuple, dict] = {}
    for model_name in model_names:
        layers: list[tuple] = []
        _trace(model_name, batch_size, lambda m: type(m) is torch.nn.Conv2d and tuple(m.kernel_size) == (3, 3),
               lambda m, args, kwargs: layers.append((list(args[0].shape), list(m.stride))))
        if not layers:
            raise ValueError(f"depthwise_from: {model_name} has no 3x3 convolution to derive depthwise cases from")
        for x, stride in layers:
            c = x[1]
            for k in kernel_sizes:
                y = F.conv2d(torch.empty(x, device="meta"), torch.empty(c, 1, k, k, device="meta"), None, stride,
                             k // 2, 1, c)
                _add(cases, {"op": "conv2d", "x": x, "weight": [c, 1, k, k], "y": list(y.shape), "stride": stride,
                             "padding": [k // 2, k // 2], "dilation": [1, 1], "groups": c, "bias": False},
                     f"{model_name} (3x3 -> depthwise)")
    return _sorted_sources(cases)
