"""kernels.lrn and its module twin against torch.nn.functional.local_response_norm in float64.

Through the Triton interpreter on CPU tensors (TRITON_INTERPRET=1, as ``nox -s tests`` sets it)
or on a CUDA GPU; outputs are poisoned with NaN before each call and NaN never passes.
"""

from __future__ import annotations


import importlib

import pytest
import torch
import torch.nn.functional as F
import triton
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import kernels
from kernels import TritonLocalResponseNorm, _common
from kernels.lrn import LRN_BWD_CONFIGS, LRN_FWD_CONFIGS
from models.blocks import LocalResponseNorm
from tests.kernels.helpers import (DEVICE, DTYPES, F64, LAYOUTS, check, check_cpu_refused, forced_config,
                                   hypothesis_examples, needs_device)

pytestmark = needs_device
lrn = importlib.import_module("kernels.lrn")  # the module (kernels.lrn is the function)
EXAMPLES = hypothesis_examples(20)


def run_case(shape, dtype, layout="nchw", size=5, alpha=1e-4, beta=0.75, k=2.0, seed=0, transform=None):
    gen = torch.Generator().manual_seed(seed)
    x = (torch.randn(shape, generator=gen, dtype=F64) * 2).to(dtype)
    dy = torch.randn(shape, generator=gen, dtype=F64).to(dtype)
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    xs = x.contiguous(memory_format=fmt).to(DEVICE)
    xs = (transform(xs) if transform else xs).requires_grad_(True)
    with _common.poison_outputs():
        y = kernels.lrn(xs, size, alpha, beta, k)
        (dx,) = torch.autograd.grad(y, xs, dy.contiguous(memory_format=fmt).to(DEVICE))
    x64 = (transform(x) if transform else x).double().requires_grad_(True)
    ref = F.local_response_norm(x64, size, alpha, beta, k)
    (ref_dx,) = torch.autograd.grad(ref, x64, dy.double())
    assert y.dtype == dx.dtype == dtype
    if not transform:
        assert y.is_contiguous(memory_format=fmt)
    tol = _common.tolerance(dtype)
    check("y", y, ref, tol)
    check("dx", dx, ref_dx, tol)


# alpha = 1: the cross-channel term of the gradient is as large as the direct one, so a wrong
# window in the backward cannot hide behind a tiny alpha (AlexNet's 1e-4).
STRONG = dict(alpha=1.0, beta=0.75, k=1.0)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: _common.DTYPES[d])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 6, 7, 9])
def test_sizes(dtype, layout, size):
    # 7 channels: windows clipped at both edges, and size 9 spans more than all of them
    run_case((2, 7, 3, 5), dtype, layout, size=size, **STRONG)


# the index of both kernels' 16-channel config
BLOCK_C16, = {i for i, cfg in enumerate(LRN_FWD_CONFIGS) if cfg.kwargs["BLOCK_C"] == 16} & {
    i for i, cfg in enumerate(LRN_BWD_CONFIGS) if cfg.kwargs["BLOCK_C"] == 16}


# SIZE is a compile-time constant and the window is built from lanes of 16-byte vectors (8
# channels in bf16/fp16, 4 in fp32) and of the groups before and after them: 16-channel blocks
# over 37 channels put windows across block edges, into a ragged last vector (37 = 4*8 + 5) and,
# from size 5 in fp32 and size 11 in bf16/fp16, the backward's x halo two groups deep. In
# channels_last the blocks serve rows wider than a warp's (test_row_tiles); here 37 channels
# are sent to them.
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: _common.DTYPES[d])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7, 11])
def test_window_across_channel_blocks(dtype, layout, size, monkeypatch):
    monkeypatch.setattr(lrn, "_row_block", lambda x, c_stride: 0)
    with forced_config(BLOCK_C16):
        run_case((2, 37, 2, 3), dtype, layout, size=size, **STRONG)


# Row tiles: every channel of a pixel in one tile, the groups beside a vector shifted in from the
# threads beside it. Channel counts from one ragged vector to a full warp's row (256 channels in
# bf16/fp16, 128 in fp32), windows one and two groups deep, under both tile sizes.
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: _common.DTYPES[d])
@pytest.mark.parametrize("c", [1, 37, 128, 256])
@pytest.mark.parametrize("size,index", [(2, 1), (5, 0), (11, 1)])
def test_row_tiles(dtype, c, size, index):
    x = torch.empty(1, c, 1, 1, dtype=dtype)
    if c * dtype.itemsize > 512:
        assert lrn._row_block(x, 1) == 0
        return
    assert lrn._row_block(x, 1) == max(16 // dtype.itemsize, triton.next_power_of_2(c))
    assert lrn._row_block(x, 6) == 0  # NCHW (channel stride H*W): the blocks
    with forced_config(index):
        run_case((2, c, 2, 3), dtype, "channels_last", size=size, seed=index, **STRONG)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: _common.DTYPES[d])
def test_alexnet_parameters(dtype):
    run_case((2, 6, 4, 4), dtype, "channels_last", size=5, alpha=1e-4 * 5, beta=0.75, k=2.0)


