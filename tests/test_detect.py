"""Detect: the default detector finds faces, finds nothing in blank images, fails clearly without its model."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from blur.detect import DETECTORS, Detection, detect_faces, load_detector
from blur.detect.centerface import CenterFace
from blur.detect.tiling import Pyramid, detect_in_views, fuse_views, merge_boxes, pad_to_multiple, tiles
from blur.errors import DetectorUnavailable
from conftest import SAMPLES


def overlaps(detection: Detection, box: tuple[int, int, int, int]) -> bool:
    x0, y0, x1, y1 = box
    return detection.x0 < x1 and x0 < detection.x1 and detection.y0 < y1 and y0 < detection.y1


@pytest.fixture(scope="module", params=[False, True], ids=["default", "fast"])
def centerface(request):
    return load_detector("centerface", fast=request.param)


def test_centerface_finds_the_face(face_pixels, centerface):
    found = detect_faces(face_pixels, centerface)
    assert any(overlaps(d, (190, 70, 260, 170)) and d.score > 0.5 for d in found)
    assert all(d.source == "centerface" for d in found)


def test_centerface_finds_a_small_face(face_pixels, centerface):
    """The same face at 24 px wide on a 400 px grey canvas."""
    import cv2

    face = cv2.resize(face_pixels[30:200, 150:300], (24, 27), interpolation=cv2.INTER_AREA)
    canvas = np.full((300, 400, 3), 128, np.uint8)
    canvas[150:177, 200:224] = face
    assert any(overlaps(d, (200, 150, 224, 177)) for d in detect_faces(canvas, centerface))


@pytest.mark.parametrize("size", [(64, 64), (480, 640), (1500, 2100)])
def test_nothing_is_found_in_a_blank_image(size, centerface):
    assert detect_faces(np.full((*size, 3), 127, np.uint8), centerface) == []


def test_what_is_found_does_not_depend_on_the_photos_seen_before(face_pixels):
    """One net across input sizes gives wrong answers on OpenCV 4 after its first size: guard it."""
    crowd = np.asarray(Image.open(SAMPLES / "crowd.png").convert("RGB"))
    first = CenterFace().detect(face_pixels)
    detector = CenterFace()
    for pixels in (crowd, crowd[:150, :333], face_pixels[::2, ::2]):
        detector.detect(pixels)
    assert detector.detect(face_pixels) == first
    assert any(overlaps(d, (190, 70, 260, 170)) and d.score > 0.5 for d in first)


def test_fast_mode_looks_at_fewer_views():
    shape = (3000, 4000)
    assert len(CenterFace(fast=True).pyramid.views(shape)) < len(CenterFace().pyramid.views(shape)) / 3


def test_detector_is_built_once_per_process():
    assert load_detector("centerface") is load_detector("centerface")


def test_missing_model_raises_a_clear_error(tmp_path):
    with pytest.raises(DetectorUnavailable, match="does not exist"):
        CenterFace(model_path=tmp_path / "centerface.onnx")


def test_damaged_model_raises_a_clear_error(tmp_path):
    damaged = tmp_path / "centerface.onnx"
    damaged.write_bytes(b"not a model" * 100)
    with pytest.raises(DetectorUnavailable, match="cannot be loaded"):
        CenterFace(model_path=damaged)


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


def test_pyramid_upscales_small_photos_and_bounds_large_ones():
    pyramid = Pyramid(upscale=3.0, max_side=1248, step=1.5, min_side=320)
    assert pyramid.scales((300, 416)) == pytest.approx([3.0, 2.0, 4 / 3, 8 / 9, 16 / 27])
    scales = pyramid.scales((3000, 4000))
    assert scales[0] == pytest.approx(1248 / 4000)
    assert 4000 * scales[-1] <= 320 < 4000 * scales[-2]
    assert len(pyramid.views((3000, 4000))) == 2 * len(scales)
    assert len(Pyramid(mirror=False).views((3000, 4000))) == len(scales)


def bright_square(rgb: np.ndarray) -> np.ndarray:
    """A stand-in model: one box around the pixels brighter than 200, scored lower if cut by the edge."""
    ys, xs = np.nonzero(rgb[..., 0] > 200)
    if len(ys) == 0:
        return np.empty((0, 5), np.float32)
    cut = ys.min() == 0 or xs.min() == 0 or ys.max() == rgb.shape[0] - 1 or xs.max() == rgb.shape[1] - 1
    return np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1, 0.5 if cut else 0.9]], np.float32)


@pytest.mark.parametrize("shape", [(300, 416), (900, 3000)])
def test_every_view_maps_its_boxes_back_to_the_photo(shape):
    """Scaled, mirrored and tiled views all report the square where it is in the photo."""
    pixels = np.zeros((*shape, 3), np.uint8)
    pixels[100:160, 250:290] = 255
    pyramid = Pyramid(max_side=1400, min_side=200)
    views = detect_in_views(pixels, bright_square, pyramid, tile=512, overlap=128)
    assert len(views) == len(pyramid.views(shape)) >= 4
    for (scale, _), boxes in zip(pyramid.views(shape), views):
        best = boxes[np.argmax(boxes[:, 4])]
        # at coarse scales the square is a few pixels, blurred at its edges by resizing
        assert best[:4] == pytest.approx([250, 100, 290, 160], abs=max(2.0, 2.0 / scale))


def test_fusion_scores_a_box_by_its_best_views():
    face = np.array([[10, 10, 30, 34, 0.6]], np.float32)
    nudged = np.array([[11, 10, 31, 35, 0.3]], np.float32)
    lone = np.array([[200, 200, 220, 224, 0.6]], np.float32)
    empty = np.empty((0, 5), np.float32)
    fused = fuse_views([face, nudged, face, lone, empty, empty], support=3)
    by_x = fused[np.argsort(fused[:, 0])]
    assert len(by_x) == 2
    assert by_x[0, 4] == pytest.approx((0.6 + 0.6 + 0.3) / 3)
    assert by_x[1, 4] == pytest.approx(0.6 / 3)
    assert 10 <= by_x[0, 0] <= 11 and 34 <= by_x[0, 3] <= 35


def test_fusion_of_nothing_is_empty():
    assert fuse_views([np.empty((0, 5), np.float32)] * 4, support=3).shape == (0, 5)


def test_padding_makes_sides_multiples_of_32():
    assert pad_to_multiple(np.zeros((33, 64, 3), np.uint8), 32).shape == (64, 64, 3)


def test_merge_keeps_the_strongest_of_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10, 0.5], [1, 1, 11, 11, 0.9], [50, 50, 60, 60, 0.3]], np.float32)
    merged = merge_boxes(boxes, 0.3)
    assert sorted(merged[:, 4].tolist()) == pytest.approx([0.3, 0.9])
