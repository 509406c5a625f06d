"""The command line, run in-process: messages, exit codes, reports, never overwriting."""

from __future__ import annotations

import importlib
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from blur.detect import load_detector
from blur.detect.centerface import DEFAULT_THRESHOLD, FAST_MIN_FACE, MIN_FACE
from blur_cli.lines import printable
from blur_cli.main import build_parser, main
from blur_cli.options import ExitStatus, detector_options_from
from conftest import SAMPLES


def run(*argv: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout, stderr)
    return code, stdout.getvalue(), stderr.getvalue()


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    shutil.copytree(SAMPLES, folder)
    return folder


def test_anonymises_a_folder_and_reports(photos, tmp_path):
    report = tmp_path / "report.json"
    code, out, err = run(str(photos), "-o", str(tmp_path / "out"), "--report", str(report))
    assert code == ExitStatus.OK
    assert out.count("done ") == 3 and "crowd.png" in out
    assert "3 anonymised" in err
    data = json.loads(report.read_text())
    assert {f["status"] for f in data["files"]} == {"done"}
    assert sum(len(f["faces"]) for f in data["files"]) >= 3
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "astronaut.blurred.jpg", "crowd.blurred.png", "hopper-sideways.blurred.jpg"]


def test_one_bad_file_gives_exit_status_1_and_the_rest_done(photos):
    (photos / "broken.jpg").write_bytes(b"not an image")
    code, out, _ = run(str(photos), "-j", "1")
    assert code == ExitStatus.SOME_FAILED
    assert "FAILED   " in out and "broken.jpg" in out
    assert out.count("done ") == 3
    assert not (photos / "broken.blurred.jpg").exists()


def test_running_again_skips_and_keeps_originals(photos):
    originals = {p.name: p.read_bytes() for p in photos.iterdir()}
    assert run(str(photos), "-j", "1")[0] == ExitStatus.OK
    code, out, _ = run(str(photos), "-j", "1")
    assert code == ExitStatus.OK and out.count("skipped ") == 3
    assert all((photos / name).read_bytes() == data for name, data in originals.items())


@pytest.mark.parametrize("argv", [[], ["--method", "blurry", "x.jpg"], ["--threshold", "2", "x.jpg"]])
def test_usage_errors_exit_with_2(argv, capsys):
    assert run(*argv)[0] == ExitStatus.USAGE


@pytest.mark.parametrize("command", [[], ["watch", "out"], ["review", "--no-browser"]])
@pytest.mark.parametrize("option", [["--padding", "0.3"], ["--padding", "-3"], ["--padding", "nan"],
                                    ["--threshold", "0"], ["--threshold", "inf"], ["--quality", "0"]])
def test_settings_that_weaken_protection_are_usage_errors(photos, tmp_path, command, option, capsys):
    argv = [*command[:1], str(photos / "astronaut.jpg"), *command[1:]]
    if command and command[0] == "watch":
        argv = ["watch", str(photos), str(tmp_path / "out")]
    code, out, err = run(*argv, *option)
    assert code == ExitStatus.USAGE
    assert option[0] in capsys.readouterr().err + err
    assert not list(photos.glob("*.blurred.*")) and not (tmp_path / "out").exists()


def test_a_tiny_pixel_limit_is_a_usage_error(photos):
    code, _, err = run(str(photos / "astronaut.jpg"), "--max-megapixels", "1e-9")
    assert code == ExitStatus.USAGE and "max_pixels" in err


def test_an_empty_folder_is_a_usage_error(tmp_path):
    code, _, err = run(str(tmp_path))
    assert code == ExitStatus.USAGE and "no photos" in err


def test_solid_method_and_rectangle_shape(photos, tmp_path):
    report = tmp_path / "r.csv"
    code, _, _ = run(str(photos / "astronaut.jpg"), "--method", "solid", "--shape", "rectangle", "--report", str(report))
    assert code == ExitStatus.OK
    assert "solid" in report.read_text()


def test_file_names_are_printed_safely():
    assert printable("evil\x1b[2Jname\n.jpg") == "evil\\x1b[2Jname\\n.jpg"
    assert printable("caf\udcc3.jpg") == "caf\\xc3.jpg"
    assert printable("фото.jpg") == "фото.jpg"


