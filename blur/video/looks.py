"""Looks: which parts of each frame the detector looks at closely.

The coarser levels of the pyramid (faces from COARSE_FACE pixels up, which are plain to see if left)
look at every frame whole: a face that is found in some frames and not in others gets as many
chances as the photo default would give it, and one that enters quickly is found at once. The
finest level (the small faces), where most of the work is, looks at a cell of the picture when it is
due: every cell at least once every REFRESH frames (carried along as the picture moves, so a pan
does not reset it), a changed cell at once (CHANGE_DELAY), a cell that came into the picture within
ENTER_DELAY frames. A cut is looked at whole, in its frame and the next. Each look covers whole
tiles of the finest level (blur.detect.views), so every cell inside the tiles a due cell touches is
looked at too.

A face that was in a cell before it was looked at is covered in those earlier frames by carrying
its box back through them (blur.video.track): the pipeline keeps `lookahead` frames, more than any
cell can wait.
"""

from __future__ import annotations

import numpy as np

from dataclasses import dataclass

from ..detect.views import Areas, Pyramid, chosen_tiles, cells_inside_tiles
from .motion import FlowGrid, Motion

REFRESH = 8
"""Most frames a cell goes without a close look (about four looks a second at 30 frames per second;
Google's Magritte looks five times a second). benchmarks/video.py --refresh measures others."""
CHANGE_DELAY = 0
"""A changed cell (something uncovered or turning, which the motion cannot explain) is looked at
within this many frames."""
ENTER_DELAY = 6
"""A cell that came into the picture is looked at within this many frames (so a strip entering a pan
a few pixels a frame is looked at in one piece, not every frame)."""
COARSE_FACE = 20.0
"""Faces at least this tall (frame pixels) are looked for in every frame, everywhere."""


def lookahead(refresh: int = REFRESH) -> int:
    """Frames the pipeline keeps before writing: a face in a cell is found at most `refresh` frames
    after it came into view (CHANGE_DELAY if it came in moving), then carried back over those frames."""
    return max(refresh, CHANGE_DELAY, ENTER_DELAY) + 2


NEVER = -(10**9)
"""The frame a cell never looked at was last looked at."""


