"""Values changing hands: the plan releases them in a first request (pure, no HTTP).

kanidmd checks uniqueness against what it holds before each request (attrunique.rs
``enforce_unique`` runs ahead of the write), so a swap, a rotation or a chain of renames
sent in one request fails on every run. Each test plans a change and replays its requests
through :func:`replay`, a model of that check: every entry a request sends must not take a
value another entry still holds from before the request.
"""

from __future__ import annotations

import base64
import uuid

import attrs
import pytest

from kanidm_sync import (
    REFRESH,
    ActiveState,
    ChangeSet,
    DeleteOnly,
    Entry,
    GenericEntry,
    Group,
    Mail,
    PosixAccount,
    PosixGroup,
    RetainIgnore,
    RetainOnly,
)
from kanidm_sync._chunk import DEFAULT_MAX_REQUEST_BYTES, is_keep_alive, parse_chunk_cookie
from kanidm_sync._plan import KnownState, build_plan, project_entry, resume_plan
from kanidm_sync._plan_model import Plan
from kanidm_sync._projection import unique_values
from kanidm_sync._release import (
    RELEASED_EXTERNAL_ID,
    RELEASED_NAME,
    Handover,
    describe_handovers,
    find_handovers,
    temporary_gidnumber,
)
from kanidm_sync._types import JSONObject
from kanidm_sync.adapters import Delta, FullImage

from .conftest import gid, person, pid

ACTIVE = ActiveState(b"c1")
NEW = ActiveState(b"c2")


def known_of(*entries: Entry, cookie: bytes = b"c1") -> KnownState:
    return KnownState(cookie=cookie, entries={e.id: project_entry(e) for e in entries})


def plan_of(
    entries: list[Entry],
    known: KnownState | None,
    *,
    state: ActiveState | type[REFRESH] | object = ACTIVE,
    max_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    retry: bool = False,
) -> Plan:
    return build_plan(
        state=state,  # type: ignore[arg-type]
        batch=FullImage(entries=entries, cookie=b"c2"),
        known=known,
        max_request_bytes=max_bytes,
        retry=retry,
    )


def replay(held: dict[uuid.UUID, JSONObject], plan: Plan) -> dict[uuid.UUID, set[object]]:
    """Apply the plan's requests to ``held`` as kanidmd checks them; the values at the end.

    Raises AssertionError naming the request when an entry takes a value another entry
    still holds from before that request (what kanidmd answers with 409).
    """
    values: dict[uuid.UUID, set[object]] = {e: set(unique_values(p)) for e, p in held.items()}
    for n, request in enumerate(plan.requests, start=1):
        if isinstance(request.from_state, type(REFRESH)):
            listed = {e.id for e in request.entries}
            values = {e: v for e, v in values.items() if e in listed}  # the refresh cleanup
        sent: dict[uuid.UUID, set[object]] = {}
        for entry in request.entries:
            if is_keep_alive(entry):
                continue
            proj = project_entry(entry)
            mine = set(unique_values(proj))
            if "externalId" not in proj:  # no external id sent: Kanidm keeps the old one
                mine |= {v for v in values.get(entry.id, set()) if v[0] == "externalId"}  # type: ignore[index]
            sent[entry.id] = mine
        for eid, mine in sent.items():
            for other, theirs in values.items():
                clash = mine & theirs if other != eid else set()
                assert not clash, f"request {n}: {eid} takes {clash} that {other} holds"
        values.update(sent)
        if isinstance(request.retain, DeleteOnly):
            for gone in request.retain.ids:
                values.pop(gone, None)
        elif isinstance(request.retain, RetainOnly):
            keep = set(request.retain.ids)
            values = {e: v for e, v in values.items() if e in keep}
    return values


def final_values(entries: list[Entry]) -> dict[uuid.UUID, set[object]]:
    return {e.id: set(unique_values(project_entry(e))) for e in entries}


def released_request(plan: Plan) -> ChangeSet:
    first = plan.requests[0]
    assert any(not is_keep_alive(e) for e in first.entries)
    return first


