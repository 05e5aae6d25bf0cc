"""Run ``python -m bench`` in a subprocess, as a user would, from any working directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from tests import REPO


def run_bench(*args, cwd=None, interpret: bool = False, timeout: float = 600,
              env: dict | None = None) -> subprocess.CompletedProcess:
    """``interpret`` sets TRITON_INTERPRET=1 for the child; otherwise it is removed. ``env``: more
    variables for the child."""
    env = {**{k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}, **(env or {})}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in [env.get("PYTHONPATH")] if p])
    if interpret:
        env["TRITON_INTERPRET"] = "1"
    return subprocess.run([sys.executable, "-m", "bench", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=env)


def as_from_a_terminal() -> None:
    """A child's ``preexec_fn``: SIGINT acts as it does for a command typed at a terminal. A test
    run started in the background of a shell without job control (``cmd &`` in a script, as CI
    may be) hands its children SIGINT ignored, and Python keeps that: Ctrl-C would do nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


# The worker imports the planted workloads by this name: the repository is on its path.
PLANTED = "tests.bench.planted_workloads"


def config(workload: str, name: str = "planted", timeout_s: float = 120) -> dict:
    """A model configuration whose workload is ``workload`` of ``planted_workloads`` (no model is built)."""
    return {"kind": "model", "name": name, "shape": None, "backend": "torch", "mode": "infer", "dtype": "fp32",
            "batch_size": 1, "memory_format": "nchw", "input_size": 8, "device": "cpu", "warmup": 0,
            "repeats": 1, "min_time_s": 0.0, "timeout_s": timeout_s, "workload": f"{PLANTED}:{workload}"}


class FakeClock:
    """``time.perf_counter`` for bench.timing (the ``clock`` fixture puts it there): still, except
    where the measured function moves it, so a timed repetition's length is known exactly."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now
