"""End-to-end: the blocking Runner against the in-memory Kanidm (issue 5, point 8)."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import pathlib
import sqlite3
from typing import Any

import attrs
import pytest

from kanidm_sync import (
    REFRESH,
    ActiveState,
    AuthenticationError,
    Client,
    DeletionGuardError,
    Entry,
    Group,
    Guards,
    Person,
    Progress,
    Rules,
    Runner,
    Schedule,
    SourceError,
    SourceGuardError,
    StalePlanError,
    UniquenessError,
)
from kanidm_sync._chunk import CHUNK_COOKIE_PREFIX, parse_chunk_cookie
from kanidm_sync.adapters import Delta
from kanidm_sync.adapters._snapshot import SnapshotAdapter
from kanidm_sync.testing import FakeKanidm, ProvisionedSyncAccount

from .conftest import (
    DeltaSource,
    ListSource,
    gid,
    group,
    owned_names,
    person,
    pid,
    source_cookie,
    sync_posts,
)


def b64(text: str) -> str:
    """The unpadded base64url form of a cookie on the wire."""
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


class Crash(Exception):
    """Stands in for the process dying at a chosen point."""


def crash_after_apply(n: int):  # type: ignore[no-untyped-def]
    """A progress callback that 'kills' the run after the n-th committed request."""

    def callback(p: Progress) -> None:
        if p.phase == "apply" and p.done == n:
            raise Crash

    return callback


def test_first_refresh_creates_everything_and_records_the_cookie(
    fake: FakeKanidm, account: ProvisionedSyncAccount, client: Client, state_path: pathlib.Path
) -> None:
    """A new account (Refresh) gets the full image; the cookie and the record follow."""
    source = ListSource([person(1), person(2), group(1, [1, 2])])
    report = Runner(client, source, state_path=state_path).run_once()
    assert "applied" == report.outcome
    assert REFRESH == report.state_before
    assert {"user1", "user2", "group1"} == owned_names(fake, account)
    assert b"list-1" == source_cookie(fake.cookie("hr"))
    assert 2 == len(fake.store.entry("group1").get("member"))  # type: ignore[union-attr]
    assert 3 == report.counts["create-or-replace"]
    with contextlib.closing(sqlite3.connect(state_path)) as record:
        assert [(3,)] == record.execute("SELECT count(*) FROM entries").fetchall()
    data = json.loads(report.to_json())
    assert data["cookie_before"] == "Refresh"
    assert data["cookie_after"] == {"Active": {"cookie": b64("kanidm-sync-held:v1:3:list-1")}}


def test_incremental_change_and_delete_send_only_the_churn(
    fake: FakeKanidm, account: ProvisionedSyncAccount, client: Client, state_path: pathlib.Path
) -> None:
    """The second run sends the changed entry and deletes the removed one, nothing else."""
    source = ListSource([person(i) for i in range(1, 6)])
    runner = Runner(client, source, state_path=state_path)
    runner.run_once()
    source.entries = [person(1, displayname="Renamed"), person(2), person(3), person(4)]
    report = runner.run_once()
    last = sync_posts(fake)[-1]
    assert [str(pid(1))] == [e["id"] for e in last["entries"]]
    assert {"Delete": [str(pid(5))]} == last["retain"]
    assert {"update": 1, "delete": 1, "unchanged": 3} == {
        k: v for k, v in report.counts.items() if v and k != "sent"
    }
    assert "Renamed" == fake.store.entry("user1").first("displayname")  # type: ignore[union-attr]
    assert fake.store.entry("user5") is None
    assert "recycled" == fake.store.entry(pid(5)).state  # type: ignore[union-attr]
    assert "nothing-to-do" == runner.run_once().outcome


def test_delta_source_deletes_incrementally(
    fake: FakeKanidm, account: ProvisionedSyncAccount, client: Client, state_path: pathlib.Path
) -> None:
    """A delta source's deletions reach Kanidm as a Delete list."""
    source = DeltaSource()
    runner = Runner(client, source, state_path=state_path)
    source.queue.append(ListSource([person(1), person(2)]).fetch(REFRESH))
    runner.run_once()
    source.queue.append(Delta(entries=[person(3)], deleted=[pid(1)], cookie=b"d2"))
    runner.run_once()
    assert {"user2", "user3"} == owned_names(fake, account)
    assert b"d2" == source_cookie(fake.cookie("hr"))


