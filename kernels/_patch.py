"""``kernels.patch`` / ``kernels.unpatch``: swap a model's hot-path blocks for their Triton twins.

A swap changes a module's class in place (``module.__class__ = twin``), nothing else: the module
object, its parameters, buffers, hooks and training flag are the same objects before and after,
so nothing is copied, state_dict keys do not change, and references held elsewhere (a residual
block handing ``self.bn2`` around) stay valid. That needs each twin to subclass the torch module
it replaces and to read only attributes its source class already has.

Each op family registers its swap with one line, next to its twin::

    register_swap("bn_relu", "models.blocks:BatchNormReLU2d", TritonBatchNormReLU2d)
    register_swap("conv2d", "torch.nn:Conv2d", TritonConv2d, when=lambda m: m.groups > 1)
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, Iterable

from torch import nn

_ORIGINAL = "_kernels_original_class"


@dataclass(frozen=True)
class Swap:
    op: str
    sources: tuple[str, ...]  # "module:ClassName", resolved when patch() runs (models imports lazily)
    twin: type
    when: Callable[[nn.Module], bool] | None = None

    def source_classes(self) -> tuple[type, ...]:
        classes = []
        for spec in self.sources:
            module, _, name = spec.partition(":")
            classes.append(getattr(importlib.import_module(module), name))
        return tuple(classes)


_SWAPS: dict[str, list[Swap]] = {}


def register_swap(op: str, sources: str | Iterable[str], twin: type,
                  when: Callable[[nn.Module], bool] | None = None) -> None:
    """Let ``patch(model, ops={op})`` turn every module whose exact class is one of ``sources``
    (and for which ``when(module)`` holds, if given) into a ``twin``."""
    sources = (sources,) if isinstance(sources, str) else tuple(sources)
    _SWAPS.setdefault(op, []).append(Swap(op, sources, twin, when))


def registered_ops() -> list[str]:
    return sorted(_SWAPS)


def _selected(ops) -> list[Swap]:
    if ops is None:
        names = registered_ops()
    else:
        names = [ops] if isinstance(ops, str) else list(ops)
        unknown = sorted(set(names) - set(_SWAPS))
        if unknown:
            raise ValueError(f"ops: unknown op name(s) {unknown}; valid: {registered_ops()}")
    return [swap for name in names for swap in _SWAPS[name]]


def patch(model: nn.Module, ops=None) -> nn.Module:
    """Swap, in place, every hot-path block of ``model`` for its Triton twin and return ``model``.

    ``ops``: ``None`` for every registered op family, or a subset of names such as
    ``{"bn_relu", "lrn"}`` (an unknown name is a ``ValueError`` listing the valid ones). Only
    modules whose class is exactly a source class are swapped (a subclass may override
    ``forward``); parameters and buffers are shared, never copied. :func:`unpatch` reverses it.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected an nn.Module, got {type(model).__name__}")
    table = [(swap, swap.source_classes()) for swap in _selected(ops)]
    for module in model.modules():
        for swap, classes in table:
            if type(module) in classes and (swap.when is None or swap.when(module)):
                setattr(module, _ORIGINAL, type(module))
                module.__class__ = swap.twin
                break
    return model


def unpatch(model: nn.Module) -> nn.Module:
    """Give every module :func:`patch` swapped its original class back; return ``model``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected an nn.Module, got {type(model).__name__}")
    for module in model.modules():
        original = module.__dict__.pop(_ORIGINAL, None)
        if original is not None:
            module.__class__ = original
    return model
