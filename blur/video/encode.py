"""Encode: a fresh H.264 MP4 from pixel arrays (and, on request, AAC audio from decoded samples).

Nothing of the input container is handed to the muxer: no metadata, chapters or extra streams are
created, so none can be copied. Two things FFmpeg adds by itself are switched off: the muxer's
"encoder" tag (bit-exact mode, which also zeroes every creation time), and the SEI user-data NAL unit
in which libx264 writes its version and options (every SEI unit is removed by the `filter_units`
bitstream filter; players need none from this encoder).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.bitstream import BitStreamFilterContext

from ..errors import UnreadableVideo

CRF = 20
"""x264's constant quality (lower is better): visually close to a phone's own encoding."""
PRESET = "veryfast"
"""x264's speed preset: encoding a 1080p frame takes a few ms, against the detector's tenths of a second."""
AUDIO_BITRATE = 128_000
DROP_SEI = "filter_units=remove_types=6"
"""Removes every SEI NAL unit (type 6): libx264 writes its version and full options in one."""


class VideoWriter:
    """Writes upright RGB frames of width×height (cropped to even sides for 4:2:0) at a constant `rate`
    to a new MP4 at `path`; with `audio_rate`, also AAC audio."""

    def __init__(self, path: Path, width: int, height: int, rate: Fraction, audio_rate: int | None = None,
                 audio_layout: str = "stereo"):
        self._size = (width // 2 * 2, height // 2 * 2)
        if min(self._size) < 2:
            raise UnreadableVideo(f"frames of {width}×{height} are too small to encode")
        self._container = av.open(str(path), "w", format="mp4",
                                  options={"fflags": "+bitexact", "movflags": "+faststart"})
        self._video = self._container.add_stream("libx264", rate=rate)
        self._video.width, self._video.height = self._size
        self._video.pix_fmt = "yuv420p"
        self._video.codec_context.options = {"preset": PRESET, "crf": str(CRF), "flags": "+bitexact"}
        self._filter = None
        self._audio = None
        if audio_rate is not None:
            self._audio = self._container.add_stream("aac", rate=audio_rate, layout=audio_layout)
            self._audio.bit_rate = AUDIO_BITRATE
            self._audio.codec_context.options = {"flags": "+bitexact"}
            self._resampler = av.AudioResampler(format="fltp", layout=audio_layout, rate=audio_rate)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) written: the frames' size, cropped to even sides."""
        return self._size

    def write_frame(self, pixels: np.ndarray) -> None:
        height, width = pixels.shape[:2]
        if (width // 2 * 2, height // 2 * 2) != self._size:
            raise UnreadableVideo(f"the frame size changes in the video ({self._size[0]}×{self._size[1]}, then "
                                  f"{width}×{height}); such videos are not supported")
        crop = np.ascontiguousarray(pixels[: self._size[1], : self._size[0]])
        self._mux_video(self._video.encode(av.VideoFrame.from_ndarray(crop, format="rgb24")))

    def write_audio(self, frame: av.AudioFrame) -> None:
        if self._audio is None:
            return
        frame.pts = None  # timestamps are the encoder's own, from the samples' count
        for resampled in self._resampler.resample(frame):
            for packet in self._audio.encode(resampled):
                self._container.mux(packet)

    def finish(self) -> None:
        """Flush the encoders and write the file's index."""
        self._mux_video(self._video.encode())
        for packet in self._filter.filter(None) if self._filter is not None else ():
            self._container.mux(packet)
        if self._audio is not None:
            for resampled in self._resampler.resample(None):
                for packet in self._audio.encode(resampled):
                    self._container.mux(packet)
            for packet in self._audio.encode():
                self._container.mux(packet)
        self.close()

    def close(self) -> None:
        self._container.close()

    def _mux_video(self, packets) -> None:
        for packet in packets:
            if self._filter is None:  # made once the encoder has written its parameter sets
                self._filter = BitStreamFilterContext(DROP_SEI, self._video)
            for filtered in self._filter.filter(packet):
                self._container.mux(filtered)
