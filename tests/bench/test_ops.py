"""The op and backend registries: a new op is one file that registers itself, and nothing else."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import ops, suite
from bench.backends import get_backend, list_backends
from tests import REPO

# An op as a contributor writes it, registered from outside bench/ops/: an elementwise scale at
# every 4-D ReLU of a model. The script expands a suite of it and runs its rows, as the worker does.
TOY_OP = '''
import json

import torch

from bench.errors import Skip
from bench.ops import Op, random_tensor, register_op
from bench.suite import expand
from bench.workloads import run_kernel


@register_op
class Scale(Op):
    name = "scale"
    passes = {"infer": 2, "train-forward": 2, "train-backward": 2}  # read x, write y; read dy, write dx
    flops_per_element = {"infer": 1, "train-forward": 1, "train-backward": 1}

    @staticmethod
    def reference(x, factor=2.0):
        return x * factor

    def module_type(self):
        return torch.nn.ReLU

    def capture(self, module, args, kwargs):
        return {"x": list(args[0].shape)} if args[0].dim() == 4 else None

    def make_inputs(self, case, dtype, device, memory_format, generator):
        return {"x": random_tensor(case["x"], dtype, device, memory_format, generator=generator)}, {"factor": 2.0}


toy = {"name": "toy", "timing": {"warmup": 1, "repeats": 2},
       "matrix": [{"kind": "kernel", "ops": ["scale"], "shapes_from": ["alexnet"], "backends": ["torch", "triton"],
                   "modes": ["infer", "train"], "dtypes": ["fp32"], "batch_sizes": [1]}]}
rows = []
for config in expand(toy):
    try:
        result = run_kernel(config, torch.device("cpu"))
    except Skip as reason:
        result = {"skipped": str(reason)}
    rows.append({"shape": config["shape"], "backend": config["backend"], "mode": config["mode"], **result})
print(json.dumps(rows))
'''


def test_a_new_op_runs_through_suites_and_rows_from_its_own_file():
    env = {**os.environ, "TRITON_INTERPRET": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO)] + [p for p in [os.environ.get("PYTHONPATH")] if p])}
    result = subprocess.run([sys.executable, "-c", TOY_OP], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    shapes = ["1x64x55x55", "1x192x27x27", "1x384x13x13", "1x256x13x13"]  # alexnet's conv ReLUs, each once
    assert [r["shape"] for r in rows if r["backend"] == "torch" and r["mode"] == "infer"] == shapes
    assert {(r["backend"], r["mode"]) for r in rows} == {(b, m) for b in ("torch", "triton")
                                                         for m in ("infer", "train-forward", "train-backward")}
    for row in rows:
        if row["backend"] == "triton":
            assert row == {"shape": row["shape"], "backend": "triton", "mode": row["mode"],
                           "skipped": "kernels.scale is not implemented yet"}
            continue
        n, c, h, w = map(int, row["shape"].split("x"))
        assert row["bytes_moved"] == 2 * n * c * h * w * 4 and row["flops"] == n * c * h * w
        assert row["samples"] == 2 and "rel_error" not in row  # eager torch is the baseline


def test_every_op_file_registers_its_op():
    files = sorted(p.stem for p in Path(ops.__file__).parent.glob("*.py") if not p.stem.startswith("_"))
    assert ops.list_ops() == files == ["bn_relu", "conv2d", "lrn", "squeeze_excite"]
    assert all(ops.get_op(name).name == name for name in files)


def test_an_unknown_op_or_backend_names_the_known_ones():
    with pytest.raises(ValueError, match=r"^unknown op 'gelu'; choose from bn_relu, conv2d, lrn, squeeze_excite$"):
        ops.get_op("gelu")
    with pytest.raises(ValueError, match=r"^unknown backend 'cudnn'; choose from compile, torch, triton$"):
        get_backend("cudnn")


def test_suites_name_the_registered_backends():
    """suite.BACKENDS names them without importing torch, in the order reports show them."""
    assert sorted(suite.BACKENDS) == list_backends()
