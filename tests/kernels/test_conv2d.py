"""kernels.conv2d, its dispatcher and its module twin against torch.nn.functional.conv2d in float64.

Through the Triton interpreter on CPU tensors (TRITON_INTERPRET=1, as ``nox -s tests`` sets it)
or on a CUDA GPU. Every case checks the output and the gradients of x, weight and bias; outputs
are poisoned with NaN before each call and NaN never passes. Unless a test says otherwise the
Triton paths are forced (``conv2d_dispatch("triton")``), so a GPU run tests the kernels, not the
dispatcher's choice.
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
import triton
import triton.language as tl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import kernels
from kernels import TritonConv2d, _common
from tests.kernels.helpers import (DEVICE, DTYPES, F64, LAYOUTS, check, check_cpu_refused, forced_config,
                                   hypothesis_examples, needs_device, random_tensor, to_layout)

# fp32 cases are held to the fp32 bound, so tf32 is off unless a test turns it on.
pytestmark = [needs_device, pytest.mark.usefixtures("ieee_fp32")]
EXAMPLES = hypothesis_examples(15)


def run_case(x_shape, c_out, kernel, *, groups, stride=1, padding=0, dilation=1, bias=True,
             dtype=torch.float32, layout="nchw", seed=0, transform=None, policy="triton", tol=None):
    """conv2d forward and all gradients against F.conv2d in float64 on the same (rounded) inputs."""
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    gen = torch.Generator().manual_seed(seed)
    c_in = x_shape[1]
    x = random_tensor(x_shape, dtype, gen)
    w = random_tensor((c_out, c_in // groups, kh, kw), dtype, gen, scale=(c_in // groups * kh * kw) ** -0.5)
    b = random_tensor((c_out,), dtype, gen) if bias else None
    xs = to_layout(x, layout).to(DEVICE)
    xs = (transform(xs) if transform else xs).requires_grad_(True)
    ws = w.to(DEVICE).requires_grad_(True)
    bs = b.to(DEVICE).requires_grad_(True) if bias else None
    with kernels.conv2d_dispatch(policy), _common.poison_outputs():
        y = kernels.conv2d(xs, ws, bs, stride, padding, dilation, groups)
        dy = random_tensor(tuple(y.shape), dtype, gen).to(DEVICE)
        grads = torch.autograd.grad(y, [xs, ws] + ([bs] if bias else []), dy)

    x64 = (transform(x) if transform else x).double().requires_grad_(True)
    w64, b64 = w.double().requires_grad_(True), (b.double().requires_grad_(True) if bias else None)
    ref = F.conv2d(x64, w64, b64, stride, padding, dilation, groups)
    ref_grads = torch.autograd.grad(ref, [x64, w64] + ([b64] if bias else []), dy.double().cpu())

    assert y.dtype == dtype and all(g.dtype == dtype for g in grads)
    ambiguous = xs.is_contiguous() and xs.is_contiguous(memory_format=torch.channels_last)  # e.g. 1x1 pixels
    if not transform and not ambiguous:
        fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
        assert y.is_contiguous(memory_format=fmt) and grads[0].is_contiguous(memory_format=fmt)
    tol = tol or _common.tolerance(dtype)
    check("y", y, ref, tol)
    for name, g, r in zip(("dx", "dweight", "dbias"), grads, ref_grads):
        check(name, g, r, tol)
    return y


def test_interpreter_multiplies_bf16_values_in_dot():
    """The simulator fix in kernels._common (triton-lang/triton#11584): a bf16 tl.dot under the
    interpreter equals the fp32 product of the same values."""
    if not _common.INTERPRET:
        pytest.skip("an interpreter fix")
    a = torch.randn(16, 16).to(torch.bfloat16)
    b = torch.randn(16, 32).to(torch.bfloat16)
    out = torch.empty(16, 32)
    _dot_probe[(1,)](a, b, out)
    torch.testing.assert_close(out, a.float() @ b.float(), rtol=1e-6, atol=1e-6)


@triton.jit
def _dot_probe(A, B, OUT):
    m, k, n = tl.arange(0, 16), tl.arange(0, 16), tl.arange(0, 32)
    a = tl.load(A + m[:, None] * 16 + k[None, :])
    b = tl.load(B + k[:, None] * 32 + n[None, :])
    tl.store(OUT + m[:, None] * 32 + n[None, :], tl.dot(a, b))


def paths_taken() -> set[str]:
    return {d["path"] for d in kernels.conv2d_decisions()}


# --- the sweep: every group structure x layout x dtype ----------------------------------------

# C = 24 input channels: groups 2 (AlexNet), 4, C/4 = 6 (ResNeXt-like, 4 channels a group) and
# C (depthwise); output channels C, and 2C for depthwise with a channel multiplier of 2.
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: _common.DTYPES[d])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("groups,c_out", [(2, 24), (4, 24), (6, 24), (24, 24), (24, 48)],
                         ids=["g2", "g4", "gC/4", "gC", "gC-mult2"])
def test_groups(groups, c_out, dtype, layout):
    kernels.conv2d_decisions(clear=True)
    run_case((2, 24, 7, 5), c_out, 3, groups=groups, padding=1, dtype=dtype, layout=layout)
    assert paths_taken() == {"triton-depthwise" if groups == 24 else "triton-grouped"}


@pytest.mark.parametrize("kernel", [1, 3, 5, 7, 11])
@pytest.mark.parametrize("groups", [2, 8], ids=["grouped", "depthwise"])
def test_kernel_sizes(kernel, groups):
    run_case((1, 8, 12, 11), 8, kernel, groups=groups, padding=kernel // 2, layout="channels_last")


@pytest.mark.parametrize("stride", [1, 2, 4])
@pytest.mark.parametrize("padding", [0, 1, 2, "valid", "same"])
@pytest.mark.parametrize("groups", [4, 8], ids=["grouped", "depthwise"])
def test_strides_and_paddings(stride, padding, groups):
    if padding == "same" and stride > 1:
        pytest.skip("'same' needs stride 1 (tested as a bad input)")
    # 9x10 with these strides leaves a ragged last row/column in every combination
    run_case((2, 8, 9, 10), 8, 3, groups=groups, stride=stride, padding=padding)


@pytest.mark.parametrize("dilation", [1, 2])
@pytest.mark.parametrize("kernel", [3, 5])
@pytest.mark.parametrize("groups", [2, 6], ids=["grouped", "depthwise"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_dilation(dilation, kernel, groups, layout):
    run_case((2, 6, 11, 9), 6, kernel, groups=groups, padding=dilation * (kernel // 2), dilation=dilation,
             layout=layout)


@pytest.mark.parametrize("kernel,dilation", [(2, 1), (4, 1), (4, 3), (3, 2), ((2, 5), (1, 2))])
@pytest.mark.parametrize("groups", [2, 4], ids=["grouped", "depthwise"])
def test_same_padding_even_and_odd(kernel, dilation, groups):
    """An odd total padding puts the extra row/column at the bottom/right, as torch does."""
    run_case((1, 4, 7, 8), 4, kernel, groups=groups, padding="same", dilation=dilation)


@pytest.mark.parametrize("stride,padding,dilation", [((2, 1), (0, 2), (1, 2)), ((1, 3), (2, 0), (2, 1))])
@pytest.mark.parametrize("groups", [2, 4], ids=["grouped", "depthwise"])
def test_per_axis_arguments(stride, padding, dilation, groups):
    run_case((2, 4, 9, 8), 8, (3, 2), groups=groups, stride=stride, padding=padding, dilation=dilation,
             layout="channels_last")


@pytest.mark.parametrize("shape,c_out,kernel,groups", [
    ((1, 4, 1, 1), 4, 1, 2),      # one pixel
    ((3, 6, 1, 7), 6, 1, 6),      # H = 1
    ((2, 8, 5, 1), 12, 3, 4),     # W = 1 (padded 3x3)
    ((1, 70, 3, 3), 35, 3, 35),   # 2 channels a group, 35 groups: ragged against every block size
    ((2, 20, 4, 3), 10, 2, 10),   # 2 in, 1 out per group
    ((1, 3, 8, 8), 9, 3, 3),      # depthwise, channel multiplier 3
], ids=["1x1-pixel", "H1", "W1", "35-groups", "2-to-1", "mult3"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_awkward_shapes(shape, c_out, kernel, groups, layout):
    run_case(shape, c_out, kernel, groups=groups, padding=1 if shape[3] == 1 else 0, layout=layout)


@pytest.mark.parametrize("name,transform", [
    ("channel slice", lambda t: torch.cat([t, t], 1)[:, ::2]),
    ("spatial slice", lambda t: F.pad(t, (1, 0, 2, 0))[:, :, 2:, 1:]),
    ("transposed HW", lambda t: t.transpose(2, 3)),
])
@pytest.mark.parametrize("groups", [2, 4], ids=["grouped", "depthwise"])
def test_strided_inputs(name, transform, groups):
    """Any strides are read in place (the kernels take all four strides)."""
    run_case((2, 4, 5, 6), 4, 3, groups=groups, padding=1, transform=transform)


def test_without_bias_and_partial_gradients():
    run_case((2, 8, 6, 6), 8, 3, groups=4, padding=1, bias=False)
    run_case((2, 8, 6, 6), 8, 3, groups=8, padding=1, bias=False)
    x = torch.randn(2, 8, 5, 5, device=DEVICE, requires_grad=True)
    w = torch.randn(8, 2, 3, 3, device=DEVICE)  # no weight gradient wanted
    (dx,) = torch.autograd.grad(kernels.conv2d(x, w, groups=4).sum(), [x])
    check("dx only", dx, torch.autograd.grad(F.conv2d(x.double(), w.double(), groups=4).sum(), [x])[0], 1e-5)


def test_channels_last_weight_gradient_keeps_its_format():
    x = torch.randn(2, 8, 5, 5, device=DEVICE)
    w = torch.randn(16, 2, 3, 3, device=DEVICE).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    (dw,) = torch.autograd.grad(kernels.conv2d(x, w, groups=4).sum(), [w])
    assert dw.is_contiguous(memory_format=torch.channels_last)
    check("dw", dw, torch.autograd.grad(F.conv2d(x.double(), w.double(), groups=4).sum(), [w])[0], 1e-5)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: _common.DTYPES[d])
def test_dense_convolution_on_the_triton_path(dtype):
    kernels.conv2d_decisions(clear=True)
    run_case((2, 5, 6, 7), 7, 3, groups=1, padding=1, dtype=dtype, layout="channels_last")
    assert paths_taken() == {"triton-grouped"}


def test_empty_batch():
    x = torch.randn(0, 4, 5, 5, device=DEVICE, requires_grad=True)
    w = torch.randn(4, 1, 3, 3, device=DEVICE, requires_grad=True)
    y = kernels.conv2d(x, w, groups=4)
    assert y.shape == (0, 4, 3, 3)
    dx, dw = torch.autograd.grad(y.sum(), [x, w])
    assert dx.shape == x.shape and torch.equal(dw, torch.zeros_like(dw))


# --- autotune configs ----------------------------------------------------------------------

AUTOTUNED = [k for k in _common.AUTOTUNED if k.fn.fn.__module__.startswith("kernels.conv2d.")]  # k.fn.fn: the Python function


@pytest.mark.parametrize("index", range(max(len(k.configs) for k in AUTOTUNED)))
def test_every_autotune_config(index):
    """Each GPU tile through the interpreter. 40 output channels of 5 per group: 16-wide tiles
    hold groups that straddle two tiles; 20 channels in of a group of 10: 16-wide chunks split
    a group; 100 output and 180 input pixels: ragged pixel tiles of every height."""
    with forced_config(index):
        run_case((2, 40, 9, 10), 40, 3, groups=8, padding=1, stride=(2, 1), layout="channels_last", seed=index)
        run_case((1, 20, 5, 6), 30, 3, groups=2, padding=1, seed=index)
        run_case((2, 40, 7, 6), 40, 3, groups=40, padding=1, stride=2, seed=index)


# --- tf32 ----------------------------------------------------------------------------------

def test_fp32_follows_cudnn_allow_tf32():
    """tf32 dot products exactly when cuDNN would use them: fp32 inputs with allow_tf32 on."""
    torch.backends.cudnn.allow_tf32 = True
    assert not kernels.conv2d.geometry.ieee_products(torch.float32) and not kernels.conv2d.geometry.ieee_products(torch.bfloat16)
    kernels.conv2d_decisions(clear=True)
    run_case((2, 16, 6, 6), 16, 3, groups=4, padding=1, tol=_common.tolerance("tf32"))
    assert [d["tf32"] for d in kernels.conv2d_decisions()] == [True] * 3
    torch.backends.cudnn.allow_tf32 = False
    assert kernels.conv2d.geometry.ieee_products(torch.float32) and not kernels.conv2d.geometry.ieee_products(torch.float16)


# --- hypothesis ----------------------------------------------------------------------------

@st.composite
def conv_shapes(draw):
    groups = draw(st.integers(1, 6))
    cin_per_group = draw(st.sampled_from([1, 1, 2, 3, 4]))
    cout_per_group = draw(st.integers(1, 4))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    stride = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    if stride == (1, 1) and draw(st.booleans()):
        padding = "same"
    else:
        padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    pad = (0, 0) if padding == "same" else padding
    h = draw(st.integers(max(1, dilation[0] * (kh - 1) + 1 - 2 * pad[0]), 9))
    w = draw(st.integers(max(1, dilation[1] * (kw - 1) + 1 - 2 * pad[1]), 9))
    return dict(x_shape=(draw(st.integers(1, 3)), groups * cin_per_group, h, w), c_out=groups * cout_per_group,
                kernel=(kh, kw), groups=groups, stride=stride, padding=padding, dilation=dilation)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=conv_shapes(), bias=st.booleans(), dtype=st.sampled_from(DTYPES), layout=st.sampled_from(LAYOUTS),
       seed=st.integers(0, 2**16))
def test_hypothesis(case, bias, dtype, layout, seed):
    run_case(**case, bias=bias, dtype=dtype, layout=layout, seed=seed)


def test_autocast_casts_like_f_conv2d():
    """A bf16 activation and an fp32 weight under autocast: computed in the autocast dtype, with
    gradients flowing back to the fp32 parameters, as nn.Conv2d does."""
    device_type = torch.device(DEVICE).type
    x = torch.randn(2, 8, 5, 5, device=DEVICE)
    w = torch.randn(8, 2, 3, 3, device=DEVICE, requires_grad=True)
    b = torch.randn(8, device=DEVICE, requires_grad=True)
    with torch.autocast(device_type, dtype=torch.bfloat16):
        y = kernels.conv2d(x.to(torch.bfloat16), w, b, padding=1, groups=4)
        ref = F.conv2d(x.to(torch.bfloat16), w, b, padding=1, groups=4)
    assert y.dtype == ref.dtype == torch.bfloat16
    check("y", y, F.conv2d(x.bfloat16().double(), w.bfloat16().double(), b.bfloat16().double(), padding=1,
                           groups=4), _common.tolerance(torch.bfloat16))
    dw, db = torch.autograd.grad(y.float().sum(), [w, b])
    assert dw.dtype == db.dtype == torch.float32


# --- the dispatcher ------------------------------------------------------------------------------

def test_policies_and_what_they_record():
    kernels.conv2d_decisions(clear=True)
    run_case((1, 8, 5, 5), 8, 3, groups=4, padding=1, policy="torch")
    run_case((1, 8, 5, 5), 8, 3, groups=1, padding=1, policy="auto")
    by_direction = {(d["groups"], d["direction"]): d for d in kernels.conv2d_decisions()}
    assert {k: (d["path"], d["source"]) for k, d in by_direction.items()} == {
        (4, "forward"): ("torch", "policy"), (4, "input_grad"): ("torch", "policy"),
        (4, "weight_grad"): ("torch", "policy"),
        (1, "forward"): ("torch", "rule"), (1, "input_grad"): ("torch", "rule"), (1, "weight_grad"): ("torch", "rule")}
    d = by_direction[(4, "forward")]
    assert (d["x"], d["weight"], d["groups"], d["dtype"], d["layout"], d["calls"]) == \
        ((1, 8, 5, 5), (8, 2, 3, 3), 4, "fp32", "nchw", 1)
    assert d["key"].startswith("forward x=1x8x5x5 w=8x2x3x3 s=1x1 p=1x1x1x1 d=1x1 g=4 fp32 nchw")
    if DEVICE == "cpu":  # nothing to time under the interpreter: grouped goes to Triton by rule
        kernels.conv2d_decisions(clear=True)
        run_case((1, 8, 5, 5), 8, 3, groups=8, padding=1, policy="auto")
        assert {(d["path"], d["source"]) for d in kernels.conv2d_decisions()} == {("triton-depthwise", "rule")}


def test_bad_policy():
    with pytest.raises(ValueError, match=r"^policy: expected one of 'auto', 'triton', 'torch', got 'cudnn'$"):
        with kernels.conv2d_dispatch("cudnn"):
            pass


def test_measured_decisions_are_cached_per_gpu(monkeypatch, tmp_path):
    """The timing itself needs a GPU; here the clock is a fake one that makes torch faster for
    the forward and Triton faster for the backwards. The decision follows the clock, is written
    to the cache file under the GPU's name, and a fresh process reads it back (source 'cache')."""
    cache = tmp_path / "dispatch.json"
    monkeypatch.setenv("KERNELS_CONV2D_CACHE", str(cache))
    monkeypatch.setattr(kernels.conv2d.dispatch, "_DISK_CACHE", None)
    monkeypatch.setattr(kernels.conv2d.dispatch, "_can_time", lambda x: True)
    monkeypatch.setattr(kernels.conv2d.dispatch, "_gpu_signature", lambda device: "Fake GPU | torch x | triton y")
    fake = {"forward": {"torch": 1.0, "triton-grouped": 2.0}, "input_grad": {"torch": 3.0, "triton-grouped": 1.5},
            "weight_grad": {"torch": 3.0, "triton-grouped": 2.5}}
    timed = []

    def fake_measure(direction, candidates):
        timed.append(direction)
        for fn in candidates.values():
            fn()  # every candidate runs (and must not fail) before it is timed
        return dict(fake[direction])

    monkeypatch.setattr(kernels.conv2d.dispatch, "_measure", fake_measure)
    kernels.conv2d_decisions(clear=True)
    run_case((2, 8, 5, 5), 8, 3, groups=4, padding=1, policy="auto")
    decisions = {d["direction"]: d for d in kernels.conv2d_decisions(clear=True)}
    assert {k: (d["path"], d["source"], d["times_ms"]) for k, d in decisions.items()} == {
        "forward": ("torch", "measured", fake["forward"]),
        "input_grad": ("triton-grouped", "measured", fake["input_grad"]),
        "weight_grad": ("triton-grouped", "measured", fake["weight_grad"])}
    assert timed == ["forward", "input_grad", "weight_grad"]
    saved = json.loads(cache.read_text())
    assert list(saved) == ["Fake GPU | torch x | triton y"] and len(saved["Fake GPU | torch x | triton y"]) == 3

    monkeypatch.setattr(kernels.conv2d.dispatch, "_DISK_CACHE", None)  # as a new process would start
    run_case((2, 8, 5, 5), 8, 3, groups=4, padding=1, policy="auto")
    assert {d["source"] for d in kernels.conv2d_decisions(clear=True)} == {"cache"}
    assert timed == ["forward", "input_grad", "weight_grad"]  # nothing timed again


# --- the module twin ----------------------------------------------------------------------------

def test_module_twin_keeps_parameters_keys_and_repr():
    ref = nn.Conv2d(8, 16, 3, stride=2, padding=1, groups=4, bias=True)
    twin = TritonConv2d(8, 16, 3, stride=2, padding=1, groups=4, bias=True)
    twin.load_state_dict(ref.state_dict())
    assert list(twin.state_dict()) == list(ref.state_dict()) and twin.extra_repr() == ref.extra_repr()
    x = torch.randn(2, 8, 7, 7)
    check("y", twin.to(DEVICE)(x.to(DEVICE)), ref.double()(x.double()), 1e-5)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_module_twin_padding_modes(mode):
    ref = nn.Conv2d(4, 4, 3, padding=1, groups=2, padding_mode=mode).double()
    model = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, groups=2, padding_mode=mode))
    model.load_state_dict(nn.Sequential(ref).state_dict())
    kernels.patch(model.to(DEVICE).float())
    assert type(model[0]) is TritonConv2d
    x = torch.randn(2, 4, 5, 6)
    check("y", model(x.to(DEVICE)), ref(x.double()), 1e-5)


