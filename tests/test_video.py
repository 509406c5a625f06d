"""Videos: every face destroyed in every frame, nothing else of the file kept, nothing partial left."""

from __future__ import annotations

import io
import json
import re
import shutil
import struct
import subprocess
import sys
import threading
from pathlib import Path

import av
import numpy as np
import pytest

from blur.anonymise import anonymise
from blur.batch import run_batch
from blur.jobs import plan_jobs
from blur.report import Status
from blur.regions import regions_from_detections
from blur.detect import Detection, load_detector
from blur.errors import InvalidSetting, UnreadableVideo, VerificationFailed, VideoTooLong
from blur.pipeline import Settings
from blur.video import VideoLimits, VideoSettings, anonymise_video_file
from blur.video.decode import VideoReader
from blur.video.pipeline import Stopped, snapped
from blur.video.verify import find_box_problems, find_forbidden_bytes, find_sei_units, verify_video_output, walk_boxes
from blur_cli.main import main
from conftest import require_command
from video_helpers import (all_markers, astronaut_face, background, cut_short, moving_face_frames, trimmed,
                           write_video)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.wider import box_ssim, grey  # noqa: E402


def decoded_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


class Missing:
    """The real detector, made to miss every face in the frames (by call count) given."""

    def __init__(self, misses: set[int], inner=None):
        self.inner = inner or load_detector()
        self.name = "missing"
        self.misses = misses
        self.calls = 0

    def detect(self, pixels):
        index, self.calls = self.calls, self.calls + 1
        return [] if index in self.misses else self.inner.detect(pixels)


class Fixed:
    """A detector that finds `box` (x0, y0, x1, y1) in every frame, moved by `jitter` px at random;
    with `interrupt_at`, Ctrl-C arrives in that frame."""

    name = "fixed"

    def __init__(self, box=None, jitter: int = 0, interrupt_at: int | None = None):
        self.box, self.jitter, self.interrupt_at = box, jitter, interrupt_at
        self.calls = 0
        self.random = np.random.default_rng(1)

    def detect(self, pixels):
        self.calls += 1
        if self.calls == self.interrupt_at:
            raise KeyboardInterrupt
        if self.box is None:
            return []
        dx, dy = self.random.integers(-self.jitter, self.jitter + 1, 2) if self.jitter else (0, 0)
        x0, y0, x1, y1 = self.box
        return [Detection(x0 + dx, y0 + dy, x1 + dx, y1 + dy, 0.9)]


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    frames, _ = moving_face_frames(20)
    path = tmp_path_factory.mktemp("planted") / "IMG_0042.MOV"
    return write_video(path, frames, planted=True, audio=True, format="mov")


# --- nothing copied ----------------------------------------------------------------------------------


