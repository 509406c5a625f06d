"""Hostile bytes: every generated case either becomes a clean anonymised image or a BlurError."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import hostile
from blur.decode import decode_photo, read_file
from blur.formats import output_format
from blur.errors import BlurError, ImageTooLarge, UnreadableImage, UnsupportedImage
from blur.pipeline import anonymise_file

CASES = hostile.corpus()


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_every_case_is_anonymised_cleanly_or_refused_with_a_blur_error(case):
    out = hostile.decode_anonymise_encode(case.data)  # any other exception fails the test
    if case.expect == hostile.OK:
        assert out is not None, f"{case.name} should decode"
    elif case.expect == hostile.REFUSED:
        assert out is None, f"{case.name} should be refused"
    if out is not None:
        assert hostile.SECRET not in out
        written = Image.open(io.BytesIO(out))
        if case.real_format:
            assert written.format == output_format(case.real_format).name


@pytest.mark.parametrize("name", sorted(hostile.bombs()))
def test_decompression_bombs_are_refused_as_too_large_or_unreadable(name):
    data, _ = hostile.bombs()[name]
    with pytest.raises((ImageTooLarge, UnreadableImage)) as caught:
        decode_photo(data)
    if name != "bomb-png-ztxt":  # a bomb in a text chunk is damage, not a too-large image
        assert caught.type is ImageTooLarge
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("kind, body, reason", [
    (b"iCCP", b"ICC profile\x00\x00", "its colour profile (ICC) unpacks to more than 1 MB"),
    (b"zTXt", b"Comment\x00\x00", "its text metadata unpacks to more than this tool reads (1 MB a chunk"),
])
def test_a_png_refused_for_an_oversized_profile_or_text_says_which(kind, body, reason):
    """Pillow refuses a compressed chunk that unpacks to over 1 MB: the message names the chunk, not the image data."""
    photo = io.BytesIO()
    Image.new("RGB", (32, 24), (90, 120, 150)).save(photo, "PNG")
    data = hostile._insert_png_chunk(photo.getvalue(), hostile.png_chunk(kind, body + zlib.compress(bytes(2 << 20), 9)))
    with pytest.raises(UnreadableImage) as caught:
        decode_photo(data)
    assert str(caught.value).startswith(reason) and "image data" not in str(caught.value)


def test_decompression_bombs_are_refused_before_any_large_allocation():
    """Decode every bomb in a fresh process and compare its peak memory with a baseline."""
    script = textwrap.dedent(
        """
        import resource, sys
        sys.path.insert(0, sys.argv[1])
        import hostile
        from blur.decode import decode_photo
        from blur.errors import BlurError
        bombs = hostile.bombs()
        decode_photo(hostile.seeds()["png"][0])
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        for data, _ in bombs.values():
            try:
                decode_photo(data)
            except BlurError:
                pass
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", script, str(Path(__file__).parent)], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    growth_mb = int(run.stdout.split()[-1])
    assert growth_mb < 100, f"decoding the bombs grew the process by {growth_mb} MB"


def test_pixel_limit_is_exact_and_the_message_says_how_to_raise_it():
    data = hostile.encoded(Image.new("RGB", (1000, 1000)), "PNG")
    assert decode_photo(data, max_pixels=1_000_000).width == 1000
    with pytest.raises(ImageTooLarge, match="raise the pixel limit"):
        decode_photo(data, max_pixels=999_999)


def test_the_default_limit_refuses_just_over_100_megapixels_from_the_header():
    data = hostile.png_from_rows(10_000, 10_001, 8, 0, b"\x00" * 10_001)
    with pytest.raises(ImageTooLarge, match="limit of 100 megapixels.*raise the pixel limit"):
        decode_photo(data)


def test_files_larger_than_any_photo_within_the_limit_are_not_read(tmp_path):
    big = tmp_path / "big.jpg"
    big.write_bytes(hostile.seeds()["jpeg"][0] + bytes(2000))
    with pytest.raises(ImageTooLarge):
        read_file(big, max_bytes=1000)
    assert read_file(big, max_bytes=10_000) == big.read_bytes()


def test_cmyk_jpeg_and_tiff_come_out_as_the_same_colours():
    expected = hostile.picture().astype(int)
    for name, tolerance in (("jpeg-cmyk", 12), ("tiff-cmyk", 1)):
        pixels = decode_photo(hostile.seeds()[name][0]).pixels.astype(int)
        assert np.abs(pixels - expected).mean() < tolerance, name


def test_sixteen_bit_images_keep_their_values_in_eight_bits():
    expected = hostile.picture()
    grey = decode_photo(hostile.seeds()["png-grey16"][0]).pixels
    assert np.array_equal(grey, np.repeat(expected[..., :1], 3, axis=2))
    assert np.array_equal(decode_photo(hostile.seeds()["tiff-grey16"][0]).pixels, grey)
    assert np.array_equal(decode_photo(hostile.seeds()["png-rgb16"][0]).pixels, expected)


