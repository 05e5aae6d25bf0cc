"""The summary: each backend's images/s per model and mode, and the fast paths' speedup over torch."""

from __future__ import annotations

from ...results import HOST_BOUND_MARGIN
from ...suite import BACKENDS
from ..data import (CLOCK_SPREAD_RATIO, FAST_BACKENDS, FLAG_ORDER, MIN_SAMPLES, NOISY_CI_REL, NOISY_IQR_RATIO,
                    mode_rank, model_summary)
from ..figures import (BACKEND_COLOR, BACKEND_LABEL, BACKEND_SYMBOL, BAD, add_groups, failures, group_label,
                       layout, ring, speedup_hover)
from ..format import FLAG_MARK, batch_label, esc, flag_marks, row_class, sorted_unique
from ..page import Cell, Page, Rows

ID = "summary"
TITLE = "Summary"

FLAG_MEANING = {
    "incorrect": "error above the dtype's tolerance against the fp32 (models) or float64 (kernels) reference",
    "error": "failed (exception, crash or timeout)", "oom": "out of memory",
    "skipped": "the backend cannot run this configuration",
    "noisy": f"IQR over {NOISY_IQR_RATIO:.0%} of the median, the median's 95% confidence interval wider than "
             f"±{NOISY_CI_REL:.0%}, or fewer than {MIN_SAMPLES} samples",
    "host bound": "host time per call (a plain synchronised loop) over its device time by more than "
                  f"{HOST_BOUND_MARGIN:.0%}: the GPU waits for Python",
    "throttled": "NVML reported a throttle reason while the row ran",
    "clocks moved": f"SM clock range while the row ran over {CLOCK_SPREAD_RATIO:.0%} of its highest",
}


