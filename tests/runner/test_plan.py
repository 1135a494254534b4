"""Plan computation: actions, diffs, retention, renderings (pure, no HTTP)."""

from __future__ import annotations

import json
import uuid

import attrs
import pytest

from kanidm_sync import (
    REFRESH,
    Action,
    ActiveState,
    DeleteOnly,
    Person,
    RetainIgnore,
    RetainOnly,
)
from kanidm_sync._chunk import DEFAULT_MAX_REQUEST_BYTES
from kanidm_sync._jsonpatch import apply_patch
from kanidm_sync._plan import KnownState, apply_to_known, build_plan, project_entry, resume_plan
from kanidm_sync.adapters import Delta, FullImage

from .conftest import person, pid

ACTIVE = ActiveState(b"c1")


def known_of(*entries: Person, cookie: bytes = b"c1") -> KnownState:
    return KnownState(cookie=cookie, entries={e.id: project_entry(e) for e in entries})


def plan_of(batch: FullImage | Delta, known: KnownState | None, state=ACTIVE):  # type: ignore[no-untyped-def]
    return build_plan(
        state=state, batch=batch, known=known, max_request_bytes=DEFAULT_MAX_REQUEST_BYTES
    )


def actions(plan) -> dict[uuid.UUID, Action]:  # type: ignore[no-untyped-def]
    return {c.id: c.action for c in plan.changes}


def test_full_image_against_known_base_sends_only_the_churn() -> None:
    """Unchanged entries are not sent; changed ones are updates; missing ones are deleted."""
    known = known_of(person(1), person(2), person(3))
    batch = FullImage(entries=[person(1), person(2, displayname="Two"), person(4)], cookie=b"c2")
    plan = plan_of(batch, known)
    assert {
        pid(1): Action.UNCHANGED,
        pid(2): Action.UPDATE,
        pid(3): Action.DELETE,
        pid(4): Action.CREATE,
    } == actions(plan)
    (request,) = plan.requests
    assert {pid(2), pid(4)} == {e.id for e in request.entries}
    assert DeleteOnly([pid(3)]) == request.retain
    assert ACTIVE == request.from_state
    assert ActiveState(b"c2") == request.to_state
    assert plan.base_known
    assert plan.deletions_known


def test_update_patch_turns_the_old_projection_into_the_new_one() -> None:
    """The attribute-level JSON Patch of an update applies to the base to give the new entry."""
    old, new = person(1), attrs.evolve(person(1), displayname="New", mail=())
    plan = plan_of(FullImage(entries=[new], cookie=b"c2"), known_of(old))
    (change,) = plan.changes
    assert project_entry(new) == apply_patch(project_entry(old), list(change.patch))
    assert {"/displayname", "/mail"} == {op["path"] for op in change.patch}


def test_unknown_base_is_create_or_replace_with_retain_only() -> None:
    """With a record for another cookie, every entry is sent and Kanidm decides deletions."""
    batch = FullImage(entries=[person(1), person(2)], cookie=b"c2")
    plan = plan_of(batch, known_of(person(1), cookie=b"other"))
    assert {pid(1): Action.REPLACE, pid(2): Action.REPLACE} == actions(plan)
    assert RetainOnly(sorted([pid(1), pid(2)], key=str)) == plan.requests[0].retain
    assert not plan.deletions_known
    assert "another cookie" in plan.base_note


def test_refresh_relies_on_the_refresh_cleanup() -> None:
    """In Refresh the plan sends every entry with retain Ignore (Kanidm's cleanup deletes)."""
    plan = plan_of(FullImage(entries=[person(1)], cookie=b"c2"), None, state=REFRESH)
    assert RetainIgnore() == plan.requests[0].retain
    assert REFRESH == plan.requests[0].from_state
    assert "Refresh" in plan.to_text() or "Kanidm is in Refresh" in plan.base_note


def test_delta_with_present_list_deletes_what_is_not_present() -> None:
    """A present list turns into exact deletions against a known base."""
    known = known_of(person(1), person(2), person(3))
    batch = Delta(entries=[person(4)], present=[pid(1)], cookie=b"c2")
    plan = plan_of(batch, known)
    assert DeleteOnly(sorted([pid(2), pid(3)], key=str)) == plan.requests[0].retain


def test_delta_present_list_with_unknown_base_becomes_retain_only() -> None:
    """Without a base the present list (plus sent ids) is sent as RetainOnly."""
    batch = Delta(entries=[person(4)], present=[pid(1)], cookie=b"c2")
    plan = plan_of(batch, None)
    assert RetainOnly(sorted([pid(1), pid(4)], key=str)) == plan.requests[0].retain


