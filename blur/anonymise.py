"""Anonymise: destroy the pixels inside regions so that nothing can bring the face back.

Both methods are irreversible in the sense of K-coarse non-interference (K = GRID = 3): inside a region,
the output depends only on pixels outside it, on the per-channel means of a K×K grid of cells over
it, and on fresh randomness. No deblurring model can recover detail that is not in the output.
"""

from __future__ import annotations

import functools
import secrets
from fractions import Fraction
from dataclasses import dataclass
from enum import Enum
from typing import Iterable

import cv2
import numpy as np

from .regions import Region, Shape, region_mask

GRID = 3
"""Most cells per side of the mosaic grid. At most 4, or the method stops being irreversible; 3 because
dlib's face embedding cannot tell a 3×3 result from a solid fill (benchmarks/adversary.py), while 4×4
still leaks a little (ROC AUC 0.54–0.56 against 0.50)."""

MIN_CELL = 32
"""Fewest pixels per cell side: smaller regions get fewer cells (a 20-pixel region is one cell). On a
small face, 3×3 cells are as fine as the face's own features and keep its shading: with them, a fifth
of faces 10-20 px tall stayed structurally similar to the original (SSIM > 0.5) however well covered."""

CELL_JITTER = 16.0
"""Standard deviation (8-bit levels) of fresh brightness noise added to each cell, so cell means cannot be read back."""

CELL_TINT = 10.0
"""Standard deviation of fresh per-channel noise added to each cell: small, so the region keeps natural colours."""

GRAIN = 9.0
"""Standard deviation of per-pixel brightness grain. A smooth blob keeps the original's flat areas
(cheek, forehead) structurally similar to it; grain this strong leaves no part of a covered face with
SSIM above 0.5 (measured on wider-native-dev faces of every size; tests/test_anonymise.py checks every
size), also after a video encoder has smoothed dark fills (7 levels with the stripes left dark faces
of video frames at SSIM 0.51-0.53), and reads as film grain."""


STRIPES = (0.15, 0.15)
"""Cycles per pixel, along x and y, of faint diagonal stripes laid over every destroyed region: the
mark by which `blur check` knows a region the tool destroyed, at any size and under any part of it
(blur.check.faces). A narrow band no face has, off the 8-pixel grid of JPEG blocks, coarse enough to
survive the camera step's resampling and JPEG encoding (about 6.7 pixels a stripe along each side)."""

STRIPE_LEVELS = 10.0
"""Amplitude of the stripes (8-bit levels): weaker than the grain, strong enough to be found in 6×6 pixels."""


class Method(Enum):
    MOSAIC = "mosaic"
    """Default: a 3×3 grid of cell colours plus fresh noise, smoothed so it reads as a heavy blur, and the stripes."""
    SOLID = "solid"
    """A flat black fill."""


IRREVERSIBLE_METHODS = frozenset({Method.MOSAIC, Method.SOLID})


def fresh_rng() -> np.random.Generator:
    """A generator seeded from the operating system's randomness (never reproducible)."""
    return np.random.default_rng(secrets.randbits(128))


