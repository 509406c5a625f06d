"""Motion: how each frame relates to the one before, so what was found in one frame can be carried
to the next and only what changed needs another close look.

A frame is compared with the one before at a small size (about FLOW_WIDTH pixels wide): dense
optical flow (OpenCV's DIS) says where each pixel was a frame earlier, a robust fit of that flow
gives the camera's own movement (shift, zoom, turn), and what the flow cannot explain — something
uncovered, something entering the picture, a head turning — marks its cells as changed. When most
of the picture is changed, the frame is a cut: nothing carries over it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

FLOW_WIDTH = 480
"""Frames are compared shrunk by a whole factor to about this width: at 1080p each flow pixel is 4
frame pixels (a 10-px face is 2.5), and the flow takes a few milliseconds."""
CELL = 8
"""Flow pixels per side of a cell, the unit in which changes are marked and looks are planned (32
frame pixels at 1080p, 64 at 4K)."""
CHANGE_LEVEL = 6.0
"""A cell is changed when the flow leaves this much mean difference (8-bit grey levels, after a slight
smoothing) between it and the frame before: measured on pans and zooms of crowds, where explained
motion leaves under 3, and on a post passing in front of faces (its edges leave 15 to 60)."""
EDGE = 1
"""Cells along the picture's edge where boxes move with the camera, not with the flow."""
CUT_SHARE = 0.4
"""A frame with this share of its cells changed is a cut: another scene, not the same one moved."""