def test_two_entries_exchanging_names_are_released_first() -> None:
    """Alice and bob trade names: request 1 gives both temporary names, request 2 the real ones."""
    alice, bob = person(1, name="alice"), person(2, name="bob")
    known = known_of(alice, bob)
    image: list[Entry] = [attrs.evolve(alice, name="bob"), attrs.evolve(bob, name="alice")]
    plan = plan_of(image, known)
    assert {pid(1): ("name",), pid(2): ("name",)} == dict(plan.released)
    assert not plan.delete_first
    first, second = plan.requests
    assert {pid(1), pid(2)} == {e.id for e in first.entries}
    names = {e.id: project_entry(e)["name"] for e in first.entries}
    assert {pid(1): RELEASED_NAME + pid(1).hex, pid(2): RELEASED_NAME + pid(2).hex} == names
    # Only the name changes: the mail, the external id and the display name stay.
    for e in first.entries:
        proj, old = project_entry(e), known.entries[e.id]
        assert {k: v for k, v in proj.items() if k != "name"} == {
            k: v for k, v in old.items() if k != "name"
        }
    assert RetainIgnore() == first.retain
    assert ACTIVE == first.from_state
    assert parse_chunk_cookie(first.to_state) is not None
    assert first.to_state == second.from_state
    assert NEW == second.to_state
    assert ["bob", "alice"] == [project_entry(e)["name"] for e in second.entries]
    assert final_values(image) == replay(dict(known.entries), plan)
    assert any(n.startswith("alice and bob exchange names: released first") for n in plan.notes)


def test_one_request_would_collide() -> None:
    """The replay model refuses the swap sent in one request (what the plan avoids)."""
    alice, bob = person(1, name="alice"), person(2, name="bob")
    swapped = [attrs.evolve(alice, name="bob"), attrs.evolve(bob, name="alice")]
    plain = plan_of(swapped, None)  # no base: the plan cannot see it
    with pytest.raises(AssertionError, match="request 1"):
        replay(dict(known_of(alice, bob).entries), plain)


def test_three_entries_rotating_names() -> None:
    """A 3-cycle: all three are released, then all three take their new names."""
    a, b, c = person(1, name="ann"), person(2, name="ben"), person(3, name="cid")
    known = known_of(a, b, c)
    image: list[Entry] = [
        attrs.evolve(a, name="ben"),
        attrs.evolve(b, name="cid"),
        attrs.evolve(c, name="ann"),
    ]
    plan = plan_of(image, known)
    assert {pid(1), pid(2), pid(3)} == set(plan.released)
    assert 2 == len(plan.requests)
    assert final_values(image) == replay(dict(known.entries), plan)
    (note,) = [n for n in plan.notes if "released first" in n]
    assert "ben hands its name to ann" in note
    assert "3 entries giving a value up are sent" in note


def test_chain_releases_only_the_giver() -> None:
    """A takes the name B gives up, B takes a new one: only B is released."""
    a, b = person(1, name="ann"), person(2, name="ben")
    known = known_of(a, b)
    image: list[Entry] = [attrs.evolve(a, name="ben"), attrs.evolve(b, name="bea")]
    plan = plan_of(image, known)
    assert {pid(2): ("name",)} == dict(plan.released)
    first = released_request(plan)
    assert [pid(2)] == [e.id for e in first.entries]
    assert final_values(image) == replay(dict(known.entries), plan)
    assert any(n.startswith("ben hands its name to ann: released first") for n in plan.notes)


def test_a_chain_to_a_new_entry() -> None:
    """A group hands its name to a new person: the group is released, the person is new."""
    staff = Group(id=gid(1), external_id="cn=staff", name="frank")
    known = known_of(staff)
    image: list[Entry] = [attrs.evolve(staff, name="staff"), person(1, name="frank")]
    plan = plan_of(image, known)
    assert {gid(1): ("name",)} == dict(plan.released)
    assert final_values(image) == replay(dict(known.entries), plan)
    assert any("frank hands its name to the new person frank" in n for n in plan.notes)


