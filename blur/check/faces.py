"""The face half of the check: a gate on what blur's default would destroy, and a second opinion.

The gate: every candidate the default detector scores at or above blur's own bar (its default
threshold, sized as blur sizes it) fails the check, unless the middle of its box
carries the stripes blur lays over every region it destroys (blur.anonymise.STRIPES): a mark that
survives the camera step's resampling and JPEG encoding, which no face carries, found at any size.

The second opinion points at what the pipeline may have missed: candidates under the bar and
candidates of another model (YuNet, when installed), outside what is destroyed, ranked by how
face-like they are, a handful per photo. They never fail the check: they are for a person to look at.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from ..anonymise import STRIPE_LEVELS, STRIPES
from ..detect import DEFAULT_DETECTOR, Detection, Detector, load_detector
from ..detect.centerface import DEFAULT_THRESHOLD
from ..detect.fusion import SizedThreshold
from ..errors import DetectorUnavailable

MAYBE_THRESHOLD = 0.03
"""The second opinion's bar for CenterFace (sized like blur's): far under blur's 0.08."""
MAYBES = 5
"""Candidates of the second opinion shown per photo, best first."""
FLAT_LEVELS = 2.0
"""A middle whose brightness varies this little is flat (the solid method): no face can be seen in it."""
STRIPE_WINDOW = 3.0
"""Standard deviation (pixels) of the window in which the stripes are measured around each pixel."""
STRIPE_CONTRAST = 2.0
"""A pixel carries the stripes when their amplitude there is this many times that of the nearby bands."""
STRIPED_SHARE = 0.5
"""A candidate is destroyed when this share of the middle of its box carries the stripes."""
_BANDS = ((STRIPES[0] / 3, STRIPES[1] / 3), (STRIPES[0] * 5 / 3, STRIPES[1] * 5 / 3), (STRIPES[0], -STRIPES[1]))
"""Frequencies beside the stripes' (same direction, a third and five thirds of it; across them): a
face's edges and texture put about as much there as at the stripes' frequency, the fill nearly nothing."""


@dataclass(frozen=True)
class FaceCandidate:
    """Something the gate's detector scores at or above its bar, and whether it is already destroyed."""

    detection: Detection
    destroyed: bool
    """True when the middle of the box carries the stripes of a region the tool destroyed (or is flat)."""


@dataclass(frozen=True)
class Maybe:
    """A place the second opinion asks a person to look at: perhaps a face the pipeline missed."""

    detection: Detection
    """Its box; `score` is how face-like it is (0-1, the higher the likelier), `source` who saw it."""
    why: str


@dataclass(frozen=True)
class FaceLook:
    """What the check saw in one photo: the gate's candidates and the second opinion's maybes."""

    candidates: tuple[FaceCandidate, ...]
    maybes: tuple[Maybe, ...]


def find_face_candidates(pixels: np.ndarray, detector: Detector | None = None) -> list[FaceCandidate]:
    """The gate's candidates in upright RGB `pixels`, best first (`detector`: blur's default if None)."""
    if detector is None:
        return list(look_for_faces(pixels).candidates)
    found = sorted(detector.detect(pixels), key=lambda d: -d.score)
    grey = _grey(pixels) if found else None
    return [FaceCandidate(d, _is_destroyed(grey, d)) for d in found]


def look_for_faces(pixels: np.ndarray, bar: float | None = None, maybes: int | None = None) -> FaceLook:
    """The gate's candidates and the second opinion's best `maybes` in upright RGB `pixels`.

    `bar` is the threshold for small boxes (default blur's)."""
    above, below = _split_at_bar(pixels, {}, bar or DEFAULT_THRESHOLD)
    grey = _grey(pixels)
    candidates = [FaceCandidate(d, _is_destroyed(grey, d)) for d in above]
    count = MAYBES if maybes is None else maybes
    return FaceLook(tuple(candidates), tuple(rank_maybes(grey, below + _yunet_maybes(pixels), candidates, count)))


def second_opinion(pixels: np.ndarray, covered: list, maybes: int = MAYBES, options: dict | None = None) -> list[Maybe]:
    """The second opinion on a photo before it is anonymised: the `maybes` most face-like places
    outside the `covered` boxes (anything with x0, y0, x1, y1: the regions to destroy).

    `options` are the detector options blur runs with (min_face, fast): the second opinion looks
    with the same views, at its lower bar (MAYBE_THRESHOLD, or under a lower threshold chosen)."""
    options = dict(options or {})
    _, below = _split_at_bar(pixels, options, options.pop("threshold", DEFAULT_THRESHOLD))
    taken = [FaceCandidate(Detection(r.x0, r.y0, r.x1, r.y1, 1.0), True) for r in covered]
    return rank_maybes(_grey(pixels), below + _yunet_maybes(pixels), taken, maybes)


def _split_at_bar(pixels: np.ndarray, options: dict, bar: float) -> tuple[list[Detection], list[Maybe]]:
    """CenterFace's candidates (with `options`) at or above `bar` (sized as blur sizes it), best first,
    and those under it as maybes scored by their share of the bar. One pass at the second opinion's
    lower bar serves both: a detector's threshold only filters its fused boxes."""
    low = load_detector(DEFAULT_DETECTOR, **options, threshold=min(MAYBE_THRESHOLD, bar / 2))
    sized = SizedThreshold(bar)
    above, below = [], []
    for d in sorted(low.detect(pixels), key=lambda d: -d.score):
        share = d.score / float(sized.at(np.float32(d.y1 - d.y0)))
        if share >= 1:
            above.append(d)
        else:
            below.append(Maybe(_with_score(d, share), "CenterFace, under blur's bar"))
    return above, below


