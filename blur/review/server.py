"""The review page's local web server: 127.0.0.1 only, one secret token, no CORS, nothing on disk.

Every request must carry the token as the first part of its path, a Host header naming this
server (so a DNS-rebinding page cannot reach it through another name) and, if it has one, this
server's own Origin (so another site's page cannot post to it). Everything else is refused.
The page and its script and style ship inside this package: nothing comes from the network.
"""

from __future__ import annotations

import importlib.resources
import json
import re
import secrets
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from ..errors import BlurError, OutputExists
from .session import ReviewError, ReviewSession

_ASSETS = {
    "": ("index.html", "text/html; charset=utf-8"),
    "review.js": ("review.js", "text/javascript; charset=utf-8"),
    "review.css": ("review.css", "text/css; charset=utf-8"),
    "favicon.svg": ("favicon.svg", "image/svg+xml"),
}
_MAX_BODY = 4 * 1024 * 1024
_PHOTO_PATH = re.compile(r"api/photos/(\d{1,7})(?:/(view|preview|export))?")

_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # Unblurred photos must not land in the browser's disk cache either.
    "Cache-Control": "no-store",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


class ReviewServer:
    """Serves one ReviewSession on 127.0.0.1 at a free port until `stop()` (or the page's Finish)."""

    def __init__(self, session: ReviewSession, *, port: int = 0):
        self.session = session
        self.token = secrets.token_urlsafe(32)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self._httpd.review = self  # type: ignore[attr-defined]
        self.port = self._httpd.server_address[1]
        self.allowed_hosts = {f"127.0.0.1:{self.port}", f"localhost:{self.port}"}
        self.allowed_origins = {f"http://{host}" for host in self.allowed_hosts}
        self._stopping = threading.Event()
        self._analyser = threading.Thread(target=self._analyse, name="blur-review-analyser", daemon=True)

    @property
    def url(self) -> str:
        """The page's address, token included: whoever has it can see the photos."""
        return f"http://127.0.0.1:{self.port}/{self.token}/"

    def serve_forever(self) -> None:
        """Analyse photos in the background and answer the page until stopped."""
        if not self._analyser.is_alive():
            self._analyser.start()
        try:
            self._httpd.serve_forever(poll_interval=0.2)
        finally:
            self._stopping.set()

    def start(self) -> threading.Thread:
        """Serve on a background thread (for tests and embedding); returns that thread."""
        thread = threading.Thread(target=self.serve_forever, name="blur-review-server", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        """Stop answering and analysing; what the session holds goes with the process."""
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def request_stop(self) -> None:
        """Stop from inside a request (the page's Finish button) without deadlocking."""
        self._stopping.set()
        threading.Thread(target=self._httpd.shutdown, daemon=True).start()

    def _analyse(self) -> None:
        while not self._stopping.is_set() and self.session.analyse_next():
            pass

    def refusal(self, host: str | None, origin: str | None, fetch_site: str | None) -> str | None:
        """Why a request with these headers must be refused, or None if it may go on."""
        if host not in self.allowed_hosts:
            return "wrong host"
        if origin is not None and origin not in self.allowed_origins:
            return "foreign origin"
        if fetch_site is not None and fetch_site not in ("same-origin", "none"):
            return "cross-site request"
        return None

    def has_token(self, path: str) -> str | None:
        """The rest of `path` after a valid token prefix, or None if the token is missing or wrong."""
        prefix, _, rest = path.lstrip("/").partition("/")
        if not secrets.compare_digest(prefix.encode(), self.token.encode()):
            return None
        return rest


class _Handler(BaseHTTPRequestHandler):
    server_version = "blur-review"
    sys_version = ""

    @property
    def review(self) -> ReviewServer:
        return self.server.review  # type: ignore[attr-defined]

    def log_message(self, format, *args):  # the library never prints; paths may name people
        pass

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PUT(self):
        self._handle("PUT")

    def do_HEAD(self):
        self.send_response(HTTPStatus.METHOD_NOT_ALLOWED)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_OPTIONS = do_DELETE = do_PATCH = do_HEAD  # no CORS preflight is ever answered

    def _handle(self, verb: str) -> None:
        review = self.review
        why = review.refusal(self.headers.get("Host"), self.headers.get("Origin"), self.headers.get("Sec-Fetch-Site"))
        path = urlsplit(self.path).path
        rest = review.has_token(path)
        if why or rest is None:
            self._send_json(HTTPStatus.FORBIDDEN, {"error": "refused"})
            return
        if verb == "GET" and not path.lstrip("/").count("/"):  # /TOKEN -> /TOKEN/, so relative links work
            self.send_response(HTTPStatus.SEE_OTHER)
            self.send_header("Location", f"/{review.token}/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        try:
            self._route(verb, rest, urlsplit(self.path).query)
        except OutputExists as exc:
            self._send_json(HTTPStatus.CONFLICT, {"error": f"{exc.path.name} already exists and was kept; "
                                                           "move or rename it to export again"})
        except ReviewError as exc:
            self._send_json(HTTPStatus.CONFLICT, {"error": str(exc)})
        except BlurError as exc:
            self._send_json(HTTPStatus.UNPROCESSABLE_ENTITY, {"error": f"nothing was written: {exc}"})
        except _BadRequest as exc:
            self._send_json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
        except Exception as exc:  # fail closed: report it, write nothing, keep serving
            self._send_json(HTTPStatus.INTERNAL_SERVER_ERROR,
                            {"error": f"unexpected error ({type(exc).__name__}); nothing was written"})

    def _route(self, verb: str, rest: str, query: str) -> None:
        session = self.review.session
        if verb == "GET" and rest in _ASSETS:
            name, content_type = _ASSETS[rest]
            self._send(HTTPStatus.OK, _asset(name), content_type)
            return
        if verb == "GET" and rest == "api/photos":
            current = parse_qs(query).get("current", [""])[0]
            if current.isdigit() and int(current) < len(session.photos):
                session.want(int(current))  # analyse the photo on screen next
            self._send_json(HTTPStatus.OK, {"photos": session.records()})
            return
        if verb == "POST" and rest == "api/finish":
            self._send_json(HTTPStatus.OK, {"finished": True})
            self.review.request_stop()
            return
        match = _PHOTO_PATH.fullmatch(rest)
        if not match:
            self._send_json(HTTPStatus.NOT_FOUND, {"error": "not found"})
            return
        index, action = int(match.group(1)), match.group(2)
        if verb == "GET" and action is None:
            self._send_json(HTTPStatus.OK, session.record(index))
        elif verb == "GET" and action == "view":
            self._send(HTTPStatus.OK, session.view(index), "image/jpeg")
        elif verb == "PUT" and action is None:
            self._send_json(HTTPStatus.OK, session.update(index, self._json_body()))
        elif verb == "POST" and action == "preview":
            session.update(index, self._json_body())
            self._send(HTTPStatus.OK, session.preview(index), "image/jpeg")
        elif verb == "POST" and action == "export":
            session.update(index, self._json_body())
            self._send_json(HTTPStatus.OK, session.export(index))
        else:
            self._send_json(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "not allowed"})

    def _json_body(self) -> dict:
        if "json" not in (self.headers.get("Content-Type") or ""):
            raise _BadRequest("send JSON")
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise _BadRequest("bad Content-Length") from None
        if not 0 <= length <= _MAX_BODY:
            raise _BadRequest("request too large")
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise _BadRequest("the request is not valid JSON") from None
        if not isinstance(body, dict):
            raise _BadRequest("the request must be a JSON object")
        return body

    def _send_json(self, status: HTTPStatus, value: object) -> None:
        # ASCII JSON: file names with undecodable bytes (lone surrogates) still encode.
        self._send(status, json.dumps(value).encode("ascii"), "application/json; charset=utf-8")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in _SECURITY_HEADERS.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


class _BadRequest(Exception):
    pass


def _asset(name: str) -> bytes:
    return importlib.resources.files(__package__).joinpath("static", name).read_bytes()
