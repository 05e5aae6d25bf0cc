"""kernels.squeeze_excite and its module twin against torch in float64 on the CPU.

Runs through the Triton interpreter (TRITON_INTERPRET=1 set before triton is imported, as
``nox -s tests`` does) on CPU tensors, or on a CUDA GPU when there is one and the interpreter is
off. Every output and workspace is poisoned with NaN before each call, so an element a kernel
failed to write fails the comparison; NaN never passes.
"""

from __future__ import annotations

import copy
import sys

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kernels
import models
from kernels import TritonSqueezeExcite, _common
from models.blocks import SqueezeExcite
from tests.kernels.helpers import (DEVICE, DTYPES, F64, LAYOUTS, check, check_against_float64, check_cpu_refused,
                                   forced_config, hypothesis_examples, needs_device, random_tensor, to_layout)

pytestmark = needs_device
se_module = sys.modules["kernels.squeeze_excite"]

EXAMPLES = hypothesis_examples(15)
NAMES = ["dx", "dw1", "db1", "dw2", "db2", "dresidual"]


def reference(x, w1, b1, w2, b2, residual, relu):
    """models.blocks.SqueezeExcite's formula, in whatever dtype it is given (float64 here)."""
    m = x.mean((2, 3))
    h = F.relu(F.linear(m, w1.reshape(w1.shape[0], -1), b1))
    s = torch.sigmoid(F.linear(h, w2.reshape(w2.shape[0], -1), b2))
    y = x * s[:, :, None, None]
    if residual is not None:
        y = y + residual
    return F.relu(y) if relu else y


