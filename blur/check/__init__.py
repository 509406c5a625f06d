"""Check: what in an encoded photo could still identify someone, found by reading its bytes.

Metadata is found by walking the file's own container structure (JPEG segments, PNG chunks, RIFF
chunks, TIFF directories, GIF blocks, HEIF boxes) instead of asking a decoder what it understood:
a decoder silently skips what it does not know, and what it skips is exactly what leaks. Anything
that is not on a short allow-list of format basics is reported, as are bytes after the image's end.

Faces are a gate: every candidate the default detector (its full views, its default threshold)
would destroy fails the check, unless its middle carries the stripes of a region the tool destroyed.
A second opinion points at what the pipeline may have missed, ranked, without failing the check.

The walk is blur.formats' reader of each format (blur.containers); before every write, the pipeline
runs the same walk on the encoded bytes (blur.encode.verify_no_metadata).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..containers.findings import Finding
from ..decode import DEFAULT_MAX_PIXELS, decode_photo, max_file_bytes, read_file
from ..detect import Detection
from ..encode import verify_no_metadata
from ..errors import BlurError
from ..formats import find_metadata, image_format
from .faces import FaceCandidate, Maybe, find_face_candidates, look_for_faces, looks_destroyed

__all__ = [
    "CheckReport", "FaceCandidate", "Finding", "Maybe", "check_file", "check_photo", "find_face_candidates",
    "find_metadata", "image_format", "look_for_faces", "looks_destroyed", "verify_no_metadata",
]

@dataclass(frozen=True)
class CheckReport:
    """What `check_photo` found in one file."""

    format: str
    metadata: tuple[Finding, ...]
    candidates: tuple[FaceCandidate, ...] | None = None
    """Everything the detector would destroy, best first; None when faces were not searched for."""
    face_error: str | None = None
    """Why faces could not be searched for (e.g. an animation), when they could not."""
    maybes: tuple[Maybe, ...] = ()
    """The second opinion: places to look at, most face-like first. They do not make the photo unclean."""
    pixels: object = field(default=None, repr=False, compare=False)
    """The decoded upright pixels, kept only when asked (`keep_pixels`), e.g. for a contact sheet."""

    @property
    def faces(self) -> list[Detection]:
        """Faces still in the photo: candidates that are not destroyed blobs."""
        return [c.detection for c in self.candidates or () if not c.destroyed]

    @property
    def clean(self) -> bool:
        return not self.metadata and not self.faces and self.face_error is None


def check_file(path: str | Path, **options) -> CheckReport:
    """`check_photo` on the file at `path` (a regular file no larger than a photo within the pixel limit)."""
    max_pixels = options.get("max_pixels", DEFAULT_MAX_PIXELS)
    return check_photo(read_file(path, max_bytes=max_file_bytes(max_pixels)), **options)


def check_photo(
    data: bytes,
    *,
    faces: bool = True,
    bar: float | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    keep_pixels: bool = False,
) -> CheckReport:
    """The identifying metadata in `data` and, if `faces`, what the detector would still destroy in it
    and the second opinion's maybes.

    `bar` is the gate's threshold for small faces, blur's default if None: pass a stricter (lower)
    one to look harder, never a weaker one."""
    kind = image_format(data)
    metadata = tuple(find_metadata(data))
    candidates = error = pixels = None
    maybes = ()
    if faces:
        try:
            pixels = decode_photo(data, max_pixels=max_pixels).pixels
        except BlurError as exc:  # the metadata found is still worth reporting
            error = str(exc)
        else:
            look = look_for_faces(pixels, bar)
            candidates, maybes = look.candidates, look.maybes
    return CheckReport(kind, metadata, candidates, error, maybes, pixels if keep_pixels else None)
