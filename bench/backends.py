"""The backends a configuration runs on, one registry entry each (as TorchBench's backends).

A backend turns an eager model into the model it measures (:meth:`Backend.model`) and an op into
the function it measures (:meth:`Backend.kernel`): ``torch`` is eager PyTorch (cuDNN on a GPU),
``triton`` the project's Triton kernels (``kernels.patch`` / ``kernels.<op>``), ``compile``
``torch.compile`` of the eager path. A backend that cannot run here raises :class:`Skip` with the
reason: it is never silently replaced by another. ``bench.suite.BACKENDS`` names the same
backends without importing torch, for checking suites and arguments.
"""

from __future__ import annotations

import os
from typing import Callable

import torch

from .errors import Skip
from .registry import Registry


class Backend:
    name: str

    def model(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """The model this backend runs, made from the eager ``model`` on ``device``."""
        raise NotImplementedError

    def kernel(self, op, device: torch.device) -> Callable:
        """The function this backend runs for ``op`` (a :class:`bench.ops.Op`), called as the op's
        reference is."""
        raise NotImplementedError

    def compiles(self, device: torch.device) -> bool:
        """Whether the first calls on ``device`` compile (the check makes them)."""
        return False


_BACKENDS = Registry("backend")
register_backend = _BACKENDS.register  # a class decorator: ``@register_backend`` above a subclass of Backend
list_backends = _BACKENDS.names
get_backend = _BACKENDS.get


def compile_fresh(fn):
    """``torch.compile`` specialised to this configuration's shapes.

    One worker runs many configurations: without a reset, dynamo would turn shapes dynamic
    after the second one and, past its recompile limit, quietly run the function eagerly -
    timing eager under the name of compile.
    """
    torch._dynamo.reset()
    return torch.compile(fn, dynamic=False)


def triton_available(device: torch.device) -> None:
    if device.type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
        raise Skip("triton needs a CUDA GPU, or TRITON_INTERPRET=1 to run its interpreter on the CPU")
    try:
        import triton  # noqa: F401
    except ImportError:
        raise Skip("triton is not installed") from None


@register_backend
class Torch(Backend):
    name = "torch"

    def model(self, model, device):
        return model

    def kernel(self, op, device):
        return op.reference


@register_backend
class Compile(Backend):
    name = "compile"

    def model(self, model, device):
        return compile_fresh(model)

    def kernel(self, op, device):
        # The benchmark replays one backward graph many times (retain_graph=True), which
        # donated buffers forbid; donation saves memory, not time.
        import torch._functorch.config as functorch_config

        if hasattr(functorch_config, "donated_buffer"):
            functorch_config.donated_buffer = False
        return compile_fresh(op.reference)

    def compiles(self, device):
        return True


@register_backend
class Triton(Backend):
    name = "triton"

    def model(self, model, device):
        triton_available(device)
        import kernels

        if not hasattr(kernels, "patch"):
            raise Skip("kernels.patch is not implemented yet: this build has no Triton kernels")
        return kernels.patch(model)

    def kernel(self, op, device):
        triton_available(device)
        import kernels

        if not hasattr(kernels, op.name):
            raise Skip(f"kernels.{op.name} is not implemented yet")
        return getattr(kernels, op.name)

    def compiles(self, device):
        """Triton compiles on a GPU; its interpreter runs the kernels as they are."""
        return device.type == "cuda"
