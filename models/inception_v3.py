"""Inception-v3 (Szegedy et al., 2015), in torchvision's layout: its checkpoints load strictly.

The paper's Inception-v3 is Inception-v2 (factorized convolutions, Figures 5-7, and the
efficient grid reductions of Figure 10) trained with RMSProp and label smoothing, with the 7x7
stem convolution factorized into 3x3s and a batch-normalized auxiliary classifier on the last
17x17 grid. The layout here is that of Google's released checkpoint, which torchvision and timm
port and which departs in detail from the paper's Table 1: the stem ends 1x1 conv (80) ->
3x3 conv (192) -> max pool rather than in three 3x3 convolutions, the 35x35 modules keep a
5x5 branch beside the factorized double 3x3, and there are four 17x17 modules (Mixed_6b-e)
where Table 1 lists five. Every convolution is bias-free and batch-normalized with eps=0.001
(TensorFlow's), i.e. a ``ConvBNReLU``.

The auxiliary classifier (``AuxLogits``) is built by default and only runs in training mode,
where ``forward`` returns ``InceptionOutputs(logits, aux_logits)`` as torchvision does; in eval
mode it returns the logits alone. It needs the full 17x17 grid (a 5x5/3 average pool, then a
5x5 convolution), so training with it requires inputs of at least 299x299, while inference
works down to 75x75: ``min_input_size`` says which applies.
"""

from __future__ import annotations

from collections import namedtuple

import torch
import torch.nn.functional as F
from torch import nn

from ._registry import Paper, Reference, Reported, register_model
from .blocks import ConvBNReLU, ImageClassifier

INCEPTION_V3 = Paper("Inception-v3", "Rethinking the Inception Architecture for Computer Vision", 2015,
                     "Szegedy, Vanhoucke, Ioffe, Shlens, Wojna")

InceptionOutputs = namedtuple("InceptionOutputs", ["logits", "aux_logits"])

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def conv_bn(in_channels: int, out_channels: int, kernel_size, stride=1, padding=0) -> ConvBNReLU:
    return ConvBNReLU(in_channels, out_channels, kernel_size, stride=stride, padding=padding, eps=0.001)


