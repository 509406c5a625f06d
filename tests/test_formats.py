"""The formats table: every format read is told, decoded, walked and written as the table says."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from blur.decode import decode_photo
from blur.encode import encode_image, verify_encoded, verify_no_metadata
from blur.formats import (OUTPUT_FORMATS, PARSERS, PHOTO_EXTENSIONS, PHOTO_FORMATS, extension_of, find_metadata,
                          image_format, output_format, photo_output, sniff_bytes)
from conftest import encoded

PIXELS = np.random.default_rng(3).integers(0, 256, (24, 32, 3), dtype=np.uint8)


@pytest.mark.parametrize("name", PARSERS)
def test_each_format_read_is_told_by_its_bytes_decoded_and_walked(name):
    data = encoded(PIXELS, name)
    assert sniff_bytes(data[:16]) == image_format(data) == name
    photo = decode_photo(data)
    assert output_format(photo.format) is OUTPUT_FORMATS[PHOTO_FORMATS[name].written_as]
    assert isinstance(find_metadata(data), list)


@pytest.mark.parametrize("name", sorted(OUTPUT_FORMATS))
def test_each_format_written_is_read_back_as_written_with_nothing_else(name):
    output = OUTPUT_FORMATS[name]
    data = encode_image(PIXELS, None, output)
    verify_encoded(data, output, 24, 32)
    verify_no_metadata(data)
    assert image_format(data) == output.parser and find_metadata(data) == []
    assert output_format(name) is output


def test_every_format_is_named_by_its_extensions_and_written_in_a_format_that_is_written():
    assert PARSERS == ("JPEG", "PNG", "WEBP", "TIFF", "BMP", "GIF", "HEIF")
    for fmt in PHOTO_FORMATS.values():
        assert fmt.parser in PARSERS and set(fmt.extensions) <= PHOTO_EXTENSIONS
        assert fmt.written_as in OUTPUT_FORMATS
    assert extension_of("HEIF") == ".heic" and extension_of("MP4") == ".mp4"


def test_a_photo_is_named_by_its_bytes_and_by_its_name_only_when_they_say_nothing():
    assert photo_output(Path("a.jpg"), "PNG").extension == ".png"
    assert photo_output(Path("a.heic"), None).extension == ".jpg"
    assert photo_output(Path("a.gif"), None).extension == ".png"
    assert photo_output(Path("IMG_0001"), None).extension == ".jpg"
    with pytest.raises(ValueError):
        encode_image(PIXELS, None, PHOTO_FORMATS["GIF"])  # read, never written
