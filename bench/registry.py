"""A registry of named things, filled by a class decorator: the ops (``bench/ops/``) and the
backends (``bench/backends.py``) each keep one."""

from __future__ import annotations


class Registry:
    """One instance of each registered class, by its ``name``; ``what`` names an entry in errors."""

    def __init__(self, what: str):
        self.what = what
        self._entries: dict = {}

    def register(self, cls: type) -> type:
        """Class decorator: register one instance of ``cls`` under its ``name``."""
        entry = cls()
        if entry.name in self._entries:
            raise RuntimeError(f"{self.what} {entry.name!r} is registered twice")
        self._entries[entry.name] = entry
        return cls

    def names(self) -> list[str]:
        return sorted(self._entries)

    def get(self, name: str):
        if not isinstance(name, str) or name not in self._entries:
            raise ValueError(f"unknown {self.what} {name!r}; choose from {', '.join(self.names())}")
        return self._entries[name]
