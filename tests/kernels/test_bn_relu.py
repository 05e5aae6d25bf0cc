"""kernels.bn_relu and its module twin against torch in float64 on the CPU.

Runs through the Triton interpreter (TRITON_INTERPRET=1 set before triton is imported, as
``nox -s tests`` does) on CPU tensors, or on a CUDA GPU when there is one and the interpreter is
off. Every output and workspace is poisoned with NaN before each call, so an element a kernel
failed to write fails the comparison; NaN never passes.
"""

from __future__ import annotations

import contextlib
import copy
import importlib

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import kernels
from kernels import TritonBatchNormReLU2d, _common
from models.blocks import BatchNormReLU2d
from tests.kernels.helpers import (DEVICE, DTYPES, F64, LAYOUTS, check, check_cpu_refused, forced_config,
                                   hypothesis_examples, needs_device, random_tensor, to_layout)

pytestmark = needs_device
EXAMPLES = hypothesis_examples(20)
bn_relu_module = importlib.import_module("kernels.bn_relu")  # kernels.bn_relu is the function


def run_case(shape, dtype, layout="nchw", *, training, residual, relu, affine=True, running=True, momentum=0.1,
             eps=1e-5, param_dtype=torch.float32, seed=0, transform=None, dy_transform=None, res_layout=None,
             grads=(0, 1, 2, 3)):
    """One call of bn_relu (forward and backward) vs F.batch_norm in float64; returns the output.
    ``grads``: the indices of (x, weight, bias, residual) that require grad."""
    gen = torch.Generator().manual_seed(seed)
    c = shape[1]
    x = random_tensor(shape, dtype, gen, scale=2.0, shift=0.5)
    weight = (torch.rand(c, generator=gen, dtype=F64) + 0.5).to(param_dtype) if affine else None
    bias = random_tensor(c, param_dtype, gen, scale=0.5) if affine else None
    rm = random_tensor(c, param_dtype, gen, scale=0.1) if running else None
    rv = (torch.rand(c, generator=gen, dtype=F64) + 0.5).to(param_dtype) if running else None
    r = random_tensor(shape, dtype, gen) if residual else None
    dy = random_tensor(shape, dtype, gen)

    def dev(t, lay=layout):
        if t is None:
            return None
        t = to_layout(t, lay) if t.dim() == 4 else t
        return t.to(DEVICE)

    xs = dev(x)
    xs = transform(xs) if transform else xs
    xs.requires_grad_(0 in grads)
    params = [dev(t).requires_grad_(i in grads) if t is not None else None for i, t in enumerate((weight, bias), 1)]
    rs = dev(r, res_layout or layout).requires_grad_(3 in grads) if residual else None
    rm_k, rv_k = dev(rm.clone()) if running else None, dev(rv.clone()) if running else None
    dys = dev(dy)
    dys = dy_transform(dys) if dy_transform else dys
    with _common.poison_outputs():
        y = kernels.bn_relu(xs, params[0], params[1], rm_k, rv_k, training=training, momentum=momentum, eps=eps,
                            relu=relu, residual=rs)
        inputs = [t for t in (xs, *params, rs) if t is not None and t.requires_grad]
        outputs = torch.autograd.grad(y, inputs, dys)

    x64 = (transform(x) if transform else x).double().requires_grad_(True)
    p64 = [t.double().requires_grad_(True) if t is not None else None for t in (weight, bias)]
    r64 = r.double().requires_grad_(True) if residual else None
    rm64, rv64 = (rm.double(), rv.double()) if running else (None, None)
    ref = F.batch_norm(x64, rm64, rv64, p64[0], p64[1], training, momentum, eps)
    if residual:
        ref = ref + r64
    if relu:
        ref = F.relu(ref)
    ref_grads = torch.autograd.grad(ref, [t for i, t in enumerate((x64, *p64, r64)) if t is not None and i in grads],
                                    (dy_transform(dy) if dy_transform else dy).double())

    tol = _common.tolerance(dtype)
    assert y.dtype == dtype and y.shape == xs.shape
    if layout == "channels_last" and not transform:
        assert y.is_contiguous(memory_format=torch.channels_last)
    elif not transform:
        assert y.is_contiguous()
    check("y", y, ref, tol)
    names = [n for n, t in (("dx", xs), ("dweight", params[0]), ("dbias", params[1]), ("dresidual", rs))
             if t is not None and t.requires_grad]
    for name, g, inp, gr in zip(names, outputs, inputs, ref_grads, strict=True):
        assert g.dtype == inp.dtype, name
        check(name, g, gr, tol)
    if running:
        if training:
            check("running_mean", rm_k, rm64, _common.tolerance(param_dtype))
            check("running_var", rv_k, rv64, _common.tolerance(param_dtype))
        else:  # untouched
            assert torch.equal(rm_k.cpu(), rm) and torch.equal(rv_k.cpu(), rv)
    return y



