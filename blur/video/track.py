"""Track: link the faces found in each frame over time, so that every frame also covers a face
the detector missed in it.

Detections in consecutive frames are linked into tracks by the overlap of their boxes (enlarged, so
a moving face still overlaps itself), each box first moved as the camera moved (the median movement
of the faces linked in the frame before, so a pan does not break every track). A frame then covers, for every track: the box found in it;
or, in a gap of up to MAX_GAP frames between two sightings, the box interpolated between them; or,
up to HOLD frames before a track's first sighting and after its last, the nearest box, moved at
the track's speed and grown by HOLD_GROWTH per frame. So a frame's regions are known once the
LOOKAHEAD frames after it have been looked at: the pipeline keeps that many frames in a buffer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..detect import Detection

MAX_GAP = 10
"""Most frames in a row a face may be missed and still be covered from the frames around it (a third
of a second at 30 frames per second): a face found once in 10 frames is covered in all of them."""
HOLD = 10
"""Frames before a face is first found and after it is last found in which it is still covered."""
LOOKAHEAD = max(MAX_GAP, HOLD)
"""Frames decoded ahead of the one being written: the size of the pipeline's frame buffer."""
HOLD_GROWTH = 0.05
"""How much a held box grows per frame away from the sighting, in its own width and height."""
LINK_SCALE = 2.0
"""Boxes are compared enlarged this much about their centres, so a face moving by up to about half
its width between sightings still overlaps itself."""
MIN_LINK_IOU = 0.25
"""Least overlap (intersection over union of the enlarged boxes) for two detections to be one face."""

Box = tuple[float, float, float, float]


@dataclass
class Track:
    """One face over time: its sightings, frame index to (box, score) (the latest ones), and a tally."""

    seen: dict[int, tuple[Box, float]] = field(default_factory=dict)
    start: tuple[int, Box] | None = None
    sightings: int = 0
    best: float = 0.0

    def see(self, index: int, box: Box, score: float) -> None:
        self.seen[index] = (box, score)
        self.start = self.start or (index, box)
        self.sightings += 1
        self.best = max(self.best, score)

    @property
    def first(self) -> int:
        return self.start[0]

    @property
    def last(self) -> int:
        return max(self.seen)

    def velocity(self, at_end: bool, camera: np.ndarray) -> np.ndarray:
        """Movement of the box per frame (dx0, dy0, dx1, dy1) between its last (or first) two sightings;
        the `camera`'s movement for a face seen once."""
        frames = sorted(self.seen)
        if len(frames) < 2:
            return camera
        a, b = (frames[-2], frames[-1]) if at_end else (frames[0], frames[1])
        return (np.array(self.seen[b][0]) - np.array(self.seen[a][0])) / (b - a)


def summary(track: Track) -> dict:
    """A track for a report: frames first and last seen, sightings, its first box, its best score."""
    return {"frames": [track.start[0], track.last], "sightings": track.sightings,
            "box": [round(v) for v in track.start[1]], "score": round(track.best, 4)}


