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

from .fusion import suppress_overlaps

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
    tile: int = 256
    """Side, in view pixels, of the cells in which a partial look (`Areas`) chooses what to look at:
    each chosen cell is looked at with `margin` more on every side."""
    margin: int = 32
    """View pixels around a partial look's tiles: a face up to twice this tall centred in a tile lies
    whole in its window (the finest level's faces are under 60 view pixels; larger ones are the
    coarser levels')."""

    def __post_init__(self):
        if not self.min_face > 0 or not self.model_face > 0:
            raise ValueError("min_face and model_face must be positive")
        if not self.step > 1:
            raise ValueError("step must be greater than 1")
        if self.window < 2 * self.overlap or self.window % MULTIPLE:
            raise ValueError(f"window must be a multiple of {MULTIPLE} and at least twice the overlap")
        if self.tile % MULTIPLE or self.overlap % MULTIPLE or (2 * self.margin) % MULTIPLE \
                or self.tile + 2 * self.margin > self.window:
            raise ValueError(f"tile, overlap and twice the margin must be multiples of {MULTIPLE}, and a tile with "
                             "its margins at most a window")

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
        return sum(level_pixels(shape, scale, self) for scale, _ in self.views(shape))


@dataclass(frozen=True, eq=False)
class Areas:
    """Where in a photo a partial look looks: a boolean grid of square cells, `cell` photo pixels
    each (True: look there); cells past the grid's last row or column are not looked at."""

    cells: np.ndarray
    cell: int

    def touched(self, boxes: np.ndarray) -> np.ndarray:
        """The cells (a bool grid like `cells`) that N×4 photo boxes touch."""
        rows, cols = self.cells.shape
        marks = np.zeros((rows + 1, cols + 1), np.int64)
        x0, y0, x1, y1 = self._spans(boxes)
        np.add.at(marks, (y0, x0), 1)
        np.add.at(marks, (y0, x1), -1)
        np.add.at(marks, (y1, x0), -1)
        np.add.at(marks, (y1, x1), 1)
        return marks.cumsum(0).cumsum(1)[:rows, :cols] > 0

    def covers(self, boxes: np.ndarray) -> np.ndarray:
        """For N×4 photo boxes (x0, y0, x1, y1): whether each touches a cell looked at."""
        rows, cols = self.cells.shape
        summed = np.zeros((rows + 1, cols + 1), np.int64)
        summed[1:, 1:] = self.cells.cumsum(0).cumsum(1)
        x0, y0, x1, y1 = self._spans(boxes)
        return (summed[y1, x1] - summed[y0, x1] - summed[y1, x0] + summed[y0, x0]) > 0

    def _spans(self, boxes: np.ndarray) -> tuple[np.ndarray, ...]:
        """Cell columns and rows (half-open) that each box touches, inside the grid."""
        rows, cols = self.cells.shape
        x0 = np.clip(np.floor(boxes[:, 0] / self.cell).astype(int), 0, cols)
        y0 = np.clip(np.floor(boxes[:, 1] / self.cell).astype(int), 0, rows)
        x1 = np.clip(np.ceil(boxes[:, 2] / self.cell).astype(int), 0, cols)
        y1 = np.clip(np.ceil(boxes[:, 3] / self.cell).astype(int), 0, rows)
        return x0, y0, x1, y1

    def within(self, other: Areas) -> Areas:
        """These areas, less the cells that touch none of `other`'s."""
        ys, xs = np.nonzero(self.cells)
        cells = np.zeros_like(self.cells)
        cells[ys, xs] = other.covers(np.column_stack([xs, ys, xs + 1, ys + 1]).astype(float) * self.cell)
        return Areas(cells, self.cell)


