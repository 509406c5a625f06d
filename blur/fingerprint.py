"""Unlink a photo from the camera that took it: make its sensor fingerprint (PRNU) unusable.

Every sensor multiplies the light by a fixed, pixel-by-pixel pattern (photo-response non-uniformity).
Forensic tools estimate a camera's pattern from a few dozen of its photos and find it in a posted photo
by cross-correlation over all shifts, after searching scale and rotation; metadata removal, JPEG
re-encoding and mild resizing leave it in place. A pattern is only found where it lines up with the
fingerprint to well under a pixel over the whole photo.

So every photo is resampled through a smooth random non-rigid distortion: a displacement field of
about a pixel that varies slowly across the photo (no single scale, rotation or shift realigns it), a
random sub-pixel shift, and a random crop of a few pixels on each side. Bicubic resampling keeps the
photo looking the same (PSNR 40 dB and more). The randomness is fresh for every photo, so two outputs
of one camera do not share a distortion either. `benchmarks/camera_link.py` measures it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np

from .anonymise import fresh_rng
from .regions import Region

FIELD_CELLS = 8
"""Random displacement values per side of the photo, interpolated smoothly in between: the field turns
every eighth of the photo, too slowly to see, too fast for one scale and rotation to realign it
(measured at 1024 px with DISPLACEMENT: 4 cells left PCE 42-154, 8 cells 33-42, as unrelated photos)."""

DISPLACEMENT = 4.0
"""Standard deviation, in pixels, of the displacement at each control point (clipped at 2.5 times it),
for photos up to 1024 px on their long side. A posted photo still matches where a part of it lines up
with the fingerprint within about a pixel, and that part shrinks with the square of the displacement:
at 1024 px, 1 px left PCE 700-1,600, 2 px 60-100, 3 px 33-62 (originals 1,200-18,300; 60 is a match)."""

REFERENCE_SIDE = 1024
"""Above this long side the displacement grows with its square root: the fingerprint's evidence (PCE)
grows with the number of pixels, and PCE ~ pixels / displacement^4 then stays the same (a 12-MP photo,
4032 px, gets twice the displacement: 8 px, about 1 % of a field cell of 500 px)."""

EXTRA_CROP = 6
"""Each side loses as many pixels as the field may move them (so nothing from outside the photo is
sampled) plus a random 0 to EXTRA_CROP more: the output is slightly smaller, by a random amount."""


def displacement_for(height: int, width: int) -> float:
    """The displacement field's standard deviation, in pixels, for an image of this size."""
    return DISPLACEMENT * max(1.0, np.sqrt(max(height, width) / REFERENCE_SIDE))


def most_moved(height: int, width: int) -> int:
    """Most pixels any pixel moves besides the crop (the field, clipped at 2.5 standard deviations, and the sub-pixel shift)."""
    return int(np.ceil(2.5 * displacement_for(height, width) + 0.5))


@dataclass(frozen=True, eq=False)
class Distortion:
    """Where each output pixel is read from in the input (float32 maps for cv2.remap), and the crop."""

    map_x: np.ndarray
    map_y: np.ndarray
    left: int
    top: int


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
    """`image` read through `distortion`: bicubic by default (bilinear blurs it below 38 dB PSNR)."""
    return cv2.remap(image, distortion.map_x, distortion.map_y, interpolation, borderMode=cv2.BORDER_REFLECT)


def random_distortion(height: int, width: int, rng: np.random.Generator) -> Distortion:
    """A smooth random displacement field of FIELD_CELLS cells a side, a random sub-pixel shift, and a
    crop of `most_moved` to EXTRA_CROP more pixels a side (at most a quarter of the image: tiny images
    sample a mirrored edge instead), for an image of `height`×`width`."""
    spread = displacement_for(height, width)
    most = min(most_moved(height, width) + EXTRA_CROP, min(height, width) // 4)
    least = min(most_moved(height, width), most)
    left, top, right, bottom = (int(v) for v in rng.integers(least, most + 1, size=4))
    out_h, out_w = height - top - bottom, width - left - right
    limit = 2.5 * spread
    maps = []
    for offset, along_x in ((left, True), (top, False)):
        coarse = np.clip(rng.normal(0, spread, (FIELD_CELLS + 1, FIELD_CELLS + 1)), -limit, limit)
        field = cv2.resize(coarse.astype(np.float32), (out_w, out_h), interpolation=cv2.INTER_CUBIC)
        np.clip(field, -limit, limit, out=field)  # bicubic interpolation overshoots a little
        start = offset + rng.uniform(-0.5, 0.5)
        position = np.arange(out_w if along_x else out_h, dtype=np.float32) + np.float32(start)
        field += position[None, :] if along_x else position[:, None]
        maps.append(field)
    return Distortion(maps[0], maps[1], left, top)


def regions_in_output(regions: list[Region], unlinked: Unlinked, height: int, width: int) -> list[Region]:
    """`regions` (in the input's pixels) as boxes in the output's pixels, grown by how far pixels moved."""
    grow, moved = most_moved(height, width), []
    for r in regions:
        x0 = max(0, r.x0 - unlinked.left - grow)
        y0 = max(0, r.y0 - unlinked.top - grow)
        x1 = min(width, r.x1 - unlinked.left + grow)
        y1 = min(height, r.y1 - unlinked.top + grow)
        if x1 > x0 and y1 > y0:
            moved.append(dataclasses.replace(r, x0=x0, y0=y0, x1=x1, y1=y1))
    return moved
