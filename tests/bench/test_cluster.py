"""``python -m bench run --cluster``: a real Ray cluster on this machine, no mocks.

The cluster runs in network, PID and mount namespaces of its own (``unshare``): its only network
interface is loopback, so nothing it starts listens anywhere else (Ray binds its servers to every
interface of its node), and killing the namespace's first process ends every process of the
cluster. Drivers enter the network namespace only, and are ended by their own process id.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests import REPO
from tests.bench.helpers import PLANTED, as_from_a_terminal, run_bench

ray = pytest.importorskip("ray", reason="the cluster tests need Ray: pip install '.[cluster]'")

PORT = 6399  # the namespace has no other listener: any port is free there
ADDRESS = f"127.0.0.1:{PORT}"
CLIENT_ADDRESS = "ray://127.0.0.1:10001"  # Ray Client, which 'ray start --head' serves on 10001
CLUSTER_LIFETIME_S = 900  # the namespace ends by itself even if the test process is killed

# `python -m bench run --cluster` with each configuration running the next planted workload; the
# workloads that sleep once are told where to write their pids.
PLANTED_CLUSTER_RUN = f"""
import faulthandler
import signal
import sys

from bench import cli, suite

faulthandler.register(signal.SIGUSR1, all_threads=True)  # as python -m bench does

workloads, pid_file = sys.argv[1].split(","), sys.argv[2]
expand = suite.expand


def planted(*args, **kwargs):
    configs = expand(*args, **kwargs)[:len(workloads)]
    for config, workload in zip(configs, workloads):
        config.update(workload="{PLANTED}:" + workload, pid_file=pid_file)
    return configs


suite.expand = planted
sys.exit(cli.main(["run", "--models", "resnet18", "--backends", "torch", "--dtypes", "fp32",
                   "--modes", "infer,train", "--batch-sizes", "1", "--no-progress", *sys.argv[3:]]))
