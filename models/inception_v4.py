"""Inception-v4, Inception-ResNet-v1 and Inception-ResNet-v2 (Szegedy et al., 2016).

Figure and table numbers are those of arXiv:1602.07261v2; the AAAI-17 version renumbers them
(its Table 1 is arXiv's Table 2, the single-crop results quoted below).

Every "traditional" convolution is a bias-free conv + BatchNorm (eps 0.001, TensorFlow's, as in
the authors' TF-slim release) + ReLU: :class:`ConvBNReLU`, timm's ``BasicConv2d``. As the paper
says, the Inception-ResNets put no BatchNorm on the summations: each residual block ends with a
1x1 "filter-expansion" convolution (bias, no BN, no activation), scales it down and adds it to
the block's input, ``relu(x + scale * up)``. Average pooling, dropout (keep 0.8) and one linear
layer make the head of all three networks.

**Inception-v4** (Figures 3-9) is timm's ``inception_v4`` (a port of the TF-slim release)
module for module: its state_dict loads strictly. The channel counts are the paper's. Where
the figures and the release differ, the release is kept:

* the factorized 1xn/nx1 pairs: the release runs the stem's pair 1x7 then 7x1 (Figure 3: 7x1
  then 1x7), Inception-B's five-conv tower 7x1, 1x7, 7x1, 1x7 (Figure 5: 1x7, 7x1, 1x7, 7x1) and
  Inception-C's 448/512 pair 3x1 then 1x3 (Figure 6: 1x3 then 3x1). Parameter count unchanged;
* Figure 3 labels the stem's last convolution "3x3 Conv (192 V)" without the stride 2 that its
  35x35 output (and the concatenation with the stride-2 max pool beside it) requires.

**Inception-ResNet-v1** exists in neither torchvision nor timm and follows the paper: stem of
Figure 14 (35x35x256), 5x Inception-ResNet-A (Figure 10), Reduction-A (Figure 7, Table 1:
k=192, l=192, m=256, n=384; 896 channels), 10x Inception-ResNet-B (Figure 11), Reduction-B
(Figure 12; 1792 channels), 5x Inception-ResNet-C (Figure 13), as Figure 15's schema counts
them. Choices the paper leaves open: the residual scales are those of the v2 release (0.17,
0.10, 0.20 for A, B, C; the paper only says "between 0.1 and 0.3"), and the filter-expansion
convs have a bias and no BN, as in the release. Its module names follow the release's v2.

**Inception-ResNet-v2** is the authors' release as timm ports it (``inception_resnet_v2``,
state_dict loads strictly), not the network of the figures, which cannot be built as drawn:
Reduction-A (Table 1: k=256, l=256, m=384, n=384) turns the 384 channels of Figure 3's stem
into 384+384+384 = 1152, but Figure 17's Inception-ResNet-B expands back to 1154; Reduction-B
(Figure 18) adds 384+288+320 = 992 channels, 2144 in all (2146 from 1154), but Figure 19's
Inception-ResNet-C expands to 2048. The residual additions of Figures 17 and 19 therefore do
not match their inputs. The release departs from the figures in these ways:

* stem: Inception-v3's (Figure 14's first six layers, then a stride-2 max pool, 35x35x192)
  followed by ``mixed_5b``, an Inception-v3-style block (1x1 96 | 1x1 48, 5x5 64 |
  1x1 64, 3x3 96, 3x3 96 | avg pool, 1x1 64) - 320 channels instead of Figure 3's 384;
* hence 320 -> 1088 -> 2080 channels (320+384+384, 1088+384+288+320) instead of 384/1154/2048;
* 10 / 20 / 10 blocks instead of Figure 15's 5 / 10 / 5; the last Inception-ResNet-C
  (``block8``) has scale 1.0 and no ReLU, and a 1x1 conv 2080 -> 1536 (+BN+ReLU,
  ``conv2d_7b``) precedes the average pool, so the classifier sees 1536 features;
* residual scales 0.17 / 0.10 / 0.20 (the paper gives none);
* the branch widths inside the blocks and the Reductions are those of Figures 16-19 and Table 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._registry import Paper, Reference, Reported, register_model
from .blocks import ConvBNReLU, ImageClassifier

INCEPTION_V4 = Paper("Inception-v4",
                     "Inception-v4, Inception-ResNet and the Impact of Residual Connections on Learning",
                     2016, "Szegedy, Ioffe, Vanhoucke, Alemi")


def conv_bn(in_channels: int, out_channels: int, kernel_size, stride=1, padding=0) -> ConvBNReLU:
    """A "traditional" layer of the release: bias-free conv, BatchNorm with TF's eps, ReLU."""
    return ConvBNReLU(in_channels, out_channels, kernel_size, stride=stride, padding=padding, eps=0.001)


