"""Kinds of file, told by name before anything reads them: a photo or video this tool reads, or what else.

A folder holds more than photos: camera raw files, videos, sidecars, documents. Each that is not
read is counted and named (never skipped in silence), with the reason a person can act on. What is
read comes from the formats table (blur.formats); this module sorts every other file, and is the one
place every part of the tool asks (batch planning, the hot folder, the check).
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

from .decode import CAMERA_RAW_MESSAGE, sniff_format
from .formats import FORMATS_READ, PHOTO_EXTENSIONS, VIDEO_EXTENSIONS, VIDEOS_READ


class Kind(Enum):
    PHOTO = "photo"
    VIDEO = "video"
    """A video in a container this tool reads (blur.formats.VIDEO_EXTENSIONS)."""
    RAW = "camera raw"
    OTHER_VIDEO = "video in another format"
    OTHER = "other"


READ_KINDS = frozenset({Kind.PHOTO, Kind.VIDEO})
"""Kinds of file this tool anonymises."""


RAW_EXTENSIONS = frozenset({
    ".3fr", ".ari", ".arw", ".bay", ".braw", ".cap", ".cr2", ".cr3", ".crw", ".dcr", ".dcs", ".dng", ".drf",
    ".eip", ".erf", ".fff", ".gpr", ".iiq", ".k25", ".kdc", ".mdc", ".mef", ".mos", ".mrw", ".nef", ".nrw",
    ".orf", ".ori", ".pef", ".ptx", ".r3d", ".raf", ".raw", ".rw2", ".rwl", ".rwz", ".sr2", ".srf", ".srw",
    ".x3f",
})
"""Camera raw formats: the full image is sensor data this tool does not decode."""

OTHER_VIDEO_EXTENSIONS = frozenset({
    ".3g2", ".3gp", ".amv", ".asf", ".avi", ".dif", ".divx", ".dv", ".dvr-ms", ".f4v", ".flv", ".insv", ".m2t",
    ".m2ts", ".m2v", ".m4v", ".mjpeg", ".mjpg", ".mkv", ".mov", ".mp4", ".mpeg", ".mpg", ".mts", ".mxf", ".ogm",
    ".ogv", ".qt", ".rm", ".rmvb", ".tod", ".ts", ".vob", ".vro", ".webm", ".wmv", ".wtv", ".y4m",
}) - VIDEO_EXTENSIONS
"""Videos in formats not read (camcorder DV, Windows TV recordings, RealMedia, ...): counted as videos."""

DESCRIPTIONS = {
    Kind.RAW: "a camera raw file",
    Kind.VIDEO: "a video",
    Kind.OTHER_VIDEO: f"a video in a format this tool does not read (it reads {VIDEOS_READ})",
    Kind.OTHER: f"not a photo in a format this tool reads ({FORMATS_READ})",
}
NOT_READ_KINDS = {
    Kind.RAW: CAMERA_RAW_MESSAGE,
    Kind.OTHER_VIDEO: f"{DESCRIPTIONS[Kind.OTHER_VIDEO]}: convert it to MP4 first; nothing was written",
    Kind.OTHER: DESCRIPTIONS[Kind.OTHER],
}
"""Why each kind of file is not anonymised."""


def kind_of(path: str | Path, sniffed: str | None = None) -> Kind:
    """The kind of the file at `path`, from its extension; one whose name says nothing is a photo if
    `sniffed` (the parser its first bytes announce: blur.decode.sniff_format) names one."""
    suffix = Path(path).suffix.lower()
    if suffix in PHOTO_EXTENSIONS:
        return Kind.PHOTO
    if suffix in RAW_EXTENSIONS:
        return Kind.RAW
    if suffix in VIDEO_EXTENSIONS:
        return Kind.VIDEO
    if suffix in OTHER_VIDEO_EXTENSIONS:
        return Kind.OTHER_VIDEO
    return Kind.PHOTO if sniffed else Kind.OTHER


def kind_of_file(path: str | Path) -> Kind:
    """The kind of the file at `path` by its name; if its name says nothing, a photo if its first bytes say so."""
    kind = kind_of(path)
    return kind_of(path, sniff_format(path)) if kind is Kind.OTHER else kind
