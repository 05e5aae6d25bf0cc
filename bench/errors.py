"""How a configuration that did not measure becomes a row: skipped with its reason, or failed
with its error in one line and classified (``oom`` or ``error``)."""

from __future__ import annotations


class Skip(Exception):
    """This backend cannot run this configuration here; the message says why."""


def classify(error: BaseException) -> str:
    """``oom`` for an out-of-memory error (CUDA's, or the host's under the worker's memory cap), else ``error``."""
    import torch

    if isinstance(error, (MemoryError, torch.cuda.OutOfMemoryError)):
        return "oom"
    text = str(error).lower()
    if "out of memory" in text or "can't allocate memory" in text or "cannot allocate memory" in text:
        return "oom"
    return "error"


def one_line(error: BaseException) -> str:
    """The error's type and the first line of its message: a row's ``message``."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0] if lines else ''}"[:500]
