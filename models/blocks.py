"""The few building blocks every network in ``models/`` is made of.

The Triton kernels in ``kernels/`` replace exactly these blocks (``kernels.patch``), so a
network that re-implemented one of them inline would silently escape the fast path:

* ``nn.Conv2d`` itself, used directly, with ``groups`` covering grouped (ResNeXt, AlexNet's
  two-GPU split) and depthwise convolution;
* :class:`BatchNormReLU2d` - BatchNorm, optional residual add, optional ReLU;
* :class:`ConvBNReLU` - a bias-free convolution followed by :class:`BatchNormReLU2d`
  (torchvision's and timm's ``BasicConv2d``, same state_dict keys);
* :class:`SqueezeExcite` - squeeze-and-excitation, optionally fused with the residual tail;
* :class:`LocalResponseNorm` - cross-channel local response normalization.

And the base class :class:`ImageClassifier`, which checks the input once at the door so a
too-small image fails with a clear message rather than a shape error from deep inside.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class BatchNormReLU2d(nn.BatchNorm2d):
    """``relu(batch_norm(x) [+ residual])``; ``relu=False`` gives a plain BatchNorm (+ residual).

    A subclass rather than a wrapper, so parameters, buffers and state_dict keys are those of
    ``nn.BatchNorm2d`` (torchvision checkpoints load unchanged) and the ReLU that follows a
    BatchNorm in every one of these networks is visible to ``kernels.patch`` as one op.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 relu: bool = True, **kwargs) -> None:
        super().__init__(num_features, eps=eps, momentum=momentum, **kwargs)
        self.relu = relu

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        x = super().forward(x)
        if residual is not None:
            x = x + residual
        # In place, as torchvision does: batch_norm's backward needs its input, not its output,
        # so overwriting the output saves one activation-sized buffer in training.
        return F.relu(x, inplace=True) if self.relu else x

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, relu={self.relu}"


class ConvBNReLU(nn.Module):
    """Bias-free ``Conv2d`` then :class:`BatchNormReLU2d`; keys ``conv.*`` and ``bn.*``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 groups: int = 1, eps: float = 1e-5, relu: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                              padding=padding, groups=groups, bias=False)
        self.bn = BatchNormReLU2d(out_channels, eps=eps, relu=relu)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation (Hu et al., 2017), optionally fused with a residual block's tail.

    ``y = x * sigmoid(fc2(relu(fc1(mean_hw(x)))))``, then ``+ residual`` and ``relu`` if asked,
    so an SE-ResNet block ends in ``se(out, residual=shortcut, relu=True)``. ``fc1``/``fc2`` are
    1x1 convolutions with bias, the layout of timm's ``SEModule`` and the SENet release.
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        if channels % reduction:
            raise ValueError(f"SqueezeExcite: channels={channels} is not divisible by reduction={reduction}")
        self.fc1 = nn.Conv2d(channels, channels // reduction, kernel_size=1)
        self.fc2 = nn.Conv2d(channels // reduction, channels, kernel_size=1)

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None,
                relu: bool = False) -> torch.Tensor:
        scale = x.mean((2, 3), keepdim=True)
        scale = torch.sigmoid(self.fc2(F.relu(self.fc1(scale), inplace=True)))
        x = x * scale
        if residual is not None:
            x = x + residual
        return F.relu(x, inplace=True) if relu else x


class LocalResponseNorm(nn.LocalResponseNorm):
    """Cross-channel LRN with torch's semantics: ``b = a / (k + alpha/size * sum a^2)^beta``.

    Papers write alpha without the division by the window (AlexNet: ``k=2, n=5, alpha=1e-4,
    beta=0.75``), Caffe with it; :meth:`from_paper` converts the former so the model files can
    quote the paper's numbers verbatim.
    """

    @classmethod
    def from_paper(cls, n: int, alpha: float, beta: float, k: float) -> "LocalResponseNorm":
        return cls(size=n, alpha=alpha * n, beta=beta, k=k)


class ImageClassifier(nn.Module):
    """Base of every model in the zoo: ``forward = forward_head(forward_features(check(x)))``.

    Subclasses set ``min_input_size`` (the smallest square input whose forward works) and
    implement ``forward_features`` and ``forward_head``; models with auxiliary heads override
    ``forward`` and call :meth:`check_input` first.
    """

    min_input_size: int = 1
    in_channels: int = 3

    def check_input(self, x: torch.Tensor) -> None:
        name = getattr(self, "model_name", type(self).__name__)
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"{name}: expected input of shape [N, {self.in_channels}, H, W], got {list(x.shape)}")
        height, width = x.shape[-2:]
        if min(height, width) < self.min_input_size:
            raise ValueError(f"{name}: input {height}x{width} is below the minimum "
                             f"{self.min_input_size}x{self.min_input_size} this model accepts")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.forward_head(self.forward_features(x))
