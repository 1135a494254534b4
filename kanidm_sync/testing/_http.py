"""A real HTTP server on loopback in front of a :class:`FakeKanidm`.

This module owns :func:`serve`: the standard library's ``ThreadingHTTPServer`` in a daemon
thread, translating each HTTP/1.1 request into an ``httpx.Request`` for the fake's handler and
writing its ``httpx.Response`` back. Non-Python tools, the CLI and the demo reach the double
this way.

Known differences from kanidmd (docs/testing.md): plain ``http://`` (there is no TLS library to
generate a certificate with), and request bodies must carry ``Content-Length`` (chunked
uploads are not supported). A reply dropped with ``FakeKanidm.drop_next_response`` closes the
connection without answering.

Must not: import pytest, log request bodies or tokens, or listen anywhere but where told.
"""

from __future__ import annotations

import contextlib
import threading
import traceback
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import httpx

from ._server import FakeKanidm

__all__ = ["serve"]


class _Handler(BaseHTTPRequestHandler):
    fake: ClassVar[FakeKanidm]
    protocol_version = "HTTP/1.1"
    server_version = "kanidm-sync-fake"

    def _dispatch(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.send_error(400, "invalid Content-Length")
            return
        body = self.rfile.read(length) if length > 0 else b""
        host, port = _address(self.server.server_address)
        url = f"http://{host}:{port}{self.path}"
        headers = [(k, v) for k, v in self.headers.items() if k.lower() != "transfer-encoding"]
        request = httpx.Request(self.command, url, headers=headers, content=body)
        try:
            response = self.fake(request)
        except (httpx.ReadError, httpx.RemoteProtocolError):
            # A lost reply (the request was processed) or a request kanidmd panics on (nothing
            # was written): the client gets no answer.
            self.close_connection = True
            return
        except Exception:
            # A bug in the double: answer 500 rather than hang up, and show the traceback on
            # stderr (store errors never carry secrets).
            traceback.print_exc()
            self.send_error(500, "FakeKanidm failed while handling this request")
            return
        content = response.content
        self.send_response(response.status_code)
        for key, value in response.headers.multi_items():
            if key.lower() not in ("content-length", "transfer-encoding"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(content)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet: request lines would go to stderr of the test run."""


def _address(address: object) -> tuple[str, int]:
    # server_address is typed loosely by typeshed (it also covers Unix sockets).
    assert isinstance(address, tuple)
    return str(address[0]), int(address[1])


@contextlib.contextmanager
def serve(fake: FakeKanidm, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve a fake over real HTTP on loopback for the duration of a ``with`` block.

    Args:
        fake: the double to expose.
        host: the address to bind (loopback by default).
        port: the port; ``0`` picks a free one.

    Yields:
        The base URL, such as ``http://127.0.0.1:54321``.
    """
    handler = type("_BoundHandler", (_Handler,), {"fake": fake})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="fake-kanidm", daemon=True)
    thread.start()
    try:
        bound_host, bound_port = _address(server.server_address)
        yield f"http://{bound_host}:{bound_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
