"""How the in-memory Kanidm holds an entry, and how it shows one.

Owns: the mutable entry of the store's tables (:class:`MutEntry`), the read-only view tests
get (:class:`StoredEntry`), token sessions, the rendering of stored values, and the keys an
entry holds in the uniqueness index (:func:`unique_keys`). Must not: hold the tables or
decide anything about an apply.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Final, Literal

import attrs

from ._schema_table import UNIQUE_ATTRS
from ._values import Credential, SshKeyValue

__all__ = [
    "EntryState",
    "MutEntry",
    "StoredEntry",
    "StoredValue",
    "TokenSession",
    "fingerprint_value",
    "render",
    "render_datetime",
    "unique_keys",
]

EntryState = Literal["live", "recycled", "tombstone"]
StoredValue = str | int | bool
"""A value as :class:`StoredEntry` renders it (Kanidm's own string rendering for most)."""


@attrs.frozen
class TokenSession:
    """One value of ``sync_token_session`` (the token itself lives in the HTTP half).

    Attributes:
        token_id: the token UUID the JWS names.
        label: the label given at generation.
        issued_at: when it was issued (UTC).
        issued_by: the UUID of the admin who generated it.
    """

    token_id: uuid.UUID
    label: str
    issued_at: datetime
    issued_by: uuid.UUID

    def render(self) -> str:
        """The v1 rendering: ``<token uuid>: <debug dump of the session>`` (opaque)."""
        return (
            f"{self.token_id}: ApiToken {{ label: {json.dumps(self.label)}, expiry: None, "
            f"issued_at: {render_datetime(self.issued_at)}, issued_by: {self.issued_by}, "
            f"scope: Synchronise }}"
        )


@attrs.frozen
class StoredEntry:
    """A read-only view of one stored entry.

    Attributes:
        uuid: the entry UUID.
        classes: the entry's classes.
        attrs: attribute name to values in Kanidm's rendering (``uuid`` and ``class``
            included; ``memberof``/``directmemberof`` derived for live entries; the sync
            cookie shown as ``private_binary``; no secret ever appears).
        state: ``live``, ``recycled`` or ``tombstone``.
    """

    uuid: uuid.UUID
    classes: frozenset[str]
    attrs: Mapping[str, tuple[StoredValue, ...]]
    state: EntryState

    def get(self, attr: str) -> tuple[StoredValue, ...]:
        """All values of ``attr`` (empty when absent)."""
        return self.attrs.get(attr, ())

    def first(self, attr: str) -> StoredValue | None:
        """The first value of ``attr``, or ``None``."""
        values = self.attrs.get(attr, ())
        return values[0] if values else None

    @property
    def name(self) -> str | None:
        """The entry's ``name``, if any."""
        value = self.first("name")
        return value if isinstance(value, str) else None


# --- internal representation ---------------------------------------------------------------


class MutEntry:
    """A mutable stored entry. Attribute values are kept in insertion order, deduplicated."""

    __slots__ = ("attrs", "classes", "state", "uuid")

    def __init__(
        self,
        uid: uuid.UUID,
        classes: set[str],
        attrs_: dict[str, list[object]],
        state: EntryState = "live",
    ) -> None:
        self.uuid = uid
        self.classes = classes
        self.attrs = attrs_
        self.state: EntryState = state

    def clone(self) -> MutEntry:
        return MutEntry(
            self.uuid, set(self.classes), {k: list(v) for k, v in self.attrs.items()}, self.state
        )

    def first(self, attr: str) -> object | None:
        values = self.attrs.get(attr)
        return values[0] if values else None

    def set(self, attr: str, values: Iterable[object]) -> None:
        vals = list(dict.fromkeys(values))
        if vals:
            self.attrs[attr] = vals
        else:
            self.attrs.pop(attr, None)

    def add(self, attr: str, value: object) -> None:
        values = self.attrs.setdefault(attr, [])
        if value not in values:
            values.append(value)

    def owner(self) -> object | None:
        return self.first("sync_parent_uuid") if "sync_object" in self.classes else None


def render_datetime(value: datetime) -> str:
    value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text + "Z"


def render(value: object) -> StoredValue:
    if isinstance(value, str | int | bool):
        return value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return render_datetime(value)
    if isinstance(value, SshKeyValue):
        return f"{value.label}: {value.key}"
    if isinstance(value, Credential | TokenSession):
        return value.render()
    if isinstance(value, bytes):
        return "private_binary"
    return str(value)


def fingerprint_value(value: object) -> str:
    # Like _render, but secrets contribute through digests so that two different
    # cookies or credentials never compare equal.
    if isinstance(value, bytes):
        return "bytes:" + hashlib.sha256(value).hexdigest()
    if isinstance(value, Credential):
        return f"cred:{value.kind}:{value.digest}:{','.join(value.totp_labels)}"
    return f"{type(value).__name__}:{render(value)}"


INDEXED: Final = tuple(a for a in UNIQUE_ATTRS if a != "uuid")


def unique_keys(entry: MutEntry) -> list[tuple[str, object]]:
    attrs_ = entry.attrs
    keys = [(attr, v) for attr in INDEXED if attr in attrs_ for v in attrs_[attr]]
    if "sync_token_session" in attrs_:
        # Token sessions are indexed by their token id (what §4.1 looks up).
        keys = [(a, v.token_id if isinstance(v, TokenSession) else v) for a, v in keys]
    return keys
