"""Safety guards: refuse a run that would delete too much, or whose source looks broken.

Owns: :class:`Guards` (the thresholds and the explicit allowances), :func:`check_guards`
(pure: a plan plus what is known about the previous run in, a verdict out) and the
:class:`GuardError` family.

Must not: do I/O, log or talk to Kanidm. The runner calls it between planning and
applying, so a refused run sends nothing.

Why two guards. Kanidm deletes on our word (``Delete``/``Retain`` lists, the refresh
cleanup) and a deleted entry lands in the recycle bin, where its UUID cannot be synced
again for weeks (spec §4.3, §5). The deletion guard catches a plan that lists many
deletions; the source guard catches the cases where the plan *cannot* list them (the base
is unknown, so Kanidm decides with ``RetainOnly`` or a refresh cleanup) but the source
obviously went wrong: it came back empty, or much smaller than last time.
"""

from __future__ import annotations

from typing import Final, Literal

import attrs

from ._baseline import Baseline
from ._exceptions import KanidmSyncError
from ._plan_model import Action, Plan
from ._proto._state import ActiveState, RetainOnly, SyncState

__all__ = ["DeletionGuardError", "GuardError", "Guards", "SourceGuardError", "check_guards"]


def _fraction(inst: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be between 0 and 1, not {value!r}")


def _non_negative(inst: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must not be negative, not {value!r}")


@attrs.frozen(kw_only=True)
class Guards:
    """Thresholds that make the runner refuse a run before sending anything.

    A run is refused when it would delete **more than** ``max_delete_count`` entries
    **and more than** ``max_delete_fraction`` of the entries the account held, unless
    ``allow_deletes`` is set: the defaults refuse deleting more than 50 entries that are
    also more than 10%. A full image with no entry (or a delta whose "present" list is
    empty) is refused unless ``allow_empty_source``. A full image smaller than
    ``1 - max_shrink_fraction`` of the last full image this runner applied is refused
    unless ``allow_shrink``.

    Attributes:
        max_delete_count: deletions allowed regardless of the fraction.
        max_delete_fraction: fraction of the synced entries allowed regardless of count.
        allow_deletes: accept any number of deletions for this run.
        allow_empty_source: accept a source that holds no entry at all.
        max_shrink_fraction: how much smaller than last time a full image may be.
        allow_shrink: accept a source that shrank by more than that.
    """

    max_delete_count: int = attrs.field(default=50, validator=_non_negative)
    max_delete_fraction: float = attrs.field(default=0.10, validator=_fraction)
    allow_deletes: bool = False
    allow_empty_source: bool = False
    max_shrink_fraction: float = attrs.field(default=0.5, validator=_fraction)
    allow_shrink: bool = False

    @classmethod
    def disabled(cls) -> Guards:
        """Guards that allow everything (for tests and deliberate mass changes)."""
        return cls(allow_deletes=True, allow_empty_source=True, allow_shrink=True)


class GuardError(KanidmSyncError):
    """Raised when a guard refuses a run; nothing was sent to Kanidm.

    Attributes:
        plan: the refused plan (inspect it, then allow the run explicitly if it is right).
    """

    plan: Plan

    def __init__(self, message: str, *, plan: Plan) -> None:
        super().__init__(message)
        self.plan = plan


class DeletionGuardError(GuardError):
    """Raised when a run would delete more entries than :class:`Guards` allows.

    Attributes:
        deletions: how many entries the run would delete.
        synced: how many entries the account held before.
    """

    deletions: int
    synced: int

    def __init__(self, message: str, *, plan: Plan, deletions: int, synced: int) -> None:
        super().__init__(message, plan=plan)
        self.deletions = deletions
        self.synced = synced


class SourceGuardError(GuardError):
    """Raised when the source came back empty, or suddenly much smaller than last time.

    Attributes:
        count: how many entries the source returned (or would be left).
        previous: how many entries the account held, when known.
        reason: ``"empty"`` (nothing would be left: ``allow_empty_source`` lets it
            through), ``"unknown"`` (a full image would delete from an Active account
            that nothing tells the size of: ``allow_deletes`` for the run) or
            ``"shrink"`` (more than ``max_shrink_fraction`` gone:
            ``allow_shrink``).
    """

    count: int
    previous: int | None
    reason: Literal["empty", "shrink", "unknown"]

    def __init__(
        self,
        message: str,
        *,
        plan: Plan,
        count: int,
        previous: int | None,
        reason: Literal["empty", "shrink", "unknown"] = "empty",
    ) -> None:
        super().__init__(message, plan=plan)
        self.count = count
        self.previous = previous
        self.reason: Literal["empty", "shrink", "unknown"] = reason


_WHERE: Final[dict[str, str]] = {
    "record": "",
    "cookie": "in Kanidm's last applied state ",
    "old-record": "last time ",
    "source": "in the source's previous image ",
}


def _left_after(plan: Plan, previous: int | None) -> int | None:
    """How many entries the account owns after ``plan``, when the plan can tell."""
    if not plan.deletions_known or not previous:
        return None
    if plan.source == "full" and plan.source_count is not None:
        return plan.source_count
    added = sum(1 for c in plan.changes if c.action in (Action.CREATE, Action.REPLACE))
    kept = sum(1 for c in plan.changes if c.action in (Action.UPDATE, Action.UNCHANGED))
    if plan.synced_before is None:
        # No diff base: only the deletions and the entries sent are known. Deleting at
        # least as many as the record held while sending nothing leaves nothing.
        return max(previous - len(plan.deletes), 0) + added + kept
    return previous - len(plan.deletes) + added


def _baseline_of(
    plan: Plan, baseline: Baseline | None, previous_count: int | None
) -> Baseline | None:
    if plan.synced_before is not None:
        return Baseline(count=plan.synced_before, source="record")
    if baseline is not None:
        return baseline
    if previous_count is not None:
        return Baseline(count=previous_count, source="old-record")
    return None


def check_guards(
    plan: Plan,
    guards: Guards,
    *,
    previous_count: int | None = None,
    baseline: Baseline | None = None,
    started_from: SyncState | None = None,
) -> None:
    """Refuse ``plan`` if it trips a guard.

    Args:
        plan: the plan about to be applied.
        guards: the thresholds and allowances.
        previous_count: how many entries the last full image applied by this runner had
            (from the local record, whatever its cookie), for the shrink guard; used when
            ``baseline`` is ``None``.
        baseline: how many entries the account holds, as far as the run knows (the
            record, the count Kanidm's cookie carries, the source's previous image).
        started_from: the state the run started from (the base of a chunk cookie);
            defaults to ``plan.from_state``.

    Raises:
        SourceGuardError: the source is empty or shrank too much, or a full image would
            delete an unknown number of entries from an Active account.
        DeletionGuardError: too many deletions.
    """
    known = _baseline_of(plan, baseline, previous_count)
    previous = known.count if known is not None else None
    start = started_from if started_from is not None else plan.from_state
    if (
        known is None
        and plan.source == "full"
        and not plan.deletions_known
        and isinstance(start, ActiveState)
        and plan.source_count
        and not guards.allow_deletes
    ):
        # Kanidm is Active, so the account holds entries, and nothing tells how many: no
        # local record, and a cookie without the count kanidm-sync carries in it (an older
        # version, another tool). The full image deletes every entry it does not list
        # (RetainOnly), an unknown number: an operator decides.
        raise SourceGuardError(
            f"the source returned {plan.source_count} entries, and nothing tells how many "
            "entries this sync account holds (no local record of this account, and "
            "Kanidm's cookie was not written by kanidm-sync): applying would delete every "
            "entry it holds that the source does not list, an unknown number. Check the "
            "source, then allow this run explicitly (allow_deletes=True); every run after "
            "it knows the count",
            plan=plan,
            count=plan.source_count,
            previous=None,
            reason="unknown",
        )
    # A delta whose present list is empty keeps nothing: the same as an empty image.
    empty_delta = (
        plan.source == "delta"
        and isinstance(plan.retain, RetainOnly)
        and not (plan.retain.ids or any(c.action is not Action.DELETE for c in plan.changes))
    )
    empty = (plan.source == "full" and plan.source_count == 0) or empty_delta
    # A run whose listed deletions take every entry the account held, and that adds
    # nothing: a source that came back empty, seen through a delta (a snapshot adapter
    # turns an emptied file into "delete all 40"). Deleting 100% is never routine, so
    # this holds whatever the count, and whatever the deletion thresholds say.
    left = _left_after(plan, previous)
    if left is not None and left <= 0 and plan.deletes:
        empty = True
    # "21" or "at least 21"; "the 21 entries" when exact, "at least 21 entries" if not.
    known_count = known.describe() if known is not None else ""
    held = ("the " if known is not None and known.exact else "") + known_count
    if empty and not guards.allow_empty_source:
        raise SourceGuardError(
            "the source returned no entries: applying would delete every entry this "
            "sync account owns"
            + (f" ({known_count})" if previous else "")
            + ". If that is intended, allow it explicitly "
            "(Guards(allow_empty_source=True, allow_deletes=True))",
            plan=plan,
            count=0,
            previous=previous,
            reason="empty",
        )
    if (
        plan.source == "full"
        and not plan.deletions_known
        and plan.source_count is not None
        and previous
        and not guards.allow_shrink
        and plan.source_count < (1.0 - guards.max_shrink_fraction) * previous
    ):
        raise SourceGuardError(
            f"the source returned {plan.source_count} entries, down from {known_count} "
            f"{_WHERE[known.source] if known is not None else ''}(more than "
            f"{guards.max_shrink_fraction:.0%} fewer): refusing in case the "
            "source is broken. If the shrink is real, allow it explicitly "
            "(Guards(allow_shrink=True))",
            plan=plan,
            count=plan.source_count,
            previous=previous,
            reason="shrink",
        )
    deletions = len(plan.deletes)
    synced = previous or 0
    if (
        not guards.allow_deletes
        and deletions > guards.max_delete_count
        and deletions > guards.max_delete_fraction * synced
    ):
        of = (
            f"{held} synced entries" if known is not None else "an unknown number of synced entries"
        )
        raise DeletionGuardError(
            f"the run would delete {deletions} of {of} (limits: more "
            f"than {guards.max_delete_count} and more than {guards.max_delete_fraction:.0%} "
            "needs an explicit allow). Check plan.deletes, then rerun with "
            "allow_deletes=True",
            plan=plan,
            deletions=deletions,
            synced=synced,
        )
    if (
        plan.deletions_known
        and previous
        and not empty  # an empty source allowed explicitly is not refused again here
        and not (guards.allow_shrink or guards.allow_deletes)
        and len(plan.deletes) > guards.max_shrink_fraction * previous
        and len(plan.deletes) > 1
    ):
        # The twin of the full-image shrink guard above for listed deletions (a delta,
        # or a full image over a known base): more than half of the account deleted
        # in one run looks like a broken source, below the deletion guard's counts
        # too. ``allow_deletes`` also lets it through: it acknowledges the deletions.
        raise SourceGuardError(
            f"the run would delete {len(plan.deletes)} of {held} entries this sync "
            f"account held (more than {guards.max_shrink_fraction:.0%}): refusing in case "
            "the source is broken. If the shrink is real, allow it explicitly "
            "(allow_deletes=True, or Guards(allow_shrink=True))",
            plan=plan,
            count=previous - len(plan.deletes),
            previous=previous,
            reason="shrink",
        )