class InceptionA(nn.Module):
    """35x35 module (Figure 5): 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avg pool-1x1."""

    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = conv_bn(in_channels, 64, 1)
        self.branch5x5_1 = conv_bn(in_channels, 48, 1)
        self.branch5x5_2 = conv_bn(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = conv_bn(in_channels, 64, 1)
        self.branch3x3dbl_2 = conv_bn(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = conv_bn(96, 96, 3, padding=1)
        self.branch_pool = conv_bn(in_channels, pool_features, 1)

    def forward(self, x):
        branch5x5 = self.branch5x5_2(self.branch5x5_1(x))
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        branch_pool = self.branch_pool(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1))
        return torch.cat([self.branch1x1(x), branch5x5, branch3x3dbl, branch_pool], 1)


class InceptionB(nn.Module):
    """35x35 -> 17x17 grid reduction (Figure 10): stride-2 convolutions beside a stride-2 max pool."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = conv_bn(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = conv_bn(in_channels, 64, 1)
        self.branch3x3dbl_2 = conv_bn(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = conv_bn(96, 96, 3, stride=2)

    def forward(self, x):
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), branch3x3dbl, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionC(nn.Module):
    """17x17 module (Figure 6): the 7x7 convolutions factorized into 1x7 and 7x1."""

    def __init__(self, in_channels: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = conv_bn(in_channels, 192, 1)
        self.branch7x7_1 = conv_bn(in_channels, c7, 1)
        self.branch7x7_2 = conv_bn(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = conv_bn(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = conv_bn(in_channels, c7, 1)
        self.branch7x7dbl_2 = conv_bn(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = conv_bn(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = conv_bn(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = conv_bn(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = conv_bn(in_channels, 192, 1)

    def forward(self, x):
        branch7x7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        branch7x7dbl = self.branch7x7dbl_1(x)
        for conv in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            branch7x7dbl = conv(branch7x7dbl)
        branch_pool = self.branch_pool(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1))
        return torch.cat([self.branch1x1(x), branch7x7, branch7x7dbl, branch_pool], 1)


class InceptionD(nn.Module):
    """17x17 -> 8x8 grid reduction."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = conv_bn(in_channels, 192, 1)
        self.branch3x3_2 = conv_bn(192, 320, 3, stride=2)
        self.branch7x7x3_1 = conv_bn(in_channels, 192, 1)
        self.branch7x7x3_2 = conv_bn(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = conv_bn(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = conv_bn(192, 192, 3, stride=2)

    def forward(self, x):
        branch3x3 = self.branch3x3_2(self.branch3x3_1(x))
        branch7x7x3 = self.branch7x7x3_1(x)
        for conv in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            branch7x7x3 = conv(branch7x7x3)
        return torch.cat([branch3x3, branch7x7x3, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionE(nn.Module):
    """8x8 module (Figure 7): expanded filter bank, the 3x3s split into parallel 1x3 and 3x1."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch1x1 = conv_bn(in_channels, 320, 1)
        self.branch3x3_1 = conv_bn(in_channels, 384, 1)
        self.branch3x3_2a = conv_bn(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = conv_bn(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = conv_bn(in_channels, 448, 1)
        self.branch3x3dbl_2 = conv_bn(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = conv_bn(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = conv_bn(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = conv_bn(in_channels, 192, 1)

    def forward(self, x):
        branch3x3 = self.branch3x3_1(x)
        branch3x3dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        branch_pool = self.branch_pool(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1))
        return torch.cat([self.branch1x1(x),
                          self.branch3x3_2a(branch3x3), self.branch3x3_2b(branch3x3),
                          self.branch3x3dbl_3a(branch3x3dbl), self.branch3x3dbl_3b(branch3x3dbl),
                          branch_pool], 1)


class InceptionAux(nn.Module):
    """Auxiliary classifier on the last 17x17 grid (Figure 8), batch-normalized ("BN-auxiliary")."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv0 = conv_bn(in_channels, 128, 1)
        self.conv1 = conv_bn(128, 768, 5)
        self.fc = nn.Linear(768, num_classes)

    def forward(self, x):
        x = self.conv1(self.conv0(F.avg_pool2d(x, kernel_size=5, stride=3)))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class Inception3(ImageClassifier):
    """Stem, 3 x InceptionA, reduction, 4 x InceptionC (+ aux head), reduction, 2 x InceptionE."""

    def __init__(self, num_classes: int = 1000, aux_logits: bool = True, transform_input: bool = False,
                 dropout: float = 0.5) -> None:
        super().__init__()
        self.aux_logits = aux_logits
        self.transform_input = transform_input
        self.Conv2d_1a_3x3 = conv_bn(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = conv_bn(32, 32, 3)
        self.Conv2d_2b_3x3 = conv_bn(32, 64, 3, padding=1)
        self.maxpool1 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Conv2d_3b_1x1 = conv_bn(64, 80, 1)
        self.Conv2d_4a_3x3 = conv_bn(80, 192, 3)
        self.maxpool2 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.AuxLogits = InceptionAux(768, num_classes) if aux_logits else None
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280)
        self.Mixed_7c = InceptionE(2048)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(2048, num_classes)
        # torchvision's init: std 0.1, narrower in the aux head. torchvision truncates the normal
        # at +-2, which is 20 or more standard deviations, so a plain normal is the same
        # distribution and an order of magnitude faster to draw.
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(m.weight, std=0.1)
        if self.AuxLogits is not None:
            nn.init.normal_(self.AuxLogits.conv1.conv.weight, std=0.01)
            nn.init.normal_(self.AuxLogits.fc.weight, std=0.001)

    @property
    def min_input_size(self) -> int:
        # 75 leaves a 1x1 map after Mixed_7a; the aux head's 5x5/3 pool and 5x5 conv need the
        # whole 17x17 grid at Mixed_6e, which only a 299 input gives.
        return 299 if self.training and self.aux_logits else 75

    def _transform_input(self, x):
        # Google's weights expect inputs in [-1, 1]; this maps ImageNet-normalized ones there.
        if not self.transform_input:
            return x
        mean = x.new_tensor(_IMAGENET_MEAN).view(1, 3, 1, 1)
        std = x.new_tensor(_IMAGENET_STD).view(1, 3, 1, 1)
        return x * (std / 0.5) + (mean - 0.5) / 0.5

    def features_17x17(self, x):
        """Input to the last 17x17 module's output, where the aux head branches off."""
        x = self._transform_input(x)
        x = self.maxpool1(self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x))))
        x = self.maxpool2(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)))
        x = self.Mixed_5d(self.Mixed_5c(self.Mixed_5b(x)))
        return self.Mixed_6e(self.Mixed_6d(self.Mixed_6c(self.Mixed_6b(self.Mixed_6a(x)))))

    def features_8x8(self, x):
        return self.Mixed_7c(self.Mixed_7b(self.Mixed_7a(x)))

    def forward_features(self, x):
        return self.features_8x8(self.features_17x17(x))

    def forward_head(self, x):
        return self.fc(self.dropout(self.avgpool(x)).flatten(1))

    def forward(self, x):
        self.check_input(x)
        x = self.features_17x17(x)
        aux = self.AuxLogits(x) if self.training and self.AuxLogits is not None else None
        logits = self.forward_head(self.features_8x8(x))
        return InceptionOutputs(logits, aux) if self.training and self.aux_logits else logits


@register_model(INCEPTION_V3, input_size=299,
                reported=Reported(21.2, 5.6, "single-crop 299",
                                  "Table 3 (Inception-v3 = Inception-v2 + BN-auxiliary), ILSVRC-2012 val"),
                reference=Reference(torchvision="inception_v3",
                                    notes="layout of the released checkpoint (torchvision's), not Table 1: "
                                          "stem ends 1x1(80)-3x3(192)-maxpool, 35x35 modules keep a 5x5 "
                                          "branch, four 17x17 modules instead of five; dropout 0.5 before "
                                          "the classifier (torchvision's; the paper gives no rate)"))
def inception_v3(**kwargs):
    return Inception3(**kwargs)
