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
import os
import stat
import threading
from pathlib import Path
from typing import Iterable

import numpy as np
from PIL import Image

from ..anonymise import anonymise
from ..check.faces import second_opinion
from ..decode import decode_photo, max_file_bytes, pillow_pixel_limit, read_file
from ..detect import Detector
from ..errors import BlurError, OutputError
from ..formats import find_metadata
from ..jobs import Job, plan_jobs
from ..kinds import Kind
from ..pipeline import Settings, anonymise_file, find_regions
from .photos import (Changes, NoSuchPhoto, ReviewedRegion, ReviewError, ReviewPhoto, State, area, reviewed_regions,
                     scaled)

VIEW_LONG_SIDE = 1600
"""Longest side, in pixels, of the copy sent to the page: big photos stay quick to show."""

_VIEW_QUALITY = 88

REVIEW_MAYBES = 8
"""Places the second opinion points at per photo in the review: a few more than `blur check` lists,
since a person steps through them with one key each."""


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
            photo.detected_area = sum(area(r, photo.width, photo.height) for r in regions)
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
                regions = [scaled(r.region, scale) for r in photo.regions if not r.keep]
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
