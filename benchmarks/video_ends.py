"""How much earlier than their container says whole videos end, and whether cut copies are refused.

    .venv/bin/python benchmarks/video_ends.py [--seconds 3] [--keep DIR]

A video is refused as cut short when fewer pictures are in the file than its index lists (MP4, MOV,
and the fragments read of a fragmented MP4) or, where the container does not list every picture
(MKV, WebM, fragmented MP4), when its pictures and packets end more than a slack
(blur.video.decode.END_SLACK_SECONDS, or END_SLACK_FRAMES at slow rates) before the time it declares.
Whole files end a little early too (sound longer or shorter than the pictures, edit lists, B-frame
delays, variable frame rates): this generates such files with FFmpeg's command line (if installed)
and PyAV, prints for each the time declared, the time found and the gap (which must stay under the
slack), then cuts a copy of each to 50 % and 90 % of its bytes and says whether it is refused.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from blur.errors import BlurError
from blur.video.decode import VideoReader

PICTURE = "testsrc2=size=320x240:rate={rate}"
SOUND = "sine=frequency=440:sample_rate=48000:duration={seconds}"


def ffmpeg_variants(seconds: float) -> dict[str, list[str]]:
    """Name -> FFmpeg arguments after the inputs (the output file is appended)."""
    s = seconds
    picture = ["-f", "lavfi", "-t", str(s), "-i", PICTURE.format(rate=30)]

    def sound(length: float) -> list[str]:
        return ["-f", "lavfi", "-i", SOUND.format(seconds=length)]

    h264 = ["-c:v", "libx264", "-preset", "fast", "-pix_fmt", "yuv420p"]  # with B-frames
    return {
        "MP4, no sound": picture + h264 + ["out.mp4"],
        "MP4, sound as long": picture + sound(s) + h264 + ["-c:a", "aac", "out.mp4"],
        "MP4, sound 1 s longer": picture + sound(s + 1) + h264 + ["-c:a", "aac", "out.mp4"],
        "MP4, sound 1 s shorter": picture + sound(s - 1) + h264 + ["-c:a", "aac", "out.mp4"],
        "MP4, sound starts 0.3 s late": picture + ["-itsoffset", "0.3"] + sound(s) + h264
                                        + ["-c:a", "aac", "out.mp4"],
        "MP4, 29.97 frames/s, faststart": ["-f", "lavfi", "-t", str(s), "-i", PICTURE.format(rate="30000/1001")]
                                          + h264 + ["-movflags", "+faststart", "out.mp4"],
        "MP4, 1 frame/s (time lapse)": ["-f", "lavfi", "-t", str(s + 2), "-i", PICTURE.format(rate=1)] + h264
                                       + ["out.mp4"],
        "MP4, 240 frames/s": ["-f", "lavfi", "-t", "1", "-i", PICTURE.format(rate=240)] + h264 + ["out.mp4"],
        "MP4, HEVC": picture + ["-c:v", "libx265", "-x265-params", "log-level=error", "-tag:v", "hvc1", "out.mp4"],
        "MP4, MPEG-4 part 2": picture + ["-c:v", "mpeg4", "out.mp4"],
        "MP4, variable rate (frames dropped)": picture + ["-vf", "select='not(mod(n\\,3))+gt(n\\,45)'"] + h264
                                               + ["-fps_mode", "vfr", "out.mp4"],
        "MOV, sound 1 s longer, timecode": picture + sound(s + 1) + h264
                                          + ["-c:a", "aac", "-timecode", "01:00:00:00", "out.mov"],
        "MOV, ProRes and PCM sound": picture + sound(s) + ["-c:v", "prores_ks", "-c:a", "pcm_s16le", "out.mov"],
        "3GP": picture + sound(s) + h264 + ["-c:a", "aac", "-ar", "16000", "out.3gp"],
        "MKV, sound 1 s longer": picture + sound(s + 1) + h264 + ["-c:a", "libopus", "out.mkv"],
        "MKV, sound 1 s shorter": picture + sound(s - 1) + h264 + ["-c:a", "aac", "out.mkv"],
        "MKV, variable rate": picture + ["-vf", "select='not(mod(n\\,3))+gt(n\\,45)'"] + h264
                              + ["-fps_mode", "vfr", "out.mkv"],
        "WebM, VP9 and Opus": picture + sound(s) + ["-c:v", "libvpx-vp9", "-deadline", "realtime",
                                                    "-c:a", "libopus", "out.webm"],
        "WebM, live (no length declared)": picture + sound(s) + ["-c:v", "libvpx", "-deadline", "realtime",
                                                                 "-c:a", "libopus", "-live", "1", "out.webm"],
        "fragmented MP4, sound": picture + sound(s) + h264 + ["-g", "30", "-c:a", "aac", "-movflags",
                                                              "frag_keyframe+empty_moov", "out.mp4"],
        "fragmented MP4, as for streaming": picture + sound(s) + h264 + ["-g", "30", "-c:a", "aac", "-movflags",
                                                                        "frag_keyframe+empty_moov+default_base_moof",
                                                                        "out.mp4"],
        # Copies cut from the second file without re-encoding: FFmpeg writes edit lists; the pictures
        # from the keyframe before the cut stay in the file, and are dropped when decoded.
        "MP4 trimmed at the start (edit list)": ["-ss", "0.4", "-i", "SOURCE", "-c", "copy", "out.mp4"],
        "MP4 trimmed at both ends": ["-ss", "0.4", "-i", "SOURCE", "-t", "1.5", "-c", "copy", "out.mp4"],
    }


def pyav_variant(path: Path, seconds: float, *, container: str, jitter: bool, audio: bool) -> Path:
    """A phone-like file written by PyAV: with `jitter`, frame times vary (variable frame rate) and
    the last frame lasts long; with `audio`, AAC sound 0.5 s longer than the pictures."""
    rng = np.random.default_rng(0)
    output = av.open(str(path), "w", format=container)
    video = output.add_stream("libx264", rate=30)
    video.width, video.height, video.pix_fmt = 320, 240, "yuv420p"
    video.codec_context.time_base = Fraction(1, 90000)
    sound = output.add_stream("aac", rate=48000, layout="mono") if audio else None
    t = 0.0
    for i in range(int(seconds * 30)):
        pixels = np.full((240, 320, 3), (i * 7) % 256, np.uint8)
        frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
        frame.pts, frame.time_base = round(t * 90000), Fraction(1, 90000)
        output.mux(video.encode(frame))
        t += (1 / 30) * (rng.uniform(0.5, 1.8) if jitter else 1)
    output.mux(video.encode())
    if sound is not None:
        for k in range(int((seconds + 0.5) * 48000 / 1024)):
            chunk = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            chunk.sample_rate, chunk.pts = 48000, k * 1024
            output.mux(sound.encode(chunk))
        output.mux(sound.encode())
    output.close()
    return path


def make_files(folder: Path, seconds: float) -> dict[str, Path]:
    files = {}
    if shutil.which("ffmpeg"):
        for index, (name, arguments) in enumerate(ffmpeg_variants(seconds).items()):
            path = folder / f"{index:02d}-{arguments[-1]}"
            arguments = [str(files.get("MP4, sound as long")) if a == "SOURCE" else a for a in arguments]
            done = subprocess.run(["ffmpeg", "-v", "error", "-y", *arguments[:-1], str(path)], capture_output=True)
            if done.returncode == 0:
                files[name] = path
            else:
                print(f"  (not made: {name}: {done.stderr.decode().strip()[:120]})")
    else:
        print("  (FFmpeg's command line is not installed: PyAV's files only)")
    for container, extension in (("mp4", "mp4"), ("mov", "mov"), ("matroska", "mkv")):
        for jitter in (False, True):
            name = f"PyAV {extension.upper()}, sound 0.5 s longer" + (", variable rate" if jitter else "")
            files[name] = pyav_variant(folder / f"pyav-{jitter:d}.{extension}", seconds, container=container,
                                       jitter=jitter, audio=True)
    return files


def read_whole(path: Path) -> dict:
    """What the reader makes of the file at `path`, read whole as blur reads it."""
    try:
        with VideoReader(path) as reader:
            try:
                for _ in reader.packets():
                    pass
                error = None
            except BlurError as exc:
                error = str(exc)
            return {"declared": reader.declared_seconds, "found": reader.found_seconds, "slack": reader.end_slack,
                    "by": "its index" if reader.info.frames else "its time", "error": error}
    except BlurError as exc:
        return {"declared": None, "found": None, "slack": None, "by": "-", "error": str(exc)}


def gap(read: dict) -> float | None:
    return None if read["declared"] is None or read["found"] is None else read["declared"] - read["found"]


def cut_is_refused(path: Path, fraction: float) -> str:
    data = path.read_bytes()
    cut = path.with_name("cut-" + path.name)
    cut.write_bytes(data[: int(len(data) * fraction)])
    read = read_whole(cut)
    cut.unlink()
    if read["error"]:
        return "refused"
    return "NOT refused" + (f" ({gap(read):.2f} s missing)" if gap(read) is not None else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each generated video (default 3)")
    parser.add_argument("--keep", type=Path, help="keep the generated files in this folder")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="video-ends-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        files = make_files(folder, args.seconds)
        print("| file | checked by | declared s | found s | gap s | slack s | whole file | cut to 50 % | cut to 90 % |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        worst = 0.0
        for name, path in files.items():
            read = read_whole(path)
            worst = max(worst, gap(read) or 0.0)
            show = (lambda v: "-" if v is None else f"{v:.3f}")
            print(f"| {name} | {read['by']} | {show(read['declared'])} | {show(read['found'])} | {show(gap(read))} | "
                  f"{show(read['slack'])} | {'read' if read['error'] is None else 'REFUSED: ' + read['error']} | "
                  f"{cut_is_refused(path, 0.5)} | {cut_is_refused(path, 0.9)} |")
        print(f"largest gap in a whole file: {worst:.3f} s (the time is checked only where the index does not "
              "list every picture)")
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
