"""Split: one long video anonymised in time ranges by several workers, then joined into one MP4.

The video is scanned once, without decoding a picture (`plan_time_ranges`: the whole file is
checked as a local run checks it, and its pictures' times are listed). It is cut at pictures a
decoder can start from into ranges of about `seconds` each. Each range is anonymised on its own
(`anonymise_time_range`, on any machine that sees the file): decoding starts PREROLL_SECONDS before
the range, so faces found there are already followed when the range begins, and goes on past its
end for as many frames as the pipeline keeps, so a face found just after the range is still
carried back into it. Only the range's own pictures are written, to a segment file. `join_segments`
then copies the segments' coded pictures one after another into the output (nothing is encoded
again; with sound kept, it is encoded once from the original), checks that every picture of the
video is there exactly once, and verifies the result as a local run's.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ..anonymise import fresh_rng
from ..detect import Detector
from ..encode import atomic_output
from ..errors import UnreadableVideo, VerificationFailed
from .decode import VideoReader
from .encode import AUDIO_BITRATE, VideoWriter
from .pipeline import VideoResult, VideoSettings, _FaceFinder, _FrameWriter, _layout
from .verify import verify_video_output

SEGMENT_SECONDS = 60.0
"""Length of a time range: long enough that starting a range again (its pre-roll) costs little."""
PREROLL_SECONDS = 2.0
"""Seconds decoded before a range, so a face seen there is followed when the range begins."""


@dataclass(frozen=True)
class TimeRange:
    """The pictures of a video whose times are in [start, end) (None: from the start, to the end)."""

    start: int | None
    end: int | None
    first_index: int
    """The place of its first picture in the whole video."""
    frames: int
    preroll: int | None
    """Where decoding starts: PREROLL_SECONDS before `start` (None for the first range)."""


@dataclass(frozen=True)
class RangeResult:
    """One range anonymised into a segment file."""

    segment: Path
    frames: int
    regions: int
    detected: int
    faces: list[dict]
    """Faces seen in the range (frames counted in the whole video)."""


def plan_time_ranges(source: str | Path, settings: VideoSettings = VideoSettings(),
                     seconds: float = SEGMENT_SECONDS) -> list[TimeRange]:
    """The time ranges to anonymise `source` in, each about `seconds` long and starting at a picture a
    decoder can start from; one range for a video not much longer than that. Raises as a local run
    would for a file that cannot be read, is cut short or is over the limits."""
    with VideoReader(source, settings.limits) as reader:
        scan = reader.scan()
    step = max(1, round(seconds / float(scan.time_base)))
    preroll = round(PREROLL_SECONDS / float(scan.time_base))
    starts = [None]
    for key in scan.keyframes:
        last = scan.times[0] if starts[-1] is None else starts[-1]
        if key - last >= step and scan.times[-1] - key >= step // 2:
            starts.append(key)
    ends = starts[1:] + [None]
    ranges = []
    for start, end in zip(starts, ends):
        first = 0 if start is None else int(np.searchsorted(scan.times, start))
        last = len(scan.times) if end is None else int(np.searchsorted(scan.times, end))
        ranges.append(TimeRange(start, end, first, last - first, None if start is None else start - preroll))
    return ranges


def anonymise_time_range(source: str | Path, segment: str | Path, time_range: TimeRange,
                         settings: VideoSettings = VideoSettings(), *, detector: Detector | None = None,
                         rng: np.random.Generator | None = None) -> RangeResult:
    """Anonymise the pictures of `time_range` into a new MP4 `segment` (no sound), as a local run would
    anonymise them; nothing is left at `segment` unless all of them were written and verified."""
    segment = Path(segment)
    detector = detector or settings.photo.load_detector()
    rng = rng or fresh_rng()
    written = 0
    with VideoReader(source, settings.limits) as reader, atomic_output(segment, overwrite=True) as temporary:
        info = reader.info
        finder: _FaceFinder | None = None
        writer: _FrameWriter | None = None
        times: deque[int] = deque()
        after = 0
        try:
            for index, (pixels, time) in enumerate(reader.frames_from(time_range.preroll)):
                if time_range.end is not None and time >= time_range.end:
                    after += 1
                if finder is None:
                    height, width = pixels.shape[:2]
                    finder = _FaceFinder(detector, height, width, settings.refresh)
                    writer = _FrameWriter(VideoWriter(temporary, width, height, info.rate), settings.photo, rng)
                times.append(time)
                for left_pixels, boxes in finder.add(index, pixels):
                    if _inside(times.popleft(), time_range):
                        writer.frame(left_pixels, boxes)
                if after > finder.keep:
                    break
            if finder is None:
                raise UnreadableVideo("damaged video: no picture in this part of it could be decoded")
            for left_pixels, boxes in finder.finish():
                if _inside(times.popleft(), time_range):
                    writer.frame(left_pixels, boxes)
            writer.finish()
        except BaseException:
            if writer is not None:
                writer.abandon()
            raise
        written = writer.written
        if written != time_range.frames:
            raise UnreadableVideo(f"this part of the video has {time_range.frames} pictures, but {written} "
                                  "could be decoded; it cannot be split by time")
        verify_video_output(temporary, written, *writer.size, False)
    faces = [{**face, "frames": [face["frames"][0] + time_range.first_index, face["frames"][1] + time_range.first_index]}
             for face in finder.tracks.summaries()]
    return RangeResult(segment, written, writer.regions, finder.detected, faces)


def _inside(time: int, time_range: TimeRange) -> bool:
    return (time_range.start is None or time >= time_range.start) and (time_range.end is None or time < time_range.end)


def join_segments(source: str | Path, parts: list[RangeResult], destination: str | Path,
                  settings: VideoSettings = VideoSettings(), *, overwrite: bool = False) -> VideoResult:
    """Copy the pictures of the segments, in order, into one MP4 at `destination` (with the original's
    sound re-encoded if `settings.keep_audio`), verified as a local run's output is."""
    destination = Path(destination)
    frames = sum(part.frames for part in parts)
    with atomic_output(destination, overwrite=overwrite) as temporary:
        with av.open(str(temporary), "w", format="mp4",
                     options={"fflags": "+bitexact", "movflags": "+faststart"}) as output:
            video, width, height, time_base = _copied_stream(output, parts)
            sound = _sound(source, output, settings) if settings.keep_audio else None
            offset = 0
            for part in parts:
                with av.open(str(part.segment)) as segment:
                    stream = segment.streams.video[0]
                    for packet in segment.demux(stream):
                        if packet.dts is None:
                            continue
                        packet.pts = None if packet.pts is None else packet.pts + offset
                        packet.dts += offset
                        packet.stream = video
                        output.mux(packet)
                    offset += _span(stream, part.frames)
                if sound is not None:
                    sound.encode_until(float(offset * time_base), output)
            if sound is not None:
                sound.finish(output)
        verify_video_output(temporary, frames, width, height, sound is not None and sound.any)
    regions = sum(part.regions for part in parts)
    return VideoResult(destination, frames, width, height, [f for part in parts for f in part.faces], regions,
                       sum(part.detected for part in parts), sound is not None and sound.any)


