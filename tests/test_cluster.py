"""The batch on a real Dask cluster (scheduler + 2 worker processes on 127.0.0.1) matches a local run."""

from __future__ import annotations

import io
import json
import os
import sys
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from conftest import require_module

require_module("distributed", "the cluster extra: pip install -e '.[cluster]'")

from blur.cluster import run_job_on_worker, run_on_cluster  # noqa: E402
from blur.fingerprint import EXTRA_CROP, most_moved  # noqa: E402
from blur.jobs import plan_jobs  # noqa: E402
from blur.pipeline import Settings, anonymise_file  # noqa: E402
from blur.report import Status  # noqa: E402
from blur_cli.main import main  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from cluster_helpers import local_dask_cluster  # noqa: E402

SAMPLES = Path(__file__).parent.parent / "samples"


def small_photo(name: str, target: Path, side: int = 256) -> Path:
    """A sample photo scaled down so detection takes a fraction of a second."""
    with Image.open(SAMPLES / name) as image:
        image = image.convert("RGB")
        image.thumbnail((side, side))
        target.parent.mkdir(parents=True, exist_ok=True)
        image.save(target, quality=90)
    return target


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with local_dask_cluster(tmp_path_factory.mktemp("dask")) as running:
        yield running


@pytest.fixture
def photo_folder(tmp_path) -> Path:
    folder = tmp_path / "march"
    small_photo("astronaut.jpg", folder / "a.jpg")
    small_photo("hopper-sideways.jpg", folder / "b.jpg")
    small_photo("astronaut.jpg", folder / "day2" / "c.jpg")
    small_photo("hopper-sideways.jpg", folder / "day2" / "d.jpg")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return folder