@dataclass(frozen=True)
class FlowGrid:
    """The geometry shared by motion and look planning for frames of one size."""

    height: int
    width: int
    factor: int
    """Frame pixels per flow pixel."""

    @classmethod
    def for_frame(cls, height: int, width: int) -> "FlowGrid":
        return cls(height, width, max(1, round(width / FLOW_WIDTH)))

    @property
    def cell(self) -> int:
        """Frame pixels per side of a cell."""
        return CELL * self.factor

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns) of flow pixels."""
        return max(1, self.height // self.factor), max(1, self.width // self.factor)

    @property
    def cells(self) -> tuple[int, int]:
        """(rows, columns) of cells covering the frame (the last ones may reach past it)."""
        return -(-self.height // self.cell), -(-self.width // self.cell)

    def small_grey(self, pixels: np.ndarray) -> np.ndarray:
        """The frame in grey at flow size."""
        grey = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)
        rows, cols = self.shape
        return cv2.resize(grey, (cols, rows), interpolation=cv2.INTER_AREA) if self.factor > 1 else grey


@dataclass(frozen=True, eq=False)
class Motion:
    """How a frame relates to the frame before it. Box methods take N×4 arrays (x0, y0, x1, y1) in
    frame pixels and work on all boxes at once."""

    back: np.ndarray
    """Flow pixels (rows×columns×2): for each, how far (in frame pixels) its content was a frame earlier."""
    camera: np.ndarray
    """2×3 affine map, frame pixels: a point of this frame to where it was in the frame before."""
    changed: np.ndarray
    """Cells (bool): what the flow cannot explain (what came into the picture is not counted here)."""
    cut: bool
    factor: int

    @property
    def zoom(self) -> float:
        """How much larger things look in this frame than in the one before."""
        return 1.0 / max(float(np.sqrt(abs(np.linalg.det(self.camera[:, :2])))), 1e-6)

    @functools.cached_property
    def _sums(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Summed-area tables of the flow, its squares and the changed cells."""
        return _summed(self.back), _summed(self.back * self.back), _summed(self.changed.astype(np.float64))

    def shift_back(self, boxes: np.ndarray) -> np.ndarray:
        """N×2: from each box of this frame to where its content was in the frame before: the mean
        flow over the box (at least 3×3 flow pixels); the camera's movement where the box changed, or
        lies within EDGE cells of the picture's edge (where the flow sees half its surroundings and
        follows what comes in badly)."""
        flow, _, _ = self._sums
        mean = _box_sums(flow, self._flow_spans(boxes)) / self._flow_areas(boxes)[:, None]
        camera = self._changed_under(boxes) | self._near_edge(boxes)
        return np.where(camera[:, None], self._camera_shift(boxes), mean)

    def _near_edge(self, boxes: np.ndarray) -> np.ndarray:
        rows, cols = self.back.shape[:2]
        margin = EDGE * CELL
        cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2 / self.factor, (boxes[:, 1] + boxes[:, 3]) / 2 / self.factor
        return (cx < margin) | (cy < margin) | (cx > cols - margin) | (cy > rows - margin)

    def own_motion(self, boxes: np.ndarray) -> np.ndarray:
        """How far (frame pixels) what is in each box of this frame moved unlike the camera since the
        frame before: what a carried box may be off by, if its own motion changes (a still crowd
        under a panning camera: nothing)."""
        return np.abs(self.shift_back(boxes) - self._camera_shift(boxes)).max(axis=1)

    def carried_back(self, boxes: np.ndarray) -> np.ndarray:
        """Boxes of this frame, moved and scaled to where they were in the frame before."""
        return moved(boxes, self.shift_back(boxes), 1.0 / self.zoom)

    def carried_forward(self, boxes: np.ndarray) -> np.ndarray:
        """Boxes of the frame before, moved and scaled to where they are in this frame: the inverse of
        `carried_back`, found by moving back boxes first placed by the camera."""
        guess = moved(boxes, -self._camera_shift(boxes), self.zoom)
        for _ in range(2):
            guess = moved(boxes, -self.shift_back(guess), self.zoom)
        return guess

    def changed_under(self, boxes: np.ndarray) -> np.ndarray:
        """Whether each box touches a changed cell."""
        return self._changed_under(boxes)

    def _camera_shift(self, boxes: np.ndarray) -> np.ndarray:
        centres = centres_of(boxes)
        return centres @ self.camera[:, :2].T + self.camera[:, 2] - centres

    def _changed_under(self, boxes: np.ndarray) -> np.ndarray:
        _, _, changed = self._sums
        rows, cols = self.changed.shape
        cell = CELL * self.factor
        x0 = np.clip(np.floor(boxes[:, 0] / cell), 0, cols - 1).astype(int)
        y0 = np.clip(np.floor(boxes[:, 1] / cell), 0, rows - 1).astype(int)
        x1 = np.clip(np.ceil(boxes[:, 2] / cell), x0 + 1, cols).astype(int)
        y1 = np.clip(np.ceil(boxes[:, 3] / cell), y0 + 1, rows).astype(int)
        return _box_sums(changed, (x0, y0, x1, y1)) > 0

    def _flow_spans(self, boxes: np.ndarray) -> tuple[np.ndarray, ...]:
        """Flow pixels under each box, at least 3×3 about its centre, inside the flow."""
        rows, cols = self.back.shape[:2]
        cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2 / self.factor, (boxes[:, 1] + boxes[:, 3]) / 2 / self.factor
        half_w = np.maximum((boxes[:, 2] - boxes[:, 0]) / 2 / self.factor, 1.5)
        half_h = np.maximum((boxes[:, 3] - boxes[:, 1]) / 2 / self.factor, 1.5)
        x0 = np.clip(np.round(cx - half_w), 0, cols - 1).astype(int)
        y0 = np.clip(np.round(cy - half_h), 0, rows - 1).astype(int)
        x1 = np.clip(np.round(cx + half_w), x0 + 1, cols).astype(int)
        y1 = np.clip(np.round(cy + half_h), y0 + 1, rows).astype(int)
        return x0, y0, x1, y1

    def _flow_areas(self, boxes: np.ndarray) -> np.ndarray:
        x0, y0, x1, y1 = self._flow_spans(boxes)
        return ((x1 - x0) * (y1 - y0)).astype(np.float64)


def first_motion(grid: FlowGrid) -> Motion:
    """The motion of a video's first frame: nothing before it, so everything is new (a cut)."""
    return Motion(np.zeros((*grid.shape, 2), np.float32), np.eye(2, 3), np.ones(grid.cells, bool), True, grid.factor)


