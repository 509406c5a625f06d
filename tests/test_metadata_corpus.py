"""The tainted corpus through the real command: nothing of the metadata may reach an output.

Every original carries unique markers (tests/tainted.py). The outputs written by `blur` must hold
no marker in their bytes or in any zlib stream inside them, show nothing but format basics to
exiftool, end where their format ends, and not carry the original's file times. `blur check`
must flag every original and pass the outputs of samples/.
"""

from __future__ import annotations

import io
import os
import re
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tainted
from blur.check import check_file, find_metadata, image_format, verify_no_metadata
from blur.containers.findings import Finding
from blur.errors import UnreadableImage, VerificationFailed
from blur.pipeline import anonymise_file
from blur_cli.main import main
from conftest import require_command

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
Y2001 = 978_350_400  # 2001-01-01 12:00 UTC

EXPECTED_FINDINGS = {
    "jpeg.jpg": ["EXIF", "XMP", "extended XMP", "ICC profile", "IPTC/Photoshop (APP13)", "JUMBF (APP11)",
                    "comment (COM)", "MPF", "bytes after the end"],
    "png.png": ["ICC profile (iCCP)", "text (tEXt)", "text (zTXt)", "text (iTXt)", "time (tIME)",
                    "chunk prVt", "EXIF (eXIf)", "chunk prVa", "bytes after the end"],
    "webp.webp": ["ICC profile", "EXIF", "XMP", "chunk SFmk", "bytes after the end"],
    "heic.heic": ["EXIF", "XMP", "ICC profile"],
    "tiff.tif": ["XMP (TIFF tag 700)", "IPTC (TIFF tag 33723)", "EXIF (TIFF tag 34665)",
                    "ICC profile (TIFF tag 34675)", "GPS (TIFF tag 34853)", "TIFF tags"],
}

# What exiftool may say about an output: the file system, and the basics of each format.
EXIFTOOL_ALLOWED = {
    "ExifTool": {"ExifToolVersion"},
    "File": {"FileType", "FileTypeExtension", "MIMEType", "ImageWidth", "ImageHeight", "EncodingProcess",
             "BitsPerSample", "ColorComponents", "YCbCrSubSampling", "ExifByteOrder"},
    "JFIF": {"JFIFVersion", "ResolutionUnit", "XResolution", "YResolution"},
    "PNG": {"ImageWidth", "ImageHeight", "BitDepth", "ColorType", "Compression", "Filter", "Interlace"},
    "RIFF": {"VP8Version", "ImageWidth", "ImageHeight", "HorizontalScale", "VerticalScale", "WebP_Flags",
             "AlphaPreprocessing", "AlphaFiltering", "AlphaCompression"},
    "IFD0": {"ImageWidth", "ImageHeight", "BitsPerSample", "Compression", "PhotometricInterpretation",
             "StripOffsets", "SamplesPerPixel", "RowsPerStrip", "StripByteCounts", "PlanarConfiguration",
             "ExtraSamples"},
    "Composite": {"ImageSize", "Megapixels"},
}
SYSTEM_GROUP = "System"  # file name, size, permissions and times on this disk: checked separately below


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[list[tainted.Tainted], dict[str, Path], str]:
    """The tainted originals (dated 2001), and their outputs from one run of the `blur` command."""
    folder = tmp_path_factory.mktemp("tainted")
    originals = tainted.write_corpus(folder / "in")
    for t in originals:
        os.utime(t.path, (Y2001, Y2001))
    out, err = io.StringIO(), io.StringIO()
    status = main([str(folder / "in"), "-o", str(folder / "out"), "-j", "1"], out, err)
    assert status == 0, out.getvalue() + err.getvalue()
    outputs = {}
    for line in out.getvalue().splitlines():
        match = re.match(r"done\s+(\S+) -> (\S+) \((\d+) faces?\)", line)
        assert match, line
        outputs[Path(match[1]).name] = Path(match[2])
        assert int(match[3]) >= 1, f"the face in {match[1]} was not found: the test image is not a test"
    assert sorted(outputs) == sorted(t.path.name for t in originals)
    return originals, outputs, out.getvalue()


