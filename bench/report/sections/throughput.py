"""Throughput: images/s per model and backend, inference and training, with the IQR as error bars."""

from __future__ import annotations

from ...suite import BACKENDS
from ..data import number, one_process, rows_of_kind
from ..figures import BACKEND_COLOR, BACKEND_LABEL, BAD, add_groups, failures, group_label, layout, ring
from ..format import batch_label, esc, fmt_num, hover, sorted_unique
from ..page import Page, Rows

ID = "throughput"
TITLE = "Throughput by model"


def render(page: Page, rows: Rows) -> str:
    from plotly import graph_objects as go
    from plotly.subplots import make_subplots

    intro = ('<p class="intro">Images/s per model and backend, inference and training (median; the error bars '
             'span the interquartile range of the timed repetitions). Pick the platform, dtype and batch size '
             'above the plot. Hatched bars are incorrect; a red × (and a line under the model\'s name) marks a '
             'configuration that failed or was skipped.</p>')
    model_rows = [r for r in rows_of_kind(rows.latest, "model") if r.get("protocol") in (None, "single") and one_process(r)]
    if not model_rows:
        return intro + page.missing("No model rows in the inputs.")
    fig = make_subplots(rows=1, cols=2, subplot_titles=("infer", "train"), horizontal_spacing=0.06)
    groups = []
    for key in sorted_unique((r["platform"], r["dtype"], r["batch_size"], r["memory_format"]) for r in model_rows):
        mine = [r for r in model_rows if (r["platform"], r["dtype"], r["batch_size"], r["memory_format"]) == key]
        models = sorted_unique(r["name"] for r in mine)
        traces, ticks = [], {}
        for col, mode in enumerate(("infer", "train"), start=1):
            for backend in sorted_unique((r["backend"] for r in mine), BACKENDS):
                measured = [r for r in mine if r["mode"] == mode and r["backend"] == backend
                            and number(r.get("throughput"))]
                if measured:
                    tput = [number(r["throughput"]) for r in measured]
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
                                    line=ring([r["flags"] for r in measured], 2)),
                        error_y=dict(type="data", symmetric=False, array=hi, arrayminus=lo, color="#333",
                                     thickness=1.2, width=3),
                        hovertext=[hover(r, f"<b>{fmt_num(t)} images/s</b>") for r, t in zip(measured, tput)],
                        hoverinfo="text"), 1, col))
            failed = [r for r in mine if r["mode"] == mode and not number(r.get("throughput"))]
            names = sorted_unique(r["name"] for r in failed)
            if names:
                traces.append((failures([esc(n) for n in names], [0] * len(names), [[] for _ in names],
                                        ["<br>―――<br>".join(hover(r) for r in failed if r["name"] == n)
                                         for n in names], "top center"), 1, col))
            axis = "xaxis" if col == 1 else f"xaxis{col}"
            ticks[f"{axis}.tickvals"] = [esc(m) for m in models]
            ticks[f"{axis}.ticktext"] = [
                esc(m) + "".join(f'<br><span style="color:{BAD}">{esc(r["backend"])} {esc(r["status"])}</span>'
                                 for r in failed if r["name"] == m) for m in models]
        labels = [esc(m) for m in models]
        groups.append((group_label(*key[:2], batch_label(key[2]), key[3]), traces,
                       {"xaxis.categoryarray": labels, "xaxis.categoryorder": "array",
                        "xaxis2.categoryarray": labels, "xaxis2.categoryorder": "array", **ticks}))
    layout(fig, 470, barmode="group", bargap=0.25)
    add_groups(fig, groups)
    fig.update_yaxes(title_text="images/s", rangemode="tozero", row=1, col=1)
    fig.update_xaxes(tickangle=-30)
    return intro + page.figure(fig)
