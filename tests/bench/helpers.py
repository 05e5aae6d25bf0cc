"""Run ``python -m bench`` in a subprocess, as a user would, from any working directory."""

from __future__ import annotations

import os
import subprocess
import sys

from tests import REPO


def run_bench(*args, cwd=None, interpret: bool = False, timeout: float = 600) -> subprocess.CompletedProcess:
    """``interpret`` sets TRITON_INTERPRET=1 for the child; otherwise it is removed."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in [env.get("PYTHONPATH")] if p])
    if interpret:
        env["TRITON_INTERPRET"] = "1"
    return subprocess.run([sys.executable, "-m", "bench", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=env)