def test_conflict_rolls_back_then_exclude_succeeds(
    fake: FakeKanidm, account: ProvisionedSyncAccount, client: Client, state_path: pathlib.Path
) -> None:
    """A name taken by a native entry: rollback, the diagnosis names it, excluding fixes it."""
    source = ListSource([person(1), person(2)])
    Runner(client, source, state_path=state_path).run_once()
    fake.store.add_person("carol")
    before = fake.store.fingerprint()
    source.entries = [person(1, displayname="Changed"), person(2), person(3, name="carol")]
    runner = Runner(client, source, state_path=state_path)
    with pytest.raises(UniquenessError):
        runner.run_once()
    assert before == fake.store.fingerprint()  # rolled back: not even user1 changed
    report = runner.last_report
    assert report is not None
    assert "failed" == report.outcome
    assert report.diagnosis is not None
    assert [pid(3)] == [s.id for s in report.diagnosis.suspects]
    assert report.diagnosis.narrowed
    assert "failing" == runner.status.state
    exclude = report.diagnosis.rules_toml.split("# Or remap them:")[0]
    fixed = Runner(client, source, state_path=state_path, rules=Rules.from_toml(exclude))
    assert "applied" == fixed.run_once().outcome
    assert {"user1", "user2"} == owned_names(fake, account)
    assert "Changed" == fake.store.entry("user1").first("displayname")  # type: ignore[union-attr]


def test_conflict_then_remap_succeeds(
    fake: FakeKanidm, account: ProvisionedSyncAccount, client: Client, state_path: pathlib.Path
) -> None:
    """The suggested remap rule gives the entry another name and the next run succeeds."""
    source = ListSource([person(1)])
    Runner(client, source, state_path=state_path).run_once()
    fake.store.add_person("carol")
    source.entries = [person(1), person(3, name="carol")]
    runner = Runner(client, source, state_path=state_path)
    with pytest.raises(UniquenessError):
        runner.run_once()
    assert runner.last_report is not None
    assert runner.last_report.diagnosis is not None
    remap = runner.last_report.diagnosis.rules_toml.split("# Or remap them:")[1]
    fixed = Runner(client, source, state_path=state_path, rules=Rules.from_toml(remap))
    fixed.run_once()
    assert {"user1", "carol-sync"} == owned_names(fake, account)
    assert pid(3) == fake.store.entry("carol-sync").uuid  # type: ignore[union-attr]


def test_finalise_after_syncs_keeps_entries_and_stops_the_token(
    fake: FakeKanidm,
    account: ProvisionedSyncAccount,
    client: Client,
    admin: Client,
    state_path: pathlib.Path,
) -> None:
    """After finalise the entries stay as native entries and the runner can no longer sync."""
    source = ListSource([person(1), person(2)])
    runner = Runner(client, source, state_path=state_path)
    runner.run_once()
    source.entries.append(person(3))
    runner.run_once()
    admin.finalise("hr")
    entry = fake.store.entry("user3")
    assert entry is not None
    assert "sync_object" not in entry.classes
    with pytest.raises(AuthenticationError):
        runner.run_once()


def test_terminate_after_syncs_removes_entries(
    fake: FakeKanidm, account: ProvisionedSyncAccount, client: Client, admin: Client
) -> None:
    """After terminate every synced entry is gone."""
    runner = Runner(client, ListSource([person(1), person(2)]))
    runner.run_once()
    admin.terminate("hr")
    assert fake.store.entry("user1") is None
    assert fake.store.entry("user2") is None


def test_lost_reply_in_the_middle_of_a_chunked_run_converges(
    fake: FakeKanidm, account: ProvisionedSyncAccount, client: Client, state_path: pathlib.Path
) -> None:
    """A reply lost after chunk 2 committed: the run continues and applies each chunk once."""

    def drop_second(p: Progress) -> None:
        if p.phase == "apply" and p.done == 1:
            fake.drop_next_response()

    source = ListSource([person(i) for i in range(40)] + [group(1, range(40))])
    runner = Runner(
        client, source, state_path=state_path, max_request_bytes=6000, progress=drop_second
    )
    report = runner.run_once()
    posts = [r for r in fake.history if r.method == "POST"]
    assert report.requests_total == report.requests_sent == len(posts)
    assert [False, True] + [False] * (len(posts) - 2) == [r.dropped for r in posts]
    assert b"list-1" == source_cookie(fake.cookie("hr"))
    assert 40 == len(fake.store.entry("group1").get("member"))  # type: ignore[union-attr]


