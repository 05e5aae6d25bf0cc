"""Memory: the peak allocated device memory per model, backend and batch size."""

from __future__ import annotations

from ...suite import BACKENDS
from ..data import number, one_process, rows_of_kind
from ..figures import BACKEND_COLOR, BACKEND_LABEL, add_groups, group_label, layout
from ..format import batch_label, esc, fmt_bytes, hover, sort_key, sorted_unique
from ..page import Page, Rows

ID = "memory"
TITLE = "Memory"


def render(page: Page, rows: Rows) -> str:
    from plotly import graph_objects as go
    from plotly.subplots import make_subplots

    intro = ('<p class="intro">Peak allocated device memory per model, backend and batch size (reset before each '
             "configuration's timed region; the hover also gives the peak reserved by the caching allocator). "
             "On a CPU the figure is the worker process's peak resident size, start-up included.</p>")
    measured = [r for r in rows_of_kind(rows.latest, "model") if number(r.get("peak_memory_bytes")) and one_process(r)]
    if not measured:
        return intro + page.missing("No model row with a peak memory figure in the inputs.")
    fig = make_subplots(rows=1, cols=2, subplot_titles=("infer", "train"), horizontal_spacing=0.06)
    groups = []
    for key in sorted_unique((r["platform"], r["dtype"], r["memory_format"]) for r in measured):
        mine = [r for r in measured if (r["platform"], r["dtype"], r["memory_format"]) == key]
        traces = []
        for col, mode in enumerate(("infer", "train"), start=1):
            for backend in sorted_unique((r["backend"] for r in mine), BACKENDS):
                points = sorted((r for r in mine if r["mode"] == mode and r["backend"] == backend),
                                key=lambda r: sort_key((r["name"], r["batch_size"])))
                if not points:
                    continue
                traces.append((go.Bar(
                    x=[[esc(r["name"]) for r in points], [batch_label(r["batch_size"], "b") for r in points]],
                    y=[number(r["peak_memory_bytes"]) / 2**30 for r in points],
                    name=BACKEND_LABEL.get(backend, esc(backend)), legendgroup=backend, showlegend=col == 1,
                    offsetgroup=backend, marker=dict(color=BACKEND_COLOR.get(backend, "#888")),
                    hovertext=[hover(r, f"<b>peak allocated {fmt_bytes(r['peak_memory_bytes'])}</b> · reserved "
                                        f"{fmt_bytes(r.get('peak_reserved_bytes'))}") for r in points],
                    hoverinfo="text"), 1, col))
        groups.append((group_label(*key), traces, {}))
    layout(fig, 520, barmode="group", bargap=0.2, margin=dict(l=60, r=30, t=90, b=110))
    add_groups(fig, groups)
    fig.update_yaxes(title_text="peak memory (GiB)", row=1, col=1)
    fig.update_xaxes(tickfont=dict(size=10))
    return intro + page.figure(fig)
