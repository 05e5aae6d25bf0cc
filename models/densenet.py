"""DenseNet (Huang et al., 2017), in torchvision's layout: its checkpoints load strictly.

The ImageNet networks of the paper's Table 1 are DenseNet-BC: within a dense block every layer
takes the concatenation of all earlier feature maps of the block and adds ``k`` (the growth
rate) new ones through a bottleneck, BN-ReLU-Conv(1x1, 4k) then BN-ReLU-Conv(3x3, k); between
blocks a transition (BN-ReLU-Conv 1x1, 2x2 average pool) halves the channels (compression 0.5).
The stem is a 7x7/2 convolution with 2k channels and a 3x3/2 max pool; after the last block a
BN-ReLU precedes the global average pool and the classifier, as in the authors' Torch release.

Every "BN-ReLU" of the pre-activation composite is one ``BatchNormReLU2d``. Each layer
concatenates the block's feature list itself, as torchvision does, so intermediate results
equal torchvision's exactly. torchvision's ``memory_efficient`` option (gradient checkpointing
of the concatenation + bottleneck) is left out: it changes memory use, not the network.

DenseNet-161 (k=48, 96 stem channels) is not in the paper; it is one of the authors' released
ImageNet models, which torchvision and timm provide.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from ._registry import Paper, Reference, Reported, register_model
from .blocks import BatchNormReLU2d, ImageClassifier

DENSENET = Paper("DenseNet", "Densely Connected Convolutional Networks", 2017,
                 "Huang, Liu, van der Maaten, Weinberger")


class DenseLayer(nn.Module):
    """BN-ReLU-Conv(1x1, bn_size * k) -> BN-ReLU-Conv(3x3, k) on the concatenated inputs."""

    def __init__(self, in_channels: int, growth_rate: int, bn_size: int, drop_rate: float) -> None:
        super().__init__()
        self.norm1 = BatchNormReLU2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, bn_size * growth_rate, kernel_size=1, bias=False)
        self.norm2 = BatchNormReLU2d(bn_size * growth_rate)
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, kernel_size=3, padding=1, bias=False)
        self.drop_rate = drop_rate

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        out = self.conv1(self.norm1(torch.cat(features, 1)))
        out = self.conv2(self.norm2(out))
        if self.drop_rate > 0:
            out = F.dropout(out, p=self.drop_rate, training=self.training)
        return out


class DenseBlock(nn.ModuleDict):
    """``num_layers`` dense layers; the output is the input followed by every layer's k maps."""

    def __init__(self, num_layers: int, in_channels: int, growth_rate: int, bn_size: int,
                 drop_rate: float) -> None:
        super().__init__()
        for i in range(num_layers):
            self.add_module(f"denselayer{i + 1}",
                            DenseLayer(in_channels + i * growth_rate, growth_rate, bn_size, drop_rate))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


class Transition(nn.Sequential):
    """BN-ReLU-Conv(1x1) then 2x2/2 average pool, between two dense blocks."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.norm = BatchNormReLU2d(in_channels)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False)
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)


class DenseNet(ImageClassifier):
    """Stem, four dense blocks with compressing transitions between them, BN-ReLU, pool, linear."""

    # Three unpadded 2x2/2 average pools follow the stride-4 stem, so the stem must leave an 8x8
    # map: a 29x29 input does (conv0 15x15, pool0 8x8), 28x28 leaves 7x7 and a 0x0 map at the end.
    min_input_size = 29

    def __init__(self, growth_rate: int = 32, block_config: tuple[int, ...] = (6, 12, 24, 16),
                 num_init_features: int = 64, bn_size: int = 4, compression: float = 0.5,
                 drop_rate: float = 0.0, num_classes: int = 1000) -> None:
        super().__init__()
        self.features = nn.Sequential(OrderedDict([
            ("conv0", nn.Conv2d(3, num_init_features, kernel_size=7, stride=2, padding=3, bias=False)),
            ("norm0", BatchNormReLU2d(num_init_features)),
            ("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1)),
        ]))
        channels = num_init_features
        for i, num_layers in enumerate(block_config):
            self.features.add_module(f"denseblock{i + 1}",
                                     DenseBlock(num_layers, channels, growth_rate, bn_size, drop_rate))
            channels += num_layers * growth_rate
            if i != len(block_config) - 1:
                self.features.add_module(f"transition{i + 1}", Transition(channels, int(channels * compression)))
                channels = int(channels * compression)
        self.features.add_module("norm5", BatchNormReLU2d(channels))
        self.avgpool = nn.AdaptiveAvgPool2d(1)  # no parameters: torchvision's state_dict still loads
        self.classifier = nn.Linear(channels, num_classes)
        # The init of the authors' Torch release, as torchvision has it.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.Linear):
                nn.init.constant_(m.bias, 0)

    def forward_features(self, x):
        return self.features(x)

    def forward_head(self, x):
        return self.classifier(self.avgpool(x).flatten(1))


_TABLE3 = "Table 3, single-crop 224 (the table also gives 10-crop), ILSVRC-2012 val"


@register_model(DENSENET, input_size=224, reported=Reported(25.02, 7.71, "single-crop 224", _TABLE3),
                reference=Reference(torchvision="densenet121", timm="densenet121", timm_layout=True))
def densenet121(**kwargs):
    return DenseNet(32, (6, 12, 24, 16), 64, **kwargs)


@register_model(DENSENET, input_size=224, reported=Reported(23.80, 6.85, "single-crop 224", _TABLE3),
                reference=Reference(torchvision="densenet169", timm="densenet169", timm_layout=True))
def densenet169(**kwargs):
    return DenseNet(32, (6, 12, 32, 32), 64, **kwargs)


@register_model(DENSENET, input_size=224, reported=Reported(22.58, 6.34, "single-crop 224", _TABLE3),
                reference=Reference(torchvision="densenet201", timm="densenet201", timm_layout=True))
def densenet201(**kwargs):
    return DenseNet(32, (6, 12, 48, 32), 64, **kwargs)


@register_model(DENSENET, input_size=224,
                reference=Reference(torchvision="densenet161", timm="densenet161", timm_layout=True,
                                    notes="not in the paper (no reported error): k=48 with 96 stem channels, "
                                          "from the authors' released ImageNet models"))
def densenet161(**kwargs):
    return DenseNet(48, (6, 12, 36, 24), 96, **kwargs)
