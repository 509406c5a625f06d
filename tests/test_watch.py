"""`blur watch`: photos copied slowly into a hot folder are processed once complete, and only once."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from blur.report import Status
from blur.watch import REPORT_NAME, STATE_NAME, SizeAndTime, SettleTracker, is_candidate, records_folder, watch_folder
from conftest import unlinked_size
from video_helpers import moving_face_frames, write_video

SAMPLES = Path(__file__).parent.parent / "samples"
WAIT = 60.0  # generous: the machine running the tests may be busy


def small_photo(name: str, target: Path, side: int = 256) -> Path:
    with Image.open(SAMPLES / name) as image:
        image = image.convert("RGB")
        image.thumbnail((side, side))
        target.parent.mkdir(parents=True, exist_ok=True)
        image.save(target, quality=90)
    return target


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def start_watch(in_dir: Path, out_dir: Path, settle: float, *options: str) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "blur_cli.main", "watch", str(in_dir), str(out_dir),
         "--settle", str(settle), "--interval", "0.1", *options],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert "watching" in process.stderr.readline()  # running, signal handlers installed
    return process


def stop_watch(process: subprocess.Popen, signum: int) -> tuple[int, str, str]:
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=WAIT)
    return process.returncode, stdout, stderr


def wait_for(path: Path) -> None:
    deadline = time.monotonic() + WAIT
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.05)


def cpu_seconds(pid: int) -> float:
    """The CPU time the process `pid` has used so far (Linux: /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def outputs(out_dir: Path) -> list[str]:
    """Every file in OUT: the copies, and nothing that names an original."""
    return sorted(str(p.relative_to(out_dir)) for p in out_dir.rglob("*") if p.is_file())


def report_path(out_dir: Path) -> Path:
    return records_folder(out_dir) / REPORT_NAME


def report(out_dir: Path) -> dict[str, dict]:
    files = json.loads(report_path(out_dir).read_text())["files"]
    assert len({f["input"] for f in files}) == len(files)
    return {Path(f["input"]).name: f for f in files}


def test_a_file_copied_in_slowly_is_processed_once_complete(tmp_path):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    in_dir.mkdir()
    photo = small_photo("astronaut.jpg", tmp_path / "camera" / "IMG_0001.jpg", side=512).read_bytes()
    watcher = start_watch(in_dir, out_dir, settle=1.5)
    try:
        # A copy tool's temporary name and a hidden file, never touched: complete at once and sorted
        # before IMG_0001.jpg, they would be taken before it, so its report says they were not.
        (in_dir / "IMG_0000.jpg.part").write_bytes(photo)
        (in_dir / ".IMG_0003.jpg").write_bytes(photo)
        chunks = [photo[i:i + len(photo) // 5 + 1] for i in range(0, len(photo), len(photo) // 5 + 1)]
        with open(in_dir / "IMG_0001.jpg", "wb") as copy:
            for chunk in chunks:
                copy.write(chunk)
                copy.flush()
                time.sleep(0.3)  # shorter than the settle time, as a slow network copy
                assert outputs(out_dir) == [], "processed while still being copied"
        wait_for(report_path(out_dir))
    finally:
        status, stdout, stderr = stop_watch(watcher, signal.SIGTERM)

    assert status == 0, stderr
    assert outputs(out_dir) == ["IMG_0001.blurred.jpg"]
    with Image.open(out_dir / "IMG_0001.blurred.jpg") as result:
        assert unlinked_size(result.size, (512, 512))
    entry = report(out_dir)["IMG_0001.jpg"]
    assert entry["status"] == "done" and len([f for f in entry["faces"] if f["source"] == "centerface"]) == 1
    assert list(report(out_dir)) == ["IMG_0001.jpg"]
    assert (in_dir / "IMG_0001.jpg").read_bytes() == photo  # the original is untouched
    assert stdout.count("done") == 1


def test_nothing_is_processed_again_after_a_restart(tmp_path):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    small_photo("astronaut.jpg", in_dir / "a.jpg")
    small_photo("hopper-sideways.jpg", in_dir / "day2" / "b.jpg")
    (in_dir / "notes.txt").write_text("not a photo")
    originals = {p.name: digest(p) for p in in_dir.rglob("*.jpg")}

    first = start_watch(in_dir, out_dir, settle=0.3)
    try:
        wait_for(out_dir / "a.blurred.jpg")
        wait_for(out_dir / "day2" / "b.blurred.jpg")
    finally:
        status, stdout, _ = stop_watch(first, signal.SIGINT)
    assert status == 130
    assert sorted(line.split()[0] for line in stdout.splitlines()) == ["done", "done"]
    copies = {name: digest(out_dir / name) for name in outputs(out_dir)}

    # Arrives while the watcher is down. All three settle together and are taken in one pass, in
    # order: a.jpg and day2/b.jpg would come back before it, so once it is done, they did not.
    small_photo("astronaut.jpg", in_dir / "later.jpg")
    second = start_watch(in_dir, out_dir, settle=0.3)
    try:
        wait_for(out_dir / "later.blurred.jpg")
    finally:
        status, stdout, _ = stop_watch(second, signal.SIGTERM)

    assert status == 0
    (line,) = stdout.splitlines()
    assert line.startswith(f"done     {in_dir / 'later.jpg'} -> {out_dir / 'later.blurred.jpg'} (1 face")
    assert outputs(out_dir) == ["a.blurred.jpg", "day2/b.blurred.jpg", "later.blurred.jpg"]
    assert {name: digest(out_dir / name) for name in copies} == copies  # earlier copies untouched
    assert {name: entry["status"] for name, entry in report(out_dir).items()} == \
        {"a.jpg": "done", "b.jpg": "done", "later.jpg": "done"}  # the report spans both runs
    assert {p.name: digest(p) for p in in_dir.rglob("*.jpg") if p.name in originals} == originals


def run_until(in_dir: Path, out_dir: Path, count: int) -> list:
    """Run the watcher in-process until `count` photos were handled."""
    stop = threading.Event()
    outcomes = []
    for outcome in watch_folder(in_dir, out_dir, settle=0.0, interval=0.05, stop=stop):
        outcomes.append(outcome)
        if len(outcomes) == count:
            stop.set()
    return outcomes


def test_a_failed_photo_is_retried_after_restart_and_a_new_version_replaces_its_copy(tmp_path):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    small_photo("astronaut.jpg", in_dir / "a.jpg")
    (in_dir / "b.jpg").write_bytes(b"\xff\xd8 truncated")
    outcomes = run_until(in_dir, out_dir, 2)
    assert sorted((o.source.name, o.status) for o in outcomes) == [("a.jpg", Status.DONE), ("b.jpg", Status.FAILED)]
    assert outputs(out_dir) == ["a.blurred.jpg"]  # fail closed: nothing for b.jpg

    small_photo("hopper-sideways.jpg", in_dir / "a.jpg")  # a new version of a.jpg
    small_photo("hopper-sideways.jpg", in_dir / "b.jpg")  # b.jpg now readable
    old_copy = digest(out_dir / "a.blurred.jpg")
    outcomes = run_until(in_dir, out_dir, 2)
    assert sorted((o.source.name, o.status) for o in outcomes) == [("a.jpg", Status.DONE), ("b.jpg", Status.DONE)]
    assert digest(out_dir / "a.blurred.jpg") != old_copy
    with Image.open(out_dir / "a.blurred.jpg") as copy:
        assert unlinked_size(copy.size, Image.open(in_dir / "a.jpg").size)


def test_a_video_whose_copy_stalls_half_way_fails_with_nothing_written_and_is_done_once_whole(tmp_path):
    """Taken once it stops growing, as photos are: half an MKV is refused as cut short (its header
    declares the whole length), and the whole video is done when the rest arrives."""
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    in_dir.mkdir()
    whole = write_video(tmp_path / "clip.mkv", moving_face_frames(60, 120, 160, 48, 1)[0], rate=15).read_bytes()
    (in_dir / "clip.mkv").write_bytes(whole[: len(whole) // 2])
    stop = threading.Event()
    outcomes = []
    for outcome in watch_folder(in_dir, out_dir, settle=0.2, interval=0.05, stop=stop):
        outcomes.append(outcome)
        if len(outcomes) == 1:
            assert outcome.status is Status.FAILED and "truncated video: only" in outcome.error, outcome.error
            assert outputs(out_dir) == []
            with open(in_dir / "clip.mkv", "ab") as copy:  # the copy goes on
                copy.write(whole[len(whole) // 2 :])
        else:
            stop.set()
    assert outcomes[1].status is Status.DONE and outcomes[1].video["frames"] == 60
    assert outputs(out_dir) == ["clip.blurred.mp4"]


def test_watch_removes_the_temporaries_a_killed_run_left_behind(tmp_path):
    """After kill -9 (a video takes minutes: the likeliest moment), a restart cleans up, as a batch does."""
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    small_photo("astronaut.jpg", in_dir / "day1" / "a.jpg")
    (out_dir / "day1").mkdir(parents=True)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # its process id is free now
    leftovers = [out_dir / "day1" / f".blur-{child.pid}-clip1234.part", out_dir / f".blur-{child.pid}-state123.part"]
    for leftover in leftovers:
        leftover.write_bytes(b"half a video")
    assert [o.status for o in run_until(in_dir, out_dir, 1)] == [Status.DONE]
    assert [p for p in leftovers if p.exists()] == []


def test_a_file_link_leading_out_of_the_watched_folder_is_not_followed(tmp_path):
    """Others drop files into a hot folder: a link there to a photo elsewhere must not publish its copy."""
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    small_photo("astronaut.jpg", tmp_path / "private" / "me.jpg")
    in_dir.mkdir()
    (in_dir / "drop.jpg").symlink_to(tmp_path / "private" / "me.jpg")
    (outcome,) = run_until(in_dir, out_dir, 1)
    assert outcome.status is Status.FAILED and "a link to a file outside the watched folder" in outcome.error
    assert outputs(out_dir) == []


def test_a_file_is_settled_only_after_it_stops_changing():
    now = [0.0]
    tracker = SettleTracker(2.0, clock=lambda: now[0])
    growing = Path("a.jpg")
    for second, size in enumerate([10, 20, 30, 30, 30]):
        now[0] = float(second)
        ready = tracker.settled({growing: SizeAndTime(size, 1000 + size)})
        assert ready == ([growing] if second == 4 else [])
    now[0] = 5.0
    assert tracker.settled({growing: SizeAndTime(40, 1040)}) == []  # changed again: wait again
    assert tracker.settled({}) == []


def test_hidden_and_temporary_names_are_ignored():
    for name in ["a.jpg", "day 2/IMG_0001.JPG", "b.heic", "c.png"]:
        assert is_candidate(Path(name)), name
    for name in [".a.jpg", "._a.jpg", "~$a.jpg", "a.jpg.part", "a.jpg.crdownload", "a.jpg~", "a.jpg.tmp",
                 ".sync/a.jpg", "a.blurred.jpg", "notes.txt", "a.jpg.filepart"]:
        assert not is_candidate(Path(name)), name


def test_an_output_folder_inside_the_watched_folder_is_not_watched(tmp_path):
    in_dir = tmp_path / "in"
    small_photo("astronaut.jpg", in_dir / "a.jpg")
    outcomes = run_until(in_dir, in_dir / "a-cleared", 1)
    assert [o.status for o in outcomes] == [Status.DONE]
    (in_dir / "a-cleared" / "a.blurred.jpg").rename(in_dir / "a-cleared" / "renamed.jpg")
    small_photo("hopper-sideways.jpg", in_dir / "b.jpg")
    outcomes = run_until(in_dir, in_dir / "a-cleared", 1)
    assert [o.source.name for o in outcomes] == ["b.jpg"]  # not a-cleared/renamed.jpg, which sorts first


@pytest.mark.parametrize("gap", [0.0, 0.05, 0.2, 0.5])
def test_a_second_ctrl_c_while_stopping_still_exits_cleanly_with_130(tmp_path, gap):
    (tmp_path / "in").mkdir()
    watcher = start_watch(tmp_path / "in", tmp_path / "out", settle=0.2)
    watcher.send_signal(signal.SIGINT)
    time.sleep(gap)
    status, _, stderr = stop_watch(watcher, signal.SIGINT)
    assert status == 130, stderr
    assert "Traceback" not in stderr


def test_two_ctrl_c_during_a_photo_abandon_it_without_partial_output_and_a_restart_does_it(tmp_path):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    in_dir.mkdir()
    with Image.open(SAMPLES / "crowd.png") as crowd:  # big enough to take a while
        crowd.convert("RGB").resize((2400, 1500)).save(tmp_path / ".incoming.jpg", quality=90)
    watcher = start_watch(in_dir, out_dir, settle=0.2)
    working = cpu_seconds(watcher.pid)
    (tmp_path / ".incoming.jpg").rename(in_dir / "crowd.jpg")  # appears complete at once
    deadline = time.monotonic() + WAIT
    while cpu_seconds(watcher.pid) - working < 1.0:  # taken, and its faces being looked for
        assert time.monotonic() < deadline and watcher.poll() is None
        time.sleep(0.05)
    watcher.send_signal(signal.SIGINT)
    assert "stopping after the file in progress; Ctrl-C again" in watcher.stderr.readline()
    status, stdout, stderr = stop_watch(watcher, signal.SIGINT)

    assert status == 130, stderr
    leftovers = [p.name for p in out_dir.iterdir() if p.name.startswith(".blur-") and p.name.endswith(".part")]
    assert leftovers == []
    if (out_dir / "crowd.blurred.jpg").exists():  # it finished before the second Ctrl-C: complete
        with Image.open(out_dir / "crowd.blurred.jpg") as result:
            result.load()
        assert report(out_dir)["crowd.jpg"]["status"] == "done"
    else:
        assert "abandoned" in stderr and stdout == ""

    restarted = start_watch(in_dir, out_dir, settle=0.2)
    try:
        wait_for(out_dir / "crowd.blurred.jpg")
        wait_for(report_path(out_dir))
    finally:
        status, stdout, _ = stop_watch(restarted, signal.SIGTERM)
    assert status == 0
    assert list(report(out_dir)) == ["crowd.jpg"] and report(out_dir)["crowd.jpg"]["status"] == "done"
    with Image.open(out_dir / "crowd.blurred.jpg") as result:
        assert unlinked_size(result.size, (2400, 1500))


def test_with_random_names_nothing_in_the_output_folder_links_a_copy_to_its_original(tmp_path, private_data_folder):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    in_dir.mkdir()
    (in_dir / "IMG_20261122_143000.jpg").write_bytes((SAMPLES / "astronaut.jpg").read_bytes())
    stop = threading.Event()
    outcomes = []
    for outcome in watch_folder(in_dir, out_dir, settle=0.1, interval=0.1, random_names=True, stop=stop):
        outcomes.append(outcome)
        stop.set()
    (outcome,) = outcomes
    assert outcome.status is Status.DONE
    assert [p.name for p in out_dir.iterdir()] == [outcome.destination.name]  # the copy, nothing else
    records = records_folder(out_dir)
    assert records.is_relative_to(private_data_folder)
    assert "IMG_20261122_143000" in (records / REPORT_NAME).read_text()


def test_the_report_and_state_never_land_in_the_output_folder(tmp_path, private_data_folder):
    """OUT is what gets posted or synced; the report and the state name every original."""
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    small_photo("astronaut.jpg", in_dir / "IMG_20261122_143000.jpg")
    (outcome,) = run_until(in_dir, out_dir, 1)
    assert outcome.status is Status.DONE
    assert [p.name for p in out_dir.iterdir()] == ["IMG_20261122_143000.blurred.jpg"]
    records = records_folder(out_dir)
    assert records.is_relative_to(private_data_folder) and (records / STATE_NAME).is_file()
    assert "IMG_20261122_143000" in (records / REPORT_NAME).read_text()


def test_a_report_is_written_where_asked_and_refused_inside_the_output_folder_with_random_names(tmp_path):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    small_photo("astronaut.jpg", in_dir / "a.jpg")
    refused = subprocess.run([sys.executable, "-m", "blur_cli.main", "watch", str(in_dir), str(out_dir),
                              "--random-names", "--report", str(out_dir / "r.json")],
                             capture_output=True, text=True, timeout=WAIT)
    assert refused.returncode == 2 and "inside the output folder" in refused.stderr and not out_dir.exists()

    out_dir.mkdir()
    (out_dir / REPORT_NAME).write_text("{}")  # where an earlier version kept it
    watcher = start_watch(in_dir, out_dir, 0.2, "--report", str(tmp_path / "reports" / "r.json"))
    try:
        note = watcher.stderr.readline()
        wait_for(tmp_path / "reports" / "r.json")
    finally:
        status, _, stderr = stop_watch(watcher, signal.SIGTERM)
    assert status == 0 and f"report in {tmp_path / 'reports' / 'r.json'}" in stderr
    assert f"note: {out_dir / REPORT_NAME}, left by an earlier version, names every original" in note
    assert [f["status"] for f in json.loads((tmp_path / "reports" / "r.json").read_text())["files"]] == ["done"]
    assert outputs(out_dir) == ["a.blurred.jpg", REPORT_NAME]


def test_the_report_keeps_each_photos_camera_step_and_each_videos_details_across_rewrites(tmp_path):
    """The report is rewritten from the saved state after every file: what it said of the first file
    (camera_unlinked for a photo, frames and sound for a video) must survive the rewrites."""
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    small_photo("astronaut.jpg", in_dir / "a.jpg")
    write_video(in_dir / "b.mp4", moving_face_frames(6, 120, 160, 48, 1)[0], rate=15)
    small_photo("hopper-sideways.jpg", in_dir / "c.jpg")
    outcomes = run_until(in_dir, out_dir, 3)
    assert [o.status for o in outcomes] == [Status.DONE] * 3
    files = report(out_dir)
    assert files["a.jpg"]["camera_unlinked"] is True and "video" not in files["a.jpg"]
    assert files["c.jpg"]["camera_unlinked"] is True
    assert files["b.mp4"]["video"]["frames"] == 6 and files["b.mp4"]["video"]["audio"] is False
    assert files["b.mp4"]["camera_unlinked"] is None
