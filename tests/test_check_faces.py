"""The face half of `blur check`: a gate. What the default detector would destroy fails it, unless
it carries the stripes of a region the tool destroyed; and a second opinion that never fails it."""

from __future__ import annotations

import io
import json
import os
import stat

import cv2
import numpy as np
import pytest

from blur.anonymise import Method
from blur.check import check_file, check_photo, find_face_candidates, looks_destroyed
from blur.check.sheet import COLUMNS, CONTEXT, LABEL, TILE
from blur.decode import decode_photo, read_photo
from blur.detect import Detection
from blur.encode import encode_image
from blur.formats import OUTPUT_FORMATS
from blur.fingerprint import random_distortion, resample
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
    written = anonymise_file(source, tmp_path / "one-left.png", Settings(keep_geometry=True), regions=rest,
                             rng=np.random.default_rng(1))  # every pixel where it was: the box compares as is
    report = check_file(written.output)
    assert not report.clean
    centre = ((kept.x0 + kept.x1) / 2, (kept.y0 + kept.y1) / 2)
    assert [d for d in report.faces if d.x0 <= centre[0] <= d.x1 and d.y0 <= centre[1] <= d.y1]


def test_regions_the_tool_destroyed_are_known_at_every_size_after_the_camera_step_and_jpeg():
    """The detector often finds a "face" on the tool's own fill: the check must see it is destroyed,
    by the stripes every fill carries, at a crowd's sizes and larger, after the sensor-pattern
    step's resampling and JPEG. A statistical promise, measured over fixed seeds."""
    results = []
    for height in (12, 16, 20, 28, 40, 60, 90):
        for seed in range(4):
            rng = np.random.default_rng(1000 * height + seed)
            side = 1024  # a photo's size: on tiny images the camera step's field bends the stripes more
            base = cv2.resize(rng.integers(0, 256, (4, 4, 3)).astype(np.uint8), (side, side))
            x, y = side / 2 - height / 2, side / 2 - height / 2
            face = Detection(x, y, x + height * rng.uniform(0.7, 1.0), y + height, 0.9)
            region = regions_from_detections([face], side, side, DEFAULT_PADDING)
            distortion = random_distortion(side, side, rng)
            pixels = resample(anonymise_image(base, regions=region, rng=rng).pixels, distortion)
            map_x, map_y = distortion.maps(0, distortion.height)  # where each output pixel was read from
            centre = (face.x0 + face.x1) / 2, (face.y0 + face.y1) / 2
            y, x = np.unravel_index(np.argmin((map_x - centre[0]) ** 2 + (map_y - centre[1]) ** 2), map_x.shape)
            half_w, half_h = (face.x1 - face.x0) / 2, (face.y1 - face.y0) / 2
            moved = Detection(x - half_w, y - half_h, x + half_w, y + half_h, 0.9)
            encoded = decode_photo(encode_image(pixels, None, OUTPUT_FORMATS["JPEG"])).pixels
            results.append(looks_destroyed(encoded, moved))
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
    assert code == 1 and "face at" in out and "look at every face listed" in err


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


