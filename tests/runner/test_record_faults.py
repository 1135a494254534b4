"""Bad record files and failed record writes (issue 15, "Bad input and faults").

Real SQLite files throughout: corrupt, truncated, foreign, of another version; a full disk
is a real ``SQLITE_FULL`` from ``PRAGMA max_page_count`` (the store's ``page_limit`` hook).
"""

from __future__ import annotations

import contextlib
import logging
import pathlib
import sqlite3
from collections.abc import Callable

import pytest

from kanidm_sync import ActiveState, Client, Runner, SourceGuardError
from kanidm_sync._plan import KnownState, project_entry
from kanidm_sync._record import APPLICATION_ID, RecordWriteError
from kanidm_sync._runner import _RecordStore
from kanidm_sync.testing import FakeKanidm, ProvisionedSyncAccount

from .conftest import ListSource, owned_names, person, pid


def sql(path: pathlib.Path, *statements: str) -> None:
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        for statement in statements:
            conn.execute(statement)


def garbage(path: pathlib.Path) -> None:
    path.write_bytes(b"\x00\x01not a database at all" * 100)


def truncated(path: pathlib.Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def foreign(path: pathlib.Path) -> None:
    path.unlink(missing_ok=True)
    sql(path, "CREATE TABLE notes (body TEXT)", "INSERT INTO notes VALUES ('keep me')")


def other_version(path: pathlib.Path) -> None:
    sql(path, "PRAGMA user_version = 99")


def bad_meta(path: pathlib.Path) -> None:
    sql(path, "UPDATE meta SET value = 'something else' WHERE key = 'format'")


def bad_projection(path: pathlib.Path) -> None:
    sql(path, f"UPDATE entries SET projection = '[1, 2' WHERE id = '{pid(3)}'")


def bad_id(path: pathlib.Path) -> None:
    sql(path, f"UPDATE entries SET id = 'not-a-uuid' WHERE id = '{pid(3)}'")


def no_tables(path: pathlib.Path) -> None:
    sql(path, "DROP TABLE entries")


CORRUPTIONS: dict[str, Callable[[pathlib.Path], None]] = {
    "garbage": garbage,
    "truncated": truncated,
    "foreign": foreign,
    "other-version": other_version,
    "bad-meta": bad_meta,
    "bad-projection": bad_projection,
    "bad-id": bad_id,
    "no-tables": no_tables,
}


@pytest.mark.parametrize("damage", sorted(CORRUPTIONS))
def test_a_bad_record_is_an_unknown_base_and_the_guards_act_as_without_one(
    fake: FakeKanidm,
    account: ProvisionedSyncAccount,
    client: Client,
    tmp_path: pathlib.Path,
    damage: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A warning naming the file, no crash, no deletion computed from it: as with no record."""
    path = tmp_path / "applied.json"
    source = ListSource([person(i) for i in range(10)])
    assert Runner(client, source, state_path=path).run_once().ok
    CORRUPTIONS[damage](path)
    source.entries = source.entries[:8]  # two gone: a record would list two deletions
    with caplog.at_level(logging.WARNING, logger="kanidm_sync"):
        damaged = Runner(client, source, state_path=path).plan()
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(str(path) in m and "diff base unknown" in m for m in warned), warned
    without = Runner(client, source, state_path=tmp_path / "none.db").plan()
    assert dict(without.counts) == dict(damaged.counts)
    assert without.base_note == damaged.base_note
    assert 0 == damaged.counts.get("delete", 0)
    assert 8 == damaged.counts["create-or-replace"]
    # Most of the source gone: refused as without a record (the count in Kanidm's cookie).
    source.entries = source.entries[:2]
    refusals = []
    for state_path in (path, tmp_path / "none.db"):
        with pytest.raises(SourceGuardError) as info:
            Runner(client, source, state_path=state_path).run_once()
        refusals.append((info.value.reason, info.value.previous, dict(info.value.plan.counts)))
    assert refusals[0] == refusals[1]
    assert "shrink" == refusals[0][0]
    assert 10 == len(owned_names(fake, account))  # nothing was deleted


@pytest.mark.parametrize("damage", sorted(set(CORRUPTIONS) - {"foreign"}))
def test_a_bad_record_is_replaced_by_the_next_run(
    client: Client, tmp_path: pathlib.Path, damage: str
) -> None:
    path = tmp_path / "applied.json"
    source = ListSource([person(i) for i in range(5)])
    assert Runner(client, source, state_path=path).run_once().ok
    CORRUPTIONS[damage](path)
    assert Runner(client, source, state_path=path).run_once().ok
    known = _RecordStore(path).load()
    assert known is not None
    assert 5 == len(known.entries)
    assert [] == [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_a_foreign_database_is_never_overwritten(
    fake: FakeKanidm, client: Client, tmp_path: pathlib.Path
) -> None:
    """Kanidm gets the run; the other program's database stays; the error says so."""
    path = tmp_path / "applied.json"
    foreign(path)
    source = ListSource([person(1)])
    with pytest.raises(RecordWriteError, match="another program") as info:
        Runner(client, source, state_path=path).run_once()
    assert "not updated" in str(info.value)
    report = info.value.run_report
    assert report is not None
    assert "failed" == report.outcome
    assert isinstance(report.state_after, ActiveState)  # Kanidm committed it
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert [("keep me",)] == conn.execute("SELECT body FROM notes").fetchall()
        assert 0 == conn.execute("PRAGMA application_id").fetchone()[0]
    assert fake.store.entry("user1") is not None


def page_count(path: pathlib.Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return int(conn.execute("PRAGMA page_count").fetchone()[0])


def test_a_full_disk_keeps_the_old_record_and_the_report_says_so(
    fake: FakeKanidm, account: ProvisionedSyncAccount, client: Client, tmp_path: pathlib.Path
) -> None:
    path = tmp_path / "applied.json"
    source = ListSource([person(i) for i in range(20)])
    runner = Runner(client, source, state_path=path)
    assert runner.run_once().ok
    before = _RecordStore(path).load()
    assert before is not None
    runner._store.page_limit = page_count(path)  # any growth is a real SQLITE_FULL
    source.entries = [person(i, displayname=f"Person number {i} " * 8) for i in range(400)]
    with pytest.raises(RecordWriteError) as info:
        runner.run_once()
    error = info.value
    assert error.disk_full
    assert isinstance(error.__cause__, sqlite3.OperationalError)
    assert "SQLITE_FULL" == error.__cause__.sqlite_errorname
    message = str(error)
    assert str(path) in message
    assert "not updated" in message
    assert "the disk is full" in message
    assert "still holds the previous record" in message
    report = error.run_report
    assert report is not None
    assert ("failed", 1) == (report.outcome, report.requests_sent)
    assert report.state_after == ActiveState(fake.cookie(account.name))  # type: ignore[arg-type]
    assert "not updated" in report.to_text()
    assert "->" in report.to_text()  # Kanidm moved: not "unchanged"
    # The old record is intact, one cookie behind Kanidm.
    after = _RecordStore(path).load()
    assert after is not None
    assert (before.cookie, dict(before.entries)) == (after.cookie, dict(after.entries))
    assert 400 == sum(1 for i in range(400) if fake.store.entry(f"user{i}") is not None)
    # Space again: the next run re-sends the whole image over the unknown base, and records.
    runner._store.page_limit = None
    report = runner.run_once()
    assert report.ok
    assert 400 == report.counts["create-or-replace"]
    recorded = _RecordStore(path).load()
    assert recorded is not None
    assert 400 == len(recorded.entries)
    assert recorded.matches(ActiveState(fake.cookie(account.name)))  # type: ignore[arg-type]


def test_a_full_disk_on_a_new_record_leaves_no_file(tmp_path: pathlib.Path) -> None:
    """A database built whole (first write, migration) fails cleanly: no file, no temporary."""
    path = tmp_path / "applied.json"
    store = _RecordStore(path)
    store.page_limit = 3
    known = KnownState(cookie=b"c", entries={pid(i): project_entry(person(i)) for i in range(200)})
    with pytest.raises(RecordWriteError, match="the disk is full") as info:
        store.save(known)
    assert info.value.disk_full
    assert [] == list(tmp_path.iterdir())


def test_a_full_disk_during_the_migration_keeps_the_json_record(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    from .test_record import legacy_json

    path = tmp_path / "applied.json"
    known = KnownState(cookie=b"c", entries={pid(i): project_entry(person(i)) for i in range(200)})
    text = legacy_json(known)
    path.write_text(text, encoding="utf-8")
    store = _RecordStore(path, migrate=True)
    store.page_limit = 3
    with caplog.at_level(logging.WARNING, logger="kanidm_sync"):
        loaded = store.load()
    assert loaded is not None
    assert dict(known.entries) == dict(loaded.entries)
    assert text == path.read_text(encoding="utf-8")
    assert any("could not migrate" in r.getMessage() for r in caplog.records)
    assert [path.name] == [p.name for p in tmp_path.iterdir()]


def test_a_record_of_the_snapshot_store_is_foreign(tmp_path: pathlib.Path) -> None:
    """Mixing up the two files (state_path = the snapshot store) never overwrites either."""
    path = tmp_path / "applied.json"
    sql(path, f"PRAGMA application_id = {APPLICATION_ID + 1}", "CREATE TABLE x (y)")
    store = _RecordStore(path)
    assert store.load() is None
    with pytest.raises(RecordWriteError, match="another program"):
        store.save(KnownState(cookie=b"c"))
