"""StatusServer: the HTTP endpoints of a sync service, fed by its loop.

Owns: :class:`StatusServer` (what the loop tells it, under a lock; the snapshot; the
endpoints ``/healthz``, ``/readyz``, ``/status.json``, ``/metrics`` and ``/``) and its
request handler, on the standard library's ``ThreadingHTTPServer`` in a daemon thread.

Must not: hold a secret it could serve (the token is only compared, never logged, shown
or echoed), let a request's failure reach the server thread (a handler error is logged at
DEBUG and answered 500 with a fixed body), or bind beyond loopback unless asked.

Why a thread and the standard library: the runner's loop is blocking (or async in the
caller's event loop), and a status endpoint must answer while a run takes minutes; a
small threaded server needs no dependency and no event loop of its own. Responses are
small and built from one snapshot, taken under the lock and rendered outside it.
"""

from __future__ import annotations

import datetime as _dt
import hmac
import ipaddress
import json
import logging
import re
import socket
import socketserver
import threading
import urllib.parse
from collections import deque
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Final

import attrs

from ._exceptions import ConfigError
from ._metrics import INSTALL_HINT, MetricsTally, ServiceMetrics
from ._proto._state import SyncState
from ._report import RunReport
from ._schedule import RunnerStatus, Schedule
from ._service_model import ServiceSnapshot, describe_schedule, readiness
from ._status_page import STATUS_PAGE_CSP, render_status_page

__all__ = ["StatusServer"]

_log = logging.getLogger("kanidm_sync.service")

MAX_NOTES: Final = 20
"""Notes kept (the newest); older ones are dropped."""

REQUEST_TIMEOUT: Final = 15.0
"""Seconds a connection may take to send its request (a slow client holds one thread)."""

_API_CSP: Final = "default-src 'none'; frame-ancestors 'none'"
_TEXT: Final = "text/plain; charset=utf-8"
_TOKEN_CHARS: Final = re.compile(r"[\x21-\x7e]+")
_MIN_TOKEN: Final = 16
_PATHS: Final = frozenset({"/", "/healthz", "/readyz", "/status.json", "/metrics"})


def _utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


def _any(value: object) -> object:
    return value  # a value as the caller may really have passed it (no static type)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve anywhere


def _without_credentials(url: str) -> str:
    # The URL is shown to anyone who reaches the endpoint: no user:password@ in it.
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return ""
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _check_token(token: str | None) -> bytes | None:
    if token is None:
        return None
    if not isinstance(_any(token), str):
        raise ConfigError(f"the status server's token must be a str, not {type(token).__name__}")
    if not _TOKEN_CHARS.fullmatch(token):
        raise ConfigError(
            "the status server's token must be printable ASCII without spaces "
            "(it travels in an Authorization header)"
        )
    if len(token) < _MIN_TOKEN:
        raise ConfigError(
            f"the status server's token is {len(token)} characters long: use at least "
            f"{_MIN_TOKEN} (kanidm-sync generate-token makes one)"
        )
    return token.encode("ascii")


@attrs.frozen
class _Response:
    status: int
    body: bytes
    content_type: str = _TEXT
    headers: tuple[tuple[str, str], ...] = ()


def _text(status: int, text: str) -> _Response:
    return _Response(status, text.encode("utf-8"))


_UNAUTHORIZED: Final = _Response(
    HTTPStatus.UNAUTHORIZED,
    b"unauthorized: send Authorization: Bearer <token>\n",
    headers=(("WWW-Authenticate", 'Bearer realm="kanidm-sync"'),),
)
_NOT_FOUND: Final = _Response(HTTPStatus.NOT_FOUND, b"not found\n")
_NOT_ALLOWED: Final = _Response(
    HTTPStatus.METHOD_NOT_ALLOWED,
    b"method not allowed: GET or HEAD\n",
    headers=(("Allow", "GET, HEAD"),),
)
_INTERNAL: Final = _Response(HTTPStatus.INTERNAL_SERVER_ERROR, b"internal error\n")

# Characters a JSON text may hold raw but an HTML or JavaScript context would read: escaped,
# so status.json pasted into a page (or sniffed by an old browser) is inert.
_JSON_ESCAPES: Final = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def _json_body(value: object) -> bytes:
    text = json.dumps(value, ensure_ascii=False, indent=2)
    return (text.translate(_JSON_ESCAPES) + "\n").encode("utf-8")