@pytest.mark.parametrize("command", ["main", "watch", "review"])
def test_every_detecting_command_takes_the_same_detection_options(command):
    parser = importlib.import_module(f"blur_cli.{command}").build_parser()
    paths = ["in", "out"] if command == "watch" else ["photos"]
    args = parser.parse_args([*paths, "--fast", "--threshold", "0.3"])
    detector = load_detector(args.detector, **detector_options_from(args))
    assert detector.pyramid.min_face == FAST_MIN_FACE
    assert detector.threshold.base == 0.3
    chosen = load_detector(args.detector, **detector_options_from(parser.parse_args([*paths, "--min-face", "24"])))
    assert chosen.pyramid.min_face == 24
    default = load_detector(args.detector, **detector_options_from(parser.parse_args(paths)))
    assert default.pyramid.min_face == MIN_FACE
    assert default.threshold.base == DEFAULT_THRESHOLD


@pytest.mark.parametrize("options, smallest", [((), "10"), (("--fast",), "20"), (("--min-face", "24"), "24")])
def test_the_summary_says_from_what_size_faces_were_looked_for(tmp_path, options, smallest):
    source = tmp_path / "astronaut.jpg"
    shutil.copy(SAMPLES / "astronaut.jpg", source)
    code, _, err = run(str(source), "-o", str(tmp_path / "out"), *options)
    assert code == ExitStatus.OK
    assert f"faces looked for from {smallest} px tall" in err


def test_a_smallest_face_out_of_range_is_refused(tmp_path, capsys):
    code, _, _ = run(str(tmp_path), "--min-face", "2")
    assert code == ExitStatus.USAGE and "--min-face" in capsys.readouterr().err


def test_the_summary_counts_one_face_in_the_singular(tmp_path):
    shutil.copy(SAMPLES / "astronaut.jpg", tmp_path / "astronaut.jpg")
    code, _, err = run(str(tmp_path / "astronaut.jpg"))
    assert code == ExitStatus.OK
    assert "1 photo: 1 anonymised" in err and "1 face destroyed" in err, err


def test_help_lists_every_subcommand(capsys):
    assert run("--help")[0] == ExitStatus.OK
    out = capsys.readouterr().out  # argparse prints help on the process's stdout
    for command in ("review", "check", "watch"):
        assert f"  blur {command} " in out
        assert run(command, "--help")[0] == ExitStatus.OK


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="POSIX permissions")
@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_outputs_follow_the_umask_and_reports_stay_private(photos, tmp_path, umask):
    previous = os.umask(umask)
    try:
        code, _, err = run(str(photos / "astronaut.jpg"), "-o", str(tmp_path / "out"), "--report", str(tmp_path / "r.json"))
    finally:
        os.umask(previous)
    assert code == ExitStatus.OK, err
    assert stat.S_IMODE((tmp_path / "out" / "astronaut.blurred.jpg").stat().st_mode) == 0o666 & ~umask
    assert stat.S_IMODE((tmp_path / "r.json").stat().st_mode) == 0o600


def test_a_report_inside_the_output_folder_is_refused_with_random_names_and_noted_without(photos, tmp_path):
    out = tmp_path / "out"
    code, _, err = run(str(photos), "-o", str(out), "--random-names", "--report", str(out / "report.json"))
    assert code == ExitStatus.USAGE and "inside the output folder" in err and "random name" in err
    assert not out.exists()
    code, _, err = run(str(photos / "astronaut.jpg"), "-o", str(out), "--report", str(out / "report.json"))
    assert code == ExitStatus.OK and "note: the report" in err and (out / "report.json").is_file()
    code, _, err = run(str(photos / "astronaut.jpg"), "-o", str(out), "--random-names", "--report", str(tmp_path / "r.json"))
    assert code == ExitStatus.OK and "note" not in err


def test_a_resumed_run_does_not_say_no_faces_were_destroyed(photos):
    assert run(str(photos / "astronaut.jpg"), "-j", "1")[0] == ExitStatus.OK
    code, _, err = run(str(photos / "astronaut.jpg"), "-j", "1")
    assert code == ExitStatus.OK
    assert "1 photo: 0 anonymised (0 faces destroyed), 1 already done earlier, 0 failed" in err


def test_files_that_are_not_photos_are_counted_and_listed_in_the_report(photos, tmp_path):
    for name in ("IMG_1.CR2", "IMG_2.dng", "clip.avi", "notes.txt"):
        (photos / name).write_bytes(b"not read")
    report = tmp_path / "r.json"
    code, out, err = run(str(photos), "-o", str(tmp_path / "out"), "--report", str(report), "-j", "1")
    assert code == ExitStatus.OK, err
    assert "3 photos: 3 anonymised" in err
    assert (f"Not read: 2 camera raw files ({photos / 'IMG_1.CR2'}, {photos / 'IMG_2.dng'}): export them as JPEG or "
            f"TIFF first, 1 video in a format not read ({photos / 'clip.avi'}): convert it to MP4, 1 other file "
            f"({photos / 'notes.txt'})\n") in err
    assert "IMG_1" not in out  # listed in the report, not one line each
    files = {Path(f["input"]).name: f for f in json.loads(report.read_text())["files"]}
    assert {name for name, f in files.items() if f["status"] == "not read"} == {"IMG_1.CR2", "IMG_2.dng", "clip.avi", "notes.txt"}
    assert json.loads(report.read_text())["summary"]["not read"] == 4