"""


class Cluster:
    """A one-node Ray cluster (2 CPUs) in namespaces of its own."""

    def __init__(self) -> None:
        self.temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Ray's socket paths must stay short
        self.holder = subprocess.Popen(
            ["unshare", "--net", "--pid", "--mount", "--fork", "--mount-proc", "--kill-child", "--",
             "sh", "-c", f"ip link set lo up && exec sleep {CLUSTER_LIFETIME_S}"],
            start_new_session=True, stderr=subprocess.PIPE, text=True)
        self.init_pid = self._first_process()
        self.env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
        self.env.update(PYTHONPATH=str(REPO), RAY_USAGE_STATS_ENABLED="0")
        ray_cli = Path(sys.executable).with_name("ray")
        started = subprocess.run(
            self.inside([str(ray_cli), "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(PORT),
                         "--num-cpus", "2", "--num-gpus", "0", "--include-dashboard=false",
                         "--disable-usage-stats", "--temp-dir", self.temp_dir], pid_namespace=True),
            capture_output=True, text=True, env=self.env, timeout=120)
        if started.returncode != 0:
            self.stop()
            raise RuntimeError(f"ray start failed: {started.stderr[-2000:]}")

    def _first_process(self) -> int:
        """The namespace's init (``sleep``), as this machine numbers it; a skip where this
        machine gives no namespaces."""
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.holder.poll() is not None:
                reason = self.holder.stderr.read().strip()
                pytest.skip(f"no private network namespace for a Ray cluster (unshare: {reason})")
            children = Path(f"/proc/{self.holder.pid}/task/{self.holder.pid}/children").read_text().split()
            if children:
                return int(children[0])
            time.sleep(0.05)
        raise RuntimeError("unshare started no namespace within 10 s")

    def inside(self, command: list[str], pid_namespace: bool = False) -> list[str]:
        """``command`` in the cluster's network namespace (and its PID and mount namespaces)."""
        spaces = ["-n", "-p", "-m"] if pid_namespace else ["-n"]
        return ["nsenter", "-t", str(self.init_pid), *spaces, "--", *command]

    def bench(self, *args, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(self.inside([sys.executable, "-m", "bench", *map(str, args)]), capture_output=True,
                              text=True, env={**self.env, **(env or {})}, timeout=timeout, cwd=REPO)

    def planted(self, workloads: list[str], pid_file: Path, *args, log: Path) -> subprocess.Popen:
        """A driver running planted workloads; its own process (nsenter execs it), in a group of its own."""
        with open(log, "w") as out:
            return subprocess.Popen(
                self.inside([sys.executable, "-c", PLANTED_CLUSTER_RUN, ",".join(workloads), str(pid_file),
                             "--cluster", ADDRESS, *map(str, args)]),
                stdout=out, stderr=subprocess.STDOUT, text=True, env=self.env, cwd=REPO, start_new_session=True,
                preexec_fn=as_from_a_terminal)  # nsenter execs the driver with this SIGINT

    def kill(self, pid_in_namespace: int) -> None:
        subprocess.run(self.inside(["kill", "-KILL", str(pid_in_namespace)], pid_namespace=True), check=True)

    def alive(self, pid_in_namespace: int) -> bool:
        """Whether the namespace's process ``pid`` runs (a zombie has ended: the namespace's init
        is ``sleep``, which reaps nobody)."""
        stat = subprocess.run(self.inside(["cat", f"/proc/{pid_in_namespace}/stat"], pid_namespace=True),
                              capture_output=True, text=True)
        return stat.returncode == 0 and stat.stdout.rpartition(")")[2].split()[0] != "Z"

    def stop(self) -> None:
        try:
            os.kill(self.init_pid, signal.SIGKILL)  # the kernel ends every process of the namespace
        except (ProcessLookupError, AttributeError):
            pass
        self.holder.kill()
        self.holder.wait(timeout=30)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster():
    started = Cluster()
    yield started
    started.stop()


def rows_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def wait_for(predicate, what: str, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.mark.parametrize("address", [ADDRESS, CLIENT_ADDRESS, "auto"])
def test_a_suite_runs_on_the_cluster_into_one_file(cluster, tmp_path, address):
    out = tmp_path / "cluster.jsonl"
    done = cluster.bench("run", "--cluster", address, "--models", "resnet18", "--backends", "torch",
                         "--modes", "infer,train", "--dtypes", "fp32", "--batch-sizes", "2", "--input-size", "32",
                         "--warmup", "0", "--repeats", "2", "--out", out, "--no-progress",
                         env={"RAY_ADDRESS": ADDRESS} if address == "auto" else {})  # where 'auto' looks first
    assert done.returncode == 0, done.stderr[-3000:]
    rows = rows_of(out)
    assert sorted(r["mode"] for r in rows) == ["infer", "train"]
    assert all(r["status"] == "ok" and r["throughput"] > 0 for r in rows), [r["message"] for r in rows]
    node = ray_node_id(cluster)
    # Each row says where it ran: the host, the device, and the Ray node.
    assert {(r["host"], r["device_name"], r["device"], r["cluster_node"]) for r in rows} == {
        (os.uname().nodename, "cpu", "cpu", node)}
    assert f"configurations on the Ray cluster at {address} (cpu)" in done.stderr
    assert f"2 rows (2 ok) in {out}" in done.stdout


def ray_node_id(cluster) -> str:
    listed = subprocess.run(cluster.inside([sys.executable, "-c",
                                            f"import ray; ray.init(address='{ADDRESS}', logging_level='ERROR'); "
                                            "print(ray.nodes()[0]['NodeID'])"]),
                            capture_output=True, text=True, env=cluster.env, timeout=120, check=True)
    return listed.stdout.split()[-1]


@pytest.mark.parametrize("retries", [1, 0])
def test_a_killed_ray_worker_leaves_a_retried_or_an_error_row_and_loses_none(cluster, tmp_path, retries):
    out, pid_file = tmp_path / "r.jsonl", tmp_path / "pids"
    driver = cluster.planted(["succeed", "sleep_once_telling_its_pids"], pid_file,
                             "--cluster-retries", retries, "--out", out, log=tmp_path / "driver.log")
    try:
        wait_for(pid_file.exists, "the planted workload's pids")
        worker, ray_worker = map(int, pid_file.read_text().split())
        cluster.kill(ray_worker)  # the Ray worker process running the task, mid-task
        assert driver.wait(timeout=180) == 0, (tmp_path / "driver.log").read_text()[-3000:]
    finally:
        driver.kill()
    rows = rows_of(out)
    assert sorted(r["mode"] for r in rows) == ["infer", "train"]  # one row each: none lost, none twice
    killed = next(r for r in rows if r["mode"] == "train")
    if retries:
        assert killed["status"] == "ok"  # Ray ran it again, and the second run found its pid file
    else:
        assert killed["status"] == "error"
        assert killed["message"].startswith("the Ray task failed (no retries): ")
        assert "died" in killed["message"].lower() or "crash" in killed["message"].lower(), killed["message"]
    # The harness's worker died with the Ray worker that ran it.
    wait_for(lambda: not cluster.alive(worker), "the harness's worker to end with its Ray worker", 30)


@pytest.mark.parametrize("signum, status, said", [(signal.SIGINT, 130, "interrupted"),
                                                   (signal.SIGTERM, 143, "terminated by SIGTERM")])
def test_a_signalled_driver_cancels_its_tasks_and_keeps_its_rows(cluster, tmp_path, signum, status, said):
    out, pid_file = tmp_path / "r.jsonl", tmp_path / "pids"
    log = tmp_path / "driver.log"
    driver = cluster.planted(["succeed", "sleep_once_telling_its_pids"], pid_file, "--out", out, log=log)
    try:
        wait_for(lambda: pid_file.exists() and len(rows_of(out)) == 1, "the first row and the sleeping task")
        worker, ray_worker = map(int, pid_file.read_text().split())
        driver.send_signal(signum)
        try:
            driver.wait(timeout=120)  # a guard against a hang: it acts within a second of Ray's waits
        except subprocess.TimeoutExpired:
            driver.send_signal(signal.SIGUSR1)  # every thread's stack into the log
            time.sleep(5)
            pytest.fail(f"the driver did not stop within 120 s of its signal:\n{log.read_text()[-6000:]}")
        assert driver.returncode == status, log.read_text()[-3000:]
    finally:
        driver.kill()
    assert f"{said}: 1 finished rows are in" in log.read_text()
    assert f"{said}: 1 rows written" in Path(str(out)[:-len(".jsonl")] + ".log").read_text()
    assert [r["mode"] for r in rows_of(out)] == ["infer"]
    # The cancelled task's Ray worker, and the harness's worker with it, are gone.
    wait_for(lambda: not cluster.alive(ray_worker) and not cluster.alive(worker), "the cancelled task's workers to end",
             60)
    if signum == signal.SIGINT:
        resumed = cluster.planted(["succeed", "sleep_once_telling_its_pids"], pid_file, "--out", out, "--resume",
                                  log=tmp_path / "resume.log")
        assert resumed.wait(timeout=180) == 0, (tmp_path / "resume.log").read_text()[-3000:]
        rows = rows_of(out)
        assert [r["mode"] for r in rows] == ["infer", "train"] and all(r["status"] == "ok" for r in rows)
        assert "resume: 1 of 2 configurations already in" in Path(str(out)[:-len(".jsonl")] + ".log").read_text()


def test_an_accelerator_type_no_node_has_is_one_line_naming_what_the_cluster_has(cluster, tmp_path):
    done = cluster.bench("run", "--cluster", ADDRESS, "--accelerator-type", "H200", "--models", "resnet18",
                         "--out", tmp_path / "r.jsonl")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "error: --accelerator-type H200: no node of the cluster has it; its nodes advertise none (CPU nodes only)")
    assert not (tmp_path / "r.jsonl").exists()


def test_a_world_size_over_the_largest_node_is_one_line(cluster, tmp_path):
    done = cluster.bench("run", "--cluster", ADDRESS, "--models", "resnet18", "--modes", "train",
                         "--world-size", "3", "--out", tmp_path / "r.jsonl")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "error: --world-size 3: the cluster's largest node has 2 CPUs, and a rank needs one")
    assert not (tmp_path / "r.jsonl").exists()