def run_case(shape, dtype, layout="nchw", *, reduction=4, residual, relu, weights="conv", param_dtype=torch.float32,
             bias=True, seed=0, transform=None, dy_transform=None, grads=None):
    """One call of squeeze_excite (forward and backward) vs the float64 formula; returns y.

    ``grads``: the indices of (x, w1, b1, w2, b2, residual) that require grad (default: all).
    """
    gen = torch.Generator().manual_seed(seed)
    n, c = shape[:2]
    r_ = max(c // reduction, 1)
    wshape = (lambda o, i: (o, i, 1, 1)) if weights == "conv" else (lambda o, i: (o, i))
    x = random_tensor(shape, dtype, gen, scale=2.0, shift=0.3)
    w1 = random_tensor(wshape(r_, c), param_dtype, gen, scale=c ** -0.5 * 2)
    b1 = random_tensor(r_, param_dtype, gen, scale=0.5) if bias else None
    w2 = random_tensor(wshape(c, r_), param_dtype, gen, scale=r_ ** -0.5 * 2)
    b2 = random_tensor(c, param_dtype, gen, scale=0.5) if bias else None
    r = random_tensor(shape, dtype, gen) if residual else None
    dy = random_tensor(shape, dtype, gen)
    originals = [x, w1, b1, w2, b2, r]
    grads = range(6) if grads is None else grads

    def dev(t, i):
        if t is None:
            return None
        t = to_layout(t, layout) if t.dim() == 4 and i in (0, 5) else t
        t = t.to(DEVICE)
        if i == 0 and transform:
            t = transform(t)
        return t.requires_grad_(i in grads)

    inputs = [dev(t, i) for i, t in enumerate(originals)]
    dys = to_layout(dy, layout).to(DEVICE)
    dys = dy_transform(dys) if dy_transform else dys
    with _common.poison_outputs():
        y = kernels.squeeze_excite(inputs[0], *inputs[1:5], residual=inputs[5], relu=relu)
        wanted = [i for i, t in enumerate(inputs) if t is not None and t.requires_grad]
        got = torch.autograd.grad(y, [inputs[i] for i in wanted], dys)

    ref_in = [(transform(t) if (i == 0 and transform) else t) for i, t in enumerate(originals)]
    ref_in = [t.double().requires_grad_(True) if t is not None else None for t in ref_in]
    ref = reference(*ref_in, relu)
    ref_grads = torch.autograd.grad(ref, [ref_in[i] for i in wanted],
                                    (dy_transform(dy) if dy_transform else dy).double())

    tol = _common.tolerance(dtype)
    assert y.dtype == dtype and y.shape == inputs[0].shape
    if not transform:
        assert y.is_contiguous(memory_format=torch.channels_last if layout == "channels_last"
                               else torch.contiguous_format)
    check("y", y, ref, tol)
    floors = _fp32_floors(ref_in, wanted, ref_grads, dy_transform(dy) if dy_transform else dy, relu) \
        if dtype == param_dtype == torch.float32 else {}
    for i, g, gr in zip(wanted, got, ref_grads, strict=True):
        assert g.dtype == inputs[i].dtype and g.shape == inputs[i].shape, NAMES[i]
        # the weights' gradients are sums over the batch of products of fp32 values computed from
        # rounded activations: they carry the activation dtype's rounding, not the weights'
        check(NAMES[i], g, gr, max(tol, _common.tolerance(param_dtype), floors.get(i, 0.0)))
    return y


# An fp32 gradient can be ill-conditioned: the excitation's dz1 = w2^T dz2 a sum that cancels to a
# small fraction of its terms, its terms scaled by s * (1 - s), or y within rounding of 0 where the
# ReLU's mask is taken. No fp32 arithmetic then meets the contract's relative bound: torch's own fp32
# autograd of the same formula misses it too (measured at two of 150 random hypothesis cases: dw1
# 1.4e-5 and 1.1e-2 against 1e-5), and changing the fp32 inputs by one unit in the last place
# moves the exact float64 gradient by up to half the bound (dw1 at 1x32x4x1, seed 70: 5.2e-6).
# As the contract does for batch norm on two or fewer values, such a gradient is held to what
# fp32 itself does there: four times torch's error on the same values, or eight times the largest
# move that three random one-ulp changes of the inputs make (a computation in fp32 rounds each
# intermediate, not only its inputs: the kernel's dw1 there is 1.2e-5, 2.3x that move), whichever
# is larger, and only where that exceeds the bound; everywhere else the table's 1e-5 holds.
TORCH_ERRORS, ULP_MOVES = 4, 8


def _fp32_floors(ref_in, wanted, ref_grads, dy, relu) -> dict:
    """{input index: the bound of an ill-conditioned fp32 gradient} where it exceeds the table's."""
    def grads(inputs, dy_, dtype):
        ins = [t.detach().to(dtype).requires_grad_(True) if t is not None else None for t in inputs]
        return torch.autograd.grad(reference(*ins, relu), [ins[i] for i in wanted], dy_.to(dtype))

    def one_ulp(t, gen):
        if t is None:
            return None
        t32 = t.detach().float()
        step = (torch.nextafter(t32, torch.full_like(t32, float("inf"))) - t32).double()
        return t32.double() + step * (torch.randint(0, 2, t32.shape, generator=gen) * 2 - 1)

    floors = {i: TORCH_ERRORS * _common.relative_error(g, gr)
              for i, g, gr in zip(wanted, grads(ref_in, dy, torch.float32), ref_grads, strict=True)}
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        moved = grads([one_ulp(t, gen) for t in ref_in], one_ulp(dy, gen), torch.float64)
        for i, g, gr in zip(wanted, moved, ref_grads, strict=True):
            floors[i] = max(floors[i], ULP_MOVES * _common.relative_error(g, gr))
    bound = _common.tolerance(torch.float32)
    return {i: f for i, f in floors.items() if f > bound}


# --- every dtype, layout and mode -------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: _common.DTYPES[d])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("residual,relu", [(False, False), (True, True)], ids=["plain", "res-relu"])
def test_matrix(dtype, layout, residual, relu):
    # both weight layouts, alternating; reduction 4 and 16
    weights = "conv" if (DTYPES.index(dtype) + residual) % 2 else "linear"
    run_case((2, 16, 3, 5), dtype, layout, reduction=4 if relu else 16, residual=residual, relu=relu,
             weights=weights)


@pytest.mark.parametrize("residual,relu", [(True, False), (False, True)], ids=["res", "relu"])
@pytest.mark.parametrize("weights", ["conv", "linear"])
def test_residual_or_relu_alone(residual, relu, weights):
    run_case((2, 12, 4, 3), torch.float32, "channels_last", residual=residual, relu=relu, weights=weights)


AWKWARD = [
    ((1, 16, 7, 7), 16),  # batch 1, 7x7, one hidden unit
    ((2, 80, 3, 3), 16),  # 80 channels: not a multiple of the GPU block sizes; R=5
    ((3, 12, 1, 1), 4),  # H = W = 1: the batch is the pixel axis of channels_last
    ((2, 8, 1, 5), 4),  # H = 1
    ((2, 144, 2, 3), 4),  # R = 36 (two blocks of the GPU configs: test_every_autotune_config)
    ((17, 8, 2, 3), 4),  # batch >= MM_MIN_BATCH: the tl.dot excitation, a ragged block of images
]


@pytest.mark.parametrize("shape,reduction", AWKWARD, ids=lambda v: "x".join(map(str, v)) if isinstance(v, tuple)
                         else str(v))
@pytest.mark.parametrize("layout", LAYOUTS)
def test_awkward_shapes(shape, reduction, layout):
    run_case(shape, torch.float32, layout, reduction=reduction, residual=True, relu=True)


@pytest.mark.parametrize("index", range(3))
def test_every_autotune_config(index):
    # the GPU tiles (and the GPU excitation configs): several pixel tiles, chunks owning several
    # tiles and none, two channel blocks of 64, ragged hidden and channel blocks of the excitation
    with forced_config(index):
        run_case((2, 80, 9, 7), torch.float32, ("nchw", "channels_last")[index % 2], reduction=16, residual=True,
                 relu=True, seed=index)
        if index == 0:  # the tl.dot form: several blocks of images, channels and hidden units
            run_case((17, 80, 1, 1), torch.float32, "channels_last", reduction=4, residual=True, relu=True,
                     weights="linear")
        if index == 1:  # the matrix-vector form with two blocks of hidden units (R = 33)
            run_case((2, 132, 1, 2), torch.float32, "nchw", reduction=4, residual=False, relu=True)


# The excitation's GPU tiles (forced config 0): the hidden kernels' loops over the channels split
# into slices (one per 128 channels in the forward, 64 in the backward under the interpreter: 2
# and 3 at C=160), summed in slice order by the last program of each block to arrive (the forward
# merges two slices a trip); the backward's params kernel with more programs
# than the interpreter's 4 "SMs" (64 images a trip; the mean's gradient split between two blocks
# of hidden units, R = 40) and with fewer (C=64, R=16: 128 images a trip). The arrival counters
# are back at zero after every launch.
@pytest.mark.parametrize("shape,reduction", [((19, 160, 1, 2), 4), ((17, 64, 2, 1), 4)],
                         ids=["sliced-hidden-many-params-programs", "few-params-programs"])
def test_excitation_splits(shape, reduction):
    with forced_config(0):
        run_case(shape, torch.float32, "channels_last", reduction=reduction, residual=True, relu=True)
    assert _common._ARRIVALS and all(int(c.abs().sum()) == 0 for c in _common._ARRIVALS.values())


def test_forward_hidden_merges_slices_in_trips(monkeypatch):
    # the forward's hidden layer at the GPU config (steps of 128 channels: 3 slices at C = 300),
    # its last program summing 2 slices a trip: two trips, the last ragged
    monkeypatch.setattr(se_module, "HIDDEN_MERGE", 2)
    with forced_config(0):
        run_case((9, 300, 1, 1), torch.float32, "channels_last", reduction=4, residual=True, relu=False)
    assert all(int(c.abs().sum()) == 0 for c in _common._ARRIVALS.values())


@pytest.mark.parametrize("merge", [2, 32])
def test_backward_hidden_merges_slices_in_trips(monkeypatch, merge):
    # the matrix-vector backward's hidden kernel at the GPU config (steps of 32 channels: 5 slices
    # at C = 132): merged 2 slices a trip (three trips, the last ragged) and 32 (one, mostly masked)
    monkeypatch.setitem(se_module.EXCITE_MV, "HIDDEN_MERGE", merge)
    with forced_config(1):
        run_case((2, 132, 1, 2), torch.float32, "nchw", reduction=4, residual=False, relu=True, seed=merge)
    assert all(int(c.abs().sum()) == 0 for c in _common._ARRIVALS.values())


def test_mm_excitation_at_small_batch(monkeypatch):
    # the tl.dot form at batch 2 (most of its 16-image tile masked), in bf16 and fp16
    monkeypatch.setattr(se_module, "MM_MIN_BATCH", 1)
    run_case((2, 16, 3, 3), torch.bfloat16, "channels_last", residual=True, relu=True)
    run_case((1, 16, 1, 1), torch.float16, "nchw", residual=False, relu=False, weights="linear")


# The forward excitation's 16-image tensor-core tiles: batch 1 and 7 (one masked tile), 17 (a
# stand-in for batch 256: a full tile and a ragged one); R = 4, 20 and 16. Parameters in fp32
# (3xTF32 products) and, for fp16/bf16 on channels_last, in the activation dtype (products of the
# split hidden activations with the stored weights).
EXCITATION = [((1, 16, 2, 3), 4), ((7, 80, 3, 2), 4), ((17, 80, 1, 2), 5)]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: _common.DTYPES[d])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_excitation_image_blocks(monkeypatch, dtype, layout):
    monkeypatch.setattr(se_module, "FUSED_MAX_BATCH", 0)  # the tiles at every batch
    param_dtype = dtype if layout == "channels_last" else torch.float32
    for i, (shape, reduction) in enumerate(EXCITATION):
        run_case(shape, dtype, layout, reduction=reduction, residual=i != 1, relu=i != 0,
                 weights=("conv", "linear")[i % 2], param_dtype=param_dtype, seed=i)


