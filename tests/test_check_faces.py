"""The face half of `blur check`: a gate. What the default detector would destroy fails it, unless
it is a blob the tool made."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest

from blur.anonymise import Method
from blur.check import check_file, check_photo, find_face_candidates, looks_destroyed
from blur.decode import decode_photo, read_photo
from blur.detect import Detection
from blur.encode import OUTPUT_FORMATS, encode_image
from blur.pipeline import Settings, anonymise_file, anonymise_image, find_regions
from blur.regions import DEFAULT_PADDING, regions_from_detections
from blur_cli.main import main
from tainted import SAMPLES


def test_a_face_fails_the_check_and_its_destroyed_version_does_not():
    """The astronaut shrunk to a crowd's face size (about 37 px): the size blobs are recognised at."""
    pixels = cv2.resize(read_photo(SAMPLES / "astronaut.jpg").pixels, (170, 170), interpolation=cv2.INTER_AREA)
    face = find_face_candidates(pixels)[0]
    assert not face.destroyed and not check_photo(encode_image(pixels, None, OUTPUT_FORMATS["JPEG"])).clean
    after = anonymise_image(pixels, Settings(), rng=np.random.default_rng(0)).pixels
    assert looks_destroyed(after, face.detection)


def test_solid_fill_is_a_blob_too():
    pixels = read_photo(SAMPLES / "astronaut.jpg").pixels
    face = find_face_candidates(pixels)[0].detection
    after = anonymise_image(pixels, Settings(method=Method.SOLID)).pixels
    assert looks_destroyed(after, face)


def test_one_face_left_intact_fails_the_check_whatever_its_score(tmp_path):
    """A 32-px face of the crowd scores about 0.65: once only listed to look at, now a failure."""
    source = SAMPLES / "crowd.png"
    regions = find_regions(read_photo(source).pixels)
    kept = min((r for r in regions if 40 <= r.height <= 60 and r.score > 0.3), key=lambda r: r.score)  # 32-px faces
    assert kept.score < 0.7, "the test needs a face the old alarm threshold passed"
    rest = [r for r in regions if r != kept]
    written = anonymise_file(source, tmp_path / "one-left.png", regions=rest, rng=np.random.default_rng(1))
    report = check_file(written.output)
    assert not report.clean
    centre = ((kept.x0 + kept.x1) / 2, (kept.y0 + kept.y1) / 2)
    assert [d for d in report.faces if d.x0 <= centre[0] <= d.x1 and d.y0 <= centre[1] <= d.y1]


def test_regions_the_tool_destroyed_are_blobs_at_the_sizes_of_a_crowds_faces():
    """The detector often finds a "face" on the tool's own fill: the check must see it is destroyed.

    A statistical promise, so measured over fixed seeds: boxes 20-50 px tall (a crowd's faces);
    larger destroyed regions, whose fill has several cells, are often not recognised (README)."""
    results = []
    for height in range(20, 51, 2):
        for seed in range(4):
            rng = np.random.default_rng(1000 * height + seed)
            base = cv2.resize(rng.integers(0, 256, (4, 4, 3)).astype(np.uint8), (3 * height, 3 * height))
            face = Detection(height, height, height + height * rng.uniform(0.7, 1.0), 2 * height, 0.9)
            region = regions_from_detections([face], 3 * height, 3 * height, DEFAULT_PADDING)
            pixels = anonymise_image(base, regions=region, rng=rng).pixels
            encoded = decode_photo(encode_image(pixels, None, OUTPUT_FORMATS["JPEG"])).pixels
            results.append(looks_destroyed(encoded, face))
    assert np.mean(results) >= 0.9, np.mean(results)


@pytest.mark.parametrize("noise", [0, 8, 16])
def test_a_real_face_is_never_a_blob_even_with_camera_noise(noise):
    pixels = read_photo(SAMPLES / "astronaut.jpg").pixels
    face = find_face_candidates(pixels)[0].detection
    grain = np.random.default_rng(noise).normal(0, noise, pixels.shape[:2] + (1,))
    noisy = decode_photo(encode_image(np.clip(pixels + grain, 0, 255).astype(np.uint8), None, OUTPUT_FORMATS["JPEG"]))
    for size in (24, 48, 160):  # the same face photographed smaller
        scale = size / (face.y1 - face.y0)
        small = cv2.resize(noisy.pixels, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        box = Detection(face.x0 * scale, face.y0 * scale, face.x1 * scale, face.y1 * scale, face.score)
        assert not looks_destroyed(small, box), size


def _check(*argv):
    out, err = io.StringIO(), io.StringIO()
    return main(["check", *argv], out, err), out.getvalue(), err.getvalue()


def test_check_refuses_a_threshold_weaker_than_the_default_and_takes_a_stricter_one(tmp_path):
    photo = tmp_path / "a.jpg"
    photo.write_bytes((SAMPLES / "astronaut.jpg").read_bytes())
    code, _, err = _check("--threshold", "0.5", str(photo))
    assert code == 2 and "at most" in err
    code, out, err = _check("--threshold", "0.06", str(photo))
    assert code == 1 and "face at" in out and "look at every box listed" in err


def test_check_reads_every_file_in_a_folder_and_fails_on_what_it_cannot_check(tmp_path):
    written = anonymise_file(SAMPLES / "hopper-sideways.jpg", tmp_path / "hopper.jpg")
    (tmp_path / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")  # a damaged video
    (tmp_path / "clip.avi").write_bytes(b"RIFF")
    (tmp_path / "IMG_1.dng").write_bytes(b"II*\x00")
    (tmp_path / "report.json").write_text("{}")
    code, out, err = _check("--no-faces", str(tmp_path))
    assert code == 1
    assert f"clean    {written.output}" in out
    assert "clip.mp4: damaged" in out and "IMG_1.dng: a camera raw file; not checked" in out
    assert "clip.avi: a video in a format this tool does not read" in out
    assert "report.json: not a photo" in out
    assert "5 files: 1 clean, 0 with something found, 4 could not be checked" in err


def test_check_reads_bigtiff_as_blur_does(tmp_path):
    from PIL import Image

    from blur.decode import decode_photo

    pixels = np.random.default_rng(4).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "TIFF", big_tiff=True)
    data = buffer.getvalue()
    assert data[:4] == b"II+\x00" and decode_photo(data).pixels.shape == (30, 40, 3)
    assert check_photo(data, faces=False).metadata == ()
    assert [f.kind for f in check_photo(data + b"SFMARK", faces=False).metadata] == ["bytes after the end"]
