"""A review session: the photos a person checks, their detected regions, and their export.

Everything here lives in memory. Full-resolution pixels are held only while one photo is being
analysed or exported; what stays is a downscaled JPEG for display (built from the pixel array, so
it carries no metadata), the regions, and a hash of the source file so an export applies the
reviewed regions to the very photo that was reviewed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import math
import os
import stat
import threading
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Iterable

import numpy as np
from PIL import Image

from ..anonymise import Method, anonymise
from ..jobs import Job, plan_jobs
from ..kinds import Kind
from ..check import find_metadata
from ..check.faces import Maybe, second_opinion
from ..decode import decode_photo, max_file_bytes, pillow_pixel_limit, read_file
from ..detect import Detector
from ..errors import BlurError, OutputError
from ..pipeline import Settings, anonymise_file, find_regions
from ..regions import Region, Shape

VIEW_LONG_SIDE = 1600
"""Longest side, in pixels, of the copy sent to the page: big photos stay quick to show."""

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

_VIEW_QUALITY = 88

REVIEW_MAYBES = 8
"""Places the second opinion points at per photo in the review: a few more than `blur check` lists,
since a person steps through them with one key each."""


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


class ReviewSession:
    """The queue of photos under review. Thread-safe: the page's requests arrive on many threads.

    Photos are analysed (decoded, searched for faces, downscaled) one at a time by `analyse_next`,
    which a background thread calls; the photo the page asks for is analysed first.
    """

    def __init__(
        self,
        paths: Iterable[str | Path],
        settings: Settings = Settings(),
        *,
        output_dir: str | Path | None = None,
        random_names: bool = False,
        overwrite: bool = False,
        detector: Detector | None = None,
    ):
        self.settings = settings
        self.overwrite = overwrite
        self._detector = detector
        self._lock = threading.Lock()
        self._analysing = threading.Lock()
        self._exporting = threading.Lock()  # one export at a time: modest CPU, no race on one output
        self._previewing = threading.Lock()  # one preview at a time: many requests queue, not multiply
        self._wanted: int | None = None
        jobs = [job for job in plan_jobs(paths, output_dir, random_names=random_names)
                if job.kind is not Kind.VIDEO]  # videos are not reviewed: `blur check` them
        self.photos = [_photo_for(i, job, settings) for i, job in enumerate(jobs)]

    # --- analysis -------------------------------------------------------------------------------

    def want(self, index: int) -> None:
        """Ask for photo `index` to be analysed before the others."""
        self.photo(index)
        self._wanted = index

    def analyse_next(self) -> bool:
        """Analyse one waiting photo (the wanted one first); False when none is left."""
        with self._analysing:
            with self._lock:
                waiting = [p for p in self.photos if p.state is State.WAITING]
                if not waiting:
                    return False
                wanted = self._wanted
                photo = next((p for p in waiting if p.index == wanted), waiting[0])
            self._analyse(photo)
            return True

    def analyse_all(self) -> None:
        while self.analyse_next():
            pass

    def _analyse(self, photo: ReviewPhoto) -> None:
        try:
            data = photo.source.read_bytes()
            decoded = decode_photo(data, max_pixels=self.settings.max_pixels)
            detector = self._detector or self.settings.load_detector()
            regions = find_regions(decoded.pixels, self.settings, detector)
            maybes = second_opinion(decoded.pixels, regions, REVIEW_MAYBES, self.settings.detector_options)
            view, view_width, view_height = _view_jpeg(decoded.pixels)
        except BlurError as exc:
            self._fail(photo, str(exc))
            return
        except OSError as exc:
            self._fail(photo, f"cannot read the file ({exc.strerror or exc})")
            return
        except MemoryError:
            self._fail(photo, "ran out of memory reading this photo")
            return
        except Exception as exc:  # fail closed: the photo cannot be reviewed, so it cannot be exported
            self._fail(photo, f"unexpected error ({type(exc).__name__}: {exc})")
            return
        with self._lock:
            photo.width, photo.height = decoded.width, decoded.height
            photo.view, photo.view_width, photo.view_height = view, view_width, view_height
            photo.digest = hashlib.sha256(data).digest()
            photo.regions = [ReviewedRegion(r) for r in regions]
            photo.maybes = maybes
            photo.detected = len(regions)
            photo.detected_area = sum(_area(r, photo.width, photo.height) for r in regions)
            photo.sources = frozenset(r.source for r in regions)
            photo.weak = sum(r.weak for r in photo.regions)
            photo.state = State.READY

    def _fail(self, photo: ReviewPhoto, message: str) -> None:
        with self._lock:
            photo.state, photo.error = State.FAILED, message

    # --- what the page reads and changes --------------------------------------------------------

    def photo(self, index: int) -> ReviewPhoto:
        if not 0 <= index < len(self.photos):
            raise NoSuchPhoto(f"there is no photo number {index + 1}")
        return self.photos[index]

    def records(self) -> list[dict]:
        with self._lock:
            return [p.record() for p in self.photos]

    def record(self, index: int) -> dict:
        with self._lock:
            return self.photo(index).record()

    def view(self, index: int) -> bytes:
        """The downscaled display copy of photo `index` (JPEG bytes)."""
        with self._lock:
            return self._ready(index).view

    def update(self, index: int, changes: Changes) -> dict:
        """Store the person's regions, method and shape for photo `index`; InvalidChange if they
        do not fit the photo (then nothing changes)."""
        with self._lock:
            photo = self._ready(index)
            regions = photo.regions if changes.regions is None else reviewed_regions(changes.regions, photo)
            photo.regions = regions
            photo.method = changes.method or photo.method
            photo.shape = changes.shape or photo.shape
            return photo.record()

    def preview(self, index: int) -> bytes:
        """The display copy anonymised as the export would be (JPEG bytes)."""
        with self._previewing:
            with self._lock:
                photo = self._ready(index)
                view, method, shape = photo.view, photo.method, photo.shape
                scale = photo.view_width / photo.width
                regions = [_scaled(r.region, scale) for r in photo.regions if not r.keep]
            with pillow_pixel_limit(2 * photo.view_width * photo.view_height), Image.open(io.BytesIO(view)) as image:
                pixels = np.asarray(image.convert("RGB"))
            return _jpeg(anonymise(pixels, regions, method, shape))

    def export(self, index: int, *, replace: bool = False) -> dict:
        """Anonymise photo `index` at full resolution with its reviewed regions and write it.

        The library pipeline does the work: fresh encode, no metadata, verification, atomic write,
        never over the original. A file already at the destination is kept (OutputExists) unless
        the session may overwrite, or `replace` asks to and that file is a metadata-free copy, as
        `blur` writes (never an original). Raises a BlurError (nothing written) if anything fails.
        """
        with self._exporting:
            return self._export(index, replace)

    def _export(self, index: int, replace: bool) -> dict:
        with self._lock:
            photo = self._ready(index)
            regions = [r.region for r in photo.regions if not r.keep]
            settings = dataclasses.replace(self.settings, method=photo.method, shape=photo.shape)
            digest, source, destination = photo.digest, photo.source, photo.destination
            # Replacing what this session wrote itself is a re-export, not an overwrite of someone's file.
            overwrite = self.overwrite or photo.exported is not None
        try:
            if hashlib.sha256(source.read_bytes()).digest() != digest:
                raise OutputError("the photo changed on disk after it was checked; restart the review to check it again")
        except OSError as exc:
            raise OutputError(f"cannot read the photo again ({exc.strerror or exc})") from None
        if replace and not overwrite and os.path.lexists(destination):
            self._check_replaceable(destination)
            overwrite = True
        result = anonymise_file(source, destination, settings, overwrite=overwrite, regions=regions)
        with self._lock:
            photo.exported = result.output
            return photo.record()

    def _check_replaceable(self, path: Path) -> None:
        """Raise OutputError unless the file at `path` is a copy `blur` could have written: a
        regular file (not a link) whose container carries no metadata. An original is never
        replaced: camera and phone files always carry some."""
        name = path.name
        try:
            regular = stat.S_ISREG(os.lstat(path).st_mode)
        except OSError as exc:
            raise OutputError(f"cannot look at {name} ({exc.strerror or exc}), so it was kept") from None
        if not regular:
            raise OutputError(f"{name} is not a regular file, so it was kept")
        try:
            findings = find_metadata(read_file(path, max_bytes=max_file_bytes(self.settings.max_pixels)))
        except BlurError as exc:
            raise OutputError(f"{name} cannot be read as a blurred copy ({exc}), so it was kept") from None
        if findings:
            raise OutputError(f"{name} carries metadata, so it is not a copy made by blur "
                              "(it may be an original); it was kept")

    def _ready(self, index: int) -> ReviewPhoto:
        photo = self.photo(index)
        if photo.state is State.WAITING:
            raise ReviewError("this photo is still being checked for faces; try again in a moment")
        if photo.state is State.FAILED:
            raise ReviewError(f"this photo cannot be reviewed: {photo.error}")
        return photo


def _photo_for(index: int, job: Job, settings: Settings) -> ReviewPhoto:
    photo = ReviewPhoto(index, job.source, job.destination, _display_name(job.source),
                  method=settings.method, shape=settings.shape)
    if job.problem:
        photo.state, photo.error = State.FAILED, job.problem
    return photo


def _display_name(path: Path) -> str:
    try:
        return os.fsdecode(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return os.fsdecode(path)


def reviewed_regions(edits: tuple[RegionEdit, ...], photo: ReviewPhoto) -> list[ReviewedRegion]:
    """The page's boxes as regions of `photo`: whole pixels, clipped to it, within the work bounds.

    A box the person drew (source PERSON) is covered whole, corners included, whatever the shape
    chosen for found faces; any other source must be a detector that found faces in this photo.
    """
    if len(edits) > max(MAX_REGIONS, photo.detected):
        raise InvalidChange(f"a photo can hold at most {max(MAX_REGIONS, photo.detected)} boxes")
    regions = [_reviewed_region(edit, photo) for edit in edits]
    cover = sum(_area(r.region, photo.width, photo.height) for r in regions)
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


def _area(region: Region, width: int, height: int) -> int:
    x0, y0, x1, y1 = region.clipped(height, width)
    return (x1 - x0) * (y1 - y0)


def _scaled(region: Region, scale: float) -> Region:
    """`region` in a copy of the image scaled by `scale`, rounded outwards."""
    return dataclasses.replace(region, x0=math.floor(region.x0 * scale), y0=math.floor(region.y0 * scale),
                               x1=math.ceil(region.x1 * scale), y1=math.ceil(region.y1 * scale))


def _view_jpeg(pixels: np.ndarray) -> tuple[bytes, int, int]:
    """A display copy no longer than VIEW_LONG_SIDE on its long side, as fresh JPEG bytes."""
    height, width = pixels.shape[:2]
    image = Image.fromarray(np.ascontiguousarray(pixels), "RGB")
    scale = min(1.0, VIEW_LONG_SIDE / max(width, height))
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return _jpeg(np.asarray(image)), image.width, image.height


def _jpeg(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels), "RGB").save(buffer, "JPEG", quality=_VIEW_QUALITY)
    return buffer.getvalue()
