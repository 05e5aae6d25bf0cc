"""Data-parallel training rows (bench/distributed.py): real gloo ranks on the CPU, a small model.

One ``python -m bench run --world-size 1,2`` serves the row tests; the check's ability to fail is
shown on real parameter updates in this process; a planted rank failure shows that the row names
the rank and that no rank outlives it."""

from __future__ import annotations

import copy
import os
import tempfile
import time

import pytest
import torch

import models
from bench import distributed, results
from bench.cli import main
from bench.worker import run_config
from bench.workloads import GRAD_TOLERANCE
from tests.bench.helpers import run_bench

MODEL, SIZE, BATCH = "resnet18", 32, 2  # resnet18 pools adaptively: 32 px runs, and its step is cheap


@pytest.fixture(scope="module")
def scaling_rows(tmp_path_factory):
    """The rows of one run at one and two ranks (world size 1 first, as the suite orders them)."""
    out = tmp_path_factory.mktemp("ddp") / "r.jsonl"
    done = run_bench("run", "--device", "cpu", "--models", MODEL, "--modes", "train", "--backends", "torch",
                     "--dtypes", "fp32", "--batch-sizes", BATCH, "--input-size", SIZE, "--world-size", "1,2",
                     "--warmup", "1", "--repeats", "3", "--out", out, "--no-progress", timeout=300)
    assert done.returncode == 0, done.stderr
    return results.read_rows(out)


def test_one_step_on_two_ranks_leaves_the_parameters_of_one_step_on_the_concatenated_batch(scaling_rows):
    row = scaling_rows[1]
    assert row["world_size"] == 2 and row["status"] == "ok", row["message"]
    assert row["grad_rel_error"] < 1e-5  # measured 1.2e-6: summation order, batch 2 per rank against 4
    assert row["grad_tolerance"] == GRAD_TOLERANCE["fp32"]
    assert row["message"] == ("DDP: 2 ranks, gloo; check: one eager fp32 step on 2 ranks vs one process on the "
                              "concatenated batch (eval mode)")


def test_a_two_rank_row_has_its_images_per_second_and_its_scaling_efficiency(scaling_rows):
    single, pair = scaling_rows
    assert (single["world_size"], pair["world_size"]) == (1, 2)
    assert single["status"] == "ok" and single["scaling_efficiency"] is None
    assert pair["timing_method"] == "host-clock" and pair["samples"] == 3
    assert pair["throughput"] == pytest.approx(2 * BATCH / (pair["device_ms"] / 1e3))
    assert pair["per_rank_throughput"] == pytest.approx(pair["throughput"] / 2)
    assert pair["scaling_efficiency"] == pytest.approx(pair["throughput"] / (2 * single["throughput"]))
    assert pair["scaling_efficiency"] > 0
    assert pair["peak_memory_bytes"] > 0


def test_the_check_fails_an_update_whose_gradients_were_summed_or_never_shared():
    torch.manual_seed(0)
    model = models.create(MODEL).eval()
    generator = torch.Generator().manual_seed(distributed.CHECK_SEED)
    images = torch.randn(2 * BATCH, 3, SIZE, SIZE, generator=generator)
    labels = torch.randint(0, 1000, (2 * BATCH,), generator=generator)
    cpu = torch.device("cpu")
    fmt = torch.contiguous_format

    def update(x, y):
        return distributed.sgd_update(copy.deepcopy(model), x, y, cpu, fmt)

    expected = update(images, labels)
    assert distributed.update_error(update(images, labels), expected) < 1e-6
    # Two ranks whose all-reduce sums the gradients move every parameter twice as far: error 1.
    assert distributed.update_error(2 * expected, expected) == pytest.approx(1.0)
    # A rank that never receives its peer's gradients takes the step of its own half of the batch.
    assert distributed.update_error(update(images[:BATCH], labels[:BATCH]), expected) > 10 * GRAD_TOLERANCE["fp32"]


@pytest.mark.parametrize("args, message", [
    (["--world-size", "99"], f"error: --world-size 99: this CPU has {os.cpu_count()} cores, and a gloo rank needs one"),
    (["--world-size", "2", "--modes", "infer"],
     "error: world_sizes: data-parallel ranks share gradients: they run with mode train only, not 'infer'"),
])
def test_a_world_size_that_cannot_run_fails_before_any_work_in_one_line(tmp_path, capsys, args, message):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: world sizes are checked against GPUs there")
    code = main(["run", "--device", "cpu", "--models", MODEL, "--modes", "train", *args,
                 "--out", str(tmp_path / "r.jsonl")])
    assert (code, capsys.readouterr().err) == (2, message + "\n")
    assert not (tmp_path / "r.jsonl").exists()


def fail_on_rank_1(config, device, rank, world_size):
    """A planted rank workload: rank 1 fails; rank 0 waits, as a rank in a collective whose peer is gone."""
    with open(os.path.join(config["pid_dir"], f"rank{rank}.pid"), "w") as f:
        f.write(str(os.getpid()))
    torch.distributed.barrier()  # both pids written before rank 1 fails and the worker kills rank 0
    if rank == 1:
        raise RuntimeError("planted failure on rank 1")
    time.sleep(3600)


def test_a_failing_rank_makes_an_error_row_naming_it_and_no_rank_outlives_it(tmp_path, monkeypatch):
    pid_dir, scratch = tmp_path / "pids", tmp_path / "scratch"
    pid_dir.mkdir()
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where run_model makes the ranks' directory
    config = {"kind": "model", "name": MODEL, "backend": "torch", "mode": "train", "dtype": "fp32",
              "batch_size": BATCH, "memory_format": "nchw", "input_size": SIZE, "world_size": 2, "warmup": 0,
              "repeats": 1, "rank_workload": f"{__name__}:fail_on_rank_1", "pid_dir": str(pid_dir)}
    measurement, healthy = run_config(config, torch.device("cpu"))  # as the worker runs it
    assert (measurement["status"], healthy) == ("error", False)
    assert measurement["message"] == "RankFailed: rank 1 of 2: RuntimeError: planted failure on rank 1"
    # The rank's stderr follows in the logged traceback, its own traceback's last line included.
    assert "\nRuntimeError: planted failure on rank 1\n" in measurement["traceback"]
    for rank in range(2):
        with pytest.raises(ProcessLookupError):
            os.kill(int((pid_dir / f"rank{rank}.pid").read_text()), 0)
    assert list(scratch.iterdir()) == []  # the ranks' directory is removed
