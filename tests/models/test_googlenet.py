"""GoogLeNet-specific checks: the paper's Table 1 and Section 5, and torchvision's departures from them."""

import pytest
import torch
from torch import nn

import models
from models.blocks import BatchNormReLU2d, LocalResponseNorm
from models.googlenet import GoogLeNetOutputs
from tests.models.helpers import meta_model

# Table 1 of the paper: input depth, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
TABLE1 = {
    "3a": (192, 64, 96, 128, 16, 32, 32), "3b": (256, 128, 128, 192, 32, 96, 64),
    "4a": (480, 192, 96, 208, 16, 48, 64), "4b": (512, 160, 112, 224, 24, 64, 64),
    "4c": (512, 128, 128, 256, 24, 64, 64), "4d": (512, 112, 144, 288, 32, 64, 64),
    "4e": (528, 256, 160, 320, 32, 128, 128), "5a": (832, 256, 160, 320, 32, 128, 128),
    "5b": (832, 384, 192, 384, 48, 128, 128),
}
# Table 1's "output size" column: (channels, spatial size at 224).
TABLE1_OUTPUT = {"3a": (256, 28), "3b": (480, 28), "4a": (512, 14), "4b": (512, 14), "4c": (512, 14),
                 "4d": (528, 14), "4e": (832, 14), "5a": (832, 7), "5b": (1024, 7)}


def conv_params(cin, cout, k):
    return cin * cout * k * k + cout  # the paper's convolutions have biases


def table1_params():
    total = conv_params(3, 64, 7) + conv_params(64, 64, 1) + conv_params(64, 192, 3)
    for cin, c1, r3, c3, r5, c5, proj in TABLE1.values():
        total += (conv_params(cin, c1, 1) + conv_params(cin, r3, 1) + conv_params(r3, c3, 3)
                  + conv_params(cin, r5, 1) + conv_params(r5, c5, 5) + conv_params(cin, proj, 1))
    return total + 1024 * 1000 + 1000


def aux_head_params(cin, num_classes=1000):
    # Section 5: 1x1 conv 128, fc 1024 on the 4x4x128 map, linear classifier.
    return conv_params(cin, 128, 1) + (4 * 4 * 128) * 1024 + 1024 + 1024 * num_classes + num_classes


def test_paper_params_follow_table1_and_section5():
    trunk = table1_params()
    assert 6_900_000 < trunk < 7_000_000  # "about 6.8M" in the paper's rounding (K = 1024)
    assert models.count_params(meta_model("googlenet_paper", aux_logits=False)) == trunk
    with_aux = trunk + aux_head_params(512) + aux_head_params(528)
    assert models.get_entry("googlenet_paper").reference.paper_params == with_aux
    assert models.count_params(meta_model("googlenet_paper")) == with_aux


@pytest.mark.parametrize("name", ["googlenet", "googlenet_paper"])
def test_inception_outputs_follow_table1(name):
    model = meta_model(name).eval()
    seen = {}
    for key in TABLE1:
        getattr(model, f"inception{key}").register_forward_hook(
            lambda m, i, o, key=key: seen.__setitem__(key, (o.shape[1], o.shape[-1])))
    with torch.device("meta"):
        model(torch.empty(1, 3, 224, 224))
    assert seen == TABLE1_OUTPUT


def test_paper_model_has_real_5x5_biases_and_no_batchnorm():
    model = meta_model("googlenet_paper")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert all(c.bias is not None for c in convs)
    for key, (cin, _, _, _, r5, c5, _) in TABLE1.items():
        conv5 = getattr(model, f"inception{key}").branch3[1].conv
        assert (conv5.in_channels, conv5.out_channels, conv5.kernel_size, conv5.padding) == (r5, c5, (5, 5), (2, 2))


def test_torchvision_layout_has_3x3_and_batchnorm_eps_1e3():
    model = meta_model("googlenet")
    for key in TABLE1:
        assert getattr(model, f"inception{key}").branch3[1].conv.kernel_size == (3, 3)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == len([m for m in model.modules() if isinstance(m, nn.Conv2d)])
    assert all(isinstance(bn, BatchNormReLU2d) and bn.eps == 0.001 for bn in bns)
    assert not any(isinstance(m, nn.LocalResponseNorm) for m in model.modules())
    assert model.dropout.p == 0.2


