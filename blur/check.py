"""Check: what in an encoded photo could still identify someone, found by reading its bytes.

Metadata is found by walking the file's own container structure (JPEG segments, PNG chunks, RIFF
chunks, TIFF directories, GIF blocks, HEIF boxes) instead of asking a decoder what it understood:
a decoder silently skips what it does not know, and what it skips is exactly what leaks. Anything
that is not on a short allow-list of format basics is reported, as are bytes after the image's end.

Faces are a gate: every candidate the default detector (its full views, its default threshold)
would destroy fails the check, unless its middle is a blob the tool made (a face already destroyed).

Before every write, the pipeline runs `verify_no_metadata` on the encoded bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .decode import DEFAULT_MAX_PIXELS, decode_photo, max_file_bytes, read_file, sniff_bytes
from .detect import DEFAULT_DETECTOR, Detection, Detector, load_detector
from .errors import BlurError, UnreadableImage, VerificationFailed


@dataclass(frozen=True)
class Finding:
    """One piece of metadata, or hidden data, found in a file."""

    kind: str
    """What it is: 'EXIF', 'XMP', 'ICC profile', 'bytes after the end', ..."""
    detail: str = ""
    """What it holds, in words a person can act on (names of fields, never their values)."""
    offset: int | None = None
    """Byte offset in the file where it starts, when known."""

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}" if self.detail else self.kind


@dataclass(frozen=True)
class FaceCandidate:
    """Something the detector would destroy, and whether it is already destroyed."""

    detection: Detection
    destroyed: bool
    """True when the middle of the box is a blob the tool made (see `blob_measures`)."""


@dataclass(frozen=True)
class CheckReport:
    """What `check_photo` found in one file."""

    format: str
    metadata: tuple[Finding, ...]
    candidates: tuple[FaceCandidate, ...] | None = None
    """Everything the detector would destroy, best first; None when faces were not searched for."""
    face_error: str | None = None
    """Why faces could not be searched for (e.g. an animation), when they could not."""

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
    detector: Detector | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> CheckReport:
    """The identifying metadata in `data` and, if `faces`, what the detector would still destroy in it.

    `detector` defaults to the default detector at its default threshold; pass a stricter one
    (a lower threshold) to look harder, never a weaker one."""
    kind = image_format(data)
    metadata = tuple(find_metadata(data))
    candidates = error = None
    if faces:
        try:
            pixels = decode_photo(data, max_pixels=max_pixels).pixels
        except BlurError as exc:  # the metadata found is still worth reporting
            error = str(exc)
        else:
            candidates = tuple(find_face_candidates(pixels, detector))
    return CheckReport(kind, metadata, candidates, error)


def find_face_candidates(pixels: np.ndarray, detector: Detector | None = None) -> list[FaceCandidate]:
    """Everything `detector` (default: the default detector) finds in upright RGB `pixels`, best first."""
    found = sorted((detector or load_detector(DEFAULT_DETECTOR)).detect(pixels), key=lambda d: -d.score)
    grey = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY).astype(np.float32) if found else None
    return [FaceCandidate(d, _is_blob(grey, d)) for d in found]


BLOB_STRUCTURE = 0.6
"""Most energy in the middle band (see `blob_measures`) per unit of pixel-level grain for a blob."""
BLOB_RELIEF = 1.0
"""Most relief (8-bit levels, see `blob_measures`) left once the grain is smoothed away, for a blob.

Both bounds were chosen on candidates in 60 wider-native-dev photos and the tool's JPEG outputs of
them: real faces of 20 px or more pass as blobs 0 in 1,153 times as published, under 0.3 % of the
time with strong added noise (16 levels), 0.4-3.6 % only when their contrast is also cut to half or
a third; 56 % of the candidates found on the tool's own destroyed regions count as blobs. Looser
bounds recognise more blobs and pass more dim, noisy faces: a check must not pass a face.
"""
FLAT_LEVELS = 2.0
"""A middle whose brightness varies this little is flat: no face can be seen in it."""
_VIEW = 48
"""Boxes taller than this are measured shrunk to it, so a face's features have the same scale at any size."""


