"""StatusServer: the HTTP endpoints of a sync service, fed by its loop.

Owns: :class:`StatusServer`: what the loop tells it (under a lock), the snapshot, and
the endpoints ``/healthz``, ``/readyz``, ``/status.json``, ``/metrics`` and ``/`` (routing
and rendering), served by ``_status_http``'s handler on the standard library's
``ThreadingHTTPServer`` in a daemon thread.

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
import logging
import threading
import urllib.parse
from collections import deque
from collections.abc import Callable
from http import HTTPStatus
from types import TracebackType
from typing import Final

from ._exceptions import ConfigError
from ._metrics import INSTALL_HINT, MetricsTally, ServiceMetrics
from ._proto._state import SyncState
from ._report import RunReport
from ._schedule import RunnerStatus, Schedule
from ._service_model import ServiceSnapshot, describe_schedule, readiness
from ._status_http import (
    NOT_ALLOWED,
    NOT_FOUND,
    UNAUTHORIZED,
    Handler,
    HTTPServer,
    HTTPServer6,
    Response,
    bearer_ok,
    check_token,
    is_loopback,
    json_body,
    text,
)
from ._status_page import STATUS_PAGE_CSP, render_status_page

__all__ = ["StatusServer"]

_log = logging.getLogger("kanidm_sync.service")

MAX_NOTES: Final = 20
"""Notes kept (the newest); older ones are dropped."""

_PATHS: Final = frozenset({"/", "/healthz", "/readyz", "/status.json", "/metrics"})


def _utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


def _is_str(value: object) -> bool:
    return isinstance(value, str)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


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
        if not (_is_str(host) and host):
            raise ConfigError("the status server's host must be a non-empty address")
        host = host.strip("[]")  # "[::1]" as written in a URL
        if not allow_public and not is_loopback(host):
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
        self._token = check_token(token)
        if allow_public and not is_loopback(host) and self._token is None:
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
        self._httpd: HTTPServer | None = None
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

    def set_schedule(self, schedule: Schedule | None) -> None:
        """Change the schedule (a reloaded configuration) without restarting the loop.

        Args:
            schedule: the new schedule (its interval is readiness's unit), or ``None``.
        """
        if schedule is not None and not isinstance(schedule, Schedule):
            raise TypeError(f"schedule must be a Schedule or None, not {type(schedule).__name__}")
        with self._lock:
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
        server_class = HTTPServer6 if ":" in self._host else HTTPServer
        try:
            httpd = server_class((self._host, self._port), Handler)
        except OSError as exc:
            raise ConfigError(
                f"the status server cannot listen on {self._host}:{self._port}: "
                f"{exc.strerror or exc}"
            ) from exc
        httpd.app = self._respond
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

    def _respond(
        self, method: str, target: str, authorization: str | None, accept: str | None
    ) -> Response:
        if not bearer_ok(authorization, self._token):
            return UNAUTHORIZED
        if method not in ("GET", "HEAD"):
            return NOT_ALLOWED
        path = urllib.parse.urlsplit(target).path
        if path not in _PATHS:
            return NOT_FOUND
        if path == "/metrics":
            try:
                body, content_type = self._metrics.render(accept)
            except ImportError:
                return text(HTTPStatus.NOT_IMPLEMENTED, INSTALL_HINT)
            return Response(HTTPStatus.OK, body, content_type)
        snapshot = self.snapshot()
        if path == "/healthz":
            if snapshot.alive:
                return text(HTTPStatus.OK, "ok\n")
            return text(HTTPStatus.SERVICE_UNAVAILABLE, f"not alive: {snapshot.ready_reason}\n")
        if path == "/readyz":
            if snapshot.ready:
                return text(HTTPStatus.OK, f"ready: {snapshot.ready_reason}\n")
            return text(HTTPStatus.SERVICE_UNAVAILABLE, f"not ready: {snapshot.ready_reason}\n")
        if path == "/status.json":
            return Response(HTTPStatus.OK, json_body(snapshot.to_dict()), "application/json")
        page = render_status_page(snapshot)
        return Response(
            HTTPStatus.OK,
            page.encode("utf-8"),
            "text/html; charset=utf-8",
            (("Content-Security-Policy", STATUS_PAGE_CSP),),
        )
