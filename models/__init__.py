"""Faithful reference implementations of the classic ImageNet CNNs (2012-2017).

``models.create(name)`` builds one, ``models.list_models()`` names them all and
``models.model_card(name)`` describes one (paper, reported error, params, GMACs).
One file per family; every network is assembled from the blocks in ``models.blocks``.
"""

from ._registry import (Paper, Reference, Reported, count_macs, count_params, create, get_entry,
                        list_models, model_card, register_model)

# Importing a family file registers its models.
from . import alexnet, vgg, googlenet, bn_inception, inception_v3, resnet, resnext, inception_v4, densenet, senet  # noqa: E402,F401

__all__ = ["create", "list_models", "model_card", "get_entry", "register_model", "count_params",
           "count_macs", "Paper", "Reported", "Reference"]
