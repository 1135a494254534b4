"""Values changing hands, end to end against the in-memory Kanidm (pre-write uniqueness).

The in-memory Kanidm checks uniqueness against what it holds before each request, as
kanidmd 1.11.1 does: these runs converge only because the runner releases the values in a
first request (docs/runner.md, "Swaps").
"""

from __future__ import annotations

import logging
import pathlib

import attrs
import pytest

from kanidm_sync import (
    AsyncClient,
    AsyncRunner,
    Client,
    Entry,
    Group,
    Mail,
    Person,
    PosixAccount,
    Progress,
    Remap,
    Rules,
    Runner,
    UniquenessError,
)
from kanidm_sync._chunk import parse_chunk_cookie
from kanidm_sync._release import RELEASED_NAME
from kanidm_sync.adapters import Delta, FullImage, SnapshotAdapter
from kanidm_sync.testing import FakeKanidm, ProvisionedSyncAccount

from .conftest import DeltaSource, ListSource, gid, person, pid, source_cookie, sync_posts


class Crash(Exception):
    """Stands in for the process dying after a committed request."""


def names_of(fake: FakeKanidm, account: ProvisionedSyncAccount) -> dict[str, object]:
    """Name -> UUID of every live entry the account owns."""
    return {str(e.first("name")): e.uuid for e in fake.store.entries(owned_by=account.uuid)}


def no_temporary_values(fake: FakeKanidm, account: ProvisionedSyncAccount) -> None:
    for e in fake.store.entries(owned_by=account.uuid):
        assert not str(e.first("name")).startswith(RELEASED_NAME)
        assert not str(e.first("sync_external_id")).startswith("kanidm-sync-released:")


def test_swap_of_names_converges_in_two_requests(
    fake: FakeKanidm, account: ProvisionedSyncAccount, client: Client, state_path: pathlib.Path
) -> None:
    """Alice and bob trade names: request 1 releases both, request 2 applies the swap."""
    alice, bob = person(1, name="alice"), person(2, name="bob")
    source = ListSource([alice, bob])
    runner = Runner(client, source, state_path=state_path)
    runner.run_once()
    source.entries = [attrs.evolve(alice, name="bob"), attrs.evolve(bob, name="alice")]
    before = len(sync_posts(fake))
    report = runner.run_once()
    assert "applied" == report.outcome
    assert 2 == report.requests_sent
    assert 2 == report.counts["sent"]
    assert any("alice and bob exchange names: released first" in w for w in report.warnings)
    release, swap = sync_posts(fake)[before:]
    assert {RELEASED_NAME + pid(1).hex, RELEASED_NAME + pid(2).hex} == {
        e["name"] for e in release["entries"]
    }
    assert {"alice", "bob"} == {e["name"] for e in swap["entries"]}
    assert {"alice": pid(2), "bob": pid(1)} == names_of(fake, account)
    assert b"list-2" == source_cookie(fake.cookie("hr"))
    assert "nothing-to-do" == runner.run_once().outcome


def test_rotation_across_persons_and_a_group_keeps_the_members(
    fake: FakeKanidm, account: ProvisionedSyncAccount, client: Client, state_path: pathlib.Path
) -> None:
    """Three names go round a person, a person and a group; the group keeps its members."""
    ann, ben = person(1, name="ann"), person(2, name="ben")
    staff = Group(id=gid(1), external_id="cn=staff", name="staff", member=[str(ann.external_id)])
    source = ListSource([ann, ben, staff])
    runner = Runner(client, source, state_path=state_path)
    runner.run_once()
    source.entries = [
        attrs.evolve(ann, name="ben"),
        attrs.evolve(ben, name="staff"),
        attrs.evolve(staff, name="ann"),
    ]
    report = runner.run_once()
    assert 2 == report.requests_sent
    assert {"ben": pid(1), "staff": pid(2), "ann": gid(1)} == names_of(fake, account)
    group = fake.store.entry(gid(1))
    assert group is not None
    assert (str(pid(1)),) == group.get("member")


def test_chain_of_renames(
    fake: FakeKanidm, account: ProvisionedSyncAccount, client: Client, state_path: pathlib.Path
) -> None:
    """Ann takes ben's name while ben takes a new one: one entry released, then the chain."""
    ann, ben = person(1, name="ann"), person(2, name="ben")
    source = ListSource([ann, ben])
    runner = Runner(client, source, state_path=state_path)
    runner.run_once()
    source.entries = [attrs.evolve(ann, name="ben"), attrs.evolve(ben, name="bea")]
    before = len(sync_posts(fake))
    runner.run_once()
    release, _ = sync_posts(fake)[before:]
    assert [str(pid(2))] == [e["id"] for e in release["entries"]]
    assert {"ben": pid(1), "bea": pid(2)} == names_of(fake, account)