def avg_pool_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    """Average-pooling branch; padding is excluded from the mean, as TF's 'SAME' pooling does."""
    return nn.Sequential(nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
                         conv_bn(in_channels, out_channels, 1))


# ---- Inception-v4 (Figures 3-8) ----------------------------------------------------------------

class Mixed3a(nn.Module):
    """Stem, first split (Figure 3): 3x3 max pool | 3x3 conv 96, both stride 2 'valid'."""

    def __init__(self) -> None:
        super().__init__()
        self.maxpool = nn.MaxPool2d(3, stride=2)
        self.conv = conv_bn(64, 96, 3, stride=2)

    def forward(self, x):
        return torch.cat((self.maxpool(x), self.conv(x)), 1)


class Mixed4a(nn.Module):
    """Stem, second split (Figure 3): 1x1 64, 3x3 96 'valid' | 1x1 64, 1x7 64, 7x1 64, 3x3 96 'valid'."""

    def __init__(self) -> None:
        super().__init__()
        self.branch0 = nn.Sequential(conv_bn(160, 64, 1), conv_bn(64, 96, 3))
        self.branch1 = nn.Sequential(conv_bn(160, 64, 1), conv_bn(64, 64, (1, 7), padding=(0, 3)),
                                     conv_bn(64, 64, (7, 1), padding=(3, 0)), conv_bn(64, 96, 3))

    def forward(self, x):
        return torch.cat((self.branch0(x), self.branch1(x)), 1)


class Mixed5a(nn.Module):
    """Stem, third split (Figure 3): 3x3 conv 192 | 3x3 max pool, both stride 2 'valid'."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = conv_bn(192, 192, 3, stride=2)
        self.maxpool = nn.MaxPool2d(3, stride=2)

    def forward(self, x):
        return torch.cat((self.conv(x), self.maxpool(x)), 1)


class InceptionA(nn.Module):
    """Figure 4, 35x35x384: 1x1 96 | 1x1 64, 3x3 96 | 1x1 64, 3x3 96, 3x3 96 | avg pool, 1x1 96."""

    def __init__(self) -> None:
        super().__init__()
        self.branch0 = conv_bn(384, 96, 1)
        self.branch1 = nn.Sequential(conv_bn(384, 64, 1), conv_bn(64, 96, 3, padding=1))
        self.branch2 = nn.Sequential(conv_bn(384, 64, 1), conv_bn(64, 96, 3, padding=1),
                                     conv_bn(96, 96, 3, padding=1))
        self.branch3 = avg_pool_conv(384, 96)

    def forward(self, x):
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)), 1)


class ReductionA(nn.Module):
    """Figure 7, 35x35 -> 17x17, shared by all three networks with Table 1's k, l, m, n.

    3x3 conv n stride 2 | 1x1 k, 3x3 l, 3x3 m stride 2 | 3x3 max pool stride 2 (all 'valid');
    ``in_channels + n + m`` channels out.
    """

    def __init__(self, in_channels: int, k: int, l: int, m: int, n: int) -> None:  # noqa: E741 (Table 1's names)
        super().__init__()
        self.branch0 = conv_bn(in_channels, n, 3, stride=2)
        self.branch1 = nn.Sequential(conv_bn(in_channels, k, 1), conv_bn(k, l, 3, padding=1),
                                     conv_bn(l, m, 3, stride=2))
        self.branch2 = nn.MaxPool2d(3, stride=2)

    def forward(self, x):
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x)), 1)


class InceptionB(nn.Module):
    """Figure 5, 17x17x1024: 1x1 384 | 1x1 192, 1x7 224, 7x1 256 | 1x1 192, 7x1 192, 1x7 224,
    7x1 224, 1x7 256 (the release's order) | avg pool, 1x1 128."""

    def __init__(self) -> None:
        super().__init__()
        self.branch0 = conv_bn(1024, 384, 1)
        self.branch1 = nn.Sequential(conv_bn(1024, 192, 1), conv_bn(192, 224, (1, 7), padding=(0, 3)),
                                     conv_bn(224, 256, (7, 1), padding=(3, 0)))
        self.branch2 = nn.Sequential(conv_bn(1024, 192, 1), conv_bn(192, 192, (7, 1), padding=(3, 0)),
                                     conv_bn(192, 224, (1, 7), padding=(0, 3)),
                                     conv_bn(224, 224, (7, 1), padding=(3, 0)),
                                     conv_bn(224, 256, (1, 7), padding=(0, 3)))
        self.branch3 = avg_pool_conv(1024, 128)

    def forward(self, x):
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)), 1)


