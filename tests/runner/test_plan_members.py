"""A changed member list reads as members added and removed (issue 12, part of item 8)."""

from __future__ import annotations

import json

import attrs

from kanidm_sync import ActiveState, Mail
from kanidm_sync._chunk import DEFAULT_MAX_REQUEST_BYTES
from kanidm_sync._plan import KnownState, build_plan, project_entry
from kanidm_sync.adapters import FullImage

from .conftest import gid, group, person

PEOPLE = "ou=people,dc=example,dc=org"


def plan_between(old: list, new: list):  # type: ignore[no-untyped-def,type-arg]
    known = KnownState(cookie=b"c1", entries={e.id: project_entry(e) for e in old})
    return build_plan(
        state=ActiveState(b"c1"),
        batch=FullImage(entries=new, cookie=b"c2"),
        known=known,
        max_request_bytes=DEFAULT_MAX_REQUEST_BYTES,
    )


def test_a_member_change_lists_each_member_added_and_removed() -> None:
    """One member out, one in: two lines, not the whole list truncated."""
    persons = [person(i) for i in range(1, 5)]
    plan = plan_between([*persons, group(1, [1, 2, 3])], [*persons, group(1, [1, 2, 4])])
    text = plan.to_text()
    assert f"+ member uid=user4,{PEOPLE}" in text
    assert f"- member uid=user3,{PEOPLE}" in text
    assert f"uid=user1,{PEOPLE}" not in text  # unchanged members are not repeated
    assert "~member" not in text
    html = plan.to_html()
    assert f"+ member uid=user4,{PEOPLE}" in html
    (change,) = [c for c in plan.changes if c.id == gid(1)]
    assert {"member": ({"external_id": f"uid=user4,{PEOPLE}"},)} == change.values_added
    data = json.loads(change.to_json())
    assert [{"external_id": f"uid=user3,{PEOPLE}"}] == data["values_removed"]["member"]
    # The patch itself is unchanged: one replace of the whole attribute.
    assert ["replace"] == [op["op"] for op in change.patch]


def test_a_huge_group_shows_a_few_members_and_counts_the_rest() -> None:
    """2,000 members with 30 joining and 25 leaving: 10 lines each way, then the counts."""
    old = group(1, range(2000))
    new = group(1, [*range(25, 2000), *range(5000, 5030)])
    plan = plan_between([old], [new])
    text = plan.to_text()
    assert 10 == text.count("\n      + member ")
    assert 10 == text.count("\n      - member ")
    assert "... and 20 more added, 15 more removed (2,005 member values now)" in text
    assert len(text) < 3000


def test_mail_addresses_read_one_by_one_with_their_flags() -> None:
    """A second address added: one line naming it; a new primary reads as such."""
    before = person(1)
    after = attrs.evolve(before, mail=[Mail("new@example.org", primary=True), *before.mail])
    text = plan_between([before], [after]).to_text()
    assert "+ mail new@example.org (primary=true)" in text
    assert "- mail" not in text


def test_scalar_changes_still_read_as_one_operation() -> None:
    """A display name change is one '~displayname = ...' line, as before."""
    plan = plan_between([person(1)], [person(1, displayname="Renamed")])
    assert '~displayname = "Renamed"' in plan.to_text()
