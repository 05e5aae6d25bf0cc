"""What an op is to the harness, and the registry of ops.

An op file in ``bench/ops/`` defines one subclass of :class:`Op` and decorates it with
:func:`register_op`, as a model family file decorates its builders with ``register_model``.
"""

from __future__ import annotations

import contextlib
import math
from typing import Callable

import torch

from ..registry import Registry


def numel(shape) -> int:
    return math.prod(shape)


def shape_text(shape) -> str:
    """``[64, 256, 56, 56]`` as ``64x256x56x56``: how a shape string starts."""
    return "x".join(map(str, shape))


def random_tensor(shape, dtype, device, memory_format=torch.contiguous_format, scale=1.0, generator=None):
    """Normal values times ``scale``, drawn in fp32 on the CPU from ``generator`` (the same values on
    every device and dtype), stored as ``dtype`` on ``device``, 4-D tensors in ``memory_format``. On
    the meta device (the kernel inspector's captures) there are no values to draw."""
    if torch.device(device).type == "meta":
        t = torch.empty(shape, dtype=dtype, device=device)
    else:
        t = (torch.randn(shape, dtype=torch.float32, generator=generator) * scale).to(device=device, dtype=dtype)
    return t.contiguous(memory_format=memory_format) if t.dim() == 4 else t


class Op:
    """One hot-path op: where it occurs in the models, its inputs, its torch reference, how to call
    it, the shape string of a case, and its bytes and FLOPs.

    A case is a dict: what :meth:`capture` returns, plus ``op`` (the op's name), ``shape`` (from
    :meth:`describe`) and ``models`` (where it occurs). Bytes are counted as
    ``../shared/kernel-contract.md`` prescribes: whole-tensor passes over memory of the best
    algorithm, so that a percentage of the copy bandwidth means the same for every op. The
    defaults fit an elementwise op on ``case["x"]``: ``passes`` and ``flops_per_element`` per mode,
    one pass more when the case has a residual.
    """

    name: str
    passes: dict[str, int] = {}  # mode -> whole-tensor passes over x
    flops_per_element: dict[str, int] = {}  # mode -> FLOPs per element of x

    # The torch op each backend is measured against, as a staticmethod taking what :meth:`call`
    # passes; the check runs it in float64 on the CPU.
    reference: Callable

    def module_type(self) -> type:
        """The module whose calls are this op's cases; imported here, not at the top of the op's
        file, so that importing the ops does not build the model zoo."""
        raise NotImplementedError

    def matches(self, module: torch.nn.Module) -> bool:
        """Whether :meth:`capture` should see this module's calls: instances of :meth:`module_type`."""
        return isinstance(module, self.module_type())

    def capture(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> dict | None:
        """The case of one call of ``module`` (shapes and arguments, JSON values only), or None when
        this call is not one the op's kernel replaces."""
        raise NotImplementedError

    def make_inputs(self, case: dict, dtype: torch.dtype, device: torch.device, memory_format,
                    generator: torch.Generator) -> tuple[dict, dict]:
        """``(tensors, kwargs)`` for one call at ``case``: tensors by argument name, drawn from
        ``generator``; kwargs the case's other arguments."""
        raise NotImplementedError

    def call(self, fn: Callable, tensors: dict, kwargs: dict, training: bool):
        """``fn`` (the reference or a backend's function) on the inputs of :meth:`make_inputs`."""
        return fn(**tensors, **kwargs)

    def differentiable(self, tensors: dict) -> dict:
        """The inputs a backward computes gradients for: every floating-point tensor."""
        return {k: v for k, v in tensors.items() if v.is_floating_point()}

    def describe(self, case: dict) -> str:
        """A short, unique, human-readable shape string: the ``shape`` column of kernel rows."""
        return shape_text(case["x"])

    def modes(self, mode: str) -> list[str]:
        """The kernel modes a suite's mode stands for."""
        return ["infer"] if mode == "infer" else ["train-forward", "train-backward"]

    def bytes_moved(self, case: dict, mode: str, element_size: int) -> int:
        passes = self.passes[mode] + (1 if case.get("residual") else 0)
        return passes * numel(case["x"]) * element_size

    def flops(self, case: dict, mode: str) -> int:
        return self.flops_per_element[mode] * numel(case["x"])

    def policy(self, backend: str):
        """The context a row's check and timing run in, for ``backend`` (default: none)."""
        return contextlib.nullcontext()

    def message(self, backend: str, device: torch.device, run_again: Callable[[], None]) -> str | None:
        """What a row of ``backend`` says beyond its numbers, after its timing (default: nothing).
        ``run_again()`` calls the op once more outside :meth:`policy`, with the backward when the
        row measures it."""
        return None


_OPS = Registry("op")
register_op = _OPS.register  # a class decorator: ``@register_op`` above a subclass of Op
list_ops = _OPS.names
get_op = _OPS.get
