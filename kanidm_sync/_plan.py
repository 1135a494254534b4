"""Plan: what one run will change in Kanidm, entry by entry, before anything is sent.

Owns: turning a source batch (after rules) and the *last known state* into per-entry
actions (create, update, delete, unchanged, or "create or replace" when the base is
unknown) with attribute-level RFC 6902 diffs, the ChangeSet(s) that carry them, and the
text, JSON and HTML renderings.

Must not: do I/O, log, read a clock, or talk to Kanidm. Pure; the runner feeds it.

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

Entries deleted and re-created at the source (a new UUID reusing the external id, name,
mail or gidnumber of an entry the same run deletes) make the plan send the deletions
first, in a request of their own (``Plan.delete_first``; docs/runner.md says why and how).

Secrets never enter a plan: password and TOTP imports are replaced by a SHA-256 digest salted
with the entry id before diffing, so a plan shows that a secret changed, never the secret.
"""

from __future__ import annotations

import hashlib
import html
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Final

import attrs

from ._chunk import (
    ChunkCookie,
    Split,
    chain_requests,
    external_references,
    has_references,
    is_keep_alive,
    keep_alive,
    split_changes,
)
from ._proto._changeset import ChangeSet
from ._proto._codec import dumps, encode_cookie, encode_entry, encode_sync_state
from ._proto._entries import (
    SECRET_ATTRIBUTES,
    Entry,
    GenericEntry,
    Group,
    Person,
    ServiceAccount,
)
from ._proto._state import (
    ActiveState,
    DeleteOnly,
    RefreshState,
    RetainIgnore,
    RetainOnly,
    RetentionMode,
    SyncState,
)
from ._types import JSONObject, JSONValue
from .adapters._protocols import Delta, FullImage

__all__ = [
    "PLACEHOLDER_EXTERNAL_ID",
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

_SECRET_MARK: Final = "salted-sha256:"

PLACEHOLDER_EXTERNAL_ID: Final = "kanidm-sync-pending:"
"""Prefix of the external id a refresh's delete-first request may give one entry for a
moment (followed by the entry's UUID); the next request of the same run replaces it."""


class Action(StrEnum):
    """What a run does to one entry."""

    CREATE = "create"
    """Not in the last known state: Kanidm creates it."""
    UPDATE = "update"
    """In the last known state with other values: Kanidm replaces its sync-owned attributes."""
    DELETE = "delete"
    """Kanidm deletes (recycles) it."""
    UNCHANGED = "unchanged"
    """Identical to the last known state: not sent."""
    REPLACE = "create-or-replace"
    """The last known state is unknown: Kanidm creates it or replaces it, the plan cannot tell."""


def _digest_secret(value: JSONValue, salt: bytes) -> str:
    # Salted with the entry's id: two accounts with the same password hash get different
    # digests, and no precomputed table applies. The digest only detects a change; the record
    # file that holds it is written with mode 0600.
    return _SECRET_MARK + hashlib.sha256(salt + dumps(value)).hexdigest()


def project_entry(entry: Entry) -> JSONObject:
    """The form an entry is diffed and recorded in: its wire JSON with secrets digested.

    Args:
        entry: any entry.

    Returns:
        The codec's JSON object, where each secret attribute (``password_import``,
        ``unix_password_import``, ``totp_import``) is replaced by ``"salted-sha256:<hex>"``,
        a SHA-256 of the value salted with the entry's id.
    """
    return _project(entry, encode_entry(entry))


def _raw_keys(entry: Entry) -> Iterable[str]:
    # Keys whose values the codec passes through as the user gave them (tuples, mappings).
    if isinstance(entry, GenericEntry):
        return entry.attributes.keys()
    return entry.extra.keys()


def _project(entry: Entry, encoded: JSONObject) -> JSONObject:
    # The codec may hand out tuples (schemas, raw values); the record comes back from JSON
    # with lists. Normalise so that equal entries compare equal across runs. The typed
    # attributes are already lists of dicts, so only the schemas and raw values need it.
    out = dict(encoded)
    schemas = out.get("schemas")
    if schemas is not None:
        out["schemas"] = _as_plain_json(schemas)
    for key in _raw_keys(entry):
        if key in out:
            out[key] = _as_plain_json(out[key])
    for name in SECRET_ATTRIBUTES.intersection(out):
        out[name] = _digest_secret(out[name], entry.id.bytes)
    return out


def _as_plain_json(value: JSONValue) -> JSONValue:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _as_plain_json(v) for k, v in value.items()}
    return [_as_plain_json(v) for v in value]


