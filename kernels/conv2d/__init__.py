"""Grouped and depthwise 2-D convolution, forward and both backwards, with a measured dispatcher.

``kernels.conv2d(x, weight, bias, stride, padding, dilation, groups)`` has the semantics of
``torch.nn.functional.conv2d`` for any groups, stride, padding (ints, pairs, 'same', 'valid') and
dilation. The package, read in this order:

* :mod:`.geometry` - the argument checks and the shape arithmetic every path shares;
* :mod:`.depthwise` - one input channel per group: stencils, forward and both gradients;
* :mod:`.grouped` - any groups: implicit GEMM with groups packed into tensor-core tiles;
* :mod:`.dispatch` - which path (those two, or ``torch``: cuDNN) computes each direction of each
  shape, measured on a GPU and cached per GPU and software version;
* this file - the autograd function, the public :func:`conv2d` and the module twin
  :class:`TritonConv2d`.

``kernels.conv2d`` is this package and the function at once: calling the package calls
:func:`conv2d` (``kernels.conv2d(x, w, groups=4)``), and its modules stay reachable as
attributes (``kernels.conv2d.depthwise``). Measured figures, with the commit they ran on, are in
results/h200/README.md.
"""

from __future__ import annotations

import sys
import types

import torch
import torch.nn.functional as F
from torch import nn

from .._patch import register_swap
from . import depthwise, dispatch, geometry, grouped
from .dispatch import conv2d_decisions, conv2d_dispatch

__all__ = ["conv2d", "TritonConv2d", "Conv2dFunction", "conv2d_decisions", "conv2d_dispatch"]


# --- autograd ------------------------------------------------------------------------------------

class Conv2dFunction(torch.autograd.Function):
    """Saves x and the weight; each backward direction is dispatched on its own."""

    @staticmethod
    def forward(ctx, x, weight, bias, geo):
        ctx.save_for_backward(x, weight)
        ctx.geo = geo
        ctx.has_bias = bias is not None
        return dispatch.forward(x, weight, bias, geo)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dy):
        x, weight = ctx.saved_tensors
        geo = ctx.geo
        need_dx, need_dw, need_db = ctx.needs_input_grad[:3]
        need_db = need_db and ctx.has_bias
        dx = dw = db = None
        if need_dx:
            dx = dispatch.input_grad(dy, x, weight, geo)
        if need_dw or need_db:
            dw, db = dispatch.weight_grad(dy, x, weight, geo, need_db)
            dw = dw if need_dw else None
        return dx, dw, db, None


# --- public API ----------------------------------------------------------------------------------

def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution with the semantics of ``torch.nn.functional.conv2d`` (cross-correlation):

    ``y[n, o, i, j] = b[o] + sum_{c, u, v} x[n, g*C_in/groups + c, i*s_h - p_top + u*d_h,
    j*s_w - p_left + v*d_w] * w[o, c, u, v]`` with ``g = o // (C_out/groups)`` and zero padding.

    ``x``: ``[N, C_in, H, W]``; ``weight``: ``[C_out, C_in/groups, kH, kW]``; ``bias``: ``[C_out]`` or
    None; all float32, float16 or bfloat16 alike, any strides (contiguous NCHW and channels_last
    need no copy). ``stride``/``dilation``: int >= 1 or a pair; ``padding``: int >= 0, a pair,
    ``'valid'`` or ``'same'`` (stride 1; an odd total padding puts the extra row/column at the
    bottom/right, as torch does). ``groups`` divides C_in and C_out. The output has x's dtype and
    memory format; arithmetic is fp32 (fp32 inputs: tf32 products if
    ``torch.backends.cudnn.allow_tf32``). Inside ``torch.autocast`` all three are cast to the
    autocast dtype first, as F.conv2d's are. Differentiable in x, weight and bias (first order).
    Each direction runs on the path :func:`conv2d_decisions` records (see the module docstring).
    """
    x, weight, bias = _autocast(x, weight, bias)
    geo = geometry.check_arguments(x, weight, bias, stride, padding, dilation, groups)
    return Conv2dFunction.apply(x, weight, bias, geo)


def _autocast(x, weight, bias):
    """Inside ``torch.autocast`` F.conv2d computes in the autocast dtype (its inputs cast, the
    casts differentiable); a custom op is not on autocast's list, so it casts for itself."""
    if not isinstance(x, torch.Tensor) or x.device.type not in ("cuda", "cpu") \
            or not torch.is_autocast_enabled(x.device.type):
        return x, weight, bias
    dtype = torch.get_autocast_dtype(x.device.type)
    cast = lambda t: t.to(dtype) if isinstance(t, torch.Tensor) and t.is_floating_point() else t  # noqa: E731
    return cast(x), cast(weight), cast(bias)


# --- module twin -----------------------------------------------------------------------------------

class TritonConv2d(nn.Conv2d):
    """The twin of ``nn.Conv2d`` on :func:`conv2d`: same parameters, keys and ``extra_repr``;
    non-zero ``padding_mode`` pads first, as ``nn.Conv2d`` does."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding_mode != "zeros":
            x = F.pad(x, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)
        return conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


# Dense convolution stays with cuDNN; every grouped and depthwise one is swapped.
register_swap("conv2d", "torch.nn:Conv2d", TritonConv2d, when=lambda m: m.groups > 1)


# --- compile check -------------------------------------------------------------------------------

def compile_cases():
    """Every depthwise and grouped kernel per dtype and layout (each module's own cases)."""
    return depthwise.compile_cases() + grouped.compile_cases()


class _CallablePackage(types.ModuleType):
    """``kernels.conv2d(...)`` calls :func:`conv2d`: the package is not shadowed by its function."""

    def __call__(self, *args, **kwargs):
        return conv2d(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
