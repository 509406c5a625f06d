"""Views: the scaled copies of a photo a fixed-stride detector looks at, sized by the faces to find.

A face is found by the pixels it has in the view the model sees, not in the photo. The finest
level therefore enlarges the photo so that the smallest face to be found (`min_face`, in the
photo's own pixels) gets the height the model needs, whatever the photo's size; coarser levels,
each `step` times smaller, bring larger faces into the model's range, down to one that shows the
whole photo small. Each level is cut into windows of at most `window` pixels, so the memory of one
inference stays bounded however large the photo or the enlargement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator

import cv2
import numpy as np

Infer = Callable[[np.ndarray], np.ndarray]
"""RGB window with sides multiple of 32 -> N×5 array of (x0, y0, x1, y1, score) in its pixels."""

MULTIPLE = 32
"""CenterFace's input sides must be multiples of its coarsest stride."""


@dataclass(frozen=True)
class Pyramid:
    """Which views of a photo the detector looks at."""

    min_face: float = 10.0
    """Height in photo pixels of the smallest face to be found: it sets the finest level."""
    model_face: float = 15.0
    """Height in view pixels at which the model finds faces reliably (measured: benchmarks/views.py)."""
    step: float = 2.0
    """Each coarser level is this many times smaller than the one before ..."""
    coarsest_side: int = 448
    """... down to the first whose long side is at most this many pixels, so huge faces are in range."""
    mirror: bool = False
    """Also look at every level mirrored left to right."""
    window: int = 1536
    """Longest side of one inference's window, in view pixels: bounds its memory."""
    overlap: int = 96
    """View pixels shared by neighbouring windows: a face this tall lies whole in one of them."""

    def __post_init__(self):
        if not self.min_face > 0 or not self.model_face > 0:
            raise ValueError("min_face and model_face must be positive")
        if not self.step > 1:
            raise ValueError("step must be greater than 1")
        if self.window < 2 * self.overlap or self.window % MULTIPLE:
            raise ValueError(f"window must be a multiple of {MULTIPLE} and at least twice the overlap")

    def scales(self, shape: tuple[int, int]) -> list[float]:
        """Scale factors of the levels for a photo of `shape` (height, width), finest first."""
        long_side = max(shape)
        scale = self.model_face / self.min_face
        chosen = [scale]
        while long_side * scale > self.coarsest_side:
            scale /= self.step
            chosen.append(scale)
        return chosen

    def views(self, shape: tuple[int, int]) -> list[tuple[float, bool]]:
        """(scale, mirrored) of every view of a photo of `shape`."""
        return [(s, m) for s in self.scales(shape) for m in ((False, True) if self.mirror else (False,))]

    def view_pixels(self, shape: tuple[int, int]) -> int:
        """Pixels the model looks at for a photo of `shape`, windows' overlap and padding included."""
        total = 0
        for scale, _ in self.views(shape):
            height, width = _view_size(shape, scale)
            rows, cols = window_grid(height, self.window, self.overlap), window_grid(width, self.window, self.overlap)
            total += len(rows[0]) * rows[1] * len(cols[0]) * cols[1]
        return total


def detect_in_views(pixels: np.ndarray, infer: Infer, pyramid: Pyramid) -> list[np.ndarray]:
    """For each view of the pyramid, its N×5 boxes mapped back to the photo's pixels."""
    found = []
    for scale, mirrored in pyramid.views(pixels.shape[:2]):
        boxes = [np.empty((0, 5), np.float32)]
        for x, y, window in view_windows(pixels, scale, mirrored, pyramid.window, pyramid.overlap):
            candidates = infer(window)
            if len(candidates):
                candidates[:, [0, 2]] += x
                candidates[:, [1, 3]] += y
                boxes.append(candidates)
        merged = merge_boxes(np.concatenate(boxes), 0.3)
        if mirrored:
            width = _view_size(pixels.shape[:2], scale)[1]
            merged[:, [0, 2]] = width - merged[:, [2, 0]]
        merged[:, :4] /= scale
        found.append(merged)
    return found


