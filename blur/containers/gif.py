"""GIF: comments, application and text blocks, more frames, bytes after the trailer."""

from __future__ import annotations

from .findings import Finding, trailer


def gif_findings(data: bytes) -> list[Finding]:
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
        findings.append(trailer(data[pos:], pos, "GIF trailer"))
    return findings


def _skip_sub_blocks(data: bytes, pos: int) -> int:
    while data[pos]:
        pos += data[pos] + 1
    return pos + 1
