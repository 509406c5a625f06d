"""The photos under review as the page sees them, and the checks on every change the page sends.

A photo's record is what the page shows; a change (boxes, method, shape) is taken only once every
box fits the photo and the work it asks for stays bounded, so a page, or anything posing as one,
cannot make an export leave a face or pin a core.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from ..anonymise import Method
from ..check.faces import Maybe
from ..errors import BlurError
from ..regions import Region, Shape

WEAK_SCORE = 0.5
"""Detections scored below this are shown as uncertain and flag their photo for attention.

Measured on wider-dev with the fused scores: 98 % of boxes scoring 0.5-0.7 and all above are faces;
of those scoring 0.17-0.5, 21-79 %. Crowd photos nearly always hold such boxes, so most are flagged."""

PERSON = "person"
"""`Region.source` of a region the person drew. Such a region is covered whole (Shape.RECTANGLE)."""

MAX_REGIONS = 2000
"""Boxes a photo may hold (or as many as were found in it, if more): bounds the work of a preview or export."""

MAX_COVER = 4
"""The boxes' areas may add up to this many times the photo's (or to what the found faces cover, if
more). At the limits, with mosaic (the slower method), a preview takes about 2 s of CPU and a 12-MP
export's anonymise step about 13 s (benchmarks/review_bounds.py)."""


class ReviewError(BlurError):
    """A request about a photo that cannot be met now (not analysed yet, failed, output exists)."""


class InvalidChange(ReviewError):
    """Changes the page should never send: a box outside the photo, too many boxes, an unknown source."""


class NoSuchPhoto(ReviewError):
    """A photo number past the end of the queue."""


@dataclass(frozen=True)
class RegionEdit:
    """A box as the page sends it, in full-resolution photo pixels (not yet checked against the photo)."""

    x0: float
    y0: float
    x1: float
    y1: float
    keep: bool = False
    score: float = 1.0
    source: str = PERSON


@dataclass(frozen=True)
class Changes:
    """What the person changed on one photo; None leaves that part as it was."""

    method: Method | None = None
    shape: Shape | None = None
    regions: tuple[RegionEdit, ...] | None = None


class State(Enum):
    WAITING = "waiting"
    READY = "ready"
    FAILED = "failed"


@dataclass(frozen=True)
class ReviewedRegion:
    """A region as the person left it: `keep` means the face stays visible on purpose."""

    region: Region
    keep: bool = False

    @property
    def weak(self) -> bool:
        return self.region.source != PERSON and self.region.score < WEAK_SCORE


@dataclass
class ReviewPhoto:
    """One photo in the queue and everything the page knows about it."""

    index: int
    source: Path
    destination: Path
    name: str
    state: State = State.WAITING
    error: str | None = None
    width: int = 0
    height: int = 0
    view: bytes = b""
    view_width: int = 0
    view_height: int = 0
    digest: bytes = b""
    detected: int = 0
    detected_area: int = 0
    sources: frozenset[str] = frozenset()
    """The detectors' names on the regions found: with PERSON, the only sources a region may have."""
    weak: int = 0
    regions: list[ReviewedRegion] = field(default_factory=list)
    maybes: list[Maybe] = field(default_factory=list)
    """The second opinion: places outside the boxes found where a face may have been missed, likeliest first."""
    method: Method = Method.MOSAIC
    shape: Shape = Shape.ELLIPSE
    exported: Path | None = None

    @property
    def flags(self) -> list[str]:
        """Why this photo needs a closer look."""
        if self.state is not State.READY:
            return []
        flags = []
        if self.detected == 0:
            flags.append("no-face")
        if self.weak:
            flags.append("uncertain")
        return flags

    @property
    def existing(self) -> bool:
        """A file is already at the destination, and this session did not write it."""
        return self.exported is None and os.path.lexists(self.destination)

    def record(self) -> dict:
        """What the page shows about this photo (JSON-ready)."""
        return {
            "index": self.index,
            "name": self.name,
            "file": self.source.name,
            "state": self.state.value,
            "error": self.error,
            "width": self.width,
            "height": self.height,
            "detected": self.detected,
            "weak": self.weak,
            "flags": self.flags,
            "method": self.method.value,
            "shape": self.shape.value,
            "regions": [_region_record(r) for r in self.regions],
            "maybes": [_maybe_record(rank, m) for rank, m in enumerate(self.maybes, 1)],
            "destination": os.fsdecode(self.destination),
            "exported": os.fsdecode(self.exported) if self.exported else None,
            "existing": self.existing,
        }


def _maybe_record(rank: int, maybe: Maybe) -> dict:
    d = maybe.detection
    return {"rank": rank, "x0": math.floor(d.x0), "y0": math.floor(d.y0), "x1": math.ceil(d.x1), "y1": math.ceil(d.y1),
            "score": round(d.score, 3), "why": maybe.why}


def _region_record(reviewed: ReviewedRegion) -> dict:
    r = reviewed.region
    return {"x0": r.x0, "y0": r.y0, "x1": r.x1, "y1": r.y1, "score": round(r.score, 3), "source": r.source,
            "keep": reviewed.keep, "weak": reviewed.weak}


def reviewed_regions(edits: tuple[RegionEdit, ...], photo: ReviewPhoto) -> list[ReviewedRegion]:
    """The page's boxes as regions of `photo`: whole pixels, clipped to it, within the work bounds.

    A box the person drew (source PERSON) is covered whole, corners included, whatever the shape
    chosen for found faces; any other source must be a detector that found faces in this photo.
    """
    if len(edits) > max(MAX_REGIONS, photo.detected):
        raise InvalidChange(f"a photo can hold at most {max(MAX_REGIONS, photo.detected)} boxes")
    regions = [_reviewed_region(edit, photo) for edit in edits]
    cover = sum(area(r.region, photo.width, photo.height) for r in regions)
    if cover > max(MAX_COVER * photo.width * photo.height, photo.detected_area):
        raise InvalidChange(f"the boxes add up to more than {MAX_COVER} times the photo; remove some that overlap")
    return regions


def _reviewed_region(edit: RegionEdit, photo: ReviewPhoto) -> ReviewedRegion:
    if edit.source != PERSON and edit.source not in photo.sources:
        raise InvalidChange(f"no box in this photo was found by {edit.source[:40]!r}")
    x0, x1 = sorted((math.floor(edit.x0), math.ceil(edit.x1)))
    y0, y1 = sorted((math.floor(edit.y0), math.ceil(edit.y1)))
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, photo.width), min(y1, photo.height)
    if x1 - x0 < 1 or y1 - y0 < 1:
        raise InvalidChange("a region lies outside the photo or is empty")
    drawn = edit.source == PERSON
    region = Region(x0, y0, x1, y1, 1.0 if drawn else edit.score, edit.source, Shape.RECTANGLE if drawn else None)
    return ReviewedRegion(region, edit.keep)


def area(region: Region, width: int, height: int) -> int:
    x0, y0, x1, y1 = region.clipped(height, width)
    return (x1 - x0) * (y1 - y0)


def scaled(region: Region, scale: float) -> Region:
    """`region` in a copy of the image scaled by `scale`, rounded outwards."""
    return dataclasses.replace(region, x0=math.floor(region.x0 * scale), y0=math.floor(region.y0 * scale),
                               x1=math.ceil(region.x1 * scale), y1=math.ceil(region.y1 * scale))
