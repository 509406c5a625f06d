"""Formats: the one table of the photo formats this tool reads and writes, and of the videos it reads.

As mat2 keeps one parser per format and one table of them, each photo format here names all that
the tool does with it: its file name extensions (the first is the one written), the Pillow parser
that tells it by its first bytes and decodes it (every other parser Pillow has is refused before
it runs on a byte), the walker that reads what its container carries (blur.containers: for
`blur check` and the check before every write), the format its anonymised copy is written in, and,
for formats that are written, the encoder with its allow-listed options and the only information
Pillow may report when it reads such a copy back (anything else is metadata we did not write).
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pillow_heif
from PIL import Image

from .containers.bmp import bmp_findings
from .containers.findings import Finding
from .containers.gif import gif_findings
from .containers.heif import heif_findings
from .containers.jpeg import jpeg_findings
from .containers.png import png_findings
from .containers.tiff import tiff_findings
from .containers.webp import webp_findings
from .errors import UnreadableImage

pillow_heif.register_heif_opener()
Image.init()  # every Pillow plugin registered now, so the table can name their parsers

OPTIMIZE_UP_TO = 25_000_000
"""JPEGs up to this many pixels get optimised Huffman tables (a few % smaller). Above it they are
not: libjpeg then keeps every coefficient of the photo in memory (about 300 MB more at 100 MP)."""

Encoder = Callable[[Image.Image, io.BytesIO, int], None]
"""Writes an image into a buffer at a quality (1-100, for the formats that have one)."""


def _jpeg(image: Image.Image, buffer: io.BytesIO, quality: int) -> None:
    image.save(buffer, "JPEG", quality=quality, optimize=image.width * image.height <= OPTIMIZE_UP_TO)


def _webp(image: Image.Image, buffer: io.BytesIO, quality: int) -> None:
    image.save(buffer, "WEBP", quality=quality, method=4)


def _tiff(image: Image.Image, buffer: io.BytesIO, quality: int) -> None:
    image.save(buffer, "TIFF", compression="tiff_adobe_deflate")


def _png(image: Image.Image, buffer: io.BytesIO, quality: int) -> None:
    image.save(buffer, "PNG")


def _bmp(image: Image.Image, buffer: io.BytesIO, quality: int) -> None:
    image.save(buffer, "BMP")


@dataclass(frozen=True)
class Format:
    """One photo format: everything the tool does with it."""

    name: str
    """The name Pillow gives it on decoding ('JPEG', 'MPO', 'PNG', 'HEIF', ...)."""
    label: str
    """Its name for people."""
    extensions: tuple[str, ...]
    """File name extensions; the first is the one a copy in this format is named with."""
    parser: str
    """The Pillow parser that tells it by its first bytes and decodes it."""
    reader: Callable[[bytes], list[Finding]]
    """Walks the file's own container for everything beyond the image (blur.containers)."""
    written_as: str
    """The format of its anonymised copy: its own, or another where it is not written."""
    encoder: Encoder | None = None
    """Writes a fresh copy in this format (None: copies are written as `written_as`)."""
    keeps_alpha: bool = False
    """Whether a copy keeps transparency (else it is flattened on white)."""
    allowed_info: frozenset[str] = frozenset()
    """What Pillow may report on reading back a copy the encoder wrote."""

    @property
    def extension(self) -> str:
        return self.extensions[0]


