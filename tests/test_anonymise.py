"""Anonymise: pixels outside regions untouched, regions destroyed, irreversible by construction."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blur.anonymise import GRAIN, GRID, IRREVERSIBLE_METHODS, STRIPE_LEVELS, Method, _cell_edges, anonymise
from blur.regions import Region, Shape, combined_mask, region_mask

HEIGHT, WIDTH = 40, 48

regions_strategy = st.builds(
    lambda x, y, w, h: Region(x, y, x + w, y + h),
    st.integers(-10, WIDTH - 2), st.integers(-10, HEIGHT - 2), st.integers(2, 30), st.integers(2, 30),
)
images = st.integers(0, 2**32 - 1).map(
    lambda seed: np.random.default_rng(seed).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
)


@given(pixels=images, regions=st.lists(regions_strategy, max_size=3),
       method=st.sampled_from(list(Method)), shape=st.sampled_from(list(Shape)))
def test_pixels_outside_all_regions_are_unchanged(pixels, regions, method, shape):
    out = anonymise(pixels, regions, method, shape, np.random.default_rng(1))
    outside = ~combined_mask(regions, HEIGHT, WIDTH, shape)
    assert np.array_equal(out[outside], pixels[outside])
    assert out.dtype == np.uint8 and out.shape == pixels.shape


@pytest.mark.parametrize("method", list(Method))
def test_pixels_inside_a_region_are_replaced(textured, method):
    region = Region(10, 8, 50, 56)
    out = anonymise(textured, [region], method, Shape.RECTANGLE, np.random.default_rng(1))
    changed = np.any(out[8:56, 10:50] != textured[8:56, 10:50], axis=2)
    assert changed.mean() > 0.95


def test_region_past_the_image_edge_is_destroyed_to_the_last_pixel(textured):
    height, width = textured.shape[:2]
    out = anonymise(textured, [Region(width - 10, height - 10, width + 10, height + 10)], Method.SOLID, Shape.ELLIPSE)
    assert out[height - 1, width - 1].tolist() == [0, 0, 0]
    assert out[height - 10 :, width - 1].max() == 0 and out[height - 1, width - 10 :].max() == 0


def shuffle_within_cells(pixels: np.ndarray, region: Region, shape: Shape, rng: np.random.Generator) -> np.ndarray:
    """Permute the region's masked pixels within each cell of the GRID×GRID grid: every cell sum is kept."""
    shuffled = pixels.copy()
    height, width = pixels.shape[:2]
    x0, y0, x1, y1 = region.clipped(height, width)
    mask = region_mask(region, height, width, shape)
    box = shuffled[y0:y1, x0:x1]
    rows, cols = _cell_edges(y1 - y0), _cell_edges(x1 - x0)
    for i in range(len(rows) - 1):
        for j in range(len(cols) - 1):
            cell = box[rows[i] : rows[i + 1], cols[j] : cols[j + 1]]
            cell_mask = mask[rows[i] : rows[i + 1], cols[j] : cols[j + 1]]
            cell[cell_mask] = rng.permutation(cell[cell_mask])
    return shuffled


@settings(max_examples=60)
@given(pixels=images, region=regions_strategy, method=st.sampled_from(sorted(IRREVERSIBLE_METHODS, key=str)),
       shape=st.sampled_from(list(Shape)), seed=st.integers(0, 2**32 - 1))
def test_output_depends_only_on_cell_sums_outside_pixels_and_noise(pixels, region, method, shape, seed):
    """K-coarse non-interference, K = GRID <= 4: shuffling within cells cannot change the output."""
    assert GRID <= 4
    shuffled = shuffle_within_cells(pixels, region, shape, np.random.default_rng(seed))
    first = anonymise(pixels, [region], method, shape, np.random.default_rng(seed))
    second = anonymise(shuffled, [region], method, shape, np.random.default_rng(seed))
    assert np.array_equal(first, second)


def test_shuffling_does_change_the_input():
    """Guard for the property test above: the shuffle really moves pixels."""
    pixels = np.random.default_rng(0).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    region = Region(4, 4, 40, 36)
    shuffled = shuffle_within_cells(pixels, region, Shape.RECTANGLE, np.random.default_rng(1))
    assert not np.array_equal(shuffled, pixels)


