"""SENet (Hu et al., 2017): squeeze-and-excitation on the residual branch of ResNet/ResNeXt.

The SE block (reduction 16) sits where the paper's Figure 3 puts it: on the residual branch,
after its last BatchNorm and before the addition with the shortcut. The networks are
``resnet.ResNet`` with ``se_reduction=16``; the layout matches timm's ``seresnet*`` /
``seresnext*`` (same state_dict keys).
"""

from ._registry import Paper, Reference, Reported, register_model
from .resnet import Bottleneck, ResNet

SENET = Paper("SENet", "Squeeze-and-Excitation Networks", 2017, "Hu, Shen, Sun")
_TABLE2 = "Table 2, single-crop 224, ILSVRC-2017 val"
_STRIDE = ("stride on the 3x3 conv (torchvision's v1.5, as timm's seresnet*), not on the first 1x1 "
           "as in the paper's Caffe release; parameter count is unaffected")


@register_model(SENET, input_size=224, reported=Reported(23.29, 6.62, "single-crop 224", _TABLE2),
                reference=Reference(timm="seresnet50", timm_layout=True, notes=_STRIDE))
def se_resnet50(**kwargs):
    return ResNet(Bottleneck, [3, 4, 6, 3], se_reduction=16, **kwargs)


@register_model(SENET, input_size=224, reported=Reported(22.38, 6.07, "single-crop 224", _TABLE2),
                reference=Reference(timm="seresnet101", timm_layout=True, notes=_STRIDE))
def se_resnet101(**kwargs):
    return ResNet(Bottleneck, [3, 4, 23, 3], se_reduction=16, **kwargs)


@register_model(SENET, input_size=224, reported=Reported(21.57, 5.73, "single-crop 224", _TABLE2),
                reference=Reference(timm="seresnet152", timm_layout=True, notes=_STRIDE))
def se_resnet152(**kwargs):
    return ResNet(Bottleneck, [3, 8, 36, 3], se_reduction=16, **kwargs)


@register_model(SENET, input_size=224, reported=Reported(21.10, 5.49, "single-crop 224", _TABLE2),
                reference=Reference(timm="seresnext50_32x4d", timm_layout=True))
def se_resnext50_32x4d(**kwargs):
    return ResNet(Bottleneck, [3, 4, 6, 3], groups=32, width_per_group=4, se_reduction=16, **kwargs)


@register_model(SENET, input_size=224, reported=Reported(20.70, 5.01, "single-crop 224", _TABLE2),
                reference=Reference(timm="seresnext101_32x4d", timm_layout=True))
def se_resnext101_32x4d(**kwargs):
    return ResNet(Bottleneck, [3, 4, 23, 3], groups=32, width_per_group=4, se_reduction=16, **kwargs)
