"""The worker process: runs configurations one at a time and sends back finished rows.

Every configuration runs in a worker, never in the process that writes the results, so a
crash, a CUDA error or an out-of-memory costs one row (status ``oom`` or ``error``, with the
message) and the run goes on. After any failure the worker exits, and the runner starts a
fresh one: a CUDA context that saw an error is not trusted for the next measurement. A worker
dies with the runner, however the runner ends, and leaves SIGINT and SIGTERM to the runner.

This module imports torch only inside the worker, after ``CUDA_VISIBLE_DEVICES`` has pinned
it to its GPU.
"""

from __future__ import annotations

import importlib
import os
import resource
import signal
import time
import traceback

from . import progress
from .errors import Skip, classify, one_line
from .lifetime import die_with_parent

def resolve_workload(config: dict):
    """``config["workload"]`` ("module:function") names a custom workload; else by kind, a model
    on more than one rank by :mod:`bench.distributed`."""
    from . import workloads

    target = config.get("workload")
    if target:
        module, _, function = target.partition(":")
        return getattr(importlib.import_module(module), function)
    if config["kind"] == "model" and (config.get("world_size") or 1) > 1:
        from . import distributed

        return distributed.run_model
    return {"model": workloads.run_model, "kernel": workloads.run_kernel}[config["kind"]]


def run_config(config: dict, device) -> tuple[dict, bool]:
    """The measurement columns for one configuration, and whether the worker is still sound."""
    from .environment import ClockSampler
    from .timing import between_batches

    started = time.time()
    measurement = {"started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started))}
    healthy = True
    try:
        with ClockSampler(device) as sampler, between_batches(sampler.sample):
            measurement.update(resolve_workload(config)(config, device))
        measurement.update(sampler.fields())
        measurement["status"] = "ok"
        verdict = judge(measurement, config["dtype"])
        if verdict:  # first, before what the workload said (e.g. which conv2d paths ran)
            message = " | ".join(m for m in (verdict, measurement.get("message")) if m)
            measurement.update(status="incorrect", message=message)
    except Skip as reason:
        measurement.update(status="skipped", message=str(reason))
    except Exception as error:  # noqa: BLE001 - every failure becomes a row
        measurement.update(status=classify(error), message=one_line(error))
        measurement["traceback"] = traceback.format_exc(limit=8)
        healthy = False
    measurement["wall_s"] = round(time.time() - started, 3)
    measurement["compile_cache"] = os.environ.get("TORCHINDUCTOR_CACHE_DIR")  # None: torch.compile's own default
    return measurement, healthy


def judge(measurement: dict, dtype: str) -> str | None:
    """Why the row is incorrect, or None: an error over its tolerance, or not a number."""
    tolerance = measurement.get("tolerance")
    if tolerance is None:
        return None
    grad_tolerance = measurement.get("grad_tolerance") or tolerance
    for what, bound in (("rel_error", tolerance), ("grad_rel_error", grad_tolerance)):
        error = measurement.get(what)
        if error is not None and not error <= bound:  # NaN fails too
            name = "gradient relative error" if what == "grad_rel_error" else "relative error"
            return f"{name} {error:.3g} exceeds the {dtype} tolerance {bound:g}"
    return None


def _sanitize(measurement: dict) -> dict:
    """JSON has no NaN: a non-finite error becomes None (the status already says incorrect)."""
    return {k: (None if isinstance(v, float) and v != v or v in (float("inf"), float("-inf")) else v)
            for k, v in measurement.items()}


def use_compile_cache(directory: str) -> None:
    """torch.compile keeps its compiled graphs, kernels and autotuning results in ``directory``
    (its FX graph cache forced on), so a later run with the same torch skips compilation."""
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = directory
    os.environ["TORCHINDUCTOR_FX_GRAPH_CACHE"] = "1"


def main(connection, device_name: str, visible_device: str | None, environment: dict | None,
         run_id: str, memory_limit_bytes: int | None, parent_pid: int, compile_cache: str | None = None) -> None:
    """Worker entry point (spawned): hello with the environment, then configs until None.

    ``visible_device``: what ``CUDA_VISIBLE_DEVICES`` becomes here (see ``runner.physical_gpu``);
    ``compile_cache``: Inductor's cache directory (else torch's own default)."""
    die_with_parent(parent_pid)
    # The runner decides what Ctrl-C, or a SIGTERM sent to the whole process group (timeout(1),
    # batch schedulers), stops: it keeps the finished rows and kills this worker itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if visible_device is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = visible_device
    if compile_cache is not None:
        use_compile_cache(compile_cache)
    import torch

    from . import environment as env_module

    device = torch.device(device_name)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if environment is None:
        environment = env_module.collect(device, run_id)
    if memory_limit_bytes is not None:
        # A cap on address space beyond what the worker already maps (torch maps a lot).
        with open("/proc/self/status") as f:
            vm_size = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
        limit = vm_size + memory_limit_bytes
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    connection.send(("hello", environment))

    progress.listen(lambda name: connection.send(("phase", name)))
    while True:
        config = connection.recv()
        if config is None:
            return
        measurement, healthy = run_config(config, device)
        connection.send(("row", _sanitize(measurement)))
        if not healthy:
            return
