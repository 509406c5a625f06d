"""The review server's API and safety: token, Host, Origin, exports with reviewed regions."""

from __future__ import annotations

import http.client
import io
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from blur.decode import read_photo
from blur.pipeline import Settings
from blur.review import VIEW_LONG_SIDE, ReviewSession
from blur.review.session import _view_jpeg
from blur_cli.main import main
from conftest import require_command
from review_helpers import EXACT, SAMPLES, SECRET_TEXT, call, call_json, changed_mask, face_png, faceless_png, start_server


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("review")
    face_png(folder / "face.png")
    faceless_png(folder / "empty.png")
    shutil.copy(SAMPLES / "astronaut.jpg", folder / "astronaut.jpg")
    return folder




@pytest.fixture(scope="module")
def server(folder):
    server = start_server([folder], settings=EXACT)
    yield server
    server.stop()


def by_name(server, name):
    return next(p for p in server.session.photos if p.source.name == name)


def test_binds_loopback_only_on_a_free_port(server):
    assert server._httpd.server_address[0] == "127.0.0.1"
    assert server.port > 0
    assert server.url == f"http://127.0.0.1:{server.port}/{server.token}/"
    assert len(server.token) >= 40


def test_page_and_assets_are_served_with_the_token(server):
    status, headers, body = call(server, "GET", "")
    assert status == 200 and b"Check faces before sharing" in body
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert headers["Cache-Control"] == "no-store"
    for asset in ("review.js", "review.css"):
        status, _, body = call(server, "GET", asset)
        assert status == 200 and len(body) > 1000


def test_page_uses_nothing_from_the_network(server):
    for asset in ("", "review.js", "review.css"):
        _, _, body = call(server, "GET", asset)
        assert b"http://" not in body and b"https://" not in body and b"//cdn" not in body


@pytest.mark.parametrize("path", ["/", "/api/photos", "/wrong-token/api/photos", "/review.js"])
def test_refuses_requests_without_the_token(server, path):
    status, _, body = call(server, "GET", path, token=False)
    assert status == 403
    assert b"photos" not in body and b"<html" not in body


def test_refuses_a_token_that_is_nearly_right(server):
    status, _, _ = call(server, "GET", f"/{server.token[:-1]}x/api/photos", token=False)
    assert status == 403


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1", "127.0.0.1:1", "0.0.0.0:{port}",
                                  "localhost.evil.example:{port}", ""])
def test_refuses_a_foreign_host_header(server, host):
    status, _, body = call(server, "GET", "api/photos", headers={"Host": host.format(port=server.port)})
    assert status == 403 and b"regions" not in body