def test_delta_deletes_only_ids_the_account_holds() -> None:
    """A deletion of an id not in the known base is dropped (deleting a foreign entry fails)."""
    known = known_of(person(1))
    batch = Delta(deleted=[pid(1), pid(9)], cookie=b"c2")
    plan = plan_of(batch, known)
    assert DeleteOnly([pid(1)]) == plan.requests[0].retain


def test_entry_both_sent_and_deleted_is_deleted_not_sent() -> None:
    """Kanidm deletes an entry listed in both; the plan does not send it."""
    known = known_of(person(1))
    plan = plan_of(Delta(entries=[person(1)], deleted=[pid(1)], cookie=b"c2"), known)
    assert () == plan.requests[0].entries
    assert [Action.DELETE] == [c.action for c in plan.changes]


def test_delta_for_refresh_is_refused() -> None:
    """A delta cannot be applied while Kanidm is in Refresh."""
    with pytest.raises(ValueError, match="full image"):
        plan_of(Delta(cookie=b"x"), None, state=REFRESH)


def test_duplicate_ids_keep_the_last_occurrence() -> None:
    """Like Kanidm, the last entry with a repeated id wins, and the plan says so."""
    batch = FullImage(entries=[person(1), person(1, displayname="Last")], cookie=b"c2")
    plan = plan_of(batch, None)
    assert ["Last"] == [e.displayname for e in plan.requests[0].entries]
    assert any("repeated" in n for n in plan.notes)


def test_secrets_never_appear_in_any_rendering() -> None:
    """Password imports are digested in the patch and masked in text, JSON and HTML."""
    secret = "{SSHA512}c2VjcmV0LXZhbHVlLXRoYXQtbXVzdC1ub3QtbGVhaw=="
    old = person(1)
    new = attrs.evolve(old, password_import=secret)
    plan = plan_of(FullImage(entries=[new], cookie=b"c2"), known_of(old))
    for text in (plan.to_text(), plan.to_json(), plan.to_html(), repr(plan)):
        assert secret not in text
    assert "secret changed" in plan.to_text()
    assert '"***"' in plan.to_json()


def test_renderings_list_changes() -> None:
    """Text, JSON and HTML name the changed entries and the counts."""
    plan = plan_of(
        FullImage(entries=[person(2, displayname="<b>x</b>")], cookie=b"c2"), known_of(person(2))
    )
    assert "~ person user2" in plan.to_text()
    data = json.loads(plan.to_json())
    assert 1 == data["counts"]["update"]
    assert "&lt;b&gt;x&lt;/b&gt;" in plan.to_html()


def test_noop_when_nothing_changed_and_cookie_is_the_same() -> None:
    """A plan with no change to an unchanged cookie is a no-op."""
    plan = plan_of(FullImage(entries=[person(1)], cookie=b"c1"), known_of(person(1)))
    assert plan.is_noop
    assert not plan_of(FullImage(entries=[person(1)], cookie=b"c2"), known_of(person(1))).is_noop


def test_apply_to_known_follows_the_plan() -> None:
    """After a committed delta the record holds base + changes - deletions at the new cookie."""
    known = known_of(person(1), person(2))
    plan = plan_of(Delta(entries=[person(3)], deleted=[pid(2)], cookie=b"c2"), known)
    after = apply_to_known(known, plan)
    assert after is not None
    assert b"c2" == after.cookie
    assert {pid(1), pid(3)} == set(after.entries)
    assert (pid(2),) == after.deleted


def test_apply_to_known_is_unknown_after_a_delta_over_unknown_base() -> None:
    """A delta applied without a base leaves no trustworthy record."""
    plan = plan_of(Delta(entries=[person(3)], cookie=b"c2"), None)
    assert apply_to_known(None, plan) is None


def test_resume_plan_refuses_another_split() -> None:
    """A chunk cookie from another split does not resume a plan."""
    from kanidm_sync._chunk import ChunkCookie

    plan = plan_of(FullImage(entries=[person(1)], cookie=b"c2"), None)
    cookie = ChunkCookie(digest="0" * 32, index=1, total=2, base=ACTIVE)
    assert resume_plan(plan, ActiveState(cookie.encode()), cookie) is None


def test_projection_survives_the_json_record_round_trip() -> None:
    """Projections equal their JSON round trip (tuples from raw values become lists)."""
    from kanidm_sync import Entry, GenericEntry, SchemaUrn

    entries: list[Entry] = [
        person(1),
        attrs.evolve(person(2), extra={"legalname": "L", "x_list": ("a", "b")}),
        GenericEntry(
            id=pid(3),
            external_id="e3",
            schemas=(SchemaUrn.GROUP.value,),
            attributes={"name": "g3", "member": ({"external_id": "e1"},)},
        ),
    ]
    for entry in entries:
        projection = project_entry(entry)
        assert json.loads(json.dumps(projection)) == projection
