"""DenseNet specifics: growth rate, bottleneck width, compression, depth, pre-activation, concatenation."""

import pytest
import torch
from torch import nn

import models
from models.blocks import BatchNormReLU2d
from tests.models.helpers import meta_model

# name: (growth rate k, layers per block, channels entering and leaving each block and transition,
# computed by hand from Table 1: block out = in + layers * k, transition out = block out / 2)
CONFIGS = {
    "densenet121": (32, [6, 12, 24, 16], [64, 256, 128, 512, 256, 1024, 512, 1024]),
    "densenet169": (32, [6, 12, 32, 32], [64, 256, 128, 512, 256, 1280, 640, 1664]),
    "densenet201": (32, [6, 12, 48, 32], [64, 256, 128, 512, 256, 1792, 896, 1920]),
    "densenet161": (48, [6, 12, 36, 24], [96, 384, 192, 768, 384, 2112, 1056, 2208]),
}


@pytest.mark.parametrize("name", CONFIGS)
def test_channels_per_block_and_compression(name):
    growth, layers, channels = CONFIGS[name]
    model = meta_model(name).eval()
    shapes = []
    for child in list(model.features.children())[3:]:  # after conv0, norm0, pool0
        if not isinstance(child, BatchNormReLU2d):
            child.register_forward_hook(lambda m, i, o: shapes.append((i[0].shape[1:], o.shape[1:])))
    model(torch.empty(1, 3, 224, 224, device="meta"))
    assert [s[0][0] for s in shapes[::2]] == channels[0::2]  # into each block
    assert [s[1][0] for s in shapes] == channels[1:]  # out of each block and transition
    # Transitions halve channels (compression 0.5) and the grid: 56 -> 28 -> 14 -> 7.
    assert [tuple(s[1][1:]) for s in shapes] == [(56, 56), (28, 28), (28, 28), (14, 14), (14, 14), (7, 7), (7, 7)]
    assert model.classifier.in_features == channels[-1]
    blocks = [model.features.get_submodule(f"denseblock{i}") for i in range(1, 5)]
    assert [len(block) for block in blocks] == layers


@pytest.mark.parametrize("name", CONFIGS)
def test_bottleneck_layers_grow_by_k(name):
    growth, layers, channels = CONFIGS[name]
    model = meta_model(name)
    for b, block in enumerate(model.features.get_submodule(f"denseblock{i}") for i in range(1, 5)):
        for i, layer in enumerate(block.values()):
            assert layer.norm1.num_features == layer.conv1.in_channels == channels[2 * b] + i * growth
            assert layer.conv1.kernel_size == (1, 1) and layer.conv1.out_channels == 4 * growth
            assert layer.conv2.kernel_size == (3, 3) and layer.conv2.out_channels == growth


@pytest.mark.parametrize("name", CONFIGS)
def test_depth_is_the_name(name):
    # 121 = stem conv + 2 convs per dense layer + 3 transition convs + classifier.
    model = meta_model(name)
    weighted = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(weighted) == int(name.removeprefix("densenet"))


def test_every_norm_is_pre_activation_bn_relu():
    model = meta_model("densenet121")
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == 1 + 2 * 58 + 3 + 1
    assert all(isinstance(bn, BatchNormReLU2d) and bn.relu for bn in norms)
    transition = model.features.transition1
    assert list(dict(transition.named_children())) == ["norm", "conv", "pool"]
    assert isinstance(transition.pool, nn.AvgPool2d) and transition.pool.kernel_size == 2
    assert transition.norm.num_features == transition.conv.in_channels == 256
    assert transition.conv.out_channels == 128


def test_block_output_concatenates_input_and_every_layer():
    torch.manual_seed(0)
    block = models.create("densenet121").features.denseblock1.eval()
    new_maps = []
    for layer in block.values():
        layer.register_forward_hook(lambda m, i, o: new_maps.append(o))
    x = torch.randn(1, 64, 8, 8)
    with torch.no_grad():
        out = block(x)
    assert out.shape == (1, 64 + 6 * 32, 8, 8)
    assert torch.equal(out[:, :64], x)
    for i, maps in enumerate(new_maps):
        assert torch.equal(out[:, 64 + 32 * i:64 + 32 * (i + 1)], maps)
