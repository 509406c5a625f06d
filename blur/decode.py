"""Decode: bytes of a photo -> upright 8-bit sRGB pixels (plus alpha), nothing else kept.

Only the pixels survive this stage. Metadata is read just long enough to turn the image upright
(EXIF orientation) and into sRGB (ICC profile), then dropped with the Pillow image.

Orientation rule: the EXIF orientation tag alone decides (JPEG's Exif segment, PNG's eXIf chunk,
WebP's EXIF chunk, TIFF's own tag; HEIF's irot/imir boxes, which libheif applies), as browsers and
photo viewers do. An orientation found only in XMP is ignored, as they ignore it, so the copy
shows the photo exactly as they showed the original.
"""

from __future__ import annotations

import ctypes
import io
import logging
import os
import stat
import struct
import threading
import warnings
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, ImageCms, ImageOps, PngImagePlugin, UnidentifiedImageError

from .errors import ImageTooLarge, UnreadableImage, UnsupportedImage
from .formats import FORMATS_READ, PARSERS, sniff_bytes


def _silence_libtiff() -> None:
    """Stop libtiff printing its complaints about damaged TIFFs straight to stderr, between our
    one-line messages: Pillow raises the same failures as exceptions, so the prints add nothing.
    Best effort, Linux only (it finds the libtiff Pillow loaded); elsewhere they stay visible."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split(maxsplit=5)[-1].strip() for line in maps if "/libtiff" in line}
        for path in paths:
            library = ctypes.CDLL(path)
            for name in ("TIFFSetErrorHandler", "TIFFSetWarningHandler"):
                setter = getattr(library, name)
                setter.argtypes, setter.restype = [ctypes.c_void_p], ctypes.c_void_p
                setter(None)
    except (OSError, AttributeError):
        pass


_silence_libtiff()
# Pillow logs some damage it then raises as an exception; without this, Python's last-resort
# handler would print those records on stderr. An application that configures logging still sees them.
logging.getLogger("PIL").addHandler(logging.NullHandler())

DEFAULT_MAX_PIXELS = 100_000_000
"""Refuse images above 100 megapixels by default: about 1.4 GB peak memory per worker (benchmarks/memory_peak.py)."""

_SRGB = ImageCms.createProfile("sRGB")

CAMERA_RAW_MESSAGE = (
    "a camera raw file: this tool cannot read its full image (only a small preview inside it), so "
    "nothing was written; export it as JPEG or TIFF from your photo app, then anonymise that"
)
_DNG_VERSION, _NEW_SUBFILE_TYPE = 50706, 254


@dataclass(frozen=True, eq=False)
class Photo:
    """An upright photo in sRGB: `pixels` is H×W×3 uint8, `alpha` is H×W uint8 or None."""

    pixels: np.ndarray
    alpha: np.ndarray | None
    format: str
    """Pillow's name for the input format ('JPEG', 'PNG', 'HEIF', ...): it decides the output format."""

    @property
    def height(self) -> int:
        return self.pixels.shape[0]

    @property
    def width(self) -> int:
        return self.pixels.shape[1]


def read_photo(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Photo:
    """Read and decode the photo at `path` (a regular file, or a link to one)."""
    return decode_photo(read_file(path, max_bytes=max_file_bytes(max_pixels)), max_pixels=max_pixels)


def max_file_bytes(max_pixels: int) -> int:
    """The largest file read: 16-bit RGBA uncompressed at the pixel limit, plus room for metadata."""
    return 8 * max_pixels + (64 << 20)


_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)