def test_every_tainted_original_is_flagged(corpus):
    originals, _, _ = corpus
    for t in originals:
        kinds = [finding.kind for finding in check_file(t.path, faces=False).metadata]
        for expected in EXPECTED_FINDINGS[t.path.name]:
            assert expected in kinds, f"{t.path.name}: {expected} not reported (got {kinds})"


def test_exif_details_name_what_identifies(corpus):
    originals, _, _ = corpus
    jpeg = next(t for t in originals if t.path.suffix == ".jpg")
    exif = next(f for f in check_file(jpeg.path, faces=False).metadata if f.kind == "EXIF")
    for words in ("GPS position", "serial numbers", "owner", "MakerNote", "embedded thumbnail"):
        assert words in exif.detail


def test_blur_check_flags_every_tainted_original(corpus):
    originals, _, _ = corpus
    out, err = io.StringIO(), io.StringIO()
    status = main(["check", *(str(t.path) for t in originals)], out, err)
    assert status == 1
    for t in originals:
        assert f"FOUND    {t.path}:" in out.getvalue()
    assert out.getvalue().count("  - face at") >= len(originals), "the unblurred face in each original is reported"


def test_no_marker_in_output_bytes_or_in_any_zlib_stream(corpus):
    originals, outputs, _ = corpus
    for t in originals:
        data = outputs[t.path.name].read_bytes()
        assert t.markers and tainted.PREFIX not in data, t.path.name
        assert b"2001:09:11" not in data
        for stream in tainted.zlib_streams(data):
            assert tainted.PREFIX not in stream, f"{t.path.name}: a marker inside a compressed stream"


def test_markers_are_findable_in_the_originals(corpus):
    """The search above would find every marker if it were there (in plain or compressed form)."""
    originals, _, _ = corpus
    for t in originals:
        data = t.path.read_bytes()
        streams = tainted.zlib_streams(data)
        for what, marker in t.markers.items():
            assert marker in data or any(marker in s for s in streams), f"{t.path.name}: {what}"


def test_exiftool_lists_only_format_basics(corpus):
    require_command("exiftool", "apt-get install libimage-exiftool-perl")
    originals, outputs, _ = corpus
    for t in originals:
        path = outputs[t.path.name]
        listing = subprocess.run(["exiftool", "-a", "-G1", "-s", "-ee3", "-u", "-U", str(path)],
                                 capture_output=True, text=True, check=True).stdout
        unexpected = []
        for line in listing.splitlines():
            group, tag = re.match(r"\[([^\]]+)\]\s+(\S+)", line).groups()
            if group != SYSTEM_GROUP and tag not in EXIFTOOL_ALLOWED.get(group, ()):
                unexpected.append(line)
        assert not unexpected, f"{t.path.name} -> {path.name}:\n" + "\n".join(unexpected)
        # The same tool finds plenty in the original, so the allow-list is not vacuous.
        original = subprocess.run(["exiftool", "-a", "-G1", "-s", "-ee3", "-u", "-U", str(t.path)],
                                  capture_output=True, text=True, check=True).stdout
        assert "SFMARK" in original


def test_outputs_end_at_their_end_marker(corpus):
    originals, outputs, _ = corpus
    for t in originals:
        data = outputs[t.path.name].read_bytes()
        kind = image_format(data)
        if kind == "JPEG":
            assert data.endswith(b"\xff\xd9") and data.count(b"\xff\xd8\xff") == 1, t.path.name
        elif kind == "PNG":
            assert data.endswith(b"\x00\x00\x00\x00IEND\xaeB`\x82"), t.path.name
        elif kind == "WEBP":
            assert struct.unpack_from("<I", data, 4)[0] + 8 == len(data), t.path.name
        else:  # TIFF has no end marker: the tool's own walk of its directories and strips
            assert kind == "TIFF" and not find_metadata(data), t.path.name