@dataclass(frozen=True, eq=False)
class Look:
    """Where a frame is looked at closely, and when each of its cells was last looked at before it."""

    looked: Areas
    before: np.ndarray
    """Per cell, the last earlier frame in which it was looked at closely (NEVER if none), as the
    picture has moved since."""

    def looked_at(self, boxes: np.ndarray) -> np.ndarray:
        """Whether the centre of each N×4 box was looked at closely in this frame."""
        return self._at_centres(self.looked.cells, boxes).astype(bool)

    def last_looked_before(self, boxes: np.ndarray) -> np.ndarray:
        """The last earlier frame the centre of each N×4 box was looked at closely."""
        return self._at_centres(self.before, boxes)

    def _at_centres(self, grid: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        rows, cols = grid.shape
        x = np.clip(((boxes[:, 0] + boxes[:, 2]) / 2 // self.looked.cell).astype(int), 0, cols - 1)
        y = np.clip(((boxes[:, 1] + boxes[:, 3]) / 2 // self.looked.cell).astype(int), 0, rows - 1)
        return grid[y, x]


class LookPlanner:
    """For each frame in order, the cells the fine levels look at (`plan`)."""

    def __init__(self, grid: FlowGrid, pyramid: Pyramid, refresh: int = REFRESH):
        if refresh < 1:
            raise ValueError(f"refresh must be 1 or more, not {refresh}")
        self.grid, self.pyramid, self.refresh = grid, pyramid, refresh
        self.lookahead = lookahead(refresh)
        self.fine_scale = pyramid.scales((grid.height, grid.width))[0]
        self.coarse_scale = pyramid.model_face / COARSE_FACE
        self.due: np.ndarray | None = None
        """Per cell, the last frame by which it must have been looked at."""
        self.last: np.ndarray | None = None
        """Per cell, the last frame it was looked at."""
        self._after_cut = False
        rows, cols = grid.cells
        self._centres = np.stack(np.meshgrid((np.arange(rows) + 0.5) * grid.cell, (np.arange(cols) + 0.5) * grid.cell,
                                             indexing="ij"), -1)

    def plan(self, index: int, motion: Motion) -> Look:
        """Where to look closely in frame `index` (moved by `motion` from the frame before)."""
        due, last = self._carried(motion, index)
        due[motion.changed] = np.minimum(due[motion.changed], index + CHANGE_DELAY)
        shape = (self.grid.height, self.grid.width)
        tiles = chosen_tiles(shape, self.fine_scale, False, Areas(due <= index, self.grid.cell), self.pyramid.tile)
        looked = cells_inside_tiles(tiles, due.shape, self.grid.cell, shape, self.fine_scale, self.pyramid.tile)
        looked |= due <= index
        due[looked] = index + self.refresh
        if motion.cut:  # a second whole look at the next frame ...
            due[:] = index + 1
        elif self._after_cut:  # ... then looks roll over the picture, not all at once
            due[looked] = (index + 1 + self._stagger())[looked]
        self._after_cut = motion.cut
        self.due = due
        self.last = np.where(looked, index, last)
        return Look(Areas(looked, self.grid.cell), last)

    def owed(self, index: int) -> Look | None:
        """After the last frame, `index`: a look at the cells of it still owed one sooner than the usual
        refresh (changed or come in, and due after it), or None if there are none."""
        owed = self.due < index + self.refresh
        if not owed.any():
            return None
        shape = (self.grid.height, self.grid.width)
        tiles = chosen_tiles(shape, self.fine_scale, False, Areas(owed, self.grid.cell), self.pyramid.tile)
        looked = cells_inside_tiles(tiles, owed.shape, self.grid.cell, shape, self.fine_scale, self.pyramid.tile) | owed
        return Look(Areas(looked, self.grid.cell), self.last)

    def where(self, look: Look):
        """The `where` a detector's partial look takes: coarse levels everywhere, the rest where `look` says."""
        return lambda scale: None if scale <= self.coarse_scale * 1.001 else look.looked

    def _carried(self, motion: Motion, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Deadlines and last looks moved with the picture: each cell takes those of where it was a frame
        before; a cell that was outside the frame is due within ENTER_DELAY frames (at a cut, every cell
        is due now), never looked at."""
        rows, cols = self.grid.cells
        if self.due is None or motion.cut:
            return np.full((rows, cols), index, np.int64), np.full((rows, cols), NEVER, np.int64)
        centres = self._centres.reshape(-1, 2)[:, ::-1]  # (x, y)
        boxes = np.hstack([centres - 0.5, centres + 0.5])
        before = centres + motion.shift_back(boxes)
        col = np.floor(before[:, 0] / self.grid.cell).astype(int)
        row = np.floor(before[:, 1] / self.grid.cell).astype(int)
        inside = (col >= 0) & (col < cols) & (row >= 0) & (row < rows)
        due = np.full(rows * cols, index + ENTER_DELAY, np.int64)
        last = np.full(rows * cols, NEVER, np.int64)
        due[inside] = self.due[row[inside], col[inside]]
        last[inside] = self.last[row[inside], col[inside]]
        return due.reshape(rows, cols), last.reshape(rows, cols)

    def _stagger(self) -> np.ndarray:
        """0 to refresh - 1 frames for each cell, by its column of finest tiles: after a cut, every cell is
        looked at whole in the cut's frame and the next (a face the detector finds in one frame of two is
        found then), then by columns in turn."""
        tile = self.pyramid.tile / self.fine_scale
        columns = np.floor(self._centres[..., 1] / tile).astype(int)
        return columns % self.refresh
