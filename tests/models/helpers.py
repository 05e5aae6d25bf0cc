"""What the model tests share."""

from __future__ import annotations

import torch

import models


def meta_model(name: str, **kwargs) -> torch.nn.Module:
    """``models.create`` on the meta device: shapes and parameter counts without memory or arithmetic."""
    with torch.device("meta"):
        return models.create(name, **kwargs)
