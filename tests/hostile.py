"""A generated corpus of hostile and unusual image files, and the fuzzing invariant.

Nothing here is a shipped photo: every file is built from a small synthetic picture, then broken
on purpose (empty, truncated, corrupted, mislabelled, with trailers, with huge declared sizes).
Used by tests/test_hostile_*.py and by benchmarks/fuzz.py.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from functools import cache

import numpy as np
import pillow_heif
from PIL import Image, ImageCms

from blur.anonymise import Method
from blur.decode import decode_photo
from blur.encode import encode_image, verify_encoded
from blur.formats import output_format
from blur.errors import BlurError
from blur.pipeline import Settings, anonymise_image
from blur.regions import Region, Shape

OK = "ok"
"""The file must decode to a photo."""
REFUSED = "refused"
"""The file must be refused with a BlurError."""
EITHER = "either"
"""Damaged in a way a decoder may tolerate (e.g. a corrupted JPEG scan): a photo or a BlurError."""


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    extension: str
    expect: str
    real_format: str | None = None
    """Pillow's name for the format the bytes really are, when they decode."""

    @property
    def filename(self) -> str:
        return self.name + self.extension


def picture(width: int = 48, height: int = 40) -> np.ndarray:
    """A small RGB picture with gradients and edges, so encoders and decoders have real work."""
    y, x = np.mgrid[0:height, 0:width]
    red = (x * 255 // max(1, width - 1)).astype(np.uint8)
    green = (y * 255 // max(1, height - 1)).astype(np.uint8)
    blue = (((x // 8 + y // 8) % 2) * 200 + 30).astype(np.uint8)
    return np.dstack([red, green, blue])


def encoded(image: Image.Image, pillow_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, pillow_format, **options)
    return buffer.getvalue()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_from_rows(width: int, height: int, bit_depth: int, colour_type: int, raw_rows: bytes) -> bytes:
    """A PNG built by hand, for layouts Pillow cannot write (16-bit RGB) or lies about size."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(raw_rows, 9))
        + png_chunk(b"IEND", b"")
    )


@cache
def seeds() -> dict[str, tuple[bytes, str, str]]:
    """Valid files: name -> (bytes, extension, Pillow format)."""
    rgb = Image.fromarray(picture())
    rgba = rgb.copy()
    rgba.putalpha(Image.fromarray(picture()[..., 1]))
    grey16 = Image.fromarray(picture()[..., 0].astype(np.uint16) * 257)
    rgb16_rows = b"".join(
        b"\x00" + (row.astype(">u2") * 257).tobytes() for row in picture()
    )
    animated = [Image.fromarray(picture()), Image.fromarray(255 - picture())]
    heif = pillow_heif.from_bytes(mode="RGB", size=rgb.size, data=rgb.tobytes())
    heic = io.BytesIO()
    heif.save(heic, quality=50)
    two_pages = io.BytesIO()
    rgb.save(two_pages, "TIFF", save_all=True, append_images=[rgb.rotate(90)])
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to view
    exif[0x010F] = SECRET.decode()  # camera maker: must not survive
    return {
        "jpeg": (encoded(rgb, "JPEG", quality=90), ".jpg", "JPEG"),
        "jpeg-icc-exif": (encoded(rgb, "JPEG", icc_profile=icc, exif=exif.tobytes()), ".jpg", "JPEG"),
        "png-icc": (encoded(rgb, "PNG", icc_profile=icc), ".png", "PNG"),
        "webp-icc-exif": (encoded(rgb, "WEBP", icc_profile=icc, exif=exif.tobytes()), ".webp", "WEBP"),
        "png-animated": (
            encoded(animated[0], "PNG", save_all=True, append_images=animated[1:], duration=100),
            ".png",
            "PNG",
        ),
        "webp-animated": (
            encoded(animated[0], "WEBP", save_all=True, append_images=animated[1:], duration=100),
            ".webp",
            "WEBP",
        ),
        "jpeg-progressive": (encoded(rgb, "JPEG", progressive=True), ".jpg", "JPEG"),
        "jpeg-grey": (encoded(rgb.convert("L"), "JPEG"), ".jpg", "JPEG"),
        "jpeg-cmyk": (encoded(rgb.convert("CMYK"), "JPEG"), ".jpg", "JPEG"),
        "png": (encoded(rgb, "PNG"), ".png", "PNG"),
        "png-rgba": (encoded(rgba, "PNG"), ".png", "PNG"),
        "png-palette": (encoded(rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16), "PNG"), ".png", "PNG"),
        "png-palette-transparent": (
            encoded(rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16), "PNG", transparency=3),
            ".png",
            "PNG",
        ),
        "png-grey-alpha": (encoded(rgba.convert("LA"), "PNG"), ".png", "PNG"),
        "png-bilevel": (encoded(rgb.convert("1"), "PNG"), ".png", "PNG"),
        "png-grey16": (encoded(grey16, "PNG"), ".png", "PNG"),
        "png-rgb16": (png_from_rows(48, 40, 16, 2, rgb16_rows), ".png", "PNG"),
        "webp": (encoded(rgb, "WEBP", quality=80), ".webp", "WEBP"),
        "webp-lossless-alpha": (encoded(rgba, "WEBP", lossless=True), ".webp", "WEBP"),
        "tiff": (encoded(rgb, "TIFF"), ".tif", "TIFF"),
        "tiff-lzw": (encoded(rgb, "TIFF", compression="tiff_lzw"), ".tif", "TIFF"),
        "tiff-cmyk": (encoded(rgb.convert("CMYK"), "TIFF"), ".tif", "TIFF"),
        "tiff-grey16": (encoded(grey16, "TIFF"), ".tif", "TIFF"),
        "tiff-float": (encoded(Image.fromarray(picture()[..., 0].astype(np.float32) / 255), "TIFF"), ".tif", "TIFF"),
        "tiff-rgba": (encoded(rgba, "TIFF"), ".tif", "TIFF"),
        "bmp": (encoded(rgb, "BMP"), ".bmp", "BMP"),
        "gif": (encoded(rgb.convert("P"), "GIF"), ".gif", "GIF"),
        "heic": (heic.getvalue(), ".heic", "HEIF"),
        "png-1x1": (encoded(Image.new("RGB", (1, 1), (200, 10, 10)), "PNG"), ".png", "PNG"),
        "jpeg-1x1": (encoded(Image.new("RGB", (1, 1), (200, 10, 10)), "JPEG"), ".jpg", "JPEG"),
        "png-1x50000": (encoded(Image.new("RGB", (1, 50000), (90, 90, 90)), "PNG"), ".png", "PNG"),
        "png-50000x1": (encoded(Image.new("RGB", (50000, 1), (90, 90, 90)), "PNG"), ".png", "PNG"),
        "gif-animated": (
            encoded(animated[0], "GIF", save_all=True, append_images=animated[1:], duration=100),
            ".gif",
            "GIF",
        ),
        "tiff-two-pages": (two_pages.getvalue(), ".tif", "TIFF"),
    }


MULTI_FRAME_SEEDS = frozenset({"gif-animated", "tiff-two-pages", "png-animated", "webp-animated"})
"""Valid files the tool refuses on purpose (only single images are anonymised)."""


def bombs() -> dict[str, tuple[bytes, str]]:
    """Tiny files that declare huge pixel counts: name -> (bytes, extension). All must be refused."""
    rgb = Image.fromarray(picture(16, 16))
    jpeg = bytearray(encoded(rgb, "JPEG"))
    sof = jpeg.index(b"\xff\xc0")
    jpeg[sof + 5 : sof + 9] = struct.pack(">HH", 65000, 65000)
    tiff = patch_tiff_tags(encoded(rgb, "TIFF"), {256: 100_000, 257: 100_000})
    gif = bytearray(encoded(rgb.convert("P"), "GIF"))
    gif[6:10] = struct.pack("<HH", 65535, 65535)
    gif_frame = bytearray(gif)
    palette = 3 * 2 ** ((gif_frame[10] & 7) + 1) if gif_frame[10] & 0x80 else 0
    descriptor = gif_frame.index(b"\x2c", 13 + palette)
    gif_frame[descriptor + 5 : descriptor + 9] = struct.pack("<HH", 65535, 65535)
    webp_vp8x = (
        b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00"
        + (16383).to_bytes(3, "little") + (16383).to_bytes(3, "little")
    )
    webp_lossless = encoded(rgb, "WEBP", lossless=True)
    return {
        "bomb-png": (png_from_rows(100_000, 100_000, 8, 2, b"\x00" * 301), ".png"),
        "bomb-png-zeros": (png_from_rows(20_000, 20_000, 8, 0, bytes(20_001) * 64), ".png"),
        "bomb-png-ztxt": (
            _insert_png_chunk(encoded(rgb, "PNG"), png_chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(bytes(64 << 20), 9))),
            ".png",
        ),
        "bomb-jpeg": (bytes(jpeg), ".jpg"),
        "bomb-tiff": (bytes(tiff), ".tif"),
        "bomb-gif-screen": (bytes(gif), ".gif"),
        "bomb-gif-frame": (bytes(gif_frame), ".gif"),
        "bomb-webp-vp8x": (b"RIFF" + struct.pack("<I", 4 + len(webp_vp8x)) + b"WEBP" + webp_vp8x, ".webp"),
        "bomb-webp-vp8x-with-frame": (_webp_with_vp8x(webp_lossless, 16383, 16383), ".webp"),
        "bomb-bmp": (b"BM" + struct.pack("<IHHI", 62, 0, 0, 54) + struct.pack("<IiiHHIIiiII", 40, 60000, 60000, 1, 24, 0, 0, 0, 0, 0, 0) + b"\x00" * 8, ".bmp"),
        "bomb-heic": (_heic_with_size(seeds()["heic"][0], 60000, 60000), ".heic"),
    }


def _insert_png_chunk(png: bytes, chunk: bytes) -> bytes:
    end_of_header = 8 + 25
    return png[:end_of_header] + chunk + png[end_of_header:]


def patch_tiff_tags(tiff: bytes, values: dict[int, int]) -> bytes:
    """Rewrite tags of the first IFD of a little-endian TIFF as single LONG values (e.g. 256/257: size)."""
    tiff = bytearray(tiff)
    assert tiff[:2] == b"II"
    ifd = struct.unpack_from("<I", tiff, 4)[0]
    for index in range(struct.unpack_from("<H", tiff, ifd)[0]):
        entry = ifd + 2 + 12 * index
        tag = struct.unpack_from("<H", tiff, entry)[0]
        if tag in values:
            struct.pack_into("<HHII", tiff, entry, tag, 4, 1, values[tag])
    return bytes(tiff)


def _webp_with_vp8x(webp: bytes, width: int, height: int) -> bytes:
    """A WebP whose extended header declares a canvas of width×height around a small real frame."""
    body = webp[12:]
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00" + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    chunks = vp8x + body
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WEBP" + chunks


def _heic_with_size(heic: bytes, width: int, height: int) -> bytes:
    """Rewrite the 'ispe' (image spatial extent) properties of a HEIC file."""
    data = bytearray(heic)
    start = 0
    while (at := data.find(b"ispe", start)) >= 0:
        struct.pack_into(">II", data, at + 8, width, height)  # after the box type: version+flags, then sizes
        start = at + 4
    return bytes(data)


def corruptions(name: str, data: bytes, extension: str) -> list[Case]:
    """Broken variants of one valid file: empty and truncated (refused), bytes overwritten (either)."""
    cases = [Case(f"{name}-empty", b"", extension, REFUSED)]
    for cut in sorted({1, 8, 16, 40, len(data) // 4, len(data) // 2}):
        if cut < len(data):
            cases.append(Case(f"{name}-cut{cut}", data[:cut], extension, REFUSED))
    for where in (0.1, 0.5, 0.9):
        broken = bytearray(data)
        start = int(len(data) * where)
        broken[start : start + 16] = bytes(b ^ 0xA5 for b in broken[start : start + 16])
        cases.append(Case(f"{name}-flip{int(where * 100)}", bytes(broken), extension, EITHER))
    return cases


def polyglots() -> list[Case]:
    """Files that are two things at once, or carry things after the image: the output must hold none of it."""
    jpeg, _, _ = seeds()["jpeg"]
    png, _, _ = seeds()["png"]
    gif, _, _ = seeds()["gif"]
    zip_trailer = _tiny_zip(b"secret.txt", SECRET)
    html = b"<html><script>alert('" + SECRET + b"')</script></html>"
    return [
        Case("polyglot-jpeg-zip", jpeg + zip_trailer, ".jpg", OK, "JPEG"),
        Case("polyglot-png-html", png + html, ".png", OK, "PNG"),
        Case("polyglot-gif-js", gif[:-1] + b"/*" + SECRET + b"*/;", ".gif", EITHER, "GIF"),
        Case("polyglot-jpeg-in-pdf", b"%PDF-1.4\n%" + SECRET + b"\n" + jpeg, ".jpg", REFUSED),
        Case("polyglot-png-text-chunks", _insert_png_chunk(png, png_chunk(b"tEXt", b"GPS\x00" + SECRET)), ".png", OK, "PNG"),
        Case("polyglot-jpeg-comment", jpeg[:2] + b"\xff\xfe" + struct.pack(">H", len(SECRET) + 2) + SECRET + jpeg[2:], ".jpg", OK, "JPEG"),
    ]


SECRET = b"SECRET-52.5163N-13.3777E"
"""Planted in polyglots and metadata: it must never appear in an output."""


def _tiny_zip(name: bytes, content: bytes) -> bytes:
    buffer = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name.decode(), content)
    return buffer.getvalue()


def fuzz_findings() -> list[Case]:
    """Minimal rebuilds of what benchmarks/fuzz.py found, kept as regression cases."""
    gif = seeds()["gif"][0]
    return [
        # A second image descriptor cut short: Pillow raised struct.error while counting frames.
        Case("fuzz-gif-short-descriptor", gif[:-1] + b",\x00\x00\x00\x00", ".gif", REFUSED),
    ]


def mislabelled() -> list[Case]:
    """Valid images named with another format's extension, and non-images named as images."""
    return [
        Case("png-named-jpg", seeds()["png"][0], ".jpg", OK, "PNG"),
        Case("jpeg-named-png", seeds()["jpeg"][0], ".png", OK, "JPEG"),
        Case("webp-named-jpg", seeds()["webp"][0], ".jpg", OK, "WEBP"),
        Case("heic-named-png", seeds()["heic"][0], ".png", OK, "HEIF"),
        Case("tiff-named-jpeg", seeds()["tiff"][0], ".jpeg", OK, "TIFF"),
        Case("text-named-jpg", b"These are my notes from the march.\n" * 20, ".jpg", REFUSED),
        Case("svg-named-png", b'<svg xmlns="http://www.w3.org/2000/svg" width="9999999" height="9999999"/>', ".png", REFUSED),
        Case("psd-named-jpg", b"8BPS\x00\x01" + bytes(20), ".jpg", REFUSED),
        Case("ico-named-png", encoded(Image.fromarray(picture(16, 16)), "ICO"), ".png", REFUSED),
    ]


@cache
def corpus() -> tuple[Case, ...]:
    """Every case, named uniquely."""
    cases: list[Case] = []
    for name, (data, extension, pillow_format) in seeds().items():
        expect = REFUSED if name in MULTI_FRAME_SEEDS else OK
        cases.append(Case(name, data, extension, expect, pillow_format))
        if name in ("jpeg", "png", "webp", "heic", "tiff", "gif", "bmp", "jpeg-cmyk", "png-rgba", "tiff-grey16"):
            cases.extend(corruptions(name, data, extension))
    for name, (data, extension) in bombs().items():
        cases.append(Case(name, data, extension, REFUSED))
    cases.extend(polyglots())
    cases.extend(mislabelled())
    cases.extend(fuzz_findings())
    assert len({case.name for case in cases}) == len(cases)
    return tuple(cases)


FUZZ_MAX_PIXELS = 4_000_000
"""Pixel limit while fuzzing: big enough for every seed, small enough to keep each input fast."""

_FUZZ_SETTINGS = Settings(method=Method.MOSAIC, shape=Shape.ELLIPSE, max_pixels=FUZZ_MAX_PIXELS)


def decode_anonymise_encode(data: bytes) -> bytes | None:
    """The fuzzing invariant, on the path decode → anonymise → encode → verify.

    Returns fresh output bytes, or None when the input was refused with a BlurError. Any other
    exception escapes (a bug). A fixed region stands in for detection, so every decoded input has
    pixels destroyed without running the detector model.
    """
    try:
        photo = decode_photo(data, max_pixels=FUZZ_MAX_PIXELS)
    except BlurError:
        return None
    assert photo.pixels.dtype == np.uint8 and photo.pixels.ndim == 3 and photo.pixels.shape[2] == 3
    assert photo.alpha is None or photo.alpha.shape == photo.pixels.shape[:2]
    middle = Region(photo.width // 4, photo.height // 4, max(1, photo.width * 3 // 4), max(1, photo.height * 3 // 4))
    result = anonymise_image(photo.pixels, _FUZZ_SETTINGS, alpha=photo.alpha, regions=[middle])
    output = output_format(photo.format)
    out = encode_image(result.pixels, result.alpha, output, _FUZZ_SETTINGS.quality)
    verify_encoded(out, output, photo.height, photo.width)
    return out


# --- Helpers for file-system and fault tests ----------------------------------------------------


def snapshot(root) -> dict[str, tuple]:
    """Everything under `root` (without following links): kind plus content or link target."""
    import hashlib
    import os
    import stat as stat_module

    found = {}
    for folder, dirs, files in os.walk(os.fsencode(root)):
        for name in dirs + files:
            path = os.path.join(folder, name)
            info = os.lstat(path)
            if stat_module.S_ISLNK(info.st_mode):
                found[path] = ("link", os.readlink(path))
            elif stat_module.S_ISREG(info.st_mode):
                with open(path, "rb") as handle:
                    found[path] = ("file", hashlib.sha256(handle.read()).hexdigest())
            else:
                found[path] = ("other", stat_module.S_IFMT(info.st_mode))
    return found


def temporaries(root) -> list[str]:
    """Temporary or partial files anywhere under `root` (ours are named .blur-*.part)."""
    import os

    return [
        os.path.join(folder, name)
        for folder, _, files in os.walk(root)
        for name in files
        if name.startswith(".blur-") or name.endswith(".part")
    ]


class deadline:
    """Raise TimeoutError in the main thread if the block runs longer than `seconds` (a hang guard)."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def __enter__(self):
        import signal

        def expire(signum, frame):
            raise TimeoutError(f"took longer than {self.seconds} s: something hangs")

        self.previous = signal.signal(signal.SIGALRM, expire)
        signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc):
        import signal

        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self.previous)
        return False


def run_cli(argv: list[str], seconds: float = 120) -> tuple[int, str, str]:
    """`blur argv` in this process: (exit status, stdout, stderr)."""
    from blur_cli.main import main

    stdout, stderr = io.StringIO(), io.StringIO()
    with deadline(seconds):
        status = main([str(a) for a in argv], stdout, stderr)
    return status, stdout.getvalue(), stderr.getvalue()


def only_printable(text: str) -> bool:
    """True if `text` has no control characters except line ends, and nothing undecodable."""
    import unicodedata

    return all(
        char == "\n" or not (unicodedata.category(char).startswith("C") or 0xDC80 <= ord(char) <= 0xDCFF)
        for char in text
    )


# --- Mutations for fuzzing ----------------------------------------------------------------------

MUTATIONS = ("flip", "set", "insert", "delete", "duplicate", "truncate", "splice", "integer")
INTERESTING_INTEGERS = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, 65000, 100_000)


def mutate(data: bytes, operation: str, where: float, payload: bytes, other: bytes = b"") -> bytes:
    """One structural mutation of `data` at relative position `where` (0..1), using `payload` bytes.

    Kept deterministic, so hypothesis can shrink failures and the fuzzer can replay them.
    """
    at = min(len(data), int(where * len(data)))
    payload = payload or b"\xff"
    if operation == "flip":
        return data[:at] + bytes(b ^ p for b, p in zip(data[at : at + len(payload)], payload)) + data[at + len(payload) :]
    if operation == "set":
        return data[:at] + payload + data[at + len(payload) :]
    if operation == "insert":
        return data[:at] + payload * (1 + payload[0] % 4) + data[at:]
    if operation == "delete":
        return data[:at] + data[at + 1 + payload[0] % 64 :]
    if operation == "duplicate":
        return data[:at] + data[at : at + 1 + payload[0] * 4] + data[at:]
    if operation == "truncate":
        return data[:at]
    if operation == "splice":
        cut = min(len(other), int((payload[0] / 255) * len(other)))
        return data[:at] + other[cut:]
    if operation == "integer":
        value = INTERESTING_INTEGERS[payload[0] % len(INTERESTING_INTEGERS)]
        width, order = ((2, "big"), (2, "little"), (4, "big"), (4, "little"))[payload[-1] % 4]
        return data[:at] + (value % (1 << (8 * width))).to_bytes(width, order) + data[at + width :]
    raise ValueError(operation)


def fuzz_seeds() -> list[bytes]:
    """Starting points for fuzzing: every valid seed but the 50000-pixel-long ones (slow to re-run)."""
    return [data for name, (data, _, _) in seeds().items() if "50000" not in name]
