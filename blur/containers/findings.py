"""A piece of metadata found in a file, and the words shared by every format's reader."""

from __future__ import annotations

from dataclasses import dataclass


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


def trailer(extra: bytes, offset: int, after: str) -> Finding:
    if extra.lstrip(b"\x00") == b"":
        detail = f"{len(extra)} zero bytes after the {after}"
    elif b"\xff\xd8\xff" in extra[:64]:
        detail = f"{len(extra)} bytes after the {after}, holding another JPEG image (preview or secondary image)"
    else:
        detail = f"{len(extra)} bytes after the {after}, starting {preview(extra)}"
    return Finding("bytes after the end", detail, offset)


def preview(data: bytes, length: int = 16) -> str:
    text = "".join(chr(b) if 32 <= b < 127 else "." for b in data[:length])
    return repr(text + ("…" if len(data) > length else ""))
