"""``python -m bench report RESULTS… [-o results/report.html]``: one self-contained HTML page.

The page answers "which backend wins, where, on which GPU, and can I trust it" from any number
of results files: a plotly figure per section (summary, throughput, speedup heat maps, kernel
roofline, memory, correctness, across GPUs, environment) and sortable tables.

- Self-contained: plotly.js is inlined once; the page makes no network request and opens from a
  ``file://`` URL offline. Figures are JSON in a ``<script type="application/json">`` block
  (``<``, ``>``, ``&`` escaped), drawn by a few lines of inline JavaScript.
- Everything taken from the results (names, hosts, messages) is HTML-escaped, in tables and in
  plot text alike, so a results file cannot inject markup or script into the page.
- A section without data (a CPU-only run, no kernel rows, one GPU) says what is missing.
- plotly is imported only while rendering: the GPU runner never imports this module's plotting.

The numbers come from :mod:`bench.report_data` (flags, speedups, normalization, thresholds).
"""

from __future__ import annotations

import argparse
import html
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import report_data as data
from .paths import check_creatable
from .report_data import value
from .suite import BACKENDS

DEFAULT_OUTPUT = "results/report.html"

BACKEND_LABEL = {"torch": "torch (eager, cuDNN)", "triton": "triton", "compile": "torch.compile"}
BACKEND_COLOR = {"torch": "#4C78A8", "triton": "#F58518", "compile": "#54A24B"}
BACKEND_SYMBOL = {"torch": "circle", "triton": "diamond", "compile": "square"}
DTYPE_DASH = {"fp32": "dash", "tf32": "dot", "fp16": "dashdot", "bf16": "longdash"}
DTYPE_SYMBOL = {"fp32": "circle", "tf32": "triangle-up", "fp16": "square", "bf16": "diamond"}
PLATFORM_COLORS = ("#4C78A8", "#9467BD", "#17BECF", "#8C564B", "#BCBD22", "#7F7F7F", "#E377C2", "#2CA02C")
BAD = "#D62728"
FLAG_MARK = {"incorrect": "!", "error": "E", "oom": "M", "skipped": "-", "noisy": "~", "throttled": "T",
             "clocks moved": "C"}
FLAG_MEANING = {
    "incorrect": "error above the dtype's tolerance against the fp32 (models) or float64 (kernels) reference",
    "error": "failed (exception, crash or timeout)", "oom": "out of memory",
    "skipped": "the backend cannot run this configuration",
    "noisy": f"IQR over {data.NOISY_IQR_RATIO:.0%} of the median, or fewer than {data.MIN_SAMPLES} samples",
    "throttled": "NVML reported a throttle reason while the row ran",
    "clocks moved": f"SM clock range while the row ran over {data.CLOCK_SPREAD_RATIO:.0%} of its highest",
}
ERROR_FLOOR = 1e-10  # an error of exactly 0 is drawn here on the log axis (the hover says 0)


@dataclass(frozen=True)
class Cell:
    """A table cell whose text and sort key differ."""
    sort: float | None
    text: str


class ReportError(ValueError):
    """Cannot render (plotly missing): one line on the command line, exit status 2."""


def esc(text) -> str:
    return html.escape("" if text is None else str(text), quote=True)


# --- Formatting ---------------------------------------------------------------------------------

def fmt_ms(ms) -> str:
    ms = data._num(ms)
    if ms is None:
        return "-"
    return f"{ms * 1e3:.4g} µs" if ms < 1 else f"{ms:.4g} ms"


def fmt_num(x, digits: int = 4) -> str:
    x = data._num(x)
    if x is None:
        return "-"
    if x != 0 and (abs(x) >= 1e6 or abs(x) < 1e-3):
        return f"{x:.{max(digits - 2, 1)}e}"
    return f"{x:,.{digits}g}" if abs(x) < 1000 else f"{x:,.0f}"


def fmt_err(x) -> str:
    x = data._num(x)
    return "-" if x is None else ("0" if x == 0 else f"{x:.2e}")


def fmt_bytes(n) -> str:
    n = data._num(n)
    if n is None:
        return "-"
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


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
    if data._num(row.get("median_ms")) is not None:
        ratio = row.get("iqr_ratio")
        lines.append(f"median {fmt_ms(row.get('median_ms'))} · IQR {fmt_ms(row.get('iqr_ms'))}"
                     + (f" ({ratio:.1%})" if data._num(ratio) is not None else "")
                     + f" · n={value(row.get('samples'))}")
    message = value(row.get("message"))
    if message:
        text = str(message)
        lines += [esc(text[i:i + 90]) for i in range(0, min(len(text), 360), 90)]
    return "<br>".join(lines + [e for e in extra if e])


# --- The page -----------------------------------------------------------------------------------

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
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
            f"<header>{header}<nav>{nav}</nav></header><main>{body}</main>"
            f"<script>{plotly_js}</script>"
            f"<script type=\"application/json\" id=\"figures\">{figures}</script>"
            f"<script>{SCRIPT}</script></body></html>\n", encoding="utf-8")


CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;background:#f6f7f9}
header{background:#1f2933;color:#fff;padding:14px 28px 8px}
header h1{margin:0 0 4px;font-size:22px} header p{margin:2px 0;color:#d5dbe1}
header .banner{display:inline-block;margin:6px 8px 2px 0;padding:4px 10px;border-radius:4px;font-weight:600}
header .banner.warn{background:#f0b429;color:#222} header .banner.synthetic{background:#e12d39;color:#fff}
nav{margin-top:8px} nav a{color:#9fd3ff;margin-right:14px;text-decoration:none} nav a:hover{text-decoration:underline}
main{padding:8px 28px 40px;max-width:1500px}
section{background:#fff;border:1px solid #e1e4e8;border-radius:6px;margin:18px 0;padding:6px 20px 16px}
section h2{font-size:18px;margin:10px 0 4px} section h3{font-size:15px;margin:14px 0 0;color:#333}
p.intro{color:#444;margin:4px 0 8px;max-width:1150px}
p.missing{background:#fff8e1;border-left:4px solid #f0b429;padding:8px 12px;color:#5c4400}
p.note{color:#666;font-size:12px;margin:2px 0 10px}
.warning{background:#fdecea;border-left:4px solid #d62728;padding:8px 12px;margin:8px 0;color:#7a1212}
.plot{width:100%;margin:6px 0}
.table-wrap{max-height:460px;overflow:auto;border:1px solid #e1e4e8;margin:10px 0}
table{border-collapse:collapse;font-size:12.5px;width:100%}
th{position:sticky;top:0;background:#eef1f4;cursor:pointer;text-align:left;padding:5px 8px;white-space:nowrap;
   border-bottom:1px solid #ccd2d8;user-select:none}
th[data-dir=asc]::after{content:" \\25B2"} th[data-dir=desc]::after{content:" \\25BC"}
td{padding:3px 8px;border-bottom:1px solid #f0f0f0;white-space:nowrap;max-width:520px;overflow:hidden;
   text-overflow:ellipsis}
td[data-v]{text-align:right;font-variant-numeric:tabular-nums}
tr.bad td{background:#fdecea} tr.warn td{background:#fff8e1}
caption{caption-side:top;text-align:left;color:#555;padding:4px 0}
dl.legend{display:grid;grid-template-columns:max-content auto;gap:1px 10px;font-size:12.5px;margin:6px 0}
dl.legend dt{font-weight:600} dl.legend dd{margin:0;color:#444}
"""

SCRIPT = """
(function () {
  var figures = JSON.parse(document.getElementById("figures").textContent);
  var config = {displaylogo: false, responsive: true, showLink: false, showSendToCloud: false};
  var drawn = Object.keys(figures).map(function (id) {
    var fig = figures[id];
    return Plotly.newPlot(document.getElementById(id), fig.data, fig.layout, config);
  });
  Promise.all(drawn).then(function () { document.body.dataset.ready = "1"; },
                          function (e) { document.body.dataset.ready = "error"; console.error(e); });
  // Sortable tables: numbers (data-v) by value, before text; "-" (nothing) always last.
  function rank(cell) { return cell.dataset.v !== undefined ? 0 : (cell.textContent === "-" ? 2 : 1); }
  document.querySelectorAll("table.sortable th").forEach(function (th) {
    th.addEventListener("click", function () {
      var table = th.closest("table"), body = table.tBodies[0], i = th.cellIndex;
      var asc = th.dataset.dir !== "asc";
      table.querySelectorAll("th").forEach(function (h) { delete h.dataset.dir; });
      th.dataset.dir = asc ? "asc" : "desc";
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[i], y = b.cells[i];
        if (rank(x) !== rank(y)) { return rank(x) - rank(y); }
        if (rank(x) === 2) { return 0; }
        var d = rank(x) === 0 ? Number(x.dataset.v) - Number(y.dataset.v)
                              : x.textContent.localeCompare(y.textContent, undefined, {numeric: true});
        return asc ? d : -d;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
})();
"""


# --- Figure helpers -----------------------------------------------------------------------------

def _layout(fig, height: int, **extra) -> None:
    extra.setdefault("margin", dict(l=60, r=20, t=80, b=50))
    fig.update_layout(template="plotly_white", height=height,
                      font=dict(family="system-ui, sans-serif", size=12),
                      hoverlabel=dict(align="left", font_size=12), legend=dict(
                          x=1.01, xanchor="left", y=1, yanchor="top", font_size=11), **extra)


def _groups(fig, groups: list[tuple[str, list, dict]], active: int | None = None) -> None:
    """Add each group's traces (``(trace, row, col)``); a dropdown shows one group at a time.

    ``groups``: (button label, traces, layout to apply when selected). Shown first: ``active``,
    else the group with the most points (on a page with GPU and CPU runs: a GPU's).
    """
    def points(traces) -> int:
        return sum(len(trace.x) if trace.x is not None else 0 for trace, _, _ in traces)

    if active is None:
        active = max(range(len(groups)), key=lambda i: (points(groups[i][1]), -i)) if groups else 0
    spans = []
    for index, (_, traces, _layout_update) in enumerate(groups):
        start = len(fig.data)
        for trace, row, col in traces:
            trace.visible = index == active
            if row is None:
                fig.add_trace(trace)
            else:
                fig.add_trace(trace, row=row, col=col)
        spans.append((start, len(fig.data)))
    if groups:
        fig.update_layout(**{k: v for k, v in groups[active][2].items() if "." not in k})
        fig.plotly_relayout({k: v for k, v in groups[active][2].items() if "." in k})
    if len(groups) > 1:
        total = len(fig.data)
        buttons = []
        for (name, _, layout_update), (start, end) in zip(groups, spans):
            visible = [start <= i < end for i in range(total)]
            buttons.append(dict(label=esc(name), method="update", args=[{"visible": visible}, layout_update]))
        fig.update_layout(updatemenus=[dict(buttons=buttons, active=active, direction="down", x=0, xanchor="left",
                                            y=1.0, yanchor="bottom", pad=dict(b=34), showactive=True,
                                            bgcolor="#fff", bordercolor="#aaa")])


def batch_label(batch, prefix: str = "batch ") -> str:
    """``batch 64``; a row without a batch size (a null in its file) shows ``batch ?``."""
    return f"{prefix}{'?' if batch is None else batch}"


def _group_label(platform, *parts) -> str:
    return " · ".join(str(p) for p in (platform, *parts) if p is not None and p != "")


def _sort_key(v):
    """Numbers by value, then text, then None; tuples element by element."""
    if isinstance(v, tuple):
        return tuple(_sort_key(x) for x in v)
    if v is None:
        return (2, 0, "")
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return (0, v, "")
    return (1, 0, str(v))


def _sorted_unique(values, order=None):
    """The distinct values, sorted; those in ``order`` first, in its order."""
    seen = list(dict.fromkeys(values))
    if order:
        return [v for v in order if v in seen] + sorted((v for v in seen if v not in order), key=_sort_key)
    return sorted(seen, key=_sort_key)


def _failures(xs, ys, texts: list[list[str]], hovers, position: str):
    """One red × per model with what did not measure and why (failed or skipped rows); ``texts``:
    the lines beside each ×, plain text."""
    from plotly import graph_objects as go

    return go.Scatter(x=xs, y=ys, mode="markers+text", name="no measurement", showlegend=False,
                      text=["<br>".join(esc(line) for line in lines) for lines in texts], textposition=position,
                      textfont=dict(color=BAD, size=10), cliponaxis=False,
                      marker=dict(color=BAD, symbol="x-thin", size=10, line=dict(width=2, color=BAD)),
                      hovertext=hovers, hoverinfo="text")


def _flag_marks(flags) -> str:
    return "".join(FLAG_MARK.get(f, "") for f in flags)


def _row_class(flags) -> str:
    if any(f in flags for f in ("incorrect", "error", "oom")):
        return "bad"
    return "warn" if any(f in flags for f in ("noisy", "throttled", "clocks moved")) else ""


def _model_rows(frame) -> list[dict]:
    return frame[frame["kind"] == "model"].to_dict("records") if not frame.empty else []


def _kernel_rows(frame) -> list[dict]:
    return frame[frame["kind"] == "kernel"].to_dict("records") if not frame.empty else []


# --- 1. Summary ---------------------------------------------------------------------------------

def section_summary(page: Page, frame) -> str:
    from plotly import graph_objects as go
    from plotly.subplots import make_subplots

    lines = data.model_summary(frame)
    legend = "".join(f"<dt>{esc(FLAG_MARK[f])} {esc(f)}</dt><dd>{esc(FLAG_MEANING[f])}</dd>" for f in data.FLAG_ORDER)
    intro = ('<p class="intro">Images/s of each backend per model and mode, and the speedup of triton and '
             'torch.compile over eager torch (cuDNN on a GPU) on the same platform, dtype and batch. '
             'Speedups above 1 are faster than torch. Rows that cannot be taken at face value are marked '
             f'(table cells use the terminal summary\'s marks):</p><dl class="legend">{legend}</dl>')
    if not lines:
        return intro + page.missing("No model rows in the inputs: nothing to summarize. Model rows come from "
                                    "<code>python -m bench run</code> with a model suite (smoke, default).")
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, subplot_titles=("infer", "train"),
                        horizontal_spacing=0.04)
    groups = []
    keys = _sorted_unique((line["platform"], line["dtype"], line["batch_size"], line["memory_format"])
                          for line in lines)
    for key in keys:
        mine = [line for line in lines if (line["platform"], line["dtype"], line["batch_size"],
                                           line["memory_format"]) == key]
        models = _sorted_unique(line["name"] for line in mine)
        speeds = [line[f"{b}_speedup"] for line in mine for b in data.FAST_BACKENDS if line[f"{b}_speedup"]]
        low = min(speeds + [1.0]) / 1.35
        traces = []
        for col, mode in enumerate(("infer", "train"), start=1):
            for backend in data.FAST_BACKENDS:
                measured = [line for line in mine if line["mode"] == mode and line[f"{backend}_speedup"]]
                if measured:
                    traces.append((go.Scatter(
                        x=[p[f"{backend}_speedup"] for p in measured], y=[esc(p["name"]) for p in measured],
                        mode="markers+text", name=BACKEND_LABEL[backend], legendgroup=backend,
                        showlegend=col == 1,
                        text=[esc(_flag_marks(p["flags"])) for p in measured], textposition="middle right",
                        textfont=dict(color=BAD, size=12),
                        marker=dict(color=BACKEND_COLOR[backend], symbol=BACKEND_SYMBOL[backend], size=11,
                                    line=dict(width=[2.5 if _row_class(p["flags"]) else 0.5 for p in measured],
                                              color=[BAD if _row_class(p["flags"]) == "bad" else
                                                     "#f0b429" if _row_class(p["flags"]) else "#fff"
                                                     for p in measured])),
                        hovertext=[_speedup_hover(p[backend], p["torch"], p[f"{backend}_speedup"]) for p in measured],
                        hoverinfo="text"), 1, col))
            failed = [(line, [b for b in data.FAST_BACKENDS if line.get(b) is not None and not line[f"{b}_speedup"]])
                      for line in mine if line["mode"] == mode]
            failed = [(line, backends) for line, backends in failed if backends]
            if failed:
                traces.append((_failures(
                    [low] * len(failed), [esc(line["name"]) for line, _ in failed],
                    [["; ".join(f"{b} {_failed_text(line, b)}" for b in backends)] for line, backends in failed],
                    ["<br>―――<br>".join(_speedup_hover(line[b], line["torch"], None) for b in backends)
                     for line, backends in failed], "middle right"), 1, col))
        height = 170 + 30 * len(models)
        labels = [esc(m) for m in models]
        groups.append((_group_label(*key[:2], batch_label(key[2]), key[3]), traces,
                       {"height": height, "yaxis.categoryarray": labels, "yaxis.categoryorder": "array"}))
    _layout(fig, 400)
    _groups(fig, groups)
    for col in (1, 2):
        fig.update_xaxes(type="log", title_text="speedup over torch (×)", row=1, col=col,
                         zeroline=False, gridcolor="#eee")
        fig.add_vline(x=1.0, line=dict(color="#333", width=1, dash="dot"), row=1, col=col)
    fig.update_yaxes(autorange="reversed")
    if any(line[f"{b}_speedup"] for line in lines for b in data.FAST_BACKENDS):
        plot = page.figure(fig, note="One point per model: the triton or torch.compile row over the torch row of "
                                     "its configuration. × at the left edge: no speedup (the row failed, was "
                                     "skipped, or torch did not measure). Ringed points carry a flag (marks beside "
                                     "them).")
    else:
        plot = page.missing("No triton or torch.compile row measured beside a measured torch row: no speedups "
                            "to plot (on a CPU, triton is skipped unless TRITON_INTERPRET=1).")
    columns = [("platform", "platform", None), ("model", "name", None), ("mode", "mode", None),
               ("dtype", "dtype", None), ("batch", "batch_size", None), ("format", "memory_format", None),
               ("size", "input_size", None)]
    columns += [(f"{b} img/s", _summary_cell(b), None) for b in BACKENDS]
    columns += [(f"{b} ×", f"{b}_speedup", lambda v: "-" if v is None else f"{v:.2f}×") for b in data.FAST_BACKENDS]
    columns += [("flags", lambda line: ", ".join(line["flags"]), None),
                ("messages", lambda line: " | ".join(line["messages"]), None)]
    ordered = sorted(lines, key=lambda line: (str(line["platform"]), str(line["name"]), data.mode_rank(line["mode"]),
                                              str(line["dtype"]), line["batch_size"] or 0))
    table = page.table(columns, ordered, row_class=lambda line: _row_class(line["flags"]))
    return intro + plot + table


def _summary_cell(backend: str):
    """A backend's images/s cell: the terminal summary's text and marks (~ noisy), sorted by the number."""
    def cell(line: dict) -> Cell:
        row = line[backend]
        text = (line[f"{backend}_cell"] or "-") + (" ~" if row is not None and "noisy" in row["flags"] else "")
        return Cell(line[f"{backend}_throughput"] if row is not None and row["status"] in ("ok", "incorrect")
                    else None, text)
    return cell


def _speedup_hover(row, base, speedup) -> str:
    extra = []
    if speedup is not None:
        extra.append(f"<b>speedup {speedup:.3f}×</b> over torch")
    if data._num(row.get("throughput")) is not None:
        extra.append(f"{fmt_num(row.get('throughput'))} images/s")
    if base is not None:
        extra.append(f"torch: {esc(base['status'])}, median {fmt_ms(base.get('median_ms'))} · IQR "
                     f"{fmt_ms(base.get('iqr_ms'))} · n={value(base.get('samples'))}"
                     + (f" · {fmt_num(base.get('throughput'))} images/s" if data._num(base.get('throughput')) else ""))
    else:
        extra.append("torch: not measured")
    return hover(row, *extra)


def _failed_text(line, backend) -> str:
    row = line[backend]
    if row["status"] in ("ok", "incorrect"):
        return "torch " + (line["torch"]["status"] if line["torch"] is not None else "missing")
    return row["status"]


# --- 2. Throughput ------------------------------------------------------------------------------

def section_throughput(page: Page, frame) -> str:
    from plotly import graph_objects as go
    from plotly.subplots import make_subplots

    intro = ('<p class="intro">Images/s per model and backend, inference and training (median; the error bars '
             'span the interquartile range of the timed repetitions). Pick the platform, dtype and batch size '
             'above the plot. Hatched bars are incorrect; a red × (and a line under the model\'s name) marks a '
             'configuration that failed or was skipped.</p>')
    rows = _model_rows(frame)
    if not rows:
        return intro + page.missing("No model rows in the inputs.")
    fig = make_subplots(rows=1, cols=2, subplot_titles=("infer", "train"), horizontal_spacing=0.06)
    groups = []
    for key in _sorted_unique((r["platform"], r["dtype"], r["batch_size"], r["memory_format"]) for r in rows):
        mine = [r for r in rows if (r["platform"], r["dtype"], r["batch_size"], r["memory_format"]) == key]
        models = _sorted_unique(r["name"] for r in mine)
        traces, ticks = [], {}
        for col, mode in enumerate(("infer", "train"), start=1):
            for backend in _sorted_unique((r["backend"] for r in mine), BACKENDS):
                measured = [r for r in mine if r["mode"] == mode and r["backend"] == backend
                            and data._num(r.get("throughput"))]
                if measured:
                    tput = [data._num(r["throughput"]) for r in measured]
                    batch = [r["batch_size"] for r in measured]
                    hi = [b / (r["q1_ms"] / 1e3) - t if b and r.get("q1_ms") else 0
                          for r, b, t in zip(measured, batch, tput)]
                    lo = [t - b / (r["q3_ms"] / 1e3) if b and r.get("q3_ms") else 0
                          for r, b, t in zip(measured, batch, tput)]
                    traces.append((go.Bar(
                        x=[esc(r["name"]) for r in measured], y=tput, name=BACKEND_LABEL.get(backend, esc(backend)),
                        legendgroup=backend, showlegend=col == 1, offsetgroup=backend,
                        marker=dict(color=BACKEND_COLOR.get(backend, "#888"),
                                    pattern=dict(shape=["x" if r["status"] == "incorrect" else "" for r in measured],
                                                 fgcolor=BAD),
                                    line=dict(width=[2 if _row_class(r["flags"]) else 0 for r in measured],
                                              color=[BAD if _row_class(r["flags"]) == "bad" else "#f0b429"
                                                     for r in measured])),
                        error_y=dict(type="data", symmetric=False, array=hi, arrayminus=lo, color="#333",
                                     thickness=1.2, width=3),
                        hovertext=[hover(r, f"<b>{fmt_num(t)} images/s</b>") for r, t in zip(measured, tput)],
                        hoverinfo="text"), 1, col))
            failed = [r for r in mine if r["mode"] == mode and not data._num(r.get("throughput"))]
            names = _sorted_unique(r["name"] for r in failed)
            if names:
                traces.append((_failures([esc(n) for n in names], [0] * len(names), [[] for _ in names],
                                         ["<br>―――<br>".join(hover(r) for r in failed if r["name"] == n)
                                          for n in names], "top center"), 1, col))
            axis = "xaxis" if col == 1 else f"xaxis{col}"
            ticks[f"{axis}.tickvals"] = [esc(m) for m in models]
            ticks[f"{axis}.ticktext"] = [
                esc(m) + "".join(f'<br><span style="color:{BAD}">{esc(r["backend"])} {esc(r["status"])}</span>'
                                 for r in failed if r["name"] == m) for m in models]
        labels = [esc(m) for m in models]
        groups.append((_group_label(*key[:2], batch_label(key[2]), key[3]), traces,
                       {"xaxis.categoryarray": labels, "xaxis.categoryorder": "array",
                        "xaxis2.categoryarray": labels, "xaxis2.categoryorder": "array", **ticks}))
    _layout(fig, 470, barmode="group", bargap=0.25)
    _groups(fig, groups)
    fig.update_yaxes(title_text="images/s", rangemode="tozero", row=1, col=1)
    fig.update_xaxes(tickangle=-30)
    return intro + page.figure(fig)


# --- 3. Speedup heat map ------------------------------------------------------------------------

def section_heatmap(page: Page, frame) -> str:
    intro = ('<p class="intro">Speedup of each fast path over eager torch in the same configuration, '
             'models × (backend · mode · dtype · batch) and kernel ops × shapes, one map per platform. The colour '
             'is diverging around 1.0 on a log scale: blue is faster than torch, red slower. '
             'Cell marks: ! incorrect, ~ noisy, T throttled, C clocks moved; E error, M out of memory, '
             '- skipped (no colour).</p>')
    pairs = data.speedups(frame) if not frame.empty else []
    parts = []
    for kind, what in (("model", "models"), ("kernel", "kernels")):
        mine = [p for p in pairs if p["kind"] == kind]
        if not mine:
            parts.append(page.missing(f"No {what} measured with triton or torch.compile beside torch: no "
                                      f"{kind} speedups." + (" Kernel rows come from <code>python -m bench run "
                                                             "--suite kernels</code>." if kind == "kernel" else "")))
            continue
        if not any(p["speedup"] for p in mine):
            parts.append(f"<h3>{what}</h3>" + page.missing(
                f"No {kind} speedup could be computed: in every configuration either torch or the fast path "
                f"failed or was skipped ({len(mine)} pairs; see the tables)."))
            continue
        parts.append(f"<h3>{what}</h3>" + page.figure(_heatmap(mine, kind)))
    return intro + "".join(parts)


def _heatmap(pairs: list[dict], kind: str):
    from plotly import graph_objects as go

    fig = go.Figure()
    groups = []
    for platform in _sorted_unique(p["platform"] for p in pairs):
        mine = [p for p in pairs if p["platform"] == platform]
        bound = max([abs(math.log2(p["speedup"])) for p in mine if p["speedup"]] + [math.log2(1.5)])
        steps = (0.125, 0.25, 0.5, 1, 2, 4, 8) if bound >= 1 else (0.5, 0.67, 0.8, 1, 1.25, 1.5, 2)
        ticks = [t for t in steps if abs(math.log2(t)) <= bound * 1.01]

        def row_label(p):
            return p["name"] if kind == "model" else f"{p['name']} · {p['shape']}"

        def col_label(p):
            parts = [p["backend"], p["mode"], p["dtype"]]
            if kind == "model":
                parts.append(batch_label(p["batch_size"], "b"))
            return " · ".join(str(x) for x in parts)

        ys = _sorted_unique(row_label(p) for p in mine)
        col_order = sorted({(p["backend"], p["mode"], p["dtype"], p["batch_size"] or 0, col_label(p)) for p in mine},
                           key=lambda c: (BACKENDS.index(c[0]) if c[0] in BACKENDS else 9, data.mode_rank(c[1]),
                                          _sort_key(c[2:4])))
        xs = list(dict.fromkeys(c[4] for c in col_order))
        z = [[None] * len(xs) for _ in ys]
        text = [[""] * len(xs) for _ in ys]
        hovers = [[""] * len(xs) for _ in ys]
        for p in mine:
            i, j = ys.index(row_label(p)), xs.index(col_label(p))
            marks = _flag_marks(p["flags"])
            if p["speedup"]:
                z[i][j] = math.log2(p["speedup"])
                text[i][j] = f"{p['speedup']:.2f}" + (" " + marks if marks else "")
            else:
                text[i][j] = FLAG_MARK.get(p["row"]["status"], "") or ("no torch" if p["base"] is None else
                                                                        FLAG_MARK.get(p["base"]["status"], "?"))
            hovers[i][j] = _speedup_hover(p["row"], p["base"], p["speedup"])
        trace = go.Heatmap(
            z=z, x=[esc(x) for x in xs], y=[esc(y) for y in ys], text=[[esc(t) for t in r] for r in text],
            texttemplate="%{text}", textfont=dict(size=10), hovertext=hovers, hoverinfo="text",
            colorscale="RdBu", zmid=0, zmin=-bound, zmax=bound, xgap=1, ygap=1,
            colorbar=dict(title=dict(text="speedup"), tickvals=[math.log2(t) for t in ticks],
                          ticktext=[f"{t:g}×" for t in ticks], len=0.9))
        groups.append((platform, [(trace, None, None)], {"height": max(320, 220 + 24 * len(ys))}))
    _layout(fig, 400)
    _groups(fig, groups)
    fig.update_layout(plot_bgcolor="#f2f2f2")
    fig.update_xaxes(side="bottom", tickangle=-35)
    fig.update_yaxes(autorange="reversed", automargin=True)
    return fig


# --- 4. Kernel roofline -------------------------------------------------------------------------

def section_roofline(page: Page, frame) -> str:
    from plotly import graph_objects as go

    intro = ('<p class="intro">Each hot-path op at each shape where it occurs in the models: the achieved '
             'bandwidth (bytes moved as the kernel contract counts them, over the median time) of Triton, torch '
             '(cuDNN) and torch.compile, against the copy bandwidth measured in the same run (dashed) and the '
             "device's datasheet peak (solid); below, TFLOP/s of the grouped and depthwise convolutions against "
             'the peak for their dtype.</p>')
    rows, references = data.roofline(frame)
    kernel_rows = _kernel_rows(frame)
    if not kernel_rows:
        return intro + page.missing("No kernel rows in the inputs: run <code>python -m bench run --suite kernels"
                                    "</code> (or the device check) for the roofline.")
    if not rows:
        return intro + page.missing("No kernel row measured (all failed or were skipped), or none carries "
                                    "achieved GB/s.") + _kernel_table(page, kernel_rows)
    parts = [intro]
    unknown = sorted(p for p, ref in references.items() if ref["peak_gbps"] is None)
    if unknown:
        parts.append(page.missing("No datasheet peak for " + esc(", ".join(unknown)) + " (not a GPU listed in "
                                  "bench/report_data.DEVICE_PEAKS): only the measured copy bandwidth is drawn there."))
    for metric in ("achieved_gbps", "achieved_tflops"):
        def measure(r, metric=metric):
            return data._num(r.get(metric))

        bandwidth = metric == "achieved_gbps"
        mine = rows if bandwidth else [r for r in rows if r["name"] == "conv2d" and measure(r) is not None]
        if not mine:
            parts.append(page.missing("No convolution rows (op conv2d): no TFLOP/s plot."))
            continue
        fig = go.Figure()
        groups = []
        for key in _sorted_unique((r["platform"], r["dtype"]) for r in mine):
            platform, dtype = key
            these = [r for r in mine if (r["platform"], r["dtype"]) == key]
            failed = [r for r in kernel_rows if (r["platform"], r["dtype"]) == key and r["status"] in
                      ("error", "oom", "skipped") and (bandwidth or r["name"] == "conv2d")]
            labels = [_case_label(r) for r in sorted(these + failed, key=_case_order)]
            labels = list(dict.fromkeys(labels))
            traces = []
            for backend in _sorted_unique((r["backend"] for r in these), BACKENDS):
                points = [r for r in these if r["backend"] == backend]
                traces.append((go.Scatter(
                    x=[measure(r) for r in points], y=[esc(_case_label(r)) for r in points], mode="markers",
                    name=BACKEND_LABEL.get(backend, esc(backend)),
                    marker=dict(color=BACKEND_COLOR.get(backend, "#888"), symbol=BACKEND_SYMBOL.get(backend, "circle"),
                                size=10, line=dict(width=[2.5 if _row_class(r["flags"]) else 0.5 for r in points],
                                                   color=[BAD if _row_class(r["flags"]) == "bad" else "#f0b429"
                                                          if _row_class(r["flags"]) else "#fff" for r in points])),
                    hovertext=[hover(r, _kernel_extra(r)) for r in points], hoverinfo="text"), None, None))
            if failed:
                traces.append((_failures([0] * len(failed), [esc(_case_label(r)) for r in failed],
                                         [[f"{r['backend']} {r['status']}"] for r in failed],
                                         [hover(r) for r in failed], "middle right"), None, None))
            ref = references.get(platform, {})
            lines = []
            if bandwidth:
                if ref.get("copy_gbps"):
                    lines.append((ref["copy_gbps"], "dash", f"measured copy {ref['copy_gbps']:,.0f} GB/s"))
                if ref.get("peak_gbps"):
                    lines.append((ref["peak_gbps"], "solid", f"peak {ref['peak_gbps']:,.0f} GB/s"))
            elif ref.get("peak_tflops", {}).get(dtype):
                peak = ref["peak_tflops"][dtype]
                lines.append((peak, "solid", f"{dtype} peak {peak:g} TFLOP/s"))
            shapes = [dict(type="line", x0=x, x1=x, xref="x", y0=0, y1=1, yref="paper",
                           line=dict(color="#222", width=1.5, dash=dash)) for x, dash, _ in lines]
            notes = [dict(x=x, xref="x", y=1, yref="paper", text=esc(t), showarrow=False, yanchor="top",
                          xanchor="right", textangle=-90, font=dict(size=11, color="#222"), xshift=-3)
                     for x, _, t in lines]
            top = max([x for x, _, _ in lines] + [measure(r) for r in these])
            groups.append((_group_label(platform, dtype), traces,
                           {"height": 200 + 22 * len(labels), "shapes": shapes, "annotations": notes,
                            "yaxis.categoryarray": [esc(lbl) for lbl in labels], "yaxis.categoryorder": "array",
                            "xaxis.range": [0, top * 1.08]}))
        _layout(fig, 400)
        _groups(fig, groups)
        fig.update_xaxes(title_text="achieved GB/s" if bandwidth else "achieved TFLOP/s", gridcolor="#eee")
        fig.update_yaxes(autorange="reversed", automargin=True, tickfont=dict(size=11))
        parts.append(("<h3>achieved bandwidth, every op</h3>" if bandwidth else
                      "<h3>achieved TFLOP/s, grouped and depthwise convolutions</h3>") + page.figure(fig))
    parts.append(_kernel_table(page, kernel_rows))
    return "".join(parts)


def _case_label(row) -> str:
    return f"{row['name']} · {row['shape']} · {row['mode']}"


def _case_order(row) -> tuple:
    return str(row["name"]), str(row["shape"]), data.mode_rank(row["mode"])


def _kernel_extra(row) -> str:
    return (f"<b>{fmt_num(row.get('achieved_gbps'))} GB/s</b> ({fmt_num(row.get('percent_of_copy_bandwidth'), 3)}% "
            f"of copy) · {fmt_num(row.get('achieved_tflops'))} TFLOP/s<br>"
            f"{fmt_bytes(row.get('bytes_moved'))} moved · "
            f"{fmt_num(row.get('flops'))} FLOPs · rel. error {fmt_err(row.get('rel_error'))}")


def _kernel_table(page: Page, rows: list[dict]) -> str:
    columns = [("platform", "platform", None), ("op", "name", None), ("shape", "shape", None), ("mode", "mode", None),
               ("dtype", "dtype", None), ("backend", "backend", None), ("status", "status", None),
               ("median", "median_ms", fmt_ms), ("IQR %", lambda r: None if r.get("iqr_ratio") is None else
                                                   100 * r["iqr_ratio"], lambda v: fmt_num(v, 2)),
               ("n", "samples", None), ("GB/s", "achieved_gbps", fmt_num),
               ("% of copy", "percent_of_copy_bandwidth", lambda v: fmt_num(v, 3)),
               ("TFLOP/s", "achieved_tflops", fmt_num), ("rel. error", "rel_error", fmt_err),
               ("flags", "flag_text", None), ("message", "message", None)]
    return page.table(columns, rows, row_class=lambda r: _row_class(r["flags"]))


# --- 5. Memory ----------------------------------------------------------------------------------

def section_memory(page: Page, frame) -> str:
    from plotly import graph_objects as go
    from plotly.subplots import make_subplots

    intro = ('<p class="intro">Peak allocated device memory per model, backend and batch size (reset before each '
             "configuration's timed region; the hover also gives the peak reserved by the caching allocator). "
             "On a CPU the figure is the worker process's peak resident size, start-up included.</p>")
    rows = [r for r in _model_rows(frame) if data._num(r.get("peak_memory_bytes"))]
    if not rows:
        return intro + page.missing("No model row with a peak memory figure in the inputs.")
    fig = make_subplots(rows=1, cols=2, subplot_titles=("infer", "train"), horizontal_spacing=0.06)
    groups = []
    for key in _sorted_unique((r["platform"], r["dtype"], r["memory_format"]) for r in rows):
        mine = [r for r in rows if (r["platform"], r["dtype"], r["memory_format"]) == key]
        traces = []
        for col, mode in enumerate(("infer", "train"), start=1):
            for backend in _sorted_unique((r["backend"] for r in mine), BACKENDS):
                points = sorted((r for r in mine if r["mode"] == mode and r["backend"] == backend),
                                key=lambda r: _sort_key((r["name"], r["batch_size"])))
                if not points:
                    continue
                traces.append((go.Bar(
                    x=[[esc(r["name"]) for r in points], [batch_label(r["batch_size"], "b") for r in points]],
                    y=[data._num(r["peak_memory_bytes"]) / 2**30 for r in points],
                    name=BACKEND_LABEL.get(backend, esc(backend)), legendgroup=backend, showlegend=col == 1,
                    offsetgroup=backend, marker=dict(color=BACKEND_COLOR.get(backend, "#888")),
                    hovertext=[hover(r, f"<b>peak allocated {fmt_bytes(r['peak_memory_bytes'])}</b> · reserved "
                                        f"{fmt_bytes(r.get('peak_reserved_bytes'))}") for r in points],
                    hoverinfo="text"), 1, col))
        groups.append((_group_label(*key), traces, {}))
    _layout(fig, 520, barmode="group", bargap=0.2, margin=dict(l=60, r=30, t=90, b=110))
    _groups(fig, groups)
    fig.update_yaxes(title_text="peak memory (GiB)", row=1, col=1)
    fig.update_xaxes(tickfont=dict(size=10))
    return intro + page.figure(fig)


# --- 6. Correctness -----------------------------------------------------------------------------

def section_correctness(page: Page, frame) -> str:
    from plotly import graph_objects as go

    intro = ('<p class="intro">Relative error ‖out − ref‖ / ‖ref‖ of every checked row against the reference: '
             'the fp32 eager (cuDNN) model for models, float64 torch for kernels. Filled markers: outputs; open '
             "markers: parameter or input gradients. Dashed lines: the dtype's tolerance for the fast paths "
             "(triton, compile), dotted where the gradients' differs; torch's own low-precision rows are the "
             "baseline and have none. An error of 0 is "
             f"drawn at {ERROR_FLOOR:g}.</p>")
    rows = data.correctness(frame)
    if not rows:
        return intro + page.missing("No row in the inputs carries an error against the reference (fp32 eager "
                                    "rows are the reference itself).")
    parts = [intro]
    for kind in ("model", "kernel"):
        mine = [r for r in rows if r["kind"] == kind]
        if not mine:
            parts.append(page.missing(f"No {kind} rows checked against the reference."))
            continue
        fig = go.Figure()
        groups = []
        for platform in _sorted_unique(r["platform"] for r in mine):
            these = [r for r in mine if r["platform"] == platform]
            label = (lambda r: r["name"]) if kind == "model" else (lambda r: f"{r['name']} · {r['shape']}")
            labels = _sorted_unique(label(r) for r in these)
            traces = []
            for backend in _sorted_unique((r["backend"] for r in these), BACKENDS):
                for dtype in _sorted_unique(r["dtype"] for r in these):
                    for field, open_marker in (("rel_error", False), ("grad_rel_error", True)):
                        points = [r for r in these if r["backend"] == backend and r["dtype"] == dtype
                                  and data._num(r.get(field)) is not None]
                        if not points:
                            continue
                        symbol = DTYPE_SYMBOL.get(dtype, "circle") + ("-open" if open_marker else "")
                        traces.append((go.Scatter(
                            x=[esc(label(r)) for r in points],
                            y=[max(data._num(r[field]), ERROR_FLOOR) for r in points], mode="markers",
                            name=esc(f"{backend} {dtype}" + (" (grad)" if open_marker else "")),
                            legendgroup=f"{backend}-{dtype}",
                            marker=dict(color=BACKEND_COLOR.get(backend, "#888"), symbol=symbol, size=9,
                                        line=dict(width=[2.5 if r["status"] == "incorrect" else 1 for r in points],
                                                  color=[BAD if r["status"] == "incorrect" else
                                                         BACKEND_COLOR.get(backend, "#888") for r in points])),
                            hovertext=[hover(r, _error_extra(r, field)) for r in points], hoverinfo="text"),
                            None, None))
            bounds = {}  # (dtype, what) -> tolerance; gradients drawn only where their bound differs
            for r in (r for r in these if r["fast"]):
                for field, what in (("rel_error", "tolerance"), ("grad_rel_error", "gradient tolerance")):
                    tol = data.tolerance_of(r, field)
                    if tol and data._num(r.get(field)) is not None and (
                            field == "rel_error" or tol != data.tolerance_of(r)):
                        bounds[(r["dtype"], what)] = tol
            shapes = [dict(type="line", xref="paper", x0=0, x1=1, y0=tol, y1=tol, yref="y",
                           line=dict(color="#444", width=1.3,
                                     dash=DTYPE_DASH.get(dtype, "dash") if what == "tolerance" else "dot"))
                      for (dtype, what), tol in bounds.items()]
            notes = [dict(xref="paper", x=1, y=math.log10(tol), yref="y", text=esc(f"{dtype} {what} {tol:g}"),
                          showarrow=False, xanchor="right", yanchor="bottom", font=dict(size=11, color="#444"))
                     for (dtype, what), tol in bounds.items()]
            groups.append((platform, traces, {"shapes": shapes, "annotations": notes,
                                              "xaxis.categoryarray": [esc(lbl) for lbl in labels],
                                              "xaxis.categoryorder": "array"}))
        _layout(fig, 520 if kind == "model" else 620, margin=dict(l=70, r=30, t=100, b=140 if kind == "kernel" else 90))
        _groups(fig, groups)
        fig.update_yaxes(type="log", title_text="relative error", tickformat=".0e", gridcolor="#eee")
        fig.update_xaxes(tickangle=-35, tickfont=dict(size=10 if kind == "kernel" else 12))
        parts.append(f"<h3>{'models, against fp32 eager' if kind == 'model' else 'kernels, against float64'}</h3>"
                     + page.figure(fig))
    columns = [("platform", "platform", None), ("kind", "kind", None), ("name", "name", None),
               ("shape", "shape", None), ("backend", "backend", None), ("mode", "mode", None),
               ("dtype", "dtype", None), ("batch", "batch_size", None), ("status", "status", None),
               ("rel. error", "rel_error", fmt_err), ("grad rel. error", "grad_rel_error", fmt_err),
               ("max abs. error", "max_abs_error", fmt_err), ("top-1 agreement", "top1_agreement", fmt_num),
               ("tolerance", "tolerance", fmt_err), ("grad tolerance", lambda r: data.tolerance_of(r, "grad_rel_error")
                                                     if data._num(r.get("grad_rel_error")) is not None else None,
                                                     fmt_err),
               ("worst / tolerance", data.error_ratio, lambda v: fmt_num(v, 3)), ("message", "message", None)]
    ordered = sorted(rows, key=lambda r: -(data.error_ratio(r) or -1))
    parts.append(page.table(columns, ordered, row_class=lambda r: "bad" if r["status"] == "incorrect" else "",
                            caption="Every checked row, worst error relative to its tolerance first."))
    return "".join(parts)


def _error_extra(row, field) -> str:
    tol = data.tolerance_of(row, field)
    text = f"<b>{'gradient ' if field == 'grad_rel_error' else ''}relative error {fmt_err(row.get(field))}</b>"
    text += f" · tolerance {tol:g}" if tol else " · no tolerance (baseline)"
    if data._num(row.get("top1_agreement")) is not None:
        text += f" · top-1 agreement {fmt_num(row['top1_agreement'])}"
    return text


# --- 7. Across GPUs -----------------------------------------------------------------------------

def section_across(page: Page, frame) -> str:
    from plotly.subplots import make_subplots
    from plotly import graph_objects as go

    intro = ('<p class="intro">The configurations measured (status ok) on more than one platform: absolute speed '
             '(images/s for models, GB/s for kernels) and normalized to the reference platform (the one with '
             'the most such rows; 1.0 = as fast as the reference).</p>')
    platforms = _sorted_unique(frame["platform"]) if not frame.empty else []
    entries, reference = data.across_platforms(frame)
    if not entries:
        found = ", ".join(map(str, platforms)) or "none"
        why = ("only one platform in the inputs" if len(platforms) < 2 else
               "no configuration was measured ok on two of them")
        return intro + page.missing(f"Nothing to compare across GPUs: {esc(why)} (found: {esc(found)}). Pass "
                                    "results files from the same suite on other GPUs.")
    order = [reference] + [p for p in _sorted_unique(e["platform"] for e in entries) if p != reference]
    colors = {p: PLATFORM_COLORS[i % len(PLATFORM_COLORS)] for i, p in enumerate(order)}
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=("absolute", f"relative to {esc(reference)}"))
    groups = []
    def group_of(e) -> tuple:  # kernel shapes carry their batch size
        return (e["kind"], e["backend"], e["mode"], e["dtype"], e["batch_size"] if e["kind"] == "model" else None,
                e["memory_format"])

    keys = sorted(set(map(group_of, entries)), key=lambda k: (
        k[0] != "model", BACKENDS.index(k[1]) if k[1] in BACKENDS else len(BACKENDS), data.mode_rank(k[2]),
        _sort_key(k[3:])))
    for key in keys:
        kind, backend, mode, dtype, batch, fmt = key
        mine = [e for e in entries if group_of(e) == key]
        label = (lambda e: e["name"]) if kind == "model" else (lambda e: f"{e['name']} · {e['shape']}")
        unit = mine[0]["unit"]
        traces = []
        for platform in order:
            points = [e for e in mine if e["platform"] == platform]
            if not points:
                continue
            for row_index, field in ((1, "value"), (2, "relative")):
                traces.append((go.Bar(
                    x=[esc(label(e)) for e in points], y=[e[field] for e in points], name=esc(platform),
                    legendgroup=platform, showlegend=row_index == 1, offsetgroup=platform,
                    marker=dict(color=colors[platform], line=dict(
                        width=[2 if _row_class(e["flags"]) else 0 for e in points], color="#f0b429")),
                    hovertext=[hover(e["row"], f"<b>{fmt_num(e['value'])} {unit}</b> · "
                                               f"{fmt_num(e['relative'], 3)}× {esc(reference)}") for e in points],
                    hoverinfo="text"), row_index, 1))
        what = "models" if kind == "model" else "kernels"
        batch_part = batch_label(batch) if kind == "model" else None
        groups.append((_group_label(what, backend, mode, dtype, batch_part, fmt), traces,
                       {"yaxis.title.text": esc(unit)}))
    _layout(fig, 640, barmode="group", bargap=0.2, margin=dict(l=70, r=20, t=80, b=120))
    _groups(fig, groups, active=0)
    fig.update_yaxes(title_text="ratio", row=2, col=1)
    fig.add_hline(y=1.0, line=dict(color="#333", width=1, dash="dot"), row=2, col=1)
    fig.update_xaxes(tickangle=-30, tickfont=dict(size=10), row=2, col=1)
    table_rows: dict[tuple, dict] = {}
    for e in entries:
        fields = ("kind", "name", "shape", "backend", "mode", "dtype", "batch_size", "memory_format", "input_size")
        config = tuple(e[f] for f in fields)
        line = table_rows.setdefault(config, dict(zip(fields, config), unit=e["unit"], flags=[]))
        line[f"v:{e['platform']}"] = e["value"]
        line[f"r:{e['platform']}"] = e["relative"]
        line["flags"] = data.combine_flags(line["flags"], e["flags"])
    columns = [("kind", "kind", None), ("name", "name", None), ("shape", "shape", None), ("backend", "backend", None),
               ("mode", "mode", None), ("dtype", "dtype", None), ("batch", "batch_size", None),
               ("format", "memory_format", None), ("size", "input_size", None), ("unit", "unit", None)]
    columns += [(str(p), f"v:{p}", fmt_num) for p in order]
    columns += [(f"{p} / {reference}", f"r:{p}", lambda v: fmt_num(v, 3)) for p in order[1:]]
    columns += [("flags", lambda line: ", ".join(line["flags"]), None)]
    return intro + page.figure(fig) + page.table(columns, list(table_rows.values()),
                                                 row_class=lambda line: _row_class(line["flags"]))


# --- 8. Environment -----------------------------------------------------------------------------

def section_environment(page: Page, frame) -> str:
    from plotly import graph_objects as go

    intro = ('<p class="intro">Per run and device: the GPU, driver and software versions, clocks at the start, '
             'the range of SM clocks sampled while the rows ran, throttle reasons and the commit. Warnings: '
             f'any throttle reason, or an SM clock range over {data.CLOCK_SPREAD_RATIO:.0%} of its highest.</p>')
    runs = data.environment(frame)
    if not runs:
        return intro + page.missing("No rows in the inputs.")
    parts = [intro]
    for run in runs:
        for warning in run["warnings"]:
            parts.append(f'<div class="warning"><b>{esc(run["run_id"])}</b> on {esc(run["platform"])} '
                         f'({esc(run["host"])}): {esc(warning)}</div>')
        if run["synthetic"]:
            parts.append(f'<div class="warning"><b>{esc(run["run_id"])}</b> is SYNTHETIC sample data '
                         '(results/samples/make_synthetic.py), not a measurement.</div>')
    clocked = [r for r in frame.to_dict("records") if data._num(r.get("sm_clock_mhz_max")) is not None]
    if clocked:
        fig = go.Figure()
        for index, run in enumerate(_sorted_unique((str(r["run_id"]), str(r["device"])) for r in clocked)):
            points = sorted((r for r in clocked if (str(r["run_id"]), str(r["device"])) == run),
                            key=lambda r: str(r["started_at"]))
            hi = [data._num(r["sm_clock_mhz_max"]) for r in points]
            lo = [data._num(r["sm_clock_mhz_min"]) or h for r, h in zip(points, hi)]
            bad = ["throttled" in r["flags"] or "clocks moved" in r["flags"] for r in points]
            fig.add_trace(go.Scatter(
                x=list(range(len(points))), y=hi, mode="markers",
                name=esc(f"{run[0]} ({run[1]}, {points[0]['platform']})"),
                marker=dict(color=[BAD if b else PLATFORM_COLORS[index % len(PLATFORM_COLORS)] for b in bad],
                            size=6, symbol=["x" if b else "circle" for b in bad]),
                error_y=dict(type="data", symmetric=False, array=[0] * len(hi),
                             arrayminus=[h - l for h, l in zip(hi, lo)], thickness=1, width=0,
                             color=PLATFORM_COLORS[index % len(PLATFORM_COLORS)]),
                hovertext=[hover(r, f"<b>SM clock {fmt_num(r.get('sm_clock_mhz_min'))}–"
                                    f"{fmt_num(r.get('sm_clock_mhz_max'))} MHz</b> (max "
                                    f"{fmt_num(r.get('sm_clock_max_mhz'))}) · throttle: "
                                    f"{esc(', '.join(r.get('throttle_reasons') or []) or 'none')}") for r in points],
                hoverinfo="text"))
        _layout(fig, 380)
        fig.update_xaxes(title_text="row, in the order it ran")
        fig.update_yaxes(title_text="SM clock while the row ran (MHz)")
        parts.append(page.figure(fig, note="Each row's highest sampled SM clock, its bar reaching down to the "
                                           "lowest; × in red: the row throttled or its clock moved."))
    else:
        parts.append(page.missing("No SM clock samples in the inputs (CPU runs, or NVML not available): "
                                  "nothing to say about clocks or throttling."))
    columns = [("run", "run_id", None), ("platform", "platform", None), ("device", "device", None),
               ("host", "host", None), ("driver", "driver_version", None), ("torch", "torch_version", None),
               ("triton", "triton_version", None), ("CUDA", "cuda_version", None), ("cuDNN", "cudnn_version", None),
               ("commit", _commit, None),
               ("SM MHz at start / max", lambda r: _pair(r["sm_clock_mhz"], r["sm_clock_max_mhz"]), None),
               ("SM MHz seen", lambda r: _pair(r["sm_clock_seen_min"], r["sm_clock_seen_max"], "–"), None),
               ("throttle reasons", lambda r: ", ".join(r["throttle_reasons"]) or "-", None),
               ("copy GB/s", "copy_bandwidth_gbps", fmt_num), ("rows", "rows", None), ("statuses", "statuses", None),
               ("started", "started", None), ("finished", "finished", None), ("CC", "compute_capability", None),
               ("python", "python", None), ("CPU", "cpu", None), ("temp °C", "temperature_c", fmt_num),
               ("power limit W", "power_limit_w", fmt_num), ("warnings", lambda r: " | ".join(r["warnings"]), None)]
    parts.append(page.table(columns, runs, row_class=lambda r: "bad" if r["warnings"] else ""))
    return "".join(parts)


def _commit(run) -> str:
    commit = run.get("git_commit")
    if not commit:
        return "-"
    return str(commit)[:12] + (" (dirty)" if run.get("git_dirty") else "")


def _pair(a, b, sep=" / ") -> str:
    return "-" if a is None and b is None else f"{fmt_num(a)}{sep}{fmt_num(b)}"


# --- Rendering ----------------------------------------------------------------------------------

SECTIONS = (
    ("summary", "1. Summary", section_summary),
    ("throughput", "2. Throughput by model", section_throughput),
    ("speedup", "3. Speedup heat map", section_heatmap),
    ("roofline", "4. Kernel roofline", section_roofline),
    ("memory", "5. Memory", section_memory),
    ("correctness", "6. Correctness", section_correctness),
    ("across", "7. Across GPUs", section_across),
    ("environment", "8. Environment", section_environment),
)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _header(frame, every_row, sources: list[str]) -> str:
    counts = frame["status"].value_counts().to_dict() if not frame.empty else {}
    platforms = _sorted_unique(frame["platform"]) if not frame.empty else []
    runs = data.environment(every_row)
    superseded = len(every_row) - len(frame)
    parts = ["<h1>classic-cnn-bench report</h1>",
             f"<p>{_count(len(frame), 'configuration')} from {_count(len({r['run_id'] for r in runs}), 'run')} on "
             f"{_count(len(platforms), 'platform')} ({esc(', '.join(map(str, platforms)) or 'none')}): "
             f"{esc(', '.join(f'{n} {s}' for s, n in sorted(counts.items())) or 'no rows')}"
             + (f"; {superseded} older rows of the same configurations not shown" if superseded else "") + ".</p>",
             f"<p>Inputs: {esc(', '.join(sources) or 'none')} · generated {esc(time.strftime('%Y-%m-%d %H:%M:%S %z'))}"
             "</p>"]
    if any(r["synthetic"] for r in runs):
        parts.append('<span class="banner synthetic">Contains SYNTHETIC sample data (not measured)</span>')
    warned = [r for r in runs if r["warnings"]]
    if warned:
        parts.append(f'<a href="#environment"><span class="banner warn">{_count(len(warned), "run")} throttled or '
                     'moved clocks: see Environment</span></a>')
    flags = data.combine_flags(*frame["flags"]) if not frame.empty else []
    if flags:
        tally = {f: sum(f in row_flags for row_flags in frame["flags"]) for f in flags}
        parts.append('<span class="banner warn">flagged rows: '
                     + esc(", ".join(f"{n} {f}" for f, n in tally.items())) + "</span>")
    return "".join(parts)


def build(frame, sources: list[str] | None = None, output: str | Path = DEFAULT_OUTPUT) -> Path:
    """Render a loaded results frame (``bench.results.load``) to ``output``; returns its path."""
    try:
        import plotly  # noqa: F401
    except ImportError:
        raise ReportError("the report needs plotly (pip install plotly); the runner does not") from None
    every_row = data.prepare(frame)
    frame = data.latest(every_row)
    page = Page()
    sections = [(sid, title, fn(page, every_row if sid == "environment" else frame)) for sid, title, fn in SECTIONS]
    output = Path(output)
    try:
        page.write(output, "classic-cnn-bench report", _header(frame, every_row, [str(s) for s in sources or []]),
                   sections)
    except OSError as error:  # checked by check_output beforehand; a full disk or a race still lands here
        raise ReportError(f"{output}: cannot write the report ({error.strerror or error})") from None
    return output


def render(paths, output: str | Path = DEFAULT_OUTPUT) -> Path:
    """Read results files (or directories of them) and write the HTML report to ``output``;
    a :class:`ReportError` if they hold no row."""
    from .results import expand_paths, load

    if isinstance(paths, (str, Path)):
        paths = [paths]
    frame = load(paths)
    if frame.empty:
        raise ReportError(f"no results rows to report in {', '.join(_what_was_read(Path(p)) for p in paths)}")
    return build(frame, [str(p) for p in expand_paths(paths)], output)


def _what_was_read(path: Path) -> str:
    if not path.is_dir():
        return str(path)
    files = list(path.rglob("*.jsonl"))
    if not files:
        return f"{path} (a directory with no .jsonl file)"
    return f"{path} ({_count(len(files), '.jsonl file')}, none with a row)"


def check_output(output: str | Path) -> Path:
    """``output`` can become the report: a path ending in .html, not a directory, whose directory
    exists or can be created and is writable; a one-line :class:`ReportError` otherwise."""
    path = Path(output)
    if path.is_dir():
        raise ReportError(f"-o {path}: is a directory; expected the path of an .html file to write")
    if path.suffix.lower() != ".html":
        raise ReportError(f"-o {path}: expected a file name ending in .html")
    if path.exists() and not os.access(path, os.W_OK):
        raise ReportError(f"-o {path}: the file is not writable (permission denied)")
    try:  # the report creates the missing directories; the first existing one decides
        check_creatable(path, "-o")
    except ValueError as error:
        raise ReportError(str(error)) from None
    return path


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("results", nargs="+", metavar="RESULTS",
                        help="results files (*.jsonl) or directories of them, from any runs, GPUs and machines")
    parser.add_argument("-o", "--output", default=DEFAULT_OUTPUT,
                        help="the HTML file to write, *.html; missing directories are created (default %(default)s)")
    return parser


def main(args: argparse.Namespace) -> int:
    """``python -m bench report``: the parsed arguments of :func:`add_arguments`."""
    check_output(args.output)  # before reading or rendering anything
    out = render(args.results, args.output)
    print(f"report: {out} ({out.stat().st_size / 2**20:.1f} MiB, self-contained)")
    return 0


if __name__ == "__main__":  # python -m bench.report RESULTS... [-o FILE]
    parsed = add_arguments(argparse.ArgumentParser(prog="python -m bench.report", description=__doc__.splitlines()[0]))
    try:
        sys.exit(main(parsed.parse_args()))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
