"""The plan as a value: what one run will change, entry by entry, and its renderings.

Owns: :class:`Action`, :class:`EntryChange` and :class:`Plan` (what ``_plan.build_plan``
produces and the runner applies), and their text, JSON and HTML renderings.

Must not: do I/O, log, read a clock, or talk to Kanidm; nor plan anything (``_plan``).

Secrets never appear: per-entry patches carry digests of password and TOTP imports (see
``_projection``), and every rendering masks them as ``***`` or "secret changed".
"""

from __future__ import annotations

import html
import json
import types
import uuid
from collections.abc import Mapping
from enum import StrEnum
from typing import Final

import attrs

from ._proto._changeset import ChangeSet
from ._proto._codec import encode_cookie, encode_sync_state
from ._proto._entries import SECRET_ATTRIBUTES
from ._proto._state import RefreshState, RetainIgnore, RetainOnly, RetentionMode, SyncState
from ._types import JSONObject, JSONValue

__all__ = ["Action", "EntryChange", "Plan"]


#: No value changes (the default of :attr:`EntryChange.values_added` / ``values_removed``).
NO_VALUES: Final[Mapping[str, tuple[JSONValue, ...]]] = types.MappingProxyType({})


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
        values_added: for each multi-valued attribute the patch changes (``member``,
            ``mail``, ``ssh_publickey``), the values it gains, in the new order.
        values_removed: for each such attribute, the values it loses.
    """

    id: uuid.UUID
    action: Action
    kind: str
    name: str | None = None
    external_id: str | None = None
    patch: tuple[JSONObject, ...] = ()
    # The default is one shared read-only empty mapping, not two dicts per entry.
    values_added: Mapping[str, tuple[JSONValue, ...]] = attrs.field(default=NO_VALUES)
    values_removed: Mapping[str, tuple[JSONValue, ...]] = attrs.field(default=NO_VALUES)

    def to_dict(self) -> JSONObject:
        """This change as a JSON-ready dict (secrets masked as ``***``)."""
        out: JSONObject = {"id": str(self.id), "action": self.action.value, "kind": self.kind}
        if self.name is not None:
            out["name"] = self.name
        if self.external_id is not None:
            out["external_id"] = self.external_id
        if self.patch:
            out["patch"] = [_masked_op(op) for op in self.patch]
        if self.values_added:
            out["values_added"] = {k: list(v) for k, v in self.values_added.items()}
        if self.values_removed:
            out["values_removed"] = {k: list(v) for k, v in self.values_removed.items()}
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

    def describe(self) -> list[str]:
        """One line per attribute change, and per value of a multi-valued attribute.

        A changed member list reads ``+ member uid=carol,...`` and ``- member uid=bob,...``,
        at most 10 values each way per attribute, then a count of the rest; other
        attributes read ``~displayname = "New"``, ``+key = ...`` or ``-key``; secrets read
        "secret changed".
        """
        lines: list[str] = []
        for op in self.patch:
            key = _op_key(op)
            added = self.values_added.get(key, ())
            removed = self.values_removed.get(key, ())
            if not (added or removed) or key in SECRET_ATTRIBUTES:
                lines.append(_describe_op(op))
                continue
            lines.extend(f"+ {key} {_value_label(v)}" for v in added[:_MAX_VALUES])
            lines.extend(f"- {key} {_value_label(v)}" for v in removed[:_MAX_VALUES])
            more = [
                f"{n:,} more {way}"
                for n, way in (
                    (len(added) - _MAX_VALUES, "added"),
                    (len(removed) - _MAX_VALUES, "removed"),
                )
                if n > 0
            ]
            if more:
                now = op.get("value")
                total = f" ({len(now):,} {key} values now)" if isinstance(now, list) else ""
                lines.append(f"  ... and {', '.join(more)}{total}")
        return lines


def _masked_op(op: JSONObject) -> JSONObject:
    path = op.get("path")
    key = path[1:] if isinstance(path, str) else ""
    if key in SECRET_ATTRIBUTES and "value" in op:
        return {**op, "value": "***"}
    return dict(op)


def _short(value: JSONValue, limit: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 3] + "..."


_MAX_VALUES: Final = 10
"""Values listed per attribute and direction in a plan's text; the rest are counted."""


