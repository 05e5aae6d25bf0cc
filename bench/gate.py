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

Peak memory is measured, not sampled: it regresses when it grows by more than the threshold.
Correctness is absolute: an ``incorrect`` row, a new ``error``/``oom``, a configuration that
ran before and is now skipped, or one that vanished, is a regression whatever the speed.
Exit status: 0 clean, 1 any regression, 2 unusable input.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field

from . import results
from .stats import holm, mann_whitney_greater, ratio_interval
from .tables import format_cell, format_table

METRICS = ("throughput", "latency", "memory")
MIN_SAMPLES = 3  # fewer repetitions than this cannot show a speed change; reported as such


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


@dataclass
class GateResult:
    metric: str
    threshold: float
    comparisons: list[Comparison] = field(default_factory=list)
    new_configurations: int = 0
    mismatch_notes: list[str] = field(default_factory=list)

    def by(self, verdict: str) -> list[Comparison]:
        items = [c for c in self.comparisons if c.verdict == verdict]
        # worst first: correctness and failures before speed, then by size of the change
        return sorted(items, key=lambda c: (c.change is not None, c.change if c.change is not None else 0)
                      if verdict == "regression" else (-(c.change or 0)))

    @property
    def exit_code(self) -> int:
        return 1 if self.by("regression") else 0


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
    return list(row.get("times_ms") or [])


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


def compare(baseline: list[dict], candidate: list[dict], *, metric: str = "throughput", threshold: float = 0.05,
            alpha: float = 0.001, allow_mismatch: bool = False) -> GateResult:
    if metric not in METRICS:
        raise GateInputError(f"unknown metric {metric!r}; choose from {', '.join(METRICS)}")
    if not 0 < threshold < 10:
        raise GateInputError(f"threshold must be a positive fraction such as 0.05 (5%), got {threshold!r}")
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
    result = GateResult(metric, threshold, mismatch_notes=problems)
    result.new_configurations = sum(1 for k in c_rows if k not in b_rows)
    for k in b_rows:
        if k not in c_rows:
            result.comparisons.append(Comparison(describe_key(b_rows[k]), "regression", "vanished from the candidate"))

    timed = []  # (key, baseline row, candidate row) for the speed test
    for k in common:
        b, c = b_rows[k], c_rows[k]
        verdict = _status_verdict(b, c)
        if verdict is not None:
            result.comparisons.append(verdict)
        elif metric == "memory":
            result.comparisons.append(_memory(b, c, threshold))
        elif min(len(_samples(b)), len(_samples(c))) < MIN_SAMPLES:
            result.comparisons.append(Comparison(describe_key(c), "inconclusive",
                                                 f"fewer than {MIN_SAMPLES} timed repetitions on a side"))
        else:
            timed.append((b, c))

    slower = holm([mann_whitney_greater(_samples(c), _samples(b)) for b, c in timed], alpha)
    faster = holm([mann_whitney_greater(_samples(b), _samples(c)) for b, c in timed], alpha)
    for (b, c), is_slower, is_faster in zip(timed, slower, faster):
        result.comparisons.append(_speed(b, c, metric, threshold, is_slower, is_faster))
    return result


def _speed(b: dict, c: dict, metric: str, threshold: float, is_slower: bool, is_faster: bool) -> Comparison:
    time_ratio = statistics.median(_samples(c)) / statistics.median(_samples(b))  # > 1 is slower
    throughput = metric == "throughput"
    # The metric's own direction: throughput (images/s, or 1/time for kernels) + is faster;
    # latency + is slower.
    as_change = (lambda r: 1 / r - 1) if throughput else (lambda r: r - 1)
    value = (lambda r: r["throughput"] if r.get("throughput") else 1e3 / r["median_ms"]) if throughput else \
        (lambda r: r["median_ms"])
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
    state = "FAIL" if result.exit_code else "PASS"
    return (f"{state}: {n['regression']} regressions, {n['improvement']} improvements, {n['unchanged']} unchanged, "
            f"{n['failing']} failing on both sides, {n['inconclusive']} inconclusive, {n['new']} new "
            f"(metric {result.metric}, threshold {100 * result.threshold:g}%)")


def render(result: GateResult, fmt: str) -> str:
    listed = result.by("regression") + result.by("improvement")
    if fmt == "json":
        return json.dumps({"exit_code": result.exit_code, "metric": result.metric, "threshold": result.threshold,
                           "counts": counts(result), "mismatch": result.mismatch_notes,
                           "comparisons": [c.__dict__ for c in result.comparisons]}, indent=2, default=str)
    rows = [_row(c) for c in listed]
    if fmt == "markdown":
        lines = [f"### Benchmark gate: {headline(result)}", ""]
        if rows:
            lines.append("| " + " | ".join(COLUMNS) + " |")
            lines.append("|" + "---|" * len(COLUMNS))
            for row in rows:
                cells = ["" if row[c] is None else str(row[c]).replace("|", "\\|") for c in COLUMNS]
                lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)
    text = headline(result)
    return f"{text}\n\n{format_table(rows, COLUMNS)}" if rows else text


def load_side(paths: list[str], what: str) -> list[dict]:
    try:
        rows = results.load_rows(paths)
    except results.ResultsError as error:
        raise GateInputError(f"{what}: {error}") from None
    return rows
