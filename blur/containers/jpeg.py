"""JPEG: segments on an allow-list (the frame, tables and scans, and the bare JFIF header `blur` writes)."""

from __future__ import annotations

import struct

from .exif import exif_summary
from .findings import Finding, preview, trailer

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


def jpeg_findings(data: bytes) -> list[Finding]:
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
        findings.append(trailer(data[pos:], pos, "end-of-image marker"))
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
            return Finding("EXIF", exif_summary(payload[6:]), offset)
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
        return Finding(f"APP{marker - 0xE0} segment", f"{len(payload)} bytes, starting {preview(payload)}", offset)
    return Finding(f"unknown segment FF{marker:02X}", f"{len(payload)} bytes, starting {preview(payload)}", offset)


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
