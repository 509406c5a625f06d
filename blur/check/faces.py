"""The face half of the check: what the default detector would destroy, and whether it is a blob the tool made."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..detect import DEFAULT_DETECTOR, Detection, Detector, load_detector


@dataclass(frozen=True)
class FaceCandidate:
    """Something the detector would destroy, and whether it is already destroyed."""

    detection: Detection
    destroyed: bool
    """True when the middle of the box is a blob the tool made (see `blob_measures`)."""


def find_face_candidates(pixels: np.ndarray, detector: Detector | None = None) -> list[FaceCandidate]:
    """Everything `detector` (default: the default detector) finds in upright RGB `pixels`, best first."""
    found = sorted((detector or load_detector(DEFAULT_DETECTOR)).detect(pixels), key=lambda d: -d.score)
    grey = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY).astype(np.float32) if found else None
    return [FaceCandidate(d, _is_blob(grey, d)) for d in found]


BLOB_STRUCTURE = 0.6
"""Most energy in the middle band (see `blob_measures`) per unit of pixel-level grain for a blob."""
BLOB_RELIEF = 1.0
"""Most relief (8-bit levels, see `blob_measures`) left once the grain is smoothed away, for a blob.

Both bounds were chosen on candidates in 60 wider-native-dev photos and the tool's JPEG outputs of
them: real faces of 20 px or more pass as blobs 0 in 1,153 times as published, under 0.3 % of the
time with strong added noise (16 levels), 0.4-3.6 % only when their contrast is also cut to half or
a third; 56 % of the candidates found on the tool's own destroyed regions count as blobs. Looser
bounds recognise more blobs and pass more dim, noisy faces: a check must not pass a face.
"""
FLAT_LEVELS = 2.0
"""A middle whose brightness varies this little is flat: no face can be seen in it."""
_VIEW = 48
"""Boxes taller than this are measured shrunk to it, so a face's features have the same scale at any size."""


def looks_destroyed(pixels: np.ndarray, box: Detection) -> bool:
    """Whether the middle of `box` in RGB `pixels` is a blob the tool made (a destroyed face)."""
    return _is_blob(cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY).astype(np.float32), box)


def _is_blob(grey: np.ndarray, box: Detection) -> bool:
    structure, relief = blob_measures(grey, box)
    return structure < BLOB_STRUCTURE and relief < BLOB_RELIEF


def blob_measures(grey: np.ndarray, box: Detection) -> tuple[float, float]:
    """(structure, relief) of the middle 5/8 of `box` in a grey float image.

    A destroyed region is a smooth surface through at most 3×3 cell colours plus fine white grain.
    `structure` is the energy between the scale of a pixel and a sixth of the box, relative to the
    pixel-level energy: grain has little in that band, eyes, nose and mouth put a lot there.
    `relief` is what is left of the middle, smoothed so that grain (or a camera's noise) is gone,
    once a quadratic surface is taken away: nearly nothing on a blob, the features on a face, however
    noisy. A face is only taken for a blob when both are low.
    """
    x0, y0, x1, y1 = box.x0, box.y0, box.x1, box.y1
    width, height = x1 - x0, y1 - y0
    left, top = int(max(np.floor(x0 - width), 0)), int(max(np.floor(y0 - height), 0))
    right = int(min(np.ceil(x1 + width), grey.shape[1]))
    bottom = int(min(np.ceil(y1 + height), grey.shape[0]))
    around = np.ascontiguousarray(grey[top:bottom, left:right])
    x0, y0, x1, y1 = x0 - left, y0 - top, x1 - left, y1 - top
    shrink = min(1.0, _VIEW / max(height, 1.0))
    if shrink < 1 and min(around.shape) > 1:
        around = cv2.resize(around, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
        x0, y0, x1, y1, width, height = (v * shrink for v in (x0, y0, x1, y1, width, height))
    rows = slice(max(int(round(y0 + height * 3 / 16)), 0), int(round(y0 + height * 13 / 16)))
    cols = slice(max(int(round(x0 + width * 3 / 16)), 0), int(round(x0 + width * 13 / 16)))
    middle = around[rows, cols]
    if middle.shape[0] < 3 or middle.shape[1] < 3:
        return float("inf"), float("inf")  # nothing to measure: never called destroyed
    if np.ptp(middle) <= FLAT_LEVELS:
        return 0.0, 0.0  # a flat fill (the solid method): nothing there
    fine = cv2.GaussianBlur(around, (0, 0), 1.0)
    coarse = cv2.GaussianBlur(around, (0, 0), max(height / 6, 2.0))
    grain = np.mean((around - fine)[rows, cols] ** 2)
    structure = float(np.mean((fine - coarse)[rows, cols] ** 2) / (grain + 1e-3))
    smooth = cv2.GaussianBlur(around, (0, 0), float(np.clip(height / 10, 1.2, 4.0)))[rows, cols]
    ys, xs = np.mgrid[0 : smooth.shape[0], 0 : smooth.shape[1]].astype(np.float32)
    ys, xs = ys / (smooth.shape[0] - 1) - 0.5, xs / (smooth.shape[1] - 1) - 0.5
    surface = np.stack([np.ones_like(xs), xs, ys, xs * xs, ys * ys, xs * ys], axis=-1).reshape(-1, 6)
    fitted, *_ = np.linalg.lstsq(surface, smooth.reshape(-1), rcond=None)
    relief = float(np.sqrt(np.mean((smooth.reshape(-1) - surface @ fitted) ** 2)))
    return structure, relief
