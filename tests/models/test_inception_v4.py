"""Family checks for Inception-v4 / Inception-ResNet-v1 / -v2: the paper's structural facts.

Parameter counts against timm, timm state_dict equality, shapes and minimum sizes are checked
for every model in tests/models/test_zoo.py; this file checks what is specific to the family.
"""

import functools

import pytest
import torch
from torch import nn

import models
from models.blocks import ConvBNReLU
from models.inception_v4 import (InceptionA, InceptionB, InceptionC, InceptionResNetA, InceptionResNetB,
                                 InceptionResNetC, InceptionResNetReductionB, ReductionA)
from tests.models.helpers import meta_model


@functools.lru_cache(maxsize=None)  # read-only use: hooks are removed after each forward
def build_meta(name):
    return meta_model(name).eval()


def shapes_along(model, names, size=299):
    """Output shape [C, H, W] after each named child (or features index), on the meta device."""
    shapes = {}
    hooks = [model.get_submodule(n).register_forward_hook(
        lambda _m, _i, out, n=n: shapes.__setitem__(n, list(out.shape[1:]))) for n in names]
    with torch.device("meta"), torch.no_grad():
        model(torch.empty(1, 3, size, size))
    for hook in hooks:
        hook.remove()
    return shapes


# ---- Inception-v4 ----------------------------------------------------------------------------

def test_inception_v4_grid_sizes_and_channels():
    # Figure 9: stem 35x35x384, Inception-A 35x35x384, Reduction-A -> 17x17x1024,
    # Inception-B 17x17x1024, Reduction-B -> 8x8x1536, Inception-C 8x8x1536.
    model = build_meta("inception_v4")
    shapes = shapes_along(model, ["features.5", "features.9", "features.10", "features.17", "features.18",
                                  "features.21"])
    assert shapes == {"features.5": [384, 35, 35], "features.9": [384, 35, 35], "features.10": [1024, 17, 17],
                      "features.17": [1024, 17, 17], "features.18": [1536, 8, 8], "features.21": [1536, 8, 8]}
    assert model.last_linear.in_features == 1536


def test_inception_v4_block_counts():
    blocks = [type(m) for m in build_meta("inception_v4").features]
    assert blocks.count(InceptionA) == 4 and blocks.count(InceptionB) == 7 and blocks.count(InceptionC) == 3
    assert blocks[6:10] == [InceptionA] * 4 and blocks[11:18] == [InceptionB] * 7 and blocks[19:] == [InceptionC] * 3


def reduction_a_klmn(block: ReductionA):
    k, l, m = (c.conv.out_channels for c in block.branch1)  # noqa: E741
    return k, l, m, block.branch0.conv.out_channels


def test_reduction_a_filters_are_table_1():
    assert reduction_a_klmn(build_meta("inception_v4").features[10]) == (192, 224, 256, 384)
    assert reduction_a_klmn(build_meta("inception_resnet_v1").mixed_6a) == (192, 192, 256, 384)
    assert reduction_a_klmn(build_meta("inception_resnet_v2").mixed_6a) == (256, 256, 384, 384)


def test_inception_v4_factorized_kernels():
    # Inception-B factorizes 7x7, Inception-C 3x3, into 1xn and nx1 convolutions.
    features = build_meta("inception_v4").features
    b_kernels = {c.conv.kernel_size for c in features[11].modules() if isinstance(c, ConvBNReLU)}
    c_kernels = {c.conv.kernel_size for c in features[19].modules() if isinstance(c, ConvBNReLU)}
    assert b_kernels == {(1, 1), (1, 7), (7, 1)}
    assert c_kernels == {(1, 1), (1, 3), (3, 1)}


