"""Plans over the record read on demand equal plans over the whole record (issue 15, item 2).

The runner loads its record as a ``RecordView`` (rows decoded when looked up, unique values
answered by the index in the database). Randomized scenarios (swaps and rotations of
names, mails, gidnumbers and external ids, entries deleted and re-created under a new
UUID, gidnumbers reused, groups naming re-created members; full images, deltas with a
deletion list or a present list; a known base, a retry over a record of another cookie,
Refresh with a record as a hint) are planned twice: over a dict of every projection (the
full-record planner) and over the record database, and every part of the two plans must
be equal; so must the records the two write afterwards.
"""

from __future__ import annotations

import contextlib
import logging
import pathlib
import sqlite3
import tempfile
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from kanidm_sync import (
    REFRESH,
    ActiveState,
    Client,
    Entry,
    Group,
    Mail,
    Person,
    PosixAccount,
    PosixGroup,
    Runner,
    SyncState,
    _record_view,
)
from kanidm_sync._plan import KnownState, apply_to_known, build_plan, project_entry
from kanidm_sync._plan_model import Plan
from kanidm_sync._projection import (
    UpdatedEntries,
    derived_gidnumber,
    external_ids_held,
    gidnumbers_held,
)
from kanidm_sync._record_view import RecordView, index_rows
from kanidm_sync._runner import _RecordStore
from kanidm_sync._types import JSONObject
from kanidm_sync.adapters import Delta, FullImage

from .conftest import DeltaSource, ListSource

NS = uuid.UUID("6b1f4d0e-3c2a-4e8b-9f7d-5a6c3b2e1d0f")
OLD = ActiveState(b"c1")
NEW_COOKIE = b"c2"


def uid(tag: str) -> uuid.UUID:
    return uuid.uuid5(NS, tag)


def entry(
    tag: str,
    *,
    group: bool,
    name: str,
    ext: str,
    mail: str | None,
    gidnumber: int | None,
    posix: bool,
    display: str,
    members: tuple[str, ...] = (),
) -> Entry:
    if group:
        return Group(
            id=uid(tag),
            external_id=ext,
            name=name,
            description=display,
            member=list(members),
            posix=PosixGroup(gidnumber=gidnumber) if posix else None,
        )
    return Person(
        id=uid(tag),
        external_id=ext,
        name=name,
        displayname=display,
        mail=[Mail(mail)] if mail else [],
        posix=PosixAccount(gidnumber=gidnumber) if posix else None,
    )


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    """A record of ``n`` entries and a batch that changes it, as the planner sees them."""
    n = draw(st.integers(2, 9))
    groups = draw(st.integers(0, 2))
    kinds = [False] * n + [True] * groups
    total = n + groups
    posix = draw(st.lists(st.booleans(), min_size=total, max_size=total))
    explicit = draw(st.lists(st.booleans(), min_size=total, max_size=total))
    base: dict[int, dict[str, Any]] = {}
    for i in range(total):
        base[i] = {
            "tag": f"e{i}",
            "group": kinds[i],
            "name": f"g{i}" if kinds[i] else f"u{i}",
            "ext": f"cn=g{i}" if kinds[i] else f"uid=u{i}",
            "mail": None if kinds[i] else f"u{i}@example.org",
            "gidnumber": 2000 + i if posix[i] and explicit[i] else None,
            "posix": posix[i],
            "display": f"Entry {i}",
            "members": tuple(f"uid=u{m}" for m in range(min(n, 3))) if kinds[i] else (),
        }
    # The new image: values change hands (a permutation per attribute), display names
    # change, entries go, come back under a new UUID, or are new (taking a freed value).
    new = {i: dict(v) for i, v in base.items()}
    persons = list(range(n))
    for key in ("name", "mail", "ext", "gidnumber"):
        if draw(st.booleans()):
            order = draw(st.permutations(persons))
            values = [base[i][key] for i in order]
            for i, value in zip(persons, values, strict=True):
                new[i][key] = value
    for i in draw(st.sets(st.sampled_from(range(total)), max_size=3)):
        new[i]["display"] = f"Changed {i}"
    deleted = draw(st.sets(st.sampled_from(persons), max_size=2))
    recreated = draw(st.sets(st.sampled_from(persons), max_size=2)) - deleted
    for i in deleted:
        del new[i]
    for i in recreated:
        new[i]["tag"] = f"e{i}-again"
    for k in range(draw(st.integers(0, 2))):
        # A newcomer: fresh values, or a deleted entry's name and gidnumber (reuse).
        fresh = {
            "tag": f"new{k}",
            "group": False,
            "name": f"new{k}",
            "ext": f"uid=new{k}",
            "mail": f"new{k}@example.org",
            "gidnumber": 3000 + k,
            "posix": True,
            "display": f"New {k}",
            "members": (),
        }
        if deleted and draw(st.booleans()):
            donor = base[sorted(deleted)[k % len(deleted)]]
            fresh["name"] = f"{donor['name']}x" if k else donor["name"]
            fresh["gidnumber"] = donor["gidnumber"] if k == 0 else fresh["gidnumber"]
        new[total + k] = fresh
    record = [entry(**v) for v in base.values()]
    image = [entry(**v) for v in new.values()]
    return {
        "record": record,
        "image": image,
        "batch": draw(st.sampled_from(["full", "delta-deleted", "delta-present", "delta-only"])),
        "mode": draw(st.sampled_from(["known", "retry", "refresh", "refresh-none"])),
        "history": draw(st.lists(st.sampled_from(record), max_size=2)),
    }


