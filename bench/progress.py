"""What the running configuration is doing now ("building", "timing", ...), told to the runner,
which shows it in its progress line. Workloads call :func:`phase`; the worker decides where it goes."""

from __future__ import annotations

from typing import Callable

_listener: Callable[[str], None] | None = None


def listen(listener: Callable[[str], None] | None) -> None:
    """Send every later :func:`phase` to ``listener`` (None: nowhere, as outside a worker)."""
    global _listener
    _listener = listener


def phase(name: str) -> None:
    """A few small messages per configuration, never inside a timed loop."""
    if _listener is not None:
        _listener(name)
