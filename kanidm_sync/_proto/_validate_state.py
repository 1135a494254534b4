"""The state of one ChangeSet validation pass, and how it records problems.

Owns :class:`_ValidatorBase`: the entry being checked (index, id, external id), the
cross-entry indexes (external ids, names, mails, gidnumbers, member references) and the
two reporting primitives every check uses: :meth:`~_ValidatorBase.add` (one
:class:`~kanidm_sync.Problem`) and :meth:`~_ValidatorBase.text` (control characters in a
UTF-8 value). Also the constants the other ``_validate*`` modules share. Pure: no I/O.
The checks build on this class in ``_validate_values.py`` (per-value checks),
``_validate_schema.py`` (generic entries and attributes against the schema) and
``_validate.py`` (the entry walk and the cross-entry checks).
"""

from __future__ import annotations

import re
import uuid
from typing import Final

from ._changeset import ChangeSet
from ._report import Problem, Severity
from ._schema import Schema

__all__ = ["_ValidatorBase"]

_ERROR: Final = Severity.ERROR
_WARNING: Final = Severity.WARNING

# C0 controls and DEL are refused by kanidmd; C1 (0x80-0x9f) only warned about. One
# search finds either; the rare hit is then told apart.
_ANY_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_C0_RE: Final = re.compile(r"[\x00-\x1f\x7f]")
_HAS_CONTROL: Final = _ANY_CONTROL_RE.search

_U32_MAX: Final = 0xFFFFFFFF

_POSIX_CLASS: Final = "posixaccount"


class _ValidatorBase:
    """The state of one validation pass (indexes for the cross-entry checks)."""

    def __init__(self, cs: ChangeSet, schema: Schema) -> None:
        self.cs = cs
        self.schema = schema
        self.problems: list[Problem] = []
        # Context of the entry being checked; Problem() reads these.
        self.index: int | None = None
        self.entry_id: uuid.UUID | None = None
        self.external_id: str | None = None
        # Cross-entry indexes: key -> index of the first entry that holds it.
        self.external_ids: dict[str, int] = {}
        self.names: dict[str, int] = {}
        self.mail_index: dict[str, int] = {}
        self.mails_folded: dict[str, int] = {}
        self.gids: dict[int, int] = {}
        # (entry index, position, reference) of every member reference.
        self.members: list[tuple[int, int, str]] = []
        self.kept = True  # whether kanidmd keeps the current entry (last with its id)
        self.owned_cache: dict[frozenset[str], frozenset[str]] = {}

    # --- reporting -----------------------------------------------------------------------

    def add(self, severity: Severity, code: str, message: str, field: str | None = None) -> None:
        self.problems.append(
            Problem(
                severity=severity,
                code=code,
                message=message,
                index=self.index,
                entry_id=self.entry_id,
                external_id=self.external_id,
                field=field,
            )
        )

    def text(self, value: str, field: str) -> None:
        """Control characters in one UTF-8 string value (spec §3.9.2)."""
        if _ANY_CONTROL_RE.search(value) is None:
            return
        if _C0_RE.search(value) is not None:
            self.add(
                _ERROR,
                "value.control_chars",
                "contains a line break, tab or other control character; kanidmd refuses it",
                field,
            )
        else:
            # Rust's [[:cntrl:]] is ASCII-only, so kanidmd stores C1 characters.
            self.add(
                _WARNING,
                "value.control_chars",
                "contains a C1 control character (U+0080-U+009F), probably mis-decoded text",
                field,
            )

    def at(self, i: int) -> None:
        e = self.cs.entries[i]
        self.index, self.entry_id, self.external_id = i, e.id, e.external_id
