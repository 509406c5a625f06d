"""EXIF blocks and TIFF directories: walked to name what they hold, never to read values out."""

from __future__ import annotations

import struct

_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8}
EXIF_IFD, GPS_IFD, INTEROP_IFD = 0x8769, 0x8825, 0xA005

_EXIF_HIGHLIGHTS = [  # (tags, words), in the order they are listed
    ({0xA431, 0xA435, 0xC62F, 0xA420}, "serial numbers or unique image ID"),
    ({0xA430, 0x013B, 0x8298, 0x9C9D}, "owner, artist or copyright names"),
    ({0x927C}, "MakerNote (camera maker's private data)"),
    ({0x010F, 0x0110, 0xA433, 0xA434}, "camera or lens make and model"),
    ({0x0132, 0x9003, 0x9004}, "dates and times"),
    ({0x010E, 0x9286, 0x9C9C, 0x9C9E, 0x9C9F}, "descriptions or comments"),
    ({0x0131}, "software"),
]


class TiffStructure:
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


def exif_summary(block: bytes) -> str:
    """Words for what an EXIF block (a TIFF structure) holds; never the values themselves."""
    start = min((i for i in (block.find(b"II*\x00"), block.find(b"MM\x00*")) if i >= 0), default=-1)
    try:
        tiff = TiffStructure(block[start:] if start >= 0 else block)
        directories = tiff.chain(tiff.first, limit=2)
        ifd0 = directories[0] if directories else {}
        tags = set(ifd0) | set(tiff.sub(ifd0, EXIF_IFD)) | set(tiff.sub(ifd0, INTEROP_IFD))
        gps = tiff.sub(ifd0, GPS_IFD)
    except (struct.error, ValueError, IndexError):
        return f"{len(block)} bytes (malformed, so possibly hiding more)"
    words = ["GPS position"] if set(gps) - {0} else []
    words += [text for group, text in _EXIF_HIGHLIGHTS if group & tags]
    if len(directories) > 1:
        words.append("embedded thumbnail (a small copy of the unblurred photo)")
    return ", ".join(words + [f"{len(tags | set(gps))} tags in all"])