def batch_of(s: dict[str, Any]) -> FullImage | Delta:
    record: list[Entry] = s["record"]
    image: list[Entry] = s["image"]
    if s["batch"] == "full" or s["mode"].startswith("refresh"):
        return FullImage(entries=image, cookie=NEW_COOKIE)
    before = {e.id: project_entry(e) for e in record}
    changed = [e for e in image if before.get(e.id) != project_entry(e)]
    gone = sorted({e.id for e in record} - {e.id for e in image}, key=str)
    if s["batch"] == "delta-deleted":
        return Delta(entries=changed, deleted=gone, cookie=NEW_COOKIE)
    if s["batch"] == "delta-present":
        return Delta(entries=changed, present=[e.id for e in image], cookie=NEW_COOKIE)
    return Delta(entries=changed, cookie=NEW_COOKIE)  # deletions not listed


@contextlib.contextmanager
def on_disk(known: KnownState) -> Iterator[tuple[_RecordStore, KnownState]]:
    """``known`` saved as a record database and loaded back, read on demand."""
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "applied.db"
        _RecordStore(path).save(known)
        store = _RecordStore(path, migrate=True)
        loaded = store.load()
        assert loaded is not None
        assert isinstance(loaded.entries, RecordView)
        try:
            yield store, loaded
        finally:
            store.close()


def summary(plan: Plan) -> dict[str, Any]:
    """Every part of a plan a run uses, in comparable form."""
    return {
        "plan": plan.to_dict(),
        "requests": [r.to_json() for r in plan.requests],
        "retain": [r.retain for r in plan.requests],
        "states": [(r.from_state, r.to_state) for r in plan.requests],
        "sizes": plan.request_sizes,
        "released": dict(plan.released),
        "delete_first": plan.delete_first,
        "deleting": dict(plan.deleting),
        "projections": dict(plan.projections),
        "digest": plan.chunk_digest,
    }


def plan_with(s: dict[str, Any], known: KnownState, max_bytes: int) -> Plan:
    mode = s["mode"]
    state: SyncState = REFRESH if mode.startswith("refresh") else OLD
    return build_plan(
        state=state,
        batch=batch_of(s),
        known=known,
        max_request_bytes=max_bytes,
        retry=mode == "retry",
    )


def table(path: pathlib.Path, query: str) -> list[tuple[object, ...]]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return sorted(conn.execute(query).fetchall())


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scenarios(), st.sampled_from([4096, 1_000_000]))
def test_a_plan_over_the_record_read_on_demand_equals_the_full_record_plan(
    s: dict[str, Any], max_bytes: int
) -> None:
    record: list[Entry] = s["record"]
    cookie = b"c0" if s["mode"] in ("retry", "refresh") else OLD.cookie
    if s["mode"] == "refresh-none":
        cookie = b"other"
    known = KnownState(
        cookie=cookie,
        entries={e.id: project_entry(e) for e in record},
        deleted=tuple(e.id for e in s["history"]),
    )
    try:
        expected: Plan | Exception = plan_with(s, known, max_bytes)
    except Exception as exc:  # a ChunkingError must be the same error
        expected = exc
    with on_disk(known) as (store, lazy):
        try:
            got: Plan | Exception = plan_with(s, lazy, max_bytes)
        except Exception as exc:
            got = exc
        if isinstance(expected, Exception):
            event(f"error {type(expected).__name__}")
            assert (type(expected), str(expected)) == (type(got), str(got))
            return
        assert isinstance(got, Plan)
        assert summary(expected) == summary(got)
        event(f"released={bool(got.released)} delete_first={got.delete_first}")
        event(f"requests={min(len(got.requests), 3)} base_known={got.base_known}")
        # What the two write afterwards is the same record, and the index follows it.
        after = apply_to_known(known, expected)
        after_lazy = apply_to_known(lazy, got)
        assert (after is None) == (after_lazy is None)
        if after is None or after_lazy is None:
            return
        store.save(after_lazy)
        assert store.path is not None
        again = _RecordStore(store.path).load()
        assert again is not None
        assert (after.cookie, dict(after.entries), after.deleted) == (
            again.cookie,
            dict(again.entries),
            again.deleted,
        )
        index = [r for k, p in after.entries.items() for r in index_rows(str(k), k, p)]
        assert sorted(index) == table(store.path, "SELECT key, value, id FROM uniques")


