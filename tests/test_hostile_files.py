"""Hostile folders: odd file kinds, links, names and permissions, through the real command line.

In every case: originals unchanged, no partial files, one line per failing file that also appears
in the report, the other photos processed, and an exit status that says so.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from PIL import Image

import hostile
from blur_cli.lines import printable

WEIRD_NAMES = [
    os.fsdecode(b"bad-utf8-\xff\xfe.jpg"),
    "new\nline.jpg",
    "esc-\x1b[2J\x1b[31mred.png",
    "tab\tand\rreturn.jpg",
    "bidi-\u202egpj.png",
]


def build_hostile_folder(root: Path) -> tuple[set[str], set[str]]:
    """A folder of good photos and every kind of trouble: (names that must be done, names that must fail)."""
    root.mkdir()
    (root / "sub").mkdir()
    seeds = hostile.seeds()
    good = {"good.jpg": seeds["jpeg"][0], "good.png": seeds["png-rgba"][0], "sub/nested.webp": seeds["webp"][0]}
    good.update({name: seeds["png" if name.endswith(".png") else "jpeg"][0] for name in WEIRD_NAMES})
    failing = {
        "empty.jpg": b"",
        "notes.jpg": b"my notes\n" * 50,
        "cut.png": seeds["png"][0][:60],
        "bomb.png": hostile.bombs()["bomb-png"][0],
        "animated.gif": seeds["gif-animated"][0],
        "pdf-polyglot.jpg": hostile.polyglots()[3].data,
    }
    for name, data in {**good, **failing}.items():
        (root / name).write_bytes(data)
    must_fail = set(failing)
    os.mkfifo(root / "fifo.jpg")
    os.symlink("/dev/zero", root / "dev-zero.jpg")
    os.symlink("good.jpg", root / "link-to-good.jpg")
    os.symlink("loop.jpg", root / "loop.jpg")
    os.symlink("nowhere.jpg", root / "dangling.jpg")
    os.symlink("sub", root / "link-to-folder")
    os.symlink(".", root / "sub" / "loop-folder")
    must_fail |= {"fifo.jpg", "dev-zero.jpg", "loop.jpg", "dangling.jpg", "link-to-folder", "sub/loop-folder"}
    try:
        os.mknod(root / "null.jpg", 0o600 | 0o020000, os.makedev(1, 3))  # a character device
        must_fail.add("null.jpg")
    except (PermissionError, AttributeError):
        pass
    try:
        with socket.socket(socket.AF_UNIX) as server:
            server.bind(str(root / "sock.jpg"))
        must_fail.add("sock.jpg")
    except OSError:  # path too long for a socket address
        pass
    return set(good) | {"link-to-good.jpg"}, must_fail


def test_a_folder_full_of_trouble_fails_each_bad_file_alone(tmp_path):
    must_work, must_fail = build_hostile_folder(tmp_path / "in")
    before = hostile.snapshot(tmp_path / "in")
    out, report = tmp_path / "out", tmp_path / "report.json"

    status, stdout, stderr = hostile.run_cli([tmp_path / "in", "-o", out, "--report", report, "-j", "1"])

    assert status == 1
    assert hostile.only_printable(stdout) and hostile.only_printable(stderr)
    assert len(stderr.splitlines()) == 1 and stderr.startswith("blur: ")  # the summary, nothing stray
    lines = stdout.splitlines()
    assert len(lines) == len(must_work) + len(must_fail), stdout
    for name in must_fail:
        shown = printable(str(tmp_path / "in" / name))
        assert [line for line in lines if shown + ":" in line and line.startswith("FAILED")], name
    for name in must_work:
        shown = printable(str(tmp_path / "in" / name))
        assert [line for line in lines if line.startswith(f"done     {shown} -> ")], name

    records = json.loads(report.read_bytes().decode("utf-8"))["files"]
    by_input = {os.path.relpath(os.fsencode(r["input"]), os.fsencode(tmp_path / "in")): r for r in records}
    assert set(by_input) == {os.fsencode(name) for name in must_work | must_fail}
    assert {os.fsdecode(name) for name, r in by_input.items() if r["status"] == "failed"} == must_fail
    assert all(r["error"] and "\n" not in r["error"] for r in records if r["status"] == "failed")
    for r in records:
        if r["status"] == "done":
            output = Path(r["output"])
            assert output.resolve().is_relative_to(out.resolve())
            with Image.open(output) as image:
                image.load()

    assert hostile.snapshot(tmp_path / "in") == before
    assert hostile.temporaries(out) == []
    assert sorted(os.listdir(tmp_path)) == ["in", "out", "report.json"]


def test_a_file_link_leading_out_of_the_folder_given_is_not_followed_as_folder_links_are_not(tmp_path):
    """A folder from someone else (an archive, a shared drive) may link to a photo of yours elsewhere:
    its copy would land in what you post. Links that stay inside the folder are followed."""
    (tmp_path / "private").mkdir()
    (tmp_path / "shared").mkdir()
    (tmp_path / "private" / "me.jpg").write_bytes(hostile.seeds()["jpeg"][0])
    (tmp_path / "shared" / "crowd.jpg").write_bytes(hostile.seeds()["jpeg"][0])
    os.symlink("../private/me.jpg", tmp_path / "shared" / "from-archive.jpg")
    os.symlink(tmp_path / "shared" / "crowd.jpg", tmp_path / "shared" / "same-crowd.jpg")
    status, stdout, _ = hostile.run_cli([tmp_path / "shared", "-o", tmp_path / "out", "-j", "1"])
    lines = sorted(stdout.splitlines(), key=lambda line: line.split()[1])
    assert status == 1 and [line.split()[0] for line in lines] == ["done", "FAILED", "done"], stdout
    assert lines[1] == (f"FAILED   {tmp_path / 'shared' / 'from-archive.jpg'}: is a link to a file outside the "
                        "folder given, which is not followed; give that file itself to include it")
    assert sorted(os.listdir(tmp_path / "out")) == ["crowd.blurred.jpg", "same-crowd.blurred.jpg"]
    status, stdout, _ = hostile.run_cli([tmp_path / "shared" / "from-archive.jpg", "-o", tmp_path / "out", "-j", "1"])
    assert status == 0 and stdout.startswith("done")  # named on the command line: followed


def test_weird_names_are_printed_escaped_and_kept_in_the_output_name_and_reports(tmp_path):
    (tmp_path / "in").mkdir()
    name = WEIRD_NAMES[0]
    (tmp_path / "in" / name).write_bytes(hostile.seeds()["jpeg"][0])
    status, stdout, _ = hostile.run_cli([tmp_path / "in" / name, "-j", "1", "--report", tmp_path / "r.csv"])
    assert status == 0
    assert "bad-utf8-\\xff\\xfe.jpg" in stdout
    assert os.path.exists(os.fsencode(tmp_path / "in") + b"/bad-utf8-\xff\xfe.blurred.jpg")
    assert "bad-utf8-\\udcff\\udcfe.jpg" in (tmp_path / "r.csv").read_bytes().decode("utf-8")


def test_a_planted_link_at_the_output_name_is_never_written_through(tmp_path):
    (tmp_path / "in").mkdir()
    photo = tmp_path / "in" / "photo.jpg"
    photo.write_bytes(hostile.seeds()["jpeg"][0])
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    os.symlink("../victim.txt", tmp_path / "in" / "photo.blurred.jpg")

    status, stdout, _ = hostile.run_cli([tmp_path / "in", "-j", "1"])
    assert status == 0 and stdout.startswith("skipped")
    status, stdout, _ = hostile.run_cli([tmp_path / "in", "-j", "1", "--overwrite"])
    assert status == 0 and stdout.startswith("done")
    assert victim.read_bytes() == b"precious"
    assert not (tmp_path / "in" / "photo.blurred.jpg").is_symlink()


def test_a_planted_link_from_the_output_name_to_the_original_cannot_replace_it(tmp_path):
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(hostile.seeds()["jpeg"][0])
    os.symlink("photo.jpg", tmp_path / "photo.blurred.jpg")
    status, stdout, _ = hostile.run_cli([photo, "-j", "1", "--overwrite"])
    assert status == 1 and stdout.startswith("FAILED") and "replace the original" in stdout
    assert photo.read_bytes() == hostile.seeds()["jpeg"][0]


def test_outputs_stay_inside_the_output_folder_whatever_the_input_path(tmp_path):
    (tmp_path / "in" / "a").mkdir(parents=True)
    for name in ("..jpg", "...png", "a/.hidden.jpg"):
        (tmp_path / "in" / name).write_bytes(hostile.seeds()["png" if name.endswith("png") else "jpeg"][0])
    outside = hostile.snapshot(tmp_path)
    status, _, _ = hostile.run_cli([tmp_path / "in" / "a" / ".." / "..jpg", tmp_path / "in", "-o", tmp_path / "out", "-j", "1"])
    assert status == 1  # ..jpg is given twice: both want the same output name, so the second fails
    written = set(hostile.snapshot(tmp_path)) - set(outside)
    assert written and all(Path(os.fsdecode(p)).resolve().is_relative_to((tmp_path / "out").resolve()) for p in written)


def test_reading_a_file_without_permission_fails_that_file_alone(tmp_path, monkeypatch):
    """In-process, with os.open refusing one name (tests run as root, which ignores permissions)."""
    (tmp_path / "in").mkdir()
    for name in ("locked.jpg", "open.jpg"):
        (tmp_path / "in" / name).write_bytes(hostile.seeds()["jpeg"][0])
    real_open = os.open

    def refusing_open(path, flags, *args, **kwargs):
        if os.fspath(path).endswith("locked.jpg"):
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refusing_open)
    status, stdout, _ = hostile.run_cli([tmp_path / "in", "-j", "1"])
    assert status == 1
    assert sorted(line.split()[0] for line in stdout.splitlines()) == ["FAILED", "done"]
    assert "locked.jpg: permission denied" in stdout


def test_a_folder_that_cannot_be_listed_is_reported_not_skipped_silently(tmp_path, monkeypatch):
    (tmp_path / "in" / "private").mkdir(parents=True)
    (tmp_path / "in" / "private" / "hidden.jpg").write_bytes(hostile.seeds()["jpeg"][0])
    (tmp_path / "in" / "open.jpg").write_bytes(hostile.seeds()["jpeg"][0])
    real_scandir = os.scandir

    def refusing_scandir(path="."):
        if os.fspath(path).endswith("private"):
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", refusing_scandir)
    status, stdout, _ = hostile.run_cli([tmp_path / "in", "-j", "1"])
    assert status == 1
    assert "private: cannot search this folder (Permission denied)" in stdout
    assert any(line.startswith("done") and "open.jpg" in line for line in stdout.splitlines())


def _nobody_can_run_blur() -> str | None:
    """None if the tool can run with real permission checks (not root, or root able to drop to nobody)."""
    if os.geteuid() != 0:
        return None
    try:
        probe = subprocess.run([sys.executable, "-c", "import blur_cli.main"], user=65534, capture_output=True, cwd="/", timeout=60)
    except OSError as exc:
        return f"root cannot run this Python as user nobody ({exc.strerror}); covered in-process by the monkeypatched tests"
    return None if probe.returncode == 0 else "user nobody cannot import the tool here"


def test_real_permissions_unreadable_file_and_folder(request):
    """With real permission bits: as an unprivileged user when the tests run as root."""
    reason = _nobody_can_run_blur()
    if reason:
        pytest.skip(reason)
    base = Path(tempfile.mkdtemp(prefix="blur-perm-"))
    request.addfinalizer(lambda: shutil.rmtree(base, ignore_errors=True))
    base.chmod(0o755)
    inputs, out = base / "in", base / "out"
    (inputs / "locked-folder").mkdir(parents=True)
    out.mkdir()
    for name in ("ok.jpg", "locked.jpg", "locked-folder/inside.jpg"):
        (inputs / name).write_bytes(hostile.seeds()["jpeg"][0])
    inputs.chmod(0o755)
    (inputs / "locked.jpg").chmod(0)
    (inputs / "locked-folder").chmod(0)
    out.chmod(0o777)
    before = hostile.snapshot(inputs)
    run = subprocess.run(
        [sys.executable, "-m", "blur_cli.main", str(inputs), "-o", str(out), "-j", "1",
         "--report", str(out / "report.json")],
        user=65534 if os.geteuid() == 0 else None, capture_output=True, text=True, timeout=120, cwd="/",
    )
    assert run.returncode == 1, run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == 3
    assert any(line.startswith("FAILED") and "locked.jpg: permission denied" in line for line in lines)
    assert any(line.startswith("FAILED") and "locked-folder: cannot search this folder" in line for line in lines)
    assert any(line.startswith("done") and "ok.jpg" in line for line in lines)
    statuses = {Path(r["input"]).name: r["status"] for r in json.loads((out / "report.json").read_text())["files"]}
    assert statuses == {"ok.jpg": "done", "locked.jpg": "failed", "locked-folder": "failed"}
    (inputs / "locked-folder").chmod(0o755)
    assert hostile.snapshot(inputs) == before
    assert hostile.temporaries(out) == []


def test_only_photo_extensions_are_picked_up_from_folders(tmp_path):
    """A FIFO or device without a photo extension is never even opened."""
    (tmp_path / "in").mkdir()
    os.mkfifo(tmp_path / "in" / "pipe")
    (tmp_path / "in" / "a.jpg").write_bytes(hostile.seeds()["jpeg"][0])
    status, stdout, _ = hostile.run_cli([tmp_path / "in", "-j", "1"], seconds=60)
    assert status == 0 and len(stdout.splitlines()) == 1


def test_a_mislabelled_photo_cannot_take_the_output_name_of_another(tmp_path):
    """a.jpg is really a PNG, so its copy is a.blurred.png: the same name as the real a.png's copy."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jpg").write_bytes(hostile.seeds()["png"][0])
    (tmp_path / "in" / "a.png").write_bytes(hostile.seeds()["png-rgba"][0])
    (tmp_path / "in" / "b.png").write_bytes(hostile.seeds()["jpeg"][0])
    for run in range(2):  # the second run resumes: the same outcome, nothing redone
        status, stdout, _ = hostile.run_cli([tmp_path / "in", "-j", "1"])
        lines = sorted(stdout.splitlines(), key=lambda line: line.split()[1])
        assert status == 1
        assert lines[0].startswith("skipped" if run else "done") and "a.jpg" in lines[0]
        assert lines[1].startswith("FAILED") and (f"a.png: another input ({tmp_path / 'in' / 'a.jpg'}) writes the "
                                                  "same output name, a.blurred.png") in lines[1]
        assert lines[2].startswith("skipped" if run else "done") and "b.blurred.jpg" in lines[2]
    assert sorted(os.listdir(tmp_path / "in")) == ["a.blurred.png", "a.jpg", "a.png", "b.blurred.jpg", "b.png"]
