"""What a run costs before it starts: its configurations, its torch.compile builds and an
estimated time on the GPU the suites are written for (one NVIDIA H200, caches cold), and the
order in which a run under a budget measures them (:func:`order_by_value`).

The estimate of one configuration is a fixed cost (building, the correctness check and the
first calls: Triton's JIT and autotuning, cuDNN's first calls) plus its warm-up, its timed
phase, the host-time loop after it and, where the suite's timing sets ``cross_check``,
triton.testing's two timers of the same kernel, plus, for backend ``compile``, one torch.compile
build. Its sources, one constant each below:

- measured, ``results/h200/`` (torch 2.11, triton 3.6, cold caches, batch 64): a row's fixed
  cost is its ``wall_s`` less its timed steps (``samples`` x ``median_ms``). The model rows are
  se_resnext50_32x4d with backend triton in fp32 (26.4 s infer, 52.0 s train); that model's
  grouped convolutions make the conv2d dispatcher tune seven shapes in every direction, more
  Triton tuning than a model without grouped convolutions does, so its cost, taken for every
  model's triton rows, errs long for most. The kernel rows are two conv2d cases per mode,
  triton bf16; their fixed cost includes the float64 reference on the CPU, which compile rows
  run too.
- measured, the same rows: a model step runs at the rate of se_resnext50_32x4d's fp32 steps
  (2 x GMACs x batch per step, three times that in training: 18.9 TFLOP/s infer, 15.8 train),
  scaled from each model's card (``bench.card_cache``) and input size. bf16 runs faster, so
  its steps are over-estimated.
- assumed, until rows with ``compile_s`` are measured: a torch.compile build of a whole model
  takes 40 s for inference and 80 s for training (Inductor, default mode, 16 CPU cores), of one
  kernel op 8 s; backend torch, which tunes nothing, has a fixed cost of 5 s per model row
  (10 s in training) and 0.5 s per kernel row; a worker starts in 15 s.

The timed phase is adaptive (``bench.timing``): batches of ``repeats`` steps, checked between
batches, until at least ``repeats`` steps and ``min_time_s`` have passed and the 95% confidence
interval of the median is within 1% of it, or until ``max_time_s`` has passed. So it lasts at
least its first possible stop, max(repeats x step, min_time_s) rounded up to whole batches
(:func:`shortest_timed_s`), and at most ``max_time_s`` plus one batch (:func:`longest_timed_s`).
The estimate expects the first: every configuration converged at its first check. Why that is
typical on a quiet GPU: the H200 model rows had the median's interval within 0.09% (infer) and
0.2% (train) of it at their 20 samples; at 20 samples the interval's bounds are the 5th and 16th
ordered samples, next to the quartiles, so a kernel row meeting issue 14's target of an IQR
within 1% of the median (the ruler that replays a CUDA graph, host launch gaps excluded) stops
at its first check too: 95 times in 100 where that IQR is exactly 1%, and at its second in the
other 5 (normal noise, simulated with ``bench.timing.median_ci_rel``). The kernel rows in
``results/h200/`` were timed per call with the host's launch gaps counted, the noise that ruler
removes: none of them converged, and a row like them runs to its cap. The worst case, every
configuration at its cap, is printed beside the expected figure; a budget is charged the
expected one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .results import CONFIGURATION

# Seconds of build, check and first calls per model row, by backend and mode (see the module's doc).
MODEL_FIXED_S = {
    ("triton", "infer"): 26.4, ("triton", "train"): 52.0,  # measured
    ("torch", "infer"): 5.0, ("torch", "train"): 10.0,  # assumed
    ("compile", "infer"): 5.0, ("compile", "train"): 10.0,  # assumed, the build excluded
}
# FLOP/s of a model step (measured: se_resnext50_32x4d, fp32, batch 64, H200).
MODEL_RATE_FLOPS = {"infer": 2 * 4.233e9 * 64 / 28.70e-3, "train": 3 * 2 * 4.233e9 * 64 / 102.95e-3}
# Seconds of build, check and first calls per kernel row, by mode: triton measured (the mean of
# two conv2d cases), torch and compile assumed.
KERNEL_FIXED_S = {
    "triton": {"infer": 3.98, "train-forward": 0.89, "train-backward": 9.21},
    "torch": {"infer": 0.5, "train-forward": 0.5, "train-backward": 0.5},
    "compile": {"infer": 4.0, "train-forward": 0.9, "train-backward": 9.2},  # checked like triton
}
# Seconds of one kernel sample: device time replays a CUDA graph of calls lasting about 1 ms
# (bench/timing.py's REPLAY_TARGET_MS; one call where a call lasts longer, as the slowest measured
# one does: conv2d backward, 1.02 ms) and as many L2 flushes (at most 32 of about 30 us).
KERNEL_STEP_S = 2.0e-3
COMPILE_BUILD_S = {"infer": 40.0, "train": 80.0, "kernel": 8.0}  # assumed
WORKER_START_S = 15.0  # assumed: torch import, CUDA context, the environment's bandwidth probe

# The timer's own rules (bench/timing.py; named here without importing torch, and a test checks
# that the two agree): warm-up lasts at least this many calls and seconds, and timing ends at
# this many steps whatever else it says.
WARMUP_MIN_CALLS = 3
WARMUP_MIN_S = 0.025
MAX_REPEATS = 10_000
# host_ms (bench/timing.py's, likewise): after the device timing, every GPU row times the same
# step in this many synchronised blocks of calls, each of at least this many calls and seconds.
HOST_BLOCKS = 5
HOST_BLOCK_MIN_CALLS = 3
HOST_BLOCK_S = 0.02
# cross_check (kernel rows): triton.testing.do_bench at its defaults (25 ms of warm-up, 100 ms
# of repetitions), then do_bench_cudagraph at its defaults (a graph of 20 ms of calls, captured,
# whose capture costs about the host time of those calls, then replayed 10 times).
CROSS_CHECK_S = (0.025 + 0.100) + (0.020 + 10 * 0.020)

TARGET_GPU = "NVIDIA H200"
BASIS = ("measured H200 rows in results/h200/ (triton fixed costs, model step rate) and assumed "
         "torch.compile builds (40 s infer, 80 s train per model, 8 s per kernel op) and torch fixed costs")


@dataclass(frozen=True)
class Estimate:
    """Seconds on the target GPU; ``measuring_s`` expects every configuration's timing to stop
    at its first possible check, ``worst_measuring_s`` has every one run to its time cap."""
    configurations: int
    compile_builds: int
    measuring_s: float  # every configuration, builds excluded, timing converged
    worst_measuring_s: float  # the same, every configuration's timing at its cap
    compiling_s: float
    starting_s: float

    @property
    def total_s(self) -> float:
        return self.measuring_s + self.compiling_s + self.starting_s

    @property
    def worst_total_s(self) -> float:
        return self.worst_measuring_s + self.compiling_s + self.starting_s


def is_compile_build(config: dict) -> bool:
    return config["backend"] == "compile"


def batches(seconds: float, batch_s: float) -> int:
    """Whole batches of ``batch_s`` until ``seconds`` have passed: the timer checks between batches."""
    return max(1, math.ceil(seconds / batch_s - 1e-9))


def shortest_timed_s(config: dict, step_s: float) -> float:
    """The timed phase if it stops at its first possible check: ``repeats`` steps and
    ``min_time_s``, in whole batches of ``repeats`` steps."""
    batch_s = config["repeats"] * step_s
    count = min(batches(config["min_time_s"], batch_s), math.ceil(MAX_REPEATS / config["repeats"]))
    return count * batch_s


def longest_timed_s(config: dict, step_s: float) -> float:
    """The timed phase if its median never converges: to the first check past ``max_time_s``
    (at most one batch past it), or ``MAX_REPEATS`` steps; never shorter than the shortest."""
    batch_s = config["repeats"] * step_s
    count = min(batches(config.get("max_time_s", 0.0), batch_s), math.ceil(MAX_REPEATS / config["repeats"]))
    return max(count * batch_s, shortest_timed_s(config, step_s))


def untimed_s(config: dict, step_s: float) -> float:
    """The steps around the timed phase: warm-up before it; after it, on a GPU, the host-time
    blocks and, for a kernel row whose suite cross-checks, triton.testing's two timers."""
    warm_up = max(max(config["warmup"], WARMUP_MIN_CALLS) * step_s, WARMUP_MIN_S)
    host_loop = HOST_BLOCKS * max(HOST_BLOCK_MIN_CALLS * step_s, HOST_BLOCK_S)
    cross_check = CROSS_CHECK_S if config["kind"] == "kernel" and config.get("cross_check") else 0.0
    return warm_up + host_loop + cross_check


