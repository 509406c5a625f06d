"""A tainted corpus: small photos of a face carrying every kind of metadata a camera, phone or editor
writes, each piece holding a unique marker string, so a test can tell exactly what leaked.

`write_corpus(folder)` writes one file per format and returns, for each, the markers it carries.
The face comes from samples/astronaut.jpg; the metadata blocks are built byte by byte here
(EXIF with GPS, serials, owner, MakerNote and an IFD1 thumbnail; XMP and extended XMP; IPTC; an
ICC profile; JUMBF; an MPF secondary image; trailers), independent of the code under test.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pillow_heif
from PIL import Image, ImageCms, PngImagePlugin, TiffImagePlugin

pillow_heif.register_heif_opener()

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
PREFIX = b"SFMARK"
"""Every marker starts with this, so a search for the prefix catches any marker at all."""


@dataclass
class Tainted:
    path: Path
    markers: dict[str, bytes] = field(default_factory=dict)
    """What each marker stands for -> the marker bytes planted in the file."""

    def mark(self, what: str) -> bytes:
        value = PREFIX + b"-" + self.path.suffix[1:].encode() + b"-" + what.encode()
        self.markers[what] = value
        return value


def face_pixels(height: int = 144, width: int = 128) -> np.ndarray:
    """An RGB crop around the astronaut's face: a real face the detector finds."""
    with Image.open(SAMPLES / "astronaut.jpg") as image:
        image = image.convert("RGB").crop((140, 20, 310, 210))
        return np.asarray(image.resize((width, height), Image.Resampling.LANCZOS))


def jpeg_bytes(pixels: np.ndarray, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90, **options)
    return buffer.getvalue()


# --- building blocks ----------------------------------------------------------------------------


def ascii_(text: bytes) -> tuple[int, int, bytes]:
    return 2, len(text) + 1, text + b"\x00"


def undefined(data: bytes) -> tuple[int, int, bytes]:
    return 7, len(data), data


def short(value: int) -> tuple[int, int, bytes]:
    return 3, 1, struct.pack("<H", value)


def long_(value: int) -> tuple[int, int, bytes]:
    return 4, 1, struct.pack("<I", value)


def rationals(*values: tuple[int, int]) -> tuple[int, int, bytes]:
    return 5, len(values), b"".join(struct.pack("<II", n, d) for n, d in values)


def tiff_structure(ifd0: dict, exif: dict, gps: dict, ifd1: dict, thumbnail: bytes) -> bytes:
    """A little-endian TIFF structure (an EXIF block) with IFD0 -> Exif, GPS sub-IFDs and IFD1 + thumbnail."""
    ifd0 = {**ifd0, 0x8769: long_(0), 0x8825: long_(0)}
    ifd1 = {**ifd1, 0x0201: long_(0), 0x0202: long_(len(thumbnail))}
    order = [ifd0, exif, gps, ifd1]

    def size(entries: dict) -> int:
        data = sum(len(v[2]) + (len(v[2]) & 1) for v in entries.values() if len(v[2]) > 4)
        return 2 + 12 * len(entries) + 4 + data

    starts = [8]
    for entries in order[:-1]:
        starts.append(starts[-1] + size(entries))
    thumbnail_at = starts[-1] + size(ifd1)
    ifd0[0x8769], ifd0[0x8825] = long_(starts[1]), long_(starts[2])
    ifd1[0x0201] = long_(thumbnail_at)
    nexts = [starts[3], 0, 0, 0]  # IFD0 links to IFD1 (the thumbnail's directory)
    out = bytearray(b"II*\x00" + struct.pack("<I", 8))
    for entries, start, following in zip(order, starts, nexts):
        assert len(out) == start
        data_at = start + 2 + 12 * len(entries) + 4
        table, data = bytearray(struct.pack("<H", len(entries))), bytearray()
        for tag in sorted(entries):
            kind, count, value = entries[tag]
            if len(value) > 4:
                table += struct.pack("<HHII", tag, kind, count, data_at + len(data))
                data += value + b"\x00" * (len(value) & 1)
            else:
                table += struct.pack("<HHI", tag, kind, count) + value.ljust(4, b"\x00")
        out += table + struct.pack("<I", following) + data
    return bytes(out + thumbnail)


