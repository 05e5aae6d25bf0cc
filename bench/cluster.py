"""A suite fanned out over a Ray cluster: ``python -m bench run --cluster ADDRESS``.

Ray schedules, retries and moves the rows; the measuring is the local run's own:

- Every configuration is one Ray task asking for what it runs on: one GPU (``world_size`` GPUs
  for a data-parallel row) on a cluster with GPUs, else one CPU (``world_size`` CPUs); with
  ``--accelerator-type NAME``, Ray's accelerator-type resource too, so a suite can target one
  kind of GPU in a mixed fleet.
- The task runs a local :class:`bench.runner.Runner` for that one configuration on the GPU Ray
  gave it (Ray sets the task's ``CUDA_VISIBLE_DEVICES``), so its worker process, timeout, and
  error and OOM rows are exactly a local run's. The row comes back with the task's log lines and
  the Ray node's id (``cluster_node``); ``host``, ``device_name`` and ``device_uuid`` say where it
  ran, as on any row.
- The driver alone writes the results file, a row as each task finishes (``ray.wait``), through
  the same :class:`bench.results.ResultsWriter`.
- A task whose worker process or node dies is retried by Ray (``retries``, Ray's ``max_retries``
  for system failures); after the last retry it becomes an ``error`` row saying so. Ctrl-C (or
  SIGTERM) cancels the tasks still running and keeps every row written; ``--resume`` skips the
  configurations the file holds a row of, on any node.
- Every node needs the project installed (the same commit: rows record ``git_commit``); the
  driver needs Ray (``pip install ".[cluster]"``), imported only here.

Ray's own processes listen on the node's interfaces (``ray start --node-ip-address``); the
tests start their cluster inside a network namespace of their own, whose only interface is loopback.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path

from . import results
from .errors import one_line
from .runner import Runner, RunOptions, describe, format_duration

ADDRESS_FORMS = "auto (a cluster started here with 'ray start'), HOST:PORT (its GCS), or ray://HOST:PORT (Ray Client)"
ACCELERATOR_PREFIX = "accelerator_type:"  # Ray's resource naming a node's kind of GPU
TASK_RETRIES = 2  # Ray's max_retries: reruns of a task whose worker process or node died
REACH_TIMEOUT_S = 5.0
# Ray Client's proxy starts a server process per driver, forked while its gRPC threads run; on a
# loaded machine that start fails now and then (seen here: the first ray:// driver after a
# cluster's start, 2 runs in 6), and the next try succeeds.
CLIENT_INIT_TRIES = 3


class ClusterError(ValueError):
    """An unusable ``--cluster`` address or request: one line, exit status 2, nothing written."""


def check_address(address: str) -> tuple[str, int] | None:
    """The (host, port) that ``address`` names, None for ``auto``; a :class:`ClusterError` for
    anything else."""
    if address == "auto":
        return None
    match = re.fullmatch(r"(?:ray://)?(\[[^\]]+\]|[^:/\s]+):(\d{1,5})", address)
    if match is None or not 0 < int(match[2]) < 65536:
        raise ClusterError(f"--cluster {address!r}: expected {ADDRESS_FORMS}")
    return match[1].strip("[]"), int(match[2])


def recorded_address() -> tuple[str | None, str]:
    """Where ``auto`` points, found as Ray finds it: ``RAY_ADDRESS``, else the address that
    ``ray start`` recorded in ``ray_current_cluster`` under Ray's temporary directory; and where
    that came from."""
    if os.environ.get("RAY_ADDRESS"):
        return os.environ["RAY_ADDRESS"], "RAY_ADDRESS"
    temp = os.environ.get("RAY_TMPDIR") or (os.environ.get("TMPDIR") if sys.platform.startswith("linux") else None)
    path = Path(temp or "/tmp") / "ray" / "ray_current_cluster"
    try:
        return path.read_text().strip() or None, str(path)
    except OSError:
        return None, str(path)


def resolve_address(address: str) -> tuple[str, str]:
    """The address to connect to, checked, and what the user's ``address`` stands for in errors."""
    if address != "auto":
        check_address(address)
        return address, address
    recorded, source = recorded_address()
    if recorded is None:
        raise ClusterError(f"--cluster auto: no Ray cluster is recorded on this machine (no RAY_ADDRESS, no {source}); "
                           f"start one with 'ray start --head' or name its address")
    try:
        if check_address(recorded) is None:  # "auto" again
            raise ClusterError(recorded)
    except ClusterError:
        raise ClusterError(f"--cluster auto: {source} holds {recorded!r}; expected HOST:PORT or ray://HOST:PORT") from None
    return recorded, f"auto ({recorded}, from {source})"


