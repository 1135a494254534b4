"""ChangeSet: the request a sync tool sends to ``POST /scim/v1/Sync`` (spec §3.4).

Pure value; no I/O. JSON conversion lives in ``_codec.py``; the named constructors
here only forward to it.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

import attrs

from ._entries import Entry, _entry_label, _entry_summary, _short_urn
from ._state import REFRESH, RetainIgnore, RetentionMode, SyncState

if TYPE_CHECKING:
    from ._report import ValidationReport

__all__ = ["ChangeSet"]

_HTML_ROWS: Final = 50
"""At most this many entries go into the HTML table, so a 100k-entry ChangeSet renders fast."""


def _entries_tuple(values: Iterable[Entry]) -> tuple[Entry, ...]:
    return tuple(values)


@attrs.frozen(kw_only=True, repr=False)
class ChangeSet:
    """One atomic change to the entries a sync account owns, and its state transition.

    Kanidm applies it all or not at all: entries are created or fully replaced (every
    sync-owned attribute not sent is removed), then ``retain`` deletes, then Kanidm
    records ``to_state``. It is refused unless ``from_state`` is Kanidm's current state
    (a ``Refresh`` from_state is always accepted, and deletes every owned entry the
    ChangeSet does not list).

    Attributes:
        from_state: the state Kanidm must be in (what ``get_state()`` returned).
        to_state: the state Kanidm records on success (the source's new cookie).
        entries: entries to create or replace, in any order.
        retain: what to delete afterwards.
    """

    from_state: SyncState
    to_state: SyncState
    entries: tuple[Entry, ...] = attrs.field(default=(), converter=_entries_tuple)
    retain: RetentionMode = attrs.field(factory=RetainIgnore)

    @classmethod
    def need_refresh(cls, current: SyncState) -> ChangeSet:
        """The ChangeSet that asks Kanidm to forget its cookie (the next run refreshes).

        It carries no entries and deletes nothing, like the Rust proto's
        ``ScimSyncRequest::need_refresh``.

        Args:
            current: Kanidm's current state.

        Returns:
            ``from_state=current``, ``to_state=Refresh``, no entries, retain Ignore.
        """
        return cls(from_state=current, to_state=REFRESH, entries=(), retain=RetainIgnore())

    @classmethod
    def from_json(cls, data: str | bytes, *, strict: bool = False) -> ChangeSet:
        """Decode a ChangeSet from Kanidm's JSON.

        Args:
            data: the JSON text or UTF-8 bytes.
            strict: refuse unknown keys instead of ignoring them.

        Returns:
            The typed ChangeSet.

        Raises:
            DecodeError: with every problem found and its JSON path.
        """
        from ._codec import decode_changeset_json

        return decode_changeset_json(data, strict=strict)

    def to_json(self) -> bytes:
        """Encode to the exact bytes kanidmd's Rust tools would send (compact, ordered).

        Returns:
            UTF-8 JSON bytes.

        Raises:
            EncodeError: a value has no JSON form (a lone surrogate in a string).
        """
        from ._codec import encode_changeset_json

        return encode_changeset_json(self)

    def validate(self) -> ValidationReport:
        """Check everything Kanidm would reject that needs no server state.

        Returns:
            A report of every problem (errors and warnings); never raises for bad data.
        """
        from ._validate import validate_changeset

        return validate_changeset(self)

    def counts(self) -> dict[str, int]:
        """How many entries of each kind (class name) the ChangeSet carries."""
        return dict(Counter(type(e).__name__ for e in self.entries))

    def __repr__(self) -> str:
        counts = ", ".join(f"{n} {kind}" for kind, n in sorted(self.counts().items()))
        return (
            f"ChangeSet(from_state={self.from_state!r}, to_state={self.to_state!r}, "
            f"entries=<{len(self.entries)}{': ' + counts if counts else ''}>, "
            f"retain={self.retain!r})"
        )

    def _repr_html_(self) -> str:
        """An HTML summary for Jupyter: states, counts by kind, the first entries (no secrets)."""
        counts = ", ".join(f"{n} {kind}" for kind, n in sorted(self.counts().items()))
        head = (
            f"<p><b>ChangeSet</b>: {html.escape(repr(self.from_state))} &rarr; "
            f"{html.escape(repr(self.to_state))}, retain {html.escape(repr(self.retain))}</p>"
            f"<p>{len(self.entries)} entries{': ' + html.escape(counts) if counts else ''}</p>"
        )
        if not self.entries:
            return head
        columns = ("#", "kind", "name", "id", "external id", "schemas", "content")
        rows = []
        for index, entry in enumerate(self.entries[:_HTML_ROWS]):
            cells = (
                str(index),
                type(entry).__name__,
                _entry_label(entry),
                str(entry.id),
                entry.external_id or "",
                ", ".join(_short_urn(u) for u in entry.schemas),
                _entry_summary(entry),
            )
            rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
        more = len(self.entries) - _HTML_ROWS
        tail = f"<p>&hellip; and {more} more entries</p>" if more > 0 else ""
        header = "".join(f"<th>{c}</th>" for c in columns)
        return (
            f"{head}<table><thead><tr>{header}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>{tail}"
        )