# --- what a run reads -------------------------------------------------------------------


class Reads:
    """Counts the rows decoded from the record and the statements run on it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.decoded = 0
        self.ids = 0
        self.statements: list[str] = []
        decode, parse = _record_view.decode_projection, _record_view.parse_id
        connect = _RecordStore._connect

        def counting_decode(text: str, key: str) -> JSONObject:
            self.decoded += 1
            return decode(text, key)

        def counting_parse(text: str) -> uuid.UUID:
            self.ids += 1
            return parse(text)

        def traced(store: _RecordStore) -> sqlite3.Connection:
            conn = connect(store)
            conn.set_trace_callback(self.statements.append)
            return conn

        monkeypatch.setattr(_record_view, "decode_projection", counting_decode)
        monkeypatch.setattr(_record_view, "parse_id", counting_parse)
        monkeypatch.setattr(_RecordStore, "_connect", traced)

    def whole_table(self) -> list[str]:
        """Statements that read every row of the entries table."""
        return [
            s
            for s in self.statements
            if " FROM entries" in s and "WHERE" not in s and "count(*)" not in s
        ]


def people(n: int, **changed: str) -> list[Entry]:
    return [
        Person(
            id=uid(f"p{i}"),
            external_id=f"uid=p{i},ou=people",
            name=f"p{i}",
            displayname=changed.get(f"p{i}", f"P {i}"),
            mail=[Mail(f"p{i}@example.org")],
            posix=PosixAccount(gidnumber=10_000 + i),
        )
        for i in range(n)
    ]


def test_a_delta_run_reads_only_the_rows_it_touches(
    client: Client, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Delta of 12 changes over a record of 3,000 entries decodes about 12 rows."""
    path = tmp_path / "applied.db"
    everyone = people(3000)
    source = DeltaSource()
    source.queue.append(FullImage(entries=everyone, cookie=b"full"))
    assert Runner(client, source, state_path=path).run_once().ok
    changed = people(10, p3="Three", p7="Seven")[3:8:4]
    group = Group(
        id=uid("staff"),
        external_id="cn=staff",
        name="staff",
        member=["uid=p1,ou=people", "uid=p2,ou=people", "uid=nobody"],
    )
    source.queue.append(
        Delta(entries=[*changed, group], deleted=[uid("p9"), uid("p11")], cookie=b"d1")
    )
    reads = Reads(monkeypatch)
    report = Runner(client, source, state_path=path).run_once()
    assert report.ok
    assert {"create": 1, "update": 2, "delete": 2} == {
        k: v for k, v in report.counts.items() if v and k != "sent"
    }
    # The rows of the 5 ids the delta names (4 found, the group's absent), nothing else;
    # the members resolved through the index (only "uid=nobody" is warned about).
    assert reads.decoded <= 5, reads.decoded
    assert reads.ids <= 2, reads.ids  # the deletion history
    assert [] == reads.whole_table()
    unresolved = [w for w in report.warnings if "member.unresolved" in w]
    assert 1 == len(unresolved), report.warnings
    assert "uid=nobody" in unresolved[0]
    after = _RecordStore(path).load()
    assert after is not None
    assert 2999 == len(after.entries)
    assert "Three" == after.entries[uid("p3")]["displayname"]
    assert uid("p9") not in after.entries
    assert after.deleted == (uid("p9"), uid("p11")) or set(after.deleted) == {
        uid("p9"),
        uid("p11"),
    }