def enlarged(boxes: np.ndarray, scale: float) -> np.ndarray:
    """N×4 boxes (x0, y0, x1, y1) scaled about their centres."""
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    halves = (boxes[:, 2:] - boxes[:, :2]) * scale / 2
    return np.hstack([centres - halves, centres + halves])


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box in N×4 `a` with every box in M×4 `b` (N×M)."""
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def greedy_links(iou: np.ndarray, min_iou: float) -> list[tuple[int, int]]:
    """(row, column) pairs, best overlap first, each row and column used once, all at least `min_iou`."""
    links = []
    if iou.size == 0:
        return links
    order = np.dstack(np.unravel_index(np.argsort(-iou, axis=None), iou.shape))[0]
    rows, cols = set(), set()
    for r, c in order:
        if iou[r, c] < min_iou:
            break
        if r not in rows and c not in cols:
            links.append((int(r), int(c)))
            rows.add(r)
            cols.add(c)
    return links


def grown(box: np.ndarray, factor: float) -> Box:
    """`box` scaled by `factor` about its centre."""
    return tuple(enlarged(box[None, :], factor)[0])


class FaceTracker:
    """Links each frame's detections to the tracks so far; `boxes_at(t)` gives everything to cover in
    frame t, final once frames up to t + LOOKAHEAD have been added (or the video has ended)."""

    def __init__(self, max_gap: int = MAX_GAP, hold: int = HOLD, growth: float = HOLD_GROWTH):
        self.max_gap, self.hold, self.growth = max_gap, hold, growth
        self.tracks: list[Track] = []
        self.finished: list[dict] = []
        self.latest = -1
        self.motion = np.zeros(4)
        """The camera's movement per frame (dx0, dy0, dx1, dy1), as the faces linked in the last frame moved."""

    def add(self, index: int, detections: list[Detection]) -> None:
        """The detections in frame `index` (frames are added in order, each once)."""
        if index != self.latest + 1:
            raise ValueError(f"frame {index} added after frame {self.latest}")
        self.latest = index
        live = [t for t in self.tracks if index - t.last <= self.max_gap + 1]
        found = np.array([[d.x0, d.y0, d.x1, d.y1] for d in detections], float).reshape(-1, 4)
        gaps = np.array([index - t.last for t in live], float).reshape(-1, 1)
        ends = np.array([t.seen[t.last][0] for t in live], float).reshape(-1, 4)
        for _ in range(2):  # link as the camera moved before; then again as the faces linked say it moved
            expected = ends + self.motion * gaps
            links = greedy_links(iou_matrix(enlarged(expected, LINK_SCALE), enlarged(found, LINK_SCALE)), MIN_LINK_IOU)
            if not links:
                break
            rows, columns = np.array(links).T
            self.motion = np.median((found[columns] - ends[rows]) / gaps[rows], axis=0)
        linked = {column: live[row] for row, column in links}
        for column, detection in enumerate(detections):
            track = linked.get(column)
            if track is None:
                track = Track()
                self.tracks.append(track)
            track.see(index, tuple(float(v) for v in found[column]), detection.score)

    def boxes_at(self, index: int) -> list[Detection]:
        """Every box to destroy in frame `index`: sightings, interpolated gaps and held boxes."""
        boxes = []
        for track in self.tracks:
            box = self._box_at(track, index)
            if box is not None:
                boxes.append(box)
        return boxes

    def forget_before(self, index: int) -> None:
        """Drop tracks that can no longer cover frame `index` or any later frame (kept in `finished`)."""
        keep = self.hold + self.max_gap + 1
        self.finished += [summary(t) for t in self.tracks if t.last + keep < index]
        self.tracks = [t for t in self.tracks if t.last + keep >= index]
        for track in self.tracks:  # of the sightings before `index`, only the last two are needed
            for frame in sorted(f for f in track.seen if f < index)[:-2]:
                del track.seen[frame]

    def summaries(self) -> list[dict]:
        """Every face seen: first and last frame it was seen in, sightings, its first box and best score."""
        return self.finished + [summary(t) for t in self.tracks]

    def _box_at(self, track: Track, index: int) -> Detection | None:
        if index in track.seen:
            box, score = track.seen[index]
            return Detection(*box, score, "video")
        before = [f for f in track.seen if f < index]
        after = [f for f in track.seen if f > index]
        if before and after:
            a, b = max(before), min(after)
            fraction = (index - a) / (b - a)
            box = (1 - fraction) * np.array(track.seen[a][0]) + fraction * np.array(track.seen[b][0])
            score = min(track.seen[a][1], track.seen[b][1])
            return Detection(*box, score, "video (between sightings)")
        if after and min(after) - index <= self.hold:
            return self._held(track, track.first, index, at_end=False)
        if before and index - track.last <= self.hold:
            return self._held(track, track.last, index, at_end=True)
        return None

    def _held(self, track: Track, sighting: int, index: int, at_end: bool) -> Detection:
        box, score = track.seen[sighting]
        distance = index - sighting
        moved = np.array(box) + track.velocity(at_end, self.motion) * distance
        return Detection(*grown(moved, 1 + self.growth * abs(distance)), score, "video (held)")
