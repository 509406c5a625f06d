"""The review server against bad, hostile and oversized requests: strict bodies, bounded work,
idle sockets closed, one log line per error and never a traceback."""

from __future__ import annotations

import http.client
import logging
import os
import socket
import struct
import threading
import time

import pytest

from blur.decode import read_photo
from blur.pipeline import Settings
from blur.review import ReviewServer, ReviewSession
from blur.review.requests import MAX_BODY_BYTES, BadRequest, json_depth, parse_json
from blur.review.photos import MAX_COVER, MAX_REGIONS, RegionEdit, reviewed_regions
from review_helpers import call, call_json, changed_mask, face_png, start_server


@pytest.fixture(scope="module")
def photo_path(tmp_path_factory):
    return face_png(tmp_path_factory.mktemp("requests") / "face.png")


@pytest.fixture(scope="module")
def server(photo_path):
    server = start_server([photo_path])
    yield server
    server.stop()


def raw(server: ReviewServer, method: str, path: str, data: bytes = b"", headers: dict | None = None):
    """(status, body) of a request with exactly these bytes and headers."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    all_headers = {"Host": f"127.0.0.1:{server.port}", "Content-Type": "application/json"}
    all_headers.update(headers or {})
    try:
        connection.request(method, f"/{server.token}/{path}", body=data, headers=all_headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def send_raw(server: ReviewServer, request: bytes) -> bytes:
    """The first bytes of the server's answer to exactly these request bytes."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as connection:
        connection.sendall(request)
        return connection.recv(4096)


def face_box(server) -> dict:
    r = server.session.photos[0].regions[0].region
    return {"x0": r.x0, "y0": r.y0, "x1": r.x1, "y1": r.y1, "score": r.score, "source": r.source}


# --- item 4: strict bodies ------------------------------------------------------------------------

def test_keep_as_the_string_false_is_refused_and_the_face_is_destroyed(tmp_path):
    """The issue: {"keep": "false"} was read as keep-visible, and the saved copy showed the face."""
    source = face_png(tmp_path / "speaker.png")
    server = start_server([source], settings=Settings(keep_geometry=True))  # compared pixel by pixel
    try:
        face = dict(face_box(server), keep="false")
        status, answer = call_json(server, "POST", "api/photos/0/export", {"regions": [face]})
        assert status == 400 and "keep" in answer["error"]
        assert os.listdir(tmp_path) == ["speaker.png"]  # nothing written
        assert server.session.photos[0].regions[0].keep is False
        status, record = call_json(server, "POST", "api/photos/0/export", {})
        assert status == 200
    finally:
        server.stop()
    r = server.session.photos[0].regions[0].region
    changed = changed_mask(read_photo(source).pixels, read_photo(record["exported"]).pixels)
    assert changed[r.y0:r.y1, r.x0:r.x1].mean() > 0.5


@pytest.mark.parametrize("change", [
    {"keep": "false"}, {"keep": 0}, {"keep": None}, {"x0": True}, {"x0": "12"}, {"x0": None}, {"score": "high"},
    {"score": 2}, {"score": -0.5}, {"source": 5}, {"source": ""}, {"source": "someone-else"}, {"colour": "red"},
    {"weak": False},
])
def test_a_region_with_a_wrong_type_or_an_unknown_field_is_refused(server, change):
    before = list(server.session.photos[0].regions)
    region = dict(face_box(server), **change)
    status, answer = call_json(server, "PUT", "api/photos/0", {"regions": [region]})
    assert status == 400 and answer["error"], change
    assert server.session.photos[0].regions == before


@pytest.mark.parametrize("body", [
    {"method": "Solid"}, {"method": 1}, {"method": None}, {"shape": "oval"}, {"shape": ["ellipse"]},
    {"regions": None}, {"regions": {"x0": 1}}, {"regions": [], "extra": 1}, {"replace": True}, [], "regions", 3,
])
def test_a_change_that_the_page_never_sends_is_refused(server, body):
    before = (list(server.session.photos[0].regions), server.session.photos[0].method)
    status, answer = call_json(server, "PUT", "api/photos/0", body)
    assert status == 400 and answer["error"], body
    assert (list(server.session.photos[0].regions), server.session.photos[0].method) == before


