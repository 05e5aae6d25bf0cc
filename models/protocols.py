"""The papers' test protocols: how many views of each image went through the network for the
errors they report, generated on the device from a batch of full images.

- ``single``: one centre crop at the model's input size; the images are that crop.
- ``10crop`` (AlexNet, Sect. 4: "the four corner patches and the center patch as well as their
  horizontal reflections"; ResNet's "standard 10-crop testing"): square images of side 256 for a
  224 crop (8/7 of the crop), five crops and their mirrors.
- ``144crop`` (GoogLeNet, Sect. 8): the image resized to four scales whose shorter side is 256,
  288, 320 and 352; the left, centre and right squares of each (top, centre, bottom for portrait
  images); of each square the four corner and the centre crops and the square resized to the
  crop; each of these mirrored: 4 x 3 x 6 x 2 = 144.
- ``dense`` (VGG, Sect. 3.2 and Table 4): the fully connected layers as convolutions
  (:mod:`models.fully_convolutional`), applied to the whole image rescaled to smallest side
  Q = 256, 384 and 512, and to its mirror; the class score map averaged over its positions:
  3 x 2 = 6 evaluations of whole images.

Sizes are the papers' for a 224 crop and scale with the model's input size (a 299 model sees a
10-crop image of side 342). The full images of ``144crop`` and ``dense`` are landscape 4:3 (the
shorter side is what the papers fix); each protocol's images are generated at the largest size
it uses and resized down per scale, bilinearly, on the device. Every view of a batch goes through
the network as one forward of ``batch`` images, so a protocol's peak memory is that of one view
(at its size); the softmax is averaged over an image's views.
"""

from __future__ import annotations

from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from .fully_convolutional import fully_convolutional

PROTOCOLS = ("single", "10crop", "144crop", "dense")
VIEWS_PER_IMAGE = {"single": 1, "10crop": 10, "144crop": 144, "dense": 6}
PAPER_CROP = 224  # the crop the papers' sizes are given for
TEN_CROP_SIDE = 256
GOOGLENET_SCALES = (256, 288, 320, 352)
DENSE_SCALES = (256, 384, 512)
ASPECT = 4 / 3  # width over height of the full images of 144crop and dense


class ProtocolError(ValueError):
    """A protocol that cannot be run as asked: the message names it and what is accepted."""


def check_protocol(protocol: str, mode: str) -> None:
    if protocol not in PROTOCOLS:
        raise ProtocolError(f"unknown protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}")
    if protocol != "single" and mode != "infer":
        raise ProtocolError(f"protocol {protocol!r} is a test protocol: it runs with mode infer only, not {mode!r}")


def scaled(side: int, crop: int) -> int:
    """A paper's size for a 224 crop, at this model's crop."""
    return round(side * crop / PAPER_CROP)


def image_size(protocol: str, crop: int) -> tuple[int, int]:
    """Height and width of the full images a protocol starts from."""
    if protocol == "single":
        return crop, crop
    if protocol == "10crop":
        return (scaled(TEN_CROP_SIDE, crop),) * 2
    shorter = scaled(max(GOOGLENET_SCALES if protocol == "144crop" else DENSE_SCALES), crop)
    return shorter, round(shorter * ASPECT)


def resize_shorter(images: torch.Tensor, shorter: int) -> torch.Tensor:
    """``images`` rescaled isotropically so their shorter side is ``shorter`` (bilinear)."""
    height, width = images.shape[-2:]
    if min(height, width) == shorter:
        return images
    scale = shorter / min(height, width)
    size = (shorter, round(width * scale)) if height <= width else (round(height * scale), shorter)
    return F.interpolate(images, size=size, mode="bilinear", align_corners=False)


def five_crops(images: torch.Tensor, crop: int) -> list[torch.Tensor]:
    """Top-left, top-right, bottom-left, bottom-right and centre crops of side ``crop``."""
    height, width = images.shape[-2:]
    top, left = (height - crop) // 2, (width - crop) // 2
    corners = [(0, 0), (0, width - crop), (height - crop, 0), (height - crop, width - crop), (top, left)]
    return [images[..., y:y + crop, x:x + crop] for y, x in corners]


def three_squares(images: torch.Tensor) -> list[torch.Tensor]:
    """The left, centre and right squares of landscape images (top, centre, bottom of portrait)."""
    height, width = images.shape[-2:]
    side = min(height, width)
    offsets = (0, (max(height, width) - side) // 2, max(height, width) - side)
    if height <= width:
        return [images[..., :, x:x + side] for x in offsets]
    return [images[..., y:y + side, :] for y in offsets]


def with_mirrors(views: list[torch.Tensor]) -> list[torch.Tensor]:
    """Each view, then each view flipped left to right."""
    return views + [view.flip(-1) for view in views]


def view_sizes(protocol: str, crop: int) -> list[tuple[int, int]]:
    """Height and width of every view of one image, as :func:`views` makes them."""
    images = torch.empty((1, 3, *image_size(protocol, crop)), device="meta")
    return [tuple(view.shape[-2:]) for view in views(protocol, images, crop)]


def views(protocol: str, images: torch.Tensor, crop: int) -> Iterator[torch.Tensor]:
    """The views of ``images`` under ``protocol``, one batch (a view of every image) at a time."""
    if protocol == "single":
        yield images
    elif protocol == "10crop":
        yield from with_mirrors(five_crops(images, crop))
    elif protocol == "144crop":
        for side in GOOGLENET_SCALES:
            for square in three_squares(resize_shorter(images, scaled(side, crop))):
                resized = F.interpolate(square, size=(crop, crop), mode="bilinear", align_corners=False)
                yield from with_mirrors(five_crops(square, crop) + [resized])
    elif protocol == "dense":
        for side in DENSE_SCALES:
            yield from with_mirrors([resize_shorter(images, scaled(side, crop))])
    else:
        check_protocol(protocol, "infer")


class ProtocolModel(nn.Module):
    """A model evaluated under a protocol: full images in, each image's softmax averaged over its
    views out. ``net`` is the model, or for ``dense`` its fully convolutional form."""

    def __init__(self, net: nn.Module, protocol: str, crop: int) -> None:
        super().__init__()
        self.net, self.protocol, self.crop = net, protocol, crop

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        total = None
        for view in views(self.protocol, images, self.crop):
            probabilities = self.net(view.contiguous(memory_format=torch.channels_last)
                                     if images.is_contiguous(memory_format=torch.channels_last) else view)
            probabilities = probabilities.float().softmax(1)
            total = probabilities if total is None else total + probabilities
        return total / VIEWS_PER_IMAGE[self.protocol]


def network_for(model: nn.Module, protocol: str) -> nn.Module:
    """The network a protocol runs: for ``dense`` the model's fully convolutional form (raises
    models.fully_convolutional.NotConvertible where its head cannot be converted), else the model."""
    check_protocol(protocol, "infer")
    return fully_convolutional(model) if protocol == "dense" else model