def _pointer(key: str) -> str:
    return "/" + key.replace("~", "~0").replace("/", "~1")


def diff_attributes(old: Mapping[str, JSONValue], new: Mapping[str, JSONValue]) -> list[JSONObject]:
    """Attribute-level RFC 6902 operations turning ``old`` into ``new``.

    One operation per attribute (``add``, ``remove`` or ``replace`` of the whole value):
    that is Kanidm's own granularity, since an apply replaces every sync-owned attribute.

    Args:
        old: the last known projection.
        new: the new projection.

    Returns:
        The operations, ``remove`` first, then ``add``/``replace`` in key order.
    """
    ops: list[JSONObject] = [
        {"op": "remove", "path": _pointer(k)} for k in sorted(old) if k not in new
    ]
    for key in sorted(new):
        if key not in old:
            ops.append({"op": "add", "path": _pointer(key), "value": new[key]})
        elif old[key] != new[key]:
            ops.append({"op": "replace", "path": _pointer(key), "value": new[key]})
    return ops


@attrs.frozen(repr=False)
class KnownState:
    """What this runner last applied successfully for one sync account.

    Attributes:
        cookie: the cookie Kanidm recorded with that apply; the record describes Kanidm
            only while Kanidm still holds exactly this cookie.
        entries: entry id -> projection (see :func:`project_entry`) of every entry the
            account owns.
        deleted: ids this runner deleted (Kanidm keeps them recycled, so re-using one
            fails with ``invalidentrystate``); most recent last, bounded.
    """

    cookie: bytes
    entries: Mapping[uuid.UUID, JSONObject] = attrs.field(factory=dict)
    deleted: tuple[uuid.UUID, ...] = ()

    def matches(self, state: SyncState) -> bool:
        """Whether this record describes Kanidm in ``state``."""
        return isinstance(state, ActiveState) and state.cookie == self.cookie

    def __repr__(self) -> str:
        return f"KnownState(<{len(self.entries)} entries>, cookie=<{len(self.cookie)} bytes>)"


def _kind(entry: Entry) -> str:
    if isinstance(entry, Person):
        return "person"
    if isinstance(entry, Group):
        return "group"
    if isinstance(entry, ServiceAccount):
        return "service_account"
    return "entry"


def _name_of(projection: Mapping[str, JSONValue]) -> str | None:
    name = projection.get("name")
    return name if isinstance(name, str) else None


def _ext_of(projection: Mapping[str, JSONValue]) -> str | None:
    ext = projection.get("externalId")
    return ext if isinstance(ext, str) else None


def _kind_of(projection: Mapping[str, JSONValue]) -> str:
    schemas = projection.get("schemas")
    names = {str(s).rsplit(":", 1)[-1] for s in schemas} if isinstance(schemas, list) else set()
    for kind in ("person", "group", "service_account"):
        if kind in names:
            return kind
    return "entry"


@attrs.frozen(kw_only=True)
class EntryChange:
    """One entry's part in a plan.

    Attributes:
        id: the Kanidm entry UUID.
        action: what happens to it.
        kind: ``"person"``, ``"group"``, ``"service_account"`` or ``"entry"``.
        name: its name, when known.
        external_id: its external id, when known.
        patch: RFC 6902 operations from the last known projection to the new one (only
            for :attr:`Action.UPDATE`); secrets appear as digests.
    """

    id: uuid.UUID
    action: Action
    kind: str
    name: str | None = None
    external_id: str | None = None
    patch: tuple[JSONObject, ...] = ()

    def to_dict(self) -> JSONObject:
        """This change as a JSON-ready dict (secrets masked as ``***``)."""
        out: JSONObject = {"id": str(self.id), "action": self.action.value, "kind": self.kind}
        if self.name is not None:
            out["name"] = self.name
        if self.external_id is not None:
            out["external_id"] = self.external_id
        if self.patch:
            out["patch"] = [_masked_op(op) for op in self.patch]
        return out

    def to_json(self, *, indent: int | None = 2) -> str:
        """This change as JSON text (secrets masked as ``***``).

        Args:
            indent: passed to :func:`json.dumps`; ``None`` for compact output.

        Returns:
            The JSON text.
        """
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def label(self) -> str:
        """A short human label: the name, else the external id, else the UUID."""
        return self.name or self.external_id or str(self.id)


