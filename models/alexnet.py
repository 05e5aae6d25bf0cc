"""AlexNet (Krizhevsky, Sutskever, Hinton, 2012) - two networks.

* ``alexnet`` is torchvision's: the single-GPU variant of "One weird trick for parallelizing
  convolutional neural networks" (Krizhevsky, 2014) - 64/192/384/256/256 filters, no LRN.
* ``alexnet_paper`` is the 2012 network of the paper's Section 3 and Figure 2:
  96/256/384/384/256 filters, 11x11/4 on a 227x227 input (the paper's "224" does not give its
  55x55 maps), ReLU, local response normalization after conv1 and conv2 (k=2, n=5,
  alpha=1e-4, beta=0.75 in the paper's formula), then overlapping 3x3/2 max-pooling (the
  paper's Section 3.5 order: normalize, then pool), the two-GPU split as ``groups=2`` on the
  convolutions that saw only their own GPU's maps (conv2, conv4, conv5), dropout 0.5 on the two
  hidden fully connected layers, and the paper's initialisation (N(0, 0.01) weights; biases 1 in
  conv2, conv4, conv5 and the hidden FC layers, 0 elsewhere).
  Both networks pool adaptively to 6x6, so larger inputs work too.
"""

from collections import OrderedDict

from torch import nn

from ._registry import Paper, Reference, Reported, register_model
from .blocks import ImageClassifier, LocalResponseNorm

ALEXNET = Paper("AlexNet", "ImageNet Classification with Deep Convolutional Neural Networks", 2012,
                "Krizhevsky, Sutskever, Hinton")


class AlexNet(ImageClassifier):
    """torchvision's layout: features.{0,3,6,8,10}, classifier.{1,4,6}."""

    min_input_size = 63

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
            nn.Dropout(p=dropout), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward_features(self, x):
        return self.features(x)

    def forward_head(self, x):
        return self.classifier(self.avgpool(x).flatten(1))


class AlexNetPaper(ImageClassifier):
    """The 2012 network; module names are the paper's layer names."""

    min_input_size = 67  # conv1 must leave 15x15 so that three 3x3/2 pools still leave 1x1

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        lrn = dict(n=5, alpha=1e-4, beta=0.75, k=2.0)
        self.features = nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(3, 96, kernel_size=11, stride=4)), ("relu1", nn.ReLU(inplace=True)),
            ("norm1", LocalResponseNorm.from_paper(**lrn)), ("pool1", nn.MaxPool2d(3, stride=2)),
            ("conv2", nn.Conv2d(96, 256, kernel_size=5, padding=2, groups=2)), ("relu2", nn.ReLU(inplace=True)),
            ("norm2", LocalResponseNorm.from_paper(**lrn)), ("pool2", nn.MaxPool2d(3, stride=2)),
            ("conv3", nn.Conv2d(256, 384, kernel_size=3, padding=1)), ("relu3", nn.ReLU(inplace=True)),
            ("conv4", nn.Conv2d(384, 384, kernel_size=3, padding=1, groups=2)), ("relu4", nn.ReLU(inplace=True)),
            ("conv5", nn.Conv2d(384, 256, kernel_size=3, padding=1, groups=2)), ("relu5", nn.ReLU(inplace=True)),
            ("pool5", nn.MaxPool2d(3, stride=2)),
        ]))
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(OrderedDict([
            ("fc6", nn.Linear(256 * 6 * 6, 4096)), ("relu6", nn.ReLU(inplace=True)), ("drop6", nn.Dropout(dropout)),
            ("fc7", nn.Linear(4096, 4096)), ("relu7", nn.ReLU(inplace=True)), ("drop7", nn.Dropout(dropout)),
            ("fc8", nn.Linear(4096, num_classes)),
        ]))
        ones = {self.features.conv2, self.features.conv4, self.features.conv5,
                self.classifier.fc6, self.classifier.fc7}
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(m.weight, std=0.01)
                nn.init.constant_(m.bias, 1.0 if m in ones else 0.0)

    def forward_features(self, x):
        return self.features(x)

    def forward_head(self, x):
        return self.classifier(self.avgpool(x).flatten(1))


@register_model(ALEXNET, input_size=224,
                reference=Reference(torchvision="alexnet",
                                    notes="torchvision's single-GPU variant from 'One weird trick...' (2014): "
                                          "64/192/384/256/256 filters, no LRN, no grouping; not the 2012 paper's "
                                          "network (that is alexnet_paper), so no paper figures are quoted"))
def alexnet(**kwargs):
    return AlexNet(**kwargs)


@register_model(ALEXNET, input_size=227,
                reported=Reported(40.7, 18.2, "10-crop (center and corners, flipped), 1 CNN",
                                  "Table 2, ILSVRC-2012 val"),
                reference=Reference(paper_params=60_965_224,
                                    notes="the paper rounds to '60 million'; 227x227 input as the layer sizes "
                                          "imply; dropout after the ReLU of fc6/fc7 as in the paper's release"))
def alexnet_paper(**kwargs):
    return AlexNetPaper(**kwargs)
