"""The model registry (models/_registry.py): every required name, the errors of a bad name or
argument, and the model cards' keys."""

from __future__ import annotations

import pytest

import models

REQUIRED = """alexnet alexnet_paper vgg11 vgg11_lrn vgg13 vgg16 vgg19 vgg11_bn vgg13_bn vgg16_bn vgg19_bn
googlenet bn_inception inception_v3 resnet18 resnet34 resnet50 resnet101 resnet152 inception_v4
inception_resnet_v1 inception_resnet_v2 resnext50_32x4d resnext101_32x8d resnext101_64x4d densenet121
densenet161 densenet169 densenet201 se_resnet50 se_resnet101 se_resnet152 se_resnext50_32x4d
se_resnext101_32x4d""".split()

ALL = models.list_models()


def test_every_required_name_exists():
    assert set(REQUIRED) <= set(ALL), sorted(set(REQUIRED) - set(ALL))


def test_unknown_name_lists_close_matches():
    with pytest.raises(ValueError, match=r"unknown model 'resnet5'; did you mean resnet50"):
        models.create("resnet5")


def test_unknown_name_without_close_match_lists_all():
    with pytest.raises(ValueError, match=r"known models: alexnet, alexnet_paper"):
        models.create("transformer")


@pytest.mark.parametrize("bad", [0, -3, 2.5])
def test_bad_num_classes(bad):
    with pytest.raises(ValueError, match="num_classes must be a positive integer"):
        models.create("resnet18", num_classes=bad)


def test_unknown_variant_kwarg_names_the_model():
    with pytest.raises(TypeError, match="resnet18: .*colour"):
        models.create("resnet18", colour="red")


def test_cards_have_the_documented_keys():
    for name in ALL:
        card = models.model_card(name)
        assert card["name"] == name
        assert card["params"] > 0 and card["gmacs"] > 0
        assert 2012 <= card["year"] <= 2017
        assert card["min_input_size"] <= card["input_size"]
        for key in ("top1_error", "top5_error"):
            assert card[key] is None or 0 < card[key] < 50
        if card["top1_error"] is not None or card["top5_error"] is not None:
            assert card["error_protocol"] and card["error_source"]
