"""The baseline in Kanidm's cookie, the record lock, and resuming a snapshot's split.

Issue 12: items 1 (the shrink guard switches off), 7 (two runners on one record; an
interrupted chunked sync restarting from request 1), 10 (mass deletion when local state
is missing), 5 (unresolved-member noise in delta runs).
"""

from __future__ import annotations

import logging
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

from kanidm_sync import (
    ActiveState,
    ChangeSet,
    Client,
    ConcurrentRunError,
    Group,
    Guards,
    Person,
    Progress,
    RefreshState,
    Runner,
    SourceGuardError,
    source_state,
)
from kanidm_sync._baseline import Baseline, count_after_delta, unwrap, wrap
from kanidm_sync.adapters import Delta, FullImage, SnapshotAdapter
from kanidm_sync.testing import FakeKanidm, ProvisionedSyncAccount

from .conftest import DeltaSource, ListSource, group, owned_names, person, pid, sync_posts

# --- the envelope (pure) ---------------------------------------------------------------------


def test_wrap_and_unwrap_round_trip_exact_and_lower_bound() -> None:
    assert b"kanidm-sync-held:v1:21:csn=1" == wrap(b"csn=1", 21)
    assert b"kanidm-sync-held:v1:>=3:csn=1" == wrap(b"csn=1", 3, exact=False)
    state, baseline = unwrap(ActiveState(wrap(b"a:b:c", 7)))
    assert ActiveState(b"a:b:c") == state  # the source's cookie may contain colons
    assert Baseline(count=7, exact=True, source="cookie") == baseline
    assert Baseline(count=3, exact=False) == unwrap(ActiveState(wrap(b"", 3, exact=False)))[1]


@pytest.mark.parametrize(
    "cookie",
    [b"csn=1", b"kanidm-sync-held:v1:x:csn", b"kanidm-sync-held:v1:12", b"kanidm-sync-held:v1::c"],
)
def test_foreign_or_malformed_cookies_are_the_source_s_own(cookie: bytes) -> None:
    """A cookie without a well-formed envelope is passed to the source as it is."""
    assert (ActiveState(cookie), None) == unwrap(ActiveState(cookie))
    assert ActiveState(cookie) == source_state(ActiveState(cookie))
    assert (RefreshState(), None) == unwrap(RefreshState())


def test_count_after_a_delta() -> None:
    exact = Baseline(count=10)
    # An exact record: additions and deletions are told apart.
    assert (3, True) == count_after_delta(
        exact,
        known_ids=frozenset({1, 2, 3}),
        entry_ids=[3, 4],
        deleted_ids=[1],
        present=None,
        total=None,
    )
    # The source's own count (a snapshot store) wins over arithmetic.
    assert (40, True) == count_after_delta(
        exact, known_ids=None, entry_ids=[1], deleted_ids=[], present=None, total=40
    )
    # Deletions only over an exact count stay exact; with entries sent, a lower bound.
    assert (8, True) == count_after_delta(
        exact, known_ids=None, entry_ids=[], deleted_ids=[5, 6, 6], present=None, total=None
    )
    assert (9, False) == count_after_delta(
        exact, known_ids=None, entry_ids=[1, 2], deleted_ids=[5], present=None, total=None
    )
    # A record of another cookie is a hint, not Kanidm's count.
    hint = Baseline(count=10, source="old-record")
    assert (10, False) == count_after_delta(
        hint, known_ids=None, entry_ids=[], deleted_ids=[], present=None, total=None
    )
    assert None is count_after_delta(
        None, known_ids=None, entry_ids=[1], deleted_ids=[], present=None, total=None
    )


# --- the runner carries it -------------------------------------------------------------------


def test_every_apply_carries_the_count_and_sources_never_see_it(
    fake: FakeKanidm, client: Client
) -> None:
    source = DeltaSource()
    source.queue = [
        FullImage(entries=[person(i) for i in range(5)], cookie=b"c1"),
        Delta(entries=[person(5)], deleted=[pid(0)], cookie=b"c2"),
    ]
    runner = Runner(client, source)
    runner.run_once()
    assert b"kanidm-sync-held:v1:5:c1" == fake.cookie("hr")
    runner.run_once()
    # No record: an addition cannot be told from a change, so the count is a lower bound.
    assert b"kanidm-sync-held:v1:>=4:c2" == fake.cookie("hr")
    assert [RefreshState(), ActiveState(b"c1")] == source.fetched


