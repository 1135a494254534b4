"""Plan: what one run will change in Kanidm, entry by entry, before anything is sent.

Owns: turning a source batch (after rules) and the *last known state* into per-entry
actions (create, update, delete, unchanged, or "create or replace" when the base is
unknown) with attribute-level RFC 6902 diffs, and the ChangeSet(s) that carry them; also
resuming a crashed chunked run and the local record once a plan committed. The plan value
and its renderings are in ``_plan_model``, projections and the record shape in
``_projection``, the first request that frees unique values in ``_release``.

Must not: do I/O, log, read a clock, or talk to Kanidm. Pure; the runner feeds it. (The
record it is given may be read on demand, ``_projection.RecordEntries``: the plan asks
it only about the entries the batch sends or deletes, in bulk through ``prefetch``, and
about gidnumbers through its index; a full image reads it whole, once.)

What a plan can and cannot know. Kanidm has no read of entries for a sync account (only
``GET /scim/v1/Sync`` for the cookie), so the diff base is what *this runner* last applied
successfully for the account, recorded locally next to the cookie Kanidm stored at that
moment (:class:`KnownState`). When Kanidm holds exactly that cookie, the record is what
Kanidm holds (only the sync account can write its entries' sync-owned attributes), and the
plan is exact: unchanged entries are not sent at all and deletions are listed one by one.
When the record is missing, corrupt, or for another cookie, the plan says so: every entry
is "create or replace" and deletions are left to Kanidm (``RetainOnly`` or the refresh
cleanup), whose count the plan cannot know. Values Kanidm derives itself (a generated
gidnumber, memberof, spn) and attributes yielded to Kanidm are outside any plan.

kanidmd checks uniqueness against what it holds before each apply, so a unique value
(name, external id, mail, gidnumber) can only move to another entry once its holder let
go of it in an earlier request. Entries that exchange values (swaps, chains of renames)
are first sent with temporary values (``Plan.released``), and entries deleted and
re-created at the source (a new UUID reusing the values of an entry the same run
deletes) make the plan send the deletions first (``Plan.delete_first``); both travel in
the first request, the entries follow (``_release``; docs/runner.md says why and how).

Secrets never enter a plan: password and TOTP imports are replaced by a SHA-256 digest salted
with the entry id before diffing, so a plan shows that a secret changed, never the secret.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Final

import attrs

from ._chunk import ChunkCookie, external_references, split_changes
from ._plan_model import NO_VALUES, Action, EntryChange, Plan
from ._projection import (
    KnownState,
    ProjectionTexts,
    UpdatedEntries,
    all_ids,
    diff_attributes,
    entry_kind,
    external_id_of,
    gidnumbers_held,
    kind_of,
    name_of,
    prefetch,
    project_encoded,
    project_entry,
)
from ._proto._codec import dumps, encode_entry
from ._proto._entries import SECRET_ATTRIBUTES, Entry
from ._proto._state import (
    ActiveState,
    DeleteOnly,
    RefreshState,
    RetainIgnore,
    RetainOnly,
    RetentionMode,
    SyncState,
)
from ._release import (
    PLACEHOLDER_EXTERNAL_ID,
    RELEASED_NAME,
    Handover,
    describe_handovers,
    find_handovers,
    find_reusers,
    first_split,
    refresh_anchor,
    release_entry,
)
from ._types import JSONObject, JSONValue
from .adapters._protocols import Delta, FullImage

__all__ = [
    "PLACEHOLDER_EXTERNAL_ID",
    "TEXT_PROJECTIONS_FROM",
    "Action",
    "EntryChange",
    "KnownState",
    "Plan",
    "apply_to_known",
    "build_plan",
    "diff_attributes",
    "project_entry",
    "resume_plan",
]


#: From this many entries a plan keeps its projections as JSON text (``ProjectionTexts``).
TEXT_PROJECTIONS_FROM: Final = 10_000


def _dedupe(entries: Sequence[Entry]) -> tuple[list[Entry], int]:
    # Kanidm keeps the last occurrence of a repeated id (spec §4.2 step 5); so do we.
    last: dict[uuid.UUID, Entry] = {}
    for entry in entries:
        last.pop(entry.id, None)
        last[entry.id] = entry
    return list(last.values()), len(entries) - len(last)


_ORDER: Final = {
    Action.CREATE: 0,
    Action.UPDATE: 1,
    Action.REPLACE: 2,
    Action.DELETE: 3,
    Action.UNCHANGED: 4,
}


def build_plan(
    *,
    state: SyncState,
    batch: FullImage | Delta,
    known: KnownState | None,
    max_request_bytes: int,
    send_unchanged: bool = False,
    chunk_base: SyncState | None = None,
    retry: bool = False,
) -> Plan:
    """Plan how to bring Kanidm from ``state`` to what ``batch`` describes.

    Args:
        state: Kanidm's current state (the plan's ``from_state``).
        batch: the source's answer, after rules.
        known: the last known state, or ``None``. It is used as the diff base only if it
            matches ``state`` (or ``chunk_base`` when finishing a chunked run).
        max_request_bytes: the largest request body to send.
        send_unchanged: send entries identical to the base anyway.
        chunk_base: for a resumed chunked run, the state that run started from.
        retry: the runner's retry after a 409 over an unknown base. The deletions go
            first even when no reuse of a unique value is visible (only from an Active
            state with deletions), and ``known``, whatever its cookie, is used as a hint
            of the values sent entries take from each other, which are released first.
            Without it, deletions go first only when a sent entry visibly reuses a unique
            value of a deleted entry, and values are released only when the base is
            known (or, in Refresh, ``known`` shows them changing hands).

    Returns:
        The plan.

    Raises:
        ValueError: a :class:`~kanidm_sync.adapters.Delta` was given while Kanidm is in
            Refresh (a refresh needs every entry).
        ChunkingError: the change cannot be split under ``max_request_bytes``.
    """
    if isinstance(state, RefreshState) and isinstance(batch, Delta):
        raise ValueError("Kanidm is in Refresh: the source must return a full image, not a delta")
    base_state = state if chunk_base is None else chunk_base
    base = known.entries if known is not None and known.matches(base_state) else None
    entries, duplicates = _dedupe(batch.entries)
    notes: list[str] = []
    if duplicates:
        notes.append(f"{duplicates} repeated entry ids: the last occurrence of each is used")
    if base is not None:
        base_note = "the entries this runner last applied for Kanidm's current cookie"
    elif known is None:
        base_note = "unknown (no local record): every entry is sent as create-or-replace"
    elif isinstance(base_state, RefreshState):
        base_note = "unknown (Kanidm is in Refresh): every entry is sent as create-or-replace"
    else:
        base_note = (
            "unknown (the local record is for another cookie): every entry is sent as "
            "create-or-replace"
        )

    refresh = isinstance(base_state, RefreshState)
    if base is not None:
        # A record read on demand reads these rows in one go (every row for a full image).
        prefetch(
            base, [*(e.id for e in entries), *(batch.deleted if isinstance(batch, Delta) else ())]
        )
    deleted_ids: set[uuid.UUID] = set()
    retain: RetentionMode = RetainIgnore()
    deletions_known = base is not None
    if isinstance(batch, Delta):
        explicit = set(batch.deleted)
        # An entry both sent and deleted ends up deleted in Kanidm (§4.6): do not send it.
        entries = [e for e in entries if e.id not in explicit]
        if batch.present is not None:
            keep = (set(batch.present) | {e.id for e in entries}) - explicit
            if base is not None:
                deleted_ids = all_ids(base) - keep
            else:
                retain = RetainOnly(sorted(keep, key=str))  # Kanidm decides what goes
        elif base is not None:
            # Only ids Kanidm holds for us: deleting a live foreign entry fails the apply.
            deleted_ids = {d for d in explicit if d in base}
        else:
            deleted_ids = explicit  # listed exactly; some may already be gone
            deletions_known = True
        if base is not None or batch.present is None:
            retain = DeleteOnly(sorted(deleted_ids, key=str)) if deleted_ids else RetainIgnore()
    elif base is not None:
        deleted_ids = all_ids(base) - {e.id for e in entries}
        retain = DeleteOnly(sorted(deleted_ids, key=str)) if deleted_ids else RetainIgnore()
    elif not refresh:
        retain = RetainOnly(sorted((e.id for e in entries), key=str))
    # else: Refresh, the refresh cleanup deletes every owned id not sent (§4.4).

    changes: list[EntryChange] = []
    to_send: list[Entry] = []
    # A large batch keeps them as text (``ProjectionTexts``): a dict per entry was the
    # largest part of a first run's memory; the few read again below are decoded on
    # demand. A small one (an incremental run) keeps the dicts, read again for free.
    texts = ProjectionTexts() if len(entries) >= TEXT_PROJECTIONS_FROM else None
    table: dict[uuid.UUID, JSONObject] = {}
    projected: Mapping[uuid.UUID, JSONObject] = table if texts is None else texts
    sizes: list[int] = []
    for entry in entries:
        encoded = encode_entry(entry)
        proj = project_encoded(entry, encoded)
        if texts is None:
            table[entry.id] = proj
        else:
            texts.add(entry.id, proj)
        old = base.get(entry.id) if base is not None else None
        patch: tuple[JSONObject, ...] = ()
        added: Mapping[str, tuple[JSONValue, ...]] = NO_VALUES
        removed: Mapping[str, tuple[JSONValue, ...]] = NO_VALUES
        if base is None:
            action = Action.REPLACE
        elif old is None:
            action = Action.CREATE
        elif old == proj:
            action = Action.UNCHANGED
        else:
            action, patch = Action.UPDATE, tuple(diff_attributes(old, proj))
            added, removed = _value_changes(old, proj)
        if action is not Action.UNCHANGED or send_unchanged:
            to_send.append(entry)
            sizes.append(len(dumps(encoded)))
        changes.append(
            EntryChange(
                id=entry.id,
                action=action,
                kind=entry_kind(entry),
                name=name_of(proj),
                external_id=entry.external_id,
                patch=patch,
                values_added=added,
                values_removed=removed,
            )
        )
    if base is not None:
        _resend_referrers(entries, changes, base, to_send, sizes)
        prefetch(base, deleted_ids)
    for gone in deleted_ids:
        old = base.get(gone) if base is not None else None
        changes.append(
            EntryChange(
                id=gone,
                action=Action.DELETE,
                kind=kind_of(old) if old is not None else "entry",
                name=name_of(old) if old is not None else None,
                external_id=external_id_of(old) if old is not None else None,
            )
        )

    to_state: SyncState = ActiveState(batch.cookie)
    # Kanidm checks uniqueness against what it holds before each apply (see _release): a
    # value a sent entry takes from another sent entry, or from an entry the same run
    # deletes, must be freed by an earlier request. The local record of an older cookie
    # is only a hint of what the account holds (in Refresh, and in the retry after a
    # conflict): good enough to see a value change hands, never used as a diff base.
    hint = base
    if hint is None and known is not None and (refresh or retry):
        hint = known.entries
        prefetch(hint, [e.id for e in to_send])
    image = {e.id for e in entries}
    if base is not None:
        doomed = {d: base[d] for d in deleted_ids if d in base}
    elif refresh and hint is not None:
        doomed = {d: p for d, p in hint.items() if d not in image}
    else:
        doomed = {}
    reusers = find_reusers(to_send, projected, doomed)
    handovers = find_handovers(to_send, projected, hint) if hint is not None else []
    releases = _releases(
        handovers, to_send, projected, hint or {}, known, doomed, refresh, base is not None
    )
    deletions_first = (
        not refresh
        and bool(to_send)
        and not isinstance(retain, RetainIgnore)
        and bool(reusers or retry)
    )
    first = bool(releases) or deletions_first or (refresh and bool(reusers))
    if first:
        anchor = None
        if refresh and not any(r.external_id for r in releases):
            anchor = refresh_anchor(to_send, projected, hint or {}, reusers, sorted(image, key=str))
        split = first_split(
            base_state=base_state,
            to_state=to_state,
            releases=releases,
            first_retain=retain if deletions_first else RetainIgnore(),
            anchor=anchor,
            image_ids=sorted(image, key=str) if refresh else [],
            to_send=to_send,
            sizes=sizes,
            retain=retain if not refresh else RetainIgnore(),
            max_bytes=max_request_bytes,
        )
        notes.extend(
            _first_notes(
                handovers, releases, hint or {}, projected, reusers, refresh, deletions_first
            )
        )
    else:
        split = split_changes(
            from_state=base_state,
            to_state=to_state,
            entries=to_send,
            retain=retain,
            max_bytes=max_request_bytes,
            keep_alive_ids=[e.id for e in entries] if refresh else [],
            sizes=sizes,
        )
        if len(split.requests) > 1:
            notes.append(
                f"the change is sent as {len(split.requests)} requests chained by intermediate "
                "cookies; only the last one deletes and records the source's cookie"
            )
    changes.sort(key=lambda c: (_ORDER[c.action], c.label(), str(c.id)))
    return Plan(
        from_state=state,
        to_state=to_state,
        source="full" if isinstance(batch, FullImage) else "delta",
        base_known=base is not None,
        base_note=base_note,
        changes=tuple(changes),
        retain=retain,
        deletions_known=deletions_known,
        synced_before=len(base) if base is not None else None,
        source_count=len(entries) if isinstance(batch, FullImage) else None,
        requests=split.requests,
        request_sizes=split.sizes,
        notes=tuple(notes),
        chunk_digest=split.digest,
        projections=projected,
        delete_first=deletions_first or (refresh and first),
        deleting=doomed,
        released={r.id: _given_keys(handovers, r.id) for r in releases},
    )


def _value_changes(
    old: Mapping[str, JSONValue], new: Mapping[str, JSONValue]
) -> tuple[dict[str, tuple[JSONValue, ...]], dict[str, tuple[JSONValue, ...]]]:
    """The values each changed multi-valued attribute gains and loses (for the display)."""
    added: dict[str, tuple[JSONValue, ...]] = {}
    removed: dict[str, tuple[JSONValue, ...]] = {}
    for key in sorted(old.keys() | new.keys()):
        before, after = old.get(key), new.get(key)
        if before == after or key in SECRET_ATTRIBUTES:
            continue
        if before is None:
            before = []
        if after is None:
            after = []
        if not (isinstance(before, list) and isinstance(after, list)):
            continue  # a scalar, or a list replaced by a scalar: shown as one operation
        was = {_canonical(v): v for v in before}
        now = {_canonical(v): v for v in after}
        if gained := tuple(v for k, v in now.items() if k not in was):
            added[key] = gained
        if lost := tuple(v for k, v in was.items() if k not in now):
            removed[key] = lost
    return added, removed


def _canonical(value: JSONValue) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _releases(
    handovers: Sequence[Handover],
    to_send: Sequence[Entry],
    projected: Mapping[uuid.UUID, JSONObject],
    hint: Mapping[uuid.UUID, JSONObject],
    known: KnownState | None,
    doomed: Mapping[uuid.UUID, JSONObject],
    refresh: bool,
    exact: bool,
) -> list[Entry]:
    """One release entry per giver, in sending order (see ``_release.release_entry``)."""
    if not handovers:
        return []
    given: dict[uuid.UUID, list[tuple[str, str]]] = {}
    for h in handovers:
        given.setdefault(h.giver, []).append((h.key, h.value))
    # UUIDs that are not live when the release applies: deleted by earlier runs, or
    # recycled by this request's refresh cleanup (which runs before phase 3).
    gone = set(known.deleted) if known is not None else set()
    if refresh:
        gone.update(doomed)
    taken = gidnumbers_held(hint, projected.items())
    # Over a hint (not the exact base) every unique value of a giver is replaced (a value
    # the hint shows may have moved to another entry meanwhile), and member UUIDs are sent
    # only when surely live: from Refresh, the image the same request keeps alive.
    everything = not exact
    image = {e.id for e in to_send}
    return [
        release_entry(
            e.id,
            hint[e.id],
            given[e.id],
            e,
            gone=gone,
            taken_gids=taken,
            everything=everything,
            live=None if exact else image if refresh else set(),
        )
        for e in to_send
        if e.id in given
    ]


def _given_keys(handovers: Sequence[Handover], giver: uuid.UUID) -> tuple[str, ...]:
    return tuple(sorted({h.key for h in handovers if h.giver == giver}))


def _first_notes(
    handovers: Sequence[Handover],
    releases: Sequence[Entry],
    hint: Mapping[uuid.UUID, JSONObject],
    projected: Mapping[uuid.UUID, JSONObject],
    reusers: set[int],
    refresh: bool,
    deletions_first: bool,
) -> list[str]:
    """What the first request carries, and why, for the operator."""
    notes: list[str] = []
    if releases:
        # Entries as the operator knows them now: Kanidm's current name, or "the new ...".
        labels: dict[uuid.UUID, str] = {}
        for h in handovers:
            for eid in (h.giver, h.taker):
                old, new = hint.get(eid), projected.get(eid, {})
                labels[eid] = (
                    _label(eid, old)
                    if old is not None
                    else f"the new {kind_of(new)} {_label(eid, new)}"
                )
        n = len(releases)
        where = (
            "in the first request (with the keep-alives of the refresh)"
            if refresh
            else "in a request of their own"
        )
        notes.append(
            f"{describe_handovers(handovers, labels)}: released first. Kanidm checks "
            f"uniqueness against what it holds before each request, so the "
            f"{_entries(n)} giving a value up {'is' if n == 1 else 'are'} sent {where} with "
            f"temporary values ({RELEASED_NAME}<uuid> names, no mail), then every entry with "
            "its own"
        )
    if reusers:
        what = "the refresh cleanup runs" if refresh else "the deletions go"
        notes.append(
            f"{_entries(len(reusers))} reuse a name, external id, mail or gidnumber of an "
            f"entry this run deletes (deleted and re-created at the source): {what} first, "
            + ("with the releases" if releases else "in a request of their own")
        )
    elif deletions_first:
        notes.append(
            "retry after a conflict: the deletions go first"
            + (", with the releases" if releases else ", in a request of their own")
        )
    return notes


def _label(entry_id: uuid.UUID, projection: Mapping[str, JSONValue]) -> str:
    return name_of(projection) or external_id_of(projection) or str(entry_id)


def _entries(n: int) -> str:
    return f"{n} entry" if n == 1 else f"{n} entries"


def _resend_referrers(
    entries: Sequence[Entry],
    changes: Sequence[EntryChange],
    base: Mapping[uuid.UUID, JSONObject],
    to_send: list[Entry],
    sizes: list[int],
) -> None:
    """Send again the unchanged entries that reference, by external id, a new holder of it.

    Kanidm resolves an external id when the referencing entry is applied, and drops one
    that matches no live entry (spec §3.9.1). So when an entry takes an external id it did
    not hold (created under it: deleted and re-created at the source under a new UUID, or
    named by a group before it existed; or two entries exchanging external ids), an
    unchanged group naming it would keep pointing at the old holder (or, once referential
    integrity removed a deleted one, at nothing).
    """
    taken: set[str] = set()
    for c in changes:
        if not c.external_id or c.action not in (Action.CREATE, Action.UPDATE):
            continue
        old = base.get(c.id)
        before = external_id_of(old) if old is not None else None
        if before is None or before.lower() != c.external_id.lower():
            taken.add(c.external_id.lower())
    if not taken:
        return
    unchanged = {c.id for c in changes if c.action is Action.UNCHANGED}
    for entry in entries:
        if entry.id in unchanged and any(r in taken for r in external_references(entry)):
            to_send.append(entry)
            sizes.append(len(dumps(encode_entry(entry))))


def resume_plan(plan: Plan, state: SyncState, cookie: ChunkCookie) -> Plan | None:
    """Narrow a re-built plan to the chunks a crashed run did not commit.

    Args:
        plan: the plan re-built from the state the crashed run started from.
        state: Kanidm's current state (a chunk cookie).
        cookie: ``state`` parsed.

    Returns:
        The plan bound to ``state`` with :attr:`Plan.resume_from` set, or ``None`` when
        the re-built plan is not the split the crashed run was sending.
    """
    if (
        plan.chunk_digest != cookie.digest
        or len(plan.requests) != cookie.total
        or plan.requests[cookie.index].from_state != state
    ):
        return None
    return attrs.evolve(
        plan,
        from_state=state,
        resume_from=cookie.index,
        notes=(
            *plan.notes,
            f"finishing a chunked run: requests 1-{cookie.index} of {cookie.total} are "
            "already committed",
        ),
    )


def apply_to_known(known: KnownState | None, plan: Plan) -> KnownState | None:
    """The last known state once ``plan`` committed.

    Args:
        known: the record before the run (used only if the plan's base was known).
        plan: the plan that committed.

    Returns:
        The new record, or ``None`` when the result cannot be known (a delta applied over
        an unknown base).
    """
    if not isinstance(plan.to_state, ActiveState):
        return None
    deleted = [c.id for c in plan.changes if c.action is Action.DELETE]
    history = (*(known.deleted if known is not None else ()), *deleted)[-_MAX_DELETED:]
    if plan.source == "full":
        # Not copied: the record writes a plan's texts as they are (``ProjectionTexts``).
        entries = plan.projections
        return KnownState(cookie=plan.to_state.cookie, entries=entries, deleted=history)
    if not plan.base_known or known is None:
        return None
    if not isinstance(known.entries, dict):
        # A record read on demand is not copied: the changes go on top of it, and the
        # local record writes only them.
        updated = UpdatedEntries(known.entries, plan.projections, deleted)
        return KnownState(cookie=plan.to_state.cookie, entries=updated, deleted=history)
    table = dict(known.entries)
    table.update(plan.projections)
    for gone in deleted:
        table.pop(gone, None)
    return KnownState(cookie=plan.to_state.cookie, entries=table, deleted=history)


_MAX_DELETED: Final = 50_000
