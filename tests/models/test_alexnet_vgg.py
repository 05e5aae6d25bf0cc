"""AlexNet (2012) and VGG A-LRN against the papers' own layer tables."""

import torch

import models
from models.blocks import LocalResponseNorm


def conv_params(k: int, c_in: int, c_out: int, groups: int = 1) -> int:
    return k * k * (c_in // groups) * c_out + c_out


def fc_params(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def test_alexnet_paper_parameter_count_from_section_3():
    # Figure 2: conv1 11x11x3 -> 96; conv2, conv4, conv5 see only their own GPU's half of the maps.
    expected = (conv_params(11, 3, 96) + conv_params(5, 96, 256, groups=2) + conv_params(3, 256, 384)
                + conv_params(3, 384, 384, groups=2) + conv_params(3, 384, 256, groups=2)
                + fc_params(6 * 6 * 256, 4096) + fc_params(4096, 4096) + fc_params(4096, 1000))
    assert expected == models.get_entry("alexnet_paper").reference.paper_params
    assert round(expected / 1e6) == 61  # "60 million parameters"


def test_alexnet_paper_feature_map_sizes_at_227():
    model = models.create("alexnet_paper").eval()
    sizes = {}
    for name, layer in model.features.named_children():
        layer.register_forward_hook(lambda m, i, o, name=name: sizes.__setitem__(name, tuple(o.shape[1:])))
    with torch.no_grad():
        model(torch.randn(1, 3, 227, 227))
    assert sizes["conv1"] == (96, 55, 55)
    assert sizes["pool1"] == (96, 27, 27)
    assert sizes["conv2"] == (256, 27, 27)
    assert sizes["pool2"] == (256, 13, 13)
    assert sizes["conv5"] == (256, 13, 13)
    assert sizes["pool5"] == (256, 6, 6)


def test_alexnet_paper_lrn_uses_the_papers_constants():
    model = models.create("alexnet_paper")
    names = [n for n, m in model.features.named_children() if isinstance(m, LocalResponseNorm)]
    assert names == ["norm1", "norm2"]  # after conv1 and conv2, before their pools
    order = list(dict(model.features.named_children()))
    assert order.index("relu1") < order.index("norm1") < order.index("pool1")
    lrn = model.features.norm1
    # The paper's alpha=1e-4 is not divided by n; torch's is, hence 5e-4 with size 5.
    x = torch.rand(1, 96, 3, 3, dtype=torch.float64) * 10
    squares = torch.nn.functional.pad(x.pow(2), (0, 0, 0, 0, 2, 2))
    window = sum(squares[:, i:i + 96] for i in range(5))
    assert torch.allclose(lrn.double()(x), x / (2.0 + 1e-4 * window) ** 0.75)


def test_alexnet_paper_groups_reproduce_the_two_gpu_split():
    model = models.create("alexnet_paper")
    groups = {n: m.groups for n, m in model.features.named_children() if isinstance(m, torch.nn.Conv2d)}
    assert groups == {"conv1": 1, "conv2": 2, "conv3": 1, "conv4": 2, "conv5": 2}


def test_vgg_a_lrn_parameter_count_from_table_1():
    channels = [(3, 64), (64, 128), (128, 256), (256, 256), (256, 512), (512, 512), (512, 512), (512, 512)]
    expected = (sum(conv_params(3, i, o) for i, o in channels)
                + fc_params(512 * 7 * 7, 4096) + fc_params(4096, 4096) + fc_params(4096, 1000))
    assert expected == models.get_entry("vgg11_lrn").reference.paper_params
    assert round(expected / 1e6) == 133  # Table 2


def test_vgg_a_lrn_has_one_lrn_after_the_first_conv():
    features = models.create("vgg11_lrn").features
    kinds = [type(m).__name__ for m in features]
    assert kinds[:4] == ["Conv2d", "ReLU", "LocalResponseNorm", "MaxPool2d"]
    assert kinds.count("LocalResponseNorm") == 1