# Subsets of the gradients, with residual and ReLU: where the reduction runs (dx in training, or
# the parameters' gradients) it writes d(res) = g and the dx kernel reads it back (or is not
# launched at all: d(res) and the parameters' gradients); in inference without the parameters'
# gradients the dx kernel writes both; d(res) alone is the dx kernel writing g, with neither the
# reduction nor the fold (3T in training, where the reduction's 4T served no one).
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("grads", [(3,), (0, 3), (1, 3), (0,), (0, 1, 2)], ids=["res", "x-res", "w-res", "x", "x-w-b"])
def test_some_gradients(monkeypatch, training, grads):
    if grads == (3,):
        for name in ("_bn_bwd_reduce_kernel", "_bn_bwd_fold_kernel"):
            monkeypatch.setattr(bn_relu_module, name, _NotLaunched(name))
    run_case((2, 12, 3, 5), torch.float32, "channels_last", training=training, residual=True, relu=True, grads=grads)


class _NotLaunched:
    """Stands for a kernel a path must not launch: indexing it with a grid fails the test."""

    def __init__(self, name: str):
        self.name = name

    def __getitem__(self, grid):
        raise AssertionError(f"{self.name} was launched")

# --- every dtype, layout and mode -------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: _common.DTYPES[d])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("residual", [False, True], ids=["", "res"])
@pytest.mark.parametrize("relu", [True, False], ids=["relu", "norelu"])
def test_matrix(dtype, layout, training, residual, relu):
    run_case((2, 5, 3, 5), dtype, layout, training=training, residual=residual, relu=relu)


AWKWARD = [
    (1, 3, 5, 7),  # batch 1, odd H and W
    (2, 67, 3, 3),  # channels not a multiple of any block size: two channel blocks
    (3, 4, 1, 9),  # H = 1
    (2, 6, 7, 1),  # W = 1
    (5, 2, 1, 1),  # 1x1 spatial: the batch is the pixel axis
    (2, 3, 11, 13),  # several pixel tiles, ragged
]


