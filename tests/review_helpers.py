"""Photos and a running review server for the review tests."""

from __future__ import annotations

import http.client
import json
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

from blur.decode import read_photo
from blur.pipeline import Settings
from blur.review import ReviewServer, ReviewSession

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
SECRET_TEXT = "GPS 48.8566N 2.3522E owner Jane Doe"


def face_png(path: Path) -> Path:
    """The astronaut sample as a PNG with a text chunk of made-up metadata (lossless, so pixels compare exactly)."""
    pixels = read_photo(SAMPLES / "astronaut.jpg").pixels
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", SECRET_TEXT)
    info.add_text("Location", SECRET_TEXT)
    Image.fromarray(pixels).save(path, pnginfo=info)
    return path


def faceless_png(path: Path) -> Path:
    """A smooth gradient with no face in it."""
    ys, xs = np.mgrid[0:240, 0:320]
    pixels = np.dstack([xs * 255 // 319, ys * 255 // 239, np.full_like(xs, 128)]).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return path


EXACT = Settings(keep_geometry=True)
"""For tests that compare a saved copy's pixels with the original's one by one: no sensor-pattern step."""


def start_server(paths, **options) -> ReviewServer:
    """A review server whose photos are all analysed already, answering on a background thread."""
    session = ReviewSession(paths, **options)
    session.analyse_all()
    server = ReviewServer(session)
    server.start()
    return server


def call(server: ReviewServer, method: str, path: str, body=None, *, headers=None, token=True):
    """(status, headers, body bytes) of one request to `server`; `path` is relative to the token."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    all_headers = {"Host": f"127.0.0.1:{server.port}"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        all_headers["Content-Type"] = "application/json"
    all_headers.update(headers or {})
    full = f"/{server.token}/{path}" if token else path
    try:
        connection.request(method, full, body=data, headers=all_headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def call_json(server: ReviewServer, method: str, path: str, body=None, **options):
    status, _, data = call(server, method, path, body, **options)
    return status, json.loads(data)


def changed_mask(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    return np.any(before != after, axis=2)
