"""Kinds of file, told by name before anything reads them: a photo this tool reads, or what else.

A folder holds more than photos: camera raw files, videos, sidecars, documents. Each that is not
read is counted and named (never skipped in silence), with the reason a person can act on. This
is the one place that decides it: a new kind of media the tool learns to read moves here from
`NOT_READ_KINDS` to what is read.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

from .decode import CAMERA_RAW_MESSAGE, IMAGE_EXTENSIONS, sniff_format


class Kind(Enum):
    PHOTO = "photo"
    VIDEO = "video"
    """A video in a container this tool reads (READ_VIDEO_EXTENSIONS)."""
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

READ_VIDEO_EXTENSIONS = frozenset({".3gp", ".m4v", ".mkv", ".mov", ".mp4", ".webm"})
"""Videos read (blur.video): the containers phones and messaging apps write."""

VIDEO_EXTENSIONS = frozenset({
    ".3g2", ".3gp", ".amv", ".asf", ".avi", ".dif", ".divx", ".dv", ".dvr-ms", ".f4v", ".flv", ".insv", ".m2t",
    ".m2ts", ".m2v", ".m4v", ".mjpeg", ".mjpg", ".mkv", ".mov", ".mp4", ".mpeg", ".mpg", ".mts", ".mxf", ".ogm",
    ".ogv", ".qt", ".rm", ".rmvb", ".tod", ".ts", ".vob", ".vro", ".webm", ".wmv", ".wtv", ".y4m",
})
"""Videos, read or not (camcorder DV, Windows TV recordings, RealMedia, ...): a video not read is counted as one."""

DESCRIPTIONS = {
    Kind.RAW: "a camera raw file",
    Kind.VIDEO: "a video",
    Kind.OTHER_VIDEO: "a video in a format this tool does not read (it reads MP4, MOV, M4V, 3GP, MKV and WebM)",
    Kind.OTHER: "not a photo in a format this tool reads (JPEG, PNG, WebP, TIFF, BMP, GIF, HEIC)",
}
NOT_READ_KINDS = {
    Kind.RAW: CAMERA_RAW_MESSAGE,
    Kind.OTHER_VIDEO: "a video in a format this tool does not read (it reads MP4, MOV, M4V, 3GP, MKV and WebM): "
                      "convert it to MP4 first; nothing was written",
    Kind.OTHER: DESCRIPTIONS[Kind.OTHER],
}
"""Why each kind of file is not anonymised."""


def kind_of(path: str | Path) -> Kind:
    """The kind of the file at `path`, from its extension."""
    suffix = Path(path).suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        return Kind.PHOTO
    if suffix in RAW_EXTENSIONS:
        return Kind.RAW
    if suffix in READ_VIDEO_EXTENSIONS:
        return Kind.VIDEO
    if suffix in VIDEO_EXTENSIONS:
        return Kind.OTHER_VIDEO
    return Kind.OTHER


def kind_of_file(path: str | Path) -> Kind:
    """The kind of the file at `path` by its name; if its name says nothing, a photo if its first bytes say so."""
    kind = kind_of(path)
    return Kind.PHOTO if kind is Kind.OTHER and sniff_format(path) else kind
