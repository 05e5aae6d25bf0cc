"""Fixtures shared by the harness's tests."""

from __future__ import annotations

import pytest

from bench import timing
from tests.bench.helpers import FakeClock


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    """bench.timing's clock replaced by a :class:`FakeClock`."""
    fake = FakeClock()
    monkeypatch.setattr(timing, "time", fake)
    return fake
