"""The regression gate: compare a candidate run with a baseline, configuration by configuration.

Decision rule (README, "The regression gate"): a configuration regresses in speed only when
both hold -

1. the slowdown is real: a one-sided Mann-Whitney U test on the two sets of recorded
   repetitions says the candidate is slower, at a family-wise error rate ``alpha`` (0.1%) across
   all compared configurations (Holm's correction), so a run of hundreds of configurations on
   a noisy machine still raises a false alarm less than once in a thousand runs;
2. it is large enough to matter: the 99.9% confidence interval of the time ratio (Hodges-Lehmann,
   distribution-free) reaches ``1 + threshold``, i.e. a slowdown of the threshold's size is consistent with the
   data (a change measured at exactly the threshold is caught, not missed half the time).

A rank test on n1 and n2 repetitions cannot return a p-value below that of complete
separation (:func:`stats.smallest_p_value`). Holm tests a comparison at ``alpha / (m - r)``,
m the compared configurations and r those rejected before it (``alpha / m`` when none is), so
one whose floor lies above that level could not be called slower whatever it measured: it is
``inconclusive`` with the repetitions per side it needs, never ``unchanged``. A gate whose
speed comparisons are all inconclusive exits 2 and says how many repetitions to record.

Peak memory is measured, not sampled: it regresses when it grows by more than the threshold.
Correctness is absolute: an ``incorrect`` row, a new ``error``/``oom``, a configuration that
ran before and is now skipped, or one that vanished, is a regression whatever the speed.
Exit status: 0 clean, 1 any regression, 2 unusable input or no speed comparison able to decide.
"""

from __future__ import annotations

import argparse
import html
import json
import math
import statistics
from dataclasses import dataclass, field

from . import results
from .stats import holm, mann_whitney_greater, ratio_interval, repetitions_needed, smallest_p_value
from .tables import format_cell, format_table

METRICS = ("throughput", "latency", "memory")
MIN_SAMPLES = 3  # fewer repetitions than this cannot show a speed change; reported as such
ALPHA_RANGE = "alpha must lie in (0, 0.5), such as 0.001"
THRESHOLD_RANGE = "threshold must lie in (0, 10), such as 0.05 (5%)"


class GateInputError(ValueError):
    """Input the gate cannot use: exit status 2."""


@dataclass
class Comparison:
    key: dict
    verdict: str  # regression, improvement, unchanged, failing, inconclusive
    reason: str
    baseline: float | None = None
    candidate: float | None = None
    change: float | None = None  # relative, in the metric's own direction (+ = better)
    interval: tuple | None = None
    p_value: float | None = None
    repetitions_needed: int | None = None  # set on a speed comparison the test had no power to decide


@dataclass
class GateResult:
    metric: str
    threshold: float
    comparisons: list[Comparison] = field(default_factory=list)
    new_configurations: int = 0
    mismatch_notes: list[str] = field(default_factory=list)
    alpha: float = 0.001
    speed_comparisons: int = 0  # configurations whose speed was to be compared (status ok on both sides)

    def by(self, verdict: str) -> list[Comparison]:
        items = [c for c in self.comparisons if c.verdict == verdict]
        # worst first: correctness and failures before speed, then by size of the change
        return sorted(items, key=lambda c: (c.change is not None, c.change if c.change is not None else 0)
                      if verdict in ("regression", "inconclusive") else (-(c.change or 0)))

    @property
    def undecidable(self) -> bool:
        """Every speed comparison lacked the repetitions to reach significance (and none regressed)."""
        unpowered = [c for c in self.comparisons if c.repetitions_needed is not None]
        return not self.by("regression") and 0 < self.speed_comparisons == len(unpowered)

    @property
    def exit_code(self) -> int:
        return 1 if self.by("regression") else 2 if self.undecidable else 0

    @property
    def advice(self) -> str | None:
        """What to change when no speed comparison could decide, else None."""
        if not self.undecidable:
            return None
        # Rerun, every configuration joins the Holm family: the level is alpha over all of them.
        level = self.alpha / self.speed_comparisons
        n = max(MIN_SAMPLES, repetitions_needed(level))
        return (f"no speed comparison could reach significance (Holm's first level: p ≤ {level:.1e} = "
                f"{self.alpha:g} / {self.speed_comparisons}): record both baseline and candidate with at least {n} "
                f"repetitions per configuration (python -m bench run --repeats {n}; pytest-benchmark: "
                f"--benchmark-min-rounds {n})")