@pytest.mark.parametrize("shape", [(1, 3, 5, 7), (2, 70, 2, 3), (3, 4, 1, 9), (2, 5, 6, 1), (4, 9, 1, 1),
                                   (1, 1, 3, 3)], ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("layout", LAYOUTS)
def test_awkward_shapes(shape, layout):
    run_case(shape, torch.float32, layout, size=4, **STRONG)


@pytest.mark.parametrize("name,transform", [
    ("channel slice", lambda t: torch.stack([t, t], 2).flatten(1, 2)[:, ::2]),
    ("spatial slice", lambda t: F.pad(t, (1, 0))[:, :, :, 1:]),  # copied first
])
def test_non_contiguous_input(name, transform):
    run_case((2, 5, 3, 4), torch.float32, size=3, transform=transform, **STRONG)


def test_large_beta_and_k():
    run_case((2, 6, 3, 3), torch.float32, size=3, alpha=2.0, beta=2.5, k=0.5)


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: _common.DTYPES[d])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_zero_k_beside_a_zero_edge_channel(dtype, layout):
    # k = 0 and x = 0 in channel 0: the padded channel -1's d is 0, its d^(-beta-1) infinite; its T
    # must still be no term at all (torch has no such channel), not 0 * 0 * inf = NaN in dx of channel 0
    def zero_channel_0(t):
        return torch.cat([torch.zeros_like(t[:, :1]), t[:, 1:]], 1)

    run_case((2, 5, 3, 3), dtype, layout, size=3, alpha=1.0, beta=0.75, k=0.0, transform=zero_channel_0)


@pytest.mark.parametrize("index", range(max(len(LRN_FWD_CONFIGS), len(LRN_BWD_CONFIGS))))
def test_every_autotune_config(index):
    with forced_config(index):
        for layout in LAYOUTS:
            run_case((2, 70, 3, 5), torch.float32, layout, size=5, seed=index, **STRONG)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 3), c=st.integers(1, 12), h=st.integers(1, 5), w=st.integers(1, 5),
       size=st.integers(1, 8), dtype=st.sampled_from(DTYPES), layout=st.sampled_from(LAYOUTS),
       alpha=st.floats(1e-4, 2.0), beta=st.floats(0.1, 2.0), k=st.floats(0.5, 3.0), seed=st.integers(0, 2**16))
def test_hypothesis(n, c, h, w, size, dtype, layout, alpha, beta, k, seed):
    run_case((n, c, h, w), dtype, layout, size=size, alpha=alpha, beta=beta, k=k, seed=seed)


def test_empty_batch():
    x = torch.randn(0, 4, 3, 3, device=DEVICE)
    assert kernels.lrn(x).shape == x.shape


# --- the module twin --------------------------------------------------------------------------

def test_module_twin():
    ref = LocalResponseNorm.from_paper(n=5, alpha=1e-4, beta=0.75, k=2.0)
    twin = TritonLocalResponseNorm(ref.size, ref.alpha, ref.beta, ref.k)
    assert twin.extra_repr() == ref.extra_repr() == nn.LocalResponseNorm(5, 5e-4, 0.75, 2.0).extra_repr()
    assert list(twin.state_dict()) == [] and isinstance(twin, nn.LocalResponseNorm)
    x = torch.randn(2, 8, 3, 3) * 10
    check("y", twin(x.to(DEVICE)), ref(x.double()), 1e-5)


# --- inputs that are wrong --------------------------------------------------------------------

BAD = [
    ("x", TypeError, dict(x="not a tensor")),
    ("x", ValueError, dict(x=torch.randn(2, 4, 3))),
    ("x", ValueError, dict(x=torch.randn(2, 4, 3, 3, 2))),
    ("x", TypeError, dict(x=torch.randn(2, 4, 3, 3, dtype=F64))),
    ("x", TypeError, dict(x=torch.ones(2, 4, 3, 3, dtype=torch.int64))),
    ("x", ValueError, dict(x=torch.randn(2, 4, 3, 3, device="meta"))),
    ("size", ValueError, dict(size=0)),
    ("size", ValueError, dict(size=-3)),
    ("size", TypeError, dict(size=2.5)),
    ("size", TypeError, dict(size=True)),
    ("alpha", TypeError, dict(alpha="1e-4")),
    ("beta", TypeError, dict(beta=None)),
    ("beta", ValueError, dict(beta=float("nan"))),
    ("k", TypeError, dict(k=torch.tensor(2.0))),
]


@pytest.mark.parametrize("arg,exc,over", BAD, ids=[f"{a}-{i}" for i, (a, _, _) in enumerate(BAD)])
def test_bad_input(arg, exc, over):
    args = dict(x=torch.randn(2, 4, 3, 3), size=5, alpha=1e-4, beta=0.75, k=2.0)
    args.update(over)
    if isinstance(args["x"], torch.Tensor) and args["x"].device.type == "cpu":
        args["x"] = args["x"].to(DEVICE)
    with pytest.raises(exc, match=rf"^{arg}: expected"):
        kernels.lrn(**args)


def test_cpu_tensor_without_interpreter_is_refused():
    check_cpu_refused("x = torch.randn(2, 4, 3, 3)", "kernels.lrn(x)", "kernels.TritonLocalResponseNorm(5)(x)")
