"""Measure the gate's statistical behaviour on synthetic runs: ``python -m bench.gate_calibration``.

Each synthetic run has ``configs`` configurations of ``samples`` timed repetitions. Timing
noise is log-normal with a spread drawn from 2-5% per configuration, plus slow outliers (5% of
the repetitions, 1.1-2x); configuration 0 is a quiet one (1% spread, 1% outliers). Two
experiments per seed, both gated with the default rule:

* A/A: two independent runs of the same distributions - any regression is a false alarm;
* planted: the candidate's configuration 0 is 5% slower - it must be flagged.

The README quotes what this prints; the tests run a smaller number of seeds.

``--reach`` prints instead how many repetitions the gate needs at all: per repetition count
(equal on both sides), the rank test's smallest p-value (complete separation) and the largest
suite in which a slowdown can still fail the gate - Holm tests the first comparison at
alpha / configurations, and below its floor no slowdown, however large, is significant.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from . import gate
from .stats import smallest_p_value

REACH_REPETITIONS = (5, 8, 10, 12, 15, 20, 30)


def synthetic_run(rng: np.random.Generator, configs: int = 40, samples: int = 20, slowdown: float = 0.0) -> list[dict]:
    rows = []
    for i in range(configs):
        quiet = i == 0
        spread = 0.01 if quiet else rng.uniform(0.02, 0.05)
        times = 10.0 * (1 + i / 10) * np.exp(rng.normal(0.0, spread, samples))
        slow = rng.random(samples) < (0.01 if quiet else 0.05)
        times[slow] *= rng.uniform(1.1, 2.0, slow.sum())
        if quiet:
            times *= 1 + slowdown
        rows.append({"kind": "model", "name": f"model{i}", "backend": "torch", "mode": "infer", "dtype": "bf16",
                     "batch_size": 64, "memory_format": "channels_last", "device_name": "synthetic GPU",
                     "status": "ok", "device_times_ms": times.tolist(), "device_ms": float(np.median(times)),
                     "throughput": 64e3 / float(np.median(times))})
    return rows


def calibrate(seeds: int, configs: int = 40, samples: int = 20, **gate_options) -> dict:
    false_alarms = caught = 0
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        baseline = synthetic_run(rng, configs, samples)
        same = synthetic_run(rng, configs, samples)
        slower = synthetic_run(rng, configs, samples, slowdown=0.05)
        false_alarms += bool(gate.compare(baseline, same, **gate_options).by("regression"))
        flagged = gate.compare(baseline, slower, **gate_options).by("regression")
        caught += any(c.key["name"] == "model0" for c in flagged)
    return {"seeds": seeds, "configs": configs, "samples": samples, "aa_runs_with_false_alarm": false_alarms,
            "planted_caught": caught}


def reach(alpha: float = 0.001, repetitions=REACH_REPETITIONS) -> list[dict]:
    """Per repetition count: the smallest p-value and the largest suite a slowdown can fail at ``alpha``."""
    rows = []
    for n in repetitions:
        floor = smallest_p_value(n, n)
        largest = math.floor(alpha / floor)  # then exact, whatever the division rounded
        while alpha / (largest + 1) >= floor:
            largest += 1
        while largest and alpha / largest < floor:
            largest -= 1
        rows.append({"repetitions": n, "smallest_p": floor, "largest_suite": largest})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=600)
    parser.add_argument("--configs", type=int, default=40)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--reach", action="store_true",
                        help="print the smallest p-value and largest suite the gate can fail, per repetitions")
    parser.add_argument("--alpha", type=gate.parse_alpha, default=0.001, help="for --reach (default 0.001)")
    args = parser.parse_args()
    if args.reach:
        print(f"| repetitions per side | smallest p | largest suite it can fail at alpha {args.alpha:g} |")
        print("|---|---|---|")
        for row in reach(args.alpha):
            largest = f"{row['largest_suite']:,}" if row["largest_suite"] else "none: no slowdown can fail it"
            print(f"| {row['repetitions']} | {row['smallest_p']:.1e} | {largest} |")
        return
    result = calibrate(args.seeds, args.configs, args.samples)
    print(f"{result['seeds']} seeds, {result['configs']} configurations x {result['samples']} repetitions: "
          f"A/A runs with any false alarm {result['aa_runs_with_false_alarm']}/{result['seeds']}; "
          f"planted 5% slowdown caught {result['planted_caught']}/{result['seeds']}")


if __name__ == "__main__":
    main()