@pytest.mark.parametrize("data", [
    b'{"method": "solid", "method": "mosaic"}',  # which one wins is the parser's whim: refuse
    b'{"regions": [{"x0": NaN, "y0": 0, "x1": 5, "y1": 5}]}',
    b'{"regions": [{"x0": Infinity, "y0": 0, "x1": 5, "y1": 5}]}',
    b'{"regions": [{"x0": 1e999, "y0": 0, "x1": 5, "y1": 5}]}',
    b'{"regions": [{"x0": 1' + b"0" * 400 + b', "y0": 0, "x1": 5, "y1": 5}]}',
    b'{"method": "solid"} trailing',
    b'\xff\xfe{\x00}\x00',  # UTF-16
    b'{"method": "sol\xe9d"}',  # not UTF-8
    b"",
])
def test_bodies_that_are_not_strict_json_are_refused(server, data):
    status, _ = raw(server, "PUT", "api/photos/0", data)
    assert status == 400, data


@pytest.mark.parametrize("content_type", [None, "text/plain", "text/plain; charset=json", "application/jsonp",
                                          "application/json; charset=latin-1", "multipart/form-data; x=json"])
def test_bodies_that_are_not_sent_as_json_are_refused(server, content_type):
    headers = {"Content-Type": content_type} if content_type else {"Content-Type": ""}
    status, _ = raw(server, "PUT", "api/photos/0", b'{"method": "solid"}', headers)
    assert status == 400, content_type
    assert server.session.photos[0].method.value == "mosaic"


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8",
                                          "Application/JSON;charset=UTF-8"])
def test_json_content_types_are_accepted(server, content_type):
    status, _ = raw(server, "PUT", "api/photos/0", b'{"method": "mosaic"}', {"Content-Type": content_type})
    assert status == 200


@pytest.mark.parametrize("query", ["current=\u00b2", "current=%C2%B2", "current=\u0663", "current=-1", "current=",
                                   "current=1&current=0", "current=0&x=1", "other=1", "current=99", "current=1.0"])
def test_a_query_other_than_a_photo_number_is_refused(server, query):
    """The issue: current=² (a digit to str.isdigit, not to int) was a 500."""
    try:
        encoded = query.encode("latin-1")  # http.server reads the request line as Latin-1
    except UnicodeEncodeError:
        encoded = query.encode("utf-8")
    answer = send_raw(server, f"GET /{server.token}/api/photos?".encode() + encoded +
                      f" HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.0 400"), (query, answer[:40])


def test_the_photo_on_screen_is_asked_for(server):
    assert raw(server, "GET", "api/photos?current=0")[0] == 200
    assert raw(server, "GET", "api/photos/0/view?x=1")[0] == 400


@pytest.mark.parametrize("path", ["api/photos/%30", "api/photos/0/", "api/photos/00000000"])
def test_photo_numbers_are_ascii_digits(server, path):
    assert raw(server, "GET", path)[0] == 404


def test_a_photo_past_the_end_is_not_found(server):
    assert raw(server, "GET", "api/photos/7")[0] == 404
    assert raw(server, "PUT", "api/photos/7", b"{}")[0] == 404


def test_requests_that_take_no_body_refuse_one(server):
    assert raw(server, "GET", "api/photos", b"{}")[0] == 400
    assert raw(server, "POST", "api/finish", b'{"now": true}')[0] == 400
    assert not server._stopping.is_set()


@pytest.mark.parametrize("length", ["+19", "1_9", " 19x", "-1", "19, 19"])
def test_a_malformed_content_length_is_refused(server, length):
    status, _ = raw(server, "PUT", "api/photos/0", b'{"method": "mosaic"}', {"Content-Length": length})
    assert status == 400, length


def test_export_takes_replace_as_a_boolean_only(server, photo_path):
    status, answer = call_json(server, "POST", "api/photos/0/export", {"replace": "yes"})
    assert status == 400 and "replace" in answer["error"]
    assert sorted(os.listdir(photo_path.parent)) == ["face.png"]


# --- item 14: bounded work, idle sockets, log lines -----------------------------------------------