@pytest.mark.parametrize("shape", AWKWARD, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("layout", LAYOUTS)
def test_awkward_shapes(shape, layout):
    run_case(shape, torch.float32, layout, training=True, residual=True, relu=True)
    run_case(shape, torch.bfloat16, layout, training=False, residual=False, relu=True, seed=1)


def test_batch_one_pixel_inference():
    run_case((1, 8, 1, 1), torch.float16, training=False, residual=True, relu=True)


@pytest.mark.parametrize("name,transform", [
    # same values, other strides
    ("channel slice", lambda t: torch.stack([t, t], 2).flatten(1, 2)[:, ::2]),  # strided channels: read in place
    ("spatial slice", lambda t: F.pad(t, (1, 0))[:, :, :, 1:]),  # H and W do not merge: copied first
    ("transposed HW", lambda t: t.transpose(2, 3).contiguous().transpose(2, 3)),  # likewise
])
def test_non_contiguous_input(name, transform):
    run_case((2, 6, 4, 5), torch.float32, training=True, residual=False, relu=True, transform=transform)


def test_expanded_gradient_and_mixed_layouts():
    # dy with zero strides (the gradient of y.sum()), residual in the other layout than x
    run_case((2, 4, 3, 3), torch.float32, "channels_last", training=True, residual=True, relu=True,
             dy_transform=lambda t: t[:1, :1, :1, :1].expand(t.shape), res_layout="nchw")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
def test_parameters_in_activation_dtype(dtype):
    # model.to(dtype): weight, bias and running statistics in the low precision too
    run_case((2, 5, 4, 3), dtype, "channels_last", training=True, residual=True, relu=True, param_dtype=dtype)


def test_no_affine_no_running_stats():
    run_case((2, 5, 3, 3), torch.float32, training=True, residual=False, relu=True, affine=False, running=False)


def test_large_mean_does_not_cancel():
    # |mean| / std = 1e3: sum-of-squares in fp32 would lose the variance; the shifted sums keep it
    gen = torch.Generator().manual_seed(0)
    x = (torch.randn(4, 3, 8, 8, generator=gen, dtype=F64) + 1000.0).float().to(DEVICE)
    rm, rv = torch.zeros(3, device=DEVICE), torch.ones(3, device=DEVICE)
    with _common.poison_outputs():
        y = kernels.bn_relu(x, None, None, rm, rv, training=True, relu=False, momentum=1.0)
    ref = F.batch_norm(x.double().cpu(), None, None, training=True)
    check("y", y, ref, 1e-3)  # the fp32 input itself holds x - mean to ~1e-4
    check("running_var", rv, x.double().cpu().var((0, 2, 3)), 1e-5)


@pytest.mark.parametrize("index", range(3))
def test_every_autotune_config(index):
    # several pixel tiles and two channel blocks under every config; chunks owning several tiles
    with forced_config(index):
        for layout in LAYOUTS:
            run_case((4, 70, 5, 7), torch.float32, layout, training=True, residual=True, relu=True, seed=index)


@pytest.mark.parametrize("chunks", [1, 2, 5, bn_relu_module.FOLD_BLOCK_K + 2])
def test_split_reduction_any_chunk_count(chunks, monkeypatch):
    # [8, 256] tiles: 16 pixel tiles. 1 chunk owns them all; 130 chunks: most own no tile, and
    # the fold merges them in two blocks of 128
    monkeypatch.setattr(_common, "split_chunks", lambda *args: chunks)
    with _common.use_config(2) if _common.INTERPRET else contextlib.nullcontext():
        run_case((3, 5, 6, 7), torch.float32, "channels_last", training=True, residual=False, relu=False,
                 seed=chunks)


@contextlib.contextmanager
def recorded_launches(monkeypatch):
    """Every launch of bn_relu's kernels inside the block, in order, as ``(kernel name, grid,
    arguments by name)`` with the grid evaluated for the config launched (the JIT functions'
    ``run``, which an autotuner calls with its chosen config, is wrapped)."""
    launches = []
    for name in dir(bn_relu_module):
        kernel = getattr(bn_relu_module, name)
        if not (name.startswith("_bn_") and name.endswith("_kernel")):
            continue
        jit = kernel.fn if hasattr(kernel, "configs") else kernel

        def run(*args, grid, _run=jit.run, _name=name, _jit=jit, **kwargs):
            named = dict(zip(_jit.arg_names, args), **kwargs)
            launches.append((_name, tuple(grid(named) if callable(grid) else grid), named))
            return _run(*args, grid=grid, **kwargs)

        monkeypatch.setattr(jit, "run", run)
    yield launches


@pytest.mark.parametrize("layout", LAYOUTS)
def test_inference_is_one_launch(layout, monkeypatch):
    # The apply folds the running statistics, weight and bias itself; under the [16, 256] tile
    # the 324 pixels make more tiles than the interpreter's 16 programs, so programs walk several
    gen = torch.Generator().manual_seed(3)
    shape, c = (4, 20, 9, 9), 20
    x = random_tensor(shape, torch.bfloat16, gen, scale=2.0, shift=0.5)
    r = random_tensor(shape, torch.bfloat16, gen)
    weight, bias = torch.rand(c, generator=gen) + 0.5, torch.randn(c, generator=gen)
    rm, rv = torch.randn(c, generator=gen) * 0.1, torch.rand(c, generator=gen) + 0.5
    rm_k, rv_k = rm.clone().to(DEVICE), rv.clone().to(DEVICE)
    with forced_config(2), recorded_launches(monkeypatch) as launches, _common.poison_outputs(), torch.no_grad():
        y = kernels.bn_relu(to_layout(x, layout).to(DEVICE), weight.to(DEVICE), bias.to(DEVICE), rm_k, rv_k,
                            training=False, residual=to_layout(r, layout).to(DEVICE))
    assert [name for name, _, _ in launches] == ["_bn_apply_kernel"]
    (_, grid, args), = launches
    tiles = args["N"] * _common.cdiv(args["P"], args["BLOCK_P"])
    assert grid[1] == 1 and grid[0] < tiles  # one channel block; programs own several tiles
    assert args["FOLD"] and not args["STORE_COEF"]  # no backward can follow: the coefficients stay in registers
    ref = F.relu(F.batch_norm(x.double(), rm.double(), rv.double(), weight.double(), bias.double()) + r.double())
    check("y", y, ref, _common.tolerance(torch.bfloat16))
    assert torch.equal(rm_k.cpu(), rm) and torch.equal(rv_k.cpu(), rv)


@pytest.mark.parametrize("index", range(3))
def test_chunk_count_follows_the_chosen_config(index, monkeypatch):
    # A stand-in split_chunks that spreads 12 programs over the 64-wide channel blocks it is told
    # of: the statistics and gradient reductions launch 12 // blocks chunks for the blocks of the
    # config actually run (70 channels: 2 blocks of 64, 5 of 16, 1 of 256), and the folds merge
    # exactly that many (the statistics' last program merges its grid's chunks; the backward's fold
    # is told them), out of a workspace sized for the most (12). Three training steps' running
    # statistics, outputs and gradients match torch's: the statistics' one launch folds them, and
    # its arrival counters are back at zero after every launch.
    monkeypatch.setattr(_common, "split_chunks", lambda pixels, channels, device: 12 // _common.cdiv(channels, 64))
    block_c = bn_relu_module.REDUCE_CONFIGS[index].kwargs["BLOCK_C"]
    blocks = _common.cdiv(70, block_c)
    chunks = 12 // blocks
    torch.manual_seed(index)
    ref = BatchNormReLU2d(70)
    ref.weight.data.uniform_(0.5, 1.5)
    ref.bias.data.normal_()
    twin = TritonBatchNormReLU2d(70)
    twin.load_state_dict(ref.state_dict())
    twin = twin.to(DEVICE)
    gen = torch.Generator().manual_seed(index)
    with forced_config(index), recorded_launches(monkeypatch) as launches:
        for step in range(3):
            x = torch.randn(2, 70, 4, 5, generator=gen) * (step + 1) + step
            x = x.contiguous(memory_format=torch.channels_last)
            xk = x.clone().to(DEVICE).requires_grad_(True)
            with _common.poison_outputs():
                y = twin(xk)
                y.sum().backward()
            xr = x.clone().requires_grad_(True)
            y_ref = ref(xr)
            y_ref.sum().backward()
            check(f"step {step} y", y, y_ref, 1e-5)
            check(f"step {step} dx", xk.grad, xr.grad, 1e-5)
    torch.testing.assert_close(twin.running_mean.cpu(), ref.running_mean, rtol=2e-6, atol=1e-6)
    torch.testing.assert_close(twin.running_var.cpu(), ref.running_var, rtol=2e-6, atol=1e-6)
    check("dweight", twin.weight.grad, ref.weight.grad, 1e-5)
    by_name = {}
    for name, grid, args in launches:
        by_name.setdefault(name, []).append((grid, args))
    assert "_bn_fold_kernel" not in by_name  # the statistics fold in their own launch
    assert len(by_name["_bn_stats_kernel"]) == 3
    for grid, args in by_name["_bn_stats_kernel"]:
        assert args["BLOCK_C"] == block_c and grid == (chunks, blocks, 1)[:len(grid)]
        assert args["ws_stride"] == 12 * 70 and not args["ARRIVED"].any()
    assert len(by_name["_bn_bwd_reduce_kernel"]) == len(by_name["_bn_bwd_fold_kernel"]) == 3
    for (grid, args), (_, fold_args) in zip(by_name["_bn_bwd_reduce_kernel"], by_name["_bn_bwd_fold_kernel"]):
        assert args["BLOCK_C"] == block_c and grid == (chunks, blocks, 1)[:len(grid)]
        assert fold_args["NUM_CHUNKS"] == chunks and args["ws_stride"] == fold_args["ws_stride"] == 12 * 70


def test_eval_without_grad_and_empty_batch():
    x = torch.randn(0, 4, 3, 3, device=DEVICE)
    rm, rv = torch.zeros(4, device=DEVICE), torch.ones(4, device=DEVICE)
    with torch.no_grad():
        assert kernels.bn_relu(x, None, None, rm, rv, training=False).shape == x.shape


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 3), c=st.integers(1, 20), h=st.integers(1, 6), w=st.integers(1, 6),
       dtype=st.sampled_from(DTYPES), layout=st.sampled_from(LAYOUTS), training=st.booleans(),
       residual=st.booleans(), relu=st.booleans(), seed=st.integers(0, 2**16))
