"""Inception-v3 specifics: grid sizes and widths, factorized kernels, the aux head, transform_input."""

import pytest
import torch
from torch import nn

import models
from models.blocks import BatchNormReLU2d
from models.inception_v3 import InceptionOutputs
from tests.models.helpers import meta_model


def test_grids_and_widths_at_299():
    model = meta_model("inception_v3").eval()
    shapes = {}
    for name in ("maxpool2", "Mixed_5d", "Mixed_6a", "Mixed_6e", "Mixed_7a", "Mixed_7c"):
        getattr(model, name).register_forward_hook(
            lambda m, i, o, name=name: shapes.__setitem__(name, tuple(o.shape[1:])))
    model(torch.empty(1, 3, 299, 299, device="meta"))
    assert shapes == {"maxpool2": (192, 35, 35), "Mixed_5d": (288, 35, 35), "Mixed_6a": (768, 17, 17),
                      "Mixed_6e": (768, 17, 17), "Mixed_7a": (1280, 8, 8), "Mixed_7c": (2048, 8, 8)}


def test_factorized_convolutions():
    model = meta_model("inception_v3")
    for name in ("Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"):
        block = getattr(model, name)
        assert block.branch7x7_2.conv.kernel_size == (1, 7) and block.branch7x7_3.conv.kernel_size == (7, 1)
        assert [getattr(block, f"branch7x7dbl_{i}").conv.kernel_size for i in range(2, 6)] == [(7, 1), (1, 7)] * 2
    assert [block.branch7x7_1.conv.out_channels for block in (model.Mixed_6b, model.Mixed_6c, model.Mixed_6d,
                                                                model.Mixed_6e)] == [128, 160, 160, 192]
    for block in (model.Mixed_7b, model.Mixed_7c):
        assert block.branch3x3_2a.conv.kernel_size == (1, 3) and block.branch3x3_2b.conv.kernel_size == (3, 1)
        assert block.branch3x3dbl_3a.conv.kernel_size == (1, 3) and block.branch3x3dbl_3b.conv.kernel_size == (3, 1)


def test_every_conv_is_bias_free_with_tensorflow_eps():
    model = meta_model("inception_v3")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(convs) == len(norms) == 96
    assert all(conv.bias is None for conv in convs)
    assert all(isinstance(bn, BatchNormReLU2d) and bn.relu and bn.eps == 0.001 for bn in norms)
    assert model.dropout.p == 0.5


def test_aux_head_in_training_only():
    model = meta_model("inception_v3", num_classes=10)
    seen = []
    model.AuxLogits.register_forward_hook(lambda m, i, o: seen.append(tuple(i[0].shape)))
    out = model.train()(torch.empty(2, 3, 299, 299, device="meta"))
    assert isinstance(out, InceptionOutputs)
    assert out.logits.shape == out.aux_logits.shape == (2, 10)
    assert seen == [(2, 768, 17, 17)]  # on the last 17x17 module's output
    logits = model.eval()(torch.empty(1, 3, 75, 75, device="meta"))
    assert isinstance(logits, torch.Tensor) and logits.shape == (1, 10)
    assert len(seen) == 1


def test_min_input_size_depends_on_the_aux_head():
    model = meta_model("inception_v3")
    assert model.eval().min_input_size == 75
    assert model.train().min_input_size == 299
    with pytest.raises(ValueError, match="299x299"):
        model(torch.empty(2, 3, 298, 298, device="meta"))
    without_aux = meta_model("inception_v3", aux_logits=False).train()
    assert without_aux.AuxLogits is None and without_aux.min_input_size == 75


def test_without_aux_head_is_timms_network():
    model = meta_model("inception_v3", aux_logits=False)
    assert models.count_params(model) == 23_834_568  # timm's inception_v3, which omits the aux head
    assert models.count_params(meta_model("inception_v3")) - models.count_params(model) == 3_326_696
    head_only = meta_model("inception_v3", aux_logits=False, num_classes=10).train()
    logits = head_only(torch.empty(2, 3, 75, 75, device="meta"))
    assert isinstance(logits, torch.Tensor) and logits.shape == (2, 10)


class _StemReached(Exception):
    pass


def test_transform_input_maps_imagenet_normalization_to_unit_range():
    model = models.create("inception_v3", num_classes=10, aux_logits=False, transform_input=True).eval()
    stem_inputs = []

    def record_and_stop(module, args):  # the rest of the network is irrelevant here
        stem_inputs.append(args[0])
        raise _StemReached

    model.Conv2d_1a_3x3.register_forward_pre_hook(record_and_stop)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    pixels = torch.rand(1, 3, 75, 75)
    with pytest.raises(_StemReached):
        model((pixels - mean) / std)
    model.transform_input = False
    with pytest.raises(_StemReached):
        model(pixels)
    # Google's weights expect [-1, 1]; off, the input reaches the stem untouched.
    torch.testing.assert_close(stem_inputs[0], pixels * 2 - 1, rtol=1e-5, atol=1e-5)
    assert torch.equal(stem_inputs[1], pixels)
