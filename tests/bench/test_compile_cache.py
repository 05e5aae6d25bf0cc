"""torch.compile's persistent cache directory, recorded in every row, and the build time ``compile_s``."""

from __future__ import annotations

from importlib.metadata import version

import torch

from bench import paths
from bench.cli import main
from bench.ops import capture_cases, get_op
from bench.runner import RunOptions, Runner
from bench.workloads import STORAGE_DTYPE, check_kernel
from tests.bench.test_runner import config


def test_every_row_records_the_compile_cache_its_worker_used(tmp_path):
    cache = tmp_path / "inductor"
    options = RunOptions(run_id="test", devices=["cpu"], progress=False,
                         environments={"cpu": {"device_name": "cpu", "run_id": "test"}}, compile_cache=str(cache))
    rows = Runner([config("succeed", "a"), config("succeed", "b")], tmp_path / "r.jsonl", options).run()
    assert [r["compile_cache"] for r in rows] == [str(cache)] * 2
    assert all(r["compile_s"] is None for r in rows)  # nothing was compiled


def test_the_default_compile_cache_is_per_torch_version_under_the_cache_root(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    installed = version("torch")  # the public version: a CUDA or CPU build of it reads the same
    assert torch.__version__.startswith(installed)
    assert paths.default_compile_cache() == tmp_path / "classic-cnn-bench" / f"inductor-{installed}"


def kernel_check(builds: bool) -> dict:
    op = get_op("lrn")
    case = capture_cases(["lrn"], ["alexnet_paper"], 1)[0]
    generator = torch.Generator().manual_seed(0)
    tensors, kwargs = op.make_inputs(case, STORAGE_DTYPE["fp32"], torch.device("cpu"), torch.contiguous_format,
                                     generator)
    grad_names = list(op.differentiable(tensors))
    for name in grad_names:
        tensors[name].requires_grad_(True)
    return check_kernel(op, op.reference, tensors, kwargs, grad_names, True, "fp32", generator,
                        torch.device("cpu"), builds=builds)


def test_a_build_records_the_time_of_its_first_calls_and_nothing_else_does():
    built, plain = kernel_check(builds=True), kernel_check(builds=False)
    assert built["compile_s"] >= 0 and "compile_s" not in plain
    assert built["rel_error"] == plain["rel_error"] and built["grad_rel_error"] == plain["grad_rel_error"]


def test_a_compile_cache_that_cannot_be_written_is_refused_in_one_line(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(["run", "--compile-cache", str(blocker / "inductor"), "--dry-run", "--device", "cpu"]) == 2
    assert capsys.readouterr().err == f"error: --compile-cache {blocker / 'inductor'}: {blocker} is not a directory\n"
