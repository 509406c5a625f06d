"""WebP: every RIFF chunk beyond the image's basics."""

from __future__ import annotations

import struct

from .exif import exif_summary
from .findings import Finding, preview, trailer

_WEBP_BASICS = {b"VP8 ", b"VP8L", b"VP8X", b"ALPH"}


def webp_findings(data: bytes) -> list[Finding]:
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
            findings.append(Finding("EXIF", exif_summary(body), start))
        elif kind == b"XMP ":
            findings.append(Finding("XMP", f"{length} bytes of descriptive metadata", start))
        elif kind == b"ICCP":
            findings.append(Finding("ICC profile", "colour profile (names a device or software, and a date)", start))
        elif kind in (b"ANIM", b"ANMF"):
            findings.append(Finding(f"animation ({name})", "more frames than the one a viewer may show", start))
        else:
            findings.append(Finding(f"chunk {name.strip()}", f"{length} bytes, starting {preview(body)}", start))
    if 8 + size < len(data):
        findings.append(trailer(data[8 + size :], 8 + size, "RIFF container"))
    return findings
