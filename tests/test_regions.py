"""Regions: padding, rounding outwards, clipping to the image edge, masks."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from blur.detect import Detection
from blur.regions import Region, Shape, combined_mask, pad_detection, region_mask, regions_from_detections


def test_padding_grows_about_the_centre_and_rounds_outwards():
    region = pad_detection(Detection(10.2, 20.7, 20.2, 40.7, 0.9, "test"), padding=1.5)
    assert (region.x0, region.y0, region.x1, region.y1) == (7, 15, 23, 46)
    assert region.score == 0.9 and region.source == "test"


def test_region_at_the_edge_is_covered_to_the_last_row_and_column():
    height, width = 30, 40
    detections = [Detection(width - 6, height - 6, width + 4, height + 4, 0.9)]
    (region,) = regions_from_detections(detections, height, width)
    for shape in Shape:
        mask = combined_mask([region], height, width, shape)
        assert mask[height - 1, width - 1], shape
        assert mask[height - 1, width - 3] and mask[height - 3, width - 1], shape


def test_regions_entirely_outside_the_image_are_dropped():
    assert regions_from_detections([Detection(-50, -50, -20, -20, 0.9)], 30, 30) == []


@given(
    x=st.integers(-20, 60), y=st.integers(-20, 60), w=st.integers(1, 50), h=st.integers(1, 50),
    shape=st.sampled_from(list(Shape)),
)
def test_mask_lies_in_the_clipped_box_and_covers_its_centre(x, y, w, h, shape):
    height, width = 48, 64
    region = Region(x, y, x + w, y + h)
    x0, y0, x1, y1 = region.clipped(height, width)
    mask = region_mask(region, height, width, shape)
    assert mask.shape == (y1 - y0, x1 - x0)
    full = combined_mask([region], height, width, shape)
    assert full.sum() == mask.sum()
    cx, cy = (x + x + w) // 2, (y + y + h) // 2
    if 0 <= cx < width and 0 <= cy < height:
        assert full[cy, cx]
    if shape is Shape.RECTANGLE:
        assert mask.all()


def test_ellipse_covers_the_inscribed_ellipse_only():
    mask = region_mask(Region(0, 0, 20, 10), 10, 20, Shape.ELLIPSE)
    assert mask[5, 10] and mask[5, 0] and mask[0, 10]
    assert not mask[0, 0] and not mask[9, 19]
    assert 0.7 < mask.mean() < 0.85  # π/4 of the box


def test_a_region_with_its_own_shape_ignores_the_setting():
    """A box a person drew is covered whole (corners included) even when found faces get ovals."""
    drawn = Region(0, 0, 20, 10, shape=Shape.RECTANGLE)
    assert region_mask(drawn, 10, 20, Shape.ELLIPSE).all()
    found = Region(30, 0, 50, 10)
    mask = combined_mask([drawn, found], 10, 60, Shape.ELLIPSE)
    assert mask[0, 0] and mask[9, 19] and mask[0, 19] and mask[9, 0]
    assert not mask[0, 30] and mask[5, 40]
