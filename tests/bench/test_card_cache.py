"""The model-card cache behind ``python -m bench models``: the cards it returns are the computed
ones, a cached card is served without building the model, and a stale or broken cache is never read."""

from __future__ import annotations

import pytest

import models
from bench import card_cache

NAMES = ["alexnet_paper", "resnet18"]


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))


def test_cards_equal_the_computed_ones_and_are_stored():
    assert card_cache.model_cards(NAMES) == [models.model_card(n) for n in NAMES]
    assert card_cache.cache_path().is_file()


def test_a_cached_card_is_served_without_computing(monkeypatch):
    expected = card_cache.model_cards(NAMES)

    def refuse(name):
        raise AssertionError(f"computed {name} although it is cached")

    monkeypatch.setattr(models, "model_card", refuse)
    assert card_cache.model_cards(NAMES) == expected
    with pytest.raises(AssertionError, match="computed vgg11"):  # a card not in the cache is computed
        card_cache.model_cards(["vgg11"])


def test_a_broken_cache_file_is_recomputed():
    path = card_cache.cache_path()
    path.parent.mkdir(parents=True)
    path.write_text('{"resnet18": {"name": "resne')  # cut short
    assert card_cache.model_cards(["resnet18"]) == [models.model_card("resnet18")]


def test_a_change_to_the_models_source_names_a_new_cache(monkeypatch, tmp_path):
    before = card_cache.cache_path()
    source = tmp_path / "models" / "extra.py"
    source.parent.mkdir()
    source.write_text("# one more family\n")
    monkeypatch.setattr(models, "__file__", str(source.parent / "__init__.py"))
    assert card_cache.cache_path() != before


def test_an_unknown_name_fails_before_anything_is_computed(monkeypatch):
    monkeypatch.setattr(models, "model_card", lambda name: pytest.fail("computed a card"))
    with pytest.raises(ValueError, match="unknown model 'resnet9'"):
        card_cache.model_cards(["resnet18", "resnet9"])
