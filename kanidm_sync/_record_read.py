"""Reading the runner's local record without a store: the listing, and the JSON record.

Owns: the record's format name, schema version and application id; :func:`listing`
(what ``kanidm-sync status --entries`` prints, from the database or a JSON record), and
reading the JSON record releases before 2 wrote (format version 1) into a
:class:`~kanidm_sync._projection.KnownState`, which ``_record`` migrates to the database
on first use.

Must not: write anything.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import pathlib
import sqlite3
import uuid
from typing import Final, cast

import attrs

from ._projection import KnownState, external_id_of, kind_of, name_of
from ._record_db import DatabaseMismatch, describe_error, open_database, sniff
from ._types import JSONObject

__all__ = [
    "APPLICATION_ID",
    "RECORD_FORMAT",
    "RECORD_VERSION",
    "RecordEntry",
    "listing",
    "read_json",
]

_log = logging.getLogger("kanidm_sync.runner")

RECORD_FORMAT: Final = "kanidm-sync applied record"
RECORD_VERSION: Final = 2
"""The schema version (``PRAGMA user_version``); version 1 was the JSON file."""
APPLICATION_ID: Final = 0x6B735241
"""``PRAGMA application_id`` of a record database ("ksRA")."""


@attrs.frozen
class RecordEntry:
    """One entry of the record, as ``kanidm-sync status --entries`` lists it."""

    kind: str
    name: str | None
    id: str
    external_id: str | None


def listing(path: pathlib.Path) -> tuple[bytes, list[RecordEntry]] | None:
    """The record's cookie and entries, sorted by kind, name and id.

    Returns:
        ``None`` when there is no usable record (the reason is logged).
    """
    try:
        kind, _ = sniff(path)
    except OSError as exc:
        _log.warning("%s: unreadable record (%s)", path, describe_error(exc))
        return None
    if kind == "other":
        known = read_json(path)
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


def read_json(path: pathlib.Path) -> KnownState | None:
    """The JSON record at ``path``, or ``None`` (a warning naming the file) if it is not one."""
    try:
        data: object = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        # RecursionError: json's scanner on a hostile, deeply nested file.
        _log.warning(
            "%s: neither a kanidm-sync record database nor a JSON record (%s); diff base unknown",
            path,
            exc,
        )
        return None
    try:
        return _decode_json(data)
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        _log.warning("%s: corrupt record (%s); diff base unknown", path, exc)
        return None


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