@pytest.mark.parametrize("name", ["tape.dv", "recording.wtv", "clip.rm", "clip.rmvb", "film.asf", "tv.dvr-ms"])
def test_videos_in_other_formats_are_counted_as_videos_not_read(tmp_path, name):
    (tmp_path / name).write_bytes(b"not read")
    _, _, err = run(str(tmp_path))
    assert f"Not read: 1 video in a format not read ({tmp_path / name}): convert it to MP4" in err, err
    code, out, _ = run(str(tmp_path / name))
    assert code == ExitStatus.SOME_FAILED and "a video in a format this tool does not read" in out, out


def test_a_raw_file_given_by_name_fails_clearly(photos):
    (photos / "IMG_1.dng").write_bytes(b"II*\x00\x08\x00\x00\x00")
    code, out, _ = run(str(photos / "IMG_1.dng"))
    assert code == ExitStatus.SOME_FAILED and "camera raw file" in out and "export it as JPEG or TIFF" in out


@pytest.mark.parametrize("typo, command", [("chek", "check"), ("reveiw", "review"), ("wach", "watch")])
def test_a_misspelt_command_is_a_usage_error_that_names_the_command(tmp_path, typo, command):
    code, out, err = run(typo, str(tmp_path))
    assert code == ExitStatus.USAGE and out == ""
    assert f"did you mean 'blur {command}'" in err and err.count("\n") == 1, err


def test_a_missing_path_is_a_usage_error_before_any_work(photos):
    code, out, err = run(str(photos), str(photos / "nosuch.jpg"))
    assert code == ExitStatus.USAGE and out == "" and err.count("\n") == 1
    assert "nosuch.jpg" in err and "no such file or folder" in err
    assert not list(photos.glob("*.blurred.*"))


@pytest.mark.parametrize("argv", [["check", "{missing}"], ["check", "{photos}", "{missing}", "--no-faces"],
                                  ["watch", "{missing}", "{out}"], ["watch", "{photos}", "{photos}"],
                                  ["-o", "{photos}/astronaut.jpg", "{photos}"]])
def test_other_usage_mistakes_are_found_before_any_work(photos, tmp_path, argv):
    names = {"missing": tmp_path / "nosuch", "photos": photos, "out": tmp_path / "out"}
    code, out, err = run(*(arg.format(**names) for arg in argv))
    assert code == ExitStatus.USAGE and out == "" and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists() and not list(photos.glob("*.blurred.*"))


