"""kernels.patch / kernels.unpatch on real models from the zoo, at small sizes.

A patched model gives the unpatched model's outputs (and, in training, gradients and running
statistics), shares its parameter and buffer storage, and unpatch gives every module its class
back. Through the Triton interpreter on CPU tensors (TRITON_INTERPRET=1) or on a CUDA GPU.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import kernels
import models
from kernels import TritonBatchNormReLU2d, TritonConv2d, TritonLocalResponseNorm, _common, _patch
from models.blocks import BatchNormReLU2d, LocalResponseNorm

DEVICE = "cpu" if _common.INTERPRET else ("cuda" if torch.cuda.is_available() else None)
pytestmark = pytest.mark.skipif(DEVICE is None, reason="needs TRITON_INTERPRET=1 set before triton is imported "
                                                       "(nox -s tests sets it) or a CUDA GPU")


def check(name, out, ref, tol=1e-5):
    err = _common.relative_error(out, ref)
    assert err <= tol, f"{name}: relative error {err:.3g} exceeds {tol:g}"


def _storage(model):
    return {k: v.data_ptr() for k, v in model.state_dict(keep_vars=True).items()}


def _classes(model):
    return {name: type(m) for name, m in model.named_modules()}


def _compare(name, size, batch, expect, memory_format=torch.contiguous_format):
    torch.manual_seed(0)
    ref = models.create(name).to(DEVICE, memory_format=memory_format)
    with torch.no_grad():  # non-trivial affine parameters, so a misplaced BN shows
        for m in ref.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
    model = copy.deepcopy(ref)
    classes, storage, modules = _classes(model), _storage(model), dict(model.named_modules())
    assert kernels.patch(model) is model
    swapped = {n: type(m) for n, m in model.named_modules() if type(m) is not classes[n]}
    assert sorted(set(swapped.values()), key=str) == sorted(expect, key=str) and len(swapped) > 0
    assert _storage(model) == storage  # nothing copied
    assert dict(model.named_modules()) == modules  # the same module objects
    assert list(model.state_dict()) == list(ref.state_dict())

    x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(1))
    x = x.to(DEVICE).contiguous(memory_format=memory_format)
    for training in (False, True):
        ref.train(training), model.train(training)
        torch.manual_seed(2)
        out_ref = ref(x)
        torch.manual_seed(2)  # the same dropout masks
        with _common.poison_outputs():
            out = model(x)
        check(f"logits (training={training})", out, out_ref)
        if training:
            out_ref.square().sum().backward()
            out.square().sum().backward()
            for (pname, p_ref), p in zip(ref.named_parameters(), model.parameters(), strict=True):
                check(f"grad {pname}", p.grad, p_ref.grad, 1e-4)
            for (bname, b_ref), b in zip(ref.named_buffers(), model.buffers(), strict=True):
                if b.is_floating_point():
                    check(bname, b, b_ref, 1e-5)
                else:
                    assert torch.equal(b, b_ref), bname

    assert kernels.unpatch(model) is model
    assert _classes(model) == classes
    assert not any("_kernels_original_class" in vars(m) for m in model.modules())
    assert _storage(model) == storage


def test_resnet18():
    # channels_last, as the benchmarks run. 40x40: the last stage is still 2x2, so every BN in
    # training sees 8 values per channel (at 1x1 and batch 2, a BN of two values turns rounding
    # differences into different answers)
    _compare("resnet18", size=40, batch=2, expect=[TritonBatchNormReLU2d], memory_format=torch.channels_last)


def test_alexnet_paper():
    # conv/ReLU/LRN/pool at the smallest input AlexNet accepts: the two LRNs and the three
    # two-group convolutions (conv2, conv4, conv5) are swapped, the dense ones stay with cuDNN
    _compare("alexnet_paper", size=models.create("alexnet_paper").min_input_size, batch=2,
             expect=[TritonLocalResponseNorm, TritonConv2d])


def test_ops_subset_and_unknown_op():
    model = nn.Sequential(BatchNormReLU2d(4), LocalResponseNorm(3), nn.LocalResponseNorm(2), nn.BatchNorm2d(4))
    kernels.patch(model, ops={"lrn"})
    assert [type(m) for m in model] == [BatchNormReLU2d, TritonLocalResponseNorm, TritonLocalResponseNorm,
                                        nn.BatchNorm2d]
    kernels.patch(model, ops="bn_relu")
    assert type(model[0]) is TritonBatchNormReLU2d and type(model[3]) is nn.BatchNorm2d  # plain BN: not a block
    kernels.unpatch(model)
    assert [type(m) for m in model] == [BatchNormReLU2d, LocalResponseNorm, nn.LocalResponseNorm, nn.BatchNorm2d]
    with pytest.raises(ValueError, match=r"^ops: unknown op name\(s\) \['conv3d'\]; valid: \['bn_relu', 'conv2d', 'lrn', 'squeeze_excite'\]"):
        kernels.patch(model, ops={"bn_relu", "conv3d"})
    with pytest.raises(TypeError, match="^model: expected an nn.Module"):
        kernels.patch("resnet18")


def test_subclasses_are_left_alone():
    class Custom(BatchNormReLU2d):
        def forward(self, x, residual=None):
            return super().forward(x, residual) * 2

    model = nn.Sequential(Custom(4))
    kernels.patch(model)
    assert type(model[0]) is Custom


def test_a_new_family_registers_with_one_line():
    class TwinIdentity(nn.Identity):
        pass

    try:
        kernels.register_swap("identity", "torch.nn:Identity", TwinIdentity, when=lambda m: not hasattr(m, "skip"))
        model = nn.Sequential(nn.Identity(), nn.Identity())
        model[1].skip = True
        kernels.patch(model, ops=["identity"])
        assert [type(m) for m in model] == [TwinIdentity, nn.Identity]
        kernels.unpatch(model)
        assert [type(m) for m in model] == [nn.Identity, nn.Identity]
    finally:
        _patch._SWAPS.pop("identity", None)