@pytest.mark.parametrize("param_dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_excitation_gpu_tiles(monkeypatch, param_dtype):
    # the GPU excitation tiles: 80 channels are two blocks of 64 (the second ragged), R = 20 one
    # ragged block of 32, 7 and 17 images one and two tiles of 16
    monkeypatch.setattr(se_module, "FUSED_MAX_BATCH", 0)
    with forced_config(0):
        for n in (7, 17):
            run_case((n, 80, 1, 2), torch.bfloat16, "channels_last", reduction=4, residual=True, relu=True,
                     param_dtype=param_dtype, seed=n)


# Batches of at most FUSED_MAX_BATCH images: the forward in two launches (the squeeze's last
# programs finish the hidden layer, the scale's programs compute s for their tiles), without the
# excitation's kernels; above it, four. Batch 1 and 7 fused, 9 and 256 not. The arrival counters
# (per (image, channel block), then per image) are back at zero.
@pytest.mark.parametrize("n", [1, 7, 9, 256])
def test_small_batches_fuse_the_excitation(monkeypatch, n):
    launched = []
    tensor_core_excitation = se_module._excite_forward
    monkeypatch.setattr(se_module, "_excite_forward", lambda *a: launched.append(a) or tensor_core_excitation(*a))
    shape = (n, 16, 1, 1) if n == 256 else (n, 48, 3, 2)
    run_case(shape, torch.bfloat16, "channels_last", reduction=4, residual=True, relu=True, seed=n)
    assert bool(launched) == (n > se_module.FUSED_MAX_BATCH) == (n > 8)
    assert all(int(c.abs().sum()) == 0 for c in _common._ARRIVALS.values())


# The fused forward at the GPU tiles: the squeeze's channel blocks of 64, 16 and 256 (3, 10 and 1
# blocks of C = 160, summed in block order; a power-of-two bound of 16 blocks), R = 40 (two steps
# of 32 hidden units, the second ragged) in both the hidden layer and the scale's products.
@pytest.mark.parametrize("index", range(3))
def test_fused_excitation_at_every_config(index):
    with forced_config(index):
        run_case((7, 160, 2, 3), torch.float32, ("channels_last", "nchw")[index % 2], reduction=4, residual=index != 1,
                 relu=True, seed=index)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
def test_parameters_in_activation_dtype(dtype):
    # model.to(dtype): the weights and biases in the low precision too
    run_case((2, 16, 3, 4), dtype, "channels_last", residual=True, relu=True, param_dtype=dtype)


def test_no_bias():
    run_case((2, 16, 3, 3), torch.float32, residual=True, relu=True, bias=False)


# (1, 5): the reduce writes d(res) and no dx kernel runs; (5,): the dx kernel writes d(res) alone
@pytest.mark.parametrize("grads", [(0,), (5,), (1, 4), (2, 3), (1, 5)],
                         ids=["x", "residual", "w1-b2", "b1-w2", "w1-residual"])
def test_some_gradients(grads):
    run_case((2, 12, 3, 3), torch.float32, "channels_last", residual=True, relu=True, grads=grads)


@pytest.mark.parametrize("name,transform", [
    ("channel slice", lambda t: torch.stack([t, t], 2).flatten(1, 2)[:, ::2]),  # strided channels: read in place
    ("spatial slice", lambda t: F.pad(t, (1, 0))[:, :, :, 1:]),  # H and W do not merge: copied first
])
def test_non_contiguous_input(name, transform):
    run_case((2, 8, 4, 5), torch.float32, residual=False, relu=True, transform=transform)


def test_expanded_gradient():
    # dy with zero strides (the gradient of y.sum())
    run_case((2, 8, 3, 3), torch.float32, "channels_last", residual=True, relu=True,
             dy_transform=lambda t: t[:1, :1, :1, :1].expand(t.shape))


def test_empty_batch():
    x = torch.randn(0, 8, 3, 3, device=DEVICE)
    w1, w2 = torch.randn(2, 8, device=DEVICE), torch.randn(8, 2, device=DEVICE)
    with torch.no_grad():
        assert kernels.squeeze_excite(x, w1, None, w2, None).shape == x.shape


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 3), hidden=st.integers(1, 5), reduction=st.sampled_from([4, 16]), h=st.integers(1, 5),
       w=st.integers(1, 5), dtype=st.sampled_from(DTYPES), layout=st.sampled_from(LAYOUTS), residual=st.booleans(),
       relu=st.booleans(), weights=st.sampled_from(["conv", "linear"]), seed=st.integers(0, 2**16))
