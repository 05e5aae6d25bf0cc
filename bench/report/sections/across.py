"""Across GPUs: the configurations measured on more than one platform, absolute and relative to the
platform with the most of them."""

from __future__ import annotations

from ...suite import BACKENDS
from ..data import across_platforms, combine_flags, mode_rank
from ..figures import PLATFORM_COLORS, WARN, add_groups, group_label, layout
from ..format import batch_label, esc, fmt_num, hover, row_class, sort_key, sorted_unique
from ..page import Page, Rows

ID = "across"
TITLE = "Across GPUs"


def render(page: Page, rows: Rows) -> str:
    from plotly import graph_objects as go
    from plotly.subplots import make_subplots

    intro = ('<p class="intro">The configurations measured (status ok) on more than one platform: absolute speed '
             '(images/s for models, GB/s for kernels) and normalized to the reference platform (the one with '
             'the most such rows; 1.0 = as fast as the reference).</p>')
    frame = rows.latest
    platforms = sorted_unique(frame["platform"]) if not frame.empty else []
    entries, reference = across_platforms(frame)
    if not entries:
        found = ", ".join(map(str, platforms)) or "none"
        why = ("only one platform in the inputs" if len(platforms) < 2 else
               "no configuration was measured ok on two of them")
        return intro + page.missing(f"Nothing to compare across GPUs: {esc(why)} (found: {esc(found)}). Pass "
                                    "results files from the same suite on other GPUs.")
    order = [reference] + [p for p in sorted_unique(e["platform"] for e in entries) if p != reference]
    colors = {p: PLATFORM_COLORS[i % len(PLATFORM_COLORS)] for i, p in enumerate(order)}
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=("absolute", f"relative to {esc(reference)}"))
    groups = []

    def group_of(e) -> tuple:  # kernel shapes carry their batch size
        return (e["kind"], e["backend"], e["mode"], e["dtype"], e["batch_size"] if e["kind"] == "model" else None,
                e["memory_format"])

    keys = sorted(set(map(group_of, entries)), key=lambda k: (
        k[0] != "model", BACKENDS.index(k[1]) if k[1] in BACKENDS else len(BACKENDS), mode_rank(k[2]),
        sort_key(k[3:])))
    for key in keys:
        kind, backend, mode, dtype, batch, fmt = key
        mine = [e for e in entries if group_of(e) == key]
        label = (lambda e: e["name"]) if kind == "model" else (lambda e: f"{e['name']} · {e['shape']}")
        unit = mine[0]["unit"]
        traces = []
        for platform in order:
            points = [e for e in mine if e["platform"] == platform]
            if not points:
                continue
            for row_index, field in ((1, "value"), (2, "relative")):
                traces.append((go.Bar(
                    x=[esc(label(e)) for e in points], y=[e[field] for e in points], name=esc(platform),
                    legendgroup=platform, showlegend=row_index == 1, offsetgroup=platform,
                    marker=dict(color=colors[platform], line=dict(
                        width=[2 if row_class(e["flags"]) else 0 for e in points], color=WARN)),
                    hovertext=[hover(e["row"], f"<b>{fmt_num(e['value'])} {unit}</b> · "
                                               f"{fmt_num(e['relative'], 3)}× {esc(reference)}") for e in points],
                    hoverinfo="text"), row_index, 1))
        what = "models" if kind == "model" else "kernels"
        batch_part = batch_label(batch) if kind == "model" else None
        groups.append((group_label(what, backend, mode, dtype, batch_part, fmt), traces,
                       {"yaxis.title.text": esc(unit)}))
    layout(fig, 640, barmode="group", bargap=0.2, margin=dict(l=70, r=20, t=80, b=120))
    add_groups(fig, groups, active=0)
    fig.update_yaxes(title_text="ratio", row=2, col=1)
    fig.add_hline(y=1.0, line=dict(color="#333", width=1, dash="dot"), row=2, col=1)
    fig.update_xaxes(tickangle=-30, tickfont=dict(size=10), row=2, col=1)
    return intro + page.figure(fig) + _table(page, entries, order, reference)


def _table(page: Page, entries: list[dict], order: list[str], reference: str) -> str:
    """One line per configuration: its value on each platform and its ratio to the reference's."""
    table_rows: dict[tuple, dict] = {}
    for e in entries:
        fields = ("kind", "name", "shape", "backend", "mode", "dtype", "batch_size", "memory_format", "input_size")
        config = tuple(e[f] for f in fields)
        line = table_rows.setdefault(config, dict(zip(fields, config), unit=e["unit"], flags=[]))
        line[f"v:{e['platform']}"] = e["value"]
        line[f"r:{e['platform']}"] = e["relative"]
        line["flags"] = combine_flags(line["flags"], e["flags"])
    columns = [("kind", "kind", None), ("name", "name", None), ("shape", "shape", None), ("backend", "backend", None),
               ("mode", "mode", None), ("dtype", "dtype", None), ("batch", "batch_size", None),
               ("format", "memory_format", None), ("size", "input_size", None), ("unit", "unit", None)]
    columns += [(str(p), f"v:{p}", fmt_num) for p in order]
    columns += [(f"{p} / {reference}", f"r:{p}", lambda v: fmt_num(v, 3)) for p in order[1:]]
    columns += [("flags", lambda line: ", ".join(line["flags"]), None)]
    return page.table(columns, list(table_rows.values()), row_class=lambda line: row_class(line["flags"]))
