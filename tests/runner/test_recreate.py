"""Entries deleted and re-created at the source under a new UUID (follow-up on issue 5).

Kanidm sets external ids (phase 2) and checks name/mail/gidnumber (phase 3) before it
deletes (phase 4, and the refresh cleanup runs after phase 2), so one apply that deletes
uid=bob (uuid A) and creates uid=bob again (uuid B) fails with a 409. The runner sends the
deletions first in their own apply.
"""

from __future__ import annotations

import pathlib
import uuid
from typing import Any

import attrs
import pytest

from kanidm_sync import (
    ActiveState,
    AsyncClient,
    AsyncRunner,
    ChangeSet,
    Client,
    DeleteOnly,
    Group,
    Guards,
    Mail,
    Person,
    Progress,
    Rules,
    Runner,
    UniquenessError,
)
from kanidm_sync._chunk import DEFAULT_MAX_REQUEST_BYTES, parse_chunk_cookie
from kanidm_sync._diagnose import diagnose
from kanidm_sync._plan import PLACEHOLDER_EXTERNAL_ID, KnownState, build_plan, project_entry
from kanidm_sync._proto._status import error_from_response
from kanidm_sync.adapters import Delta, FullImage
from kanidm_sync.adapters._snapshot import SnapshotAdapter
from kanidm_sync.testing import FakeKanidm, ProvisionedSyncAccount

from .conftest import DeltaSource, ListSource, person, pid, source_cookie, sync_posts

BOB_A = uuid.UUID("0b0b0b0b-0000-4000-8000-00000000000a")
BOB_B = uuid.UUID("0b0b0b0b-0000-4000-8000-00000000000b")


class Crash(Exception):
    """Stands in for the process dying at a chosen point."""


def bob(entry_id: uuid.UUID, displayname: str = "Bob") -> Person:
    """uid=bob, with the same name, external id and mail whatever its UUID."""
    return Person(
        id=entry_id,
        external_id="uid=bob,ou=people,dc=example,dc=org",
        name="bob",
        displayname=displayname,
        mail=[Mail("bob@example.org")],
    )


def state_of(fake: FakeKanidm, entry_id: uuid.UUID) -> str | None:
    """The fake's state of an entry ("live", "recycled", ...), or None."""
    entry = fake.store.entry(entry_id)
    return None if entry is None else entry.state


def live_bob_uuid(fake: FakeKanidm) -> uuid.UUID:
    """The UUID of the live entry named bob."""
    entry = fake.store.entry("bob")
    assert entry is not None
    return uuid.UUID(str(entry.first("uuid")))


def test_active_delta_delete_and_recreate_succeeds(
    fake: FakeKanidm, account: ProvisionedSyncAccount, client: Client, state_path: pathlib.Path
) -> None:
    """A delta deleting bob (A) and adding bob (B) is sent delete-first and succeeds."""
    source = DeltaSource()
    runner = Runner(client, source, state_path=state_path)
    source.queue.append(FullImage(entries=[person(1), bob(BOB_A)], cookie=b"c0"))
    runner.run_once()
    source.queue.append(Delta(entries=[bob(BOB_B)], deleted=[BOB_A], cookie=b"c1"))
    report = runner.run_once()
    assert "applied" == report.outcome
    assert BOB_B == live_bob_uuid(fake)
    assert "recycled" == state_of(fake, BOB_A)
    assert b"c1" == source_cookie(fake.cookie("hr"))
    first, second = sync_posts(fake)[-2:]
    assert [] == first["entries"]
    assert {"Delete": [str(BOB_A)]} == first["retain"]
    assert [str(BOB_B)] == [e["id"] for e in second["entries"]]
    assert 2 == report.requests_sent


def test_no_reuse_keeps_one_request(
    fake: FakeKanidm, account: ProvisionedSyncAccount, client: Client, state_path: pathlib.Path
) -> None:
    """Deletions and entries that share no unique value still travel in one apply."""
    source = DeltaSource()
    runner = Runner(client, source, state_path=state_path)
    source.queue.append(FullImage(entries=[person(1), bob(BOB_A)], cookie=b"c0"))
    runner.run_once()
    source.queue.append(Delta(entries=[person(2)], deleted=[BOB_A], cookie=b"c1"))
    report = runner.run_once()
    assert 1 == report.requests_sent
    assert "recycled" == state_of(fake, BOB_A)


