"""The runner's local record read on demand, and the index of the values entries hold.

Owns: :class:`RecordView`, the :class:`~kanidm_sync._projection.RecordEntries` a loaded
record is (rows decoded when a run looks them up, in bulk by id, every row only when a
run iterates the record); the ``uniques`` table (the unique values and gidnumbers each
entry holds, written in the same transaction as the rows) and deriving it from the rows
when it is missing or behind; decoding a row (an id, a projection). ``_record`` opens,
writes and migrates the database.

Must not: write rows, plan, log, or talk to Kanidm.

A view reads inside the read transaction the load began (WAL: a consistent snapshot of
the record as loaded, whatever is written meanwhile) until the store closes it (after a
save, or at the end of the run). A view read again after that reopens the file, and
refuses (:class:`RecordDamagedError`) if the record is no longer the one it read.

The index (``uniques(key, value, id)``): for each entry, one row per ``(key, value)`` of
``_projection.unique_values`` (name, external id, mail lower-cased; gidnumber), and a
``gid`` row with the gidnumber it holds or kanidmd derives for it
(``_projection.gidnumber_of``). ``meta.indexed`` is the record generation the index was
last written for; a record written by a release without the index (or a failed
derivation) has none or an older one, and the index is derived again from the rows.
"""

from __future__ import annotations

import contextlib
import json.decoder
import json.scanner
import logging
import pathlib
import sqlite3
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Final, cast

from ._projection import RecordEntries, gidnumber_of, unique_values
from ._record_db import describe_error
from ._types import JSONObject

__all__ = [
    "INDEX_SCHEMA",
    "IndexChanges",
    "RecordDamagedError",
    "RecordView",
    "decode_projection",
    "derive_index",
    "ensure_index",
    "index_current",
    "index_rows",
    "parse_id",
]

_log = logging.getLogger("kanidm_sync.runner")

INDEX_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS uniques (
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    id TEXT NOT NULL,
    PRIMARY KEY (key, value, id)
) WITHOUT ROWID;
"""

_GID_KEY: Final = "gid"
_BATCH: Final = 500  # ids per "IN (...)" query (SQLite allows 32,766 parameters)
_READ_ERRORS: Final = (sqlite3.Error, ValueError, TypeError, OverflowError, RecursionError)

# The C scanner json.loads ends in, without its per-call Python layers (a quarter of the
# time of a 300-byte projection).
_scan = json.scanner.make_scanner(json.decoder.JSONDecoder())  # type: ignore[arg-type]
_new = object.__new__
_set = object.__setattr__
_UNKNOWN = uuid.SafeUUID.unknown


class RecordDamagedError(Exception):
    """A row of the record cannot be read (damaged, or edited by hand).

    The runner plans over an unknown base instead, and the next save writes the record
    anew; the message names the file.
    """


def parse_id(text: str) -> uuid.UUID:
    """An entry id as the record writes it (``str(UUID)``), parsed cheaply."""
    # What uuid.UUID(text) builds, at a quarter of its cost (it parses and checks in
    # Python): the ids were written from str(UUID) by the record.
    if len(text) != 36 or text[8] != "-" or text[13] != "-":
        raise ValueError(f"entry id {text[:40]!r} is not a UUID")
    value = _new(uuid.UUID)
    _set(value, "int", int(text.replace("-", ""), 16))
    _set(value, "is_safe", _UNKNOWN)
    return value


def decode_projection(text: str, key: str) -> JSONObject:
    """The projection stored as compact JSON in one row."""
    try:
        value, end = _scan(text, 0)
    except (StopIteration, ValueError) as exc:
        raise ValueError(f"entry {key}: the projection is not JSON ({exc})") from None
    if end != len(text) or type(value) is not dict:
        raise ValueError(f"entry {key}: the projection is not a JSON object")
    return cast("JSONObject", value)


def index_rows(key: str, entry_id: uuid.UUID, projection: JSONObject) -> list[tuple[str, str, str]]:
    """The ``uniques`` rows of one entry (``key`` is its id as the record writes it)."""
    pairs = set(unique_values(projection))
    gid = gidnumber_of(entry_id, projection)
    if gid is not None:
        pairs.add((_GID_KEY, str(gid)))
    return [(k, v, key) for k, v in pairs]


def derive_index(conn: sqlite3.Connection, generation: int) -> None:
    """(Re)build the index from the rows, inside the caller's write transaction."""
    for statement in INDEX_SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute("DELETE FROM uniques")
    rows = conn.execute("SELECT id, projection FROM entries")
    for chunk in iter(lambda: rows.fetchmany(2000), []):
        conn.executemany(
            "INSERT INTO uniques VALUES (?, ?, ?)",
            [
                row
                for key, text in chunk
                for row in index_rows(key, parse_id(key), decode_projection(text, key))
            ],
        )
    conn.execute("INSERT OR REPLACE INTO meta VALUES ('indexed', ?)", (generation,))


