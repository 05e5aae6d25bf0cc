"""The compile check (../shared/kernel-contract.md): every kernel, autotune config, dtype and
layout compiles ahead of time for sm_80 and sm_90a without a GPU, and ptxas reports no spills.

The full sweep (a few minutes on two cores) is ``python -m kernels.compile_check``, which writes
``kernels/compile_report.json``; these tests check that report is the one of the current kernel
sources and spill-free, and compile one variant per kernel and arch live to confirm it (set
KERNELS_COMPILE_FULL=1 to compile the full sweep here instead).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from kernels import compile_check
from tests import REPO


def _key(row: dict) -> tuple:
    return row["kernel"], row["config_index"], row["dtype"], row["layout"], row["arch"]


def _expected() -> set[tuple]:
    return {(name, config_index, compile_check._TYPE[case.dtype], case.layout, arch)
            for _, name, case, config_index, *_, arch in compile_check._jobs()}


@pytest.fixture(scope="module")
def report() -> dict:
    assert compile_check.REPORT.exists(), "kernels/compile_report.json is missing: run python -m kernels.compile_check"
    return json.loads(compile_check.REPORT.read_text())


def test_report_is_current_and_covers_every_variant(report):
    assert report["source_hash"] == compile_check.source_hash(), \
        "the kernels changed since kernels/compile_report.json was made: run python -m kernels.compile_check"
    assert sorted(report["archs"]) == ["sm_80", "sm_90a"]
    keys = [_key(r) for r in report["kernels"]]
    assert len(keys) == len(set(keys))
    assert set(keys) == _expected()
    # every kernel of the package, every config of every autotuned one, every dtype
    assert {k[0] for k in keys} == {"_bn_stats_kernel", "_bn_apply_kernel", "_bn_bwd_reduce_kernel",
                                   "_bn_bwd_fold_kernel", "_bn_bwd_dx_kernel", "_lrn_fwd_kernel", "_lrn_bwd_kernel",
                                   "_se_squeeze_kernel", "_se_excite_kernel", "_se_scale_kernel",
                                   "_se_bwd_reduce_kernel", "_se_excite_bwd_hidden_kernel",
                                   "_se_excite_bwd_params_kernel", "_se_bwd_dx_kernel", "_depthwise_stencil_kernel",
                                   "_depthwise_rows_kernel", "_depthwise_dgrad_phases_kernel", "_depthwise_wgrad_kernel",
                                   "_depthwise_wgrad_rows_kernel", "_pack_weight_kernel", "_packed_conv_kernel",
                                   "_packed_wgrad_kernel", "_packed_wgrad_rows_kernel",
                                   "_grouped_conv_kernel", "_grouped_wgrad_kernel"}
    assert {k[2] for k in keys} == {"fp32", "fp16", "bf16"}


def test_report_has_no_spills(report):
    assert compile_check.spills(report) == []
    for row in report["kernels"]:
        assert 0 < row["registers"] <= 255, row
        assert row["shared_bytes"] <= 100 * 1024, row  # fits sm_80's and sm_90a's shared memory with room


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}  # compile real binaries
    return subprocess.run([sys.executable, "-m", "kernels.compile_check", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900)


def test_compiles_live_without_spills(report, tmp_path):
    full = os.environ.get("KERNELS_COMPILE_FULL") == "1"
    out = tmp_path / "report.json"
    proc = _run("--out", str(out), *(() if full else ("--quick",)))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    live = json.loads(out.read_text())
    assert compile_check.spills(live) == []
    assert len(live["kernels"]) == (len(report["kernels"]) if full else len(compile_check.quick_jobs()))
    if live["triton"] == report["triton"]:  # the same compiler gives the same binaries
        recorded = {_key(r): r for r in report["kernels"]}
        for row in live["kernels"]:
            assert row["registers"] == recorded[_key(row)]["registers"], row
            assert row["shared_bytes"] == recorded[_key(row)]["shared_bytes"], row