def test_hypothesis(n, c, h, w, dtype, layout, training, residual, relu, seed):
    if training and n * h * w < 6:  # a handful of values per channel: the normalised gradient is ~0
        training = False
    run_case((n, c, h, w), dtype, layout, training=training, residual=residual, relu=relu, seed=seed)


# --- the module twin --------------------------------------------------------------------------

def _twins(momentum=0.1, **kwargs):
    torch.manual_seed(0)
    ref = BatchNormReLU2d(6, momentum=momentum, **kwargs)
    if ref.affine:
        ref.weight.data.uniform_(0.5, 1.5)
        ref.bias.data.normal_()
    twin = TritonBatchNormReLU2d(6, momentum=momentum, **kwargs)
    twin.load_state_dict(ref.state_dict())
    return ref, twin.to(DEVICE)


@pytest.mark.parametrize("momentum", [0.1, None], ids=["momentum", "cumulative"])
def test_running_statistics_after_training_steps(momentum):
    ref, twin = _twins(momentum)
    gen = torch.Generator().manual_seed(1)
    for step in range(4):
        x = torch.randn(3, 6, 5, 4, generator=gen) * (step + 1) + step
        r = torch.randn(3, 6, 5, 4, generator=gen)
        with _common.poison_outputs():
            y = twin(x.to(DEVICE), residual=r.to(DEVICE))
        check(f"step {step}", y, ref(x, residual=r), 1e-5)
    assert int(twin.num_batches_tracked) == int(ref.num_batches_tracked) == 4
    # fp32 rounding: torch on the CPU accumulates in double, the kernel in fp32
    torch.testing.assert_close(twin.running_mean.cpu(), ref.running_mean, rtol=2e-6, atol=1e-6)
    torch.testing.assert_close(twin.running_var.cpu(), ref.running_var, rtol=2e-6, atol=1e-6)
    ref.eval(), twin.eval()
    x = torch.randn(2, 6, 3, 3, generator=gen)
    check("eval", twin(x.to(DEVICE)), ref(x), 1e-5)


