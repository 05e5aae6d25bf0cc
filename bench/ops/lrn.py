"""Cross-channel local response normalization: ``models.blocks.LocalResponseNorm``, ``kernels.lrn``."""

from __future__ import annotations

import torch.nn.functional as F

from ._registry import Op, random_tensor, register_op, shape_text


@register_op
class Lrn(Op):
    name = "lrn"
    # The kernel contract's passes: forward reads x and writes y; backward reads x and dy and
    # writes dx.
    passes = {"infer": 2, "train-forward": 2, "train-backward": 3}
    flops_per_element = {"infer": 16, "train-forward": 16, "train-backward": 24}

    @staticmethod
    def reference(x, size=5, alpha=1e-4, beta=0.75, k=2.0):
        return F.local_response_norm(x, size, alpha, beta, k)

    def module_type(self) -> type:
        from models import blocks

        return blocks.LocalResponseNorm

    def capture(self, module, args, kwargs):
        return {"x": list(args[0].shape), "size": module.size, "alpha": module.alpha, "beta": module.beta,
                "k": module.k}

    def make_inputs(self, case, dtype, device, memory_format, generator):
        return ({"x": random_tensor(case["x"], dtype, device, memory_format, generator=generator)},
                {"size": case["size"], "alpha": case["alpha"], "beta": case["beta"], "k": case["k"]})

    def describe(self, case):
        return shape_text(case["x"]) + f" n={case['size']} a={case['alpha']:g} b={case['beta']:g} k={case['k']:g}"
