"""Data-parallel scaling: images/s of training on 1, 2, ... ranks (``bench run --world-size``) per
configuration, beside perfect scaling, and each multi-rank row's scaling efficiency."""

from __future__ import annotations

from ...results import scaling_efficiency
from ..data import number, rows_of_kind
from ..figures import PLATFORM_COLORS, add_groups, group_label, layout, ring
from ..format import batch_label, esc, fmt_num, hover, row_class, sort_key, sorted_unique
from ..page import Page, Rows

ID = "scaling"
TITLE = "Data-parallel scaling"


def render(page: Page, rows: Rows) -> str:
    from plotly import graph_objects as go

    intro = ('<p class="intro">Training on N data-parallel ranks (<code>bench run --world-size 1,2,4</code>: '
             "DistributedDataParallel, one GPU a rank under NCCL, or CPU cores under gloo), the batch size per rank. "
             "Images/s counts every rank's images; a step lasts as long as its slowest rank. The dotted lines are "
             "perfect scaling, N times the one-rank images/s of the same configuration on the same platform; "
             "scaling efficiency is the measured images/s over that.</p>")
    training = [dict(r, world_size=ranks(r)) for r in rows_of_kind(rows.latest, "model") if r["mode"] == "train"]
    scaled = {_key(r) for r in training if r["world_size"] > 1}
    if not scaled:
        return intro + page.missing("No training row on more than one rank in the inputs: run "
                                    "<code>python -m bench run --modes train --world-size 1,2</code>.")
    shown = sorted((r for r in training if _key(r) in scaled),
                   key=lambda r: sort_key((r["platform"], r["name"], r["backend"], r["dtype"], r["batch_size"],
                                           r["world_size"])))
    for r in shown:
        r["per_rank"] = number(r.get("per_rank_throughput")) or (
            number(r.get("throughput")) / r["world_size"] if number(r.get("throughput")) else None)
        if number(r.get("scaling_efficiency")) is None:
            peers = [p for p in shown if p["platform"] == r["platform"]]
            r["scaling_efficiency"] = scaling_efficiency(r, peers)

    fig = go.Figure()
    groups = []
    for group in sorted_unique((r["platform"], r["dtype"], r["batch_size"]) for r in shown):
        mine = [r for r in shown if (r["platform"], r["dtype"], r["batch_size"]) == group]
        traces = []
        for index, key in enumerate(sorted_unique(_key(r) for r in mine)):
            points = [r for r in mine if _key(r) == key and number(r.get("throughput"))]
            if not points:
                continue
            color = PLATFORM_COLORS[index % len(PLATFORM_COLORS)]  # a palette of distinct colours
            label = esc(f"{key[1]} · {key[2]}")
            traces.append((go.Scatter(
                x=[r["world_size"] for r in points], y=[number(r["throughput"]) for r in points],
                mode="lines+markers", name=label, legendgroup=label, line=dict(color=color),
                marker=dict(color=color, size=9, line=ring([r["flags"] for r in points], 2)),
                hovertext=[hover(r, f"<b>{fmt_num(r['throughput'])} images/s</b> on {r['world_size']} "
                                    f"rank{'s' if r['world_size'] > 1 else ''} · {fmt_num(r['per_rank'])} per rank"
                                 + (f" · efficiency {r['scaling_efficiency']:.1%}"
                                    if r.get("scaling_efficiency") is not None else "")) for r in points],
                hoverinfo="text"), None, None))
            one = [r for r in points if r["world_size"] == 1]
            if one:
                sizes = sorted({1} | {r["world_size"] for r in points})
                traces.append((go.Scatter(
                    x=sizes, y=[n * number(one[0]["throughput"]) for n in sizes], mode="lines",
                    name=f"{label} · perfect", legendgroup=label, showlegend=False,
                    line=dict(color=color, dash="dot", width=1), hoverinfo="skip"), None, None))
        groups.append((group_label(group[0], group[1], batch_label(group[2], "batch per rank ")), traces, {}))
    layout(fig, 460)
    add_groups(fig, groups)
    sizes = sorted({r["world_size"] for r in shown})
    fig.update_xaxes(type="log", title_text="ranks (world size)", tickvals=sizes, ticktext=[str(n) for n in sizes])
    fig.update_yaxes(type="log", title_text="training images/s, all ranks")
    columns = [("platform", "platform", None), ("model", "name", None), ("backend", "backend", None),
               ("dtype", "dtype", None), ("batch / rank", "batch_size", None), ("world size", "world_size", None),
               ("images/s", "throughput", fmt_num), ("images/s per rank", "per_rank", fmt_num),
               ("scaling efficiency", "scaling_efficiency", lambda v: "-" if v is None else f"{v:.1%}"),
               ("flags", "flag_text", None)]
    return intro + page.figure(fig) + page.table(columns, shown, row_class=lambda r: row_class(r["flags"]))


def ranks(row) -> int:
    """A row's data-parallel ranks: a row without a world size ran in one process."""
    return int(number(row.get("world_size")) or 1)


def _key(row) -> tuple:
    """A configuration as scaling compares it: everything but the world size, on one platform."""
    return (row["platform"], row["name"], row["backend"], row["dtype"], row["batch_size"], row["memory_format"],
            row["input_size"])
