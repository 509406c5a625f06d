"""Run a fixed-stride detector over several scales and overlapping tiles, then merge the boxes.

Upscaled passes give small crowd faces enough pixels; tiles bound the memory of each inference;
merging removes the duplicates that scales and tile overlaps produce.
"""

from __future__ import annotations

from typing import Callable, Iterator

import cv2
import numpy as np

from . import Detection

Infer = Callable[[np.ndarray], np.ndarray]
"""RGB image with sides multiple of 32 -> N×5 array of (x0, y0, x1, y1, score)."""

_MULTIPLE = 32


def detect_multiscale(
    pixels: np.ndarray,
    infer: Infer,
    *,
    scales: tuple[float, ...],
    max_side: int,
    tile: int = 1024,
    overlap: int = 128,
    source: str = "",
    nms_iou: float = 0.3,
) -> list[Detection]:
    """Detections over all `scales` (capped so the scaled long side stays <= `max_side` when upscaling)."""
    boxes = [np.empty((0, 5), np.float32)]
    for factor in effective_scales(pixels.shape[:2], scales, max_side):
        scaled = resize(pixels, factor)
        for x, y, window in tiles(scaled, tile, overlap):
            found = infer(pad_to_multiple(window, _MULTIPLE))
            if len(found):
                found = found.copy()
                found[:, [0, 2]] += x
                found[:, [1, 3]] += y
                found[:, :4] /= factor
                boxes.append(found)
    merged = merge_boxes(np.concatenate(boxes), nms_iou)
    return [Detection(*map(float, row[:4]), score=float(row[4]), source=source) for row in merged]


def effective_scales(shape: tuple[int, int], scales: tuple[float, ...], max_side: int) -> list[float]:
    """The distinct scale factors to run; upscaling stops where the long side would pass `max_side`."""
    long_side = max(shape)
    chosen: list[float] = []
    for factor in sorted(scales):
        if factor > 1.0:
            factor = min(factor, max(1.0, max_side / long_side))
        if not any(abs(factor - c) < 1e-3 for c in chosen):
            chosen.append(factor)
    return chosen


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
