"""Decode: a video file as a stream of upright RGB frames (and, on request, its audio), within limits.

Only the first video stream is read, and the first audio stream when audio is kept; nothing else
in the container (metadata, chapters, cover art, subtitles, timecode or data tracks, other video
streams) is ever handed on. Frames are turned upright by their display matrix.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from ..errors import UnreadableVideo, VideoTooLong



@dataclass(frozen=True)
class VideoLimits:
    """Bounds on what is decoded, so a huge or endless stream cannot run for ever or fill memory."""

    max_frames: int = 864_000
    """An hour at 240 frames per second (slow motion)."""
    max_seconds: float = 3600.0
    max_frame_pixels: int = 8192 * 4320
    """8K: more than any phone films."""


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
        try:
            self.info = self._probe(audio)
        except BaseException:
            self._container.close()
            raise

    def _probe(self, audio: bool) -> VideoInfo:
        container = self._container
        if not container.streams.video:
            raise UnreadableVideo("no video stream in this file")
        video = container.streams.video[0]
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
        streams = [self._video] + ([self.audio_stream] if self.audio_stream is not None else [])
        index = 0
        try:
            for packet in self._container.demux(streams):
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
                    pixels = upright(frame.to_ndarray(format="rgb24"), frame.rotation)
                    yield "video", pixels, index
                    index += 1
        except (av.FFmpegError, ValueError) as exc:
            raise _damaged(exc) from None
        if index == 0:
            raise UnreadableVideo("damaged or truncated video: no frame could be decoded")
        if self.info.frames and index < self.info.frames:
            raise UnreadableVideo(f"truncated video: only {index} of its {self.info.frames} frames could be decoded")

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

