"""Environment: per run and device, what it ran on, the clocks seen while its rows ran, and warnings.

The only section drawn from every row, superseded ones included: a rerun does not hide how the
earlier run's GPU behaved.
"""

from __future__ import annotations

from ..data import CLOCK_SPREAD_RATIO, environment, number
from ..figures import BAD, PLATFORM_COLORS, layout
from ..format import esc, fmt_num, hover, sorted_unique
from ..page import Page, Rows

ID = "environment"
TITLE = "Environment"


def render(page: Page, rows: Rows) -> str:
    from plotly import graph_objects as go

    intro = ('<p class="intro">Per run and device: the GPU, driver and software versions, clocks at the start, '
             'the range of SM clocks sampled while the rows ran, throttle reasons and the commit. Warnings: '
             f'any throttle reason, or an SM clock range over {CLOCK_SPREAD_RATIO:.0%} of its highest.</p>')
    frame = rows.every_row
    runs = environment(frame)
    if not runs:
        return intro + page.missing("No rows in the inputs.")
    parts = [intro]
    for run in runs:
        for warning in run["warnings"]:
            parts.append(f'<div class="warning"><b>{esc(run["run_id"])}</b> on {esc(run["platform"])} '
                         f'({esc(run["host"])}): {esc(warning)}</div>')
        if run["synthetic"]:
            parts.append(f'<div class="warning"><b>{esc(run["run_id"])}</b> is SYNTHETIC sample data '
                         '(tools/make_synthetic_samples.py), not a measurement.</div>')
    clocked = [r for r in frame.to_dict("records") if number(r.get("sm_clock_mhz_max")) is not None]
    if clocked:
        fig = go.Figure()
        for index, run in enumerate(sorted_unique((str(r["run_id"]), str(r["device"])) for r in clocked)):
            points = sorted((r for r in clocked if (str(r["run_id"]), str(r["device"])) == run),
                            key=lambda r: str(r["started_at"]))
            hi = [number(r["sm_clock_mhz_max"]) for r in points]
            lo = [number(r["sm_clock_mhz_min"]) or h for r, h in zip(points, hi)]
            bad = ["throttled" in r["flags"] or "clocks moved" in r["flags"] for r in points]
            fig.add_trace(go.Scatter(
                x=list(range(len(points))), y=hi, mode="markers",
                name=esc(f"{run[0]} ({run[1]}, {points[0]['platform']})"),
                marker=dict(color=[BAD if b else PLATFORM_COLORS[index % len(PLATFORM_COLORS)] for b in bad],
                            size=6, symbol=["x" if b else "circle" for b in bad]),
                error_y=dict(type="data", symmetric=False, array=[0] * len(hi),
                             arrayminus=[h - l for h, l in zip(hi, lo)], thickness=1, width=0,
                             color=PLATFORM_COLORS[index % len(PLATFORM_COLORS)]),
                hovertext=[hover(r, f"<b>SM clock {fmt_num(r.get('sm_clock_mhz_min'))}–"
                                    f"{fmt_num(r.get('sm_clock_mhz_max'))} MHz</b> (max "
                                    f"{fmt_num(r.get('sm_clock_max_mhz'))}) · throttle: "
                                    f"{esc(', '.join(r.get('throttle_reasons') or []) or 'none')}") for r in points],
                hoverinfo="text"))
        layout(fig, 380)
        fig.update_xaxes(title_text="row, in the order it ran")
        fig.update_yaxes(title_text="SM clock while the row ran (MHz)")
        parts.append(page.figure(fig, note="Each row's highest sampled SM clock, its bar reaching down to the "
                                           "lowest; × in red: the row throttled or its clock moved."))
    else:
        parts.append(page.missing("No SM clock samples in the inputs (CPU runs, or NVML not available): "
                                  "nothing to say about clocks or throttling."))
    parts.append(_table(page, runs))
    return "".join(parts)


def _table(page: Page, runs: list[dict]) -> str:
    columns = [("run", "run_id", None), ("platform", "platform", None), ("device", "device", None),
               ("host", "host", None), ("driver", "driver_version", None), ("torch", "torch_version", None),
               ("triton", "triton_version", None), ("CUDA", "cuda_version", None), ("cuDNN", "cudnn_version", None),
               ("commit", _commit, None),
               ("SM MHz at start / max", lambda r: _pair(r["sm_clock_mhz"], r["sm_clock_max_mhz"]), None),
               ("SM MHz seen", lambda r: _pair(r["sm_clock_seen_min"], r["sm_clock_seen_max"], "–"), None),
               ("throttle reasons", lambda r: ", ".join(r["throttle_reasons"]) or "-", None),
               ("copy GB/s", "copy_bandwidth_gbps", fmt_num), ("rows", "rows", None), ("statuses", "statuses", None),
               ("started", "started", None), ("finished", "finished", None), ("CC", "compute_capability", None),
               ("python", "python", None), ("CPU", "cpu", None), ("temp °C", "temperature_c", fmt_num),
               ("power limit W", "power_limit_w", fmt_num), ("warnings", lambda r: " | ".join(r["warnings"]), None)]
    return page.table(columns, runs, row_class=lambda r: "bad" if r["warnings"] else "")


def _commit(run) -> str:
    commit = run.get("git_commit")
    if not commit:
        return "-"
    return str(commit)[:12] + (" (dirty)" if run.get("git_dirty") else "")


def _pair(a, b, sep=" / ") -> str:
    return "-" if a is None and b is None else f"{fmt_num(a)}{sep}{fmt_num(b)}"
