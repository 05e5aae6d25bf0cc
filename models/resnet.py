"""ResNet (He et al., 2015), in torchvision's layout: its checkpoints load strictly.

The two residual blocks here also carry ResNeXt's cardinality (``groups``, ``base_width``) and
SENet's squeeze-and-excitation (``se_reduction``), so ``resnext.py`` and ``senet.py`` only
register configurations of this one ``ResNet`` class.

Every residual block ends the same way: the last BatchNorm takes the shortcut as its
``residual`` and applies the ReLU (``bn(x, residual=shortcut)``), or, with SE, the SE block
does (``se(x, residual=shortcut, relu=True)``) - the fused tails the Triton kernels replace.
"""

from __future__ import annotations

from torch import nn

from ._registry import Paper, Reference, Reported, register_model
from .blocks import BatchNormReLU2d, ImageClassifier, SqueezeExcite

RESNET = Paper("ResNet", "Deep Residual Learning for Image Recognition", 2015,
               "He, Zhang, Ren, Sun")


def conv3x3(in_channels: int, out_channels: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, groups=groups, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)


class ResidualTail(nn.Module):
    """Shared by both blocks: the shortcut, and the block's last BN (+ SE) + add + ReLU."""

    def residual_tail(self, out, x, bn_last: BatchNormReLU2d):
        shortcut = x if self.downsample is None else self.downsample(x)
        if self.se is None:
            return bn_last(out, residual=shortcut)
        return self.se(bn_last(out), residual=shortcut, relu=True)


class BasicBlock(ResidualTail):
    """Two 3x3 convolutions (ResNet-18/34)."""

    expansion = 1

    def __init__(self, in_channels: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 groups: int = 1, base_width: int = 64, se_reduction: int | None = None) -> None:
        super().__init__()
        if groups != 1 or base_width != 64:
            raise ValueError("BasicBlock supports only groups=1 and base_width=64 (as in the paper)")
        self.conv1 = conv3x3(in_channels, planes, stride)
        self.bn1 = BatchNormReLU2d(planes)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = BatchNormReLU2d(planes, relu=se_reduction is None)
        self.se = SqueezeExcite(planes, se_reduction) if se_reduction else None
        self.downsample = downsample

    def forward(self, x):
        out = self.bn1(self.conv1(x))
        return self.residual_tail(self.conv2(out), x, self.bn2)


class Bottleneck(ResidualTail):
    """1x1 reduce, 3x3 (grouped for ResNeXt, stride here as in torchvision's "v1.5"), 1x1 expand."""

    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 groups: int = 1, base_width: int = 64, se_reduction: int | None = None) -> None:
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = conv1x1(in_channels, width)
        self.bn1 = BatchNormReLU2d(width)
        self.conv2 = conv3x3(width, width, stride, groups)
        self.bn2 = BatchNormReLU2d(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = BatchNormReLU2d(planes * self.expansion, relu=se_reduction is None)
        self.se = SqueezeExcite(planes * self.expansion, se_reduction) if se_reduction else None
        self.downsample = downsample

    def forward(self, x):
        out = self.bn1(self.conv1(x))
        out = self.bn2(self.conv2(out))
        return self.residual_tail(self.conv3(out), x, self.bn3)


class ResNet(ImageClassifier):
    """7x7 stem, four stages of residual blocks, global average pool, one linear layer."""

    min_input_size = 1  # every stride-2 layer is padded, so even 1x1 inputs keep a 1x1 map

    def __init__(self, block: type[BasicBlock | Bottleneck], layers: list[int], num_classes: int = 1000,
                 groups: int = 1, width_per_group: int = 64, se_reduction: int | None = None) -> None:
        super().__init__()
        self.groups, self.base_width, self.se_reduction = groups, width_per_group, se_reduction
        self.in_planes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = BatchNormReLU2d(64)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        # Zero-init of each block's last BN gamma (Goyal et al.) is left out: it is a training
        # recipe, not part of the network, and it would make freshly built blocks identities.

    def _make_layer(self, block, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.in_planes != planes * block.expansion:
            # Option B of the paper: a projection shortcut wherever the shape changes.
            downsample = nn.Sequential(conv1x1(self.in_planes, planes * block.expansion, stride),
                                       BatchNormReLU2d(planes * block.expansion, relu=False))
        layers = []
        for i in range(blocks):
            layers.append(block(self.in_planes, planes, stride if i == 0 else 1, downsample if i == 0 else None,
                                self.groups, self.base_width, self.se_reduction))
            self.in_planes = planes * block.expansion
        return nn.Sequential(*layers)

    def forward_features(self, x):
        x = self.maxpool(self.bn1(self.conv1(x)))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward_head(self, x):
        return self.fc(self.avgpool(x).flatten(1))


_TABLE3 = "Table 3, 10-crop testing, ILSVRC-2012 val"


@register_model(RESNET, input_size=224, reported=Reported(top1=27.88, protocol="10-crop", source="Table 2"),
                reference=Reference(torchvision="resnet18"))
def resnet18(**kwargs):
    return ResNet(BasicBlock, [2, 2, 2, 2], **kwargs)


@register_model(RESNET, input_size=224, reported=Reported(24.52, 7.46, "10-crop", _TABLE3 + " (option B)"),
                reference=Reference(torchvision="resnet34"))
def resnet34(**kwargs):
    return ResNet(BasicBlock, [3, 4, 6, 3], **kwargs)


@register_model(RESNET, input_size=224, reported=Reported(22.85, 6.71, "10-crop", _TABLE3),
                reference=Reference(torchvision="resnet50",
                                    notes="stride on the 3x3 conv of each bottleneck (torchvision's v1.5), "
                                          "not on the first 1x1 as in the paper's Caffe release"))
def resnet50(**kwargs):
    return ResNet(Bottleneck, [3, 4, 6, 3], **kwargs)


@register_model(RESNET, input_size=224, reported=Reported(21.75, 6.05, "10-crop", _TABLE3),
                reference=Reference(torchvision="resnet101", notes="stride on the 3x3 conv (v1.5)"))
def resnet101(**kwargs):
    return ResNet(Bottleneck, [3, 4, 23, 3], **kwargs)


@register_model(RESNET, input_size=224, reported=Reported(21.43, 5.71, "10-crop", _TABLE3),
                reference=Reference(torchvision="resnet152", notes="stride on the 3x3 conv (v1.5)"))
def resnet152(**kwargs):
    return ResNet(Bottleneck, [3, 8, 36, 3], **kwargs)
