"""Predicted against measured: each Triton kernel row's device time beside the time the kernel
inspector predicts for its case from the compiled code (``python -m kernels.inspect``)."""

from __future__ import annotations

import math

from ..data import number, rows_of_kind
from ..figures import add_groups, group_label, layout, ratio_lines
from ..format import esc, fmt_ms, fmt_num, hover, sorted_unique
from ..page import Page, Rows

ID = "predicted"
TITLE = "Predicted against measured"
BANDS = (1.5, 2.5)  # the inspector's calibration targets: the mean within 1.5x, every row within 2.5x


def render(page: Page, rows: Rows) -> str:
    from plotly import graph_objects as go

    intro = ("<p class=\"intro\">Each Triton kernel row's measured device time against the time the kernel "
             "inspector predicts for its case from the compiled code alone (memory floor, issue floor, occupancy "
             "and latency; README, \"Kernel inspector\"). On the diagonal the model is exact; the dotted bands are "
             f"{BANDS[0]}x and {BANDS[1]}x, its calibration targets for the mean and for every row. Rows get a "
             "prediction from <code>python -m bench report --predict</code>, which compiles each case with "
             "today's kernels.</p>")
    both = [r for r in rows_of_kind(rows.latest, "kernel")
            if number(r.get("predicted_ms")) and number(r.get("device_ms")) and r["status"] == "ok"]
    if not both:
        return intro + page.missing("No kernel row with both a measured device time and a prediction: run "
                                    "<code>python -m bench report --predict RESULTS…</code> on GPU results.")
    fig = go.Figure()
    groups = []
    for platform in sorted_unique(r["platform"] for r in both):
        mine = [r for r in both if r["platform"] == platform]
        traces = []
        for op in sorted_unique(r["name"] for r in mine):
            points = [r for r in mine if r["name"] == op]
            traces.append((go.Scatter(
                x=[number(r["predicted_ms"]) * 1e3 for r in points], y=[number(r["device_ms"]) * 1e3 for r in points],
                mode="markers", name=esc(op), marker=dict(size=9),
                hovertext=[hover(r, f"<b>measured {fmt_ms(r['device_ms'])}</b> · predicted {fmt_ms(r['predicted_ms'])}"
                                    f" · ratio {fmt_num(number(r['device_ms']) / number(r['predicted_ms']), 3)}")
                           for r in points], hoverinfo="text"), None, None))
        values = [number(r[k]) * 1e3 for r in mine for k in ("predicted_ms", "device_ms")]
        groups.append((group_label(platform), traces,
                       {"shapes": ratio_lines(values, (1, *BANDS, *(1 / b for b in BANDS)))}))
    layout(fig, 480)
    add_groups(fig, groups)
    fig.update_xaxes(type="log", title_text="predicted (µs)", gridcolor="#eee")
    fig.update_yaxes(type="log", title_text="measured device time (µs)", gridcolor="#eee")
    ratios = [number(r["device_ms"]) / number(r["predicted_ms"]) for r in both]
    mean = math.exp(sum(math.log(x) for x in ratios) / len(ratios))
    worst = max(ratios, key=lambda x: abs(math.log(x)))
    note = (f"{len(ratios)} rows: geometric mean of measured / predicted {mean:.2f}, worst {worst:.2f}; "
            f"{sum(1 / BANDS[1] <= x <= BANDS[1] for x in ratios)} within {BANDS[1]}x.")
    return intro + page.figure(fig, esc(note))
