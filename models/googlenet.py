"""GoogLeNet (Szegedy et al., 2014), the Inception-v1 network, in two versions.

``googlenet`` is torchvision's layout (its checkpoints load strictly), which departs from the
paper: a BatchNorm (eps 0.001) after every convolution and no local response normalization; the
"5x5" branch of every Inception module is a 3x3 convolution (a known slip in torchvision,
pytorch/vision#906, kept because its weights are trained that way); the auxiliary heads pool
adaptively to 4x4 instead of 5x5/3; the last trunk max-pool is 2x2/2; dropout is 0.2, not 0.4.

``googlenet_paper`` is the network of the paper's Table 1 and Figure 3 as released in Caffe
(``bvlc_googlenet``): biased convolutions each followed by a ReLU, no BatchNorm, real 5x5
convolutions, local response normalization (Caffe's size 5, alpha 1e-4, beta 0.75, k 1) after
the first max-pool and after the stem's 3x3 convolution (Figure 3), 3x3/2 max-pools rounding up
as Caffe does, dropout 0.4, and the auxiliary classifiers of Section 5 on the outputs of 4a and
4d. Two liberties, both identities at the native 224x224: the final 7x7 average pool is global
(adaptive), and each auxiliary head's 5x5/3 average pool is followed by an adaptive 4x4 one so
that the head's fully connected layer also fits other input sizes.

Both return the auxiliary logits only in training mode with ``aux_logits=True``, as torchvision
does: ``GoogLeNetOutputs(logits, aux_logits2, aux_logits1)``; otherwise the logits alone.
"""

from __future__ import annotations

from collections import namedtuple

import torch
import torch.nn.functional as F
from torch import nn

from ._registry import Paper, Reference, Reported, register_model
from .blocks import ConvBNReLU, ImageClassifier, LocalResponseNorm

GOOGLENET = Paper("GoogLeNet", "Going Deeper with Convolutions", 2014, "Szegedy et al.")

GoogLeNetOutputs = namedtuple("GoogLeNetOutputs", ["logits", "aux_logits2", "aux_logits1"])