def test_heic_is_written_as_jpeg(corpus):
    _, outputs, _ = corpus
    assert outputs["heic.heic"].suffix == ".jpg"


def test_output_file_times_are_not_the_originals(corpus):
    originals, outputs, _ = corpus
    for t in originals:
        assert os.stat(t.path).st_mtime == Y2001  # the original is untouched
        written = os.stat(outputs[t.path.name])
        assert written.st_mtime > Y2001 + 10 * 365 * 86400 and written.st_atime > Y2001 + 10 * 365 * 86400


def test_blur_check_passes_the_outputs_of_samples(tmp_path):
    out, err = io.StringIO(), io.StringIO()
    assert main([str(SAMPLES), "-o", str(tmp_path), "-j", "1"], out, err) == 0, err.getvalue()
    written = sorted(tmp_path.iterdir())
    assert len(written) == len(list(SAMPLES.iterdir()))
    out, err = io.StringIO(), io.StringIO()
    status = main(["check", *map(str, written)], out, err)
    assert status == 0, out.getvalue()
    for path in written:
        assert f"clean    {path}: no metadata found" in out.getvalue()


def test_blur_check_flags_the_samples_themselves():
    out, err = io.StringIO(), io.StringIO()
    assert main(["check", "--no-faces", str(SAMPLES)], out, err) == 1
    assert out.getvalue().count("FOUND") == len(list(SAMPLES.iterdir()))
    assert "GPS position" in out.getvalue()


def test_blur_check_usage_errors():
    out, err = io.StringIO(), io.StringIO()
    assert main(["check"], out, err) == 2
    assert main(["check", "--threshold", "7", "x.jpg"], out, err) == 2


def test_unreadable_file_is_an_error_not_clean(tmp_path):
    bogus = tmp_path / "notes.jpg"
    bogus.write_bytes(b"this is not a photo")
    out, err = io.StringIO(), io.StringIO()
    assert main(["check", "--no-faces", str(bogus)], out, err) == 1
    assert out.getvalue().startswith("ERROR")


@pytest.mark.parametrize("extra", [b"trailer after the end", b""])
def test_batch_writes_nothing_when_the_encoded_bytes_carry_metadata(tmp_path, monkeypatch, extra):
    """Fail closed: if encoding ever added metadata, the file is not written and the error says why."""
    import blur.pipeline

    real_encode = blur.pipeline.encode_image

    def leaky_encode(*args, **kwargs):
        data = real_encode(*args, **kwargs)
        if extra:
            return data + extra
        return data[:2] + b"\xff\xfe\x00\x09comment" + data[2:]

    monkeypatch.setattr(blur.pipeline, "encode_image", leaky_encode)
    destination = tmp_path / "out.jpg"
    with pytest.raises(VerificationFailed, match="metadata"):
        anonymise_file(SAMPLES / "hopper-sideways.jpg", destination)
    assert list(tmp_path.iterdir()) == []


def test_fresh_encodes_pass_the_metadata_check():
    import numpy as np

    from blur.encode import encode_image

    from blur.formats import OUTPUT_FORMATS

    from blur.decode import decode_photo

    pixels = np.random.default_rng(1).integers(0, 256, (33, 47, 3), dtype=np.uint8)
    alpha = np.full((33, 47), 128, np.uint8)
    for output in OUTPUT_FORMATS.values():
        for with_alpha in (None, alpha):
            data = encode_image(pixels, with_alpha, output)
            assert find_metadata(data) == [], output.name
            verify_no_metadata(data)  # the check before every write lets it through
            written = decode_photo(data)
            assert (written.width, written.height) == (47, 33)
            assert (written.alpha is not None) == (with_alpha is not None and output.keeps_alpha), output.name


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damaged_files_raise_only_unreadable(corpus, data):
    """However a file is cut or corrupted, the check reports findings or UnreadableImage, never crashes."""
    originals, _, _ = corpus
    original = data.draw(st.sampled_from(originals)).path.read_bytes()
    cut = data.draw(st.integers(4, len(original)))
    damaged = bytearray(original[:cut])
    for _ in range(data.draw(st.integers(0, 4))):
        damaged[data.draw(st.integers(0, len(damaged) - 1))] = data.draw(st.integers(0, 255))
    try:
        findings = find_metadata(bytes(damaged))
    except UnreadableImage:
        return
    for finding in findings:  # each says what it is, and points inside the file when it says where
        assert isinstance(finding, Finding) and finding.kind and str(finding)
        assert finding.offset is None or 0 <= finding.offset <= len(damaged), finding


