"""Active Directory source: DirSync or USN change tracking (the ``ldap`` extra).

:class:`AdSource` reads users and groups from one Active Directory (or Samba AD) domain
controller and implements :class:`~kanidm_sync.adapters.SourceAdapter`:
``fetch(state)`` returns a :class:`~kanidm_sync.adapters.FullImage` when Kanidm is in
Refresh, a :class:`~kanidm_sync.adapters.Delta` of the changes since the cookie Kanidm
holds, or :class:`~kanidm_sync.adapters.RefreshRequired` when that cookie cannot be
continued from (another source's cookie, another DC's, a changed configuration, one older
than the tombstone lifetime).

Two ways of tracking changes (``mode`` in :class:`AdConfig`):

* ``"dirsync"``: the DirSync control; the cookie is the DC's own DirSync cookie. Needs
  the "Replicating Directory Changes" right (or ``dirsync_object_security``).
* ``"usn"``: polling ``uSNChanged`` with the show-deleted control; the cookie holds the
  DC's invocationId and highest committed USN. Needs only read access.

Deletions are read from tombstones. An account that cannot read the Deleted Objects
container sees none, so the source then lists every id in scope on each incremental run
(a present list: Kanidm deletes what is not listed) rather than miss a deletion.

Either way the changed objects are then re-read in full (paged, ``member`` by range
retrieval), because Kanidm replaces every sync-owned attribute of an entry it is sent.
A deleted user or group vanishes from its groups' member lists *without* any change on
those groups (observed on Samba), so when a batch holds a deletion every group in scope
is re-read and sent; the runner's plan then sends only the groups whose member list
really changed.

This module owns the fetch flow; it must not talk to Kanidm. See docs/ad.md.

Needs python-ldap: ``pip install 'kanidm-sync[ldap]'``.
"""

from __future__ import annotations

from ._ldap_config import _needs_python_ldap

try:
    import ldap as _python_ldap  # noqa: F401 - the import guard
except ImportError as _exc:  # pragma: no cover - exercised in a subprocess test
    raise _needs_python_ldap(__name__) from _exc

import datetime as _dt
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Final

import attrs

from .._proto._state import SyncState
from ._ad_client import AdConnection, RootInfo
from ._ad_config import (
    DEFAULT_GROUP_FILTER,
    DEFAULT_USER_FILTER,
    AdAttributeMap,
    AdConfig,
    load_ad_config,
)
from ._ad_cookie import DirSyncCookie, UsnCookie, decode_cookie, encode_cookie
from ._ad_map import (
    AdMapped,
    AdObject,
    filetime_to_rfc3339,
    guid_filter,
    guid_to_uuid,
    incremental_members,
    kanidm_name,
    map_ad_object,
    map_ad_objects,
)
from ._ad_usn import Changes, dirsync_changes, dirsync_start, usn_changes
from ._ldap_client import RefreshNeeded
from ._protocols import Closeable, Delta, FullImage, RefreshRequired, SourceBatch, position

__all__ = [
    "DEFAULT_GROUP_FILTER",
    "DEFAULT_USER_FILTER",
    "AdAttributeMap",
    "AdConfig",
    "AdFetchStats",
    "AdObject",
    "AdSource",
    "filetime_to_rfc3339",
    "guid_to_uuid",
    "incremental_members",
    "kanidm_name",
    "load_ad_config",
    "map_ad_object",
    "map_ad_objects",
]

_log = logging.getLogger("kanidm_sync.adapters.ad")

_GUID_CHUNK: Final = 100
_BASE_ATTRIBUTES: Final = (
    "objectGUID",
    "objectClass",
    "objectSid",
    "isCriticalSystemObject",
    "sAMAccountName",
    "cn",
    "name",
    "userAccountControl",
    "accountExpires",
    "member",
)