def view_windows(
    pixels: np.ndarray, scale: float, mirrored: bool, window: int, overlap: int
) -> Iterator[tuple[int, int, np.ndarray]]:
    """(x, y, pixels) of the windows that cover the photo scaled by `scale` (mirrored if asked).

    Windows of one view all have the same size, a multiple of 32 (the last ones padded with black
    past the view's edge), so the engine compiles one model per view size. Enlarged windows are
    interpolated straight from the photo, so no enlarged copy of the whole photo is ever made.
    """
    height, width = _view_size(pixels.shape[:2], scale)
    source = pixels[:, ::-1] if mirrored else pixels
    if scale < 1:
        source = cv2.resize(source, (width, height), interpolation=cv2.INTER_AREA)
    ys, window_h = window_grid(height, window, overlap)
    xs, window_w = window_grid(width, window, overlap)
    for y in ys:
        for x in xs:
            if scale <= 1:
                tile = source[y : y + window_h, x : x + window_w]
                if tile.shape[:2] != (window_h, window_w):
                    tile = cv2.copyMakeBorder(tile, 0, window_h - tile.shape[0], 0, window_w - tile.shape[1],
                                              cv2.BORDER_CONSTANT, value=(0, 0, 0))
            else:
                tile = _enlarged(source, scale, x, y, window_w, window_h)
                tile[max(0, height - y) :] = 0  # black past the view's edge, as for the other views
                tile[:, max(0, width - x) :] = 0
            yield x, y, np.ascontiguousarray(tile)


def _enlarged(source: np.ndarray, scale: float, x: int, y: int, width: int, height: int) -> np.ndarray:
    """The window at (x, y) of `source` enlarged by `scale`, as cv2.resize of the whole would give it."""
    offset = 0.5 * scale - 0.5  # cv2.resize maps pixel centres: dst + 0.5 = (src + 0.5) * scale
    matrix = np.array([[scale, 0, offset - x], [0, scale, offset - y]], np.float64)
    # Only the part of the photo this window shows is read (plus one pixel for interpolation).
    x0, y0 = max(0, math.floor(x / scale) - 1), max(0, math.floor(y / scale) - 1)
    x1, y1 = math.ceil((x + width) / scale) + 1, math.ceil((y + height) / scale) + 1
    matrix[:, 2] += matrix[:, :2] @ np.array([x0, y0], np.float64)
    return cv2.warpAffine(np.ascontiguousarray(source[y0:y1, x0:x1]), matrix, (width, height),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def window_grid(length: int, window: int, overlap: int) -> tuple[list[int], int]:
    """Starts and size of equal windows that cover `length` pixels, overlapping by at least `overlap`."""
    if length <= window:
        return [0], _round_up(length, MULTIPLE)
    count = math.ceil((length - overlap) / (window - overlap))
    size = min(window, _round_up(math.ceil((length + (count - 1) * overlap) / count), MULTIPLE))
    step = (length - size) / (count - 1)
    return [round(i * step) for i in range(count)], size


def _view_size(shape: tuple[int, int], scale: float) -> tuple[int, int]:
    return max(1, round(shape[0] * scale)), max(1, round(shape[1] * scale))


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def merge_boxes(boxes: np.ndarray, iou: float) -> np.ndarray:
    """Non-maximum suppression: keep the strongest of boxes overlapping by more than `iou`."""
    if len(boxes) <= 1:
        return boxes
    xywh = np.column_stack([boxes[:, :2], boxes[:, 2:4] - boxes[:, :2]]).astype(np.float64)
    keep = cv2.dnn.NMSBoxes(xywh, boxes[:, 4].astype(np.float32), 0.0, iou)
    return boxes[np.asarray(keep, dtype=int).reshape(-1)]
