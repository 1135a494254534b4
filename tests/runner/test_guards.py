"""Guards: deletion thresholds, empty and shrunk sources (pure)."""

from __future__ import annotations

import pytest

from kanidm_sync import ActiveState, DeletionGuardError, Guards, SourceGuardError
from kanidm_sync._guards import check_guards
from kanidm_sync._plan import KnownState, build_plan, project_entry
from kanidm_sync.adapters import Delta, FullImage

from .conftest import person, pid


def plan_deleting(synced: int, keep: int):  # type: ignore[no-untyped-def]
    known = KnownState(
        cookie=b"c1", entries={pid(i): project_entry(person(i)) for i in range(synced)}
    )
    batch = FullImage(entries=[person(i) for i in range(keep)], cookie=b"c2")
    return build_plan(state=ActiveState(b"c1"), batch=batch, known=known, max_request_bytes=1 << 24)


@pytest.mark.parametrize(
    ("synced", "keep", "refused"),
    [
        (1000, 949, False),  # 51 deletions but only 5.1%
        (100, 49, True),  # 51 deletions and 51%
        (1000, 899, True),  # 101 deletions and 10.1%
        (1000, 900, False),  # 100 deletions: exactly 10%, not more
        (60, 9, True),  # 51 deletions, 85%
        (60, 10, False),  # 50 deletions: not more than 50
    ],
)
def test_deletion_threshold_needs_both_count_and_fraction(
    synced: int, keep: int, refused: bool
) -> None:
    """Only a run deleting more than 50 entries AND more than 10% is refused."""
    plan = plan_deleting(synced, keep)
    deletions = synced - keep
    if refused:
        with pytest.raises(DeletionGuardError) as info:
            check_guards(plan, Guards(allow_shrink=True))
        assert deletions == info.value.deletions
        assert plan is info.value.plan
    else:
        check_guards(plan, Guards(allow_shrink=True))


def test_allow_deletes_lets_a_mass_delete_through() -> None:
    """An explicit allowance disables the deletion guard."""
    check_guards(plan_deleting(60, 0), Guards(allow_deletes=True, allow_empty_source=True))


def test_empty_source_is_refused() -> None:
    """A full image with no entry is refused even when the base is unknown."""
    plan = build_plan(
        state=ActiveState(b"c1"),
        batch=FullImage(entries=[], cookie=b"c2"),
        known=None,
        max_request_bytes=1 << 20,
    )
    with pytest.raises(SourceGuardError, match="no entries"):
        check_guards(plan, Guards())
    check_guards(plan, Guards(allow_empty_source=True))


def test_empty_present_list_is_refused() -> None:
    """A delta whose present list is empty would delete everything: refused."""
    plan = build_plan(
        state=ActiveState(b"c1"),
        batch=Delta(present=[], cookie=b"c2"),
        known=None,
        max_request_bytes=1 << 20,
    )
    with pytest.raises(SourceGuardError):
        check_guards(plan, Guards())


def test_shrunk_source_is_refused_when_deletions_are_unknown() -> None:
    """Without a base, a source less than half its last size is refused."""
    plan = build_plan(
        state=ActiveState(b"other"),
        batch=FullImage(entries=[person(i) for i in range(40)], cookie=b"c2"),
        known=None,
        max_request_bytes=1 << 22,
    )
    with pytest.raises(SourceGuardError, match="down from 100") as info:
        check_guards(plan, Guards(), previous_count=100)
    assert (40, 100) == (info.value.count, info.value.previous)
    check_guards(plan, Guards(), previous_count=70)
    check_guards(plan, Guards(allow_shrink=True), previous_count=100)


def test_guard_options_are_validated() -> None:
    """Fractions outside [0, 1] and negative counts are refused."""
    with pytest.raises(ValueError, match="between 0 and 1"):
        Guards(max_delete_fraction=1.5)
    with pytest.raises(ValueError, match="negative"):
        Guards(max_delete_count=-1)
