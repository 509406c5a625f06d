"""The face half of `blur check`: a gate. What the default detector would destroy fails it, unless
it is a destroyed blob; and the tool's own outputs pass it, because the pipeline looks again."""

from __future__ import annotations

import io

import numpy as np
import pytest

from blur.anonymise import Method
from blur.check import check_file, check_photo, find_face_candidates, looks_destroyed
from blur.decode import read_photo
from blur.detect import Detection, load_detector
from blur.encode import OUTPUT_FORMATS, encode_image
from blur.errors import VerificationFailed
from blur.pipeline import Settings, anonymise_file, anonymise_image, find_regions
from blur_cli.main import main
from conftest import write_photo
from tainted import SAMPLES


def test_a_face_fails_the_check_and_its_destroyed_version_does_not(tmp_path):
    pixels = read_photo(SAMPLES / "astronaut.jpg").pixels
    face = find_face_candidates(pixels)[0]
    assert not face.destroyed and not check_photo(encode_image(pixels, None, OUTPUT_FORMATS["JPEG"])).clean
    after = anonymise_image(pixels, Settings(), rng=np.random.default_rng(0)).pixels
    assert looks_destroyed(after, face.detection)
    written = anonymise_file(SAMPLES / "astronaut.jpg", tmp_path / "out.jpg", rng=np.random.default_rng(0))
    report = check_file(written.output)
    assert report.clean and report.faces == [] and all(c.destroyed for c in report.candidates)


def test_solid_fill_is_a_blob_too():
    pixels = read_photo(SAMPLES / "astronaut.jpg").pixels
    face = find_face_candidates(pixels)[0].detection
    after = anonymise_image(pixels, Settings(method=Method.SOLID)).pixels
    assert looks_destroyed(after, face)


def test_one_face_left_intact_fails_the_check_whatever_its_score(tmp_path):
    """A 32-px face of the crowd scores about 0.65: once only listed to look at, now a failure."""
    source = SAMPLES / "crowd.png"
    regions = find_regions(read_photo(source).pixels)
    kept = min((r for r in regions if 40 <= r.height <= 60), key=lambda r: r.score)  # faces of about 32 px
    assert kept.score < 0.7, "the test needs a face the old alarm threshold passed"
    rest = [r for r in regions if r != kept]
    written = anonymise_file(source, tmp_path / "one-left.png", regions=rest, rng=np.random.default_rng(1))
    report = check_file(written.output)
    assert not report.clean
    centre = ((kept.x0 + kept.x1) / 2, (kept.y0 + kept.y1) / 2)
    assert [d for d in report.faces if d.x0 <= centre[0] <= d.x1 and d.y0 <= centre[1] <= d.y1]
    assert len(report.faces) == 1


def test_the_tools_own_output_of_a_crowd_passes_the_check(tmp_path):
    written = anonymise_file(SAMPLES / "crowd.png", tmp_path / "crowd.png", rng=np.random.default_rng(2))
    assert check_file(written.output).clean


class _MissesAtFirst:
    """The default detector, except that its first look misses the face: as when a face scores just
    under the threshold until its neighbours are destroyed, or until the photo is JPEG-encoded."""

    name = "centerface"

    def __init__(self):
        self.real = load_detector()
        self.calls = 0

    def detect(self, pixels):
        self.calls += 1
        return [] if self.calls == 1 else self.real.detect(pixels)

    def describe(self):
        return self.real.describe()


def test_a_face_seen_only_in_the_encoded_result_is_destroyed_before_writing(tmp_path):
    detector = _MissesAtFirst()
    written = anonymise_file(SAMPLES / "astronaut.jpg", tmp_path / "out.jpg", detector=detector)
    assert written.found_again == len(written.regions) >= 1
    assert check_file(written.output).clean
    original, output = read_photo(SAMPLES / "astronaut.jpg").pixels, read_photo(written.output).pixels
    r = max(written.regions, key=lambda region: region.score)  # the face
    middle = (slice(r.y0 + r.height // 3, r.y1 - r.height // 3), slice(r.x0 + r.width // 3, r.x1 - r.width // 3))
    assert np.abs(output[middle].astype(int) - original[middle]).max(axis=2).mean() > 10


class _NewFaceEveryLook:
    """A detector that finds one more face on every look, never where it looked before."""

    name = "centerface"

    def __init__(self):
        self.calls = 0

    def detect(self, pixels):
        self.calls += 1
        x = 8 + 24 * self.calls
        return [Detection(x, 40, x + 16, 60, 0.9)]


def test_a_photo_whose_faces_keep_being_found_is_not_written(tmp_path):
    noise = np.random.default_rng(3).integers(0, 256, (120, 260, 3), dtype=np.uint8)
    source = write_photo(tmp_path / "noise.png", noise)
    with pytest.raises(VerificationFailed, match="could still be found"):
        anonymise_file(source, tmp_path / "out.png", detector=_NewFaceEveryLook())
    assert not (tmp_path / "out.png").exists()


def test_regions_given_by_a_person_are_not_looked_at_again(tmp_path):
    """`blur review` saves what the person chose, faces kept visible on purpose included."""
    written = anonymise_file(SAMPLES / "astronaut.jpg", tmp_path / "kept.jpg", regions=[], detector=_NewFaceEveryLook())
    assert written.regions == [] and written.found_again == 0


def _check(*argv):
    out, err = io.StringIO(), io.StringIO()
    return main(["check", *argv], out, err), out.getvalue(), err.getvalue()


def test_check_refuses_a_threshold_weaker_than_the_default_and_takes_a_stricter_one(tmp_path):
    photo = tmp_path / "a.jpg"
    photo.write_bytes((SAMPLES / "astronaut.jpg").read_bytes())
    code, _, err = _check("--threshold", "0.5", str(photo))
    assert code == 2 and "at most" in err
    code, out, _ = _check("--threshold", "0.1", str(photo))
    assert code == 1 and "face at" in out


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