@pytest.mark.parametrize("kwargs", [dict(affine=False), dict(track_running_stats=False), dict(relu=False)],
                         ids=["no-affine", "no-running-stats", "no-relu"])
def test_module_variants(kwargs):
    ref, twin = _twins(**kwargs)
    x = torch.randn(2, 6, 3, 4)
    for training in (True, False):
        ref.train(training), twin.train(training)
        check(f"training={training}", twin(x.to(DEVICE)), ref(x), 1e-5)
    assert twin.extra_repr() == ref.extra_repr()


def test_state_dict_round_trip():
    ref, twin = _twins()
    ref(torch.randn(2, 6, 3, 3))  # non-trivial running statistics and num_batches_tracked
    plain = nn.BatchNorm2d(6)
    for src, dst in ((ref, twin), (twin, plain), (plain, ref), (ref, TritonBatchNormReLU2d(6).to(DEVICE))):
        dst.load_state_dict(src.state_dict(), strict=True)
        assert list(dst.state_dict()) == list(src.state_dict())
        for (k, a), b in zip(src.state_dict().items(), dst.state_dict().values(), strict=True):
            assert torch.equal(a.cpu(), b.cpu()), k
    assert list(twin.state_dict()) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert twin.extra_repr() == ref.extra_repr() and twin.extra_repr().endswith(", relu=True")
    assert isinstance(twin, nn.BatchNorm2d) and twin.relu is True


def test_module_deepcopy_and_gradients():
    ref, twin = _twins()
    twin2 = copy.deepcopy(twin)
    x = torch.randn(2, 6, 3, 3)
    twin2(x.to(DEVICE)).sum().backward()
    ref(x).sum().backward()
    check("dweight", twin2.weight.grad, ref.weight.grad, 1e-5)
    check("dbias", twin2.bias.grad, ref.bias.grad, 1e-5)


# --- inputs that are wrong --------------------------------------------------------------------

def _args(**over):
    c = 4
    args = dict(x=torch.randn(2, c, 3, 3), weight=torch.ones(c), bias=torch.zeros(c), running_mean=torch.zeros(c),
                running_var=torch.ones(c), training=True, momentum=0.1, eps=1e-5, relu=True, residual=None)
    args.update(over)
    return {k: v.to(DEVICE) if isinstance(v, torch.Tensor) and v.device.type == "cpu" else v for k, v in args.items()}


