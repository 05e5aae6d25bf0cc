"""What a run costs before it starts: its configurations, its torch.compile builds and an
estimated time on the GPU the suites are written for (one NVIDIA H200, caches cold), and the
order in which a run under a budget measures them (:func:`order_by_value`).

The estimate of one configuration is a fixed cost (building, the correctness check and the
first calls: Triton's JIT and autotuning, cuDNN's first calls) plus its warm-up and timed steps
under the suite's timing settings, plus, for backend ``compile``, one torch.compile build.
Its sources, one constant each below:

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
"""

from __future__ import annotations

from dataclasses import dataclass

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
KERNEL_STEP_S = 1.0e-3  # the slowest measured kernel step (conv2d backward, 1.02 ms, L2 flushed)
COMPILE_BUILD_S = {"infer": 40.0, "train": 80.0, "kernel": 8.0}  # assumed
WORKER_START_S = 15.0  # assumed: torch import, CUDA context, the environment's bandwidth probe

TARGET_GPU = "NVIDIA H200"
BASIS = ("measured H200 rows in results/h200/ (triton fixed costs, model step rate) and assumed "
         "torch.compile builds (40 s infer, 80 s train per model, 8 s per kernel op) and torch fixed costs")


@dataclass(frozen=True)
class Estimate:
    configurations: int
    compile_builds: int
    measuring_s: float  # every configuration, builds excluded
    compiling_s: float
    starting_s: float

    @property
    def total_s(self) -> float:
        return self.measuring_s + self.compiling_s + self.starting_s


def is_compile_build(config: dict) -> bool:
    return config["backend"] == "compile"


def timed_s(config: dict, step_s: float) -> float:
    """Warm-up plus timed steps: the timer repeats ``repeats`` steps until ``min_time_s`` has passed."""
    return config["warmup"] * step_s + max(config["repeats"] * step_s, config["min_time_s"])


def model_step_s(config: dict, card: dict) -> float:
    scale = (config["input_size"] / card["input_size"]) ** 2
    flops = 2 * card["gmacs"] * 1e9 * scale * config["batch_size"] * (3 if config["mode"] == "train" else 1)
    return flops / MODEL_RATE_FLOPS[config["mode"]]


def measuring_s(config: dict, cards: dict[str, dict]) -> float:
    """Seconds one configuration takes on the target GPU, its torch.compile build excluded."""
    if config["kind"] == "model":
        step = model_step_s(config, cards[config["name"]])
        return MODEL_FIXED_S[config["backend"], config["mode"]] + timed_s(config, step)
    return KERNEL_FIXED_S[config["backend"]][config["mode"]] + timed_s(config, KERNEL_STEP_S)


def compiling_s(config: dict) -> float:
    if not is_compile_build(config):
        return 0.0
    return COMPILE_BUILD_S["kernel" if config["kind"] == "kernel" else config["mode"]]


def config_s(config: dict, cards: dict[str, dict]) -> float:
    """Seconds one configuration takes on the target GPU, its build included: what a budget charges."""
    return measuring_s(config, cards) + compiling_s(config)


def estimate(configs: list[dict], cards: dict[str, dict], workers: int = 1) -> Estimate:
    return Estimate(configurations=len(configs), compile_builds=sum(map(is_compile_build, configs)),
                    measuring_s=sum(measuring_s(c, cards) for c in configs),
                    compiling_s=sum(compiling_s(c) for c in configs), starting_s=WORKER_START_S * workers)


def fitting(configs: list[dict], cards: dict[str, dict], budget_s: float, workers: int = 1) -> int:
    """How many of ``configs``, from the first, a run under ``budget_s`` is estimated to hand out:
    the runner stops at the first whose estimate would end past the budget (one worker at a time)."""
    spent = WORKER_START_S * workers
    for count, config in enumerate(configs):
        spent += config_s(config, cards)
        if spent > budget_s:
            return count
    return len(configs)


def family(config: dict, cards: dict[str, dict]) -> str:
    """What a budget covers once before twice: a model's family (its card's), or a kernel's op."""
    return cards[config["name"]]["family"] if config["kind"] == "model" else f"op {config['name']}"


def order_by_value(configs: list[dict], family_of) -> list[dict]:
    """Every family's first configuration before any family's second, and so on; the suite's
    order within each round. ``family_of``: a configuration's family."""
    seen: dict[str, int] = {}
    ranked = []
    for index, config in enumerate(configs):
        key = family_of(config)
        ranked.append((seen.get(key, 0), index, config))
        seen[key] = seen.get(key, 0) + 1
    return [config for _, _, config in sorted(ranked, key=lambda item: item[:2])]


def model_cards_of(configs: list[dict]) -> dict[str, dict]:
    """The cards of the models among ``configs``, by name (cached: ``bench.card_cache``)."""
    from .card_cache import model_cards

    names = sorted({c["name"] for c in configs if c["kind"] == "model"})
    return dict(zip(names, model_cards(names))) if names else {}


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def dry_run_report(suite: str, configs: list[dict], cards: dict[str, dict], devices: list[str],
                   budget_min: float | None = None) -> str:
    """The expanded matrix, one configuration a line with its estimate, then the totals and their
    basis, and with a budget, how many configurations it is estimated to hold."""
    from .tables import format_table

    rows = [{**c, "estimate_s": round(config_s(c, cards), 1)} for c in configs]
    columns = {"kind": "kind", "name": "name", "shape": "shape", "backend": "backend", "mode": "mode",
               "dtype": "dtype", "batch_size": "batch", "memory_format": "format", "input_size": "input",
               "estimate_s": "est. s"}
    shown = [c for c in columns if any(row.get(c) is not None for row in rows)]  # no shapes in a model suite
    table = format_table(rows, shown, [columns[c] for c in shown])
    total = estimate(configs, cards, workers=len(devices))
    where = ("" if devices[0].startswith("cuda") else
             f"; this machine has no GPU: the estimate is for the GPU the suites are written for, and none is "
             f"made for the CPU (no CPU rows are measured)")
    return (f"{table}\n\nsuite {suite}: {total.configurations} configurations, {total.compile_builds} torch.compile "
            f"builds (dry run: nothing was measured)\n"
            f"estimated {minutes(total.total_s)} on one {TARGET_GPU}, caches cold: configurations "
            f"{minutes(total.measuring_s)} + torch.compile builds {minutes(total.compiling_s)} + worker start "
            f"{minutes(total.starting_s)}{where}\n"
            f"estimated from {BASIS} (bench/estimate.py)" + budget_line(configs, cards, devices, budget_min))


def budget_line(configs: list[dict], cards: dict[str, dict], devices: list[str], budget_min: float | None) -> str:
    if budget_min is None:
        return ""
    count = fitting(configs, cards, budget_min * 60, workers=len(devices))
    return (f"\nwith --budget {budget_min:g}: the first {count} configurations in the order above fit, "
            f"{len(configs) - count} would not run")
