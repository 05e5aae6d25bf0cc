"""Data-parallel training rows (``world_size`` > 1): DistributedDataParallel on N ranks, one
process each, the batch size per rank.

**Processes.** :func:`run_model` runs in the harness's worker, a daemon process, which may not
start children through ``multiprocessing``; it starts the ranks as ``python -m bench.distributed``
with :mod:`subprocess`, in the worker's process group, and each rank first arms
:func:`bench.lifetime.die_with_parent`: the runner kills the worker at its timeout, and no rank
outlives it. The ranks meet through a ``torch.distributed.FileStore`` in a temporary directory,
which also holds the configuration (JSON), rank 0's measurement, each failed rank's error and
every rank's stdout and stderr; nothing listens on a network interface, and the collectives'
sockets stay on the loopback interface (``GLOO_SOCKET_IFNAME``, ``NCCL_SOCKET_IFNAME``: every
rank is on this host). On GPUs (the configuration's ``rank_gpus``, physical ids) every rank sees
those GPUs and rank r runs on ``cuda:r`` under NCCL; on the CPU the ranks run gloo and share the
cores equally. Each rank inherits the worker's memory cap (``--worker-memory-limit``). The worker
waits for the ranks; if one fails, it kills the others (a rank left alone waits in its next
collective for good) and raises the failure, which becomes the row's error, naming the rank.

**Correctness check.** Before timing, one SGD step of the eager fp32 model in eval mode on N
ranks, each on its slice of one global batch, must leave the same parameters as one step of an
identical single-process copy on the whole batch (``grad_rel_error``: the relative error of the
parameter updates, rank 0's against the copy's; judged by ``workloads.GRAD_TOLERANCE["fp32"]``).
The loss is a mean over the batch, so DDP's average of the ranks' gradients is the gradient of the
whole batch exactly when every rank's gradients reach every other: this catches buckets that are
never reduced, gradients summed rather than averaged, and ranks whose weights differ at the start
(DDP broadcasts rank 0's). Eval mode, because only there is each image's output a function of that image alone:
in training BatchNorm normalises by the statistics of each rank's own slice (by design of
DDP; ``SyncBatchNorm`` would share them) and dropout draws its masks at random, so a training
step on N ranks is a different computation from one on the concatenated batch, and nothing is
checked of how the ranks' BatchNorm statistics differ. The check runs the eager model in fp32,
whatever the row's backend and dtype: it checks the distribution of the step, not the backend's
kernels or the dtype's rounding, which the one-rank row checks.

**Timing.** Ranks must make the same calls to the collectives or they deadlock, so the adaptive
loop of :func:`bench.timing.time_function` runs here in step: every rank times its steps (CUDA
events on a GPU, the host clock on a CPU), and after each batch of ``repeats`` steps the ranks
all-reduce the batch's times with MAX (a data-parallel step lasts as long as its slowest rank),
so every rank holds the same samples and :func:`bench.timing.enough` decides the same everywhere.
Rank 0 reports the samples, the peak memory of the hungriest rank and the check; ``bench.results``
derives images/s over all ranks from ``world_size``. The timed model is the backend's model inside
DDP, but torch.compile's goes outside it (see :func:`train_rank`).
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from . import progress
from .lifetime import die_with_parent
from .errors import one_line
from .progress import phase
from .timing import (EVENTS, HOST_CLOCK, WARMUP_MIN_CALLS, Cuda, enough, event_timer, gc_disabled,
                     host_clock_timer, summarize)

CONFIG_FILE = "config.json"
RESULT_FILE = "result.json"
PHASE_FILE = "phase"
STORE_FILE = "store"
POLL_S = 0.05
STDERR_TAIL_LINES = 5
# The check's global batch (the same on every rank), and its step's learning rate: large enough
# that the update stands well above the fp32 rounding of the weights it is the difference of.
CHECK_SEED = 1
CHECK_LR = 0.1
# As bench.timing.time_function's cap: the loop ends whatever the stopping rule says.
MAX_STEPS = 10_000


class RankFailed(RuntimeError):
    """A rank exited with an error or was killed; the message names the rank."""


# --- the worker's side ---------------------------------------------------------------------------

def run_model(config: dict, device: torch.device) -> dict:
    """The measurement columns of a training row on ``config["world_size"]`` ranks (module docstring).

    ``config["rank_workload"]`` ("module:function", called in each rank as
    ``function(config, device, rank, world_size)``, its return value rank 0's measurement) replaces
    the DDP training step, as ``workload`` replaces a worker's: tests plant failing ranks through it."""
    world_size = config["world_size"]
    directory = Path(tempfile.mkdtemp(prefix="bench-ddp-"))
    ranks: list[subprocess.Popen] = []
    try:
        (directory / CONFIG_FILE).write_text(json.dumps(config, default=str))
        phase(f"starting {world_size} ranks")
        environment = rank_environment(config)
        for rank in range(world_size):
            with open(directory / f"rank{rank}.out", "wb") as out, open(directory / f"rank{rank}.err", "wb") as err:
                ranks.append(subprocess.Popen(
                    [sys.executable, "-m", "bench.distributed", str(directory), str(rank), str(world_size),
                     str(os.getpid())], stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=environment))
        wait_for_ranks(ranks, directory)
        result_path = directory / RESULT_FILE
        if not result_path.is_file():
            raise RankFailed(f"rank 0 of {world_size} exited without a measurement")
        return json.loads(result_path.read_text())
    finally:
        stop(ranks)
        shutil.rmtree(directory, ignore_errors=True)


def rank_environment(config: dict) -> dict:
    """The ranks' environment: this process's, its import path (custom rank workloads import as the
    worker does), the GPUs of the ranks and the loopback interface for the collectives' sockets."""
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    if sys.platform.startswith("linux"):
        environment["GLOO_SOCKET_IFNAME"] = environment["NCCL_SOCKET_IFNAME"] = "lo"
    if config.get("rank_gpus"):
        environment["CUDA_VISIBLE_DEVICES"] = config["rank_gpus"]
    return environment


def wait_for_ranks(ranks: list[subprocess.Popen], directory: Path) -> None:
    """Until every rank has exited with status 0; :class:`RankFailed` as soon as one has not.
    Passes rank 0's phases on to the runner's progress line."""
    shown = None
    while True:
        codes = [rank.poll() for rank in ranks]
        if any(code not in (None, 0) for code in codes):
            raise failure(codes, directory)
        if all(code == 0 for code in codes):
            return
        try:
            now = (directory / PHASE_FILE).read_text()
        except OSError:
            now = None
        if now and now != shown:
            phase(now)
            shown = now
        time.sleep(POLL_S)


def failure(codes: list[int | None], directory: Path) -> RankFailed:
    """The failure of the rank that failed first. A rank that died without saying why (a signal,
    the kernel's OOM killer) comes first: the others' errors are then its peers' lost connections.
    Else the rank whose error was written first, for the same reason."""
    world_size = len(codes)
    errors = {}
    for rank in range(world_size):
        try:
            errors[rank] = json.loads((directory / f"rank{rank}.error").read_text())
        except (OSError, ValueError):
            pass
    silent = [rank for rank, code in enumerate(codes) if code not in (None, 0) and rank not in errors]
    if silent:
        rank = silent[0]
        code = codes[rank]
        what = f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
        message = f"rank {rank} of {world_size} {what}"
    else:
        rank = min(errors, key=lambda r: errors[r]["time"])
        message = f"rank {rank} of {world_size}: {errors[rank]['error']}"
    tail = stderr_tail(directory / f"rank{rank}.err")
    return RankFailed(message + ("\n" + tail if tail else ""))


def stderr_tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-STDERR_TAIL_LINES:])