def connect(address: str):
    """``ray``, connected to the cluster at ``address`` as a driver; a one-line
    :class:`ClusterError` when Ray is not installed or nothing answers there."""
    resolved, named = resolve_address(address)
    try:
        import ray
    except ImportError:
        raise ClusterError("--cluster needs Ray: pip install '.[cluster]'") from None
    # Ray itself retries an unreachable address for a minute or more: ask once, briefly.
    try:
        socket.create_connection(check_address(resolved), timeout=REACH_TIMEOUT_S).close()
    except OSError as error:
        raise ClusterError(f"--cluster {named}: nothing answers there ({error.strerror or error})") from None
    os.environ["RAY_ADDRESS"] = resolved  # Ray prefers RAY_ADDRESS to its argument: make them agree
    for attempt in range(1, CLIENT_INIT_TRIES + 1):
        try:
            ray.init(address=resolved, logging_level="ERROR", log_to_driver=False)
            return ray
        except ConnectionAbortedError as error:  # Ray Client: the server process for this driver did not start
            if attempt == CLIENT_INIT_TRIES:
                lines = [line.strip() for line in str(error).splitlines() if line.strip()]
                raise ClusterError(f"--cluster {named}: Ray Client could not start this driver's server "
                                   f"({CLIENT_INIT_TRIES} tries; last: {lines[-1] if lines else 'no reason given'})") from None
            print(f"--cluster {named}: Ray Client could not start this driver's server; trying again "
                  f"({attempt + 1} of {CLIENT_INIT_TRIES})", file=sys.stderr)
            ray.shutdown()
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise ClusterError(f"--cluster {named}: {one_line(error)}") from None


def accelerator_types(ray) -> list[str]:
    """The GPU kinds the cluster's nodes advertise (Ray's ``accelerator_type:NAME`` resources)."""
    return sorted(key[len(ACCELERATOR_PREFIX):] for key in ray.cluster_resources() if key.startswith(ACCELERATOR_PREFIX))


def check_accelerator_type(ray, name: str | None) -> None:
    if name is None:
        return
    types = accelerator_types(ray)
    if name not in types:
        has = f"it has {', '.join(types)}" if types else "its nodes advertise none (CPU nodes only)"
        raise ClusterError(f"--accelerator-type {name}: no node of the cluster has it; {has}")


def has_gpus(ray) -> bool:
    return ray.cluster_resources().get("GPU", 0) > 0


def device_kind(ray) -> str:
    """The device a cluster's configurations are expanded for (a suite's timing defaults and
    default name): a GPU's where the cluster has GPUs, else a CPU's."""
    return "cuda:0" if has_gpus(ray) else "cpu"


def check_world_size(ray, configs: list[dict]) -> None:
    """A data-parallel row's ranks run on one node: the largest world size must fit the GPUs (on a
    CPU-only cluster, the CPUs) of the largest node."""
    ranks = max((config.get("world_size") or 1 for config in configs), default=1)
    resource = "GPU" if has_gpus(ray) else "CPU"
    largest = max((node["Resources"].get(resource, 0) for node in ray.nodes() if node.get("Alive")), default=0)
    if ranks > largest:
        raise ClusterError(f"--world-size {ranks}: the cluster's largest node has {int(largest)} "
                           f"{resource}s, and a rank needs one")


