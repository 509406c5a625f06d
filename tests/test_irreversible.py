"""Irreversibility as a property: K-coarse non-interference (see DESIGN.md).

Inside a destroyed region the output may depend only on the pixels outside it, on the per-channel
sums of a K×K grid of cells over it (K <= 4), and on fresh randomness. So shuffling the region's
pixels within each cell must leave the output pixels and the encoded bytes unchanged under the
same seed, for every method offered as irreversible and every shape; alpha, which can draw a face's
outline, is shuffled too.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blur.anonymise import GRID, IRREVERSIBLE_METHODS, Method, _cell_edges, anonymise
from blur.encode import encode_image
from blur.formats import OUTPUT_FORMATS
from blur.pipeline import Settings, anonymise_image
from blur.regions import Region, Shape, region_mask

METHODS = sorted(IRREVERSIBLE_METHODS, key=lambda m: m.value)
SHAPES = list(Shape)


@st.composite
def scenes(draw):
    """(pixels, alpha, regions): a random image with one or two non-overlapping regions, some past its edges."""
    height, width = draw(st.integers(6, 48)), draw(st.integers(6, 48))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    alpha = rng.integers(0, 256, (height, width), dtype=np.uint8) if draw(st.booleans()) else None
    split = draw(st.integers(1, width - 1)) if draw(st.booleans()) else width
    regions = [_region(draw, -4, split, height)]
    if split < width:
        regions.append(_region(draw, split, width + 4, height))
    return pixels, alpha, regions


def _region(draw, left: int, right: int, height: int) -> Region:
    x0 = draw(st.integers(left, right - 1))
    x1 = draw(st.integers(x0 + 1, right))
    y0 = draw(st.integers(-4, height - 1))
    y1 = draw(st.integers(y0 + 1, height + 4))
    return Region(x0, y0, x1, y1)


def shuffle_within_cells(pixels: np.ndarray, regions: list[Region], shape: Shape, rng: np.random.Generator) -> np.ndarray:
    """`pixels` with the destroyed pixels of each region permuted within each of its K×K cells."""
    out = pixels.copy()
    height, width = pixels.shape[:2]
    for region in regions:
        x0, y0, x1, y1 = region.clipped(height, width)
        if x1 <= x0 or y1 <= y0:
            continue
        mask = region_mask(region, height, width, shape)
        box = out[y0:y1, x0:x1]
        rows, cols = _cell_edges(y1 - y0), _cell_edges(x1 - x0)
        for r0, r1 in zip(rows, rows[1:]):
            for c0, c1 in zip(cols, cols[1:]):
                cell, cell_mask = box[r0:r1, c0:c1], mask[r0:r1, c0:c1]
                cell[cell_mask] = rng.permutation(cell[cell_mask])
    return out


def test_grid_is_coarse_enough():
    assert GRID <= 4


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.value)
@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.value)
@settings(max_examples=60, deadline=None)
@given(scene=scenes(), seed=st.integers(0, 2**63), shuffle_seed=st.integers(0, 2**63))
def test_shuffling_within_cells_changes_nothing(method, shape, scene, seed, shuffle_seed):
    pixels, alpha, regions = scene
    shuffled = shuffle_within_cells(pixels, regions, shape, np.random.default_rng(shuffle_seed))
    shuffled_alpha = None if alpha is None else shuffle_within_cells(alpha[..., None], regions, shape,
                                                                     np.random.default_rng(shuffle_seed + 1))[..., 0]
    chosen = Settings(method=method, shape=shape)
    first = anonymise_image(pixels, chosen, alpha=alpha, regions=regions, rng=np.random.default_rng(seed))
    second = anonymise_image(shuffled, chosen, alpha=shuffled_alpha, regions=regions, rng=np.random.default_rng(seed))
    np.testing.assert_array_equal(first.pixels, second.pixels)
    for output in (OUTPUT_FORMATS["JPEG"], OUTPUT_FORMATS["PNG"]):
        assert encode_image(first.pixels, first.alpha, output) == encode_image(second.pixels, second.alpha, output)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.value)
@settings(max_examples=30, deadline=None)
@given(scene=scenes(), seeds=st.lists(st.integers(0, 2**63), min_size=2, max_size=2, unique=True))
def test_fresh_randomness_gives_a_different_mosaic(shape, scene, seeds):
    pixels, _, regions = scene
    big = [r for r in regions if region_mask(r, *pixels.shape[:2], shape).sum() >= 16]
    if not big:
        return
    outputs = [anonymise(pixels, big, Method.MOSAIC, shape, np.random.default_rng(s)) for s in seeds]
    assert not np.array_equal(*outputs)
    unseeded = [anonymise(pixels, big, Method.MOSAIC, shape) for _ in range(2)]
    assert not np.array_equal(*unseeded)


def test_the_property_catches_a_reversible_method():
    """Control: a Gaussian blur and an 8×8 mosaic fail the same check, so passing it means something."""
    import cv2

    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    region = Region(4, 4, 36, 36)
    shuffled = shuffle_within_cells(pixels, [region], Shape.RECTANGLE, rng)

    def gaussian(image):
        out = image.copy()
        out[4:36, 4:36] = cv2.GaussianBlur(image[4:36, 4:36], (0, 0), 2)
        return out

    def mosaic_8(image):
        out = image.copy()
        box = image[4:36, 4:36].astype(np.float64)
        out[4:36, 4:36] = np.rint(box.reshape(8, 4, 8, 4, 3).mean(axis=(1, 3))).repeat(4, 0).repeat(4, 1)
        return out

    for leaky in (gaussian, mosaic_8):
        assert not np.array_equal(leaky(pixels), leaky(shuffled))
