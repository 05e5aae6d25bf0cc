"""The depthwise kernels' own machinery against torch in float64: the input gradient's stride-phase
decomposition, the cached ``[taps, C]`` weight transpose and the weight gradient's split over
chunks of pixel tiles. The public API's sweep (dtypes, layouts, awkward shapes) is in
test_conv2d.py; these reach the pieces it cannot force."""

from __future__ import annotations

import gc

import pytest
import torch
import torch.nn.functional as F

import kernels
from kernels import _common
from kernels.conv2d import depthwise, geometry
from tests.kernels.helpers import DEVICE, F64, check, needs_device, random_tensor, to_layout
from tests.kernels.test_conv2d import run_case

pytestmark = [needs_device, pytest.mark.usefixtures("ieee_fp32")]
TOL = _common.tolerance(torch.float32)


def _operands(x_shape, c_out, kernel, stride, padding, dilation, layout="channels_last", seed=0):
    gen = torch.Generator().manual_seed(seed)
    c = x_shape[1]
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    x = random_tensor(x_shape, torch.float32, gen)
    w = random_tensor((c_out, 1, kh, kw), torch.float32, gen, scale=(kh * kw) ** -0.5)
    geo = geometry.check_arguments(x, w, None, stride, padding, dilation, c)
    dy = random_tensor((x_shape[0], c_out, geo.h_out, geo.w_out), torch.float32, gen)
    return to_layout(x, layout).to(DEVICE), w.to(DEVICE), to_layout(dy, layout).to(DEVICE), geo


# --- the stride-1 stencil by bands of rows --------------------------------------------------------

@pytest.mark.parametrize("rows", [1, 4], ids=lambda r: f"rows{r}")
@pytest.mark.parametrize("kernel,c_out,stride,dilation", [((3, 3), 5, 1, 1), ((2, 3), 5, 1, 1), ((1, 1), 5, 1, 1),
                                                          ((3, 3), 5, (1, 2), (1, 2)), ((1, 3), 15, 1, 1)])
