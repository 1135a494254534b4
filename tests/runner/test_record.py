"""The runner's local record of what it last applied: a SQLite database (issue 15, item 1)."""

from __future__ import annotations

import base64
import contextlib
import gc
import json
import logging
import pathlib
import sqlite3
import stat
import uuid
import warnings

import pytest

from kanidm_sync import Client, Runner
from kanidm_sync._plan import KnownState, project_entry
from kanidm_sync._record import APPLICATION_ID, RECORD_FORMAT, RECORD_VERSION
from kanidm_sync._record_rows import history_change
from kanidm_sync._record_view import RecordView
from kanidm_sync._runner import _RecordStore

from .conftest import ListSource, group, person, pid


def known_of(n: int, cookie: bytes = b"c1", **names: str) -> KnownState:
    return KnownState(
        cookie=cookie,
        entries={pid(i): project_entry(person(i, name=names.get(f"p{i}"))) for i in range(n)},
    )


def rows(path: pathlib.Path, query: str) -> list[tuple[object, ...]]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute(query).fetchall()


def legacy_json(known: KnownState) -> str:
    """The JSON record of releases before the database (format version 1)."""
    return json.dumps(
        {
            "format": RECORD_FORMAT,
            "version": 1,
            "cookie": base64.urlsafe_b64encode(known.cookie).decode(),
            "count": len(known.entries),
            "deleted": [str(d) for d in known.deleted],
            "entries": {str(k): v for k, v in known.entries.items()},
        }
    )


def test_record_round_trips(tmp_path: pathlib.Path) -> None:
    """What is saved loads back equal, in a private file (created with its directory)."""
    path = tmp_path / "sub" / "applied.json"
    known = KnownState(
        cookie=b"\x00c", entries={pid(1): project_entry(person(1))}, deleted=(pid(2),)
    )
    _RecordStore(path).save(known)
    loaded = _RecordStore(path).load()
    assert loaded is not None
    assert (known.cookie, dict(known.entries), known.deleted) == (
        loaded.cookie,
        dict(loaded.entries),
        loaded.deleted,
    )
    assert 0o600 == stat.S_IMODE(path.stat().st_mode)
    assert path.read_bytes().startswith(b"SQLite format 3\x00")


def test_the_database_is_wal_and_its_sidecars_are_private(tmp_path: pathlib.Path) -> None:
    """WAL journal; the -wal and -shm files a reader opens get the database's mode 0600."""
    path = tmp_path / "applied.json"
    _RecordStore(path).save(known_of(3))
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert "wal" == conn.execute("PRAGMA journal_mode").fetchone()[0]
        assert (APPLICATION_ID, RECORD_VERSION) == (
            conn.execute("PRAGMA application_id").fetchone()[0],
            conn.execute("PRAGMA user_version").fetchone()[0],
        )
        conn.execute("SELECT count(*) FROM entries").fetchone()
        for suffix in ("-wal", "-shm"):
            sidecar = pathlib.Path(f"{path}{suffix}")
            assert sidecar.exists(), suffix
            assert 0o600 == stat.S_IMODE(sidecar.stat().st_mode), suffix


def test_the_schema_is_inspectable(tmp_path: pathlib.Path) -> None:
    """One row per entry with kind, name, id, external id, digest and projection."""
    path = tmp_path / "applied.json"
    known = KnownState(
        cookie=b"c",
        entries={pid(1): project_entry(person(1)), group(1, [1]).id: project_entry(group(1, [1]))},
    )
    _RecordStore(path).save(known)
    got = rows(path, "SELECT kind, name, id, external_id FROM entries ORDER BY kind, name")
    assert [
        ("group", "group1", str(group(1, [1]).id), "cn=group1,ou=groups,dc=example,dc=org"),
        ("person", "user1", str(pid(1)), "uid=user1,ou=people,dc=example,dc=org"),
    ] == got
    meta = dict(rows(path, "SELECT key, value FROM meta"))
    assert (RECORD_FORMAT, b"c", 2) == (meta["format"], meta["cookie"], meta["count"])
    ((digest, projection),) = rows(
        path, f"SELECT digest, projection FROM entries WHERE id = '{pid(1)}'"
    )
    assert project_entry(person(1)) == json.loads(str(projection))
    assert 32 == len(str(digest))


