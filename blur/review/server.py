"""The review page's local web server: 127.0.0.1 only, one secret token, no CORS, nothing on disk.

Every request must name a path (never a full address, as proxies get), carry the token as the first
part of that path, one Host header naming this server (so a DNS-rebinding page cannot reach it
through another name) and, if it has one, this server's own Origin (so another site's page cannot
post to it). Everything else is refused.
The page and its script and style ship inside this package: nothing comes from the network.

Every request is bounded: bodies are read strictly (see `requests`) up to a size cap, the work of
a preview or export is capped by the session, one preview and one export run at a time, idle
connections are closed, and a request must arrive whole within a time limit, however slowly it
trickles in. Each refused or failed request logs one line on the "blur.review" logger (never the
token, never a traceback); the library itself prints nothing.
"""

from __future__ import annotations

import importlib.resources
import io
import json
import logging
import re
import secrets
import socket
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from ..errors import BlurError, OutputExists
from .requests import MAX_BODY_BYTES, BadRequest, is_json_content_type, parse_changes, parse_export, parse_json, \
    parse_photos_query
from .photos import InvalidChange, NoSuchPhoto, ReviewError
from .session import ReviewSession

log = logging.getLogger("blur.review")
log.addHandler(logging.NullHandler())  # the library prints nothing; `blur review` shows these lines

IDLE_TIMEOUT = 15.0
"""Seconds a connection may sit without sending or reading anything before it is closed."""
REQUEST_TIMEOUT = 30.0
"""Seconds from a request's first byte until all of it (line, headers, body) must have arrived: a client
trickling a byte at a time is never idle, and would otherwise hold its connection and thread for ever."""

_ASSETS = {
    "": ("index.html", "text/html; charset=utf-8"),
    "review.js": ("review.js", "text/javascript; charset=utf-8"),
    "review.css": ("review.css", "text/css; charset=utf-8"),
    "favicon.svg": ("favicon.svg", "image/svg+xml"),
}
_PHOTO_PATH = re.compile(r"api/photos/([0-9]{1,7})(?:/(view|preview|export))?", re.ASCII)
_CONTENT_LENGTH = re.compile(r"[0-9]{1,12}", re.ASCII)
_DISCONNECTED = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)

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

    def __init__(self, session: ReviewSession, *, port: int = 0, idle_timeout: float = IDLE_TIMEOUT,
                 request_timeout: float = REQUEST_TIMEOUT):
        self.session = session
        self.token = secrets.token_urlsafe(32)
        self.idle_timeout = idle_timeout
        self.request_timeout = request_timeout
        self._httpd = _HTTPServer(("127.0.0.1", port), _Handler)
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

    def refusal(self, target: str, hosts: list[str], origin: str | None, fetch_site: str | None) -> str | None:
        """Why a request for `target` with these headers must be refused, or None if it may go on."""
        if not target.startswith("/") or target.startswith("//"):
            return "not a path on this server"
        if len(hosts) != 1 or hosts[0] not in self.allowed_hosts:
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

    def redacted(self, text: str) -> str:
        """`text` without the token, for logs."""
        return text.replace(self.token, "TOKEN")


class _HTTPServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        """One line for anything that escaped a handler, instead of socketserver's traceback."""
        error = sys.exc_info()[1]
        if isinstance(error, _DISCONNECTED):
            log.info("the page closed a connection before its answer was sent")
        else:
            log.warning("unexpected error while answering the page (%s)", type(error).__name__)


