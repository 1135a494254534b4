"""The snapshot store's file: a SQLite database (``_record_db``), and the JSON it replaces.

Owns: :class:`_SnapshotDb`, reading the store (a database, or the JSON file of earlier
releases, migrated in its place) into ``_snapshot_store._Store``, and writing a new
``_Store`` in one transaction, only the rows that changed since the store was last read or
written. Anything unusable is a :class:`~._snapshot_store._CorruptStoreError` with the
reason; another program's database is never overwritten.

Must not: decide what a snapshot means (``_snapshot`` does), or talk to Kanidm.

The schema (``PRAGMA application_id`` :data:`APPLICATION_ID`, ``user_version`` 2)::

    meta(key, value)        format, version, fingerprint, the two snapshots' cookies and
                            generations, the pending base, retired cookies (JSON, base64),
                            written (a random mark of the last write)
    committed(id, digest)   the snapshot Kanidm is known to hold: entry id (hex) -> digest
    pending(id, digest)     the change list last returned: digest NULL for a deletion

A committed full image renames ``pending`` to ``committed`` (no row is copied), so that
``committed`` may be declared as ``pending`` is; its digests are never NULL all the same
(a full image has no deletion rows), and reading the store checks them.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import pathlib
import sqlite3
from collections.abc import Mapping
from typing import Final

from .._record_db import (
    SIDECARS,
    DatabaseMismatch,
    build_database,
    describe_error,
    open_database,
    sniff,
)
from ._snapshot_store import (
    STORE_FORMAT,
    _CorruptStoreError,
    _decode_store,
    _digest_map,
    _generation,
    _Pending,
    _Snapshot,
    _Store,
    _unb64,
)

__all__ = ["APPLICATION_ID", "DB_VERSION"]

_log = logging.getLogger("kanidm_sync.adapters")

APPLICATION_ID: Final = 0x6B735353
"""``PRAGMA application_id`` of a snapshot store ("ksSS")."""
DB_VERSION: Final = 2
"""``PRAGMA user_version``; version 1 was the JSON file."""

_PENDING_TABLE: Final = (
    "CREATE TABLE pending (id TEXT PRIMARY KEY NOT NULL, digest TEXT) WITHOUT ROWID"
)
_SCHEMA: Final = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value) WITHOUT ROWID;
CREATE TABLE committed (id TEXT PRIMARY KEY NOT NULL, digest TEXT NOT NULL) WITHOUT ROWID;
{_PENDING_TABLE};
"""


