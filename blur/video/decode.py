"""Decode: a video file as a stream of upright RGB frames (and, on request, its audio), within limits.

Only the first video stream with pictures is decoded, and the first audio stream when audio is kept;
nothing else in the container (metadata, chapters, cover art, subtitles, timecode or data tracks,
other video streams) is ever handed on. Frames are turned upright by their display matrix. A file
cut short (fewer pictures or sound than its index lists, or less time than it declares) fails whole.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from ..errors import UnreadableVideo, VideoTooLong

NO_PICTURE = "no video picture in this file"
END_SLACK_SECONDS = 0.25
"""How much earlier than its container declares a video may end before it counts as cut short, where
the container does not list every picture (MKV, WebM, fragmented MP4). Whole files end up to 0.021 s
early (benchmarks/video_ends.py: FFmpeg- and PyAV-written MKV, WebM, MP4, MOV and fragmented MP4,
with sound longer or shorter, variable frame rates, edit lists); a cut that loses less goes unnoticed."""
END_SLACK_FRAMES = 2
"""The same in frames at the video's average rate, for slow rates (a time lapse of 1 frame a second)."""


@dataclass(frozen=True)
class VideoLimits:
    """Bounds on what is decoded, so a huge or endless stream cannot run for ever or fill memory."""

    max_frames: int = 864_000
    """An hour at 240 frames per second (slow motion)."""
    max_seconds: float = 3600.0
    max_frame_pixels: int = 8192 * 4320
    """8K: more than any phone films."""


