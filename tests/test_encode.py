"""Encode: fresh metadata-free bytes in every format, verified, written atomically."""

from __future__ import annotations

import io
import os
import subprocess

import numpy as np
import pytest
from PIL import Image, ImageCms, PngImagePlugin

from blur.decode import decode_photo
from blur.encode import encode_image, verify_encoded, write_atomically
from blur.formats import OUTPUT_FORMATS, output_format
from blur.errors import OutputError, OutputExists, VerificationFailed
from blur.pipeline import anonymise_file
from conftest import require_command

MARKERS = [b"SECRET-GPS-MARKER", b"SERIAL-XYZ-123", b"OWNER-MARKER", b"COMMENT-MARKER", b"XMP-MARKER",
           b"TRAILER-MARKER", b"PNG-TEXT-MARKER"]


def pixels(height=48, width=64) -> np.ndarray:
    return np.random.default_rng(3).integers(0, 256, (height, width, 3), dtype=np.uint8)


def smooth_pixels() -> np.ndarray:
    """Gradients: what lossy codecs keep well."""
    y, x = np.mgrid[0:48, 0:64]
    return np.dstack([x * 4, y * 5, (x + y) * 2]).astype(np.uint8)


@pytest.mark.parametrize("name", sorted(OUTPUT_FORMATS))
def test_every_output_format_round_trips(name):
    original = smooth_pixels()
    output = OUTPUT_FORMATS[name]
    data = encode_image(original, None, output)
    verify_encoded(data, output, *original.shape[:2])
    photo = decode_photo(data)
    assert photo.pixels.shape == original.shape
    difference = np.abs(photo.pixels.astype(int) - original)
    if name in ("PNG", "TIFF", "BMP"):
        assert difference.max() == 0
    else:
        assert difference.mean() < 3


@pytest.mark.parametrize("name, keeps", [("PNG", True), ("WEBP", True), ("TIFF", True), ("JPEG", False)])
def test_alpha_is_kept_where_the_format_has_it(name, keeps):
    alpha = np.full((48, 64), 255, np.uint8)
    alpha[:, :32] = 0
    data = encode_image(pixels(), alpha, OUTPUT_FORMATS[name])
    photo = decode_photo(data)
    if keeps:
        assert photo.alpha is not None and photo.alpha[0, 0] == 0 and photo.alpha[0, 40] == 255
    else:  # flattened on white, as a viewer shows it
        assert photo.alpha is None and photo.pixels[:, :32].min() > 230


def test_heic_and_gif_inputs_get_jpeg_and_png_outputs():
    assert output_format("HEIF").name == "JPEG"
    assert output_format("MPO").name == "JPEG"
    assert output_format("GIF").name == "PNG"


def test_verification_rejects_metadata():
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x010F] = "Camera"
    Image.fromarray(pixels()).save(buffer, "JPEG", exif=exif)
    with pytest.raises(VerificationFailed, match="metadata"):
        verify_encoded(buffer.getvalue(), OUTPUT_FORMATS["JPEG"], 48, 64)


def test_verification_rejects_the_wrong_size():
    data = encode_image(pixels(), None, OUTPUT_FORMATS["PNG"])
    with pytest.raises(VerificationFailed):
        verify_encoded(data, OUTPUT_FORMATS["PNG"], 10, 10)


def tainted_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "OWNER-MARKER"
    exif[0x013B] = "OWNER-MARKER"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (1.0, 2.0, 3.0)
    gps[0x1B] = b"ASCII\0\0\0SECRET-GPS-MARKER"  # GPSProcessingMethod
    exif.get_ifd(0x8769)[0xA431] = "SERIAL-XYZ-123"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF>XMP-MARKER</rdf:RDF></x:xmpmeta>'
    buffer = io.BytesIO()
    Image.fromarray(pixels(96, 128)).save(buffer, "JPEG", exif=exif, icc_profile=icc, comment=b"COMMENT-MARKER",
                                          xmp=xmp)
    return buffer.getvalue() + b"TRAILER-MARKER"


def tainted_png() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "PNG-TEXT-MARKER")
    info.add_text("Location", "SECRET-GPS-MARKER", zip=True)
    info.add_itxt("Author", "OWNER-MARKER")
    buffer = io.BytesIO()
    Image.fromarray(pixels(96, 128)).save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue() + b"TRAILER-MARKER"


@pytest.mark.parametrize("name, data", [("in.jpg", tainted_jpeg()), ("in.png", tainted_png())])
def test_planted_metadata_is_absent_from_outputs(tmp_path, name, data):
    source = tmp_path / name
    source.write_bytes(data)
    assert any(marker in data for marker in MARKERS)
    result = anonymise_file(source, tmp_path / f"out{source.suffix}")
    written = result.output.read_bytes()
    for marker in MARKERS:
        assert marker not in written
    with Image.open(result.output) as image:
        assert not set(image.info) & {"exif", "icc_profile", "xmp", "comment", "Comment", "Author", "Location"}
    if name.endswith(".jpg"):
        assert written.endswith(b"\xff\xd9")
    else:
        assert written.endswith(b"IEND\xaeB`\x82")


def test_exiftool_finds_no_identifying_tags(tmp_path):
    require_command("exiftool", "apt-get install libimage-exiftool-perl")
    source = tmp_path / "in.jpg"
    source.write_bytes(tainted_jpeg())
    result = anonymise_file(source, tmp_path / "out.jpg")
    listing = subprocess.run(["exiftool", "-a", "-G1", "-s", "-ee3", "-u", "-U", str(result.output)],
                             capture_output=True, text=True, check=True).stdout
    groups = {line.split("]")[0].strip("[ ") for line in listing.splitlines() if line.startswith("[")}
    assert groups <= {"ExifTool", "System", "File", "JFIF", "Composite"}, listing
    for tag in ("GPS", "Serial", "Make", "Artist", "Comment", "ICC", "XMP"):
        assert tag not in listing.replace("File Type", ""), listing


def test_write_atomically_never_overwrites_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "out.jpg"
    write_atomically(b"first", target)
    with pytest.raises(OutputExists):
        write_atomically(b"second", target)
    assert target.read_bytes() == b"first"
    write_atomically(b"third", target, overwrite=True)
    assert target.read_bytes() == b"third"
    assert sorted(os.listdir(tmp_path)) == ["out.jpg"]


def test_a_failed_write_leaves_nothing(tmp_path, monkeypatch):
    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OutputError, match="No space left"):
        write_atomically(b"data", tmp_path / "out.jpg")
    assert os.listdir(tmp_path) == []