def exif_block(t: Tainted, thumbnail_pixels: np.ndarray) -> bytes:
    """An EXIF TIFF structure with GPS, serial numbers, owner, MakerNote and a thumbnail of the face."""
    thumbnail = jpeg_bytes(thumbnail_pixels, comment=t.mark("exif-thumbnail"))
    ifd0 = {
        0x010F: ascii_(t.mark("exif-make")), 0x0110: ascii_(t.mark("exif-model")),
        0x013B: ascii_(t.mark("exif-artist")), 0x8298: ascii_(t.mark("exif-copyright")),
        0x0131: ascii_(t.mark("exif-software")), 0x0132: ascii_(b"2001:09:11 08:46:00"),
        0x010E: ascii_(t.mark("exif-description")),
    }
    exif = {
        0xA431: ascii_(t.mark("exif-body-serial")), 0xA435: ascii_(t.mark("exif-lens-serial")),
        0xA430: ascii_(t.mark("exif-owner")), 0xA420: ascii_(t.mark("exif-unique-id")),
        0x927C: undefined(b"Nikon\x00\x02\x10\x00\x00" + t.mark("exif-makernote")),
        0x9286: undefined(b"ASCII\x00\x00\x00" + t.mark("exif-user-comment")),
        0x9003: ascii_(b"2001:09:11 08:46:00"),
    }
    gps = {
        0x0000: (1, 4, bytes([2, 3, 0, 0])),
        0x0001: ascii_(b"N"), 0x0002: rationals((40, 1), (42, 1), (4600, 100)),
        0x0003: ascii_(b"W"), 0x0004: rationals((74, 1), (0, 1), (2100, 100)),
        0x0012: ascii_(t.mark("gps-map-datum")),
        0x001B: undefined(b"ASCII\x00\x00\x00" + t.mark("gps-processing-method")),
    }
    ifd1 = {0x0103: short(6), 0x011A: rationals((72, 1)), 0x011B: rationals((72, 1)), 0x0128: short(2)}
    return tiff_structure(ifd0, exif, gps, ifd1, thumbnail)


def xmp_packet(body: bytes, extended_guid: bytes | None = None) -> bytes:
    note = b' xmlns:xmpNote="http://ns.adobe.com/xmp/note/" xmpNote:HasExtendedXMP="' + extended_guid + b'"' if extended_guid else b""
    return (
        b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"' + note + b'>'
        b'<dc:creator><rdf:Seq><rdf:li>' + body + b'</rdf:li></rdf:Seq></dc:creator>'
        b'</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    )


def icc_profile(marker: bytes) -> bytes:
    """An sRGB profile (valid for colour management) with one more text tag holding `marker`."""
    profile = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    (count,) = struct.unpack_from(">I", profile, 128)
    table_end = 132 + 12 * count
    tags = [list(struct.unpack_from(">4sII", profile, 132 + 12 * i)) for i in range(count)]
    for tag in tags:
        tag[1] += 12  # the tag table grows by one entry
    text = b"text\x00\x00\x00\x00" + marker + b"\x00"
    body = bytes(profile[table_end:])
    body += b"\x00" * (-len(body) % 4)
    tags.append([b"dmdd", 128 + 4 + 12 * (count + 1) + len(body), len(text)])
    out = bytearray(profile[:128]) + struct.pack(">I", count + 1)
    out += b"".join(struct.pack(">4sII", *tag) for tag in tags) + body + text
    out[84:100] = bytes(16)  # profile ID (an MD5) no longer matches: zero means "not computed"
    out[0:4] = struct.pack(">I", len(out))
    return bytes(out)


def iptc_records(t: Tainted) -> bytes:
    records = b"\x1c\x02\x00\x00\x02\x00\x04"
    for number, what in ((80, "iptc-byline"), (90, "iptc-city"), (116, "iptc-copyright"), (120, "iptc-caption")):
        value = t.mark(what)
        records += struct.pack(">BBBH", 0x1C, 2, number, len(value)) + value
    return records


def photoshop_iptc(records: bytes) -> bytes:
    resource = b"8BIM\x04\x04\x00\x00" + struct.pack(">I", len(records)) + records + b"\x00" * (len(records) & 1)
    return b"Photoshop 3.0\x00" + resource


def jumbf_box(marker: bytes) -> bytes:
    """An APP11 payload: JPEG XT header + a JUMBF superbox (C2PA-style description + JSON content)."""
    label = b"c2pa\x00"
    description = b"jumd" + bytes.fromhex("6332706100110010800000aa00389b71") + b"\x03" + label
    description = struct.pack(">I", 4 + len(description)) + description
    content = b"json" + b'{"author": "' + marker + b'"}'
    content = struct.pack(">I", 4 + len(content)) + content
    superbox = b"jumb" + description + content
    superbox = struct.pack(">I", 4 + len(superbox)) + superbox
    return b"JP" + b"\x00\x01" + struct.pack(">I", 1) + superbox


def segment(marker: int, payload: bytes) -> bytes:
    assert len(payload) + 2 <= 0xFFFF
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


# --- one file per format ------------------------------------------------------------------------


def tainted_jpeg(folder: Path) -> Tainted:
    """An MPO-style JPEG: every APPn kind, a comment, a secondary image, and bytes after the end."""
    t = Tainted(folder / "jpeg.jpg")
    pixels = face_pixels()
    secondary = jpeg_bytes(pixels[::2, ::2].copy(), comment=t.mark("mpf-secondary-image"))
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "MPO", save_all=True, append_images=[Image.open(io.BytesIO(secondary))], quality=90)
    mpo = buffer.getvalue()
    second = mpo.rfind(b"\xff\xd8\xff")
    # Mark the secondary frame itself (after its SOI, so the MPF offsets stay right).
    mpo = mpo[: second + 2] + segment(0xFE, t.markers["mpf-secondary-image"]) + mpo[second + 2 :]
    guid_body = xmp_packet(t.mark("xmp-extended"))
    guid = hashlib.md5(guid_body).hexdigest().upper().encode()
    extended = b"http://ns.adobe.com/xmp/extension/\x00" + guid + struct.pack(">II", len(guid_body), 0) + guid_body
    segments = [
        segment(0xE1, b"Exif\x00\x00" + exif_block(t, pixels[::4, ::4].copy())),
        segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00" + xmp_packet(t.mark("xmp"), guid)),
        segment(0xE1, extended),
        segment(0xE2, b"ICC_PROFILE\x00\x01\x01" + icc_profile(t.mark("icc"))),
        segment(0xED, photoshop_iptc(iptc_records(t))),
        segment(0xEB, jumbf_box(t.mark("jumbf"))),
        segment(0xFE, t.mark("comment")),
    ]
    # Inserted before everything Pillow wrote (incl. MPF), so MPF's relative offsets stay valid.
    data = mpo[:2] + b"".join(segments) + mpo[2:] + t.mark("after-eoi") + b"\x00" * 7
    t.path.write_bytes(data)
    return t