class MotionEstimator:
    """Compares each frame with the one before (`motion(pixels)`, frames in order)."""

    def __init__(self, grid: FlowGrid):
        self.grid = grid
        self._flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        self._previous: np.ndarray | None = None
        rows, cols = grid.shape
        self._xs, self._ys = np.meshgrid(np.arange(cols, dtype=np.float32), np.arange(rows, dtype=np.float32))

    def motion(self, pixels: np.ndarray) -> Motion:
        grey = self.grid.small_grey(pixels)
        previous, self._previous = self._previous, grey
        if previous is None:
            return first_motion(self.grid)
        return motion_between(previous, grey, self.grid, self._flow, self._xs, self._ys)


def motion_between(previous: np.ndarray, grey: np.ndarray, grid: FlowGrid, flow_method,
                   xs: np.ndarray, ys: np.ndarray) -> Motion:
    """The Motion from `previous` to `grey` (both grey frames at flow size)."""
    back = flow_method.calc(grey, previous, None)
    from_x, from_y = xs + back[..., 0], ys + back[..., 1]
    warped = cv2.remap(previous, from_x, from_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    difference = np.abs(cv2.GaussianBlur(grey.astype(np.float32), (0, 0), 1.0)
                        - cv2.GaussianBlur(warped.astype(np.float32), (0, 0), 1.0))
    rows, cols = grey.shape
    entering = (from_x < -0.5) | (from_x > cols - 0.5) | (from_y < -0.5) | (from_y > rows - 0.5)
    difference[entering] = 0  # new to the picture, not changed in it: blur.video.looks plans those apart
    changed = _cell_means(difference, grid) > CHANGE_LEVEL
    camera = _camera(back, xs, ys, grid.factor)
    cut = camera is None or changed.mean() >= CUT_SHARE
    if cut:
        return Motion(back * grid.factor, np.eye(2, 3), np.ones_like(changed), True, grid.factor)
    return Motion(back * grid.factor, camera, changed, False, grid.factor)


def _camera(back: np.ndarray, xs: np.ndarray, ys: np.ndarray, factor: int) -> np.ndarray | None:
    """The affine map (shift, zoom, turn; frame pixels) that best explains the flow, or None."""
    step = max(1, int(np.sqrt(back.shape[0] * back.shape[1] / 4000)))
    here = np.stack([xs[::step, ::step], ys[::step, ::step]], -1).reshape(-1, 2)
    there = here + back[::step, ::step].reshape(-1, 2)
    matrix, inliers = cv2.estimateAffinePartial2D(here * factor, there * factor, method=cv2.RANSAC,
                                                  ransacReprojThreshold=2.0 * factor)
    if matrix is None or inliers is None or inliers.mean() < 0.3:
        return None
    return matrix


def _cell_means(values: np.ndarray, grid: FlowGrid) -> np.ndarray:
    rows, cols = grid.cells
    padded = np.zeros((rows * CELL, cols * CELL), np.float32)
    padded[: values.shape[0], : values.shape[1]] = values[: rows * CELL, : cols * CELL]
    return padded.reshape(rows, CELL, cols, CELL).mean(axis=(1, 3))


def centres_of(boxes: np.ndarray) -> np.ndarray:
    return np.column_stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2])


def moved(boxes: np.ndarray, shift: np.ndarray, scale: float) -> np.ndarray:
    """N×4 boxes moved by N×2 `shift` and scaled by `scale` about their centres."""
    centres = centres_of(boxes) + shift
    halves = (boxes[:, 2:] - boxes[:, :2]) * scale / 2
    return np.hstack([centres - halves, centres + halves])


def _summed(values: np.ndarray) -> np.ndarray:
    """Summed-area table with a leading row and column of zeros (any trailing channels kept)."""
    table = np.zeros((values.shape[0] + 1, values.shape[1] + 1, *values.shape[2:]), np.float64)
    table[1:, 1:] = values.cumsum(0).cumsum(1)
    return table


def _box_sums(table: np.ndarray, spans: tuple[np.ndarray, ...]) -> np.ndarray:
    x0, y0, x1, y1 = spans
    return table[y1, x1] - table[y0, x1] - table[y1, x0] + table[y0, x0]