def test_a_save_writes_only_the_rows_that_changed(tmp_path: pathlib.Path) -> None:
    """Unchanged rows are not rewritten: a mark put on one by hand survives the save."""
    path = tmp_path / "applied.json"
    _RecordStore(path).save(known_of(100))
    store = _RecordStore(path)
    loaded = store.load()
    assert loaded is not None
    # Marks on an unchanged row and on one the save changes (not a real edit: a probe).
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(
            "UPDATE entries SET kind = 'marked' WHERE id IN (?, ?)", (str(pid(5)), str(pid(6)))
        )
    entries = dict(loaded.entries)
    entries[pid(6)] = project_entry(person(6, displayname="Changed"))  # an update
    del entries[pid(7)]  # a deletion
    entries[pid(200)] = project_entry(person(200))  # a creation
    entries[pid(8)] = project_entry(person(8))  # equal, but another object: unchanged
    store.save(KnownState(cookie=b"c2", entries=entries, deleted=(pid(7),)))
    kinds = dict(rows(path, "SELECT id, kind FROM entries"))
    assert "marked" == kinds[str(pid(5))]  # untouched
    assert "person" == kinds[str(pid(6))]  # rewritten
    assert str(pid(7)) not in kinds
    assert "person" == kinds[str(pid(200))]
    assert 100 == len(kinds)
    again = _RecordStore(path).load()
    assert again is not None
    assert b"c2" == again.cookie
    assert (pid(7),) == again.deleted
    assert "Changed" == again.entries[pid(6)]["displayname"]


def test_a_save_keeps_a_view_of_the_file_not_the_entries(tmp_path: pathlib.Path) -> None:
    """After a save the store holds a view of the file, not the projections it wrote.

    A service waits between runs; with the entries held, a first run's whole image stayed
    in memory until the next load. A second save with no load between is still written
    as changes over what the file holds.
    """
    path = tmp_path / "applied.sqlite"
    store = _RecordStore(path)
    first = known_of(50)
    store.save(first)
    synced = store._synced
    assert synced is not None
    assert isinstance(synced.entries, RecordView)
    assert synced.entries._cache == {}
    # Saved again, whole (as a full-image run over a known base does), with no load:
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("UPDATE entries SET kind = 'marked' WHERE id = ?", (str(pid(5)),))
    entries = dict(first.entries)
    entries[pid(6)] = project_entry(person(6, displayname="Changed"))
    del entries[pid(7)]
    store.save(KnownState(cookie=b"c2", entries=entries))
    synced = store._synced
    assert synced is not None
    assert isinstance(synced.entries, RecordView)
    kinds = dict(rows(path, "SELECT id, kind FROM entries"))
    assert "marked" == kinds[str(pid(5))]  # an unchanged row was not rewritten
    assert str(pid(7)) not in kinds
    again = _RecordStore(path).load()
    assert again is not None
    assert (b"c2", 49) == (again.cookie, len(again.entries))
    assert "Changed" == again.entries[pid(6)]["displayname"]
    store.close()
    again.entries.close()  # type: ignore[attr-defined]


def test_saving_none_forgets_the_record(tmp_path: pathlib.Path) -> None:
    """An unknowable result forgets the stale record rather than keep it."""
    path = tmp_path / "applied.json"
    _RecordStore(path).save(KnownState(cookie=b"c"))
    _RecordStore(path).save(None)
    assert not path.exists()
    store = _RecordStore(path)
    store.save(known_of(2))
    assert store.load() is not None
    store.save(None)  # a loaded database: emptied in one transaction
    assert store.load() is None
    assert [] == rows(path, "SELECT id FROM entries")
    store.save(known_of(1))
    assert 1 == len(_RecordStore(path).load().entries)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ((), (1, 2), (0, (1, 2))),
        ((1, 2), (1, 2), (0, ())),
        ((1, 2), (1, 2, 3), (0, (3,))),
        ((1, 2, 3), (2, 3, 4, 5), (1, (4, 5))),  # bounded: the oldest dropped
        ((1, 2, 3), (3, 3), (2, (3,))),  # an id deleted again
        ((1, 2), (5, 6), None),  # unrelated: written whole
    ],
)
def test_the_deletion_history_is_written_as_a_change(
    old: tuple[int, ...], new: tuple[int, ...], expected: tuple[int, tuple[int, ...]] | None
) -> None:
    def ids(values: tuple[int, ...]) -> tuple[uuid.UUID, ...]:
        return tuple(uuid.UUID(int=v) for v in values)

    got = history_change(ids(old), ids(new))
    assert (None if expected is None else (expected[0], ids(expected[1]))) == (
        None if got is None else (got[0], tuple(got[1]))
    )


