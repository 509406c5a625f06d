"""Verify: what an MP4 or MOV file holds besides its pictures and sound, found by walking its boxes.

The walk is an allow-list: only the boxes FFmpeg's muxer needs for one H.264 video track and one
AAC audio track are accepted, with every creation time zero, an identity display matrix, the
standard handler names and no encoder names. Anything else is reported, and fails an output.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

import av

from ..containers.findings import Finding
from ..errors import VerificationFailed

CONTAINERS = {"moov", "trak", "edts", "mdia", "minf", "dinf", "stbl", "udta"}
"""Boxes that hold only other boxes."""
HEADER_BYTES = {"meta": 4, "dref": 8, "stsd": 8, "avc1": 78, "mp4a": 28}
"""Boxes that hold other boxes after a fixed header of this many bytes."""
LEAVES = {
    "ftyp", "free", "mdat", "mvhd", "tkhd", "elst", "mdhd", "hdlr", "vmhd", "smhd", "url ", "stts", "stss",
    "ctts", "stsc", "stsz", "stco", "co64", "sgpd", "sbgp", "avcC", "pasp", "btrt", "esds", "ilst",
}
"""Boxes with no boxes inside that the muxer writes: checked further below where they could hold anything."""
HANDLERS = {("vide", "VideoHandler"), ("soun", "SoundHandler"), ("mdir", "")}
FORBIDDEN = (b"x264", b"Lavf", b"Lavc", b"libx264")
"""Encoder names and versions: found in an output's boxes, the output fails."""
KNOWN_BOXES = {
    "\xa9xyz": "a location", "loci": "a location", "\xa9mak": "the device's make", "\xa9mod": "the device's model",
    "\xa9swr": "software", "\xa9too": "software", "\xa9day": "a date", "\xa9nam": "a title", "chpl": "chapters",
    "tref": "a link to another track (chapters, timecode)", "name": "a track name", "covr": "cover art",
    "uuid": "vendor data (XMP, camera data)", "XMP_": "XMP", "keys": "tags", "meta": "tags",
    "gmhd": "a timecode, text or data track", "tmcd": "a timecode", "text": "a text track", "wave": "extra sound data",
    "chan": "a channel layout", "wide": "padding from a camera or editor",
}
"""Words for boxes that are not allowed, where known."""
IDENTITY = (0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
SMALL = 1 << 20
"""Largest box payload read into memory (the index boxes of a long video are a few MB at most)."""


@dataclass(frozen=True)
class Mp4Box:
    path: str
    """Its types from the top, joined by '/': 'moov/trak/tkhd'."""
    offset: int
    size: int
    payload: bytes
    """Its content after the header, for leaves up to SMALL bytes (else empty)."""


def walk_boxes(handle: BinaryIO, start: int = 0, end: int | None = None, parent: str = "") -> Iterator[Mp4Box]:
    """Every box between `start` and `end` of the file, depth first; VerificationFailed if the
    structure does not add up (a box running past its parent, a size under its header)."""
    if end is None:
        end = handle.seek(0, 2)
    position = start
    while position < end:
        handle.seek(position)
        header = handle.read(8)
        if parent and end - position < 8 and not header[: end - position].strip(b"\0"):
            return  # QuickTime ends a list of boxes (user data) with four zero bytes
        if len(header) < 8:
            raise VerificationFailed(f"a box at byte {position} is cut short")
        size, kind = struct.unpack(">I4s", header)
        header_size = 8
        if size == 1:
            size, header_size = struct.unpack(">Q", handle.read(8))[0], 16
        elif size == 0:
            size = end - position
        name = kind.decode("latin-1")
        path = f"{parent}/{name}" if parent else name
        if size < header_size or position + size > end:
            raise VerificationFailed(f"the box {path} at byte {position} runs past its end")
        body = position + header_size
        payload = b""
        if name in HEADER_BYTES or name not in CONTAINERS and name not in ("mdat", "free") and size - header_size <= SMALL:
            handle.seek(body)
            payload = handle.read(min(size - header_size, SMALL))
        yield Mp4Box(path, position, size, payload)
        if name in CONTAINERS:
            yield from walk_boxes(handle, body, position + size, path)
        elif name in HEADER_BYTES and _header_bytes(name, payload) <= size - header_size:
            yield from walk_boxes(handle, body + _header_bytes(name, payload), position + size, path)
        position += size


def _header_bytes(name: str, payload: bytes) -> int:
    """Bytes before the boxes inside a `name` box: QuickTime sound descriptions of version 1 and 2 are
    longer, and QuickTime's `meta` (Apple's tags) holds its boxes straight after its header."""
    if name == "mp4a" and len(payload) >= 10:
        return {1: 44, 2: 64}.get(int.from_bytes(payload[8:10], "big"), 28)
    if name == "meta" and payload[4:8] == b"hdlr":
        return 0
    return HEADER_BYTES[name]


def find_box_problems(path: str | Path) -> list[Finding]:
    """Everything in the MP4/MOV file at `path` that is not on the allow-list, in words."""
    findings = []
    with open(path, "rb") as handle:
        for box in walk_boxes(handle):
            problem = _box_problem(box)
            if problem:
                findings.append(Finding(problem, box.path, box.offset))
    return findings


def _box_problem(box: Mp4Box) -> str | None:
    name = box.path.rsplit("/", 1)[-1]
    if name not in CONTAINERS and name not in HEADER_BYTES and name not in LEAVES:
        return KNOWN_BOXES.get(name, "a box not needed for the pictures or sound (metadata, another track, ...)")
    payload = box.payload
    if name in ("mvhd", "tkhd", "mdhd") and payload:
        version = payload[0]
        times = struct.unpack(">QQ" if version == 1 else ">II", payload[4 : 20 if version == 1 else 12])
        if any(times):
            return "a creation or modification time"
    if name in ("mvhd", "tkhd") and payload:
        offset = {"mvhd": (36, 48), "tkhd": (40, 52)}[name][payload[0] == 1]
        if struct.unpack(">9i", payload[offset : offset + 36]) != tuple(v - (1 << 32) if v >= 1 << 31 else v for v in IDENTITY):
            return "a display matrix (rotation) that is not the identity"
    if name == "hdlr" and payload:
        handler = payload[8:12].decode("latin-1")
        label = payload[24:].rstrip(b"\0").decode("latin-1", "replace")
        if label and ord(label[0]) == len(label) - 1:  # QuickTime writes a length-prefixed name
            label = label[1:]
        if (handler, label) not in HANDLERS:
            return f"a track handler {handler!r} named {label!r}"
    if name == "ilst" and box.size > 8:
        return "tags (title, location, dates, device, software, ...)"
    if name == "avc1" and payload and payload[42:74].strip(b"\0"):
        return "a compressor name"
    if box.path.count("/") and box.path.split("/")[0] not in ("moov",):
        return "a box inside an unexpected top-level box"
    return None


def find_forbidden_bytes(path: str | Path) -> list[Finding]:
    """Encoder names and versions in the file's bytes outside its `mdat` boxes.

    The coded pictures are not searched: four given bytes turn up by chance about once in 4 GB of
    them, which would fail long videos for nothing. What an encoder writes there (SEI units) is
    found by `find_sei_units` instead."""
    with open(path, "rb") as handle:
        pictures = [(box.offset, box.offset + box.size) for box in walk_boxes(handle) if box.path == "mdat"]
        found, overlap, end = [], max(map(len, FORBIDDEN)), handle.seek(0, 2)
        starts = [0] + [stop for _, stop in pictures]
        stops = [start for start, _ in pictures] + [end]
        for start, stop in zip(starts, stops):
            handle.seek(start)
            previous, offset = b"", start
            while offset < stop and (chunk := handle.read(min(1 << 22, stop - offset))):
                window = previous + chunk
                for word in FORBIDDEN:
                    if word in window:
                        found.append(Finding("an encoder name", word.decode(), offset - len(previous) + window.index(word)))
                previous = window[-overlap:]
                offset += len(chunk)
    return list({f.detail: f for f in found}.values())


SEI = 6
"""H.264 NAL unit type of supplemental enhancement information (where libx264 writes its version)."""


def find_sei_units(container: av.container.InputContainer) -> list[Finding]:
    """SEI units in the H.264 pictures of `container`'s first video stream (MP4 stores each unit
    after its length)."""
    stream = container.streams.video[0]
    extradata = stream.codec_context.extradata or b""
    if stream.codec_context.name != "h264" or len(extradata) < 5 or extradata[0] != 1:
        return []
    length_size = (extradata[4] & 3) + 1
    for packet in container.demux(stream):
        data, position = bytes(packet), 0
        while position + length_size <= len(data):
            length = int.from_bytes(data[position : position + length_size], "big")
            if length and data[position + length_size] & 0x1F == SEI:
                return [Finding("encoder data (an SEI unit)", "names the encoder and its settings", packet.pos)]
            position += length_size + length
    return []


def verify_video_output(path: Path, frames: int, width: int, height: int, audio: bool) -> None:
    """Raise VerificationFailed unless the file at `path` is our MP4: allowed boxes only, no encoder
    names, one H.264 video stream of `frames` frames of width×height, AAC audio only if `audio`."""
    problems = find_box_problems(path) + find_forbidden_bytes(path)
    if problems:
        raise VerificationFailed(f"the encoded video carries more than pictures and sound ({problems[0]}), so nothing was written")
    try:
        with av.open(str(path)) as container:
            kinds = sorted(stream.type for stream in container.streams)
            if kinds != sorted(["video"] + ["audio"] * audio):
                raise VerificationFailed(f"the encoded video has the streams {kinds}")
            stream = container.streams.video[0]
            if stream.codec_context.name != "h264" or (stream.width, stream.height) != (width, height):
                raise VerificationFailed(f"the encoded video is not {width}×{height} H.264")
            count = sum(1 for _ in container.demux(stream) if _.size)
            container.seek(0)
            if sei := find_sei_units(container):
                raise VerificationFailed(f"the encoded video carries {sei[0]}, so nothing was written")
    except VerificationFailed:
        raise
    except (av.FFmpegError, ValueError) as exc:
        raise VerificationFailed(f"the encoded video cannot be read back ({exc})") from None
    if count != frames:
        raise VerificationFailed(f"the encoded video has {count} frames, not {frames}")
