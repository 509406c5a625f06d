"""Batch: planning output names, running jobs, failing alone, resuming, reports."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from blur.batch import Status, plan_jobs, run_batch, write_report
from blur.pipeline import Settings
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
    assert all("a" != d.stem and "b" != d.stem and len(d.stem) == 16 for d in destinations)
    assert [d.suffix for d in destinations] == [".jpg", ".png"]


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
    (outcome,) = [o for o in run_batch(plan_jobs([folder / "day2" / "b.png"]), workers=1)]
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
    write_report(outcomes, report, Settings())
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