class ReductionB(nn.Module):
    """Figure 8, 17x17x1024 -> 8x8x1536: 1x1 192, 3x3 192 stride 2 | 1x1 256, 1x7 256, 7x1 320,
    3x3 320 stride 2 | 3x3 max pool stride 2 (stride-2 layers 'valid')."""

    def __init__(self) -> None:
        super().__init__()
        self.branch0 = nn.Sequential(conv_bn(1024, 192, 1), conv_bn(192, 192, 3, stride=2))
        self.branch1 = nn.Sequential(conv_bn(1024, 256, 1), conv_bn(256, 256, (1, 7), padding=(0, 3)),
                                     conv_bn(256, 320, (7, 1), padding=(3, 0)), conv_bn(320, 320, 3, stride=2))
        self.branch2 = nn.MaxPool2d(3, stride=2)

    def forward(self, x):
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x)), 1)


class InceptionC(nn.Module):
    """Figure 6, 8x8x1536: 1x1 256 | 1x1 384 -> (1x3 256, 3x1 256) | 1x1 384, 3x1 448, 1x3 512
    (the release's order) -> (1x3 256, 3x1 256) | avg pool, 1x1 256. Flat attribute names, as timm."""

    def __init__(self) -> None:
        super().__init__()
        self.branch0 = conv_bn(1536, 256, 1)
        self.branch1_0 = conv_bn(1536, 384, 1)
        self.branch1_1a = conv_bn(384, 256, (1, 3), padding=(0, 1))
        self.branch1_1b = conv_bn(384, 256, (3, 1), padding=(1, 0))
        self.branch2_0 = conv_bn(1536, 384, 1)
        self.branch2_1 = conv_bn(384, 448, (3, 1), padding=(1, 0))
        self.branch2_2 = conv_bn(448, 512, (1, 3), padding=(0, 1))
        self.branch2_3a = conv_bn(512, 256, (1, 3), padding=(0, 1))
        self.branch2_3b = conv_bn(512, 256, (3, 1), padding=(1, 0))
        self.branch3 = avg_pool_conv(1536, 256)

    def forward(self, x):
        x1 = self.branch1_0(x)
        x2 = self.branch2_2(self.branch2_1(self.branch2_0(x)))
        return torch.cat((self.branch0(x), self.branch1_1a(x1), self.branch1_1b(x1),
                          self.branch2_3a(x2), self.branch2_3b(x2), self.branch3(x)), 1)


class InceptionV4(ImageClassifier):
    """Figure 9: stem, 4x Inception-A, Reduction-A, 7x Inception-B, Reduction-B, 3x Inception-C."""

    # Smallest side that survives the five 'valid' stride-2 layers and the two 'valid' 3x3 convs
    # (found by trying sizes): 75 -> 37 -> 35 -> 17 -> 15 -> 7 -> 3 -> 1.
    min_input_size = 75

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2) -> None:
        super().__init__()
        self.features = nn.Sequential(
            conv_bn(3, 32, 3, stride=2), conv_bn(32, 32, 3), conv_bn(32, 64, 3, padding=1),
            Mixed3a(), Mixed4a(), Mixed5a(),
            *[InceptionA() for _ in range(4)],
            ReductionA(384, k=192, l=224, m=256, n=384),
            *[InceptionB() for _ in range(7)],
            ReductionB(),
            *[InceptionC() for _ in range(3)],
        )
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)  # "Dropout (keep 0.8)"
        self.last_linear = nn.Linear(1536, num_classes)

    def forward_features(self, x):
        return self.features(x)

    def forward_head(self, x):
        return self.last_linear(self.dropout(self.avgpool(x).flatten(1)))


