"""The runner: hands configurations to worker processes and writes each row as it finishes.

One worker per device (``--device all``: one per visible GPU, all writing to one file). A
worker that dies (a signal, a segfault, a hard CUDA error) or overruns the configuration's
timeout is replaced, and the configuration it held becomes an ``error`` row. Ctrl-C (or SIGTERM,
raised as :class:`Terminated`) stops the workers; every row finished before it is already on
disk. Workers report the phase of their configuration, shown in the progress line. With
``resume``, configurations that the output file holds a row of, of the same suite and on one of
the run's devices (name, and uuid where known), are not run again. With a budget, no
configuration is handed out whose estimate (``cost_s``) would end it past the budget; from the
first such one on, every configuration left is logged as not run and listed in ``not_run``.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from pathlib import Path
from typing import Callable

from . import results, worker
from .devices import physical_gpu


@dataclass
class Worker:
    device: str  # as rows name it: "cpu" or "cuda:<index>", numbered as the caller sees its GPUs
    process: multiprocessing.Process
    connection: object
    environment: dict | None = None
    config: dict | None = None
    deadline: float = 0.0


@dataclass
class RunOptions:
    run_id: str
    devices: list[str]
    resume: bool = False
    memory_limit_bytes: int | None = None  # per worker, beyond its start-up footprint
    progress: bool = True
    log: Callable[[str], None] = lambda line: None
    environments: dict = field(default_factory=dict)  # device -> collected once per run
    budget_s: float | None = None  # seconds from the run's start after which no configuration is handed out
    cost_s: Callable[[dict], float] = lambda config: 0.0  # a configuration's estimated seconds
    compile_cache: str | None = None  # Inductor's cache directory for the workers


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised by the command's signal handler: the run stops as on Ctrl-C, rows kept."""


