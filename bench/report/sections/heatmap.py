"""The speedup heat map: each fast path over torch, models and kernel ops, one map per platform."""

from __future__ import annotations

import math

from ...suite import BACKENDS
from ..data import mode_rank, speedups
from ..figures import add_groups, layout, speedup_hover
from ..format import FLAG_MARK, batch_label, esc, flag_marks, sort_key, sorted_unique
from ..page import Page, Rows

ID = "speedup"
TITLE = "Speedup heat map"


def render(page: Page, rows: Rows) -> str:
    intro = ('<p class="intro">Speedup of each fast path over eager torch in the same configuration, '
             'models × (backend · mode · dtype · batch) and kernel ops × shapes, one map per platform. The colour '
             'is diverging around 1.0 on a log scale: blue is faster than torch, red slower. '
             'Cell marks: ! incorrect, ~ noisy, H host bound, T throttled, C clocks moved; E error, M out of memory, '
             '- skipped (no colour).</p>')
    pairs = speedups(rows.latest) if not rows.latest.empty else []
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
    for platform in sorted_unique(p["platform"] for p in pairs):
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

        ys = sorted_unique(row_label(p) for p in mine)
        col_order = sorted({(p["backend"], p["mode"], p["dtype"], p["batch_size"] or 0, col_label(p)) for p in mine},
                           key=lambda c: (BACKENDS.index(c[0]) if c[0] in BACKENDS else 9, mode_rank(c[1]),
                                          sort_key(c[2:4])))
        xs = list(dict.fromkeys(c[4] for c in col_order))
        z = [[None] * len(xs) for _ in ys]
        text = [[""] * len(xs) for _ in ys]
        hovers = [[""] * len(xs) for _ in ys]
        for p in mine:
            i, j = ys.index(row_label(p)), xs.index(col_label(p))
            marks = flag_marks(p["flags"])
            if p["speedup"]:
                z[i][j] = math.log2(p["speedup"])
                text[i][j] = f"{p['speedup']:.2f}" + (" " + marks if marks else "")
            else:
                text[i][j] = FLAG_MARK.get(p["row"]["status"], "") or ("no torch" if p["base"] is None else
                                                                        FLAG_MARK.get(p["base"]["status"], "?"))
            hovers[i][j] = speedup_hover(p["row"], p["base"], p["speedup"])
        trace = go.Heatmap(
            z=z, x=[esc(x) for x in xs], y=[esc(y) for y in ys], text=[[esc(t) for t in r] for r in text],
            texttemplate="%{text}", textfont=dict(size=10), hovertext=hovers, hoverinfo="text",
            colorscale="RdBu", zmid=0, zmin=-bound, zmax=bound, xgap=1, ygap=1,
            colorbar=dict(title=dict(text="speedup"), tickvals=[math.log2(t) for t in ticks],
                          ticktext=[f"{t:g}×" for t in ticks], len=0.9))
        groups.append((platform, [(trace, None, None)], {"height": max(320, 220 + 24 * len(ys))}))
    layout(fig, 400)
    add_groups(fig, groups)
    fig.update_layout(plot_bgcolor="#f2f2f2")
    fig.update_xaxes(side="bottom", tickangle=-35)
    fig.update_yaxes(autorange="reversed", automargin=True)
    return fig