def model_step_s(config: dict, card: dict) -> float:
    """A step of ``batch_size`` images: the card's MACs per image under the row's test protocol
    (every view of every image), scaled to the row's input size."""
    scale = (config["input_size"] / card["input_size"]) ** 2
    protocol = config.get("protocol") or "single"
    gmacs = card["gmacs"] if protocol == "single" else card["protocols"][protocol]["gmacs_per_image"]
    flops = 2 * gmacs * 1e9 * scale * config["batch_size"] * (3 if config["mode"] == "train" else 1)
    return flops / MODEL_RATE_FLOPS[config["mode"]]


def fixed_and_step_s(config: dict, cards: dict[str, dict]) -> tuple[float, float]:
    if config["kind"] == "model":
        return MODEL_FIXED_S[config["backend"], config["mode"]], model_step_s(config, cards[config["name"]])
    return KERNEL_FIXED_S[config["backend"]][config["mode"]], KERNEL_STEP_S


def measuring_s(config: dict, cards: dict[str, dict], worst: bool = False) -> float:
    """Seconds one configuration takes on the target GPU, its torch.compile build excluded: its
    timing converged at the first check, or with ``worst`` run to its cap."""
    fixed, step = fixed_and_step_s(config, cards)
    timed = longest_timed_s(config, step) if worst else shortest_timed_s(config, step)
    return fixed + untimed_s(config, step) + timed


