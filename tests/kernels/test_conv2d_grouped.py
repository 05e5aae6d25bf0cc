"""kernels.conv2d.grouped's packed kernels against torch in float64: the input gradient's stride-
phase decomposition, channels per group that are not powers of two, the weight gradient's split
over pixel chunks, fp32 with tf32 off, and the general path for wide groups.

Through the Triton interpreter on CPU tensors (TRITON_INTERPRET=1) or on a CUDA GPU, at small
shapes; ``run_case`` (tests/kernels/test_conv2d.py) checks the output and every gradient.
"""

from __future__ import annotations

import pytest
import torch

import kernels
from kernels import _common
from kernels.conv2d import geometry, grouped
from tests.kernels.helpers import DEVICE, check, needs_device, random_tensor, to_layout
from tests.kernels.test_conv2d import run_case

# fp32 cases are held to the fp32 bound, so tf32 is off unless a test turns it on.
pytestmark = [needs_device, pytest.mark.usefixtures("ieee_fp32")]


def _grads(x_shape, c_out, kernel, groups, stride=1, padding=0, dilation=1, dtype=torch.float32,
           layout="channels_last", seed=0):
    """x, w, dy in ``dtype`` on DEVICE, their float64 copies, and the geometry."""
    gen = torch.Generator().manual_seed(seed)
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    x = random_tensor(x_shape, dtype, gen)
    w = random_tensor((c_out, x_shape[1] // groups, kh, kw), dtype, gen, scale=(x_shape[1] // groups * kh * kw) ** -0.5)
    geo = geometry.check_arguments(x, w, None, stride, padding, dilation, groups)
    dy = random_tensor((x_shape[0], c_out, geo.h_out, geo.w_out), dtype, gen)
    dev = lambda t: to_layout(t, layout).to(DEVICE)  # noqa: E731
    return dev(x), dev(w), dev(dy), geo, (x.double(), w.double(), dy.double())


# --- the input gradient by stride phases ------------------------------------------------------

@pytest.mark.parametrize("stride,kernel,dilation,padding", [
    (2, 3, 1, 1),   # ResNeXt's stride-2 3x3: 1, 2, 2 and 4 taps in the four phases
    (2, 1, 1, 0),   # 1x1 stride 2: three phases without a tap, all zeros
    (2, 5, 1, 2),
    (2, 3, 2, 2),   # dilation 2, stride 2: a phase gets every tap or none
    (4, 3, 1, 1),   # stride 4: phases with no tap, phases with one
    (4, 5, 1, 2),
    (4, 3, 2, 1),
    ((2, 4), (3, 5), (2, 1), (1, 2)),
])
def test_input_grad_phases(stride, kernel, dilation, padding):
    """dx of every phase against float64 torch, odd H and W (ragged phases of unequal sizes)."""
    x, w, dy, geo, (x64, w64, dy64) = _grads((2, 16, 11, 9), 16, kernel, groups=2, stride=stride,
                                             padding=padding, dilation=dilation)
    assert grouped._packed(geo)
    with _common.poison_outputs():
        dx = grouped.input_grad(dy, x, w, geo)
    ref = torch.nn.grad.conv2d_input(x64.shape, w64, dy64, stride, padding, dilation, 2)
    check("dx", dx, ref, _common.tolerance(torch.float32))


# --- channels per group -------------------------------------------------------------------------

@pytest.mark.parametrize("cin,cout,groups", [
    (3, 3, 4),    # padded to 4 lanes
    (6, 6, 3),    # padded to 8
    (12, 12, 2),  # padded to 16
    (2, 6, 4),    # mixed: 2 in, 6 out a group
    (6, 2, 3),    # mixed the other way
    (4, 8, 5),    # ragged group count against the tile's groups
])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_channels_per_group(cin, cout, groups, dtype):
    run_case((2, cin * groups, 7, 6), cout * groups, 3, groups=groups, padding=1, stride=(2, 1), dtype=dtype,
             layout="channels_last")


def test_nchw_packed():
    run_case((2, 24, 7, 5), 24, 3, groups=3, padding=1, stride=2, layout="nchw")


def test_wide_groups_take_the_general_path():
    """128 channels a group (AlexNet-like) run the general implicit GEMM."""
    geo = geometry.check_arguments(torch.empty(1, 256, 5, 5), torch.empty(256, 128, 3, 3), None, 1, 1, 1, 2)
    assert not grouped._packed(geo)
    run_case((1, 160, 5, 4), 160, 3, groups=2, padding=1, layout="channels_last")


@pytest.mark.parametrize("x_shape,c_out,kernel,groups,stride,padding,dtype", [
    # channels a group that no tile width divides (80 in, 72 out): a group's last tile is masked
    ((1, 160, 5, 4), 144, 5, 2, 1, 2, torch.float32),
    # stride 2 (the input gradient reads dy where the stride divides), three groups
    ((2, 240, 5, 6), 216, 3, 3, 2, 1, torch.float32),
    # bf16 at the widest groups a tile of the interpreter's config does not cover (136 a group)
    ((1, 272, 4, 4), 272, 3, 2, 1, 1, torch.bfloat16),
], ids=["cpg80x72-5x5", "stride2-g3", "bf16-cpg136"])
def test_general_path_tiles_stay_in_their_group(x_shape, c_out, kernel, groups, stride, padding, dtype):
    geo = geometry.check_arguments(torch.empty(x_shape), torch.empty(c_out, x_shape[1] // groups, kernel, kernel),
                                   None, stride, padding, 1, groups)
    assert not grouped._packed(geo)
    run_case(x_shape, c_out, kernel, groups=groups, stride=stride, padding=padding, dtype=dtype,
             layout="channels_last")


def test_general_path_weight_follows_in_place_updates():
    # the general path's weight, destination channels contiguous, is derived once per version
    x, w, dy, geo, _ = _grads((1, 160, 4, 4), 160, 3, groups=2, padding=1)
    assert not grouped._packed(geo)
    first = grouped._gemm_weight(w, dgrad=False)
    assert grouped._gemm_weight(w, dgrad=False) is first and torch.equal(first, w)
    assert first.stride()[0] == 1 and grouped._gemm_weight(w, dgrad=True).stride()[1] == 1
    with torch.no_grad():
        w.mul_(-1.5).add_(0.25)
    y = kernels.conv2d(x, w, padding=1, groups=2)
    check("forward after update", y, torch.nn.functional.conv2d(x.double(), w.double(), padding=1, groups=2),
          _common.tolerance("fp32"))
    assert grouped._gemm_weight(w, dgrad=False) is not first


def test_general_path_tunes_per_group_count():
    # two layers alike but for their group count launch different grids: each gets its own tuning
    kernel = grouped._grouped_conv_kernel_fp32
    kernel.cache.clear()
    for groups in (2, 3):
        x = torch.randn(1, 80 * groups, 4, 4)
        kernels.conv2d(x, torch.randn(72 * groups, 80, 3, 3), padding=1, groups=groups)
    assert sorted(key[grouped.GROUPED_KEY.index("GROUPS")] for key in kernel.cache) == [2, 3]


# --- the weight gradient's split --------------------------------------------------------------

@pytest.mark.parametrize("chunks", [1, 2, 5, 40], ids=lambda c: f"chunks{c}")
@pytest.mark.parametrize("kernel,stride,dilation,rows", [(3, 2, 1, False), (5, 1, 1, True), (3, 1, 1, True),
                                                         (3, (1, 2), 2, True)])
def test_weight_grad_chunks(chunks, kernel, stride, dilation, rows):
    """More and fewer chunks than pixel tiles (2x9x10: 180 output pixels or fewer, a few tiles),
    chunks that own no tile included; the bias gradient from the same dy tiles; both kernels
    (taps gathered, and the stride-1 rows formulation)."""
    cout = 32 if kernel == 5 else 16
    pad = dilation * (kernel // 2)
    x, w, dy, geo, (x64, w64, dy64) = _grads((2, 16, 9, 10), cout, kernel, groups=4, stride=stride,
                                             padding=pad, dilation=dilation, seed=chunks)
    assert bool(grouped._rows_formulation(geo)) == rows
    with _common.poison_outputs():
        dw, db = grouped._packed_weight_grad(dy, x, w, geo, True, chunks)
    check("dweight", dw, torch.nn.grad.conv2d_weight(x64, w64.shape, dy64, stride, pad, dilation, 4),
          _common.tolerance(torch.float32))
    check("dbias", db, dy64.sum((0, 2, 3)), _common.tolerance(torch.float32))


@pytest.mark.parametrize("stride", [1, 2])
def test_weight_grad_wide_groups_split_the_taps(stride):
    """32 channels a group: the rows kernel takes two kernel rows a program (stride 1), the
    im2col kernel 8 taps a program (stride 2)."""
    x, w, dy, geo, (x64, w64, dy64) = _grads((1, 64, 6, 5), 64, 3, groups=2, stride=stride, padding=1)
    if stride == 1:
        assert grouped._rows_formulation(geo) == 2
    else:
        assert not grouped._rows_formulation(geo) and grouped._tap_block(geo) < 9
    with _common.poison_outputs():
        dw, db = grouped._packed_weight_grad(dy, x, w, geo, True, 2)
    check("dweight", dw, torch.nn.grad.conv2d_weight(x64, w64.shape, dy64, stride, 1, 1, 2),
          _common.tolerance(torch.float32))
    check("dbias", db, dy64.sum((0, 2, 3)), _common.tolerance(torch.float32))


# --- fp32 ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("stride", [1, 2])
def test_fp32_with_tf32_off(stride):
    """3xTF32 products: fp32's bound (1e-5) in every direction."""
    assert geometry.ieee_products(torch.float32)
    run_case((2, 32, 8, 7), 32, 3, groups=4, padding=1, stride=stride, dtype=torch.float32, layout="channels_last")


def test_batch_one_bias_dilation_same_padding():
    run_case((1, 12, 7, 8), 12, 4, groups=3, padding="same", dilation=1, layout="channels_last")
    run_case((1, 12, 7, 8), 24, 3, groups=3, padding=2, dilation=2, stride=2)


def test_dispatch_uses_the_packed_kernels():
    kernels.conv2d_decisions(clear=True)
    with kernels.conv2d_dispatch("triton"):
        y = kernels.conv2d(to_layout(torch.randn(1, 16, 5, 5), "channels_last").to(DEVICE),
                           torch.randn(16, 4, 3, 3).to(DEVICE), groups=4, padding=1)
    assert y.shape == (1, 16, 5, 5)
    assert {d["path"] for d in kernels.conv2d_decisions()} == {"triton-grouped"}


# --- the packed weight, once per weight version ----------------------------------------------

def test_packed_weight_follows_in_place_updates():
    # the forward's and the input gradient's packings are cached per weight version: an
    # optimizer-style in-place update is packed again, an unchanged weight is not
    x, w, dy, geo, _ = _grads((2, 16, 5, 6), 16, 3, groups=4, padding=1)
    first = grouped._pack_weight(w, geo, transposed=False)
    assert grouped._pack_weight(w, geo, transposed=False) is first
    assert grouped._pack_weight(w, geo, transposed=True) is not first
    for step in range(2):
        with torch.no_grad():
            w.mul_(-1.5).add_(0.25)
        y = kernels.conv2d(x, w, padding=1, groups=4)
        check(f"forward after update {step}", y, torch.nn.functional.conv2d(x.double(), w.double(), padding=1,
                                                                             groups=4), _common.tolerance("fp32"))
    assert grouped._pack_weight(w, geo, transposed=False) is not first
