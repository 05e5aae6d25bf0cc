"""The papers' test protocols (bench/protocols.py): how many views each makes, where each crop
lies and how big it is, the mirrors, the averaging, and dense evaluation (models/fully_convolutional.py)
equal to the single crop where the two coincide."""

from __future__ import annotations

import pytest
import torch

import models
from models import protocols
from models.fully_convolutional import NotConvertible, fully_convolutional


def coordinates(height: int, width: int, batch: int = 1) -> torch.Tensor:
    """Images whose channel 0 is each pixel's row, channel 1 its column (and channel 2 zero): a crop
    says where it came from, a mirror shows in its columns."""
    rows = torch.arange(height, dtype=torch.float64)[:, None].expand(height, width)
    cols = torch.arange(width, dtype=torch.float64)[None, :].expand(height, width)
    return torch.stack([rows, cols, torch.zeros(height, width, dtype=torch.float64)]).expand(batch, 3, height, width)


def origin(view: torch.Tensor) -> tuple[float, float]:
    """Row and column of a view's top-left pixel in the image it came from."""
    return view[0, 0, 0, 0].item(), view[0, 1, 0, 0].item()


@pytest.mark.parametrize("protocol, views", [("single", 1), ("10crop", 10), ("144crop", 144), ("dense", 6)])
def test_each_protocol_makes_the_papers_number_of_views(protocol, views):
    images = torch.zeros((2, 3, *protocols.image_size(protocol, 32)))
    made = list(protocols.views(protocol, images, 32))
    assert len(made) == views == protocols.VIEWS_PER_IMAGE[protocol]
    assert all(view.shape[0] == 2 for view in made)  # each view is a batch: one of every image


def test_ten_crops_are_the_corners_the_centre_and_their_mirrors():
    crop = 224
    assert protocols.image_size("10crop", crop) == (256, 256)  # AlexNet's 256x256 images
    made = list(protocols.views("10crop", coordinates(256, 256), crop))
    assert [tuple(v.shape[-2:]) for v in made] == [(224, 224)] * 10
    assert [origin(v) for v in made[:5]] == [(0, 0), (0, 32), (32, 0), (32, 32), (16, 16)]
    for view, mirror in zip(made[:5], made[5:]):
        assert torch.equal(mirror, view.flip(-1))
        assert mirror[0, 1, 0, 0] == view[0, 1, 0, -1]  # the mirror starts at the crop's right edge


def test_ten_crop_sizes_scale_with_the_models_input():
    assert protocols.image_size("10crop", 299) == (342, 342)  # round(256 * 299 / 224)


def test_googlenets_144_crops_are_4_scales_x_3_squares_x_6_crops_x_2_mirrors():
    crop = 224
    height, width = protocols.image_size("144crop", crop)
    assert (height, width) == (352, 469)  # the largest scale, 4:3
    made = list(protocols.views("144crop", coordinates(height, width), crop))
    assert len(made) == 4 * 3 * 6 * 2 and all(v.shape[-2:] == (crop, crop) for v in made)
    for scale_index, side in enumerate(protocols.GOOGLENET_SCALES):
        scale = side / height  # the image was resized to shorter side `side`
        resized_width = round(width * scale)
        for square_index, offset in enumerate((0, (resized_width - side) // 2, resized_width - side)):
            first = (scale_index * 3 + square_index) * 12
            square_views = made[first:first + 12]
            corners = [(0, 0), (0, side - crop), (side - crop, 0), (side - crop, side - crop),
                       ((side - crop) // 2, (side - crop) // 2)]
            for view, (y, x) in zip(square_views[:5], corners):
                row, col = origin(view)  # in the original image's coordinates, through the resize
                assert row == pytest.approx((y + 0.5) / scale - 0.5, abs=0.5)
                assert col == pytest.approx((offset + x + 0.5) / scale - 0.5, abs=0.5)
            assert square_views[5].shape[-2:] == (crop, crop)  # the whole square resized to the crop
            for view, mirror in zip(square_views[:6], square_views[6:]):
                assert torch.equal(mirror, view.flip(-1))


def test_a_portrait_image_gives_top_centre_and_bottom_squares():
    squares = protocols.three_squares(coordinates(10, 4))
    assert [origin(s) for s in squares] == [(0, 0), (3, 0), (6, 0)]
    assert all(s.shape[-2:] == (4, 4) for s in squares)


def test_dense_evaluates_whole_images_at_three_scales_and_their_mirrors():
    crop = 224
    assert protocols.image_size("dense", crop) == (512, 683)
    made = list(protocols.views("dense", coordinates(512, 683), crop))
    assert [tuple(v.shape[-2:]) for v in made] == [(256, 342), (256, 342), (384, 512), (384, 512),
                                                  (512, 683), (512, 683)]
    assert torch.equal(made[1], made[0].flip(-1))


def test_the_softmax_is_averaged_over_an_images_views():
    class Scores(torch.nn.Module):  # a "network" whose logits are each view's mean row and column
        def forward(self, x):
            return x[:, :2].mean((2, 3))

    images = coordinates(256, 256, batch=2)
    averaged = protocols.ProtocolModel(Scores(), "10crop", 224)(images)
    expected = torch.stack([Scores()(v).float().softmax(1) for v in protocols.views("10crop", images, 224)]).mean(0)
    assert torch.allclose(averaged, expected)
    assert torch.allclose(averaged.sum(1), torch.ones(2))


@pytest.mark.parametrize("name, size", [("vgg16", 224), ("alexnet", 224)])
def test_dense_evaluation_at_the_crop_size_is_the_single_crop_output(name, size):
    torch.manual_seed(0)
    model = models.create(name).eval().double()
    x = torch.randn(1, 3, size, size, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(fully_convolutional(model)(x), model(x), rtol=1e-9, atol=1e-12)


def test_a_globally_pooled_head_is_already_fully_convolutional():
    model = models.create("resnet18")
    assert fully_convolutional(model) is model


def test_a_head_that_is_not_convertible_says_why():
    class Flattening(torch.nn.Module):
        model_name = "flat"
        avgpool = torch.nn.AdaptiveAvgPool2d(3)
        classifier = torch.nn.Sequential(torch.nn.Linear(27, 10), torch.nn.BatchNorm1d(10))

    with pytest.raises(NotConvertible, match="flat: its classifier after the 3x3 pool is not a sequence of linear"):
        fully_convolutional(Flattening())
    with pytest.raises(NotConvertible, match="has no adaptive average pool"):
        fully_convolutional(torch.nn.Linear(2, 2))


@pytest.mark.parametrize("protocol, mode, message", [
    ("5crop", "infer", "unknown protocol '5crop'; choose from single, 10crop, 144crop, dense"),
    ("10crop", "train", "protocol '10crop' is a test protocol: it runs with mode infer only, not 'train'"),
])
def test_bad_protocols_are_refused_in_one_line(protocol, mode, message):
    with pytest.raises(protocols.ProtocolError, match=message):
        protocols.check_protocol(protocol, mode)


def test_the_harness_names_the_same_protocols_without_importing_torch():
    from bench import suite

    assert suite.PROTOCOLS == protocols.PROTOCOLS