def read_file(path: str | Path, *, max_bytes: int) -> bytes:
    """The bytes of a regular file. Pipes, devices and sockets are refused before they are opened
    (a pipe would block the batch forever, /dev/zero would never end); the check is repeated on
    the open file in case the name was swapped in between."""
    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            raise UnreadableImage(_not_a_file(mode))
        with open(os.open(path, _OPEN_FLAGS), "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise UnreadableImage(_not_a_file(info.st_mode))
            data = handle.read(max_bytes + 1) if info.st_size <= max_bytes else b""
            if len(data) > max_bytes or info.st_size > max_bytes:
                raise ImageTooLarge(
                    f"the file is over {max_bytes / 1e6:.0f} MB, more than any photo within the pixel limit; "
                    "raise the pixel limit if you trust it"
                )
            return data
    except PermissionError:
        raise UnreadableImage("permission denied: cannot read this file") from None
    except OSError as exc:
        raise UnreadableImage(f"cannot read this file ({exc.strerror or exc})") from None


def sniff_format(path: str | Path) -> str | None:
    """The parser the first bytes of the file at `path` announce (blur.formats.sniff_bytes), or None
    if it cannot be read, is not a regular file, or is no format read.
    Cheap: it lets a batch name outputs by the real format before decoding anything."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        with open(os.open(path, _OPEN_FLAGS), "rb") as handle:
            prefix = handle.read(16)
    except OSError:
        return None
    return sniff_bytes(prefix)


def _not_a_file(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "is a folder, not a photo"
    return "is not a regular file (a pipe, device or socket), so it was not read"


def decode_photo(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Photo:
    """Decode an encoded photo into upright sRGB pixels; refuse what we cannot handle safely."""
    if not data:
        raise UnreadableImage("the file is empty")
    with warnings.catch_warnings():
        # We enforce our own pixel limit below, and a damaged file either decodes or raises:
        # Pillow's warnings (bomb, corrupt EXIF) would only print stray lines between our messages.
        warnings.simplefilter("ignore")
        try:
            with pillow_pixel_limit(max_pixels), Image.open(io.BytesIO(data), formats=PARSERS) as image:
                _ignore_xmp_orientation(image)
                _refuse_camera_raw(image)
                _check_size(image.size, max_pixels)
                _check_single_frame(image)
                image.load()
                return _to_photo(image)
        except Image.DecompressionBombError:  # Pillow's check, set to our limit, ran inside a parser
            raise ImageTooLarge(
                f"the image has more pixels than the limit of {max_pixels / 1e6:g} megapixels; "
                "raise the pixel limit if this machine has the memory"
            ) from None
        except UnidentifiedImageError:
            raise UnreadableImage(f"not a photo in a supported format ({FORMATS_READ})") from None
        except RuntimeError as exc:  # how pillow-heif reports libheif errors, its size limit among them
            if "security limit" in str(exc).lower():
                raise ImageTooLarge("the image declares more pixels than the HEIC decoder accepts") from None
            raise UnreadableImage(f"the image data is damaged or truncated ({exc})") from None
        except ValueError as exc:
            if "MAX_TEXT_" in str(exc):  # Pillow's bound on what a PNG's compressed chunks unpack to
                raise UnreadableImage(_oversized_png_chunk(data)) from None
            raise UnreadableImage(f"the image data is damaged or truncated ({exc})") from None
        except (
            OSError, SyntaxError, EOFError, IndexError, KeyError, TypeError,
            ArithmeticError, struct.error, zlib.error,
        ) as exc:
            # Pillow signals truncated and corrupt data with a mix of these (struct.error: a GIF
            # block cut short, found by fuzzing).
            raise UnreadableImage(f"the image data is damaged or truncated ({exc})") from None


def _oversized_png_chunk(data: bytes) -> str:
    """Why Pillow refused the PNG `data`: its colour profile, or else its text, unpacks past its bound."""
    limit = PngImagePlugin.MAX_TEXT_CHUNK
    position = 8
    while position + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, position)
        if kind == b"iCCP":
            body = data[position + 8 : position + 8 + length]
            try:
                unpacked = zlib.decompressobj().decompress(body[body.find(b"\0") + 2 :], limit + 1)
            except zlib.error:
                unpacked = b""
            if len(unpacked) > limit:
                return (f"its colour profile (ICC) unpacks to more than {limit >> 20} MB, far more than a real one "
                        "(a few KB), so it was not read and nothing was written; save the photo again without it")
        position += 12 + length
    return (f"its text metadata unpacks to more than this tool reads ({limit >> 20} MB a chunk, "
            f"{PngImagePlugin.MAX_TEXT_MEMORY >> 20} MB in all), so it was not read and nothing was written; "
            "save the photo again without it")


_PIXEL_LIMIT = threading.RLock()
"""Held while Pillow's process-wide pixel limit is ours (see `pillow_pixel_limit`)."""


@contextmanager
def pillow_pixel_limit(max_pixels: int) -> Iterator[None]:
    """Make Pillow's own bomb check refuse exactly above `max_pixels` while the block runs.

    Pillow refuses above twice Image.MAX_IMAGE_PIXELS (about 179 MP by default), partly inside
    its parsers, before a WebP decoder allocates its canvas. Left alone it would refuse photos a
    person allowed; switched off, a WebP could allocate before our check. Pillow has only this one
    process-wide limit, so the block holds a lock: every image this library opens with Pillow is
    opened inside such a block, and a thread (the review's analyser, an export, a cluster worker's
    other thread) never decodes under another's limit, nor leaves its own behind.
    """
    with _PIXEL_LIMIT:
        previous = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = max(1, max_pixels // 2)
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = previous


def _ignore_xmp_orientation(image: Image.Image) -> None:
    """Drop the XMP before anything reads orientation: Pillow takes XMP's tiff:Orientation when the
    EXIF has none (getexif, and TIFF's load), which viewers never do (see the module's rule)."""
    for key in ("xmp", "XML:com.adobe.xmp"):
        image.info.pop(key, None)
    image._exif = None  # opening may already have cached EXIF with XMP's orientation folded in (JPEG's DPI read)


def _check_size(size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise UnreadableImage(f"the image declares an impossible size {width}×{height}")
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"the image is {width}×{height} pixels, more than the limit of {max_pixels / 1e6:g} megapixels; "
            "raise the pixel limit if this machine has the memory"
        )


def _refuse_camera_raw(image: Image.Image) -> None:
    """Refuse TIFF-based raw files (DNG, NEF, ...), whatever their name: Pillow would read their
    first image, a small preview, and the anonymised copy would be a thumbnail of the photo."""
    if image.format != "TIFF":
        return
    tags = image.tag_v2
    if _DNG_VERSION in tags:
        raise UnsupportedImage(CAMERA_RAW_MESSAGE)
    if int(tags.get(_NEW_SUBFILE_TYPE, 0)) & 1:
        raise UnsupportedImage(
            "the first image in this file is a reduced-size preview of another one (as in camera raw "
            "files), which this tool cannot read, so nothing was written; export the photo as JPEG or TIFF first"
        )


def _check_single_frame(image: Image.Image) -> None:
    # MPO (camera JPEGs with an embedded preview or depth map) is read as its primary image:
    # the other pictures are never copied to the output.
    frames = getattr(image, "n_frames", 1)
    if frames > 1 and image.format != "MPO":
        raise UnsupportedImage(
            f"this {image.format} file holds {frames} frames or pages; only single images are "
            "anonymised, so nothing was written. Export each frame as its own photo first"
        )


def _to_photo(image: Image.Image) -> Photo:
    source_format = image.format or "PNG"
    icc = image.info.get("icc_profile")
    image = _normalise_mode(_apply_orientation(image))
    alpha = None
    if image.mode == "RGBA":
        alpha = np.asarray(image.getchannel("A")).copy()
        image = image.convert("RGB")
    if icc:
        image = _to_srgb(image, icc)
    elif image.mode != "RGB":
        image = image.convert("RGB")
    return Photo(pixels=_rgb_array(image), alpha=alpha, format=source_format)


def _rgb_array(image: Image.Image) -> np.ndarray:
    """The pixels of an RGB image as a new H×W×3 array, copied in bands of about 16 MB.

    np.asarray on the whole image would briefly hold two more full copies (Pillow's tobytes
    chunks and their join): at 100 MP that is 600 MB on top of the image and the array.
    """
    width, height = image.size
    pixels = np.empty((height, width, 3), np.uint8)
    rows = max(1, (16 << 20) // (3 * width))
    for top in range(0, height, rows):
        pixels[top : top + rows] = np.asarray(image.crop((0, top, width, min(height, top + rows))))
    return pixels


def _apply_orientation(image: Image.Image) -> Image.Image:
    try:
        ImageOps.exif_transpose(image, in_place=True)  # in place: no second full copy of the photo
        return image
    except Exception as exc:  # a malformed EXIF block must not let a sideways photo through unnoticed
        raise UnreadableImage(f"the photo's orientation data is damaged ({exc})") from None


def _normalise_mode(image: Image.Image) -> Image.Image:
    """Any Pillow mode -> 'RGB', 'RGBA' or 'CMYK' (kept for its ICC profile), in 8 bits."""
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        values = np.asarray(image, dtype=np.int64)
        if mode != "I" or values.max(initial=0) > 255:
            values = values >> 8
        return Image.fromarray(np.clip(values, 0, 255).astype(np.uint8), "L").convert("RGB")
    if mode == "F":
        values = np.asarray(image, dtype=np.float64)
        if values.max(initial=0) <= 1.0:
            values = values * 255
        return Image.fromarray(np.clip(values, 0, 255).astype(np.uint8), "L").convert("RGB")
    if mode in ("RGB", "RGBA", "CMYK"):
        return image
    has_alpha = "A" in mode or "a" in mode or "transparency" in image.info
    return image.convert("RGBA" if has_alpha else "RGB")


def _to_srgb(image: Image.Image, icc: bytes) -> Image.Image:
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return ImageCms.profileToProfile(image, source, _SRGB, outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError):
        # An unusable colour profile costs colour accuracy, not privacy: keep the pixels as they are.
        return image.convert("RGB")
