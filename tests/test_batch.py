"""Batch: planning output names, running jobs, failing alone, resuming, reports."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from blur.batch import run_batch
from blur.jobs import plan_jobs
from blur.kinds import Kind
from blur.pipeline import Settings
from blur.report import Status, people_seen, write_report
from conftest import SAMPLES, write_photo


@pytest.fixture
def folder(tmp_path, face_pixels) -> Path:
    root = tmp_path / "march"
    write_photo(root / "a.jpg", face_pixels)
    write_photo(root / "day2" / "b.png", face_pixels[:200, 100:350])
    (root / "notes.txt").write_text("not a photo")
    return root


def test_outputs_go_beside_inputs_by_default(folder):
    jobs = plan_jobs([folder])
    assert [(j.source.name, j.destination) for j in jobs] == [
        ("a.jpg", folder / "a.blurred.jpg"),
        ("b.png", folder / "day2" / "b.blurred.png"),
    ]


def test_outputs_mirror_folders_under_the_output_folder(folder, tmp_path):
    out = tmp_path / "out"
    assert [j.destination for j in plan_jobs([folder], out)] == [out / "a.blurred.jpg", out / "day2" / "b.blurred.png"]
    assert [j.destination for j in plan_jobs([folder / "a.jpg"], out)] == [out / "a.blurred.jpg"]


def test_random_names_hide_file_and_folder_names(folder, tmp_path):
    out = tmp_path / "out"
    destinations = [j.destination for j in plan_jobs([folder], out, random_names=True)]
    assert all(d.parent == out for d in destinations)
    assert all("a" != d.stem and "b" != d.stem and len(d.stem) == 24 for d in destinations)
    assert [d.suffix for d in destinations] == [".jpg", ".png"]


def test_inputs_that_would_share_an_output_name_say_which_input_got_it(tmp_path, face_pixels):
    for name in ("IMG_1.jpg", "IMG_1.jpeg", "IMG_1.JPG", "IMG_1.jpe"):
        write_photo(tmp_path / name, face_pixels)
    jobs = sorted(plan_jobs([tmp_path], tmp_path / "out"), key=lambda job: job.problem is not None)
    first = jobs[0].source
    assert jobs[0].problem is None and [job.problem for job in jobs[1:]] == [
        f"another input ({first}) writes the same output name, IMG_1.blurred.jpg; nothing was written: "
        "rename one of them"] * 3


def test_our_own_outputs_are_not_picked_up_again(folder):
    list(run_batch(plan_jobs([folder]), workers=1))
    assert [j.source.name for j in plan_jobs([folder])] == ["a.jpg", "b.png"]


def test_an_output_name_that_is_another_input_is_refused(tmp_path, face_pixels):
    write_photo(tmp_path / "x.png", face_pixels)
    write_photo(tmp_path / "x.blurred.png", face_pixels)  # given explicitly, so it is an input too
    jobs = plan_jobs([tmp_path / "x.png", tmp_path / "x.blurred.png"])
    assert jobs[0].problem and "another input" in jobs[0].problem
    original = (tmp_path / "x.blurred.png").read_bytes()
    outcomes = list(run_batch(jobs, workers=1, overwrite=True))
    assert outcomes[0].status is Status.FAILED
    assert (tmp_path / "x.blurred.png").read_bytes() == original


def test_a_bad_file_fails_alone_and_gets_no_output(folder):
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    outcomes = {o.source.name: o for o in run_batch(plan_jobs([folder]), workers=1)}
    assert outcomes["broken.jpg"].status is Status.FAILED
    assert "damaged" in outcomes["broken.jpg"].error
    assert not (folder / "broken.blurred.jpg").exists()
    assert outcomes["a.jpg"].status is Status.DONE and outcomes["b.png"].status is Status.DONE
    assert len(outcomes["a.jpg"].faces) >= 1


def test_outputs_have_the_face_destroyed_and_the_rest_kept(folder, face_pixels):
    kept = Settings(keep_geometry=True)  # every other pixel where it was, to compare them one by one
    (outcome,) = [o for o in run_batch(plan_jobs([folder / "day2" / "b.png"]), kept, workers=1)]
    output = np.asarray(Image.open(outcome.destination).convert("RGB"))
    original = face_pixels[:200, 100:350]
    x0, y0, x1, y1 = outcome.faces[0]["box"]
    face = (slice(max(y0, 0) + (y1 - y0) // 3, y1 - (y1 - y0) // 3), slice(x0 + (x1 - x0) // 3, x1 - (x1 - x0) // 3))
    assert np.any(output[face] != original[face], axis=2).mean() > 0.9
    assert np.array_equal(output[:, :20], original[:, :20])  # far from the face: untouched (lossless PNG)


def test_a_second_run_skips_finished_outputs_and_never_rewrites_them(folder):
    first = list(run_batch(plan_jobs([folder]), workers=1))
    assert {o.status for o in first} == {Status.DONE}
    written = {o.destination: o.destination.read_bytes() for o in first}
    second = list(run_batch(plan_jobs([folder]), workers=1))
    assert {o.status for o in second} == {Status.SKIPPED}
    assert all(path.read_bytes() == data for path, data in written.items())


def test_overwrite_replaces_outputs(folder):
    list(run_batch(plan_jobs([folder]), workers=1))
    outcomes = list(run_batch(plan_jobs([folder]), workers=1, overwrite=True))
    assert {o.status for o in outcomes} == {Status.DONE}


def test_worker_processes_give_the_same_outcomes(tmp_path):
    jobs = plan_jobs([SAMPLES], tmp_path / "out")
    outcomes = list(run_batch(jobs, Settings(), workers=2))
    assert sorted(o.source.name for o in outcomes) == sorted(p.name for p in SAMPLES.iterdir())
    assert {o.status for o in outcomes} == {Status.DONE}
    assert all(o.destination.is_file() for o in outcomes)


def test_missing_inputs_are_reported_as_failed(tmp_path):
    (outcome,) = run_batch(plan_jobs([tmp_path / "nope.jpg"]), workers=1)
    assert outcome.status is Status.FAILED and "no such file" in outcome.error


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_report_lists_every_file(folder, tmp_path, suffix):
    (folder / "broken.png").write_bytes(b"garbage")
    outcomes = list(run_batch(plan_jobs([folder]), workers=1))
    report = tmp_path / f"report{suffix}"
    write_report(outcomes, report)
    text = report.read_text()
    if suffix == ".json":
        files = {Path(f["input"]).name: f for f in json.loads(text)["files"]}
        assert files["broken.png"]["status"] == "failed" and files["broken.png"]["error"]
        assert files["a.jpg"]["status"] == "done" and files["a.jpg"]["method"] == "mosaic"
        assert files["a.jpg"]["faces"][0]["box"] and files["a.jpg"]["faces"][0]["score"] > 0.5
        assert files["a.jpg"]["output"].endswith("a.blurred.jpg")
    else:
        assert text.splitlines()[0].startswith("input,output,status,faces,boxes")
        assert "broken.png" in text and "failed" in text


# --- random names: the same on every run, recognised, and linked to nothing in the output folder ---


def test_a_rerun_with_random_names_resumes_instead_of_writing_second_copies(folder, tmp_path):
    out = tmp_path / "out"
    first = list(run_batch(plan_jobs([folder], out, random_names=True), workers=1))
    assert {o.status for o in first if o.status is not Status.NOT_READ} == {Status.DONE}
    written = sorted(p.name for p in out.iterdir())
    again = list(run_batch(plan_jobs([folder], out, random_names=True), workers=1))
    assert {o.status for o in again} == {Status.SKIPPED}
    assert sorted(p.name for p in out.iterdir()) == written  # nothing else: no list linking names to photos
    assert len(written) == 2


def test_random_named_outputs_among_the_inputs_are_not_taken_for_new_photos(folder):
    list(run_batch(plan_jobs([folder], random_names=True), workers=1))
    assert len(list(folder.rglob("*.*"))) == 5  # a.jpg, b.png, notes.txt and the two copies
    assert [j.source.name for j in plan_jobs([folder], random_names=True)] == ["a.jpg", "b.png"]
    again = list(run_batch(plan_jobs([folder], random_names=True), workers=1))
    assert {o.status for o in again} == {Status.SKIPPED}
    assert len(list(folder.rglob("*.*"))) == 5


def test_the_random_names_key_is_private_and_outside_every_photo_folder(folder, tmp_path, private_data_folder):
    from blur.names import KEY_NAME, is_random_output

    (job,) = plan_jobs([folder / "a.jpg"], tmp_path / "out", random_names=True)
    key = private_data_folder / "soft-focus" / KEY_NAME
    assert key.is_file() and (key.stat().st_mode & 0o077) == 0
    assert is_random_output(job.destination)
    assert not is_random_output(job.destination.with_name("0" * 24 + ".jpg"))  # a stranger's hex name
    key.write_bytes(b"k" * 32)  # another user's key: their names are not ours
    assert not is_random_output(job.destination)


# --- Ctrl-C: every photo written is among the outcomes ---------------------------------------------


class _StopAfterFirst:
    def __init__(self):
        self.outcomes = 0

    def is_set(self) -> bool:
        return self.outcomes >= 1


@pytest.mark.parametrize("workers", [1, 2])
def test_a_stopped_batch_reports_every_photo_it_wrote(tmp_path, face_pixels, workers):
    for number in range(6):
        write_photo(tmp_path / "in" / f"p{number}.png", face_pixels[: 200 + 10 * number, 100:350])
    stop = _StopAfterFirst()
    outcomes = []
    for outcome in run_batch(plan_jobs([tmp_path / "in"], tmp_path / "out"), workers=workers, stop=stop):
        outcomes.append(outcome)
        stop.outcomes += 1
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert 1 <= len(outcomes) < 6
    assert written == sorted(o.destination.name for o in outcomes if o.status is Status.DONE)


# --- the report says how each photo was processed ---------------------------------------------------


def test_the_report_names_the_tool_every_setting_and_the_model(folder, tmp_path):
    import hashlib

    from blur import __version__
    from blur.detect.centerface import bundled_model_path

    settings = Settings(padding=2.0, detector_options={"threshold": 0.3, "fast": True})
    outcomes = list(run_batch(plan_jobs([folder]), settings, workers=1))
    write_report(outcomes, tmp_path / "r.json")
    report = json.loads((tmp_path / "r.json").read_text())
    (key,) = report["processing"]
    processing = report["processing"][key]
    assert processing["tool"] == f"soft-focus {__version__}"
    assert processing["settings"]["padding"] == 2.0 and processing["settings"]["shape"] == "ellipse"
    assert processing["settings"]["detector_options"] == {"threshold": 0.3, "fast": True}
    assert processing["settings"]["max_pixels"] == settings.max_pixels and processing["settings"]["quality"] == 92
    detector = processing["detector"]
    assert detector["threshold"] == 0.3 and detector["views"]["mirror"] is False
    assert detector["model"] == "centerface.onnx"
    assert detector["model_sha256"] == hashlib.sha256(bundled_model_path().read_bytes()).hexdigest()
    done = [f for f in report["files"] if f["status"] == "done"]
    assert len(done) == 2 and all(f["processed_with"] == key for f in done)


def test_a_resumed_run_reports_what_the_first_run_did_not_zero_faces(folder, tmp_path):
    report = tmp_path / "r.json"
    first = list(run_batch(plan_jobs([folder / "a.jpg"]), workers=1))
    write_report(first, report)
    second = list(run_batch(plan_jobs([folder]), workers=1))
    assert {o.source.name: o.status for o in second if o.status is not Status.NOT_READ} == \
        {"a.jpg": Status.SKIPPED, "b.png": Status.DONE}
    assert next(o for o in second if o.source.name == "a.jpg").faces is None  # not known, not zero
    write_report(second, report)
    files = {Path(f["input"]).name: f for f in json.loads(report.read_text())["files"]}
    assert files["a.jpg"]["status"] == "skipped" and files["a.jpg"]["faces"] == first[0].faces
    assert files["a.jpg"]["processed_with"] is not None and files["b.png"]["processed_with"] is not None
    write_report(second, tmp_path / "fresh.json")  # no earlier report there: unknown, said as such
    files = {Path(f["input"]).name: f for f in json.loads((tmp_path / "fresh.json").read_text())["files"]}
    assert files["a.jpg"]["faces"] is None and files["a.jpg"]["processed_with"] is None


# --- files that are not photos the tool reads -------------------------------------------------------


def test_files_in_folders_that_are_not_read_are_counted_and_named(folder, tmp_path):
    (folder / "IMG_0001.DNG").write_bytes(b"II*\x00raw")
    (folder / "clip.AVI").write_bytes(b"RIFF\x00\x00\x00\x00AVI LIST")
    jobs = plan_jobs([folder], tmp_path / "out", not_read=True)
    outcomes = {o.source.name: o for o in run_batch(jobs, workers=1)}
    assert {name: o.status for name, o in outcomes.items()} == {
        "a.jpg": Status.DONE, "b.png": Status.DONE, "notes.txt": Status.NOT_READ,
        "IMG_0001.DNG": Status.NOT_READ, "clip.AVI": Status.NOT_READ}
    assert "camera raw" in outcomes["IMG_0001.DNG"].error and "convert it to MP4" in outcomes["clip.AVI"].error
    assert [j.source.name for j in plan_jobs([folder])] == ["a.jpg", "b.png"]  # without not_read: photos only


def test_an_unrelated_file_of_the_same_name_does_not_block_the_photo(tmp_path, face_pixels):
    write_photo(tmp_path / "Pentax.jpg", face_pixels)
    (tmp_path / "Pentax.avi").write_bytes(b"RIFF\x00\x00\x00\x00AVI LIST")
    outcomes = {o.source.name: o for o in run_batch(plan_jobs([tmp_path / "Pentax.avi", tmp_path / "Pentax.jpg"]),
                                                        workers=1)}
    assert outcomes["Pentax.jpg"].status is Status.DONE
    assert outcomes["Pentax.avi"].status is Status.FAILED and "video" in outcomes["Pentax.avi"].error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Pentax.avi", "Pentax.blurred.jpg", "Pentax.jpg"]


def test_a_photo_with_a_name_that_says_nothing_is_read_by_its_bytes(tmp_path, face_pixels):
    write_photo(tmp_path / "in" / "photo.png", face_pixels)
    (tmp_path / "in" / "photo.png").rename(tmp_path / "in" / "IMG_0001")
    (job,) = plan_jobs([tmp_path / "in"], tmp_path / "out", not_read=True)
    assert not job.not_read and job.kind is Kind.PHOTO and job.output == "PNG"
    assert job.destination == tmp_path / "out" / "IMG_0001.blurred.png"


def test_photos_are_done_in_this_process_by_default(folder, tmp_path, monkeypatch):
    """Inference already uses every core: by default no worker processes compete for them."""
    import blur.batch

    def no_processes(*args, **kwargs):
        raise AssertionError("worker processes were started")

    monkeypatch.setattr(blur.batch, "ProcessPoolExecutor", no_processes)
    outcomes = list(run_batch(plan_jobs([folder], tmp_path / "out")))
    assert [o.status for o in outcomes] == [Status.DONE, Status.DONE]


def test_people_seen_in_a_video_are_the_most_faces_tracked_at_once():
    """A face lost and found again starts a new track: tracks over-count people, faces at once do not."""
    tracks = [{"frames": [0, 10]}, {"frames": [5, 20]}, {"frames": [11, 30]}, {"frames": [21, 21]}, {"frames": [31, 40]}]
    assert people_seen(tracks) == 2
    assert people_seen([]) == 0


def test_an_outcome_read_back_from_its_record_is_the_same_outcome(tmp_path):
    """Watch rebuilds its report from saved records: every field must come back in its own place."""
    from blur.report import Outcome

    photo = Outcome(tmp_path / "a.jpg", tmp_path / "a.blurred.jpg", Status.DONE, [{"box": [1, 2, 3, 4]}], "mosaic",
                    None, 1.5, {"tool": "soft-focus"}, camera_unlinked=True)
    video = Outcome(tmp_path / "b.mp4", tmp_path / "b.blurred.mp4", Status.DONE, [], "solid", None, 2.0,
                    {"tool": "soft-focus"}, camera_unlinked=None, video={"frames": 6, "audio": False})
    failed = Outcome(tmp_path / "c.jpg", None, Status.FAILED, [], "mosaic", "damaged", 0.0)
    for outcome in (photo, video, failed):
        assert Outcome.from_record(outcome.record()) == outcome
