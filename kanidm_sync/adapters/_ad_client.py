"""The python-ldap shell of the Active Directory source: rootDSE, paged and ranged reads, DirSync.

This module owns every python-ldap call the AD source makes and the translation of
python-ldap errors into :class:`~kanidm_sync.SourceError` (backend error as
``__cause__``) or into :class:`~._ldap_client.RefreshNeeded` (the DC refused a cookie).
Connecting, binding and TLS are the LDAP source's (:class:`~._ldap_client.LdapConnection`).
It must not map entries nor decide what a change means. Messages never contain the bind
password.

Importing it needs python-ldap (the ``ldap`` extra).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import Final

import attrs
import ldap
from ldap.controls import LDAPControl
from ldap.controls.libldap import SimplePagedResultsControl

from .._exceptions import SourceError
from ._ad_dirsync import OID_DIRSYNC, OID_SHOW_DELETED, DirSyncControl
from ._ad_map import AdObject, guid_to_uuid, parse_range
from ._ldap_client import LdapConnection, RefreshNeeded, _describe

__all__ = ["AdConnection", "RootInfo"]

_PAGED_OID: Final = SimplePagedResultsControl.controlType
_RESP_CONTROLS: Final = {OID_DIRSYNC: DirSyncControl, _PAGED_OID: SimplePagedResultsControl}
_DEFAULT_TOMBSTONE_DAYS: Final = 60  # AD's value when tombstoneLifetime is not set
_WKGUID_DELETED_OBJECTS: Final = "18E2EA80684F11D2B9AA00C04F79F805"  # MS-ADTS 6.1.1.4

Raw = tuple[str, dict[str, list[bytes]]]


@attrs.frozen
class RootInfo:
    """What the rootDSE and the DC's NTDS Settings object say.

    Attributes:
        naming_context: ``defaultNamingContext``.
        invocation_id: the DC's invocationId (changes when the DC's database is restored
            or re-created).
        highest_usn: ``highestCommittedUSN``.
    """

    naming_context: str
    invocation_id: uuid.UUID
    highest_usn: int


def show_deleted() -> LDAPControl:
    """The show-deleted control (critical, no value): tombstones become visible."""
    return LDAPControl(OID_SHOW_DELETED, True, None)


class AdConnection(LdapConnection):
    """A bound connection to one domain controller (see :class:`LdapConnection`)."""

    def _fail(self, what: str, exc: ldap.LDAPError) -> SourceError:
        _, text = _describe(exc)
        return SourceError(f"{self.uri}: {what} failed: {text}")

    def _base(self, dn: str, attrlist: Sequence[str]) -> dict[str, list[bytes]]:
        try:
            found = self._conn.search_ext_s(
                dn, ldap.SCOPE_BASE, "(objectClass=*)", list(attrlist), timeout=self.timeout
            )
        except ldap.NO_SUCH_OBJECT:
            return {}
        except ldap.LDAPError as exc:
            raise self._fail(f"reading {dn!r}", exc) from exc
        for found_dn, attributes in found:
            if found_dn is not None:
                return dict(attributes)
        return {}

    def root_info(self) -> RootInfo:
        """Read the naming context, the DC's invocationId and its highest committed USN.

        Raises:
            SourceError: the rootDSE or the NTDS Settings object cannot be read.
        """
        root = self._base("", ["defaultNamingContext", "dsServiceName", "highestCommittedUSN"])
        try:
            naming_context = root["defaultNamingContext"][0].decode()
            service = root["dsServiceName"][0].decode()
            usn = int(root["highestCommittedUSN"][0])
        except (KeyError, IndexError, ValueError) as exc:
            raise SourceError(
                f"{self.uri}: the rootDSE has no defaultNamingContext, dsServiceName or "
                "highestCommittedUSN; is this an Active Directory domain controller?"
            ) from exc
        ntds = self._base(service, ["invocationId"])
        raw = ntds.get("invocationId", [b""])[0]
        if len(raw) != 16:
            raise SourceError(f"{self.uri}: cannot read the DC's invocationId from {service!r}")
        return RootInfo(naming_context, guid_to_uuid(raw), usn)

    def tombstone_lifetime_days(self, naming_context: str) -> int:
        """The forest's tombstone lifetime in days (AD's default 60 when unset)."""
        dn = f"CN=Directory Service,CN=Windows NT,CN=Services,CN=Configuration,{naming_context}"
        values = self._base(dn, ["tombstoneLifetime"]).get("tombstoneLifetime", [])
        try:
            return int(values[0]) if values else _DEFAULT_TOMBSTONE_DAYS
        except ValueError:
            return _DEFAULT_TOMBSTONE_DAYS

    def deleted_objects_readable(self, naming_context: str) -> bool:
        """Whether this account can read the Deleted Objects container (and so tombstones).

        The container is found by its well-known GUID (its name is localised). An account
        without the right still gets the entry, but with no attributes (observed on
        Samba); AD's default grants it only to administrators and SYSTEM.
        """
        base = f"<WKGUID={_WKGUID_DELETED_OBJECTS},{naming_context}>"
        try:
            msgid = self._conn.search_ext(
                base,
                ldap.SCOPE_BASE,
                "(objectClass=*)",
                ["objectGUID"],
                serverctrls=[show_deleted()],
                timeout=self.timeout,
            )
            _, data, _, _ = self._conn.result3(msgid, timeout=self.timeout)
        except (ldap.NO_SUCH_OBJECT, ldap.INSUFFICIENT_ACCESS):
            return False
        except ldap.LDAPError as exc:
            raise self._fail("reading the Deleted Objects container", exc) from exc
        return any(dn is not None and attributes.get("objectGUID") for dn, attributes in data)

    def paged(
        self,
        base: str,
        filterstr: str,
        attrlist: Sequence[str],
        *,
        page_size: int,
        deleted: bool = False,
    ) -> Iterator[Raw]:
        """A subtree search with the paged-results control (and show-deleted if asked).

        Args:
            base: the search base.
            filterstr: an RFC 4515 filter.
            attrlist: the attributes to return.
            page_size: entries per page.
            deleted: also return tombstones (show-deleted control).

        Yields:
            ``(dn, attributes)`` pairs; references are skipped.

        Raises:
            SourceError: the search failed.
        """
        paging = SimplePagedResultsControl(True, size=page_size, cookie=b"")
        extra = [show_deleted()] if deleted else []
        while True:
            try:
                msgid = self._conn.search_ext(
                    base,
                    ldap.SCOPE_SUBTREE,
                    filterstr,
                    list(attrlist),
                    serverctrls=[paging, *extra],
                    timeout=self.timeout,
                )
                _, data, _, controls = self._conn.result3(
                    msgid, timeout=self.timeout, resp_ctrl_classes=_RESP_CONTROLS
                )
            except ldap.NO_SUCH_OBJECT:
                return
            except ldap.SIZELIMIT_EXCEEDED as exc:
                raise SourceError(
                    f"{self.uri}: the DC stopped a paged search under {base!r} at its size "
                    "limit (MaxResultSetSize?); lower page_size"
                ) from exc
            except ldap.LDAPError as exc:
                raise self._fail(f"search under {base!r}", exc) from exc
            for dn, attributes in data:
                if dn is not None:
                    yield dn, dict(attributes)
            cookie = next((c.cookie for c in controls if c.controlType == _PAGED_OID), b"")
            if not cookie:
                return
            paging.cookie = cookie

    def read_objects(
        self,
        base: str,
        filterstr: str,
        attrlist: Sequence[str],
        *,
        page_size: int,
        range_size: int,
    ) -> list[AdObject]:
        """Paged search whose ``member`` values are completed by range retrieval.

        With ``range_size`` > 0 the first window is asked explicitly
        (``member;range=0-<range_size-1>``), as AD would cap it at MaxValRange anyway.

        Returns:
            The objects, ``member`` complete and stored under the plain name.

        Raises:
            SourceError: a search failed.
        """
        wanted = list(attrlist)
        if range_size > 0:
            wanted = [a for a in wanted if a.lower() != "member"]
            wanted.append(f"member;range=0-{range_size - 1}")
        objects = []
        for dn, attributes in self.paged(base, filterstr, wanted, page_size=page_size):
            objects.append(AdObject(dn, self.complete_ranges(dn, attributes, range_size)))
        return objects

    def complete_ranges(
        self, dn: str, attributes: dict[str, list[bytes]], range_size: int
    ) -> dict[str, list[bytes]]:
        """Replace every ranged attribute (``member;range=0-1499``) by all its values.

        Follows AD range retrieval: after a window ``lo-hi`` ask ``hi+1-...`` until the
        server marks the last window with ``*``. A window the server cut short or an
        empty answer ends the loop.

        Raises:
            SourceError: a read failed.
        """
        out: dict[str, list[bytes]] = {}
        for key, values in attributes.items():
            parsed = parse_range(key)
            if parsed is None:
                out.setdefault(key, []).extend(values)
                continue
            name, _, hi = parsed
            collected = list(values)
            while hi is not None:
                low = hi + 1
                window = f"{name};range={low}-" + (
                    f"{low + range_size - 1}" if range_size > 0 else "*"
                )
                got = self._base(dn, [window])
                if not got:
                    break
                key2, more = next(iter(got.items()))
                parsed2 = parse_range(key2)
                if parsed2 is None:  # the server ignored the range: the whole list
                    collected = list(more)
                    break
                if parsed2[1] != low:
                    # Never loop on a window that does not move forward.
                    raise SourceError(
                        f"{self.uri}: {dn}: asked {window}, the DC answered {key2}; "
                        "cannot read the whole member list"
                    )
                collected.extend(more)
                hi = parsed2[2]
                if not more:
                    break
            out.setdefault(name, []).extend(collected)
        return out

    def dirsync(
        self, base: str, filterstr: str, attrlist: Sequence[str], *, cookie: bytes, flags: int
    ) -> tuple[list[Raw], bytes]:
        """One DirSync read from ``cookie`` (following ``moreResults``).

        Args:
            base: the naming-context root.
            filterstr: an RFC 4515 filter.
            attrlist: the attributes; a change to any other attribute is not reported.
            cookie: the DC's cookie, or ``b""`` for a full read.
            flags: DIRSYNC_* flags.

        Returns:
            The entries (tombstones included) and the new cookie.

        Raises:
            RefreshNeeded: the DC refused the cookie.
            SourceError: any other failure (a missing replication right included).
        """
        entries: list[Raw] = []
        while True:
            control = DirSyncControl(flags=flags, cookie=cookie)
            try:
                msgid = self._conn.search_ext(
                    base,
                    ldap.SCOPE_SUBTREE,
                    filterstr,
                    list(attrlist),
                    serverctrls=[control],
                    timeout=self.timeout,
                )
                _, data, _, controls = self._conn.result3(
                    msgid, timeout=self.timeout, resp_ctrl_classes=_RESP_CONTROLS
                )
            except ldap.INSUFFICIENT_ACCESS as exc:
                _, text = _describe(exc)
                raise SourceError(
                    f"{self.uri}: DirSync refused ({text}): the bind account needs the "
                    '"Replicating Directory Changes" right on the domain (or set '
                    'dirsync_object_security = true, or mode = "usn"); the base must be '
                    "the naming-context root"
                ) from exc
            except ldap.UNAVAILABLE_CRITICAL_EXTENSION as exc:
                _, text = _describe(exc)
                if cookie:
                    raise RefreshNeeded(f"the DC refused the DirSync cookie: {text}") from exc
                raise SourceError(f"{self.uri}: the DC does not offer DirSync: {text}") from exc
            except ldap.LDAPError as exc:
                raise self._fail("DirSync search", exc) from exc
            entries.extend((dn, dict(a)) for dn, a in data if dn is not None)
            response = next((c for c in controls if c.controlType == OID_DIRSYNC), None)
            if not isinstance(response, DirSyncControl):
                raise SourceError(f"{self.uri}: the DC sent no DirSync response control")
            cookie = response.cookie
            if not response.more_results:
                return entries, cookie