def test_palette_and_bilevel_images_decode_to_their_exact_colours():
    for name in ("png-palette", "png-bilevel", "gif"):
        with Image.open(io.BytesIO(hostile.seeds()[name][0])) as image:
            expected = np.asarray(image.convert("RGB"))
        assert np.array_equal(decode_photo(hostile.seeds()[name][0]).pixels, expected), name


def test_transparency_survives_in_formats_that_keep_it():
    for name in ("png-grey-alpha", "png-rgba", "webp-lossless-alpha", "tiff-rgba", "png-palette-transparent"):
        photo = decode_photo(hostile.seeds()[name][0])
        assert photo.alpha is not None and photo.alpha.min() < 255, name
        out = hostile.decode_anonymise_encode(hostile.seeds()[name][0])
        assert Image.open(io.BytesIO(out)).mode == "RGBA", name


def test_multi_frame_files_are_refused_with_a_reason():
    for name in hostile.MULTI_FRAME_SEEDS:
        with pytest.raises(UnsupportedImage, match="frames or pages"):
            decode_photo(hostile.seeds()[name][0])


def test_tiny_and_extreme_aspect_images_go_through_the_real_detector(tmp_path):
    for name in ("png-1x1", "jpeg-1x1", "png-1x50000", "png-50000x1"):
        data, extension, _ = hostile.seeds()[name]
        source = tmp_path / (name + extension)
        source.write_bytes(data)
        result = anonymise_file(source, tmp_path / f"{name}.out{extension}")
        with Image.open(result.output) as image:
            assert image.size == Image.open(source).size
        assert source.read_bytes() == data


@pytest.mark.parametrize("case", hostile.mislabelled()[:5], ids=lambda case: case.name)
def test_a_photo_with_the_wrong_extension_is_written_with_the_right_one(tmp_path, case):
    source = tmp_path / case.filename
    source.write_bytes(case.data)
    written = output_format(case.real_format)
    result = anonymise_file(source, tmp_path / ("out" + case.extension))
    assert result.output.suffix in written.extensions
    with Image.open(result.output) as image:
        assert image.format == written.name
    assert source.read_bytes() == case.data


def test_polyglot_trailers_and_planted_metadata_never_reach_the_output(tmp_path):
    for case in hostile.polyglots():
        source = tmp_path / case.filename
        source.write_bytes(case.data)
        try:
            result = anonymise_file(source, tmp_path / ("out-" + case.filename))
        except BlurError:
            assert case.expect != hostile.OK, case.name
            continue
        assert hostile.SECRET not in result.output.read_bytes(), case.name
        assert b"PK\x03\x04" not in result.output.read_bytes(), case.name


def test_orientation_is_applied_and_planted_metadata_dropped():
    data = hostile.seeds()["jpeg-icc-exif"][0]
    assert hostile.SECRET in data
    photo = decode_photo(data)
    assert (photo.width, photo.height) == (40, 48)  # stored 48×40, shown rotated
    out = hostile.decode_anonymise_encode(data)
    assert hostile.SECRET not in out and b"Exif" not in out and b"ICC_PROFILE" not in out


def test_a_raised_limit_is_not_undercut_by_pillows_own(monkeypatch):
    """Pillow refuses above twice Image.MAX_IMAGE_PIXELS (about 179 MP); scaled down here, so that
    --max-megapixels above it is shown to work without decoding 180 MP in a test."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500_000)  # Pillow alone would refuse over 1 MP
    data = hostile.encoded(Image.new("L", (1200, 1000)), "PNG")
    assert decode_photo(data, max_pixels=1_200_000).width == 1200
    with pytest.raises(ImageTooLarge):
        decode_photo(data, max_pixels=1_199_999)
    assert Image.MAX_IMAGE_PIXELS == 500_000  # restored
    assert hostile.decode_anonymise_encode(hostile.seeds()["webp"][0])  # and verify_encoded reads it back


def test_two_threads_never_decode_under_each_others_pixel_limit():
    """Pillow's limit is process-wide: while one thread decodes under its limit (the review's analyser),
    another (an export with another limit) waits, and neither leaves its limit behind."""
    import threading

    from blur.decode import pillow_pixel_limit

    original = Image.MAX_IMAGE_PIXELS
    inside, release, second_in = threading.Event(), threading.Event(), threading.Event()
    seen = []

    def first():
        with pillow_pixel_limit(1_000_000):
            inside.set()
            release.wait(30)
            seen.append(Image.MAX_IMAGE_PIXELS)

    def second():
        with pillow_pixel_limit(8_000_000):
            second_in.set()
            seen.append(Image.MAX_IMAGE_PIXELS)

    one = threading.Thread(target=first)
    one.start()
    assert inside.wait(30)
    two = threading.Thread(target=second)
    two.start()
    assert not second_in.wait(0.5)  # it waits for the first to finish decoding
    release.set()
    one.join(30)
    two.join(30)
    assert seen == [500_000, 4_000_000] and Image.MAX_IMAGE_PIXELS == original