def stop(ranks: list[subprocess.Popen]) -> None:
    """Kill every rank still running, and reap them all."""
    for rank in ranks:
        if rank.poll() is None:
            rank.kill()
    for rank in ranks:
        rank.wait()


# --- a rank --------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> None:
    """A rank: ``python -m bench.distributed DIRECTORY RANK WORLD_SIZE PARENT_PID``."""
    directory, rank, world_size, parent_pid = argv or sys.argv[1:]
    directory, rank, world_size = Path(directory), int(rank), int(world_size)
    die_with_parent(int(parent_pid))
    # As the worker: the runner decides what Ctrl-C stops, and ends the ranks with the worker.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        config = json.loads((directory / CONFIG_FILE).read_text())
        if rank == 0:
            progress.listen(lambda name: write_atomically(directory / PHASE_FILE, name))
        result = run_rank(config, directory, rank, world_size)
        if rank == 0:
            write_atomically(directory / RESULT_FILE, json.dumps(result))
    except BaseException as error:  # noqa: BLE001 - every failure reaches the worker, named
        traceback.print_exc()
        sys.stderr.flush()
        write_atomically(directory / f"rank{rank}.error", json.dumps({"time": time.time(), "error": one_line(error)}))
        os._exit(1)  # not through torch.distributed's exit handlers, which may wait for the peers


