"""Test protocols: what the papers' multi-crop and dense evaluations cost today, per model, beside
the error each paper reports under that protocol."""

from __future__ import annotations

from ..data import number, rows_of_kind
from ..figures import add_groups, group_label, layout
from ..format import esc, fmt_num, hover, row_class, sorted_unique
from ..page import Page, Rows

ID = "protocols"
TITLE = "Test protocols"
ORDER = ("single", "10crop", "144crop", "dense")
COLOR = {"single": "#4c78a8", "10crop": "#f58518", "144crop": "#e45756", "dense": "#54a24b"}


def render(page: Page, rows: Rows) -> str:
    from plotly import graph_objects as go

    intro = ('<p class="intro">Inference under each paper\'s test protocol (<code>bench run --protocols</code>): '
             'single centre crop; 10 crops (AlexNet, ResNet); GoogLeNet\'s 144 crops; VGG\'s dense evaluation at '
             'three scales with mirrors. Images/s counts evaluated images, not crops; the cost is single-crop '
             "images/s over the protocol's, on the same platform, backend, dtype and batch. The paper's error is "
             "the one it reports under that protocol, where it does (from the model card).</p>")
    measured = [r for r in rows_of_kind(rows.latest, "model")
                if r["mode"] == "infer" and r.get("protocol") and number(r.get("throughput"))]
    if not any(r["protocol"] != "single" for r in measured):
        return intro + page.missing("No inference row under a protocol other than single in the inputs: run "
                                    "<code>python -m bench run --protocols single,10crop,144crop,dense</code>.")
    single = {_key(r): number(r["throughput"]) for r in measured if r["protocol"] == "single"}
    errors = _paper_errors(sorted_unique(r["name"] for r in measured))
    for r in measured:
        base = single.get(_key(r))
        r["cost"] = base / number(r["throughput"]) if base else None
        paper = errors.get(r["name"], {}).get(r["protocol"], {})
        r["paper"] = " / ".join(fmt_num(paper.get(k), 4) for k in ("top1", "top5")) if paper else None

    fig = go.Figure()
    groups = []
    for key in sorted_unique((r["platform"], r["backend"], r["dtype"], r["batch_size"]) for r in measured):
        mine = [r for r in measured if (r["platform"], r["backend"], r["dtype"], r["batch_size"]) == key]
        traces = []
        for protocol in sorted_unique((r["protocol"] for r in mine), ORDER):
            points = sorted((r for r in mine if r["protocol"] == protocol), key=lambda r: r["name"])
            traces.append((go.Bar(x=[esc(r["name"]) for r in points], y=[number(r["throughput"]) for r in points],
                                  name=esc(protocol), legendgroup=protocol, offsetgroup=protocol,
                                  marker=dict(color=COLOR.get(protocol, "#888")),
                                  hovertext=[hover(r, f"<b>{fmt_num(r['throughput'])} images/s</b> · "
                                                      f"{r.get('views_per_image')} views per image · cost "
                                                      f"{fmt_num(r['cost'], 3)}x single") for r in points],
                                  hoverinfo="text"), None, None))
        groups.append((group_label(key[0], key[1], key[2], f"batch {key[3]}"), traces, {}))
    layout(fig, 460, barmode="group")
    add_groups(fig, groups)
    fig.update_yaxes(type="log", title_text="evaluated images/s")
    columns = [("platform", "platform", None), ("model", "name", None), ("backend", "backend", None),
               ("dtype", "dtype", None), ("batch", "batch_size", None), ("protocol", "protocol", None),
               ("views / image", "views_per_image", None), ("images/s", "throughput", fmt_num),
               ("cost vs single", "cost", lambda v: "-" if v is None else f"{fmt_num(v, 3)}x"),
               ("paper top-1 / top-5 error %", "paper", None), ("flags", "flag_text", None)]
    ordered = sorted(measured, key=lambda r: (r["platform"], r["name"], r["backend"], r["dtype"],
                                              ORDER.index(r["protocol"]) if r["protocol"] in ORDER else len(ORDER)))
    return intro + page.figure(fig) + page.table(columns, ordered, row_class=lambda r: row_class(r["flags"]))


def _key(row) -> tuple:
    return row["platform"], row["name"], row["backend"], row["dtype"], row["batch_size"], row["memory_format"]


def _paper_errors(names: list[str]) -> dict[str, dict]:
    """Each model's errors by protocol, from its card (models of the zoo only; others have none)."""
    import models
    from ...card_cache import model_cards

    known = [n for n in names if n in models.list_models()]
    return {card["name"]: card.get("protocol_errors", {}) for card in model_cards(known)} if known else {}