def test_mosaic_uses_fresh_randomness_each_time(textured):
    region = Region(5, 5, 60, 55)
    first = anonymise(textured, [region], Method.MOSAIC)
    second = anonymise(textured, [region], Method.MOSAIC)
    assert not np.array_equal(first, second)


def test_mosaic_keeps_only_coarse_colour(face_pixels):
    """The destroyed face carries no more detail than a smooth blend of a GRID×GRID grid plus grain."""
    region = Region(160, 36, 290, 198)
    out = anonymise(face_pixels, [region], Method.MOSAIC, Shape.RECTANGLE, np.random.default_rng(0))
    patch = out[36:198, 160:290].astype(float)
    original = face_pixels[36:198, 160:290].astype(float)
    # Fine detail (edges, eyes, mouth) is gone: what a 3-pixel blur removes is only the grain and stripes.
    assert high_frequency(original) > 8
    assert high_frequency(patch) < GRAIN + STRIPE_LEVELS * 2 / np.pi
    # Overall colour is kept, so the photo still reads naturally.
    assert np.abs(patch.mean(axis=(0, 1)) - original.mean(axis=(0, 1))).max() < 12


def high_frequency(patch: np.ndarray) -> float:
    return float(np.abs(patch - cv2.GaussianBlur(patch, (0, 0), 3)).mean())


def test_small_regions_get_fewer_and_no_smaller_cells():
    assert _cell_edges(20).tolist() == [0, 20]
    assert len(_cell_edges(64)) - 1 == 2
    assert len(_cell_edges(300)) - 1 == GRID


@pytest.mark.parametrize("height", [12, 16, 20, 40, 100])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_covered_face_keeps_no_structure_at_any_size(face_pixels, height, seed):
    """The fill over a soft, far face is structurally unlike it (SSIM at most 0.4, below the 0.5
    at which the recall benchmark counts a face destroyed), however small: 3×3 cells on a
    12-pixel face kept its shading (SSIM 0.63), and faint grain left smooth cheeks similar."""
    from benchmarks.wider import box_ssim, grey

    crop = face_pixels[20:220, 145:305]
    scale = 2 * height / crop.shape[0]
    head = cv2.GaussianBlur(cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA), (0, 0), 2)
    canvas = np.full((head.shape[0] + 40, head.shape[1] + 40, 3), 120, np.uint8)
    canvas[20 : 20 + head.shape[0], 20 : 20 + head.shape[1]] = head
    face = [20 + 0.2 * head.shape[1], 20 + 0.25 * head.shape[0], 0.6 * head.shape[1], height]  # x, y, w, h
    x, y, w, h = face
    region = Region(int(x - 0.25 * w), int(y - 0.25 * h), int(np.ceil(x + 1.25 * w)), int(np.ceil(y + 1.25 * h)))
    out = anonymise(canvas, [region], Method.MOSAIC, Shape.ELLIPSE, np.random.default_rng(seed))
    assert box_ssim(grey(canvas), grey(out), face) <= 0.4


@pytest.mark.parametrize("method", list(Method))
def test_a_drawn_rectangle_is_destroyed_to_its_corners_in_oval_mode(textured, method):
    out = anonymise(textured, [Region(10, 8, 50, 56, shape=Shape.RECTANGLE)], method, Shape.ELLIPSE,
                    np.random.default_rng(1))
    changed = np.any(out != textured, axis=2)
    for corner in (changed[8:11, 10:13], changed[8:11, 47:50], changed[53:56, 10:13], changed[53:56, 47:50]):
        assert corner.mean() > 0.6, corner
    assert not changed[:8].any() and not changed[56:].any() and not changed[:, :10].any() and not changed[:, 50:].any()


@pytest.mark.parametrize("method", list(Method))
def test_a_picture_with_padded_rows_is_destroyed_in_place(textured, method):
    """A decoder may hand over pixels whose rows are padded (not contiguous): destroyed all the same."""
    padded = np.zeros((64, 96, 3), np.uint8)
    padded[:, :80] = textured
    view = padded[:, :80]
    assert not view.flags.c_contiguous
    out = anonymise(view, [Region(10, 10, 50, 50)], method, Shape.RECTANGLE, np.random.default_rng(1), out=view)
    assert out is view
    assert (padded[10:50, 10:50] != textured[10:50, 10:50]).any(axis=2).mean() > 0.9
    assert (padded[:, 80:] == 0).all() and (padded[:10, :80] == textured[:10]).all()
