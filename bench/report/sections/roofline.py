"""The kernel roofline: achieved GB/s of every op (and TFLOP/s of the convolutions) against the
copy bandwidth measured in the same run and the device's datasheet peaks."""

from __future__ import annotations

from ...suite import BACKENDS
from ..data import mode_rank, number, roofline, rows_of_kind
from ..figures import (BACKEND_COLOR, BACKEND_LABEL, BACKEND_SYMBOL, add_groups, failures, group_label, layout,
                       ring)
from ..format import esc, fmt_bytes, fmt_err, fmt_ms, fmt_num, hover, row_class, sorted_unique
from ..page import Page, Rows

ID = "roofline"
TITLE = "Kernel roofline"


def render(page: Page, rows: Rows) -> str:
    from plotly import graph_objects as go

    intro = ('<p class="intro">Each hot-path op at each shape where it occurs in the models: the achieved '
             'bandwidth (bytes moved as the kernel contract counts them, over the median device time) of Triton, torch '
             '(cuDNN) and torch.compile, against the copy bandwidth measured in the same run (dashed) and the '
             "device's datasheet peak (solid); below, TFLOP/s of the grouped and depthwise convolutions against "
             'the peak for their dtype.</p>')
    measured, references = roofline(rows.latest)
    kernel_rows = rows_of_kind(rows.latest, "kernel")
    if not kernel_rows:
        return intro + page.missing("No kernel rows in the inputs: run <code>python -m bench run --suite kernels"
                                    "</code> (or the device check) for the roofline.")
    if not measured:
        return intro + page.missing("No kernel row measured (all failed or were skipped), or none carries "
                                    "achieved GB/s.") + _kernel_table(page, kernel_rows)
    parts = [intro]
    unknown = sorted(p for p, ref in references.items() if ref["peak_gbps"] is None)
    if unknown:
        parts.append(page.missing("No datasheet peak for " + esc(", ".join(unknown)) + " (not a GPU listed in "
                                  "bench/report/data.DEVICE_PEAKS): only the measured copy bandwidth is drawn "
                                  "there."))
    for metric in ("achieved_gbps", "achieved_tflops"):
        def measure(r, metric=metric):
            return number(r.get(metric))

        bandwidth = metric == "achieved_gbps"
        mine = measured if bandwidth else [r for r in measured if r["name"] == "conv2d" and measure(r) is not None]
        if not mine:
            parts.append(page.missing("No convolution rows (op conv2d): no TFLOP/s plot."))
            continue
        fig = go.Figure()
        groups = []
        for key in sorted_unique((r["platform"], r["dtype"]) for r in mine):
            platform, dtype = key
            these = [r for r in mine if (r["platform"], r["dtype"]) == key]
            failed = [r for r in kernel_rows if (r["platform"], r["dtype"]) == key and r["status"] in
                      ("error", "oom", "skipped") and (bandwidth or r["name"] == "conv2d")]
            labels = [_case_label(r) for r in sorted(these + failed, key=_case_order)]
            labels = list(dict.fromkeys(labels))
            traces = []
            for backend in sorted_unique((r["backend"] for r in these), BACKENDS):
                points = [r for r in these if r["backend"] == backend]
                traces.append((go.Scatter(
                    x=[measure(r) for r in points], y=[esc(_case_label(r)) for r in points], mode="markers",
                    name=BACKEND_LABEL.get(backend, esc(backend)),
                    marker=dict(color=BACKEND_COLOR.get(backend, "#888"), symbol=BACKEND_SYMBOL.get(backend, "circle"),
                                size=10, line=ring([r["flags"] for r in points], 2.5, 0.5, "#fff")),
                    hovertext=[hover(r, _kernel_extra(r)) for r in points], hoverinfo="text"), None, None))
            if failed:
                traces.append((failures([0] * len(failed), [esc(_case_label(r)) for r in failed],
                                        [[f"{r['backend']} {r['status']}"] for r in failed],
                                        [hover(r) for r in failed], "middle right"), None, None))
            lines = _reference_lines(references.get(platform, {}), bandwidth, dtype)
            shapes = [dict(type="line", x0=x, x1=x, xref="x", y0=0, y1=1, yref="paper",
                           line=dict(color="#222", width=1.5, dash=dash)) for x, dash, _ in lines]
            notes = [dict(x=x, xref="x", y=1, yref="paper", text=esc(t), showarrow=False, yanchor="top",
                          xanchor="right", textangle=-90, font=dict(size=11, color="#222"), xshift=-3)
                     for x, _, t in lines]
            top = max([x for x, _, _ in lines] + [measure(r) for r in these])
            groups.append((group_label(platform, dtype), traces,
                           {"height": 200 + 22 * len(labels), "shapes": shapes, "annotations": notes,
                            "yaxis.categoryarray": [esc(lbl) for lbl in labels], "yaxis.categoryorder": "array",
                            "xaxis.range": [0, top * 1.08]}))
        layout(fig, 400)
        add_groups(fig, groups)
        fig.update_xaxes(title_text="achieved GB/s" if bandwidth else "achieved TFLOP/s", gridcolor="#eee")
        fig.update_yaxes(autorange="reversed", automargin=True, tickfont=dict(size=11))
        parts.append(("<h3>achieved bandwidth, every op</h3>" if bandwidth else
                      "<h3>achieved TFLOP/s, grouped and depthwise convolutions</h3>") + page.figure(fig))
    parts.append(_kernel_table(page, kernel_rows))
    return "".join(parts)


