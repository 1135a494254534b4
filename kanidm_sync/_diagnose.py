"""Conflict diagnosis: which entries can have made Kanidm reject a ChangeSet, and what to do.

Owns: :func:`diagnose` (pure: an error, the request that failed and the last known state
in; a :class:`Diagnosis` out, whose value class and rules text live in ``_diagnosis``).

Must not: talk to Kanidm. Kanidm's error names a check (and for a 409 the attributes), never
the entry, and it applies all or nothing. Narrowing the culprit down by sending subsets
("bisection") would *commit* every subset that passes, half-applying the batch under a
cookie that does not describe it; so the narrowing uses only local knowledge:

* the failing request's own values (two entries with one name collide in the request);
* the error's detail (the conflicting attribute, the attribute named in a conversion
  error);
* the last known state: an entry id or a unique value this runner never sent before is
  what can collide with something Kanidm holds outside this sync account (a native entry,
  another sync account), an id this runner deleted is in Kanidm's recycle bin;
* checks that need no server (gidnumber ranges, a TOTP without a password).

When the base is known (Kanidm holds the cookie of the last run this runner recorded),
this usually names one entry: exactly the new or changed one. When it is not, the
diagnosis lists every candidate and says that it could not narrow further.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Final

import attrs

from ._chunk import is_keep_alive
from ._diagnosis import Diagnosis, Suspect, rules_for
from ._exceptions import (
    APIStatusError,
    CredentialImportError,
    GidNumberRangeError,
    InvalidEntryStateError,
    OwnershipError,
    PermissionDeniedError,
    ReferentialIntegrityError,
    SshPublicKeyError,
    UniquenessError,
)
from ._projection import KnownState, kind_of, name_of, project_entry
from ._proto._changeset import ChangeSet
from ._proto._checks import gidnumber_allowed
from ._proto._entries import Entry
from ._proto._state import DeleteOnly, RefreshState
from ._types import JSONObject, JSONValue

if TYPE_CHECKING:
    from ._rules import Rules

__all__ = ["Diagnosis", "Suspect", "diagnose"]


@attrs.frozen
class _Candidate:
    entry: Entry
    projection: JSONObject
    kind: str


def _values(projection: Mapping[str, JSONValue], attribute: str) -> list[str]:
    # The values Kanidm compares for uniqueness, lower-cased where Kanidm lower-cases.
    if attribute in ("name", "spn"):
        value = projection.get("name")
        return [value.lower()] if isinstance(value, str) else []
    if attribute in ("sync_external_id", "external_id"):
        value = projection.get("externalId")
        return [value.lower()] if isinstance(value, str) else []
    raw = projection.get(attribute)
    items = raw if isinstance(raw, list) else [] if raw is None else [raw]
    out: list[str] = []
    for item in items:
        if isinstance(item, dict):
            value = item.get("value")
            if isinstance(value, str):
                out.append(value.lower())
        elif isinstance(item, str | int) and not isinstance(item, bool):
            out.append(str(item).lower())
    return out


def _source_ids(rules: Rules | None) -> dict[uuid.UUID, uuid.UUID]:
    if rules is None:
        return {}
    return {remap.id: key for key, remap in rules.remap_ids.items() if remap.id is not None}


def _suspect(
    c: _Candidate, reason: str, attribute: str | None, sources: Mapping[uuid.UUID, uuid.UUID]
) -> Suspect:
    return Suspect(
        id=c.entry.id,
        source_id=sources.get(c.entry.id, c.entry.id),
        kind=c.kind,
        name=name_of(c.projection),
        external_id=c.entry.external_id,
        reason=reason,
        attribute=attribute,
    )


def _detail_attribute(detail: JSONValue) -> str | None:
    # "Unsupported attribute conversion - member", {"invalidattributesyntax": "name"},
    # {"missingmustattribute": ["displayname"]}
    if isinstance(detail, str):
        return detail.rsplit(" - ", 1)[-1].strip() if " - " in detail else detail.strip()
    if isinstance(detail, dict) and len(detail) == 1:
        inner = next(iter(detail.values()))
        if isinstance(inner, str):
            return inner
        if isinstance(inner, list) and inner and isinstance(inner[0], str):
            return inner[0]
    return None


def diagnose(
    error: APIStatusError,
    changeset: ChangeSet,
    *,
    known: KnownState | None = None,
    rules: Rules | None = None,
    deleting: Mapping[uuid.UUID, JSONObject] | None = None,
    delete_first: bool = False,
    released: Mapping[uuid.UUID, Sequence[str]] | None = None,
    record_path: bool = False,
    record: bool = False,
) -> Diagnosis:
    """Map Kanidm's rejection of ``changeset`` to the entries that can cause it.

    Args:
        error: the exception the client raised for the apply.
        changeset: the request Kanidm rejected (for a chunked run, the failing chunk).
        known: the last known state *that matches Kanidm's current cookie*, or ``None``.
        rules: the rules in use, so suggested rules are keyed by source UUIDs.
        deleting: last known projections of the entries the same run deletes
            (:attr:`~kanidm_sync.Plan.deleting`): a 409 on a value one of them holds
            means an entry was deleted and re-created at the source.
        delete_first: whether the run sent its deletions first
            (:attr:`~kanidm_sync.Plan.delete_first`).
        released: the entries the run sent first with temporary values, and the wire
            keys they gave up (:attr:`~kanidm_sync.Plan.released`): those values no
            longer count as held by them.
        record_path: whether the runner keeps a local record (``state_path``), so the
            remedy does not advise keeping one.
        record: whether the runner had a local record at all (for any cookie), which
            it uses as a hint of the values entries of the account exchange.

    Returns:
        The diagnosis; ``suspects`` is empty when the error is not about the data.
    """
    variant = error.variant or f"HTTP {error.status_code}"
    sources = _source_ids(rules)
    candidates = [
        _Candidate(e, p, kind_of(p))
        for e in changeset.entries
        if not is_keep_alive(e)
        for p in (project_entry(e),)
    ]
    base = known.entries if known is not None else None
    notes: list[str] = []
    suspects: list[Suspect] = []
    narrowed = False
    attribute: str | None = None

    def unknown_base(what: str) -> None:
        notes.append(
            f"the last known state is unknown, so every entry {what} is a candidate; "
            "Kanidm does not say which entry failed"
        )

    if isinstance(error, UniquenessError):
        # kanidmd lists one attribute per conflicting value (["name", "name", "spn",
        # "spn"] for a swap of two names): each attribute once is what matters here.
        names = tuple(dict.fromkeys(error.conflicting_attributes)) or ("name",)
        listed = ", ".join(names)
        gave_up = {
            (eid, _ATTRIBUTE_KEYS.get(k, k)) for eid, keys in (released or {}).items() for k in keys
        }
        # Kanidm reports name and spn together (the spn is derived from the name): one
        # cause, one summary, one note, whatever the number of attributes.
        summary = f"a value of {listed} is already used by another entry"
        recycled_note = False
        guesses: list[Suspect] = []
        for attr in names:
            attribute = attribute or attr
            holders: dict[str, list[_Candidate]] = {}
            for c in candidates:
                for v in _values(c.projection, attr):
                    holders.setdefault(v, []).append(c)
            dups = {v: cs for v, cs in holders.items() if len(cs) > 1}
            for v, cs in dups.items():
                for c in cs:
                    others = ", ".join(str(o.entry.id) for o in cs if o is not c)
                    suspects.append(
                        _suspect(c, f"{attr} {v!r} is also sent for {others}", attr, sources)
                    )
            if dups:
                narrowed = True
                continue
            if _recreated(candidates, attr, deleting or {}, delete_first, sources, suspects, notes):
                narrowed = True
                summary = (
                    f"a value of {attr} is still held by an entry this run deletes: it was "
                    "deleted and re-created at the source"
                )
                continue
            if isinstance(changeset.from_state, RefreshState) and base is None:
                if not recycled_note:
                    recycled_note = True
                    summary = _REFRESH_SUMMARY.format(attrs=listed)
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
                    for v in _values(p, attr):
                        if released_here:
                            freed.add(v)
                        else:
                            held.setdefault(v, set()).add(eid)
                sent = {c.entry.id for c in candidates}
                for c in candidates:
                    for v in _values(c.projection, attr):
                        owners = held.get(v, set()) - {c.entry.id}
                        if v in freed and v not in held:
                            continue  # its holder in this account let go of it
                        if v not in held:
                            # A value this account never held may be held outside it; the
                            # runner cannot see outside, so this is a possibility.
                            guesses.append(
                                _suspect(
                                    c,
                                    f"{attr} {v!r} is new to this sync account, so another "
                                    "Kanidm entry (native or of another sync account) may "
                                    "hold it",
                                    attr,
                                    sources,
                                )
                            )
                        elif owners - sent:
                            # Certain: the record says this account holds it elsewhere.
                            other = sorted(str(o) for o in owners - sent)[0]
                            suspects.append(
                                _suspect(
                                    c,
                                    f"{attr} {v!r} is still held by {other} of this sync "
                                    "account, which this request does not change",
                                    attr,
                                    sources,
                                )
                            )
                        else:
                            continue
                        break
            else:
                if not any(n.startswith("the last known state is unknown") for n in notes):
                    unknown_base(f"carrying {listed}")
                    if not isinstance(changeset.from_state, RefreshState):
                        notes.append(_exchange_note(record, released or {}))
                guesses.extend(
                    _suspect(
                        c,
                        f"{attr} {_values(c.projection, attr)[0]!r} may be held by another "
                        "entry (Kanidm does not say which value collided)",
                        attr,
                        sources,
                    )
                    for c in candidates
                    if _values(c.projection, attr)
                )
        if base is not None and not narrowed:
            certain = bool(suspects)
            unique_guesses = {g.id for g in guesses}
            # Over an exact base, a lone entry with a new value is the only one that can
            # collide with something outside the account: then it is certain too.
            narrowed = certain or len(unique_guesses) == 1
            if len(unique_guesses) > 1:
                notes.append(
                    f"{len(unique_guesses)} entries carry values new to this sync account and "
                    "any of them may be the one Kanidm refused (it does not say which): check "
                    "which of these names or values already exist in Kanidm before pasting a "
                    "rule, and apply it only to those"
                )
            elif len(unique_guesses) == 1 and not certain:
                g = guesses[0]
                guesses = [
                    attrs.evolve(
                        g,
                        reason=g.reason.replace(
                            "may hold it",
                            "holds it (the only value of the request new to this account)",
                        ),
                    )
                ]
        suspects.extend(guesses)
    elif isinstance(error, OwnershipError | InvalidEntryStateError):
        recycled = set(known.deleted) if known is not None else set()
        if isinstance(error, OwnershipError):
            summary = "an entry id exists in Kanidm but does not belong to this sync account"
        else:
            summary = (
                "an entry id is in Kanidm's recycle bin (or the entry carries an attribute "
                "or schema the account does not own)"
            )
        for c in candidates:
            if c.entry.id in recycled:
                suspects.append(
                    _suspect(
                        c, "this runner deleted this id earlier; it is recycled", None, sources
                    )
                )
        if suspects:
            narrowed = True
        elif base is not None:
            suspects = [
                _suspect(c, "its id is new to this sync account", None, sources)
                for c in candidates
                if c.entry.id not in base
            ]
            narrowed = bool(suspects)
        else:
            unknown_base("")
            suspects = [
                _suspect(c, "its id may exist in Kanidm", None, sources) for c in candidates
            ]
    elif isinstance(error, CredentialImportError):
        summary = "a password or TOTP import could not be converted"
        attribute = "password_import"
        totp_only = [
            c
            for c in candidates
            if "totp_import" in c.projection and "password_import" not in c.projection
        ]
        if totp_only and "totp" in str(error.detail):
            attribute = "totp_import"
            suspects = [
                _suspect(c, "totp_import without password_import", "totp_import", sources)
                for c in totp_only
            ]
            narrowed = True
        else:
            for c in candidates:
                for attr in ("password_import", "unix_password_import", "totp_import"):
                    if attr in c.projection:
                        suspects.append(_suspect(c, f"carries {attr}", attr, sources))
                        break
            if base is None:
                unknown_base("with an import")
            else:
                notes.append("only entries new or changed since the last run are sent")
    elif isinstance(error, GidNumberRangeError):
        summary = "a gidnumber is in a range Kanidm reserves"
        attribute = "gidnumber"
        for c in candidates:
            gid = c.projection.get("gidnumber")
            if isinstance(gid, int) and not gidnumber_allowed(gid):
                suspects.append(_suspect(c, f"gidnumber {gid} is reserved", "gidnumber", sources))
        narrowed = bool(suspects)
    elif isinstance(error, ReferentialIntegrityError):
        summary = "a member (or provider) UUID refers to no entry in Kanidm"
        attribute = "member"
        ids = {c.entry.id for c in candidates} | (set(base) if base is not None else set())
        for c in candidates:
            for ref in _references(c.projection):
                try:
                    ref_id = uuid.UUID(ref)
                except ValueError:
                    continue
                if ref_id not in ids:
                    suspects.append(
                        _suspect(c, f"references unknown UUID {ref_id}", "member", sources)
                    )
                    break
        if base is None and suspects:
            notes.append(
                "a referenced UUID may still be a native Kanidm entry; the others are certain"
            )
        narrowed = bool(suspects) and base is not None
    elif isinstance(error, SshPublicKeyError):
        summary = "an SSH public key did not parse"
        attribute = "ssh_publickey"
        suspects = [
            _suspect(c, "carries ssh_publickey", "ssh_publickey", sources)
            for c in candidates
            if "ssh_publickey" in c.projection
        ]
    elif isinstance(error, PermissionDeniedError) and isinstance(changeset.retain, DeleteOnly):
        summary = "the delete list names a live entry this sync account does not own"
        for gone in changeset.retain.ids:
            if base is None or gone not in base:
                suspects.append(
                    Suspect(
                        id=gone,
                        source_id=sources.get(gone, gone),
                        kind="entry",
                        name=None,
                        external_id=None,
                        reason="deleted by the source but not owned by this account",
                    )
                )
        narrowed = base is not None and bool(suspects)
    else:
        attribute = _detail_attribute(error.detail)
        summary = f"Kanidm refused the content ({variant})"
        if attribute:
            suspects = [
                _suspect(c, f"carries {attribute}", attribute, sources)
                for c in candidates
                if attribute in c.projection
            ]
            notes.append("run ChangeSet.validate() for the checks that need no server")
    # One suspect per entry: the first (most specific) reason wins (name before spn).
    unique: dict[uuid.UUID, Suspect] = {}
    for s in suspects:
        unique.setdefault(s.id, s)
    suspects = list(unique.values())
    return Diagnosis(
        error=variant,
        summary=summary,
        suspects=tuple(suspects),
        narrowed=narrowed,
        rules_toml=rules_for(suspects, variant),
        notes=tuple(notes),
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
    candidates: Sequence[_Candidate],
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
        for v in _values(proj, attr):
            held.setdefault(v, eid)
    found = False
    for c in candidates:
        for v in _values(c.projection, attr):
            other = held.get(v)
            if other is None or other == c.entry.id:
                continue
            suspects.append(
                _suspect(
                    c,
                    f"{attr} {v!r} is held by {other}, which this run deletes: the entry was "
                    "deleted and re-created at the source (Kanidm checks uniqueness before it "
                    "deletes)",
                    attr,
                    sources,
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


def _references(projection: Mapping[str, JSONValue]) -> Iterable[str]:
    members = projection.get("member")
    if isinstance(members, list):
        for item in members:
            if isinstance(item, dict):
                ref = item.get("external_id")
                if isinstance(ref, str):
                    yield ref
    provider = projection.get("oauth2_account_provider")
    if isinstance(provider, str):
        yield provider
