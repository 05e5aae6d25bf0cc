"""Squeeze-and-excitation (+ residual) (+ ReLU): ``models.blocks.SqueezeExcite``, ``kernels.squeeze_excite``."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._registry import Op, random_tensor, register_op, shape_text


@register_op
class SqueezeExcite(Op):
    name = "squeeze_excite"
    # The kernel contract's passes: forward reads x for the squeeze, then x (and the residual)
    # and writes y; backward reads x and dy for the excitation's gradient, then reads x and dy
    # again and writes dx (and the residual's gradient).
    passes = {"infer": 3, "train-forward": 3, "train-backward": 5}
    flops_per_element = {"infer": 3, "train-forward": 3, "train-backward": 6}

    @staticmethod
    def reference(x, w1, b1, w2, b2, *, residual=None, relu=False):
        scale = x.mean((2, 3))
        scale = torch.sigmoid(F.linear(F.relu(F.linear(scale, w1.flatten(1), b1)), w2.flatten(1), b2))
        y = x * scale[:, :, None, None].to(x.dtype)
        if residual is not None:
            y = y + residual
        return F.relu(y) if relu else y

    def module_type(self) -> type:
        from models import blocks

        return blocks.SqueezeExcite

    def capture(self, module, args, kwargs):
        residual = kwargs.get("residual", args[1] if len(args) > 1 else None)
        return {"x": list(args[0].shape), "hidden": module.fc1.out_channels, "residual": residual is not None,
                "relu": bool(kwargs.get("relu", args[2] if len(args) > 2 else False))}

    def make_inputs(self, case, dtype, device, memory_format, generator):
        c, hidden = case["x"][1], case["hidden"]
        tensors = {"x": random_tensor(case["x"], dtype, device, memory_format, generator=generator),
                   "w1": random_tensor([hidden, c], dtype, device, scale=c ** -0.5, generator=generator),
                   "b1": random_tensor([hidden], dtype, device, scale=0.1, generator=generator),
                   "w2": random_tensor([c, hidden], dtype, device, scale=hidden ** -0.5, generator=generator),
                   "b2": random_tensor([c], dtype, device, scale=0.1, generator=generator)}
        if case["residual"]:
            tensors["residual"] = random_tensor(case["x"], dtype, device, memory_format, generator=generator)
        return tensors, {"relu": case["relu"]}

    def call(self, fn, tensors, kwargs, training):
        t = dict(tensors)
        return fn(t.pop("x"), t.pop("w1"), t.pop("b1"), t.pop("w2"), t.pop("b2"), residual=t.pop("residual", None),
                  **kwargs)

    def describe(self, case):
        return (shape_text(case["x"]) + f" hidden={case['hidden']}" + (" +res" if case["residual"] else "")
                + (" relu" if case["relu"] else ""))