def anonymise(
    pixels: np.ndarray,
    regions: Iterable[Region],
    method: Method = Method.MOSAIC,
    shape: Shape = Shape.ELLIPSE,
    rng: np.random.Generator | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """A copy of `pixels` (H×W×3 uint8) with every region destroyed by `method`, in `shape` unless
    the region has a shape of its own; with `out=pixels`, `pixels` itself, destroyed in place.

    `method` and `shape` are their enums or exact names; anything else is a ValueError, never
    another method or shape in its place."""
    method, shape = Method(method), Shape(shape)
    rng = rng or fresh_rng()
    if out is None:
        out = pixels.copy()
    elif out is not pixels:
        raise ValueError("out must be pixels itself (in place) or None (a copy)")
    height, width = out.shape[:2]
    if not out.flags.c_contiguous:  # a decoder's picture with padded rows: destroyed in a copy, then put back
        work = np.ascontiguousarray(out)
        anonymise(work, regions, method, shape, rng, out=work)
        out[...] = work
        return out
    flat = out.reshape(-1, 3)  # a view: every write below lands in `out`
    for layer in _layers(regions, height, width):
        layouts = [_layout_of(region, height, width, shape) for region in layer]
        corners = _corners(layer, height, width)
        # regions of one cell are one colour plus grain: done apart, with no interpolation
        for one_cell in (True, False):
            chosen = [(corner, layout) for corner, layout in zip(corners, layouts) if (layout.cells == 1) is one_cell]
            if not chosen:
                continue
            pixels_at = np.concatenate([y0 * width + x0 + layout.offsets(width) for (x0, y0), layout in chosen])
            if method is Method.SOLID:
                flat[pixels_at] = 0
            else:
                stripes = _STRIPE_TABLE[np.concatenate([(x0 + y0 + layout.diagonal) % _STRIPE_PERIOD
                                                        for (x0, y0), layout in chosen])]
                flat[pixels_at] = _coarse_noise(flat[pixels_at], [layout for _, layout in chosen], rng, stripes)
    return out


def _layers(regions: Iterable[Region], height: int, width: int) -> list[list[Region]]:
    """The regions inside the image in layers: none of a layer overlaps another of it, and each region
    comes in a later layer than every earlier region it overlaps, so destroying layer after layer is
    destroying region after region (a later region's cells see the earlier one's fill, never its face)."""
    occupied = np.zeros((-(-height // _LAYER_CELL), -(-width // _LAYER_CELL)), np.int32)
    layers: list[list[Region]] = []
    for region in regions:
        x0, y0, x1, y1 = region.clipped(height, width)
        if x1 <= x0 or y1 <= y0:
            continue
        cells = (slice(y0 // _LAYER_CELL, -(-y1 // _LAYER_CELL)), slice(x0 // _LAYER_CELL, -(-x1 // _LAYER_CELL)))
        layer = int(occupied[cells].max())
        occupied[cells] = layer + 1
        if layer == len(layers):
            layers.append([])
        layers[layer].append(region)
    return layers


_LAYER_CELL = 8
"""Overlaps between regions are found on a grid this many pixels square (close regions count as
overlapping: they then only go in separate layers)."""


def _corners(layer: list[Region], height: int, width: int) -> list[tuple[int, int]]:
    return [region.clipped(height, width)[:2] for region in layer]


def level_alpha(alpha: np.ndarray, regions: Iterable[Region], shape: Shape = Shape.ELLIPSE) -> np.ndarray:
    """A copy of `alpha` (H×W uint8) in which each region is one level: the mean of its alpha.

    Transparency stays where it was (a face in a transparent area stays unseen, its colours destroyed
    underneath; a half-transparent one stays half-transparent), but alpha can no longer draw a face's
    outline (a cut-out's edge, a silhouette): within a region it depends on its sum alone."""
    out = alpha.copy()
    for box, mask in _masked_boxes(regions, *alpha.shape, Shape(shape)):
        out[box][mask] = np.rint(alpha[box][mask].mean())
    return out


def _masked_boxes(regions: Iterable[Region], height: int, width: int, shape: Shape):
    """(rows and columns of its clipped box, mask over that box) for each region inside the image."""
    for region in regions:
        x0, y0, x1, y1 = region.clipped(height, width)
        if x1 > x0 and y1 > y0:
            yield (slice(y0, y1), slice(x0, x1)), region_mask(region, height, width, shape)


@dataclass(eq=False)
class _Layout:
    """Where a region's destroyed pixels are and which cells they draw on, for one clipped size and mask."""

    ys: np.ndarray
    xs: np.ndarray
    """The masked pixels, relative to the clipped box's top left."""
    cell: np.ndarray
    """Per masked pixel, the cell (row-major, of `cells`) it belongs to."""
    near: np.ndarray
    weights: np.ndarray
    """Per masked pixel, the four cells (P×4) its value is interpolated from, as OpenCV's linear resize
    of the cell grid to the box would, and their weights."""
    cells: int

    def offsets(self, width: int) -> np.ndarray:
        return self.ys * width + self.xs

    @functools.cached_property
    def diagonal(self) -> np.ndarray:
        """ys + xs of the masked pixels: where the stripes are along them, from the box's corner."""
        return self.ys + self.xs


def _layout_of(region: Region, height: int, width: int, shape: Shape) -> _Layout:
    x0, y0, x1, y1 = region.clipped(height, width)
    own = region.shape or shape
    if (x0, y0, x1, y1) == (region.x0, region.y0, region.x1, region.y1):
        return _layout(y1 - y0, x1 - x0, own)
    return _layout_from_mask(region_mask(region, height, width, own))  # cut by the edge: a mask of its own


@functools.lru_cache(maxsize=2048)
def _layout(height: int, width: int, shape: Shape) -> _Layout:
    return _layout_from_mask(region_mask(Region(0, 0, width, height), height, width, shape))


def _layout_from_mask(mask: np.ndarray) -> _Layout:
    height, width = mask.shape
    rows, cols = _cell_edges(height), _cell_edges(width)
    ys, xs = np.nonzero(mask)
    row_of = np.searchsorted(rows, ys, side="right") - 1
    col_of = np.searchsorted(cols, xs, side="right") - 1
    row_near, row_weights = _two_nearest(_linear_weights(len(rows) - 1, height))
    col_near, col_weights = _two_nearest(_linear_weights(len(cols) - 1, width))
    near = (row_near[ys][:, :, None] * (len(cols) - 1) + col_near[xs][:, None, :]).reshape(-1, 4)
    weights = (row_weights[ys][:, :, None] * col_weights[xs][:, None, :]).reshape(-1, 4)
    return _Layout(ys, xs, row_of * (len(cols) - 1) + col_of, near, weights.astype(np.float32),
                   (len(rows) - 1) * (len(cols) - 1))


def _two_nearest(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row of a linear-resize weight matrix (at most two columns in use), the two columns and
    their weights (the second weight 0 where one column alone is used)."""
    used = weights > 0
    first = used.argmax(axis=1)
    last = weights.shape[1] - 1 - used[:, ::-1].argmax(axis=1)
    rows = np.arange(len(weights))
    second = np.where(last != first, weights[rows, last], 0.0)
    return np.stack([first, last], 1), np.stack([weights[rows, first], second], 1)


_STRIPE_PERIOD = Fraction(STRIPES[0]).limit_denominator(100).denominator
"""The stripes run along x + y (the same frequency on both axes) and repeat every this many steps of it."""
assert STRIPES[0] == STRIPES[1] and STRIPES[0] * _STRIPE_PERIOD == round(STRIPES[0] * _STRIPE_PERIOD)
_STRIPE_TABLE = (STRIPE_LEVELS * np.cos(2 * np.pi * STRIPES[0] * np.arange(_STRIPE_PERIOD))).astype(np.float32)


def _coarse_noise(values: np.ndarray, layouts: list[_Layout], rng: np.random.Generator,
                  mark: np.ndarray) -> np.ndarray:
    """New values for the destroyed pixels of a layer (P×3, in the order of `layouts`), built only from
    each region's GRID×GRID cell means of its masked pixels, fresh noise per cell and grain per pixel:
    cell colours moved by CELL_JITTER (brightness) and CELL_TINT (per channel), interpolated across the
    region as a linear resize of the cell grid would, plus GRAIN per pixel and the `mark` (the stripes)."""
    first_cell = np.cumsum([0] + [layout.cells for layout in layouts])
    pixel_counts = [len(layout.ys) for layout in layouts]
    region_of = np.repeat(np.arange(len(layouts)), pixel_counts)
    cell_of = np.concatenate([layout.cell for layout in layouts]) + first_cell[region_of]
    total = int(first_cell[-1])
    if total > len(layouts):
        near = np.concatenate([layout.near for layout in layouts]) + first_cell[region_of][:, None]
        weights = np.concatenate([layout.weights for layout in layouts])
    counts = np.bincount(cell_of, minlength=total)
    cells = np.stack([np.bincount(cell_of, values[:, c], minlength=total) for c in range(3)], 1).astype(np.float64)
    cells /= np.maximum(counts, 1)[:, None]
    if not counts.all():  # a cell the mask leaves empty takes its region's colour
        region_means = np.stack([np.bincount(region_of, values[:, c], minlength=len(layouts)) for c in range(3)], 1) \
            / np.maximum(np.bincount(region_of, minlength=len(layouts)), 1)[:, None]
        cell_region = np.repeat(np.arange(len(layouts)), [layout.cells for layout in layouts])
        cells[counts == 0] = region_means[cell_region[counts == 0]]
    cells += rng.normal(0.0, CELL_JITTER, (total, 1)) + rng.normal(0.0, CELL_TINT, (total, 3))
    cells = cells.astype(np.float32)
    if total == len(layouts):  # one cell each
        patch = cells[cell_of]
    else:
        patch = cells[near[:, 0]] * weights[:, :1]
        for k in range(1, 4):
            patch += cells[near[:, k]] * weights[:, k : k + 1]
    patch += (rng.standard_normal(len(values), dtype=np.float32) * np.float32(GRAIN) + mark)[:, None]
    # Reflect at 0 and 255 rather than clip, so noise still changes black and white areas.
    patch = 255 - np.abs(255 - np.abs(patch))
    return np.clip(np.rint(patch), 0, 255).astype(np.uint8)


@functools.lru_cache(maxsize=256)
def _linear_weights(cells: int, length: int) -> np.ndarray:
    """length×cells weights of OpenCV's linear resize from `cells` values to `length`."""
    return cv2.resize(np.eye(cells, dtype=np.float32), (cells, length), interpolation=cv2.INTER_LINEAR)


def _cell_count(length: int) -> int:
    """How many cells along a side of `length` pixels (1 to GRID); it depends on the size only."""
    return max(1, min(GRID, round(length / MIN_CELL)))


def _cell_edges(length: int) -> np.ndarray:
    """Integer borders of the cells along one side; they depend on the size only."""
    return np.linspace(0, length, _cell_count(length) + 1).round().astype(int)