def test_no_record_snapshot_source_truncated_is_refused(
    fake: FakeKanidm, account: ProvisionedSyncAccount, client: Client, tmp_path: pathlib.Path
) -> None:
    """``Runner(state_path=None)``: the snapshot's own count feeds the shrink guard."""
    source = ListSnapshot([person(i) for i in range(21)])
    runner = Runner(client, SnapshotAdapter(source, tmp_path / "snap.json"))
    runner.run_once()
    source.entries = source.entries[:2]
    with pytest.raises(SourceGuardError, match="delete 19 of the 21 entries") as info:
        runner.run_once()
    assert "shrink" == info.value.reason
    assert 21 == len(owned_names(fake, account))


def test_a_no_record_runner_warns_once(
    client: Client, tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = ListSource([person(1)])
    runner = Runner(client, source)
    with caplog.at_level(logging.WARNING, logger="kanidm_sync"):
        runner.run_once()
        source.entries.append(person(2))
        runner.run_once()
    warned = [r for r in caplog.records if "no state_path" in r.getMessage()]
    assert 1 == len(warned)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="kanidm_sync"):
        Runner(client, source, state_path=tmp_path / "rec.json").run_once()
    assert not [r for r in caplog.records if "no state_path" in r.getMessage()]


def test_a_delta_without_record_names_the_count_in_the_deletion_guard(
    fake: FakeKanidm, client: Client
) -> None:
    """No more "delete 901 of 0 synced entries": the cookie's count is used."""
    source = DeltaSource()
    source.queue = [FullImage(entries=[person(i) for i in range(1000)], cookie=b"c1")]
    Runner(client, source).run_once()
    source.queue = [Delta(deleted=[pid(i) for i in range(101)], cookie=b"c2")]
    with pytest.raises(Exception, match="delete 101 of the 1000 synced entries"):
        Runner(client, source).run_once()


def test_a_foreign_cookie_and_no_record_needs_an_operator_decision(
    fake: FakeKanidm, account: ProvisionedSyncAccount, client: Client, tmp_path: pathlib.Path
) -> None:
    """Kanidm Active under another tool's cookie, no record: a full image is refused."""
    client.apply(
        ChangeSet(
            from_state=RefreshState(),
            to_state=ActiveState(b"ipa-cookie"),
            entries=[person(i) for i in range(30)],
        )
    )
    source = ListSource([person(i) for i in range(3)])
    with pytest.raises(SourceGuardError, match="an unknown number") as info:
        Runner(client, source, state_path=tmp_path / "rec.json").run_once()
    assert "unknown" == info.value.reason
    assert 30 == len(owned_names(fake, account))
    # Guards.disabled() and allow_deletes are the operator's decision.
    report = Runner(client, source, state_path=tmp_path / "rec.json").run_once(allow_deletes=True)
    assert report.ok
    assert b"kanidm-sync-held:v1:3:list-1" == fake.cookie("hr")


def test_the_first_sync_of_an_account_in_refresh_is_not_refused(client: Client) -> None:
    """Refresh with no baseline is the normal first sync: nothing to refuse."""
    assert Runner(client, ListSource([person(1)])).run_once().ok


def test_a_force_refresh_keeps_the_record_s_count(
    admin: Client, client: Client, tmp_path: pathlib.Path
) -> None:
    """A refresh forgets the cookie (and its count); the record of another cookie remains."""
    source = ListSource([person(i) for i in range(20)])
    runner = Runner(client, source, state_path=tmp_path / "rec.json")
    runner.run_once()
    admin.force_refresh("hr")
    source.entries = source.entries[:5]
    with pytest.raises(SourceGuardError, match="down from 20 last time"):
        runner.run_once()
    assert (
        Runner(client, source, state_path=tmp_path / "rec.json", guards=Guards.disabled())
        .run_once()
        .ok
    )


# --- the lock ------------------------------------------------------------------------------


def test_a_second_runner_on_the_same_record_is_refused_naming_the_first(
    client: Client, tmp_path: pathlib.Path
) -> None:
    record = tmp_path / "rec.json"
    caught: list[BaseException] = []
    other = Runner(client, ListSource([person(2)]), state_path=record)

    def progress(p: Progress) -> None:
        if p.phase == "plan":
            try:
                other.run_once()
            except ConcurrentRunError as exc:
                caught.append(exc)

    report = Runner(
        client, ListSource([person(1)]), state_path=record, progress=progress
    ).run_once()
    assert report.ok
    assert 1 == len(caught)
    error = caught[0]
    assert isinstance(error, ConcurrentRunError)
    assert f"process {os.getpid()}" in str(error)
    assert str(record) + ".lock" in str(error)
    # The refused run is in the loser's status, and the lock is free again afterwards.
    assert other.status.last_error is not None
    assert "ConcurrentRunError" in other.status.last_error
    assert other.run_once().ok


