"""The page: what a section is given and returns, the figures and tables it adds, the header above
the sections, and the one self-contained HTML file they become.

The stylesheet and the script are ``report.css`` and ``report.js`` beside this module (package
data), inlined into the page as plotly.js is: the page makes no network request.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Callable, NamedTuple

from .data import combine_flags, environment, value
from .format import count, esc, sorted_unique

if TYPE_CHECKING:
    import pandas as pd


class ReportError(ValueError):
    """Cannot render (plotly missing, no rows, an output that cannot be written): one line on the
    command line, exit status 2."""


@dataclass(frozen=True)
class Cell:
    """A table cell whose text and sort key differ."""
    sort: float | None
    text: str


class Rows(NamedTuple):
    """What every section is given: the prepared rows (:func:`bench.report.data.prepare`), and of
    those the latest of each configuration per platform (:func:`bench.report.data.latest`)."""
    latest: pd.DataFrame
    every_row: pd.DataFrame


class Section(NamedTuple):
    """A part of the page: its anchor, its heading and ``render(page, rows) -> HTML``."""
    id: str
    title: str
    render: Callable[[Page, Rows], str]


def asset(name: str) -> str:
    """The text of a file shipped beside this module (``report.css``, ``report.js``)."""
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


class Page:
    """Collects figures (as JSON) and HTML parts; writes one self-contained file."""

    def __init__(self) -> None:
        self.figures: dict[str, str] = {}

    def figure(self, fig, note: str = "") -> str:
        import plotly.io as pio

        plot_id = f"plot-{len(self.figures) + 1}"
        self.figures[plot_id] = pio.to_json(fig, validate=False)
        return f'<div class="plot" id="{plot_id}"></div>' + (f'<p class="note">{note}</p>' if note else "")

    @staticmethod
    def missing(text: str) -> str:
        return f'<p class="missing">{text}</p>'

    @staticmethod
    def table(columns: list[tuple], rows: list[dict], row_class=None, caption: str = "") -> str:
        """``columns``: (header, key or callable, formatter or None); cells are escaped, sortable."""
        if not rows:
            return ""
        head = "".join(f"<th>{esc(header)}</th>" for header, *_ in columns)
        body = []
        for row in rows:
            cells = []
            for _, key, formatter in columns:
                raw = key(row) if callable(key) else row.get(key)
                if isinstance(raw, Cell):
                    sort, text = raw.sort, raw.text
                else:
                    raw = value(raw)
                    if isinstance(raw, (list, tuple)):
                        raw = ", ".join(map(str, raw))
                    text = formatter(raw) if formatter else ("-" if raw is None else str(raw))
                    sort = raw if isinstance(raw, (int, float)) and not isinstance(raw, bool) else None
                attr = f' data-v="{sort!r}"' if sort is not None and math.isfinite(sort) else ""
                cells.append(f"<td{attr}>{esc(text)}</td>")
            cls = row_class(row) if row_class else ""
            body.append(f'<tr class="{cls}">' + "".join(cells) + "</tr>")
        caption = f"<caption>{caption}</caption>" if caption else ""
        return (f'<div class="table-wrap"><table class="sortable">{caption}<thead><tr>{head}</tr></thead>'
                f"<tbody>{''.join(body)}</tbody></table></div>")

    def write(self, path: Path, title: str, header: str, sections: list[tuple[str, str, str]]) -> None:
        import plotly.offline

        nav = "".join(f'<a href="#{sid}">{esc(t)}</a>' for sid, t, _ in sections)
        body = "".join(f'<section id="{sid}" class="section"><h2>{esc(t)}</h2>{content}</section>'
                       for sid, t, content in sections)
        figures = "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in self.figures.items()) + "}"
        figures = figures.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
        plotly_js = plotly.offline.get_plotlyjs()
        if "</script" in plotly_js.lower():  # never true for plotly's bundle; a guard, not a fix-up
            raise ReportError("plotly.js contains '</script': cannot inline it")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(title)}</title><style>\n{asset('report.css')}</style></head><body>"
            f"<header>{header}<nav>{nav}</nav></header><main>{body}</main>"
            f"<script>{plotly_js}</script>"
            f"<script type=\"application/json\" id=\"figures\">{figures}</script>"
            f"<script>\n{asset('report.js')}</script></body></html>\n", encoding="utf-8")


def header(rows: Rows, sources: list[str]) -> str:
    """The banner above the sections: what was read, when, and the warnings to see first."""
    frame, every_row = rows
    counts = frame["status"].value_counts().to_dict() if not frame.empty else {}
    platforms = sorted_unique(frame["platform"]) if not frame.empty else []
    runs = environment(every_row)
    superseded = len(every_row) - len(frame)
    parts = ["<h1>classic-cnn-bench report</h1>",
             f"<p>{count(len(frame), 'configuration')} from {count(len({r['run_id'] for r in runs}), 'run')} on "
             f"{count(len(platforms), 'platform')} ({esc(', '.join(map(str, platforms)) or 'none')}): "
             f"{esc(', '.join(f'{n} {s}' for s, n in sorted(counts.items())) or 'no rows')}"
             + (f"; {superseded} older rows of the same configurations not shown" if superseded else "") + ".</p>",
             f"<p>Inputs: {esc(', '.join(sources) or 'none')} · generated {esc(time.strftime('%Y-%m-%d %H:%M:%S %z'))}"
             "</p>"]
    if any(r["synthetic"] for r in runs):
        parts.append('<span class="banner synthetic">Contains SYNTHETIC sample data (not measured)</span>')
    warned = [r for r in runs if r["warnings"]]
    if warned:
        parts.append(f'<a href="#environment"><span class="banner warn">{count(len(warned), "run")} throttled or '
                     'moved clocks: see Environment</span></a>')
    flags = combine_flags(*frame["flags"]) if not frame.empty else []
    if flags:
        tally = {f: sum(f in row_flags for row_flags in frame["flags"]) for f in flags}
        parts.append('<span class="banner warn">flagged rows: '
                     + esc(", ".join(f"{n} {f}" for f, n in tally.items())) + "</span>")
    return "".join(parts)
