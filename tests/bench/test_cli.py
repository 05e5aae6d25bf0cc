"""The command line: ``python -m bench run`` end to end on the CPU and every user error it can meet,
and ``python -m bench models``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

import models
from bench import results
from bench.cli import main
from tests import REPO
from tests.bench.helpers import as_from_a_terminal, run_bench

SMALL = ["--batch-sizes", "2", "--input-size", "32", "--repeats", "2", "--warmup", "1", "--no-progress"]


bench = run_bench


def test_a_small_run_writes_a_row_per_configuration(tmp_path):
    out = tmp_path / "run.jsonl"
    result = bench("run", "--models", "resnet18", "--backends", "torch,triton", "--dtypes", "fp32,bf16",
                   "--out", str(out), *SMALL)
    assert result.returncode == 0, result.stderr
    rows = {(r["backend"], r["mode"], r["dtype"]): r for r in results.read_rows(out)}
    assert len(rows) == 8
    eager = rows[("torch", "train", "fp32")]
    assert eager["status"] == "ok" and eager["samples"] == 2 and len(eager["device_times_ms"]) == 2
    assert eager["throughput"] == pytest.approx(2 / (eager["device_ms"] / 1e3))
    assert eager["peak_memory_bytes"] > 0 and eager["copy_bandwidth_gbps"] > 0
    assert eager["rel_error"] is None  # the fp32 eager model is the reference itself
    low = rows[("torch", "infer", "bf16")]
    assert 0 < low["rel_error"] < 0.1 and low["top1_agreement"] is not None and low["tolerance"] is None
    assert rows[("torch", "train", "bf16")]["grad_rel_error"] is not None
    skipped = rows[("triton", "infer", "fp32")]
    assert skipped["status"] == "skipped" and "TRITON_INTERPRET=1" in skipped["message"]
    assert "resnet18" in result.stdout and "8 rows (4 ok, 4 skipped)" in result.stdout
    assert out.with_suffix(".log").read_text().count("\n") >= 8


def test_interrupt_keeps_every_finished_row_and_sigusr1_prints_the_stacks(tmp_path):
    out = tmp_path / "run.jsonl"
    process = subprocess.Popen([sys.executable, "-m", "bench", "run", "--models", "resnet18,alexnet,vgg11",
                                "--backends", "torch", "--dtypes", "fp32", "--out", str(out), "--batch-sizes", "2",
                                "--input-size", "64", "--repeats", "50", "--no-progress"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(REPO)}, preexec_fn=as_from_a_terminal)
    deadline = time.time() + 300
    while time.time() < deadline and not (out.exists() and out.read_text().count("\n") >= 1):
        time.sleep(0.2)
    process.send_signal(signal.SIGUSR1)  # every thread's stack to stderr; the run goes on
    time.sleep(1)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "interrupted:" in stderr and "Traceback" not in stderr
    assert "(most recent call first):" in stderr and 'File "' in stderr
    rows = results.read_rows(out)
    assert 1 <= len(rows) < 6 and all(r["status"] == "ok" for r in rows)


USAGE = "python -m bench run: error: argument {}"
HELP = " (see python -m bench run --help)"


def run_main(capsys, *args) -> tuple[int, str]:
    """``python -m bench ARGS`` in this process: exit status and stderr."""
    try:
        code = main(list(args))
    except SystemExit as exit:  # argparse
        code = exit.code
    return code, capsys.readouterr().err.strip()


@pytest.mark.parametrize("args, message", [
    (["--models", "resnet5"], "error: unknown model 'resnet5'; did you mean resnet50, resnet152, resnet34, resnet18?"),
    (["--backends", "cudnn"],
     USAGE.format("--backends: unknown backend 'cudnn'; choose from torch, triton, compile") + HELP),
    (["--dtypes", "fp8"], USAGE.format("--dtypes: unknown dtype 'fp8'; choose from fp32, tf32, fp16, bf16") + HELP),
    (["--suite", "fast"],
     USAGE.format("--suite: unknown suite 'fast'; choose from default, device-check, families, full, kernels, protocols, smoke") + HELP),
    (["--device", "cuda:0"], "error: --device cuda:0: 0 CUDA device(s) visible"),
    (["--device", "tpu"], USAGE.format("--device: expected cpu, cuda:N or all, got 'tpu'") + HELP),
    (["--device", "all"], "error: --device all needs CUDA GPUs, and none is visible; use --device cpu"),
    (["--input-size", "0"], USAGE.format("--input-size: expected a whole number of at least 1, got 0") + HELP),
    (["--input-size", "-5"], USAGE.format("--input-size: expected a whole number of at least 1, got -5") + HELP),
    (["--repeats", "0"], USAGE.format("--repeats: expected a whole number of at least 1, got 0") + HELP),
    (["--warmup", "-1"], USAGE.format("--warmup: expected a whole number of at least 0, got -1") + HELP),
    (["--worker-memory-limit=-5"],
     USAGE.format("--worker-memory-limit: expected a whole number of at least 1, got -5") + HELP),
    (["--batch-sizes", "2,x"], USAGE.format("--batch-sizes: expected a whole number, got 'x'") + HELP),
    (["--batch-sizes", ","], USAGE.format("--batch-sizes: expected a comma-separated list, got ','") + HELP),
    (["--memory-format", "nhwc"],
     USAGE.format("--memory-format: unknown memory format 'nhwc'; choose from nchw, channels_last") + HELP),
    (["--device-timing", "nvtx"],
     USAGE.format("--device-timing: unknown device timing method 'nvtx'; choose from auto, graph, cupti, events")
     + HELP),
])
def test_bad_input_fails_before_any_work_in_one_line(tmp_path, capsys, args, message):
    if torch.cuda.is_available() and "--device" in args:
        pytest.skip("this machine has a GPU")
    code, stderr = run_main(capsys, "run", *args, "--out", str(tmp_path / "r.jsonl"))
    assert code == 2
    assert stderr == message
    assert not (tmp_path / "r.jsonl").exists()


@pytest.mark.parametrize("out, message", [
    ("res.json", "error: --out {}: expected a results file ending in .jsonl or a directory, got a .json file name"),
    ("file.txt", "error: --out {}: expected a results file ending in .jsonl or a directory, got an existing file"),
    ("dir.jsonl", "error: --out {}: is a directory; a results file name ends in .jsonl"),
    ("file.txt/r.jsonl", "error: --out {}: {} is not a directory"),
    ("/proc/bench/r.jsonl", "error: --out {}: cannot write in /proc (No such file or directory)"),
])
def test_an_output_that_cannot_be_a_results_file_is_refused_before_any_work(tmp_path, monkeypatch, capsys, out,
                                                                           message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file.txt").write_text("notes\n")
    (tmp_path / "dir.jsonl").mkdir()
    code, stderr = run_main(capsys, "run", "--models", "resnet18", "--out", out)
    assert code == 2
    assert stderr == message.format(out, (tmp_path / "file.txt"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.jsonl", "file.txt"]  # nothing written


def test_arguments_are_checked_before_torch_is_imported():
    script = ("import sys\nfrom bench.cli import main\n"
              "for args in (['--repeats', '0'], ['--dtypes', 'fp8'], ['--out', 'r.json']):\n"
              "    try:\n        main(['run', *args])\n    except SystemExit:\n        pass\n"
              "print('torch' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.stdout.strip() == "False", result.stderr


def test_resume_refuses_a_foreign_file(tmp_path):
    out = tmp_path / "r.jsonl"
    out.write_text('{"hello": "world"}\n')
    result = bench("run", "--models", "resnet18", "--resume", "--out", str(out))
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {out}:1: not a results row (no schema_version)"


def test_cli_models_json_lists_every_model():
    result = run_bench("models", "--json")
    assert result.returncode == 0, result.stderr
    cards = json.loads(result.stdout)
    assert [c["name"] for c in cards] == models.list_models()
    assert {"name", "family", "paper", "year", "input_size", "params", "gmacs"} <= set(cards[0])


def test_cli_models_table_and_bad_name():
    table = run_bench("models", "resnet50", "vgg16")
    assert table.returncode == 0
    assert "25,557,032" in table.stdout and "138,357,544" in table.stdout
    bad = run_bench("models", "resnet5")
    assert bad.returncode == 2
    assert bad.stderr.strip() == "error: unknown model 'resnet5'; did you mean resnet50, resnet152, resnet34, resnet18?"
    assert "Traceback" not in bad.stderr


def test_triton_conv2d_rows_run_the_triton_kernels_and_say_so(tmp_path):
    """One depthwise case (resnet50's last 3x3 layer as a depthwise 3x3, batch 1: a second a call in
    the Triton interpreter) in each kernel mode, through the command line."""
    out = tmp_path / "run.jsonl"
    result = bench("run", "--suite", "device-check", "--ops", "conv2d", "--shapes", "1x512x7x7 k=3x3 *",
                   "--backends", "triton", "--modes", "infer,train", "--dtypes", "fp32", "--batch-sizes", "1",
                   "--repeats", "2", "--warmup", "1", "--no-progress", "--out", str(out), interpret=True)
    assert result.returncode == 0, result.stderr
    rows = {r["mode"]: r for r in results.read_rows(out)}
    assert set(rows) == {"infer", "train-forward", "train-backward"}
    assert {r["shape"] for r in rows.values()} == {"1x512x7x7 k=3x3 s=1 p=1 d=1 g=512 -> 512"}
    assert all(r["status"] == "ok" and r["rel_error"] < 1e-5 for r in rows.values()), rows
    assert rows["infer"]["message"] == rows["train-forward"]["message"] == "paths: forward=triton-depthwise"
    assert rows["train-backward"]["message"] == ("paths: forward=triton-depthwise; input_grad=triton-depthwise; "
                                                 "weight_grad=triton-depthwise")