def answer_to(server, request: str) -> bytes:
    """The server's whole answer to exactly these request bytes ({port} and {token} filled in)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as connection:
        connection.sendall(request.format(port=server.port, token=server.token).encode())
        connection.shutdown(socket.SHUT_WR)
        return b"".join(iter(lambda: connection.recv(65536), b""))


@pytest.mark.parametrize("target", ["http://evil.example/{token}/api/photos", "//evil.example/{token}/api/photos",
                                    "http://127.0.0.1:{port}/{token}/api/photos"])
def test_refuses_a_request_target_naming_a_host(server, target):
    """The page asks for paths; a full address in the request line (as a proxy gets) is no request of its."""
    answer = answer_to(server, f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{{port}}\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.0 403") and b"photos" not in answer.partition(b"\r\n\r\n")[2]


@pytest.mark.parametrize("hosts", [("127.0.0.1:{port}", "evil.example"), ("evil.example", "127.0.0.1:{port}"),
                                   ("127.0.0.1:{port}", "127.0.0.1:{port}")])
def test_refuses_a_second_host_header(server, hosts):
    lines = "".join(f"Host: {host}\r\n" for host in hosts)
    answer = answer_to(server, f"GET /{{token}}/api/photos HTTP/1.1\r\n{lines}Connection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.0 403") and b"photos" not in answer.partition(b"\r\n\r\n")[2]
    one = answer_to(server, "GET /{token}/api/photos HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n")
    assert one.startswith(b"HTTP/1.0 200")


def test_accepts_localhost_as_host(server):
    status, body = call_json(server, "GET", "api/photos", headers={"Host": f"localhost:{server.port}"})
    assert status == 200 and len(body["photos"]) == 3


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:1", "https://127.0.0.1:{port}"])
def test_refuses_a_foreign_origin_and_writes_nothing(server, folder, origin):
    photo = by_name(server, "face.png")
    before = sorted(os.listdir(folder))
    status, _, _ = call(server, "POST", f"api/photos/{photo.index}/export", {"regions": []},
                        headers={"Origin": origin.format(port=server.port)})
    assert status == 403
    assert sorted(os.listdir(folder)) == before


def test_refuses_cross_site_fetches(server):
    status, _, _ = call(server, "GET", "api/photos", headers={"Sec-Fetch-Site": "cross-site"})
    assert status == 403


def test_answers_no_cors(server):
    status, headers, _ = call(server, "OPTIONS", "api/photos",
                              headers={"Origin": f"http://127.0.0.1:{server.port}",
                                       "Access-Control-Request-Method": "POST"})
    assert status == 405
    _, headers_get, _ = call(server, "GET", "api/photos", headers={"Origin": f"http://127.0.0.1:{server.port}"})
    for answered in (headers, headers_get):
        assert not any(name.lower().startswith("access-control") for name in answered)


def test_lists_photos_with_detections_and_flags(server):
    status, body = call_json(server, "GET", "api/photos")
    assert status == 200
    photos = {p["name"].rsplit("/", 1)[-1]: p for p in body["photos"]}
    face = photos["face.png"]
    assert face["state"] == "ready" and face["detected"] == 1 and face["flags"] == []
    (region,) = face["regions"]
    assert 140 < region["x0"] < 200 and 230 < region["x1"] < 310 and region["weak"] is False
    assert photos["empty.png"]["detected"] == 0 and photos["empty.png"]["flags"] == ["no-face"]


def test_flags_uncertain_detections():
    """At a low threshold, weak candidates come up beside the face in the sample."""
    session = ReviewSession([SAMPLES / "hopper-sideways.jpg"], Settings(detector_options={"threshold": 0.05}))
    session.analyse_all()
    (record,) = session.records()
    assert "uncertain" in record["flags"]
    assert record["weak"] == sum(r["weak"] for r in record["regions"]) >= 1


def test_view_is_a_metadata_free_jpeg(server):
    photo = by_name(server, "astronaut.jpg")
    status, headers, body = call(server, "GET", f"api/photos/{photo.index}/view")
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    assert b"Exif" not in body and b"GPS" not in body and b"xmp" not in body.lower()
    with Image.open(io.BytesIO(body)) as image:
        assert image.size == (512, 512)
        assert not set(image.info) - {"jfif", "jfif_version", "jfif_unit", "jfif_density", "dpi"}


def test_view_of_a_large_photo_is_downscaled():
    pixels = np.random.default_rng(1).integers(0, 256, (2000, 3000, 3), dtype=np.uint8)
    data, width, height = _view_jpeg(pixels)
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (width, height) == (VIEW_LONG_SIDE, round(2000 * VIEW_LONG_SIDE / 3000))


def test_export_with_reviewed_regions_changes_exactly_that_area(server, folder):
    photo = by_name(server, "face.png")
    face = photo.regions[0].region
    drawn = {"x0": 330, "y0": 380, "x1": 430, "y1": 470, "source": "person"}  # a patch of the spacesuit
    status, record = call_json(server, "POST", f"api/photos/{photo.index}/export",
                               {"regions": [drawn], "method": "mosaic", "shape": "rectangle"})
    assert status == 200, record
    before = read_photo(folder / "face.png").pixels
    after = read_photo(record["exported"]).pixels
    changed = changed_mask(before, after)
    inside = np.zeros_like(changed)
    inside[380:470, 330:430] = True
    assert not changed[~inside].any(), "pixels outside the drawn box changed"
    assert changed[inside].mean() > 0.9
    # The detection was removed by the person, so that face is exactly as it was.
    assert not changed[face.y0:face.y1, face.x0:face.x1].any()
    assert record["exported"] == os.fsdecode(folder / "face.blurred.png")


def test_kept_face_stays_visible_and_others_are_destroyed(tmp_path):
    source = face_png(tmp_path / "speaker.png")
    server = start_server([source], settings=EXACT)
    try:
        face = server.session.photos[0].regions[0].region
        kept = {"x0": face.x0, "y0": face.y0, "x1": face.x1, "y1": face.y1, "keep": True}
        other = {"x0": 20, "y0": 300, "x1": 120, "y1": 400}
        status, record = call_json(server, "POST", "api/photos/0/export", {"regions": [kept, other], "method": "solid"})
        assert status == 200, record
    finally:
        server.stop()
    before = read_photo(source).pixels
    after = read_photo(record["exported"]).pixels
    assert np.array_equal(after[face.y0:face.y1, face.x0:face.x1], before[face.y0:face.y1, face.x0:face.x1])
    assert (after[340:360, 60:80] == 0).all()  # the centre of the solid oval is black


def test_export_without_changes_destroys_the_detected_face(server, folder):
    photo = by_name(server, "astronaut.jpg")
    face = photo.regions[0].region
    status, record = call_json(server, "POST", f"api/photos/{photo.index}/export", {})
    assert status == 200, record
    before = read_photo(folder / "astronaut.jpg").pixels.astype(int)
    after = read_photo(record["exported"]).pixels.astype(int)
    cy, cx = (face.y0 + face.y1) // 2, (face.x0 + face.x1) // 2
    centre = (slice(cy - 20, cy + 20), slice(cx - 20, cx + 20))
    assert np.abs(after[centre] - before[centre]).mean() > 10  # not just JPEG noise


def test_exported_files_carry_no_metadata(server, folder):
    require_command("exiftool", "apt-get install libimage-exiftool-perl")
    for name in ("astronaut.jpg", "face.png"):
        photo = by_name(server, name)
        status, record = call_json(server, "POST", f"api/photos/{photo.index}/export", {})
        assert status == 200, record
        data = Path(record["exported"]).read_bytes()
        for secret in (b"Exif", b"GPS", b"Jane Doe", SECRET_TEXT.encode(), b"tEXt", b"iTXt", b"zTXt", b"eXIf",
                       b"iCCP", b"http://ns.adobe.com"):
            assert secret not in data, (name, secret)
        with Image.open(io.BytesIO(data)) as image:
            assert not set(image.info) - {"jfif", "jfif_version", "jfif_unit", "jfif_density", "dpi",
                                          "progressive", "progression"}
        tags = subprocess.run(["exiftool", "-j", "-a", "-G1", "-u", "-ee3", record["exported"]],
                              capture_output=True, text=True, check=True).stdout
        groups = {key.split(":")[0] for key in json.loads(tags)[0] if ":" in key}
        assert groups <= {"ExifTool", "System", "File", "JFIF", "PNG", "Composite"}, groups
        assert "GPS" not in tags and "Jane Doe" not in tags


def test_existing_output_is_kept_but_the_sessions_own_export_can_be_redone(tmp_path):
    source = face_png(tmp_path / "march.png")
    existing = tmp_path / "march.blurred.png"
    existing.write_bytes(b"someone else's file")
    server = start_server([source])
    try:
        status, body = call_json(server, "POST", "api/photos/0/export", {})
        assert status == 409 and "already exists" in body["error"]
        assert existing.read_bytes() == b"someone else's file"
        existing.unlink()
        assert call_json(server, "POST", "api/photos/0/export", {})[0] == 200
        status, body = call_json(server, "POST", "api/photos/0/export", {"method": "solid"})
        assert status == 200, body  # a second export replaces the session's own first one
    finally:
        server.stop()
    assert sorted(os.listdir(tmp_path)) == ["march.blurred.png", "march.png"]


def test_exports_into_a_chosen_folder(tmp_path):
    (tmp_path / "in").mkdir()
    source = face_png(tmp_path / "in" / "a.png")
    server = start_server([tmp_path / "in"], output_dir=tmp_path / "out")
    try:
        status, record = call_json(server, "POST", "api/photos/0/export", {})
    finally:
        server.stop()
    assert status == 200
    assert record["exported"] == os.fsdecode(tmp_path / "out" / "a.blurred.png")
    assert os.listdir(tmp_path / "in") == [source.name]


def test_refuses_to_export_a_photo_that_changed_after_review(tmp_path):
    source = face_png(tmp_path / "a.png")
    server = start_server([source])
    try:
        faceless_png(source)
        status, body = call_json(server, "POST", "api/photos/0/export", {})
    finally:
        server.stop()
    assert status == 422 and "changed" in body["error"]
    assert os.listdir(tmp_path) == ["a.png"]


@pytest.mark.parametrize("body", [{"regions": "all"}, {"regions": [{"x0": 1}]}, {"regions": [[0, 0, 5, 5]]},
                                  {"regions": [{"x0": 900, "y0": 900, "x1": 950, "y1": 950}]},
                                  {"regions": [{"x0": "a", "y0": 0, "x1": 5, "y1": 5}]}, {"method": "gaussian"}])
def test_rejects_malformed_changes(server, body):
    photo = by_name(server, "face.png")
    before = list(photo.regions)
    status, answer = call_json(server, "PUT", f"api/photos/{photo.index}", body)
    assert status == 400 and answer["error"]
    assert photo.regions == before


def test_rejects_bodies_that_are_not_json(server):
    assert call(server, "PUT", "api/photos/0", headers={"Content-Type": "text/plain"})[0] == 400
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("PUT", f"/{server.token}/api/photos/0", body=b"{not json",
                       headers={"Content-Type": "application/json"})
    assert connection.getresponse().status == 400
    connection.close()


def test_preview_hides_the_regions_in_the_view(server):
    photo = by_name(server, "face.png")
    status, _, body = call(server, "POST", f"api/photos/{photo.index}/preview",
                           {"regions": [{"x0": 0, "y0": 0, "x1": 100, "y1": 100}], "method": "solid",
                            "shape": "rectangle"})
    assert status == 200
    preview = np.asarray(Image.open(io.BytesIO(body)).convert("RGB")).astype(int)
    assert preview[10:90, 10:90].max() < 30  # black, give or take JPEG
    assert preview[200:300, 300:400].mean() > 30


def test_server_writes_nothing_but_exports(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = face_png(tmp_path / "a.png")
    server = start_server([source])
    try:
        for path in ("", "api/photos", "api/photos/0/view"):
            assert call(server, "GET", path)[0] == 200
        assert call(server, "POST", "api/photos/0/preview", {})[0] == 200
        assert call(server, "PUT", "api/photos/0", {"regions": []})[0] == 200
    finally:
        server.stop()
    assert os.listdir(tmp_path) == ["a.png"]


class Announced(io.StringIO):
    """A stream that says when the first line was written to it."""

    def __init__(self):
        super().__init__()
        self.written = threading.Event()

    def write(self, text: str) -> int:
        count = super().write(text)
        if "\n" in text:
            self.written.set()
        return count


def test_cli_prints_the_address_and_stops_on_finish(tmp_path):
    source = face_png(tmp_path / "a.png")
    out, err = Announced(), io.StringIO()
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("code", main(["review", "--no-browser", str(source)],
                                                                            out, err)))
    thread.start()
    assert out.written.wait(60)  # the address, printed once the page is served
    url = next(word for word in out.getvalue().split() if word.startswith("http://127.0.0.1:"))
    port, token = url.split(":")[2].split("/")[0], url.rstrip("/").rsplit("/", 1)[1]
    address = SimpleNamespace(port=int(port), token=token)
    deadline = time.monotonic() + 60
    while call_json(address, "GET", "api/photos")[1]["photos"][0]["state"] == "waiting":  # the page asks the same
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert call_json(address, "POST", "api/photos/0/export", {})[0] == 200
    assert call_json(address, "POST", "api/finish")[0] == 200
    thread.join(30)
    assert not thread.is_alive() and result["code"] == 0
    assert "1 photo saved" in err.getvalue()
    assert sorted(os.listdir(tmp_path)) == ["a.blurred.png", "a.png"]


def test_cli_with_no_photos_is_a_usage_error(tmp_path):
    err = io.StringIO()
    assert main(["review", "--no-browser", str(tmp_path)], io.StringIO(), err) == 2
    assert "no photos" in err.getvalue()


def test_large_photo_is_shown_downscaled_and_previewed_in_full_resolution_coordinates(tmp_path):
    source = tmp_path / "wide.png"
    Image.fromarray(np.full((1500, 2400, 3), 200, np.uint8)).save(source)
    server = start_server([source], settings=EXACT)
    try:
        status, _, view = call(server, "GET", "api/photos/0/view")
        assert status == 200 and Image.open(io.BytesIO(view)).size == (1600, 1000)
        corner = {"x0": 1200, "y0": 750, "x1": 2400, "y1": 1500}  # the bottom-right quarter, in photo pixels
        status, _, body = call(server, "POST", "api/photos/0/preview",
                               {"regions": [corner], "method": "solid", "shape": "rectangle"})
        assert status == 200
        preview = np.asarray(Image.open(io.BytesIO(body)).convert("RGB")).astype(int)
        assert preview.shape == (1000, 1600, 3)
        assert preview[510:990, 810:1590].max() < 30 and preview[10:490, 10:790].min() > 170
        status, record = call_json(server, "POST", "api/photos/0/export", {})
        assert status == 200
    finally:
        server.stop()
    exported = read_photo(record["exported"]).pixels
    assert exported.shape == (1500, 2400, 3)
    assert (exported[750:, 1200:] == 0).all() and (exported[:750] == 200).all() and (exported[:, :1200] == 200).all()


def test_file_names_that_are_not_utf8_are_listed(tmp_path):
    name = os.fsdecode(b"caf\xe9.png")
    face_png(tmp_path / "a.png").rename(tmp_path / name)
    server = start_server([tmp_path])
    try:
        status, body = call_json(server, "GET", "api/photos")
    finally:
        server.stop()
    assert status == 200 and body["photos"][0]["state"] == "ready"


def test_an_unreadable_photo_is_flagged_and_cannot_be_exported(tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a photo")
    server = start_server([tmp_path])
    try:
        status, body = call_json(server, "GET", "api/photos")
        (photo,) = body["photos"]
        assert photo["state"] == "failed" and photo["error"]
        status, answer = call_json(server, "POST", "api/photos/0/export", {})
        assert status == 409 and "cannot be reviewed" in answer["error"]
        assert call(server, "GET", "api/photos/0/view")[0] == 409
    finally:
        server.stop()
    assert os.listdir(tmp_path) == ["broken.jpg"]


# --- a box a person draws is covered whole (issue 13, item 5) -------------------------------------

def test_a_drawn_box_is_destroyed_to_its_corners_when_faces_get_ovals(tmp_path):
    """The issue: a box drawn in oval mode left its corners (a name tag's corners) readable."""
    source = face_png(tmp_path / "tag.png")
    server = start_server([source], settings=EXACT)
    try:
        face = server.session.photos[0].regions[0].region
        found = {"x0": face.x0, "y0": face.y0, "x1": face.x1, "y1": face.y1, "score": face.score, "source": face.source}
        drawn = {"x0": 330, "y0": 380, "x1": 430, "y1": 470, "source": "person"}
        changes = {"regions": [found, drawn], "method": "solid", "shape": "ellipse"}
        status, _, body = call(server, "POST", "api/photos/0/preview", changes)
        assert status == 200
        preview = np.asarray(Image.open(io.BytesIO(body)).convert("RGB")).astype(int)
        status, record = call_json(server, "POST", "api/photos/0/export", changes)
        assert status == 200, record
    finally:
        server.stop()
    after = read_photo(record["exported"]).pixels
    corners = [(slice(380, 383), slice(330, 333)), (slice(380, 383), slice(427, 430)),
               (slice(467, 470), slice(330, 333)), (slice(467, 470), slice(427, 430))]
    for corner in corners:
        assert after[corner].max() == 0, corner
        assert preview[corner].max() < 40, corner  # black, give or take JPEG
    before = read_photo(source).pixels
    changed = changed_mask(before, after)
    assert not changed[face.y0:face.y0 + 3, face.x0:face.x0 + 3].any()  # the found face is still an oval
    inside = np.zeros_like(changed)
    inside[380:470, 330:430] = True
    inside[face.y0:face.y1, face.x0:face.x1] = True
    assert not changed[~inside].any()


# --- after `blur`, review can replace the automatic copy (issue 13, item 13) -------------------------

def test_an_automatic_copy_is_shown_before_saving_and_replaced_only_on_request(tmp_path):
    from blur.pipeline import anonymise_file

    source = face_png(tmp_path / "march.png")
    anonymise_file(source, tmp_path / "march.blurred.png")  # what `blur march/` wrote before the review
    automatic = (tmp_path / "march.blurred.png").read_bytes()
    server = start_server([tmp_path])
    try:
        status, body = call_json(server, "GET", "api/photos")
        (record,) = body["photos"]  # the folder scan leaves the copy out
        assert record["existing"] is True and body["overwrite"] is False
        status, answer = call_json(server, "POST", "api/photos/0/export", {"method": "solid"})
        assert status == 409 and "replace" in answer["error"]
        assert (tmp_path / "march.blurred.png").read_bytes() == automatic
        status, record = call_json(server, "POST", "api/photos/0/export", {"method": "solid", "replace": True})
        assert status == 200, record
        assert record["existing"] is False and record["exported"] == os.fsdecode(tmp_path / "march.blurred.png")
    finally:
        server.stop()
    assert sorted(os.listdir(tmp_path)) == ["march.blurred.png", "march.png"]  # no temporary file left
    face = server.session.photos[0].regions[0].region
    after = read_photo(tmp_path / "march.blurred.png").pixels
    cy, cx = (face.y0 + face.y1) // 2, (face.x0 + face.x1) // 2
    assert after[cy - 10:cy + 10, cx - 10:cx + 10].max() == 0  # the reviewed copy (black), not the automatic one


def test_replace_never_touches_a_file_that_carries_metadata(tmp_path):
    source = face_png(tmp_path / "march.png")
    impostor = face_png(tmp_path / "march.blurred.png")  # text chunks: not a copy blur wrote, maybe an original
    kept = impostor.read_bytes()
    server = start_server([source])
    try:
        status, answer = call_json(server, "POST", "api/photos/0/export", {"replace": True})
    finally:
        server.stop()
    assert status == 422 and "metadata" in answer["error"]
    assert impostor.read_bytes() == kept
    assert sorted(os.listdir(tmp_path)) == ["march.blurred.png", "march.png"]


def test_replace_never_follows_a_link(tmp_path):
    source = face_png(tmp_path / "march.png")
    target = faceless_png(tmp_path / "elsewhere.png")
    kept = target.read_bytes()
    (tmp_path / "march.blurred.png").symlink_to(target)
    server = start_server([source])
    try:
        status, answer = call_json(server, "POST", "api/photos/0/export", {"replace": True})
    finally:
        server.stop()
    assert status == 422 and "not a regular file" in answer["error"]
    assert target.read_bytes() == kept and (tmp_path / "march.blurred.png").is_symlink()