def write_atomically(path: Path, text: str) -> None:
    """The reader sees the whole text or nothing."""
    part = path.with_name(path.name + ".part")
    part.write_text(text)
    os.replace(part, path)


def run_rank(config: dict, directory: Path, rank: int, world_size: int) -> dict:
    """Joins the process group, runs the rank's workload and leaves the group."""
    if config.get("rank_gpus"):
        device = torch.device("cuda", rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        device = torch.device("cpu")
        backend = "gloo"
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world_size))
    store = dist.FileStore(str(directory / STORE_FILE), world_size)
    dist.init_process_group(backend, store=store, rank=rank, world_size=world_size)
    try:
        target = config.get("rank_workload")
        if target:
            module, _, function = target.partition(":")
            return getattr(importlib.import_module(module), function)(config, device, rank, world_size)
        return train_rank(config, device, rank, world_size)
    finally:
        dist.destroy_process_group()


def ddp(module: torch.nn.Module, device: torch.device, **options) -> DistributedDataParallel:
    return DistributedDataParallel(module, device_ids=[device] if device.type == "cuda" else None, **options)


def train_rank(config: dict, device: torch.device, rank: int, world_size: int) -> dict:
    """One rank of a data-parallel training row: the check, then the timed steps; rank 0's
    return value is the row's measurement (the others' is ignored)."""
    import models
    from models.protocols import VIEWS_PER_IMAGE

    from .backends import get_backend
    from .workloads import (GRAD_TOLERANCE, MODEL_TOLERANCE, memory_format_of, peak_rss_bytes, precision,
                            reset_peak_rss, training_step)

    phase("building")
    torch.manual_seed(0)  # the same initial weights on every rank (DDP also broadcasts rank 0's)
    fmt = memory_format_of(config["memory_format"])
    eager = models.create(config["name"]).to(device=device, memory_format=fmt)

    phase("checking")
    result = check(eager, config, device, rank, world_size)
    result.update(tolerance=MODEL_TOLERANCE["fp32"], grad_tolerance=GRAD_TOLERANCE["fp32"])

    if config["backend"] == "compile":
        # torch.compile goes outside DDP, as PyTorch recommends: dynamo then splits the graph at DDP's
        # gradient buckets, so their all-reduces overlap the backward.
        model = get_backend("compile").model(ddp(eager, device), device)
    else:
        model = ddp(get_backend(config["backend"]).model(eager, device), device)
    generator = torch.Generator().manual_seed(1000 + rank)  # each rank its own images
    batch, size = config["batch_size"], config["input_size"]
    x = torch.randn(batch, 3, size, size, generator=generator).to(device).contiguous(memory_format=fmt)
    labels = torch.randint(0, 1000, (batch,), generator=generator).to(device)
    step = training_step(model, x, labels, config["dtype"], device)

    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    else:
        reset_peak_rss()
    with precision(config["dtype"]):
        result.update(timed_steps(step, device, config))
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else peak_rss_bytes()
    peak = torch.tensor([-1 if peak is None else peak], dtype=torch.int64, device=device)
    dist.all_reduce(peak, op=dist.ReduceOp.MAX)
    result["peak_memory_bytes"] = None if peak.item() < 0 else peak.item()
    result["views_per_image"] = VIEWS_PER_IMAGE["single"]  # training has no test protocol
    result["message"] = (f"DDP: {world_size} ranks, {dist.get_backend()}; check: one eager fp32 step on "
                         f"{world_size} ranks vs one process on the concatenated batch (eval mode)")
    return result


