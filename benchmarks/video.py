"""Videos: faces destroyed in every frame, frames that leak a face, collateral and speed, next to deface.

    .venv/bin/python benchmarks/video.py [--data ../shared/data/wider-native-dev] [--frames 60] [--no-deface]
                                         [--precision auto f32] [--refresh N ...] [--only NAME ...]

Builds test videos from real crowd photos in the WIDER FACE layout (read from --data, never
copied; skips cleanly when absent), each with its ground truth per frame:
  pan       1920×1080: a slow pan across a mosaic of 2×2 photos at their native pixel size
  zoom      1920×1080: a slow zoom into the same mosaic (faces grow by 30 %)
  obstacle  1920×1080: a still mosaic with a post passing in front of the faces (a face more than
            half behind it is not counted in that frame)
  cut       1920×1080: half the frames pan across one mosaic, then a cut to a pan across another
  pan-4k    3840×2160: a slow pan across a mosaic of 4×4 photos (a quarter as many frames)
Each is anonymised by the `blur` command (its video default; with each --precision, which sets
BLUR_PRECISION for it), by the photo default applied to each frame on its own (1080p only: the bar
for per-frame recall and collateral), by `deface` at its defaults, and decoded and re-encoded
with nothing else (the floor: the speed of reading and writing the video alone). A face is
destroyed in a frame when the SSIM of its box to the input frame is at most 0.5 (as benchmarks/wider.py).
A leaked frame is a frame in which a face at least 20 px tall is left visible; "found 1 in 10" counts
only the faces the photo default finds (destroys) in at least one of every 10 frames in a row it is
visible in. Collateral: the share of pixels outside every face box enlarged 1.5× whose local SSIM
fell under 0.5. Frames per second: the whole process (model loading included) on this machine;
CPU seconds per frame and peak memory of that process. --refresh N adds `blur` runs on the 1080p
pan and obstacle with every part of the picture looked at closely at least every N frames (the
default is blur.video.looks.REFRESH): the curve of speed against recall and leaks.
deface runs when its command works beside the tool's: `pip install -e '.[benchmarks]'` (see benchmarks/wider.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.wider import box_ssim, context_mask, grey, ssim_map  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "wider-native-dev"
TILE = (1024, 600)
"""Each photo of a mosaic is cropped to this (width, height), never rescaled: faces keep their size."""
LEAK_HEIGHT = 20


@dataclass
class TestVideo:
    name: str
    path: Path
    faces: list[list[tuple[int, list[float]]]] = field(default_factory=list)
    """Per frame: (face id, [x, y, width, height]) of every face visible in it."""


def mosaic(photos: list[dict], data: Path, columns: int, rows: int) -> tuple[np.ndarray, list[list[float]]]:
    """Photos cropped to TILE side by side, and the boxes of their faces (half or more inside a tile)."""
    width, height = TILE
    canvas = np.zeros((rows * height, columns * width, 3), np.uint8)
    boxes = []
    for i, photo in enumerate(photos[: columns * rows]):
        pixels = np.asarray(Image.open(data / photo["image"]).convert("RGB"))[:height, :width]
        ox, oy = (i % columns) * width, (i // columns) * height
        canvas[oy : oy + pixels.shape[0], ox : ox + pixels.shape[1]] = pixels
        for face in photo["faces"]:
            x, y, w, h = face["box"]
            if face.get("invalid") or w < 1 or h < 1:
                continue
            inside = max(0, min(x + w, pixels.shape[1]) - max(x, 0)) * max(0, min(y + h, pixels.shape[0]) - max(y, 0))
            if inside >= 0.5 * w * h:
                boxes.append([x + ox, y + oy, w, h])
    return canvas, boxes


def visible(box: list[float], width: int, height: int, hidden: tuple[int, int, int, int] | None = None) -> bool:
    """Whether a face box is mostly inside the frame (and not mostly behind `hidden`)."""
    x, y, w, h = box
    inside = max(0, min(x + w, width) - max(x, 0)) * max(0, min(y + h, height) - max(y, 0))
    if inside < 0.5 * w * h:
        return False
    if hidden is not None:
        hx0, hy0, hx1, hy1 = hidden
        covered = max(0, min(x + w, hx1) - max(x, hx0)) * max(0, min(y + h, hy1) - max(y, hy0))
        return covered < 0.5 * w * h
    return True


def write_frames(path: Path, frames, rate: int = 30, options: dict | None = None) -> None:
    """An H.264 MP4 of RGB frames (any iterable), as a phone would write it."""
    with av.open(str(path), "w") as container:
        stream = None
        for i, frame in enumerate(frames):
            if stream is None:
                stream = container.add_stream("libx264", rate=rate)
                stream.height, stream.width = frame.shape[:2]
                stream.pix_fmt = "yuv420p"
                stream.codec_context.options = options or {"crf": "18", "preset": "veryfast"}
            video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
            video_frame.pts, video_frame.time_base = i, Fraction(1, rate)
            for packet in stream.encode(video_frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def build_videos(data: Path, folder: Path, frames: int) -> list[TestVideo]:
    photos = json.loads((data / "faces.json").read_text())["images"]
    photos = sorted(photos, key=lambda p: -len(p["faces"]))  # the crowds
    canvas, boxes = mosaic(photos[:4], data, 2, 2)
    videos = []

    pan = TestVideo("pan", folder / "pan.mp4")
    write_frames(pan.path, pan_frames(canvas, boxes, (1920, 1080), pan, frames))
    videos.append(pan)

    zoom = TestVideo("zoom", folder / "zoom.mp4")
    def zoom_frames():
        import cv2

        for i in range(frames):
            scale = 1.0 + 0.3 * i / max(frames - 1, 1)
            width, height = 1920 / scale, 1080 / scale
            ox, oy = (canvas.shape[1] - width) / 2, (canvas.shape[0] - height) / 2
            matrix = np.array([[scale, 0, -ox * scale], [0, scale, -oy * scale]], np.float32)
            zoom.faces.append([(j, [(x - ox) * scale, (y - oy) * scale, w * scale, h * scale]) for j, (x, y, w, h)
                               in enumerate(boxes) if visible([(x - ox) * scale, (y - oy) * scale, w * scale, h * scale], 1920, 1080)])
            yield cv2.warpAffine(canvas, matrix, (1920, 1080), flags=cv2.INTER_LINEAR)
    write_frames(zoom.path, zoom_frames())
    videos.append(zoom)

    cut = TestVideo("cut", folder / "cut.mp4")
    other, other_boxes = mosaic(photos[4:8], data, 2, 2)
    half = frames // 2
    first = TestVideo("", folder / "unused")
    second = TestVideo("", folder / "unused")
    def cut_frames():
        yield from pan_frames(canvas, boxes, (1920, 1080), first, half)
        yield from pan_frames(other, other_boxes, (1920, 1080), second, frames - half)
    write_frames(cut.path, cut_frames())
    cut.faces = first.faces + [[(len(boxes) + j, box) for j, box in faces] for faces in second.faces]
    videos.append(cut)

    obstacle = TestVideo("obstacle", folder / "obstacle.mp4")
    def obstacle_frames():
        still = np.ascontiguousarray(canvas[:1080, :1920])
        for i in range(frames):
            x0 = round(-240 + (1920 + 240) * i / max(frames - 1, 1))
            post = (x0, 0, x0 + 240, 1080)
            frame = still.copy()
            frame[:, max(x0, 0) : max(x0 + 240, 0)] = (70, 60, 50)
            obstacle.faces.append([(j, b) for j, b in enumerate(boxes) if visible(b, 1920, 1080, post)])
            yield frame
    write_frames(obstacle.path, obstacle_frames())
    videos.append(obstacle)

    big, big_boxes = mosaic(photos[:16], data, 4, 4)
    pan4k = TestVideo("pan-4k", folder / "pan-4k.mp4")
    write_frames(pan4k.path, pan_frames(big, big_boxes, (3840, 2160), pan4k, max(frames // 4, 2)))
    videos.append(pan4k)
    return videos


def pan_frames(canvas: np.ndarray, boxes: list[list[float]], size: tuple[int, int], video: TestVideo, count: int):
    """`count` frames of `size` panning diagonally across `canvas`; their faces go into `video.faces`."""
    width, height = size
    span_x, span_y = canvas.shape[1] - width, canvas.shape[0] - height
    for i in range(count):
        ox, oy = round(span_x * i / max(count - 1, 1)), round(span_y * i / max(count - 1, 1))
        video.faces.append([(j, [x - ox, y - oy, w, h]) for j, (x, y, w, h) in enumerate(boxes)
                            if visible([x - ox, y - oy, w, h], width, height)])
        yield np.ascontiguousarray(canvas[oy : oy + height, ox : ox + width])


def decoded(path: Path):
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24")


def measured(command: list[str], env: dict | None = None) -> dict:
    """Wall and CPU seconds and peak memory (MB) of one child process (benchmarks.wider.run_measured)."""
    from benchmarks.wider import run_measured

    return run_measured(command, None if env is None else {**os.environ, **env})


def floor_run(source: Path, destination: Path) -> None:
    """In a child process: decode the video and encode it again as blur writes it, nothing else."""
    from blur.video.decode import VideoReader
    from blur.video.encode import VideoWriter

    with VideoReader(source) as reader:
        writer = None
        for kind, pixels, _ in reader.packets():
            if writer is None:
                writer = VideoWriter(destination, pixels.shape[1], pixels.shape[0], reader.info.rate)
            writer.write_frame(pixels)
        writer.finish()


def refresh_run(source: Path, destination: Path, refresh: int) -> None:
    """In a child process: `blur` on one video with every part looked at closely every `refresh` frames."""
    from blur.video import VideoSettings, anonymise_video_file

    anonymise_video_file(source, destination, VideoSettings(refresh=refresh), overwrite=True)


def photo_default_frames(video: TestVideo, folder: Path) -> Path:
    """The photo default applied to every frame on its own (no tracking), written losslessly enough to score."""
    from blur.pipeline import Settings, anonymise_image

    settings = Settings()
    detector = settings.load_detector()
    path = folder / f"{video.name}.photo-default.mp4"
    write_frames(path, (anonymise_image(frame, settings, detector=detector).pixels for frame in decoded(video.path)))
    return path


def score(video: TestVideo, output: Path) -> dict:
    """Per (frame, face): destroyed or not; leaked frames; collateral."""
    destroyed: dict[tuple[int, int], bool] = {}
    heights: dict[tuple[int, int], float] = {}
    """(frame, face id) to the face's height in that frame."""
    leaked_frames = []
    altered = outside = 0
    for index, (original, result) in enumerate(zip(decoded(video.path), decoded(output))):
        if original.shape != result.shape:
            raise SystemExit(f"{output.name}: frames of {result.shape[1]}×{result.shape[0]}, not {original.shape[1]}×{original.shape[0]}")
        a, b = grey(original), grey(result)
        faces = video.faces[index]
        leak = False
        for face_id, box in faces:
            gone = box_ssim(a, b, box) <= 0.5
            destroyed[(index, face_id)] = gone
            heights[(index, face_id)] = box[3]
            leak |= not gone and box[3] >= LEAK_HEIGHT
        if leak:
            leaked_frames.append(index)
        if index % 5 == 0:  # collateral on every fifth frame: SSIM maps of 4K frames are slow
            mask = ~context_mask(a.shape, [{"box": box} for _, box in faces])
            altered += int(((ssim_map(a, b) < 0.5) & mask).sum())
            outside += int(mask.sum())
    return {"destroyed": destroyed, "heights": heights, "leaked_frames": leaked_frames,
            "collateral": altered / max(outside, 1)}


