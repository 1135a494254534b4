"""Sync states and retention modes: the two small enums of the sync protocol.

Pure values; no I/O, no clock, no logging.

Theory of operation
-------------------
A sync account in Kanidm is in one of two states (spec §3.2, §4.8):

* **Refresh** (:class:`RefreshState`): Kanidm holds no cookie. The next apply must say
  ``from_state=Refresh`` and should carry a full image of the source: Kanidm deletes every
  entry the account owns that the apply does not list (the "refresh cleanup", §4.4).
  A new account starts here; an admin's force-refresh and a ChangeSet whose
  ``to_state`` is Refresh move the account back here.
* **Active** (:class:`ActiveState`): Kanidm holds the opaque cookie bytes of the last
  successful apply. The cookie is the *source's* bookmark (an LDAP syncrepl cookie, a
  USN, a snapshot digest); Kanidm never interprets it, it only compares it byte for byte
  with the ``from_state`` of the next apply. A mismatch is "invalidsyncstate".

Every successful apply records its ``to_state``; a failed one changes nothing. The
cookie may be empty and may repeat: Kanidm sets no rule on it.

A :data:`RetentionMode` says what an apply deletes after writing its entries (§3.3):
nothing (:class:`RetainIgnore`), every owned entry not listed (:class:`RetainOnly`), or
exactly the listed ones (:class:`DeleteOnly`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Final, TypeAlias

import attrs

__all__ = [
    "REFRESH",
    "ActiveState",
    "DeleteOnly",
    "RefreshState",
    "RetainIgnore",
    "RetainOnly",
    "RetentionMode",
    "SyncState",
]


def _as_uuid(value: uuid.UUID | str) -> uuid.UUID:
    """Convert an entry id (a UUID, or its text in any form Python parses) to a UUID.

    Shared by the entries and the retention modes: both hold entry ids.
    """
    if isinstance(value, uuid.UUID):
        return value
    if not isinstance(value, str):
        raise TypeError(f"an entry id must be a UUID or a str, not {type(value).__name__}")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ValueError(f"an entry id must be a UUID, not {value!r}") from None


def _uuid_tuple(values: Iterable[uuid.UUID | str]) -> tuple[uuid.UUID, ...]:
    if isinstance(values, str | bytes):
        raise TypeError("expected an iterable of UUIDs, not a single string")
    return tuple(_as_uuid(v) for v in values)


def _cookie_bytes(value: bytes | bytearray | memoryview) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise TypeError(f"a cookie is bytes, not {type(value).__name__}")
    return bytes(value)


@attrs.frozen
class RefreshState:
    """Kanidm holds no cookie: the next apply is a full refresh (wire ``"Refresh"``)."""

    def __repr__(self) -> str:
        return "RefreshState()"


@attrs.frozen
class ActiveState:
    """Kanidm holds ``cookie``, the bookmark of the last applied change.

    Attributes:
        cookie: the source's opaque bookmark, compared byte for byte by Kanidm.
    """

    cookie: bytes = attrs.field(converter=_cookie_bytes)

    def __repr__(self) -> str:
        # A cookie is not a secret, but it can be long (an LDAP cookie holds the filter).
        shown = self.cookie if len(self.cookie) <= 48 else self.cookie[:45] + b"..."
        return f"ActiveState(cookie={shown!r})"


SyncState: TypeAlias = RefreshState | ActiveState
"""The state of a sync account: :class:`RefreshState` or :class:`ActiveState`."""

REFRESH: Final = RefreshState()
"""The one Refresh state value (all ``RefreshState()`` values are equal anyway)."""


@attrs.frozen
class RetainIgnore:
    """Delete nothing after applying the entries (wire ``"Ignore"``)."""

    def __repr__(self) -> str:
        return "RetainIgnore()"


@attrs.frozen
class RetainOnly:
    """After applying, delete every owned entry whose id is not listed (wire ``Retain``).

    An empty list deletes every entry the sync account owns, including entries sent in
    the same ChangeSet.

    Attributes:
        ids: the entry ids to keep, in the order they go on the wire.
    """

    ids: tuple[uuid.UUID, ...] = attrs.field(converter=_uuid_tuple)


@attrs.frozen
class DeleteOnly:
    """After applying, delete exactly the listed entries (wire ``Delete``).

    Ids that exist nowhere, or only in the recycle bin, are ignored by Kanidm; a live
    entry that the sync account does not own makes the whole apply fail.

    Attributes:
        ids: the entry ids to delete, in the order they go on the wire.
    """

    ids: tuple[uuid.UUID, ...] = attrs.field(converter=_uuid_tuple)


RetentionMode: TypeAlias = RetainIgnore | RetainOnly | DeleteOnly
"""What an apply deletes: :class:`RetainIgnore`, :class:`RetainOnly` or :class:`DeleteOnly`."""