def tainted_png(folder: Path) -> Tainted:
    t = Tainted(folder / "png.png")
    pixels = face_pixels()
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", t.mark("text").decode())
    info.add_text("Comment", t.mark("ztxt").decode(), zip=True)
    info.add_itxt("Description", t.mark("itxt").decode(), "en", "Beschreibung")
    info.add_itxt("Title", t.mark("itxt-compressed").decode(), zip=True)
    info.add(b"tIME", struct.pack(">HBBBBB", 2001, 9, 11, 8, 46, 0))
    info.add(b"prVt", t.mark("private-chunk"))
    info.add(b"prVa", t.mark("private-chunk-after-idat"), after_idat=True)
    buffer = io.BytesIO()
    exif = exif_block(t, pixels[::4, ::4].copy())
    Image.fromarray(pixels).save(buffer, "PNG", pnginfo=info, exif=exif, icc_profile=icc_profile(t.mark("icc")))
    t.path.write_bytes(buffer.getvalue() + t.mark("after-iend"))
    return t


def tainted_webp(folder: Path) -> Tainted:
    t = Tainted(folder / "webp.webp")
    pixels = face_pixels()
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(
        buffer, "WEBP", quality=90, exif=b"Exif\x00\x00" + exif_block(t, pixels[::4, ::4].copy()),
        xmp=xmp_packet(t.mark("xmp")), icc_profile=icc_profile(t.mark("icc")),
    )
    data = buffer.getvalue()
    unknown = t.mark("unknown-chunk")
    chunk = b"SFmk" + struct.pack("<I", len(unknown)) + unknown + b"\x00" * (len(unknown) & 1)
    riff = data[12:] + chunk
    data = b"RIFF" + struct.pack("<I", 4 + len(riff)) + b"WEBP" + riff
    t.path.write_bytes(data + t.mark("after-riff"))
    return t


def tainted_heic(folder: Path) -> Tainted:
    t = Tainted(folder / "heic.heic")
    pixels = face_pixels()
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(
        buffer, "HEIF", quality=80, exif=b"Exif\x00\x00" + exif_block(t, pixels[::4, ::4].copy()),
        xmp=xmp_packet(t.mark("xmp")), icc_profile=icc_profile(t.mark("icc")),
    )
    t.path.write_bytes(buffer.getvalue())
    return t


def tainted_tiff(folder: Path) -> Tainted:
    t = Tainted(folder / "tiff.tif")
    pixels = face_pixels()
    tags = TiffImagePlugin.ImageFileDirectory_v2()
    tags[0x010F] = t.mark("make").decode()
    tags[0x013B] = t.mark("artist").decode()
    tags[0x8298] = t.mark("copyright").decode()
    tags[0x010E] = t.mark("description").decode()
    tags[700] = xmp_packet(t.mark("xmp"))
    tags[33723] = iptc_records(t)
    tags[0x8825] = {1: "N", 2: (40.0, 42.0, 46.0), 3: "W", 4: (74.0, 0.0, 21.0), 0x12: t.mark("gps-map-datum").decode()}
    tags[0x8769] = {0xA431: t.mark("body-serial").decode(), 0xA430: t.mark("owner").decode()}
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "TIFF", tiffinfo=tags, icc_profile=icc_profile(t.mark("icc")))
    t.path.write_bytes(buffer.getvalue())
    return t


MAKERS = (tainted_jpeg, tainted_png, tainted_webp, tainted_heic, tainted_tiff)


def write_corpus(folder: Path) -> list[Tainted]:
    """Write the tainted corpus into `folder`; one Tainted per file."""
    folder.mkdir(parents=True, exist_ok=True)
    return [make(folder) for make in MAKERS]


def zlib_streams(data: bytes) -> list[bytes]:
    """Every zlib (or raw deflate in a zlib wrapper) stream that decompresses from some offset of `data`."""
    found = []
    for offset in range(len(data) - 2):
        if data[offset] & 0x0F != 8 or ((data[offset] << 8) | data[offset + 1]) % 31:
            continue
        try:
            found.append(zlib.decompressobj().decompress(data[offset:], 1 << 24))
        except zlib.error:
            continue
    return found
