"""Command line: ``python -m bench <command>``; every command has ``--help``.

User errors (a bad name, a bad file) print one line on stderr and exit 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

from .suite import list_suites
from .tables import format_table


class UsageError(Exception):
    """A mistake in what the user asked for; printed as one line, exit status 2."""


def cmd_models(args: argparse.Namespace) -> int:
    import models

    names = args.names or models.list_models()
    cards = [models.model_card(name) for name in names]  # unknown names raise ValueError
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


def _csv(kind=str):
    def parse(text: str):
        try:
            return [kind(v.strip()) for v in text.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of {kind.__name__}, got {text!r}")
    return parse


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


def output_path(out: str | None, suite: str, devices: list[str], resume: bool) -> Path:
    """A .jsonl path is used as is; a directory gets a new file named by suite, GPU and time."""
    if out and out.endswith(".jsonl"):
        return Path(out)
    directory = Path(out) if out else Path("results") / "runs"
    if resume:
        previous = sorted(directory.glob(f"{suite}-*.jsonl"), key=lambda p: p.stat().st_mtime)
        if previous:
            return previous[-1]
    if devices[0] == "cpu":
        device_slug = "cpu"
    else:
        import torch

        device_slug = re.sub(r"[^A-Za-z0-9]+", "-", torch.cuda.get_device_name(int(devices[0][5:]))).strip("-")
    return directory / f"{suite}-{device_slug}-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"


def cmd_run(args: argparse.Namespace) -> int:
    import socket

    from . import suite as suites
    from .runner import RunOptions, Runner
    from .summary import kernel_summary, model_summary, status_counts

    devices = resolve_devices(args.device)
    name = args.suite or ("default" if devices[0] != "cpu" else "smoke")
    overrides = suites.Overrides(models=args.models, ops=args.ops, backends=args.backends, modes=args.modes,
                                 dtypes=args.dtypes, batch_sizes=args.batch_sizes,
                                 memory_formats=args.memory_format, input_size=args.input_size)
    configs = suites.expand(suites.load_suite(name), overrides, device=devices[0])
    for config in configs:
        config.update({k: v for k, v in (("warmup", args.warmup), ("repeats", args.repeats)) if v is not None})
        if args.cuda_graphs:
            config["cuda_graphs"] = True
    out = output_path(args.out, name, devices, args.resume)
    if args.resume and out.exists():
        from .results import read_rows

        read_rows(out)  # a corrupt or foreign file fails here, before any work
    out.parent.mkdir(parents=True, exist_ok=True)
    log_file = open(out.with_suffix(".log"), "a", encoding="utf-8")

    def log(line: str) -> None:
        log_file.write(line + "\n")
        log_file.flush()

    run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{socket.gethostname()}-{os.getpid()}"
    log(f"run {run_id}: suite {name}, {len(configs)} configurations on {', '.join(devices)} -> {out}")
    print(f"suite {name}: {len(configs)} configurations on {', '.join(devices)} -> {out}", file=sys.stderr)
    options = RunOptions(run_id=run_id, devices=devices, resume=args.resume,
                         memory_limit_bytes=args.worker_memory_limit, progress=not args.no_progress, log=log)
    runner = Runner(configs, out, options)
    try:
        rows = runner.run()
    except KeyboardInterrupt:
        print(f"\ninterrupted: {runner.done} finished rows are in {out}", file=sys.stderr)
        return 130
    finally:
        log_file.close()
    text = "\n\n".join(t for t in (model_summary(rows), kernel_summary(rows)) if t)
    summary = f"{text}\n\n{len(rows)} rows ({status_counts(rows)}) in {out}" if rows else f"nothing to run; {out}"
    print(summary)
    with open(out.with_suffix(".log"), "a", encoding="utf-8") as f:
        f.write(summary + "\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
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
    run.add_argument("--suite", help="suite name: " + ", ".join(list_suites()))
    run.add_argument("--models", type=_csv(), help="comma-separated model names (see 'models')")
    run.add_argument("--ops", type=_csv(), help="comma-separated kernel ops: bn_relu, lrn, conv2d, squeeze_excite")
    run.add_argument("--backends", type=_csv(), help="torch, triton, compile")
    run.add_argument("--modes", type=_csv(), help="infer, train")
    run.add_argument("--dtypes", type=_csv(), help="fp32, tf32, fp16, bf16")
    run.add_argument("--batch-sizes", type=_csv(int), help="e.g. 64,256")
    run.add_argument("--memory-format", type=_csv(), help="nchw, channels_last")
    run.add_argument("--input-size", type=int, help="square input size for models (default: the suite's, "
                                                     "else each model's native size)")
    run.add_argument("--warmup", type=int, help="untimed iterations before timing")
    run.add_argument("--repeats", type=int, help="timed iterations (at least)")
    run.add_argument("--cuda-graphs", action="store_true",
                     help="time kernels by replaying a captured CUDA graph (hides launch overhead)")
    run.add_argument("--device", help="cpu, cuda:N, or all (one worker per visible GPU); default cuda:0 or cpu")
    run.add_argument("--out", help="results file (*.jsonl) or directory (default results/runs/)")
    run.add_argument("--resume", action="store_true",
                     help="skip configurations already in the output file (a directory: its newest file "
                          "of this suite)")
    run.add_argument("--worker-memory-limit", type=int, metavar="BYTES",
                     help="cap each worker's memory beyond its start-up size; going over gives an 'oom' row")
    run.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    run.set_defaults(func=cmd_run)
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