def test_hypothesis(n, hidden, reduction, h, w, dtype, layout, residual, relu, weights, seed):
    run_case((n, hidden * reduction, h, w), dtype, layout, reduction=reduction, residual=residual, relu=relu,
             weights=weights, seed=seed)


# Three of the ill-conditioned fp32 cases hypothesis drew (see _fp32_floors): dz1 a cancelling sum
# (torch's fp32 dw1 and db1 1.4e-5, the kernel's 1.3e-5; and torch's 1.4e-6, the kernel's 1.2e-5,
# where one-ulp input changes move it by 5.2e-6), and y within rounding of 0 under the ReLU (both
# 1.1e-2).
@pytest.mark.parametrize("shape,reduction,residual,relu,seed", [((1, 32, 4, 1), 16, True, False, 0),
                                                                ((1, 32, 4, 1), 16, True, False, 70),
                                                                ((1, 4, 1, 1), 4, True, True, 46812)])
def test_ill_conditioned_fp32_gradients(shape, reduction, residual, relu, seed):
    run_case(shape, torch.float32, "nchw", reduction=reduction, residual=residual, relu=relu, seed=seed)


# --- the module twin --------------------------------------------------------------------------

def _twins(channels=16, reduction=4):
    torch.manual_seed(0)
    ref = SqueezeExcite(channels, reduction)
    twin = TritonSqueezeExcite(channels, reduction)
    twin.load_state_dict(ref.state_dict())
    return ref, twin.to(DEVICE)