def snapshot_of(entries: list[Person]) -> Any:
    """A snapshot source listing ``entries``."""

    class Snap:
        def __init__(self) -> None:
            self.entries = list(entries)

        def snapshot(self) -> list[Person]:
            return list(self.entries)

    return Snap()


def test_snapshot_source_recreated_entry_succeeds(
    fake: FakeKanidm,
    account: ProvisionedSyncAccount,
    client: Client,
    tmp_path: pathlib.Path,
) -> None:
    """Through a SnapshotAdapter, bob re-created with a new UUID replaces the old bob."""
    snap = snapshot_of([person(1), bob(BOB_A)])
    adapter = SnapshotAdapter(snap, tmp_path / "snapshot.json")
    runner = Runner(client, adapter, state_path=tmp_path / "applied.json")
    runner.run_once()
    snap.entries = [person(1), bob(BOB_B, displayname="Bob again")]
    report = runner.run_once()
    assert "applied" == report.outcome
    assert BOB_B == live_bob_uuid(fake)
    assert "recycled" == state_of(fake, BOB_A)
    assert "Bob again" == fake.store.entry("bob").first("displayname")  # type: ignore[union-attr]
    assert "nothing-to-do" == runner.run_once().outcome


def test_crash_between_delete_and_entries_converges(
    fake: FakeKanidm, account: ProvisionedSyncAccount, client: Client, state_path: pathlib.Path
) -> None:
    """A crash after the delete-first apply leaves a chunk cookie; the next run finishes."""
    source = DeltaSource()
    source.queue.append(FullImage(entries=[person(1), bob(BOB_A)], cookie=b"c0"))
    Runner(client, source, state_path=state_path).run_once()
    delta = Delta(entries=[bob(BOB_B)], deleted=[BOB_A], cookie=b"c1")
    source.queue.append(delta)

    def crash(p: Progress) -> None:
        if p.phase == "apply" and p.done == 1:
            raise Crash

    with pytest.raises(Crash):
        Runner(client, source, state_path=state_path, progress=crash).run_once()
    assert "recycled" == state_of(fake, BOB_A)
    assert fake.store.entry("bob") is None
    chunk = parse_chunk_cookie(client.get_state())
    assert chunk is not None
    assert 1 == chunk.index
    # The source, asked again from c0 (the cookie the crashed run started from), answers
    # the same delta.
    source.queue.append(delta)
    report = Runner(client, source, state_path=state_path).run_once()
    assert "applied" == report.outcome
    assert 1 == report.requests_sent
    assert BOB_B == live_bob_uuid(fake)
    assert b"c1" == source_cookie(fake.cookie("hr"))


def test_refresh_with_known_base_recreated_entry_succeeds(
    fake: FakeKanidm,
    account: ProvisionedSyncAccount,
    client: Client,
    admin: Client,
    state_path: pathlib.Path,
) -> None:
    """After a force refresh, the record shows bob re-created; the refresh succeeds."""
    source = ListSource([person(1), person(2), bob(BOB_A)])
    runner = Runner(client, source, state_path=state_path)
    runner.run_once()
    admin.force_refresh("hr")
    source.entries = [person(1), person(2, displayname="Two"), bob(BOB_B)]
    report = runner.run_once()
    assert "applied" == report.outcome
    assert BOB_B == live_bob_uuid(fake)
    assert "recycled" == state_of(fake, BOB_A)
    assert "Two" == fake.store.entry("user2").first("displayname")  # type: ignore[union-attr]
    assert "live" == state_of(fake, pid(1))
    first = sync_posts(fake)[-2]
    assert "Refresh" == first["from_state"]
    assert str(BOB_B) not in {e["id"] for e in first["entries"] if e.get("schemas")}
    assert "nothing-to-do" == runner.run_once().outcome


