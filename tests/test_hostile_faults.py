"""Faults around the files: full or read-only output, killed workers, Ctrl-C, two runs at once.

In every case: originals unchanged, no partial files left, each failing file reported once, the
other photos processed, and an exit status that says what happened.
"""

from __future__ import annotations

import errno
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from contextlib import contextmanager
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

import hostile
from blur.encode import STALE_AFTER_SECONDS, remove_stale_temporaries

BLUR = [sys.executable, "-m", "blur_cli.main"]


def noisy_jpeg(seed: int, width: int = 320, height: int = 240) -> bytes:
    """A photo-sized JPEG that does not compress much (about 50-70 KB)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def photo_folder(root: Path, count: int, **size) -> dict[str, bytes]:
    root.mkdir(parents=True, exist_ok=True)
    photos = {f"photo{i:02d}.jpg": noisy_jpeg(i, **size) for i in range(count)}
    for name, data in photos.items():
        (root / name).write_bytes(data)
    return photos


def assert_valid_outputs(out: Path) -> list[Path]:
    outputs = [p for p in out.rglob("*") if p.is_file() and p.suffix != ".json"]
    for path in outputs:
        with Image.open(path) as image:
            image.load()
    assert hostile.temporaries(out) == []
    return outputs


@contextmanager
def tmpfs(path: Path, size: str, *, read_only: bool = False):
    """A small RAM file system at `path` (needs root and mount rights, else the test is skipped)."""
    path.mkdir()
    options = f"size={size}" + (",ro" if read_only else "")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "blur-test", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.decode().strip()}); the injected-error test covers this")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


# --- Output folder full or read-only ------------------------------------------------------------


def test_a_full_disk_fails_the_photos_that_do_not_fit_and_leaves_no_partial_file(tmp_path):
    originals = photo_folder(tmp_path / "in", 6)
    before = hostile.snapshot(tmp_path / "in")
    with tmpfs(tmp_path / "out", "160k") as out:
        status, stdout, stderr = hostile.run_cli([tmp_path / "in", "-o", out, "-j", "1", "--report", tmp_path / "r.json"])
        outputs = assert_valid_outputs(out)
    lines = stdout.splitlines()
    failed = [line for line in lines if line.startswith("FAILED")]
    assert status == 1 and len(lines) == len(originals)
    assert failed and all("No space left on device" in line for line in failed)
    assert len(outputs) == len(lines) - len(failed) >= 1
    records = json.loads((tmp_path / "r.json").read_text())["files"]
    assert sorted(r["status"] for r in records) == sorted(line.split()[0].lower() for line in lines)
    assert hostile.snapshot(tmp_path / "in") == before


def test_a_read_only_output_folder_fails_every_photo_clearly(tmp_path):
    photo_folder(tmp_path / "in" / "day1", 2)
    before = hostile.snapshot(tmp_path / "in")
    with tmpfs(tmp_path / "out", "1m", read_only=True) as out:
        status, stdout, _ = hostile.run_cli([tmp_path / "in", "-o", out, "-j", "1"])
        assert os.listdir(out) == []
    lines = stdout.splitlines()
    assert status == 1 and len(lines) == 2
    assert all(line.startswith("FAILED") and "Read-only file system" in line for line in lines)
    assert hostile.snapshot(tmp_path / "in") == before


def test_injected_write_errors_fail_only_the_photos_they_hit(tmp_path, monkeypatch):
    """Without mount rights: the disk fills up on the second write, and the output folder of the third is read-only."""
    photo_folder(tmp_path / "in", 4)
    before = hostile.snapshot(tmp_path / "in")
    real_fsync, real_mkstemp = os.fsync, __import__("tempfile").mkstemp
    calls = {"fsync": 0, "mkstemp": 0}

    def filling_fsync(fd):
        calls["fsync"] += 1
        if calls["fsync"] == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    def read_only_mkstemp(*args, **kwargs):
        calls["mkstemp"] += 1
        if calls["mkstemp"] == 3:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return real_mkstemp(*args, **kwargs)

    monkeypatch.setattr(os, "fsync", filling_fsync)
    monkeypatch.setattr("tempfile.mkstemp", read_only_mkstemp)
    status, stdout, _ = hostile.run_cli([tmp_path / "in", "-o", tmp_path / "out", "-j", "1"])
    lines = stdout.splitlines()
    assert status == 1
    assert [line.split()[0] for line in lines] == ["done", "FAILED", "FAILED", "done"]
    assert "No space left on device" in lines[1] and "Read-only file system" in lines[2]
    assert len(assert_valid_outputs(tmp_path / "out")) == 2
    assert hostile.snapshot(tmp_path / "in") == before


def noisy_video(path: Path, frames: int = 30) -> Path:
    """A video that does not compress much (about 200 KB), so that it fills a small disk."""
    from video_helpers import write_video

    rng = np.random.default_rng(0)
    return write_video(path, [rng.integers(0, 256, (120, 160, 3), dtype=np.uint8) for _ in range(frames)])


def test_a_full_disk_during_a_video_says_so_as_for_photos_and_leaves_no_partial_file(tmp_path):
    (tmp_path / "in").mkdir()
    noisy_video(tmp_path / "in" / "clip.mp4")
    with tmpfs(tmp_path / "out", "24k") as out:
        status, stdout, _ = hostile.run_cli([tmp_path / "in", "-o", out])
        assert os.listdir(out) == []
    assert status == 1
    assert stdout.splitlines() == [f"FAILED   {tmp_path / 'in' / 'clip.mp4'}: cannot write clip.blurred.mp4 "
                                   "(No space left on device)"]


def test_an_injected_write_error_during_a_video_says_so_as_for_photos(tmp_path, monkeypatch):
    """Without mount rights: the disk fills up at the fifth frame."""
    from blur.video.encode import VideoWriter

    (tmp_path / "in").mkdir()
    noisy_video(tmp_path / "in" / "clip.mp4")
    write_frame = VideoWriter.write_frame

    def filling(writer, pixels):
        filling.calls += 1
        if filling.calls == 5:
            raise av.error.OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        write_frame(writer, pixels)

    filling.calls = 0
    monkeypatch.setattr(VideoWriter, "write_frame", filling)
    status, stdout, _ = hostile.run_cli([tmp_path / "in", "-o", tmp_path / "out"])
    assert status == 1
    assert stdout.splitlines() == [f"FAILED   {tmp_path / 'in' / 'clip.mp4'}: cannot write clip.blurred.mp4 "
                                   "(No space left on device)"]
    assert os.listdir(tmp_path / "out") == []


def test_a_report_that_cannot_be_written_is_said_and_changes_the_exit_status(tmp_path):
    photo_folder(tmp_path / "in", 1)
    (tmp_path / "report-is-a-folder.json").mkdir()
    status, stdout, stderr = hostile.run_cli([tmp_path / "in", "-j", "1", "--report", tmp_path / "report-is-a-folder.json"])
    assert status == 1 and stdout.startswith("done")
    assert "the report was not written" in stderr
    assert hostile.temporaries(tmp_path) == []


# --- Stale temporary files from killed processes ------------------------------------------------


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_only_our_abandoned_temporaries_are_removed(tmp_path):
    gone, alive = dead_pid(), os.getpid()
    names = {
        f".blur-{gone}-abcd_123.part": False,  # writer is dead
        f".blur-{alive}-old12345.part": False,  # writer alive but untouched for too long
        f".blur-{alive}-fresh123.part": True,  # a live writer, right now
        f".blur-{gone}-abcd_123.part.jpg": True,  # not our exact name
        ".blur-abcdefgh.part": True,
        f".blur-{gone}-ABCDEFGH.part": True,
        "photo.part": True,
        "photo.jpg": True,
    }
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    old = time.time() - STALE_AFTER_SECONDS - 60
    os.utime(tmp_path / f".blur-{alive}-old12345.part", (old, old))
    os.mkdir(tmp_path / f".blur-{gone}-folder12.part")
    os.symlink("photo.jpg", tmp_path / f".blur-{gone}-symlink1.part")
    assert remove_stale_temporaries(tmp_path) == 2
    assert sorted(os.listdir(tmp_path)) == sorted(
        [name for name, kept in names.items() if kept] + [f".blur-{gone}-folder12.part", f".blur-{gone}-symlink1.part"]
    )


def test_a_batch_starts_by_removing_what_a_killed_run_left_behind(tmp_path):
    photo_folder(tmp_path / "in", 1)
    (tmp_path / "out").mkdir()
    leftover = tmp_path / "out" / f".blur-{dead_pid()}-leftover.part"
    leftover.write_bytes(b"half a photo")
    status, _, _ = hostile.run_cli([tmp_path / "in", "-o", tmp_path / "out", "-j", "1"])
    assert status == 0 and not leftover.exists()
    assert len(assert_valid_outputs(tmp_path / "out")) == 1


def test_a_video_killed_mid_write_leaves_its_temporary_and_the_next_run_removes_it(tmp_path):
    """kill -9 cannot be cleaned up after: the hidden .part stays until the next run in that folder."""
    (tmp_path / "in").mkdir()
    noisy_video(tmp_path / "in" / "clip.mp4", frames=300)
    out = tmp_path / "out"
    process = subprocess.Popen(BLUR + [str(tmp_path / "in"), "-o", str(out)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not hostile.temporaries(out) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)  # until the video's temporary file is there
    finally:
        process.kill()
        process.communicate()
    (leftover,) = hostile.temporaries(out)
    assert Path(leftover).name.startswith(f".blur-{process.pid}-") and not (out / "clip.blurred.mp4").exists()
    (tmp_path / "in" / "clip.mp4").write_bytes(b"")  # quick to fail: the run only has to start
    status, stdout, _ = hostile.run_cli([tmp_path / "in", "-o", out])
    assert status == 1 and "clip.mp4" in stdout
    assert hostile.temporaries(out) == []


# --- Worker processes killed mid-batch ----------------------------------------------------------

FAULT_HOOK = textwrap.dedent(
    """
    # Loaded by every Python process of a test run (PYTHONPATH=<folder with this file>). In worker
    # processes only, SIGKILL the worker while it decodes a file carrying a marker, or while it
    # writes one named crash-in-write. With BLUR_TEST_DELAY=<seconds>, every photo takes that long
    # longer, so signals and a second run reliably land mid-batch on any machine.
    import multiprocessing, os, signal, time
    import blur.decode, blur.pipeline

    def _in_worker():
        return multiprocessing.parent_process() is not None

    _decode, _write = blur.decode.decode_photo, blur.pipeline.write_atomically

    def decode_photo(data, **options):
        if b"CRASH-THE-WORKER" in data and _in_worker():
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(float(os.environ.get("BLUR_TEST_DELAY", 0)))
        return _decode(data, **options)

    def write_atomically(data, destination, **options):
        if "crash-in-write" in destination.name and _in_worker():
            os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)
        written = _write(data, destination, **options)
        if "crash-after-write" in destination.name and _in_worker():
            os.kill(os.getpid(), signal.SIGKILL)  # the copy is whole, but its outcome never comes back
        return written

    blur.decode.decode_photo, blur.pipeline.write_atomically = decode_photo, write_atomically
    """
)


def with_fault_hook(tmp_path: Path, delay: float = 0.0) -> dict[str, str]:
    """Environment for a `blur` subprocess that loads FAULT_HOOK."""
    (tmp_path / "hook").mkdir(exist_ok=True)
    (tmp_path / "hook" / "sitecustomize.py").write_text(FAULT_HOOK)
    return {**os.environ, "PYTHONPATH": str(tmp_path / "hook"), "BLUR_TEST_DELAY": str(delay)}


def test_a_photo_whose_worker_died_after_writing_it_is_reported_done_not_skipped(tmp_path):
    originals = photo_folder(tmp_path / "in", 2, width=64, height=48)
    (tmp_path / "in" / "crash-after-write.jpg").write_bytes(noisy_jpeg(97, 64, 48))
    run = subprocess.run(
        BLUR + [str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-j", "2", "--report", str(tmp_path / "r.json")],
        env=with_fault_hook(tmp_path), capture_output=True, text=True, timeout=240,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert len(assert_valid_outputs(tmp_path / "out")) == len(originals) + 1
    files = {Path(r["input"]).name: r for r in json.loads((tmp_path / "r.json").read_text())["files"]}
    assert files["crash-after-write.jpg"]["status"] == "done", files["crash-after-write.jpg"]
    assert sorted(r["status"] for r in files.values()) == ["done"] * (len(originals) + 1)


def test_a_worker_killed_mid_batch_fails_only_its_photo(tmp_path):
    originals = photo_folder(tmp_path / "in", 5, width=64, height=48)
    (tmp_path / "in" / "crash-in-decode.jpg").write_bytes(noisy_jpeg(98, 64, 48) + b"CRASH-THE-WORKER")
    (tmp_path / "in" / "crash-in-write.jpg").write_bytes(noisy_jpeg(99, 64, 48))
    before = hostile.snapshot(tmp_path / "in")
    run = subprocess.run(
        BLUR + [str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-j", "2", "--report", str(tmp_path / "r.json")],
        env=with_fault_hook(tmp_path), capture_output=True, text=True, timeout=240,
    )
    lines = run.stdout.splitlines()
    failed = sorted(Path(line.split()[1].rstrip(":")).name for line in lines if line.startswith("FAILED"))
    assert run.returncode == 1, run.stderr
    assert failed == ["crash-in-decode.jpg", "crash-in-write.jpg"], run.stdout
    assert all("crashed" in line for line in lines if line.startswith("FAILED"))
    assert len(lines) == len(originals) + 2
    assert len(assert_valid_outputs(tmp_path / "out")) == len(originals)
    statuses = [r["status"] for r in json.loads((tmp_path / "r.json").read_text())["files"]]
    assert sorted(statuses) == ["done"] * len(originals) + ["failed"] * 2
    assert hostile.snapshot(tmp_path / "in") == before
    assert len(run.stderr.splitlines()) == 1 and run.stderr.startswith("blur: "), run.stderr


# --- Ctrl-C and two runs at once ----------------------------------------------------------------


@pytest.mark.parametrize("workers", ["1", "2"])
def test_ctrl_c_mid_batch_stops_cleanly_and_the_next_run_resumes(tmp_path, workers):
    photos = photo_folder(tmp_path / "in", 24)
    before = hostile.snapshot(tmp_path / "in")
    command = BLUR + [str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-j", workers, "--report", str(tmp_path / "r.json")]
    batch = subprocess.Popen(
        command, env=with_fault_hook(tmp_path, delay=0.3),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        first = batch.stdout.readline()
        os.killpg(batch.pid, signal.SIGINT)  # as a terminal does: the whole process group, workers too
        rest, stderr = batch.communicate(timeout=120)
    finally:
        if batch.poll() is None:
            os.killpg(batch.pid, signal.SIGKILL)
    assert first.startswith("done"), stderr
    assert batch.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and _group_alive(batch.pid):
        time.sleep(0.2)
    assert not _group_alive(batch.pid), "worker processes outlived the interrupted batch"
    records = json.loads((tmp_path / "r.json").read_text())["files"]
    assert 1 <= len(records) < len(photos) and {r["status"] for r in records} == {"done"}
    done_before = len(assert_valid_outputs(tmp_path / "out"))
    assert done_before == len(records), "a photo was written but is missing from the report"
    assert f"interrupted after {done_before} of {len(photos)} photos" in stderr

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert resumed.returncode == 0, resumed.stderr
    assert sum(line.startswith("skipped") for line in resumed.stdout.splitlines()) == done_before
    assert len(assert_valid_outputs(tmp_path / "out")) == len(photos)
    assert hostile.snapshot(tmp_path / "in") == before


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_the_same_batch_started_twice_at_once_writes_each_photo_once(tmp_path):
    photos = photo_folder(tmp_path / "in", 16)
    before = hostile.snapshot(tmp_path / "in")
    command = BLUR + [str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-j", "1"]
    environment = with_fault_hook(tmp_path, delay=0.1)
    runs = [
        subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [run.communicate(timeout=240) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], results
    outcomes: dict[str, list[str]] = {}
    for stdout, _ in results:
        for line in stdout.splitlines():
            outcomes.setdefault(Path(line.split()[1].rstrip(":")).name, []).append(line.split()[0])
    assert set(outcomes) == set(photos)
    assert all(sorted(kinds) == ["done", "skipped"] for kinds in outcomes.values()), outcomes
    assert len(assert_valid_outputs(tmp_path / "out")) == len(photos)
    assert hostile.snapshot(tmp_path / "in") == before