class StatusServer:
    """The HTTP status endpoints of a sync service, fed by its loop.

    :meth:`Runner.run_forever <kanidm_sync.Runner.run_forever>` feeds it when given
    ``status_server=``; a custom loop calls :meth:`loop_started`, :meth:`observe` after
    each run and :meth:`loop_stopped`. The feeding methods are thread-safe and cheap.

    Endpoints (``GET`` and ``HEAD``; other methods get 405, other paths 404):

    * ``/healthz``: 200 ``ok`` while the loop is alive, else 503.
    * ``/readyz``: 200 when the last run succeeded within ``ready_intervals`` of the
      schedule's interval, else 503; the reason is the body.
    * ``/status.json``: :meth:`ServiceSnapshot.to_dict` (cookies as summaries).
    * ``/metrics``: Prometheus text (OpenMetrics when the scraper asks) through the
      optional ``prometheus-client`` (``pip install 'kanidm-sync[metrics]'``; without it,
      501 saying so).
    * ``/``: the HTML status page.

    With a ``token``, every endpoint requires ``Authorization: Bearer <token>`` (401
    otherwise, with ``WWW-Authenticate: Bearer``). No endpoint shows a secret: the token
    is only compared (in constant time), reports hold digests of imported credentials,
    and cookies show as their length and digest.

    Args:
        host: the address to listen on; loopback (``127.0.0.1``, ``::1``,
            ``localhost``) unless ``allow_public``.
        port: the port; 0 picks a free one (see :attr:`url`).
        allow_public: allow a non-loopback ``host`` (then set a ``token``, or put the
            endpoint behind something that authenticates).
        token: a bearer token every request must carry (at least 16 printable ASCII
            characters), or ``None``.
        account: the sync account's name, shown on the page and in ``/status.json``.
        kanidm_url: Kanidm's URL, shown likewise (credentials in it are dropped).
        ready_intervals: a success keeps ``/readyz`` at 200 for this many of the
            schedule's intervals.
        history: how many runs the page and ``/status.json`` list.
        clock: returns the current time, timezone-aware (injected by tests).

    Raises:
        ConfigError: a non-loopback ``host`` without ``allow_public``, a bad token, or a
            bad number.

    Example::

        server = StatusServer(port=8080, account="hr", kanidm_url=url)
        with server:
            runner.run_forever(Schedule(interval=300), status_server=server)
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        allow_public: bool = False,
        token: str | None = None,
        account: str = "",
        kanidm_url: str = "",
        ready_intervals: float = 3.0,
        history: int = 20,
        clock: Callable[[], _dt.datetime] = _utcnow,
    ) -> None:
        if not (isinstance(_any(host), str) and host):
            raise ConfigError("the status server's host must be a non-empty address")
        host = host.strip("[]")  # "[::1]" as written in a URL
        if not allow_public and not _is_loopback(host):
            raise ConfigError(
                f"the status server would listen on {host!r}, which is not a loopback "
                "address: anyone who reaches it could read the sync status. Listen on "
                "127.0.0.1 (behind a reverse proxy), or allow it explicitly "
                "(allow_public=True, with a token)"
            )
        if not (_is_int(port) and 0 <= port <= 65535):
            raise ConfigError(f"the status server's port must be 0..65535, not {port!r}")
        if not (_is_int(history) and history >= 1):
            raise ConfigError(f"the status server's history must be at least 1, not {history!r}")
        if not (_is_number(ready_intervals) and ready_intervals > 0):
            raise ConfigError(f"ready_intervals must be a positive number, not {ready_intervals!r}")
        self._host = host
        self._port = port
        self._token = _check_token(token)
        if allow_public and not _is_loopback(host) and self._token is None:
            _log.warning(
                "the status server listens on %s without a token: anyone who reaches it "
                "can read the sync status",
                host,
            )
        self._account = str(account)
        self._kanidm_url = _without_credentials(str(kanidm_url))
        self._ready_intervals = float(ready_intervals)
        self._clock = clock
        self._lock = threading.Lock()
        self._status = RunnerStatus()
        self._runs: deque[RunReport] = deque(maxlen=history)
        self._kanidm_state: SyncState | None = None
        self._alive = False
        self._started_at: _dt.datetime | None = None
        self._stopped_at: _dt.datetime | None = None
        self._schedule = ""
        self._interval: float | None = None
        self._config_error: str | None = None
        self._notes: deque[str] = deque(maxlen=MAX_NOTES)
        self._tally = MetricsTally()
        self._metrics = ServiceMetrics(self._metrics_source)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- feeding ---------------------------------------------------------------------------

    def loop_started(self, schedule: Schedule | None) -> None:
        """The loop starts: alive from now on (``/healthz`` answers 200).

        Args:
            schedule: the loop's schedule (its interval is readiness's unit), or ``None``
                for a loop without one (then only the last outcome counts).
        """
        if schedule is not None and not isinstance(schedule, Schedule):
            raise TypeError(f"schedule must be a Schedule or None, not {type(schedule).__name__}")
        with self._lock:
            self._alive = True
            self._started_at = self._clock()
            self._stopped_at = None
            self._schedule = describe_schedule(schedule)
            self._interval = schedule.interval if schedule is not None else None

    def observe(self, status: RunnerStatus) -> None:
        """Take the runner's status: after each run, and whenever its next run moves.

        A report not seen before (``status.last_report``) joins the history and counts
        in the metrics, once.

        Args:
            status: the runner's current status (``runner.status``).
        """
        if not isinstance(status, RunnerStatus):
            raise TypeError(f"observe() takes a RunnerStatus, not {type(status).__name__}")
        with self._lock:
            self._status = status
            report = status.last_report
            if report is not None and not self._seen(report):
                self._runs.appendleft(report)
                self._tally.add(report)
                # Kanidm's state as last seen: after the run, else when it started.
                after = report.state_after
                seen = after if after is not None else report.state_before
                if seen is not None:
                    self._kanidm_state = seen

    def _seen(self, report: RunReport) -> bool:
        return any(
            r is report
            or (r.finished_at == report.finished_at and r.started_at == report.started_at)
            for r in self._runs
        )

    def set_config_error(self, error: str | None) -> None:
        """Show a refused configuration reload (``None`` clears it).

        Args:
            error: the error, in words (it is shown to anyone who can reach the
                endpoints: no secret in it).
        """
        with self._lock:
            self._config_error = None if error is None else str(error)

    def add_note(self, note: str) -> None:
        """Add a note for the operator (the newest :data:`MAX_NOTES` are kept).

        Args:
            note: in words, e.g. ``"stopping after the current run (SIGTERM)"``.
        """
        with self._lock:
            self._notes.append(str(note))

    def loop_stopped(self) -> None:
        """The loop ended: not alive any more (``/healthz`` answers 503)."""
        with self._lock:
            self._alive = False
            self._stopped_at = self._clock()

    # --- reading ---------------------------------------------------------------------------

    def snapshot(self) -> ServiceSnapshot:
        """Everything the endpoints show, now.

        Returns:
            A frozen snapshot, its time from the server's clock.
        """
        with self._lock:
            return self._snapshot()

    def _snapshot(self) -> ServiceSnapshot:
        now = self._clock()
        if self._alive:
            ready, reason = readiness(
                self._status,
                now=now,
                interval=self._interval,
                ready_intervals=self._ready_intervals,
                started_at=self._started_at,
            )
        elif self._stopped_at is not None:
            ready, reason = False, f"the sync loop stopped at {self._stopped_at.isoformat()}"
        else:
            ready, reason = False, "the sync loop has not started"
        return ServiceSnapshot(
            account=self._account,
            kanidm_url=self._kanidm_url,
            now=now,
            started_at=self._started_at,
            alive=self._alive,
            ready=ready,
            ready_reason=reason,
            schedule=self._schedule,
            interval=self._interval,
            kanidm_state=self._kanidm_state,
            status=self._status,
            runs=tuple(self._runs),
            config_error=self._config_error,
            notes=tuple(self._notes),
        )

    def _metrics_source(self) -> tuple[MetricsTally, ServiceSnapshot]:
        with self._lock:
            return self._tally.copy(), self._snapshot()

    # --- serving ---------------------------------------------------------------------------

    def start(self) -> None:
        """Listen and serve in a daemon thread.

        Raises:
            ConfigError: the address cannot be listened on (in use, not local).
            RuntimeError: already started.
        """
        if self._httpd is not None:
            raise RuntimeError("the status server is already started")
        server_class = _HTTPServer6 if ":" in self._host else _HTTPServer
        try:
            httpd = server_class((self._host, self._port), _Handler)
        except OSError as exc:
            raise ConfigError(
                f"the status server cannot listen on {self._host}:{self._port}: "
                f"{exc.strerror or exc}"
            ) from exc
        httpd.app = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="kanidm-sync-status",
            daemon=True,
        )
        self._thread.start()
        _log.debug("status server listening on %s", self.url)

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent)."""
        httpd, thread = self._httpd, self._thread
        self._httpd = self._thread = None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if thread is not None:
            thread.join()

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` the server listens on (the real port when 0 was asked).

        Raises:
            RuntimeError: not started.
        """
        if self._httpd is None:
            raise RuntimeError("the status server is not started")
        port = self._httpd.server_address[1]
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{port}"

    def __enter__(self) -> StatusServer:
        if self._httpd is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self._httpd is not None else f"{self._host}:{self._port}, stopped"
        token = ", token=***" if self._token is not None else ""
        return f"StatusServer({where}{token})"

    # --- requests --------------------------------------------------------------------------

    def _authorized(self, authorization: str | None) -> bool:
        if self._token is None:
            return True
        if authorization is None:
            return False
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        # Headers arrive decoded as Latin-1: encoding back gives the bytes sent.
        given = credentials.strip().encode("latin-1", "replace")
        return hmac.compare_digest(given, self._token)

    def _respond(
        self, method: str, target: str, authorization: str | None, accept: str | None
    ) -> _Response:
        if not self._authorized(authorization):
            return _UNAUTHORIZED
        if method not in ("GET", "HEAD"):
            return _NOT_ALLOWED
        path = urllib.parse.urlsplit(target).path
        if path not in _PATHS:
            return _NOT_FOUND
        if path == "/metrics":
            try:
                body, content_type = self._metrics.render(accept)
            except ImportError:
                return _text(HTTPStatus.NOT_IMPLEMENTED, INSTALL_HINT)
            return _Response(HTTPStatus.OK, body, content_type)
        snapshot = self.snapshot()
        if path == "/healthz":
            if snapshot.alive:
                return _text(HTTPStatus.OK, "ok\n")
            return _text(HTTPStatus.SERVICE_UNAVAILABLE, f"not alive: {snapshot.ready_reason}\n")
        if path == "/readyz":
            if snapshot.ready:
                return _text(HTTPStatus.OK, f"ready: {snapshot.ready_reason}\n")
            return _text(HTTPStatus.SERVICE_UNAVAILABLE, f"not ready: {snapshot.ready_reason}\n")
        if path == "/status.json":
            return _Response(HTTPStatus.OK, _json_body(snapshot.to_dict()), "application/json")
        page = render_status_page(snapshot)
        return _Response(
            HTTPStatus.OK,
            page.encode("utf-8"),
            "text/html; charset=utf-8",
            (("Content-Security-Policy", STATUS_PAGE_CSP),),
        )


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    app: StatusServer

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the host's name up (socket.getfqdn), which can
        # stall on a machine without DNS; the name is not used.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: object, client_address: object) -> None:
        # socketserver prints a traceback to stderr; a client that went away is no news.
        _log.debug("status server: error while serving %s", client_address, exc_info=True)


class _HTTPServer6(_HTTPServer):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    timeout = REQUEST_TIMEOUT

    def do_GET(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def __getattr__(self, name: str) -> Callable[[], None]:
        # Any other method (POST, PUT, BREW, ...): the same path, answered 405 (or 401).
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def _serve(self) -> None:
        try:
            response = self.server.app._respond(
                self.command,
                self.path,
                self.headers.get("Authorization"),
                self.headers.get("Accept"),
            )
        except Exception:
            _log.debug("status server: %s %s failed", self.command, self.path, exc_info=True)
            response = _INTERNAL
        self._send(response)

    def _send(self, response: _Response) -> None:
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Referrer-Policy", "no-referrer")
            names = {name.lower() for name, _ in response.headers}
            if "content-security-policy" not in names:
                self.send_header("Content-Security-Policy", _API_CSP)
            for name, value in response.headers:
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
        except OSError:
            _log.debug("status server: the client went away", exc_info=True)
            self.close_connection = True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # A malformed request: the status line and a fixed body, never an echo of the
        # request (http.server's default page quotes it).
        self.close_connection = True
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "error"
        self._send(_text(code, f"{phrase.lower()}\n"))

    def version_string(self) -> str:
        return "kanidm-sync"  # no Python version for a scanner to match

    def log_message(self, format: str, *args: object) -> None:
        _log.debug("status server: %s %s", self.address_string(), format % args)
