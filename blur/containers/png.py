"""PNG: every chunk beyond the image's basics."""

from __future__ import annotations

import struct

from .exif import exif_summary
from .findings import Finding, preview, trailer

_PNG_BASICS = {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"sBIT", b"bKGD", b"pHYs"}


def png_findings(data: bytes) -> list[Finding]:
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
        findings.append(trailer(data[pos:], pos, "IEND chunk"))
    return findings


def _png_chunk(kind: bytes, body: bytes, offset: int) -> Finding:
    name = kind.decode("latin-1")
    if kind in (b"tEXt", b"zTXt", b"iTXt"):
        keyword = body.split(b"\x00", 1)[0].decode("latin-1", "replace")
        return Finding(f"text ({name})", f"'{keyword}'", offset)
    if kind == b"eXIf":
        return Finding("EXIF (eXIf)", exif_summary(body), offset)
    if kind == b"iCCP":
        return Finding("ICC profile (iCCP)", "colour profile (names a device or software, and a date)", offset)
    if kind == b"tIME":
        return Finding("time (tIME)", "when the image was last modified", offset)
    if kind in (b"acTL", b"fcTL", b"fdAT"):
        return Finding(f"animation ({name})", "more frames than the one a viewer may show", offset)
    return Finding(f"chunk {name}", f"{len(body)} bytes, starting {preview(body)}", offset)
