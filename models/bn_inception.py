"""BN-Inception (Ioffe & Szegedy, 2015), the Inception variant of the Batch Normalization paper.

The network of the paper's appendix (Figure 5): GoogLeNet with every 5x5 convolution replaced by
two 3x3 ("double 3x3"), a third 28x28 module, stride-2 modules (3c, 4e) instead of max-pools
between the stages, average pooling inside most modules, and a BatchNorm before every ReLU
(``ConvBNReLU``; eps 1e-5, BatchNorm's and Caffe's default, as in the Caffe-derived PyTorch port
``bninception`` of Cadene's pretrainedmodels - TF-slim's ``inception_v2`` uses 1e-3). No local
response normalization, no dropout and no auxiliary classifiers: the paper removes the first two
(Section 4.2.1) and its table shows none of the last.

The first convolution is what the appendix says it is: "separable convolution with depth
multiplier 8" - a depthwise 7x7/2 convolution taking the 3 input channels to 24, then a 1x1
convolution to 64, with one BatchNorm + ReLU after both (TF-slim's ``separable_conv2d``). The
well-known ports (Cadene's, the Caffe ``bn-inception`` models) use a plain 7x7 convolution instead,
with 6,696 more parameters.

In the stride-2 modules the stride sits on the last 3x3 convolution of each branch and on the
pass-through max-pool, which is padded so that the branches agree in size for odd inputs too.
The table's "output size" column says 576 channels for 4c and 4d and 1024 for 4e, but its own
filter counts give 608, 608 and 1056; the filter counts are built here (as in every port).
"""

from __future__ import annotations

import torch
from torch import nn

from ._registry import Paper, Reference, Reported, register_model
from .blocks import ConvBNReLU, ImageClassifier

BN_INCEPTION = Paper("BN-Inception", "Batch Normalization: Accelerating Deep Network Training by "
                     "Reducing Internal Covariate Shift", 2015, "Ioffe, Szegedy")


class SeparableConvBNReLU(nn.Module):
    """Depthwise kxk conv (``depth_multiplier`` filters per input channel), 1x1 conv, BN, ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, depth_multiplier: int = 8) -> None:
        super().__init__()
        mid = in_channels * depth_multiplier
        self.depthwise = nn.Conv2d(in_channels, mid, kernel_size, stride=stride, padding=padding,
                                   groups=in_channels, bias=False)
        self.pointwise = ConvBNReLU(mid, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class InceptionBN(nn.Module):
    """1x1; 1x1 -> 3x3; 1x1 -> 3x3 -> 3x3; pool (-> 1x1 projection), concatenated.

    ``ch1x1=0`` drops the 1x1 branch and ``pool_proj=0`` makes the pool branch a pass-through,
    as in the stride-2 modules 3c and 4e.
    """

    def __init__(self, in_channels: int, ch1x1: int, ch3x3red: int, ch3x3: int, dbl3x3red: int, dbl3x3: int,
                 pool: str, pool_proj: int, stride: int = 1) -> None:
        super().__init__()
        self.branch1 = ConvBNReLU(in_channels, ch1x1, 1) if ch1x1 else None
        self.branch2 = nn.Sequential(ConvBNReLU(in_channels, ch3x3red, 1),
                                     ConvBNReLU(ch3x3red, ch3x3, 3, stride=stride, padding=1))
        self.branch3 = nn.Sequential(ConvBNReLU(in_channels, dbl3x3red, 1),
                                     ConvBNReLU(dbl3x3red, dbl3x3, 3, padding=1),
                                     ConvBNReLU(dbl3x3, dbl3x3, 3, stride=stride, padding=1))
        pooling = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}[pool](3, stride=stride, padding=1)
        self.branch4 = nn.Sequential(pooling, ConvBNReLU(in_channels, pool_proj, 1)) if pool_proj else pooling
        self.out_channels = ch1x1 + ch3x3 + dbl3x3 + (pool_proj or in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [self.branch2(x), self.branch3(x), self.branch4(x)]
        if self.branch1 is not None:
            branches.insert(0, self.branch1(x))
        return torch.cat(branches, 1)


# Figure 5: #1x1, #3x3 reduce, #3x3, double #3x3 reduce, double #3x3, pool, pool projection
# (0: pass-through), stride.
FIGURE5 = {
    "3a": (64, 64, 64, 64, 96, "avg", 32, 1),
    "3b": (64, 64, 96, 64, 96, "avg", 64, 1),
    "3c": (0, 128, 160, 64, 96, "max", 0, 2),
    "4a": (224, 64, 96, 96, 128, "avg", 128, 1),
    "4b": (192, 96, 128, 96, 128, "avg", 128, 1),
    "4c": (160, 128, 160, 128, 160, "avg", 128, 1),
    "4d": (96, 128, 192, 160, 192, "avg", 128, 1),
    "4e": (0, 128, 192, 192, 256, "max", 0, 2),
    "5a": (352, 192, 320, 160, 224, "avg", 128, 1),
    "5b": (352, 192, 320, 192, 224, "max", 128, 1),
}


class BNInception(ImageClassifier):
    """Separable 7x7/2 conv, max-pool, 1x1 + 3x3 conv, max-pool, ten Inception modules, global pool, fc."""

    # Found by trying sizes: the stem's two max-pools are unpadded 3x3 windows; every later
    # stride-2 layer is padded.
    min_input_size = 7

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = SeparableConvBNReLU(3, 64, 7, stride=2, padding=3, depth_multiplier=8)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = ConvBNReLU(64, 64, 1)
        self.conv3 = ConvBNReLU(64, 192, 3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        modules, channels = [], 192
        for widths in FIGURE5.values():
            modules.append(InceptionBN(channels, *widths))
            channels = modules[-1].out_channels
        self.inceptions = nn.Sequential(*modules)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        return self.inceptions(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.avgpool(x).flatten(1))


# Figure 5's filter counts: convolution weights, BatchNorm scale and shift, and the classifier.
_PAPER_PARAMS = 11_278_528


@register_model(BN_INCEPTION, input_size=224,
                reported=Reported(25.2, 7.82, "single-crop 224",
                                  "Figure 4, BN-Inception single crop, ILSVRC-2012 val (144 crops: 21.99 / 5.82)",
                                  other_protocols=(("144crop", 21.99, 5.82, "Figure 4, BN-Inception multicrop "
                                                                            "(144 crops)"),)),
                reference=Reference(paper_params=_PAPER_PARAMS,
                                    notes="first conv separable as the appendix says (the ports use a plain "
                                          "7x7); BN eps 1e-5; pass-through max-pools padded; final 7x7 average "
                                          "pool made global; the text's 13.6M parameters do not follow from the "
                                          "table, which gives 11.28M"))
def bn_inception(**kwargs):
    return BNInception(**kwargs)
