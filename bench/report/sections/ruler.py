"""The ruler: each kernel row's device time against its host time (which rows the GPU spends
waiting for Python), and, where the device check timed them, against Triton's own rulers."""

from __future__ import annotations

from ...results import HOST_BOUND_MARGIN
from ...summary import RULER_AGREEMENT
from ..data import number, rows_of_kind
from ..figures import BACKEND_COLOR, BACKEND_LABEL, BACKEND_SYMBOL, add_groups, group_label, layout, ratio_lines
from ..format import esc, fmt_ms, fmt_num, hover, row_class, sorted_unique
from ..page import Page, Rows

ID = "ruler"
TITLE = "Device time and host time"


def render(page: Page, rows: Rows) -> str:
    from plotly import graph_objects as go

    intro = ("<p class=\"intro\">Every kernel row has two times: <b>device</b>, what the GPU spent on the call "
             "(<code>timing_method</code> says how it was taken), and <b>host</b>, the wall time per call of a plain "
             "synchronised loop, as a user's Python loop sees it. A point above the diagonal is a call the GPU "
             f"waits for: over {HOST_BOUND_MARGIN:.0%} above, the row is <i>host bound</i>. Bandwidth and speedups "
             "elsewhere in this report use device time only. Below, where the device check timed the same "
             "callable with <code>triton.testing.do_bench</code> (L2 flushed) and <code>do_bench_cudagraph</code> "
             f"(no flush), the harness's device time over theirs (target: within {RULER_AGREEMENT:.0%} of "
             "do_bench).</p>")
    timed = [r for r in rows_of_kind(rows.latest, "kernel")
             if number(r.get("device_ms")) and number(r.get("host_ms")) and r.get("timing_method") != "host-clock"]
    if not timed:
        return intro + page.missing("No GPU kernel row with both a device and a host time in the inputs (CPU rows "
                                    "have one clock, and rows of schema 1 have no host time).")
    fig = go.Figure()
    groups = []
    for platform in sorted_unique(r["platform"] for r in timed):
        mine = [r for r in timed if r["platform"] == platform]
        traces = []
        for backend in sorted_unique(r["backend"] for r in mine):
            points = [r for r in mine if r["backend"] == backend]
            traces.append((go.Scatter(
                x=[number(r["device_ms"]) * 1e3 for r in points], y=[number(r["host_ms"]) * 1e3 for r in points],
                mode="markers", name=BACKEND_LABEL.get(backend, esc(backend)),
                marker=dict(color=BACKEND_COLOR.get(backend, "#888"), symbol=BACKEND_SYMBOL.get(backend, "circle"),
                            size=9),
                hovertext=[hover(r, f"<b>device {fmt_ms(r['device_ms'])}</b> ({esc(r.get('timing_method'))}) · "
                                    f"host {fmt_ms(r['host_ms'])}") for r in points], hoverinfo="text"), None, None))
        values = [number(r[k]) * 1e3 for r in mine for k in ("device_ms", "host_ms")]
        groups.append((group_label(platform), traces, {"shapes": ratio_lines(values)}))
    layout(fig, 480)
    add_groups(fig, groups)
    fig.update_xaxes(type="log", title_text="device time per call (µs)", gridcolor="#eee")
    fig.update_yaxes(type="log", title_text="host time per call (µs)", gridcolor="#eee")
    return intro + page.figure(fig) + _cross_check_table(page, timed)


def _cross_check_table(page: Page, timed: list[dict]) -> str:
    checked = [r for r in timed if number(r.get("do_bench_ms"))]
    if not checked:
        return page.missing("No row was cross-checked against triton.testing (the device check does it: "
                            "<code>cross_check = true</code> in a suite's timing).")

    def over(key):
        return lambda r: number(r["device_ms"]) / number(r[key]) if number(r.get(key)) else None

    columns = [("platform", "platform", None), ("op", "name", None), ("shape", "shape", None), ("mode", "mode", None),
               ("backend", "backend", None), ("timed by", "timing_method", None), ("device", "device_ms", fmt_ms),
               ("do_bench", "do_bench_ms", fmt_ms), ("device / do_bench", over("do_bench_ms"), lambda v: fmt_num(v, 3)),
               ("do_bench_cudagraph", "do_bench_cudagraph_ms", fmt_ms),
               ("device / cudagraph", over("do_bench_cudagraph_ms"), lambda v: fmt_num(v, 3)),
               ("IQR %", lambda r: None if r.get("iqr_ratio") is None else 100 * r["iqr_ratio"],
                lambda v: fmt_num(v, 2))]
    outside = sum(abs(over("do_bench_ms")(r) - 1) > RULER_AGREEMENT for r in checked)
    caption = (f"{len(checked) - outside} of {len(checked)} cross-checked rows within {RULER_AGREEMENT:.0%} of "
               "do_bench")
    return page.table(columns, checked, row_class=lambda r: row_class(r["flags"]), caption=esc(caption))
