"""The rows of the runner's local record: its schema, and entries and history as rows.

Pure; no I/O (``_record`` opens the database and writes these rows). Split from
``_record`` along that seam: what a row holds, against how the file is read and written.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator, Sequence
from typing import Final

from ._projection import ProjectionTexts, external_id_of, kind_of, name_of, projection_text
from ._record_view import INDEX_SCHEMA, index_rows
from ._types import JSONObject

__all__ = ["SCHEMA", "Row", "entry_row", "history_change", "text_index_rows", "text_rows"]

SCHEMA: Final = (
    """
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
    + INDEX_SCHEMA
)

_encode = projection_text  # the plan's texts (``ProjectionTexts``) are written as they are
_encode_ascii = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=True, check_circular=False, allow_nan=False
).encode


Row = tuple[str, str, str | None, str | None, str, str]


def entry_row(key: uuid.UUID, projection: JSONObject, text: str | None = None) -> Row:
    """The row of one entry (``text``: its projection's text when already written)."""
    if text is None:
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


def text_rows(entries: ProjectionTexts) -> Iterator[Row]:
    """The rows of a plan's projections, from their texts (decoded for the columns)."""
    for key, text in entries.texts():
        yield entry_row(key, json.loads(text), text)


def text_index_rows(entries: ProjectionTexts) -> Iterator[tuple[str, str, str]]:
    """The ``uniques`` rows of a plan's projections, from their texts."""
    for key, text in entries.texts():
        yield from index_rows(str(key), key, json.loads(text))


def history_change(
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