def _copied_stream(output, parts: list[RangeResult]):
    """The output's video stream, made like the segments' (which must all be coded alike)."""
    extradata = None
    for part in parts:
        with av.open(str(part.segment)) as segment:
            stream = segment.streams.video[0]
            if extradata is None:
                extradata = stream.codec_context.extradata
                video = output.add_stream_from_template(stream)
                width, height, time_base = stream.codec_context.width, stream.codec_context.height, stream.time_base
            elif stream.codec_context.extradata != extradata or stream.time_base != time_base:
                raise VerificationFailed("the parts of the video were coded differently; they cannot be joined")
    return video, width, height, time_base


def _span(stream, frames: int) -> int:
    """How long `frames` pictures of a segment last, in its stream's time base."""
    rate = Fraction(stream.average_rate or stream.guessed_rate)
    return round(Fraction(frames) / rate / stream.time_base)


class _Sound:
    """The original's first sound track, decoded and encoded as AAC into the output bit by bit."""

    def __init__(self, source: Path, output, settings: VideoSettings):
        self._input = av.open(str(source), metadata_errors="ignore")
        stream = self._input.streams.audio[0]
        self._frames = self._input.decode(stream)
        layout = _layout(stream)
        self._stream = output.add_stream("aac", rate=stream.codec_context.sample_rate, layout=layout)
        self._stream.bit_rate = AUDIO_BITRATE
        self._stream.codec_context.options = {"flags": "+bitexact"}
        self._resampler = av.AudioResampler(format="fltp", layout=layout, rate=stream.codec_context.sample_rate)
        self.any = True

    def encode_until(self, seconds: float, output) -> None:
        for frame in self._frames:
            time = frame.time
            frame.pts = None  # timestamps are the encoder's own, from the samples' count
            for resampled in self._resampler.resample(frame):
                for packet in self._stream.encode(resampled):
                    output.mux(packet)
            if time is not None and time >= seconds:
                return

    def finish(self, output) -> None:
        self.encode_until(math.inf, output)
        for resampled in self._resampler.resample(None):
            for packet in self._stream.encode(resampled):
                output.mux(packet)
        for packet in self._stream.encode():
            output.mux(packet)
        self._input.close()


def _sound(source: str | Path, output, settings: VideoSettings) -> _Sound | None:
    with av.open(str(source), metadata_errors="ignore") as probe:
        if not probe.streams.audio:
            return None
    return _Sound(Path(source), output, settings)