def index_current(conn: sqlite3.Connection, meta: Mapping[str, object]) -> bool:
    """Whether the ``uniques`` index was written for the record's current generation."""
    if meta.get("indexed") != meta.get("generation"):
        return False
    found = conn.execute(
        "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'uniques'"
    ).fetchone()
    return found is not None


def ensure_index(conn: sqlite3.Connection, path: pathlib.Path, record_format: str) -> None:
    """Derive the index when it is missing or behind the rows (one write transaction).

    A failure to write (a full disk, a read-only file) leaves it as it is: a view then
    answers from the rows. A damaged database raises.
    """
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as exc:
        _log.info("%s: the record's index is not checked (%s)", path, describe_error(exc))
        return
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        generation = meta.get("generation")
        if (
            meta.get("format") != record_format
            or meta.get("cookie") is None
            or not isinstance(generation, int)
            or index_current(conn, meta)
        ):
            conn.execute("COMMIT")
            return
        derive_index(conn, generation)
        conn.execute("COMMIT")
        _log.info("%s: indexed the unique values of the record's entries", path)
    except sqlite3.Error as exc:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        if getattr(exc, "sqlite_errorname", "").startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
            raise
        _log.info("%s: could not index the record (%s)", path, describe_error(exc))
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise


class IndexChanges:
    """The ``uniques`` rows a save changes: only the values that moved (most updates: none)."""

    def __init__(self) -> None:
        self.dropped: list[tuple[str, str, str]] = []
        self.added: list[tuple[str, str, str]] = []

    def replace(
        self,
        text: str,
        key: uuid.UUID,
        previous: JSONObject | None,
        projection: JSONObject | None,
    ) -> None:
        """Entry ``key`` (``text``) goes from ``previous`` to ``projection`` (None: none).

        The index is current (``meta.indexed``), so an entry the record does not hold has
        no rows, and one it holds has exactly the rows of its projection.
        """
        now = index_rows(text, key, projection) if projection is not None else []
        before = index_rows(text, key, previous) if previous is not None else []
        self.dropped.extend(r for r in before if r not in now)
        self.added.extend(r for r in now if r not in before)


def _close_connection(conn: sqlite3.Connection) -> None:
    """End ``conn``'s read transaction, if any, and close it."""
    with contextlib.suppress(sqlite3.Error):
        if conn.in_transaction:
            conn.execute("COMMIT")
    conn.close()


