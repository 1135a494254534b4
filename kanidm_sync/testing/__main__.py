"""``python -m kanidm_sync.testing serve``: run the in-memory Kanidm over real HTTP.

This module owns the command line of the double only: it builds a :class:`FakeKanidm`,
serves it on loopback with :func:`serve`, prints the URL and the credentials a tool needs,
and runs until Ctrl-C or SIGTERM. The printed tokens and password are test credentials of
an in-memory server that disappears when the command stops.

Must not: import pytest, or be imported by the library.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from ._http import serve
from ._server import FakeKanidm

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m kanidm_sync.testing",
        description="Run the in-memory Kanidm test double.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="serve the double over plain HTTP on loopback")
    run.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    run.add_argument("--port", type=int, default=8443, help="port (default 8443; 0 = any)")
    run.add_argument(
        "--sync-account",
        metavar="NAME",
        action="append",
        default=[],
        help="create a sync account and print its token (repeatable)",
    )
    return parser


def main(argv: Sequence[str] | None = None, *, stop: threading.Event | None = None) -> int:
    """Run the command line.

    Args:
        argv: the arguments (``sys.argv[1:]`` when ``None``).
        stop: an event that ends the server when set (tests); SIGINT and SIGTERM set it too.

    Returns:
        The process exit status.
    """
    args = _parser().parse_args(argv)
    fake = FakeKanidm()
    stop = stop if stop is not None else threading.Event()
    lines: list[str] = []
    with serve(fake, host=args.host, port=args.port) as url:
        lines.append(f"url: {url}")
        lines.append(f"admin token: {fake.admin_token}")
        lines.append(f"admin password: {fake.recover_account('admin')}")
        for name in args.sync_account:
            account = fake.provision_sync_account(name)
            lines.append(f"sync account {name} token: {account.token}")
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()

        def _on_signal(signum: int, frame: FrameType | None) -> None:
            stop.set()

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _on_signal)
            signal.signal(signal.SIGINT, _on_signal)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:  # pragma: no cover - only when the handler is not installed
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