def test_patch_swaps_only_grouped_convolutions():
    model = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=4), nn.Conv2d(8, 8, 1), nn.Conv2d(8, 8, 3, groups=8))
    kernels.patch(model, ops="conv2d")
    assert [type(m) for m in model] == [TritonConv2d, nn.Conv2d, TritonConv2d]
    kernels.unpatch(model)
    assert [type(m) for m in model] == [nn.Conv2d] * 3


# --- inputs that are wrong ------------------------------------------------------------------------

def _args(**over):
    args = dict(x=torch.randn(2, 8, 5, 5), weight=torch.randn(8, 2, 3, 3), bias=torch.randn(8), stride=1,
                padding=1, dilation=1, groups=4)
    args.update(over)
    return {k: v.to(DEVICE) if isinstance(v, torch.Tensor) and v.device.type == "cpu" else v for k, v in args.items()}


BAD = [
    ("x", TypeError, dict(x=[[1.0]]), "expected a torch.Tensor"),
    ("x", ValueError, dict(x=torch.randn(8, 5, 5)), "expected a 4-D tensor"),
    ("x", TypeError, dict(x=torch.randn(2, 8, 5, 5, dtype=F64)), "expected dtype"),
    ("x", TypeError, dict(x=torch.ones(2, 8, 5, 5, dtype=torch.int32)), "expected dtype"),
    ("x", ValueError, dict(x=torch.randn(2, 8, 5, 5, device="meta")), "expected a CUDA tensor"),
    ("weight", TypeError, dict(weight="w"), "expected a torch.Tensor"),
    ("weight", ValueError, dict(weight=torch.randn(8, 2, 3)), "expected a 4-D tensor"),
    ("weight", TypeError, dict(weight=torch.randn(8, 2, 3, 3, dtype=torch.float16)), "expected dtype torch.float32"),
    ("weight", ValueError, dict(weight=torch.randn(8, 2, 3, 3, device="meta")), "expected a tensor on"),
    ("weight", ValueError, dict(weight=torch.randn(8, 4, 3, 3)), r"expected shape \[8, 2, kH >= 1, kW >= 1\]"),
    ("weight", ValueError, dict(weight=torch.randn(8, 2, 0, 3)), r"expected shape \[8, 2, kH >= 1"),
    ("groups", ValueError, dict(groups=3), "expected a divisor of both x's 8 input channels and weight's 8"),
    ("groups", ValueError, dict(groups=4, weight=torch.randn(6, 2, 3, 3)), "expected a divisor .* weight's 6 output channels"),
    ("groups", ValueError, dict(groups=0), "expected an int >= 1"),
    ("groups", TypeError, dict(groups=4.0), "expected an int"),
    ("bias", ValueError, dict(bias=torch.randn(4)), r"expected shape \[8\]"),
    ("bias", TypeError, dict(bias=torch.randn(8, dtype=torch.bfloat16)), "expected dtype torch.float32"),
    ("bias", TypeError, dict(bias=3.0), "expected a torch.Tensor"),
    ("stride", ValueError, dict(stride=0), "expected an int >= 1 or a pair of them"),
    ("stride", ValueError, dict(stride=(1, 2, 3)), "expected an int >= 1 or a pair of them"),
    ("stride", TypeError, dict(stride=1.5), "expected an int >= 1 or a pair of them"),
    ("padding", ValueError, dict(padding=-1), "expected an int >= 0 or a pair of them"),
    ("padding", ValueError, dict(padding="full"), "expected an int >= 0, a pair of them, 'same' or 'valid'"),
    ("padding", ValueError, dict(padding="same", stride=2), "'same' needs stride 1"),
    ("dilation", ValueError, dict(dilation=0), "expected an int >= 1 or a pair of them"),
    ("dilation", TypeError, dict(dilation=(1, True)), "expected an int >= 1 or a pair of them"),
    ("x", ValueError, dict(x=torch.randn(2, 8, 2, 2), padding=0), "expected a padded input at least as large"),
]


@pytest.mark.parametrize("arg,exc,over,message", BAD, ids=[f"{a}-{i}" for i, (a, *_) in enumerate(BAD)])
def test_bad_input(arg, exc, over, message):
    with pytest.raises(exc, match=rf"^{arg}: {message}"):
        kernels.conv2d(**_args(**over))


def test_cpu_tensor_without_interpreter_is_refused():
    check_cpu_refused("x = torch.randn(2, 4, 5, 5)", "kernels.conv2d(x, torch.randn(4, 1, 3, 3), groups=4)",
                      "kernels.TritonConv2d(4, 4, 3, groups=4)(x)")