@pytest.mark.parametrize("residual,relu", [(False, False), (True, True)], ids=["plain", "res-relu"])
def test_module_matches_block(residual, relu):
    ref, twin = _twins()
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 16, 3, 3, generator=gen)
    r = torch.randn(2, 16, 3, 3, generator=gen) if residual else None
    with _common.poison_outputs():
        y = twin(x.to(DEVICE), residual=r.to(DEVICE) if residual else None, relu=relu)
        y.square().sum().backward()
    y_ref = ref(x, residual=r, relu=relu)
    y_ref.square().sum().backward()
    check("y", y, y_ref, 1e-5)
    for (name, p_ref), p in zip(ref.named_parameters(), twin.parameters(), strict=True):
        check(f"grad {name}", p.grad, p_ref.grad, 1e-5)


def test_module_state_dict_and_repr():
    ref, twin = _twins(32, 16)
    assert isinstance(twin, SqueezeExcite)
    assert list(twin.state_dict()) == list(ref.state_dict()) == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    for (k, a), b in zip(ref.state_dict().items(), twin.state_dict().values(), strict=True):
        assert torch.equal(a, b.cpu()), k
    assert twin.extra_repr() == ref.extra_repr()
    assert repr(twin).replace("TritonSqueezeExcite", "SqueezeExcite") == repr(ref)
    twin2 = copy.deepcopy(twin)
    check("deepcopy", twin2(torch.ones(1, 32, 2, 2, device=DEVICE)), ref(torch.ones(1, 32, 2, 2)), 1e-5)


