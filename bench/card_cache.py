"""Model cards for the command line, kept in a cache file so that ``bench models`` answers at once.

Computing a card builds the model on the meta device and counts its multiply-accumulates
(:func:`models.model_card`): about half a second a model, 20 s for the zoo on a 2-core machine.
A card changes only when the models' source or torch changes, so the cache file is named by a
hash of both (``$XDG_CACHE_HOME/classic-cnn-bench/model-cards-<hash>.json``): an edit to any
file of ``models/`` or another torch gives a new name, and a stale card is never read. A cache
that cannot be read or written costs only the time; the cards are computed then.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from .paths import cache_root


def cache_path() -> Path:
    import models
    import torch

    digest = hashlib.sha256(torch.__version__.encode())
    for source in sorted(Path(models.__file__).parent.glob("*.py")):
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    return cache_root() / f"model-cards-{digest.hexdigest()[:16]}.json"


def _read(path: Path) -> dict:
    try:
        cards = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return cards if isinstance(cards, dict) else {}


def _write(path: Path, cards: dict) -> None:
    """Whole or not at all: a temporary file renamed over the cache, so readers never see half of it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False, encoding="utf-8") as f:
            json.dump(cards, f)
        os.replace(f.name, path)
    except OSError:
        pass


def model_cards(names: list[str]) -> list[dict]:
    """``models.model_card(name)`` for each name, from the cache where it holds the card."""
    import models

    for name in names:
        models.get_entry(name)  # an unknown name fails before any card is computed
    path = cache_path()
    cards = _read(path)
    missing = [name for name in names if name not in cards]
    if missing:
        cards.update({name: models.model_card(name) for name in missing})
        _write(path, cards)
    return [dict(cards[name]) for name in names]
