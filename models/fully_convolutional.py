"""Dense evaluation as VGG did it (Simonyan & Zisserman, Sect. 3.2): the fully connected layers
turned into convolutions, so the network runs on a whole uncropped image of any size and gives a
map of class scores, which is averaged over its positions.

Two kinds of head are convertible, with no retraining:

- an adaptive pool to k x k (k > 1) followed by fully connected layers (VGG at 7 x 7, AlexNet at
  6 x 6): the first layer becomes a k x k convolution with the same weights, reshaped
  ``[out, C*k*k] -> [out, C, k, k]``, the others 1 x 1 convolutions. On an image whose features
  are exactly k x k the score map is one position: the original model's output.
- a global average pool followed by one linear layer (ResNet, the Inceptions, DenseNet): already
  fully convolutional, since averaging the scores of every position equals scoring the averaged
  features (the layer is linear). The model runs unchanged on the whole image.

Any other head (none in the zoo today) raises :class:`NotConvertible`, saying why.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class NotConvertible(ValueError):
    """A model whose head cannot be made fully convolutional; the message says why."""


class ScoreMapAverage(nn.Module):
    """Features, the head as convolutions, and the class score map averaged over its positions."""

    def __init__(self, model: nn.Module, head: nn.Sequential) -> None:
        super().__init__()
        self.model = model  # for forward_features and check_input; its head's layers are in ``head``
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.model.check_input(x)
        return self.head(self.model.forward_features(x)).mean((2, 3))


def fully_convolutional(model: nn.Module) -> nn.Module:
    """``model`` for dense evaluation: a module mapping images of any size (at least the model's
    minimum) to class scores averaged over positions. Shares the model's parameters."""
    name = getattr(model, "model_name", type(model).__name__)
    pool = getattr(model, "avgpool", None)
    if not isinstance(pool, nn.AdaptiveAvgPool2d):
        raise NotConvertible(f"{name}: its head has no adaptive average pool before the classifier")
    size = pool.output_size if isinstance(pool.output_size, tuple) else (pool.output_size,) * 2
    if size == (1, 1):
        return model  # global pooling: already fully convolutional (module docstring)
    classifier = getattr(model, "classifier", None)
    layers = list(classifier) if isinstance(classifier, nn.Sequential) else []
    if not layers or any(not isinstance(m, (nn.Linear, nn.ReLU, nn.Dropout)) for m in layers):
        raise NotConvertible(f"{name}: its classifier after the {size[0]}x{size[1]} pool is not a sequence of "
                             "linear, ReLU and dropout layers")
    converted, first = [], True
    for layer in layers:
        if isinstance(layer, nn.Linear):
            layer, first = ConvolutionalLinear(layer, size if first else (1, 1)), False
        converted.append(layer)
    return ScoreMapAverage(model, nn.Sequential(*converted))


class ConvolutionalLinear(nn.Module):
    """A linear layer applied as a convolution over ``kernel`` positions: its weight viewed
    ``[out, C, kh, kw]`` (channel-major, as ``flatten(1)`` of an NCHW tensor orders the inputs).
    It holds the linear layer itself, so the two never part: moving or casting the model moves
    the one weight."""

    def __init__(self, linear: nn.Linear, kernel: tuple[int, int]) -> None:
        super().__init__()
        channels, remainder = divmod(linear.in_features, kernel[0] * kernel[1])
        if remainder:
            raise NotConvertible(f"a linear layer of {linear.in_features} inputs cannot read "
                                 f"{kernel[0]}x{kernel[1]} positions of whole channels")
        self.linear, self.shape = linear, (linear.out_features, channels, *kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.linear.weight.view(self.shape), self.linear.bias)
