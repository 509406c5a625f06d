"""Videos over time: motion between frames, where the detector looks closely, and tracks carried
forwards and backwards, so a face is covered in every frame it is in although most frames are only
partly looked at."""

from __future__ import annotations

import sys
import tracemalloc
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from blur.detect.views import Areas, Pyramid
from blur.video import VideoSettings, anonymise_video_file
from blur.video.looks import CHANGE_DELAY, ENTER_DELAY, NEVER, REFRESH, Look, LookPlanner, lookahead
from blur.video.motion import FlowGrid, MotionEstimator, first_motion
from blur.video.track import BACK_MARGIN, HOLD_MOST, HOLD_SIGHTED, Candidates, Tracks, hold, misses_allowed
from video_helpers import astronaut_face, write_video

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.wider import box_ssim, grey  # noqa: E402


def scenery(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A faceless textured picture (smoothed noise), so motion can be measured on it."""
    noise = np.random.default_rng(seed).integers(0, 256, (height // 12 + 2, width // 12 + 2, 3), dtype=np.uint8)
    smooth = cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)
    return (50 + smooth.astype(np.uint16) * 140 // 255).astype(np.uint8)  # never a pure colour


def decoded_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


class Squares:
    """A stand-in for CenterFace with partial looks: it finds squares of saturated colour (see
    `square_frames`), but only where its finest level is told to look (or anywhere when told
    nothing), and records every look."""

    name = "squares"

    def __init__(self):
        self.pyramid = Pyramid()
        self.looks: list[float] = []
        """Per frame, the share of cells its finest level looked at."""

    def candidates(self, pixels, where=None):
        saturated = pixels.max(axis=2).astype(int) - pixels.min(axis=2) > 180
        count, _, stats, _ = cv2.connectedComponentsWithStats(saturated.astype(np.uint8))
        boxes = np.array([[x, y, x + w, y + h, 0.9] for x, y, w, h, _ in stats[1:count]], float).reshape(-1, 5)
        areas = where(self.pyramid.scales(pixels.shape[:2])[0]) if where is not None else None
        self.looks.append(1.0 if areas is None else float(areas.cells.mean()))
        return boxes if areas is None else boxes[areas.covers(boxes[:, :4])]

    def bars(self, fused):
        return np.full(len(fused), 0.5)


def square_frames(count: int, shown: range, at=(150, 90), size: int = 24, step: int = 0, seed: int = 0):
    """`count` frames of still scenery with a square of `size` px in the frames `shown` (red and blue
    checks of 4 px: colours the scenery never has, and detail a fill must destroy), moving right by
    `step` px a frame; and its box (x0, y0, x1, y1) per frame."""
    still = scenery(240, 320, seed)
    frames, boxes = [], []
    for i in range(count):
        frame = still.copy()
        x0, y0 = at[0] + step * i, at[1]
        if i in shown:
            frame[y0 : y0 + size, x0 : x0 + size] = checks(size)
        frames.append(frame)
        boxes.append((x0, y0, x0 + size, y0 + size))
    return frames, boxes


def changed_inside(original: np.ndarray, output: np.ndarray, box) -> float:
    x0, y0, x1, y1 = box
    return float(np.abs(original[y0:y1, x0:x1].astype(int) - output[y0:y1, x0:x1]).mean())


def checks(size: int) -> np.ndarray:
    ys, xs = np.mgrid[0:size, 0:size]
    return np.where(((ys // 4 + xs // 4) % 2 == 0)[..., None], (255, 0, 0), (0, 0, 255)).astype(np.uint8)


def square_left(original: np.ndarray, output: np.ndarray, box) -> bool:
    """Whether the square in `box` still shows (the SSIM of its box above 0.5, as benchmarks count it)."""
    x0, y0, x1, y1 = box
    return box_ssim(grey(original), grey(output), [x0, y0, x1 - x0, y1 - y0]) > 0.5


# --- motion -------------------------------------------------------------------------------------------


def test_a_pan_is_measured_and_boxes_are_carried_with_it():
    grid = FlowGrid.for_frame(240, 320)
    picture = scenery(300, 400, seed=3)
    estimator = MotionEstimator(grid)
    estimator.motion(np.ascontiguousarray(picture[20:260, 20:340]))
    motion = estimator.motion(np.ascontiguousarray(picture[23:263, 26:346]))  # the camera moved 6 right, 3 down
    assert not motion.cut
    box = np.array([[100.0, 100.0, 140.0, 140.0]])
    assert motion.carried_forward(box)[0] == pytest.approx([94, 97, 134, 137], abs=1.0)
    assert motion.carried_back(box)[0] == pytest.approx([106, 103, 146, 143], abs=1.0)
    assert motion.changed.mean() < 0.05  # nothing changed: what came in at the edges is planned apart


def test_a_zoom_is_measured():
    grid = FlowGrid.for_frame(240, 320)
    picture = scenery(240, 320, seed=4)
    estimator = MotionEstimator(grid)
    estimator.motion(picture)
    matrix = cv2.getRotationMatrix2D((160, 120), 0, 1.1)
    motion = estimator.motion(cv2.warpAffine(picture, matrix, (320, 240), borderMode=cv2.BORDER_REFLECT))
    assert motion.zoom == pytest.approx(1.1, abs=0.02)
    (carried,) = motion.carried_forward(np.array([[100.0, 80.0, 140.0, 120.0]]))
    assert carried[2] - carried[0] == pytest.approx(44, abs=1.5)


def test_what_appears_is_a_change_and_another_scene_is_a_cut():
    grid = FlowGrid.for_frame(240, 320)
    picture = scenery(240, 320, seed=5)
    estimator = MotionEstimator(grid)
    assert estimator.motion(picture).cut  # the first frame: nothing before it
    appeared = picture.copy()
    appeared[96:160, 128:192] = astronaut_face(64)
    motion = estimator.motion(appeared)
    changed_cells = np.argwhere(motion.changed)
    assert not motion.cut and len(changed_cells)
    margin = 2 * grid.cell  # the flow spreads a little past what changed
    assert (changed_cells * grid.cell >= [96 - margin, 128 - margin]).all()
    assert (changed_cells * grid.cell < [160 + margin, 192 + margin]).all()
    assert estimator.motion(scenery(240, 320, seed=6)).cut


# --- looks --------------------------------------------------------------------------------------------


def test_every_cell_is_looked_at_within_the_refresh_and_a_cut_looks_everywhere():
    grid = FlowGrid.for_frame(1080, 1920)
    planner = LookPlanner(grid, Pyramid())
    still = first_motion(grid)
    still = type(still)(still.back, still.camera, np.zeros_like(still.changed), False, still.factor)
    last_look = np.full(grid.cells, -1)
    shares = []
    for index in range(40):
        looked = planner.plan(index, first_motion(grid) if index == 0 else still).looked
        if index > 0:
            assert (index - last_look[~looked.cells] < REFRESH).all()
        last_look[looked.cells] = index
        shares.append(looked.cells.mean())
    assert shares[0] == shares[1] == 1.0  # the first frame and the next are looked at whole
    assert max(shares[2:]) < 0.5 and np.mean(shares[2:]) == pytest.approx(1 / REFRESH, abs=0.06)


def test_a_changed_cell_is_looked_at_within_the_change_delay():
    grid = FlowGrid.for_frame(240, 320)
    planner = LookPlanner(grid, Pyramid())
    planner.plan(0, first_motion(grid))
    base = first_motion(grid)
    changed = np.zeros_like(base.changed)
    changed[2, 3] = True
    seen = []
    for index in range(1, 1 + CHANGE_DELAY + 1):
        motion = type(base)(base.back, base.camera, changed if index == 1 else np.zeros_like(changed), False, base.factor)
        seen.append(bool(planner.plan(index, motion).looked.cells[2, 3]))
    assert any(seen)


def test_what_comes_into_a_pan_is_looked_at_within_the_enter_delay():
    grid = FlowGrid.for_frame(240, 320)
    planner = LookPlanner(grid, Pyramid())
    picture = scenery(240, 400, seed=9)
    estimator = MotionEstimator(grid)
    looked_at = {}
    for index in range(12):  # the camera pans right 6 px a frame: new cells come in on the right
        motion = estimator.motion(np.ascontiguousarray(picture[:, 6 * index : 6 * index + 320]))
        look = planner.plan(index, motion)
        if look.looked.cells[:, -1].all():
            looked_at[index] = True
    assert 0 in looked_at and all(any(f in looked_at for f in range(i, i + ENTER_DELAY + 1)) for i in range(1, 7))


# --- tracks -------------------------------------------------------------------------------------------


def still_motion(height: int = 240, width: int = 320):
    grid = FlowGrid.for_frame(height, width)
    base = first_motion(grid)
    return type(base)(base.back, base.camera, np.zeros_like(base.changed), False, base.factor)


def look(closely: bool, since: int = NEVER, height: int = 240, width: int = 320) -> Look:
    """A look at the whole frame closely (or nowhere closely), every cell last looked at in `since`."""
    grid = FlowGrid.for_frame(height, width)
    return Look(Areas(np.full(grid.cells, closely), grid.cell), np.full(grid.cells, since))


def found(*boxes, score=0.9, bar=0.5) -> Candidates:
    boxes = np.array([[*box, score] for box in boxes], float).reshape(-1, 5)
    return Candidates(boxes, np.full(len(boxes), bar))


def test_a_face_found_late_is_covered_back_to_the_last_look_at_its_place():
    box = (100, 100, 130, 130)
    for since, first in ((NEVER, 10 - 1 - 6), (5, 5 - BACK_MARGIN + 1)):
        tracks = Tracks(keep=6, height=240, width=320)
        for index in range(10):
            tracks.step(index, still_motion(), found(box) if index == 8 else found(),
                        look(index == 8, since=since if index == 8 else NEVER))
        shown = {index: tracks.boxes_at(index) for index in range(10 - 1 - 6, 10)}
        assert [index for index, boxes in shown.items() if len(boxes)] == list(range(first, 10))
        assert shown[first][0, :4] == pytest.approx(box)


def test_a_face_seen_often_is_held_longer_than_one_seen_once():
    """Not looked at closely after their sightings, faces stay covered for a hold that grows with
    their supports; looked at and not found, a face seen once goes sooner than one seen often."""
    often, once = (60, 60, 90, 90), (200, 60, 230, 90)
    for closely in (False, True):
        tracks = Tracks(keep=4, height=240, width=320)
        covered = {often: [], once: []}
        for index in range(60):
            boxes = [often] if index < 10 else []
            if index == 9:
                boxes.append(once)
            tracks.step(index, still_motion(), found(*boxes, score=0.6), look(closely or index < 10))
            if index >= 4:
                frame = index - 4
                shown = tracks.boxes_at(frame)
                for box in (often, once):
                    if any(abs(b[0] - box[0]) < 5 for b in shown):
                        covered[box].append(frame)
                tracks.release(frame)
        if closely:  # 30-px faces: plain to see
            allowed = misses_allowed(np.array([1, 10]), np.array([1.2, 1.2]), np.array([30, 30]))
            assert max(covered[once]) == 9 + allowed[0] - 1 and max(covered[often]) == 9 + allowed[1] - 1
            assert allowed[1] > allowed[0]
        else:
            assert max(covered[once]) - 9 == HOLD_SIGHTED
            assert max(covered[often]) - 9 == int(hold(np.array([10]))[0]) <= HOLD_MOST


def test_two_faces_side_by_side_stay_two_tracks():
    tracks = Tracks(keep=4, height=240, width=320)
    for index in range(5):
        tracks.step(index, still_motion(), found((0, 0, 40, 40), (60, 0, 100, 40)))
    assert len(tracks.summaries()) == 2
    assert sorted(box[0] for box in tracks.boxes_at(2)) == [0, 60]


def test_a_pan_carries_small_faces_from_frame_to_frame():
    """The camera pans 30 px a frame, more than a 20-px face's width: each face stays one track."""
    grid = FlowGrid.for_frame(480, 960)
    base = first_motion(grid)
    flow = np.zeros_like(base.back)
    flow[..., 0] = -30.0  # what is at x in a frame was at x - 30 in the one before
    pan = type(base)(flow, np.array([[1.0, 0, -30], [0, 1, 0]]), np.zeros_like(base.changed), False, base.factor)
    tracks = Tracks(keep=4, height=480, width=960)
    for index in range(8):
        shift = 30 * index
        tracks.step(index, pan, found((100 + shift, 100, 300 + shift, 300), (400 + shift, 100, 420 + shift, 120),
                                      (500 + shift, 100, 520 + shift, 120), score=0.6))
    assert len(tracks.summaries()) == 3
    assert all(summary["sightings"] == 8 for summary in tracks.summaries())
    (carried,) = pan.carried_forward(np.array([[400.0, 100, 420, 120]]))
    assert carried == pytest.approx([430, 100, 450, 120], abs=0.5)


def test_a_cut_ends_every_track():
    tracks = Tracks(keep=4, height=240, width=320)
    grid = FlowGrid.for_frame(240, 320)
    for index in range(12):
        motion = first_motion(grid) if index == 6 else still_motion()
        tracks.step(index, motion, found((100, 100, 130, 130)) if index < 6 else found())
        if index >= 4:
            shown = tracks.boxes_at(index - 4)
            assert (len(shown) == 1) is (index - 4 < 6), index - 4
            tracks.release(index - 4)


# --- the pipeline ---------------------------------------------------------------------------------------


def test_a_face_that_appears_between_two_looks_is_covered_in_all_its_frames(tmp_path):
    """A face shown for 12 frames that begin between two close looks at its place: found where the
    picture changed, and covered back to its first frame."""
    frames, boxes = square_frames(48, range(19, 31))
    source = write_video(tmp_path / "appears.mp4", frames)
    detector = Squares()
    anonymise_video_file(source, tmp_path / "out.mp4", detector=detector)
    outputs = decoded_frames(tmp_path / "out.mp4")
    assert [i for i in range(19, 31) if square_left(frames[i], outputs[i], boxes[i])] == []
    assert np.mean(detector.looks[1:]) < 0.5  # most of each frame was not looked at closely


def test_a_real_face_walking_in_is_covered_in_every_frame(tmp_path):
    """The real detector: a 30-px face (under the size the coarse levels look for) walks into a still
    picture; it is covered in every frame it shows in, though each frame is only partly looked at."""
    still = scenery(240, 320, seed=7)
    face = astronaut_face(30)
    frames, boxes = [], []
    for i in range(40):
        frame = still.copy()
        x0 = -30 + 6 * i
        left, right = max(x0, 0), min(x0 + 30, 320)
        if right > left:
            frame[100:130, left:right] = face[:, left - x0 : right - x0]
        frames.append(frame)
        boxes.append((x0, 100, 30, 30))
    source = write_video(tmp_path / "walk.mp4", frames)
    anonymise_video_file(source, tmp_path / "out.mp4")
    for index, (original, output) in enumerate(zip(frames, decoded_frames(tmp_path / "out.mp4"))):
        x0, y0, w, h = boxes[index]
        if x0 < 0 or x0 + w > 320:
            continue  # partly outside the picture
        assert box_ssim(grey(original), grey(output), [x0, y0, w, h]) <= 0.5, f"frame {index}"


def test_a_cut_drops_the_boxes_held_from_before_it(tmp_path):
    first, boxes = square_frames(10, range(10), seed=1)
    second, _ = square_frames(12, range(0), seed=2)  # another scene, nothing where the square was
    source = write_video(tmp_path / "cut.mp4", first + second)
    anonymise_video_file(source, tmp_path / "out.mp4", detector=Squares())
    outputs = decoded_frames(tmp_path / "out.mp4")
    box, elsewhere = boxes[0], (20, 20, 44, 44)
    assert not any(square_left(first[i], outputs[i], box) for i in range(10))
    assert all(changed_inside(second[i], outputs[10 + i], box) < changed_inside(second[i], outputs[10 + i], elsewhere) + 4
               for i in range(12))


def test_memory_does_not_grow_with_the_length_of_a_video(tmp_path):
    """Frames, tracks and motions kept are bounded by the look-ahead, not by the video's length."""

    def peak(count: int) -> int:
        # a still picture with a square going back and forth across it: one face, however long
        frames, _ = square_frames(count, range(count), at=(20, 90), size=20, seed=8)
        for i, frame in enumerate(frames):
            x0 = 20 + abs((i * 5) % 500 - 250)
            frame[:] = frames[0] if i else frame
            frame[90:110, 20:290] = scenery(240, 320, seed=8)[90:110, 20:290]
            frame[90:110, x0 : x0 + 20] = checks(20)
        source = write_video(tmp_path / f"long{count}.mp4", frames)
        tracemalloc.start()
        anonymise_video_file(source, tmp_path / f"out{count}.mp4", detector=Squares())
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    short, long = peak(60), peak(360)
    assert long < short * 1.25, (short, long)


def test_settings_refuse_a_refresh_beyond_the_look_ahead():
    from blur.errors import InvalidSetting

    for bad in (0, REFRESH + 1, 2.5, True):
        with pytest.raises(InvalidSetting):
            VideoSettings(refresh=bad)
    assert lookahead(REFRESH) > REFRESH
