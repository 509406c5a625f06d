"""A video split by time, each range anonymised apart (on a cluster's workers), and joined: the same
pictures in the same order as a local run, the same faces covered, nothing left of the parts."""

from __future__ import annotations

import io
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from blur.jobs import plan_jobs
from blur.report import Status
from blur.errors import UnreadableVideo
from blur.pipeline import Settings
from blur.video import VideoSettings, anonymise_video_file
from blur.video.split import anonymise_time_range, join_segments, plan_time_ranges
from conftest import require_module
from test_video_time import scenery
from video_helpers import moving_face_frames

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))
from benchmarks.wider import box_ssim, grey  # noqa: E402


def clip(path: Path, count: int = 90, keyframes: int = 15, audio: bool = True, size: int = 96):
    """A 30-frames-a-second clip of the astronaut's face walking right, a keyframe every `keyframes`
    frames (as phones write), with a tone; its frames and the face's box (x0, y0, x1, y1) in each."""
    frames, boxes = moving_face_frames(count, step=2, size=size, width=320 + 2 * count)
    backdrop = scenery(frames[0].shape[0], frames[0].shape[1] + 4 * count)
    for i, (frame, (x0, y0, x1, y1)) in enumerate(zip(frames, boxes)):  # the camera pans: every frame differs
        face = frame[y0:y1, x0:x1].copy()
        frame[:] = backdrop[:, 4 * i : 4 * i + frame.shape[1]]
        frame[y0:y1, x0:x1] = face
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=30)
        video.width, video.height, video.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        video.codec_context.options = {"g": str(keyframes), "bf": "2"}
        sound = container.add_stream("aac", rate=16000, layout="mono") if audio else None
        for i, pixels in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 30)
            for packet in video.encode(frame):
                container.mux(packet)
            if sound is not None:
                tone = (np.sin(np.arange(16000 // 30) * 0.2 + i) * 0.3).astype(np.float32)[None, :]
                chunk = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
                chunk.sample_rate = 16000
                for packet in sound.encode(chunk):
                    container.mux(packet)
        for stream in [video] + ([sound] if sound is not None else []):
            for packet in stream.encode():
                container.mux(packet)
    return frames, boxes


def decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def covered(frames, outputs, boxes) -> list[bool]:
    return [box_ssim(grey(a), grey(b), [x0, y0, x1 - x0, y1 - y0]) <= 0.5
            for a, b, (x0, y0, x1, y1) in zip(frames, outputs, boxes)]


def assert_same_pictures_as(outputs: list[np.ndarray], frames: list[np.ndarray], boxes) -> None:
    """Every output picture is the source's picture of the same place (the camera pans, so each
    differs from the frames next to it), outside the face."""
    assert len(outputs) == len(frames)
    for index, (output, (x0, y0, x1, y1)) in enumerate(zip(outputs, boxes)):
        outside = np.ones(output.shape[:2], bool)
        outside[max(y0 - 30, 0) : y1 + 30, max(x0 - 30, 0) : x1 + 30] = False
        differences = {other: float(np.median(np.abs(output.astype(int) - frames[other])[outside]))
                       for other in range(max(index - 1, 0), min(index + 2, len(frames)))}
        assert min(differences, key=differences.get) == index and differences[index] < 10, (index, differences)


def test_a_video_split_by_time_and_joined_equals_a_local_run(tmp_path):
    source = tmp_path / "march.mp4"
    frames, boxes = clip(source)
    settings = VideoSettings(keep_audio=True)
    ranges = plan_time_ranges(source, settings, seconds=1.0)
    assert len(ranges) == 3 and sum(r.frames for r in ranges) == 90
    assert [r.first_index for r in ranges] == [0, 30, 60]
    parts = [anonymise_time_range(source, tmp_path / f"part{n}.mp4", r, settings) for n, r in enumerate(ranges)]
    joined = join_segments(source, parts, tmp_path / "joined.mp4", settings)
    local = anonymise_video_file(source, tmp_path / "local.mp4", settings)

    assert (joined.frames, joined.width, joined.height, joined.audio) == (local.frames, local.width, local.height, True)
    outputs = decoded(tmp_path / "joined.mp4")
    assert_same_pictures_as(outputs, frames, boxes)
    assert covered(frames, outputs, boxes) == covered(frames, decoded(tmp_path / "local.mp4"), boxes) == [True] * 90
    lengths = []
    for name in ("joined.mp4", "local.mp4"):
        with av.open(str(tmp_path / name)) as container:
            lengths.append(float(container.streams.audio[0].duration * container.streams.audio[0].time_base))
    assert lengths[0] == pytest.approx(lengths[1], abs=0.07) and lengths[0] == pytest.approx(3.0, abs=0.2)


def test_a_short_video_is_one_range_and_a_cut_file_fails_before_any_work(tmp_path):
    source = tmp_path / "short.mp4"
    clip(source, count=20, audio=False)
    (whole,) = plan_time_ranges(source, seconds=60.0)
    assert (whole.start, whole.end, whole.frames) == (None, None, 20)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    with pytest.raises(UnreadableVideo):
        plan_time_ranges(cut, seconds=0.2)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    require_module("distributed", "the cluster extra: pip install -e '.[cluster]'")
    from cluster_helpers import local_dask_cluster

    with local_dask_cluster(tmp_path_factory.mktemp("dask")) as running:
        yield running


def test_on_a_cluster_a_video_is_split_over_the_workers_and_joined_like_a_local_run(cluster, tmp_path):
    from blur.cluster import run_on_cluster

    folder = tmp_path / "in"
    folder.mkdir()
    frames, boxes = clip(folder / "march.mp4")
    jobs = plan_jobs([folder], tmp_path / "out")
    settings = VideoSettings(Settings(), keep_audio=True)
    (outcome,) = run_on_cluster(jobs, Settings(), scheduler=cluster.address, video=settings, segment_seconds=1.0)
    assert outcome.status is Status.DONE, outcome.error
    assert outcome.video["frames"] == 90 and outcome.video["audio"] is True
    assert outcome.processing["video"]["parts"] == 3
    outputs = decoded(outcome.destination)
    assert_same_pictures_as(outputs, frames, boxes)
    assert all(covered(frames, outputs, boxes))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["march.blurred.mp4"]  # no part left


def test_the_command_line_on_a_cluster_keeps_the_sound_and_the_length_limit_it_is_given(cluster, tmp_path):
    from blur_cli.main import main

    folder = tmp_path / "in"
    folder.mkdir()
    clip(folder / "march.mp4", count=30)
    status = main([str(folder), "-o", str(tmp_path / "out"), "--scheduler", cluster.address, "--keep-audio"],
                  io.StringIO(), io.StringIO())
    assert status == 0
    with av.open(str(tmp_path / "out" / "march.blurred.mp4")) as container:
        assert len(container.streams.audio) == 1
    errors = io.StringIO()
    status = main([str(folder), "-o", str(tmp_path / "short"), "--scheduler", cluster.address,
                   "--max-minutes", "0.01"], io.StringIO(), errors)
    assert status == 1 and not (tmp_path / "short" / "march.blurred.mp4").exists()


def test_a_lost_worker_s_time_range_is_done_again(tmp_path):
    from distributed import Client

    from blur.cluster import run_on_cluster
    from cluster_helpers import local_dask_cluster

    folder = tmp_path / "in"
    folder.mkdir()
    frames, boxes = clip(folder / "long.mp4", count=240, keyframes=15, audio=False, size=120)
    jobs = plan_jobs([folder], tmp_path / "out")
    with local_dask_cluster(tmp_path / "dask") as running, Client(running.address, set_as_default=False) as monitor:
        import threading
        import time

        killed = []

        def kill_a_busy_worker():
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not killed:
                names = {address: info["name"] for address, info in monitor.scheduler_info()["workers"].items()}
                busy = [names[address] for address, keys in monitor.processing().items()
                        if any(str(key).startswith("blur-") for key in keys)]
                if busy:
                    running.kill_worker(busy[0])
                    killed.append(busy[0])
                time.sleep(0.05)

        killer = threading.Thread(target=kill_a_busy_worker, daemon=True)
        killer.start()
        (outcome,) = run_on_cluster(jobs, Settings(), scheduler=running.address, segment_seconds=1.0)
        killer.join()
    assert killed, "no range was running when a worker was to be killed"
    assert outcome.status is Status.DONE, outcome.error
    outputs = decoded(outcome.destination)
    assert len(outputs) == 240 and all(covered(frames, outputs, boxes))
