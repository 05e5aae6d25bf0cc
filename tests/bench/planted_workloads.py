"""Workloads that fail on purpose, for the runner's isolation tests (run inside the worker)."""

import os
import signal
import time


def succeed(config, device):
    return {"device_ms": 1.0, "device_times_ms": [1.0], "iqr_ms": 0.0, "samples": 1}


def raise_error(config, device):
    raise RuntimeError("planted failure\nsecond line")


def allocate_too_much(config, device):
    import torch

    torch.empty(8 << 30, dtype=torch.uint8)  # 8 GiB, over the worker's limit
    return succeed(config, device)


def die_by_signal(config, device):
    os.kill(os.getpid(), signal.SIGKILL)


def sleep_forever(config, device):
    time.sleep(3600)


def wrong_answer(config, device):
    return {**succeed(config, device), "rel_error": 0.5, "tolerance": 1e-3}


def wrong_answer_with_a_message(config, device):
    return {**wrong_answer(config, device), "message": "paths: forward=triton-grouped"}


def nan_answer(config, device):
    return {**succeed(config, device), "rel_error": float("nan"), "tolerance": 1e-3}


def gradient_within_its_bound(config, device):
    return {**succeed(config, device), "rel_error": 1e-6, "tolerance": 1e-3, "grad_rel_error": 5e-3,
            "grad_tolerance": 1e-2}


def gradient_over_its_bound(config, device):
    return {**succeed(config, device), "rel_error": 1e-6, "tolerance": 1e-3, "grad_rel_error": 5e-2,
            "grad_tolerance": 1e-2}


def sleep_forever_telling_its_pid(config, device):
    """Sleeps after writing the worker's pid to $PLANTED_PID_FILE, so a test can watch the worker."""
    path = os.environ["PLANTED_PID_FILE"]
    with open(path + ".partial", "w") as f:
        f.write(str(os.getpid()))
    os.replace(path + ".partial", path)  # whole or absent: never a half-written pid
    sleep_forever(config, device)


PHASES = ("building", "compiling, checking", "warming up", "timing")


def report_phases(config, device):
    from bench.progress import phase

    for name in PHASES:
        phase(name)
    return succeed(config, device)


def sleep_once_telling_its_pids(config, device):
    """The first time, writes the worker's pid and its parent's to ``config["pid_file"]`` and
    sleeps, so a test can kill the process that runs it; once the file exists, succeeds."""
    path = config["pid_file"]
    if os.path.exists(path):
        return succeed(config, device)
    with open(path + ".partial", "w") as f:
        f.write(f"{os.getpid()} {os.getppid()}")
    os.replace(path + ".partial", path)
    sleep_forever(config, device)