@pytest.mark.usefixtures("ieee_fp32")
def test_patch_se_resnet50():
    # kernels.patch(ops={"squeeze_excite"}) swaps the 16 SE blocks (each fused with its block's
    # residual tail and ReLU); eval and training give the float64 model's outputs, gradients and
    # running statistics as closely as the unpatched fp32 model does
    torch.manual_seed(0)
    ref = models.create("se_resnet50").to(DEVICE)
    ref64 = copy.deepcopy(ref).double()
    model = copy.deepcopy(ref)
    storage = {k: v.data_ptr() for k, v in model.state_dict(keep_vars=True).items()}
    classes = {name: type(m) for name, m in model.named_modules()}
    assert kernels.patch(model, ops={"squeeze_excite"}) is model
    swapped = [n for n, m in model.named_modules() if type(m) is not classes[n]]
    assert len(swapped) == 16 and all(type(model.get_submodule(n)) is TritonSqueezeExcite for n in swapped)
    assert {k: v.data_ptr() for k, v in model.state_dict(keep_vars=True).items()} == storage
    assert list(model.state_dict()) == list(ref.state_dict())
    # 48x48: the last stage is 2x2, so every BN in training sees 8 values per channel (at 1x1 and
    # batch 2, a BN of two values turns rounding differences into different answers)
    x = torch.randn(2, 3, 48, 48, generator=torch.Generator().manual_seed(1)).to(DEVICE)
    for training in (False, True):
        ref.train(training), ref64.train(training), model.train(training)
        out_ref, out64 = ref(x), ref64(x.double())
        with _common.poison_outputs():
            out = model(x)
        check_against_float64(f"logits (training={training})", out, out_ref, out64)
    for (name, b_ref), b64, b in zip(ref.named_buffers(), ref64.buffers(), model.buffers(), strict=True):
        if b.is_floating_point():
            check_against_float64(name, b, b_ref, b64)
    for output in (out_ref, out64, out):
        output.square().sum().backward()
    # Training gradients of a 50-layer net with 8 values per BN channel: fp32 rounding puts ReLU
    # decisions on the other side of zero throughout (no input here is free of near-ties, as the
    # models of test_patch are), and each such decision reroutes a gradient. Which tensors
    # that hits depends on how each model rounds (the fp32 reference is ~1e-2 off float64 on most
    # gradients, 3e-5 on a few; a kernel that rounds otherwise moves one of those few by 8e-3), so
    # each patched gradient is held to twice the reference's worst. A wrong formula or a misrouted
    # tensor is off by far more; a backward kernel off by 1e-3 is the op tests' to find.
    grads = list(zip(ref.named_parameters(), ref64.parameters(), model.parameters(), strict=True))
    worst = max(kernels.relative_error(p_ref.grad, p64.grad) for (_, p_ref), p64, _ in grads)
    for (name, _), p64, p in grads:
        check(f"grad {name}", p.grad, p64.grad, 2 * worst + kernels.TOLERANCE["fp32"])
    kernels.unpatch(model)
    assert {name: type(m) for name, m in model.named_modules()} == classes


# --- inputs that are wrong --------------------------------------------------------------------

def _args(**over):
    c, r_ = 8, 2
    args = dict(x=torch.randn(2, c, 3, 3), w1=torch.randn(r_, c), b1=torch.zeros(r_), w2=torch.randn(c, r_, 1, 1),
                b2=torch.zeros(c), residual=None, relu=False)
    args.update(over)
    return {k: v.to(DEVICE) if isinstance(v, torch.Tensor) and v.device.type == "cpu" else v for k, v in args.items()}


