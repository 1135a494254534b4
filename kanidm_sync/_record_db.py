"""The SQLite files kanidm-sync keeps locally: the runner's record and the snapshot store.

Owns: telling what a file at a state path is (missing, empty, a SQLite database, something
else), opening one of kanidm-sync's databases and checking that it is one (its
``application_id`` and ``user_version``), building a new database next to the old file
and putting it in its place atomically, the file modes (0600 for the database and its
``-wal`` / ``-shm`` files), and the words for a failed write (a full disk above all).

Must not: know what the tables hold: ``_record`` and ``adapters._snapshot_db`` do.

Every database is in WAL mode with ``synchronous=FULL``: a write is one transaction, so a
crash (or a full disk) leaves the old content or the new one, never a mix. A new database
(first use, a migration from JSON, a corrupt file replaced) is written to a temporary file
(``.<name>.tmp-<pid>-<random>``, see ``_files``) and renamed over the path, after the old
file's ``-wal`` and ``-shm`` are removed: SQLite would otherwise take an old WAL for the new
file's.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pathlib
import sqlite3
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Final, Literal

from ._files import create_temp, remove_stale

__all__ = [
    "SIDECARS",
    "DatabaseMismatch",
    "build_database",
    "connect_database",
    "describe_error",
    "fsync_directory",
    "is_full",
    "open_database",
    "sniff",
]

SQLITE_MAGIC: Final = b"SQLite format 3\x00"
SIDECARS: Final = ("-wal", "-shm", "-journal")
"""The files SQLite keeps next to a database (removed with it, created with its mode)."""

_BUSY_TIMEOUT: Final = 10.0  # seconds: a reader holding the file (sqlite3 STATE ...) briefly

FileKind = Literal["missing", "empty", "sqlite", "other"]


def sniff(path: pathlib.Path) -> tuple[FileKind, bytes]:
    """What is at ``path``, and its first bytes (to tell a JSON file from garbage).

    Raises:
        OSError: the file exists but cannot be read.
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(SQLITE_MAGIC))
    except FileNotFoundError:
        return "missing", b""
    if not head:
        return "empty", head
    return ("sqlite" if head == SQLITE_MAGIC else "other"), head


class DatabaseMismatch(Exception):
    """The file is a SQLite database, but not the expected one of kanidm-sync.

    Attributes:
        foreign: it belongs to another program (other tables, another application id): it
            must not be overwritten. ``False``: one of ours of another version, or damaged.
    """

    def __init__(self, message: str, *, foreign: bool) -> None:
        super().__init__(message)
        self.foreign = foreign


def _uri(path: pathlib.Path, mode: str) -> str:
    return f"file:{urllib.parse.quote(str(path))}?mode={mode}"


@contextlib.contextmanager
def open_database(
    path: pathlib.Path,
    *,
    application_id: int,
    version: int,
    what: str,
    page_limit: int | None = None,
) -> Iterator[sqlite3.Connection]:
    """An open connection to an existing database of ours (autocommit; ``BEGIN`` explicitly).

    Args:
        path: the database file (it must exist: it is never created here).
        application_id: the ``PRAGMA application_id`` it must carry.
        version: the ``PRAGMA user_version`` it must carry.
        what: what the file is, for messages ("record", "snapshot store").
        page_limit: a test hook: ``PRAGMA max_page_count`` (a real ``SQLITE_FULL`` when a
            write would grow the file past it).

    Raises:
        DatabaseMismatch: another program's database, or ours of another version.
        sqlite3.Error: the file cannot be opened or read (damaged).
    """
    conn = connect_database(
        path, application_id=application_id, version=version, what=what, page_limit=page_limit
    )
    try:
        yield conn
    finally:
        conn.close()


def connect_database(
    path: pathlib.Path,
    *,
    application_id: int,
    version: int,
    what: str,
    page_limit: int | None = None,
) -> sqlite3.Connection:
    """:func:`open_database` for a connection the caller keeps open and closes itself.

    The connection may be used from another thread than the one that opened it (the
    async runner reads and writes the record in worker threads), one thread at a time.

    Raises:
        DatabaseMismatch: another program's database, or ours of another version.
        sqlite3.Error: the file cannot be opened or read (damaged).
    """
    conn = sqlite3.connect(
        _uri(path, "rw"),
        uri=True,
        timeout=_BUSY_TIMEOUT,
        isolation_level=None,
        check_same_thread=False,
    )
    try:
        _check(conn, path, application_id, version, what)
        conn.execute("PRAGMA synchronous=FULL")
        if page_limit is not None:
            conn.execute(f"PRAGMA max_page_count={int(page_limit)}")
    except BaseException:
        conn.close()
        raise
    return conn


