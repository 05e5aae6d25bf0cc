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
    # The same model's errors under other test protocols of ``models.protocols``, where the paper
    # gives them: (protocol, top1, top5, source).
    other_protocols: tuple = ()


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


def count_macs(model: nn.Module, input_size: int | tuple[int, int]) -> int:
    """Multiply-accumulates of convolutions and linear layers, batch 1, a square input of side
    ``input_size`` or one of (height, width).

    ``torch.utils.flop_counter`` counts 2 FLOPs per MAC for conv and matmul; it runs on the
    meta device, so no memory is allocated and no arithmetic done.
    """
    from torch.utils.flop_counter import FlopCounterMode

    height, width = (input_size, input_size) if isinstance(input_size, int) else input_size
    with torch.device("meta"):
        x = torch.empty(1, 3, height, width)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model.eval()(x)
    return counter.get_total_flops() // 2


def protocol_costs(model: nn.Module, crop: int) -> dict[str, dict]:
    """Per test protocol (``models.protocols``): views and GMACs per evaluated image; for a model
    whose head cannot be made fully convolutional, ``dense`` says why instead."""
    from .fully_convolutional import NotConvertible, fully_convolutional
    from .protocols import PROTOCOLS, view_sizes

    costs = {}
    counted = {}  # (network, view size) -> MACs: single, 10crop and 144crop share the plain network's crop
    for protocol in PROTOCOLS:
        sizes = view_sizes(protocol, crop)
        try:
            net = fully_convolutional(model) if protocol == "dense" else model
        except NotConvertible as reason:
            costs[protocol] = {"views_per_image": len(sizes), "gmacs_per_image": None, "not_convertible": str(reason)}
            continue
        for size in set(sizes):
            if (net, size) not in counted:  # a module hashes by identity, and the key keeps it alive
                counted[net, size] = count_macs(net, size)
        macs = {size: counted[net, size] for size in set(sizes)}
        costs[protocol] = {"views_per_image": len(sizes),
                           "gmacs_per_image": round(sum(macs[size] for size in sizes) / 1e9, 3)}
    return costs


# How a card's protocol text names one of models.protocols (the text says more, e.g. the crop size).
PROTOCOL_PREFIXES = {"single-crop": "single", "10-crop": "10crop"}


def protocol_errors(reported: Reported) -> dict[str, dict]:
    """The paper's errors by test protocol of ``models.protocols``: the headline figure where its
    protocol is one of them (VGG's single-scale dense evaluation is not: its dense protocol here is
    multi-scale), and ``other_protocols``."""
    errors = {}
    for prefix, protocol in PROTOCOL_PREFIXES.items():
        if reported.protocol.startswith(prefix):
            errors[protocol] = {"top1": reported.top1, "top5": reported.top5, "source": reported.source}
    for protocol, top1, top5, source in reported.other_protocols:
        errors[protocol] = {"top1": top1, "top5": top5, "source": source}
    return errors


@functools.lru_cache(maxsize=None)
def model_card(name: str) -> dict:
    """The card as one flat dict: paper metadata plus params, GMACs and minimum input size."""
    entry = get_entry(name)
    with torch.device("meta"):
        model = create(name).eval()  # the card describes inference
    reported = dataclasses.asdict(entry.reported)
    protocols = protocol_costs(model, entry.input_size)
    return {
        "name": name,
        "family": entry.paper.family,
        "paper": entry.paper.title,
        "authors": entry.paper.authors,
        "year": entry.paper.year,
        "input_size": entry.input_size,
        "min_input_size": model.min_input_size,
        "params": count_params(model),
        "gmacs": protocols["single"]["gmacs_per_image"],  # one view of the input size
        "protocols": protocols,
        "protocol_errors": protocol_errors(entry.reported),
        "top1_error": reported["top1"],
        "top5_error": reported["top5"],
        "error_protocol": reported["protocol"],
        "error_source": reported["source"],
        "reference_torchvision": entry.reference.torchvision,
        "reference_timm": entry.reference.timm,
        "notes": entry.reference.notes,
    }
