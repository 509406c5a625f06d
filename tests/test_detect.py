"""Detect: the default detector finds faces, finds nothing in blank images, fails clearly without its model."""

from __future__ import annotations

import numpy as np
import pytest

from blur.detect import DETECTORS, Detection, detect_faces, load_detector
from blur.detect.centerface import CenterFace
from blur.detect.tiling import effective_scales, merge_boxes, pad_to_multiple, tiles
from blur.errors import DetectorUnavailable


def overlaps(detection: Detection, box: tuple[int, int, int, int]) -> bool:
    x0, y0, x1, y1 = box
    return detection.x0 < x1 and x0 < detection.x1 and detection.y0 < y1 and y0 < detection.y1


def test_default_detector_finds_the_face(face_pixels):
    found = detect_faces(face_pixels)
    assert any(overlaps(d, (190, 70, 260, 170)) and d.score > 0.5 for d in found)
    assert all(d.source == "centerface" for d in found)


def test_default_detector_finds_a_small_face(face_pixels):
    """The same face at 24 px wide on a 400 px grey canvas."""
    import cv2

    face = cv2.resize(face_pixels[30:200, 150:300], (24, 27), interpolation=cv2.INTER_AREA)
    canvas = np.full((300, 400, 3), 128, np.uint8)
    canvas[150:177, 200:224] = face
    assert any(overlaps(d, (200, 150, 224, 177)) for d in detect_faces(canvas))


@pytest.mark.parametrize("size", [(64, 64), (480, 640), (1500, 2100)])
def test_nothing_is_found_in_a_blank_image(size):
    assert detect_faces(np.full((*size, 3), 127, np.uint8)) == []


def test_detector_is_built_once_per_process():
    assert load_detector("centerface") is load_detector("centerface")


def test_missing_model_raises_a_clear_error(tmp_path):
    with pytest.raises(DetectorUnavailable, match="does not exist"):
        CenterFace(model_path=tmp_path / "centerface.onnx")


def test_unknown_detector_names_the_choices():
    with pytest.raises(DetectorUnavailable, match="centerface"):
        load_detector("no-such-detector")
    assert "centerface" in DETECTORS


def test_tiles_cover_the_whole_image():
    pixels = np.zeros((2500, 1100, 3), np.uint8)
    covered = np.zeros(pixels.shape[:2], bool)
    for x, y, window in tiles(pixels, 1024, 128):
        assert window.shape[0] <= 1024 and window.shape[1] <= 1024
        covered[y : y + window.shape[0], x : x + window.shape[1]] = True
    assert covered.all()


def test_upscaling_stops_at_the_maximum_side():
    assert effective_scales((400, 300), (1.0, 2.0), 2048) == [1.0, 2.0]
    assert effective_scales((1500, 1000), (1.0, 2.0), 2048) == [1.0, 2048 / 1500]
    assert effective_scales((3000, 4000), (1.0, 2.0), 2048) == [1.0]


def test_padding_makes_sides_multiples_of_32():
    assert pad_to_multiple(np.zeros((33, 64, 3), np.uint8), 32).shape == (64, 64, 3)


def test_merge_keeps_the_strongest_of_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10, 0.5], [1, 1, 11, 11, 0.9], [50, 50, 60, 60, 0.3]], np.float32)
    merged = merge_boxes(boxes, 0.3)
    assert sorted(merged[:, 4].tolist()) == pytest.approx([0.3, 0.9])