def test_mail_swap_leaves_the_given_up_addresses_out() -> None:
    """Two persons trade mail addresses: the release sends each without the one it gives up."""
    a = attrs.evolve(person(1), mail=[Mail("a@example.org"), Mail("keep@example.org")])
    b = attrs.evolve(person(2), mail=[Mail("B@example.org")])
    known = known_of(a, b)
    image: list[Entry] = [
        attrs.evolve(a, mail=[Mail("b@example.org"), Mail("keep@example.org")]),
        attrs.evolve(b, mail=[Mail("a@example.org")]),
    ]
    plan = plan_of(image, known)
    assert {pid(1): ("mail",), pid(2): ("mail",)} == dict(plan.released)
    mails = {e.id: project_entry(e).get("mail") for e in released_request(plan).entries}
    assert [{"value": "keep@example.org"}] == mails[pid(1)]
    assert None is mails[pid(2)]  # never an empty list: the attribute is left out
    assert final_values(image) == replay(dict(known.entries), plan)
    assert any("user1 and user2 exchange mails" in n for n in plan.notes)


def test_gidnumber_swap_uses_free_temporary_numbers() -> None:
    """Two POSIX groups trade gidnumbers: temporary ones in kanidmd's generated range."""
    g1 = Group(id=gid(1), external_id="cn=g1", name="g1", posix=PosixGroup(gidnumber=20001))
    g2 = Group(id=gid(2), external_id="cn=g2", name="g2", posix=PosixGroup(gidnumber=20002))
    known = known_of(g1, g2)
    image: list[Entry] = [
        attrs.evolve(g1, posix=PosixGroup(gidnumber=20002)),
        attrs.evolve(g2, posix=PosixGroup(gidnumber=20001)),
    ]
    plan = plan_of(image, known)
    assert {gid(1): ("gidnumber",), gid(2): ("gidnumber",)} == dict(plan.released)
    temps = [project_entry(e)["gidnumber"] for e in released_request(plan).entries]
    assert all(isinstance(t, int) and 0x70000000 <= t <= 0x7FFFFFFF for t in temps)
    assert len(set(temps)) == 2
    assert final_values(image) == replay(dict(known.entries), plan)
    assert (
        ChangeSet(from_state=ACTIVE, to_state=NEW, entries=plan.requests[0].entries).validate().ok
    )


def test_temporary_gidnumber_avoids_taken_numbers() -> None:
    """The number is derived from the UUID and skips every number already held."""
    first = temporary_gidnumber(pid(1), set())
    assert first == temporary_gidnumber(pid(1), set())
    second = temporary_gidnumber(pid(1), {first})
    assert second != first
    assert 0x70000000 <= second <= 0x7FFFFFFF


def test_external_id_swap_uses_temporary_external_ids() -> None:
    """Two entries trading external ids: phase 2 checks them against the old ones too."""
    a, b = person(1), person(2)
    known = known_of(a, b)
    image: list[Entry] = [
        attrs.evolve(a, external_id=b.external_id),
        attrs.evolve(b, external_id=a.external_id),
    ]
    plan = plan_of(image, known)
    assert {pid(1): ("externalId",), pid(2): ("externalId",)} == dict(plan.released)
    exts = {e.id: e.external_id for e in released_request(plan).entries}
    assert {
        pid(1): f"{RELEASED_EXTERNAL_ID}{pid(1)}",
        pid(2): f"{RELEASED_EXTERNAL_ID}{pid(2)}",
    } == exts
    assert final_values(image) == replay(dict(known.entries), plan)
    assert any("exchange external ids" in n for n in plan.notes)


def test_external_ids_compare_case_insensitively() -> None:
    """Kanidmd lower-cases sync_external_id: a change of case alone is no handover."""
    a = person(1)
    b = person(2)
    known = known_of(a, b)
    image: list[Entry] = [attrs.evolve(a, external_id=str(a.external_id).upper()), b]
    assert not plan_of(image, known).released


def test_swap_with_a_deletion_reusing_a_value_shares_the_first_request() -> None:
    """Alice and bob swap names while carol is deleted and dave takes her mail."""
    alice, bob = person(1, name="alice"), person(2, name="bob")
    carol = attrs.evolve(person(3, name="carol"), mail=[Mail("carol@example.org")])
    known = known_of(alice, bob, carol)
    dave = attrs.evolve(person(4, name="dave"), mail=[Mail("carol@example.org")])
    image: list[Entry] = [attrs.evolve(alice, name="bob"), attrs.evolve(bob, name="alice"), dave]
    plan = plan_of(image, known)
    assert plan.delete_first
    assert {pid(1), pid(2)} == set(plan.released)
    first, second = plan.requests
    assert DeleteOnly([pid(3)]) == first.retain
    assert {pid(1), pid(2)} == {e.id for e in first.entries}
    assert DeleteOnly([pid(3)]) == second.retain  # kept: deleting a recycled id is ignored
    assert final_values(image) == replay(dict(known.entries), plan)
    notes = " | ".join(plan.notes)
    assert "the deletions go first, with the releases" in notes