def test_deletion_guard_refuses_then_allows(
    fake: FakeKanidm, account: ProvisionedSyncAccount, client: Client, state_path: pathlib.Path
) -> None:
    """Deleting 51 of 60 entries is refused without sending anything, then allowed."""
    source = ListSource([person(i) for i in range(60)])
    runner = Runner(client, source, state_path=state_path)
    runner.run_once()
    source.entries = source.entries[:9]
    posts = len(sync_posts(fake))
    with pytest.raises(DeletionGuardError) as info:
        runner.run_once()
    assert 51 == info.value.deletions
    assert posts == len(sync_posts(fake))
    assert "refused" == runner.status.last_report.outcome  # type: ignore[union-attr]
    runner.run_once(allow_deletes=True)
    assert 9 == len(owned_names(fake, account))


def test_empty_source_guard_trips(
    fake: FakeKanidm, account: ProvisionedSyncAccount, client: Client, state_path: pathlib.Path
) -> None:
    """A source that suddenly returns nothing is refused."""
    source = ListSource([person(1), person(2)])
    runner = Runner(client, source, state_path=state_path)
    runner.run_once()
    source.entries = []
    with pytest.raises(SourceGuardError, match="no entries"):
        runner.run_once()
    assert 2 == len(owned_names(fake, account))


def test_shrink_guard_trips_after_a_force_refresh(
    fake: FakeKanidm,
    account: ProvisionedSyncAccount,
    client: Client,
    admin: Client,
    state_path: pathlib.Path,
) -> None:
    """After a force-refresh the deletions are unknown; a source at 40% is refused."""
    source = ListSource([person(i) for i in range(20)])
    runner = Runner(client, source, state_path=state_path)
    runner.run_once()
    admin.force_refresh("hr")
    source.entries = source.entries[:8]
    with pytest.raises(SourceGuardError, match="down from 20"):
        runner.run_once()
    assert 20 == len(owned_names(fake, account))
    Runner(client, source, state_path=state_path, guards=Guards(allow_shrink=True)).run_once()
    assert 8 == len(owned_names(fake, account))


def snapshot_source(entries: list[Person]) -> Any:
    class Snap:
        def __init__(self) -> None:
            self.entries = list(entries)

        def snapshot(self) -> list[Person]:
            return list(self.entries)

    return Snap()


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_missing_or_corrupt_snapshot_store_leads_to_a_full_refresh(
    fake: FakeKanidm,
    account: ProvisionedSyncAccount,
    client: Client,
    tmp_path: pathlib.Path,
    damage: str,
) -> None:
    """Without a usable snapshot store the runner sends the whole image and converges."""
    snap = snapshot_source([person(i) for i in range(10)])
    store = tmp_path / "snapshot.json"
    runner = Runner(client, SnapshotAdapter(snap, store), state_path=tmp_path / "applied.json")
    runner.run_once()
    snap.entries[0] = person(0, displayname="Zero")
    runner.run_once()
    assert 1 == len(sync_posts(fake)[-1]["entries"])
    snap.entries = [snap.entries[0], person(2, displayname="Two")] + [
        person(i) for i in range(3, 10)
    ]
    if damage == "missing":
        store.unlink()
    else:
        store.write_text("{not json")
    (tmp_path / "applied.json").unlink()
    report = runner.run_once()
    last = sync_posts(fake)[-1]
    assert 9 == len(last["entries"])
    assert "Retain" in last["retain"]
    assert 9 == report.counts["create-or-replace"]
    assert {f"user{i}" for i in range(10) if i != 1} == owned_names(fake, account)
    assert "Two" == fake.store.entry("user2").first("displayname")  # type: ignore[union-attr]