def compiling_s(config: dict) -> float:
    if not is_compile_build(config):
        return 0.0
    return COMPILE_BUILD_S["kernel" if config["kind"] == "kernel" else config["mode"]]


def config_s(config: dict, cards: dict[str, dict], worst: bool = False) -> float:
    """Seconds one configuration takes on the target GPU, its build included; the expected
    figure (timing converged) is what a budget charges."""
    return measuring_s(config, cards, worst) + compiling_s(config)


def estimate(configs: list[dict], cards: dict[str, dict], workers: int = 1) -> Estimate:
    return Estimate(configurations=len(configs), compile_builds=sum(map(is_compile_build, configs)),
                    measuring_s=sum(measuring_s(c, cards) for c in configs),
                    worst_measuring_s=sum(measuring_s(c, cards, worst=True) for c in configs),
                    compiling_s=sum(compiling_s(c) for c in configs), starting_s=WORKER_START_S * workers)


def as_on_the_gpu(configs: list[dict], suite: dict) -> list[dict]:
    """The configurations with the timing a GPU runs them with: those expanded for a CPU take the
    settings in which ``suite``'s timing on a GPU differs from its timing on a CPU
    (``bench.suite.timing_for``: a CPU has no time cap unless the suite sets one)."""
    from .suite import timing_for

    cpu, gpu = timing_for(suite, "cpu"), timing_for(suite, "cuda")
    differing = {key: value for key, value in gpu.items() if cpu[key] != value}
    return [{**config, **differing} if config["device"] == "cpu" else config for config in configs]


def fitting(configs: list[dict], cards: dict[str, dict], budget_s: float, workers: int = 1) -> int:
    """How many of ``configs``, from the first, a run under ``budget_s`` is estimated to hand out:
    the runner stops at the first whose expected estimate would end past the budget (one worker
    at a time)."""
    spent = WORKER_START_S * workers
    for count, config in enumerate(configs):
        spent += config_s(config, cards)
        if spent > budget_s:
            return count
    return len(configs)