def test_the_lock_holds_across_processes(client: Client, tmp_path: pathlib.Path) -> None:
    record = tmp_path / "rec.json"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import pathlib, sys, time
                from kanidm_sync._lock import RunLock
                lock = RunLock(pathlib.Path({str(record)!r}))
                lock.acquire()
                print("held", flush=True)
                sys.stdin.readline()
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(pathlib.Path(__file__).parents[2])},
    )
    try:
        assert holder.stdout is not None
        assert "held" == holder.stdout.readline().strip()
        with pytest.raises(ConcurrentRunError, match=f"process {holder.pid}") as info:
            Runner(client, ListSource([person(1)]), state_path=record).run_once()
        assert holder.pid == info.value.holder
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
        assert holder.stdout is not None
        holder.stdout.close()
    assert Runner(client, ListSource([person(1)]), state_path=record).run_once().ok


# --- resuming a split from a snapshot source --------------------------------------------------


class ListSnapshot:
    """A snapshot source over a list."""

    def __init__(self, entries: list[Person]) -> None:
        self.entries = entries

    def snapshot(self) -> list[Person]:
        return list(self.entries)


class Stop(BaseException):
    pass


def test_an_interrupted_chunked_snapshot_delta_resumes_where_it_stopped(
    fake: FakeKanidm, account: ProvisionedSyncAccount, client: Client, tmp_path: pathlib.Path
) -> None:
    """A SnapshotAdapter gives the same cookie for the same churn, so the split resumes."""
    entries = [person(i) for i in range(60)]
    source = ListSnapshot(entries)

    def runner(progress: object = None) -> Runner:
        return Runner(
            client,
            SnapshotAdapter(source, tmp_path / "snap.json"),
            state_path=tmp_path / "rec.json",
            max_request_bytes=12_000,
            progress=progress,  # type: ignore[arg-type]
        )

    runner().run_once()
    source.entries = [person(i, displayname=f"Changed {i}") for i in range(60)]

    def stop_after_first(p: Progress) -> None:
        if p.phase == "apply" and p.done == 1:
            raise Stop

    with pytest.raises(Stop):
        runner(stop_after_first).run_once()
    posts = len(sync_posts(fake))
    report = runner().run_once()
    assert report.ok
    assert 1 == report.requests_sent  # the rest of the split, not request 1 again
    assert report.requests_total > 1
    assert posts + 1 == len(sync_posts(fake))
    names = {e.first("displayname") for e in fake.store.entries(owned_by=account.uuid)}
    assert {f"Changed {i}" for i in range(60)} == names


def test_an_interrupted_chunked_first_sync_from_a_snapshot_resumes(
    fake: FakeKanidm, account: ProvisionedSyncAccount, client: Client, tmp_path: pathlib.Path
) -> None:
    """A full image: the store gives the same cookie again, so the split is recognised."""
    source = ListSnapshot([person(i) for i in range(60)])

    def runner(progress: object = None) -> Runner:
        return Runner(
            client,
            SnapshotAdapter(source, tmp_path / "snap.json"),
            state_path=tmp_path / "rec.json",
            max_request_bytes=12_000,
            progress=progress,  # type: ignore[arg-type]
        )

    def stop_after_first(p: Progress) -> None:
        if p.phase == "apply" and p.done == 1:
            raise Stop

    with pytest.raises(Stop):
        runner(stop_after_first).run_once()
    report = runner().run_once()
    assert report.ok
    assert report.requests_sent == report.requests_total - 1
    assert 60 == len(owned_names(fake, account))


# --- warnings the record answers --------------------------------------------------------------


def test_one_hire_into_a_big_group_is_not_a_warning_per_member(
    client: Client, tmp_path: pathlib.Path
) -> None:
    source = DeltaSource()
    source.queue = [
        FullImage(entries=[*(person(i) for i in range(300)), group(1, range(300))], cookie=b"c1")
    ]
    runner = Runner(client, source, state_path=tmp_path / "rec.json")
    runner.run_once()
    source.queue = [Delta(entries=[person(300), group(1, range(301))], cookie=b"c2")]
    report = runner.run_once()
    assert report.ok
    assert not [w for w in report.warnings if "member.unresolved" in w]


def test_unresolved_members_without_a_record_are_summed_up_per_group(client: Client) -> None:
    source = DeltaSource()
    source.queue = [FullImage(entries=[person(i) for i in range(50)], cookie=b"c1")]
    runner = Runner(client, source)
    runner.run_once()
    members = [f"uid=user{i},ou=people,dc=example,dc=org" for i in range(50)]
    source.queue = [
        Delta(
            entries=[Group(id=pid(900), external_id="cn=big", name="big", member=members)],
            cookie=b"c2",
        )
    ]
    report = runner.run_once()
    unresolved = [w for w in report.warnings if "member.unresolved" in w]
    assert 4 == len(unresolved)  # three named, then "47 more members"
    assert "47 more members" in unresolved[-1]