class _Handler(BaseHTTPRequestHandler):
    server_version = "blur-review"
    sys_version = ""

    @property
    def review(self) -> ReviewServer:
        return self.server.review  # type: ignore[attr-defined]

    def setup(self) -> None:
        self.timeout = self.review.idle_timeout  # read by StreamRequestHandler.setup: idle sockets close
        super().setup()
        self.rfile.close()  # the socket stays open: read it with a time limit per request instead
        self._reader = _TimedReader(self.connection, self.review.idle_timeout, self.review.request_timeout)
        self.rfile = io.BufferedReader(self._reader)

    def handle_one_request(self) -> None:
        self._reader.next_request()
        super().handle_one_request()

    def log_message(self, format, *args):  # requests that succeed are not logged; paths may name people
        pass

    def log_error(self, format, *args):
        """http.server's own refusals (malformed request line, unknown method, timeout): one line."""
        message = self.review.redacted(format % args)
        if "took too long" in message:
            log.warning("closed a connection whose request did not arrive whole within %g s", self.review.request_timeout)
        elif "timed out" in message:
            log.debug("closed an idle connection")
        else:
            log.warning("refused a malformed request: %s", message[:200])

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PUT(self):
        self._handle("PUT")

    def do_HEAD(self):
        log.warning("%s refused: not a method the page uses", self.command)
        self.send_response(HTTPStatus.METHOD_NOT_ALLOWED)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_OPTIONS = do_DELETE = do_PATCH = do_HEAD  # no CORS preflight is ever answered

    def _handle(self, verb: str) -> None:
        review = self.review
        self._what = f"{verb} request"
        why = review.refusal(self.path, self.headers.get_all("Host") or [], self.headers.get("Origin"),
                             self.headers.get("Sec-Fetch-Site"))
        url = urlsplit(self.path)
        rest = review.has_token(url.path)
        if why or rest is None:
            self._fail(HTTPStatus.FORBIDDEN, "refused", f"{verb} refused: {why or 'no valid token'}")
            return
        self._what = f"{verb} {rest[:80] or '/'}"
        if verb == "GET" and not url.path.lstrip("/").count("/"):  # /TOKEN -> /TOKEN/, so relative links work
            self.send_response(HTTPStatus.SEE_OTHER)
            self.send_header("Location", f"/{review.token}/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        try:
            self._route(verb, rest, url.query)
        except _DISCONNECTED:
            log.info("%s: the page closed the connection before the answer was sent", self._what)
            self.close_connection = True
        except (BadRequest, InvalidChange) as exc:
            self._fail(HTTPStatus.BAD_REQUEST, str(exc))
        except _TooLarge as exc:
            self._fail(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, str(exc))
        except NoSuchPhoto as exc:
            self._fail(HTTPStatus.NOT_FOUND, str(exc))
        except OutputExists as exc:
            self._fail(HTTPStatus.CONFLICT, f"{exc.path.name} already exists and was kept; "
                                            "choose to replace it, or move or rename it to save again")
        except ReviewError as exc:
            self._fail(HTTPStatus.CONFLICT, str(exc))
        except BlurError as exc:
            self._fail(HTTPStatus.UNPROCESSABLE_ENTITY, f"nothing was written: {exc}")
        except Exception as exc:  # fail closed: report it, write nothing, keep serving
            self._fail(HTTPStatus.INTERNAL_SERVER_ERROR,
                       f"unexpected error ({type(exc).__name__}); nothing was written")

    def _route(self, verb: str, rest: str, query: str) -> None:
        session = self.review.session
        if query and not (verb == "GET" and rest == "api/photos"):
            raise BadRequest("this address takes no question (nothing after ?)")
        if verb == "GET" and rest in _ASSETS:
            self._no_body()
            name, content_type = _ASSETS[rest]
            self._send(HTTPStatus.OK, _asset(name), content_type)
            return
        if verb == "GET" and rest == "api/photos":
            self._no_body()
            current = parse_photos_query(query)
            if current is not None:
                if current >= len(session.photos):
                    raise BadRequest(f"there is no photo number {current + 1}")
                session.want(current)  # analyse the photo on screen next
            self._send_json(HTTPStatus.OK, {"photos": session.records(), "overwrite": session.overwrite})
            return
        if verb == "POST" and rest == "api/finish":
            self._no_body()
            self._send_json(HTTPStatus.OK, {"finished": True})
            self.review.request_stop()
            return
        match = _PHOTO_PATH.fullmatch(rest)
        if not match:
            self._fail(HTTPStatus.NOT_FOUND, "not found")
            return
        index, action = int(match.group(1)), match.group(2)
        if verb == "GET" and action is None:
            self._no_body()
            self._send_json(HTTPStatus.OK, session.record(index))
        elif verb == "GET" and action == "view":
            self._no_body()
            self._send(HTTPStatus.OK, session.view(index), "image/jpeg")
        elif verb == "PUT" and action is None:
            self._send_json(HTTPStatus.OK, session.update(index, parse_changes(self._json_body())))
        elif verb == "POST" and action == "preview":
            session.update(index, parse_changes(self._json_body()))
            self._send(HTTPStatus.OK, session.preview(index), "image/jpeg")
        elif verb == "POST" and action == "export":
            changes, replace = parse_export(self._json_body())
            session.update(index, changes)
            self._send_json(HTTPStatus.OK, session.export(index, replace=replace))
        else:
            self._fail(HTTPStatus.METHOD_NOT_ALLOWED, "not allowed")

    def _content_length(self) -> int:
        if self.headers.get("Transfer-Encoding") is not None:
            raise BadRequest("send the body with a Content-Length")
        values = self.headers.get_all("Content-Length") or []
        if len(values) > 1 or (values and not _CONTENT_LENGTH.fullmatch(values[0].strip())):
            raise BadRequest("bad Content-Length")
        return int(values[0]) if values else 0

    def _no_body(self) -> None:
        if self._content_length():
            raise BadRequest("this request takes no body")

    def _json_body(self) -> object:
        if not is_json_content_type(self.headers.get("Content-Type")):
            raise BadRequest("send JSON (Content-Type: application/json)")
        length = self._content_length()
        if length > MAX_BODY_BYTES:
            self.close_connection = True  # the body is never read
            raise _TooLarge(f"the request is larger than {MAX_BODY_BYTES >> 20} MB")
        try:
            data = self.rfile.read(length)
        except OSError:  # a timeout or a reset while the body was on its way
            data = b""
        if len(data) != length:
            self.close_connection = True
            raise BadRequest("the request was cut short")
        return parse_json(data)

    def _fail(self, status: HTTPStatus, message: str, logged: str | None = None) -> None:
        """Answer with an error and log one line about it."""
        what = getattr(self, "_what", f"{self.command} request")
        log.warning("%s", self.review.redacted(logged or f"{what}: {status.value} {message}")[:300])
        try:
            self._send_json(status, {"error": message})
        except _DISCONNECTED:
            self.close_connection = True

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


class _TooLarge(Exception):
    pass


class _TimedReader(io.RawIOBase):
    """A connection's bytes, where no read waits more than `idle` seconds and a request must arrive
    whole within `limit` seconds of its first byte (the answer is written with the idle limit alone)."""

    def __init__(self, connection: socket.socket, idle: float, limit: float):
        self.connection, self.idle, self.limit = connection, idle, limit
        self.deadline: float | None = None

    def next_request(self) -> None:
        """The next request's time starts with its first byte."""
        self.deadline = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        wait = self.idle
        if self.deadline is not None:
            wait = min(wait, self.deadline - time.monotonic())
            if wait <= 0:
                raise TimeoutError("the request took too long to arrive")
        self.connection.settimeout(wait)
        try:
            count = self.connection.recv_into(buffer)
        finally:
            self.connection.settimeout(self.idle)
        if self.deadline is None:
            self.deadline = time.monotonic() + self.limit
        return count


def _asset(name: str) -> bytes:
    return importlib.resources.files(__package__).joinpath("static", name).read_bytes()
