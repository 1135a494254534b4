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

    meta(key, value)        format, version, cookie (blob; NULL: no record), generation, count
    entries(id, kind, name, external_id, digest, projection)    one row per entry
    deleted(seq, id)        ids this runner deleted, oldest first

``projection`` is the entry's projection as compact JSON (secrets as salted digests) and
``digest`` a SHA-256 (128 bits, hex) of it. The store remembers the projections it last
read or wrote, so a save compares each entry by identity (or equality) and writes only
the rows that changed.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import json.decoder
import json.scanner
import logging
import os
import pathlib
import sqlite3
import uuid
from collections.abc import Mapping, Sequence
from typing import Final, cast

import attrs

from ._exceptions import KanidmSyncError
from ._projection import KnownState, external_id_of, kind_of, name_of
from ._record_db import (
    SIDECARS,
    DatabaseMismatch,
    build_database,
    describe_error,
    is_full,
    open_database,
    sniff,
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

RECORD_FORMAT: Final = "kanidm-sync applied record"
RECORD_VERSION: Final = 2
"""The schema version (``PRAGMA user_version``); version 1 was the JSON file."""
APPLICATION_ID: Final = 0x6B735241
"""``PRAGMA application_id`` of a record database ("ksRA")."""

_SCHEMA: Final = """
CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value) WITHOUT ROWID;
CREATE TABLE entries (
    id TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    name TEXT,
    external_id TEXT,
    digest TEXT NOT NULL,
    projection TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE deleted (seq INTEGER PRIMARY KEY, id TEXT NOT NULL);
"""

_encode = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, check_circular=False, allow_nan=False
).encode
_encode_ascii = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=True, check_circular=False, allow_nan=False
).encode
# The C scanner json.loads ends in, without its per-call Python layers (a quarter of the
# time of a 300-byte projection).
_scan = json.scanner.make_scanner(json.decoder.JSONDecoder())  # type: ignore[arg-type]


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


@attrs.frozen
class RecordEntry:
    """One entry of the record, as ``kanidm-sync status --entries`` lists it."""

    kind: str
    name: str | None
    id: str
    external_id: str | None


@attrs.define
class _Synced:
    """What the database holds, as this store last read or wrote it."""

    generation: int
    entries: Mapping[uuid.UUID, JSONObject]
    deleted: tuple[uuid.UUID, ...]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


_new = object.__new__
_set = object.__setattr__
_UNKNOWN = uuid.SafeUUID.unknown


def _uuid(text: str) -> uuid.UUID:
    # What uuid.UUID(text) builds, at a quarter of its cost (it parses and checks in
    # Python): the ids were written from str(UUID) by this module.
    if len(text) != 36 or text[8] != "-" or text[13] != "-":
        raise ValueError(f"entry id {text[:40]!r} is not a UUID")
    value = _new(uuid.UUID)
    _set(value, "int", int(text.replace("-", ""), 16))
    _set(value, "is_safe", _UNKNOWN)
    return value


def _decode_projection(text: str, key: str) -> JSONObject:
    try:
        value, end = _scan(text, 0)
    except (StopIteration, ValueError) as exc:
        raise ValueError(f"entry {key}: the projection is not JSON ({exc})") from None
    if end != len(text) or type(value) is not dict:
        raise ValueError(f"entry {key}: the projection is not a JSON object")
    return cast("JSONObject", value)


_Row = tuple[str, str, str | None, str | None, str, str]


def _row(key: uuid.UUID, projection: JSONObject) -> _Row:
    text = _encode(projection)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (validation off): store it escaped
        text = _encode_ascii(projection)
        data = text.encode("ascii")
    return (
        str(key),
        kind_of(projection),
        name_of(projection),
        external_id_of(projection),
        hashlib.sha256(data).hexdigest()[:32],
        text,
    )