def test_crash_between_apply_and_record_write_converges(
    fake: FakeKanidm, account: ProvisionedSyncAccount, client: Client, state_path: pathlib.Path
) -> None:
    """A stale record is not trusted: an entry changed back meanwhile is re-sent."""
    source = ListSource([person(1), person(2), person(3)])
    Runner(client, source, state_path=state_path).run_once()
    source.entries = [person(1, displayname="Changed"), person(2)]
    crashing = Runner(client, source, state_path=state_path, progress=crash_after_apply(1))
    with pytest.raises(Crash):
        crashing.run_once()
    assert b"list-2" == source_cookie(
        fake.cookie("hr")
    )  # Kanidm committed; the record still says list-1
    # The source changes user1 back to what the stale record holds.
    source.entries = [person(1), person(2)]
    report = Runner(client, source, state_path=state_path).run_once()
    assert not report.changes or all(c.action.value == "create-or-replace" for c in report.changes)
    assert "User 1" == fake.store.entry("user1").first("displayname")  # type: ignore[union-attr]
    assert {"user1", "user2"} == owned_names(fake, account)
    assert "nothing-to-do" == Runner(client, source, state_path=state_path).run_once().outcome


def test_chunked_refresh_with_a_crash_between_chunks_resumes(
    fake: FakeKanidm, account: ProvisionedSyncAccount, client: Client, state_path: pathlib.Path
) -> None:
    """Over the size limit from Refresh: crash after chunk 2, the next run sends the rest."""
    # Groups first: the split must still send the persons they reference before them.
    entries = [group(1, range(60)), group(2, range(0, 60, 2))] + [person(i) for i in range(60)]
    source = ListSource(entries)
    crashing = Runner(
        client,
        source,
        state_path=state_path,
        max_request_bytes=6000,
        progress=crash_after_apply(2),
    )
    with pytest.raises(Crash):
        crashing.run_once()
    state = client.get_state()
    chunk = parse_chunk_cookie(state)
    assert chunk is not None
    assert 2 == chunk.index
    assert REFRESH == chunk.base
    before = len(sync_posts(fake))
    report = Runner(client, source, state_path=state_path, max_request_bytes=6000).run_once()
    posts = sync_posts(fake)[before:]
    assert chunk.total - 2 == len(posts) == report.requests_sent
    assert {"Active": {"cookie": fake_cookie(state)}} == posts[0]["from_state"]
    assert b"list-1" == source_cookie(fake.cookie("hr"))
    assert 62 == len(owned_names(fake, account))
    assert 60 == len(fake.store.entry("group1").get("member"))  # type: ignore[union-attr]
    assert 30 == len(fake.store.entry("group2").get("member"))  # type: ignore[union-attr]
    for r in fake.history:
        if r.body is not None:
            assert len(r.body) <= 6000


def test_chunked_refresh_after_force_refresh_keeps_existing_entries(
    fake: FakeKanidm,
    account: ProvisionedSyncAccount,
    client: Client,
    admin: Client,
    state_path: pathlib.Path,
) -> None:
    """From Refresh, chunk 1's cleanup must not recycle entries sent in later chunks."""
    source = ListSource([person(i) for i in range(50)])
    Runner(client, source, state_path=state_path).run_once()
    admin.force_refresh("hr")
    source.entries = [person(i, displayname=f"again {i}") for i in range(50)]
    report = Runner(client, source, state_path=state_path, max_request_bytes=6000).run_once()
    assert report.requests_total > 2
    assert 50 == len(owned_names(fake, account))
    assert [] == [e.uuid for e in fake.store.entries(include_recycled=True) if e.state != "live"]
    assert "again 49" == fake.store.entry("user49").first("displayname")  # type: ignore[union-attr]


def fake_cookie(state: object) -> str:
    assert isinstance(state, ActiveState)
    return base64.urlsafe_b64encode(state.cookie).rstrip(b"=").decode()


def test_chunked_run_restarts_when_the_source_moved_between_chunks(
    fake: FakeKanidm, account: ProvisionedSyncAccount, client: Client, state_path: pathlib.Path
) -> None:
    """If the source changed since the crash, the split restarts and still converges."""
    source = ListSource([person(i) for i in range(50)])
    Runner(client, source, state_path=state_path).run_once()
    source.entries = [person(i, displayname=f"v2 {i}") for i in range(45)]
    crashing = Runner(
        client,
        source,
        state_path=state_path,
        max_request_bytes=5000,
        progress=crash_after_apply(1),
    )
    with pytest.raises(Crash):
        crashing.run_once()
    assert fake.cookie(
        "hr",
    ).startswith(CHUNK_COOKIE_PREFIX)  # type: ignore[union-attr]
    source.entries = [person(i, displayname=f"v3 {i}") for i in range(40)]
    Runner(client, source, state_path=state_path, max_request_bytes=5000).run_once(
        allow_deletes=True
    )
    assert {f"user{i}" for i in range(40)} == owned_names(fake, account)
    assert "v3 7" == fake.store.entry("user7").first("displayname")  # type: ignore[union-attr]
    assert not fake.cookie("hr").startswith(CHUNK_COOKIE_PREFIX)  # type: ignore[union-attr]