@pytest.mark.parametrize("name", ["inception_v4", "inception_resnet_v1", "inception_resnet_v2"])
def test_every_conv_is_batch_normed_with_tf_eps_except_the_residual_expansions(name):
    model = build_meta(name)
    expansions = {id(m.conv2d) for m in model.modules() if isinstance(m, (InceptionResNetA, InceptionResNetB,
                                                                             InceptionResNetC))}
    in_conv_bn = {id(m.conv) for m in model.modules() if isinstance(m, ConvBNReLU)}
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            assert (id(module) in expansions) != (id(module) in in_conv_bn)
            assert (module.bias is not None) == (id(module) in expansions)
        if isinstance(module, nn.BatchNorm2d):
            assert module.eps == 0.001
    assert len(expansions) == {"inception_v4": 0, "inception_resnet_v1": 20, "inception_resnet_v2": 40}[name]


@pytest.mark.parametrize("name", ["inception_v4", "inception_resnet_v1", "inception_resnet_v2"])
def test_dropout_keeps_0_8(name):
    drops = [m for m in build_meta(name).modules() if isinstance(m, nn.Dropout)]
    assert len(drops) == 1 and drops[0].p == pytest.approx(0.2)


# ---- Inception-ResNet ------------------------------------------------------------------------

def test_inception_resnet_v1_grid_sizes_and_channels():
    # Figure 15 with Figure 14's stem: 35x35x256 -> 17x17x896 -> 8x8x1792.
    model = build_meta("inception_resnet_v1")
    shapes = shapes_along(model, ["conv2d_4b", "repeat", "mixed_6a", "repeat_1", "mixed_7a", "repeat_2"])
    assert shapes == {"conv2d_4b": [256, 35, 35], "repeat": [256, 35, 35], "mixed_6a": [896, 17, 17],
                      "repeat_1": [896, 17, 17], "mixed_7a": [1792, 8, 8], "repeat_2": [1792, 8, 8]}
    assert model.classif.in_features == 1792


def test_inception_resnet_v2_grid_sizes_and_channels():
    # The release: 35x35x320 -> 17x17x1088 -> 8x8x2080 -> 1x1 conv to 1536.
    model = build_meta("inception_resnet_v2")
    shapes = shapes_along(model, ["mixed_5b", "repeat", "mixed_6a", "repeat_1", "mixed_7a", "repeat_2", "block8",
                                  "conv2d_7b"])
    assert shapes == {"mixed_5b": [320, 35, 35], "repeat": [320, 35, 35], "mixed_6a": [1088, 17, 17],
                      "repeat_1": [1088, 17, 17], "mixed_7a": [2080, 8, 8], "repeat_2": [2080, 8, 8],
                      "block8": [2080, 8, 8], "conv2d_7b": [1536, 8, 8]}
    assert model.classif.in_features == 1536


@pytest.mark.parametrize("name, counts", [("inception_resnet_v1", (5, 10, 5)),
                                          ("inception_resnet_v2", (10, 20, 9))])
def test_inception_resnet_blocks_and_scales(name, counts):
    model = build_meta(name)
    stages = [(model.repeat, InceptionResNetA, 0.17), (model.repeat_1, InceptionResNetB, 0.10),
              (model.repeat_2, InceptionResNetC, 0.20)]
    for (stage, block_type, scale), count in zip(stages, counts):
        assert len(stage) == count
        assert all(type(block) is block_type and block.scale == scale and block.relu for block in stage)
    assert isinstance(model.mixed_7a, InceptionResNetReductionB)


def test_inception_resnet_v1_follows_the_paper_to_the_end():
    # Figure 15: the last Inception-ResNet-C feeds the average pool; no extra block, no 1x1 conv.
    model = build_meta("inception_resnet_v1")
    assert not hasattr(model, "block8") and not hasattr(model, "conv2d_7b")
    assert model.layer_names[-1] == "repeat_2"


def test_inception_resnet_v2_last_block_is_unscaled_without_relu():
    model = build_meta("inception_resnet_v2")
    assert isinstance(model.block8, InceptionResNetC)
    assert model.block8.scale == 1.0 and not model.block8.relu
    assert model.layer_names[-2:] == ("block8", "conv2d_7b")


