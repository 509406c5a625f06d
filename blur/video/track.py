"""Track: faces followed over time, so a frame also covers a face the detector did not find in it.

Every candidate the detector reports near its bar starts or continues a track. A track is carried
from frame to frame by the picture's own motion (blur.video.motion: the flow over its box, or the
camera's movement where the box changed), its box growing only by how unsure that motion is. A track
becomes a face to destroy when one of its candidates clears the detector's bar; it is then destroyed
in every frame it was carried through, in the frames kept before it (carried back over them, so a
face found a few frames after it came into view is covered from the start), and for a hold after its
last sighting that grows with how often it was seen: a face seen in many frames is held longer than
one weak sighting. Between two sightings a face is covered whatever the gap, as long as the frames in
between are still kept. A cut ends every track.

All tracks live in arrays, one row each, with a ring of boxes over the frames kept, so a frame of a
crowd with a thousand faces costs a few array operations, not a thousand Python objects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..detect.fusion import iou_rows, overlapping_pairs
from .looks import COARSE_FACE, REFRESH, Look
from .motion import Motion

HOLD_SIGHTED = REFRESH + 2
"""Frames a face seen once is still covered after it was last supported, if no close look finds it
gone first (see `hold`, `misses_allowed`): until its place is looked at again."""
HOLD_PER_SUPPORT = 3
"""Frames added to the hold for each further frame in which the face was supported."""
HOLD_MOST = 30
"""The longest hold: a second at 30 frames per second."""
LINK_SHARE = 0.5
"""A candidate scoring this share of the detector's bar continues the track it lies on (the track is
carried on from it), but starts nothing."""
SUPPORT_SHARE = 0.8
"""A candidate scoring this share of the bar supports the track it lies on: a face is covered for its
hold after its last support."""
START_SHARE = 0.8
"""A candidate scoring this share of the bar, on no track, starts a track, not destroyed until a
candidate on it clears the bar (then in the kept frames before too)."""
STRONG = 2.0
"""A face scoring this many times its bar once, or seen twice, is sure (see `misses_allowed`)."""
PLAIN = 20.0
"""A face at least this tall (frame pixels) is plain to see if left: it is held through one more
close look that does not find it (see `misses_allowed`)."""
BACK_MARGIN = 2
"""A face just found is covered back to this many frames before the last close look at its place that
did not find it (and at most as far as frames are kept): a look may miss a face by a frame."""
GROWTH = 0.25
"""A carried box grows on every side by this share of how far it moved unlike the camera in the
frame: a face walking may change its pace or turn, one in a still crowd does not (its box carried
by the camera's motion alone does not grow)."""
CHANGED_GROWTH = 0.2
"""A carried box over a changed part of the picture grows by this share a frame: the face may be half
hidden and coming out (up to MOST_GROWN)."""
EDGE_REACH = 24.0
"""Frame pixels from the picture's edge within which a small face's box is stretched to the edge."""
MOST_GROWN = 2.0
"""A carried box is at most this many times the width and height of the box last found on it."""
SHRINK = 0.9
"""A face's box shrinks by at most this much a sighting: a sighting much smaller than the box it
continues is most often of part of the face (half hidden, or cut by the picture's edge)."""
DUPLICATE_IOU = 0.5
"""Two tracks whose boxes overlap this much are one face."""
LINK_SCALE = 1.5
"""Boxes are compared enlarged this much about their centres, as a carried box may be a little off."""
MIN_LINK_IOU = 0.3
"""Least overlap (intersection over union of the enlarged boxes) for a candidate to continue a track."""


def misses_allowed(sightings: np.ndarray, strength: np.ndarray, height: np.ndarray) -> np.ndarray:
    """Close looks in a row that find nothing on a face after which it is no longer covered: one for a
    small face seen once, one more if it was seen twice or scored STRONG times its bar, one more if it
    is PLAIN to see. A look finds again most faces it found before; what it does not find again was
    more likely a pattern than a face, which only smears the frame."""
    return 1 + ((sightings > 1) | (strength >= STRONG)) + (height >= PLAIN)


def hold(supports: np.ndarray) -> np.ndarray:
    """Frames a face is covered after its last support, by how many frames supported it."""
    return np.minimum(HOLD_SIGHTED + HOLD_PER_SUPPORT * (np.maximum(supports, 1) - 1), HOLD_MOST)


@dataclass(frozen=True)
class Candidates:
    """What the detector reported in one frame: N×5 (x0, y0, x1, y1, score) and each one's bar."""

    boxes: np.ndarray
    bars: np.ndarray

    @classmethod
    def none(cls) -> "Candidates":
        return cls(np.empty((0, 5)), np.empty(0))


class Tracks:
    """The tracks of one video. Frames are added in order (`step`); `boxes_at(i)` is final once frame
    i + `keep` has been added (or the video has ended), and frames are let go with `release(i)`."""

    def __init__(self, keep: int, height: int, width: int):
        self.keep, self.height, self.width = keep, height, width
        self.ring = keep + 1
        self.latest = -1
        self.released = -1
        self.box = np.empty((0, self.ring, 4), np.float32)
        """Per track, its box in each kept frame (ring indexed by frame % ring)."""
        self.known = np.empty((0, self.ring), bool)
        """Whether the track has a box in that frame."""
        self.covered = np.empty((0, self.ring), bool)
        """Whether that box is destroyed in that frame."""
        self.score = np.empty((0, self.ring), np.float32)
        self.first = np.empty(0, np.int64)
        self.last = np.empty(0, np.int64)
        """Latest frame the track has a box in (carried or seen)."""
        self.supported = np.empty(0, np.int64)
        """Latest frame a candidate supported the track."""
        self.seen = np.empty(0, np.int64)
        """Latest frame a candidate continued the track."""
        self.misses = np.empty(0, np.int64)
        """Close looks in a row at the track that found nothing on it."""
        self.strength = np.empty(0, np.float32)
        """Its best score over its bar."""
        self.supports = np.empty(0, np.int64)
        self.sightings = np.empty(0, np.int64)
        self.best = np.empty(0, np.float32)
        self.sure = np.empty(0, bool)
        """Cleared the bar once: a face to destroy."""
        self.start = np.empty((0, 4), np.float32)
        self.size = np.empty((0, 2), np.float32)
        """Width and height of the box last found on the track."""
        self.finished: list[dict] = []
        self.motions: dict[int, Motion] = {}

    def __len__(self) -> int:
        return len(self.first)

    def step(self, index: int, motion: Motion, found: Candidates, look: Look | None = None) -> None:
        """Frame `index`: carry the tracks into it, link what the detector found where `look` looked
        closely (everywhere if None), start new tracks."""
        if index != self.latest + 1:
            raise ValueError(f"frame {index} added after frame {self.latest}")
        self.latest = index
        self.motions[index] = motion
        self._carry(index, motion)
        self.look_again(found, look)

    def look_again(self, found: Candidates, look: Look | None) -> None:
        """What another close look at the latest frame found (in the areas of `look`)."""
        index = self.latest
        self._link(index, self.motions[index], found, look)
        self._retire_duplicates(index)
        slot = index % self.ring
        allowed = misses_allowed(self.sightings, self.strength, self.size[:, 1])
        live = self.known[:, slot] & self.sure & (self.misses < allowed)
        self.covered[:, slot] |= live & (index - self.supported <= hold(self.supports))

    def boxes_at(self, index: int) -> np.ndarray:
        """N×5 (x0, y0, x1, y1, score) to destroy in frame `index` (still kept)."""
        if not self.latest - self.keep <= index <= self.latest or index <= self.released:
            raise ValueError(f"frame {index} is not kept")
        slot = index % self.ring
        chosen = self.covered[:, slot]
        return np.column_stack([self.box[chosen, slot], self.score[chosen, slot]])

    def release(self, index: int) -> None:
        """Frame `index` was written: free its slot; drop tracks that can no longer touch a frame to come."""
        slot = index % self.ring
        self.known[:, slot] = self.covered[:, slot] = False
        self.motions.pop(index, None)
        self.released = index
        gone = self.last <= index
        if gone.any():
            self.finished += [self._summary(i) for i in np.flatnonzero(gone & self.sure)]
            self._keep_rows(~gone)

    def summaries(self) -> list[dict]:
        """Every face destroyed: first and last frame it was seen or carried in, sightings, first box, best score."""
        return self.finished + [self._summary(i) for i in np.flatnonzero(self.sure)]

    def _summary(self, i: int) -> dict:
        return {"frames": [int(self.first[i]), int(self.last[i])], "sightings": int(self.sightings[i]),
                "box": [round(float(v)) for v in self.start[i]], "score": round(float(self.best[i]), 4)}

    def _carry(self, index: int, motion: Motion) -> None:
        """Move every track that may still matter into frame `index` (none across a cut)."""
        previous, slot = (index - 1) % self.ring, index % self.ring
        self.known[:, slot] = self.covered[:, slot] = False
        if motion.cut or not len(self):
            return
        limit = np.where(self.sure, np.maximum(hold(self.supports) + self.supported - self.seen, 0) + self.keep,
                         self.keep)
        moving = self.known[:, previous] & (index - self.seen <= limit)
        if not moving.any():
            return
        boxes = self.box[moving, previous].astype(np.float64)
        carried = motion.carried_forward(boxes)
        grow = GROWTH * motion.own_motion(carried)
        carried += np.column_stack([-grow, -grow, grow, grow])
        carried = self._unsure(_at_most(self._unsure(carried, motion), self.size[moving] * MOST_GROWN), None)
        inside = (carried[:, 2] > 0) & (carried[:, 3] > 0) & (carried[:, 0] < self.width) & (carried[:, 1] < self.height)
        rows = np.flatnonzero(moving)[inside]
        self.box[rows, slot] = carried[inside]
        self.score[rows, slot] = self.score[rows, previous]
        self.known[rows, slot] = True
        self.last[rows] = index

    def _link(self, index: int, motion: Motion, found: Candidates, look: Look | None) -> None:
        slot = index % self.ring
        rows = np.flatnonzero(self.known[:, slot])
        looked = rows if look is None else rows[look.looked_at(self.box[rows, slot].astype(np.float64))]
        self.misses[looked] += 1  # undone below for those a candidate continues
        boxes, scores, bars = found.boxes[:, :4].astype(np.float64), found.boxes[:, 4], found.bars
        kept = scores >= LINK_SHARE * bars
        boxes, scores, bars = boxes[kept], scores[kept], bars[kept]
        exact = np.ones(len(boxes), bool) if look is None else \
            look.looked_at(boxes) | (boxes[:, 3] - boxes[:, 1] >= COARSE_FACE)
        links = _links(self.box[rows, slot].astype(np.float64), boxes)
        matched = np.zeros(len(boxes), bool)
        if len(links):
            track, candidate = rows[links[:, 0]], links[:, 1]
            self.misses[track] = 0
            self.strength[track] = np.maximum(self.strength[track], scores[candidate] / bars[candidate])
            matched[candidate] = True
            clear = scores[candidate] >= bars[candidate]
            support = scores[candidate] >= SUPPORT_SHARE * bars[candidate]
            # a candidate that clears the bar in a close look is where the face is; a weaker one (often a
            # part of the face), or one the coarse views alone found on a small face, only says the face is
            # still there: the box carried by the motion stays
            placing = clear & exact[candidate]
            placed, sighted = track[placing], self._unsure(boxes[candidate[placing]], motion)
            self.box[placed, slot] = _at_least(sighted, SHRINK * (self.box[placed, slot, 2:] - self.box[placed, slot, :2]))
            self.size[placed] = self.box[placed, slot, 2:] - self.box[placed, slot, :2]
            self.score[placed, slot] = scores[candidate[placing]]
            self.seen[track] = index
            self.supported[track[support]] = index
            self.supports[track[support]] += 1
            self.sightings[track] += clear
            self.best[track] = np.maximum(self.best[track], scores[candidate])
            self._cover_gaps(track[support & self.sure[track]], index)
            newly = track[clear & ~self.sure[track]]
            self.sure[newly] = True
            self._cover_back(newly, index, look)
        new = ~matched & (scores >= START_SHARE * bars)
        self._start(index, self._unsure(boxes[new], motion), scores[new], bars[new], look)

    def _unsure(self, boxes: np.ndarray, motion: Motion | None) -> np.ndarray:
        """Boxes grown where they may show only part of a face: by CHANGED_GROWTH where the picture
        changed under them (a face coming out from behind something), and to the picture's edge
        near it (a face coming in)."""
        if motion is not None:
            changed = motion.changed_under(boxes)
            boxes = boxes.copy()
            boxes[changed] = _at_least(boxes[changed], (1 + CHANGED_GROWTH) * (boxes[changed, 2:] - boxes[changed, :2]))
        return _to_edges(boxes, self.height, self.width)

    def _retire_duplicates(self, index: int) -> None:
        """Of two tracks on one face (their boxes overlapping by DUPLICATE_IOU), carry on only one: the one
        supported in this frame, else the surer one; the other keeps what it covered in earlier frames but
        goes no further."""
        slot = index % self.ring
        rows = np.flatnonzero(self.known[:, slot])
        if len(rows) < 2:
            return
        boxes = self.box[rows, slot].astype(np.float64)
        a, b = overlapping_pairs(boxes, boxes, DUPLICATE_IOU)
        pairs = a < b
        a, b = rows[a[pairs]], rows[b[pairs]]
        if not len(a):
            return
        # found in this very frame first (the other may be a face lost behind something), then sure, then seen most
        rank = (self.supported == index) * 1e12 + self.sure * 1e9 + self.supports * 1e3 + self.strength
        weaker = np.where(rank[a] >= rank[b], b, a)
        stronger = np.where(rank[a] >= rank[b], a, b)
        retired = set()
        for weak, strong in zip(weaker.tolist(), stronger.tolist()):
            if weak not in retired and strong not in retired:
                retired.add(weak)
        retired = np.fromiter(retired, int)
        self.known[retired, slot] = self.covered[retired, slot] = False

    def _start(self, index: int, boxes: np.ndarray, scores: np.ndarray, bars: np.ndarray, look: Look | None) -> None:
        clear = scores >= bars
        count = len(boxes)
        if not count:
            return
        first = len(self)
        slot = index % self.ring
        self.box = np.concatenate([self.box, np.zeros((count, self.ring, 4), np.float32)])
        self.known = np.concatenate([self.known, np.zeros((count, self.ring), bool)])
        self.covered = np.concatenate([self.covered, np.zeros((count, self.ring), bool)])
        self.score = np.concatenate([self.score, np.zeros((count, self.ring), np.float32)])
        self.first = np.concatenate([self.first, np.full(count, index)])
        self.last = np.concatenate([self.last, np.full(count, index)])
        self.supported = np.concatenate([self.supported, np.full(count, index)])
        self.seen = np.concatenate([self.seen, np.full(count, index)])
        self.misses = np.concatenate([self.misses, np.zeros(count, np.int64)])
        self.strength = np.concatenate([self.strength, (scores / bars).astype(np.float32)])
        self.supports = np.concatenate([self.supports, np.ones(count, np.int64)])
        self.sightings = np.concatenate([self.sightings, clear.astype(np.int64)])
        self.best = np.concatenate([self.best, scores.astype(np.float32)])
        self.sure = np.concatenate([self.sure, clear])
        self.start = np.concatenate([self.start, boxes.astype(np.float32)])
        self.size = np.concatenate([self.size, (boxes[:, 2:] - boxes[:, :2]).astype(np.float32)])
        rows = np.arange(first, first + count)
        self.box[rows, slot] = boxes
        self.score[rows, slot] = scores
        self.known[rows, slot] = True
        self._cover_back(rows[clear], index, look)

    def _cover_gaps(self, rows: np.ndarray, index: int) -> None:
        """Faces seen again: destroy them in every kept frame since they were last covered."""
        for frame in range(max(index - self.keep, self.released + 1), index):
            slot = frame % self.ring
            self.covered[rows, slot] |= self.known[rows, slot]

    def _cover_back(self, rows: np.ndarray, index: int, look: Look | None) -> None:
        """Faces just found: destroy them in the kept frames before, back to BACK_MARGIN frames before
        the last close look at their place, carried back where they had no box."""
        if not len(rows):
            return
        boxes = self.box[rows, index % self.ring].astype(np.float64)
        last = np.full(len(rows), index - 1) if look is None else look.last_looked_before(boxes)
        for frame in range(index - 1, max(index - self.keep, self.released + 1) - 1, -1):
            motion = self.motions.get(frame + 1)
            if motion is None or motion.cut:
                break
            slot = frame % self.ring
            known = self.known[rows, slot]
            carried = motion.carried_back(boxes)
            boxes = np.where(known[:, None], self.box[rows, slot], carried)
            wanted = frame > last - BACK_MARGIN
            if not wanted.any():
                break
            chosen = rows[wanted]
            self.box[chosen, slot] = boxes[wanted]
            fresh = chosen[~known[wanted]]
            self.score[fresh, slot] = self.score[fresh, index % self.ring]
            self.known[chosen, slot] = True
            self.covered[chosen, slot] = True
            self.first[chosen] = np.minimum(self.first[chosen], frame)

    def _keep_rows(self, keep: np.ndarray) -> None:
        for name in ("box", "known", "covered", "score", "first", "last", "supported", "seen", "misses", "strength", "supports", "sightings",
                     "best", "sure", "start", "size"):
            setattr(self, name, getattr(self, name)[keep])


def _at_most(boxes: np.ndarray, size: np.ndarray) -> np.ndarray:
    """N×4 boxes shrunk about their centres to at most N×2 `size` (width, height)."""
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    halves = np.minimum(boxes[:, 2:] - boxes[:, :2], size) / 2
    return np.hstack([centres - halves, centres + halves])


def _to_edges(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """N×4 boxes within their own size (at most EDGE_REACH) of the picture's edge stretched to it: a
    face cut by the edge may show more of itself in the next frames (coming in) than when it was found."""
    boxes = boxes.copy()
    reach = np.minimum(boxes[:, 2:] - boxes[:, :2], EDGE_REACH)
    boxes[:, 0] = np.where(boxes[:, 0] < reach[:, 0], np.minimum(boxes[:, 0], 0), boxes[:, 0])
    boxes[:, 1] = np.where(boxes[:, 1] < reach[:, 1], np.minimum(boxes[:, 1], 0), boxes[:, 1])
    boxes[:, 2] = np.where(boxes[:, 2] > width - reach[:, 0], np.maximum(boxes[:, 2], width), boxes[:, 2])
    boxes[:, 3] = np.where(boxes[:, 3] > height - reach[:, 1], np.maximum(boxes[:, 3], height), boxes[:, 3])
    return boxes


def _at_least(boxes: np.ndarray, size: np.ndarray) -> np.ndarray:
    """N×4 boxes grown about their centres to at least N×2 `size` (width, height)."""
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    halves = np.maximum(boxes[:, 2:] - boxes[:, :2], size) / 2
    return np.hstack([centres - halves, centres + halves])


def _links(tracks: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """K×2 (track row, candidate row) pairs, best overlap first, each used once."""
    if not len(tracks) or not len(candidates):
        return np.empty((0, 2), int)
    a, b = _enlarged(candidates, LINK_SCALE), _enlarged(tracks, LINK_SCALE)
    candidate, track = overlapping_pairs(a, b, MIN_LINK_IOU)
    if not len(candidate):
        return np.empty((0, 2), int)
    overlap = iou_rows(a[candidate], b[track])
    links, used_tracks, used_candidates = [], set(), set()
    for i in np.argsort(-overlap, kind="stable"):
        t, c = int(track[i]), int(candidate[i])
        if t not in used_tracks and c not in used_candidates:
            links.append((t, c))
            used_tracks.add(t)
            used_candidates.add(c)
    return np.array(links, int)


def _enlarged(boxes: np.ndarray, scale: float) -> np.ndarray:
    centres = (boxes[:, :2] + boxes[:, 2:4]) / 2
    halves = (boxes[:, 2:4] - boxes[:, :2]) * scale / 2
    return np.hstack([centres - halves, centres + halves])
