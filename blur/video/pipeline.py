"""The pipeline for one video: decode → motion → look → detect → track → anonymise → encode → verify → write.

Streamed, with the stages overlapping: a thread decodes the frames ahead, the main thread compares
each frame with the one before (blur.video.motion), looks closely only where it must
(blur.video.looks: coarse views everywhere, fine ones where the picture changed, where a face is not
and everywhere at least every few frames) and follows faces over time (blur.video.track),
and a second thread destroys the regions of the frame leaving the buffer and encodes it. At most
`lookahead` + a few frames are in memory, whatever the video's length: a frame is written once the
frames after it have said whether a face was in it before it was found.
"""

from __future__ import annotations

import math
import os
import queue
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..anonymise import anonymise, fresh_rng
from ..detect import Detection, Detector
from ..encode import atomic_output
from ..errors import InvalidSetting, OutputError, OutputExists, UnreadableVideo
from ..pipeline import Settings, _same_file
from ..regions import Region, pad_detection
from ..stop import StopRequest
from .decode import VideoLimits, VideoReader
from .encode import VideoWriter
from .looks import CHANGE_DELAY, COARSE_FACE, ENTER_DELAY, REFRESH, LookPlanner, lookahead
from .motion import FlowGrid, MotionEstimator
from .track import HOLD_MOST, HOLD_PER_SUPPORT, HOLD_SIGHTED, Candidates, Tracks
from .verify import verify_video_output

MAX_EARLY_AUDIO = 500
"""Audio frames kept while waiting for the first picture (about 10 s of AAC); more fails the video."""
SNAP_FRACTION = 8
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
    refresh: int = REFRESH
    """Most frames any part of the picture goes without a close look (blur.video.looks). Lower is
    slower and may find a face sooner; it never lets a face found go uncovered in the frames before."""

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
        if isinstance(self.refresh, bool) or not isinstance(self.refresh, int) or not 1 <= self.refresh <= REFRESH:
            raise InvalidSetting(f"refresh must be a whole number from 1 to {REFRESH}, not {self.refresh!r}")


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
    stop: StopRequest | None = None,
) -> VideoResult:
    """Anonymise the video at `source` into a fresh MP4 at `destination`, or raise a BlurError.

    Faces are followed over time, so a frame also covers a face missed in it (blur.video.track). A
    detector with partial looks (`candidates`, `bars` and a `pyramid`, as CenterFace has) looks
    closely only where it must (blur.video.looks); any other detector looks at every frame whole.
    Nothing is written unless every frame was anonymised, the result passed `verify_video_output`,
    and `stop` (checked every frame) was not set: once it is, Stopped is raised and no file is
    left, as on Ctrl-C (KeyboardInterrupt) or any other exception.
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
        info = reader.info
        early_audio: list = []
        writer: _FrameWriter | None = None
        finder: _FaceFinder | None = None
        decoded = _prefetched(reader.packets(), 4)
        try:
            for kind, item, index in decoded:
                if stop is not None and stop.is_set():
                    raise Stopped
                if kind == "audio":
                    if writer is not None:
                        writer.audio(item)
                    elif len(early_audio) < MAX_EARLY_AUDIO:
                        early_audio.append(item)
                    else:
                        raise UnreadableVideo("damaged video: its sound starts long before its first picture")
                    continue
                if writer is None:
                    height, width = item.shape[:2]
                    finder = _FaceFinder(detector, height, width, settings.refresh)
                    writer = _FrameWriter(VideoWriter(temporary, width, height, info.rate,
                                                      audio.codec_context.sample_rate if audio is not None else None,
                                                      _layout(audio) if audio is not None else "stereo"),
                                          settings.photo, rng)
                    for frame in early_audio:
                        writer.audio(frame)
                    early_audio.clear()
                for written in finder.add(index, item):
                    writer.frame(*written)
                    if progress is not None:
                        progress(Progress(writer.queued, info.frames, time.perf_counter() - started))
            if writer is None:
                raise UnreadableVideo("damaged video: it holds no pictures")
            for written in finder.finish():
                writer.frame(*written)
            writer.finish()
        except BaseException:
            if writer is not None:
                writer.abandon()
            raise
        finally:
            decoded.close()
        width, height = writer.size
        verify_video_output(temporary, writer.written, width, height, audio is not None)
    return VideoResult(destination, writer.written, width, height, finder.tracks.summaries(), writer.regions,
                       finder.detected, audio is not None)


class _FaceFinder:
    """Motion, looks, detection and tracks for one video's frames, in order; `add` gives back the
    frames that leave the buffer, each with the boxes to destroy in it (N×5 with scores)."""

    def __init__(self, detector: Detector, height: int, width: int, refresh: int):
        self.detector = detector
        self.partial = all(hasattr(detector, name) for name in ("candidates", "bars", "pyramid"))
        grid = FlowGrid.for_frame(height, width)
        self.motion = MotionEstimator(grid)
        self.planner = LookPlanner(grid, detector.pyramid, refresh) if self.partial else None
        self.keep = self.planner.lookahead if self.partial else lookahead(refresh)
        self.tracks = Tracks(self.keep, height, width)
        self.waiting: deque[tuple[int, np.ndarray]] = deque()
        self.detected = 0

    def add(self, index: int, pixels: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        motion = self.motion.motion(pixels)
        if self.partial:
            look = self.planner.plan(index, motion)
            fused = self.detector.candidates(pixels, self.planner.where(look))
            found = Candidates(fused, self.detector.bars(fused))
        else:
            look = None  # looked at whole
            detections = self.detector.detect(pixels)
            boxes = np.array([[d.x0, d.y0, d.x1, d.y1, d.score] for d in detections], np.float64).reshape(-1, 5)
            found = Candidates(boxes, boxes[:, 4].copy())
        self.detected += int((found.boxes[:, 4] >= found.bars).sum()) if len(found.boxes) else 0
        self.tracks.step(index, motion, found, look)
        self.waiting.append((index, pixels))
        while self.waiting and self.waiting[0][0] <= index - self.keep:
            yield self._leaving()

    def finish(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The frames still kept, once the video has ended. Its last frame is looked at once more where
        a look was still owed (what was uncovered or came in at the very end), since no later frame will."""
        if self.partial and self.waiting:
            index, pixels = self.waiting[-1]
            owed = self.planner.owed(index)
            if owed is not None:
                fused = self.detector.candidates(pixels, self.planner.where(owed))
                self.tracks.look_again(Candidates(fused, self.detector.bars(fused)), owed)
        while self.waiting:
            yield self._leaving()

    def _leaving(self) -> tuple[np.ndarray, np.ndarray]:
        index, pixels = self.waiting.popleft()
        boxes = self.tracks.boxes_at(index)
        self.tracks.release(index)
        return pixels, boxes


