"""A long video split by time over a loopback Dask cluster, against a local run of the same video.

    .venv/bin/pip install -e '.[cluster]'
    .venv/bin/python benchmarks/video_split.py [--minutes 10] [--size 1920x1080] [--workers 2] [--seconds 60]

Generates a video (no data needed: a textured street with faces from samples/ walking across it, a
keyframe every 2 s as phones write them), anonymises it locally and on a scheduler with `--workers`
worker processes on 127.0.0.1 (each range of about `--seconds` on a worker), and prints: frames and
their order (each output frame matched to its source frame outside the faces), faces covered in
each frame by both runs, wall time of each, and the peak memory of the local run (it must not grow
with the video's length: compare --minutes 1 and 10).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from benchmarks.video import write_frames  # noqa: E402
from benchmarks.wider import box_ssim, grey  # noqa: E402


def street(height: int, width: int, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).integers(0, 256, (height // 24 + 2, width // 24 + 2, 3), dtype=np.uint8)
    return (50 + cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC).astype(np.uint16) * 140 // 255
            ).astype(np.uint8)


def write_long_video(path: Path, minutes: float, width: int, height: int, rate: int = 30):
    """The video, and per frame the boxes (x, y, w, h) of its faces."""
    from video_helpers import astronaut_face

    still = street(height, width)
    faces = [astronaut_face(size) for size in (24, 40, 64)]
    boxes = []

    def frames():
        for index in range(round(minutes * 60 * rate)):
            frame = still.copy()
            shown = []
            for number, face in enumerate(faces):
                size = face.shape[0]
                span = width - size
                x = int(abs((index * (3 + number) + number * 400) % (2 * span) - span))
                y = height // 4 + number * height // 4
                frame[y : y + size, x : x + size] = face
                shown.append([x, y, size, size])
            boxes.append(shown)
            yield frame

    write_frames(path, frames(), rate, {"g": str(2 * rate), "preset": "veryfast", "crf": "20"})
    return boxes


def decoded(path: Path):
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24")


def compare(source: Path, outputs: list[Path], boxes: list) -> dict:
    """Frame count, frames out of order, faces left visible, frames that differ between the outputs."""
    result = {"frames": [0] * len(outputs), "out of order": [0] * len(outputs), "faces left": [0] * len(outputs)}
    streams = [decoded(path) for path in outputs]
    for index, original in enumerate(decoded(source)):
        for number, stream in enumerate(streams):
            output = next(stream, None)
            if output is None:
                continue
            result["frames"][number] += 1
            outside = np.ones(original.shape[:2], bool)
            for x, y, w, h in boxes[index]:
                outside[max(y - 40, 0) : y + h + 40, max(x - 40, 0) : x + w + 40] = False
                if box_ssim(grey(original), grey(output), [x, y, w, h]) > 0.5:
                    result["faces left"][number] += 1
            result["out of order"][number] += int(np.abs(output.astype(int) - original)[outside].mean() > 6)
    for number, stream in enumerate(streams):
        result["frames"][number] += sum(1 for _ in stream)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of a time range")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    from blur.jobs import plan_jobs
    from blur.cluster import run_on_cluster
    from blur.pipeline import Settings
    from blur.video import VideoSettings, anonymise_video_file
    from cluster_helpers import local_dask_cluster

    with tempfile.TemporaryDirectory(prefix="blur-video-split-") as scratch:
        folder = Path(scratch)
        (folder / "in").mkdir()
        source = folder / "in" / "long.mp4"
        started = time.perf_counter()
        boxes = write_long_video(source, args.minutes, width, height)
        print(f"generated {len(boxes)} frames of {width}×{height} in {time.perf_counter() - started:.0f} s", flush=True)

        import resource

        started = time.perf_counter()
        local = anonymise_video_file(source, folder / "local.mp4", VideoSettings())
        local_seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"local: {local.frames} frames in {local_seconds:.0f} s ({local.frames / local_seconds:.2f} frames/s), "
              f"peak memory {peak:.0f} MB", flush=True)

        with local_dask_cluster(folder / "dask", workers=args.workers, threads=1) as cluster:
            started = time.perf_counter()
            jobs = plan_jobs([folder / "in"], folder / "out")
            (outcome,) = run_on_cluster(jobs, Settings(), scheduler=cluster.address, segment_seconds=args.seconds)
            cluster_seconds = time.perf_counter() - started
        if outcome.error:
            raise SystemExit(f"cluster run failed: {outcome.error}")
        print(f"cluster ({args.workers} workers): {outcome.video['frames']} frames in {outcome.processing['video']['parts']} "
              f"parts, {cluster_seconds:.0f} s ({outcome.video['frames'] / cluster_seconds:.2f} frames/s)", flush=True)
        compared = compare(source, [folder / "local.mp4", outcome.destination], boxes)
        faces = sum(len(b) for b in boxes)
        print(json.dumps({"source frames": len(boxes), "faces": faces, "local": {k: v[0] for k, v in compared.items()},
                          "cluster": {k: v[1] for k, v in compared.items()},
                          "seconds": {"local": round(local_seconds), "cluster": round(cluster_seconds)},
                          "machine": f"{os.cpu_count()} cores"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