def found_every(flags: list[bool], frames: int) -> bool:
    """Whether every `frames` frames in a row (of those a face is visible in) include one it was found in."""
    if len(flags) < frames:
        return any(flags)
    return all(any(flags[i : i + frames]) for i in range(len(flags) - frames + 1))


def summary(video: TestVideo, scored: dict, found: dict[tuple[int, int], bool] | None) -> dict:
    pairs = scored["destroyed"]

    def share(condition) -> float | None:
        chosen = [gone for key, gone in pairs.items() if condition(key)]
        return 100 * sum(chosen) / len(chosen) if chosen else None

    row = {
        "faces >= 10 px": share(lambda k: scored["heights"][k] >= 10),
        "10-20 px": share(lambda k: 10 <= scored["heights"][k] < 20),
        ">= 20 px": share(lambda k: scored["heights"][k] >= 20),
        "leaked frames": len(scored["leaked_frames"]),
        "collateral": 100 * scored["collateral"],
    }
    if found is not None:  # faces the photo detector finds in at least one frame in 10 they are visible in
        seen: dict[int, list[bool]] = {}
        for (_, face_id), gone in sorted(found.items()):
            seen.setdefault(face_id, []).append(gone)
        eligible = {face_id for face_id, flags in seen.items() if found_every(flags, 10)}
        row["leaked frames, faces found 1 in 10"] = len({
            k[0] for k, gone in pairs.items() if not gone and k[1] in eligible and scored["heights"][k] >= LEAK_HEIGHT})
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--frames", type=int, default=60, help="frames per 1080p video (4K: a quarter as many)")
    parser.add_argument("--no-deface", action="store_true")
    parser.add_argument("--precision", nargs="+", default=["auto", "f32"], choices=["auto", "f32"],
                        help="run blur with BLUR_PRECISION set to each (auto: bfloat16 where the CPU has it, as here)")
    parser.add_argument("--refresh", type=int, nargs="*", default=[],
                        help="also run blur on the 1080p pan and obstacle looking closely every N frames, for each N")
    parser.add_argument("--only", nargs="*", default=[], help="only these videos (pan, zoom, cut, obstacle, pan-4k)")
    parser.add_argument("--floor-run", nargs=2, type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--refresh-run", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor_run:
        floor_run(*args.floor_run)
        return 0
    if args.refresh_run:
        refresh_run(Path(args.refresh_run[0]), Path(args.refresh_run[1]), int(args.refresh_run[2]))
        return 0
    if not (args.data / "faces.json").exists():
        print(f"benchmarks/video.py: skipped: no data at {args.data} (WIDER FACE layout, not shipped)")
        return 0
    blur = [sys.executable, "-m", "blur_cli.main"]
    me = [sys.executable, str(Path(__file__).resolve())]
    deface = shutil.which("deface") or (str(Path(sys.executable).with_name("deface"))
                                        if Path(sys.executable).with_name("deface").exists() else None)
    results = {}
    with tempfile.TemporaryDirectory(prefix="blur-video-bench-") as temporary:
        folder = Path(temporary)
        videos = [v for v in build_videos(args.data, folder, args.frames) if not args.only or v.name in args.only]
        for video in videos:
            frames = len(video.faces)
            row, found = {}, None
            if not video.name.endswith("4k"):
                started = time.perf_counter()
                photo = photo_default_frames(video, folder)
                photo_scored = score(video, photo)
                found = photo_scored["destroyed"]
                row["photo default"] = {**summary(video, photo_scored, None),
                                        "fps": frames / (time.perf_counter() - started)}
            floor = measured(me + ["--floor-run", str(video.path), str(folder / f"{video.name}.floor.mp4")])
            row["floor"] = {"fps": frames / floor["wall"], "cpu": floor["cpu"] / frames, "peak_mb": floor["peak_mb"]}
            for precision in args.precision:
                ours = folder / f"{video.name}.blur-{precision}.mp4"
                run = measured(blur + [str(video.path), "-o", str(folder / "out"), "--overwrite"],
                               {"BLUR_PRECISION": precision})
                shutil.move(folder / "out" / f"{video.name}.blurred.mp4", ours)
                row[f"blur {precision}"] = {**summary(video, score(video, ours), found), "fps": frames / run["wall"],
                                            "cpu": run["cpu"] / frames, "peak_mb": run["peak_mb"]}
            if deface and not args.no_deface:
                theirs = folder / f"{video.name}.deface.mp4"
                # macro_block_size 1: imageio would otherwise scale 1080 rows to 1088
                run = measured([deface, str(video.path), "-o", str(theirs),
                                "--ffmpeg-config", json.dumps({"codec": "libx264", "macro_block_size": 1})])
                row["deface"] = {**summary(video, score(video, theirs), found), "fps": frames / run["wall"],
                                 "cpu": run["cpu"] / frames, "peak_mb": run["peak_mb"]}
            if video.name in ("pan", "obstacle"):
                for refresh in args.refresh:
                    ours = folder / f"{video.name}.refresh-{refresh}.mp4"
                    run = measured(me + ["--refresh-run", str(video.path), str(ours), str(refresh)])
                    row[f"blur, refresh {refresh}"] = {**summary(video, score(video, ours), found),
                                                      "fps": frames / run["wall"], "cpu": run["cpu"] / frames,
                                                      "peak_mb": run["peak_mb"]}
            results[video.name] = {"frames": frames, "size": "3840×2160" if video.name.endswith("4k") else "1920×1080",
                                   "faces": len({f for faces in video.faces for f, _ in faces}), **row}
            print(json.dumps({video.name: results[video.name]}, default=str), flush=True)
    print_table(results)
    return 0


def print_table(results: dict) -> None:
    import platform

    print(f"\nvideo benchmark, {os.cpu_count()} cores, {platform.machine()}, {time.strftime('%Y-%m-%d')}")
    print("| video | tool | faces destroyed per frame, >= 10 px | 10-20 px | >= 20 px | leaked frames (>= 20 px) "
          "| leaked, faces found 1 in 10 | collateral | ÷ photo default's | frames/s | ÷ deface | ÷ floor "
          "| CPU s / frame | peak memory |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, result in results.items():
        tools = {k: v for k, v in result.items() if isinstance(v, dict)}
        photo, deface, floor = tools.get("photo default", {}), tools.get("deface", {}), tools.get("floor", {})
        for tool, row in tools.items():
            ratio = lambda a, b, key: f"{a[key] / b[key]:.2f}" if key in a and b.get(key) else ""
            cells = [_p(row.get("faces >= 10 px")), _p(row.get("10-20 px")), _p(row.get(">= 20 px")),
                     str(row.get("leaked frames", "")), str(row.get("leaked frames, faces found 1 in 10", "")),
                     _p(row.get("collateral"), 2), ratio(row, photo, "collateral") if tool != "photo default" else "",
                     f"{row['fps']:.2f}" if "fps" in row else "", ratio(row, deface, "fps") if tool != "deface" else "",
                     ratio(row, floor, "fps") if tool != "floor" else "",
                     f"{row['cpu']:.2f}" if "cpu" in row else "", f"{row['peak_mb']:.0f} MB" if "peak_mb" in row else ""]
            label = f"{name} ({result.get('size', '')}, {result.get('frames', '')} frames, {result.get('faces', '')} faces)"
            print(f"| {label} | {tool} | " + " | ".join(cells) + " |")


def _p(value, digits: int = 1) -> str:
    return "" if value is None else f"{value:.{digits}f} %"


if __name__ == "__main__":
    sys.exit(main())