# ---- Inception-ResNet (Figures 10-19) ----------------------------------------------------------

class ResidualInception(nn.Module):
    """Tail of every Inception-ResNet block: ``relu(x + scale * conv1x1(concat(branches)))``.

    The 1x1 filter-expansion conv ``conv2d`` ("Linear" in the figures) has a bias and no BN, so
    the add and ReLU are plain ops; ``relu=False`` only for the release's last v2 block.
    """

    scale: float
    relu: bool

    def residual_tail(self, branches: tuple[torch.Tensor, ...], x: torch.Tensor) -> torch.Tensor:
        out = x + self.scale * self.conv2d(torch.cat(branches, 1))
        return F.relu(out, inplace=True) if self.relu else out


class InceptionResNetA(ResidualInception):
    """35x35 block (Figures 10, 16; the release's Block35): 1x1 32 | 1x1 32, 3x3 32 |
    1x1 a, 3x3 b, 3x3 c with ``tower=(a, b, c)``: (32, 32, 32) in v1, (32, 48, 64) in v2."""

    def __init__(self, channels: int, tower: tuple[int, int, int], scale: float, relu: bool = True) -> None:
        super().__init__()
        self.scale, self.relu = scale, relu
        a, b, c = tower
        self.branch0 = conv_bn(channels, 32, 1)
        self.branch1 = nn.Sequential(conv_bn(channels, 32, 1), conv_bn(32, 32, 3, padding=1))
        self.branch2 = nn.Sequential(conv_bn(channels, a, 1), conv_bn(a, b, 3, padding=1),
                                     conv_bn(b, c, 3, padding=1))
        self.conv2d = nn.Conv2d(32 + 32 + c, channels, 1)

    def forward(self, x):
        return self.residual_tail((self.branch0(x), self.branch1(x), self.branch2(x)), x)


class InceptionResNetB(ResidualInception):
    """17x17 block (Figures 11, 17; Block17): 1x1 w | 1x1 a, 1x7 b, 7x1 c with ``tower=(a, b, c)``:
    w=128, (128, 128, 128) in v1; w=192, (128, 160, 192) in v2."""

    def __init__(self, channels: int, width: int, tower: tuple[int, int, int], scale: float,
                 relu: bool = True) -> None:
        super().__init__()
        self.scale, self.relu = scale, relu
        a, b, c = tower
        self.branch0 = conv_bn(channels, width, 1)
        self.branch1 = nn.Sequential(conv_bn(channels, a, 1), conv_bn(a, b, (1, 7), padding=(0, 3)),
                                     conv_bn(b, c, (7, 1), padding=(3, 0)))
        self.conv2d = nn.Conv2d(width + c, channels, 1)

    def forward(self, x):
        return self.residual_tail((self.branch0(x), self.branch1(x)), x)


class InceptionResNetC(ResidualInception):
    """8x8 block (Figures 13, 19; Block8): 1x1 192 | 1x1 a, 1x3 b, 3x1 c with ``tower=(a, b, c)``:
    (192, 192, 192) in v1, (192, 224, 256) in v2."""

    def __init__(self, channels: int, tower: tuple[int, int, int], scale: float, relu: bool = True) -> None:
        super().__init__()
        self.scale, self.relu = scale, relu
        a, b, c = tower
        self.branch0 = conv_bn(channels, 192, 1)
        self.branch1 = nn.Sequential(conv_bn(channels, a, 1), conv_bn(a, b, (1, 3), padding=(0, 1)),
                                     conv_bn(b, c, (3, 1), padding=(1, 0)))
        self.conv2d = nn.Conv2d(192 + c, channels, 1)

    def forward(self, x):
        return self.residual_tail((self.branch0(x), self.branch1(x)), x)