@pytest.mark.parametrize("keep_audio", [False, True])
def test_planted_metadata_is_gone(planted, tmp_path, keep_audio):
    require_command("ffprobe", "apt-get install ffmpeg")
    require_command("exiftool", "apt-get install libimage-exiftool-perl")
    source = planted.read_bytes()
    markers = [m for m in all_markers() if m in source]
    assert len(markers) >= 7  # the planting worked: title, location, make, model, comment, handler, chapter...
    assert find_box_problems(planted)  # and `blur check`'s walk sees it
    output = tmp_path / "out.mp4"
    result = anonymise_video_file(planted, output, VideoSettings(keep_audio=keep_audio))
    data = output.read_bytes()
    assert [m for m in markers if m in data] == []
    assert b"x264" not in data and b"Lavf" not in data and b"Lavc" not in data
    assert find_box_problems(output) == []
    assert result.audio is keep_audio and result.frames == 20
    with av.open(str(output)) as container:
        assert sorted(s.type for s in container.streams) == sorted(["video"] + ["audio"] * keep_audio)
        assert not container.chapters()
        tags = dict(container.metadata)
        assert set(tags) <= {"major_brand", "minor_version", "compatible_brands"}
        for stream in container.streams:
            assert set(stream.metadata) <= {"language", "handler_name", "vendor_id"}
            assert stream.metadata.get("handler_name") in ("VideoHandler", "SoundHandler")
        if keep_audio:
            assert container.streams.audio[0].codec_context.name == "aac"
    probe = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-show_chapters", "-of", "json", str(output)],
        capture_output=True, check=True).stdout)
    assert probe["chapters"] == [] and len(probe["streams"]) == 1 + keep_audio
    assert "creation_time" not in json.dumps(probe) and "encoder" not in probe["format"].get("tags", {})
    listing = subprocess.run(["exiftool", "-a", "-G1", "-s", "-ee3", "-u", "-U", str(output)],
                             capture_output=True, text=True, check=True).stdout
    assert not any(m.decode() in listing for m in markers)
    dates = [line for line in listing.splitlines() if "Date" in line and "[System]" not in line]
    assert dates and all("0000:00:00 00:00:00" in line for line in dates)
    for word in ("GPS", "Make", "Model", "Software", "Encoder", "Title", "Chapter", "Rotation      : 9"):
        assert word not in listing.replace("[Composite]     Rotation                        : 0", "")


def test_an_output_with_anything_but_pictures_and_sound_is_refused(planted):
    with pytest.raises(VerificationFailed, match="more than pictures and sound"):
        verify_video_output(planted, 20, 320, 240, audio=True)


