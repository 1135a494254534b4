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
from typing import TYPE_CHECKING

from ._chunk import is_keep_alive
from ._diagnose_unique import Candidate, suspect, uniqueness_finding, unknown_base_note
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
from ._proto._state import DeleteOnly
from ._types import JSONObject, JSONValue

if TYPE_CHECKING:
    from ._rules import Rules

__all__ = ["Diagnosis", "Suspect", "diagnose"]


def _source_ids(rules: Rules | None) -> dict[uuid.UUID, uuid.UUID]:
    if rules is None:
        return {}
    return {remap.id: key for key, remap in rules.remap_ids.items() if remap.id is not None}


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
        Candidate(e, p, kind_of(p))
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
        notes.append(unknown_base_note(what))

    if isinstance(error, UniquenessError):
        found = uniqueness_finding(
            error,
            changeset.from_state,
            candidates,
            known=known,
            sources=sources,
            deleting=deleting or {},
            delete_first=delete_first,
            released=released or {},
            record_path=record_path,
            record=record,
        )
        summary, narrowed, attribute = found.summary, found.narrowed, found.attribute
        suspects.extend(found.suspects)
        notes.extend(found.notes)
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
                    suspect(c, "this runner deleted this id earlier; it is recycled", None, sources)
                )
        if suspects:
            narrowed = True
        elif base is not None:
            suspects = [
                suspect(c, "its id is new to this sync account", None, sources)
                for c in candidates
                if c.entry.id not in base
            ]
            narrowed = bool(suspects)
        else:
            unknown_base("")
            suspects = [suspect(c, "its id may exist in Kanidm", None, sources) for c in candidates]
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
                suspect(c, "totp_import without password_import", "totp_import", sources)
                for c in totp_only
            ]
            narrowed = True
        else:
            for c in candidates:
                for attr in ("password_import", "unix_password_import", "totp_import"):
                    if attr in c.projection:
                        suspects.append(suspect(c, f"carries {attr}", attr, sources))
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
                suspects.append(suspect(c, f"gidnumber {gid} is reserved", "gidnumber", sources))
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
                        suspect(c, f"references unknown UUID {ref_id}", "member", sources)
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
            suspect(c, "carries ssh_publickey", "ssh_publickey", sources)
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
                suspect(c, f"carries {attribute}", attribute, sources)
                for c in candidates
                if attribute in c.projection
            ]
            notes.append("run ChangeSet.validate() for the checks that need no server")
    # One suspect per entry: the first (most specific) reason wins (name before spn).
    unique: dict[uuid.UUID, Suspect] = {}
    for s in suspects:
        unique.setdefault(s.id, s)
    suspects = list(unique.values())
    # A suggested id or name must be new: not in the rules, the record or the request
    # (an id remapped before and recycled in turn must not be suggested again).
    taken_ids = {c.entry.id for c in candidates}
    taken_names = {n for c in candidates if (n := name_of(c.projection)) is not None}
    if known is not None:
        taken_ids.update(known.entries, known.deleted)
        taken_names.update(n for p in known.entries.values() if (n := name_of(p)) is not None)
    if rules is not None:
        taken_ids.update(rules.exclude_ids)
    in_force = rules.remap_ids if rules is not None else None

    def rules_text(some: Sequence[Suspect]) -> str:
        return rules_for(
            some, variant, in_force=in_force, taken_ids=taken_ids, taken_names=taken_names
        )

    several = len({s.source_id for s in suspects}) > 1
    return Diagnosis(
        error=variant,
        summary=summary,
        suspects=tuple(suspects),
        narrowed=narrowed,
        rules_toml=rules_text(suspects),
        notes=tuple(notes),
        rule_template=rules_text(suspects[:1]) if several and not narrowed else "",
    )


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
