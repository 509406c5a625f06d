"""Benchmarks: the recall benchmark scores real outputs correctly and skips cleanly without its data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.wider import context_mask, evaluate, evaluate_large, face_destroyed  # noqa: E402

FACE_BOX = [190, 70, 70, 100]  # x, y, width, height of the face in samples/astronaut.jpg


@pytest.fixture
def dataset(tmp_path, face_pixels):
    """A WIDER-style folder: the portrait, and a blank photo whose only 'face' cannot be found."""
    (tmp_path / "images").mkdir()
    Image.fromarray(face_pixels).save(tmp_path / "images" / "portrait.jpg", quality=95)
    Image.fromarray(np.full((300, 400, 3), 120, np.uint8)).save(tmp_path / "images" / "blank.jpg")
    faces = {"images": [
        {"image": "images/portrait.jpg", "faces": [{"box": FACE_BOX, "invalid": 0}]},
        {"image": "images/blank.jpg", "faces": [{"box": [100, 100, 24, 30], "invalid": 0},
                                                {"box": [10, 10, 5, 5], "invalid": 1}]},
    ]}
    (tmp_path / "faces.json").write_text(json.dumps(faces))
    return tmp_path


def test_a_face_counts_as_destroyed_only_when_most_of_its_box_changed():
    change = np.zeros((50, 50), bool)
    change[10:30, 10:30] = True
    assert face_destroyed(change, [10, 10, 20, 20])
    assert not face_destroyed(change, [10, 10, 20, 30])  # a third of the box untouched


def test_context_mask_enlarges_each_face_box():
    mask = context_mask((100, 100), [{"box": [40, 40, 20, 20]}])
    assert mask[35, 35] and mask[64, 64] and not mask[30, 30] and not mask[70, 70]


def test_recall_is_measured_on_the_tools_output(dataset):
    result = evaluate(dataset, [], workers=1)
    assert result["photos"] == 2 and result["valid_faces"] == 2  # the invalid face is left out
    assert result["buckets"][">=80"] == {"destroyed": 1, "faces": 1, "percent": 100.0}
    assert result["buckets"]["20-40"] == {"destroyed": 0, "faces": 1, "percent": 0.0}
    assert result["destroyed_percent"] == 50.0
    assert 0 <= result["collateral_percent"] < 5


def test_large_photos_are_timed_next_to_deface(dataset):
    result = evaluate_large(dataset, [], photos=1, megapixels=0.5)
    assert result["buckets"][">=80"]["destroyed"] == 1
    assert result["seconds_per_photo"] > 0 and result["cpu_seconds_per_photo"] > 0
    assert result["deface_seconds_per_photo"] > 0  # deface is installed with the tool


def test_benchmark_skips_without_its_dataset(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "wider.py"), "--dataset", str(tmp_path / "absent")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("skipped: no dataset")


def test_second_opinions_score_the_default_and_the_bound_of_a_perfect_judge(dataset):
    from benchmarks.second_opinions import evaluate as second_opinions

    result = second_opinions(dataset)
    default, judged = result["rows"]["default"], result["rows"]["perfect judge of candidates"]
    assert default["valid_faces"] == judged["valid_faces"] == 2
    assert default["buckets"][">=80"]["destroyed"] == 1  # the portrait
    assert judged["destroyed_percent"] >= default["destroyed_percent"]
    assert 0 <= default["collateral_percent"] < 5
    assert set(result["seconds_per_photo"]) >= {"default"}


def test_second_opinions_skip_without_the_dataset(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "second_opinions.py"),
                           "--dataset", str(tmp_path / "absent")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("skipped: no dataset")
