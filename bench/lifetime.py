"""Child processes that end with their parent: a worker with the runner, a rank with its worker.

A child left behind holds a CPU or a GPU with nobody to stop it at its timeout, so every process
the harness starts arms :func:`die_with_parent` first.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent_pid: int) -> None:
    """End this process when its parent (pid ``parent_pid``) ends, however it ends (SIGKILL included).

    Linux: the kernel sends SIGKILL when the parent dies (PR_SET_PDEATHSIG). Elsewhere, a thread
    watches the parent pid. Either way, a parent that died before this ran is caught by the pid."""
    armed = False
    if sys.platform.startswith("linux"):
        import ctypes

        armed = ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    if os.getppid() != parent_pid:
        os._exit(1)
    if not armed:
        def watch() -> None:
            while os.getppid() == parent_pid:
                time.sleep(1.0)
            os._exit(1)

        threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()
