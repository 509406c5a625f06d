"""Check a video before posting: its metadata and extra tracks, its sound, and faces in a sample of frames."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av

from ..check import find_face_candidates
from ..containers.findings import Finding
from ..detect import Detection, Detector
from ..errors import BlurError, UnreadableVideo, VerificationFailed
from .decode import VideoLimits, VideoReader, picture_stream
from .verify import find_box_problems, find_forbidden_bytes

SAMPLE_FRAMES = 12
"""Frames looked at for faces, spread evenly over the video: a sample, not every frame."""
BENIGN_TAGS = {"major_brand", "minor_version", "compatible_brands", "language", "vendor_id", "duration"}
STANDARD_HANDLERS = {"VideoHandler", "SoundHandler"}


@dataclass(frozen=True)
class VideoCheckReport:
    """What `check_video` found in one file."""

    metadata: tuple[Finding, ...]
    """Metadata, extra tracks, chapters and sound: everything but the pictures."""
    frames_checked: int
    face_frames: tuple[tuple[int, Detection], ...] | None
    """(frame index, face) for each face still visible in the frames checked; None if not searched."""
    face_error: str | None = None

    @property
    def faces(self) -> list[Detection]:
        return [face for _, face in self.face_frames or ()]

    @property
    def clean(self) -> bool:
        return not self.metadata and not self.faces and self.face_error is None


def find_video_metadata(path: str | Path) -> list[Finding]:
    """The metadata, chapters, extra streams and sound in the video at `path`, in words; UnreadableVideo
    if it is no video (no picture in it, or not a container FFmpeg reads)."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            is_mp4 = handle.read(12)[4:8] in (b"ftyp", b"wide", b"free", b"mdat", b"moov")
    except OSError as exc:
        raise UnreadableVideo(f"cannot read this file ({exc.strerror or exc})") from None
    findings: list[Finding] = []
    if is_mp4:
        try:
            findings += find_box_problems(path) + find_forbidden_bytes(path)
        except VerificationFailed as exc:
            findings.append(Finding("a damaged box structure", str(exc)))
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            picture_stream(container)
            tags = sorted(set(container.metadata) - BENIGN_TAGS)
            if tags:
                findings.append(Finding("tags", ", ".join(tags)))
            if container.chapters():
                findings.append(Finding("chapters", f"{len(container.chapters())}"))
            videos = 0
            for stream in container.streams:
                tags = sorted(key for key, value in stream.metadata.items()
                              if key not in BENIGN_TAGS and not (key == "handler_name" and value in STANDARD_HANDLERS))
                if tags:
                    findings.append(Finding(f"tags of the {stream.type} track", ", ".join(tags)))
                if stream.type == "video":
                    videos += 1
                    if videos > 1:
                        findings.append(Finding("another video track", "a second picture stream (a preview, another camera)"))
                elif stream.type == "audio":
                    findings.append(Finding("sound", "voices and places can be recognised by their sound"))
                else:
                    findings.append(Finding(f"a {stream.type} track", "subtitles, timecode or sensor data"))
    except (av.FFmpegError, ValueError) as exc:
        raise UnreadableVideo(f"damaged or truncated video, or not a video in a format this tool reads ({exc})") from None
    return list({(f.kind, f.detail): f for f in findings}.values())


def check_video(path: str | Path, *, faces: bool = True, detector: Detector | None = None,
                limits: VideoLimits = VideoLimits(), samples: int = SAMPLE_FRAMES) -> VideoCheckReport:
    """The metadata in the video at `path` and, if `faces`, the faces still visible in `samples` frames
    spread over it (the candidates `blur check` finds in photos that are not destroyed blobs)."""
    metadata = tuple(find_video_metadata(path))
    if not faces:
        return VideoCheckReport(metadata, 0, None)
    found: list[tuple[int, Detection]] = []
    checked = 0
    try:
        with VideoReader(path, limits) as reader:
            every = max(1, (reader.info.frames or samples * 30) // samples)
            for kind, pixels, index in reader.packets():
                if index % every == 0 and checked < samples:
                    checked += 1
                    found += [(index, c.detection) for c in find_face_candidates(pixels, detector) if not c.destroyed]
    except BlurError as exc:
        return VideoCheckReport(metadata, checked, tuple(found), str(exc))
    return VideoCheckReport(metadata, checked, tuple(found))
