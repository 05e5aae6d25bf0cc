"""Worker isolation, resume and correctness bookkeeping of the runner (CPU, planted workloads)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from bench import results
from bench.runner import RunOptions, Runner
from tests import REPO
from tests.bench.helpers import PLANTED, config
from tests.bench.planted_workloads import PHASES


def run(configs, path, **options):
    lines = []
    opts = RunOptions(run_id="test", devices=["cpu"], progress=False, log=lines.append,
                      environments={"cpu": {"device_name": "cpu", "run_id": "test"}}, **options)
    rows = Runner(configs, path, opts).run()
    return rows, lines


def test_a_failing_configuration_becomes_a_row_and_the_run_goes_on(tmp_path):
    path = tmp_path / "r.jsonl"
    rows, log = run([config("raise_error", "a"), config("succeed", "b")], path)
    assert [(r["name"], r["status"]) for r in rows] == [("a", "error"), ("b", "ok")]
    assert rows[0]["message"] == "RuntimeError: planted failure"
    assert any("Traceback" in line for line in log)  # the full trace goes to the log, not the row
    assert [r["name"] for r in results.read_rows(path)] == ["a", "b"]


def test_out_of_memory_under_a_worker_memory_limit_is_an_oom_row(tmp_path):
    rows, _ = run([config("allocate_too_much", "big"), config("succeed", "after")], tmp_path / "r.jsonl",
                  memory_limit_bytes=1 << 30)
    assert [r["status"] for r in rows] == ["oom", "ok"]
    assert "allocate" in rows[0]["message"].lower() or "memory" in rows[0]["message"].lower()


def test_a_worker_killed_by_a_signal_is_an_error_row_and_is_replaced(tmp_path):
    rows, _ = run([config("die_by_signal", "killed"), config("succeed", "after")], tmp_path / "r.jsonl")
    assert [r["status"] for r in rows] == ["error", "ok"]
    assert rows[0]["message"] == "worker killed by signal 9 while running this configuration"


def test_a_configuration_over_its_timeout_is_killed(tmp_path):
    rows, _ = run([config("sleep_forever", "slow", timeout_s=3), config("succeed", "after")], tmp_path / "r.jsonl")
    assert [r["status"] for r in rows] == ["error", "ok"]
    assert rows[0]["message"] == "timed out after 3 s; worker killed"


def test_resume_runs_only_what_is_missing(tmp_path):
    path = tmp_path / "r.jsonl"
    run([config("succeed", "a")], path)
    rows, log = run([config("succeed", "a"), config("succeed", "b")], path, resume=True)
    assert [r["name"] for r in rows] == ["b"]
    assert "resume: 1 of 2 configurations already in" in log[0]
    assert [r["name"] for r in results.read_rows(path)] == ["a", "b"]


def test_resume_on_a_corrupt_file_names_the_file_and_line(tmp_path):
    path = tmp_path / "r.jsonl"
    run([config("succeed", "a")], path)
    with open(path, "a") as f:
        f.write("{not json\n")
    with pytest.raises(results.ResultsError, match=rf"{path}:2: not JSON"):
        run([config("succeed", "b")], path, resume=True)


@pytest.mark.parametrize("workload", ["wrong_answer", "nan_answer"])
def test_an_error_over_tolerance_marks_the_row_incorrect(tmp_path, workload):
    rows, _ = run([config(workload)], tmp_path / "r.jsonl")
    assert rows[0]["status"] == "incorrect"
    assert "exceeds the fp32 tolerance 0.001" in rows[0]["message"]
    if workload == "nan_answer":
        assert rows[0]["rel_error"] is None  # JSON has no NaN; the status carries the verdict


def test_an_incorrect_row_keeps_what_the_workload_said_after_the_verdict(tmp_path):
    rows, _ = run([config("wrong_answer_with_a_message")], tmp_path / "r.jsonl")
    assert rows[0]["status"] == "incorrect"
    assert rows[0]["message"] == ("relative error 0.5 exceeds the fp32 tolerance 0.001 | "
                                  "paths: forward=triton-grouped")


def test_rows_carry_every_column_and_the_environment(tmp_path):
    rows, _ = run([config("succeed")], tmp_path / "r.jsonl")
    assert list(rows[0]) == list(results.COLUMNS)
    assert rows[0]["schema_version"] == results.SCHEMA_VERSION
    assert rows[0]["device_name"] == "cpu" and rows[0]["run_id"] == "test"


def test_gradients_are_judged_against_their_own_bound(tmp_path):
    rows, _ = run([config("gradient_within_its_bound", "a"), config("gradient_over_its_bound", "b")],
                  tmp_path / "r.jsonl")
    assert [r["status"] for r in rows] == ["ok", "incorrect"]
    assert rows[1]["message"] == "gradient relative error 0.05 exceeds the fp32 tolerance 0.01"


def test_progress_lines_say_the_phase_of_the_current_configuration(tmp_path, capsys):
    options = RunOptions(run_id="test", devices=["cpu"], progress=True,
                         environments={"cpu": {"device_name": "cpu", "run_id": "test"}})
    rows = Runner([config("report_phases", "phased")], tmp_path / "r.jsonl", options).run()
    assert [r["status"] for r in rows] == ["ok"]
    lines = capsys.readouterr().err.splitlines()  # not a terminal: one line per update
    shown = [next(p for p in PHASES if f"  {p}  " in line) for line in lines[:-1]]
    assert shown == list(PHASES) and all("phased torch infer fp32" in line for line in lines)
    assert "1/1" in lines[-1]  # the finished row's line


# `python -m bench run` on the CPU with each configuration running the next planted workload.
PLANTED_RUN = f"""
import sys