def render(page: Page, rows: Rows) -> str:
    from plotly import graph_objects as go
    from plotly.subplots import make_subplots

    lines = model_summary(rows.latest)
    legend = "".join(f"<dt>{esc(FLAG_MARK[f])} {esc(f)}</dt><dd>{esc(FLAG_MEANING[f])}</dd>" for f in FLAG_ORDER)
    intro = ('<p class="intro">Images/s of each backend per model and mode, and the speedup of triton and '
             'torch.compile over eager torch (cuDNN on a GPU) on the same platform, dtype and batch. '
             'Speedups above 1 are faster than torch. Rows that cannot be taken at face value are marked '
             f'(table cells use the terminal summary\'s marks):</p><dl class="legend">{legend}</dl>')
    if not lines:
        return intro + page.missing("No model rows in the inputs: nothing to summarize. Model rows come from "
                                    "<code>python -m bench run</code> with a model suite (smoke, default).")
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, subplot_titles=("infer", "train"),
                        horizontal_spacing=0.04)
    groups = []
    keys = sorted_unique((line["platform"], line["dtype"], line["batch_size"], line["memory_format"])
                         for line in lines)
    for key in keys:
        mine = [line for line in lines if (line["platform"], line["dtype"], line["batch_size"],
                                           line["memory_format"]) == key]
        models = sorted_unique(line["name"] for line in mine)
        speeds = [line[f"{b}_speedup"] for line in mine for b in FAST_BACKENDS if line[f"{b}_speedup"]]
        low = min(speeds + [1.0]) / 1.35
        traces = []
        for col, mode in enumerate(("infer", "train"), start=1):
            for backend in FAST_BACKENDS:
                measured = [line for line in mine if line["mode"] == mode and line[f"{backend}_speedup"]]
                if measured:
                    traces.append((go.Scatter(
                        x=[p[f"{backend}_speedup"] for p in measured], y=[esc(p["name"]) for p in measured],
                        mode="markers+text", name=BACKEND_LABEL[backend], legendgroup=backend,
                        showlegend=col == 1,
                        text=[esc(flag_marks(p["flags"])) for p in measured], textposition="middle right",
                        textfont=dict(color=BAD, size=12),
                        marker=dict(color=BACKEND_COLOR[backend], symbol=BACKEND_SYMBOL[backend], size=11,
                                    line=ring([p["flags"] for p in measured], 2.5, 0.5, "#fff")),
                        hovertext=[speedup_hover(p[backend], p["torch"], p[f"{backend}_speedup"]) for p in measured],
                        hoverinfo="text"), 1, col))
            failed = [(line, [b for b in FAST_BACKENDS if line.get(b) is not None and not line[f"{b}_speedup"]])
                      for line in mine if line["mode"] == mode]
            failed = [(line, backends) for line, backends in failed if backends]
            if failed:
                traces.append((failures(
                    [low] * len(failed), [esc(line["name"]) for line, _ in failed],
                    [["; ".join(f"{b} {_failed_text(line, b)}" for b in backends)] for line, backends in failed],
                    ["<br>―――<br>".join(speedup_hover(line[b], line["torch"], None) for b in backends)
                     for line, backends in failed], "middle right"), 1, col))
        height = 170 + 30 * len(models)
        labels = [esc(m) for m in models]
        groups.append((group_label(*key[:2], batch_label(key[2]), key[3]), traces,
                       {"height": height, "yaxis.categoryarray": labels, "yaxis.categoryorder": "array"}))
    layout(fig, 400)
    add_groups(fig, groups)
    for col in (1, 2):
        fig.update_xaxes(type="log", title_text="speedup over torch (×)", row=1, col=col,
                         zeroline=False, gridcolor="#eee")
        fig.add_vline(x=1.0, line=dict(color="#333", width=1, dash="dot"), row=1, col=col)
    fig.update_yaxes(autorange="reversed")
    if any(line[f"{b}_speedup"] for line in lines for b in FAST_BACKENDS):
        plot = page.figure(fig, note="One point per model: the triton or torch.compile row over the torch row of "
                                     "its configuration. × at the left edge: no speedup (the row failed, was "
                                     "skipped, or torch did not measure). Ringed points carry a flag (marks beside "
                                     "them).")
    else:
        plot = page.missing("No triton or torch.compile row measured beside a measured torch row: no speedups "
                            "to plot (on a CPU, triton is skipped unless TRITON_INTERPRET=1).")
    columns = [("platform", "platform", None), ("model", "name", None), ("mode", "mode", None),
               ("dtype", "dtype", None), ("batch", "batch_size", None), ("format", "memory_format", None),
               ("size", "input_size", None)]
    columns += [(f"{b} img/s", _summary_cell(b), None) for b in BACKENDS]
    columns += [(f"{b} ×", f"{b}_speedup", lambda v: "-" if v is None else f"{v:.2f}×") for b in FAST_BACKENDS]
    columns += [("flags", lambda line: ", ".join(line["flags"]), None),
                ("messages", lambda line: " | ".join(line["messages"]), None)]
    ordered = sorted(lines, key=lambda line: (str(line["platform"]), str(line["name"]), mode_rank(line["mode"]),
                                              str(line["dtype"]), line["batch_size"] or 0))
    table = page.table(columns, ordered, row_class=lambda line: row_class(line["flags"]))
    return intro + plot + table


def _summary_cell(backend: str):
    """A backend's images/s cell: the terminal summary's text and marks (~ noisy), sorted by the number."""
    def cell(line: dict) -> Cell:
        row = line[backend]
        text = (line[f"{backend}_cell"] or "-") + (" ~" if row is not None and "noisy" in row["flags"] else "")
        return Cell(line[f"{backend}_throughput"] if row is not None and row["status"] in ("ok", "incorrect")
                    else None, text)
    return cell


def _failed_text(line, backend) -> str:
    row = line[backend]
    if row["status"] in ("ok", "incorrect"):
        return "torch " + (line["torch"]["status"] if line["torch"] is not None else "missing")
    return row["status"]