def family(config: dict, cards: dict[str, dict]) -> str:
    """What a budget covers once before twice: a model's family (its card's), or a kernel's op."""
    return cards[config["name"]]["family"] if config["kind"] == "model" else f"op {config['name']}"


def comparison(config: dict) -> tuple:
    """What a configuration's backends are compared on: all that names it but its backend."""
    return tuple(str(config.get(column)) for column in CONFIGURATION if column != "backend")


def order_by_value(configs: list[dict], family_of) -> list[dict]:
    """Every family's first comparison before any family's second, and so on, where a comparison
    is one configuration on each of its backends (:func:`comparison`), kept together: a budget
    that reaches a family answers which backend wins there. The suite's order within each round
    and within each comparison. ``family_of``: a configuration's family."""
    comparisons: dict[tuple, list[dict]] = {}
    for config in configs:
        comparisons.setdefault(comparison(config), []).append(config)
    rounds: dict[str, int] = {}
    ranked = []
    for index, group in enumerate(comparisons.values()):
        key = family_of(group[0])
        ranked.append((rounds.get(key, 0), index, group))
        rounds[key] = rounds.get(key, 0) + 1
    return [config for _, _, group in sorted(ranked, key=lambda item: item[:2]) for config in group]


def model_cards_of(configs: list[dict]) -> dict[str, dict]:
    """The cards of the models among ``configs``, by name (cached: ``bench.card_cache``)."""
    from .card_cache import model_cards

    names = sorted({c["name"] for c in configs if c["kind"] == "model"})
    return dict(zip(names, model_cards(names))) if names else {}


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def dry_run_report(suite: str, configs: list[dict], cards: dict[str, dict], devices: list[str],
                   budget_min: float | None = None) -> str:
    """The expanded matrix, one configuration a line with its expected and worst estimates, then
    the totals and their basis, and with a budget, how many configurations it is estimated to hold."""
    from .suite import load_suite
    from .tables import format_table

    configs = as_on_the_gpu(configs, load_suite(suite))
    rows = [{**c, "estimate_s": round(config_s(c, cards), 1), "worst_s": round(config_s(c, cards, worst=True), 1)}
            for c in configs]
    columns = {"kind": "kind", "name": "name", "shape": "shape", "backend": "backend", "mode": "mode",
               "dtype": "dtype", "batch_size": "batch", "memory_format": "format", "input_size": "input",
               "protocol": "protocol", "estimate_s": "est. s", "worst_s": "worst s"}
    shown = [c for c in columns if any(row.get(c) is not None for row in rows)]  # no shapes in a model suite
    table = format_table(rows, shown, [columns[c] for c in shown])
    total = estimate(configs, cards, workers=len(devices))
    caps = ", ".join(f"{cap:g} s" for cap in sorted({c["max_time_s"] for c in configs}))
    where = ("" if devices[0].startswith("cuda") else
             f"\nthis machine has no GPU: the estimate is for the GPU the suites are written for, and none is "
             f"made for the CPU (no CPU rows are measured)")
    return (f"{table}\n\nsuite {suite}: {total.configurations} configurations, {total.compile_builds} torch.compile "
            f"builds (dry run: nothing was measured)\n"
            f"estimated {minutes(total.total_s)} on one {TARGET_GPU}, caches cold: configurations "
            f"{minutes(total.measuring_s)} + torch.compile builds {minutes(total.compiling_s)} + worker start "
            f"{minutes(total.starting_s)}\n"
            f"expected: every configuration's timing stops at its first check (the median known within 1%); "
            f"worst case {minutes(total.worst_total_s)}: every one timed to its cap (max_time_s {caps}); "
            f"a budget is charged the expected figure\n"
            f"estimated from {BASIS} (bench/estimate.py){where}" + budget_line(configs, cards, devices, budget_min))


def budget_line(configs: list[dict], cards: dict[str, dict], devices: list[str], budget_min: float | None) -> str:
    if budget_min is None:
        return ""
    count = fitting(configs, cards, budget_min * 60, workers=len(devices))
    return (f"\nwith --budget {budget_min:g}: the first {count} configurations in the order above fit, "
            f"{len(configs) - count} would not run")