def test_an_encoder_name_is_found_in_the_boxes_but_chance_bytes_in_the_pictures_do_not_fail_a_video(tmp_path):
    """Four given bytes turn up by chance about once in 4 GB of coded pictures: a long video must not fail on them."""
    frames, _ = moving_face_frames(8)
    output = anonymise_video_file(write_video(tmp_path / "in.mp4", frames), tmp_path / "out.mp4").output
    data = bytearray(output.read_bytes())
    with open(output, "rb") as handle:
        mdat = next(box for box in walk_boxes(handle) if box.path == "mdat")
    data[mdat.offset + mdat.size // 2 : mdat.offset + mdat.size // 2 + 4] = b"Lavf"
    chance = tmp_path / "chance.mp4"
    chance.write_bytes(bytes(data))
    assert find_forbidden_bytes(chance) == []
    named = tmp_path / "named.mp4"
    named.write_bytes(bytes(data) + struct.pack(">I4s", 16, b"free") + b"Lavf60.3")
    assert [f.detail for f in find_forbidden_bytes(named)] == ["Lavf"]


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def with_boxes_in_moov(path: Path, extra: bytes) -> Path:
    """The MOV at `path` (its `moov` box last, as FFmpeg writes it) with `extra` boxes added inside `moov`."""
    data = bytearray(path.read_bytes())
    with open(path, "rb") as handle:
        moov = next(b for b in walk_boxes(handle) if b.path == "moov")
    assert moov.offset + moov.size == len(data)
    data[moov.offset : moov.offset + 4] = struct.pack(">I", moov.size + len(extra))
    path.write_bytes(bytes(data) + extra)
    return path


def test_quicktime_tags_and_user_data_ends_are_read_as_quicktime_writes_them(tmp_path):
    """Apple's `meta` holds its boxes straight after its header (ISO's has 4 more bytes), as phones and
    exiftool write it; QuickTime ends a user data list with 4 zero bytes. Neither is a damaged file."""
    source = write_video(tmp_path / "clip.mov", moving_face_frames(4, 120, 160, 48, 1)[0], format="mov")
    before = find_box_problems(source)
    key = b"com.apple.quicktime.location.ISO6709"
    meta = box(b"meta", box(b"hdlr", bytes(8) + b"mdta" + bytes(12))
                        + box(b"keys", bytes(4) + struct.pack(">I", 1) + box(b"mdta", key))
                        + box(b"ilst", box(struct.pack(">I", 1), box(b"data", struct.pack(">II", 1, 0) + b"+12.3456+065.4321/"))))
    path = with_boxes_in_moov(source, meta + box(b"udta", bytes(4)))
    findings = find_box_problems(path)
    assert {(f.kind, f.detail) for f in findings} >= {("tags", "moov/meta/keys"),
                                                      ("tags (title, location, dates, device, software, ...)",
                                                       "moov/meta/ilst")}
    out, err = io.StringIO(), io.StringIO()
    assert main(["check", "--no-faces", str(path)], out, err) == 1
    assert "moov/meta/ilst" in out.getvalue() and "damaged" not in out.getvalue()
    assert [f for f in findings if not f.detail.startswith("moov/meta")] == before  # the ended user data is no finding


def test_sei_units_are_found_in_a_plain_x264_video_and_not_in_ours(tmp_path):
    frames, _ = moving_face_frames(4)
    plain = write_video(tmp_path / "plain.mp4", frames)  # libx264 writes its version and options in an SEI unit
    with av.open(str(plain)) as container:
        assert find_sei_units(container)
    output = anonymise_video_file(plain, tmp_path / "out.mp4").output
    with av.open(str(output)) as container:
        assert find_sei_units(container) == []


# --- every face, every frame -------------------------------------------------------------------------


def test_a_moving_face_is_covered_in_every_frame_also_where_the_detector_misses_it(tmp_path):
    frames, boxes = moving_face_frames(30)
    source = write_video(tmp_path / "walk.mp4", frames)
    detector = Missing({0, 1, 12, 13, 29})  # the first two frames, two in the middle, the last
    result = anonymise_video_file(source, tmp_path / "walk.blurred.mp4", detector=detector)
    assert detector.calls == 30 and result.frames == 30 and len(result.faces) == 1
    for index, (original, output) in enumerate(zip(frames, decoded_frames(tmp_path / "walk.blurred.mp4"))):
        x0, y0, x1, y1 = boxes[index]
        similarity = box_ssim(grey(original), grey(output), [x0, y0, x1 - x0, y1 - y0])
        assert similarity <= 0.5, f"frame {index}: the face is still visible (SSIM {similarity:.2f})"


def test_a_face_found_once_every_few_frames_is_covered_in_all_of_them_and_then_let_go(tmp_path):
    """A detector that looks at every frame whole finds the face in frames 8, 17 and 27 only (gaps
    of up to the frames kept): covered from two frames before the first sighting to the last, then
    held through the looks that may still miss it, then let go."""
    from blur.video.looks import lookahead
    from blur.video.track import BACK_MARGIN, misses_allowed

    frames = [background(240, 320)] * 50
    source = write_video(tmp_path / "still.mp4", frames)
    box = (120, 80, 200, 160)
    seen = {8, 17, 27}
    assert max(b - a for a, b in zip(sorted(seen), sorted(seen)[1:])) <= lookahead()

    class Sometimes(Fixed):
        frame = -1

        def detect(self, pixels):
            self.frame += 1
            return super().detect(pixels) if self.frame in seen else []

    anonymise_video_file(source, tmp_path / "out.mp4", detector=Sometimes(box))
    changed = [float(np.abs(grey(a)[80:160, 120:200] - grey(b)[80:160, 120:200]).mean())
               for a, b in zip(frames, decoded_frames(tmp_path / "out.mp4"))]
    covered = [i for i, c in enumerate(changed) if c > 4]
    held = int(misses_allowed(np.array([3]), np.array([1.0]), np.array([80]))[0])
    assert covered == list(range(8 - BACK_MARGIN, 27 + held))


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_is_applied_to_the_pixels(tmp_path, rotation):
    frame = background(48, 64)
    frame[:12, :12] = 255  # a white corner, top left as stored
    source = write_video(tmp_path / "turned.mp4", [frame] * 3, rotation=rotation)
    result = anonymise_video_file(source, tmp_path / "out.mp4", detector=Fixed())
    expected = np.rot90(frame, rotation // 90)
    (first, *_) = decoded_frames(tmp_path / "out.mp4")
    assert (result.height, result.width) == expected.shape[:2] == first.shape[:2]
    assert np.abs(first.astype(int) - expected).mean() < 6
    assert find_box_problems(tmp_path / "out.mp4") == []  # identity display matrix


# --- irreversible across frames ----------------------------------------------------------------------


def detail(pixels: np.ndarray) -> np.ndarray:
    """What a 3×3 grid of cell means cannot say: the grey image minus its own smooth version."""
    import cv2

    g = grey(pixels)
    return g - cv2.GaussianBlur(g, (0, 0), g.shape[0] / 8)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


class NoNoise:
    """A generator whose noise is all zeros: the fill then shows the 3×3 cell colours alone."""

    def normal(self, loc, scale, size):
        return np.zeros(size)

    def standard_normal(self, size, dtype=np.float64):
        return np.zeros(size, dtype)


def test_averaging_frames_of_a_still_face_recovers_nothing(tmp_path):
    face = astronaut_face(96)
    frame = background(240, 320)
    frame[72:168, 112:208] = face
    source = write_video(tmp_path / "still.mp4", [frame] * 30)
    # The detector's box jitters by a few pixels, as a real one does on a still face.
    anonymise_video_file(source, tmp_path / "out.mp4", detector=Fixed((120, 80, 200, 160), jitter=3))
    inner = (slice(90, 150), slice(130, 190))  # eyes, nose and mouth: inside every region drawn
    outputs = [f[inner].astype(np.float64) for f in decoded_frames(tmp_path / "out.mp4")]
    truth = detail(frame[inner])
    one = max(abs(correlation(detail(output), truth)) for output in outputs)
    average = abs(correlation(detail(np.mean(outputs, axis=0)), truth))
    # The most any number of frames could give: the cell colours themselves, without noise.
    regions = [snapped(r) for r in regions_from_detections([Detection(120, 80, 200, 160, 0.9)], 240, 320, 1.5)]
    cells_only = abs(correlation(detail(anonymise(frame, regions, rng=NoNoise())[inner]), truth))
    assert one < 0.2 and average <= cells_only + 0.01, (one, average, cells_only)


def test_regions_are_snapped_outwards_to_a_grid():
    from blur.regions import Region

    region = snapped(Region(17, 31, 50, 64, 0.5, "x"), 16)
    assert (region.x0, region.y0, region.x1, region.y1) == (16, 16, 64, 64)
    assert (region.score, region.source) == (0.5, "x")


# --- failures leave nothing --------------------------------------------------------------------------


def leftovers(folder: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


def test_ctrl_c_in_the_middle_of_a_video_leaves_no_file(tmp_path):
    source = write_video(tmp_path / "clip.mp4", moving_face_frames(30)[0])
    with pytest.raises(KeyboardInterrupt):
        anonymise_video_file(source, tmp_path / "clip.blurred.mp4", detector=Fixed(interrupt_at=20))
    assert leftovers(tmp_path, {"clip.mp4"}) == []


def test_a_stop_request_drops_the_video_in_progress(tmp_path):
    source = write_video(tmp_path / "clip.mp4", moving_face_frames(30)[0])
    stop = threading.Event()
    with pytest.raises(Stopped):
        anonymise_video_file(source, tmp_path / "clip.blurred.mp4", detector=Fixed(),
                             stop=stop, progress=lambda p: p.frames > 3 and stop.set())
    assert leftovers(tmp_path, {"clip.mp4"}) == []


@pytest.mark.parametrize("damage", ["truncated", "cut index", "cut pictures", "garbage", "empty"])
def test_damaged_videos_fail_alone_with_a_clear_reason(tmp_path, damage):
    good = write_video(tmp_path / "good.mp4", moving_face_frames(20)[0]).read_bytes()
    if damage == "cut pictures":  # the index first (as blur and most phones write it), pictures cut short
        anonymise_video_file(tmp_path / "good.mp4", tmp_path / "indexed.mp4", detector=Fixed())
        indexed = (tmp_path / "indexed.mp4").read_bytes()
        (tmp_path / "indexed.mp4").unlink()
    damaged = {"truncated": good[: len(good) * 2 // 3], "cut index": good[:-200],
               "cut pictures": indexed[: len(indexed) * 2 // 3] if damage == "cut pictures" else b"",
               "garbage": b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40, "empty": b""}[damage]
    (tmp_path / "bad.mp4").write_bytes(damaged)
    with pytest.raises(UnreadableVideo, match="damaged|truncated"):
        anonymise_video_file(tmp_path / "bad.mp4", tmp_path / "bad.blurred.mp4", detector=Fixed())
    outcomes = {o.source.name: o for o in run_batch(plan_jobs([tmp_path]), workers=1)}
    assert outcomes["bad.mp4"].status is Status.FAILED and re.search("damaged|truncated", outcomes["bad.mp4"].error)
    assert outcomes["good.mp4"].status is Status.DONE
    assert leftovers(tmp_path, {"good.mp4", "bad.mp4", "good.blurred.mp4"}) == []


def test_a_video_over_the_limits_is_refused(tmp_path):
    source = write_video(tmp_path / "long.mp4", moving_face_frames(12)[0])
    with pytest.raises(VideoTooLong, match="frames"):
        anonymise_video_file(source, tmp_path / "out.mp4", VideoSettings(limits=VideoLimits(max_frames=10)),
                             detector=Fixed())
    with pytest.raises(VideoTooLong, match="megapixels"):
        anonymise_video_file(source, tmp_path / "out.mp4", VideoSettings(limits=VideoLimits(max_frame_pixels=1000)),
                             detector=Fixed())
    assert leftovers(tmp_path, {"long.mp4"}) == []


def test_video_settings_are_checked():
    with pytest.raises(InvalidSetting):
        VideoSettings(keep_audio="yes")
    with pytest.raises(InvalidSetting):
        VideoSettings(limits=VideoLimits(max_frames=0))
    with pytest.raises(InvalidSetting):
        VideoSettings(photo={"method": "mosaic"})
    assert VideoSettings().photo == Settings()  # every frame looked at as closely as a photo


# --- the command line --------------------------------------------------------------------------------


def test_blur_a_video_and_a_folder_from_the_command_line(tmp_path, planted):
    shutil.copy(planted, tmp_path / "clip.mov")
    out, err = io.StringIO(), io.StringIO()
    assert main([str(tmp_path / "clip.mov")], out, err) == 0
    assert (tmp_path / "clip.blurred.mp4").exists()
    assert re.search(r"clip\.blurred\.mp4 \(1 person seen over 20 frames \(\d\d regions\), no sound\)", out.getvalue())
    assert "1 file: 1 anonymised (1 person seen in videos)" in err.getvalue()
    assert "(faces looked for from 10 px tall)" in err.getvalue()
    (tmp_path / "other.avi").write_bytes(b"RIFF")
    out, err = io.StringIO(), io.StringIO()
    report = tmp_path.parent / f"{tmp_path.name}-report.json"
    assert main([str(tmp_path), "-o", str(tmp_path / "out"), "--keep-audio", "--report", str(report)], out, err) == 0
    files = {Path(f["input"]).name: f for f in json.loads(report.read_text())["files"]}
    assert files["clip.mov"]["status"] == "done" and files["clip.mov"]["video"]["audio"] is True
    assert files["other.avi"]["status"] == "not read" and "convert it to MP4" in files["other.avi"]["error"]
    assert "clip.blurred.mp4" not in files  # the tool's own output is never an input
    assert (tmp_path / "out" / "clip.blurred.mp4").exists()


# --- tracking ----------------------------------------------------------------------------------------


def test_the_video_benchmark_skips_cleanly_without_its_data(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "video.py"), "--data", str(tmp_path / "none")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "skipped: no data" in done.stdout


def test_a_face_counts_as_found_one_frame_in_ten_only_if_no_ten_frames_in_a_row_miss_it():
    from benchmarks.video import found_every

    assert found_every([True] + [False] * 9 + [True], 10)
    assert not found_every([True] + [False] * 10 + [True], 10)
    assert not found_every([False] * 5, 10) and found_every([False, True], 10)


@pytest.mark.parametrize("name, codec, audio", [("clip.webm", "libvpx-vp9", False), ("clip.mkv", "libx264", True),
                                                ("clip.3gp", "libx264", False), ("clip.m4v", "libx264", False)])
def test_every_container_phones_write_is_read(tmp_path, name, codec, audio):
    source = write_video(tmp_path / name, moving_face_frames(6)[0], codec=codec, audio=audio,
                         format="mp4" if name.endswith(".m4v") else None)
    result = anonymise_video_file(source, tmp_path / "out.mp4", VideoSettings(keep_audio=True), detector=Fixed())
    assert result.frames == 6 and result.audio is audio
    assert find_box_problems(tmp_path / "out.mp4") == []


def test_check_says_a_video_it_cannot_open_is_unreadable(tmp_path):
    from blur.video.check import check_video

    with pytest.raises(UnreadableVideo, match="cannot read this file"):
        check_video(tmp_path / "missing.mp4")


# --- cut short -----------------------------------------------------------------------------------


FRAGMENTED = {"movflags": "frag_keyframe+empty_moov"}


@pytest.mark.parametrize("name, options, kept", [("clip.mkv", None, 0.5), ("clip.mkv", None, 0.9),
                                                 ("clip.mp4", FRAGMENTED, 0.5), ("clip.mp4", FRAGMENTED, 0.9)])
def test_a_cut_mkv_or_fragmented_mp4_fails_with_nothing_written(tmp_path, name, options, kept):
    """An MKV and a fragmented MP4 do not list every picture up front: cut short (a copy in progress),
    they fail by the time they declare or the pictures their last fragment lists, in `blur` and in a batch."""
    (tmp_path / "whole").mkdir()
    (tmp_path / "in").mkdir()
    whole = write_video(tmp_path / "whole" / name, moving_face_frames(60, 120, 160, 48, 1)[0], rate=15,
                        audio=True, options=options)
    cut = cut_short(whole, kept, tmp_path / "in" / name)
    with pytest.raises(UnreadableVideo, match="truncated video: only"):
        anonymise_video_file(cut, tmp_path / "out.mp4", detector=Fixed())
    (outcome,) = run_batch(plan_jobs([tmp_path / "in"], tmp_path / "out"), workers=1)
    assert outcome.status is Status.FAILED and "truncated video: only" in outcome.error
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [whole, cut]
    assert anonymise_video_file(whole, tmp_path / "whole.mp4", detector=Fixed()).frames == 60


def read_all(path: Path) -> int:
    with VideoReader(path) as reader:
        return sum(kind == "video" for kind, _, _ in reader.packets())


JITTER = [0.0] + list(np.cumsum(np.random.default_rng(3).uniform(0.5, 1.8, 29) / 30))
"""Frame times of a phone's variable frame rate: 15 to 54 frames a second."""


@pytest.mark.parametrize("name, options", [
    ("sound longer.mkv", {"audio": True, "more_sound": 0.5}),
    ("variable rate.mkv", {"times": JITTER}),
    ("variable rate, sound longer.webm", {"codec": "libvpx-vp9", "times": JITTER}),
    ("fragmented, sound longer.mp4", {"audio": True, "more_sound": 0.5, "options": FRAGMENTED}),
    ("variable rate, sound longer.mov", {"audio": True, "more_sound": 0.5, "times": JITTER}),
])
def test_whole_videos_that_end_a_little_before_their_container_says_are_read(tmp_path, name, options):
    """Sound that outlasts the pictures, and a last frame whose time is its own, are not a cut."""
    path = write_video(tmp_path / name, moving_face_frames(30, 120, 160, 48, 1)[0], **options)
    assert read_all(path) == 30


def test_a_video_trimmed_by_an_edit_list_is_read_although_its_index_lists_more_pictures(tmp_path):
    """Cut without re-encoding, a video keeps the pictures from the keyframe before the cut, which its
    edit list skips: they are in the file, and the video is whole."""
    source = write_video(tmp_path / "source.mp4", moving_face_frames(30, 120, 160, 48, 1)[0])
    path = trimmed(source, 0.4, tmp_path / "trimmed.mp4")
    with av.open(str(path)) as container:
        assert container.streams.video[0].frames == 30  # all listed, 12 of them before the cut
    assert read_all(path) == 18
    assert anonymise_video_file(path, tmp_path / "out.mp4", detector=Fixed()).frames == 18


# --- files with no video picture -----------------------------------------------------------------


def sound_only(path: Path, format: str, cover: bool = False) -> Path:
    """A file holding a second of sound (an M4A, an MKV of a recording); with `cover`, cover art too."""
    with av.open(str(path), "w", format=format) as container:
        sound = container.add_stream("aac", rate=16000, layout="mono")
        if cover:  # a picture stream marked as the cover: one JPEG, no video
            art = container.add_stream("mjpeg", rate=1)
            art.width, art.height, art.pix_fmt = 64, 64, "yuvj420p"
            art.disposition = av.stream.Disposition.attached_pic
            picture = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")
            container.mux(art.encode(picture.reformat(format="yuvj420p")) + art.encode())
        for _ in range(16):
            chunk = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            chunk.sample_rate = 16000
            container.mux(sound.encode(chunk))
        container.mux(sound.encode())
    return path


def camera_raw_like(path: Path) -> Path:
    """An ISO-BMFF file of a brand no player knows, whose one track holds pictures in a coding no
    decoder knows, as a Canon CR3 (renamed .mov) does."""
    made = write_video(path.with_suffix(".tmp.mp4"), moving_face_frames(4, 120, 160, 48, 1)[0])
    data = made.read_bytes().replace(b"ftypisom", b"ftypcrx ", 1).replace(b"avc1", b"CRAW")
    made.unlink()
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("name", ["IMG_0001.mov", "song.mp4", "album.mp4", "recording.mkv"])
def test_a_file_with_no_video_picture_fails_with_one_clear_line_in_blur_and_check(tmp_path, name):
    path = {"IMG_0001.mov": lambda p: camera_raw_like(p), "song.mp4": lambda p: sound_only(p, "mp4"),
            "album.mp4": lambda p: sound_only(p, "mp4", cover=True),
            "recording.mkv": lambda p: sound_only(p, "matroska")}[name](tmp_path / name)
    out, err = io.StringIO(), io.StringIO()
    assert main([str(path)], out, err) == 1
    assert out.getvalue().splitlines() == [f"FAILED   {path}: no video picture in this file"]
    out, err = io.StringIO(), io.StringIO()
    assert main(["check", str(path)], out, err) == 1
    assert out.getvalue().splitlines() == [f"ERROR    {path}: no video picture in this file"]
    assert "0 clean, 0 with something found, 1 could not be checked" in err.getvalue()
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_an_unknown_precision_is_a_usage_error_before_a_video_is_opened(planted, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BLUR_PRECISION", "bf16")
    assert main([str(planted), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "BLUR_PRECISION must be one of auto, f32" in err and "FAILED" not in err
    assert not (tmp_path / "out").exists()