from bench import cli, suite

workloads = sys.argv[1].split(",")
expand = suite.expand


def planted(*args, **kwargs):
    configs = expand(*args, **kwargs)[:len(workloads)]
    for config, workload in zip(configs, workloads):
        config["workload"] = "{PLANTED}:" + workload
    return configs


suite.expand = planted
sys.exit(cli.main(["run", "--device", "cpu", "--models", "resnet18", "--backends", "torch", "--dtypes", "fp32",
                   "--modes", "infer,train", "--batch-sizes", "1", *sys.argv[2:]]))
"""


def start_planted_run(tmp_path, workloads: list[str], out) -> subprocess.Popen:
    """In a process group of its own (the test ends the whole group), stdout and stderr in files."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.update(PYTHONPATH=str(REPO),
               PLANTED_PID_FILE=str(tmp_path / "worker.pid"))
    with open(tmp_path / "stdout", "w") as stdout, open(tmp_path / "stderr", "w") as stderr:
        return subprocess.Popen([sys.executable, "-c", PLANTED_RUN, ",".join(workloads), "--out", str(out)],
                                stdout=stdout, stderr=stderr, env=env, start_new_session=True)


def running_worker(tmp_path, run: subprocess.Popen) -> int:
    """The pid of the worker once it sleeps in sleep_forever_telling_its_pid, checked to be the run's child."""
    pid_file = tmp_path / "worker.pid"
    deadline = time.time() + 300
    while not pid_file.exists():
        assert run.poll() is None and time.time() < deadline, (tmp_path / "stderr").read_text()
        time.sleep(0.1)
    pid = int(pid_file.read_text())
    with open(f"/proc/{pid}/stat") as f:
        parent = int(f.read().rpartition(")")[2].split()[1])
    assert parent == run.pid  # the spawned worker's parent is the bench process itself
    return pid


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


def gone_within(pid: int, seconds: float) -> bool:
    deadline = time.time() + seconds
    while alive(pid) and time.time() < deadline:
        time.sleep(0.1)
    return not alive(pid)


def end_group(run: subprocess.Popen) -> None:
    try:
        os.killpg(run.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    run.wait(timeout=30)


def test_a_worker_dies_with_its_killed_parent(tmp_path):
    run = start_planted_run(tmp_path, ["sleep_forever_telling_its_pid"], tmp_path / "r.jsonl")
    try:
        pid = running_worker(tmp_path, run)
        run.kill()  # SIGKILL: nothing of the parent runs, the kernel must end the worker
        run.wait(timeout=30)
        assert gone_within(pid, 10), "the worker outlived its parent"
    finally:
        end_group(run)


def test_sigterm_stops_the_run_as_ctrl_c_does_with_exit_143(tmp_path):
    out = tmp_path / "r.jsonl"
    run = start_planted_run(tmp_path, ["succeed", "sleep_forever_telling_its_pid"], out)
    try:
        pid = running_worker(tmp_path, run)
        os.killpg(run.pid, signal.SIGTERM)  # the whole group, as timeout(1) and batch schedulers do
        assert run.wait(timeout=60) == 143, (tmp_path / "stderr").read_text()
        assert gone_within(pid, 10), "the worker outlived the run"
    finally:
        end_group(run)
    stderr = (tmp_path / "stderr").read_text()
    assert f"terminated by SIGTERM: 1 finished rows are in {out}" in stderr and "Traceback" not in stderr
    assert [(r["mode"], r["status"]) for r in results.read_rows(out)] == [("infer", "ok")]  # no row for the killed one
    assert f"terminated by SIGTERM: 1 rows written to {out}" in out.with_suffix(".log").read_text()


def test_resume_runs_again_what_finished_on_another_device_or_for_another_suite(tmp_path):
    """A file holding another GPU's rows (an H200's, on this CPU run) is no proof of done."""
    path = tmp_path / "r.jsonl"

    def smoke(name: str, suite: str = "smoke") -> dict:
        return {**config("succeed", name), "suite": suite}

    with results.ResultsWriter(path) as writer:
        for done, environment in ((smoke("on-h200"), {"device_name": "NVIDIA H200", "device_uuid": "GPU-9"}),
                                  (smoke("in-kernels", suite="kernels"), {"device_name": "cpu"}),
                                  (smoke("done-here"), {"device_name": "cpu"})):
            writer.write(results.make_row(done, {"status": "ok"}, environment))
    rows, log = run([smoke("on-h200"), smoke("in-kernels"), smoke("done-here")], path, resume=True)
    assert [(r["name"], r["device_name"], r["suite"]) for r in rows] == [("on-h200", "cpu", "smoke"),
                                                                         ("in-kernels", "cpu", "smoke")]
    assert any("resume: 1 of 3 configurations already in" in line for line in log)
