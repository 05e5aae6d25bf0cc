"""BN-Inception-specific checks against the appendix of the Batch Normalization paper (Figure 5)."""

import torch
from torch import nn

import models
from models.blocks import BatchNormReLU2d, ConvBNReLU
from tests.models.helpers import meta_model

NAMES = ["3a", "3b", "3c", "4a", "4b", "4c", "4d", "4e", "5a", "5b"]
# Figure 5: #1x1, #3x3 reduce, #3x3, double #3x3 reduce, double #3x3, pool, pool projection
# (None: pass-through), stride.
FIGURE5 = [
    (64, 64, 64, 64, 96, "avg", 32, 1), (64, 64, 96, 64, 96, "avg", 64, 1), (0, 128, 160, 64, 96, "max", None, 2),
    (224, 64, 96, 96, 128, "avg", 128, 1), (192, 96, 128, 96, 128, "avg", 128, 1),
    (160, 128, 160, 128, 160, "avg", 128, 1), (96, 128, 192, 160, 192, "avg", 128, 1),
    (0, 128, 192, 192, 256, "max", None, 2), (352, 192, 320, 160, 224, "avg", 128, 1),
    (352, 192, 320, 192, 224, "max", 128, 1),
]
OUT_CHANNELS = [256, 320, 576, 576, 576, 608, 608, 1056, 1024, 1024]
OUT_SIZE_224 = [28, 28, 14, 14, 14, 14, 14, 7, 7, 7]


def conv_bn_params(cin, cout, k):
    return cin * cout * k * k + 2 * cout  # bias-free conv, BatchNorm scale and shift


def figure5_params(num_classes=1000):
    # Separable 7x7/2 with depth multiplier 8 (3 -> 24 channels), then 1x1 to 64 and one BN.
    total = 3 * 8 * 7 * 7 + conv_bn_params(24, 64, 1)
    total += conv_bn_params(64, 64, 1) + conv_bn_params(64, 192, 3)
    cin = 192
    for c1, r3, c3, rd, cd, _, proj, _ in FIGURE5:
        total += (conv_bn_params(cin, c1, 1) if c1 else 0) + conv_bn_params(cin, r3, 1) + conv_bn_params(r3, c3, 3)
        total += conv_bn_params(cin, rd, 1) + conv_bn_params(rd, cd, 3) + conv_bn_params(cd, cd, 3)
        total += conv_bn_params(cin, proj, 1) if proj else 0
        cin = c1 + c3 + cd + (proj or cin)
    return total + cin * num_classes + num_classes


def test_params_follow_figure5():
    expected = figure5_params()
    assert models.get_entry("bn_inception").reference.paper_params == expected
    assert models.count_params(meta_model("bn_inception").eval()) == expected


def test_module_outputs():
    model = meta_model("bn_inception").eval()
    assert [m.out_channels for m in model.inceptions] == OUT_CHANNELS
    shapes = []
    for module in model.inceptions:
        module.register_forward_hook(lambda m, i, o: shapes.append((o.shape[1], o.shape[-2], o.shape[-1])))
    with torch.device("meta"):
        model(torch.empty(1, 3, 224, 224))
    assert shapes == [(c, s, s) for c, s in zip(OUT_CHANNELS, OUT_SIZE_224)]


def test_first_conv_is_separable_with_depth_multiplier_8():
    stem = meta_model("bn_inception").eval().conv1
    dw = stem.depthwise
    assert (dw.in_channels, dw.out_channels, dw.groups) == (3, 24, 3)
    assert (dw.kernel_size, dw.stride, dw.padding) == ((7, 7), (2, 2), (3, 3))
    assert dw.bias is None
    assert isinstance(stem.pointwise, ConvBNReLU)
    pw = stem.pointwise.conv
    assert (pw.in_channels, pw.out_channels, pw.kernel_size) == (24, 64, (1, 1))
    # One BatchNorm + ReLU for the whole separable convolution, none between its two halves.
    assert [type(m) for m in stem.modules() if isinstance(m, nn.BatchNorm2d)] == [BatchNormReLU2d]


def test_stem():
    model = meta_model("bn_inception").eval()
    assert (model.conv2.conv.out_channels, model.conv2.conv.kernel_size) == (64, (1, 1))
    assert (model.conv3.conv.out_channels, model.conv3.conv.kernel_size) == (192, (3, 3))
    for pool in (model.maxpool1, model.maxpool2):
        assert isinstance(pool, nn.MaxPool2d) and (pool.kernel_size, pool.stride) == (3, 2)


def test_branches_follow_figure5():
    model = meta_model("bn_inception").eval()
    for name, module, (c1, r3, c3, rd, cd, pool, proj, stride) in zip(NAMES, model.inceptions, FIGURE5):
        if c1:
            assert module.branch1.conv.out_channels == c1, name
        else:
            assert module.branch1 is None, name
        reduce3, conv3 = module.branch2
        assert (reduce3.conv.out_channels, conv3.conv.out_channels) == (r3, c3), name
        assert (conv3.conv.kernel_size, conv3.conv.stride) == ((3, 3), (stride, stride)), name
        # The 5x5 of GoogLeNet is two stacked 3x3s; the stride is on the second.
        reduced, first, second = module.branch3
        assert (reduced.conv.out_channels, first.conv.out_channels, second.conv.out_channels) == (rd, cd, cd), name
        assert first.conv.kernel_size == second.conv.kernel_size == (3, 3), name
        assert (first.conv.stride, second.conv.stride) == ((1, 1), (stride, stride)), name
        pooling = module.branch4[0] if proj else module.branch4
        assert isinstance(pooling, {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}[pool]), name
        assert (pooling.kernel_size, pooling.stride) == (3, stride), name
        if proj:
            assert module.branch4[1].conv.out_channels == proj, name
        else:
            assert not any(isinstance(m, nn.Conv2d) for m in module.branch4.modules()), name


def test_batchnorm_after_every_conv_and_nothing_paper_removed():
    model = meta_model("bn_inception").eval()
    assert not any(m.kernel_size == (5, 5) for m in model.modules() if isinstance(m, nn.Conv2d))
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    wrapped = [m.conv for m in model.modules() if isinstance(m, ConvBNReLU)]
    assert set(convs) - set(wrapped) == {model.conv1.depthwise}
    assert all(c.bias is None for c in convs)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == len(wrapped) and all(bn.eps == 1e-5 and bn.relu for bn in bns)
    # Section 4.2.1 removes dropout and local response normalization; the table has no aux heads.
    assert not any(isinstance(m, (nn.Dropout, nn.LocalResponseNorm, nn.Linear)) for m in model.inceptions.modules())
    assert not any(isinstance(m, (nn.Dropout, nn.LocalResponseNorm)) for m in model.modules())
    assert [m for m in model.modules() if isinstance(m, nn.Linear)] == [model.fc]


def test_stride2_modules_agree_on_odd_sizes():
    model = models.create("bn_inception", num_classes=4).eval()
    with torch.no_grad():
        for size in (7, 39, 75):  # sizes where unpadded pass-through max-pools fall one short
            assert model(torch.randn(1, 3, size, size)).shape == (1, 4)
