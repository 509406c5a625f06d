"""HEIF/HEIC: top-level boxes, and what libheif lists for each image (EXIF, XMP, thumbnails, depth maps)."""

from __future__ import annotations

import struct

from ..errors import UnreadableImage
from .exif import exif_summary
from .findings import Finding, trailer

_HEIF_TOP_BOXES = {b"ftyp", b"meta", b"mdat", b"free", b"skip"}


def heif_findings(data: bytes) -> list[Finding]:
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
        findings.append(trailer(data[pos:], pos, "last box"))
    try:
        heif = pillow_heif.open_heif(data, convert_hdr_to_8bit=False)
    except Exception as exc:  # libheif raises its own types for any damage
        raise UnreadableImage(f"the HEIF structure is damaged ({exc})") from None
    for number, image in enumerate(heif, 1):
        where = f"image {number}: " if len(heif) > 1 else ""
        info = image.info
        if info.get("exif"):
            findings.append(Finding("EXIF", where + exif_summary(info["exif"])))
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
