"""Every registered model against references from outside the project.

torchvision (same layout: strict state_dict load, equal outputs, its own parameter and GMAC
figures), timm (parameter counts, and layouts where they match), and the exact counts derived
from the papers' tables. Family-specific structure lives in tests/models/test_<family>.py.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torchvision

import models
from kernels import relative_error
from models.blocks import ImageClassifier
from tests.models.helpers import meta_model

ALL = models.list_models()
TORCHVISION = [n for n in ALL if models.get_entry(n).reference.torchvision]
TIMM = [n for n in ALL if models.get_entry(n).reference.timm]
TIMM_LAYOUT = [n for n in TIMM if models.get_entry(n).reference.timm_layout]
PAPER_PARAMS = [n for n in ALL if models.get_entry(n).reference.paper_params]

# The deepest nets are slow to build and run on two CPU cores; they share every block with
# a smaller sibling, so the minimum-size and training checks run on the siblings (the layout
# and output comparisons run on every model).
HEAVY = {"resnet152", "resnext101_32x8d", "resnext101_64x4d", "se_resnet152", "densenet161", "densenet201",
         "vgg19", "vgg19_bn"}


def torchvision_model(name: str, device: str = "cpu") -> torch.nn.Module:
    with warnings.catch_warnings(), torch.device(device):
        warnings.simplefilter("ignore")  # googlenet/inception warn about their init scheme
        return torchvision.models.get_model(name, weights=None)


def calibrate_batchnorm(model: torch.nn.Module, x: torch.Tensor) -> None:
    """Real running statistics (from one training-mode batch) and random affine parameters.

    Freshly built, every BN in eval mode is nearly the identity, so a wrong eps or a BN in the
    wrong place would go unseen; calibrating keeps activations at a sane scale in deep nets.
    """
    generator = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average: after one batch, exactly its statistics
            m.weight.data.copy_(torch.rand(m.num_features, generator=generator) * 0.5 + 0.75)
            m.bias.data.copy_(torch.randn(m.num_features, generator=generator) * 0.1)
    model.eval()
    for m in model.modules():  # only the BNs train: aux heads stay off, dropout stays off
        if isinstance(m, torch.nn.BatchNorm2d):
            m.train()
    with torch.no_grad():
        model(x)
    model.eval()


@pytest.mark.parametrize("name", ALL)
def test_built_from_the_shared_blocks(name):
    model = meta_model(name)
    assert isinstance(model, ImageClassifier)
    # A BatchNorm outside BatchNormReLU2d would escape kernels.patch's fused BN+ReLU.
    for module_name, m in model.named_modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            assert isinstance(m, models.blocks.BatchNormReLU2d), f"{name}.{module_name} is a bare BatchNorm2d"
        assert not isinstance(m, torch.nn.LocalResponseNorm) or isinstance(m, models.blocks.LocalResponseNorm)


@pytest.mark.parametrize("name", TORCHVISION)
def test_params_and_macs_equal_torchvision(name):
    card = models.model_card(name)
    reference = models.get_entry(name).reference.torchvision
    # Counted on the network as built (aux heads included), not the weights' meta, which
    # counts googlenet without its aux heads.
    assert card["params"] == models.count_params(torchvision_model(reference, device="meta"))
    meta = torchvision.models.get_model_weights(reference).DEFAULT.meta
    # torchvision's "_ops" is GMACs of convolutions and linear layers at the weights' crop size.
    assert card["gmacs"] == pytest.approx(meta["_ops"], abs=2e-3)


@pytest.mark.parametrize("name", TIMM)
def test_params_equal_timm(name):
    timm = pytest.importorskip("timm")
    with torch.device("meta"):
        reference = timm.create_model(models.get_entry(name).reference.timm)
    assert models.model_card(name)["params"] == models.count_params(reference)


@pytest.mark.parametrize("name", PAPER_PARAMS)
def test_params_equal_paper(name):
    assert models.model_card(name)["params"] == models.get_entry(name).reference.paper_params


def check_same_outputs(name: str, reference: torch.nn.Module) -> None:
    model = models.create(name).eval()
    size = max(model.min_input_size, 64)
    generator = torch.Generator().manual_seed(1)
    calibrate_batchnorm(reference, torch.randn(4, 3, size, size, generator=generator))
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 3, size, size, generator=generator)
    with torch.no_grad():
        out, ref = model(x), reference(x)
    assert out.shape == ref.shape
    assert relative_error(out, ref) <= 1e-5


@pytest.mark.parametrize("name", TORCHVISION)
def test_same_layout_and_outputs_as_torchvision(name):
    check_same_outputs(name, torchvision_model(models.get_entry(name).reference.torchvision))


@pytest.mark.parametrize("name", [n for n in TIMM_LAYOUT if n not in TORCHVISION])  # else already compared
def test_same_layout_and_outputs_as_timm(name):
    timm = pytest.importorskip("timm")
    check_same_outputs(name, timm.create_model(models.get_entry(name).reference.timm))


@pytest.mark.parametrize("name", ALL)
def test_forward_at_native_size(name):
    # Shapes only, on the meta device: no arithmetic, so every model is checked at full size.
    # Real arithmetic runs at the minimum size below and in the torchvision/timm comparisons.
    card = models.model_card(name)
    size = card["input_size"]
    with torch.device("meta"):
        model = models.create(name, num_classes=10)
        for training in (False, True):
            out = model.train(training)(torch.empty(2, 3, size, size))
            logits = out[0] if isinstance(out, tuple) else out
            assert logits.shape == (2, 10)


@pytest.mark.parametrize("name", [n for n in ALL if n not in HEAVY])
def test_minimum_size_works_and_below_it_is_a_clear_error(name):
    model = models.create(name, num_classes=10)
    for training in (False, True):
        model.train(training)
        size = model.min_input_size
        out = model(torch.randn(2, 3, size, size))
        logits = out[0] if isinstance(out, tuple) else out
        assert logits.shape == (2, 10)
        if size > 1:
            with pytest.raises(ValueError, match=rf"{name}: input {size - 1}x{size - 1} is below the minimum {size}x{size}"):
                model(torch.randn(2, 3, size - 1, size - 1))


@pytest.mark.parametrize("name", [n for n in ALL if n not in HEAVY])
def test_training_step_reaches_every_parameter(name):
    torch.manual_seed(0)
    model = models.create(name, num_classes=10).train()
    size = max(model.min_input_size, 32)
    out = model(torch.randn(2, 3, size, size))
    outputs = list(out) if isinstance(out, tuple) else [out]
    loss = sum(torch.nn.functional.cross_entropy(o, torch.tensor([1, 7])) for o in outputs)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, missing[:5]
    bn = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(m.num_batches_tracked.item() == 1 for m in bn)


@pytest.mark.parametrize("shape", [(3, 224, 224), (2, 1, 64, 64), (2, 4, 64, 64)])
def test_wrong_input_shape_is_a_clear_error(shape):
    model = models.create("resnet18").eval()
    with pytest.raises(ValueError, match=r"resnet18: expected input of shape \[N, 3, H, W\]"):
        model(torch.randn(*shape))
