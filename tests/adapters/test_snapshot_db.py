"""The snapshot store as a SQLite database: migration, changed rows only, faults (issue 15)."""

from __future__ import annotations

import contextlib
import json
import logging
import pathlib
import sqlite3
import stat
import uuid
from collections.abc import Iterable

import pytest

from kanidm_sync import REFRESH, ActiveState, Entry, Mail, Person, SourceError
from kanidm_sync.adapters import Delta, FullImage, SnapshotAdapter
from kanidm_sync.adapters._snapshot_db import APPLICATION_ID, _SnapshotDb
from kanidm_sync.adapters._snapshot_store import _encode_store


def person(n: int, displayname: str | None = None) -> Person:
    return Person(
        id=uuid.UUID(int=0x1000 + n),
        external_id=f"uid=u{n},ou=people,dc=example,dc=org",
        name=f"u{n}",
        displayname=displayname or f"User {n}",
        mail=[Mail(f"u{n}@example.org")],
    )


class ListSource:
    def __init__(self, entries: Iterable[Entry]) -> None:
        self.entries = list(entries)

    def snapshot(self) -> list[Entry]:
        return list(self.entries)


def query(path: pathlib.Path, text: str) -> list[tuple[object, ...]]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute(text).fetchall()


def test_the_store_is_a_private_wal_database(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "snapshot.json"
    SnapshotAdapter(ListSource([person(1), person(2)]), path).fetch(REFRESH)
    assert path.read_bytes().startswith(b"SQLite format 3\x00")
    assert 0o600 == stat.S_IMODE(path.stat().st_mode)
    assert [("wal",)] == query(path, "PRAGMA journal_mode")
    assert [(APPLICATION_ID,)] == query(path, "PRAGMA application_id")
    assert 2 == len(query(path, "SELECT id, digest FROM pending"))


def test_a_fetch_writes_only_the_rows_that_changed(tmp_path: pathlib.Path) -> None:
    """Promoting a delta of one changed entry writes that one committed row, not all 50."""
    path = tmp_path / "snapshot.json"
    source = ListSource([person(n) for n in range(50)])
    adapter = SnapshotAdapter(source, path)
    first = adapter.fetch(REFRESH)
    assert isinstance(adapter.fetch(ActiveState(first.cookie)), Delta)  # promotes the image
    # A probe: a trigger logging every row written into the committed table.
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("CREATE TABLE probe (id TEXT)")
        conn.execute(
            "CREATE TRIGGER probe_insert AFTER INSERT ON committed "
            "BEGIN INSERT INTO probe VALUES (NEW.id); END"
        )
    source.entries[6] = person(6, displayname="Changed")
    delta = adapter.fetch(ActiveState(first.cookie))
    assert isinstance(delta, Delta)
    assert [] == query(path, "SELECT id FROM probe")  # pending only
    adapter.fetch(ActiveState(delta.cookie))  # promotes the delta
    assert [(person(6).id.hex,)] == query(path, "SELECT id FROM probe")
    assert 50 == len(query(path, "SELECT id FROM committed"))


def test_promoting_a_full_image_copies_no_row(tmp_path: pathlib.Path) -> None:
    """A committed full image: its pending table becomes the committed one, rows unchanged."""
    path = tmp_path / "snapshot.json"
    source = ListSource([person(n) for n in range(50)])
    adapter = SnapshotAdapter(source, path)
    first = adapter.fetch(REFRESH)
    image = sorted(query(path, "SELECT id, digest FROM pending"))
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("CREATE TABLE probe (id TEXT)")
        conn.execute(
            "CREATE TRIGGER probe_insert AFTER INSERT ON committed "
            "BEGIN INSERT INTO probe VALUES (NEW.id); END"
        )
    source.entries[6] = person(6, displayname="Changed")
    delta = adapter.fetch(ActiveState(first.cookie))  # promotes the image, records a delta
    assert isinstance(delta, Delta)
    assert [] == query(path, "SELECT id FROM probe")
    assert image == sorted(query(path, "SELECT id, digest FROM committed"))
    assert [person(6).id.hex] == [k for k, _ in query(path, "SELECT id, digest FROM pending")]
    # A new process reads the same store: the same delta against the promoted image.
    again = SnapshotAdapter(source, path).fetch(ActiveState(first.cookie))
    assert isinstance(again, Delta)
    assert (delta.cookie, [person(6).id]) == (again.cookie, [e.id for e in again.entries])


def test_a_json_store_is_migrated_once(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The JSON store of an earlier release keeps working: the next fetch is a delta."""
    path = tmp_path / "snapshot.json"
    source = ListSource([person(1), person(2)])
    adapter = SnapshotAdapter(source, path)
    first = adapter.fetch(REFRESH)
    store = _SnapshotDb(path).load()
    assert store is not None
    path.unlink()
    path.write_text(_encode_store(store), encoding="utf-8")  # as release 1 wrote it
    source.entries.append(person(3))
    with caplog.at_level(logging.INFO, logger="kanidm_sync"):
        batch = SnapshotAdapter(source, path).fetch(ActiveState(first.cookie))
        SnapshotAdapter(source, path).fetch(ActiveState(first.cookie))
    assert isinstance(batch, Delta)
    assert [person(3)] == list(batch.entries)
    migrated = [r.getMessage() for r in caplog.records if "migrated" in r.getMessage()]
    assert 1 == len(migrated)
    assert str(path) in migrated[0]
    assert path.read_bytes().startswith(b"SQLite format 3\x00")


def corrupt_pages(path: pathlib.Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def other_version(path: pathlib.Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA user_version = 7")


@pytest.mark.parametrize("damage", [corrupt_pages, other_version])
def test_a_damaged_database_is_a_warning_and_a_full_image(
    tmp_path: pathlib.Path, damage: object, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "snapshot.json"
    source = ListSource([person(n) for n in range(40)])
    adapter = SnapshotAdapter(source, path)
    first = adapter.fetch(REFRESH)
    damage(path)  # type: ignore[operator]
    with caplog.at_level(logging.WARNING, logger="kanidm_sync"):
        batch = SnapshotAdapter(source, path).fetch(ActiveState(first.cookie))
    assert isinstance(batch, FullImage)
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(str(path) in m and "snapshot store" in m for m in warned), warned
    # Rewritten: it works again.
    assert isinstance(SnapshotAdapter(source, path).fetch(ActiveState(batch.cookie)), Delta)


def test_a_foreign_database_is_a_warning_and_never_overwritten(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "snapshot.json"
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
        conn.execute("INSERT INTO notes VALUES ('keep me')")
    adapter = SnapshotAdapter(ListSource([person(1)]), path)
    with (
        caplog.at_level(logging.WARNING, logger="kanidm_sync"),
        pytest.raises(SourceError, match="another program"),
    ):
        adapter.fetch(ActiveState(b"x"))
    assert any(str(path) in r.getMessage() for r in caplog.records)
    assert [("keep me",)] == query(path, "SELECT body FROM notes")


def test_a_full_disk_keeps_the_previous_store(tmp_path: pathlib.Path) -> None:
    """A real SQLITE_FULL while a delta is recorded: SourceError, the old store intact."""
    path = tmp_path / "snapshot.json"
    source = ListSource([person(n) for n in range(10)])
    adapter = SnapshotAdapter(source, path)
    first = adapter.fetch(REFRESH)
    before = path.read_bytes()
    adapter._db.page_limit = query(path, "PRAGMA page_count")[0][0]  # type: ignore[assignment]
    source.entries.extend(person(n, displayname="x" * 200) for n in range(10, 400))
    with pytest.raises(SourceError, match="the disk is full") as info:
        adapter.fetch(ActiveState(first.cookie))
    assert "previous store is intact" in str(info.value)
    assert isinstance(info.value.__cause__, sqlite3.OperationalError)
    assert before == path.read_bytes()
    adapter._db.page_limit = None
    again = SnapshotAdapter(source, path).fetch(ActiveState(first.cookie))
    assert isinstance(again, Delta)  # from the intact store: the same churn again
    assert 390 == len(again.entries)


def test_reset_removes_the_database_and_its_files(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "snapshot.json"
    adapter = SnapshotAdapter(ListSource([person(1)]), path)
    adapter.fetch(REFRESH)
    adapter.reset()
    assert [] == list(tmp_path.iterdir())


def test_the_json_form_still_decodes(tmp_path: pathlib.Path) -> None:
    """The migration reads exactly what release 1 wrote (format and version fields)."""
    path = tmp_path / "snapshot.json"
    SnapshotAdapter(ListSource([person(1)]), path).fetch(REFRESH)
    store = _SnapshotDb(path).load()
    assert store is not None
    data = json.loads(_encode_store(store))
    assert ("kanidm-sync snapshot store", 1) == (data["format"], data["version"])