class Runner:
    def __init__(self, configs: list[dict], out_path: Path, options: RunOptions) -> None:
        self.configs = configs
        self.out_path = Path(out_path)
        self.options = options
        self.context = multiprocessing.get_context("spawn")
        self.rows: list[dict] = []
        self.started = time.time()
        self.done = 0
        self.total = len(configs)
        self.not_run: list[dict] = []  # left when the budget was spent

    # -- workers ---------------------------------------------------------------------------
    def _start(self, device: str) -> Worker:
        parent, child = self.context.Pipe()
        visible = None
        if device.startswith("cuda:"):
            visible = physical_gpu(int(device[5:]), os.environ.get("CUDA_VISIBLE_DEVICES"))
        device_in_worker = "cuda:0" if visible is not None else device
        process = self.context.Process(
            target=worker.main, daemon=True,
            args=(child, device_in_worker, visible, self.options.environments.get(device), self.options.run_id,
                  self.options.memory_limit_bytes, os.getpid(), self.options.compile_cache))
        process.start()
        child.close()
        return Worker(device, process, parent)

    def _hello(self, w: Worker) -> None:
        if not w.connection.poll(600):
            raise RuntimeError(f"the worker for {w.device} did not start within 600 s")
        kind, environment = w.connection.recv()
        w.environment = environment
        self.options.environments.setdefault(w.device, environment)

    @staticmethod
    def _stop(w: Worker, grace_s: float = 0.0) -> None:
        w.process.join(timeout=grace_s)
        if w.process.is_alive():
            w.process.kill()
        w.process.join(timeout=10)
        w.connection.close()

    # -- rows -----------------------------------------------------------------------------
    def _write(self, writer: results.ResultsWriter, w: Worker, measurement: dict) -> None:
        trace = measurement.pop("traceback", None)
        config = {**w.config, "device": w.device}
        row = results.make_row(config, measurement, w.environment or {})
        row["scaling_efficiency"] = results.scaling_efficiency(row, self.rows)
        writer.write(row)
        self.rows.append(row)
        self.done += 1
        what = describe(config)
        self.options.log(f"{row['status']:9} {what}" + (f"  ({row['message']})" if row.get("message") else ""))
        if trace:
            self.options.log(trace.rstrip())
        self._progress(what)

    def _progress(self, what: str, phase: str | None = None) -> None:
        """``what``: the configuration; ``phase``: what it is doing now, if it is still running."""
        if not self.options.progress:
            return
        total = self.total
        elapsed = time.time() - self.started
        eta = elapsed / self.done * (total - self.done) if self.done else 0
        bar = "#" * int(20 * self.done / total) if total else ""
        text = f"{phase}  {what}" if phase else what
        line = f"\r[{bar:<20}] {self.done}/{total}  ETA {format_duration(eta)}  {text[:60]:<60}"
        sys.stderr.write(line if sys.stderr.isatty() else line.lstrip("\r") + "\n")
        sys.stderr.flush()

    # -- the run --------------------------------------------------------------------------
    def run(self) -> list[dict]:
        pending = list(self.configs)
        self.total = len(pending)
        workers: list[Worker] = []
        with results.ResultsWriter(self.out_path) as writer:
            try:
                workers = [self._start(d) for d in self.options.devices]
                for w in workers:
                    self._hello(w)
                if self.options.resume:  # after the hellos: only rows of these very devices count as done
                    rows = results.read_rows(self.out_path)
                    pending = results.unfinished(pending, rows, [w.environment for w in workers])
                    self.options.log(f"resume: {self.total - len(pending)} of {self.total} configurations "
                                     f"already in {self.out_path}")
                    self.total = len(pending)
                self._loop(pending, workers, writer)
            except KeyboardInterrupt as stop:
                how = "terminated by SIGTERM" if isinstance(stop, Terminated) else "interrupted"
                self.options.log(f"{how}: {self.done} rows written to {self.out_path}")
                raise
            finally:
                for w in workers:
                    idle = w.process.is_alive() and w.config is None
                    if idle:
                        try:
                            w.connection.send(None)  # finish cleanly
                        except OSError:
                            idle = False
                    self._stop(w, grace_s=10 if idle else 0)
                if self.options.progress and sys.stderr.isatty():
                    sys.stderr.write("\n")
        return self.rows

    def _loop(self, queue: list[dict], workers: list[Worker], writer) -> None:
        while queue or any(w.config is not None for w in workers):
            for w in workers:
                if w.config is None and queue and self._over_budget(queue[0]):
                    self._give_up(queue)
                if w.config is None and queue:
                    w.config = queue.pop(0)
                    w.deadline = time.time() + w.config["timeout_s"]
                    w.connection.send(w.config)
            busy = [w for w in workers if w.config is not None]
            ready = wait([w.connection for w in busy] + [w.process.sentinel for w in busy], timeout=1.0)
            for i, w in enumerate(workers):
                if w.config is None:
                    continue
                if w.connection in ready or w.process.sentinel in ready:
                    try:
                        kind, message = w.connection.recv()
                    except (EOFError, OSError):  # died without a word
                        kind, message = "row", self._death(w)
                    if kind == "phase":
                        self._progress(describe({**w.config, "device": w.device}), phase=message)
                        continue
                    measurement = message
                elif time.time() > w.deadline:
                    measurement = {"status": "error",
                                   "message": f"timed out after {w.config['timeout_s']} s; worker killed"}
                else:
                    continue
                self._write(writer, w, measurement)
                w.config = None
                if measurement["status"] in ("oom", "error"):  # the worker exits (or is killed): replace it
                    self._stop(w)
                    if queue:
                        workers[i] = self._start(w.device)
                        self._hello(workers[i])

    def _over_budget(self, config: dict) -> bool:
        budget = self.options.budget_s
        return budget is not None and time.time() - self.started + self.options.cost_s(config) > budget

    def _give_up(self, queue: list[dict]) -> None:
        """The budget is spent: what is queued is not run; configurations in flight finish."""
        self.not_run += queue
        self.options.log(f"budget of {self.options.budget_s / 60:g} min spent: {len(queue)} configurations not run")
        for config in queue:
            self.options.log(f"not run (budget) {describe(config)}")
        queue.clear()

    @staticmethod
    def _death(w: Worker) -> dict:
        w.process.join(timeout=5)
        code = w.process.exitcode
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exited with status {code}"
        return {"status": "error", "message": f"worker {how} while running this configuration"}


def describe(config: dict) -> str:
    what = config["name"] if config["kind"] == "model" else f"{config['name']} {config['shape']}"
    ranks = f" {config['world_size']} ranks" if (config.get("world_size") or 1) > 1 else ""
    return (f"{what} {config['backend']} {config['mode']} {config['dtype']} bs{config['batch_size']}{ranks} "
            f"{config['memory_format']} {config['device']}")


def format_duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"