def _reference_lines(ref: dict, bandwidth: bool, dtype) -> list[tuple[float, str, str]]:
    """(x, dash, label) of each vertical reference line of a platform's plot."""
    lines = []
    if bandwidth:
        if ref.get("copy_gbps"):
            lines.append((ref["copy_gbps"], "dash", f"measured copy {ref['copy_gbps']:,.0f} GB/s"))
        if ref.get("peak_gbps"):
            lines.append((ref["peak_gbps"], "solid", f"peak {ref['peak_gbps']:,.0f} GB/s"))
    elif ref.get("peak_tflops", {}).get(dtype):
        peak = ref["peak_tflops"][dtype]
        lines.append((peak, "solid", f"{dtype} peak {peak:g} TFLOP/s"))
    return lines


def _case_label(row) -> str:
    return f"{row['name']} · {row['shape']} · {row['mode']}"


def _case_order(row) -> tuple:
    return str(row["name"]), str(row["shape"]), mode_rank(row["mode"])


def _kernel_extra(row) -> str:
    return (f"<b>{fmt_num(row.get('achieved_gbps'))} GB/s</b> ({fmt_num(row.get('percent_of_copy_bandwidth'), 3)}% "
            f"of copy) · {fmt_num(row.get('achieved_tflops'))} TFLOP/s<br>"
            f"{fmt_bytes(row.get('bytes_moved'))} moved · "
            f"{fmt_num(row.get('flops'))} FLOPs · rel. error {fmt_err(row.get('rel_error'))}")


def _kernel_table(page: Page, kernel_rows: list[dict]) -> str:
    columns = [("platform", "platform", None), ("op", "name", None), ("shape", "shape", None), ("mode", "mode", None),
               ("dtype", "dtype", None), ("backend", "backend", None), ("status", "status", None),
               ("device", "device_ms", fmt_ms), ("host", "host_ms", fmt_ms), ("timed by", "timing_method", None),
               ("IQR %", lambda r: None if r.get("iqr_ratio") is None else
                                                   100 * r["iqr_ratio"], lambda v: fmt_num(v, 2)),
               ("n", "samples", None), ("GB/s", "achieved_gbps", fmt_num),
               ("% of copy", "percent_of_copy_bandwidth", lambda v: fmt_num(v, 3)),
               ("TFLOP/s", "achieved_tflops", fmt_num), ("rel. error", "rel_error", fmt_err),
               ("flags", "flag_text", None), ("message", "message", None)]
    return page.table(columns, kernel_rows, row_class=lambda r: row_class(r["flags"]))
