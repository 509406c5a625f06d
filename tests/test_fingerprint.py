"""The fingerprint step: outputs no longer match their camera's sensor pattern, and nothing else weakens."""

from __future__ import annotations

import io
import json

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import require_module

require_module("pywt", "the attack needs PyWavelets, in the test extra: pip install -e '.[test]'")

from benchmarks.camera_link import MATCH, Matcher, estimate_fingerprint, psnr  # noqa: E402
from blur import Region, Settings, anonymise_file  # noqa: E402
from blur.anonymise import Method  # noqa: E402
from blur.batch import run_job  # noqa: E402
from blur.jobs import plan_jobs  # noqa: E402
from blur.report import settings_record, write_report  # noqa: E402
from blur.errors import InvalidSetting  # noqa: E402
from blur.fingerprint import EXTRA_CROP, most_moved, random_distortion, resample, unlink_sensor  # noqa: E402
from blur.pipeline import anonymise_image  # noqa: E402
from blur.regions import Shape  # noqa: E402
from blur_cli.main import main  # noqa: E402
from conftest import unlinked_size, write_photo  # noqa: E402

SIZE = (320, 384)


def scene(rng: np.random.Generator) -> np.ndarray:
    """A generated photo: smooth shapes at several scales, an edge or two, and the sensor's own noise."""
    height, width = SIZE
    layers = [cv2.resize(rng.uniform(40, 215, (cells, cells, 3)).astype(np.float32), (width, height),
                         interpolation=cv2.INTER_CUBIC) for cells in (3, 9, 27)]
    image = np.mean(layers, axis=0)
    image[:, rng.integers(width // 4, 3 * width // 4):] += rng.uniform(-30, 30)
    image += rng.normal(0, 2, image.shape)
    return np.clip(image, 0, 255).astype(np.float32)


def shot(image: np.ndarray, pattern: np.ndarray) -> np.ndarray:
    """What a camera with this sensor pattern records, JPEG-encoded and decoded as a phone's photo would be."""
    exposed = np.clip(image * (1 + pattern[..., None]), 0, 255).round().astype(np.uint8)
    _, data = cv2.imencode(".jpg", exposed, [cv2.IMWRITE_JPEG_QUALITY, 92])
    return cv2.imdecode(data, cv2.IMREAD_UNCHANGED)


@pytest.fixture(scope="module")
def camera():
    """A camera with a sensor pattern of 1 % that generated smooth scenes show strongly (PCE about
    20,000, more than real photos of 12 times as many pixels): its fingerprint from 12 photos, and 2 others."""
    rng = np.random.default_rng(15)
    pattern = rng.normal(0, 0.01, SIZE).astype(np.float32)
    photos = [shot(scene(rng), pattern) for _ in range(14)]
    return Matcher(estimate_fingerprint(photos[:12])), photos[12:]


# --- the step on its own ---------------------------------------------------------------------

def test_a_photo_matches_its_camera_before_the_step_and_not_after(camera):
    matcher, photos = camera
    for seed, photo in enumerate(photos):
        before = matcher.score(photo)[0]
        after = matcher.score(unlink_sensor(photo, rng=np.random.default_rng(seed)).pixels)[0]
        assert before > 10 * MATCH, before
        assert after < MATCH, after


def test_the_step_looks_the_same():
    """Against the same image read at the same displaced positions almost exactly (Lanczos), bicubic
    resampling costs little: the change is in where pixels are by a few pixels, not what they show."""
    image = scene(np.random.default_rng(1)).astype(np.uint8)
    distortion = random_distortion(*image.shape[:2], np.random.default_rng(2))
    assert psnr(resample(image, distortion, cv2.INTER_LANCZOS4), resample(image, distortion)) >= 38


def test_the_output_is_a_few_pixels_smaller_by_a_fresh_random_amount():
    image = np.zeros((300, 400, 3), np.uint8)
    sizes = {unlink_sensor(image).pixels.shape for _ in range(8)}
    assert len(sizes) > 1
    for height, width, channels in sizes:
        assert channels == 3 and 300 - 2 * (most_moved(300, 400) + EXTRA_CROP) <= height < 300 and width < 400


def test_fresh_randomness_gives_a_different_distortion_each_time_and_a_seed_the_same():
    image = scene(np.random.default_rng(3)).astype(np.uint8)
    fresh = [unlink_sensor(image).pixels for _ in range(2)]
    assert fresh[0].shape != fresh[1].shape or not np.array_equal(*fresh)
    seeded = [unlink_sensor(image, rng=np.random.default_rng(7)).pixels for _ in range(2)]
    assert np.array_equal(*seeded)


def test_no_pixel_is_read_from_outside_the_photo():
    distortion = random_distortion(600, 800, np.random.default_rng(4))
    for positions, size in zip(distortion.maps(0, distortion.height), (800, 600)):
        assert positions.min() >= 0 and positions.max() <= size - 1


def test_alpha_moves_with_the_pixels():
    pixels = np.zeros((200, 200, 3), np.uint8)
    alpha = np.zeros((200, 200), np.uint8)
    pixels[80:120, 80:120] = alpha[80:120, 80:120] = 255
    unlinked = unlink_sensor(pixels, alpha, np.random.default_rng(5))
    assert unlinked.alpha.shape == unlinked.pixels.shape[:2]
    opaque, bright = unlinked.alpha > 128, unlinked.pixels[..., 0] > 128
    assert 1000 < opaque.sum() and np.mean(opaque == bright) > 0.998  # apart from a few edge pixels


def test_a_photo_wider_than_opencv_resamples_is_done_in_tiles():
    """cv2.remap takes under 32767 pixels a side; the pixel limit allows a 40000×60 panorama."""
    ramp = np.tile((np.arange(40000) // 160 % 256).astype(np.uint8)[None, :, None], (60, 1, 3))
    unlinked = unlink_sensor(ramp, rng=np.random.default_rng(11))
    height, width = unlinked.pixels.shape[:2]
    assert 40000 - 2 * (most_moved(60, 40000) + EXTRA_CROP) <= width < 40000 and height < 60
    expected = ramp[: height, unlinked.left : unlinked.left + width].astype(int)
    assert np.median(np.abs(unlinked.pixels.astype(int) - expected)) <= 1  # moved a few pixels, nothing else


def test_tiny_images_are_handled_too():
    for size in ((1, 1), (3, 5), (12, 30)):
        assert unlink_sensor(np.zeros(size + (3,), np.uint8)).pixels.shape[:2] <= size


# --- after the fill, in the pipeline ---------------------------------------------------------

def test_destroyed_regions_stay_covered():
    """The step runs after the fill, on the whole image: the solid region moves by a few pixels with
    everything else and stays black, all of it within its box shifted by the crop and grown by the reach."""
    box, grey = Region(150, 50, 300, 250), np.full((400, 500, 3), 200, np.uint8)
    filled = anonymise_image(grey, Settings(method=Method.SOLID, shape=Shape.RECTANGLE), regions=[box])
    unlinked = unlink_sensor(filled.pixels, rng=np.random.default_rng(6))
    reach = most_moved(400, 500)
    x0, y0, x1, y1 = box.x0 - unlinked.left, box.y0 - unlinked.top, box.x1 - unlinked.left, box.y1 - unlinked.top
    assert unlinked.pixels[y0 + reach : y1 - reach, x0 + reach : x1 - reach].max() <= 2
    dark = np.argwhere(unlinked.pixels.max(axis=2) < 150)
    assert dark[:, 0].min() >= y0 - reach and dark[:, 0].max() < y1 + reach
    assert dark[:, 1].min() >= x0 - reach and dark[:, 1].max() < x1 + reach


def test_the_step_is_on_by_default_and_reported(tmp_path, face_pixels):
    source = write_photo(tmp_path / "in.jpg", face_pixels)
    result = anonymise_file(source, tmp_path / "out.jpg")
    written = Image.open(result.output)
    assert result.camera_unlinked and written.size == (result.width, result.height)
    assert written.size[0] < face_pixels.shape[1] and written.size[1] < face_pixels.shape[0]
    (job,) = plan_jobs([source], tmp_path / "batch")
    outcome = run_job(job, Settings())
    write_report([outcome], tmp_path / "report.json")
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["files"][0]["camera_unlinked"] is True
    assert report["processing"]["1"]["settings"]["keep_geometry"] is False


def test_the_faces_of_an_unlinked_output_are_destroyed(tmp_path, face_pixels):
    source = write_photo(tmp_path / "in.png", face_pixels)
    result = anonymise_file(source, tmp_path / "out.png", rng=np.random.default_rng(9))
    (face,) = result.regions  # in the original's pixels
    output = np.asarray(Image.open(result.output).convert("RGB")).astype(int)
    original = face_pixels[face.y0 + 60 : face.y1 - 60, face.x0 + 40 : face.x1 - 40]
    height, width = original.shape[:2]
    shifts = range(2 * (most_moved(*face_pixels.shape[:2]) + EXTRA_CROP) + 1)  # every crop the step may have made
    closest = min(np.abs(output[face.y0 + 60 - dy : face.y0 + 60 - dy + height,
                                face.x0 + 40 - dx : face.x0 + 40 - dx + width] - original).mean()
                  for dy in shifts for dx in shifts)
    assert closest > 20  # however the output is aligned, the face is not there


def test_keep_geometry_keeps_every_pixel_where_it_was(tmp_path, face_pixels):
    source = write_photo(tmp_path / "in.png", face_pixels)
    box = Region(0, 0, 40, 40)
    kept = anonymise_file(source, tmp_path / "kept.png", Settings(method=Method.SOLID, keep_geometry=True), regions=[box])
    output = np.asarray(Image.open(kept.output).convert("RGB"))
    assert not kept.camera_unlinked and kept.regions == [box]
    assert output.shape == face_pixels.shape and np.array_equal(output[40:], face_pixels[40:])


def test_the_command_line_option_keeps_geometry_and_the_report_says_so(tmp_path, face_pixels, capsys):
    source = write_photo(tmp_path / "in.png", face_pixels)
    assert main([str(source), "-o", str(tmp_path / "out"), "--keep-geometry", "--report", str(tmp_path / "r.json")]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert Image.open(report["files"][0]["output"]).size == (face_pixels.shape[1], face_pixels.shape[0])
    assert report["files"][0]["camera_unlinked"] is False
    assert report["processing"]["1"]["settings"]["keep_geometry"] is True


@pytest.mark.parametrize("value", [1, 0, "yes", None, "False"])
def test_keep_geometry_must_be_true_or_false(value):
    with pytest.raises(InvalidSetting, match="keep_geometry"):
        Settings(keep_geometry=value)


def test_the_settings_record_names_the_choice():
    assert settings_record(Settings(keep_geometry=True))["keep_geometry"] is True


def test_a_copy_saved_from_review_is_unlinked_by_default(tmp_path, face_pixels):
    from blur.review import ReviewSession

    source = write_photo(tmp_path / "in.png", face_pixels)
    session = ReviewSession([source])
    session.analyse_all()
    saved = session.export(0)
    assert unlinked_size(Image.open(saved["exported"]).size, (face_pixels.shape[1], face_pixels.shape[0]))


def test_review_and_watch_take_the_option_too():
    from blur_cli.review import build_parser as review_parser
    from blur_cli.watch import build_parser as watch_parser

    assert review_parser().parse_args(["in", "--keep-geometry"]).keep_geometry
    assert watch_parser().parse_args(["in", "out", "--keep-geometry"]).keep_geometry
    assert not watch_parser().parse_args(["in", "out"]).keep_geometry


def test_check_says_it_cannot_tell_whether_a_photo_is_unlinked(tmp_path, face_pixels):
    source = write_photo(tmp_path / "in.png", face_pixels)
    output = anonymise_file(source, tmp_path / "out.png", regions=[Region(150, 50, 300, 250)]).output
    stdout, stderr = io.StringIO(), io.StringIO()
    assert main(["check", "--no-faces", str(output)], stdout, stderr) == 0
    assert "not checked: whether a photo can be matched to the camera" in stderr.getvalue()
    assert "clean" in stdout.getvalue()


# --- the benchmark ---------------------------------------------------------------------------

def test_the_benchmark_skips_cleanly_without_its_data(tmp_path, capsys):
    from benchmarks.camera_link import main as benchmark

    assert benchmark(["--data", str(tmp_path / "absent")]) == 0
    assert "skipped" in capsys.readouterr().out


def test_pce_is_high_for_a_sharp_peak_and_low_for_noise():
    from benchmarks.camera_link import pce

    noise = np.random.default_rng(10).normal(0, 1, (128, 128))
    peaked = noise.copy()
    peaked[40, 70] = 50
    assert pce(noise) < MATCH < pce(peaked)