def test_swap_in_a_chunked_run_releases_then_splits_freely() -> None:
    """Forty entries, two swapping names, a small limit: release, then any number of chunks."""
    entries: list[Entry] = [person(i) for i in range(40)]
    known = known_of(*entries)
    image: list[Entry] = [person(i, displayname=f"v2 {i}") for i in range(40)]
    image[3] = person(3, name="user30", displayname="v2 3")
    image[30] = person(30, name="user3", displayname="v2 30")
    plan = plan_of(image, known, max_bytes=5000)
    assert {pid(3), pid(30)} == set(plan.released)
    assert len(plan.requests) > 3
    assert {pid(3), pid(30)} == {e.id for e in plan.requests[0].entries}
    assert all(size <= 5000 for size in plan.request_sizes)
    for prev, nxt in zip(plan.requests, plan.requests[1:], strict=False):
        assert prev.to_state == nxt.from_state
    assert final_values(image) == replay(dict(known.entries), plan)
    # A crash after the release request: the same plan, rebuilt, resumes after it.
    cookie = parse_chunk_cookie(plan.requests[0].to_state)
    assert cookie is not None
    rebuilt = build_plan(
        state=plan.requests[0].to_state,
        batch=FullImage(entries=image, cookie=b"c2"),
        known=known,
        max_request_bytes=5000,
        chunk_base=ACTIVE,
    )
    resumed = resume_plan(rebuilt, plan.requests[0].to_state, cookie)
    assert resumed is not None
    assert plan.requests[1:] == resumed.pending_requests


def test_many_releases_fill_several_requests() -> None:
    """Releases that do not fit in one request go in as many as they need, before the entries."""
    names = [f"user{i}" for i in range(12)]
    entries: list[Entry] = [attrs.evolve(person(i), legalname="x" * 900) for i in range(12)]
    known = known_of(*entries)
    image: list[Entry] = [
        attrs.evolve(e, name=names[(i + 1) % 12])  # type: ignore[misc]
        for i, e in enumerate(entries)
    ]
    plan = plan_of(image, known, max_bytes=4096)
    assert 12 == len(plan.released)
    released_ids = set(plan.released)
    first_rest = next(
        n
        for n, r in enumerate(plan.requests)
        if any(project_entry(e).get("name", "").startswith("user") for e in r.entries)  # type: ignore[union-attr]
    )
    assert first_rest >= 3
    assert released_ids == {e.id for r in plan.requests[:first_rest] for e in r.entries}
    assert final_values(image) == replay(dict(known.entries), plan)


def test_refresh_with_a_record_releases_in_the_keep_alive_request() -> None:
    """After a force refresh: the first request lists every id, the givers released whole."""
    alice, bob, carol = person(1, name="alice"), person(2, name="bob"), person(3, name="carol")
    old = known_of(alice, bob, carol, cookie=b"older")
    image: list[Entry] = [attrs.evolve(alice, name="bob"), attrs.evolve(bob, name="alice"), carol]
    plan = plan_of(image, old, state=REFRESH)
    assert not plan.base_known
    assert plan.delete_first  # the refresh cleanup runs in the first request
    assert {pid(1), pid(2)} == set(plan.released)
    first, second = plan.requests
    assert REFRESH == first.from_state
    assert {pid(1), pid(2), pid(3)} == {e.id for e in first.entries}
    (keep,) = [e for e in first.entries if is_keep_alive(e)]
    assert pid(3) == keep.id
    # Over a hint, every unique value of a giver is temporary (the hint may be stale).
    for e in first.entries:
        if not is_keep_alive(e):
            proj = project_entry(e)
            assert str(proj["name"]).startswith(RELEASED_NAME)
            assert str(proj["externalId"]).startswith(RELEASED_EXTERNAL_ID)
            assert "mail" not in proj
    assert RetainIgnore() == second.retain
    assert final_values(image) == replay(dict(old.entries), plan)
    assert any(
        "in the first request (with the keep-alives of the refresh)" in n for n in plan.notes
    )


