"""Sessions: ``nox -s tests`` (the test suite) and ``nox -s bench`` (the main job).

Virtualenvs are reused between runs: torch is a multi-GB install.
"""

import time

import nox

nox.options.reuse_venv = "yes"
nox.options.sessions = ["tests"]

# The releases that pip takes from the local disk on the project's CPU machines; an unpinned
# torch would pull a multi-GB CUDA build from the network.
TORCH = ["torch==2.14.1", "torchvision==0.29.1"]


def install(session: nox.Session, extras: str = "") -> None:
    session.install(*TORCH)
    session.install("-e", f".{extras}")


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite on the CPU (Triton kernels through the Triton interpreter)."""
    install(session, "[test,cluster]")  # the cluster tests start a Ray cluster of their own
    # Triton reads TRITON_INTERPRET when it is imported: set for the whole test process.
    # --benchmark-disable: benchmarks/ runs each benchmark once, as a test, without timing it.
    # -n auto --dist loadfile: one worker per core, each test file whole on one worker, so a
    # module's fixture (the inspector's compiled cases, a Ray cluster) is built once; on the
    # 2-core CI machine, 12 minutes where one process takes 15. `-- -n 0` runs in one process.
    session.run("python", "-m", "pytest", "-q", "--benchmark-disable", "-n", "auto", "--dist", "loadfile",
                *session.posargs, env={"TRITON_INTERPRET": "1"})


@nox.session
def bench(session: nox.Session) -> None:
    """The main job: the default suite on a CUDA GPU, the smoke suite on a CPU, into results/runs/,
    then the HTML report of everything in results/runs/ (results/report.html)."""
    install(session)
    session.run("python", "-m", "bench", "run", *session.posargs)
    session.run("python", "-m", "bench", "report", "results/runs", "-o", "results/report.html")


@nox.session
def report(session: nox.Session) -> None:
    """The HTML report of the results files already in results/runs/ (or those given) -> results/report.html."""
    session.install("pandas", "plotly")  # the report needs neither torch nor the project installed
    session.run("python", "-m", "bench", "report", *(session.posargs or ["results/runs"]), "-o", "results/report.html")


@nox.session
def gate(session: nox.Session) -> None:
    """Run this device's default suite and gate it against the stored baseline for its GPU."""
    # The suites record enough repetitions for the gate to be able to fail at alpha 0.001: the
    # rank test's smallest p-value must reach Holm's first level, 0.001 / configurations. On a GPU,
    # 'default': 40 configurations -> 2.5e-5 ('full': 840 -> 1.2e-6), and 20 repetitions reach
    # 3.4e-8 (enough for up to 29,000); on a CPU, 'smoke': 14 -> 7.1e-5, and its 12 reach
    # 1.8e-5 (up to 54). A baseline recorded with fewer makes the gate inconclusive (exit 2), never a silent pass.
    install(session)
    candidate = f"results/runs/gate-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
    session.run("python", "-m", "bench", "run", "--out", candidate)
    session.run("python", "-m", "bench", "gate", "--candidate", candidate, *session.posargs)