@pytest.mark.parametrize("block, x", [
    (InceptionResNetA(32, (8, 8, 16), scale=0.17), torch.randn(2, 32, 5, 5)),
    (InceptionResNetB(48, 16, (8, 12, 16), scale=0.10), torch.randn(2, 48, 9, 9)),
    (InceptionResNetC(40, (8, 12, 16), scale=0.20, relu=False), torch.randn(2, 40, 3, 3)),
])
def test_residual_tail_scales_adds_then_relu(block, x):
    block.eval()
    with torch.no_grad():
        branches = [block.branch0(x), block.branch1(x)] + ([block.branch2(x)] if hasattr(block, "branch2") else [])
        expansion = block.conv2d(torch.cat(branches, 1))
        expected = x + block.scale * expansion
        if block.relu:
            expected = expected.relu()
        out = block(x)
    torch.testing.assert_close(out, expected)
    assert not torch.allclose(out, (x + expansion).relu() if block.relu else x + expansion)
    assert (out < 0).any() != block.relu  # the no-ReLU block passes negative values through


def test_inception_resnet_v1_params_from_the_figures():
    """Figures 14, 10, 7 (Table 1), 11, 12, 13, 15, counted by hand.

    Every conv is bias-free + BN (scale and shift per channel); the 1x1 filter-expansion convs
    ("Linear") have a bias and no BN; the classifier is 1792 -> 1000.
    """
    def conv(cin, cout, kh, kw):
        return cin * cout * kh * kw + 2 * cout

    def expand(cin, cout):
        return cin * cout + cout

    stem = (conv(3, 32, 3, 3) + conv(32, 32, 3, 3) + conv(32, 64, 3, 3) + conv(64, 80, 1, 1)
            + conv(80, 192, 3, 3) + conv(192, 256, 3, 3))
    block_a = (conv(256, 32, 1, 1)
               + conv(256, 32, 1, 1) + conv(32, 32, 3, 3)
               + conv(256, 32, 1, 1) + conv(32, 32, 3, 3) + conv(32, 32, 3, 3)
               + expand(32 + 32 + 32, 256))
    reduction_a = conv(256, 384, 3, 3) + conv(256, 192, 1, 1) + conv(192, 192, 3, 3) + conv(192, 256, 3, 3)
    block_b = (conv(896, 128, 1, 1)
               + conv(896, 128, 1, 1) + conv(128, 128, 1, 7) + conv(128, 128, 7, 1)
               + expand(128 + 128, 896))
    reduction_b = (conv(896, 256, 1, 1) + conv(256, 384, 3, 3)
                   + conv(896, 256, 1, 1) + conv(256, 256, 3, 3)
                   + conv(896, 256, 1, 1) + conv(256, 256, 3, 3) + conv(256, 256, 3, 3))
    block_c = (conv(1792, 192, 1, 1)
               + conv(1792, 192, 1, 1) + conv(192, 192, 1, 3) + conv(192, 192, 3, 1)
               + expand(192 + 192, 1792))
    classifier = 1792 * 1000 + 1000
    total = stem + 5 * block_a + reduction_a + 10 * block_b + reduction_b + 5 * block_c + classifier
    assert models.get_entry("inception_resnet_v1").reference.paper_params == total
    assert models.count_params(build_meta("inception_resnet_v1")) == total


def test_reported_errors_are_table_2_single_crop():
    reported = {name: (models.get_entry(name).reported.top1, models.get_entry(name).reported.top5)
                for name in ("inception_v4", "inception_resnet_v1", "inception_resnet_v2")}
    assert reported == {"inception_v4": (20.0, 5.0), "inception_resnet_v1": (21.3, 5.5),
                        "inception_resnet_v2": (19.9, 4.9)}
    assert all("single-crop" in models.get_entry(name).reported.protocol for name in reported)
