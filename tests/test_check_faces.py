"""The face half of `blur check`: a face is a face, a destroyed face is a blob."""

from __future__ import annotations

import numpy as np

from blur.check import FACE_ALARM_THRESHOLD, check_photo, find_face_candidates, looks_destroyed
from blur.decode import read_photo
from blur.encode import OUTPUT_FORMATS, encode_image
from blur.pipeline import Settings, anonymise_image
from tainted import SAMPLES


def test_a_face_fails_the_check_and_its_destroyed_version_does_not():
    pixels = read_photo(SAMPLES / "astronaut.jpg").pixels
    before = find_face_candidates(pixels)
    face = before[0]
    assert face.detection.score >= FACE_ALARM_THRESHOLD and not face.destroyed
    after = anonymise_image(pixels, Settings(), rng=np.random.default_rng(0)).pixels
    assert looks_destroyed(after, face.detection)
    report = check_photo(encode_image(after, None, OUTPUT_FORMATS["PNG"]))
    assert report.clean and report.faces == []
    assert all(c.destroyed or c.detection.score < FACE_ALARM_THRESHOLD for c in report.candidates)


def test_solid_fill_is_a_blob_too():
    pixels = read_photo(SAMPLES / "astronaut.jpg").pixels
    face = find_face_candidates(pixels)[0].detection
    from blur.anonymise import Method

    after = anonymise_image(pixels, Settings(method=Method.SOLID)).pixels
    assert looks_destroyed(after, face)