def _op_key(op: JSONObject) -> str:
    path = str(op.get("path", ""))
    return path[1:].replace("~1", "/").replace("~0", "~")


def _value_label(value: JSONValue) -> str:
    # {"external_id": "uid=bob,..."} -> uid=bob,...; {"value": "a@x", "primary": true}
    # -> a@x (primary=true); anything else as compact JSON.
    if isinstance(value, Mapping):
        main = value.get("value", value.get("external_id"))
        if isinstance(main, str):
            rest = ", ".join(
                f"{k}={_short(v, 40)}"
                for k, v in value.items()
                if k not in ("value", "external_id")
            )
            text = f"{main} ({rest})" if rest else main
            return text if len(text) <= 80 else text[:77] + "..."
    if isinstance(value, str):
        return value if len(value) <= 80 else value[:77] + "..."
    return _short(value)


def _describe_op(op: JSONObject) -> str:
    key = _op_key(op)
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
            local record stores once the plan committed). From 10,000 entries they are
            kept as JSON text, and reading an entry decodes it (a fresh dict each time).
        delete_first: the deletions (from Refresh: the refresh cleanup) go in the first
            request, before the entries, because a sent entry reuses a unique value of an
            entry this run deletes (deleted and re-created at the source), or because the
            runner retries after a conflict (see docs/runner.md).
        deleting: entry id -> last known projection of each entry this run deletes, as far
            as the local record tells (in Refresh, a record for an older cookie is used as
            a hint); what the diagnosis compares a 409 against.
        released: entry id -> wire keys (``name``, ``externalId``, ``mail``,
            ``gidnumber``) of each entry that gives a value up to another sent entry and
            is therefore sent first with temporary values (a *release*; see
            docs/runner.md, "Swaps").
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
    released: Mapping[uuid.UUID, tuple[str, ...]] = attrs.field(factory=dict, eq=False)

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
            "released": {str(k): list(v) for k, v in self.released.items()},
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
            lines.append(
                f"{sign[change.action]} {change.kind} {change.label()} ({change.id})"
                + self._release_mark(change.id)
            )
            lines.extend(f"      {line}" for line in change.describe())
        return "\n".join(lines)

    def _release_mark(self, entry_id: uuid.UUID) -> str:
        keys = self.released.get(entry_id)
        if not keys:
            return ""
        return " [released first: " + ", ".join(_KEY_LABELS.get(k, k) for k in keys) + "]"

    def to_html(self) -> str:
        """The plan as an HTML fragment (a summary, the notes and a table), values escaped."""
        counts = self.counts
        head = ", ".join(f"{n} {html.escape(a)}" for a, n in counts.items() if n)
        rows = []
        for change in self.changes:
            if change.action is Action.UNCHANGED:
                continue
            ops = "<br>".join(html.escape(line) for line in change.describe())
            mark = self._release_mark(change.id)
            rows.append(
                "<tr>"
                + "".join(
                    f"<td>{html.escape(v)}</td>"
                    for v in (change.action.value, change.kind, change.label(), str(change.id))
                )
                + f"<td>{ops}{'<br>' if ops and mark else ''}{html.escape(mark.strip())}</td></tr>"
            )
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
        return (
            f"<p><b>Plan</b>: {head or 'no entries'}; base: {html.escape(self.base_note)}</p>"
            + (f"<ul>{notes}</ul>" if notes else "")
            + "<table><thead><tr><th>action</th><th>kind</th><th>entry</th><th>id</th>"
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


_KEY_LABELS: Final = {"externalId": "external id"}