def test_refresh_release_leaves_out_members_the_cleanup_recycles() -> None:
    """A released group's recorded members that the refresh deletes are not sent (they are gone)."""
    alice, bob = person(1, name="alice"), person(2, name="bob")
    staff = Group(
        id=gid(1), external_id="cn=staff", name="staff", member=[str(pid(2)), str(pid(1))]
    )
    ops = Group(id=gid(2), external_id="cn=ops", name="ops")
    old = known_of(alice, bob, staff, ops, cookie=b"older")
    image: list[Entry] = [
        alice,
        attrs.evolve(staff, name="ops", member=[str(pid(1))]),
        attrs.evolve(ops, name="staff"),
    ]  # bob is gone
    plan = plan_of(image, old, state=REFRESH)
    (released,) = [e for e in plan.requests[0].entries if e.id == gid(1)]
    assert isinstance(released, GenericEntry)
    assert [{"external_id": str(pid(1))}] == released.attributes["member"]
    assert final_values(image) == replay(dict(old.entries), plan)


def test_release_leaves_out_members_deleted_by_earlier_runs() -> None:
    """A member UUID this runner deleted before is recycled: sending it would fail the apply."""
    alice = person(1, name="alice")
    staff = Group(id=gid(1), external_id="cn=staff", name="staff", member=[str(pid(9))])
    ops = Group(id=gid(2), external_id="cn=ops", name="ops")
    known = attrs.evolve(known_of(alice, staff, ops), deleted=(pid(9),))
    image: list[Entry] = [
        alice,
        attrs.evolve(staff, name="ops", member=[]),
        attrs.evolve(ops, name="staff"),
    ]
    plan = plan_of(image, known)
    (released,) = [e for e in plan.requests[0].entries if e.id == gid(1)]
    assert isinstance(released, GenericEntry)
    assert "member" not in released.attributes


def test_unknown_base_cannot_see_a_swap_until_the_retry() -> None:
    """Without a known base nothing is released; the runner's retry uses the record as a hint."""
    alice, bob = person(1, name="alice"), person(2, name="bob")
    stale = known_of(alice, bob, cookie=b"another")
    image: list[Entry] = [attrs.evolve(alice, name="bob"), attrs.evolve(bob, name="alice")]
    assert not plan_of(image, stale).released
    retried = plan_of(image, stale, retry=True)
    assert {pid(1), pid(2)} == set(retried.released)
    assert retried.delete_first  # RetainOnly goes first, with the releases
    assert isinstance(retried.requests[0].retain, RetainOnly)
    assert final_values(image) == replay(dict(stale.entries), retried)


def test_release_sends_the_new_secrets_never_the_digests() -> None:
    """The record holds digests; the release carries the source's password import."""
    secret = "{SSHA512}" + base64.b64encode(bytes(range(72))).decode()
    alice = attrs.evolve(person(1, name="alice"), password_import=secret)
    bob = person(2, name="bob")
    known = known_of(alice, bob)
    image: list[Entry] = [attrs.evolve(alice, name="bob"), attrs.evolve(bob, name="alice")]
    plan = plan_of(image, known)
    (released,) = [e for e in plan.requests[0].entries if e.id == pid(1)]
    assert isinstance(released, GenericEntry)
    assert secret == released.attributes["password_import"]
    assert secret not in repr(released)
    for text in (plan.to_text(), plan.to_json(), plan.to_html(), repr(plan)):
        assert secret not in text
        assert "salted-sha256" not in text or "secret" in text


def test_unix_password_is_released_only_with_the_posix_class() -> None:
    """unix_password_import needs posixaccount: a giver without it yet goes without."""
    secret = "{SSHA512}" + base64.b64encode(bytes(range(72))).decode()
    alice, bob = person(1, name="alice"), person(2, name="bob")
    known = known_of(alice, bob)
    image: list[Entry] = [
        attrs.evolve(alice, name="bob", posix=PosixAccount(unix_password_import=secret)),
        attrs.evolve(bob, name="alice"),
    ]
    plan = plan_of(image, known)
    (released,) = [e for e in plan.requests[0].entries if e.id == pid(1)]
    assert isinstance(released, GenericEntry)
    assert "unix_password_import" not in released.attributes