def test_swap_of_mails_gidnumbers_and_external_ids(
    fake: FakeKanidm, account: ProvisionedSyncAccount, client: Client, state_path: pathlib.Path
) -> None:
    """Everything kanidmd keeps unique, traded at once by two persons a group names."""
    a = attrs.evolve(person(1), mail=[Mail("a@example.org")], posix=PosixAccount(gidnumber=20001))
    b = attrs.evolve(person(2), mail=[Mail("b@example.org")], posix=PosixAccount(gidnumber=20002))
    staff = Group(id=gid(1), external_id="cn=staff", name="staff", member=[str(a.external_id)])
    source = ListSource([a, b, staff])
    runner = Runner(client, source, state_path=state_path)
    runner.run_once()
    a2 = attrs.evolve(
        a,
        external_id=b.external_id,
        mail=[Mail("b@example.org")],
        posix=PosixAccount(gidnumber=20002),
    )
    b2 = attrs.evolve(
        b,
        external_id=a.external_id,
        mail=[Mail("a@example.org")],
        posix=PosixAccount(gidnumber=20001),
    )
    # The group still names uid=user1, now person 2.
    source.entries = [a2, b2, staff]
    report = runner.run_once()
    assert "applied" == report.outcome
    ea, eb = fake.store.entry(pid(1)), fake.store.entry(pid(2))
    assert ea is not None
    assert eb is not None
    assert (b.external_id, ("b@example.org",), 20002) == (
        ea.first("sync_external_id"),
        ea.get("mail"),
        ea.first("gidnumber"),
    )
    assert (a.external_id, ("a@example.org",), 20001) == (
        eb.first("sync_external_id"),
        eb.get("mail"),
        eb.first("gidnumber"),
    )
    group = fake.store.entry(gid(1))
    assert group is not None
    # The unchanged group names uid=user1, which person 2 holds now: it is sent again.
    assert (str(pid(2)),) == group.get("member")
    no_temporary_values(fake, account)


def test_swap_with_an_entry_recreated_under_a_deleted_name(
    fake: FakeKanidm, account: ProvisionedSyncAccount, client: Client, state_path: pathlib.Path
) -> None:
    """A delta swapping two names and re-creating carol: releases and deletion go first."""
    alice, bob, carol = person(1, name="alice"), person(2, name="bob"), person(3, name="carol")
    source = DeltaSource()
    source.queue.append(FullImage(entries=[alice, bob, carol], cookie=b"c0"))
    runner = Runner(client, source, state_path=state_path)
    runner.run_once()
    carol2 = attrs.evolve(carol, id=pid(33))
    source.queue.append(
        Delta(
            entries=[attrs.evolve(alice, name="bob"), attrs.evolve(bob, name="alice"), carol2],
            deleted=[pid(3)],
            cookie=b"c1",
        )
    )
    before = len(sync_posts(fake))
    report = runner.run_once()
    assert 2 == report.requests_sent
    first, _ = sync_posts(fake)[before:]
    assert {"Delete": [str(pid(3))]} == first["retain"]
    assert {str(pid(1)), str(pid(2))} == {e["id"] for e in first["entries"]}
    assert {"alice": pid(2), "bob": pid(1), "carol": pid(33)} == names_of(fake, account)


def test_swap_after_a_force_refresh_uses_the_record_as_a_hint(
    fake: FakeKanidm,
    account: ProvisionedSyncAccount,
    client: Client,
    admin: Client,
    state_path: pathlib.Path,
) -> None:
    """From Refresh the first request keeps every entry alive and releases the givers."""
    alice, bob, carol = person(1, name="alice"), person(2, name="bob"), person(3, name="carol")
    source = ListSource([alice, bob, carol])
    runner = Runner(client, source, state_path=state_path)
    runner.run_once()
    admin.force_refresh("hr")
    source.entries = [attrs.evolve(alice, name="bob"), attrs.evolve(bob, name="alice"), carol]
    before = len(sync_posts(fake))
    report = runner.run_once()
    assert "applied" == report.outcome
    first, second = sync_posts(fake)[before:]
    assert "Refresh" == first["from_state"]
    assert 3 == len(first["entries"])
    assert {"alice": pid(2), "bob": pid(1), "carol": pid(3)} == names_of(fake, account)
    assert b"list-2" == source_cookie(fake.cookie("hr"))
    del second
    no_temporary_values(fake, account)


