"""Run a fixed-stride detector over a pyramid of scales, mirrored views and tiles, then fuse the boxes.

Upscaled levels give small crowd faces enough pixels, downscaled levels keep huge faces within
the model's reach, mirrored views catch turned faces the model sees only one way, and tiles bound
the memory of each inference. A face the model finds weakly in several views is more likely real
than a false alarm found weakly in one, so each fused box is scored by its best few views
together: that lets the threshold sit low enough for faint faces without blurring every pattern.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import cv2
import numpy as np

from . import Detection

Infer = Callable[[np.ndarray], np.ndarray]
"""RGB image with sides multiple of 32 -> N×5 array of (x0, y0, x1, y1, score)."""

_MULTIPLE = 32


@dataclass(frozen=True)
class Pyramid:
    """Which views of a photo the detector looks at."""

    upscale: float = 3.0
    """The finest level is at most this many times the photo's size ..."""
    max_side: int = 1248
    """... and its long side at most this many pixels, which bounds the time on phone photos."""
    step: float = 1.5
    """Each coarser level is this many times smaller than the one before ..."""
    min_side: int = 320
    """... down to the first whose long side is at most this."""
    mirror: bool = True
    """Also look at every level mirrored left to right."""
    support: int = 3
    """A fused box scores the mean of its best score in each of its `support` best views."""

    def scales(self, shape: tuple[int, int]) -> list[float]:
        """Scale factors of the levels for a photo of `shape` (height, width), finest first."""
        long_side = max(shape)
        scale = min(self.upscale, self.max_side / long_side)
        chosen = [scale]
        while long_side * scale > self.min_side:
            scale /= self.step
            chosen.append(scale)
        return chosen

    def views(self, shape: tuple[int, int]) -> list[tuple[float, bool]]:
        """(scale, mirrored) of every view of a photo of `shape`."""
        return [(s, m) for s in self.scales(shape) for m in ((False, True) if self.mirror else (False,))]


def detect_in_views(
    pixels: np.ndarray, infer: Infer, pyramid: Pyramid, *, tile: int = 1280, overlap: int = 160, nms_iou: float = 0.3
) -> list[np.ndarray]:
    """For each view of the pyramid, its N×5 boxes mapped back to the photo's pixels."""
    found = []
    for scale, mirrored in pyramid.views(pixels.shape[:2]):
        view = resize(pixels, scale)
        if mirrored:
            view = np.ascontiguousarray(view[:, ::-1])
        boxes = [np.empty((0, 5), np.float32)]
        for x, y, window in tiles(view, tile, overlap):
            candidates = infer(pad_to_multiple(window, _MULTIPLE))
            if len(candidates):
                candidates = candidates.copy()
                candidates[:, [0, 2]] += x
                candidates[:, [1, 3]] += y
                boxes.append(candidates)
        merged = merge_boxes(np.concatenate(boxes), nms_iou)
        if mirrored:
            merged[:, [0, 2]] = view.shape[1] - merged[:, [2, 0]]
        merged[:, :4] /= scale
        found.append(merged)
    return found


def fuse_views(views: list[np.ndarray], support: int, *, iou: float = 0.4) -> np.ndarray:
    """Cluster boxes from all views; M×5 fused boxes (score-weighted mean corners, support score).

    A box joins the cluster whose fused box it overlaps most, if by `iou` or more. A cluster's
    score is the mean of its best score in each of its `support` best views (missing views count
    as 0), so one weak view alone rarely reaches the threshold and a face seen in several does.
    """
    rows = sorted(((v, box) for v, boxes in enumerate(views) for box in boxes), key=lambda row: -row[1][4])
    weighted = np.zeros((len(rows), 4))  # score-weighted sums of corners, one row per cluster
    weights = np.zeros(len(rows))
    best = np.zeros((len(rows), len(views)))  # each cluster's best score in each view
    clusters = 0
    for view, box in rows:
        j = clusters
        if clusters:
            overlaps = box_iou(box[:4], weighted[:clusters] / weights[:clusters, None])
            nearest = int(np.argmax(overlaps))
            if overlaps[nearest] >= iou:
                j = nearest
        if j == clusters:
            clusters += 1
        weighted[j] += box[:4] * box[4]
        weights[j] += box[4]
        best[j, view] = max(best[j, view], box[4])
    fused = weighted[:clusters] / np.maximum(weights[:clusters, None], 1e-9)
    best = best[:clusters]
    k = min(support, len(views))
    support_score = np.sort(best, axis=1)[:, -k:].sum(axis=1) / k if k else np.empty(0)
    return np.column_stack([fused, support_score]).astype(np.float32)


def detect_fused(pixels: np.ndarray, infer: Infer, pyramid: Pyramid, threshold: float, source: str = "") -> list[Detection]:
    """Detections over every view of the pyramid, fused, at or above `threshold`."""
    fused = fuse_views(detect_in_views(pixels, infer, pyramid), pyramid.support)
    return [Detection(*map(float, row[:4]), score=float(row[4]), source=source) for row in fused if row[4] >= threshold]


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one (x0, y0, x1, y1) box with each row of `boxes`."""
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def resize(pixels: np.ndarray, factor: float) -> np.ndarray:
    if abs(factor - 1.0) < 1e-3:
        return pixels
    height, width = pixels.shape[:2]
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
    return cv2.resize(pixels, size, interpolation=interpolation)


def tiles(pixels: np.ndarray, tile: int, overlap: int) -> Iterator[tuple[int, int, np.ndarray]]:
    """Overlapping windows (x, y, view) of at most tile×tile pixels that cover the whole image."""
    height, width = pixels.shape[:2]
    for y in _starts(height, tile, overlap):
        for x in _starts(width, tile, overlap):
            yield x, y, pixels[y : y + tile, x : x + tile]


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    if length <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step))
    return starts + [length - tile]


def pad_to_multiple(pixels: np.ndarray, multiple: int) -> np.ndarray:
    """Pad bottom and right with black so both sides are multiples of `multiple`."""
    height, width = pixels.shape[:2]
    bottom = -height % multiple
    right = -width % multiple
    if bottom == 0 and right == 0:
        return pixels
    return cv2.copyMakeBorder(pixels, 0, bottom, 0, right, cv2.BORDER_CONSTANT, value=(0, 0, 0))


def merge_boxes(boxes: np.ndarray, iou: float) -> np.ndarray:
    """Non-maximum suppression: keep the strongest of boxes overlapping by more than `iou`."""
    if len(boxes) <= 1:
        return boxes
    xywh = [[float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])] for b in boxes]
    keep = cv2.dnn.NMSBoxes(xywh, boxes[:, 4].tolist(), 0.0, iou)
    return boxes[np.asarray(keep, dtype=int).reshape(-1)]