def test_released_requests_pass_local_validation() -> None:
    """Temporary names are valid Kanidm names, temporary external ids valid strings."""
    alice, bob = person(1, name="alice"), person(2, name="bob")
    known = known_of(alice, bob)
    image: list[Entry] = [
        attrs.evolve(alice, name="bob", external_id=bob.external_id),
        attrs.evolve(bob, name="alice", external_id=alice.external_id),
    ]
    for request in plan_of(image, known).requests:
        report = request.validate()
        assert report.ok, report


def test_plan_renderings_say_what_is_released_and_why() -> None:
    """Text, JSON and HTML show the release note and mark the released entries."""
    alice, bob = person(1, name="alice"), person(2, name="bob")
    known = known_of(alice, bob)
    image: list[Entry] = [attrs.evolve(alice, name="bob"), attrs.evolve(bob, name="alice")]
    plan = plan_of(image, known)
    text = plan.to_text()
    assert "note: alice and bob exchange names: released first." in text
    assert f"~ person bob ({pid(1)}) [released first: name]" in text
    assert {str(pid(1)): ["name"], str(pid(2)): ["name"]} == plan.to_dict()["released"]
    html = plan.to_html()
    assert "alice and bob exchange names: released first" in html
    assert "[released first: name]" in html


def test_find_handovers_ignores_a_value_the_holder_keeps() -> None:
    """Two entries with one value in the batch is a duplicate, not a handover."""
    alice, bob = person(1, name="alice"), person(2, name="bob")
    known = known_of(alice, bob)
    both = [alice, attrs.evolve(bob, name="alice")]
    projected = {e.id: project_entry(e) for e in both}
    assert [] == find_handovers(both, projected, known.entries)


def test_describe_handovers_counts_what_it_does_not_show() -> None:
    """Past the limit, the phrases end with how many more there are."""
    handovers = [
        Handover(key="name", value=f"n{i}", giver=pid(i), taker=pid(i + 100)) for i in range(7)
    ]
    text = describe_handovers(handovers, {}, limit=5)
    assert text.endswith("; and 2 more")
    assert 6 == len(text.split("; "))


def test_delta_swap_is_released_too() -> None:
    """A delta carrying both swapped entries is planned like a full image."""
    alice, bob = person(1, name="alice"), person(2, name="bob")
    known = known_of(alice, bob)
    plan = build_plan(
        state=ACTIVE,
        batch=Delta(
            entries=[attrs.evolve(alice, name="bob"), attrs.evolve(bob, name="alice")], cookie=b"c2"
        ),
        known=known,
        max_request_bytes=DEFAULT_MAX_REQUEST_BYTES,
    )
    assert {pid(1), pid(2)} == set(plan.released)
    assert 2 == len(plan.requests)


def test_a_release_over_a_hint_sends_no_member_uuid_it_cannot_vouch_for() -> None:
    """Retrying over a stale record: members named by UUID may be gone, so they wait."""
    alice = person(1, name="alice")
    staff = Group(
        id=gid(1),
        external_id="cn=staff",
        name="staff",
        member=[str(pid(1)), str(alice.external_id)],
    )
    ops = Group(id=gid(2), external_id="cn=ops", name="ops")
    stale = known_of(alice, staff, ops, cookie=b"another")
    image: list[Entry] = [alice, attrs.evolve(staff, name="ops"), attrs.evolve(ops, name="staff")]
    plan = plan_of(image, stale, retry=True)
    (released,) = [e for e in plan.requests[0].entries if e.id == gid(1)]
    assert isinstance(released, GenericEntry)
    # The external id stays (Kanidm drops it if it resolves to nothing); the UUID waits.
    assert [{"external_id": alice.external_id}] == released.attributes["member"]
    (final,) = [e for e in plan.requests[-1].entries if e.id == gid(1)]
    assert isinstance(final, Group)
    assert (str(pid(1)), alice.external_id) == final.member