def key_of(row: dict, with_device: bool) -> tuple:
    columns = [c for c in results.KEY_COLUMNS if with_device or c != "device_name"]
    return tuple(row.get(c) for c in columns)


def describe_key(row: dict) -> dict:
    return {c: row.get(c) for c in results.KEY_COLUMNS if row.get(c) is not None}


def _major_minor(version: str | None) -> str | None:
    if not version:
        return None
    parts = version.split("+")[0].split(".")
    return ".".join(parts[:2])


def check_compatible(baseline: list[dict], candidate: list[dict]) -> list[str]:
    """Why these two sets should not be compared (different GPUs, major software versions)."""
    problems = []
    b_gpus = sorted({r.get("device_name") for r in baseline} - {None})
    c_gpus = sorted({r.get("device_name") for r in candidate} - {None})
    if b_gpus != c_gpus:
        problems.append(f"the baseline ran on {', '.join(b_gpus)} and the candidate on {', '.join(c_gpus)}")
    for column in ("torch_version", "triton_version", "cuda_version"):
        b = sorted({_major_minor(r.get(column)) for r in baseline} - {None})
        c = sorted({_major_minor(r.get(column)) for r in candidate} - {None})
        if b and c and b != c:
            problems.append(f"{column.replace('_version', '')} {', '.join(b)} in the baseline, "
                            f"{', '.join(c)} in the candidate")
    return problems


def _samples(row: dict) -> list[float]:
    """The speed tests compare device time, never host time (``bench.timing``)."""
    return list(row.get("device_times_ms") or [])


def _methods_differ(b: dict, c: dict) -> Comparison | None:
    """Device times taken two ways (a CUDA graph against events, say) are not like for like: the
    comparison is inconclusive and says so, whatever the numbers."""
    methods = b.get("timing_method"), c.get("timing_method")
    if methods[0] == methods[1]:
        return None
    return Comparison(describe_key(c), "inconclusive", f"device time taken by {methods[0]} in the baseline and "
                      f"{methods[1]} in the candidate: not like for like (bench run --device-timing forces one)")


def _status_verdict(b: dict, c: dict) -> Comparison | None:
    key = describe_key(c)
    failed = ("error", "oom")
    if c["status"] == "incorrect":
        return Comparison(key, "regression", f"incorrect: {c.get('message') or 'error over tolerance'}")
    if c["status"] in failed:
        if b["status"] in failed:
            return Comparison(key, "failing", f"still {c['status']}: {c.get('message') or ''}".strip())
        return Comparison(key, "regression", f"new {c['status']}: {c.get('message') or ''}".strip())
    if c["status"] == "skipped":
        if b["status"] == "skipped":
            return Comparison(key, "failing", f"still skipped: {c.get('message') or ''}".strip())
        return Comparison(key, "regression", f"now skipped: {c.get('message') or ''}".strip())
    if b["status"] != "ok":
        return Comparison(key, "improvement", f"was {b['status']}, now ok")
    return None


def _in_range(value: float, low: float, high: float) -> bool:
    return low < value < high  # False for nan


def parse_threshold(text: str) -> float:
    """argparse type of ``--threshold``: a percentage (5%) or a fraction (0.05) in (0, 10)."""
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        value = math.nan
    if not _in_range(value, 0, 10):
        raise argparse.ArgumentTypeError(f"{THRESHOLD_RANGE}; got {text!r}")
    return value


