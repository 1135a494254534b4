"""A warm SnapshotAdapter costs what changed in its store too (issue 15, item 2).

The adapter of a long-running runner keeps the snapshot it last wrote: the next fetch does
not read the committed rows again unless another writer changed the file, and promoting a
committed delta writes only that delta's rows.
"""

from __future__ import annotations

import contextlib
import pathlib
import sqlite3
import uuid

import pytest

from kanidm_sync import REFRESH, ActiveState, Mail, Person
from kanidm_sync.adapters import Delta, SnapshotAdapter
from kanidm_sync.adapters._snapshot_db import _SnapshotDb
from kanidm_sync.adapters._snapshot_store import _entry_digest


def person(n: int, displayname: str | None = None) -> Person:
    return Person(
        id=uuid.UUID(int=0x2000 + n),
        external_id=f"uid=s{n},ou=people",
        name=f"s{n}",
        displayname=displayname or f"S {n}",
        mail=[Mail(f"s{n}@example.org")],
    )


class Listing:
    def __init__(self, entries: list[Person]) -> None:
        self.entries = entries

    def snapshot(self) -> list[Person]:
        return list(self.entries)


def query(path: pathlib.Path, text: str) -> list[tuple[object, ...]]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return sorted(conn.execute(text).fetchall())


def test_a_warm_adapter_reads_its_store_again_only_after_another_writer(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[pathlib.Path] = []
    read = _SnapshotDb._read

    def counted(db: _SnapshotDb) -> object:
        reads.append(db.path)
        return read(db)

    monkeypatch.setattr(_SnapshotDb, "_read", counted)
    path = tmp_path / "snapshot.db"
    source = Listing([person(n) for n in range(30)])
    adapter = SnapshotAdapter(source, path)
    first = adapter.fetch(REFRESH)
    source.entries[3] = person(3, "Three")
    delta = adapter.fetch(ActiveState(first.cookie))  # promotes the image
    assert isinstance(delta, Delta)
    assert [person(3, "Three")] == list(delta.entries)
    again = adapter.fetch(ActiveState(delta.cookie))  # promotes the delta
    assert isinstance(again, Delta)
    assert [] == list(again.entries)
    assert [] == reads  # every store came from memory
    # Another writer (a second adapter on the file, an operator's reset): read again.
    SnapshotAdapter(source, path).fetch(REFRESH)
    reads.clear()  # (that one read the file, being new)
    source.entries[4] = person(4, "Four")
    later = adapter.fetch(ActiveState(again.cookie))
    assert 1 == len(reads)
    assert not isinstance(later, Delta)  # Kanidm's cookie is now a retired one: full image


def test_promoting_a_delta_writes_only_its_rows(tmp_path: pathlib.Path) -> None:
    """One change and one deletion: two committed rows touched, the rest as they were."""
    path = tmp_path / "snapshot.db"
    source = Listing([person(n) for n in range(40)])
    adapter = SnapshotAdapter(source, path)
    first = adapter.fetch(REFRESH)
    base = adapter.fetch(ActiveState(first.cookie))  # promotes the image
    assert isinstance(base, Delta)
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("CREATE TABLE probe (op TEXT, id TEXT)")
        conn.execute(
            "CREATE TRIGGER probe_insert AFTER INSERT ON committed "
            "BEGIN INSERT INTO probe VALUES ('write', NEW.id); END"
        )
        conn.execute(
            "CREATE TRIGGER probe_delete AFTER DELETE ON committed "
            "BEGIN INSERT INTO probe VALUES ('delete', OLD.id); END"
        )
    source.entries[6] = person(6, "Six")
    del source.entries[9]
    delta = adapter.fetch(ActiveState(base.cookie))
    assert isinstance(delta, Delta)
    assert [person(9).id] == list(delta.deleted)
    adapter.fetch(ActiveState(delta.cookie))  # promotes it
    touched = query(path, "SELECT op, id FROM probe")
    # INSERT OR REPLACE of an existing row is a delete and an insert.
    assert {("write", person(6).id.hex), ("delete", person(9).id.hex)} <= set(touched)
    assert {i for _, i in touched} == {person(6).id.hex, person(9).id.hex}
    expected = sorted((e.id.hex, _entry_digest(e)) for e in source.entries)
    assert expected == query(path, "SELECT id, digest FROM committed")
    fresh = _SnapshotDb(path).load()
    assert fresh is not None
    assert fresh.committed is not None
    assert dict(expected) == dict(fresh.committed.digests)
