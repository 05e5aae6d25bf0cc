"""How the report writes values: times, numbers, errors, bytes, labels, flag marks, a row's hover.

Each formatter takes a cell as it comes from the results (None, NaN, a numpy scalar) and returns
text, ``-`` for nothing. :func:`esc` escapes whatever a results file supplied before it reaches
the page, in tables and plot text alike.
"""

from __future__ import annotations

import html

from ..results import STATUS_MARKS
from .data import number, value

# The terminal summary's status marks, then one per soft flag.
FLAG_MARK = {**STATUS_MARKS, "noisy": "~", "host bound": "H", "throttled": "T", "clocks moved": "C"}


def esc(text) -> str:
    return html.escape("" if text is None else str(text), quote=True)


def fmt_ms(ms) -> str:
    ms = number(ms)
    if ms is None:
        return "-"
    return f"{ms * 1e3:.4g} µs" if ms < 1 else f"{ms:.4g} ms"


def fmt_num(x, digits: int = 4) -> str:
    x = number(x)
    if x is None:
        return "-"
    if x != 0 and (abs(x) >= 1e6 or abs(x) < 1e-3):
        return f"{x:.{max(digits - 2, 1)}e}"
    return f"{x:,.{digits}g}" if abs(x) < 1000 else f"{x:,.0f}"


def fmt_err(x) -> str:
    x = number(x)
    return "-" if x is None else ("0" if x == 0 else f"{x:.2e}")


def fmt_bytes(n) -> str:
    n = number(n)
    if n is None:
        return "-"
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def batch_label(batch, prefix: str = "batch ") -> str:
    """``batch 64``; a row without a batch size (a null in its file) shows ``batch ?``."""
    return f"{prefix}{'?' if batch is None else batch}"


def count(n: int, noun: str) -> str:
    """``1 run``, ``3 runs``."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


def flag_marks(flags) -> str:
    return "".join(FLAG_MARK.get(f, "") for f in flags)


def row_class(flags) -> str:
    """``bad`` for a row whose result is wrong or missing, ``warn`` for one whose timing is doubtful."""
    if any(f in flags for f in ("incorrect", "error", "oom")):
        return "bad"
    return "warn" if any(f in flags for f in ("noisy", "throttled", "clocks moved")) else ""


def sort_key(v):
    """Numbers by value, then text, then None; tuples element by element."""
    if isinstance(v, tuple):
        return tuple(sort_key(x) for x in v)
    if v is None:
        return (2, 0, "")
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return (0, v, "")
    return (1, 0, str(v))


def sorted_unique(values, order=None):
    """The distinct values, sorted; those in ``order`` first, in its order."""
    seen = list(dict.fromkeys(values))
    if order:
        return [v for v in order if v in seen] + sorted((v for v in seen if v not in order), key=sort_key)
    return sorted(seen, key=sort_key)


def hover(row: dict, *extra: str) -> str:
    """The full configuration, status, median, IQR and sample count of a row (escaped)."""
    name = esc(value(row.get("name")))
    shape = value(row.get("shape"))
    lines = [f"<b>{name}</b>" + (f"  {esc(shape)}" if shape else "")]
    config = [value(row.get(c)) for c in ("backend", "mode", "dtype")]
    config.append(batch_label(value(row.get("batch_size"))))
    config.append(value(row.get("memory_format")))
    if value(row.get("input_size")):
        config.append(f"{value(row.get('input_size'))} px")
    lines.append(esc(" · ".join(str(c) for c in config if c is not None)))
    lines.append(esc(f"{row.get('platform')} ({value(row.get('device'))}) · host {value(row.get('host'))}"))
    lines.append(esc(f"run {value(row.get('run_id'))}"))
    status = f"status <b>{esc(value(row.get('status')))}</b>"
    flags = [f for f in row.get("flags") or [] if f != value(row.get("status"))]
    if flags:
        status += " · " + esc(", ".join(flags))
    lines.append(status)
    if number(row.get("device_ms")) is not None:
        ratio = row.get("iqr_ratio")
        lines.append(f"device {fmt_ms(row.get('device_ms'))} ({esc(value(row.get('timing_method')))}) · IQR "
                     f"{fmt_ms(row.get('iqr_ms'))}" + (f" ({ratio:.1%})" if number(ratio) is not None else "")
                     + f" · n={value(row.get('samples'))}"
                     + (f" · host {fmt_ms(row.get('host_ms'))}" if number(row.get("host_ms")) is not None else ""))
    message = value(row.get("message"))
    if message:
        text = str(message)
        lines += [esc(text[i:i + 90]) for i in range(0, min(len(text), 360), 90)]
    return "<br>".join(lines + [e for e in extra if e])
