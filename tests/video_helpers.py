"""Generated test videos: a face from samples/ moving over a background, with metadata planted in
every place a phone or an editor puts it, each piece a unique marker string."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

SAMPLES = Path(__file__).resolve().parent.parent / "samples"

MARKERS = {
    "title": "MARKTITLE7f3a",
    "location": "+12.3456+065.4321/",
    "make": "MARKMAKE91c2",
    "model": "MARKMODEL44d1",
    "software": "MARKSOFT0b7e",
    "comment": "MARKCOMMENT5d2",
    "audio_title": "MARKAUDIO8e11",
    "video_handler": "MARKHANDLER3c9",
    "chapter": "MARKCHAPTER6a4",
    "data": b"MARKDATA2f90",
}
"""Everything planted; none may survive in an output's bytes."""
CREATION_TIME = "2001-02-03T04:05:06.000000Z"


def astronaut_face(size: int = 96) -> np.ndarray:
    """The face of samples/astronaut.jpg, `size` pixels square."""
    photo = Image.open(SAMPLES / "astronaut.jpg").convert("RGB")
    return np.asarray(photo.crop((165, 35, 285, 165)).resize((size, size), Image.LANCZOS))


def background(height: int, width: int) -> np.ndarray:
    """A smooth, faceless background (gradients), the same in every frame."""
    ys, xs = np.mgrid[0:height, 0:width]
    return np.dstack([xs * 200 // width + 30, ys * 150 // height + 60, np.full_like(xs, 90)]).astype(np.uint8)


def moving_face_frames(count: int, height: int = 240, width: int = 320, size: int = 96, step: int = 4):
    """(frames, boxes): the astronaut's face moving right by `step` px a frame; boxes are x0, y0, x1, y1."""
    face = astronaut_face(size)
    frames, boxes = [], []
    for i in range(count):
        x0, y0 = 16 + i * step, (height - size) // 2
        frame = background(height, width)
        frame[y0 : y0 + size, x0 : x0 + size] = face
        frames.append(frame)
        boxes.append((x0, y0, x0 + size, y0 + size))
    return frames, boxes


def write_video(path: Path, frames, *, rate: int = 30, rotation: int = 0, planted: bool = False,
                audio: bool = False, format: str | None = None, codec: str = "libx264",
                options: dict | None = None, times: list[float] | None = None, more_sound: float = 0.0) -> Path:
    """Encode RGB `frames` to `path`. With `planted`, every kind of metadata in MARKERS goes in too:
    container tags, a creation time, a video handler name, chapters, a data track and (with `audio`)
    an audio track with a title tag. `rotation`: the display matrix, degrees counter-clockwise.
    `options`: the muxer's (fragmented MP4: {"movflags": "frag_keyframe+empty_moov"}); `times`: each
    frame's time in seconds (a variable frame rate); `more_sound`: seconds of sound after the pictures."""
    container = av.open(str(path), "w", format=format, options=options or {})
    height, width = frames[0].shape[:2]
    video = container.add_stream(codec, rate=rate)
    video.width, video.height, video.pix_fmt = width, height, "yuv420p"
    time_base = Fraction(1, 90000) if times is not None else Fraction(1, rate)
    if times is not None:
        video.codec_context.time_base = time_base
    if rotation:
        video.set_display_rotation(rotation)
    sound = container.add_stream("aac", rate=16000, layout="mono") if audio else None
    data = None
    if planted:
        container.metadata.update({key: MARKERS[key] for key in ("title", "location", "make", "model", "comment")})
        container.metadata["encoder"] = MARKERS["software"]
        container.metadata["creation_time"] = CREATION_TIME
        video.metadata["handler_name"] = MARKERS["video_handler"]
        video.metadata["creation_time"] = CREATION_TIME
        if sound is not None:
            sound.metadata["title"] = MARKERS["audio_title"]
            sound.metadata["handler_name"] = MARKERS["audio_title"]
        try:
            data = container.add_data_stream("bin_data")
        except (ValueError, av.FFmpegError):
            data = None
        container.set_chapters([{"id": 1, "start": 0, "end": len(frames), "time_base": Fraction(1, rate),
                                 "metadata": {"title": MARKERS["chapter"]}}])
    for i, pixels in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")
        frame.pts = round(times[i] / time_base) if times is not None else i
        frame.time_base = time_base
        for packet in video.encode(frame):
            container.mux(packet)
        if sound is not None:
            samples = np.sin(np.arange(16000 // rate) * (2 * np.pi * 440 / 16000) + i).astype(np.float32)[None, :]
            chunk = av.AudioFrame.from_ndarray(samples * 0.3, format="fltp", layout="mono")
            chunk.sample_rate = 16000
            for packet in sound.encode(chunk):
                container.mux(packet)
        if data is not None and i == 0:
            packet = av.Packet(MARKERS["data"] * 4)
            packet.stream = data
            packet.pts = packet.dts = 0
            packet.time_base = Fraction(1, rate)
            container.mux(packet)
    for packet in video.encode():
        container.mux(packet)
    if sound is not None:
        for i in range(round(more_sound * rate)):
            chunk = av.AudioFrame.from_ndarray(np.zeros((1, 16000 // rate), np.float32), format="fltp", layout="mono")
            chunk.sample_rate = 16000
            for packet in sound.encode(chunk):
                container.mux(packet)
        for packet in sound.encode():
            container.mux(packet)
    container.close()
    return path


def cut_short(path: Path, fraction: float, to: Path) -> Path:
    """The first `fraction` of the file at `path`, as a copy cut short in transfer would be."""
    data = path.read_bytes()
    to.write_bytes(data[: int(len(data) * fraction)])
    return to


def trimmed(path: Path, seconds: float, to: Path) -> Path:
    """The video at `path` without its first `seconds`, cut without re-encoding as editors and phones do:
    the pictures from the keyframe before the cut stay in the file, and an edit list says to skip them."""
    with av.open(str(path)) as source, av.open(str(to), "w", format="mp4") as output:
        original = source.streams.video[0]
        copy = output.add_stream_from_template(original)
        cut = round(seconds / original.time_base)
        for packet in source.demux(original):
            if packet.dts is None:  # the empty packet that ends the stream
                continue
            packet.pts, packet.dts, packet.stream = packet.pts - cut, packet.dts - cut, copy
            output.mux(packet)
    return to


def all_markers() -> list[bytes]:
    return [value if isinstance(value, bytes) else value.encode() for value in MARKERS.values()] + [b"2001-02-03"]