def _call(args):
    a = dict(args)
    return kernels.squeeze_excite(a.pop("x"), a.pop("w1"), a.pop("b1"), a.pop("w2"), a.pop("b2"), **a)


BAD = [
    ("x", TypeError, dict(x=[1.0, 2.0])),
    ("x", ValueError, dict(x=torch.randn(2, 8, 3))),  # rank 3
    ("x", ValueError, dict(x=torch.randn(2, 8, 3, 3, 1))),  # rank 5
    ("x", TypeError, dict(x=torch.randn(2, 8, 3, 3, dtype=F64))),
    ("x", TypeError, dict(x=torch.ones(2, 8, 3, 3, dtype=torch.int32))),
    ("x", ValueError, dict(x=torch.randn(2, 8, 3, 3, device="meta"))),
    ("w1", TypeError, dict(w1="weights")),
    ("w1", ValueError, dict(w1=torch.randn(2, 9))),  # mismatched channels
    ("w1", ValueError, dict(w1=torch.randn(2, 8, 3, 3))),  # not a 1x1 conv
    ("w1", ValueError, dict(w1=torch.randn(16))),  # rank 1
    ("w1", ValueError, dict(w1=torch.randn(0, 8), w2=torch.randn(8, 0), b1=torch.zeros(0))),  # no hidden unit
    ("w1", TypeError, dict(w1=torch.randn(2, 8, dtype=F64))),
    ("w1", ValueError, dict(w1=torch.randn(2, 8, device="meta"))),
    ("w2", ValueError, dict(w2=torch.randn(8, 3))),  # mismatched hidden units
    ("w2", ValueError, dict(w2=torch.randn(7, 2, 1, 1))),  # mismatched channels
    ("w2", ValueError, dict(w2=torch.randn(8, 2, 1, 2))),
    ("w2", TypeError, dict(w2=torch.ones(8, 2, dtype=torch.int64))),
    ("w2", ValueError, dict(w2=torch.randn(8, 2, device="meta"))),
    ("b1", ValueError, dict(b1=torch.zeros(3))),
    ("b1", ValueError, dict(b1=torch.zeros(2, 1))),
    ("b1", TypeError, dict(b1=torch.zeros(2, dtype=F64))),
    ("b1", TypeError, dict(b1=[0.0, 0.0])),
    ("b1", ValueError, dict(b1=torch.zeros(2, device="meta"))),
    ("b2", ValueError, dict(b2=torch.zeros(2))),
    ("b2", TypeError, dict(b2=torch.zeros(8, dtype=torch.int32))),
    ("b2", ValueError, dict(b2=torch.zeros(8, device="meta"))),
    ("residual", ValueError, dict(residual=torch.randn(2, 8, 3, 4))),
    ("residual", ValueError, dict(residual=torch.randn(2, 8, 3))),
    ("residual", TypeError, dict(residual=torch.randn(2, 8, 3, 3, dtype=torch.float16))),
    ("residual", ValueError, dict(residual=torch.randn(2, 8, 3, 3, device="meta"))),
    ("relu", TypeError, dict(relu=1)),
]


@pytest.mark.parametrize("arg,exc,over", BAD, ids=[f"{a}-{i}" for i, (a, _, _) in enumerate(BAD)])
def test_bad_input(arg, exc, over):
    with pytest.raises(exc, match=rf"^{arg}: expected"):
        _call(_args(**over))


def test_bad_input_through_the_module():
    twin = TritonSqueezeExcite(8, 4).to(DEVICE)
    with pytest.raises(ValueError, match="^x: expected a 4-D tensor"):
        twin(torch.randn(2, 8, 3, device=DEVICE))
    with pytest.raises(ValueError, match=r"^w1: expected shape \[R, 16\]"):
        twin(torch.randn(2, 16, 3, 3, device=DEVICE))
    with pytest.raises(TypeError, match="^relu: expected a bool"):
        twin(torch.randn(2, 8, 3, 3, device=DEVICE), relu=None)


def test_cpu_tensor_without_interpreter_is_refused():
    check_cpu_refused("x = torch.randn(2, 8, 3, 3)",
                      "kernels.squeeze_excite(x, torch.randn(2, 8), None, torch.randn(8, 2), None)",
                      "kernels.TritonSqueezeExcite(8, 4)(x)")