@attrs.frozen(kw_only=True)
class AdFetchStats:
    """Figures of the last :meth:`AdSource.fetch`, for logs and benchmarks.

    Attributes:
        kind: ``"full"``, ``"delta"`` or ``"refresh-required"``.
        mode: ``"dirsync"`` or ``"usn"``.
        objects_read: objects read in full from the directory.
        changed: objects the change search reported as changed.
        deleted: objects the change search reported as deleted.
        entries: entries returned.
        member_values: member values DirSync's incremental values reported added and
            removed (``(0, 0)`` for USN polling).
        groups_reread: whether every group was re-read because of a deletion.
        present_scan: whether every id in scope was listed because the account cannot
            read tombstones (see docs/ad.md).
        read_seconds: time spent reading the directory.
        map_seconds: time spent mapping objects to entries.
    """

    kind: str
    mode: str
    objects_read: int = 0
    changed: int = 0
    deleted: int = 0
    entries: int = 0
    member_values: tuple[int, int] = (0, 0)
    groups_reread: bool = False
    present_scan: bool = False
    read_seconds: float = 0.0
    map_seconds: float = 0.0


class AdSource(Closeable):
    """An Active Directory domain controller as a sync source.

    Implements :class:`~kanidm_sync.adapters.SourceAdapter`. Each :meth:`fetch` opens
    its own connection. The cookie Kanidm keeps is prefixed (see docs/ad.md), so the
    source tells a DirSync cookie from a USN cookie and from anything else.

    Args:
        config: the configuration (:func:`load_ad_config`).
        clock: returns the current time (for the tombstone-lifetime check); tests pass
            their own.

    Attributes:
        config: the configuration.
        last_stats: figures of the last fetch, or ``None`` before the first.
    """

    def __init__(
        self, config: AdConfig, *, clock: Callable[[], _dt.datetime] | None = None
    ) -> None:
        self.config = config
        self.last_stats: AdFetchStats | None = None
        self._warned_present = False
        self._clock = clock or (lambda: _dt.datetime.now(_dt.UTC))
        names = dict.fromkeys([*_BASE_ATTRIBUTES, *config.attributes.ldap_names()])
        self._read_attributes = tuple(names)
        # DirSync reports an object only when a requested attribute changed: ask every
        # mapped one, isDeleted (deletions), name and parentGUID (renames and moves).
        self._dirsync_attributes = (*names, "isDeleted", "parentGUID")
        self._scope_filter = f"(|{config.user_filter}{config.group_filter})"

    def __repr__(self) -> str:
        return f"AdSource(url={self.config.url!r}, base_dn={self.config.base_dn!r})"

    def _connect(self) -> AdConnection:
        cfg = self.config
        return AdConnection(
            cfg.url,
            bind_dn=cfg.bind_dn,
            bind_pw=cfg.bind_password,
            ca_file=cfg.tls_ca,
            verify_ca=cfg.tls_verify,
            timeout=cfg.timeout,
        )

    def fetch(self, state: SyncState) -> SourceBatch:
        """Return what changed in the domain since ``state``.

        Args:
            state: Kanidm's current sync state.

        Returns:
            A :class:`FullImage` when ``state`` is Refresh (or holds an empty cookie); a
            :class:`Delta` from a cookie this source wrote (always with a new cookie, so
            Kanidm's moves forward even when nothing changed); :class:`RefreshRequired`
            when the cookie cannot be continued from.

        Raises:
            SourceError: the directory could not be read or an object could not be
                mapped (the message names the DN and the field).
        """
        held = position(state)
        if held is None:
            return self._full()
        with self._connect() as conn:
            info = conn.root_info()
            why = self._unusable(conn, info, held)
            if why is not None:
                _log.warning("%s: refresh required: %s", self.config.url, why)
                self.last_stats = AdFetchStats(kind="refresh-required", mode=self.config.mode)
                return RefreshRequired(reason=f"ad: {why}")
            cookie = decode_cookie(held)
            try:
                return self._delta(conn, info, cookie)
            except RefreshNeeded as exc:
                _log.warning("%s: refresh required: %s", self.config.url, exc)
                self.last_stats = AdFetchStats(kind="refresh-required", mode=self.config.mode)
                return RefreshRequired(reason=f"ad: {exc}")

    def _naming_context(self, info: RootInfo) -> str:
        return self.config.naming_context or info.naming_context

    def _unusable(self, conn: AdConnection, info: RootInfo, data: bytes) -> str | None:
        """Why the cookie Kanidm holds cannot be continued from, or ``None``."""
        cfg = self.config
        cookie = decode_cookie(data)
        if cookie is None:
            return "the cookie Kanidm holds was not written by this Active Directory source"
        if cookie.fingerprint != cfg.fingerprint:
            return (
                "the cookie was written under another configuration (base, filters or "
                "attribute map changed)"
            )
        expected = DirSyncCookie if cfg.mode == "dirsync" else UsnCookie
        if not isinstance(cookie, expected):
            kind = "a DirSync" if isinstance(cookie, DirSyncCookie) else "a USN"
            return f"the cookie is {kind} cookie but mode is {cfg.mode!r}"
        invocation = cookie.invocation_id
        if invocation is not None and invocation != info.invocation_id:
            return (
                f"the cookie comes from another domain controller or database (invocationId "
                f"{invocation}, this DC's is {info.invocation_id})"
            )
        made_at = cookie.made_at
        if made_at is not None:
            lifetime = conn.tombstone_lifetime_days(self._naming_context(info))
            if self._clock() - made_at > _dt.timedelta(days=lifetime):
                return (
                    f"the cookie is older than the tombstone lifetime ({lifetime} days): "
                    "deletions since then may be forgotten by the DC"
                )
        return None

    def _full(self) -> FullImage:
        cfg = self.config
        t0 = time.perf_counter()
        with self._connect() as conn:
            info = conn.root_info()
            naming_context = self._naming_context(info)
            # The watermark is taken *before* the read: a change made during the read is
            # then seen again by the next delta (harmless) rather than lost.
            if cfg.mode == "dirsync":
                raw = dirsync_start(
                    conn, naming_context, object_security=cfg.dirsync_object_security
                )
                cookie = encode_cookie(DirSyncCookie(cfg.fingerprint, raw))
            else:
                cookie = encode_cookie(
                    UsnCookie(cfg.fingerprint, info.invocation_id, info.highest_usn, self._clock())
                )
            objects = conn.read_objects(
                cfg.base_dn,
                self._scope_filter,
                self._read_attributes,
                page_size=cfg.page_size,
                range_size=cfg.range_size,
            )
        t1 = time.perf_counter()
        mapped = map_ad_objects(objects, cfg)
        t2 = time.perf_counter()
        self.last_stats = AdFetchStats(
            kind="full",
            mode=cfg.mode,
            objects_read=len(objects),
            entries=len(mapped.entries),
            read_seconds=t1 - t0,
            map_seconds=t2 - t1,
        )
        _log.info(
            "%s: full read: %d objects, %d entries (%d left out)",
            cfg.url,
            len(objects),
            len(mapped.entries),
            len(mapped.left_out),
        )
        return FullImage(entries=mapped.entries, cookie=cookie)

    def _delta(
        self, conn: AdConnection, info: RootInfo, cookie: DirSyncCookie | UsnCookie | None
    ) -> Delta:
        cfg = self.config
        t0 = time.perf_counter()
        naming_context = self._naming_context(info)
        changes: Changes
        if isinstance(cookie, DirSyncCookie):
            changes, raw = dirsync_changes(
                conn,
                naming_context,
                self._dirsync_attributes,
                cookie=cookie.raw,
                object_security=cfg.dirsync_object_security,
            )
            new_cookie = encode_cookie(DirSyncCookie(cfg.fingerprint, raw))
        else:
            assert isinstance(cookie, UsnCookie)
            changes = usn_changes(
                conn, naming_context, since_usn=cookie.usn, page_size=cfg.page_size
            )
            # A new cookie even when nothing changed: its time is what the tombstone-
            # lifetime check measures, and every change up to this USN has been seen now.
            new_cookie = encode_cookie(
                UsnCookie(cfg.fingerprint, info.invocation_id, info.highest_usn, self._clock())
            )
        objects = self._read_by_guid(conn, changes.changed)
        found = {o.guid for o in objects}
        # Changed but no longer matched by the base and filters (moved out of the base,
        # a filter attribute changed): gone as far as Kanidm is concerned.
        gone = changes.changed - found
        present: list[uuid.UUID] | None = None
        if not conn.deleted_objects_readable(naming_context):
            # Tombstones are invisible to this account, so a deletion would go unnoticed
            # (and the deleted account stay usable in Kanidm). List every id in scope
            # instead: Kanidm's entries not listed are deleted (a present phase).
            if not self._warned_present:
                _log.warning(
                    "%s: %s cannot read the Deleted Objects container, so deletions are "
                    "found by listing every id in scope on each run; grant it List "
                    "Contents and Read Property on that container (docs/ad.md)",
                    cfg.url,
                    cfg.bind_dn,
                )
                self._warned_present = True
            present = [
                o.guid
                for o in conn.read_objects(
                    cfg.base_dn,
                    self._scope_filter,
                    ["objectGUID"],
                    page_size=cfg.page_size,
                    range_size=0,
                )
            ]
        groups_reread = bool(changes.deleted) or present is not None
        if groups_reread:
            # A deleted member leaves its groups with no change on the groups: re-read
            # them all, so Kanidm (and the runner's record) get the new member lists.
            for group in conn.read_objects(
                cfg.base_dn,
                cfg.group_filter,
                self._read_attributes,
                page_size=cfg.page_size,
                range_size=cfg.range_size,
            ):
                if group.guid not in found:
                    found.add(group.guid)
                    objects.append(group)
        t1 = time.perf_counter()
        mapped: AdMapped = map_ad_objects(objects, cfg)
        t2 = time.perf_counter()
        # A changed object now left out (made a system object, a name now skipped) goes
        # from Kanidm; the groups re-read only because of a deletion are not "changed".
        left_out = [i for i in mapped.left_out if i in changes.changed]
        deleted = [*sorted(changes.deleted), *sorted(gone), *left_out]
        self.last_stats = AdFetchStats(
            kind="delta",
            mode=cfg.mode,
            objects_read=len(objects),
            changed=len(changes.changed),
            deleted=len(changes.deleted),
            entries=len(mapped.entries),
            member_values=changes.member_values,
            groups_reread=groups_reread,
            present_scan=present is not None,
            read_seconds=t1 - t0,
            map_seconds=t2 - t1,
        )
        _log.info(
            "%s: %s delta: %d changed, %d deleted, %d out of scope, member values +%d/-%d%s",
            cfg.url,
            cfg.mode,
            len(changes.changed),
            len(changes.deleted),
            len(gone),
            *changes.member_values,
            ", every group re-read" if groups_reread else "",
        )
        return Delta(
            entries=mapped.entries,
            deleted=list(dict.fromkeys(deleted)),
            present=present,
            cookie=new_cookie,
        )

    def _read_by_guid(self, conn: AdConnection, guids: Iterable[uuid.UUID]) -> list[AdObject]:
        cfg = self.config
        pending = sorted(guids)
        objects: list[AdObject] = []
        for start in range(0, len(pending), _GUID_CHUNK):
            terms = "".join(guid_filter(g) for g in pending[start : start + _GUID_CHUNK])
            objects.extend(
                conn.read_objects(
                    cfg.base_dn,
                    f"(&{self._scope_filter}(|{terms}))",
                    self._read_attributes,
                    page_size=cfg.page_size,
                    range_size=cfg.range_size,
                )
            )
        return objects


# Not a public name: the "from __future__" import leaves it in dir().
del annotations