def test_gif_and_bmp_walkers():
    """Formats outside the corpus that `blur check` still reads: comments, extra frames, trailers."""
    import numpy as np
    from PIL import Image

    frame = Image.fromarray(np.random.default_rng(2).integers(0, 256, (20, 24, 3), dtype=np.uint8))
    plain, commented = io.BytesIO(), io.BytesIO()
    frame.save(plain, "GIF")
    frame.save(commented, "GIF", comment=b"SFMARK-gif-comment", save_all=True, append_images=[frame.rotate(90)])
    assert find_metadata(plain.getvalue()) == []
    kinds = [f.kind for f in find_metadata(commented.getvalue() + b"SFMARK-gif-trailer")]
    assert kinds == ["comment", "more images", "bytes after the end"]
    bmp = io.BytesIO()
    frame.save(bmp, "BMP")
    assert find_metadata(bmp.getvalue()) == []
    assert [f.kind for f in find_metadata(bmp.getvalue() + b"SFMARK")] == ["bytes after the end"]


def test_an_animation_is_not_clean_even_without_metadata(tmp_path):
    import numpy as np
    from PIL import Image

    frames = [Image.fromarray(np.full((16, 16, 3), value, np.uint8)) for value in (0, 255)]
    path = tmp_path / "animated.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    report = check_file(path)
    assert [f.kind for f in report.metadata] == ["more images"]
    assert report.face_error and not report.clean


# Segments in the style of exiftool's test files that the container walk once let through: every
# APPn the encoder does not write must be reported (an allow-list, not a list of known leaks).
CRAFTED_SEGMENTS = {
    "APP3 JPS comment": (0xE3, b"_JPSJPS_\x00\x04\x00\x00\x00\x00\x00\x00\x00\x10SFMARK stereo comment"),
    "APP4 owner": (0xE4, b"SCALADO\x00SFMARK owner Jane Doe, +49 170 1234567"),
    "APP5 Ricoh": (0xE5, b"RMETA\x00SFMARK"),
    "APP6 GoPro": (0xE6, b"GoPro\x00HERO8 Black\x00C3441324567890\x00SFMARK"),
    "APP7": (0xE7, b"Qualcomm Camera Attributes SFMARK"),
    "APP8 SPIFF": (0xE8, b"SPIFF\x00\x01\x00SFMARK"),
    "APP9": (0xE9, b"Media Jukebox\x00SFMARK"),
    "APP10": (0xEA, b"AROT\x00\x00SFMARK"),
    "APP12 Ducky": (0xEC, b"Ducky\x00\x01\x00\x04\x00\x00\x00\x50\x00\x02\x00\x0c\x00S\x00F\x00M\x00A\x00R\x00K"),
    "APP12 PictureInfo": (0xEC, b"[picture info]\r\nSerialNo=SFMARK\r\n"),
    "APP14 not Adobe": (0xEE, b"SFMARK colour"),
    "APP14 Adobe": (0xEE, b"Adobe\x00\x64\x00\x00\x00\x00\x01"),
    "APP15": (0xEF, b"SFMARK text"),
    "APP0 not JFIF": (0xE0, b"AVI1\x00SFMARK"),
    "APP1 unknown": (0xE1, b"SFMARK"),
    "APP2 FlashPix": (0xE2, b"FPXR\x00\x00SFMARK"),
    "APP13 not Photoshop": (0xED, b"Adobe_CM\x00SFMARK"),
    "JPG13 extension": (0xFD, b"SFMARK"),
    "reserved marker": (0x50, b"SFMARK"),
}


