"""One registry for every model: a name, the function that builds it, and its model card.

A family file declares each network once, timm-style::

    @register_model(RESNET, input_size=224, reported=Reported(top1=22.85, top5=6.71, protocol="10-crop"),
                    reference=Reference(torchvision="resnet50"))
    def resnet50(**kwargs): return ResNet(Bottleneck, [3, 4, 6, 3], **kwargs)

The card holds what the paper says (family, title, year, native input size, reported errors)
and how the project checks faithfulness (``Reference``); parameter count, GMACs and minimum
input size are computed from the model itself (:func:`model_card`), never typed in.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn


@dataclass(frozen=True)
class Paper:
    family: str
    title: str
    year: int
    authors: str = ""


@dataclass(frozen=True)
class Reported:
    """ImageNet validation error (%) as the paper reports it, and how it was measured."""

    top1: float | None = None
    top5: float | None = None
    protocol: str = ""  # e.g. "single-crop 224", "10-crop", "multi-crop"
    source: str = ""  # which table of the paper


@dataclass(frozen=True)
class Reference:
    """Independent references the tests check this model against (any that apply)."""

    torchvision: str | None = None  # same layout: state_dict loads strictly, outputs equal
    timm: str | None = None  # same network: parameter count equals timm's
    timm_layout: bool = False  # also timm's layout: its state_dict loads strictly, outputs equal
    paper_params: int | None = None  # exact parameter count derived from the paper's tables
    notes: str = ""  # where and why the model departs from the paper


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable[..., nn.Module]
    paper: Paper
    input_size: int
    reported: Reported = field(default_factory=Reported)
    reference: Reference = field(default_factory=Reference)


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(paper: Paper, *, input_size: int, reported: Reported = Reported(),
                   reference: Reference = Reference()):
    def decorator(builder: Callable[..., nn.Module]):
        name = builder.__name__
        if name in _REGISTRY:
            raise RuntimeError(f"model {name!r} is registered twice")
        _REGISTRY[name] = ModelEntry(name, builder, paper, input_size, reported, reference)
        return builder

    return decorator


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def get_entry(name: str) -> ModelEntry:
    if not isinstance(name, str) or name not in _REGISTRY:
        close = difflib.get_close_matches(str(name), _REGISTRY, n=4, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known models: {', '.join(list_models())}"
        raise ValueError(f"unknown model {name!r}{hint}")
    return _REGISTRY[name]


def create(name: str, num_classes: int = 1000, **variant_kwargs) -> nn.Module:
    """Build the named model with fresh weights; ``variant_kwargs`` go to its constructor."""
    entry = get_entry(name)
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"{name}: num_classes must be a positive integer, got {num_classes!r}")
    try:
        model = entry.builder(num_classes=num_classes, **variant_kwargs)
    except TypeError as error:  # an unknown keyword: say which model refused it
        raise TypeError(f"{name}: {error}") from None
    model.model_name = name
    return model


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, input_size: int) -> int:
    """Multiply-accumulates of convolutions and linear layers, batch 1, square input.

    ``torch.utils.flop_counter`` counts 2 FLOPs per MAC for conv and matmul; it runs on the
    meta device, so no memory is allocated and no arithmetic done.
    """
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        x = torch.empty(1, 3, input_size, input_size)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model.eval()(x)
    return counter.get_total_flops() // 2


@functools.lru_cache(maxsize=None)
def model_card(name: str) -> dict:
    """The card as one flat dict: paper metadata plus params, GMACs and minimum input size."""
    entry = get_entry(name)
    with torch.device("meta"):
        model = create(name).eval()  # the card describes inference
    reported = dataclasses.asdict(entry.reported)
    return {
        "name": name,
        "family": entry.paper.family,
        "paper": entry.paper.title,
        "authors": entry.paper.authors,
        "year": entry.paper.year,
        "input_size": entry.input_size,
        "min_input_size": model.min_input_size,
        "params": count_params(model),
        "gmacs": round(count_macs(model, entry.input_size) / 1e9, 3),
        "top1_error": reported["top1"],
        "top5_error": reported["top5"],
        "error_protocol": reported["protocol"],
        "error_source": reported["source"],
        "reference_torchvision": entry.reference.torchvision,
        "reference_timm": entry.reference.timm,
        "notes": entry.reference.notes,
    }