def test_a_blur_output_of_a_generated_crowd_passes_and_one_face_put_back_fails_on_the_sheet(tmp_path):
    """The generated crowd (faces of 14 to 150 px): blur's default output is clean on its own; the same
    photo with one 32-px face left as it was fails, and the contact sheet shows that very face."""
    source = SAMPLES / "crowd.png"
    # A promise about the fill's randomness, so measured over fixed seeds: a candidate just over the bar
    # beside a destroyed region appears for about 1 fill in 5 of this photo (2 of seeds 0-9; README).
    outputs = [anonymise_file(source, tmp_path / f"crowd-{seed}.png", rng=np.random.default_rng(seed)).output
               for seed in range(6)]
    code, out, err = _check(*map(str, outputs))
    assert out.count("clean    ") >= 5, out
    seed = next(seed for seed, output in enumerate(outputs) if f"clean    {output}" in out)
    written = anonymise_file(source, tmp_path / "crowd.blurred.png", rng=np.random.default_rng(seed))
    code, out, err = _check(str(written.output))
    assert code == 0 and f"clean    {written.output}" in out and "0 with something found" in err, out

    regions = written.regions
    kept = min((r for r in regions if 40 <= r.height <= 60 and r.score > 0.3), key=lambda r: r.x0)  # a 32-px face
    left = anonymise_file(source, tmp_path / "one-left.png", regions=[r for r in regions if r != kept],
                          rng=np.random.default_rng(2))
    sheet = tmp_path / "sheet.png"
    code, out, err = _check("--sheet", str(sheet), "--json", str(left.output))
    assert code == 1
    (record,) = json.loads(out)["files"]
    assert record["status"] == "found"
    # the camera step moved every pixel by a few and cropped a few from the edges
    centre = ((kept.x0 + kept.x1) / 2, (kept.y0 + kept.y1) / 2)
    shown = [f for f in record["faces"] if abs((f["box"][0] + f["box"][2]) / 2 - centre[0]) < 24
             and abs((f["box"][1] + f["box"][3]) / 2 - centre[1]) < 24]
    assert shown, record["faces"]
    assert stat.S_IMODE(os.stat(sheet).st_mode) == 0o600, "the sheet may show faces: the owner's alone"
    tiles = read_photo(sheet).pixels
    number = shown[0]["number"]
    row, col = divmod(number - 1, COLUMNS)
    tile = tiles[row * (TILE + LABEL) : row * (TILE + LABEL) + TILE, col * TILE : (col + 1) * TILE]
    # inside the tile's outline is the face as it is in the photo
    x0, y0, x1, y1 = shown[0]["box"]
    face = read_photo(left.output).pixels[round(y0) + 2 : round(y1) - 2, round(x0) + 2 : round(x1) - 2]
    scale = TILE / (CONTEXT * max(x1 - x0, y1 - y0))
    half_w, half_h = (x1 - x0) / 2 * scale, (y1 - y0) / 2 * scale
    inside = tile[round(TILE / 2 - half_h) + 2 * 3 : round(TILE / 2 + half_h) - 2 * 3,
                  round(TILE / 2 - half_w) + 2 * 3 : round(TILE / 2 + half_w) - 2 * 3]
    inside = cv2.resize(inside, face.shape[1::-1], interpolation=cv2.INTER_AREA)
    assert np.corrcoef(inside.reshape(-1).astype(float), face.reshape(-1).astype(float))[0, 1] > 0.8


def test_the_json_report_has_a_stable_schema(tmp_path):
    """Newsroom pipelines read --json: its keys and types are part of the interface (schema 1)."""
    face = tmp_path / "face.jpg"
    face.write_bytes((SAMPLES / "astronaut.jpg").read_bytes())
    for seed in range(6):  # a fill that leaves no candidate over the bar (most do: see the test above)
        blurred = anonymise_file(SAMPLES / "crowd.png", tmp_path / f"crowd-{seed}.blurred.png",
                                 rng=np.random.default_rng(seed))
        if _check(str(blurred.output))[0] == 0:
            break
    (tmp_path / "notes.txt").write_text("not a photo")
    code, out, err = _check("--json", str(face), str(blurred.output), str(tmp_path / "notes.txt"))
    assert code == 1
    document = json.loads(out)
    assert set(document) == {"schema", "files", "summary", "second_opinion", "not_checked"}
    assert document["schema"] == "soft-focus-check/1"
    assert document["summary"] == {"files": 3, "clean": 1, "found": 1, "unreadable": 1}
    assert "centerface" in document["second_opinion"] and isinstance(document["not_checked"], str)
    by_name = {os.path.basename(f["path"]): f for f in document["files"]}
    keys = {"path", "kind", "status", "error", "faces_checked", "metadata", "faces", "maybes"}
    assert all(set(f) == keys for f in document["files"])
    found, clean, other = by_name["face.jpg"], by_name[blurred.output.name], by_name["notes.txt"]
    assert (found["kind"], found["status"], found["faces_checked"]) == ("photo", "found", True)
    assert all(set(m) == {"kind", "detail", "offset"} and isinstance(m["kind"], str) for m in found["metadata"])
    assert found["faces"] and all(set(f) == {"number", "box", "score", "frame"} for f in found["faces"])
    assert all(len(f["box"]) == 4 and f["box"][0] < f["box"][2] and f["box"][1] < f["box"][3] and 0 < f["score"] <= 1
               and f["frame"] is None for f in found["faces"])
    assert (clean["status"], clean["faces"], clean["error"]) == ("clean", [], None)
    maybes = [m for f in document["files"] for m in f["maybes"]]
    assert all(set(m) == {"number", "rank", "box", "score", "why"} for m in maybes)
    assert all([m["rank"] for m in f["maybes"]] == list(range(1, len(f["maybes"]) + 1)) for f in document["files"])
    numbers = [x["number"] for f in document["files"] for x in f["faces"] + f["maybes"]]
    assert sorted(numbers) == list(range(1, len(numbers) + 1)), "one numbering for the lines, the sheet and JSON"
    assert (other["kind"], other["status"]) == ("other", "error") and other["error"]