def test_deep_nesting_is_refused_quickly(server):
    """The issue: deep nesting was a 500 (RecursionError in the parser). It is refused by a linear
    count of brackets, before any parser sees it (the time: benchmarks/review_bounds.py)."""
    for data in (b"[" * 200_000, b'{"regions": [[[[[]]]]]}', b'{"a": ' * 50_000):
        status, body = raw(server, "PUT", "api/photos/0", data)
        assert status == 400 and b"nested deeper than the page ever sends" in body


def test_json_depth_ignores_brackets_in_strings_and_stays_linear():
    assert json_depth(b'{"regions": [{"x0": 1}]}') == 3
    assert json_depth(b'{"source": "[[[[{{{{"}') == 1
    assert json_depth(b'{"source": "\\"[[["}') == 1
    assert json_depth(b'"\\"' * 600_000) == 0  # an unterminated string (linear: benchmarks/review_bounds.py)
    with pytest.raises(BadRequest):
        parse_json(b'{"regions": [{"x0": [1]}]}')


def test_a_body_larger_than_the_cap_is_refused_without_being_read(server):
    answer = send_raw(server, f"PUT /{server.token}/api/photos/0 HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                              f"Content-Type: application/json\r\nContent-Length: {MAX_BODY_BYTES + 1}\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.0 413")  # at once, not after 2 MB that never come


def test_too_many_regions_are_refused(server, monkeypatch):
    """The issue: a preview with 10,000 regions pinned a core for 12 minutes. Now refused before any
    pixel is touched."""
    import blur.review.session

    fills = []
    anonymise = blur.review.session.anonymise
    monkeypatch.setattr(blur.review.session, "anonymise", lambda *args, **kw: fills.append(1) or anonymise(*args, **kw))
    box = {"x0": 10, "y0": 10, "x1": 20, "y1": 20}
    status, answer = call_json(server, "POST", "api/photos/0/preview", {"regions": [box] * (MAX_REGIONS + 1)})
    assert status == 400 and "at most" in answer["error"] and fills == []
    status, _, _ = call(server, "POST", "api/photos/0/preview", {"regions": [box] * MAX_REGIONS})
    assert status == 200 and fills == [1]


def test_boxes_covering_the_photo_many_times_over_are_refused(server):
    whole = {"x0": 0, "y0": 0, "x1": 512, "y1": 512}
    status, answer = call_json(server, "POST", "api/photos/0/preview", {"regions": [whole] * (MAX_COVER + 1)})
    assert status == 400 and "times the photo" in answer["error"]
    assert call(server, "POST", "api/photos/0/preview", {"regions": [whole] * MAX_COVER})[0] == 200


def test_the_found_faces_are_always_within_the_bounds(tmp_path):
    """However many faces are found, sending them back unchanged is never refused."""
    source = face_png(tmp_path / "crowd.png")
    session = ReviewSession([source])
    session.analyse_all()
    photo = session.photos[0]
    face = photo.regions[0].region
    many = (RegionEdit(face.x0, face.y0, face.x1, face.y1, source=face.source),) * (MAX_REGIONS + 5)
    photo.detected, photo.detected_area = MAX_REGIONS + 5, (MAX_REGIONS + 5) * face.width * face.height
    assert len(reviewed_regions(many, photo)) == MAX_REGIONS + 5


def test_an_idle_connection_is_closed(photo_path):
    session = ReviewSession([photo_path])
    server = ReviewServer(session, idle_timeout=0.5)
    server.start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
            assert connection.recv(1024) == b""  # closed by the server: our own timeout would raise
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
            connection.sendall(f"PUT /{server.token}/api/photos/0 HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                               "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{".encode())
            answer = connection.recv(4096)  # a body that stops halfway: refused once the wait is over
            assert answer.startswith(b"HTTP/1.0 400")
    finally:
        server.stop()


def test_a_request_trickling_in_is_cut_off_once_its_time_is_up(photo_path):
    """Bytes every 0.1 s keep a connection from being idle; the whole request still has a time limit."""
    server = ReviewServer(ReviewSession([photo_path]), idle_timeout=5, request_timeout=1)
    server.start()
    request = (f"PUT /{server.token}/api/photos/0 HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
               "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n" + "{" + " " * 98 + "}").encode()
    try:
        for cut_in in ("headers", "body"):
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
                started, answer = time.monotonic(), None
                sent = 0 if cut_in == "headers" else request.index(b"\r\n\r\n") + 4
                connection.sendall(request[:sent])
                connection.settimeout(0.1)  # the pace of the trickle: one byte, or the server's answer, every 0.1 s
                while answer is None and sent < len(request) - 1 and time.monotonic() - started < 10:
                    connection.sendall(request[sent : sent + 1])
                    sent += 1
                    try:
                        answer = connection.recv(4096)
                    except TimeoutError:
                        pass
                # Cut off while bytes still came every 0.1 s (so not by the 5-s idle limit), before the
                # request was whole: by the request's own time limit.
                assert answer is not None and sent < len(request) - 1, (cut_in, sent)
                assert answer == b"" if cut_in == "headers" else answer.startswith(b"HTTP/1.0 400")
    finally:
        server.stop()


def test_each_refused_request_logs_one_line_without_the_token(server, caplog, capfd):
    with caplog.at_level(logging.INFO, logger="blur.review"):
        raw(server, "PUT", "api/photos/0", b'{"regions": [{"keep": "false"}]}')
        send_raw(server, f"GET /{server.token}/api/photos?current=\u00b2 HTTP/1.1\r\n"
                         f"Host: 127.0.0.1:{server.port}\r\n\r\n".encode("latin-1"))
        call(server, "GET", "api/photos", token=False)
        raw(server, "PUT", "api/photos/0", b"[" * 10_000)
    lines = [r.getMessage() for r in caplog.records if r.name == "blur.review"]
    assert len(lines) == 4, lines
    assert all("\n" not in line and server.token not in line for line in lines)
    assert "400" in lines[0] and "PUT api/photos/0" in lines[0]
    assert "Traceback" not in capfd.readouterr().err


def test_an_unexpected_error_is_a_500_with_one_line_and_no_traceback(server, caplog, capfd, monkeypatch):
    def broken(index):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(server.session, "view", broken)
    with caplog.at_level(logging.INFO, logger="blur.review"):
        status, body = raw(server, "GET", "api/photos/0/view")
    assert status == 500 and b"ZeroDivisionError" in body
    assert len([r for r in caplog.records if r.name == "blur.review"]) == 1
    assert "Traceback" not in capfd.readouterr().err


def test_a_page_that_hangs_up_gives_one_line_and_no_traceback(server, caplog, capfd, monkeypatch):
    """The issue: BrokenPipe tracebacks reached the terminal when the page went away mid-answer."""
    working, hung_up = threading.Event(), threading.Event()
    preview = server.session.preview
    handler = []

    def slow_preview(index):
        handler.append(threading.current_thread())
        working.set()
        hung_up.wait(10)
        return preview(index)

    monkeypatch.setattr(server.session, "preview", slow_preview)
    with caplog.at_level(logging.INFO, logger="blur.review"):
        connection = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        connection.sendall(f"POST /{server.token}/api/photos/0/preview HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                           "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}".encode())
        assert working.wait(10)
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connection.close()  # a reset: the preview's answer has nowhere to go
        hung_up.set()
        handler[0].join(20)  # the request's thread has said all it will say
    lines = [r.getMessage() for r in caplog.records if r.name == "blur.review"]
    assert len(lines) == 1 and "closed the connection" in lines[0], lines
    assert "Traceback" not in capfd.readouterr().err
    assert raw(server, "GET", "api/photos")[0] == 200  # and the server goes on


def test_malformed_http_logs_one_line_without_the_token(server, caplog):
    with caplog.at_level(logging.INFO, logger="blur.review"):
        answer = send_raw(server, f"GET /{server.token}/ extra HTTP/1.1\r\n\r\n".encode())
        assert answer.startswith(b"HTTP/1.0 400")
        answer = send_raw(server, f"BREW /{server.token}/ HTTP/1.1\r\n\r\n".encode())
        assert answer.startswith(b"HTTP/1.0 501")
    lines = [r.getMessage() for r in caplog.records if r.name == "blur.review"]
    assert len(lines) == 2 and not any(server.token in line for line in lines), lines
