"""The runner's local record of what it last applied for one sync account.

Owns: :class:`_RecordStore`, the SQLite database at ``state_path`` that holds the last known
state (``_projection.KnownState``): its schema, reading it back (a missing, unreadable,
corrupt or foreign file means "unknown"), writing only the rows a run changed in one
transaction with the cookie, migrating the JSON record of earlier releases, and the
listing ``kanidm-sync status --entries`` prints. :class:`RecordWriteError` says that the
record could not be written (a full disk) and that the old one is intact.

Must not: plan, talk to Kanidm, or decide anything: the runner's flows load and save it.

The schema (``PRAGMA application_id`` :data:`APPLICATION_ID`, ``PRAGMA user_version``
:data:`RECORD_VERSION`; documented in docs/runner.md)::

    meta(key, value)        format, version, cookie (blob; NULL: no record), generation,
                            count, indexed (the generation the index was written for)
    entries(id, kind, name, external_id, digest, projection)    one row per entry
    deleted(seq, id)        ids this runner deleted, oldest first
    uniques(key, value, id) the unique values and gidnumber of each entry (``_record_view``)

``projection`` is the entry's projection as compact JSON (secrets as salted digests) and
``digest`` a SHA-256 (128 bits, hex) of it.

A load reads the meta and the deletion history only: the entries are a
``_record_view.RecordView``, which decodes the rows a run looks up (by id, in bulk; by
unique value through the index), so a run that touches 1,000 entries of 200,000 decodes
about 1,000 rows. A save writes only the rows that changed, in one transaction with the
index rows and the cookie: the store remembers what it last read or wrote, and a record
with one run's changes on top of it (``_projection.UpdatedEntries``) names them.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import pathlib
import sqlite3
import uuid
from collections.abc import Iterator, Mapping, Sequence

import attrs

from ._exceptions import KanidmSyncError
from ._projection import (
    KnownState,
    ProjectionTexts,
    UpdatedEntries,
    prefetch,
)
from ._record_db import (
    SIDECARS,
    DatabaseMismatch,
    build_database,
    connect_database,
    describe_error,
    is_full,
    open_database,
    sniff,
)
from ._record_read import (
    APPLICATION_ID,
    RECORD_FORMAT,
    RECORD_VERSION,
    RecordEntry,
    listing,
    read_json,
)
from ._record_rows import (
    SCHEMA,
    Row,
    entry_row,
    history_change,
    text_index_rows,
    text_rows,
)
from ._record_view import (
    IndexChanges,
    RecordDamagedError,
    RecordView,
    ensure_index,
    index_current,
    index_rows,
    parse_id,
)
from ._types import JSONObject

__all__ = [
    "APPLICATION_ID",
    "RECORD_FORMAT",
    "RECORD_VERSION",
    "RecordEntry",
    "RecordWriteError",
]

_log = logging.getLogger("kanidm_sync.runner")


class RecordWriteError(KanidmSyncError):
    """The runner's local record could not be written; the file keeps the previous record.

    Kanidm holds what the run applied; the next run finds the record one cookie behind,
    treats its base as unknown and re-sends the whole image, so nothing is lost.

    Attributes:
        path: the record file.
        disk_full: the write failed because the disk (or a quota) is full.
    """

    path: pathlib.Path
    disk_full: bool

    def __init__(self, message: str, *, path: pathlib.Path, disk_full: bool) -> None:
        super().__init__(message)
        self.path = path
        self.disk_full = disk_full


@attrs.define
class _Synced:
    """What the database holds, as this store last read or wrote it.

    ``indexed``: its ``uniques`` index is current, so a save keeps it current.
    """

    generation: int
    entries: Mapping[uuid.UUID, JSONObject]
    deleted: tuple[uuid.UUID, ...]
    indexed: bool = False


class _RecordStore:
    """The database holding the last known state of one sync account (see ``_plan``).

    Mode 0600 (its ``-wal`` and ``-shm`` files follow the database's mode): it holds the
    entries' wire JSON, with password and TOTP imports replaced by digests.

    Args:
        path: the record (``None``: no record is kept).
        migrate: write a JSON record of an earlier release as a database when it is
            loaded (the runner, which holds the run lock; a reader elsewhere must not).

    Attributes:
        page_limit: a test hook: ``PRAGMA max_page_count`` for every write, which makes a
            write that grows the file past it fail with a real ``SQLITE_FULL``.
    """

    def __init__(self, path: pathlib.Path | None, *, migrate: bool = False) -> None:
        self.path = path
        self._migrate = migrate
        self.page_limit: int | None = None
        self._synced: _Synced | None = None
        self._view: RecordView | None = None  # the entries of the last load
        self._foreign: str | None = None  # another program's database: never overwritten

    def close(self) -> None:
        """End the read of the last load (a run is over); its entries reopen the file."""
        if self._view is not None:
            self._view.close()

    def discard(self) -> None:
        """The last load turned out damaged (a row the run read): the next save rebuilds."""
        self._drop_view()
        self._synced = None

    def _drop_view(self) -> None:
        if self._view is not None:
            self._view.detach()
            self._view = None

    def _connect(self) -> sqlite3.Connection:
        assert self.path is not None
        return connect_database(
            self.path,
            application_id=APPLICATION_ID,
            version=RECORD_VERSION,
            what="record",
            page_limit=self.page_limit,
        )

    # --- reading ---------------------------------------------------------------------------

    def load(self) -> KnownState | None:
        """The record, or ``None`` when there is none or it cannot be used (logged).

        Its entries are read on demand (a :class:`~kanidm_sync._record_view.RecordView`,
        inside a read transaction until :meth:`close` or the next save); a JSON record
        is read whole.
        """
        self._drop_view()
        self._synced = None
        self._foreign = None
        path = self.path
        if path is None:
            return None
        try:
            kind, _ = sniff(path)
        except OSError as exc:
            _log.warning("%s: unreadable record (%s); diff base unknown", path, describe_error(exc))
            return None
        if kind == "missing":
            return None
        if kind == "empty":
            _log.warning("%s: the record file is empty; diff base unknown", path)
            return None
        if kind == "other":
            return self._load_json(path)
        try:
            return self._load_database(path)
        except DatabaseMismatch as exc:
            if exc.foreign:
                self._foreign = str(exc)
            _log.warning("%s: %s; diff base unknown", path, exc)
        except (sqlite3.Error, ValueError, TypeError, OverflowError, RecursionError) as exc:
            _log.warning("%s: corrupt record (%s); diff base unknown", path, describe_error(exc))
        return None

    def _load_database(self, path: pathlib.Path) -> KnownState | None:
        conn = self._connect()
        try:
            if self._migrate:
                ensure_index(conn, path, RECORD_FORMAT)
            conn.execute("BEGIN")  # one read transaction: meta, entries and history agree
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            if meta.get("format") != RECORD_FORMAT:
                raise DatabaseMismatch(
                    "its meta table is not a kanidm-sync record's", foreign=False
                )
            cookie, generation = meta.get("cookie"), meta.get("generation")
            if not isinstance(generation, int) or not (cookie is None or isinstance(cookie, bytes)):
                raise ValueError("its cookie or generation has the wrong type")
            indexed = index_current(conn, meta)
            if cookie is None:  # the record was forgotten (save(None))
                conn.execute("COMMIT")
                conn.close()
                self._synced = _Synced(generation, {}, (), indexed)
                return None
            count = meta.get("count")
            if not isinstance(count, int) or isinstance(count, bool):
                count = conn.execute("SELECT count(*) FROM entries").fetchone()[0]
            history = conn.execute("SELECT id FROM deleted ORDER BY seq").fetchall()
            deleted = tuple(parse_id(key) for (key,) in history)
        except BaseException:
            conn.close()
            raise
        view = self._new_view(path, conn, generation=generation, count=count, indexed=indexed)
        self._view = view
        self._synced = _Synced(generation, view, deleted, indexed)
        return KnownState(cookie=cookie, entries=view, deleted=deleted)

    @staticmethod
    def _new_view(
        path: pathlib.Path,
        conn: sqlite3.Connection | None,
        *,
        generation: int,
        count: int,
        indexed: bool,
    ) -> RecordView:
        return RecordView(
            path,
            conn,
            generation=generation,
            count=count,
            indexed=indexed,
            # Not a bound method: the view must not refer back to the store. Without that
            # cycle the view (and its connection, which it closes) goes as soon as the
            # last KnownState holding it does, instead of at a garbage collection that may
            # finalize the connection first (an unclosed-connection ResourceWarning).
            reopen=functools.partial(
                connect_database,
                path,
                application_id=APPLICATION_ID,
                version=RECORD_VERSION,
                what="record",
            ),
        )

    def _load_json(self, path: pathlib.Path) -> KnownState | None:
        # The record of releases before 2 was one JSON file: read it, and write the
        # database in its place.
        known = read_json(path)
        if known is None or not self._migrate:
            return known
        try:
            self._build(known)
        except (sqlite3.Error, OSError) as exc:
            _log.warning(
                "%s: could not migrate the JSON record to SQLite (%s); it is used as it is",
                path,
                describe_error(exc),
            )
        else:
            _log.info("%s: migrated the JSON record to a SQLite database", path)
        return known

    # --- writing ---------------------------------------------------------------------------

    def save(self, known: KnownState | None) -> None:
        """Write ``known`` (``None``: forget the record) in one transaction.

        Raises:
            RecordWriteError: the record could not be written; the file keeps the
                previous one (a full disk, a foreign database at the path).
        """
        path = self.path
        if path is None:
            return
        if self._foreign is None and self._synced is None:
            self._foreign = _foreign_database(path)
        if self._foreign is not None:
            raise RecordWriteError(
                f"{path}: the local record was not updated: the file is {self._foreign}, "
                "and kanidm-sync does not overwrite it; give the runner another state_path",
                path=path,
                disk_full=False,
            )
        try:
            try:
                if known is None:
                    self._forget(path)
                elif self._synced is None:
                    self._build(known)
                else:
                    self._update(path, known, self._synced)
            except RecordDamagedError as exc:
                # A row the save had to read is damaged: the record is written anew.
                _log.warning("%s; writing the record anew", exc)
                self._synced = None
                assert known is not None  # forgetting reads nothing
                self._rebuild(path, known)
        except (sqlite3.Error, OSError) as exc:
            full = is_full(exc)
            raise RecordWriteError(
                f"{path}: the local record was not updated ({describe_error(exc)}); the file "
                "still holds the previous record"
                + (": free some space; until then" if full else ";")
                + " every run finds it one cookie behind and re-sends the whole image",
                path=path,
                disk_full=full,
            ) from exc

    def _build(self, known: KnownState) -> None:
        """A new database holding ``known``, put in place atomically."""
        assert self.path is not None
        entries = known.entries
        if not isinstance(entries, dict | ProjectionTexts):
            # Read on demand from the file about to be replaced: read it first, whole.
            entries = dict(entries.items())
        self._drop_view()

        def fill(conn: sqlite3.Connection) -> None:
            if isinstance(entries, ProjectionTexts):
                rows: Iterator[Row] = text_rows(entries)
                uniques = text_index_rows(entries)
            else:
                rows = (entry_row(k, v) for k, v in entries.items())
                uniques = (r for k, v in entries.items() for r in index_rows(str(k), k, v))
            conn.executemany("INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?)", rows)
            conn.executemany("INSERT INTO uniques VALUES (?, ?, ?)", uniques)
            conn.executemany(
                "INSERT INTO deleted (id) VALUES (?)", ((str(d),) for d in known.deleted)
            )
            conn.executemany(
                "INSERT INTO meta VALUES (?, ?)",
                [
                    ("format", RECORD_FORMAT),
                    ("version", RECORD_VERSION),
                    ("cookie", known.cookie),
                    ("generation", 1),
                    ("count", len(entries)),
                    ("indexed", 1),
                ],
            )

        self._synced = None
        build_database(
            self.path,
            application_id=APPLICATION_ID,
            version=RECORD_VERSION,
            schema=SCHEMA,
            fill=fill,
            page_limit=self.page_limit,
        )
        # What was written is remembered as a view of the new file, not as the ``entries``
        # just written: a first run's 200,000 projections would otherwise stay in memory
        # until the next run's load. The view has no connection yet (its first read opens
        # one): opening one here could fail after the write succeeded.
        view = self._new_view(self.path, None, generation=1, count=len(entries), indexed=True)
        self._view = view
        self._synced = _Synced(1, view, tuple(known.deleted), True)

    def _update(self, path: pathlib.Path, known: KnownState, synced: _Synced) -> None:
        """Write the rows that changed since the store last read or wrote the database."""
        old, new = synced.entries, known.entries
        on_top = isinstance(new, UpdatedEntries) and new.base is old
        if not on_top:
            prefetch(old, new.keys())  # one read of what a record read on demand holds
        # Over one run's changes on top of what the store read, only they are compared.
        candidates = new.changed if isinstance(new, UpdatedEntries) and on_top else new
        upserts: list[Row] = []
        index = IndexChanges()
        changed: list[tuple[uuid.UUID, JSONObject]] = []
        matched = 0
        for key, projection in candidates.items():
            previous = old.get(key)
            if previous is not None:
                matched += 1
                if previous is projection or previous == projection:
                    continue
            row = entry_row(key, projection)
            upserts.append(row)
            changed.append((key, projection))
            if synced.indexed:
                index.replace(row[0], key, previous, projection)
        if isinstance(new, UpdatedEntries) and on_top:
            removed_ids = [k for k in new.removed if k in old]
        else:
            removed_ids = [k for k in old if k not in new] if matched < len(old) else []
        removed = [(str(k),) for k in removed_ids]
        if synced.indexed:
            for k, (text,) in zip(removed_ids, removed, strict=True):
                index.replace(text, k, old.get(k), None)
        deleted = tuple(known.deleted)
        history = history_change(synced.deleted, deleted)
        with open_database(
            path,
            application_id=APPLICATION_ID,
            version=RECORD_VERSION,
            what="record",
            page_limit=self.page_limit,
        ) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
                if row is None or row[0] != synced.generation:
                    # Written by another process since this store read it (no lock on
                    # this platform?): what it holds is unknown here.
                    conn.execute("ROLLBACK")
                    stale = True
                else:
                    self._write_changes(conn, known, synced, upserts, index, removed, history)
                    stale = False
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
        if stale:
            self._rebuild(path, known)
            return
        generation = synced.generation + 1
        view = self._view
        if on_top and view is not None and old is view:
            # The view follows the file: what this store last wrote is it plus the changes.
            view.advance(generation, changed, removed_ids, len(new))
            self._synced = _Synced(generation, view, deleted, synced.indexed)
        else:
            self._drop_view()
            # As after a first write: a view of the file, not the entries just written.
            view = self._new_view(
                path, None, generation=generation, count=len(new), indexed=synced.indexed
            )
            self._view = view
            self._synced = _Synced(generation, view, deleted, synced.indexed)

    def _rebuild(self, path: pathlib.Path, known: KnownState) -> None:
        """The file was written by another process: write ``known`` whole, if it can be read."""
        try:
            self._build(known)
        except RecordDamagedError as exc:
            # What this run read on demand is gone with the other writer's version: the
            # record is forgotten, and the next run re-sends the whole image.
            _log.warning("%s; the record is forgotten", exc)
            self._drop_view()
            self._synced = None
            self._forget(path)

    @staticmethod
    def _write_changes(
        conn: sqlite3.Connection,
        known: KnownState,
        synced: _Synced,
        upserts: list[Row],
        index: IndexChanges,
        removed: list[tuple[str]],
        history: tuple[int, Sequence[uuid.UUID]] | None,
    ) -> None:
        conn.executemany("INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?)", upserts)
        conn.executemany("DELETE FROM entries WHERE id = ?", removed)
        generation = synced.generation + 1
        if synced.indexed:
            # The index follows the rows in the same transaction.
            conn.executemany(
                "DELETE FROM uniques WHERE key = ? AND value = ? AND id = ?", index.dropped
            )
            conn.executemany("INSERT OR IGNORE INTO uniques VALUES (?, ?, ?)", index.added)
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('indexed', ?)", (generation,))
        dropped: int = 0
        appended: Sequence[uuid.UUID] = known.deleted
        if history is None:  # not the old history plus ids: written whole
            conn.execute("DELETE FROM deleted")
        else:
            dropped, appended = history
        if dropped:
            conn.execute(
                "DELETE FROM deleted WHERE seq IN (SELECT seq FROM deleted ORDER BY seq LIMIT ?)",
                (dropped,),
            )
        conn.executemany("INSERT INTO deleted (id) VALUES (?)", [(str(d),) for d in appended])
        conn.executemany(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)",
            [
                ("cookie", known.cookie),
                ("generation", generation),
                ("count", len(known.entries)),
            ],
        )
        conn.execute("COMMIT")

    def _forget(self, path: pathlib.Path) -> None:
        """No record: the database says so (cookie NULL), or the old file goes."""
        synced = self._synced
        self._drop_view()
        if synced is None:
            for name in (str(path), *(f"{path}{s}" for s in SIDECARS)):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name)
            return
        with open_database(
            path, application_id=APPLICATION_ID, version=RECORD_VERSION, what="record"
        ) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("DELETE FROM entries")
                conn.execute("DELETE FROM deleted")
                if synced.indexed:
                    conn.execute("DELETE FROM uniques")
                conn.executemany(
                    "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                    [
                        ("cookie", None),
                        ("generation", synced.generation + 1),
                        ("count", 0),
                        *([("indexed", synced.generation + 1)] if synced.indexed else []),
                    ],
                )
                conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
        self._synced = _Synced(synced.generation + 1, {}, (), synced.indexed)

    # --- inspecting ------------------------------------------------------------------------

    def listing(self) -> tuple[bytes, list[RecordEntry]] | None:
        """The record's cookie and entries, sorted by kind, name and id (no migration).

        Returns:
            ``None`` when there is no usable record (the reason is logged).
        """
        return None if self.path is None else listing(self.path)


def _foreign_database(path: pathlib.Path) -> str | None:
    """Why the file at ``path`` must not be overwritten (another program's database)."""
    try:
        kind, _ = sniff(path)
        if kind != "sqlite":
            return None
        with open_database(
            path, application_id=APPLICATION_ID, version=RECORD_VERSION, what="record"
        ):
            return None
    except DatabaseMismatch as exc:
        return str(exc) if exc.foreign else None
    except (OSError, sqlite3.Error):
        return None  # damaged: replaced like a corrupt JSON file
