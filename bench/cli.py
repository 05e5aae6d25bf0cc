"""Command line: ``python -m bench <command>``; every command has ``--help``.

User errors (a bad name, a bad file) print one line on stderr and exit 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

from .devices import physical_gpu
from .paths import check_creatable, default_compile_cache
from .suite import BACKENDS, DEVICE_TIMINGS, DTYPES, MEMORY_FORMATS, MODEL_MODES, list_suites
from .tables import format_table


BASELINES = Path("results") / "baselines"


class UsageError(Exception):
    """A mistake in what the user asked for; printed as one line, exit status 2."""


def cmd_models(args: argparse.Namespace) -> int:
    import models

    from .card_cache import model_cards

    cards = model_cards(args.names or models.list_models())  # unknown names raise ValueError
    if args.json:
        print(json.dumps(cards, indent=2))
        return 0
    for card in cards:  # the papers quote errors to two decimals at most; show them alike
        for key in ("top1_error", "top5_error"):
            card[key] = None if card[key] is None else f"{card[key]:.2f}"
    columns = ["name", "family", "year", "input_size", "min_input_size", "params", "gmacs",
               "top1_error", "top5_error", "error_protocol"]
    headers = ["model", "family", "year", "input", "min", "params", "GMACs", "top-1 err %", "top-5 err %",
               "protocol (paper)"]
    print(format_table(cards, columns, headers))
    return 0


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error on one line (the usage itself is a --help away)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _count(minimum: int):
    """An argparse type: a whole number of at least ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number of at least {minimum}, got {value}")
        return value
    return parse


def _csv(kind=str, choices: tuple | None = None, what: str = ""):
    """An argparse type: a comma-separated list of ``kind`` (a callable such as ``_count(1)``),
    each one of ``choices`` (``what`` they are) where given."""
    def parse(text: str) -> list:
        values = [kind(v.strip()) for v in text.split(",") if v.strip()]
        if not values:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}")
        bad = [v for v in values if choices is not None and v not in choices]
        if bad:
            raise argparse.ArgumentTypeError(f"unknown {what} {', '.join(map(repr, bad))}; "
                                             f"choose from {', '.join(choices)}")
        return values
    return parse


def _one_of(choices: tuple, what: str):
    """An argparse type: one of ``choices`` (``what`` they are)."""
    def parse(text: str) -> str:
        if text not in choices:
            raise argparse.ArgumentTypeError(f"unknown {what} {text!r}; choose from {', '.join(choices)}")
        return text
    return parse