def parse_alpha(text: str) -> float:
    """argparse type of ``--alpha``: the family-wise false-alarm rate, in (0, 0.5)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not _in_range(value, 0, 0.5):
        raise argparse.ArgumentTypeError(f"{ALPHA_RANGE}; got {text!r}")
    return value


def compare(baseline: list[dict], candidate: list[dict], *, metric: str = "throughput", threshold: float = 0.05,
            alpha: float = 0.001, allow_mismatch: bool = False) -> GateResult:
    if metric not in METRICS:
        raise GateInputError(f"unknown metric {metric!r}; choose from {', '.join(METRICS)}")
    if not _in_range(threshold, 0, 10):
        raise GateInputError(f"{THRESHOLD_RANGE}; got {threshold!r}")
    if not _in_range(alpha, 0, 0.5):
        raise GateInputError(f"{ALPHA_RANGE}; got {alpha!r}")
    if not baseline:
        raise GateInputError("the baseline has no rows")
    if not candidate:
        raise GateInputError("the candidate has no rows")
    problems = check_compatible(baseline, candidate)
    if problems and not allow_mismatch:
        raise GateInputError("refusing to compare: " + "; ".join(problems) + " (use --allow-mismatch to compare anyway)")
    with_device = not problems
    b_rows = {key_of(r, with_device): r for r in baseline}
    c_rows = {key_of(r, with_device): r for r in candidate}
    common = [k for k in b_rows if k in c_rows]
    if not common:
        raise GateInputError("the baseline and the candidate have no configuration in common")
    result = GateResult(metric, threshold, mismatch_notes=problems, alpha=alpha)
    result.new_configurations = sum(1 for k in c_rows if k not in b_rows)
    for k in b_rows:
        if k not in c_rows:
            result.comparisons.append(Comparison(describe_key(b_rows[k]), "regression", "vanished from the candidate"))

    timed = []  # (baseline row, candidate row) for the speed test
    too_few = []  # the same, with fewer than MIN_SAMPLES repetitions on a side: not tested
    for k in common:
        b, c = b_rows[k], c_rows[k]
        verdict = _status_verdict(b, c)
        if verdict is not None:
            result.comparisons.append(verdict)
        elif metric == "memory":
            result.comparisons.append(_memory(b, c, threshold))
        elif _methods_differ(b, c) is not None:
            result.comparisons.append(_methods_differ(b, c))
        elif min(len(_samples(b)), len(_samples(c))) < MIN_SAMPLES:
            too_few.append((b, c))
        else:
            timed.append((b, c))
    result.speed_comparisons = len(timed) + len(too_few)

    for b, c in too_few:  # with enough repetitions they would join the family: the level is over all of them
        result.comparisons.append(_unpowered(b, c, metric, threshold, alpha, result.speed_comparisons))
    slower = holm([mann_whitney_greater(_samples(c), _samples(b)) for b, c in timed], alpha)
    faster = holm([mann_whitney_greater(_samples(b), _samples(c)) for b, c in timed], alpha)
    # The most lenient level Holm can test an unrejected comparison at: after the r rejected
    # ones, alpha / (m - r). A comparison whose floor lies above it could not have been rejected.
    unrejected = max(len(timed) - sum(slower), 1)
    for (b, c), is_slower, is_faster in zip(timed, slower, faster):
        if not (is_slower or is_faster) and smallest_p_value(len(_samples(c)), len(_samples(b))) > alpha / unrejected:
            result.comparisons.append(_unpowered(b, c, metric, threshold, alpha, unrejected))
        else:
            result.comparisons.append(_speed(b, c, metric, threshold, is_slower, is_faster))
    return result


def _unpowered(b: dict, c: dict, metric: str, threshold: float, alpha: float, divisor: int) -> Comparison:
    """A speed comparison whose rank test cannot reach Holm's level ``alpha / divisor`` with the
    repetitions recorded: its measured change is shown, its verdict is inconclusive."""
    level = alpha / divisor
    n = max(MIN_SAMPLES, repetitions_needed(level))
    sizes = len(_samples(b)), len(_samples(c))
    reason = (f"needs ≥ {n} repetitions per side at alpha {alpha:g} (p ≤ {level:.1e} = {alpha:g} / {divisor} "
              f"by Holm; has {sizes[0]} and {sizes[1]})")
    if min(sizes) == 0:
        comparison = Comparison(describe_key(c), "inconclusive", reason)
    else:
        comparison = _speed(b, c, metric, threshold, is_slower=False, is_faster=False)
        comparison.verdict, comparison.reason = "inconclusive", reason
    comparison.repetitions_needed = n
    return comparison


def _speed(b: dict, c: dict, metric: str, threshold: float, is_slower: bool, is_faster: bool) -> Comparison:
    time_ratio = statistics.median(_samples(c)) / statistics.median(_samples(b))  # > 1 is slower
    throughput = metric == "throughput"
    # The metric's own direction: throughput (images/s, or 1/time for kernels) + is faster;
    # latency + is slower.
    as_change = (lambda r: 1 / r - 1) if throughput else (lambda r: r - 1)
    value = (lambda r: r["throughput"] if r.get("throughput") else 1e3 / r["device_ms"]) if throughput else \
        (lambda r: r["device_ms"])
    slower_p = mann_whitney_greater(_samples(c), _samples(b))
    faster_p = mann_whitney_greater(_samples(b), _samples(c))
    comparison = Comparison(describe_key(c), "unchanged", "", value(b), value(c), as_change(time_ratio),
                            p_value=slower_p if time_ratio >= 1 else faster_p)  # p of the direction seen
    if not (is_slower or is_faster):
        return comparison  # within the noise: no interval needed
    _, low, high = ratio_interval(_samples(c), _samples(b))
    comparison.interval = tuple(sorted((as_change(low), as_change(high))))
    if is_slower and high >= 1 + threshold:
        comparison.verdict, comparison.reason = "regression", "slower"
    elif is_faster and low <= 1 / (1 + threshold):
        comparison.verdict, comparison.reason = "improvement", "faster"
    else:
        comparison.reason = "significant but under the threshold"
    return comparison


def _memory(b: dict, c: dict, threshold: float) -> Comparison:
    before, after = b.get("peak_memory_bytes"), c.get("peak_memory_bytes")
    if not before or not after:
        return Comparison(describe_key(c), "inconclusive", "no peak memory recorded")
    ratio = after / before
    verdict = "regression" if ratio > 1 + threshold else "improvement" if ratio < 1 / (1 + threshold) else "unchanged"
    return Comparison(describe_key(c), verdict, "more memory" if verdict == "regression" else "",
                      before, after, ratio - 1)


# --- output --------------------------------------------------------------------------------

def _what(key: dict) -> str:
    parts = [key.get("name"), key.get("shape"), key.get("backend"), key.get("mode"), key.get("dtype"),
             f"bs{key['batch_size']}" if key.get("batch_size") else None, key.get("memory_format"),
             key.get("device_name")]
    return " ".join(str(p) for p in parts if p)


def _row(c: Comparison) -> dict:
    pct = (lambda x: None if x is None else f"{100 * x:+.1f}%")
    return {"configuration": _what(c.key), "verdict": c.verdict, "reason": c.reason,
            "baseline": format_cell(c.baseline) if c.baseline is not None else None,
            "candidate": format_cell(c.candidate) if c.candidate is not None else None, "change": pct(c.change),
            "99.9% interval": None if c.interval is None else f"[{pct(c.interval[0])}, {pct(c.interval[1])}]",
            "p": None if c.p_value is None else f"{c.p_value:.1e}"}


COLUMNS = ["configuration", "verdict", "reason", "baseline", "candidate", "change", "99.9% interval", "p"]


def counts(result: GateResult) -> dict:
    verdicts = ("regression", "improvement", "unchanged", "failing", "inconclusive")
    return {v: len(result.by(v)) for v in verdicts} | {"new": result.new_configurations}


def headline(result: GateResult) -> str:
    n = counts(result)
    state = {0: "PASS", 1: "FAIL", 2: "INCONCLUSIVE"}[result.exit_code]
    return (f"{state}: {n['regression']} regressions, {n['improvement']} improvements, {n['unchanged']} unchanged, "
            f"{n['failing']} failing on both sides, {n['inconclusive']} inconclusive, {n['new']} new "
            f"(metric {result.metric}{'' if result.metric == 'memory' else ' of device time'}, "
            f"threshold {100 * result.threshold:g}%)")


def markdown_text(text: str) -> str:
    """``text`` as literal markdown table-cell content: results rows carry messages and names
    written by anyone (a model's exception, a pull request's config), so HTML is escaped, a
    pipe cannot end the cell, and a newline (which would end the row) becomes <br>."""
    escaped = html.escape(text, quote=True).replace("|", "\\|")
    return "<br>".join(escaped.splitlines())


def render(result: GateResult, fmt: str) -> str:
    listed = result.by("regression") + result.by("improvement") + result.by("inconclusive")
    if fmt == "json":
        return json.dumps({"exit_code": result.exit_code, "metric": result.metric, "threshold": result.threshold,
                           "alpha": result.alpha, "counts": counts(result), "advice": result.advice,
                           "mismatch": result.mismatch_notes,
                           "comparisons": [c.__dict__ for c in result.comparisons]}, indent=2, default=str)
    rows = [_row(c) for c in listed]
    notes = [result.advice] if result.advice else []
    if fmt == "markdown":
        lines = [f"### Benchmark gate: {markdown_text(headline(result))}", ""]
        lines += [markdown_text(note) for note in notes] + ([""] if notes else [])
        if rows:
            lines.append("| " + " | ".join(COLUMNS) + " |")
            lines.append("|" + "---|" * len(COLUMNS))
            for row in rows:
                cells = ["" if row[c] is None else markdown_text(str(row[c])) for c in COLUMNS]
                lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)
    text = "\n".join([headline(result)] + notes)
    return f"{text}\n\n{format_table(rows, COLUMNS)}" if rows else text


def load_side(paths: list[str], what: str) -> list[dict]:
    try:
        rows = results.load_rows(paths)
    except results.ResultsError as error:
        raise GateInputError(f"{what}: {error}") from None
    return rows