class RecordView(RecordEntries):
    """The entries of the record as loaded, decoded when looked up.

    Args:
        path: the record file (for messages).
        conn: a connection inside the read transaction of the load, or ``None`` (a view
            of a file just written: the first read opens it).
        generation: the record's generation as loaded.
        count: how many entries it holds.
        indexed: the ``uniques`` index is current (else the lookups read every row).
        reopen: opens the file again (after :meth:`close`).

    Attributes:
        rows_read: how many projections this view decoded (a test reads it).
    """

    def __init__(
        self,
        path: pathlib.Path,
        conn: sqlite3.Connection | None,
        *,
        generation: int,
        count: int,
        indexed: bool,
        reopen: Callable[[], sqlite3.Connection] | None,
    ) -> None:
        self.path = path
        self.generation = generation
        self.indexed = indexed
        self.rows_read = 0
        self._conn: sqlite3.Connection | None = None
        self._closer: weakref.finalize[[sqlite3.Connection], RecordView] | None = None
        if conn is not None:
            self._hold(conn)
        self._reopen = reopen
        self._count = count
        self._cache: dict[uuid.UUID, JSONObject] = {}
        self._absent: set[uuid.UUID] = set()
        self._complete = False
        self._gids: set[int] | None = None
        self._external_ids: set[str] | None = None

    # --- the connection ----------------------------------------------------------------

    def _hold(self, conn: sqlite3.Connection) -> None:
        """Own ``conn``: it is closed by :meth:`close`, or when this view is collected.

        A ``weakref.finalize``, not ``__del__``: when a view ends in a reference cycle (a
        traceback holding a plan holding the record), the collector may finalize the
        connection before the view's ``__del__`` runs, and Python 3.13 warns about a
        connection that was not closed. The finalizer holds the connection itself, so
        it is never part of that garbage and is closed first.
        """
        self._conn = conn
        self._closer = weakref.finalize(self, _close_connection, conn)

    def close(self) -> None:
        """End the read transaction and close the connection (reads reopen the file)."""
        closer, self._closer, self._conn = self._closer, None, None
        if closer is not None:
            closer()

    def advance(
        self,
        generation: int,
        changed: Iterable[tuple[uuid.UUID, JSONObject]],
        removed: Iterable[uuid.UUID],
        count: int,
    ) -> None:
        """Follow a save of the store: the record is now this view plus the changes."""
        self.close()
        cache, absent = self._cache, self._absent
        for key, projection in changed:
            cache[key] = projection
            absent.discard(key)
        for key in removed:
            cache.pop(key, None)
            absent.add(key)
        self._count = count
        self.generation = generation
        self._gids = self._external_ids = None

    def detach(self) -> None:
        """The store replaced or emptied the file: this view can no longer read it."""
        self.close()
        self._reopen = None

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
        try:
            conn = self._conn
            if conn is None:
                if self._reopen is None:
                    raise RecordDamagedError(
                        f"{self.path}: the record was written anew since it was read"
                    )
                conn = self._reopen()
                self._hold(conn)
                conn.execute("BEGIN")
                row = conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
                if row is None or row[0] != self.generation:
                    raise RecordDamagedError(
                        f"{self.path}: the record changed since it was read (another process?)"
                    )
            return conn.execute(sql, params).fetchall()
        except RecordDamagedError:
            raise
        except _READ_ERRORS as exc:
            raise RecordDamagedError(f"{self.path}: corrupt record ({exc})") from exc

    def _decode(self, key: str, text: object) -> JSONObject:
        self.rows_read += 1
        try:
            if not isinstance(text, str):
                raise TypeError(f"entry {key}: the projection is not text")
            return decode_projection(text, key)
        except _READ_ERRORS as exc:
            raise RecordDamagedError(f"{self.path}: corrupt record ({exc})") from exc

    # --- lookups -----------------------------------------------------------------------

    def prefetch(self, ids: Iterable[uuid.UUID]) -> None:
        """Read the rows of ``ids`` in bulk (every row when they are a large part of it)."""
        if self._complete:
            return
        cache, absent = self._cache, self._absent
        missing = {str(i): i for i in ids if i not in cache and i not in absent}
        if not missing:
            return
        if len(missing) > 256 and len(missing) * 4 > self._count:
            self._load_all()
            return
        keys = list(missing)
        for start in range(0, len(keys), _BATCH):
            part = keys[start : start + _BATCH]
            marks = ",".join("?" * len(part))
            for key, text in self._query(
                f"SELECT id, projection FROM entries WHERE id IN ({marks})", part
            ):
                cache[missing[str(key)]] = self._decode(str(key), text)
        absent.update(i for i in missing.values() if i not in cache)

    def _load_all(self) -> None:
        cache = self._cache
        for key, text in self._query("SELECT id, projection FROM entries"):
            name = str(key)
            try:
                entry_id = parse_id(name)
            except ValueError as exc:
                raise RecordDamagedError(f"{self.path}: corrupt record ({exc})") from exc
            if entry_id not in cache:
                cache[entry_id] = self._decode(name, text)
        self._absent.clear()
        self._complete = True
        self._count = len(cache)

    def ids(self) -> set[uuid.UUID]:
        """Every entry id (the projections are not read)."""
        if self._complete:
            return set(self._cache)
        try:
            return {parse_id(str(key)) for (key,) in self._query("SELECT id FROM entries")}
        except ValueError as exc:
            raise RecordDamagedError(f"{self.path}: corrupt record ({exc})") from exc

    def holds_gidnumber(self, gid: int) -> bool:
        """Whether an entry holds ``gid`` or kanidmd derives it for one."""
        if self.indexed:
            return bool(
                self._query(
                    "SELECT 1 FROM uniques WHERE key = ? AND value = ? LIMIT 1",
                    (_GID_KEY, str(gid)),
                )
            )
        if self._gids is None:
            self._gids = {g for k, p in self.items() if (g := gidnumber_of(k, p)) is not None}
        return gid in self._gids

    def holds_external_id(self, value: str) -> bool:
        """Whether an entry's external id, lower-cased, is ``value``."""
        if self.indexed:
            return bool(
                self._query(
                    "SELECT 1 FROM uniques WHERE key = 'externalId' AND value = ? LIMIT 1",
                    (value,),
                )
            )
        if self._external_ids is None:
            self._external_ids = {
                v for _, p in self.items() for k, v in unique_values(p) if k == "externalId"
            }
        return value in self._external_ids

    # --- the mapping -------------------------------------------------------------------

    def __getitem__(self, key: uuid.UUID) -> JSONObject:
        found = self._cache.get(key)
        if found is not None:
            return found
        if self._complete or key in self._absent or not isinstance(key, uuid.UUID):
            raise KeyError(key)
        self.prefetch((key,))
        found = self._cache.get(key)
        if found is None:
            raise KeyError(key)
        return found

    def __contains__(self, key: object) -> bool:
        try:
            self[key]  # type: ignore[index]
        except KeyError:
            return False
        return True

    def __iter__(self) -> Iterator[uuid.UUID]:
        if not self._complete:
            self._load_all()
        return iter(list(self._cache))

    def __len__(self) -> int:
        return self._count

    def __repr__(self) -> str:
        return f"RecordView(<{self._count} entries, {len(self._cache)} read>)"
