"""Plain-text tables for the terminal: one formatter for every command that prints rows."""

from __future__ import annotations

import re
from typing import Any, Sequence

_NUMBER = re.compile(r"-?[\d,]*\.?\d+(e[-+]?\d+)?x?( !)?")


def _is_number(value: Any) -> bool:
    if isinstance(value, str):  # numbers formatted ahead, or the marks that stand in for them
        return bool(_NUMBER.fullmatch(value)) or value in ("-", "E", "M", "!")
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def format_cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        text = f"{value:,.3f}" if abs(value) < 100 else f"{value:,.1f}"
        return text.rstrip("0").rstrip(".") if "." in text else text
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)  # years and sizes stay plain
    return str(value)


def format_table(rows: Sequence[dict], columns: Sequence[str], headers: Sequence[str] | None = None) -> str:
    """Left-align text, right-align numbers; ``headers`` rename ``columns`` for display."""
    headers = list(headers or columns)
    cells = [[format_cell(row.get(column)) for column in columns] for row in rows]
    numeric = [all(_is_number(row.get(c)) for row in rows) for c in columns]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values):
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in cells])
