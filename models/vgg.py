"""VGG (Simonyan and Zisserman, 2014): configurations A, A-LRN, B, D and E of Table 1.

torchvision's layout (``features.<index>``, ``classifier.{0,3,6}``), so its checkpoints load.
The ``_bn`` variants (BatchNorm after every convolution) are torchvision's additions, not the
paper's; in them each BatchNorm and its ReLU are one ``BatchNormReLU2d`` kept at the
BatchNorm's torchvision index, so the state_dict keys stay torchvision's.
``vgg11_lrn`` is configuration A-LRN: A with one LRN after the first conv layer, with the
parameters of Krizhevsky et al. (k=2, n=5, alpha=1e-4, beta=0.75).
"""

from collections import OrderedDict

import torch
from torch import nn

from ._registry import Paper, Reference, Reported, register_model
from .blocks import BatchNormReLU2d, ImageClassifier, LocalResponseNorm

VGG = Paper("VGG", "Very Deep Convolutional Networks for Large-Scale Image Recognition", 2014,
            "Simonyan, Zisserman")

# Table 1: output channels of each 3x3 conv; "M" a 2x2/2 max-pool, "LRN" local response norm.
CONFIGS = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "A-LRN": [64, "LRN", "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def make_features(config: list, batch_norm: bool) -> nn.Sequential:
    """Layers named by their torchvision index, so state_dict keys match torchvision's."""
    layers, in_channels, index = OrderedDict(), 3, 0
    for item in config:
        if item == "M":
            layers[str(index)] = nn.MaxPool2d(kernel_size=2, stride=2)
            index += 1
        elif item == "LRN":
            layers[str(index)] = LocalResponseNorm.from_paper(n=5, alpha=1e-4, beta=0.75, k=2.0)
            index += 1
        elif batch_norm:  # torchvision: conv, bn, relu at index, index+1, index+2
            layers[str(index)] = nn.Conv2d(in_channels, item, kernel_size=3, padding=1)
            layers[str(index + 1)] = BatchNormReLU2d(item)
            in_channels, index = item, index + 3
        else:
            layers[str(index)] = nn.Conv2d(in_channels, item, kernel_size=3, padding=1)
            layers[str(index + 1)] = nn.ReLU(inplace=True)
            in_channels, index = item, index + 2
    return nn.Sequential(layers)


def _allocated_linear(in_features: int, out_features: int) -> nn.Linear:
    """An ``nn.Linear`` whose parameters are allocated on the current default device but not
    filled: ``VGGNet`` initialises every layer itself, and filling the first layer's 103M weights
    twice took half of a VGG's construction."""
    return nn.Linear(in_features, out_features, device="meta").to_empty(device=torch.get_default_device())


class VGGNet(ImageClassifier):
    min_input_size = 32  # five 2x2/2 pools

    def __init__(self, config: str, batch_norm: bool = False, num_classes: int = 1000,
                 dropout: float = 0.5) -> None:
        super().__init__()
        self.features = make_features(CONFIGS[config], batch_norm)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            _allocated_linear(512 * 7 * 7, 4096), nn.ReLU(inplace=True), nn.Dropout(p=dropout),
            _allocated_linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(p=dropout),
            _allocated_linear(4096, num_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_features(self, x):
        return self.features(x)

    def forward_head(self, x):
        return self.classifier(self.avgpool(x).flatten(1))


_TABLE3 = "Table 3, single-scale test, train and test scale 256"
_BN_NOTE = "BatchNorm after every conv is torchvision's addition, not in the paper; no paper figures"


@register_model(VGG, input_size=224, reported=Reported(29.6, 10.4, "single-scale, dense", _TABLE3),
                reference=Reference(torchvision="vgg11"))
def vgg11(**kwargs):
    return VGGNet("A", **kwargs)


@register_model(VGG, input_size=224, reported=Reported(29.7, 10.5, "single-scale, dense", _TABLE3),
                reference=Reference(paper_params=132_863_336))
def vgg11_lrn(**kwargs):
    return VGGNet("A-LRN", **kwargs)


@register_model(VGG, input_size=224, reported=Reported(28.7, 9.9, "single-scale, dense", _TABLE3),
                reference=Reference(torchvision="vgg13"))
def vgg13(**kwargs):
    return VGGNet("B", **kwargs)


@register_model(VGG, input_size=224, reported=Reported(27.0, 8.8, "single-scale, dense", _TABLE3),
                reference=Reference(torchvision="vgg16"))
def vgg16(**kwargs):
    return VGGNet("D", **kwargs)


@register_model(VGG, input_size=224, reported=Reported(27.3, 9.0, "single-scale, dense", _TABLE3),
                reference=Reference(torchvision="vgg19"))
def vgg19(**kwargs):
    return VGGNet("E", **kwargs)


@register_model(VGG, input_size=224, reference=Reference(torchvision="vgg11_bn", notes=_BN_NOTE))
def vgg11_bn(**kwargs):
    return VGGNet("A", batch_norm=True, **kwargs)


@register_model(VGG, input_size=224, reference=Reference(torchvision="vgg13_bn", notes=_BN_NOTE))
def vgg13_bn(**kwargs):
    return VGGNet("B", batch_norm=True, **kwargs)


@register_model(VGG, input_size=224, reference=Reference(torchvision="vgg16_bn", notes=_BN_NOTE))
def vgg16_bn(**kwargs):
    return VGGNet("D", batch_norm=True, **kwargs)


@register_model(VGG, input_size=224, reference=Reference(torchvision="vgg19_bn", notes=_BN_NOTE))
def vgg19_bn(**kwargs):
    return VGGNet("E", batch_norm=True, **kwargs)