def _call(args):
    a = dict(args)
    return kernels.bn_relu(a.pop("x"), a.pop("weight"), a.pop("bias"), a.pop("running_mean"), a.pop("running_var"),
                           **a)


BAD = [
    ("x", TypeError, dict(x=[1.0, 2.0])),
    ("x", ValueError, dict(x=torch.randn(2, 4, 3))),  # rank 3
    ("x", ValueError, dict(x=torch.randn(2, 4, 3, 3, 1))),  # rank 5
    ("x", TypeError, dict(x=torch.randn(2, 4, 3, 3, dtype=F64))),
    ("x", TypeError, dict(x=torch.ones(2, 4, 3, 3, dtype=torch.int32))),
    ("x", ValueError, dict(x=torch.randn(2, 4, 3, 3, device="meta"))),
    ("x", ValueError, dict(x=torch.randn(1, 4, 1, 1))),  # one value per channel in training
    ("weight", ValueError, dict(weight=torch.ones(5))),
    ("weight", ValueError, dict(weight=torch.ones(4, 1))),
    ("weight", TypeError, dict(weight=torch.ones(4, dtype=F64))),
    ("weight", ValueError, dict(weight=torch.ones(4, device="meta"))),  # another device than x
    ("bias", ValueError, dict(bias=torch.zeros(3))),
    ("bias", TypeError, dict(bias=torch.zeros(4, dtype=torch.int64))),
    ("running_mean", ValueError, dict(running_mean=torch.zeros(8))),
    ("running_mean", ValueError, dict(running_mean=torch.zeros(4, device="meta"))),
    ("running_var", ValueError, dict(running_var=torch.ones(2))),
    ("running_var", TypeError, dict(running_var=torch.ones(4, dtype=F64))),
    ("running_var", ValueError, dict(running_var=None)),  # running_mean without running_var
    ("running_mean", ValueError, dict(running_mean=None, running_var=None, training=False)),
    ("residual", ValueError, dict(residual=torch.randn(2, 4, 3, 4))),
    ("residual", ValueError, dict(residual=torch.randn(2, 5, 3, 3))),
    ("residual", TypeError, dict(residual=torch.randn(2, 4, 3, 3, dtype=torch.float16))),
    ("residual", ValueError, dict(residual=torch.randn(2, 4, 3, 3, device="meta"))),
    ("residual", ValueError, dict(residual=torch.randn(2, 4, 3))),
    ("training", TypeError, dict(training=1)),
    ("momentum", TypeError, dict(momentum=None)),
    ("momentum", TypeError, dict(momentum="0.1")),
    ("eps", ValueError, dict(eps=-1.0)),
    ("relu", TypeError, dict(relu="yes")),
]


@pytest.mark.parametrize("arg,exc,over", BAD, ids=[f"{a}-{i}" for i, (a, _, _) in enumerate(BAD)])
def test_bad_input(arg, exc, over):
    with pytest.raises(exc, match=rf"^{arg}: expected"):
        _call(_args(**over))


@pytest.mark.parametrize("arg", ["weight", "bias", "running_mean", "running_var", "residual"])
def test_tensors_on_another_device(arg):
    shape = [2, 4, 3, 3] if arg == "residual" else [4]
    with pytest.raises(ValueError, match=rf"^{arg}: expected a tensor on {DEVICE}.* \(the device of x\), got meta"):
        _call(_args(**{arg: torch.ones(shape, device="meta")}))


def test_bad_input_through_the_module():
    twin = TritonBatchNormReLU2d(4).to(DEVICE)
    with pytest.raises(ValueError, match="^x: expected a 4-D tensor"):
        twin(torch.randn(2, 4, 3, device=DEVICE))
    with pytest.raises(ValueError, match=r"^weight: expected shape \[3\] \(one value per channel of x\), got \[4\]"):
        twin(torch.randn(2, 3, 3, 3, device=DEVICE))
    assert int(twin.num_batches_tracked) == 0  # a refused call leaves no trace


def test_cpu_tensor_without_interpreter_is_refused():
    check_cpu_refused("x = torch.randn(2, 4, 3, 3)", "kernels.bn_relu(x, None, None, None, None, training=True)",
                      "kernels.TritonBatchNormReLU2d(4)(x)")