def looks_destroyed(pixels: np.ndarray, box: Detection) -> bool:
    """Whether the middle of `box` in RGB `pixels` is a blob the tool made (a destroyed face)."""
    return _is_blob(cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY).astype(np.float32), box)


def _is_blob(grey: np.ndarray, box: Detection) -> bool:
    structure, relief = blob_measures(grey, box)
    return structure < BLOB_STRUCTURE and relief < BLOB_RELIEF


def blob_measures(grey: np.ndarray, box: Detection) -> tuple[float, float]:
    """(structure, relief) of the middle 5/8 of `box` in a grey float image.

    A destroyed region is a smooth surface through at most 3×3 cell colours plus fine white grain.
    `structure` is the energy between the scale of a pixel and a sixth of the box, relative to the
    pixel-level energy: grain has little in that band, eyes, nose and mouth put a lot there.
    `relief` is what is left of the middle, smoothed so that grain (or a camera's noise) is gone,
    once a quadratic surface is taken away: nearly nothing on a blob, the features on a face, however
    noisy. A face is only taken for a blob when both are low.
    """
    x0, y0, x1, y1 = box.x0, box.y0, box.x1, box.y1
    width, height = x1 - x0, y1 - y0
    left, top = int(max(np.floor(x0 - width), 0)), int(max(np.floor(y0 - height), 0))
    right = int(min(np.ceil(x1 + width), grey.shape[1]))
    bottom = int(min(np.ceil(y1 + height), grey.shape[0]))
    around = np.ascontiguousarray(grey[top:bottom, left:right])
    x0, y0, x1, y1 = x0 - left, y0 - top, x1 - left, y1 - top
    shrink = min(1.0, _VIEW / max(height, 1.0))
    if shrink < 1 and min(around.shape) > 1:
        around = cv2.resize(around, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
        x0, y0, x1, y1, width, height = (v * shrink for v in (x0, y0, x1, y1, width, height))
    rows = slice(max(int(round(y0 + height * 3 / 16)), 0), int(round(y0 + height * 13 / 16)))
    cols = slice(max(int(round(x0 + width * 3 / 16)), 0), int(round(x0 + width * 13 / 16)))
    middle = around[rows, cols]
    if middle.shape[0] < 3 or middle.shape[1] < 3:
        return float("inf"), float("inf")  # nothing to measure: never called destroyed
    if np.ptp(middle) <= FLAT_LEVELS:
        return 0.0, 0.0  # a flat fill (the solid method): nothing there
    fine = cv2.GaussianBlur(around, (0, 0), 1.0)
    coarse = cv2.GaussianBlur(around, (0, 0), max(height / 6, 2.0))
    grain = np.mean((around - fine)[rows, cols] ** 2)
    structure = float(np.mean((fine - coarse)[rows, cols] ** 2) / (grain + 1e-3))
    smooth = cv2.GaussianBlur(around, (0, 0), float(np.clip(height / 10, 1.2, 4.0)))[rows, cols]
    ys, xs = np.mgrid[0 : smooth.shape[0], 0 : smooth.shape[1]].astype(np.float32)
    ys, xs = ys / (smooth.shape[0] - 1) - 0.5, xs / (smooth.shape[1] - 1) - 0.5
    surface = np.stack([np.ones_like(xs), xs, ys, xs * xs, ys * ys, xs * ys], axis=-1).reshape(-1, 6)
    fitted, *_ = np.linalg.lstsq(surface, smooth.reshape(-1), rcond=None)
    relief = float(np.sqrt(np.mean((smooth.reshape(-1) - surface @ fitted) ** 2)))
    return structure, relief


def verify_no_metadata(data: bytes) -> None:
    """Raise VerificationFailed if the encoded `data` carries anything beyond the image itself."""
    try:
        findings = find_metadata(data)
    except UnreadableImage as exc:
        raise VerificationFailed(f"the encoded output cannot be checked for metadata ({exc})") from None
    if findings:
        listed = "; ".join(str(f) for f in findings)
        raise VerificationFailed(f"the encoded output still carries metadata ({listed}), so it was not written")


def image_format(data: bytes) -> str:
    """The container format of `data`, from its first bytes: the parser `blur` would decode it with."""
    kind = sniff_bytes(data[:16])
    if kind is None:
        raise UnreadableImage("not a photo in a format this check knows (JPEG, PNG, WebP, TIFF, GIF, BMP, HEIC)")
    return kind


def find_metadata(data: bytes) -> list[Finding]:
    """Everything in `data` beyond the pixels and the format's basics, in file order."""
    walker = _WALKERS[image_format(data)]
    try:
        return walker(data)
    except (struct.error, IndexError, ValueError) as exc:
        raise UnreadableImage(f"the file's structure is damaged ({exc}); it cannot be checked") from None


# --- JPEG ---------------------------------------------------------------------------------------

_JPEG_STANDALONE = {0x01, *range(0xD0, 0xD8)}
_XMP = b"http://ns.adobe.com/xap/1.0/\x00"
_XMP_EXTENSION = b"http://ns.adobe.com/xmp/extension/\x00"

# The segments that hold the image itself: frames (SOF0-SOF15 but DHT, JPG and DAC), Huffman and
# arithmetic-coding tables, quantisation tables, restart interval, number of lines, scans. Every
# other segment is reported, except the bare JFIF header this tool's encoder writes (allow-list:
# APP3-APP15 and any marker a future camera invents are reported, not skipped).
_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_IMAGE_SEGMENTS = _JPEG_FRAMES | {0xC4, 0xCC, 0xDA, 0xDB, 0xDC, 0xDD}
_JFIF_HEADER_LENGTH = 14
"""'JFIF\\0', version, density units, x and y density, thumbnail width and height (both 0)."""


def _jpeg(data: bytes) -> list[Finding]:
    findings: list[Finding] = []
    pos = 2
    while True:
        start = data.find(b"\xff", pos)
        if start < 0:
            findings.append(Finding("damaged structure", "the image ends without an end-of-image marker"))
            return findings
        if start > pos:
            findings.append(Finding("hidden data", f"{start - pos} bytes between segments", pos))
        pos = start
        while pos < len(data) and data[pos] == 0xFF:
            pos += 1
        marker = data[pos]
        pos += 1
        if marker == 0xD9:
            break
        if marker in _JPEG_STANDALONE:
            continue
        if marker in (0x00, 0xD8):
            findings.append(Finding("damaged structure", f"a stray FF{marker:02X} between segments", start))
            continue
        (length,) = struct.unpack_from(">H", data, pos)
        payload = data[pos + 2 : pos + length]
        if length < 2 or pos + length > len(data):
            raise ValueError(f"a segment at byte {start} runs past the end of the file")
        pos += length
        if marker == 0xDA:
            pos = _end_of_scan(data, pos)
        finding = _jpeg_segment(marker, payload, start)
        if finding:
            findings.append(finding)
    if pos < len(data):
        findings.append(_trailer(data[pos:], pos, "end-of-image marker"))
    return findings


def _end_of_scan(data: bytes, pos: int) -> int:
    """Position of the first marker after entropy-coded data (skipping stuffed FF00 and restarts)."""
    while True:
        pos = data.find(b"\xff", pos)
        if pos < 0 or pos + 1 >= len(data):
            return len(data)
        following = data[pos + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7:
            pos += 2
            continue
        return pos


def _jpeg_segment(marker: int, payload: bytes, offset: int) -> Finding | None:
    """What a segment holds beyond the image itself, or None if it is only the image."""
    if marker in _JPEG_IMAGE_SEGMENTS:
        extra = len(payload) - _image_segment_length(marker, payload)
        if extra:
            return Finding("hidden data", f"{extra} bytes more than the tables of an FF{marker:02X} segment hold", offset)
        return None
    if marker == 0xE0 and payload.startswith(b"JFIF\x00") and len(payload) >= _JFIF_HEADER_LENGTH:
        if payload[12] or payload[13]:
            return Finding("thumbnail", f"JFIF thumbnail {payload[12]}×{payload[13]}", offset)
        if len(payload) > _JFIF_HEADER_LENGTH:
            return Finding("hidden data", f"{len(payload) - _JFIF_HEADER_LENGTH} bytes after the JFIF header", offset)
        return None  # the bare header this tool writes
    if marker == 0xE0 and payload.startswith(b"JFXX\x00"):
        return Finding("thumbnail", "JFIF extension thumbnail", offset)
    if marker == 0xE1:
        if payload.startswith(b"Exif\x00"):
            return Finding("EXIF", _exif_summary(payload[6:]), offset)
        if payload.startswith(_XMP):
            return Finding("XMP", f"{len(payload) - len(_XMP)} bytes of descriptive metadata", offset)
        if payload.startswith(_XMP_EXTENSION):
            return Finding("extended XMP", f"{len(payload) - len(_XMP_EXTENSION)} bytes", offset)
    if marker == 0xE2:
        if payload.startswith(b"ICC_PROFILE\x00"):
            return Finding("ICC profile", "colour profile (names a device or software, and a date)", offset)
        if payload.startswith(b"MPF\x00"):
            return Finding("MPF", "index of secondary images (previews, depth maps) stored after the main one", offset)
    if marker == 0xED and payload.startswith(b"Photoshop 3.0\x00"):
        return Finding("IPTC/Photoshop (APP13)", _photoshop_summary(payload[14:]), offset)
    if marker == 0xEB:
        kind = "JUMBF (APP11)" if payload.startswith(b"JP") else "APP11 segment"
        return Finding(kind, "content credentials or other boxes (C2PA can name the author and device)", offset)
    if marker == 0xFE:
        return Finding("comment (COM)", f"{len(payload)} bytes of text", offset)
    if 0xE0 <= marker <= 0xEF:  # APP3-APP10, APP12, APP14, APP15 and unrecognised APP0-APP2, APP13
        return Finding(f"APP{marker - 0xE0} segment", f"{len(payload)} bytes, starting {_preview(payload)}", offset)
    return Finding(f"unknown segment FF{marker:02X}", f"{len(payload)} bytes, starting {_preview(payload)}", offset)


def _image_segment_length(marker: int, payload: bytes) -> int:
    """How many bytes of an image segment's payload its own fields account for."""
    if marker in _JPEG_FRAMES:  # precision, height, width, components, 3 bytes per component
        return 6 + 3 * payload[5]
    if marker == 0xDA:  # components, 2 bytes per component, spectral selection and approximation
        return 1 + 2 * payload[0] + 3
    if marker in (0xDC, 0xDD):  # number of lines, restart interval
        return 2
    if marker == 0xCC:  # arithmetic-coding conditioning: 2 bytes per table
        return len(payload) - len(payload) % 2
    pos = 0
    while pos < len(payload):  # DQT: precision/id + 64 values; DHT: class/id + 16 counts + codes
        if marker == 0xDB:
            size = 1 + 64 * (2 if payload[pos] >> 4 else 1)
        elif pos + 17 <= len(payload):
            size = 17 + sum(payload[pos + 1 : pos + 17])
        else:
            break
        if pos + size > len(payload):
            break
        pos += size
    return pos


def _photoshop_summary(resources: bytes) -> str:
    names = []
    pos = 0
    while pos + 12 <= len(resources) and resources[pos : pos + 4] == b"8BIM":
        (resource,) = struct.unpack_from(">H", resources, pos + 4)
        name_length = resources[pos + 6]
        pos += 6 + ((name_length + 2) & ~1)
        (size,) = struct.unpack_from(">I", resources, pos)
        pos += 4 + size + (size & 1)
        names.append({0x0404: "IPTC records (captions, names, places)", 0x040C: "thumbnail",
                      0x040F: "ICC profile", 0x0422: "EXIF", 0x0424: "XMP"}.get(resource, f"resource {resource:#06x}"))
    return ", ".join(names) or f"{len(resources)} bytes"


# --- EXIF and TIFF directories ------------------------------------------------------------------

_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8}
_EXIF_IFD, _GPS_IFD, _INTEROP_IFD = 0x8769, 0x8825, 0xA005

_EXIF_HIGHLIGHTS = [  # (tags, words), in the order they are listed
    ({0xA431, 0xA435, 0xC62F, 0xA420}, "serial numbers or unique image ID"),
    ({0xA430, 0x013B, 0x8298, 0x9C9D}, "owner, artist or copyright names"),
    ({0x927C}, "MakerNote (camera maker's private data)"),
    ({0x010F, 0x0110, 0xA433, 0xA434}, "camera or lens make and model"),
    ({0x0132, 0x9003, 0x9004}, "dates and times"),
    ({0x010E, 0x9286, 0x9C9C, 0x9C9E, 0x9C9F}, "descriptions or comments"),
    ({0x0131}, "software"),
]


class _Tiff:
    """Just enough of a TIFF reader to walk image file directories: classic TIFF and BigTIFF, either
    byte order, the header read as Pillow reads it (so every TIFF `blur` decodes can be checked)."""

    def __init__(self, data: bytes):
        if data[:2] not in (b"II", b"MM") or data[2:4] not in (b"*\x00", b"\x00*", b"+\x00", b"\x00+"):
            raise ValueError("not a TIFF structure")
        self.order = "<" if data[:2] == b"II" else ">"
        self.big = data[2] == 0x2B
        self.data = data
        self.first = self._unpack("Q", 8)[0] if self.big else self._unpack("I", 4)[0]
        self.end = 16 if self.big else 8
        """One past the last byte any directory or value refers to."""

    def _unpack(self, fmt: str, offset: int) -> tuple:
        return struct.unpack_from(self.order + fmt, self.data, offset)

    def directory(self, offset: int) -> tuple[dict[int, tuple[int, int, int]], int]:
        """{tag: (type, count, value offset)} of the directory at `offset`, and the next one's offset."""
        count_format, entry_format, entry_size, inline = ("Q", "HHQ", 20, 8) if self.big else ("H", "HHI", 12, 4)
        (count,) = self._unpack(count_format, offset)
        first = offset + struct.calcsize(count_format)
        entries = {}
        for i in range(count):
            tag, kind, number = self._unpack(entry_format, first + entry_size * i)
            size = _TYPE_SIZES.get(kind, 1) * number
            where = first + entry_size * i + entry_size - inline
            if size > inline:
                (where,) = self._unpack(count_format if self.big else "I", where)
                if where + size > len(self.data):
                    raise ValueError(f"tag {tag} points past the end of the file")
            entries[tag] = (kind, number, where)
            self.end = max(self.end, where + size)
        after = first + entry_size * count
        self.end = max(self.end, after + inline)
        return entries, self._unpack("Q" if self.big else "I", after)[0]

    def numbers(self, entry: tuple[int, int, int]) -> list[int]:
        kind, number, where = entry
        fmt = {3: "H", 4: "I", 13: "I", 16: "Q", 18: "Q"}.get(kind)
        return list(self._unpack(f"{number}{fmt}", where)) if fmt else []

    def chain(self, offset: int, limit: int = 64) -> list[dict[int, tuple[int, int, int]]]:
        """The directories linked from `offset` (pages, or the EXIF thumbnail's IFD1)."""
        found, seen = [], set()
        while offset and offset not in seen and len(found) < limit:
            seen.add(offset)
            entries, offset = self.directory(offset)
            found.append(entries)
        return found

    def sub(self, entries: dict, tag: int) -> dict:
        return self.directory(self.numbers(entries[tag])[0])[0] if tag in entries else {}


def _exif_summary(block: bytes) -> str:
    """Words for what an EXIF block (a TIFF structure) holds; never the values themselves."""
    start = min((i for i in (block.find(b"II*\x00"), block.find(b"MM\x00*")) if i >= 0), default=-1)
    try:
        tiff = _Tiff(block[start:] if start >= 0 else block)
        directories = tiff.chain(tiff.first, limit=2)
        ifd0 = directories[0] if directories else {}
        tags = set(ifd0) | set(tiff.sub(ifd0, _EXIF_IFD)) | set(tiff.sub(ifd0, _INTEROP_IFD))
        gps = tiff.sub(ifd0, _GPS_IFD)
    except (struct.error, ValueError, IndexError):
        return f"{len(block)} bytes (malformed, so possibly hiding more)"
    words = ["GPS position"] if set(gps) - {0} else []
    words += [text for group, text in _EXIF_HIGHLIGHTS if group & tags]
    if len(directories) > 1:
        words.append("embedded thumbnail (a small copy of the unblurred photo)")
    return ", ".join(words + [f"{len(tags | set(gps))} tags in all"])


# Directory entries of a TIFF that only describe the pixels.
_TIFF_BASICS = {
    254, 255, 256, 257, 258, 259, 262, 266, 273, 274, 277, 278, 279, 282, 283, 284, 296, 317, 320,
    322, 323, 324, 325, 338, 339, 347, 529, 530, 531, 532,
}
_TIFF_NAMED = {
    _EXIF_IFD: "EXIF", _GPS_IFD: "GPS", 700: "XMP", 33723: "IPTC", 34377: "Photoshop resources",
    34675: "ICC profile", 330: "sub-images", _INTEROP_IFD: "EXIF interoperability",
}


def _tiff(data: bytes) -> list[Finding]:
    from PIL import TiffTags

    tiff = _Tiff(data)
    directories = tiff.chain(tiff.first)
    findings = []
    for page, entries in enumerate(directories):
        where = f"page {page + 1}: " if page else ""
        for tag in sorted(set(entries) & set(_TIFF_NAMED)):
            detail = _exif_summary(data) if tag == _EXIF_IFD else ""
            if tag == _GPS_IFD:
                detail = "GPS position"
            findings.append(Finding(f"{_TIFF_NAMED[tag]} (TIFF tag {tag})", where + detail))
        others = sorted(set(entries) - _TIFF_BASICS - set(_TIFF_NAMED))
        if others:
            names = ", ".join(TiffTags.lookup(tag).name or str(tag) for tag in others)
            findings.append(Finding("TIFF tags", where + names))
        for offsets, counts in ((273, 279), (324, 325)):
            if offsets in entries and counts in entries:
                for offset, count in zip(tiff.numbers(entries[offsets]), tiff.numbers(entries[counts])):
                    tiff.end = max(tiff.end, offset + count)
        for tag in (_EXIF_IFD, _GPS_IFD):
            tiff.sub(entries, tag)  # extends tiff.end over those directories
    if len(directories) > 1:
        findings.append(Finding("more images", f"{len(directories) - 1} more pages or thumbnails after the first"))
    if tiff.end < len(data):
        findings.append(_trailer(data[tiff.end :], tiff.end, "last part of the image"))
    return findings


# --- PNG ----------------------------------------------------------------------------------------

_PNG_BASICS = {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"sBIT", b"bKGD", b"pHYs"}


def _png(data: bytes) -> list[Finding]:
    findings = []
    pos = 8
    while True:
        if pos + 8 > len(data):
            findings.append(Finding("damaged structure", "the image ends without an IEND chunk"))
            return findings
        length, kind = struct.unpack_from(">I4s", data, pos)
        body = data[pos + 8 : pos + 8 + length]
        if len(body) < length:
            raise ValueError(f"chunk {kind!r} at byte {pos} runs past the end of the file")
        start, pos = pos, pos + 12 + length
        if kind == b"IEND":
            break
        if kind not in _PNG_BASICS:
            findings.append(_png_chunk(kind, body, start))
    if pos < len(data):
        findings.append(_trailer(data[pos:], pos, "IEND chunk"))
    return findings


def _png_chunk(kind: bytes, body: bytes, offset: int) -> Finding:
    name = kind.decode("latin-1")
    if kind in (b"tEXt", b"zTXt", b"iTXt"):
        keyword = body.split(b"\x00", 1)[0].decode("latin-1", "replace")
        return Finding(f"text ({name})", f"'{keyword}'", offset)
    if kind == b"eXIf":
        return Finding("EXIF (eXIf)", _exif_summary(body), offset)
    if kind == b"iCCP":
        return Finding("ICC profile (iCCP)", "colour profile (names a device or software, and a date)", offset)
    if kind == b"tIME":
        return Finding("time (tIME)", "when the image was last modified", offset)
    if kind in (b"acTL", b"fcTL", b"fdAT"):
        return Finding(f"animation ({name})", "more frames than the one a viewer may show", offset)
    return Finding(f"chunk {name}", f"{len(body)} bytes, starting {_preview(body)}", offset)


# --- WebP (RIFF) --------------------------------------------------------------------------------

_WEBP_BASICS = {b"VP8 ", b"VP8L", b"VP8X", b"ALPH"}


def _webp(data: bytes) -> list[Finding]:
    (size,) = struct.unpack_from("<I", data, 4)
    end = min(8 + size, len(data))
    findings = []
    pos = 12
    while pos + 8 <= end:
        kind, length = struct.unpack_from("<4sI", data, pos)
        body = data[pos + 8 : pos + 8 + length]
        start, pos = pos, pos + 8 + length + (length & 1)
        if kind in _WEBP_BASICS:
            continue
        name = kind.decode("latin-1")
        if kind == b"EXIF":
            findings.append(Finding("EXIF", _exif_summary(body), start))
        elif kind == b"XMP ":
            findings.append(Finding("XMP", f"{length} bytes of descriptive metadata", start))
        elif kind == b"ICCP":
            findings.append(Finding("ICC profile", "colour profile (names a device or software, and a date)", start))
        elif kind in (b"ANIM", b"ANMF"):
            findings.append(Finding(f"animation ({name})", "more frames than the one a viewer may show", start))
        else:
            findings.append(Finding(f"chunk {name.strip()}", f"{length} bytes, starting {_preview(body)}", start))
    if 8 + size < len(data):
        findings.append(_trailer(data[8 + size :], 8 + size, "RIFF container"))
    return findings


# --- GIF ----------------------------------------------------------------------------------------


def _gif(data: bytes) -> list[Finding]:
    findings = []
    flags = data[10]
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    images = 0
    while True:
        block = data[pos]
        if block == 0x3B:
            pos += 1
            break
        if block == 0x21:
            label, start = data[pos + 1], pos
            first = data[pos + 3 : pos + 3 + data[pos + 2]]
            pos = _skip_sub_blocks(data, pos + 2)
            if label == 0xFE:
                findings.append(Finding("comment", "text comment block", start))
            elif label == 0xFF and first[:11] not in (b"NETSCAPE2.0", b"ANIMEXTS1.0"):
                findings.append(Finding("application block", first[:11].decode("latin-1", "replace"), start))
            elif label == 0x01:
                findings.append(Finding("plain text block", "text drawn over the image", start))
        elif block == 0x2C:
            images += 1
            flags = data[pos + 9]
            pos += 10 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0) + 1  # + LZW minimum code size
            pos = _skip_sub_blocks(data, pos)
        else:
            raise ValueError(f"unknown block {block:#04x} at byte {pos}")
    if images > 1:
        findings.append(Finding("more images", f"{images - 1} more frames after the first"))
    if pos < len(data):
        findings.append(_trailer(data[pos:], pos, "GIF trailer"))
    return findings