def _history_change(
    old: tuple[uuid.UUID, ...], new: tuple[uuid.UUID, ...]
) -> tuple[int, Sequence[uuid.UUID]] | None:
    """How ``new`` follows from ``old``: (oldest rows dropped, ids appended), or None."""
    if new == old:
        return 0, ()
    if not old:
        return 0, new
    last = old[-1]
    for p in range(len(new) - 1, -1, -1):
        if new[p] == last and new[: p + 1] == old[len(old) - p - 1 :]:
            return len(old) - p - 1, new[p + 1 :]
    return None


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
        self._foreign: str | None = None  # another program's database: never overwritten

    # --- reading ---------------------------------------------------------------------------

    def load(self) -> KnownState | None:
        """The record, or ``None`` when there is none or it cannot be used (logged)."""
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
        with open_database(
            path, application_id=APPLICATION_ID, version=RECORD_VERSION, what="record"
        ) as conn:
            conn.execute("BEGIN")  # one read transaction: meta, entries and history agree
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            if meta.get("format") != RECORD_FORMAT:
                raise DatabaseMismatch(
                    "its meta table is not a kanidm-sync record's", foreign=False
                )
            cookie, generation = meta.get("cookie"), meta.get("generation")
            if not isinstance(generation, int) or not (cookie is None or isinstance(cookie, bytes)):
                raise ValueError("its cookie or generation has the wrong type")
            if cookie is None:  # the record was forgotten (save(None))
                self._synced = _Synced(generation, {}, ())
                return None
            rows = conn.execute("SELECT id, projection FROM entries").fetchall()
            history = conn.execute("SELECT id FROM deleted ORDER BY seq").fetchall()
            conn.execute("COMMIT")
        entries = {_uuid(key): _decode_projection(text, key) for key, text in rows}
        deleted = tuple(_uuid(key) for (key,) in history)
        self._synced = _Synced(generation, entries, deleted)
        return KnownState(cookie=cookie, entries=entries, deleted=deleted)

    def _load_json(self, path: pathlib.Path) -> KnownState | None:
        # The record of releases before 2 was one JSON file: read it, and write the
        # database in its place.
        known = self._read_json(path)
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

    @staticmethod
    def _read_json(path: pathlib.Path) -> KnownState | None:
        try:
            data: object = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as exc:
            # RecursionError: json's scanner on a hostile, deeply nested file.
            _log.warning(
                "%s: neither a kanidm-sync record database nor a JSON record (%s); diff base "
                "unknown",
                path,
                exc,
            )
            return None
        try:
            return _decode_json(data)
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            _log.warning("%s: corrupt record (%s); diff base unknown", path, exc)
            return None

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
            if known is None:
                self._forget(path)
            elif self._synced is None:
                self._build(known)
            else:
                self._update(path, known, self._synced)
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

        def fill(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?)",
                (_row(k, v) for k, v in entries.items()),
            )
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
                ],
            )

        self._synced = None
        build_database(
            self.path,
            application_id=APPLICATION_ID,
            version=RECORD_VERSION,
            schema=_SCHEMA,
            fill=fill,
            page_limit=self.page_limit,
        )
        self._synced = _Synced(1, entries, tuple(known.deleted))

    def _update(self, path: pathlib.Path, known: KnownState, synced: _Synced) -> None:
        """Write the rows that changed since the store last read or wrote the database."""
        old, new = synced.entries, known.entries
        upserts: list[_Row] = []
        matched = 0
        for key, projection in new.items():
            previous = old.get(key)
            if previous is not None:
                matched += 1
                if previous is projection or previous == projection:
                    continue
            upserts.append(_row(key, projection))
        removed = [(str(k),) for k in old if k not in new] if matched < len(old) else []
        deleted = tuple(known.deleted)
        history = _history_change(synced.deleted, deleted)
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
                    self._write_changes(conn, known, synced, upserts, removed, history)
                    stale = False
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
        if stale:
            self._synced = None
            self._build(known)
        else:
            self._synced = _Synced(synced.generation + 1, new, deleted)

    @staticmethod
    def _write_changes(
        conn: sqlite3.Connection,
        known: KnownState,
        synced: _Synced,
        upserts: list[_Row],
        removed: list[tuple[str]],
        history: tuple[int, Sequence[uuid.UUID]] | None,
    ) -> None:
        conn.executemany("INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?)", upserts)
        conn.executemany("DELETE FROM entries WHERE id = ?", removed)
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
                ("generation", synced.generation + 1),
                ("count", len(known.entries)),
            ],
        )
        conn.execute("COMMIT")

    def _forget(self, path: pathlib.Path) -> None:
        """No record: the database says so (cookie NULL), or the old file goes."""
        synced = self._synced
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
                conn.executemany(
                    "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                    [("cookie", None), ("generation", synced.generation + 1), ("count", 0)],
                )
                conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
        self._synced = _Synced(synced.generation + 1, {}, ())

    # --- inspecting ------------------------------------------------------------------------

    def listing(self) -> tuple[bytes, list[RecordEntry]] | None:
        """The record's cookie and entries, sorted by kind, name and id (no migration).

        Returns:
            ``None`` when there is no usable record (the reason is logged).
        """
        path = self.path
        if path is None:
            return None
        try:
            kind, _ = sniff(path)
        except OSError as exc:
            _log.warning("%s: unreadable record (%s)", path, describe_error(exc))
            return None
        if kind == "other":
            known = self._read_json(path)
            if known is None:
                return None
            rows = [
                RecordEntry(kind_of(p), name_of(p), str(k), external_id_of(p))
                for k, p in known.entries.items()
            ]
            cookie = known.cookie
        elif kind == "sqlite":
            try:
                with open_database(
                    path, application_id=APPLICATION_ID, version=RECORD_VERSION, what="record"
                ) as conn:
                    conn.execute("BEGIN")
                    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
                    rows = [
                        RecordEntry(*r)
                        for r in conn.execute("SELECT kind, name, id, external_id FROM entries")
                    ]
                    conn.execute("COMMIT")
            except (DatabaseMismatch, sqlite3.Error) as exc:
                _log.warning("%s: %s", path, describe_error(exc))
                return None
            held = meta.get("cookie")
            if not isinstance(held, bytes):
                return None
            cookie = held
        else:
            return None
        rows.sort(key=lambda e: (e.kind, e.name or "", e.id))
        return cookie, rows


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


def _decode_json(data: object) -> KnownState:
    """The JSON record of releases before 2 (format version 1)."""
    if not isinstance(data, dict) or data.get("format") != RECORD_FORMAT:
        raise ValueError("not a kanidm-sync record")
    if data.get("version") != 1:
        raise ValueError(f"record version {data.get('version')!r}")
    cookie = base64.urlsafe_b64decode(str(data["cookie"]))
    raw = data["entries"]
    if not isinstance(raw, dict):
        raise TypeError("entries is not an object")
    entries: dict[uuid.UUID, JSONObject] = {}
    for key, value in raw.items():
        if not isinstance(value, dict):
            raise TypeError(f"entry {key} is not an object")
        entries[uuid.UUID(key)] = cast("JSONObject", value)
    deleted = data.get("deleted", [])
    if not isinstance(deleted, list):
        raise TypeError("deleted is not a list")
    return KnownState(
        cookie=cookie, entries=entries, deleted=tuple(uuid.UUID(str(d)) for d in deleted)
    )