def _masked_op(op: JSONObject) -> JSONObject:
    path = op.get("path")
    key = path[1:] if isinstance(path, str) else ""
    if key in SECRET_ATTRIBUTES and "value" in op:
        return {**op, "value": "***"}
    return dict(op)


def _short(value: JSONValue, limit: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe_op(op: JSONObject) -> str:
    path = str(op.get("path", ""))
    key = path[1:].replace("~1", "/").replace("~0", "~")
    kind = op.get("op")
    if kind == "remove":
        return f"-{key}"
    if key in SECRET_ATTRIBUTES:
        return f"{'+' if kind == 'add' else '~'}{key} (secret changed)"
    value = op.get("value")
    return f"{'+' if kind == 'add' else '~'}{key} = {_short(value)}"


@attrs.frozen(kw_only=True, repr=False)
class Plan:
    """What a run will send to Kanidm and what it changes, bound to ``from_state``.

    A plan is only valid while Kanidm is in :attr:`from_state`: the runner re-reads the
    state before applying it and refuses (:class:`~kanidm_sync.StateConflictError`) if it
    moved. Kanidm itself refuses each request whose ``from_state`` is stale.

    Attributes:
        from_state: Kanidm's state the plan was made from.
        to_state: the state Kanidm records when the whole plan is applied.
        source: ``"full"`` (the source gave every entry) or ``"delta"``.
        base_known: whether the diff base is what Kanidm holds (see the module doc).
        base_note: one sentence on where the diff base came from, or why it is unknown.
        changes: per-entry actions, sorted by action then label.
        retain: the retention rule the last request carries.
        deletions_known: whether every deletion is listed in :attr:`changes`; ``False``
            when Kanidm deletes by a rule the plan cannot evaluate (refresh cleanup, or
            ``RetainOnly`` against an unknown base).
        synced_before: how many entries the account held before, when known.
        source_count: how many entries the source holds (full images only).
        requests: the ChangeSets to send, in order (more than one when chunked).
        request_sizes: the encoded size of each request in bytes.
        resume_from: when a crashed chunked run is being finished, the index of the
            first request still to send (earlier ones are committed); else 0.
        notes: remarks for the operator (duplicates dropped, base unknown, ...).
        chunk_digest: identifies a chunked split in its intermediate cookies.
        projections: entry id -> projection of every entry the batch carried (what the
            local record stores once the plan committed).
        delete_first: the deletions are sent first, in a request of their own, because a
            sent entry reuses a unique value of an entry this run deletes (deleted and
            re-created at the source; see docs/runner.md).
        deleting: entry id -> last known projection of each entry this run deletes, as far
            as the local record tells (in Refresh, a record for an older cookie is used as
            a hint); what the diagnosis compares a 409 against.
    """

    from_state: SyncState
    to_state: SyncState
    source: str
    base_known: bool
    base_note: str
    changes: tuple[EntryChange, ...]
    retain: RetentionMode
    deletions_known: bool
    synced_before: int | None
    source_count: int | None
    requests: tuple[ChangeSet, ...]
    request_sizes: tuple[int, ...] = ()
    resume_from: int = 0
    notes: tuple[str, ...] = ()
    chunk_digest: str = ""
    projections: Mapping[uuid.UUID, JSONObject] = attrs.field(factory=dict, eq=False)
    delete_first: bool = False
    deleting: Mapping[uuid.UUID, JSONObject] = attrs.field(factory=dict, eq=False)

    @property
    def counts(self) -> dict[str, int]:
        """How many entries get each action (every :class:`Action` is present)."""
        out = {a.value: 0 for a in Action}
        for change in self.changes:
            out[change.action.value] += 1
        return out

    @property
    def pending_requests(self) -> tuple[ChangeSet, ...]:
        """The requests still to send (all of them unless a chunked run is resumed)."""
        return self.requests[self.resume_from :]

    @property
    def deletes(self) -> tuple[EntryChange, ...]:
        """The listed deletions."""
        return tuple(c for c in self.changes if c.action is Action.DELETE)

    @property
    def is_noop(self) -> bool:
        """Nothing to create, change or delete, and Kanidm already holds ``to_state``."""
        busy = any(c.action is not Action.UNCHANGED for c in self.changes)
        return not busy and self.deletions_known and self.from_state == self.to_state

    def to_dict(self) -> JSONObject:
        """The plan as a JSON-ready dict (what :meth:`to_json` serialises)."""
        return {
            "from_state": encode_sync_state(self.from_state),
            "to_state": encode_sync_state(self.to_state),
            "source": self.source,
            "base_known": self.base_known,
            "base_note": self.base_note,
            "deletions_known": self.deletions_known,
            "synced_before": self.synced_before,
            "source_count": self.source_count,
            "counts": dict(self.counts),
            "retain": _retain_json(self.retain),
            "requests": len(self.requests),
            "request_sizes": list(self.request_sizes),
            "resume_from": self.resume_from,
            "delete_first": self.delete_first,
            "notes": list(self.notes),
            "changes": [c.to_dict() for c in self.changes],
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        """The plan as JSON text (secrets appear as ``***``).

        Args:
            indent: passed to :func:`json.dumps`; ``None`` for compact output.

        Returns:
            The JSON text.
        """
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def to_text(self, *, show_unchanged: bool = False) -> str:
        """The plan for a terminal: a summary, then one line per changed entry.

        Args:
            show_unchanged: also list unchanged entries.

        Returns:
            Multi-line text.
        """
        counts = self.counts
        summary = ", ".join(f"{n} {a}" for a, n in counts.items() if n)
        lines = [
            f"Plan: {self.source} source, {summary or 'no entries'}",
            f"  from {_state_text(self.from_state)} to {_state_text(self.to_state)}"
            + (f", {len(self.requests)} requests" if len(self.requests) > 1 else ""),
            f"  base: {self.base_note}",
        ]
        if not self.deletions_known:
            lines.append(f"  deletions: decided by Kanidm ({_retain_text(self.retain)})")
        lines.extend(f"  note: {n}" for n in self.notes)
        sign = {
            Action.CREATE: "+",
            Action.UPDATE: "~",
            Action.DELETE: "-",
            Action.REPLACE: "*",
            Action.UNCHANGED: "=",
        }
        for change in self.changes:
            if change.action is Action.UNCHANGED and not show_unchanged:
                continue
            lines.append(f"{sign[change.action]} {change.kind} {change.label()} ({change.id})")
            lines.extend(f"      {_describe_op(op)}" for op in change.patch)
        return "\n".join(lines)

    def to_html(self) -> str:
        """The plan as an HTML fragment (a summary and a table), values escaped."""
        counts = self.counts
        head = ", ".join(f"{n} {html.escape(a)}" for a, n in counts.items() if n)
        rows = []
        for change in self.changes:
            if change.action is Action.UNCHANGED:
                continue
            ops = "<br>".join(html.escape(_describe_op(op)) for op in change.patch)
            rows.append(
                "<tr>"
                + "".join(
                    f"<td>{html.escape(v)}</td>"
                    for v in (change.action.value, change.kind, change.label(), str(change.id))
                )
                + f"<td>{ops}</td></tr>"
            )
        return (
            f"<p><b>Plan</b>: {head or 'no entries'}; base: {html.escape(self.base_note)}</p>"
            "<table><thead><tr><th>action</th><th>kind</th><th>entry</th><th>id</th>"
            f"<th>changes</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        )

    def _repr_html_(self) -> str:
        return self.to_html()

    def __repr__(self) -> str:
        counts = ", ".join(f"{n} {a}" for a, n in self.counts.items() if n)
        return (
            f"Plan(from_state={self.from_state!r}, to_state={self.to_state!r}, "
            f"<{counts or 'empty'}>, requests={len(self.requests)})"
        )


def _state_text(state: SyncState) -> str:
    if isinstance(state, RefreshState):
        return "Refresh"
    text = encode_cookie(state.cookie)
    # Cookies often share a long prefix (a source name, a version): keep the distinct end.
    shown = text if len(text) <= 24 else text[:8] + "..." + text[-13:]
    return f"Active (cookie {shown}, {len(state.cookie)} bytes)"


def _retain_json(retain: RetentionMode) -> JSONValue:
    if isinstance(retain, RetainIgnore):
        return "Ignore"
    if isinstance(retain, RetainOnly):
        return {"Retain": len(retain.ids)}
    return {"Delete": len(retain.ids)}


def _retain_text(retain: RetentionMode) -> str:
    if isinstance(retain, RetainIgnore):
        return "refresh cleanup of every owned entry not sent"
    if isinstance(retain, RetainOnly):
        return f"keep only the {len(retain.ids)} listed ids"
    return f"delete {len(retain.ids)} listed ids"


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
    delete_first: bool = False,
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
        delete_first: send the deletions first even when no reuse of a unique value is
            visible (the runner's retry after a 409 over an unknown base). Only possible
            from an Active state with deletions; ignored otherwise. Without it, deletions
            go first only when a sent entry reuses a unique value of a deleted entry.

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
                deleted_ids = set(base) - keep
            else:
                retain = RetainOnly(sorted(keep, key=str))  # Kanidm decides what goes
        elif base is not None:
            # Only ids Kanidm holds for us: deleting a live foreign entry fails the apply.
            deleted_ids = explicit & set(base)
        else:
            deleted_ids = explicit  # listed exactly; some may already be gone
            deletions_known = True
        if base is not None or batch.present is None:
            retain = DeleteOnly(sorted(deleted_ids, key=str)) if deleted_ids else RetainIgnore()
    elif base is not None:
        deleted_ids = set(base) - {e.id for e in entries}
        retain = DeleteOnly(sorted(deleted_ids, key=str)) if deleted_ids else RetainIgnore()
    elif not refresh:
        retain = RetainOnly(sorted((e.id for e in entries), key=str))
    # else: Refresh, the refresh cleanup deletes every owned id not sent (§4.4).

    changes: list[EntryChange] = []
    to_send: list[Entry] = []
    projected: dict[uuid.UUID, JSONObject] = {}
    sizes: list[int] = []
    for entry in entries:
        encoded = encode_entry(entry)
        proj = projected[entry.id] = _project(entry, encoded)
        old = base.get(entry.id) if base is not None else None
        patch: tuple[JSONObject, ...] = ()
        if base is None:
            action = Action.REPLACE
        elif old is None:
            action = Action.CREATE
        elif old == proj:
            action = Action.UNCHANGED
        else:
            action, patch = Action.UPDATE, tuple(diff_attributes(old, proj))
        if action is not Action.UNCHANGED or send_unchanged:
            to_send.append(entry)
            sizes.append(len(dumps(encoded)))
        changes.append(
            EntryChange(
                id=entry.id,
                action=action,
                kind=_kind(entry),
                name=_name_of(proj),
                external_id=entry.external_id,
                patch=patch,
            )
        )
    if base is not None:
        _resend_referrers(entries, changes, to_send, sizes)
    for gone in deleted_ids:
        old = base.get(gone) if base is not None else None
        changes.append(
            EntryChange(
                id=gone,
                action=Action.DELETE,
                kind=_kind_of(old) if old is not None else "entry",
                name=_name_of(old) if old is not None else None,
                external_id=_ext_of(old) if old is not None else None,
            )
        )

    to_state: SyncState = ActiveState(batch.cookie)
    # Deleted and re-created at the source: Kanidm sets external ids and checks names,
    # mails and gidnumbers before it deletes (§4.3-§4.6), so an entry reusing a unique
    # value of an entry deleted in the same apply fails with 409. In Refresh the local
    # record of an older cookie (after a force refresh) is only a hint of what the
    # account holds: good enough to see the reuse, never used as a diff base.
    hint = base
    if hint is None and refresh and known is not None:
        hint = known.entries
    image = {e.id for e in entries}
    if base is not None:
        doomed = {d: base[d] for d in deleted_ids if d in base}
    elif refresh and hint is not None:
        doomed = {d: p for d, p in hint.items() if d not in image}
    else:
        doomed = {}
    reusers = _reusers(to_send, projected, doomed)
    units = _swap_units(to_send, projected, hint) if hint is not None else None
    first = None
    if refresh and reusers:
        first = _refresh_pre_delete(to_send, projected, hint or {}, reusers, entries)
    elif (
        not refresh
        and to_send
        and not isinstance(retain, RetainIgnore)
        and (reusers or delete_first)
    ):
        first = ((), retain)
    if first is not None:
        split = _delete_first_split(
            base_state=base_state,
            to_state=to_state,
            first=first,
            to_send=to_send,
            sizes=sizes,
            units=units,
            retain=retain if not refresh else RetainIgnore(),
            max_bytes=max_request_bytes,
        )
        what = "the refresh cleanup runs" if refresh else "the deletions go"
        notes.append(
            f"{len(reusers)} entries reuse a name, external id, mail or gidnumber of an entry "
            f"this run deletes (deleted and re-created at the source): {what} first, in a "
            "request of their own"
            if reusers
            else "the deletions go first, in a request of their own (retry after a conflict)"
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
            units=units,
        )
    if len(split.requests) > 1 and first is None:
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
        delete_first=first is not None,
        deleting=doomed,
    )


def _resend_referrers(
    entries: Sequence[Entry],
    changes: Sequence[EntryChange],
    to_send: list[Entry],
    sizes: list[int],
) -> None:
    """Send again the unchanged entries that reference a new entry by its external id.

    Kanidm resolves an external id when the referencing entry is applied, and drops one
    that matches no live entry (spec §3.9.1). So when an entry is created under an
    external id (deleted and re-created at the source under a new UUID, or named by a
    group before it existed), an unchanged group naming it would keep pointing at the
    old entry (which referential integrity then removes) or at nothing.
    """
    created = {
        c.external_id.lower() for c in changes if c.action is Action.CREATE and c.external_id
    }
    if not created:
        return
    unchanged = {c.id for c in changes if c.action is Action.UNCHANGED}
    for entry in entries:
        if entry.id in unchanged and any(r in created for r in external_references(entry)):
            to_send.append(entry)
            sizes.append(len(dumps(encode_entry(entry))))


def _reusers(
    to_send: Sequence[Entry],
    projected: Mapping[uuid.UUID, JSONObject],
    doomed: Mapping[uuid.UUID, JSONObject],
) -> set[int]:
    """Positions of sent entries taking a unique value held by an entry being deleted."""
    held = {pair: d for d, p in doomed.items() for pair in _unique_values(p)}
    return {
        n
        for n, e in enumerate(to_send)
        if any(held.get(pair, e.id) != e.id for pair in _unique_values(projected[e.id]))
    }


def _refresh_pre_delete(
    to_send: Sequence[Entry],
    projected: Mapping[uuid.UUID, JSONObject],
    hint: Mapping[uuid.UUID, JSONObject],
    reusers: set[int],
    image: Sequence[Entry],
) -> tuple[Sequence[Entry], RetentionMode]:
    """The first request of a refresh whose cleanup must run before re-created entries.

    From Refresh, an apply deletes every owned entry it does not list (§4.4), and one
    with entries but no external id is refused (``emptyrequest``, §4.3). So the request
    lists every id of the image as a keep-alive, except one *anchor* sent whole: an
    entry with an external id, no references (they could not resolve yet), and unique
    values that, per the record, no other entry holds, so it cannot collide. Without
    such an entry, one keep-alive carries a placeholder external id instead.
    """
    holders: dict[tuple[str, str], set[uuid.UUID]] = {}
    for eid, proj in hint.items():
        for pair in _unique_values(proj):
            holders.setdefault(pair, set()).add(eid)
    anchor: Entry | None = None
    for n, entry in enumerate(to_send):
        if n in reusers or not entry.external_id or has_references(entry):
            continue
        if all(holders.get(p, set()) <= {entry.id} for p in _unique_values(projected[entry.id])):
            anchor = entry
            break
    ids = sorted({e.id for e in image}, key=str)
    if anchor is not None:
        return (anchor, *(keep_alive(u) for u in ids if u != anchor.id)), RetainIgnore()
    # Every entry reuses a value (a re-seeded directory) or none can stand alone. One
    # keep-alive then carries a placeholder external id made from its own UUID, which no
    # other entry can hold; a later request of the chain sets the real one. A new id is
    # preferred, so that no existing entry's external id changes even for a moment.
    # [inferred: no kanidmd test sends an empty schema list with an external id; the
    # stub only gets sync_external_id, which its sync_object class allows]
    fresh = [u for u in ids if u not in hint]
    holder = (fresh or ids)[0]
    return (
        tuple(
            GenericEntry(id=u, schemas=(), external_id=f"{PLACEHOLDER_EXTERNAL_ID}{u}")
            if u == holder
            else keep_alive(u)
            for u in ids
        ),
        RetainIgnore(),
    )


def _delete_first_split(
    *,
    base_state: SyncState,
    to_state: SyncState,
    first: tuple[Sequence[Entry], RetentionMode],
    to_send: Sequence[Entry],
    sizes: Sequence[int],
    units: Sequence[int] | None,
    retain: RetentionMode,
    max_bytes: int,
) -> Split:
    """The deletions (or refresh cleanup) first, then the entries from a chunk cookie.

    The later requests go from an intermediate cookie, so they are split as from an
    Active state (no keep-alives); the final one keeps the retention rule too (deleting
    what is already recycled is ignored, §4.6), which keeps a restarted run correct.
    """
    sent_first = {e.id for e in first[0] if not is_keep_alive(e)}
    keep = [n for n, e in enumerate(to_send) if e.id not in sent_first]
    rest = [(to_send[n], sizes[n]) for n in keep]
    probe = ActiveState(ChunkCookie(digest="0" * 32, index=1, total=2, base=base_state).encode())
    # 64 bytes of headroom: the final chain's cookies may have more digits than the probe.
    rest_split = split_changes(
        from_state=probe,
        to_state=to_state,
        entries=[e for e, _ in rest],
        retain=retain,
        max_bytes=max_bytes - 64,
        sizes=[s for _, s in rest],
        units=None if units is None else [units[n] for n in keep],
    )
    parts = [first, *((r.entries, r.retain) for r in rest_split.requests)]
    return chain_requests(
        from_state=base_state, to_state=to_state, parts=parts, max_bytes=max_bytes
    )


_UNIQUE_KEYS: Final = ("name", "externalId", "gidnumber", "mail")


def _unique_values(projection: Mapping[str, JSONValue]) -> Iterable[tuple[str, str]]:
    # The values Kanidm keeps unique server-wide (spec §3.9.2, §4.3), lower-cased where
    # Kanidm compares them case-insensitively.
    for key in _UNIQUE_KEYS:
        value = projection.get(key)
        if isinstance(value, str):
            yield key, value.lower()
        elif isinstance(value, int) and not isinstance(value, bool):
            yield key, str(value)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict) and isinstance(item.get("value"), str):
                    yield key, str(item["value"]).lower()


def _swap_units(
    to_send: Sequence[Entry],
    projected: Mapping[uuid.UUID, JSONObject],
    base: Mapping[uuid.UUID, JSONObject],
) -> list[int]:
    """Group sent entries that take a unique value another sent entry gives up."""
    parent = list(range(len(to_send)))

    def find(n: int) -> int:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    old_holder: dict[tuple[str, str], int] = {}
    for n, entry in enumerate(to_send):
        old = base.get(entry.id)
        if old is not None:
            for pair in _unique_values(old):
                old_holder[pair] = n
    for n, entry in enumerate(to_send):
        for pair in _unique_values(projected[entry.id]):
            other = old_holder.get(pair)
            if other is not None and other != n:
                parent[find(n)] = find(other)
    return [find(n) for n in range(len(to_send))]


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
        table = dict(plan.projections)
        return KnownState(cookie=plan.to_state.cookie, entries=table, deleted=history)
    if not plan.base_known or known is None:
        return None
    table = dict(known.entries)
    table.update(plan.projections)
    for gone in deleted:
        table.pop(gone, None)
    return KnownState(cookie=plan.to_state.cookie, entries=table, deleted=history)


_MAX_DELETED: Final = 50_000