class _FrameWriter:
    """Destroys the regions of each frame and encodes it, on a thread of its own (sound too, so the
    file is written by one thread), a few frames behind the caller; the first error comes back to
    the caller at its next call."""

    AHEAD = 3

    def __init__(self, writer: VideoWriter, photo: Settings, rng: np.random.Generator):
        self._writer, self._photo, self._rng = writer, photo, rng
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="blur-video-writer")
        self._pending: deque[Future] = deque()
        self.queued = self.written = self.regions = 0

    @property
    def size(self) -> tuple[int, int]:
        return self._writer.size

    def frame(self, pixels: np.ndarray, boxes: np.ndarray) -> None:
        self.queued += 1
        self._submit(self._write_frame, pixels, boxes)

    def audio(self, frame) -> None:
        self._submit(self._writer.write_audio, frame)

    def finish(self) -> None:
        self._submit(self._writer.finish)
        while self._pending:
            self._pending.popleft().result()
        self._thread.shutdown()

    def abandon(self) -> None:
        """Stop writing (after an error or a stop): wait for the thread, then close the file."""
        for future in self._pending:
            future.cancel()
        self._thread.shutdown(wait=True)
        self._writer.close()

    def _submit(self, work, *args) -> None:
        self._pending.append(self._thread.submit(work, *args))
        while len(self._pending) > self.AHEAD or (self._pending and self._pending[0].done()):
            self._pending.popleft().result()

    def _write_frame(self, pixels: np.ndarray, boxes: np.ndarray) -> None:
        height, width = pixels.shape[:2]
        regions = frame_regions(boxes, height, width, self._photo.padding)
        anonymise(pixels, regions, self._photo.method, self._photo.shape, self._rng, out=pixels)
        self._writer.write_frame(pixels)
        self.written += 1
        self.regions += len(regions)


def frame_regions(boxes: np.ndarray, height: int, width: int, padding: float) -> list[Region]:
    """The padded, snapped regions to destroy for N×5 boxes (x0, y0, x1, y1, score) in a frame."""
    regions = []
    for x0, y0, x1, y1, score in boxes:
        region = snapped(pad_detection(Detection(x0, y0, x1, y1, score, "video"), padding))
        if region.x1 > 0 and region.y1 > 0 and region.x0 < width and region.y0 < height:
            regions.append(region)
    return regions


def _prefetched(items: Iterator, ahead: int) -> Iterator:
    """The items of `items`, produced by a thread of their own up to `ahead` items early; an error
    there is raised here, and closing this generator stops that thread."""
    handoff: queue.Queue = queue.Queue(maxsize=ahead)
    done = object()
    closing = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not closing.is_set():
                    try:
                        handoff.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if closing.is_set():
                    return
            handoff.put(("done", done))
        except BaseException as exc:  # handed to the consumer, which raises it
            handoff.put(("error", exc))

    thread = threading.Thread(target=produce, name="blur-video-reader", daemon=True)
    thread.start()
    try:
        while True:
            kind, item = handoff.get()
            if kind == "error":
                raise item
            if kind == "done":
                return
            yield item
    finally:
        closing.set()
        while thread.is_alive():
            try:
                handoff.get(timeout=0.05)
            except queue.Empty:
                pass
        thread.join()


def _layout(stream) -> str:
    channels = len(stream.codec_context.layout.channels)
    return "mono" if channels == 1 else "stereo"


def describe_video_processing(settings: VideoSettings) -> dict:
    """What decided how a video was anonymised, besides the photo settings: looks, tracking and limits."""
    return {
        "keep_audio": settings.keep_audio,
        "refresh_frames": settings.refresh,
        "change_delay_frames": CHANGE_DELAY,
        "enter_delay_frames": ENTER_DELAY,
        "coarse_face": COARSE_FACE,
        "frames_kept": lookahead(settings.refresh),
        "hold_frames": {"sighted": HOLD_SIGHTED, "per_support": HOLD_PER_SUPPORT, "most": HOLD_MOST},
        "snap_fraction": SNAP_FRACTION,
        "limits": {"max_frames": settings.limits.max_frames, "max_seconds": settings.limits.max_seconds,
                   "max_frame_pixels": settings.limits.max_frame_pixels},
    }