def test_crash_after_the_release_resumes_the_same_split(
    fake: FakeKanidm, account: ProvisionedSyncAccount, client: Client, state_path: pathlib.Path
) -> None:
    """The release committed, then the process died: the next run sends only the rest."""
    alice, bob = person(1, name="alice"), person(2, name="bob")
    source = ListSource([alice, bob])
    Runner(client, source, state_path=state_path).run_once()
    source.entries = [attrs.evolve(alice, name="bob"), attrs.evolve(bob, name="alice")]

    def crash(p: Progress) -> None:
        if p.phase == "apply" and p.done == 1:
            raise Crash

    with pytest.raises(Crash):
        Runner(client, source, state_path=state_path, progress=crash).run_once()
    assert parse_chunk_cookie(client.get_state()) is not None
    assert RELEASED_NAME + pid(1).hex in names_of(fake, account)
    report = Runner(client, source, state_path=state_path).run_once()
    assert 1 == report.requests_sent
    assert {"alice": pid(2), "bob": pid(1)} == names_of(fake, account)


def test_crash_after_the_release_then_the_source_moves(
    fake: FakeKanidm, account: ProvisionedSyncAccount, client: Client, state_path: pathlib.Path
) -> None:
    """The source changed meanwhile: the run starts over from the chunk cookie and converges."""
    alice, bob = person(1, name="alice"), person(2, name="bob")
    source = ListSource([alice, bob])
    Runner(client, source, state_path=state_path).run_once()
    source.entries = [attrs.evolve(alice, name="bob"), attrs.evolve(bob, name="alice")]

    def crash(p: Progress) -> None:
        if p.phase == "apply" and p.done == 1:
            raise Crash

    with pytest.raises(Crash):
        Runner(client, source, state_path=state_path, progress=crash).run_once()
    source.entries = [
        attrs.evolve(alice, name="bob", displayname="Alice B."),
        attrs.evolve(bob, name="alice"),
    ]
    report = Runner(client, source, state_path=state_path).run_once()
    assert "applied" == report.outcome
    assert {"alice": pid(2), "bob": pid(1)} == names_of(fake, account)
    assert "nothing-to-do" == Runner(client, source, state_path=state_path).run_once().outcome