def output_path(out: str | None, suite: str, resume: bool) -> Path:
    """As a local run names its file, with ``cluster`` for the device: a .jsonl path as is; a
    directory gets ``SUITE-cluster-TIME.jsonl``, or with ``resume`` its newest such file."""
    if out and out.endswith(".jsonl"):
        return Path(out)
    directory = Path(out) if out else Path("results") / "runs"
    if resume:
        name = re.compile(rf"{re.escape(suite)}-cluster-\d{{8}}-\d{{6}}\.jsonl")
        previous = sorted((p for p in directory.glob("*.jsonl") if name.fullmatch(p.name)),
                          key=lambda p: p.stat().st_mtime)
        if previous:
            return previous[-1]
    return directory / results.run_file_name(suite, "cluster")


# -- the task, on a node -------------------------------------------------------------------

# Each Ray worker process keeps the environment of each GPU it measured on (the copy bandwidth
# and matrix rate take seconds), as a local run keeps one per device.
_ENVIRONMENTS: dict[tuple[str, str], dict] = {}


def run_configuration(config: dict, run_id: str, memory_limit_bytes: int | None, compile_cache: str | None) -> dict:
    """One configuration on this node, by a local runner: its row and its log lines."""
    import ray

    gpus = ray.get_gpu_ids()
    device = "cuda:0" if gpus else "cpu"  # Ray set CUDA_VISIBLE_DEVICES to the task's GPUs
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "cpu")
    if gpus and (config.get("world_size") or 1) > 1:
        config = {**config, "rank_gpus": visible}
    environments = _ENVIRONMENTS.setdefault((run_id, visible), {})
    lines: list[str] = []
    options = RunOptions(run_id=run_id, devices=[device], memory_limit_bytes=memory_limit_bytes, progress=False,
                         log=lines.append, environments=environments, compile_cache=compile_cache)
    with tempfile.TemporaryDirectory(prefix="bench-task-") as directory:
        rows = Runner([config], Path(directory) / "row.jsonl", options).run()
    row = rows[0]
    if gpus:  # the GPU's index on its node, not the task's own cuda:0
        row["device"] = f"cuda:{visible}"
    row["cluster_node"] = ray.get_runtime_context().get_node_id()
    return {"row": row, "log": lines}


# -- the driver ----------------------------------------------------------------------------

@contextlib.contextmanager
def _signals_recorded(*signums: int):
    """While the driver waits on Ray, each of ``signums`` (those whose handler is Python's) is
    recorded in the yielded list instead of acting, and the driver's loop acts on it between two
    waits. Ray's waits run Python's signal handlers themselves (its ``check_signals``) and raise
    any KeyboardInterrupt again as a plain one, so SIGTERM's ``Terminated`` came out as Ctrl-C
    (exit 130, not 143). A handler that only records sends no exception through Ray. The first
    signal puts the previous handlers back, so a second acts at once."""
    received: list[int] = []
    previous = {signum: signal.getsignal(signum) for signum in signums}
    recorded = [signum for signum, handler in previous.items() if callable(handler)]

    def record(signum, frame):
        received.append(signum)
        for each in recorded:
            signal.signal(each, previous[each])

    for signum in recorded:
        signal.signal(signum, record)
    try:
        yield received
    finally:
        for signum in recorded:
            signal.signal(signum, previous[signum])


def _act_on(signum: int) -> None:
    """Run ``signum``'s handler (put back by :func:`_signals_recorded`) as if the signal came now."""
    signal.getsignal(signum)(signum, None)