def test_an_unreachable_cluster_is_one_line_and_writes_nothing(tmp_path):
    done = run_bench("run", "--cluster", "127.0.0.1:1", "--models", "resnet18", "--out", tmp_path / "r.jsonl")
    assert done.returncode == 2
    assert done.stderr.strip() == "error: --cluster 127.0.0.1:1: nothing answers there (Connection refused)"
    assert list(tmp_path.iterdir()) == []


def test_auto_without_a_recorded_cluster_is_one_line(tmp_path):
    done = run_bench("run", "--cluster", "auto", "--models", "resnet18", "--out", tmp_path / "r.jsonl",
                     env={"RAY_ADDRESS": "", "RAY_TMPDIR": str(tmp_path)})
    assert done.returncode == 2
    assert done.stderr.strip() == (f"error: --cluster auto: no Ray cluster is recorded on this machine (no "
                                   f"RAY_ADDRESS, no {tmp_path}/ray/ray_current_cluster); start one with "
                                   "'ray start --head' or name its address")
    assert not (tmp_path / "r.jsonl").exists()


def test_auto_with_a_cluster_that_is_gone_is_one_line_naming_where_it_looked(tmp_path):
    (tmp_path / "ray").mkdir()
    (tmp_path / "ray" / "ray_current_cluster").write_text("127.0.0.1:1\n")  # a cluster stopped long ago
    done = run_bench("run", "--cluster", "auto", "--models", "resnet18", "--out", tmp_path / "r.jsonl",
                     env={"RAY_ADDRESS": "", "RAY_TMPDIR": str(tmp_path)})
    assert done.returncode == 2
    assert done.stderr.strip() == (f"error: --cluster auto (127.0.0.1:1, from {tmp_path}/ray/ray_current_cluster): "
                                   "nothing answers there (Connection refused)")


