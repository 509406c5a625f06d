"""Anonymise: destroy the pixels inside regions so that nothing can bring the face back.

Both methods are irreversible in the sense of K-coarse non-interference (K = GRID = 3): inside a region,
the output depends only on pixels outside it, on the per-channel means of a K×K grid of cells over
it, and on fresh randomness. No deblurring model can recover detail that is not in the output.
"""

from __future__ import annotations

import secrets
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

GRAIN = 7.0
"""Standard deviation of per-pixel brightness grain. A smooth blob keeps the original's flat areas
(cheek, forehead) structurally similar to it; grain this strong, with the stripes below, leaves no
part of a covered face with SSIM above 0.5 (9 levels did alone; tests/test_anonymise.py checks every
size), and reads as film grain."""


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
) -> np.ndarray:
    """A copy of `pixels` (H×W×3 uint8) with every region destroyed by `method`, in `shape` unless
    the region has a shape of its own.

    `method` and `shape` are their enums or exact names; anything else is a ValueError, never
    another method or shape in its place."""
    method, shape = Method(method), Shape(shape)
    rng = rng or fresh_rng()
    out = pixels.copy()
    height, width = out.shape[:2]
    for region in regions:
        x0, y0, x1, y1 = region.clipped(height, width)
        if x1 <= x0 or y1 <= y0:
            continue
        mask = region_mask(region, height, width, shape)
        box = out[y0:y1, x0:x1]
        if method is Method.SOLID:
            box[mask] = 0
        else:
            box[mask] = coarse_noise_patch(box, mask, rng, stripes(x0, y0, x1 - x0, y1 - y0))[mask]
    return out


def stripes(x: int, y: int, width: int, height: int) -> np.ndarray:
    """The stripes (float32, height×width) over the box at (x, y) of a photo, in the photo's own
    coordinates: overlapping regions carry the same stripes. They depend on nothing else."""
    across = 2 * np.pi * STRIPES[0] * np.arange(x, x + width)
    down = 2 * np.pi * STRIPES[1] * np.arange(y, y + height)
    # cos(a + b) = cos a cos b - sin a sin b: two outer products instead of a cosine per pixel
    return (STRIPE_LEVELS * (np.outer(np.cos(down), np.cos(across)) - np.outer(np.sin(down), np.sin(across)))).astype(np.float32)


def coarse_noise_patch(
    box: np.ndarray, mask: np.ndarray, rng: np.random.Generator, mark: np.ndarray | float = 0.0
) -> np.ndarray:
    """A smooth patch the size of `box`, built only from the GRID×GRID cell means of the masked pixels,
    with fresh grain and `mark` (the stripes) added to its brightness."""
    height, width = mask.shape
    if _cell_count(height) == 1 and _cell_count(width) == 1:  # one cell: a colour, its noise and grain
        masked = box[mask]
        cell = masked.mean(axis=0) if len(masked) else np.zeros(3)
        cell = cell + rng.normal(0.0, CELL_JITTER, (1, 1, 1))[0, 0] + rng.normal(0.0, CELL_TINT, (1, 1, 3))[0, 0]
        patch = cell.astype(np.float32) + (rng.normal(0.0, GRAIN, (height, width)).astype(np.float32) + mark)[:, :, None]
        patch = 255 - np.abs(255 - np.abs(patch))
        return np.clip(np.rint(patch), 0, 255).astype(np.uint8)
    rows = _cell_edges(height)
    cols = _cell_edges(width)
    masked = box[mask].astype(np.float64)
    fallback = masked.mean(axis=0) if len(masked) else np.zeros(3)
    cells = np.empty((len(rows) - 1, len(cols) - 1, 3))
    for i in range(len(rows) - 1):
        for j in range(len(cols) - 1):
            cell_mask = mask[rows[i] : rows[i + 1], cols[j] : cols[j + 1]]
            cell = box[rows[i] : rows[i + 1], cols[j] : cols[j + 1]][cell_mask]
            cells[i, j] = cell.mean(axis=0) if len(cell) else fallback
    cells += rng.normal(0.0, CELL_JITTER, cells.shape[:2] + (1,)) + rng.normal(0.0, CELL_TINT, cells.shape)
    patch = cv2.resize(cells.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    patch += (rng.normal(0.0, GRAIN, (height, width)).astype(np.float32) + mark)[:, :, None]
    # Reflect at 0 and 255 rather than clip, so noise still changes black and white areas.
    patch = 255 - np.abs(255 - np.abs(patch))
    return np.clip(np.rint(patch), 0, 255).astype(np.uint8)


def _cell_count(length: int) -> int:
    """How many cells along a side of `length` pixels (1 to GRID); it depends on the size only."""
    return max(1, min(GRID, round(length / MIN_CELL)))


def _cell_edges(length: int) -> np.ndarray:
    """Integer borders of the cells along one side; they depend on the size only."""
    return np.linspace(0, length, _cell_count(length) + 1).round().astype(int)