def _check(
    conn: sqlite3.Connection, path: pathlib.Path, application_id: int, version: int, what: str
) -> None:
    found_id = conn.execute("PRAGMA application_id").fetchone()[0]
    if found_id != application_id:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_schema WHERE type='table' ORDER BY name LIMIT 6"
            )
        ]
        listed = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
        raise DatabaseMismatch(
            f"a SQLite database of another program (application id {found_id}, tables: "
            f"{listed or 'none'}), not a kanidm-sync {what}",
            foreign=bool(tables) or found_id != 0,
        )
    found_version = conn.execute("PRAGMA user_version").fetchone()[0]
    if found_version != version:
        raise DatabaseMismatch(
            f"a kanidm-sync {what} of format version {found_version} (this release reads "
            f"version {version})",
            foreign=False,
        )


def build_database(
    path: pathlib.Path,
    *,
    application_id: int,
    version: int,
    schema: str,
    fill: Callable[[sqlite3.Connection], None],
    page_limit: int | None = None,
) -> None:
    """Write a new database and put it at ``path`` atomically (mode 0600, WAL mode).

    The directory is created on first use. On any failure the temporary file is removed
    and whatever was at ``path`` is left as it was.

    Args:
        path: where the database goes (a file there is replaced).
        application_id: ``PRAGMA application_id``.
        version: ``PRAGMA user_version``.
        schema: the ``CREATE`` statements.
        fill: writes the rows (inside the one transaction).
        page_limit: the test hook of :func:`open_database`.

    Raises:
        sqlite3.Error: writing the database failed (``SQLITE_FULL``: see :func:`is_full`).
        OSError: the directory, the temporary file or the rename failed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path)
    fd, tmp_name = create_temp(path)  # mode 0600; SQLite's sidecars copy the mode
    os.close(fd)
    tmp = pathlib.Path(tmp_name)
    try:
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            # The temporary file needs no journal: a crash leaves a temporary file, which
            # the next write removes, and never touches ``path``.
            conn.execute("PRAGMA journal_mode=OFF")
            if page_limit is not None:
                conn.execute(f"PRAGMA max_page_count={int(page_limit)}")
            conn.execute(f"PRAGMA application_id={int(application_id)}")
            conn.execute(f"PRAGMA user_version={int(version)}")
            conn.execute("BEGIN")
            _run_script(conn, schema)
            fill(conn)
            conn.execute("COMMIT")
            conn.execute("PRAGMA journal_mode=WAL")
        finally:
            conn.close()
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        for suffix in SIDECARS:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{path}{suffix}")
        os.replace(tmp, path)
    except BaseException:
        for name in (tmp_name, *(tmp_name + s for s in SIDECARS)):
            with contextlib.suppress(OSError):
                os.unlink(name)
        raise
    fsync_directory(path.parent)


def _run_script(conn: sqlite3.Connection, schema: str) -> None:
    # executescript() would COMMIT first; run the statements inside the transaction.
    for statement in schema.split(";"):
        if statement.strip():
            conn.execute(statement)


def fsync_directory(directory: pathlib.Path) -> None:
    """Make a rename in ``directory`` durable (not possible everywhere: then skipped)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def is_full(exc: BaseException) -> bool:
    """Whether ``exc`` is a full disk (``SQLITE_FULL``, ``ENOSPC``, ``EDQUOT``)."""
    if isinstance(exc, sqlite3.Error):
        return getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL"
    return isinstance(exc, OSError) and exc.errno in {errno.ENOSPC, errno.EDQUOT}


def describe_error(exc: BaseException) -> str:
    """A short reason for a failed read or write, naming a full disk as such."""
    if isinstance(exc, sqlite3.Error) and is_full(exc):
        return "the disk is full (SQLITE_FULL)"
    if isinstance(exc, OSError) and is_full(exc):
        return f"the disk is full ({errno.errorcode.get(exc.errno or 0, exc.errno)})"
    if isinstance(exc, sqlite3.Error):
        name = getattr(exc, "sqlite_errorname", "")
        return f"{exc} ({name})" if name else str(exc)
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return f"{type(exc).__name__}: {exc}"