@pytest.mark.parametrize("address", ["ray://", "nohost", "127.0.0.1:99999", "http://host:1"])
def test_a_malformed_cluster_address_is_one_line_naming_the_forms(tmp_path, address):
    done = run_bench("run", "--cluster", address, "--models", "resnet18", "--out", tmp_path / "r.jsonl")
    assert done.returncode == 2
    assert done.stderr.strip() == (f"error: --cluster {address!r}: expected auto (a cluster started here with "
                                   "'ray start'), HOST:PORT (its GCS), or ray://HOST:PORT (Ray Client)")


@pytest.mark.parametrize("option", [["--device", "cpu"], ["--budget", "5"]])
def test_options_a_cluster_cannot_honour_are_refused_before_connecting(tmp_path, option):
    done = run_bench("run", "--cluster", "127.0.0.1:1", *option, "--models", "resnet18")
    assert done.returncode == 2
    assert done.stderr.strip() == (f"error: {option[0]} with --cluster: the cluster's scheduler places every "
                                   f"configuration; drop {option[0]}")


def test_an_accelerator_type_without_a_cluster_is_refused(tmp_path):
    done = run_bench("run", "--accelerator-type", "H100", "--models", "resnet18", "--device", "cpu")
    assert done.returncode == 2
    assert done.stderr.strip() == "error: --accelerator-type chooses GPUs of a Ray cluster: it needs --cluster"