PHOTO_FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("JPEG", "JPEG", (".jpg", ".jpeg", ".jpe"), "JPEG", jpeg_findings, "JPEG", _jpeg, False, frozenset(
        {"jfif", "jfif_version", "jfif_unit", "jfif_density", "dpi", "progressive", "progression"})),
    # Camera JPEGs with an embedded preview or depth map: read as their first picture, the others never copied.
    Format("MPO", "MPO", (".mpo",), "JPEG", jpeg_findings, "JPEG"),
    Format("PNG", "PNG", (".png",), "PNG", png_findings, "PNG", _png, True),
    Format("WEBP", "WebP", (".webp",), "WEBP", webp_findings, "WEBP", _webp, True,
           frozenset({"loop", "background", "duration", "timestamp"})),
    Format("TIFF", "TIFF", (".tif", ".tiff"), "TIFF", tiff_findings, "TIFF", _tiff, True,
           frozenset({"compression", "dpi", "resolution"})),
    Format("BMP", "BMP", (".bmp",), "BMP", bmp_findings, "BMP", _bmp, False, frozenset({"compression", "dpi"})),
    # A single frame by the time it is written: PNG keeps its transparency.
    Format("GIF", "GIF", (".gif",), "GIF", gif_findings, "PNG"),
    # HEIC encoding is slow (~20 s per 12-MP photo) and not accepted everywhere: JPEG is.
    Format("HEIF", "HEIC", (".heic", ".heif", ".hif"), "HEIF", heif_findings, "JPEG"),
)}

OUTPUT_FORMATS = {name: f for name, f in PHOTO_FORMATS.items() if f.encoder is not None}
"""The formats copies are written in."""

PARSERS = tuple(dict.fromkeys(f.parser for f in PHOTO_FORMATS.values()))
"""The Pillow parsers accepted, in the order they are tried on a file's first bytes."""

PHOTO_EXTENSIONS = frozenset(e for f in PHOTO_FORMATS.values() for e in f.extensions)
"""File name extensions of the photos read: what a folder scan picks up."""

FORMATS_READ = ", ".join(dict.fromkeys(f.label for f in PHOTO_FORMATS.values() if f.name != "MPO"))
"""The photo formats read, for messages: 'JPEG, PNG, WebP, TIFF, BMP, GIF, HEIC'."""

VIDEO_EXTENSIONS = frozenset({".3gp", ".m4v", ".mkv", ".mov", ".mp4", ".webm"})
"""Videos read (blur.video): the containers phones and messaging apps write."""

VIDEOS_READ = "MP4, MOV, M4V, 3GP, MKV and WebM"
"""The videos read, for messages."""

VIDEO_OUTPUT = "MP4"
"""Every video is written as H.264 in MP4, whatever it came in."""

_BY_EXTENSION = {e: f for f in PHOTO_FORMATS.values() for e in f.extensions}


def output_format(name: str) -> Format:
    """The format an anonymised copy of a photo in format `name` (Pillow's name) is written in."""
    return PHOTO_FORMATS[PHOTO_FORMATS[name].written_as]


def sniff_bytes(prefix: bytes) -> str | None:
    """The parser Pillow would pick for a file starting with `prefix` (16 bytes), among those accepted."""
    for name in PARSERS:
        accept = Image.OPEN[name][1]
        if accept is not None and accept(prefix):
            return name
    return None


def photo_output(path: Path, sniffed: str | None) -> Format:
    """The format a copy of the photo at `path` is written in: from its first bytes (`sniffed`, the
    parser they name), so that a PNG named .jpg and a real a.png cannot both claim a.blurred.png
    unnoticed; from its name if they say nothing (it will then fail when read)."""
    read = PHOTO_FORMATS[sniffed] if sniffed else _BY_EXTENSION.get(path.suffix.lower(), PHOTO_FORMATS["JPEG"])
    return output_format(read.name)


def extension_of(output: str) -> str:
    """The extension of a copy written in format `output` (a photo format's name, or VIDEO_OUTPUT)."""
    return ".mp4" if output == VIDEO_OUTPUT else PHOTO_FORMATS[output].extension


def image_format(data: bytes) -> str:
    """The container format of `data`, from its first bytes: the parser `blur` would decode it with."""
    name = sniff_bytes(data[:16])
    if name is None:
        raise UnreadableImage(f"not a photo in a format this tool reads ({FORMATS_READ})")
    return name


def find_metadata(data: bytes) -> list[Finding]:
    """Everything in `data` beyond the pixels and the format's basics, in file order."""
    reader = PHOTO_FORMATS[image_format(data)].reader
    try:
        return reader(data)
    except (struct.error, IndexError, ValueError) as exc:
        raise UnreadableImage(f"the file's structure is damaged ({exc}); it cannot be checked") from None