class InceptionResNetReductionB(nn.Module):
    """17x17 -> 8x8 (Figures 12, 18): 1x1 256, 3x3 p | 1x1 256, 3x3 q | 1x1 256, 3x3 r, 3x3 s |
    3x3 max pool, stride 2 'valid' on each last layer; ``widths=(p, q, r, s)``: (384, 256, 256,
    256) in v1, (384, 288, 288, 320) in v2."""

    def __init__(self, in_channels: int, widths: tuple[int, int, int, int]) -> None:
        super().__init__()
        p, q, r, s = widths
        self.branch0 = nn.Sequential(conv_bn(in_channels, 256, 1), conv_bn(256, p, 3, stride=2))
        self.branch1 = nn.Sequential(conv_bn(in_channels, 256, 1), conv_bn(256, q, 3, stride=2))
        self.branch2 = nn.Sequential(conv_bn(in_channels, 256, 1), conv_bn(256, r, 3, padding=1),
                                     conv_bn(r, s, 3, stride=2))
        self.branch3 = nn.MaxPool2d(3, stride=2)

    def forward(self, x):
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)), 1)


class Mixed5b(nn.Module):
    """The v2 release's last stem layer, 35x35x192 -> 320 (not in the paper): 1x1 96 |
    1x1 48, 5x5 64 | 1x1 64, 3x3 96, 3x3 96 | avg pool, 1x1 64."""

    def __init__(self) -> None:
        super().__init__()
        self.branch0 = conv_bn(192, 96, 1)
        self.branch1 = nn.Sequential(conv_bn(192, 48, 1), conv_bn(48, 64, 5, padding=2))
        self.branch2 = nn.Sequential(conv_bn(192, 64, 1), conv_bn(64, 96, 3, padding=1),
                                     conv_bn(96, 96, 3, padding=1))
        self.branch3 = avg_pool_conv(192, 64)

    def forward(self, x):
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)), 1)


class InceptionResNet(ImageClassifier):
    """Figure 15's schema: stem, Inception-ResNet-A blocks, Reduction-A, -B blocks, Reduction-B,
    -C blocks, average pool, dropout, linear. ``version=1`` is the paper's Inception-ResNet-v1,
    ``version=2`` the authors' Inception-ResNet-v2 release in timm's layout (module docstring)."""

    SCALES = (0.17, 0.10, 0.20)  # A, B, C: the release's; the paper: "between 0.1 and 0.3"
    # Found by trying sizes, the same for both versions (v1's stride-2 conv and v2's stride-2
    # max pool after conv2d_4a shrink alike): 75 -> 37 -> 35 -> 17 -> 15 -> 7 -> 3 -> 1.
    min_input_size = 75

    def __init__(self, version: int, num_classes: int = 1000, dropout: float = 0.2) -> None:
        super().__init__()
        if version not in (1, 2):
            raise ValueError(f"InceptionResNet: version must be 1 or 2, got {version!r}")
        self.version = version
        scale_a, scale_b, scale_c = self.SCALES
        # Figure 14's first six layers, 71x71x192; the v2 release's stem starts the same way.
        self.conv2d_1a = conv_bn(3, 32, 3, stride=2)
        self.conv2d_2a = conv_bn(32, 32, 3)
        self.conv2d_2b = conv_bn(32, 64, 3, padding=1)
        self.maxpool_3a = nn.MaxPool2d(3, stride=2)
        self.conv2d_3b = conv_bn(64, 80, 1)
        self.conv2d_4a = conv_bn(80, 192, 3)
        stem = ("conv2d_1a", "conv2d_2a", "conv2d_2b", "maxpool_3a", "conv2d_3b", "conv2d_4a")
        if version == 1:
            self.conv2d_4b = conv_bn(192, 256, 3, stride=2)
            self.repeat = nn.Sequential(*[InceptionResNetA(256, (32, 32, 32), scale_a) for _ in range(5)])
            self.mixed_6a = ReductionA(256, k=192, l=192, m=256, n=384)
            self.repeat_1 = nn.Sequential(*[InceptionResNetB(896, 128, (128, 128, 128), scale_b)
                                            for _ in range(10)])
            self.mixed_7a = InceptionResNetReductionB(896, (384, 256, 256, 256))
            self.repeat_2 = nn.Sequential(*[InceptionResNetC(1792, (192, 192, 192), scale_c) for _ in range(5)])
            num_features = 1792
            body = ("conv2d_4b", "repeat", "mixed_6a", "repeat_1", "mixed_7a", "repeat_2")
        else:
            self.maxpool_5a = nn.MaxPool2d(3, stride=2)
            self.mixed_5b = Mixed5b()
            self.repeat = nn.Sequential(*[InceptionResNetA(320, (32, 48, 64), scale_a) for _ in range(10)])
            self.mixed_6a = ReductionA(320, k=256, l=256, m=384, n=384)
            self.repeat_1 = nn.Sequential(*[InceptionResNetB(1088, 192, (128, 160, 192), scale_b)
                                            for _ in range(20)])
            self.mixed_7a = InceptionResNetReductionB(1088, (384, 288, 288, 320))
            self.repeat_2 = nn.Sequential(*[InceptionResNetC(2080, (192, 224, 256), scale_c) for _ in range(9)])
            self.block8 = InceptionResNetC(2080, (192, 224, 256), scale=1.0, relu=False)
            self.conv2d_7b = conv_bn(2080, 1536, 1)
            num_features = 1536
            body = ("maxpool_5a", "mixed_5b", "repeat", "mixed_6a", "repeat_1", "mixed_7a", "repeat_2",
                    "block8", "conv2d_7b")
        # Forward order by name, because the release's flat module names must be kept.
        self.layer_names = stem + body
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)  # "Dropout (keep 0.8)"
        self.classif = nn.Linear(num_features, num_classes)

    def forward_features(self, x):
        for name in self.layer_names:
            x = getattr(self, name)(x)
        return x

    def forward_head(self, x):
        return self.classif(self.dropout(self.avgpool(x).flatten(1)))


