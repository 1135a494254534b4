"""Diagnosing a 409: which entries can hold a value another Kanidm entry holds.

Owns: the candidates of a diagnosis (:class:`Candidate`, :func:`suspect`) and the
analysis of a uniqueness conflict (:func:`uniqueness_finding`), for ``_diagnose``.

Must not: talk to Kanidm (see ``_diagnose`` for why the analysis is local only).

kanidmd's 409 names the attributes (``["name", "spn"]``, ``["mail"]``), never the value
nor the entry. An entry with several values of an attribute (mail addresses) can collide
on any of them: the analysis names the value when local knowledge singles it out (shared
inside the request, held by another entry of the account, the one value new to the
account) and otherwise lists the candidate values without claiming which.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Final

import attrs

from ._diagnosis import Suspect
from ._exceptions import UniquenessError
from ._projection import KnownState, name_of
from ._proto._entries import Entry
from ._proto._state import RefreshState, SyncState
from ._types import JSONObject, JSONValue

__all__ = ["Candidate", "Finding", "suspect", "uniqueness_finding"]


@attrs.frozen
class Candidate:
    """An entry of the failing request (keep-alives excluded), with its projection."""

    entry: Entry
    projection: JSONObject
    kind: str


@attrs.define
class Finding:
    """What an analysis found: the fields of a :class:`~kanidm_sync.Diagnosis` it fills."""

    summary: str
    suspects: list[Suspect] = attrs.field(factory=list)
    narrowed: bool = False
    attribute: str | None = None
    notes: list[str] = attrs.field(factory=list)


def suspect(
    c: Candidate,
    reason: str,
    attribute: str | None,
    sources: Mapping[uuid.UUID, uuid.UUID],
    values: Sequence[str] = (),
) -> Suspect:
    """A :class:`Suspect` for candidate ``c`` (``sources`` maps remapped ids back)."""
    return Suspect(
        id=c.entry.id,
        source_id=sources.get(c.entry.id, c.entry.id),
        kind=c.kind,
        name=name_of(c.projection),
        external_id=c.entry.external_id,
        reason=reason,
        attribute=attribute,
        values=tuple(values),
    )


def _pairs(projection: Mapping[str, JSONValue], attribute: str) -> list[tuple[str, str]]:
    # (the value Kanidm compares, lower-cased where Kanidm lower-cases; the value as sent)
    if attribute in ("name", "spn"):
        value = projection.get("name")
        return [(value.lower(), value)] if isinstance(value, str) else []
    if attribute in ("sync_external_id", "external_id"):
        value = projection.get("externalId")
        return [(value.lower(), value)] if isinstance(value, str) else []
    raw = projection.get(attribute)
    items = raw if isinstance(raw, list) else [] if raw is None else [raw]
    out: list[tuple[str, str]] = []
    for item in items:
        if isinstance(item, dict):
            value = item.get("value")
            if isinstance(value, str):
                out.append((value.lower(), value))
        elif isinstance(item, str | int) and not isinstance(item, bool):
            out.append((str(item).lower(), str(item)))
    return out


def values_of(projection: Mapping[str, JSONValue], attribute: str) -> list[str]:
    """The values Kanidm compares for uniqueness, lower-cased where Kanidm lower-cases."""
    return [v for v, _ in _pairs(projection, attribute)]


def _listed(attr: str, values: Sequence[str]) -> str:
    return f"{attr} " + ", ".join(repr(v) for v in values)


def uniqueness_finding(
    error: UniquenessError,
    from_state: SyncState,
    candidates: Sequence[Candidate],
    *,
    known: KnownState | None,
    sources: Mapping[uuid.UUID, uuid.UUID],
    deleting: Mapping[uuid.UUID, JSONObject],
    delete_first: bool,
    released: Mapping[uuid.UUID, Sequence[str]],
    record_path: bool,
    record: bool,
) -> Finding:
    """Map a 409 to the entries that can hold a value another entry holds.

    Args:
        error: Kanidm's 409.
        from_state: the failing request's ``from_state``.
        candidates: the request's entries.
        known: the last known state matching Kanidm's cookie, or ``None``.
        sources: Kanidm id -> source id, for remapped entries.
        deleting: see :func:`~kanidm_sync._diagnose.diagnose`.
        delete_first: see :func:`~kanidm_sync._diagnose.diagnose`.
        released: see :func:`~kanidm_sync._diagnose.diagnose`.
        record_path: see :func:`~kanidm_sync._diagnose.diagnose`.
        record: see :func:`~kanidm_sync._diagnose.diagnose`.

    Returns:
        The finding.
    """
    base = known.entries if known is not None else None
    # kanidmd lists one attribute per conflicting value (["name", "name", "spn", "spn"]
    # for a swap of two names): each attribute once is what matters here.
    names = tuple(dict.fromkeys(error.conflicting_attributes)) or ("name",)
    listed = ", ".join(names)
    gave_up = {(eid, _ATTRIBUTE_KEYS.get(k, k)) for eid, keys in released.items() for k in keys}
    # Kanidm reports name and spn together (the spn is derived from the name): one cause,
    # one summary, one note, whatever the number of attributes.
    found = Finding(summary=f"a value of {listed} is already used by another entry")
    suspects, notes = found.suspects, found.notes
    recycled_note = False
    guesses: list[Suspect] = []
    for attr in names:
        found.attribute = found.attribute or attr
        holders: dict[str, list[Candidate]] = {}
        for c in candidates:
            for v in values_of(c.projection, attr):
                holders.setdefault(v, []).append(c)
        dups = {v: cs for v, cs in holders.items() if len(cs) > 1}
        for v, cs in dups.items():
            for c in cs:
                others = ", ".join(str(o.entry.id) for o in cs if o is not c)
                suspects.append(
                    suspect(c, f"{attr} {v!r} is also sent for {others}", attr, sources, [v])
                )
        if dups:
            found.narrowed = True
            continue
        if _recreated(candidates, attr, deleting, delete_first, sources, suspects, notes):
            found.narrowed = True
            found.summary = (
                f"a value of {attr} is still held by an entry this run deletes: it was "
                "deleted and re-created at the source"
            )
            continue
        if isinstance(from_state, RefreshState) and base is None:
            if not recycled_note:
                recycled_note = True
                found.summary = _REFRESH_SUMMARY.format(attrs=listed)
                notes.append(_refresh_remedy(record_path))
        elif delete_first and not any(n.startswith(_DELETED_FIRST) for n in notes):
            notes.append(
                _DELETED_FIRST + " (that request committed), so the value is held by an "
                "entry it does not delete: a native entry, one of another sync account"
                + (
                    ""
                    if base is not None
                    else ", or an entry of this account that gives it up in this run "
                    "without the runner seeing it (see below)"
                )
            )
        if base is not None:
            held: dict[str, set[uuid.UUID]] = {}
            freed: set[str] = set()  # released by the run's first request (committed)
            for eid, p in base.items():
                released_here = (eid, _ATTRIBUTE_KEYS.get(attr, attr)) in gave_up
                for v in values_of(p, attr):
                    if released_here:
                        freed.add(v)
                    else:
                        held.setdefault(v, set()).add(eid)
            sent = {c.entry.id for c in candidates}
            for c in candidates:
                certain: list[tuple[str, str]] = []  # (value, the entry holding it)
                new: list[str] = []
                for v, shown in _pairs(c.projection, attr):
                    if v in freed and v not in held:
                        continue  # its holder in this account let go of it
                    if v not in held:
                        new.append(shown)
                    elif owners := held[v] - {c.entry.id} - sent:
                        certain.append((shown, sorted(str(o) for o in owners)[0]))
                    # else: its own value, or one another sent entry gives up
                if certain:
                    # Certain: the record says this account holds it elsewhere.
                    reason = (
                        f"{attr} {certain[0][0]!r} is still held by {certain[0][1]} of this "
                        "sync account, which this request does not change"
                        if len(certain) == 1
                        else f"{attr} values are still held by other entries of this sync "
                        "account, which this request does not change: "
                        + ", ".join(f"{v!r} by {o}" for v, o in certain)
                    )
                    suspects.append(suspect(c, reason, attr, sources, [v for v, _ in certain]))
                elif new:
                    # A value this account never held may be held outside it; the runner
                    # cannot see outside, so this is a possibility.
                    guesses.append(
                        suspect(
                            c,
                            f"{_listed(attr, new)} "
                            + (
                                "is new to this sync account, so another Kanidm entry "
                                "(native or of another sync account) may hold it"
                                if len(new) == 1
                                else "are new to this sync account, so another Kanidm "
                                "entry (native or of another sync account) may hold one "
                                "of them (Kanidm does not say which)"
                            ),
                            attr,
                            sources,
                            new,
                        )
                    )
        else:
            if not any(n.startswith("the last known state is unknown") for n in notes):
                notes.append(unknown_base_note(f"carrying {listed}"))
                if not isinstance(from_state, RefreshState):
                    notes.append(_exchange_note(record, released))
            for c in candidates:
                carried = [s for _, s in _pairs(c.projection, attr)]
                if carried:
                    guesses.append(
                        suspect(
                            c,
                            f"{_listed(attr, carried)} may be held by another entry (Kanidm "
                            "does not say which value collided)",
                            attr,
                            sources,
                            carried,
                        )
                    )
    if base is not None and not found.narrowed:
        _narrow(found, guesses)
    suspects.extend(guesses)
    return found


def _narrow(found: Finding, guesses: list[Suspect]) -> None:
    """Over an exact base: decide whether the suspects pin the cause down."""
    certain = bool(found.suspects)
    unique_guesses = {g.id for g in guesses}
    if len(unique_guesses) > 1:
        found.notes.append(
            f"{len(unique_guesses)} entries carry values new to this sync account and any of "
            "them may be the one Kanidm refused (it does not say which): check which of "
            "these names or values already exist in Kanidm before pasting a rule, and apply "
            "it only to those"
        )
    elif len(unique_guesses) == 1 and not certain:
        # Over an exact base, a lone entry with new values is the only one that can
        # collide with something outside the account: certain when it has one such value;
        # with several (mail addresses) the entry is certain, the value is not.
        g = guesses[0]
        if len(g.values) == 1:
            reason = g.reason.replace(
                "may hold it", "holds it (the only value of the request new to this account)"
            )
        else:
            reason = g.reason.replace(
                "may hold one of them (Kanidm does not say which)",
                "holds one of them (the only entry of the request with values new to this "
                "account; Kanidm does not say which value)",
            )
        guesses[:] = [attrs.evolve(g, reason=reason)]
        found.narrowed = len(g.values) == 1
        return
    found.narrowed = certain


def unknown_base_note(what: str) -> str:
    """The note that an unknown base leaves every entry ``what`` a candidate."""
    return (
        f"the last known state is unknown, so every entry {what} is a candidate; "
        "Kanidm does not say which entry failed"
    )


_REFRESH_SUMMARY: Final = (
    "a value of {attrs} is already held by another entry. Kanidm is in Refresh and this "
    "runner has no record of the account, so the holder is most likely an entry outside "
    "this sync account (a native Kanidm entry, or one of another sync account: on a first "
    "sync, an account that already exists in Kanidm); less likely, an entry of this "
    "account deleted and re-created at the source, or entries of this account exchanging "
    "values (a swap, a chain of renames)"
)
_ATTRIBUTE_KEYS: Final = {
    "name": "name",
    "spn": "name",
    "sync_external_id": "externalId",
    "external_id": "externalId",
    "externalId": "externalId",
    "mail": "mail",
    "gidnumber": "gidnumber",
}
"""Kanidm attribute (as a 409 names it) or plan key -> the wire key a release gives up."""

_EXCHANGE_REMEDY: Final = (
    "Kanidm checks uniqueness against what it holds before each request, and the runner "
    "frees such values in a first request only when its record shows the exchange. "
    "Remedy: remap, for one run, each entry that takes a value another entry of this "
    "account holds in Kanidm to a value nobody holds (a name such as <name>-sync, no mail, "
    "a free gidnumber), then remove those rules and run again"
)


def _exchange_note(record: bool, released: Mapping[uuid.UUID, Sequence[str]]) -> str:
    """What an unknown base means for values changing hands, and the remedy."""
    if released:
        seen = (
            f"the runner already retried with the values its local record (of another "
            f"cookie) shows changing hands released first ({len(released)} entries), but "
            "that record no longer describes what Kanidm holds"
        )
    elif record:
        seen = (
            "the runner's local record (of another cookie) shows no value changing hands "
            "between entries of this account, but it no longer describes what Kanidm holds"
        )
    else:
        seen = (
            "without a record of what Kanidm holds, the runner cannot see entries of this "
            "account exchanging values (a swap, a chain of renames)"
        )
    return f"{seen}. {_EXCHANGE_REMEDY}"


_DELETED_FIRST: Final = "this run already sent its deletions first"


def _refresh_remedy(record_path: bool) -> str:
    record = (
        "this runner keeps a record (state_path) but has none for this account yet (a first "
        "sync, or a lost record), so it cannot tell which"
        if record_path
        else "without a record (state_path) this runner cannot tell which"
    )
    return (
        f"{record}. If a native or foreign entry holds the value: remap the source entry "
        "(a new name) or exclude it; or, when it is the same person or group, delete or "
        "rename the native entry first. If instead the entry was deleted and re-created at "
        "the source (Kanidm sets external ids before its refresh cleanup deletes the old "
        "entry): exclude the re-created entries for one run, so the refresh deletes their "
        "old selves and Kanidm becomes Active, then remove the rule and run again"
        + ("" if record_path else "; with a state_path record the runner does this split itself")
        + ". If entries of this account exchange values: "
        + _EXCHANGE_REMEDY
    )


def _recreated(
    candidates: Sequence[Candidate],
    attr: str,
    deleting: Mapping[uuid.UUID, JSONObject],
    delete_first: bool,
    sources: Mapping[uuid.UUID, uuid.UUID],
    suspects: list[Suspect],
    notes: list[str],
) -> bool:
    """Suspect the entries whose ``attr`` value an entry deleted by the same run holds."""
    held: dict[str, uuid.UUID] = {}
    for eid, proj in deleting.items():
        for v in values_of(proj, attr):
            held.setdefault(v, eid)
    found = False
    for c in candidates:
        for v in values_of(c.projection, attr):
            other = held.get(v)
            if other is None or other == c.entry.id:
                continue
            suspects.append(
                suspect(
                    c,
                    f"{attr} {v!r} is held by {other}, which this run deletes: the entry was "
                    "deleted and re-created at the source (Kanidm checks uniqueness before it "
                    "deletes)",
                    attr,
                    sources,
                    [v],
                )
            )
            found = True
            break
    if found:
        notes.append(
            "the runner's delete-first request should have removed the old entry before this "
            "one; "
            + (
                "it was sent and committed, so the old entry was not live and owned by this "
                "account (check it in Kanidm)"
                if delete_first
                else "this plan was made without it (a plan built elsewhere, or a record "
                "that did not show the reuse): run again with runner.run_once(), which "
                "plans it"
            )
        )
    return found
