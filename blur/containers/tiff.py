"""TIFF and BigTIFF: directory entries beyond those that describe the pixels, more pages, bytes after the end."""

from __future__ import annotations

from .exif import EXIF_IFD, GPS_IFD, INTEROP_IFD, TiffStructure, exif_summary
from .findings import Finding, trailer

# Directory entries of a TIFF that only describe the pixels.
_TIFF_BASICS = {
    254, 255, 256, 257, 258, 259, 262, 266, 273, 274, 277, 278, 279, 282, 283, 284, 296, 317, 320,
    322, 323, 324, 325, 338, 339, 347, 529, 530, 531, 532,
}
_TIFF_NAMED = {
    EXIF_IFD: "EXIF", GPS_IFD: "GPS", 700: "XMP", 33723: "IPTC", 34377: "Photoshop resources",
    34675: "ICC profile", 330: "sub-images", INTEROP_IFD: "EXIF interoperability",
}


def tiff_findings(data: bytes) -> list[Finding]:
    from PIL import TiffTags

    tiff = TiffStructure(data)
    directories = tiff.chain(tiff.first)
    findings = []
    for page, entries in enumerate(directories):
        where = f"page {page + 1}: " if page else ""
        for tag in sorted(set(entries) & set(_TIFF_NAMED)):
            detail = exif_summary(data) if tag == EXIF_IFD else ""
            if tag == GPS_IFD:
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
        for tag in (EXIF_IFD, GPS_IFD):
            tiff.sub(entries, tag)  # extends tiff.end over those directories
    if len(directories) > 1:
        findings.append(Finding("more images", f"{len(directories) - 1} more pages or thumbnails after the first"))
    if tiff.end < len(data):
        findings.append(trailer(data[tiff.end :], tiff.end, "last part of the image"))
    return findings
