"""Unlink a photo from the camera that took it: make its sensor fingerprint (PRNU) unusable.

Every sensor multiplies the light by a fixed, pixel-by-pixel pattern (photo-response non-uniformity).
Forensic tools estimate a camera's pattern from a few dozen of its photos and find it in a posted photo
by cross-correlation over all shifts, after searching scale and rotation; metadata removal, JPEG
re-encoding and mild resizing leave it in place. A pattern is only found where it lines up with the
fingerprint to well under a pixel over the whole photo.

So every photo is resampled through a smooth random non-rigid distortion: a displacement field of a
few pixels that varies slowly across the photo (no single scale, rotation or shift realigns it), a
random sub-pixel shift, and a crop of a few pixels more than the field moves them on each side.
Bicubic resampling keeps the photo looking the same (PSNR 45-52 dB against the image read at the same
positions almost exactly). The randomness is fresh for every photo, so two outputs of one camera do
not share a distortion either. `benchmarks/camera_link.py` measures it: originals PCE 1,000-15,000,
outputs 30-41, as photos of another camera (29-37); 60 is a match.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .anonymise import fresh_rng

FIELD_CELLS = 8
"""Random displacement values per side of the photo, interpolated smoothly in between: the field turns
every eighth of the photo, too slowly to see, too fast for one scale and rotation to realign it
(measured at 1024 px with 3 px: 4 cells left PCE 42-154, 6 cells 35-61, 8 cells 33-42)."""

DISPLACEMENT = 4.0
"""Standard deviation, in pixels, of the displacement at each control point (clipped at 2.5 times it),
for photos of up to REFERENCE_PIXELS. A posted photo still matches where a part of it lines up
with the fingerprint within about a pixel, and that part shrinks with the square of the displacement:
at 1024 px, 1 px left PCE 700-1,600, 2 px 62-102, 3 px at most 38, 4 px 30-41 (originals 1,000-15,000; 60 is
a match). Generated smooth scenes show a pattern more strongly (PCE 20,000-25,000 in 384×320 px): there
1.8 px left 220-440 and 3 px 38-54, so small photos get 4 px too (tests/test_fingerprint.py)."""

REFERENCE_PIXELS = 1024 * 768
"""Above this many pixels the displacement grows with their fourth root: the fingerprint's evidence
(PCE) grows with the number of pixels, and PCE ~ pixels / displacement^4 then stays the same (a 12-MP
photo gets twice the displacement: 8 px, against field cells of 500 px)."""

EXTRA_CROP = 6
"""Each side loses as many pixels as the field may move them (so nothing from outside the photo is
sampled) plus a random 0 to EXTRA_CROP more: the output is slightly smaller, by a random amount."""


def displacement_for(height: int, width: int) -> float:
    """The displacement field's standard deviation, in pixels, for an image of this size."""
    return DISPLACEMENT * max(1.0, (height * width / REFERENCE_PIXELS) ** 0.25)


def most_moved(height: int, width: int) -> int:
    """Most pixels any pixel moves besides the crop (the field, clipped at 2.5 standard deviations, and the sub-pixel shift)."""
    return int(np.ceil(2.5 * displacement_for(height, width) + 0.5))


BAND_ROWS = 256
"""Output rows resampled at a time: the sampling maps of a band, not of the whole photo, are held in
memory (8 MB for a 12-MP photo, where whole maps would take 100 MB, and 800 MB at 100 MP)."""

REMAP_LIMIT = 32767
"""cv2.remap takes images under this many pixels a side; a photo within the pixel limit may be wider
(100000×1000): it is resampled TILE_COLUMNS at a time from the part of it they read."""

TILE_COLUMNS = 8192

KERNEL_REACH = 4
"""Pixels either side of a sampling position that interpolation reads (Lanczos: 4, bicubic: 2)."""


