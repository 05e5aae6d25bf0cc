"""Correctness: every checked row's relative error against the reference, beside its tolerance."""

from __future__ import annotations

import math

from ...suite import BACKENDS
from ..data import correctness, error_ratio, number, tolerance_of
from ..figures import BACKEND_COLOR, BAD, DTYPE_DASH, DTYPE_SYMBOL, add_groups, layout
from ..format import esc, fmt_err, fmt_num, hover, sorted_unique
from ..page import Page, Rows

ID = "correctness"
TITLE = "Correctness"

ERROR_FLOOR = 1e-10  # an error of exactly 0 is drawn here on the log axis (the hover says 0)


def render(page: Page, rows: Rows) -> str:
    from plotly import graph_objects as go

    intro = ('<p class="intro">Relative error ‖out − ref‖ / ‖ref‖ of every checked row against the reference: '
             'the fp32 eager (cuDNN) model for models, float64 torch for kernels. Filled markers: outputs; open '
             "markers: parameter or input gradients. Dashed lines: the dtype's tolerance for the fast paths "
             "(triton, compile), dotted where the gradients' differs; torch's own low-precision rows are the "
             "baseline and have none. An error of 0 is "
             f"drawn at {ERROR_FLOOR:g}.</p>")
    checked = correctness(rows.latest)
    if not checked:
        return intro + page.missing("No row in the inputs carries an error against the reference (fp32 eager "
                                    "rows are the reference itself).")
    parts = [intro]
    for kind in ("model", "kernel"):
        mine = [r for r in checked if r["kind"] == kind]
        if not mine:
            parts.append(page.missing(f"No {kind} rows checked against the reference."))
            continue
        fig = go.Figure()
        groups = []
        for platform in sorted_unique(r["platform"] for r in mine):
            these = [r for r in mine if r["platform"] == platform]
            label = (lambda r: r["name"]) if kind == "model" else (lambda r: f"{r['name']} · {r['shape']}")
            labels = sorted_unique(label(r) for r in these)
            traces = []
            for backend in sorted_unique((r["backend"] for r in these), BACKENDS):
                for dtype in sorted_unique(r["dtype"] for r in these):
                    for field, open_marker in (("rel_error", False), ("grad_rel_error", True)):
                        points = [r for r in these if r["backend"] == backend and r["dtype"] == dtype
                                  and number(r.get(field)) is not None]
                        if not points:
                            continue
                        symbol = DTYPE_SYMBOL.get(dtype, "circle") + ("-open" if open_marker else "")
                        traces.append((go.Scatter(
                            x=[esc(label(r)) for r in points],
                            y=[max(number(r[field]), ERROR_FLOOR) for r in points], mode="markers",
                            name=esc(f"{backend} {dtype}" + (" (grad)" if open_marker else "")),
                            legendgroup=f"{backend}-{dtype}",
                            marker=dict(color=BACKEND_COLOR.get(backend, "#888"), symbol=symbol, size=9,
                                        line=dict(width=[2.5 if r["status"] == "incorrect" else 1 for r in points],
                                                  color=[BAD if r["status"] == "incorrect" else
                                                         BACKEND_COLOR.get(backend, "#888") for r in points])),
                            hovertext=[hover(r, _error_extra(r, field)) for r in points], hoverinfo="text"),
                            None, None))
            bounds = _tolerances(these)
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
        layout(fig, 520 if kind == "model" else 620, margin=dict(l=70, r=30, t=100, b=140 if kind == "kernel" else 90))
        add_groups(fig, groups)
        fig.update_yaxes(type="log", title_text="relative error", tickformat=".0e", gridcolor="#eee")
        fig.update_xaxes(tickangle=-35, tickfont=dict(size=10 if kind == "kernel" else 12))
        parts.append(f"<h3>{'models, against fp32 eager' if kind == 'model' else 'kernels, against float64'}</h3>"
                     + page.figure(fig))
    parts.append(_table(page, checked))
    return "".join(parts)


def _tolerances(checked: list[dict]) -> dict[tuple[str, str], float]:
    """(dtype, what) -> the tolerance the fast paths are held to; a gradient bound only where it
    differs from the output's."""
    bounds = {}
    for r in (r for r in checked if r["fast"]):
        for field, what in (("rel_error", "tolerance"), ("grad_rel_error", "gradient tolerance")):
            tol = tolerance_of(r, field)
            if tol and number(r.get(field)) is not None and (
                    field == "rel_error" or tol != tolerance_of(r)):
                bounds[(r["dtype"], what)] = tol
    return bounds


def _table(page: Page, checked: list[dict]) -> str:
    columns = [("platform", "platform", None), ("kind", "kind", None), ("name", "name", None),
               ("shape", "shape", None), ("backend", "backend", None), ("mode", "mode", None),
               ("dtype", "dtype", None), ("batch", "batch_size", None), ("status", "status", None),
               ("rel. error", "rel_error", fmt_err), ("grad rel. error", "grad_rel_error", fmt_err),
               ("max abs. error", "max_abs_error", fmt_err), ("top-1 agreement", "top1_agreement", fmt_num),
               ("tolerance", "tolerance", fmt_err), ("grad tolerance", lambda r: tolerance_of(r, "grad_rel_error")
                                                     if number(r.get("grad_rel_error")) is not None else None,
                                                     fmt_err),
               ("worst / tolerance", error_ratio, lambda v: fmt_num(v, 3)), ("message", "message", None)]
    ordered = sorted(checked, key=lambda r: -(error_ratio(r) or -1))
    return page.table(columns, ordered, row_class=lambda r: "bad" if r["status"] == "incorrect" else "",
                      caption="Every checked row, worst error relative to its tolerance first.")


def _error_extra(row, field) -> str:
    tol = tolerance_of(row, field)
    text = f"<b>{'gradient ' if field == 'grad_rel_error' else ''}relative error {fmt_err(row.get(field))}</b>"
    text += f" · tolerance {tol:g}" if tol else " · no tolerance (baseline)"
    if number(row.get("top1_agreement")) is not None:
        text += f" · top-1 agreement {fmt_num(row['top1_agreement'])}"
    return text