def test_plan_is_bound_to_its_from_state(
    fake: FakeKanidm, account: ProvisionedSyncAccount, client: Client, state_path: pathlib.Path
) -> None:
    """Applying a plan after Kanidm's state moved is refused before anything is sent."""
    source = ListSource([person(1)])
    runner = Runner(client, source, state_path=state_path)
    plan = runner.plan()
    other = ListSource([person(2)])
    other.generation = 7
    Runner(client, other).run_once()
    posts = len(sync_posts(fake))
    with pytest.raises(StalePlanError) as info:
        runner.apply(plan)
    assert posts == len(sync_posts(fake))
    assert REFRESH == info.value.expected
    assert ActiveState(b"kanidm-sync-held:v1:1:list-8") == info.value.actual


def test_dry_run_sends_nothing_and_reports_the_plan(
    fake: FakeKanidm, account: ProvisionedSyncAccount, client: Client
) -> None:
    """A dry run plans and reports without any POST."""
    report = Runner(client, ListSource([person(1)])).run_once(dry_run=True)
    assert "planned" == report.outcome
    assert [] == sync_posts(fake)
    assert 1 == report.counts["create-or-replace"]


def test_run_forever_backs_off_and_exposes_status(
    fake: FakeKanidm, account: ProvisionedSyncAccount, client: Client
) -> None:
    """Failures back off, a later success resets the status; sleeps are injected."""

    class Flaky(ListSource):
        failures = 2

        def fetch(self, state):  # type: ignore[no-untyped-def]
            if self.failures:
                self.failures -= 1
                raise SourceError("the HR API is down")
            return super().fetch(state)

    source = Flaky([person(1)])
    slept: list[float] = []
    runner = Runner(client, source)
    status = runner.run_forever(
        Schedule(interval=10, jitter=0.0),
        max_runs=4,
        sleep=slept.append,
        random=lambda: 0.5,
    )
    assert [20.0, 40.0, 10.0] == slept
    assert "ok" == status.state
    assert 4 == status.runs
    assert 2 == status.failures
    assert status.last_error == "SourceError: the HR API is down"
    assert b"list-1" == source_cookie(fake.cookie("hr"))
    assert status.next_run_at is None  # the loop ended: no run is due
    assert status.healthy


