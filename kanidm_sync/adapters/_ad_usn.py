"""Change candidates by USN polling and by DirSync: which objects changed, which were deleted.

This module owns the two ways of asking a domain controller "what changed since the
cookie": polling ``uSNChanged`` (with the show-deleted control, so deletions show as
tombstones) and the DirSync control. Both return ids only; ``ad.py`` re-reads every
changed object in full, because DirSync sends only the changed attributes and Kanidm
replaces every sync-owned attribute of an entry it is sent. This module must not map
entries.

Both searches use an objectClass filter, not the configured user and group filters: a
tombstone keeps ``objectClass`` but loses ``objectCategory`` (which the default user
filter tests), so a filter on it would hide every deletion. The configured filters are
applied when the changed objects are re-read.

Importing it needs python-ldap (the ``ldap`` extra).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Final

import attrs

from ._ad_client import AdConnection
from ._ad_dirsync import DIRSYNC_INCREMENTAL_VALUES, DIRSYNC_OBJECT_SECURITY
from ._ad_map import AdObject, incremental_members

__all__ = ["CHANGE_FILTER", "Changes", "dirsync_changes", "dirsync_start", "usn_changes"]

_log = logging.getLogger("kanidm_sync.adapters.ad")

CHANGE_FILTER: Final = "(|(objectClass=user)(objectClass=group))"
"""Objects whose changes are tracked (live and tombstones alike)."""


@attrs.frozen
class Changes:
    """What changed since a cookie.

    Attributes:
        changed: ids of objects added, modified, renamed or moved.
        deleted: ids of deleted objects (tombstones).
        member_values: (added, removed) member values reported by DirSync's incremental
            values, summed over the changed groups; ``(0, 0)`` for USN polling.
    """

    changed: frozenset[uuid.UUID]
    deleted: frozenset[uuid.UUID]
    member_values: tuple[int, int] = (0, 0)


def _flags(object_security: bool) -> int:
    flags = DIRSYNC_INCREMENTAL_VALUES
    if object_security:
        flags |= DIRSYNC_OBJECT_SECURITY
    return flags


def dirsync_start(conn: AdConnection, naming_context: str, *, object_security: bool) -> bytes:
    """A DirSync cookie for "now", to continue from after a full read.

    Only ``isDeleted`` is asked for, so the DC returns just the tombstones (DirSync
    returns an object only when a requested attribute is set or changed); they are
    ignored: the full image is read with a paged search. The cookie is a watermark and
    does not depend on the attributes asked [inferred for Windows; observed on Samba].

    Raises:
        SourceError: DirSync failed (a missing replication right included).
    """
    _, cookie = conn.dirsync(
        naming_context, CHANGE_FILTER, ["isDeleted"], cookie=b"", flags=_flags(object_security)
    )
    return cookie


def dirsync_changes(
    conn: AdConnection,
    naming_context: str,
    attrlist: Sequence[str],
    *,
    cookie: bytes,
    object_security: bool,
) -> tuple[Changes, bytes]:
    """The changes since a DirSync cookie, and the new cookie.

    ``attrlist`` must hold every mapped attribute plus ``isDeleted`` (else a deletion is
    invisible), ``name`` and ``parentGUID`` (renames and moves): DirSync reports an
    object only when a requested attribute changed.

    Raises:
        RefreshNeeded: the DC refused the cookie.
        SourceError: DirSync failed.
    """
    raw, new_cookie = conn.dirsync(
        naming_context, CHANGE_FILTER, attrlist, cookie=cookie, flags=_flags(object_security)
    )
    changed: set[uuid.UUID] = set()
    deleted: set[uuid.UUID] = set()
    added = removed = 0
    for dn, attributes in raw:
        obj = AdObject(dn, attributes)
        if obj.is_deleted:
            deleted.add(obj.guid)
            continue
        changed.add(obj.guid)
        values = incremental_members(attributes)
        if values is not None:
            added += len(values[0])
            removed += len(values[1])
    return (
        Changes(frozenset(changed - deleted), frozenset(deleted), (added, removed)),
        new_cookie,
    )


def usn_changes(
    conn: AdConnection, naming_context: str, *, since_usn: int, page_size: int
) -> Changes:
    """The objects whose ``uSNChanged`` is above ``since_usn``, tombstones included.

    The caller reads ``highestCommittedUSN`` *before* this search and keeps it as the
    new watermark: a change made during the search is then read again next time
    (harmless) rather than lost.

    Raises:
        SourceError: the search failed.
    """
    filterstr = f"(&{CHANGE_FILTER}(uSNChanged>={since_usn + 1}))"
    changed: set[uuid.UUID] = set()
    deleted: set[uuid.UUID] = set()
    for dn, attributes in conn.paged(
        naming_context, filterstr, ["objectGUID", "isDeleted"], page_size=page_size, deleted=True
    ):
        obj = AdObject(dn, attributes)
        (deleted if obj.is_deleted else changed).add(obj.guid)
    return Changes(frozenset(changed - deleted), frozenset(deleted))
