"""What every kernel test file shares: where the kernels run, the dtypes and layouts swept,
and the relative-error check against float64 (../shared/kernel-contract.md)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from kernels import _common

DEVICE = "cpu" if _common.INTERPRET else ("cuda" if torch.cuda.is_available() else None)
pytestmark = pytest.mark.skipif(DEVICE is None, reason="needs TRITON_INTERPRET=1 set before triton is imported "
                                                       "(nox -s tests sets it) or a CUDA GPU")
DTYPES = [torch.float32, torch.float16, torch.bfloat16]
LAYOUTS = ["nchw", "channels_last"]
F64 = torch.float64


def hypothesis_examples(default: int) -> int:
    """The interpreter is slow: a few random shapes per run (KERNELS_HYPOTHESIS_EXAMPLES=500 for a soak)."""
    return int(os.environ.get("KERNELS_HYPOTHESIS_EXAMPLES", str(default)))


def _layout(t: torch.Tensor, layout: str) -> torch.Tensor:
    return t.contiguous(memory_format=torch.channels_last) if layout == "channels_last" else t.contiguous()


def _tensor(shape, dtype, gen, scale=1.0, shift=0.0):
    return (torch.randn(shape, generator=gen, dtype=F64) * scale + shift).to(dtype)


def check(name: str, out, ref, tol: float) -> None:
    err = _common.relative_error(out, ref)
    assert err <= tol, f"{name}: relative error {err:.3g} exceeds {tol:g}"  # NaN fails too


def run_without_interpreter(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh Python from the repository root, TRITON_INTERPRET unset."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def check_cpu_refused(setup: str, *calls: str) -> None:
    """Each call (Python source, after ``setup``) on CPU tensors, in a fresh Python without the
    interpreter, raises the contract's one-line ValueError naming x and the way out."""
    lines = [f"    lambda: {call}," for call in calls]
    code = "\n".join(["import torch, kernels", setup, "for call in (", *lines, "):", "    try:", "        call()",
                      "    except ValueError as e:", "        print(e)"]) + "\n"
    out = run_without_interpreter(code)
    assert out.returncode == 0, out.stderr
    printed = out.stdout.strip().splitlines()
    assert len(printed) == len(calls) and all(line.startswith("x: expected a CUDA tensor, got a CPU tensor") and
                                              "TRITON_INTERPRET=1" in line for line in printed), out.stdout