@dataclass(frozen=True, eq=False)
class Distortion:
    """A smooth displacement field given by its control points, a sub-pixel shift, and a crop: where
    each pixel of the `height`×`width` output is read from in the input, computed band by band."""

    coarse_x: np.ndarray
    coarse_y: np.ndarray
    """The displacements, in pixels, at (FIELD_CELLS + 1)² control points, along x and y."""
    weights_x: np.ndarray
    weights_y: np.ndarray
    """Bicubic interpolation weights from control points to output columns and rows."""
    start_x: float
    start_y: float
    limit: float
    left: int
    top: int

    @property
    def height(self) -> int:
        return self.weights_y.shape[1]

    @property
    def width(self) -> int:
        return self.weights_x.shape[1]

    def maps(self, first_row: int, end_row: int) -> tuple[np.ndarray, np.ndarray]:
        """float32 maps for cv2.remap of output rows first_row to end_row (excluded)."""
        rows = np.ascontiguousarray(self.weights_y[:, first_row:end_row].T)
        # OpenCV's product, not numpy's: OpenBLAS threads spin on these thin products (5 times the CPU time).
        map_x = cv2.gemm(rows, cv2.gemm(self.coarse_x, self.weights_x, 1, None, 0), 1, None, 0)
        map_y = cv2.gemm(rows, cv2.gemm(self.coarse_y, self.weights_x, 1, None, 0), 1, None, 0)
        for field in (map_x, map_y):
            np.clip(field, -self.limit, self.limit, out=field)  # bicubic interpolation overshoots a little
        map_x += np.arange(self.width, dtype=np.float32) + np.float32(self.start_x)
        map_y += (np.arange(first_row, end_row, dtype=np.float32) + np.float32(self.start_y))[:, None]
        return map_x, map_y


@dataclass(frozen=True, eq=False)
class Unlinked:
    """A photo resampled so its sensor pattern no longer lines up; `left` and `top` are the pixels cut there."""

    pixels: np.ndarray
    alpha: np.ndarray | None
    left: int
    top: int


def unlink_sensor(
    pixels: np.ndarray, alpha: np.ndarray | None = None, rng: np.random.Generator | None = None
) -> Unlinked:
    """Resample an H×W×3 uint8 image (and its alpha) through a fresh random smooth distortion and crop."""
    distortion = random_distortion(*pixels.shape[:2], rng or fresh_rng())
    if alpha is not None:
        alpha = resample(alpha, distortion, cv2.INTER_LINEAR)
    return Unlinked(resample(pixels, distortion), alpha, distortion.left, distortion.top)


def resample(image: np.ndarray, distortion: Distortion, interpolation: int = cv2.INTER_CUBIC) -> np.ndarray:
    """`image` read through `distortion`, BAND_ROWS at a time: bicubic by default (bilinear blurs it
    below 38 dB PSNR)."""
    out = np.empty((distortion.height, distortion.width) + image.shape[2:], image.dtype)
    for first in range(0, distortion.height, BAND_ROWS):
        end = min(first + BAND_ROWS, distortion.height)
        band_x, band_y = distortion.maps(first, end)
        for left in range(0, distortion.width, TILE_COLUMNS):
            right = min(left + TILE_COLUMNS, distortion.width)
            map_x, map_y = band_x[:, left:right], band_y[:, left:right]
            x0, x1 = _window(map_x, image.shape[1])
            y0, y1 = _window(map_y, image.shape[0])
            out[first:end, left:right] = cv2.remap(image[y0:y1, x0:x1], map_x - x0, map_y - y0, interpolation,
                                                   borderMode=cv2.BORDER_REFLECT)
    return out


def _window(positions: np.ndarray, size: int) -> tuple[int, int]:
    """The input pixels (first, end) to hand cv2.remap for sampling at `positions`: all of them, or in a
    side too long for it, those interpolation reads (there the crop keeps every position inside)."""
    if size < REMAP_LIMIT:
        return 0, size
    first = int(np.floor(positions.min())) - KERNEL_REACH
    return max(0, first), min(size, int(np.ceil(positions.max())) + KERNEL_REACH + 1)


def random_distortion(height: int, width: int, rng: np.random.Generator) -> Distortion:
    """A smooth random displacement field of FIELD_CELLS cells a side, a random sub-pixel shift, and a
    crop of `most_moved` to EXTRA_CROP more pixels a side (at most a quarter of the image: tiny images
    sample a mirrored edge instead), for an image of `height`×`width`."""
    spread = displacement_for(height, width)
    most = min(most_moved(height, width) + EXTRA_CROP, min(height, width) // 4)
    least = min(most_moved(height, width), most)
    left, top, right, bottom = (int(v) for v in rng.integers(least, most + 1, size=4))
    points, limit = FIELD_CELLS + 1, 2.5 * spread
    coarse_x, coarse_y = (np.clip(rng.normal(0, spread, (points, points)), -limit, limit).astype(np.float32) for _ in range(2))
    start_x, start_y = left + rng.uniform(-0.5, 0.5), top + rng.uniform(-0.5, 0.5)
    return Distortion(coarse_x, coarse_y, _cubic_weights(points, width - left - right),
                      _cubic_weights(points, height - top - bottom), start_x, start_y, limit, left, top)


def _cubic_weights(points: int, size: int) -> np.ndarray:
    """points×size weights that interpolate `points` values to `size` as cv2.resize does (bicubic)."""
    return cv2.resize(np.eye(points, dtype=np.float32), (size, points), interpolation=cv2.INTER_CUBIC)
