"""Fused BatchNorm (+ residual) (+ ReLU): ``models.blocks.BatchNormReLU2d``, ``kernels.bn_relu``."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._registry import Op, random_tensor, register_op, shape_text


@register_op
class BnRelu(Op):
    name = "bn_relu"
    # The kernel contract's passes: inference reads x and writes y; a training forward reads x
    # once more for the statistics; its backward reads x, y and dy twice (reductions, then dx)
    # and writes dx.
    passes = {"infer": 2, "train-forward": 3, "train-backward": 7}
    flops_per_element = {"infer": 3, "train-forward": 7, "train-backward": 11}

    @staticmethod
    def reference(x, weight, bias, running_mean, running_var, *, training, momentum=0.1, eps=1e-5, relu=True,
                  residual=None):
        y = F.batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)
        if residual is not None:
            y = y + residual
        return F.relu(y) if relu else y

    def module_type(self) -> type:
        from models import blocks

        return blocks.BatchNormReLU2d

    def capture(self, module, args, kwargs):
        residual = kwargs.get("residual", args[1] if len(args) > 1 else None)
        return {"x": list(args[0].shape), "relu": bool(module.relu), "residual": residual is not None,
                "eps": module.eps}

    def make_inputs(self, case, dtype, device, memory_format, generator):
        c = case["x"][1]
        tensors = {"x": random_tensor(case["x"], dtype, device, memory_format, generator=generator),
                   "weight": random_tensor([c], torch.float32, device, generator=generator) * 0.2 + 1.0,
                   "bias": random_tensor([c], torch.float32, device, generator=generator) * 0.1,
                   "running_mean": random_tensor([c], torch.float32, device, generator=generator) * 0.1,
                   "running_var": torch.rand(c, generator=generator).to(device) + 0.5}
        if case["residual"]:
            tensors["residual"] = random_tensor(case["x"], dtype, device, memory_format, generator=generator)
        return tensors, {"relu": case["relu"], "eps": case["eps"]}

    def call(self, fn, tensors, kwargs, training):
        t = dict(tensors)
        return fn(t.pop("x"), t.pop("weight"), t.pop("bias"), t.pop("running_mean"), t.pop("running_var"),
                  training=training, residual=t.pop("residual", None), **kwargs)

    def differentiable(self, tensors):
        """Every floating-point input but the running statistics, which are buffers."""
        return {k: v for k, v in super().differentiable(tensors).items() if k not in ("running_mean", "running_var")}

    def describe(self, case):
        return shape_text(case["x"]) + (" +res" if case["residual"] else "") + (" relu" if case["relu"] else "")
