"""BMP: embedded or linked colour profiles, bytes after the declared size."""

from __future__ import annotations

import struct

from .findings import Finding, trailer


def bmp_findings(data: bytes) -> list[Finding]:
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
        findings.append(trailer(data[size:], size, "size its header declares"))
    return findings
