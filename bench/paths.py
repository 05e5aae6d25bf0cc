"""Where the harness keeps its caches, and checks on the paths a command will write, made before
any work: one line naming the argument."""

from __future__ import annotations

import os
import tempfile
from importlib.metadata import version
from pathlib import Path


def cache_root() -> Path:
    """What the harness can recompute lives here: ``$XDG_CACHE_HOME/classic-cnn-bench``."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "classic-cnn-bench"


def default_compile_cache() -> Path:
    """Inductor's caches (compiled FX graphs, Triton kernels, autotuning), one directory per torch
    version, named without importing torch."""
    return cache_root() / f"inductor-{version('torch')}"


def check_creatable(path: Path, argument: str) -> None:
    """``path``, with any missing directories above it, can be created: the nearest directory
    that exists is a directory in which a file can be written. A one-line ValueError otherwise,
    naming ``argument`` (e.g. ``--out``) and ``path``."""
    existing = next(p for p in [path.absolute(), *path.absolute().parents] if p.exists())
    if existing == path.absolute():
        existing = existing if existing.is_dir() else existing.parent
    if not existing.is_dir():
        raise ValueError(f"{argument} {path}: {existing} is not a directory")
    try:  # a real write: permissions, a read-only file system, /proc and the like all answer here
        tempfile.NamedTemporaryFile(dir=existing).close()
    except OSError as error:
        raise ValueError(f"{argument} {path}: cannot write in {existing} ({error.strerror})") from None