def _skip_sub_blocks(data: bytes, pos: int) -> int:
    while data[pos]:
        pos += data[pos] + 1
    return pos + 1


# --- BMP ----------------------------------------------------------------------------------------


def _bmp(data: bytes) -> list[Finding]:
    (size,) = struct.unpack_from("<I", data, 2)
    (header,) = struct.unpack_from("<I", data, 14)
    findings = []
    if header >= 124:
        colour_space = data[14 + 56 : 14 + 60]
        if colour_space == b"DEBM":
            findings.append(Finding("ICC profile", "embedded colour profile"))
        elif colour_space == b"KNIL":
            findings.append(Finding("linked ICC profile", "a file name or path of a colour profile"))
    if size < len(data):
        findings.append(_trailer(data[size:], size, "size its header declares"))
    return findings


# --- HEIF ---------------------------------------------------------------------------------------

_HEIF_TOP_BOXES = {b"ftyp", b"meta", b"mdat", b"free", b"skip"}


def _heif(data: bytes) -> list[Finding]:
    import pillow_heif

    findings = []
    pos = 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, pos)
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, pos + 8)
        elif size == 0:
            size = len(data) - pos
        if size < 8:
            raise ValueError(f"box at byte {pos} has an impossible size")
        if kind not in _HEIF_TOP_BOXES:
            findings.append(Finding(f"box {kind.decode('latin-1')}", f"{size} bytes at the top level", pos))
        pos += size
    if pos < len(data):
        findings.append(_trailer(data[pos:], pos, "last box"))
    try:
        heif = pillow_heif.open_heif(data, convert_hdr_to_8bit=False)
    except Exception as exc:  # libheif raises its own types for any damage
        raise UnreadableImage(f"the HEIF structure is damaged ({exc})") from None
    for number, image in enumerate(heif, 1):
        where = f"image {number}: " if len(heif) > 1 else ""
        info = image.info
        if info.get("exif"):
            findings.append(Finding("EXIF", where + _exif_summary(info["exif"])))
        if info.get("xmp"):
            findings.append(Finding("XMP", f"{where}{len(info['xmp'])} bytes of descriptive metadata"))
        if info.get("icc_profile") and info.get("icc_profile_type") != "nclx":
            findings.append(Finding("ICC profile", where + "colour profile (names a device or software, and a date)"))
        for block in info.get("metadata") or []:
            findings.append(Finding(f"metadata item ({block.get('type', '?')})", where + f"{len(block.get('data') or b'')} bytes"))
        if info.get("thumbnails"):
            findings.append(Finding("thumbnail", where + f"{len(info['thumbnails'])} small copies of the photo"))
        if info.get("depth_images"):
            findings.append(Finding("depth map", where + "a depth image (a 3-D outline of faces)"))
        if info.get("aux"):
            findings.append(Finding("auxiliary images", where + ", ".join(info["aux"])))
    if len(heif) > 1:
        findings.append(Finding("more images", f"{len(heif) - 1} more top-level images"))
    return findings


# --- shared -------------------------------------------------------------------------------------


def _trailer(extra: bytes, offset: int, after: str) -> Finding:
    if extra.lstrip(b"\x00") == b"":
        detail = f"{len(extra)} zero bytes after the {after}"
    elif b"\xff\xd8\xff" in extra[:64]:
        detail = f"{len(extra)} bytes after the {after}, holding another JPEG image (preview or secondary image)"
    else:
        detail = f"{len(extra)} bytes after the {after}, starting {_preview(extra)}"
    return Finding("bytes after the end", detail, offset)


def _preview(data: bytes, length: int = 16) -> str:
    text = "".join(chr(b) if 32 <= b < 127 else "." for b in data[:length])
    return repr(text + ("…" if len(data) > length else ""))


_WALKERS = {"JPEG": _jpeg, "PNG": _png, "WEBP": _webp, "TIFF": _tiff, "GIF": _gif, "BMP": _bmp, "HEIF": _heif}
