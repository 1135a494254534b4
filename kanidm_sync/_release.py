"""Values that change hands: the request that frees them before the entries take them.

Owns: finding the unique values (name, external id, mail, gidnumber) that a sent entry
takes from another entry still holding them in Kanidm (:func:`find_handovers`), the
*release* entries that free them (:func:`release_entry`), the entries reusing a value of
an entry the run deletes (:func:`find_reusers`), and the split whose first request(s)
carry the releases, the deletions or the refresh cleanup before the entries
(:func:`first_split`).

Must not: do I/O, log, read a clock, or talk to Kanidm. Pure and deterministic: the same
plan always gives the same requests, which is what makes a crashed run resumable.

Why. kanidmd checks attribute uniqueness against the database as it was *before* the
apply (server/lib/src/plugins/attrunique.rs ``enforce_unique``, run from
``pre_batch_modify`` ahead of the backend write): its filter is ``attr=value AND NOT
uuid=self``, and the other entries of the same request still hold their old values. So

* two entries that trade a value in one request get 409 on every run, and so does a
  chain (A takes the name B gives up while B takes a new one), in any order;
* an entry deleted and re-created at the source (a new UUID with the old values)
  collides with its old self: ``retain`` deletes in phase 4, after phase 3 checked.

A value is free only once its holder's change committed in an earlier request, or once
the refresh cleanup recycled its holder (it writes before phase 3 of the same request).
So the runner first sends each *giver* (a sent entry whose current value another sent
entry takes) with its current content and every given-up value replaced by a temporary
one, together with the deletions whose values are reused; the entries follow, from a
chunk cookie, in as many requests as they need. docs/runner.md ("Swaps", "Deleted and
re-created entries") has the operator's view.

The temporary values (each made from the entry's UUID, so no two entries share one):

* name: ``ks-tmp-<uuid hex>``: an iname (``^[a-z][a-z0-9-_.]{0,63}$``, not a UUID, not
  ``root`` or ``dn=token``; server/lib/src/value.rs ``validate_iname``);
* external id: ``kanidm-sync-released:<uuid>``;
* mail: the given-up address is left out (``mail`` is optional in every sync class);
* gidnumber: a number in kanidmd's own generated range (0x70000000-0x7fffffff,
  server/lib/src/plugins/gidnumber.rs) that no entry of the plan holds or derives.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Container, Iterable, Mapping, Sequence, Set
from typing import Final, TypeAlias

import attrs

from ._chunk import (
    ChunkCookie,
    ChunkingError,
    Split,
    chain_requests,
    empty_request_size,
    encoded_size,
    has_references,
    is_keep_alive,
    keep_alive,
    root_state,
    split_changes,
)
from ._projection import external_id_of, gidnumber_of, unique_values
from ._proto._codec import encode_entry
from ._proto._entries import SCHEMA_PREFIX, SECRET_ATTRIBUTES, Entry, GenericEntry
from ._proto._state import ActiveState, RefreshState, RetainIgnore, RetentionMode, SyncState
from ._types import JSONObject, JSONValue

__all__ = [
    "PLACEHOLDER_EXTERNAL_ID",
    "RELEASED_EXTERNAL_ID",
    "RELEASED_NAME",
    "Handover",
    "describe_handovers",
    "find_handovers",
    "find_reusers",
    "first_split",
    "known_gidnumbers",
    "refresh_anchor",
    "release_entry",
    "temporary_gidnumber",
]

PLACEHOLDER_EXTERNAL_ID: Final = "kanidm-sync-pending:"
"""Prefix of the external id a refresh's delete-first request may give one entry for a
moment (followed by the entry's UUID); the next request of the same run replaces it."""

RELEASED_EXTERNAL_ID: Final = "kanidm-sync-released:"
"""Prefix of the temporary external id of an entry giving its own up (then its UUID)."""

RELEASED_NAME: Final = "ks-tmp-"
"""Prefix of the temporary name of an entry giving its own up (then its UUID in hex)."""

_GID_GENERATED: Final = 0x7000_0000
_GID_MASK: Final = 0x0FFF_FFFF
_HEADER: Final = frozenset({"schemas", "id", "externalId"})
_LABELS: Final = {"externalId": "external id"}
_ItemFilter: TypeAlias = Callable[[Mapping[str, JSONValue]], bool]


@attrs.frozen
class Handover:
    """A unique value a sent entry takes from another sent entry that holds it now.

    Attributes:
        key: the wire key (``name``, ``externalId``, ``mail`` or ``gidnumber``).
        value: the value, in the form Kanidm compares (lower-cased but for gidnumber).
        giver: the entry holding it now, per the last known state.
        taker: the entry taking it.
    """

    key: str
    value: str
    giver: uuid.UUID
    taker: uuid.UUID


def find_handovers(
    to_send: Sequence[Entry],
    projected: Mapping[uuid.UUID, JSONObject],
    hint: Mapping[uuid.UUID, JSONObject],
) -> list[Handover]:
    """The values sent entries take from other sent entries (swaps, chains, cycles).

    Args:
        to_send: the entries the plan sends.
        projected: entry id -> new projection (every sent entry has one).
        hint: entry id -> projection of what Kanidm holds (the last known state, or in
            Refresh and after a conflict the local record of an older cookie).

    Returns:
        One handover per taken value, in the order of ``to_send``. A value the holder
        keeps is no handover (the batch itself would hold it twice).
    """
    holder: dict[tuple[str, str], uuid.UUID] = {}
    for entry in to_send:
        old = hint.get(entry.id)
        if old is not None:
            for pair in unique_values(old):
                holder.setdefault(pair, entry.id)
    keeps: dict[uuid.UUID, set[tuple[str, str]]] = {}
    out: list[Handover] = []
    for entry in to_send:
        for pair in sorted(set(unique_values(projected[entry.id]))):
            giver = holder.get(pair)
            if giver is None or giver == entry.id:
                continue
            kept = keeps.get(giver)
            if kept is None:
                kept = keeps[giver] = set(unique_values(projected[giver]))
            if pair not in kept:
                out.append(Handover(key=pair[0], value=pair[1], giver=giver, taker=entry.id))
    return out


def find_reusers(
    to_send: Sequence[Entry],
    projected: Mapping[uuid.UUID, JSONObject],
    doomed: Mapping[uuid.UUID, JSONObject],
) -> set[int]:
    """Positions of sent entries taking a unique value held by an entry being deleted."""
    held = {pair: d for d, p in doomed.items() for pair in unique_values(p)}
    if not held:
        return set()  # nothing deleted holds a value
    return {
        n
        for n, e in enumerate(to_send)
        if any(held.get(pair, e.id) != e.id for pair in unique_values(projected[e.id]))
    }


def temporary_gidnumber(entry_id: uuid.UUID, taken: Container[int]) -> int:
    """A gidnumber for an entry giving its own up: in kanidmd's generated range, free.

    Args:
        entry_id: the entry's UUID (the number is derived from it, deterministically).
        taken: the gidnumbers the plan knows to be held, taken or derived.

    Returns:
        A number in 0x70000000-0x7fffffff not in ``taken``.
    """
    attempt = 0
    while True:
        digest = hashlib.sha256(b"kanidm-sync release %d:" % attempt + entry_id.bytes).digest()
        gid = _GID_GENERATED | (int.from_bytes(digest[:4], "big") & _GID_MASK)
        if gid not in taken:
            return gid
        attempt += 1


def known_gidnumbers(projections: Iterable[tuple[uuid.UUID, Mapping[str, JSONValue]]]) -> set[int]:
    """Every gidnumber the projections hold, or that kanidmd derives for them (spec §3.9.3)."""
    return {g for eid, p in projections if (g := gidnumber_of(eid, p)) is not None}


def _strings(value: JSONValue | None) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def release_entry(
    entry_id: uuid.UUID,
    current: Mapping[str, JSONValue],
    given: Iterable[tuple[str, str]],
    new: Entry,
    *,
    gone: Set[uuid.UUID],
    taken_gids: Container[int],
    everything: bool = False,
    live: Set[uuid.UUID] | None = None,
) -> GenericEntry:
    """The entry that frees the values ``entry_id`` gives up, changing nothing else.

    It is the entry as Kanidm holds it (its last known projection, whose references name
    entries that exist), with each given-up value replaced by a temporary one (see the
    module doc). Kanidm replaces every sync-owned attribute of an entry it is sent, so
    the rest is sent again as it is. When the projection is only a hint of what Kanidm
    holds (``everything``), *every* unique value is replaced, so that a stale value cannot
    collide with an entry that took it meanwhile. Two more things differ from the
    projection:

    * secrets: the projection holds digests; the password and TOTP imports of the new
      entry are sent instead (Kanidm purges the primary credential on every apply, and
      the next request sends the same imports), when the current classes allow them;
    * member UUIDs of ``gone`` entries are left out (a recycled UUID fails the apply), and
      when ``live`` is given, every member UUID outside it (the member list comes back
      with the entry's own values in a later request).

    Args:
        entry_id: the giver.
        current: its last known projection.
        given: the ``(key, value)`` pairs it gives up (see :class:`Handover`).
        new: the entry as the plan sends it later (for its secrets).
        gone: ids that are not live when the request applies (deleted earlier, or
            recycled by the refresh cleanup of the same request).
        live: when the projection is only a hint, the ids certain to be live when the
            request applies (in Refresh, the image, which the request keeps alive); member
            UUIDs outside it are left out, as the hint cannot tell they still exist.
        taken_gids: gidnumbers the temporary one must avoid.
        everything: replace every unique value of the projection, not only ``given``.

    Returns:
        A :class:`~kanidm_sync.GenericEntry` with the entry's id, schemas and attributes.
    """
    if everything:
        given = list(unique_values(current))
    keys = {k for k, _ in given}
    attributes: dict[str, JSONValue] = {
        k: v for k, v in current.items() if k not in _HEADER and k not in SECRET_ATTRIBUTES
    }
    external_id = external_id_of(current)
    if "name" in keys:
        attributes["name"] = RELEASED_NAME + entry_id.hex
    if "externalId" in keys:
        external_id = f"{RELEASED_EXTERNAL_ID}{entry_id}"
    if "gidnumber" in keys:
        attributes["gidnumber"] = temporary_gidnumber(entry_id, taken_gids)
    if "mail" in keys:
        released = {v for k, v in given if k == "mail"}
        _keep_items(attributes, "mail", lambda item: str(item.get("value")).lower() not in released)
    if gone or live is not None:
        _keep_items(attributes, "member", lambda item: _member_kept(item, gone, live))
    schemas = _strings(current.get("schemas"))
    encoded = encode_entry(new)
    if "password_import" in encoded:
        attributes["password_import"] = encoded["password_import"]
        if "totp_import" in encoded:
            attributes["totp_import"] = encoded["totp_import"]
    if "unix_password_import" in encoded and SCHEMA_PREFIX + "posixaccount" in schemas:
        attributes["unix_password_import"] = encoded["unix_password_import"]
    return GenericEntry(
        id=entry_id, external_id=external_id, schemas=tuple(schemas), attributes=attributes
    )


def _keep_items(attributes: dict[str, JSONValue], key: str, keep: _ItemFilter) -> None:
    value = attributes.get(key)
    if not isinstance(value, list):
        return
    kept = [item for item in value if not isinstance(item, dict) or keep(item)]
    if kept:
        attributes[key] = kept
    else:
        del attributes[key]  # never an empty list on the wire (spec §3.5)


def _member_kept(
    item: Mapping[str, JSONValue], gone: Set[uuid.UUID], live: Set[uuid.UUID] | None
) -> bool:
    # An external id that resolves to nothing is dropped by Kanidm (spec §3.9.1): kept. A
    # UUID that names no live entry fails the apply: kept only when it surely is live.
    ref = item.get("external_id")
    if not isinstance(ref, str):
        return True
    try:
        member = uuid.UUID(ref)
    except ValueError:
        return True
    return member not in gone and (live is None or member in live)


def describe_handovers(
    handovers: Sequence[Handover],
    labels: Mapping[uuid.UUID, str],
    *,
    limit: int = 5,
) -> str:
    """One phrase per pair of entries: ``alice and bob exchange names``.

    Args:
        handovers: what :func:`find_handovers` found.
        labels: entry id -> how the operator knows the entry now (its current name).
        limit: at most this many phrases; the rest is counted.

    Returns:
        The phrases joined with ``"; "``.
    """
    by_pair: dict[tuple[uuid.UUID, uuid.UUID], list[str]] = {}
    for h in handovers:
        by_pair.setdefault((h.giver, h.taker), []).append(h.key)
    phrases: list[str] = []
    seen: set[tuple[uuid.UUID, uuid.UUID]] = set()
    for (giver, taker), keys in by_pair.items():
        if (giver, taker) in seen:
            continue
        seen.add((giver, taker))
        what = _plural(keys)
        back = by_pair.get((taker, giver))
        if back is not None and sorted(set(back)) == sorted(set(keys)):
            seen.add((taker, giver))
            one, other = sorted((str(labels.get(giver, giver)), str(labels.get(taker, taker))))
            phrases.append(f"{one} and {other} exchange {what}")
        else:
            who, whom = labels.get(giver, giver), labels.get(taker, taker)
            phrases.append(f"{who} hands its {_singular(keys)} to {whom}")
    shown = phrases[:limit]
    if len(phrases) > limit:
        shown.append(f"and {len(phrases) - limit} more")
    return "; ".join(shown)


def _names(keys: Sequence[str]) -> list[str]:
    out: list[str] = []
    for key in keys:
        label = _LABELS.get(key, key)
        if label not in out:
            out.append(label)
    return out


def _plural(keys: Sequence[str]) -> str:
    names = [n + ("s" if not n.endswith("s") else "") for n in _names(keys)]
    return " and ".join(names)


def _singular(keys: Sequence[str]) -> str:
    return " and ".join(_names(keys))


def refresh_anchor(
    to_send: Sequence[Entry],
    projected: Mapping[uuid.UUID, JSONObject],
    hint: Mapping[uuid.UUID, JSONObject],
    reusers: Set[int],
    image_ids: Sequence[uuid.UUID],
) -> Entry:
    """The one entry with an external id a refresh's first request needs when it releases nothing.

    From Refresh, an apply with entries but no external id among them is refused
    (``emptyrequest``, spec §4.3). The anchor is sent whole: an entry with an external
    id, no references (they could not resolve yet), and unique values that, per the
    record, no other entry holds, so it cannot collide. Without such an entry, one
    keep-alive carries a placeholder external id made from its own UUID, which no other
    entry can hold; a later request of the chain sets the real one. A new id is
    preferred, so that no existing entry's external id changes even for a moment.
    [inferred: no kanidmd test sends an empty schema list with an external id; the stub
    only gets sync_external_id, which its sync_object class allows]

    Args:
        to_send: the entries the plan sends.
        projected: entry id -> new projection.
        hint: the local record used as a hint of what the account holds.
        reusers: positions in ``to_send`` of entries reusing a deleted entry's value.
        image_ids: every id of the image, sorted.

    Returns:
        The anchor (one of ``to_send``), or a placeholder keep-alive.
    """
    holders: dict[tuple[str, str], set[uuid.UUID]] = {}
    for eid, proj in hint.items():
        for pair in unique_values(proj):
            holders.setdefault(pair, set()).add(eid)
    for n, entry in enumerate(to_send):
        if n in reusers or not entry.external_id or has_references(entry):
            continue
        if all(holders.get(p, set()) <= {entry.id} for p in unique_values(projected[entry.id])):
            return entry
    fresh = [u for u in image_ids if u not in hint]
    holder = (fresh or list(image_ids))[0]
    return GenericEntry(id=holder, schemas=(), external_id=f"{PLACEHOLDER_EXTERNAL_ID}{holder}")


def first_split(
    *,
    base_state: SyncState,
    to_state: SyncState,
    releases: Sequence[Entry],
    first_retain: RetentionMode,
    anchor: Entry | None,
    image_ids: Sequence[uuid.UUID],
    to_send: Sequence[Entry],
    sizes: Sequence[int],
    retain: RetentionMode,
    max_bytes: int,
) -> Split:
    """The releases, deletions or refresh cleanup first, then the entries from a chunk cookie.

    Request 1 goes from ``base_state``: in Refresh it lists every id of the image (the
    releases and the anchor whole, the others as keep-alives), so that its refresh
    cleanup recycles exactly the entries the image lacks; in Active it carries
    ``first_retain`` (the deletions, when their values are reused). Releases that do not
    fit in request 1 follow in requests of their own. Then the entries, split as from an
    Active state (no keep-alives); the final request keeps the retention rule too
    (deleting what is already recycled is ignored, §4.6), which keeps a restarted run
    correct.

    Args:
        base_state: the state the run starts from.
        to_state: the state the last request records.
        releases: release entries (see :func:`release_entry`).
        first_retain: the retention rule of request 1.
        anchor: in Refresh without releases, the entry (or placeholder) that carries an
            external id in request 1 (see :func:`refresh_anchor`); else ``None``.
        image_ids: in Refresh, every id of the image, sorted; else empty.
        to_send: the entries, sent whole after the first requests (the anchor excepted).
        sizes: the encoded size of each of ``to_send``.
        retain: the retention rule of the final request.
        max_bytes: the largest body allowed.

    Returns:
        The chained split.

    Raises:
        ChunkingError: request 1 cannot carry its keep-alives and one release, or an
            entry is larger than a request.
    """
    refresh = isinstance(base_state, RefreshState)
    probe = ActiveState(
        ChunkCookie(digest="0" * 32, index=9999, total=99999, base=root_state(base_state)).encode()
    )
    budget = max_bytes - empty_request_size(probe, probe)
    first_budget = max_bytes - max(
        empty_request_size(base_state, probe, first_retain),
        empty_request_size(base_state, to_state, first_retain),
    )
    head: list[Entry] = [] if anchor is None else [anchor]
    whole = {anchor.id} if anchor is not None and not is_keep_alive(anchor) else set()
    if refresh:
        # Every id of the image not carried whole: a keep-alive each.
        first_budget -= (len(image_ids) - len(head)) * (
            encoded_size(keep_alive(uuid.UUID(int=0))) + 1
        )
    first_budget -= sum(encoded_size(e) + 1 for e in head)
    packs: list[list[Entry]] = [head]
    room = first_budget
    for entry in releases:
        cost = encoded_size(entry) + 1
        if cost > budget:
            raise ChunkingError(
                f"entry {entry.id} alone takes {cost - 1} bytes, more than one request may "
                f"carry ({max_bytes} bytes): shorten it or exclude it"
            )
        if cost > room:
            if refresh and len(packs) == 1 and not any(e.external_id for e in packs[0]):
                # Request 1 from Refresh needs an entry with an external id (§4.3).
                raise ChunkingError(
                    f"Kanidm is in Refresh and the keep-alive list for {len(image_ids)} "
                    "entries leaves no room in the first request for the entries that give "
                    "a value up. Remedy: sync a subset first (exclude rules), so Kanidm "
                    "becomes Active, then widen the rules"
                )
            packs.append([])
            room = budget
        packs[-1].append(entry)
        room -= cost
    if refresh:
        listed = {e.id for e in packs[0]}
        packs[0].extend(keep_alive(u) for u in image_ids if u not in listed)
    rest = [n for n, e in enumerate(to_send) if e.id not in whole]
    rest_split = split_changes(
        from_state=probe,
        to_state=to_state,
        entries=[to_send[n] for n in rest],
        retain=retain,
        max_bytes=max_bytes - 64,  # the final chain's cookies may have more digits
        # Its cookies embed what the final chain's embed (not the probe, which would nest
        # one level deeper and cost the budget the size of a cookie for nothing).
        chunk_base=base_state,
        sizes=[sizes[n] for n in rest],
    )
    parts: list[tuple[Sequence[Entry], RetentionMode]] = [(packs[0], first_retain)]
    parts.extend((pack, RetainIgnore()) for pack in packs[1:])
    parts.extend((r.entries, r.retain) for r in rest_split.requests)
    return chain_requests(
        from_state=base_state, to_state=to_state, parts=parts, max_bytes=max_bytes
    )