class ClusterRunner:
    """The cluster's counterpart of :class:`bench.runner.Runner`: the same ``rows``, ``done``,
    ``not_run`` and ``run()``, with Ray tasks for workers."""

    def __init__(self, ray, configs: list[dict], out_path: Path, options: RunOptions,
                 accelerator_type: str | None = None, retries: int = TASK_RETRIES) -> None:
        self.ray = ray
        self.configs = configs
        self.out_path = Path(out_path)
        self.options = options
        self.accelerator_type = accelerator_type
        self.retries = retries
        self.rows: list[dict] = []
        self.done = 0
        self.not_run: list[dict] = []
        self.gpus = has_gpus(ray)

    def _resources(self, config: dict) -> dict:
        ranks = config.get("world_size") or 1
        resources = {"num_gpus": ranks, "num_cpus": 1} if self.gpus else {"num_cpus": ranks}
        if self.accelerator_type:
            resources["accelerator_type"] = self.accelerator_type
        return resources

    def run(self) -> list[dict]:
        ray = self.ray
        pending = list(self.configs)
        if self.options.resume and self.out_path.exists():
            pending = results.unfinished(pending, results.read_rows(self.out_path))
            self.options.log(f"resume: {len(self.configs) - len(pending)} of {len(self.configs)} configurations "
                             f"already in {self.out_path}")
        task = ray.remote(run_configuration)
        started = time.time()
        tasks = {task.options(max_retries=self.retries, name=f"bench {describe(config)}", **self._resources(config))
                 .remote(config, self.options.run_id, self.options.memory_limit_bytes, self.options.compile_cache): config
                 for config in pending}
        with results.ResultsWriter(self.out_path) as writer, _signals_recorded(signal.SIGINT, signal.SIGTERM) as received:
            try:
                while tasks and not received:
                    ready, _ = ray.wait(list(tasks), num_returns=1, timeout=1.0)
                    for ref in ready:
                        row = self._write(writer, tasks.pop(ref), ref)
                        self._progress(row, len(pending), started)
            finally:
                if tasks:  # a signal or an error: their workers die with the Ray workers (die_with_parent)
                    for ref in tasks:
                        ray.cancel(ref, force=True)
                    how = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated by SIGTERM"}.get(
                        received[0] if received else None, "stopped by an error")
                    self.options.log(f"{how}: {self.done} rows written to {self.out_path}; "
                                     f"{len(tasks)} tasks cancelled")
        if received:
            _act_on(received[0])  # as if it came now: KeyboardInterrupt, or the command line's SIGTERM handler
        order = {results.resume_key(config): index for index, config in enumerate(self.configs)}
        return sorted(self.rows, key=lambda row: order.get(results.resume_key(row), len(order)))  # the suite's order

    def _write(self, writer: results.ResultsWriter, config: dict, ref) -> dict:
        try:
            answer = self.ray.get(ref)
            row, lines = answer["row"], answer["log"]
        except self.ray.exceptions.RayError as error:  # the task's worker or node died, retries spent
            message = (f"the Ray task failed after {self.retries} retries: {one_line(error)}"
                       if self.retries else f"the Ray task failed (no retries): {one_line(error)}")
            row = results.make_row({**config, "device": "cluster"}, {"status": "error", "message": message},
                                   {"run_id": self.options.run_id})
            lines = [f"error     {describe({**config, 'device': 'cluster'})}  ({message})"]
        row["scaling_efficiency"] = results.scaling_efficiency(row, self.rows)
        writer.write(row)
        self.rows.append(row)
        self.done += 1
        for line in lines:
            self.options.log(line)
        return row

    def _progress(self, row: dict, total: int, started: float) -> None:
        """A line per finished row (tasks finish in any order, so no bar): count, time, status and what."""
        if self.options.progress:
            print(f"[{self.done}/{total}] {format_duration(time.time() - started)}  {row['status']:9} "
                  f"{describe(row)}" + (f" on {row['host']}" if row.get("host") else ""), file=sys.stderr, flush=True)