def textured_areas(pixels: np.ndarray, cell: int, least: float) -> Areas:
    """The cells of `cell` photo pixels whose grey values, or a neighbouring cell's, spread by at
    least `least` (standard deviation): a face needs some contrast, a clear sky or a plain wall has none."""
    rows, cols = -(-pixels.shape[0] // cell), -(-pixels.shape[1] // cell)
    spread = np.zeros((rows, cols), np.float32)
    band = cell * max(1, 256 // cell)  # a few rows at a time: no float copy of the whole photo
    for top in range(0, pixels.shape[0], band):
        grey = cv2.cvtColor(np.ascontiguousarray(pixels[top : top + band]), cv2.COLOR_RGB2GRAY).astype(np.float32)
        height, width = grey.shape
        grey = cv2.copyMakeBorder(grey, 0, -height % cell, 0, -width % cell, cv2.BORDER_REPLICATE)
        cells = grey.reshape(grey.shape[0] // cell, cell, -1, cell)
        spread[top // cell : top // cell + cells.shape[0]] = cells.std(axis=(1, 3))
    return Areas(cv2.dilate((spread >= least).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool), cell)


Where = Callable[[float], "Areas | None"]
"""For a level's scale, the areas to look at in it (None: the whole level)."""


def detect_in_views(pixels: np.ndarray, infer: Infer, pyramid: Pyramid, where: Where | None = None) -> list[np.ndarray]:
    """For each view of the pyramid, its N×5 boxes mapped back to the photo's pixels.

    With `where`, a level whose areas it gives is looked at only there (`area_windows`); a level
    with no area at all is skipped, its boxes empty."""
    found = []
    for scale, mirrored in pyramid.views(pixels.shape[:2]):
        areas = where(scale) if where is not None else None
        if areas is None:
            windows = view_windows(pixels, scale, mirrored, pyramid.window, pyramid.overlap)
        else:
            windows = area_windows(pixels, scale, mirrored, areas, pyramid)
        boxes = [np.empty((0, 5), np.float32)]
        for x, y, window in windows:
            candidates = infer(window)
            if len(candidates):
                candidates[:, [0, 2]] += x
                candidates[:, [1, 3]] += y
                boxes.append(candidates)
        merged = merge_boxes(np.concatenate(boxes), 0.3)
        if areas is not None:  # a box centred outside the chosen tiles was seen cut, in their margin
            chosen = chosen_tiles(pixels.shape[:2], scale, mirrored, areas, pyramid.tile)
            row = np.clip(((merged[:, 1] + merged[:, 3]) / 2 // pyramid.tile).astype(int), 0, chosen.shape[0] - 1)
            col = np.clip(((merged[:, 0] + merged[:, 2]) / 2 // pyramid.tile).astype(int), 0, chosen.shape[1] - 1)
            merged = merged[chosen[row, col]]
        if mirrored:
            width = _view_size(pixels.shape[:2], scale)[1]
            merged[:, [0, 2]] = width - merged[:, [2, 0]]
        merged[:, :4] /= scale
        found.append(merged)
    return found


def area_windows(
    pixels: np.ndarray, scale: float, mirrored: bool, areas: Areas, pyramid: Pyramid
) -> Iterator[tuple[int, int, np.ndarray]]:
    """(x, y, pixels) of the windows that show the chosen areas of the view at `scale`.

    The view is cut into tiles of `pyramid.tile` pixels; a tile is looked at when it touches a
    chosen cell. Neighbouring chosen tiles are joined into rectangles of at most `pyramid.window`
    pixels, each looked at with `pyramid.margin` pixels more on every side, so a face of up to twice
    that centred in a chosen tile lies whole in its window.
    """
    height, width = _view_size(pixels.shape[:2], scale)
    rectangles = area_rectangles(pixels.shape[:2], scale, mirrored, areas, pyramid)
    if not rectangles:
        return
    source = pixels[:, ::-1] if mirrored else pixels
    if scale < 1:
        source = cv2.resize(source, (width, height), interpolation=cv2.INTER_AREA)
    for x, y, window_w, window_h in rectangles:
        yield x, y, _view_window(source, scale, x, y, window_w, window_h, height, width)


def area_rectangles(shape: tuple[int, int], scale: float, mirrored: bool, areas: Areas,
                    pyramid: Pyramid) -> list[tuple[int, int, int, int]]:
    """(x, y, width, height) in view pixels of the windows `area_windows` looks at."""
    height, width = _view_size(shape, scale)
    tile, margin = pyramid.tile, pyramid.margin
    rectangles = []
    for top, left, bottom, right in chosen_rectangles(chosen_tiles(shape, scale, mirrored, areas, tile),
                                                      pyramid.window // tile - 1):
        # whole tiles and margins, black past the view's edges: windows come in a few sizes only, and an
        # engine that adapts to each new size of input (OpenVINO's) is 2-3 times slower with many
        rectangles.append((left * tile - margin, top * tile - margin, (right - left) * tile + 2 * margin,
                           (bottom - top) * tile + 2 * margin))
    return rectangles


def level_pixels(shape: tuple[int, int], scale: float, pyramid: Pyramid, areas: Areas | None = None) -> int:
    """Pixels the model looks at in the level at `scale` of a photo of `shape`: in the windows of
    the whole level, or of the chosen `areas` only."""
    if areas is not None:
        return sum(w * h for _, _, w, h in area_rectangles(shape, scale, False, areas, pyramid))
    height, width = _view_size(shape, scale)
    (rows, window_h), (cols, window_w) = (window_grid(height, pyramid.window, pyramid.overlap),
                                          window_grid(width, pyramid.window, pyramid.overlap))
    return len(rows) * window_h * len(cols) * window_w


def chosen_tiles(shape: tuple[int, int], scale: float, mirrored: bool, areas: Areas, tile: int) -> np.ndarray:
    """Which tiles of `tile` view pixels (rows × columns of the view at `scale`, mirrored if asked)
    touch a chosen cell of `areas`."""
    height, width = _view_size(shape, scale)
    rows, cols = -(-height // tile), -(-width // tile)
    edges_x = np.minimum(np.arange(cols + 1) * tile, width) / scale
    edges_y = np.minimum(np.arange(rows + 1) * tile, height) / scale
    if mirrored:
        edges_x = shape[1] - edges_x
    x0, x1 = np.minimum(edges_x[:-1], edges_x[1:]), np.maximum(edges_x[:-1], edges_x[1:])
    y0, y1 = edges_y[:-1], edges_y[1:]
    grid = np.stack(np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij"), -1).reshape(-1, 2)
    boxes = np.column_stack([x0[grid[:, 1]], y0[grid[:, 0]], x1[grid[:, 1]], y1[grid[:, 0]]])
    return areas.covers(boxes).reshape(rows, cols)


def cells_inside_tiles(tiles: np.ndarray, cells: tuple[int, int], cell: int, shape: tuple[int, int],
                       scale: float, tile: int) -> np.ndarray:
    """Which cells (`cell` photo pixels square; a grid of `cells` rows × columns) lie wholly inside
    the chosen `tiles` of the (unmirrored) view at `scale`: the cells a look at those tiles has seen."""
    rows, cols = cells
    height, width = _view_size(shape, scale)
    view_cell = cell * scale
    # tiles each cell touches, in view pixels (a cell past the view's edge touches only tiles inside it)
    first_x = np.clip(np.floor(np.arange(cols) * view_cell / tile), 0, tiles.shape[1] - 1).astype(int)
    last_x = np.clip(np.ceil(np.minimum((np.arange(cols) + 1) * view_cell, width) / tile) - 1, 0, tiles.shape[1] - 1).astype(int)
    first_y = np.clip(np.floor(np.arange(rows) * view_cell / tile), 0, tiles.shape[0] - 1).astype(int)
    last_y = np.clip(np.ceil(np.minimum((np.arange(rows) + 1) * view_cell, height) / tile) - 1, 0, tiles.shape[0] - 1).astype(int)
    summed = np.zeros((tiles.shape[0] + 1, tiles.shape[1] + 1), np.int64)
    summed[1:, 1:] = tiles.cumsum(0).cumsum(1)
    y0, y1 = first_y[:, None], last_y[:, None] + 1
    x0, x1 = first_x[None, :], last_x[None, :] + 1
    chosen = summed[y1, x1] - summed[y0, x1] - summed[y1, x0] + summed[y0, x0]
    return chosen == (y1 - y0) * (x1 - x0)


def chosen_rectangles(chosen: np.ndarray, most: int) -> list[tuple[int, int, int, int]]:
    """(top, left, bottom, right) rectangles, at most `most` cells a side, that together cover
    exactly the True cells of `chosen`: runs along each row, joined down while they repeat."""
    most = max(most, 1)
    open_runs: dict[tuple[int, int], int] = {}
    rectangles = []
    for row in range(chosen.shape[0]):
        runs = []
        line = np.concatenate([[False], chosen[row], [False]])
        changes = np.flatnonzero(line[1:] != line[:-1])
        for start, stop in zip(changes[::2], changes[1::2]):
            runs += [(a, min(a + most, stop)) for a in range(start, stop, most)]
        still_open = {}
        for run in runs:
            top = open_runs.pop(run, row)
            if row - top >= most:
                rectangles.append((top, run[0], row, run[1]))
                top = row
            still_open[run] = top
        rectangles += [(top, left, row, right) for (left, right), top in open_runs.items()]
        open_runs = still_open
    rectangles += [(top, left, chosen.shape[0], right) for (left, right), top in open_runs.items()]
    return rectangles


def _view_window(source: np.ndarray, scale: float, x: int, y: int, width: int, height: int,
                 view_height: int, view_width: int) -> np.ndarray:
    """The window at (x, y) of the view (which may start before it or end past it), black past its edges."""
    if scale <= 1:
        window = np.zeros((height, width, 3), np.uint8)
        top, left = max(y, 0), max(x, 0)
        part = source[top : max(y + height, 0), left : max(x + width, 0)]
        window[top - y : top - y + part.shape[0], left - x : left - x + part.shape[1]] = part
        return window
    window = _enlarged(source, scale, x, y, width, height)
    window[max(0, view_height - y) :] = 0
    window[:, max(0, view_width - x) :] = 0
    window[: max(0, -y)] = 0
    window[:, : max(0, -x)] = 0
    return window


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
    return boxes[suppress_overlaps(boxes, iou)] if len(boxes) > 1 else boxes