_TABLE2 = ("Table 2 of arXiv:1602.07261v2 (Table 1 of the AAAI-17 version), single model, "
           "ILSVRC-2012 val without the ~1700 blacklisted images")
_PROTOCOL = "single-crop 299"
_V4_NOTES = ("the authors' TF-slim release as timm ports it; the release orders the stem's 7x1/1x7 pair, "
             "Inception-B's 5-conv tower and Inception-C's 448/512 pair the other way round from Figures "
             "3, 5 and 6 (parameter-neutral); Figure 3 omits the stride 2 of the stem's 3x3 conv 192")
_V1_NOTES = ("in neither torchvision nor timm; built from Figures 14, 10, 7 (Table 1: k=192 l=192 m=256 "
             "n=384), 11, 12, 13 with Figure 15's 5/10/5 blocks; residual scales 0.17/0.10/0.20 (the v2 "
             "release's; the paper only says 0.1-0.3); filter-expansion 1x1 convs with bias and no BN, BN eps "
             "0.001, as in the v2 release; paper_params counts BN's scale and shift")
_V2_NOTES = ("the authors' TF-slim release (timm's layout), not the figures, whose channel counts do not add "
             "up (Reduction-A gives 1152 channels, Figure 17 expands to 1154; Reduction-B gives 2144, Figure "
             "19 expands to 2048): Inception-v3 stem + Mixed_5b (320 channels) instead of Figure 3's stem "
             "(384), hence 320/1088/2080 channels; 10/20/10 blocks instead of 5/10/5; last C block with scale "
             "1.0 and no ReLU, then a 1x1 conv to 1536 before the pool; residual scales 0.17/0.10/0.20")


@register_model(INCEPTION_V4, input_size=299, reported=Reported(20.0, 5.0, _PROTOCOL, _TABLE2),
                reference=Reference(timm="inception_v4", timm_layout=True, notes=_V4_NOTES))
def inception_v4(**kwargs):
    return InceptionV4(**kwargs)


@register_model(INCEPTION_V4, input_size=299, reported=Reported(21.3, 5.5, _PROTOCOL, _TABLE2),
                reference=Reference(paper_params=22_756_328, notes=_V1_NOTES))
def inception_resnet_v1(**kwargs):
    return InceptionResNet(1, **kwargs)


@register_model(INCEPTION_V4, input_size=299, reported=Reported(19.9, 4.9, _PROTOCOL, _TABLE2),
                reference=Reference(timm="inception_resnet_v2", timm_layout=True, notes=_V2_NOTES))
def inception_resnet_v2(**kwargs):
    return InceptionResNet(2, **kwargs)
