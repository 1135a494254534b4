"""The wire side of the status server: responses, the bearer check, the request handler.

Owns: :class:`Response` and the fixed answers (401, 404, 405, 500), the JSON body
encoding, the loopback and token checks, the constant-time bearer comparison, and the
``http.server`` classes (:class:`HTTPServer`, :class:`Handler`) that call the
application (:meth:`StatusServer._respond <kanidm_sync.StatusServer>`) and write its
answer with the safety headers.

Must not: know what the endpoints show (``_status_server`` routes and renders), let an
exception reach ``socketserver`` (it prints tracebacks to stderr), or echo a request: an
error page says only its status (``http.server``'s default quotes the request line).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import re
import socket
import socketserver
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Final

import attrs

from ._exceptions import ConfigError

__all__ = [
    "INTERNAL",
    "MIN_TOKEN",
    "NOT_ALLOWED",
    "NOT_FOUND",
    "REQUEST_TIMEOUT",
    "UNAUTHORIZED",
    "App",
    "HTTPServer",
    "HTTPServer6",
    "Handler",
    "Response",
    "bearer_ok",
    "check_token",
    "is_loopback",
    "json_body",
    "text",
]

_log = logging.getLogger("kanidm_sync.service")

REQUEST_TIMEOUT: Final = 15.0
"""Seconds a connection may take to send its request (a slow client holds one thread)."""

MIN_TOKEN: Final = 16
"""The shortest bearer token accepted."""

_API_CSP: Final = "default-src 'none'; frame-ancestors 'none'"
_TEXT: Final = "text/plain; charset=utf-8"
_TOKEN_CHARS: Final = re.compile(r"[\x21-\x7e]+")


@attrs.frozen
class Response:
    """An answer: status, body, content type and extra headers."""

    status: int
    body: bytes
    content_type: str = _TEXT
    headers: tuple[tuple[str, str], ...] = ()


def text(status: int, body: str) -> Response:
    """A ``text/plain`` answer."""
    return Response(status, body.encode("utf-8"))


UNAUTHORIZED: Final = Response(
    HTTPStatus.UNAUTHORIZED,
    b"unauthorized: send Authorization: Bearer <token>\n",
    headers=(("WWW-Authenticate", 'Bearer realm="kanidm-sync"'),),
)
NOT_FOUND: Final = Response(HTTPStatus.NOT_FOUND, b"not found\n")
NOT_ALLOWED: Final = Response(
    HTTPStatus.METHOD_NOT_ALLOWED,
    b"method not allowed: GET or HEAD\n",
    headers=(("Allow", "GET, HEAD"),),
)
INTERNAL: Final = Response(HTTPStatus.INTERNAL_SERVER_ERROR, b"internal error\n")

# Characters a JSON text may hold raw but an HTML or JavaScript context would read: escaped,
# so status.json pasted into a page (or sniffed by an old browser) is inert.
_JSON_ESCAPES: Final = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def json_body(value: object) -> bytes:
    """JSON text, indented, with ``<``, ``>``, ``&`` and the JS line separators escaped."""
    encoded = json.dumps(value, ensure_ascii=False, indent=2)
    return (encoded.translate(_JSON_ESCAPES) + "\n").encode("utf-8")


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback IP address (a host name may resolve anywhere: no)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _any(value: object) -> object:
    return value  # a value as the caller may really have passed it (no static type)


def check_token(token: str | None) -> bytes | None:
    """The token as bytes to compare with, or ``None``; never shown in an error.

    Raises:
        ConfigError: not a str, not printable ASCII without spaces, or too short.
    """
    if token is None:
        return None
    if not isinstance(_any(token), str):
        raise ConfigError(f"the status server's token must be a str, not {type(token).__name__}")
    if not _TOKEN_CHARS.fullmatch(token):
        raise ConfigError(
            "the status server's token must be printable ASCII without spaces "
            "(it travels in an Authorization header)"
        )
    if len(token) < MIN_TOKEN:
        raise ConfigError(
            f"the status server's token is {len(token)} characters long: use at least "
            f"{MIN_TOKEN}, random (for example: python -c "
            '"import secrets; print(secrets.token_urlsafe(32))")'
        )
    return token.encode("ascii")


def bearer_ok(authorization: str | None, token: bytes | None) -> bool:
    """Whether an ``Authorization`` header carries the token (compared in constant time)."""
    if token is None:
        return True
    if authorization is None:
        return False
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    # Headers arrive decoded as Latin-1: encoding back gives the bytes sent.
    given = credentials.strip().encode("latin-1", "replace")
    return hmac.compare_digest(given, token)


App = Callable[[str, str, str | None, str | None], Response]
"""``(method, target, authorization, accept) -> Response``."""


class HTTPServer(ThreadingHTTPServer):
    """A threaded server for one :data:`App`, in daemon threads, without a DNS lookup."""

    daemon_threads = True
    app: App

    def server_bind(self) -> None:
        """Bind; unlike ``HTTPServer``, without ``socket.getfqdn`` (it can stall)."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: object, client_address: object) -> None:
        """Log at DEBUG (socketserver prints a traceback to stderr)."""
        _log.debug("status server: error while serving %s", client_address, exc_info=True)


class HTTPServer6(HTTPServer):
    """The same on IPv6."""

    address_family = socket.AF_INET6


class Handler(BaseHTTPRequestHandler):
    """Hands every request to the server's app; writes the answer with the safety headers."""

    server: HTTPServer
    timeout = REQUEST_TIMEOUT

    def do_GET(self) -> None:
        """Serve a GET."""
        self._serve()

    def do_HEAD(self) -> None:
        """Serve a HEAD (the GET's headers, no body)."""
        self._serve()

    def __getattr__(self, name: str) -> Callable[[], None]:
        # Any other method (POST, PUT, BREW, ...): the app answers it (401 or 405).
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def _serve(self) -> None:
        try:
            headers = self.headers
            response = self.server.app(
                self.command, self.path, headers.get("Authorization"), headers.get("Accept")
            )
        except Exception:
            _log.debug("status server: %s %s failed", self.command, self.path, exc_info=True)
            response = INTERNAL
        self._send(response)

    def _send(self, response: Response) -> None:
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
        """Answer a malformed request: its status and a fixed body, never an echo."""
        self.close_connection = True
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "error"
        self._send(text(code, f"{phrase.lower()}\n"))

    def version_string(self) -> str:
        """The Server header: no Python version for a scanner to match."""
        return "kanidm-sync"

    def log_message(self, format: str, *args: object) -> None:
        """Log at DEBUG (http.server writes to stderr); the request line, never headers."""
        _log.debug("status server: %s %s", self.address_string(), format % args)