def test_refresh_with_unknown_base_is_refused_with_a_remedy(
    fake: FakeKanidm,
    account: ProvisionedSyncAccount,
    client: Client,
    admin: Client,
    state_path: pathlib.Path,
) -> None:
    """Without a record, a refresh hitting a re-created entry fails cleanly and says why."""
    source = ListSource([person(1), bob(BOB_A)])
    Runner(client, source, state_path=state_path).run_once()
    admin.force_refresh("hr")
    state_path.unlink()
    before = fake.store.fingerprint()
    source.entries = [person(1), bob(BOB_B)]
    runner = Runner(client, source, state_path=state_path)
    with pytest.raises(UniquenessError):
        runner.run_once()
    assert before == fake.store.fingerprint()  # nothing applied
    report = runner.last_report
    assert report is not None
    assert report.diagnosis is not None
    text = report.diagnosis.to_text()
    assert "deleted and re-created at the source" in text
    assert "exclude" in text
    assert BOB_A == live_bob_uuid(fake)
    # The remedy works: exclude bob for one run, then include him again.
    Runner(client, source, state_path=state_path, rules=Rules(exclude_ids={BOB_B})).run_once()
    assert "recycled" == state_of(fake, BOB_A)
    Runner(client, source, state_path=state_path).run_once()
    assert BOB_B == live_bob_uuid(fake)


def test_refresh_of_a_reseeded_directory_succeeds(
    fake: FakeKanidm,
    account: ProvisionedSyncAccount,
    client: Client,
    admin: Client,
    state_path: pathlib.Path,
) -> None:
    """Every entry re-created (no entry can stand alone): a placeholder carries request 1."""
    old = [uuid.uuid5(BOB_A, f"old-{i}") for i in range(3)]
    new = [uuid.uuid5(BOB_B, f"new-{i}") for i in range(3)]
    source = ListSource([Person(**{**_fields(i), "id": old[i]}) for i in range(3)])
    runner = Runner(client, source, state_path=state_path)
    runner.run_once()
    admin.force_refresh("hr")
    source.entries = [Person(**{**_fields(i), "id": new[i]}) for i in range(3)]
    report = Runner(client, source, state_path=state_path, guards=_no_guard()).run_once()
    assert "applied" == report.outcome
    assert all("recycled" == state_of(fake, u) for u in old)
    assert all("live" == state_of(fake, u) for u in new)
    first = sync_posts(fake)[-2]
    assert [str(u) for u in sorted(new, key=str)] == [e["id"] for e in first["entries"]]
    assert any(PLACEHOLDER_EXTERNAL_ID in str(e.get("externalId")) for e in first["entries"])
    ext = {str(fake.store.entry(u).first("sync_external_id")) for u in new}  # type: ignore[union-attr]
    assert {f"uid=u{i},ou=people,dc=example,dc=org" for i in range(3)} == ext


def _fields(i: int) -> dict[str, Any]:
    return {
        "external_id": f"uid=u{i},ou=people,dc=example,dc=org",
        "name": f"u{i}",
        "displayname": f"U {i}",
    }


def _no_guard() -> Guards:
    return Guards(allow_deletes=True, allow_shrink=True)


def test_active_unknown_base_retries_with_the_deletions_first(
    fake: FakeKanidm, account: ProvisionedSyncAccount, client: Client, state_path: pathlib.Path
) -> None:
    """Without a record the reuse is invisible: the 409 is retried delete-first, once."""
    source = ListSource([person(1), bob(BOB_A)])
    Runner(client, source, state_path=state_path).run_once()
    state_path.unlink()
    source.entries = [person(1), bob(BOB_B)]
    posts = len(sync_posts(fake))
    report = Runner(client, source, state_path=state_path).run_once()
    assert "applied" == report.outcome
    assert BOB_B == live_bob_uuid(fake)
    failed, pre, last = sync_posts(fake)[posts:]
    assert failed["entries"]
    assert "Retain" in failed["retain"]
    assert [] == pre["entries"]
    assert pre["retain"] == last["retain"]
    assert 2 == report.requests_sent