def test_paper_lrn_sits_after_pool1_and_conv2_3x3():
    model = meta_model("googlenet_paper").eval()
    norms = [m for m in model.modules() if isinstance(m, nn.LocalResponseNorm)]
    assert norms == [model.norm1, model.norm2]
    for norm in norms:  # Caffe's LRN: local_size 5, alpha 1e-4 (divided by n), beta 0.75, k 1
        assert isinstance(norm, LocalResponseNorm)
        assert (norm.size, norm.alpha, norm.beta, norm.k) == (5, 1e-4, 0.75, 1.0)
    order = []
    stem = ["conv1", "maxpool1", "norm1", "conv2", "conv3", "norm2", "maxpool2"]
    for name in stem:
        getattr(model, name).register_forward_hook(lambda m, i, o, name=name: order.append(name))
    with torch.device("meta"):
        model(torch.empty(1, 3, 224, 224))
    assert order == stem


def test_paper_pools_dropout_and_aux_heads():
    model = meta_model("googlenet_paper").eval()
    for pool in (model.maxpool1, model.maxpool2, model.maxpool3, model.maxpool4):
        assert (pool.kernel_size, pool.stride, pool.ceil_mode) == (3, 2, True)
    assert model.dropout.p == 0.4
    shapes = {}
    for name in ("aux1", "aux2"):
        head = getattr(model, name)
        assert head.dropout.p == 0.7 and head.conv.conv.out_channels == 128 and head.fc1.out_features == 1024
        avg = head.pool[0]
        assert (avg.kernel_size, avg.stride) == (5, 3)
        avg.register_forward_hook(lambda m, i, o, name=name: shapes.__setitem__(name, (i[0].shape, o.shape)))
    model.train()
    with torch.device("meta"):
        model(torch.empty(2, 3, 224, 224))
    # At 224 the 5x5/3 pool alone gives the 4x4 map of Section 5, so the adaptive pool after it is idle.
    assert shapes["aux1"] == (torch.Size([2, 512, 14, 14]), torch.Size([2, 512, 4, 4]))
    assert shapes["aux2"] == (torch.Size([2, 528, 14, 14]), torch.Size([2, 528, 4, 4]))


@pytest.mark.parametrize("name", ["googlenet", "googlenet_paper"])
def test_aux_logits_only_in_training(name):
    torch.manual_seed(0)
    model = models.create(name, num_classes=7)
    size = 47 if name == "googlenet_paper" else 15
    x = torch.randn(2, 3, size, size)
    model.train()
    out = model(x)
    assert isinstance(out, GoogLeNetOutputs)
    assert [t.shape for t in out] == [torch.Size([2, 7])] * 3
    assert not torch.equal(out.aux_logits1, out.aux_logits2)
    sum(out).sum().backward()
    assert model.aux1.fc2.weight.grad is not None and model.aux2.fc2.weight.grad is not None
    model.eval()
    with torch.no_grad():
        assert model(x).shape == (2, 7)
    model = models.create(name, num_classes=7, aux_logits=False).train()
    assert model.aux1 is None and model.aux2 is None
    assert model(x).shape == (2, 7)


def test_paper_min_input_size_depends_on_aux_heads():
    model = models.create("googlenet_paper", num_classes=5)
    assert model.eval().min_input_size == 31
    assert model.train().min_input_size == 47
    # Without the property the aux heads' 5x5 pool would fail inside the network at 46.
    with pytest.raises(ValueError, match="below the minimum 47x47"):
        model(torch.randn(2, 3, 46, 46))
    model.aux_logits = False
    assert model.min_input_size == 31
    assert model(torch.randn(2, 3, 31, 31)).shape == (2, 5)
    assert models.create("googlenet_paper", aux_logits=False).train().min_input_size == 31


def test_transform_input_option():
    x = torch.randn(1, 3, 32, 32)
    torch.manual_seed(0)
    plain = models.create("googlenet", num_classes=3).eval()
    assert plain.transform_input is False
    for m in plain.modules():  # torchvision's std-0.01 init leaves the logits almost input-independent
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight)
    transformed = models.create("googlenet", num_classes=3, transform_input=True).eval()
    transformed.load_state_dict(plain.state_dict())
    with torch.no_grad():
        assert not torch.allclose(plain(x), transformed(x))
        scaled = torch.cat([x[:, c:c + 1] * (std / 0.5) + (mean - 0.5) / 0.5
                            for c, (mean, std) in enumerate([(0.485, 0.229), (0.456, 0.224), (0.406, 0.225)])], 1)
        torch.testing.assert_close(transformed(x), plain(scaled))
