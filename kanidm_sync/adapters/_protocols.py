"""What a source returns and the protocols a source implements.

Pure values and protocols; no I/O. Adapters return values, they receive no callbacks
(../STYLE.md §3.9). Also the two small pieces the directory sources share: ``with``
support (:class:`Closeable`) and reading the source cookie out of Kanidm's state
(:func:`position`).
"""

from __future__ import annotations

import types
import uuid
from collections.abc import Iterable
from typing import Protocol, Self, TypeAlias, runtime_checkable

import attrs

from .._proto._entries import Entry
from .._proto._state import ActiveState, RefreshState, SyncState

__all__ = [
    "AsyncSourceAdapter",
    "Delta",
    "FullImage",
    "RefreshRequired",
    "SourceAdapter",
    "SourceBatch",
]


def _entries(values: Iterable[Entry]) -> tuple[Entry, ...]:
    return tuple(values)


def _ids(values: Iterable[uuid.UUID | str]) -> tuple[uuid.UUID, ...]:
    return tuple(v if isinstance(v, uuid.UUID) else uuid.UUID(v) for v in values)


def _optional_ids(values: Iterable[uuid.UUID | str] | None) -> tuple[uuid.UUID, ...] | None:
    return None if values is None else _ids(values)


def _cookie(value: bytes | bytearray) -> bytes:
    if not isinstance(value, bytes | bytearray):
        raise TypeError(f"a cookie is bytes, not {type(value).__name__}")
    return bytes(value)


class Closeable:
    """``with`` support for the directory sources and connections: leaving calls ``close``."""

    def close(self) -> None:
        """Release resources. Each fetch uses its own connection: nothing to do."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.close()


def position(state: SyncState) -> bytes | None:
    """The source cookie Kanidm holds, or ``None`` when a fetch must send a full image.

    Shared by the directory sources (LDAP, FreeIPA, Active Directory).

    Args:
        state: Kanidm's current sync state.

    Returns:
        The cookie; ``None`` in Refresh and for an empty cookie (it holds no position:
        asking a server with it is a full refresh that looks like an incremental one).

    Raises:
        TypeError: ``state`` is not a sync state.
    """
    if isinstance(state, RefreshState):
        return None
    if isinstance(state, ActiveState):
        return state.cookie or None
    raise TypeError(f"expected a SyncState, not {type(state).__name__}")


def _optional_count(inst: object, attribute: attrs.Attribute[int | None], value: object) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
        raise TypeError(f"Delta.{attribute.name} must be None or a non-negative int, not {value!r}")


@attrs.frozen(kw_only=True, repr=False)
class FullImage:
    """Every entry the source holds now, and the cookie that marks this point.

    Attributes:
        entries: every entry, each with its full content.
        cookie: the source's bookmark for this image; becomes Kanidm's ``to_state``.
    """

    entries: tuple[Entry, ...] = attrs.field(converter=_entries)
    cookie: bytes = attrs.field(converter=_cookie)

    def __repr__(self) -> str:
        return f"FullImage(<{len(self.entries)} entries>, cookie=<{len(self.cookie)} bytes>)"


@attrs.frozen(kw_only=True, repr=False)
class Delta:
    """The changes since the cookie Kanidm holds.

    Attributes:
        entries: added or changed entries, each with its *full* content (Kanidm replaces
            every sync-owned attribute of an entry it is sent).
        deleted: ids of entries deleted at the source.
        present: when not ``None``, the ids of *every* entry still present at the source
            (an RFC 4533 present phase); entries Kanidm holds that are not listed here
            nor in ``entries`` are deleted.
        cookie: the source's new bookmark; becomes Kanidm's ``to_state``.
        total: when not ``None``, how many entries the source holds once this delta is
            applied (a :class:`~kanidm_sync.adapters.SnapshotAdapter` knows; a directory's
            change feed usually does not). The runner's guards use it to tell how much
            of the account a delta deletes when it has no local record.
    """

    entries: tuple[Entry, ...] = attrs.field(default=(), converter=_entries)
    deleted: tuple[uuid.UUID, ...] = attrs.field(default=(), converter=_ids)
    present: tuple[uuid.UUID, ...] | None = attrs.field(default=None, converter=_optional_ids)
    cookie: bytes = attrs.field(converter=_cookie)
    total: int | None = attrs.field(default=None, validator=_optional_count)

    def __repr__(self) -> str:
        present = "None" if self.present is None else f"<{len(self.present)} ids>"
        return (
            f"Delta(<{len(self.entries)} entries>, deleted=<{len(self.deleted)} ids>, "
            f"present={present}, cookie=<{len(self.cookie)} bytes>)"
        )


@attrs.frozen
class RefreshRequired:
    """The source cannot continue from Kanidm's cookie; a full refresh is needed.

    Attributes:
        reason: why, for the operator (``"syncrepl: e-syncRefreshRequired"``).
    """

    reason: str = ""


SourceBatch: TypeAlias = FullImage | Delta | RefreshRequired
"""What a source answers: :class:`FullImage`, :class:`Delta` or :class:`RefreshRequired`."""


@runtime_checkable
class SourceAdapter(Protocol):
    """A blocking source of entries.

    Given Kanidm's current state, return what changed. With a
    :class:`~kanidm_sync.RefreshState`, return a :class:`FullImage`. With an
    :class:`~kanidm_sync.ActiveState` whose cookie the source understands, return a
    :class:`Delta`; when it cannot continue from that cookie, return
    :class:`RefreshRequired` (or a :class:`FullImage`). Raise
    :class:`~kanidm_sync.SourceError` on failure.
    """

    def fetch(self, state: SyncState) -> SourceBatch:
        """Return the changes since ``state``.

        Args:
            state: Kanidm's current sync state.

        Returns:
            A batch of changes.

        Raises:
            SourceError: reading the source failed.
        """
        ...


@runtime_checkable
class AsyncSourceAdapter(Protocol):
    """An async source of entries: :class:`SourceAdapter` with an awaited ``fetch``."""

    async def fetch(self, state: SyncState) -> SourceBatch:
        """Return the changes since ``state``.

        Args:
            state: Kanidm's current sync state.

        Returns:
            A batch of changes.

        Raises:
            SourceError: reading the source failed.
        """
        ...