def test_crash_after_a_retried_delete_first_resumes(
    fake: FakeKanidm, account: ProvisionedSyncAccount, client: Client, state_path: pathlib.Path
) -> None:
    """A crash after the retry's delete request: the next run recognises the chain."""
    source = ListSource([person(1), bob(BOB_A)])
    Runner(client, source, state_path=state_path).run_once()
    state_path.unlink()
    source.entries = [person(1), bob(BOB_B)]

    def crash(p: Progress) -> None:
        if p.phase == "apply" and p.done == 1:
            raise Crash

    with pytest.raises(Crash):
        Runner(client, source, state_path=state_path, progress=crash).run_once()
    assert parse_chunk_cookie(client.get_state()) is not None
    report = Runner(client, source, state_path=state_path).run_once()
    assert 1 == report.requests_sent
    assert BOB_B == live_bob_uuid(fake)


def test_plan_sends_deletions_first_when_a_name_is_taken_over() -> None:
    """An existing entry renamed to a deleted entry's name makes the plan delete first."""
    known = KnownState(
        cookie=b"c0", entries={e.id: project_entry(e) for e in (person(1), person(2))}
    )
    batch = FullImage(entries=[person(1, name="user2")], cookie=b"c1")
    plan = build_plan(
        state=ActiveState(b"c0"),
        batch=batch,
        known=known,
        max_request_bytes=DEFAULT_MAX_REQUEST_BYTES,
    )
    assert plan.delete_first
    first, second = plan.requests
    assert () == first.entries
    assert DeleteOnly([pid(2)]) == first.retain
    assert parse_chunk_cookie(first.to_state) is not None
    assert [pid(1)] == [e.id for e in second.entries]
    assert ActiveState(b"c1") == second.to_state
    assert set(plan.deleting) == {pid(2)}


def test_diagnosis_names_the_recreated_entry() -> None:
    """A 409 on a value an entry deleted by the same run holds is named as a re-creation."""
    error = error_from_response(
        409, '{"error":"Attribute uniqueness error","conflicting_attributes":["sync_external_id"]}'
    )
    request = ChangeSet(
        from_state=ActiveState(b"c0"),
        to_state=ActiveState(b"c1"),
        entries=[person(1), bob(BOB_B)],
        retain=DeleteOnly([BOB_A]),
    )
    known = KnownState(cookie=b"c0", entries={BOB_A: project_entry(bob(BOB_A))})
    d = diagnose(error, request, known=known, deleting={BOB_A: project_entry(bob(BOB_A))})
    assert [BOB_B] == [s.id for s in d.suspects]
    assert d.narrowed
    assert "deleted and re-created at the source" in d.suspects[0].reason
    assert str(BOB_A) in d.suspects[0].reason
    assert any("delete-first" in n for n in d.notes)


@pytest.mark.anyio
async def test_async_runner_sends_deletions_first(
    fake: FakeKanidm, async_client: AsyncClient, state_path: pathlib.Path
) -> None:
    """The async runner drives the same delete-first flow."""
    source = DeltaSource()
    runner = AsyncRunner(async_client, source, state_path=state_path)
    source.queue.append(FullImage(entries=[person(1), bob(BOB_A)], cookie=b"c0"))
    await runner.run_once()
    source.queue.append(Delta(entries=[bob(BOB_B)], deleted=[BOB_A], cookie=b"c1"))
    report = await runner.run_once()
    assert 2 == report.requests_sent
    assert BOB_B == live_bob_uuid(fake)