class ConvReLU(nn.Module):
    """Biased ``Conv2d`` then ReLU, the paper's convolution; keys ``conv.*`` like ``ConvBNReLU``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv(x), inplace=True)


def bn_conv(in_channels: int, out_channels: int, kernel_size, stride=1, padding=0) -> ConvBNReLU:
    return ConvBNReLU(in_channels, out_channels, kernel_size, stride=stride, padding=padding, eps=0.001)


class Inception(nn.Module):
    """Four parallel branches, concatenated: 1x1; 1x1 -> 3x3; 1x1 -> "5x5"; 3x3 max-pool -> 1x1."""

    def __init__(self, in_channels: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int, ch5x5: int,
                 pool_proj: int, conv_block=bn_conv, kernel5: int = 3) -> None:
        super().__init__()
        self.branch1 = conv_block(in_channels, ch1x1, 1)
        self.branch2 = nn.Sequential(conv_block(in_channels, ch3x3red, 1),
                                     conv_block(ch3x3red, ch3x3, 3, padding=1))
        self.branch3 = nn.Sequential(conv_block(in_channels, ch5x5red, 1),
                                     conv_block(ch5x5red, ch5x5, kernel5, padding=kernel5 // 2))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True),
                                     conv_block(in_channels, pool_proj, 1))
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class InceptionAux(nn.Module):
    """Auxiliary classifier: average pool to 4x4, 1x1 conv 128, fc 1024 + ReLU, dropout, fc."""

    def __init__(self, in_channels: int, num_classes: int, pool: nn.Module, conv_block=bn_conv,
                 dropout: float = 0.7) -> None:
        super().__init__()
        self.pool = pool
        self.conv = conv_block(in_channels, 128, 1)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.fc2 = nn.Linear(1024, num_classes)
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(self.pool(x)).flatten(1)
        return self.fc2(self.dropout(F.relu(self.fc1(x), inplace=True)))


# (ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj) of Table 1, 3a to 5b.
TABLE1 = {
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64), "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64), "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128), "5b": (384, 192, 384, 48, 128, 128),
}


class GoogLeNet(ImageClassifier):
    """Stem, Inception 3a-3b, 4a-4e, 5a-5b with max-pools between, global average pool, dropout, fc.

    ``original=False`` builds torchvision's layout, ``original=True`` the paper's (see the module
    docstring for every difference).
    """

    def __init__(self, num_classes: int = 1000, aux_logits: bool = True, transform_input: bool = False,
                 original: bool = False, dropout: float | None = None, dropout_aux: float = 0.7) -> None:
        super().__init__()
        self.aux_logits, self.transform_input, self.original = aux_logits, transform_input, original
        conv_block = ConvReLU if original else bn_conv
        kernel5 = 5 if original else 3

        self.conv1 = conv_block(3, 64, 7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.norm1 = LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0) if original else nn.Identity()
        self.conv2 = conv_block(64, 64, 1)
        self.conv3 = conv_block(64, 192, 3, padding=1)
        self.norm2 = LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0) if original else nn.Identity()
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)

        channels = 192
        for name, widths in TABLE1.items():
            block = Inception(channels, *widths, conv_block=conv_block, kernel5=kernel5)
            setattr(self, f"inception{name}", block)
            channels = block.out_channels
            if name == "3b":
                self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
            elif name == "4e":
                self.maxpool4 = (nn.MaxPool2d(3, stride=2, ceil_mode=True) if original
                                 else nn.MaxPool2d(2, stride=2, ceil_mode=True))

        if aux_logits:
            def aux_pool():
                if original:
                    return nn.Sequential(nn.AvgPool2d(5, stride=3, ceil_mode=True), nn.AdaptiveAvgPool2d(4))
                return nn.AdaptiveAvgPool2d(4)

            self.aux1 = InceptionAux(self.inception4a.out_channels, num_classes, aux_pool(), conv_block, dropout_aux)
            self.aux2 = InceptionAux(self.inception4d.out_channels, num_classes, aux_pool(), conv_block, dropout_aux)
        else:
            self.aux1 = self.aux2 = None

        self.avgpool = nn.AdaptiveAvgPool2d(1)
        if dropout is None:
            dropout = 0.4 if original else 0.2
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(channels, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if not isinstance(m, (nn.Conv2d, nn.Linear)):
                continue
            if self.original:
                # Caffe's "xavier" filler, U(+-sqrt(3 / fan_in)), and bvlc_googlenet's 0.2 bias
                # filler; the classifiers' biases start at 0 (below).
                nn.init.kaiming_uniform_(m.weight, nonlinearity="linear")
                nn.init.constant_(m.bias, 0.2)
            else:
                nn.init.trunc_normal_(m.weight, mean=0.0, std=0.01, a=-2, b=2)  # torchvision's
        if self.original:
            heads = [self.aux1, self.aux2] if self.aux_logits else []
            for classifier in [self.fc] + [head.fc2 for head in heads]:
                nn.init.zeros_(classifier.bias)

    @property
    def min_input_size(self) -> int:
        # Found by trying sizes. The paper's max-pools are unpadded 3x3 windows, and its auxiliary
        # heads need a 5x5 map after 4a for their 5x5 average pool.
        if self.original:
            return 47 if self.training and self.aux_logits else 31
        return 15

    def _transform_input(self, x: torch.Tensor) -> torch.Tensor:
        # torchvision's ported weights expect inputs scaled to [-1, 1], not ImageNet-normalized.
        x_ch0 = x[:, 0:1] * (0.229 / 0.5) + (0.485 - 0.5) / 0.5
        x_ch1 = x[:, 1:2] * (0.224 / 0.5) + (0.456 - 0.5) / 0.5
        x_ch2 = x[:, 2:3] * (0.225 / 0.5) + (0.406 - 0.5) / 0.5
        return torch.cat((x_ch0, x_ch1, x_ch2), 1)

    def _stem(self, x: torch.Tensor) -> torch.Tensor:
        if self.transform_input:
            x = self._transform_input(x)
        x = self.norm1(self.maxpool1(self.conv1(x)))
        x = self.norm2(self.conv3(self.conv2(x)))
        return self.inception3b(self.inception3a(self.maxpool2(x)))

    def _stage4(self, x: torch.Tensor, aux: bool):
        x = self.inception4a(self.maxpool3(x))
        aux1 = self.aux1(x) if aux else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if aux else None
        return self.inception4e(x), aux1, aux2

    def _stage5(self, x: torch.Tensor) -> torch.Tensor:
        return self.inception5b(self.inception5a(self.maxpool4(x)))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x, _, _ = self._stage4(self._stem(x), aux=False)
        return self._stage5(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.avgpool(x).flatten(1)))

    def forward(self, x: torch.Tensor):
        self.check_input(x)
        aux = self.training and self.aux_logits
        x, aux1, aux2 = self._stage4(self._stem(x), aux)
        logits = self.forward_head(self._stage5(x))
        return GoogLeNetOutputs(logits, aux2, aux1) if aux else logits


# Table 1's channel counts, weights and biases of every convolution and of the classifier, plus
# the two auxiliary heads of Section 5 (3,188,840 on 4a, 3,190,888 on 4d), which the network
# builds by default: 6,998,552 + 6,379,728.
_PAPER_PARAMS = 13_378_280


@register_model(GOOGLENET, input_size=224,
                reference=Reference(torchvision="googlenet",
                                    notes="no paper figures: the paper's network is googlenet_paper; "
                                          "torchvision's layout: BatchNorm (eps 0.001) after every conv and no "
                                          "LRN; 3x3 instead of 5x5 in the inception modules' third branch; "
                                          "aux heads pool adaptively to 4x4; last trunk max-pool 2x2/2; "
                                          "dropout 0.2 instead of 0.4"))
def googlenet(**kwargs):
    return GoogLeNet(**kwargs)


@register_model(GOOGLENET, input_size=224,
                reported=Reported(top5=10.07, protocol="single-crop 224",
                                  source="Table 3 (1 model, 1 crop), ILSVRC-2014 val",
                                  other_protocols=(("10crop", None, 9.15, "Table 3 (1 model, 10 crops)"),
                                                   ("144crop", None, 7.89, "Table 3 (1 model, 144 crops)"))),
                reference=Reference(paper_params=_PAPER_PARAMS,
                                    notes="Caffe's bvlc_googlenet; paper_params includes the two auxiliary "
                                          "heads (6,998,552 without them, aux_logits=False); final 7x7 average "
                                          "pool made global; an adaptive 4x4 average pool after each aux head's "
                                          "5x5/3 pool (an identity at 224) lets the heads run at other sizes"))
def googlenet_paper(**kwargs):
    return GoogLeNet(original=True, **kwargs)