@dataclass(frozen=True)
class VideoScan:
    """What reading a video's packets without decoding them tells: enough to split it by time."""

    times: list[int]
    """The time of every picture, in the order they are shown (in `time_base` units)."""
    keyframes: list[int]
    """The times of the pictures a decoder can start from."""
    time_base: Fraction


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about the video stream (as stored: frames are turned upright as decoded)."""

    width: int
    height: int
    rate: Fraction
    """Average frames per second."""
    frames: int | None
    """Frames declared by the container, if it declares them."""
    seconds: float | None
    has_audio: bool


def upright(pixels: np.ndarray, rotation: int) -> np.ndarray:
    """`pixels` turned `rotation` degrees counter-clockwise (a multiple of 90), as players show them."""
    turns = round(rotation / 90) % 4
    return np.ascontiguousarray(np.rot90(pixels, turns)) if turns else pixels


def _damaged(exc: Exception) -> UnreadableVideo:
    reason = getattr(exc, "strerror", None) or str(exc)
    return UnreadableVideo(f"damaged or truncated video, or not a video in a format this tool reads ({reason})")


def picture_stream(container: av.container.InputContainer) -> av.VideoStream:
    """The first video stream whose pictures can be decoded (not cover art); UnreadableVideo if there is none."""
    for stream in container.streams.video:
        context = stream.codec_context
        if context is not None and not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    raise UnreadableVideo(NO_PICTURE)


def _later(a: float | None, b: float | None) -> float | None:
    return a if b is None else b if a is None else max(a, b)


def _end_of(item, default_duration: float = 0.0) -> float | None:
    """Where a packet or frame ends, in seconds: its time plus its duration (or `default_duration`
    seconds); None without a time."""
    time = item.pts if item.pts is not None else item.dts
    if time is None or item.time_base is None:
        return None
    return float(time * item.time_base) + (float(item.duration * item.time_base) if item.duration else default_duration)


class VideoReader:
    """An open video file: `info`, then `packets()` decoded as ("video", upright RGB, index) and
    ("audio", AudioFrame, None) items in file order. Use as a context manager."""

    def __init__(self, path: str | Path, limits: VideoLimits = VideoLimits(), *, audio: bool = False):
        self.path = Path(path)
        self.limits = limits
        if not self.path.is_file():  # a pipe or a device would hang the batch
            raise UnreadableVideo("not a regular file (a pipe, device or folder); nothing was read")
        try:
            self._container = av.open(str(self.path), "r", metadata_errors="ignore")
        except PermissionError:
            raise UnreadableVideo("permission denied") from None
        except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
            raise _damaged(exc) from None
        self.found_seconds: float | None = None
        """How long the file really is, from where its pictures and other packets end: set once `packets()` ends."""
        try:
            self.info = self._probe(audio)
        except BaseException:
            self._container.close()
            raise

    def _probe(self, audio: bool) -> VideoInfo:
        container = self._container
        video = picture_stream(container)
        video.thread_type = "AUTO"
        self._video = video
        self.audio_stream = container.streams.audio[0] if audio and container.streams.audio else None
        width, height = video.codec_context.width, video.codec_context.height
        if width <= 0 or height <= 0:
            raise UnreadableVideo("damaged video: its frames have no size")
        if width * height > self.limits.max_frame_pixels:
            raise VideoTooLong(f"frames of {width}×{height} are more than {self.limits.max_frame_pixels / 1e6:.0f} megapixels")
        seconds = float(video.duration * video.time_base) if video.duration and video.time_base else None
        if seconds is None and container.duration:
            seconds = container.duration / av.time_base
        if seconds is not None and seconds > self.limits.max_seconds:
            raise VideoTooLong(f"the video lasts {seconds:.0f} s, more than the limit of {self.limits.max_seconds:.0f} s")
        if video.frames and video.frames > self.limits.max_frames:
            raise VideoTooLong(f"the video has {video.frames} frames, more than the limit of {self.limits.max_frames}")
        rate = video.average_rate or video.guessed_rate or Fraction(30)
        return VideoInfo(width, height, Fraction(rate), video.frames or None, seconds,
                         bool(container.streams.audio))

    def packets(self) -> Iterator[tuple[str, object, int | None]]:
        """The decoded items. At the end, UnreadableVideo if fewer frames or less time could be decoded
        than the container declares (a file cut short): a caller keeps nothing until this has run."""
        index = 0
        found = Counter()  # packets read from the file, by stream (pictures an edit list skips included)
        reach = None  # where the file really ends: the latest end of a picture decoded or another stream's packet
        try:
            for packet in self._container.demux():  # every stream: a file cut short shows in any of them
                found[packet.stream.index] += bool(packet.size or packet.dts is not None)  # not the final empty one
                if packet.stream is not self._video:
                    reach = _later(reach, _end_of(packet))
                    if packet.stream is not self.audio_stream:
                        continue
                for frame in packet.decode():
                    if packet.stream is self.audio_stream:
                        yield "audio", frame, None
                        continue
                    if index >= self.limits.max_frames:
                        raise VideoTooLong(f"the video has more than {self.limits.max_frames} frames (the limit)")
                    if frame.time is not None and frame.time > self.limits.max_seconds:
                        raise VideoTooLong(f"the video lasts more than {self.limits.max_seconds:.0f} s (the limit)")
                    if frame.width * frame.height > self.limits.max_frame_pixels:
                        raise VideoTooLong(f"a frame of {frame.width}×{frame.height} is over the pixel limit")
                    reach = _later(reach, _end_of(frame, float(1 / self.info.rate)))
                    pixels = upright(frame.to_ndarray(format="rgb24"), frame.rotation)
                    yield "video", pixels, index
                    index += 1
        except (av.FFmpegError, ValueError) as exc:
            raise _damaged(exc) from None
        if index == 0:
            raise UnreadableVideo("damaged or truncated video: no frame could be decoded")
        self._check_whole(found, reach)

    def scan(self) -> "VideoScan":
        """Read every packet of the file without decoding a picture, with the checks of `packets()` (a
        file cut short fails, and limits hold), for what splitting the video by time needs."""
        found = Counter()
        reach = None
        times, keys = [], []
        try:
            for packet in self._container.demux():
                found[packet.stream.index] += bool(packet.size or packet.dts is not None)
                reach = _later(reach, _end_of(packet, float(1 / self.info.rate) if packet.stream is self._video else 0.0))
                if packet.stream is not self._video or not packet.size:
                    continue
                if packet.pts is None:
                    raise UnreadableVideo("damaged video: a picture without a time; it cannot be split by time")
                times.append(packet.pts)
                if packet.is_keyframe:
                    keys.append(packet.pts)
                if len(times) > self.limits.max_frames:
                    raise VideoTooLong(f"the video has more than {self.limits.max_frames} frames (the limit)")
        except (av.FFmpegError, ValueError) as exc:
            raise _damaged(exc) from None
        if not times:
            raise UnreadableVideo("damaged or truncated video: it holds no pictures")
        self._check_whole(found, reach)
        seconds = float((max(times) - min(times)) * self._video.time_base)
        if seconds > self.limits.max_seconds:
            raise VideoTooLong(f"the video lasts more than {self.limits.max_seconds:.0f} s (the limit)")
        return VideoScan(sorted(times), sorted(set(keys)), self._video.time_base)

    def frames_from(self, start: int | None) -> Iterator[tuple[np.ndarray, int]]:
        """Upright RGB pictures and their times (in `scan()`'s time base) from the last keyframe at or
        before time `start` (the first, if None) to the end, in the order they are shown. For a part of
        a video only: the file as a whole is checked by `scan()`, not here."""
        try:
            if start is not None:
                self._container.seek(start, stream=self._video, backward=True, any_frame=False)
            for packet in self._container.demux(self._video):
                for frame in packet.decode():
                    if frame.pts is None:
                        raise UnreadableVideo("damaged video: a picture without a time; it cannot be split by time")
                    if frame.width * frame.height > self.limits.max_frame_pixels:
                        raise VideoTooLong(f"a frame of {frame.width}×{frame.height} is over the pixel limit")
                    yield upright(frame.to_ndarray(format="rgb24"), frame.rotation), frame.pts
        except (av.FFmpegError, ValueError) as exc:
            raise _damaged(exc) from None

    def _check_whole(self, found: Counter, reach: float | None) -> None:
        """UnreadableVideo if the file holds fewer pictures or sound than its index lists, or ends well
        before the time it declares: it was cut short."""
        # MP4 and MOV list every packet (fragmented: in the fragments read). Pictures and sound only: the
        # demuxer keeps some data and chapter tracks' packets to itself.
        for stream in [self._video, *self._container.streams.audio]:
            listed = len(stream.index_entries)
            if found[stream.index] < listed:
                what = "frames" if stream is self._video else "pieces of its sound"
                raise UnreadableVideo(f"truncated video: only {found[stream.index]} of the {listed} {what} "
                                      "its index lists are in the file")
        start = self._container.start_time
        self.found_seconds = None if reach is None else reach - (start / av.time_base if start is not None else 0.0)
        if self.info.frames:  # MP4 and MOV list every picture up front, checked above: their times are not needed
            return
        declared = self.declared_seconds
        if declared is not None and self.found_seconds is not None and declared - self.found_seconds > self.end_slack:
            raise UnreadableVideo(f"truncated video: only {self.found_seconds:.1f} s of its {declared:.1f} s "
                                  "could be decoded")

    @property
    def declared_seconds(self) -> float | None:
        """How long the container says the file is (all its streams), if it says."""
        duration = self._container.duration
        return duration / av.time_base if duration and duration > 0 else None

    @property
    def end_slack(self) -> float:
        """Seconds a whole file may end before the time its container declares."""
        return max(END_SLACK_SECONDS, float(END_SLACK_FRAMES / self.info.rate))

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