def test_rows_bands(rows, kernel, c_out, stride, dilation, monkeypatch):
    """Bands of fewer rows than the kernel keeps open (1: an odd count of steps, the last beyond
    the band) and of 4 (an even count, and a last band of 1 row, cut short by the map's 25): the
    rows carried across steps and the two steps of a trip, the steps that run for rows outside the
    band, even and 1-row kernels, column stride and dilation, a channel multiplier of 3; the
    forward and the input gradient (the same kernel on flipped weights, over the multiplier's J
    input channels)."""
    monkeypatch.setattr(depthwise, "band_rows", lambda *args: rows)
    kh, kw = kernel
    padding = (kh // 2, (kw // 2) * (dilation if isinstance(dilation, int) else dilation[1]))
    x, w, dy, geo = _operands((2, 5, 25, 9), c_out, kernel, stride, padding, dilation)
    mult = c_out // 5
    assert depthwise.by_rows(geo.h_out, (kh, kw), geo.stride, geo.dilation, 1, 0, True)
    assert depthwise.by_rows(geo.h, (kh, kw), (1, 1), geo.dilation, mult, 0, True) or geo.stride != (1, 1)
    with _common.poison_outputs():
        y = depthwise.forward(x, w, None, geo)
    check("y", y, F.conv2d(x.cpu().to(F64), w.cpu().to(F64), None, stride, padding, dilation, 5), TOL)
    if geo.stride == (1, 1):
        with _common.poison_outputs():
            dx = depthwise.input_grad(dy, x, w, geo)
        ref = torch.nn.grad.conv2d_input(x.shape, w.cpu().to(F64), dy.cpu().to(F64), 1, padding, dilation, 5)
        check("dx", dx, ref, TOL)


@pytest.mark.parametrize("dtype,layout", [(torch.bfloat16, "channels_last"), (torch.float16, "nchw")])
def test_rows_end_to_end(dtype, layout):
    """The public function with a 3x3 on a 24-row map, bias and every gradient, in the half
    dtypes and both layouts: the forward and the input gradient by rows."""
    assert depthwise.by_rows(24, (3, 3), (1, 1), (1, 1), 1, 0, layout == "channels_last")
    run_case((2, 8, 24, 10), 8, 3, groups=8, padding=1, dtype=dtype, layout=layout)


@pytest.mark.parametrize("h_out,taps,steps,dil,mult,programs_per_sm,channels_last,expected", [
    (56, (3, 3), (1, 1), (1, 1), 1, 1, True, True),
    (56, (3, 3), (1, 1), (1, 1), 1, 1, False, True),  # weights held: either layout
    (24, (3, 3), (1, 2), (1, 2), 1, 1, True, True),  # column stride and dilation are the columns' business
    (23, (3, 3), (1, 1), (1, 1), 1, 9.9, True, False),  # under eight rows per open row, few programs: tiles
    (14, (3, 3), (1, 1), (1, 1), 1, 10, True, True),  # four or more, and programs enough to fill the GPU
    (11, (3, 3), (1, 1), (1, 1), 1, 100, True, False),  # under four rows per open row: the tiles at any batch
    (56, (3, 3), (2, 2), (1, 1), 1, 100, True, False),  # row stride 2: the tiles
    (56, (3, 3), (1, 1), (2, 2), 1, 100, True, False),  # row dilation 2: the tiles
    (56, (5, 5), (1, 1), (1, 1), 1, 3, True, True),  # 25 taps: weights loaded each step, programs enough
    (56, (5, 5), (1, 1), (1, 1), 1, 3, False, False),  # ... in channels_last only
    (10, (5, 5), (1, 1), (1, 1), 1, 3, True, True),  # two rows per open row
    (56, (5, 5), (1, 1), (1, 1), 1, 2.9, True, False),  # too few programs to overlap the long walks
    (9, (5, 5), (1, 1), (1, 1), 1, 100, True, False),  # under two rows per open row
    (56, (3, 3), (1, 1), (1, 1), 2, 3, True, True),  # 9 taps x 2 input channels: loaded each step
    (56, (3, 3), (1, 1), (1, 1), 3, 100, True, False),  # 27: past the most taps by rows
    (56, (7, 7), (1, 1), (1, 1), 1, 100, True, False),  # 49
])
def test_rows_only_where_the_weights_fit(h_out, taps, steps, dil, mult, programs_per_sm, channels_last, expected):
    assert depthwise.by_rows(h_out, taps, steps, dil, mult, programs_per_sm, channels_last) is expected


@pytest.mark.parametrize("n,hw,c,kh,ctas_per_sm,rows", [
    (64, 28, 128, 3, 6, 10),  # 512 programs a band, 792 slots: 3 bands in 2 waves of 15 steps (30), not 2 (38) or 1 (33)
    (64, 56, 64, 3, 6, 19),  # 3 bands: 2 waves of 24 steps (48), where 1 band walks 61 and 4 bands 3 x 19
    (256, 56, 64, 3, 6, 56),  # 2048 a band: 3 waves of 61 (183); 3 bands, 8 waves of 24 (192)
    (8, 56, 64, 3, 6, 5),  # 64 a band: 12 bands still one wave, 13 make two
    (64, 56, 64, 5, 5, 56),  # 5x5, 660 slots: one wave of 65 steps, where 2 bands take 2 x 37
])
def test_band_rows_least_waves_times_walk(n, hw, c, kh, ctas_per_sm, rows, monkeypatch):
    monkeypatch.setattr(_common, "num_sms", lambda device: 132)
    assert depthwise.band_rows(n, hw, hw, c, kh, torch.device("cpu"), ctas_per_sm) == rows


@pytest.mark.parametrize("kernel,c_out,dilation", [((5, 5), 5, 1), ((4, 5), 5, (1, 2)), ((3, 3), 10, 1)])
def test_rows_with_weights_loaded_each_step(kernel, c_out, dilation, monkeypatch):
    """More taps than ``ROWS_TAPS`` (a 5x5, an even 4x5 with column dilation 2, a 3x3's input
    gradient over a multiplier of 2): the rows kernel loads each step's weights, a column tap's at
    a time, in bands of 4 rows (a last band of 1); the forward and the input gradient against
    float64, and which rows kernel ran."""
    monkeypatch.setattr(depthwise, "band_rows", lambda *args: 4)
    monkeypatch.setattr(depthwise, "ROWS_STREAMED_PROGRAMS_PER_SM", 0)
    launched = []
    for name in ("_depthwise_rows_kernel", "_depthwise_rows_streamed_kernel"):
        monkeypatch.setattr(depthwise, name, _Recorded(getattr(depthwise, name), name, launched))
    kh, kw = kernel
    padding = (kh // 2, (kw // 2) * (dilation if isinstance(dilation, int) else dilation[1]))
    x, w, dy, geo = _operands((2, 5, 13, 9), c_out, kernel, 1, padding, dilation)
    mult = c_out // 5
    assert depthwise.by_rows(geo.h, (kh, kw), (1, 1), geo.dilation, mult, 0, True)
    assert kh * kw * mult > depthwise.ROWS_TAPS
    with _common.poison_outputs():
        y = depthwise.forward(x, w, None, geo)
        dx = depthwise.input_grad(dy, x, w, geo)
    check("y", y, F.conv2d(x.cpu().to(F64), w.cpu().to(F64), None, 1, padding, dilation, 5), TOL)
    ref = torch.nn.grad.conv2d_input(x.shape, w.cpu().to(F64), dy.cpu().to(F64), 1, padding, dilation, 5)
    check("dx", dx, ref, TOL)
    # the 3x3's forward (9 taps, 13 rows) goes by tiles; its input gradient's 18 taps by rows
    streamed_forward = ["_depthwise_rows_streamed_kernel"] if kh * kw > depthwise.ROWS_TAPS else []
    assert launched == streamed_forward + ["_depthwise_rows_streamed_kernel"]


def test_rows_with_weights_loaded_each_step_end_to_end(monkeypatch):
    """The public function with a bf16 channels_last 5x5 on a 12-row map, bias and every gradient:
    the forward and the input gradient by rows, weights loaded each step."""
    monkeypatch.setattr(depthwise, "ROWS_STREAMED_PROGRAMS_PER_SM", 0)
    assert depthwise.by_rows(12, (5, 5), (1, 1), (1, 1), 1, 0, True)
    run_case((2, 8, 12, 10), 8, 5, groups=8, padding=2, dtype=torch.bfloat16, layout="channels_last")


def test_rows_on_a_small_map_when_the_batch_fills_the_gpu(monkeypatch):
    """A 3x3 on a 14-row map goes by rows when one band's programs fill the GPU (here one
    program for each of the interpreter's 4 "SMs": 4 images, one program of 16 columns and 32
    channels each), else by tiles."""
    monkeypatch.setattr(depthwise, "ROWS_SMALL_MAP_PROGRAMS_PER_SM", 1)
    launched = []
    for name in ("_depthwise_rows_kernel", "_depthwise_stencil_kernel"):
        kernel = getattr(depthwise, name)
        monkeypatch.setattr(depthwise, name, _Recorded(kernel, name, launched))
    for n, expected in ((4, "_depthwise_rows_kernel"), (3, "_depthwise_stencil_kernel")):
        launched.clear()
        x, w, _, geo = _operands((n, 8, 14, 14), 8, (3, 3), 1, 1, 1)
        y = depthwise.forward(x, w, None, geo)
        assert launched == [expected]
        check("y", y, F.conv2d(x.cpu().to(F64), w.cpu().to(F64), None, 1, 1, 1, 8), TOL)


class _Recorded:
    """A kernel whose launches are recorded by name."""

    def __init__(self, kernel, name: str, launched: list):
        self.kernel, self.name, self.launched = kernel, name, launched

    def __getitem__(self, grid):
        self.launched.append(self.name)
        return self.kernel[grid]


# --- the input gradient's phases ---------------------------------------------------------------

@pytest.mark.parametrize("stride", [2, 4, (2, 3)])
@pytest.mark.parametrize("kernel,dilation", [(1, 1), (3, 1), (5, 1), (3, 2), (5, 2)])
def test_input_grad_phases(stride, kernel, dilation):
    """Odd H and W (ragged phases), strides 2 and 4 (phases no tap reaches with a 1x1 kernel),
    paddings below and above the stride (its residue and its multiple)."""
    x, w, dy, geo = _operands((2, 5, 11, 9), 5, kernel, stride, dilation * (kernel // 2), dilation)
    with _common.poison_outputs():
        dx = depthwise.input_grad(dy, x, w, geo)
    ref = torch.nn.grad.conv2d_input(x.shape, w.cpu().to(F64), dy.cpu().to(F64), stride, dilation * (kernel // 2),
                                     dilation, 5)
    assert dx.is_contiguous(memory_format=torch.channels_last)
    check("dx", dx, ref, TOL)


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_input_grad_phases_with_multiplier_and_asymmetric_kernel(layout):
    x, w, dy, geo = _operands((1, 3, 10, 7), 6, (3, 2), (3, 2), (1, 0), (2, 1), layout=layout)
    with _common.poison_outputs():
        dx = depthwise.input_grad(dy, x, w, geo)
    ref = torch.nn.grad.conv2d_input(x.shape, w.cpu().to(F64), dy.cpu().to(F64), (3, 2), (1, 0), (2, 1), 3)
    check("dx", dx, ref, TOL)


# --- the transposed weight's cache --------------------------------------------------------------

def test_weight_updated_in_place_is_read_again():
    gen = torch.Generator().manual_seed(1)
    x = random_tensor((1, 6, 5, 5), torch.float32, gen).to(DEVICE)
    w = random_tensor((6, 1, 3, 3), torch.float32, gen).to(DEVICE).requires_grad_(True)
    with kernels.conv2d_dispatch("triton"):
        y1 = kernels.conv2d(x, w, padding=1, groups=6)
        with torch.no_grad():
            w.mul_(-2.0).add_(0.5)
        y2 = kernels.conv2d(x, w, padding=1, groups=6)
    check("before", y1, F.conv2d(x.double(), ((w.detach().double() - 0.5) / -2.0), padding=1, groups=6), TOL)
    check("after", y2, F.conv2d(x.double(), w.detach().double(), padding=1, groups=6), TOL)


def test_another_weight_of_the_same_shape_gives_its_own_result():
    gen = torch.Generator().manual_seed(2)
    x = random_tensor((1, 4, 6, 5), torch.float32, gen).to(DEVICE)
    with kernels.conv2d_dispatch("triton"):
        for i in range(3):
            w = random_tensor((4, 1, 3, 3), torch.float32, gen).to(DEVICE)  # often at the last one's address
            y = kernels.conv2d(x, w, padding=1, groups=4)
            check(f"weight {i}", y, F.conv2d(x.double(), w.double(), padding=1, groups=4), TOL)
            del w, y
            gc.collect()


def test_cache_stays_bounded_and_is_exact():
    weights = [torch.randn(8, 1, 3, 3, device=DEVICE) for _ in range(depthwise._TRANSPOSED.size + 5)]
    for w in weights:
        wt = depthwise.transposed_weight(w)
        assert wt.dtype == torch.float32 and wt.shape == (9, depthwise.weight_columns(8, 1))
        assert torch.equal(wt[:, :8], w.reshape(8, 9).t()) and not wt[:, 8:].any()
        assert depthwise.transposed_weight(w) is wt  # a hit while the weight is unchanged
    assert len(depthwise._TRANSPOSED) <= depthwise._TRANSPOSED.size
    with torch.inference_mode():
        w = torch.randn(8, 1, 3, 3, device=DEVICE)  # no version counter: transposed every call
        assert torch.equal(depthwise.transposed_weight(w)[:, :8], w.reshape(8, 9).t())


# --- the weight gradient's split ------------------------------------------------------------------

@pytest.mark.parametrize("chunks", [1, 3, 200], ids=["one", "some", "more-than-tiles"])
@pytest.mark.parametrize("kernel,stride", [(3, 1), (5, 2), (7, 1)])
def test_weight_grad_split(chunks, kernel, stride, monkeypatch):
    """One chunk (every tile in one program), a few, and more chunks than pixel tiles (programs
    that own none write zeros); kernels of 5 and 7 rows split their tap rows over programs."""
    monkeypatch.setattr(depthwise, "_wgrad_chunks", lambda programs_per_chunk, device: chunks)
    x, w, dy, geo = _operands((3, 70, 9, 11), 70, kernel, stride, kernel // 2, 1)
    with _common.poison_outputs():
        dw, db = depthwise.weight_grad(dy, x, w, geo, True)
    ref = torch.nn.grad.conv2d_weight(x.cpu().to(F64), w.shape, dy.cpu().to(F64), stride, kernel // 2, 1, 70)
    check("dweight", dw, ref, TOL)
    check("dbias", db, dy.cpu().to(F64).sum((0, 2, 3)), TOL)


def _no_tiles(*args):
    raise AssertionError("the weight gradient went by tiles, not by rows")


@pytest.mark.parametrize("rows,kernel,c_out,stride,dilation", [
    (1, (3, 3), 5, 1, 1), (4, (3, 3), 5, 1, 1), (25, (3, 3), 5, 1, 1),
    (1, (2, 3), 5, 1, 1), (4, (1, 1), 5, 1, 1), (4, (3, 3), 15, (1, 2), (1, 2)),
])
def test_weight_grad_by_rows(rows, kernel, c_out, stride, dilation, monkeypatch):
    """The weight gradient by bands of rows: bands of 1 row (fewer than the kernel's rows of dy a
    step holds; an odd count of steps), of 4 (an even count, and a last band of 1 row cut short by
    the map's 25) and the whole map; even, 1-row and 1x1 kernels, column stride and dilation, a
    channel multiplier of 3 (each input channel read by three output channels), with the bias."""
    monkeypatch.setattr(depthwise, "band_rows", lambda *args: rows)
    monkeypatch.setattr(depthwise, "WGRAD_ROWS_PROGRAMS_PER_SM", 0)
    monkeypatch.setattr(depthwise, "_weight_grad_by_tiles", _no_tiles)
    kh, kw = kernel
    padding = (kh // 2, (kw // 2) * (dilation if isinstance(dilation, int) else dilation[1]))
    x, w, dy, geo = _operands((2, 5, 25, 9), c_out, kernel, stride, padding, dilation)
    with _common.poison_outputs():
        dw, db = depthwise.weight_grad(dy, x, w, geo, True)
    ref = torch.nn.grad.conv2d_weight(x.cpu().to(F64), w.shape, dy.cpu().to(F64), stride, padding, dilation, 5)
    check("dweight", dw, ref, TOL)
    check("dbias", db, dy.cpu().to(F64).sum((0, 2, 3)), TOL)


@pytest.mark.parametrize("rows,kernel,dilation", [(4, (5, 5), 1), (13, (4, 5), (1, 2))])
def test_weight_grad_by_rows_many_taps(rows, kernel, dilation, monkeypatch):
    """More taps than ``ROWS_TAPS`` (a 5x5, an even 4x5 with column dilation 2): the rows kernel
    with two elements a thread, in bands of 4 rows and of the whole map, against float64."""
    monkeypatch.setattr(depthwise, "band_rows", lambda *args: rows)
    monkeypatch.setattr(depthwise, "WGRAD_ROWS_PROGRAMS_PER_SM", 0)
    monkeypatch.setattr(depthwise, "_weight_grad_by_tiles", _no_tiles)
    launched = []
    for name in ("_depthwise_wgrad_rows_kernel", "_depthwise_wgrad_rows_wide_kernel"):
        monkeypatch.setattr(depthwise, name, _Recorded(getattr(depthwise, name), name, launched))
    kh, kw = kernel
    padding = (kh // 2, (kw // 2) * (dilation if isinstance(dilation, int) else dilation[1]))
    x, w, dy, geo = _operands((2, 5, 13, 9), 5, kernel, 1, padding, dilation)
    with _common.poison_outputs():
        dw, db = depthwise.weight_grad(dy, x, w, geo, True)
    ref = torch.nn.grad.conv2d_weight(x.cpu().to(F64), w.shape, dy.cpu().to(F64), 1, padding, dilation, 5)
    check("dweight", dw, ref, TOL)
    check("dbias", db, dy.cpu().to(F64).sum((0, 2, 3)), TOL)
    assert launched == ["_depthwise_wgrad_rows_wide_kernel"]


@pytest.mark.parametrize("chunks", [1, 200], ids=["one", "more-than-units"])
def test_weight_grad_by_rows_split(chunks, monkeypatch):
    """One chunk walking every unit (image, band, columns) in turn, the dy rows reset between
    units; and more chunks than units (capped: every program owns one), in NCHW."""
    monkeypatch.setattr(depthwise, "_wgrad_chunks", lambda programs_per_chunk, device: chunks)
    monkeypatch.setattr(depthwise, "band_rows", lambda *args: 5)
    monkeypatch.setattr(depthwise, "WGRAD_ROWS_PROGRAMS_PER_SM", 0)
    monkeypatch.setattr(depthwise, "_weight_grad_by_tiles", _no_tiles)
    x, w, dy, geo = _operands((3, 70, 13, 19), 70, 3, 1, 1, 1, layout="nchw")
    with _common.poison_outputs():
        dw, db = depthwise.weight_grad(dy, x, w, geo, False)
    assert db is None
    ref = torch.nn.grad.conv2d_weight(x.cpu().to(F64), w.shape, dy.cpu().to(F64), 1, 1, 1, 70)
    check("dweight", dw, ref, TOL)


@pytest.mark.parametrize("h_out,taps,steps,dil,programs_per_sm,expected", [
    (56, (3, 3), (1, 1), (1, 1), 7.8, True),
    (14, (3, 3), (1, 1), (1, 1), 3.9, True),
    (12, (3, 3), (1, 2), (1, 2), 3, True),   # column stride and dilation are the kernel's
    (11, (3, 3), (1, 1), (1, 1), 50, False),  # under four rows a tap row: mostly halo steps
    (56, (3, 3), (1, 1), (1, 1), 1.9, False),  # too few programs for a chain of steps each
    (56, (3, 3), (2, 2), (1, 1), 50, False),  # row stride
    (56, (3, 3), (1, 1), (2, 1), 50, False),  # row dilation
    (56, (5, 5), (1, 1), (1, 1), 7.8, True),  # 25 accumulators, two elements a thread
    (10, (5, 5), (1, 1), (1, 1), 50, True),  # two rows a tap row: a 5x5's tiles cost more
    (9, (5, 5), (1, 1), (1, 1), 50, False),
    (56, (5, 5), (1, 1), (1, 1), 2.9, False),
    (56, (7, 7), (1, 1), (1, 1), 50, False),  # 49 accumulators do not fit
])
def test_weight_grad_by_rows_only_where_it_wins(h_out, taps, steps, dil, programs_per_sm, expected):
    assert depthwise.wgrad_by_rows(h_out, taps, steps, dil, programs_per_sm) is expected


def test_weight_grad_by_rows_end_to_end(monkeypatch):
    """The public function in bf16 channels_last with every gradient, the weight's by rows."""
    monkeypatch.setattr(depthwise, "WGRAD_ROWS_PROGRAMS_PER_SM", 0)
    monkeypatch.setattr(depthwise, "_weight_grad_by_tiles", _no_tiles)
    run_case((2, 8, 24, 10), 8, 3, groups=8, padding=1, dtype=torch.bfloat16, layout="channels_last")


def test_channel_multiplier_end_to_end():
    run_case((2, 3, 7, 6), 6, 3, groups=3, stride=2, padding=1, layout="channels_last")
