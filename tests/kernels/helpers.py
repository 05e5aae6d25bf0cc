"""What every kernel test file shares: where the kernels run, the dtypes and layouts swept,
and the relative-error check against float64 (../shared/kernel-contract.md); for whole models,
the bound derived from the fp32 reference's own error and the check that an input has no near-ties.
The fixtures (``ieee_fp32``) are in tests/kernels/conftest.py."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from kernels import TOLERANCE, _common, relative_error
from tests import REPO

DEVICE = "cpu" if _common.INTERPRET else ("cuda" if torch.cuda.is_available() else None)
# A test module that runs kernels sets ``pytestmark = needs_device``.
needs_device = pytest.mark.skipif(DEVICE is None, reason="needs TRITON_INTERPRET=1 set before triton is imported "
                                                         "(nox -s tests sets it) or a CUDA GPU")
DTYPES = [torch.float32, torch.float16, torch.bfloat16]
LAYOUTS = ["nchw", "channels_last"]
F64 = torch.float64


def hypothesis_examples(default: int) -> int:
    """The interpreter is slow: a few random shapes per run (KERNELS_HYPOTHESIS_EXAMPLES=500 for a soak)."""
    return int(os.environ.get("KERNELS_HYPOTHESIS_EXAMPLES", str(default)))


def to_layout(t: torch.Tensor, layout: str) -> torch.Tensor:
    return t.contiguous(memory_format=torch.channels_last) if layout == "channels_last" else t.contiguous()


def random_tensor(shape, dtype, gen, scale=1.0, shift=0.0):
    return (torch.randn(shape, generator=gen, dtype=F64) * scale + shift).to(dtype)


def check(name: str, out, ref, tol: float) -> None:
    err = _common.relative_error(out, ref)
    assert err <= tol, f"{name}: relative error {err:.3g} exceeds {tol:g}"  # NaN fails too


def run_without_interpreter(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh Python from the repository root, TRITON_INTERPRET unset."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                          cwd=REPO)


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


# --- whole models -------------------------------------------------------------------------------

def check_against_float64(name: str, out, ref, ref64, *, factor: float = 2.0,
                          floor: float = TOLERANCE["fp32"]) -> None:
    """A patched fp32 model's ``out`` is at most ``factor`` times as far from the float64 model's
    ``ref64`` as the unpatched fp32 model's ``ref`` is, plus ``floor`` (by default one fp32 kernel's
    bound of the contract).

    The bound is what fp32 arithmetic achieves on this input on this machine: a fixed bound
    against the fp32 model holds where torch's rounding happens to agree with the kernels' and
    fails on a processor where torch's fp32 kernels round otherwise."""
    check(name, out, ref64, factor * relative_error(ref, ref64) + floor)


_ROUTING_OPS = {torch.ops.aten.relu.default: "relu", torch.ops.aten.relu_.default: "relu",
                torch.ops.aten.max_pool2d_with_indices.default: "max_pool2d",
                torch.ops.aten.max_pool2d.default: "max_pool2d"}


def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (tuple(value) * 2)[:2]


def pool_margins(x: torch.Tensor, out_shape, kernel_size, stride=(), padding=0, dilation=1, *_) -> torch.Tensor:
    """Largest minus second-largest value of each window of a 2-d max-pool of ``x`` (NCHW) that
    gave ``out_shape`` (so ceil_mode is read from it), leaving out windows whose largest value is 0:
    a window of zeros is a ReLU's output, and whichever zero takes the gradient, the ReLU before it
    passes none back. The arguments after ``out_shape`` are aten.max_pool2d's."""
    (kh, kw), (dh, dw), (ph, pw) = _pair(kernel_size), _pair(dilation), _pair(padding)
    sh, sw = _pair(stride) if stride else (kh, kw)
    if kh * kw == 1:
        return x.new_empty(0)
    oh, ow = out_shape[-2:]
    # -inf padding on both sides, and on the far side as far as ceil_mode's last window reaches
    far_h = (oh - 1) * sh + dh * (kh - 1) + 1 - x.shape[-2] - ph
    far_w = (ow - 1) * sw + dw * (kw - 1) + 1 - x.shape[-1] - pw
    padded = F.pad(x, (pw, max(far_w, 0), ph, max(far_h, 0)), value=-float("inf"))
    windows = F.unfold(padded, (kh, kw), dilation=(dh, dw), stride=(sh, sw))
    top = windows.view(x.shape[0], x.shape[1], kh * kw, -1).topk(2, dim=2).values
    return (top[:, :, 0] - top[:, :, 1])[top[:, :, 0] != 0]


class RoutingDecisions(TorchDispatchMode):
    """Records every ReLU and max-pool that runs inside it: the op, its input (as float64) and the
    smallest margin of its decisions (|x| for a ReLU: which side of zero; largest minus
    second-largest of a window for a max-pool: which element wins).

    Those decisions route the backward pass: a rounding difference larger than a margin sends a
    gradient elsewhere (one rerouted gradient moves a whole-network gradient by ~1e-2), so two
    correct fp32 models agree on gradients only where no decision is that close to a tie."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, torch.Tensor, float]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        op = _ROUTING_OPS.get(func)
        x = args[0].detach().to(torch.float64, copy=True) if op else None  # before an in-place ReLU
        out = func(*args, **(kwargs or {}))
        if op == "relu":
            self.calls.append((op, x, x.abs().min().item() if x.numel() else float("inf")))
        elif op:
            shape = (out[0] if isinstance(out, tuple) else out).shape
            margins = pool_margins(x, shape, *args[1:])
            self.calls.append((op, x, margins.min().item() if margins.numel() else float("inf")))
        return out


def check_no_near_ties(reference: RoutingDecisions, reference64: RoutingDecisions, factor: float = 2.0) -> None:
    """Every decision of the float64 model is at least ``factor`` times the fp32 reference's
    largest rounding error at that op away from a tie, so a kernel that rounds as well but
    differently takes the same decisions and gradients compare; else the input is a bad one."""
    assert [c[0] for c in reference.calls] == [c[0] for c in reference64.calls], "the two models ran different ops"
    for i, ((op, x, _), (_, x64, margin)) in enumerate(zip(reference.calls, reference64.calls)):
        rounding = (x.to(x64.device) - x64).abs().max().item()
        assert margin >= factor * rounding, (
            f"{op} #{i}: a decision {margin:.3g} from a tie where fp32 rounds by up to {rounding:.3g}: "
            f"a kernel that rounds otherwise could route a gradient elsewhere; choose an input without near-ties")


@contextlib.contextmanager
def forced_config(index: int):
    """Every launch inside runs autotune config ``index``. Only the interpreter can be held to one
    config (a GPU autotunes over all of them), so elsewhere the test skips."""
    if not _common.INTERPRET:
        pytest.skip("configs are forced only under the interpreter (a GPU autotunes over all)")
    with _common.use_config(index):
        yield