def test_a_full_image_reads_the_record_in_one_pass(
    client: Client, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full image compares every entry: one read of the table, each row decoded once."""
    path = tmp_path / "applied.db"
    source = ListSource(people(500))
    assert Runner(client, source, state_path=path).run_once().ok
    source.entries = people(500, p4="Four")
    reads = Reads(monkeypatch)
    report = Runner(client, source, state_path=path).run_once()
    assert 1 == report.counts["update"]
    assert 500 == reads.decoded
    assert 1 == len(reads.whole_table())


# --- the index ------------------------------------------------------------------------------


def test_the_index_answers_gidnumbers_and_external_ids(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "applied.db"
    posix_group = Group(id=uid("pg"), name="pg", external_id="cn=PG", posix=PosixGroup())
    entries = [*people(3), posix_group]
    _RecordStore(path).save(
        KnownState(cookie=b"c", entries={e.id: project_entry(e) for e in entries})
    )
    for drop in (False, True):
        if drop:  # a record written before the index: answered from the rows
            sql = "DROP TABLE uniques"
            with contextlib.closing(sqlite3.connect(path)) as conn, conn:
                conn.execute(sql)
        loaded = _RecordStore(path).load()
        assert loaded is not None
        view = loaded.entries
        assert isinstance(view, RecordView)
        assert view.indexed is not drop
        gids = gidnumbers_held(view, [(uid("x"), {"gidnumber": 7})])
        assert 10_001 in gids
        assert 7 in gids
        assert 10_003 not in gids
        assert derived_gidnumber(uid("pg")) in gids
        assert derived_gidnumber(uid("p1")) not in gids  # it has a gidnumber of its own
        ext = external_ids_held(view)
        assert "cn=pg" in ext
        assert "uid=p2,ou=people" in ext
        assert "uid=p3,ou=people" not in ext
        # The same answers as the full-record helpers.
        assert {g for g in (7, 10_000, 10_001, 10_002, 10_003) if g in gids} == {
            g
            for g in (7, 10_000, 10_001, 10_002, 10_003)
            if g in gidnumbers_held(dict(view), [(uid("x"), {"gidnumber": 7})])
        }


def test_a_missing_or_stale_index_is_derived_by_the_runner(
    client: Client, tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "applied.db"
    source = ListSource(people(20))
    assert Runner(client, source, state_path=path).run_once().ok
    expected = table(path, "SELECT key, value, id FROM uniques")
    assert len(expected) == 20 * 5  # name, external id, mail, gidnumber, gid
    for damage in (
        "DROP TABLE uniques",
        "DELETE FROM meta WHERE key = 'indexed'",
        "UPDATE meta SET value = value + 1 WHERE key = 'generation'",  # an older writer
    ):
        with contextlib.closing(sqlite3.connect(path)) as conn, conn:
            if "meta" in damage:
                conn.execute("DELETE FROM uniques WHERE key = 'gid'")  # behind the rows
            conn.execute(damage)
        store = _RecordStore(path, migrate=True)
        with caplog.at_level(logging.INFO, logger="kanidm_sync"):
            loaded = store.load()
        store.close()
        assert loaded is not None
        assert isinstance(loaded.entries, RecordView)
        assert loaded.entries.indexed
        assert expected == table(path, "SELECT key, value, id FROM uniques"), damage
        assert any("indexed the unique values" in r.getMessage() for r in caplog.records)
        caplog.clear()
    source.entries = people(20, p5="Five")
    assert Runner(client, source, state_path=path).run_once().ok
    rows = table(path, "SELECT key, value, id FROM uniques")
    assert expected == rows


# --- damage found while reading on demand ---------------------------------------------------


def test_a_damaged_row_a_delta_touches_is_an_unknown_base(
    client: Client, tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The run asks the source for a full image, as with a damaged record, and rebuilds it."""
    path = tmp_path / "applied.db"
    source = DeltaSource()
    source.queue.append(FullImage(entries=people(50), cookie=b"full"))
    assert Runner(client, source, state_path=path).run_once().ok
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("UPDATE entries SET projection = '[1' WHERE id = ?", (str(uid("p3")),))
    source.queue.append(Delta(entries=people(5, p3="Three")[3:4], cookie=b"d1"))
    source.queue.append(FullImage(entries=people(50, p3="Three"), cookie=b"full-2"))
    with caplog.at_level(logging.WARNING, logger="kanidm_sync"):
        report = Runner(client, source, state_path=path).run_once()
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        str(path) in m and "corrupt record" in m and "diff base unknown" in m for m in warned
    )
    assert report.ok
    assert 50 == report.counts["create-or-replace"]
    assert isinstance(source.fetched[-1], type(REFRESH))  # the full image was asked for
    again = _RecordStore(path).load()
    assert again is not None
    assert "Three" == again.entries[uid("p3")]["displayname"]
    assert 50 == len(again.entries)


def test_a_record_rewritten_by_another_process_meanwhile_is_written_whole(
    tmp_path: pathlib.Path,
) -> None:
    """Changes on top of a record read on demand, whose file another writer replaced."""
    path = tmp_path / "applied.db"
    entries = {e.id: project_entry(e) for e in people(30)}
    _RecordStore(path).save(KnownState(cookie=b"c1", entries=entries))
    mine = _RecordStore(path)
    loaded = mine.load()
    assert loaded is not None
    other = _RecordStore(path)
    assert other.load() is not None
    other.save(KnownState(cookie=b"other", entries={}))
    other.close()
    changed = project_entry(people(2, p1="One")[1])
    updated = UpdatedEntries(loaded.entries, {uid("p1"): changed}, [uid("p2")])
    mine.save(KnownState(cookie=b"mine", entries=updated))
    mine.close()
    again = _RecordStore(path).load()
    assert again is not None
    expected = dict(entries)
    expected[uid("p1")] = changed
    del expected[uid("p2")]
    assert (b"mine", expected) == (again.cookie, dict(again.entries))