def test_logging_never_shows_secrets(
    fake: FakeKanidm,
    account: ProvisionedSyncAccount,
    client: Client,
    state_path: pathlib.Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Password imports stay out of logs, reports and the local record."""
    secret = "{SSHA512}" + base64.b64encode(bytes(range(72))).decode()
    source = ListSource([attrs.evolve(person(1), password_import=secret)])
    with caplog.at_level(logging.DEBUG, logger="kanidm_sync"):
        report = Runner(client, source, state_path=state_path).run_once()
    assert secret not in caplog.text
    assert secret not in report.to_json()
    assert secret.encode() not in state_path.read_bytes()
    assert account.token not in caplog.text


def test_refresh_required_is_answered_with_one_atomic_full_image(
    fake: FakeKanidm, account: ProvisionedSyncAccount, client: Client, state_path: pathlib.Path
) -> None:
    """RefreshRequired: the runner asks for a full image and applies it from Active at once."""
    from kanidm_sync.adapters import RefreshRequired

    class Source(ListSource):
        def fetch(self, state):  # type: ignore[no-untyped-def]
            if isinstance(state, ActiveState):
                self.fetched.append(state)
                return RefreshRequired("the cookie expired")
            return super().fetch(state)

    source = Source([person(1), person(2)])
    runner = Runner(client, source, state_path=state_path)
    runner.run_once()
    state_path.unlink()  # the base is unknown, so deletions go through Retain
    source.entries = [person(2), person(3)]
    runner.run_once()
    last = sync_posts(fake)[-1]
    # Kanidm's cookie carries the count of entries the account holds (docs/runner.md).
    assert {"Active": {"cookie": b64("kanidm-sync-held:v1:2:list-1")}} == last["from_state"]
    assert {"Active": {"cookie": b64("kanidm-sync-held:v1:2:list-2")}} == last["to_state"]
    assert "Retain" in last["retain"]
    assert 2 == len(sync_posts(fake))  # no separate "forget the cookie" apply
    assert {"user2", "user3"} == owned_names(fake, account)


def test_invalid_batch_is_refused_before_sending(
    fake: FakeKanidm, account: ProvisionedSyncAccount, client: Client
) -> None:
    """Local validation errors refuse the run; nothing reaches Kanidm."""
    from kanidm_sync import ValidationError

    runner = Runner(client, ListSource([person(1, name="Not A Name")]))
    with pytest.raises(ValidationError):
        runner.run_once()
    assert [] == sync_posts(fake)
    assert "refused" == runner.status.last_report.outcome  # type: ignore[union-attr]


def test_delta_for_kanidm_in_refresh_is_a_source_error(
    fake: FakeKanidm, account: ProvisionedSyncAccount, client: Client
) -> None:
    """A source answering Refresh with a delta would delete everything it omits: refused."""
    source = DeltaSource()
    source.queue.append(Delta(entries=[person(1)], cookie=b"d1"))
    with pytest.raises(SourceError, match="full image"):
        Runner(client, source).run_once()
    assert [] == sync_posts(fake)


def test_run_forever_stops_when_asked(
    fake: FakeKanidm, account: ProvisionedSyncAccount, client: Client
) -> None:
    """The stop callable ends the loop before the next run."""
    calls: list[int] = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 2

    status = Runner(client, ListSource([person(1)])).run_forever(
        Schedule(interval=1, run_immediately=False), stop=stop, sleep=lambda s: None
    )
    assert 2 == status.runs


def test_swap_of_names_in_a_chunked_run_is_released_first(
    fake: FakeKanidm, account: ProvisionedSyncAccount, client: Client, state_path: pathlib.Path
) -> None:
    """Two entries exchanging names are released first; then any split is safe."""
    entries = [person(i) for i in range(40)]
    source = ListSource(entries)
    Runner(client, source, state_path=state_path).run_once()
    changed: list[Entry] = [person(i, displayname=f"v2 {i}") for i in range(40)]
    changed[0] = person(0, name="user39", displayname="v2 0")
    changed[39] = person(39, name="user0", displayname="v2 39")
    source.entries = changed
    runner = Runner(client, source, state_path=state_path, max_request_bytes=5000)
    plan = runner.plan()
    assert {pid(0): ("name",), pid(39): ("name",)} == dict(plan.released)
    first = plan.requests[0]
    assert {pid(0), pid(39)} == {e.id for e in first.entries}
    report = runner.apply(plan)
    assert report.requests_total > 2
    assert 40 == report.counts["sent"]
    assert pid(0) == fake.store.entry("user39").uuid  # type: ignore[union-attr]
    assert pid(39) == fake.store.entry("user0").uuid  # type: ignore[union-attr]


def test_group_handing_its_name_to_a_new_person_while_naming_a_new_member(
    fake: FakeKanidm, account: ProvisionedSyncAccount, client: Client, state_path: pathlib.Path
) -> None:
    """The group releases its name first; the rest is split in reference order."""
    padded = "x" * 1300
    staff = Group(id=gid(9), external_id="cn=g9", name="frank", description=padded)
    source = ListSource([staff])
    Runner(client, source, state_path=state_path, max_request_bytes=4096).run_once()
    # The group is renamed and gives "frank" to a new person; it also names a new member,
    # which the split must send first (three entries do not fit in one request).
    source.entries = [
        attrs.evolve(staff, name="heidi", member=["uid=user2,ou=people,dc=example,dc=org"]),
        attrs.evolve(person(1, name="frank"), legalname=padded),
        attrs.evolve(person(2), legalname=padded),
    ]
    report = Runner(client, source, state_path=state_path, max_request_bytes=4096).run_once()
    assert 3 == report.requests_sent  # the release, the persons, the group naming one
    assert pid(1) == fake.store.entry("frank").uuid  # type: ignore[union-attr]
    assert (str(pid(2)),) == fake.store.entry("heidi").get("member")  # type: ignore[union-attr]
