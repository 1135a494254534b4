"""``python -m kanidm_sync.testing serve``: run the in-memory Kanidm over real HTTP.

This module owns the command line of the double only: it builds a :class:`FakeKanidm`,
seeds what the options ask for (sync accounts, native persons and groups, recycled entries,
latency), serves it on loopback with :func:`serve`, prints the URL, the credentials a tool
needs and the UUIDs of what it seeded, and runs until Ctrl-C or SIGTERM. The printed tokens
and password are test credentials of an in-memory server that disappears when the command
stops.

Must not: import pytest, or be imported by the library.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
import threading
import uuid
from collections.abc import Sequence
from types import FrameType

from ._http import serve
from ._seed import NoSuchEntryError
from ._server import FakeKanidm
from ._store import Rejection

__all__ = ["main"]


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds >= 0, not {text!r}")
    return value


def _uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a UUID: {text!r}") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m kanidm_sync.testing",
        description="Run the in-memory Kanidm test double.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "serve",
        help="serve the double over plain HTTP on loopback",
        description="Serve the in-memory Kanidm over plain HTTP, seeded as the options say; "
        "every option that takes a value can be repeated.",
    )
    run.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    run.add_argument("--port", type=int, default=8443, help="port (default 8443; 0 = any)")
    run.add_argument(
        "--sync-account",
        metavar="NAME",
        action="append",
        default=[],
        help="create a sync account and print its token (repeatable)",
    )
    run.add_argument(
        "--native-person",
        metavar="NAME[=MAIL,...]",
        action="append",
        default=[],
        help="seed a native (not synced) person, with these mail addresses, to provoke a "
        "name or mail conflict (repeatable)",
    )
    run.add_argument(
        "--native-group",
        metavar="NAME[=MEMBER,...]",
        action="append",
        default=[],
        help="seed a native group whose members are entries seeded before it, by name "
        "(repeatable; persons are seeded before groups)",
    )
    run.add_argument(
        "--recycled",
        metavar="UUID",
        type=_uuid,
        action="append",
        default=[],
        help="seed a native person with this UUID and delete it into the recycle bin (repeatable)",
    )
    run.add_argument(
        "--latency",
        metavar="SECONDS",
        type=_seconds,
        default=0.0,
        help="add this delay to every request (default 0)",
    )
    return parser


def _split(spec: str) -> tuple[str, list[str]]:
    name, _, rest = spec.partition("=")
    return name.strip(), [value.strip() for value in rest.split(",") if value.strip()]


def _seed(fake: FakeKanidm, args: argparse.Namespace) -> list[str]:
    """Create the sync accounts and native entries the options ask for; lines about them.

    Raises:
        ValueError: naming the option and its value, when the double refuses to seed it.
    """
    lines: list[str] = []
    option = ""
    spec = ""
    try:
        option = "--sync-account"
        for spec in args.sync_account:
            account = fake.provision_sync_account(spec)
            lines.append(f"sync account {spec} token: {account.token}")
        option = "--native-person"
        for spec in args.native_person:
            name, mail = _split(spec)
            if not name:
                raise ValueError("the person's name is empty")
            person = fake.store.add_person(name, mail=mail)
            lines.append(f"native person {fake.store[person].name}: {person}")
        option = "--native-group"
        for spec in args.native_group:
            name, member_names = _split(spec)
            if not name:
                raise ValueError("the group's name is empty")
            members = [fake.store[member].uuid for member in member_names]
            group = fake.store.add_group(name, members=members)
            lines.append(f"native group {fake.store[group].name}: {group}")
        option = "--recycled"
        for recycled in args.recycled:
            spec = str(recycled)
            fake.store.add_person(f"recycled-{recycled.hex[:12]}", uuid=recycled)
            fake.store.recycle(recycled)
            lines.append(f"recycled person: {recycled}")
    except Rejection as exc:
        raise ValueError(f"{option} {spec!r}: refused as Kanidm would refuse it: {exc}") from None
    except (NoSuchEntryError, ValueError) as exc:
        raise ValueError(f"{option} {spec!r}: {exc}") from None
    return lines


def main(argv: Sequence[str] | None = None, *, stop: threading.Event | None = None) -> int:
    """Run the command line.

    Args:
        argv: the arguments (``sys.argv[1:]`` when ``None``).
        stop: an event that ends the server when set (tests); SIGINT and SIGTERM set it too.

    Returns:
        The process exit status (2, with a message on stderr, for options the double
        refuses, such as a name that is not a valid Kanidm name, or a taken one).
    """
    parser = _parser()
    args = parser.parse_args(argv)
    fake = FakeKanidm()
    try:
        seeded = _seed(fake, args)
    except ValueError as exc:
        parser.error(str(exc))
    fake.latency = args.latency
    stop = stop if stop is not None else threading.Event()
    lines: list[str] = []
    with serve(fake, host=args.host, port=args.port) as url:
        lines.append(f"url: {url}")
        lines.append(f"admin token: {fake.admin_token}")
        lines.append(f"admin password: {fake.recover_account('admin')}")
        lines.extend(seeded)
        if fake.latency:
            lines.append(f"latency: {fake.latency:g} s per request")
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