def test_review_of_a_missing_folder_is_a_usage_error_and_starts_no_server(tmp_path):
    done = subprocess.run([sys.executable, "-m", "blur_cli.main", "review", str(tmp_path / "nosuch"), "--no-browser"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == ExitStatus.USAGE and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "no such file or folder" in done.stderr


@pytest.mark.parametrize("command", [[], ["check"], ["review"], ["watch", "in"]])
def test_argument_errors_are_one_line_and_suggest_the_option_meant(command, tmp_path, capsys):
    code, _, _ = run(*command, str(tmp_path), "--fsat" if command != ["check"] else "--no-facs")
    err = capsys.readouterr().err
    assert code == ExitStatus.USAGE and err.count("\n") == 1, err
    assert ("did you mean --fast?" if command != ["check"] else "did you mean --no-faces?") in err


def test_the_files_not_read_are_named_when_few_and_left_to_the_report_when_many(photos, tmp_path):
    (photos / "notes.txt").write_text("not a photo")
    code, _, err = run(str(photos), "-o", str(tmp_path / "out"))
    assert code == ExitStatus.OK and f"Not read: 1 other file ({photos / 'notes.txt'})\n" in err, err
    for index in range(5):
        (photos / f"notes{index}.txt").write_text("not a photo")
    code, _, err = run(str(photos), "-o", str(tmp_path / "out"))
    assert code == ExitStatus.OK and "Not read: 6 other files (--report FILE lists them)\n" in err, err


def test_a_folder_of_copies_blur_made_says_why_nothing_was_anonymised(photos, tmp_path):
    assert run(str(photos), "-o", str(tmp_path / "out"))[0] == ExitStatus.OK
    code, out, err = run(str(tmp_path / "out"))
    assert code == ExitStatus.USAGE and out == ""
    assert "the 3 files there are copies blur made" in err and err.count("\n") == 1, err
    assert not list((tmp_path / "out").glob("*.blurred.blurred.*"))


def test_the_summary_says_once_that_the_copies_are_a_little_smaller(photos, tmp_path):
    code, out, err = run(str(photos), "-o", str(tmp_path / "out"))
    assert code == ExitStatus.OK and err.count("smaller") == 1 and "--keep-geometry" in err and "smaller" not in out
    code, _, err = run(str(photos), "-o", str(tmp_path / "kept"), "--keep-geometry")
    assert code == ExitStatus.OK and "smaller" not in err


def test_help_and_user_guide_say_the_same_of_fast():
    guide = (Path(__file__).resolve().parents[1] / "docs" / "user-guide.md").read_text()
    (claim,) = re.findall(r"\| `--fast` \| the same as `--min-face 20`: (about [\d.]+ times quicker on 12-MP photos)",
                          guide)
    assert claim in " ".join(build_parser().format_help().split())


def test_watch_help_says_it_takes_videos(capsys):
    assert run("watch", "--help")[0] == ExitStatus.OK
    assert "every photo and video" in " ".join(capsys.readouterr().out.split())


SETTINGS_ARGUMENTS = ["--method", "solid", "--shape", "rectangle", "--padding", "1.2", "--threshold", "0.06",
                      "--min-face", "14", "--keep-geometry", "--max-megapixels", "20", "--quality", "80"]


@pytest.mark.parametrize("command", ["blur", "review", "watch"])
def test_every_command_that_anonymises_takes_the_same_settings_the_same_way(command):
    """One set of options, one way to read them: the same words give the same Settings everywhere."""
    from blur.pipeline import Settings
    from blur_cli.options import settings_from
    from blur_cli.review import build_parser as review_parser
    from blur_cli.watch import build_parser as watch_parser

    parser, paths = {"blur": (build_parser, ["in"]), "review": (review_parser, ["in"]),
                     "watch": (watch_parser, ["in", "out"])}[command]
    assert settings_from(parser().parse_args(paths)) == Settings()
    assert settings_from(parser().parse_args([*paths, *SETTINGS_ARGUMENTS])) == Settings(
        method="solid", shape="rectangle", padding=1.2, detector_options={"threshold": 0.06, "min_face": 14.0},
        max_pixels=20_000_000, quality=80, keep_geometry=True)


@pytest.mark.parametrize("command", ["blur", "watch"])
def test_the_commands_that_take_videos_take_the_same_video_options(command):
    from blur.pipeline import Settings
    from blur_cli.options import video_settings_from
    from blur_cli.watch import build_parser as watch_parser

    parser, paths = {"blur": (build_parser, ["in"]), "watch": (watch_parser, ["in", "out"])}[command]
    video = video_settings_from(parser().parse_args([*paths, "--keep-audio", "--max-minutes", "2"]), Settings())
    assert video.keep_audio and video.limits.max_seconds == 120


def test_watch_keeps_the_sound_and_refuses_a_video_over_the_length_limit_it_is_given(tmp_path):
    """`blur watch` takes the video options of `blur`: the sound kept, the length limit honoured."""
    import threading

    import av

    from blur.report import Status
    from blur.watch import watch_folder
    from blur_cli.options import settings_from, video_settings_from
    from blur_cli.watch import build_parser as watch_parser
    from video_helpers import moving_face_frames, write_video

    in_dir = tmp_path / "in"
    in_dir.mkdir()
    write_video(in_dir / "march.mp4", moving_face_frames(8, 120, 160, 48, 1)[0], rate=15, audio=True)
    for options, out in ((["--keep-audio"], "kept"), (["--max-minutes", "0.0001"], "short")):
        args = watch_parser().parse_args([str(in_dir), str(tmp_path / out), *options])
        settings = settings_from(args)
        stop = threading.Event()
        outcomes = []
        for outcome in watch_folder(in_dir, tmp_path / out, settings, settle=0, interval=0.05, stop=stop,
                                    video=video_settings_from(args, settings)):
            outcomes.append(outcome)
            stop.set()
        if out == "kept":
            assert outcomes[0].status is Status.DONE and outcomes[0].video["audio"] is True
            with av.open(str(tmp_path / out / "march.blurred.mp4")) as container:
                assert len(container.streams.audio) == 1
        else:
            assert outcomes[0].status is Status.FAILED and not (tmp_path / out / "march.blurred.mp4").exists()


def test_a_photo_over_the_pixel_limit_fails_naming_the_option_that_raises_it(photos):
    code, out, _ = run(str(photos / "astronaut.jpg"), "--max-megapixels", "0.01")
    assert code == ExitStatus.SOME_FAILED
    assert "FAILED" in out and "raise the pixel limit (--max-megapixels)" in out, out