def check(eager: torch.nn.Module, config: dict, device: torch.device, rank: int, world_size: int) -> dict:
    """``grad_rel_error`` of one DDP step against one step on the concatenated batch (module
    docstring), on rank 0; an empty dict on the others. Copies of ``eager`` take the steps, so the
    timed model starts from the weights every rank built."""
    from .workloads import memory_format_of

    fmt = memory_format_of(config["memory_format"])
    batch, size = config["batch_size"], config["input_size"]
    generator = torch.Generator().manual_seed(CHECK_SEED)  # the same global batch on every rank
    images = torch.randn(world_size * batch, 3, size, size, generator=generator)
    labels = torch.randint(0, 1000, (world_size * batch,), generator=generator)
    mine = slice(rank * batch, (rank + 1) * batch)
    # Eval mode leaves a model's auxiliary heads unused; DDP must know to expect no gradient for them.
    replica = ddp(copy.deepcopy(eager).eval(), device, find_unused_parameters=True)
    update = sgd_update(replica, images[mine], labels[mine], device, fmt)
    del replica
    if rank != 0:
        return {}
    expected = sgd_update(copy.deepcopy(eager).eval(), images, labels, device, fmt)
    return {"grad_rel_error": update_error(update, expected)}


def sgd_update(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, device: torch.device,
               fmt) -> torch.Tensor:
    """How one plain SGD step in fp32 (no TF32) moves every parameter, flattened, on the CPU."""
    from .workloads import classification_loss, precision

    parameters = list(model.parameters())
    before = torch.cat([p.detach().float().flatten().cpu() for p in parameters])
    optimizer = torch.optim.SGD(parameters, lr=CHECK_LR)
    optimizer.zero_grad(set_to_none=True)
    with precision("fp32"):
        classification_loss(model(images.to(device).contiguous(memory_format=fmt)), labels.to(device)).backward()
        optimizer.step()
    return torch.cat([p.detach().float().flatten().cpu() for p in parameters]) - before


def update_error(update: torch.Tensor, expected: torch.Tensor) -> float:
    """The relative error of a parameter update against the expected one (``kernels.relative_error``)."""
    from kernels import relative_error

    return relative_error(update, expected)


def timed_steps(step, device: torch.device, config: dict) -> dict:
    """Warm-up, then batches of timed steps, in step on every rank (module docstring): the columns
    of :func:`bench.timing.summarize`, with ``timing_method`` and ``host_ms``."""
    phase("warming up")
    with gc_disabled():
        for _ in range(max(config["warmup"], WARMUP_MIN_CALLS)):  # a count: every rank makes as many steps
            step()
        align_ranks(device)
        phase("timing")
        times: list[float] = []
        host_ms: list[float] = []
        # Each step timed as the one-process rows time theirs: CUDA events on a GPU, the host clock on a CPU.
        step_times = event_timer(Cuda(device), step, None) if device.type == "cuda" else host_clock_timer(step)
        started = time.perf_counter()
        while True:
            count = min(max(config["repeats"], 1), MAX_STEPS - len(times))
            batch_started = time.perf_counter()
            batch = step_times(count)
            batch_ms = (time.perf_counter() - batch_started) * 1e3 / count
            # The slowest rank's step times, its host time and its elapsed time: every rank then holds
            # the same numbers, and decides alike whether to go on.
            merged = torch.tensor(batch + [batch_ms, time.perf_counter() - started], dtype=torch.float64,
                                  device=device)
            dist.all_reduce(merged, op=dist.ReduceOp.MAX)
            merged = merged.tolist()
            times += merged[:-2]
            host_ms.append(merged[-2])
            if enough(times, merged[-1], repeats=config["repeats"], min_time_s=config.get("min_time_s", 0.0),
                      max_time_s=config.get("max_time_s", 0.0), max_repeats=MAX_STEPS):
                break
    result = summarize(times)
    if device.type == "cuda":
        # Events around steps launched back to back, synchronised at each batch's end: the host time
        # per step of that plain loop is the batch's wall time over its steps.
        result.update(timing_method=EVENTS, host_ms=statistics.median(host_ms))
    else:  # the host clock timed each step: one measurement
        result.update(timing_method=HOST_CLOCK, host_ms=result["device_ms"])
    return result


def align_ranks(device: torch.device) -> None:
    """Every rank's queued work done, and every rank here: the timed steps start together."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    dist.all_reduce(torch.zeros(1, device=device))


if __name__ == "__main__":
    main()