def test_unknown_base_swap_is_retried_with_the_record_as_a_hint(
    fake: FakeKanidm,
    account: ProvisionedSyncAccount,
    client: Client,
    state_path: pathlib.Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The record is for another cookie: the 409 is retried with the values it shows released."""
    alice, bob = person(1, name="alice"), person(2, name="bob")
    source = ListSource([alice, bob])
    Runner(client, source, state_path=state_path).run_once()
    # Another runner (no record) moves Kanidm's cookie; the entries stay as recorded.
    other = ListSource([alice, bob])
    other.generation = 10
    Runner(client, other).run_once()
    assert b"list-11" == source_cookie(fake.cookie("hr"))
    source.entries = [attrs.evolve(alice, name="bob"), attrs.evolve(bob, name="alice")]
    before = len(sync_posts(fake))
    with caplog.at_level(logging.WARNING, logger="kanidm_sync.runner"):
        report = Runner(client, source, state_path=state_path).run_once()
    assert "applied" == report.outcome
    assert any("2 entries releasing values" in r.getMessage() for r in caplog.records)
    failed, release, _ = sync_posts(fake)[before:]
    assert {"alice", "bob"} == {e["name"] for e in failed["entries"]}
    assert all(e["name"].startswith(RELEASED_NAME) for e in release["entries"])
    assert {"alice": pid(2), "bob": pid(1)} == names_of(fake, account)


def test_unknown_base_swap_without_a_record_has_a_documented_remedy(
    fake: FakeKanidm, account: ProvisionedSyncAccount, client: Client, tmp_path: pathlib.Path
) -> None:
    """No record: the diagnosis says what to do, and doing it converges."""
    alice, bob = person(1, name="alice"), person(2, name="bob")
    source = ListSource([alice, bob])
    Runner(client, source).run_once()
    source.entries = [attrs.evolve(alice, name="bob"), attrs.evolve(bob, name="alice")]
    runner = Runner(client, source)
    with pytest.raises(UniquenessError):
        runner.run_once()
    d = runner.last_report.diagnosis  # type: ignore[union-attr]
    assert d is not None
    assert not d.narrowed
    assert any(
        "cannot see entries of this account exchanging values" in n and "Remedy: remap" in n
        for n in d.notes
    )
    assert {"alice": pid(1), "bob": pid(2)} == names_of(fake, account)  # rolled back
    # The remedy: each entry taking a value another holds gets one nobody holds, for a run.
    rules = Rules(remap_ids={pid(1): Remap(name="bob-sync"), pid(2): Remap(name="alice-sync")})
    state_path = tmp_path / "applied.json"
    Runner(client, source, rules=rules, state_path=state_path).run_once()
    report = Runner(client, source, state_path=state_path).run_once()
    assert "applied" == report.outcome
    assert {"alice": pid(2), "bob": pid(1)} == names_of(fake, account)


def test_released_value_taken_by_a_native_entry_is_not_blamed_on_the_giver(
    fake: FakeKanidm, account: ProvisionedSyncAccount, client: Client, state_path: pathlib.Path
) -> None:
    """Ann hands 'ben' on and takes 'eve', which a native entry holds: ann is the suspect."""
    ann, ben = person(1, name="ann"), person(2, name="ben")
    source = ListSource([ann, ben])
    runner = Runner(client, source, state_path=state_path)
    runner.run_once()
    fake.store.add_person("eve")
    source.entries = [attrs.evolve(ann, name="eve"), attrs.evolve(ben, name="ann")]
    with pytest.raises(UniquenessError):
        runner.run_once()
    d = runner.last_report.diagnosis  # type: ignore[union-attr]
    assert d is not None
    assert [pid(1)] == [s.id for s in d.suspects]
    assert d.narrowed
    assert "new to this sync account" in d.suspects[0].reason


@pytest.mark.anyio
async def test_async_runner_releases_too(
    fake: FakeKanidm,
    account: ProvisionedSyncAccount,
    async_client: AsyncClient,
    state_path: pathlib.Path,
) -> None:
    """The async runner drives the same flow."""
    alice, bob = person(1, name="alice"), person(2, name="bob")
    entries: list[Entry] = [alice, bob]
    source = ListSource(entries)
    runner = AsyncRunner(async_client, source, state_path=state_path)
    await runner.run_once()
    source.entries = [attrs.evolve(alice, name="bob"), attrs.evolve(bob, name="alice")]
    report = await runner.run_once()
    assert 2 == report.requests_sent
    assert {"alice": pid(2), "bob": pid(1)} == names_of(fake, account)


def test_swap_of_names_is_refused_in_one_request_by_the_double(
    fake: FakeKanidm, account: ProvisionedSyncAccount, client: Client
) -> None:
    """What the release avoids: the in-memory Kanidm answers a one-request swap with 409."""
    alice, bob = person(1, name="alice"), person(2, name="bob")
    Runner(client, ListSource([alice, bob])).run_once()
    swapped: list[Person] = [attrs.evolve(alice, name="bob"), attrs.evolve(bob, name="alice")]
    from kanidm_sync import ChangeSet

    with pytest.raises(UniquenessError):
        client.apply(
            ChangeSet(from_state=client.get_state(), to_state=client.get_state(), entries=swapped)
        )


class Snapshot:
    """What a SnapshotAdapter snapshots: a list of entries."""

    def __init__(self, entries: list[Entry]) -> None:
        self.entries = entries

    def snapshot(self) -> list[Entry]:
        return list(self.entries)


def test_a_lost_record_is_rebuilt_from_a_full_image_so_later_swaps_are_seen(
    fake: FakeKanidm, account: ProvisionedSyncAccount, client: Client, tmp_path: pathlib.Path
) -> None:
    """The source answers a delta, but the record is gone: the runner asks for a full image."""
    alice, bob = person(1, name="alice"), person(2, name="bob")
    snap = Snapshot([alice, bob])
    adapter = SnapshotAdapter(snap, tmp_path / "snapshot.json")
    state_path = tmp_path / "applied.json"
    Runner(client, adapter, state_path=state_path).run_once()
    state_path.unlink()  # lost (or a crash before it was written)
    snap.entries = [attrs.evolve(alice, displayname="Alice A."), bob]
    report = Runner(client, adapter, state_path=state_path).run_once()
    assert "applied" == report.outcome
    assert 2 == report.counts["create-or-replace"]  # the full image, not the delta
    assert state_path.exists()
    snap.entries = [
        attrs.evolve(alice, name="bob", displayname="Alice A."),
        attrs.evolve(bob, name="alice"),
    ]
    report = Runner(client, adapter, state_path=state_path).run_once()
    assert report.base_note.startswith("the entries this runner last applied")
    assert {"alice": pid(2), "bob": pid(1)} == names_of(fake, account)
