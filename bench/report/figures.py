"""What the report's plotly figures share: colours and symbols, the layout, the dropdown that shows
one group of traces at a time, the red × of a configuration that did not measure, the ring around
a flagged point and the hover text of a speedup.

plotly is imported inside the functions that build traces, never at import.
"""

from __future__ import annotations

from .data import number, value
from .format import esc, fmt_ms, fmt_num, hover, row_class

BACKEND_LABEL = {"torch": "torch (eager, cuDNN)", "triton": "triton", "compile": "torch.compile"}
BACKEND_COLOR = {"torch": "#4C78A8", "triton": "#F58518", "compile": "#54A24B"}
BACKEND_SYMBOL = {"torch": "circle", "triton": "diamond", "compile": "square"}
DTYPE_DASH = {"fp32": "dash", "tf32": "dot", "fp16": "dashdot", "bf16": "longdash"}
DTYPE_SYMBOL = {"fp32": "circle", "tf32": "triangle-up", "fp16": "square", "bf16": "diamond"}
PLATFORM_COLORS = ("#4C78A8", "#9467BD", "#17BECF", "#8C564B", "#BCBD22", "#7F7F7F", "#E377C2", "#2CA02C")
BAD = "#D62728"
WARN = "#f0b429"


def layout(fig, height: int, **extra) -> None:
    extra.setdefault("margin", dict(l=60, r=20, t=80, b=50))
    fig.update_layout(template="plotly_white", height=height,
                      font=dict(family="system-ui, sans-serif", size=12),
                      hoverlabel=dict(align="left", font_size=12), legend=dict(
                          x=1.01, xanchor="left", y=1, yanchor="top", font_size=11), **extra)


def add_groups(fig, groups: list[tuple[str, list, dict]], active: int | None = None) -> None:
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


def group_label(platform, *parts) -> str:
    """A dropdown entry: the parts that are set, joined by ``·``."""
    return " · ".join(str(p) for p in (platform, *parts) if p is not None and p != "")


def ratio_lines(values: list[float], factors: tuple[float, ...] = (1.0,)) -> list[dict]:
    """Lines y = f * x of a log-log plot, for each of ``factors``, across the range of ``values``
    (both axes' values) with room either side: the diagonal dashed, the others dotted."""
    low, high = min(values) / 3, max(values) * 3
    return [dict(type="line", x0=low, y0=low * f, x1=high, y1=high * f,
                 line=dict(color="#222", width=1, dash="dash" if f == 1 else "dot")) for f in factors]


def failures(xs, ys, texts: list[list[str]], hovers, position: str):
    """One red × per model with what did not measure and why (failed or skipped rows); ``texts``:
    the lines beside each ×, plain text."""
    from plotly import graph_objects as go

    return go.Scatter(x=xs, y=ys, mode="markers+text", name="no measurement", showlegend=False,
                      text=["<br>".join(esc(line) for line in lines) for lines in texts], textposition=position,
                      textfont=dict(color=BAD, size=10), cliponaxis=False,
                      marker=dict(color=BAD, symbol="x-thin", size=10, line=dict(width=2, color=BAD)),
                      hovertext=hovers, hoverinfo="text")


def ring(flag_lists, width: float, clean_width: float = 0, clean_color: str = WARN) -> dict:
    """The outline of each point (a marker's ``line``), from each point's flags: ``width`` in red
    around a wrong or missing result, in amber around a doubtful timing; ``clean_width`` in
    ``clean_color`` around the rest."""
    classes = [row_class(flags) for flags in flag_lists]
    return dict(width=[width if c else clean_width for c in classes],
                color=[BAD if c == "bad" else WARN if c else clean_color for c in classes])


def speedup_hover(row, base, speedup) -> str:
    """A fast path's row beside the torch row it is compared with (``base``, None if torch did not run)."""
    extra = []
    if speedup is not None:
        extra.append(f"<b>speedup {speedup:.3f}×</b> over torch")
    if number(row.get("throughput")) is not None:
        extra.append(f"{fmt_num(row.get('throughput'))} images/s")
    if base is not None:
        extra.append(f"torch: {esc(base['status'])}, median {fmt_ms(base.get('device_ms'))} · IQR "
                     f"{fmt_ms(base.get('iqr_ms'))} · n={value(base.get('samples'))}"
                     + (f" · {fmt_num(base.get('throughput'))} images/s" if number(base.get('throughput')) else ""))
    else:
        extra.append("torch: not measured")
    return hover(row, *extra)