class _ForeignStoreError(_CorruptStoreError):
    """Another program's database: unusable, and never overwritten."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


def _meta_rows(store: _Store, mark: str) -> list[tuple[str, object]]:
    committed, pending = store.committed, store.pending
    return [
        ("written", mark),
        ("format", STORE_FORMAT),
        ("version", DB_VERSION),
        ("fingerprint", store.fingerprint),
        ("committed_cookie", None if committed is None else committed.cookie),
        ("committed_generation", None if committed is None else committed.generation),
        ("pending_cookie", None if pending is None else pending.cookie),
        ("pending_generation", None if pending is None else pending.generation),
        ("pending_base", None if pending is None else pending.base),
        ("retired", json.dumps([_b64(r) for r in store.retired])),
    ]


def _pending_rows(pending: _Pending | None) -> list[tuple[str, str | None]]:
    if pending is None:
        return []
    rows: list[tuple[str, str | None]] = list(pending.changed.items())
    rows.extend((key, None) for key in pending.deleted)
    return rows


class _SnapshotDb:
    """The store file of one :class:`~kanidm_sync.adapters.SnapshotAdapter`.

    Attributes:
        path: the file.
        page_limit: a test hook (``PRAGMA max_page_count``: a real ``SQLITE_FULL``).
    """

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path
        self.page_limit: int | None = None
        self._last: _Store | None = None  # what the database holds, as last read or written
        self._mark: str | None = None  # the ``written`` mark of ``_last``
        self._foreign: str | None = None

    def load(self) -> _Store | None:
        """The store, or ``None`` when there is no file.

        Raises:
            _CorruptStoreError: the file cannot be used (the message says why).
            OSError: the file cannot be read.
        """
        last = self._unchanged()
        if last is not None:
            # Written by this object and not since: no need to read the snapshots again.
            return last
        self._last = None
        self._mark = None
        self._foreign = None
        kind, _ = sniff(self.path)
        if kind == "missing":
            return None
        if kind == "empty":
            raise _CorruptStoreError("the file is empty")
        if kind == "other":
            return self._migrate()
        try:
            store = self._read()
        except DatabaseMismatch as exc:
            if exc.foreign:
                self._foreign = str(exc)
                raise _ForeignStoreError(str(exc)) from None
            raise _CorruptStoreError(str(exc)) from None
        except (sqlite3.Error, ValueError, TypeError) as exc:
            raise _CorruptStoreError(describe_error(exc)) from None
        self._last = store
        return store

    def _unchanged(self) -> _Store | None:
        """``_last`` when the file still holds what this object last read or wrote."""
        last, mark = self._last, self._mark
        if last is None or mark is None:
            return None
        try:
            with open_database(
                self.path, application_id=APPLICATION_ID, version=DB_VERSION, what="snapshot store"
            ) as conn:
                row = conn.execute("SELECT value FROM meta WHERE key = 'written'").fetchone()
        except (OSError, DatabaseMismatch, sqlite3.Error):
            return None  # read as usual, which says what is wrong
        return last if row is not None and row[0] == mark else None

    def _read(self) -> _Store:
        with open_database(
            self.path, application_id=APPLICATION_ID, version=DB_VERSION, what="snapshot store"
        ) as conn:
            conn.execute("BEGIN")
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            if meta.get("format") != STORE_FORMAT:
                raise _CorruptStoreError("its meta table is not a snapshot store's")
            committed_rows = conn.execute("SELECT id, digest FROM committed").fetchall()
            pending_rows = conn.execute("SELECT id, digest FROM pending").fetchall()
            conn.execute("COMMIT")
        written = meta.get("written")
        self._mark = written if isinstance(written, str) else None
        fingerprint = meta.get("fingerprint")
        if not isinstance(fingerprint, str):
            raise _CorruptStoreError("'fingerprint' is not a string")
        committed: _Snapshot | None = None
        if meta.get("committed_cookie") is not None:
            committed = _Snapshot(
                cookie=_blob(meta["committed_cookie"], "committed cookie"),
                generation=_generation(meta.get("committed_generation"), "committed generation"),
                digests=_digest_map(dict(committed_rows), "committed"),
            )
        pending: _Pending | None = None
        if meta.get("pending_cookie") is not None:
            base = meta.get("pending_base")
            changed = {k: d for k, d in pending_rows if d is not None}
            pending = _Pending(
                cookie=_blob(meta["pending_cookie"], "pending cookie"),
                generation=_generation(meta.get("pending_generation"), "pending generation"),
                base=None if base is None else _blob(base, "pending base"),
                changed=_digest_map(changed, "pending"),
                deleted=tuple(
                    _digest_map({k: "" for k, d in pending_rows if d is None}, "pending")
                ),
            )
            if pending.base is not None and (committed is None or committed.cookie != pending.base):
                raise _CorruptStoreError("the pending base is not the committed snapshot")
        try:
            retired_list = json.loads(str(meta.get("retired", "[]")))
        except ValueError:
            raise _CorruptStoreError("'retired' is not JSON") from None
        if not isinstance(retired_list, list):
            raise _CorruptStoreError("'retired' is not a list")
        retired = tuple(_unb64(r, "retired[]") for r in retired_list)
        return _Store(fingerprint, committed, pending, retired)

    def _migrate(self) -> _Store:
        # The JSON file of earlier releases: decoded as it always was, then written as the
        # database in its place (when that fails, the JSON stays and is read next time).
        try:
            text = self.path.read_text(encoding="utf-8")
            store = _decode_store(json.loads(text))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise _CorruptStoreError(f"neither a snapshot store database nor JSON: {exc}") from None
        try:
            self._build(store)
        except (sqlite3.Error, OSError) as exc:
            _log.warning(
                "%s: could not migrate the JSON snapshot store to SQLite (%s)",
                self.path,
                describe_error(exc),
            )
        else:
            _log.info("%s: migrated the JSON snapshot store to a SQLite database", self.path)
        return store

    def write(self, store: _Store) -> None:
        """Write ``store`` in one transaction (only the rows that changed).

        Raises:
            _ForeignStoreError: another program's database is at the path.
            sqlite3.Error: the write failed (the old store is intact).
            OSError: the file or its directory cannot be written.
        """
        if self._foreign is not None:
            raise _ForeignStoreError(self._foreign)
        last = self._last
        if last is None:
            self._build(store)
            return
        with open_database(
            self.path,
            application_id=APPLICATION_ID,
            version=DB_VERSION,
            what="snapshot store",
            page_limit=self.page_limit,
        ) as conn:
            mark = os.urandom(8).hex()
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._write_changes(conn, last, store, mark)
                conn.execute("COMMIT")
            except BaseException:
                self._mark = None  # the file is as it was, but read it again to be sure
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
        self._last, self._mark = store, mark

    @staticmethod
    def _write_changes(conn: sqlite3.Connection, last: _Store, store: _Store, mark: str) -> None:
        old = last.committed.digests if last.committed is not None else {}
        new: Mapping[str, str] = store.committed.digests if store.committed is not None else {}
        promoted = last.pending
        if old is new:
            pass
        elif (
            promoted is not None
            and promoted.base is None
            and store.committed is not None
            and store.committed.cookie == promoted.cookie
        ):
            # A full image committed: the committed snapshot is its pending rows (a full
            # image has no deletion rows), so the pending table becomes the committed one,
            # which copies no row (a copy of 200k rows costs ~0.15 s and ~10 MiB of WAL).
            conn.execute("DROP TABLE committed")
            conn.execute("ALTER TABLE pending RENAME TO committed")
            conn.execute(_PENDING_TABLE)
        elif (
            promoted is not None
            and promoted.base is not None
            and last.committed is not None
            and promoted.base == last.committed.cookie
            and store.committed is not None
            and store.committed.cookie == promoted.cookie
        ):
            # The pending delta committed (``_promote``): its cookie names the content, the
            # old committed snapshot plus its changes. Only they are written.
            conn.executemany(
                "INSERT OR REPLACE INTO committed VALUES (?, ?)", promoted.changed.items()
            )
            conn.executemany("DELETE FROM committed WHERE id = ?", [(k,) for k in promoted.deleted])
        else:
            upserts = [(k, d) for k, d in new.items() if old.get(k) != d]
            removed = (
                [(k,) for k in old if k not in new] if len(new) - len(upserts) < len(old) else []
            )
            conn.executemany("INSERT OR REPLACE INTO committed VALUES (?, ?)", upserts)
            conn.executemany("DELETE FROM committed WHERE id = ?", removed)
        if last.pending is not store.pending:
            conn.execute("DELETE FROM pending")
            conn.executemany("INSERT INTO pending VALUES (?, ?)", _pending_rows(store.pending))
        conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", _meta_rows(store, mark))

    def _build(self, store: _Store) -> None:
        def fill(conn: sqlite3.Connection) -> None:
            if store.committed is not None:
                conn.executemany(
                    "INSERT INTO committed VALUES (?, ?)", store.committed.digests.items()
                )
            conn.executemany("INSERT INTO pending VALUES (?, ?)", _pending_rows(store.pending))
            conn.executemany("INSERT INTO meta VALUES (?, ?)", _meta_rows(store, mark))

        mark = os.urandom(8).hex()
        self._last = self._mark = None
        kind, _ = sniff(self.path)
        if kind == "sqlite":
            _refuse_foreign(self.path)
        build_database(
            self.path,
            application_id=APPLICATION_ID,
            version=DB_VERSION,
            schema=_SCHEMA,
            fill=fill,
            page_limit=self.page_limit,
        )
        self._last, self._mark = store, mark

    def remove(self) -> None:
        """Delete the store and SQLite's files next to it.

        Raises:
            OSError: a file exists but could not be removed.
        """
        self._last = self._mark = None
        for name in (str(self.path), *(f"{self.path}{s}" for s in SIDECARS)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)


def _refuse_foreign(path: pathlib.Path) -> None:
    try:
        with open_database(
            path, application_id=APPLICATION_ID, version=DB_VERSION, what="snapshot store"
        ):
            return
    except DatabaseMismatch as exc:
        if exc.foreign:
            raise _ForeignStoreError(str(exc)) from None
    except sqlite3.Error:
        return  # damaged: replaced


def _blob(value: object, what: str) -> bytes:
    if not isinstance(value, bytes):
        raise _CorruptStoreError(f"the {what} is not a blob")
    return value