def test_crash_after_the_refresh_cleanup_request_resumes(
    fake: FakeKanidm,
    account: ProvisionedSyncAccount,
    client: Client,
    admin: Client,
    state_path: pathlib.Path,
) -> None:
    """Refresh with a record: a crash after request 1 (the cleanup) resumes with request 2."""
    source = ListSource([person(1), person(2), bob(BOB_A)])
    Runner(client, source, state_path=state_path).run_once()
    admin.force_refresh("hr")
    source.entries = [person(1), person(2), bob(BOB_B)]

    def crash(p: Progress) -> None:
        if p.phase == "apply" and p.done == 1:
            raise Crash

    with pytest.raises(Crash):
        Runner(client, source, state_path=state_path, progress=crash).run_once()
    assert "recycled" == state_of(fake, BOB_A)
    assert "live" == state_of(fake, pid(2))  # kept alive through the refresh cleanup
    report = Runner(client, source, state_path=state_path).run_once()
    assert 1 == report.requests_sent
    assert BOB_B == live_bob_uuid(fake)
    assert "Bob" == fake.store.entry("bob").first("displayname")  # type: ignore[union-attr]


# --- regressions found by the stateful convergence test (test_convergence.py) ---------------


def test_reseeded_member_stays_in_its_unchanged_group(
    fake: FakeKanidm,
    account: ProvisionedSyncAccount,
    client: Client,
    tmp_path: pathlib.Path,
) -> None:
    """Bob, re-created under a new UUID, stays a member of the group naming him by external id."""
    staff = Group(
        id=uuid.UUID("5a5a5a5a-0000-4000-8000-000000000001"),
        external_id="cn=staff,ou=groups",
        name="staff",
        member=["uid=bob,ou=people,dc=example,dc=org"],
    )
    snap = snapshot_of([bob(BOB_A)])
    snap.entries.append(staff)
    runner = Runner(
        client,
        SnapshotAdapter(snap, tmp_path / "snapshot.json"),
        state_path=tmp_path / "applied.json",
    )
    runner.run_once()
    assert (str(BOB_A),) == fake.store.entry("staff").get("member")  # type: ignore[union-attr]
    snap.entries = [bob(BOB_B), staff]  # the group's content is unchanged at the source
    runner.run_once()
    assert (str(BOB_B),) == fake.store.entry("staff").get("member")  # type: ignore[union-attr]


def test_reseeded_member_stays_in_its_group_over_a_full_image_and_a_known_base(
    fake: FakeKanidm, account: ProvisionedSyncAccount, client: Client, state_path: pathlib.Path
) -> None:
    """A full image over the record re-sends the unchanged group naming the re-created bob."""
    staff = Group(
        id=uuid.UUID("5a5a5a5a-0000-4000-8000-000000000001"),
        external_id="cn=staff,ou=groups",
        name="staff",
        member=["uid=bob,ou=people,dc=example,dc=org"],
    )
    source = ListSource([staff, bob(BOB_A)])
    runner = Runner(client, source, state_path=state_path)
    runner.run_once()
    source.entries = [staff, bob(BOB_B)]
    report = runner.run_once()
    assert 1 == report.counts["unchanged"]  # the group did not change; it is sent again
    assert (str(BOB_B),) == fake.store.entry("staff").get("member")  # type: ignore[union-attr]


def test_unknown_base_recreated_entry_in_a_later_chunk_is_retried_delete_first(
    fake: FakeKanidm, account: ProvisionedSyncAccount, client: Client, state_path: pathlib.Path
) -> None:
    """Without a record, a 409 in request 2 of a split is retried deletions-first too."""
    padded = "x" * 600
    groups = [
        Group(
            id=uuid.uuid5(BOB_A, str(i)), external_id=f"cn=g{i}", name=f"g{i}", description=padded
        )
        for i in range(3)
    ]
    carol = attrs.evolve(person(1), legalname=padded)
    source = ListSource([*groups, carol, attrs.evolve(bob(BOB_A), legalname=padded)])
    Runner(client, source).run_once()  # no record: the next run's base is unknown
    source.entries = [*groups, carol, attrs.evolve(bob(BOB_B), legalname=padded)]
    report = Runner(client, source, state_path=state_path, max_request_bytes=4096).run_once()
    assert "applied" == report.outcome
    assert BOB_B == live_bob_uuid(fake)
    assert "recycled" == state_of(fake, BOB_A)
    statuses = [r.status for r in fake.history if r.method == "POST"]
    assert [200, 409] == statuses[1:3]  # request 2 of the first split was refused
