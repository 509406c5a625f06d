"""The pipeline for one video: decode → detect every frame → track → anonymise → encode → verify → write.

Streamed: frames are decoded, looked at and written one by one, with at most LOOKAHEAD + 1 of them
in memory (a frame is written once the frames after it have said where a face missed in it is).
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..anonymise import anonymise, fresh_rng
from ..detect import Detector
from ..encode import atomic_output
from ..errors import InvalidSetting, OutputError, OutputExists, UnreadableVideo
from ..pipeline import Settings, _same_file
from ..regions import Region, regions_from_detections
from .decode import VideoLimits, VideoReader
from .encode import VideoWriter
from .track import HOLD, LOOKAHEAD, MAX_GAP, FaceTracker
from .verify import verify_video_output

MAX_EARLY_AUDIO = 500
"""Audio frames kept while waiting for the first picture (about 10 s of AAC); more fails the video."""
SNAP_FRACTION = 6
"""Region borders are moved outwards to multiples of a step, the largest power of two up to the
region's smaller side over this: so a still face's 3×3 cells stay put from frame to frame although
the detector's box jitters by a few pixels, and averaging frames gives those cells' colours (and
nothing finer), not a finer grid from many shifted ones. A small region moves by a pixel or two."""


class Stopped(Exception):
    """A stop was requested while a video was in progress: nothing of it was written."""


@dataclass(frozen=True)
class VideoSettings:
    """How a video is anonymised: the photo settings (method, shape, padding, detector) plus audio and limits."""

    photo: Settings = Settings()
    """The same defaults as photos: every frame is looked at as closely as a photo (benchmarks/video.py)."""
    keep_audio: bool = False
    """Re-encode the first audio track as AAC (no tags); by default the video is written silent."""
    limits: VideoLimits = VideoLimits()

    def __post_init__(self):
        if not isinstance(self.photo, Settings):
            raise InvalidSetting(f"photo must be Settings, not {self.photo!r}")
        if not isinstance(self.keep_audio, bool):
            raise InvalidSetting(f"keep_audio must be True or False, not {self.keep_audio!r}")
        for name in ("max_frames", "max_frame_pixels"):
            value = getattr(self.limits, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidSetting(f"{name} must be a whole number of 1 or more, not {value!r}")
        if not (isinstance(self.limits.max_seconds, (int, float)) and math.isfinite(self.limits.max_seconds)
                and self.limits.max_seconds > 0):
            raise InvalidSetting(f"max_seconds must be a number above 0, not {self.limits.max_seconds!r}")


@dataclass(frozen=True)
class Progress:
    frames: int
    """Frames written so far."""
    total: int | None
    """Frames in the video, if the container says."""
    seconds: float
    """Time spent so far."""

    @property
    def seconds_left(self) -> float | None:
        if not self.total or not self.frames:
            return None
        return self.seconds / self.frames * max(self.total - self.frames, 0)


@dataclass(frozen=True, eq=False)
class VideoResult:
    output: Path
    frames: int
    width: int
    height: int
    faces: list[dict]
    """One per face seen, however many frames it is in: frames first and last seen, sightings, first box, best score."""
    regions: int
    """Regions destroyed over all frames (sightings, gaps and held boxes)."""
    detected: int
    """Detections over all frames."""
    audio: bool


def snap_step(region: Region) -> int:
    """The grid a region's borders are moved out to: a power of two near its smaller side / SNAP_FRACTION."""
    side = max(min(region.width, region.height) // SNAP_FRACTION, 1)
    return 1 << (side.bit_length() - 1)


def snapped(region: Region, step: int | None = None) -> Region:
    """`region` with its borders moved outwards to multiples of `step` (default: `snap_step`)."""
    step = step or snap_step(region)
    return Region(
        region.x0 // step * step, region.y0 // step * step,
        -(-region.x1 // step) * step, -(-region.y1 // step) * step,
        region.score, region.source, region.shape,
    )


def anonymise_video_file(
    source: str | Path,
    destination: str | Path,
    settings: VideoSettings = VideoSettings(),
    *,
    overwrite: bool = False,
    detector: Detector | None = None,
    rng: np.random.Generator | None = None,
    progress: Callable[[Progress], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> VideoResult:
    """Anonymise the video at `source` into a fresh MP4 at `destination`, or raise a BlurError.

    Every frame is looked at; faces are tracked over time so a frame also covers a face missed in it
    (see blur.video.track). Nothing is written unless every frame was anonymised, the result passed
    `verify_video_output`, and `stop` (checked every frame) stayed false: once it is true, Stopped
    is raised and no file is left, as on Ctrl-C (KeyboardInterrupt) or any other exception.
    """
    source, destination = Path(source), Path(destination)
    if _same_file(source, destination):
        raise OutputError("the output would replace the original video; choose another output name")
    if not overwrite and os.path.lexists(destination):
        raise OutputExists(destination)
    detector = detector or settings.photo.load_detector()
    rng = rng or fresh_rng()
    started = time.perf_counter()
    with VideoReader(source, settings.limits, audio=settings.keep_audio) as reader, \
            atomic_output(destination, overwrite=overwrite) as temporary:
        audio = reader.audio_stream
        tracker = FaceTracker()
        waiting: deque[tuple[int, np.ndarray]] = deque()
        early_audio: list = []
        counts = {"written": 0, "regions": 0, "detected": 0}
        writer: VideoWriter | None = None

        def write(index: int, pixels: np.ndarray) -> None:
            height, width = pixels.shape[:2]
            boxes = tracker.boxes_at(index)
            regions = [snapped(r) for r in regions_from_detections(boxes, height, width, settings.photo.padding)]
            writer.write_frame(anonymise(pixels, regions, settings.photo.method, settings.photo.shape, rng))
            tracker.forget_before(index + 1)
            counts["written"] += 1
            counts["regions"] += len(regions)
            if progress is not None:
                progress(Progress(counts["written"], reader.info.frames, time.perf_counter() - started))

        try:
            for kind, item, index in reader.packets():
                if stop is not None and stop():
                    raise Stopped
                if kind == "audio":
                    if writer is not None:
                        writer.write_audio(item)
                    elif len(early_audio) < MAX_EARLY_AUDIO:
                        early_audio.append(item)
                    else:
                        raise UnreadableVideo("damaged video: its sound starts long before its first picture")
                    continue
                if writer is None:
                    writer = VideoWriter(temporary, item.shape[1], item.shape[0], reader.info.rate,
                                         audio.codec_context.sample_rate if audio is not None else None,
                                         _layout(audio) if audio is not None else "stereo")
                    for frame in early_audio:
                        writer.write_audio(frame)
                    early_audio.clear()
                found = detector.detect(item)
                counts["detected"] += len(found)
                tracker.add(index, found)
                waiting.append((index, item))
                while waiting and waiting[0][0] <= index - LOOKAHEAD:
                    write(*waiting.popleft())
            while waiting:
                write(*waiting.popleft())
            if writer is None:
                raise UnreadableVideo("damaged video: it holds no pictures")
            writer.finish()
        except BaseException:
            if writer is not None:
                writer.close()
            raise
        width, height = writer.size
        verify_video_output(temporary, counts["written"], width, height, audio is not None)
    return VideoResult(destination, counts["written"], width, height, tracker.summaries(), counts["regions"],
                       counts["detected"], audio is not None)


def _layout(stream) -> str:
    channels = len(stream.codec_context.layout.channels)
    return "mono" if channels == 1 else "stereo"


def describe_video_processing(settings: VideoSettings) -> dict:
    """What decided how a video was anonymised, besides the photo settings: tracking and limits."""
    return {
        "keep_audio": settings.keep_audio,
        "max_gap_frames": MAX_GAP,
        "hold_frames": HOLD,
        "snap_fraction": SNAP_FRACTION,
        "limits": {"max_frames": settings.limits.max_frames, "max_seconds": settings.limits.max_seconds,
                   "max_frame_pixels": settings.limits.max_frame_pixels},
    }