def _plain_jpeg() -> bytes:
    import numpy as np

    from blur.encode import encode_image

    from blur.formats import OUTPUT_FORMATS

    pixels = np.random.default_rng(3).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    return encode_image(pixels, None, OUTPUT_FORMATS["JPEG"])


def _with_segment(data: bytes, marker: int, payload: bytes, after_jfif: bool = True) -> tuple[bytes, int]:
    at = 2 + (2 + struct.unpack_from(">H", data, 4)[0] if after_jfif else 0)
    return data[:at] + tainted.segment(marker, payload) + data[at:], at


@pytest.mark.parametrize("name", sorted(CRAFTED_SEGMENTS))
def test_every_segment_the_encoder_does_not_write_is_reported(name, tmp_path):
    marker, payload = CRAFTED_SEGMENTS[name]
    data, offset = _with_segment(_plain_jpeg(), marker, payload)
    assert [f.offset for f in find_metadata(data)] == [offset]
    with pytest.raises(VerificationFailed, match="metadata"):
        verify_no_metadata(data)
    path = tmp_path / "crafted.jpg"
    path.write_bytes(data)
    out, err = io.StringIO(), io.StringIO()
    assert main(["check", "--no-faces", str(path)], out, err) == 1
    assert out.getvalue().startswith("FOUND"), out.getvalue()


@pytest.mark.parametrize("change", ["JFIF header with bytes after it", "DQT with bytes after its table",
                                    "DHT with bytes after its table", "stray bytes between segments"])
def test_bytes_hidden_inside_or_between_image_segments_are_reported(change):
    data = _plain_jpeg()
    jfif_end = 4 + struct.unpack_from(">H", data, 4)[0]
    if change.startswith("JFIF"):
        crafted = data[:4] + struct.pack(">H", 16 + 6) + data[6:jfif_end] + b"SFMARK" + data[jfif_end:]
    elif change.startswith("stray"):
        crafted = data[:jfif_end] + b"SFMARK" + data[jfif_end:]
    else:
        marker = b"\xff\xdb" if change.startswith("DQT") else b"\xff\xc4"
        at = data.index(marker)
        (length,) = struct.unpack_from(">H", data, at + 2)
        end = at + 2 + length
        crafted = data[:at + 2] + struct.pack(">H", length + 6) + data[at + 4:end] + b"SFMARK" + data[end:]
    findings = find_metadata(crafted)
    assert [f.kind for f in findings] == ["hidden data"], findings


def test_what_the_encoder_writes_in_every_jpeg_variant_passes():
    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(4).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    for options in ({}, {"progressive": True}, {"subsampling": 0, "quality": 100}, {"optimize": True}):
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, "JPEG", **options)
        assert find_metadata(buffer.getvalue()) == [], options
    grey = io.BytesIO()
    Image.fromarray(pixels[..., 0]).save(grey, "JPEG")
    assert find_metadata(grey.getvalue()) == []


@pytest.mark.parametrize("name", ["APP6 GoPro", "APP4 owner", "APP12 Ducky", "APP3 JPS comment", "APP15"])
def test_the_check_before_every_write_refuses_these_segments(name, tmp_path, monkeypatch):
    import blur.pipeline

    real_encode = blur.pipeline.encode_image
    marker, payload = CRAFTED_SEGMENTS[name]
    monkeypatch.setattr(blur.pipeline, "encode_image",
                        lambda *args, **kwargs: _with_segment(real_encode(*args, **kwargs), marker, payload)[0])
    with pytest.raises(VerificationFailed, match="metadata"):
        anonymise_file(SAMPLES / "hopper-sideways.jpg", tmp_path / "out.jpg")
    assert list(tmp_path.iterdir()) == []