def rank_maybes(grey: np.ndarray, maybes: list[Maybe], candidates: list[FaceCandidate], count: int) -> list[Maybe]:
    """The `count` most face-like maybes that are neither destroyed nor already a gate candidate,
    one per place (the best of those overlapping)."""
    taken = [c.detection for c in candidates]
    kept: list[Maybe] = []
    for maybe in sorted(maybes, key=lambda m: -m.detection.score):
        if len(kept) == count:
            break
        box = maybe.detection
        if any(_overlap(box, other) >= 0.3 for other in taken) or _is_destroyed(grey, box):
            continue
        taken.append(box)
        kept.append(maybe)
    return kept


def looks_destroyed(pixels: np.ndarray, box: Detection) -> bool:
    """Whether the middle of `box` in RGB `pixels` is a region the tool destroyed (stripes, or flat)."""
    return _is_destroyed(_grey(pixels), box)


def stripe_share(grey: np.ndarray, box: Detection) -> float:
    """The share of the middle 5/8 of `box` (in a grey float image) that carries the fill's stripes."""
    middle = _middle(grey, box, int(3 * STRIPE_WINDOW + 4))
    if middle is None:
        return 0.0
    crop, rows, cols = middle
    # What a 5×5 median leaves is grain and stripes: the steps between overlapping regions' colours,
    # which would swamp every band in a crowd of small regions, stay in the median.
    high = crop - cv2.medianBlur(np.clip(crop, 0, 255).astype(np.uint8), 5).astype(np.float32)
    stripes = _amplitude(high, STRIPES)[rows, cols]
    beside = np.max([_amplitude(high, band)[rows, cols] for band in _BANDS], axis=0)
    return float(np.mean((stripes > STRIPE_CONTRAST * (beside + 0.5)) & (stripes > STRIPE_LEVELS / 4)))


def _is_destroyed(grey: np.ndarray, box: Detection) -> bool:
    middle = _middle(grey, box, 0)
    if middle is None:
        return False  # nothing to measure: never called destroyed
    crop, rows, cols = middle
    return bool(np.ptp(crop[rows, cols]) <= FLAT_LEVELS or stripe_share(grey, box) >= STRIPED_SHARE)


def _middle(grey: np.ndarray, box: Detection, margin: int):
    """(crop around `box` with `margin` pixels more, rows, cols of the box's middle 5/8 in it), or None."""
    left, top = int(max(np.floor(box.x0) - margin, 0)), int(max(np.floor(box.y0) - margin, 0))
    right = int(min(np.ceil(box.x1) + margin, grey.shape[1]))
    bottom = int(min(np.ceil(box.y1) + margin, grey.shape[0]))
    width, height = box.x1 - box.x0, box.y1 - box.y0
    r0, r1 = int(round(box.y0 + height * 3 / 16)) - top, int(round(box.y0 + height * 13 / 16)) - top
    c0, c1 = int(round(box.x0 + width * 3 / 16)) - left, int(round(box.x0 + width * 13 / 16)) - left
    r0, c0 = max(r0, 0), max(c0, 0)
    r1, c1 = min(r1, bottom - top), min(c1, right - left)
    if r1 - r0 < 2 or c1 - c0 < 2:
        return None
    return np.ascontiguousarray(grey[top:bottom, left:right]), slice(r0, r1), slice(c0, c1)


def _amplitude(high: np.ndarray, cycles: tuple[float, float]) -> np.ndarray:
    """Local amplitude of the component of `high` at `cycles` (per pixel along x, y), by demodulation."""
    height, width = high.shape
    angle = 2 * np.pi * (cycles[0] * np.arange(width)[None, :] + cycles[1] * np.arange(height)[:, None])
    real = cv2.GaussianBlur((high * np.cos(angle)).astype(np.float32), (0, 0), STRIPE_WINDOW)
    imaginary = cv2.GaussianBlur((high * np.sin(angle)).astype(np.float32), (0, 0), STRIPE_WINDOW)
    return 2 * np.sqrt(real * real + imaginary * imaginary)


def _grey(pixels: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY).astype(np.float32)


def _with_score(d: Detection, score: float) -> Detection:
    return Detection(d.x0, d.y0, d.x1, d.y1, float(score), d.source)


def _overlap(a: Detection, b: Detection) -> float:
    """Intersection over the smaller box."""
    width = max(0.0, min(a.x1, b.x1) - max(a.x0, b.x0))
    height = max(0.0, min(a.y1, b.y1) - max(a.y0, b.y0))
    smaller = min((a.x1 - a.x0) * (a.y1 - a.y0), (b.x1 - b.x0) * (b.y1 - b.y0))
    return width * height / smaller if smaller > 0 else 0.0


@functools.cache
def _yunet() -> Detector | None:
    from ..detect.yunet import YuNet

    try:
        return YuNet()
    except DetectorUnavailable:
        return None


def _yunet_maybes(pixels: np.ndarray) -> list[Maybe]:
    model = _yunet()
    return [Maybe(d, "YuNet, another face model") for d in model.detect(pixels)] if model is not None else []


def second_opinion_models() -> list[str]:
    """The models the second opinion uses here."""
    return ["centerface"] + (["yunet"] if _yunet() is not None else [])
