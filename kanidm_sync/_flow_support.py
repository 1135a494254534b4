"""Small pure steps of a run the flows share: the baseline, warnings, progress text.

Owns: choosing the baseline a run's guards use and carrying it in the cookie sent to
Kanidm (``_baseline`` has the why), trimming validation warnings the local record
answers, and the one-line descriptions :class:`~kanidm_sync.Progress` shows.

Must not: do I/O, log, or talk to Kanidm. Pure (a record read on demand reads the rows
and index entries it is asked about: :func:`prefetch_batch` asks for the batch's in bulk).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Container

import attrs

from ._baseline import Baseline, count_after_delta, wrap
from ._plan_model import Plan
from ._projection import KnownState, external_ids_held, prefetch
from ._proto._report import ValidationReport
from ._proto._state import ActiveState, SyncState
from .adapters._protocols import Delta, FullImage

__all__: list[str] = []

# More unresolved members than this in one group are summed up in one warning.
_MEMBER_WARNINGS_PER_GROUP = 3
_MEMBER_FIELD = re.compile(r"member\[(\d+)\]\Z")


def _baseline(
    exact: KnownState | None,
    known: KnownState | None,
    carried: Baseline | None,
    batch: FullImage | Delta,
) -> Baseline | None:
    """The best count of what the account holds before this run.

    Args:
        exact: the local record, when it is for Kanidm's current cookie.
        known: the local record, whatever its cookie.
        carried: the count Kanidm's cookie carries.
        batch: the source's answer (a delta may say how many entries it holds).

    Returns:
        The baseline, or ``None`` when nothing tells.
    """
    if exact is not None:
        return Baseline(count=len(exact.entries), source="record")
    if carried is not None:
        return carried
    if known is not None:
        # What this runner applied last, for another cookie: a hint, not a bound.
        return Baseline(count=len(known.entries), source="old-record")
    if isinstance(batch, Delta) and batch.total is not None:
        # The source's own previous image (a snapshot store): what it held before this
        # delta, counting every entry sent as new (a lower bound).
        before = batch.total + len(set(batch.deleted)) - len(batch.entries)
        return Baseline(count=max(before, 0), exact=False, source="source")
    return None


def _carry(
    batch: FullImage | Delta, before: Baseline | None, exact: KnownState | None
) -> FullImage | Delta:
    """``batch`` with its cookie wrapped to carry the count Kanidm will hold after it."""
    if isinstance(batch, FullImage):
        # Kanidm keeps exactly the image (RetainOnly, or the refresh cleanup).
        return attrs.evolve(batch, cookie=wrap(batch.cookie, len(batch.entries)))
    entry_ids = [e.id for e in batch.entries]
    present = None
    if batch.present is not None:
        present = len(set(batch.present).union(entry_ids))
    after = count_after_delta(
        before,
        # The record's own mapping: only the delta's ids are looked up in it.
        known_ids=None if exact is None else exact.entries.keys(),
        entry_ids=entry_ids,
        deleted_ids=batch.deleted,
        present=present,
        total=batch.total,
    )
    if after is None:
        return batch
    count, is_exact = after
    return attrs.evolve(batch, cookie=wrap(batch.cookie, count, exact=is_exact))


def prefetch_batch(known: KnownState, batch: FullImage | Delta) -> None:
    """Read the record's rows of the ids ``batch`` sends or deletes, in one go.

    A record read on demand then answers the run's lookups from memory (and a damaged
    row shows here, before anything is planned); for a full image it reads every row.
    """
    ids = [e.id for e in batch.entries]
    if isinstance(batch, Delta):
        ids.extend(batch.deleted)
    prefetch(known.entries, ids)


def quiet_warnings(
    report: ValidationReport, batch: FullImage | Delta, exact: KnownState | None
) -> list[str]:
    """The report's warnings, less the unresolved members the local record resolves.

    A delta sends a changed group with every member, most of them unchanged entries that
    are not in the batch: the record knows them. The rest are summed up per group beyond
    a few, so one hire into a 2,000-member group is one line, not 2,000.
    """
    known_ids: Container[str] | None = None
    by_entry: dict[int, list[str]] = defaultdict(list)
    kept: list[str] = []
    for problem in report.warnings:
        if problem.code != "member.unresolved" or problem.index is None:
            kept.append(str(problem))
            continue
        match = _MEMBER_FIELD.match(problem.field or "")
        members = getattr(batch.entries[problem.index], "member", ())
        if match is None or int(match.group(1)) >= len(members):
            kept.append(str(problem))
            continue
        ref = members[int(match.group(1))]
        if exact is not None:
            if known_ids is None:  # asked of the record's index, per member
                known_ids = external_ids_held(exact.entries)
            if ref.lower() in known_ids:
                continue
        if len(by_entry[problem.index]) < _MEMBER_WARNINGS_PER_GROUP:
            kept.append(str(problem))
        by_entry[problem.index].append(ref)
    for index, refs in by_entry.items():
        if len(refs) > _MEMBER_WARNINGS_PER_GROUP:
            entry = batch.entries[index]
            more = len(refs) - _MEMBER_WARNINGS_PER_GROUP
            kept.append(
                f"warning: entries[{index}] {entry.id} {entry.external_id!r} field member: "
                f"{more} more members with an external id no entry of this ChangeSet has; "
                "kanidmd drops a member it cannot resolve [member.unresolved]"
            )
    return kept


def describe_state(state: SyncState) -> str:
    """``"Kanidm is in Refresh"`` or ``"Kanidm is Active (cookie of N bytes)"``."""
    if isinstance(state, ActiveState):
        return f"Kanidm is Active (cookie of {len(state.cookie)} bytes)"
    return "Kanidm is in Refresh"


def describe_batch(batch: FullImage | Delta) -> str:
    """What the source answered, in words."""
    if isinstance(batch, FullImage):
        return f"the source listed {len(batch.entries)} entries (a full image)"
    return (
        f"the source changed {len(batch.entries)} entries and deleted "
        f"{len(batch.deleted)} (a delta)"
    )


def describe_plan(plan: Plan) -> str:
    """The plan's counts, in words."""
    counts = ", ".join(f"{n} {action}" for action, n in plan.counts.items() if n)
    requests = len(plan.requests)
    return f"{counts or 'nothing to change'}; {requests} request{'s' if requests != 1 else ''}"
