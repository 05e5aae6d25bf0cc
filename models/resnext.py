"""ResNeXt (Xie et al., 2017): ResNet's bottleneck with a grouped 3x3 ("cardinality").

Built from ``resnet.ResNet``: ``CxWd`` means C groups of W channels each in the first stage.
"""

from ._registry import Paper, Reference, Reported, register_model
from .resnet import Bottleneck, ResNet

RESNEXT = Paper("ResNeXt", "Aggregated Residual Transformations for Deep Neural Networks", 2017,
                "Xie, Girshick, Dollar, Tu, He")


@register_model(RESNEXT, input_size=224,
                reported=Reported(top1=22.2, protocol="single-crop 224", source="Table 3"),
                reference=Reference(torchvision="resnext50_32x4d"))
def resnext50_32x4d(**kwargs):
    return ResNet(Bottleneck, [3, 4, 6, 3], groups=32, width_per_group=4, **kwargs)


@register_model(RESNEXT, input_size=224,
                reference=Reference(torchvision="resnext101_32x8d",
                                    notes="32x8d is not in the paper's tables; torchvision's configuration"))
def resnext101_32x8d(**kwargs):
    return ResNet(Bottleneck, [3, 4, 23, 3], groups=32, width_per_group=8, **kwargs)


@register_model(RESNEXT, input_size=224,
                reported=Reported(20.4, 5.3, "single-crop 224", "Table 5"),
                reference=Reference(torchvision="resnext101_64x4d"))
def resnext101_64x4d(**kwargs):
    return ResNet(Bottleneck, [3, 4, 23, 3], groups=64, width_per_group=4, **kwargs)