def run_cli(*argv: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    status = main(list(argv), stdout, stderr)
    return status, stdout.getvalue(), stderr.getvalue()


def report_by_input(report: Path, out: Path) -> dict[str, dict]:
    files = json.loads(report.read_text())["files"]
    rows = {}
    for record in files:
        output = record["output"] and os.path.relpath(record["output"], out)
        rows[record["input"]] = (record["status"], output, [face["box"] for face in record["faces"] or ()],
                                 record["method"], record["error"])
    return rows


def output_tree(out: Path) -> dict[str, tuple[int, int]]:
    """Size of every visible output. A killed worker may leave only its hidden temporary file."""
    sizes = {}
    for path in sorted(out.rglob("*")):
        if path.name.startswith("."):
            assert path.name.startswith(".blur-") and path.name.endswith(".part"), path
        elif path.is_file() and not path.name.endswith(".json"):
            with Image.open(path) as image:
                image.load()  # a truncated file would fail here
                sizes[str(path.relative_to(out))] = image.size
    return sizes


def test_cluster_run_matches_local_run(cluster, photo_folder, tmp_path):
    local_out, cluster_out = tmp_path / "local", tmp_path / "cluster"
    for out in (local_out, cluster_out):  # an earlier run's output: kept and reported as skipped
        small_photo("astronaut.jpg", out / "day2" / "c.blurred.jpg", side=64)

    local = run_cli(str(photo_folder), "-o", str(local_out), "--report", str(tmp_path / "local.json"), "-j", "1")
    remote = run_cli(str(photo_folder), "-o", str(cluster_out), "--report", str(tmp_path / "cluster.json"),
                     "--scheduler", cluster.address)

    assert local[0] == remote[0] == 1  # broken.jpg failed in both
    assert sorted(local[1].replace(str(local_out), "OUT").splitlines()) == \
        sorted(remote[1].replace(str(cluster_out), "OUT").splitlines())
    assert local[2].splitlines()[-1] == remote[2].splitlines()[-1]  # the summary line
    local_report = report_by_input(tmp_path / "local.json", local_out)
    cluster_report = report_by_input(tmp_path / "cluster.json", cluster_out)
    assert cluster_report == local_report
    assert Counter(row[0] for row in cluster_report.values()) == {"done": 3, "skipped": 1, "failed": 1}
    assert all(row[2] for row in cluster_report.values() if row[0] == "done")  # faces found and destroyed
    cluster_tree, local_tree = output_tree(cluster_out), output_tree(local_out)
    assert cluster_tree.keys() == local_tree.keys()
    for name, (width, height) in local_tree.items():  # sizes differ only by the random crop of blur.fingerprint
        crop = 2 * (most_moved(height, width) + EXTRA_CROP)
        assert abs(cluster_tree[name][0] - width) <= crop and abs(cluster_tree[name][1] - height) <= crop, name
    assert sorted(output_tree(cluster_out)) == ["a.blurred.jpg", "b.blurred.jpg", "day2/c.blurred.jpg",
                                                "day2/d.blurred.jpg"]


def test_lost_worker_mid_batch_every_photo_done_exactly_once(tmp_path):
    from distributed import Client

    folder = tmp_path / "in"
    for number in range(10):
        small_photo(["astronaut.jpg", "hopper-sideways.jpg"][number % 2], folder / f"{number:02}.jpg")
    jobs = plan_jobs([folder], tmp_path / "out")

    with local_dask_cluster(tmp_path / "dask") as cluster, \
            Client(cluster.address, set_as_default=False) as monitor:
        outcomes = []
        killed = None
        for outcome in run_on_cluster(jobs, Settings(), scheduler=cluster.address):
            outcomes.append(outcome)
            if killed is None:
                names = {address: info["name"] for address, info in monitor.scheduler_info()["workers"].items()}
                busy = [names[address] for address, keys in monitor.processing().items() if keys]
                assert busy, "no photo was running when the worker was to be killed"
                killed = busy[0]
                cluster.kill_worker(killed)
        remaining = [info["name"] for info in monitor.scheduler_info()["workers"].values()]

    assert killed is not None and killed not in remaining
    assert Counter(outcome.source for outcome in outcomes) == Counter(job.source for job in jobs)
    assert [outcome.status for outcome in outcomes] == [Status.DONE] * len(jobs)
    assert all(outcome.faces for outcome in outcomes)
    written = output_tree(tmp_path / "out")
    assert sorted(written) == sorted(job.destination.name for job in jobs)


def test_retry_after_lost_worker_reports_its_finished_output_as_done(tmp_path):
    source = small_photo("astronaut.jpg", tmp_path / "a.jpg")
    (job,) = plan_jobs([source])
    assert job.destination == tmp_path / "a.blurred.jpg"
    first_attempt = anonymise_file(job.source, job.destination)  # the lost worker got this far
    written = job.destination.read_bytes()

    retried = run_job_on_worker(job, Settings(), False, False)
    assert retried.status is Status.DONE
    assert [face["box"] for face in retried.faces] == \
        [[r.x0, r.y0, r.x1, r.y1] for r in first_attempt.regions] != []
    assert job.destination.read_bytes() == written  # kept, not written twice

    from_earlier_run = run_job_on_worker(job, Settings(), False, True)
    assert from_earlier_run.status is Status.SKIPPED


def test_without_dask_the_cli_says_which_extra_to_install(photo_folder, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails as if not installed
    status, stdout, stderr = run_cli(str(photo_folder), "-o", str(tmp_path / "out"),
                                     "--scheduler", "tcp://127.0.0.1:1")
    assert status == 1
    assert "pip install 'soft-focus[cluster]'" in stderr
    assert not (tmp_path / "out").exists()


def test_unreachable_scheduler_is_one_clear_error(photo_folder, tmp_path, monkeypatch):
    import socket

    import blur.cluster

    monkeypatch.setattr(blur.cluster, "CONNECT_TIMEOUT", 1.0)
    with socket.socket() as probe:  # a port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    status, stdout, stderr = run_cli(str(photo_folder), "-o", str(tmp_path / "out"),
                                     "--scheduler", f"tcp://127.0.0.1:{port}")
    assert status == 1
    assert stderr.strip().startswith(f"blur: cannot reach the Dask scheduler at tcp://127.0.0.1:{port}")
    assert len(stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