def _minutes(text: str) -> float:
    """An argparse type: a number of minutes above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of minutes, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of minutes above 0, got {text}")
    return value


def _suite_name(text: str) -> str:
    if text not in list_suites():
        raise argparse.ArgumentTypeError(f"unknown suite {text!r}; choose from {', '.join(list_suites())}")
    return text


def _device(text: str) -> str:
    if text in ("cpu", "all") or text.startswith("cuda:") and text[5:].isdigit():
        return text
    raise argparse.ArgumentTypeError(f"expected cpu, cuda:N or all, got {text!r}")


def check_out(out: str | None) -> None:
    """``--out`` names a .jsonl file or a directory (made if absent) where files can be written;
    a one-line :class:`UsageError` otherwise, before any work."""
    if out is None:
        return
    path = Path(out)
    if path.suffix == ".jsonl" and path.is_dir():
        raise UsageError(f"--out {out}: is a directory; a results file name ends in .jsonl")
    if path.suffix != ".jsonl" and not path.is_dir() and (path.exists() or path.suffix):
        raise UsageError(f"--out {out}: expected a results file ending in .jsonl or a directory, "
                         f"got {'an existing file' if path.exists() else 'a ' + path.suffix + ' file name'}")
    check_creatable(path, "--out")


def resolve_devices(device: str | None) -> list[str]:
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device is None:
        return ["cuda:0"] if count else ["cpu"]
    if device == "cpu":
        return ["cpu"]
    if device == "all":
        if not count:
            raise UsageError("--device all needs CUDA GPUs, and none is visible; use --device cpu")
        return [f"cuda:{i}" for i in range(count)]
    if device.startswith("cuda:") and device[5:].isdigit():
        if int(device[5:]) >= count:
            raise UsageError(f"--device {device}: {count} CUDA device(s) visible")
        return [device]
    raise UsageError(f"--device {device!r}: expected cpu, cuda:N or all")


def check_world_size(configs: list[dict], devices: list[str]) -> None:
    """Give each multi-rank configuration the GPUs its ranks run on (``rank_gpus``, physical
    indices: GPUs 0..N-1 as this process sees them); a one-line :class:`UsageError` where the
    largest world size needs more GPUs (or, on a CPU, more cores) than there are."""
    ranks = max((config.get("world_size") or 1 for config in configs), default=1)
    if ranks == 1:
        return
    if devices == ["cpu"]:
        cores = os.cpu_count() or 1
        if ranks > cores:
            raise UsageError(f"--world-size {ranks}: this CPU has {cores} cores, and a gloo rank needs one")
        return
    if len(devices) > 1:
        raise UsageError(f"--world-size {ranks} with --device all: data-parallel rows run their ranks on "
                         f"GPUs 0..{ranks - 1} themselves; use --device cuda:0")
    import torch

    count = torch.cuda.device_count()
    if ranks > count:
        raise UsageError(f"--world-size {ranks}: {count} CUDA device(s) visible, and a rank needs one GPU")
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    for config in configs:
        if (config.get("world_size") or 1) > 1:
            config["rank_gpus"] = ",".join(physical_gpu(i, visible) for i in range(config["world_size"]))


def device_identities(devices: list[str]) -> list[dict]:
    """``device_name`` and ``device_uuid`` of each device, as the rows run on it record them."""
    if devices == ["cpu"]:
        return [{"device_name": "cpu", "device_uuid": None}]
    import torch

    from .environment import collect

    environments = [collect(torch.device(device), run_id="", measure_bandwidth=False) for device in devices]
    return [{"device_name": e["device_name"], "device_uuid": e["device_uuid"]} for e in environments]


def output_path(out: str | None, suite: str, devices: list[str], resume: bool) -> Path:
    """A .jsonl path is used as is; a directory gets a new file named by suite, GPU and time,
    or with ``resume`` its newest file of this suite on these devices."""
    from . import results

    if out and out.endswith(".jsonl"):
        return Path(out)
    directory = Path(out) if out else Path("results") / "runs"
    identities = device_identities(devices)
    if resume:
        previous = results.resumable_file(directory, suite, identities)
        if previous is not None:
            return previous
    return directory / results.run_file_name(suite, identities[0]["device_name"])


def connect_cluster(args: argparse.Namespace):
    """``ray``, connected to ``--cluster`` and checked against ``--accelerator-type``; None for a
    local run. A one-line error for options that a cluster run cannot honour."""
    if args.cluster is None:
        if args.accelerator_type is not None:
            raise UsageError("--accelerator-type chooses GPUs of a Ray cluster: it needs --cluster")
        return None
    for option, value in (("--device", args.device), ("--budget", args.budget)):
        if value is not None:
            raise UsageError(f"{option} with --cluster: the cluster's scheduler places every configuration; "
                             f"drop {option}")
    from . import cluster

    ray = cluster.connect(args.cluster)
    cluster.check_accelerator_type(ray, args.accelerator_type)
    return ray


def cmd_run(args: argparse.Namespace) -> int:
    import socket

    from . import cluster  # Ray itself only where --cluster connects
    from . import estimate
    from . import suite as suites
    from .results import ResultsWriteError
    from .runner import RunOptions, Runner, Terminated, describe
    from .summary import kernel_summary, model_summary, ruler_check, status_counts

    check_out(args.out)
    compile_cache = Path(args.compile_cache or os.environ.get("TORCHINDUCTOR_CACHE_DIR") or default_compile_cache())
    check_creatable(compile_cache, "--compile-cache")
    ray = connect_cluster(args)
    devices = resolve_devices(args.device) if ray is None else [cluster.device_kind(ray)]
    name = args.suite or ("default" if devices[0] != "cpu" else "smoke")
    overrides = suites.Overrides(models=args.models, ops=args.ops, backends=args.backends, modes=args.modes,
                                 dtypes=args.dtypes, batch_sizes=args.batch_sizes,
                                 memory_formats=args.memory_format, input_size=args.input_size, shapes=args.shapes,
                                 protocols=args.protocols, world_sizes=args.world_size)
    configs = suites.expand(suites.load_suite(name), overrides, device=devices[0])
    for config in configs:
        config["suite"] = name
        config.update({k: v for k, v in (("warmup", args.warmup), ("repeats", args.repeats)) if v is not None})
        if args.device_timing is not None:
            config["device_timing"] = args.device_timing
    if ray is None:
        check_world_size(configs, devices)
    else:
        cluster.check_world_size(ray, configs)
    cards = estimate.model_cards_of(configs) if args.budget is not None or args.dry_run else {}
    if args.budget is not None:
        configs = estimate.order_by_value(configs, lambda config: estimate.family(config, cards))
    if args.dry_run:
        print(estimate.dry_run_report(name, configs, cards, devices, args.budget))
        return 0
    out = output_path(args.out, name, devices, args.resume) if ray is None else cluster.output_path(
        args.out, name, args.resume)
    if args.resume and out.exists():
        from .results import read_rows

        read_rows(out)  # a corrupt or foreign file fails here, before any work
    out.parent.mkdir(parents=True, exist_ok=True)
    log_file = open(out.with_suffix(".log"), "a", encoding="utf-8")

    def log(line: str) -> None:
        log_file.write(line + "\n")
        log_file.flush()

    run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{socket.gethostname()}-{os.getpid()}"
    where = ", ".join(devices) if ray is None else f"the Ray cluster at {args.cluster} ({devices[0].split(':')[0]})"
    log(f"run {run_id}: suite {name}, {len(configs)} configurations on {where} -> {out}")
    print(f"suite {name}: {len(configs)} configurations on {where} -> {out}", file=sys.stderr)
    options = RunOptions(run_id=run_id, devices=devices, resume=args.resume,
                         memory_limit_bytes=args.worker_memory_limit, progress=not args.no_progress, log=log,
                         budget_s=None if args.budget is None else args.budget * 60,
                         cost_s=lambda config: estimate.config_s(config, cards), compile_cache=str(compile_cache))
    runner = Runner(configs, out, options) if ray is None else cluster.ClusterRunner(
        ray, configs, out, options, args.accelerator_type, args.cluster_retries)

    def terminate(signum, frame):
        raise Terminated()

    previous_handler = signal.signal(signal.SIGTERM, terminate)  # stop as Ctrl-C does, rows kept
    try:
        rows = runner.run()
    except Terminated:
        print(f"\nterminated by SIGTERM: {runner.done} finished rows are in {out}", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print(f"\ninterrupted: {runner.done} finished rows are in {out}", file=sys.stderr)
        return 130
    except ResultsWriteError as error:
        print(f"\nerror: {error.strerror}; the {runner.done} rows before it are in the file", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
        log_file.close()
    text = "\n\n".join(t for t in (model_summary(rows), kernel_summary(rows), ruler_check(rows)) if t)
    summary = f"{text}\n\n{len(rows)} rows ({status_counts(rows)}) in {out}" if rows else f"nothing to run; {out}"
    if runner.not_run:
        summary += (f"\n{len(runner.not_run)} configurations not run: the budget of {args.budget:g} min was spent\n"
                    + "\n".join(f"  not run (budget) {describe(config)}" for config in runner.not_run))
    print(summary)
    with open(out.with_suffix(".log"), "a", encoding="utf-8") as f:
        f.write(summary + "\n")
    return 0


def default_baseline(candidate: list[dict]) -> Path:
    from .results import device_slug

    gpus = sorted({r.get("device_name") or "cpu" for r in candidate})
    if len(gpus) != 1:
        raise UsageError(f"the candidate ran on {', '.join(gpus)}; name the baseline with --baseline")
    path = BASELINES / f"{device_slug(gpus[0])}.jsonl"
    if not path.exists():
        raise UsageError(f"no stored baseline for {gpus[0]} ({path}); save one with 'python -m bench baseline save RUN'")
    return path


def cmd_gate(args: argparse.Namespace) -> int:
    from . import gate

    try:
        candidate = gate.load_side(args.candidate, "candidate")
        baseline_paths = args.baseline or [str(default_baseline(candidate))]
        baseline = gate.load_side(baseline_paths, "baseline")
        result = gate.compare(baseline, candidate, metric=args.metric, threshold=args.threshold,
                              alpha=args.alpha, allow_mismatch=args.allow_mismatch)
    except gate.GateInputError as error:
        raise UsageError(str(error)) from None
    print(gate.render(result, args.format))
    if result.advice:  # also on stderr: a CI job that sends stdout to a file still shows it in its log
        print(f"gate: {result.advice}", file=sys.stderr)
    return result.exit_code


def cmd_baseline_save(args: argparse.Namespace) -> int:
    from . import results

    rows = results.load_rows(args.run)
    gpus = sorted({r.get("device_name") or "cpu" for r in rows})
    if len(gpus) != 1:
        raise UsageError(f"{', '.join(args.run)}: a baseline holds one GPU's rows; found {', '.join(gpus) or 'none'}")
    name = results.device_slug(gpus[0]) + (f"-{results.device_slug(args.name)}" if args.name else "")
    path = BASELINES / f"{name}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            row.pop("source", None)
            f.write(json.dumps(row) + "\n")
    print(f"saved {len(rows)} rows of {gpus[0]} as {path}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .report import main as report_main  # plotly is imported while rendering only, never by `run`

    return report_main(args)


def build_parser() -> argparse.ArgumentParser:
    from .cluster import TASK_RETRIES  # Ray itself is imported only by a run with --cluster

    parser = Parser(prog="python -m bench", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    models_parser = commands.add_parser(
        "models", help="print the model zoo's cards (paper, reported error, params, GMACs)",
        description="Print every model's card: family, paper year, native and minimum input size, "
                    "parameters and GMACs (computed, batch 1, native size), and the paper's reported "
                    "ImageNet error.")
    models_parser.add_argument("names", nargs="*", help="models to show (default: all)")
    models_parser.add_argument("--json", action="store_true", help="print a JSON list of cards instead of a table")
    models_parser.set_defaults(func=cmd_models)

    run = commands.add_parser(
        "run", help="measure models and kernels on every backend; write a results file",
        description="Run a suite (bench/suites/NAME.toml) of configurations, each in a worker process, "
                    "and append one row per configuration to a JSON Lines results file. Each option "
                    "overrides the same list in every matrix of the suite. With no arguments: the "
                    "'default' suite on a CUDA GPU, 'smoke' on a CPU.")
    run.add_argument("--suite", type=_suite_name, help="suite name: " + ", ".join(list_suites()))
    run.add_argument("--models", type=_csv(), help="comma-separated model names (see 'models')")
    run.add_argument("--ops", type=_csv(), help="comma-separated kernel ops: bn_relu, lrn, conv2d, squeeze_excite")
    run.add_argument("--shapes", type=_csv(),
                     help="only the kernel cases whose shape matches one of these comma-separated glob patterns, "
                          "e.g. '*x512x7x7 k=3x3*' (the shape column; implies kernels only, like --ops)")
    run.add_argument("--backends", type=_csv(choices=BACKENDS, what="backend"), help="torch, triton, compile")
    run.add_argument("--modes", type=_csv(choices=MODEL_MODES, what="mode"), help="infer, train")
    run.add_argument("--dtypes", type=_csv(choices=DTYPES, what="dtype"), help="fp32, tf32, fp16, bf16")
    run.add_argument("--batch-sizes", type=_csv(_count(1)), help="e.g. 64,256")
    run.add_argument("--memory-format", type=_csv(choices=MEMORY_FORMATS, what="memory format"),
                     help="nchw, channels_last")
    run.add_argument("--input-size", type=_count(1), help="square input size for models (default: the suite's, "
                                                     "else each model's native size)")
    run.add_argument("--warmup", type=_count(0), help="untimed iterations before timing")
    run.add_argument("--repeats", type=_count(1), help="timed iterations (at least)")
    run.add_argument("--protocols", type=_csv(),
                     help="test protocols of inference model rows: single (default), 10crop, 144crop, dense "
                          "(the papers' multi-crop and dense evaluations; README)")
    run.add_argument("--world-size", type=_csv(_count(1)), metavar="N[,N...]",
                     help="data-parallel ranks of training model rows, e.g. 1,2,4: DistributedDataParallel, "
                          "batch size per rank (NCCL, one GPU a rank; gloo on CPU cores); each multi-rank row "
                          "records its scaling efficiency against the one-rank row")
    run.add_argument("--device-timing", type=_one_of(DEVICE_TIMINGS, "device timing method"),
                     help="how a GPU row's device time is taken: auto (a CUDA graph for kernels and inference, "
                          "CUPTI where a graph cannot hold the op, events for training steps) or one forced; "
                          "default: the suite's")
    run.add_argument("--device", type=_device,
                     help="cpu, cuda:N, or all (one worker per visible GPU); default cuda:0 or cpu")
    run.add_argument("--cluster", metavar="ADDRESS",
                     help="run every configuration as a task of a Ray cluster (pip install '.[cluster]'): auto, "
                          "HOST:PORT or ray://HOST:PORT; rows stream back into one file here")
    run.add_argument("--accelerator-type", metavar="NAME",
                     help="with --cluster: only on nodes whose GPUs Ray names NAME (e.g. H100, A100)")
    run.add_argument("--cluster-retries", type=_count(0), default=TASK_RETRIES, metavar="N",
                     help="with --cluster: reruns of a task whose worker or node died, before its row is an "
                          f"error (default {TASK_RETRIES})")
    run.add_argument("--out", help="results file (*.jsonl) or directory (default results/runs/)")
    run.add_argument("--resume", action="store_true",
                     help="skip configurations already run on this device in the output file (a directory: "
                          "its newest file of this suite on this device)")
    run.add_argument("--worker-memory-limit", type=_count(1), metavar="BYTES",
                     help="cap each worker's memory beyond its start-up size; going over gives an 'oom' row")
    run.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    run.add_argument("--compile-cache", metavar="DIR",
                     help="where torch.compile keeps compiled graphs and autotuning between runs (default "
                          "$TORCHINDUCTOR_CACHE_DIR, else ~/.cache/classic-cnn-bench/inductor-<torch version>)")
    run.add_argument("--budget", type=_minutes, metavar="MINUTES",
                     help="measure the most valuable configurations first (every model family and kernel op once "
                          "before any twice) and hand out none whose estimate would overrun MINUTES; the rest are "
                          "listed as not run")
    run.add_argument("--dry-run", action="store_true",
                     help="print the expanded matrix, its torch.compile builds and an estimated time, and exit")
    run.set_defaults(func=cmd_run)

    from .gate import parse_alpha, parse_threshold  # the argument checks live beside the rule they guard

    gate = commands.add_parser(
        "gate", help="compare a candidate run with a baseline; exit 1 on any regression",
        description="Match the rows of two results sets by configuration and flag a regression only where "
                    "the candidate is worse than the threshold and the difference is outside the measured "
                    "noise (one-sided Mann-Whitney U on the recorded repetitions, Holm-corrected to a 0.1%% "
                    "family-wise error, and a 99.9%% Hodges-Lehmann interval of the time ratio that reaches the "
                    "threshold). Any incorrect row, new error/oom, now-skipped or vanished configuration is a "
                    "regression. A configuration with too few repetitions for the test to reach "
                    "significance is inconclusive, never unchanged. Exit 0 clean, 1 regression, 2 unusable "
                    "input or every speed comparison inconclusive. Accepts results files, "
                    "directories of them, and pytest --benchmark-json files.")
    gate.add_argument("--baseline", nargs="+", metavar="PATH",
                      help="baseline results (default: results/baselines/<GPU>.jsonl for the candidate's GPU)")
    gate.add_argument("--candidate", nargs="+", metavar="PATH", required=True, help="candidate results")
    gate.add_argument("--threshold", type=parse_threshold, default=0.05,
                      help="smallest change that counts, in (0, 10) (default 5%%)")
    gate.add_argument("--metric", choices=["throughput", "latency", "memory"], default="throughput",
                      help="what is compared (default throughput; kernels: 1/time)")
    gate.add_argument("--alpha", type=parse_alpha, default=0.001,
                      help="family-wise false-alarm rate, in (0, 0.5) (default 0.001)")
    gate.add_argument("--format", choices=["text", "json", "markdown"], default="text", help="output format")
    gate.add_argument("--allow-mismatch", action="store_true",
                      help="compare across GPU models or major software versions anyway")
    gate.set_defaults(func=cmd_gate)

    baseline = commands.add_parser("baseline", help="store a run as the baseline for its GPU",
                                   description="Baselines live under results/baselines/, one file per GPU.")
    baseline_commands = baseline.add_subparsers(dest="baseline_command", required=True, metavar="ACTION")
    save = baseline_commands.add_parser("save", help="store RUN as results/baselines/<GPU>[-NAME].jsonl",
                                        description="Store the rows of RUN (one GPU's) as the baseline for "
                                                    "that GPU, replacing any stored before.")
    save.add_argument("run", nargs="+", help="results file(s) of one GPU")
    save.add_argument("--name", help="a suffix, for several baselines per GPU")
    save.set_defaults(func=cmd_baseline_save)

    from .report import add_arguments as add_report_arguments

    report = commands.add_parser(
        "report", help="render results files into one self-contained HTML page of plots and tables",
        description="Read any number of results files (or directories of them), from any runs, GPUs and "
                    "machines, and write one self-contained HTML report: plotly inlined, no network, "
                    "opens from a file:// URL offline.")
    add_report_arguments(report)
    report.set_defaults(func=cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (UsageError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