def test_the_deletion_history_survives_saves(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "applied.json"
    store = _RecordStore(path)
    store.save(KnownState(cookie=b"a", deleted=(pid(1), pid(2))))
    store.save(KnownState(cookie=b"b", deleted=(pid(2), pid(3))))
    store.save(KnownState(cookie=b"c", deleted=(pid(9),)))
    assert (pid(9),) == _RecordStore(path).load().deleted  # type: ignore[union-attr]


def test_a_record_written_meanwhile_by_another_process_is_rewritten_whole(
    tmp_path: pathlib.Path,
) -> None:
    """The store's view is stale (another writer): the save writes the whole record."""
    path = tmp_path / "applied.json"
    _RecordStore(path).save(known_of(5))
    mine, other = _RecordStore(path), _RecordStore(path)
    assert mine.load() is not None
    assert other.load() is not None
    other.save(known_of(2, cookie=b"other"))
    mine.save(known_of(4, cookie=b"mine"))
    loaded = _RecordStore(path).load()
    assert loaded is not None
    assert (b"mine", dict(known_of(4).entries)) == (loaded.cookie, dict(loaded.entries))


def test_a_json_record_is_migrated_once(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The JSON record of an earlier release is read and written as a database in its place."""
    path = tmp_path / "applied.json"
    known = KnownState(cookie=b"c", entries=dict(known_of(3).entries), deleted=(pid(9),))
    path.write_text(legacy_json(known), encoding="utf-8")
    with caplog.at_level(logging.INFO, logger="kanidm_sync"):
        assert _RecordStore(path).load() is not None  # a reader (the CLI) does not migrate
        assert path.read_bytes().startswith(b"{")
        loaded = _RecordStore(path, migrate=True).load()
        again = _RecordStore(path, migrate=True).load()
    assert loaded is not None
    assert again is not None
    assert (known.cookie, dict(known.entries), known.deleted) == (
        again.cookie,
        dict(again.entries),
        again.deleted,
    )
    assert path.read_bytes().startswith(b"SQLite format 3\x00")
    assert 0o600 == stat.S_IMODE(path.stat().st_mode)
    migrated = [r for r in caplog.records if "migrated" in r.getMessage()]
    assert 1 == len(migrated)
    assert str(path) in migrated[0].getMessage()
    assert [] == [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_a_runner_over_a_json_record_keeps_its_base(client: Client, tmp_path: pathlib.Path) -> None:
    """After an upgrade the first run still plans against the record (only the churn)."""
    path = tmp_path / "applied.json"
    source = ListSource([person(1), person(2)])
    assert Runner(client, source, state_path=path).run_once().ok
    # Rewrite the record as the earlier release wrote it.
    known = _RecordStore(path).load()
    assert known is not None
    path.unlink()
    path.write_text(legacy_json(known), encoding="utf-8")
    source.entries = [person(1, displayname="Renamed"), person(2)]
    report = Runner(client, source, state_path=path).run_once()
    assert {"update": 1, "unchanged": 1} == {
        k: v for k, v in report.counts.items() if v and k != "sent"
    }
    assert path.read_bytes().startswith(b"SQLite format 3\x00")


def test_the_listing_is_sorted_by_kind_name_and_id(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "applied.json"
    entries = {e.id: project_entry(e) for e in (person(2), group(1, [2]), person(1))}
    _RecordStore(path).save(KnownState(cookie=b"c", entries=entries))
    listing = _RecordStore(path).listing()
    assert listing is not None
    cookie, got = listing
    assert b"c" == cookie
    assert [("group", "group1"), ("person", "user1"), ("person", "user2")] == [
        (e.kind, e.name) for e in got
    ]
    assert _RecordStore(tmp_path / "missing").listing() is None


def test_a_record_in_a_reference_cycle_closes_its_connection(tmp_path: pathlib.Path) -> None:
    """The entries read on demand own an open connection; collected in a cycle, it is closed.

    A KnownState often ends in a reference cycle (a traceback holding a plan holding the
    record). The collector may then finalize the connection before the object holding
    it, and Python 3.13 warns about an unclosed connection; the connection must be closed
    first, whatever the order, and never reported.
    """
    path = tmp_path / "record.sqlite"
    known = KnownState(cookie=b"c", entries={pid(1): project_entry(person(1))}, deleted=())
    _RecordStore(path).save(known)
    store = _RecordStore(path)
    loaded = store.load()
    assert loaded is not None
    assert pid(1) in loaded.entries  # read through the open connection
    conn = loaded.entries._conn  # type: ignore[attr-defined]
    assert conn is not None
    cycle: list[object] = [loaded]
    cycle.append(cycle)
    del store, loaded, cycle
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    assert [] == [w for w in caught if issubclass(w.category, ResourceWarning)]
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        conn.execute("SELECT 1")
