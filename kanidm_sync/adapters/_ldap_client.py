"""The python-ldap shell of the LDAP sources: connect, bind, run one sync search, search.

This module owns every python-ldap call and the translation of python-ldap errors into
:class:`~kanidm_sync.SourceError` (with the backend error as ``__cause__``) or into a
"refresh required" signal. It decodes the RFC 4533 controls itself (with python-ldap's
ASN.1 types; the Sync State control of every entry by ``_ldap_ber`` first), keeping
cookies as raw bytes, and feeds them to the pure
:class:`~._ldap_syncrepl.SyncreplAccumulator`. It must not map entries nor decide what
the messages mean. Messages never contain the bind password.

Importing it needs python-ldap (the ``ldap`` extra); ``ldap.py`` guards the import.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import Final, Literal

import ldap
import ldap.filter
from ldap.controls import ResponseControl
from ldap.schema.models import ObjectClass
from ldap.syncrepl import SyncDoneValue, SyncInfoValue, SyncRequestControl, SyncStateValue
from pyasn1.codec.ber import decoder as _ber_decoder

from .._exceptions import SourceError
from ._ldap_ber import sync_state
from ._ldap_ds389 import RETRO_ATTRIBUTES, RETRO_DN, SYNC_FEATURE_DN, retro_changelog_problems
from ._ldap_syncrepl import SyncreplAccumulator
from ._protocols import Closeable

__all__ = [
    "LdapConnection",
    "RefreshNeeded",
    "class_ancestors",
    "or_filter",
]

_log = logging.getLogger("kanidm_sync.adapters.ldap")

_SYNC_STATE_OID: Final = "1.3.6.1.4.1.4203.1.9.1.2"
_SYNC_DONE_OID: Final = "1.3.6.1.4.1.4203.1.9.1.3"
_SYNC_INFO_OID: Final = "1.3.6.1.4.1.4203.1.9.1.4"
_STATES: Final[tuple[Literal["present", "add", "modify", "delete"], ...]] = (
    "present",
    "add",
    "modify",
    "delete",
)
# Result codes that mean "this cookie is no good here": e-syncRefreshRequired (RFC 4533
# §2.5), unwillingToPerform ("consumer state is newer than provider!", slapd), and
# protocolError (a cookie the server cannot parse). [inferred: protocolError for foreign
# 389-ds cookies; slapd answers a garbage cookie with a full re-send instead]
_REFRESH_CODES: Final = {
    4096: "e-syncRefreshRequired",
    53: "unwillingToPerform",
    2: "protocolError",
}


class RefreshNeeded(Exception):
    """The server refused the cookie: the consumer must start again with a full refresh."""


class _RawControl(ResponseControl):  # type: ignore[misc]
    """Keeps a response control's BER value as bytes; decoded below, cookies as bytes."""

    value: bytes = b""

    def decodeControlValue(self, encodedControlValue: bytes) -> None:
        self.value = encodedControlValue


_RESP_CONTROLS: Final = {_SYNC_STATE_OID: _RawControl, _SYNC_DONE_OID: _RawControl}


def _octets(component: object) -> bytes | None:
    has_value = getattr(component, "hasValue", None)
    if component is None or has_value is None or not has_value():
        return None
    return bytes(getattr(component, "asOctets")())  # noqa: B009 - pyasn1 is untyped


def _describe(exc: ldap.LDAPError) -> tuple[int | None, str]:
    detail = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
    code = detail.get("result")
    desc = str(detail.get("desc") or type(exc).__name__)
    info = detail.get("info")
    text = f"{desc} ({info})" if info else desc
    return (code if isinstance(code, int) else None), text


class LdapConnection(Closeable):
    """One bound LDAP connection (python-ldap), closed by :meth:`close` or ``with``.

    Args:
        uri: ``ldap://``, ``ldaps://`` or ``ldapi://`` URI.
        bind_dn: the DN to bind as (simple bind).
        bind_pw: its password (never logged, never in an error).
        ca_file: a PEM CA file used as the only trust root.
        verify_ca: ``False`` disables certificate checks (ignored with ``ca_file``).
        timeout: seconds to wait for the connection and for each server message.
    """

    def __init__(
        self,
        uri: str,
        *,
        bind_dn: str,
        bind_pw: str,
        ca_file: str | None = None,
        verify_ca: bool = True,
        timeout: float = 300.0,
    ) -> None:
        self.uri = uri
        self.bind_dn = bind_dn
        self.timeout = timeout
        # 389-ds's vendorVersion once read (None: another server); unset until then.
        self._ds389: str | Literal[False] | None = False
        try:
            conn = ldap.initialize(uri)
            conn.set_option(ldap.OPT_PROTOCOL_VERSION, ldap.VERSION3)
            # Referrals are not followed (as the reference tools): a sync must stay on
            # the one server whose cookie Kanidm holds.
            conn.set_option(ldap.OPT_REFERRALS, 0)
            conn.set_option(ldap.OPT_NETWORK_TIMEOUT, min(timeout, 30.0))
            if ca_file is not None:
                conn.set_option(ldap.OPT_X_TLS_CACERTFILE, ca_file)
                conn.set_option(ldap.OPT_X_TLS_REQUIRE_CERT, ldap.OPT_X_TLS_DEMAND)
                try:
                    conn.set_option(ldap.OPT_X_TLS_NEWCTX, 0)
                except ValueError as exc:
                    # libldap answers a missing or unreadable CA file with a bare
                    # ValueError("option error") when the TLS context is built.
                    raise SourceError(
                        f"{uri}: cannot use the CA file {ca_file!r} (missing, unreadable or "
                        "not PEM)"
                    ) from exc
            elif not verify_ca:
                conn.set_option(ldap.OPT_X_TLS_REQUIRE_CERT, ldap.OPT_X_TLS_NEVER)
                conn.set_option(ldap.OPT_X_TLS_NEWCTX, 0)
            conn.simple_bind_s(bind_dn, bind_pw)
        except ldap.INVALID_CREDENTIALS as exc:
            raise SourceError(f"{uri}: bind as {bind_dn!r} failed: invalid credentials") from exc
        except ldap.LDAPError as exc:
            _, text = _describe(exc)
            raise SourceError(f"{uri}: cannot connect and bind as {bind_dn!r}: {text}") from exc
        self._conn = conn

    def close(self) -> None:
        """Unbind and close the connection."""
        # Closing a dead connection (the server restarted) is not an error worth raising.
        with contextlib.suppress(ldap.LDAPError):
            self._conn.unbind_s()

    def sync_refresh(self, base: str, filterstr: str, cookie: bytes | None) -> SyncreplAccumulator:
        """Run one refreshOnly content-sync search and collect every message.

        Requests all user and operational attributes (``*`` and ``+``), no size or
        time limit from the client, dereferencing never (as RFC 4533 requires).
        On 389-ds it first checks the retro changelog's scope (:meth:`check_ds389_changelog`).

        Args:
            base: the search base.
            filterstr: an RFC 4515 filter.
            cookie: the cookie to continue from, or ``None`` for a full refresh.

        Returns:
            The accumulator after the Sync Done message.

        Raises:
            RefreshNeeded: the server refused the cookie (incremental refresh only).
            SourceError: any other failure, including a size or time limit.
        """
        self.check_ds389_changelog(base)
        accumulator = SyncreplAccumulator(incremental=cookie is not None, sent_cookie=cookie)
        control = SyncRequestControl(criticality=True, cookie=cookie, mode="refreshOnly")
        try:
            msgid = self._conn.search_ext(
                base,
                ldap.SCOPE_SUBTREE,
                filterstr,
                attrlist=["*", "+"],
                serverctrls=[control],
                sizelimit=0,
            )
            while True:
                rtype, data, _, controls, _, _ = self._conn.result4(
                    msgid,
                    all=0,
                    timeout=self.timeout,
                    add_ctrls=1,
                    add_intermediates=1,
                    resp_ctrl_classes=_RESP_CONTROLS,
                )
                if rtype == ldap.RES_SEARCH_ENTRY:
                    for dn, attributes, entry_controls in data:
                        self._entry(accumulator, dn, attributes, entry_controls)
                elif rtype == ldap.RES_INTERMEDIATE:
                    for name, value, _ in data:
                        if name == _SYNC_INFO_OID and value is not None:
                            self._info(accumulator, value)
                elif rtype == ldap.RES_SEARCH_REFERENCE:
                    _log.debug(
                        "%s: ignoring a search reference (referrals are not followed)", self.uri
                    )
                elif rtype == ldap.RES_SEARCH_RESULT:
                    self._done(accumulator, controls)
                    return accumulator
        except ldap.ADMINLIMIT_EXCEEDED as exc:
            raise SourceError(
                f"{self.uri}: the server stopped the sync search at an administrative limit "
                "(entries looked through), so the result would be truncated. Lift it for the "
                f"sync account (389-ds: nsLookThroughLimit: -1 on {self.bind_dn!r}; OpenLDAP: "
                'olcLimits: dn.exact="<sync dn>" size.unchecked=unlimited)'
            ) from exc
        except ldap.SIZELIMIT_EXCEEDED as exc:
            raise SourceError(
                f"{self.uri}: the server stopped the sync search at its size limit, so the "
                "result would be truncated. Give the sync account unlimited size (OpenLDAP: "
                'olcLimits: dn.exact="<sync dn>" size=unlimited time=unlimited; 389-ds: '
                "nsSizeLimit: -1 on the bind entry)"
            ) from exc
        except ldap.TIMELIMIT_EXCEEDED as exc:
            raise SourceError(
                f"{self.uri}: the server stopped the sync search at its time limit. Give "
                "the sync account unlimited time (OpenLDAP: olcLimits ... time=unlimited; "
                "389-ds: nsTimeLimit: -1)"
            ) from exc
        except ldap.TIMEOUT as exc:
            raise SourceError(
                f"{self.uri}: no answer from the server within {self.timeout:g} s"
            ) from exc
        except ldap.UNAVAILABLE_CRITICAL_EXTENSION as exc:
            version = self._ds389_version()
            if version is not None:
                raise SourceError(
                    f"{self.uri}: 389-ds ({version}) does not offer content sync: the content "
                    "sync plugin is not enabled (nsslapd-pluginEnabled on "
                    "cn=Content Synchronization,cn=plugins,cn=config). Enable it and the retro "
                    "changelog it needs: dsconf INSTANCE plugin retro-changelog enable; dsconf "
                    "INSTANCE plugin contentsync enable; then restart the server "
                    "(dsctl INSTANCE restart)"
                ) from exc
            raise SourceError(
                f"{self.uri}: the server does not offer content sync (RFC 4533) for "
                f"{base!r}: load and configure the syncprov overlay (OpenLDAP) or the "
                "content-sync and retro-changelog plugins (389-ds)"
            ) from exc
        except ldap.INSUFFICIENT_ACCESS as exc:
            version = self._ds389_version()
            if version is not None:
                raise SourceError(
                    f"{self.uri}: 389-ds ({version}) refused the Sync Request control to "
                    f"{self.bind_dn!r} (insufficient access): the account needs read and search "
                    f'rights on {SYNC_FEATURE_DN}, e.g. aci: (targetattr != "aci")'
                    '(version 3.0; acl "kanidm-sync"; allow (read, search) '
                    f'userdn = "ldap:///{self.bind_dn}";)'
                ) from exc
            _, text = _describe(exc)
            raise SourceError(
                f"{self.uri}: the server refused the sync search under {base!r} to "
                f"{self.bind_dn!r}: {text}; give the account read and search access there"
            ) from exc
        except ldap.LDAPError as exc:
            code, text = _describe(exc)
            if cookie is not None and code in _REFRESH_CODES:
                raise RefreshNeeded(f"{_REFRESH_CODES[code]}: {text}") from exc
            raise SourceError(f"{self.uri}: sync search failed: {text}") from exc

    def _ds389_version(self) -> str | None:
        """``vendorVersion`` when the server is 389-ds (FreeIPA's too), else ``None``.

        Read once from the rootDSE, which every account may read; an unreadable rootDSE
        counts as "not 389-ds".
        """
        if self._ds389 is not False:
            return self._ds389
        version: str | None = None
        with contextlib.suppress(ldap.LDAPError):
            found = self._conn.search_ext_s(
                "",
                ldap.SCOPE_BASE,
                "(objectClass=*)",
                attrlist=["vendorName", "vendorVersion"],
                timeout=self.timeout,
            )
            for dn, attributes in found:
                root = {k.lower(): v for k, v in attributes.items()} if dn is not None else {}
                vendor = b" ".join(root.get("vendorname", [])).decode("utf-8", "replace")
                if "389" in vendor:
                    raw = root.get("vendorversion") or [vendor.encode()]
                    version = raw[0].decode("utf-8", "replace")
        self._ds389 = version
        return version

    def check_ds389_changelog(self, base: str) -> None:
        """On 389-ds, refuse a retro changelog that does not record the changes under ``base``.

        389-ds answers an incremental sync from its retro changelog. When that does not
        cover ``base`` (``nsslapd-include-suffix``, ``nsslapd-exclude-suffix``) or lacks
        ``nsuniqueid:targetUniqueId``, every incremental run silently returns no change, and
        the changes made meanwhile are lost for good. The plugin's entry is read only when
        the sync account may read it (an ACI on it); otherwise nothing is checked.

        Args:
            base: the sync search base.

        Raises:
            SourceError: the configuration is readable and would hide changes.
        """
        version = self._ds389_version()
        if version is None:
            return
        try:
            found = self._conn.search_ext_s(
                RETRO_DN,
                ldap.SCOPE_BASE,
                "(objectClass=*)",
                attrlist=list(RETRO_ATTRIBUTES),
                timeout=self.timeout,
            )
        except ldap.LDAPError:
            found = []
        settings: dict[str, list[str]] = {}
        for dn, attributes in found:
            if dn is not None:
                settings = {
                    k.lower(): [v.decode("utf-8", "replace") for v in values]
                    for k, values in attributes.items()
                }
        if not settings:
            _log.debug(
                "%s: %s not readable; the retro changelog is not checked", self.uri, RETRO_DN
            )
            return
        problems = retro_changelog_problems(base, settings)
        if problems:
            raise SourceError(f"{self.uri}: 389-ds ({version}): " + "; ".join(problems))

    def _entry(
        self,
        accumulator: SyncreplAccumulator,
        dn: str,
        attributes: dict[str, list[bytes]],
        controls: Sequence[object],
    ) -> None:
        for control in controls:
            if isinstance(control, _RawControl) and control.controlType == _SYNC_STATE_OID:
                plain = sync_state(control.value)  # the usual form, without pyasn1
                if plain is not None:
                    state, raw_uuid, cookie = plain
                else:
                    value, _ = _ber_decoder.decode(control.value, asn1Spec=SyncStateValue())
                    raw_uuid = _octets(value.getComponentByName("entryUUID")) or b""
                    state = int(value.getComponentByName("state"))
                    cookie = _octets(value.getComponentByName("cookie"))
                accumulator.entry(
                    sync_uuid=uuid.UUID(bytes=raw_uuid),
                    dn=dn,
                    attributes=attributes,
                    state=_STATES[state],
                    cookie=cookie,
                )
                return
        raise SourceError(f"{self.uri}: entry {dn} came without a Sync State control")

    @staticmethod
    def _info(accumulator: SyncreplAccumulator, encoded: bytes) -> None:
        value, _ = _ber_decoder.decode(encoded, asn1Spec=SyncInfoValue())
        kind = value.getName()
        component = value.getComponent()
        if kind == "newcookie":
            accumulator.new_cookie(_octets(component))
            return
        cookie = _octets(component.getComponentByName("cookie"))
        if kind in ("refreshDelete", "refreshPresent"):
            done = component.getComponentByName("refreshDone")
            accumulator.refresh_phase(
                "delete" if kind == "refreshDelete" else "present",
                done=bool(done) if done.hasValue() else True,
                cookie=cookie,
            )
        elif kind == "syncIdSet":
            ids = component.getComponentByName("syncUUIDs")
            flag = component.getComponentByName("refreshDeletes")
            accumulator.id_set(
                [uuid.UUID(bytes=bytes(ids.getComponentByPosition(i))) for i in range(len(ids))],
                refresh_deletes=bool(flag) if flag.hasValue() else False,
                cookie=cookie,
            )

    def _done(self, accumulator: SyncreplAccumulator, controls: Sequence[object]) -> None:
        for control in controls:
            if isinstance(control, _RawControl) and control.controlType == _SYNC_DONE_OID:
                value, _ = _ber_decoder.decode(control.value, asn1Spec=SyncDoneValue())
                flag = value.getComponentByName("refreshDeletes")
                accumulator.done(
                    cookie=_octets(value.getComponentByName("cookie")),
                    refresh_deletes=bool(flag) if flag.hasValue() else False,
                )
                return
        # RFC 4533 §3.4 requires the control; without it nothing says where we are.
        raise SourceError(f"{self.uri}: the sync search ended without a Sync Done control")

    def search(
        self, base: str, filterstr: str, attrlist: Sequence[str], *, scope: int = ldap.SCOPE_SUBTREE
    ) -> list[tuple[str, dict[str, list[bytes]]]]:
        """A plain search (for the extra lookups: rfc2307 members, FreeIPA tokens).

        Args:
            base: the search base.
            filterstr: an RFC 4515 filter.
            attrlist: the attributes to return.
            scope: the search scope.

        Returns:
            ``(dn, attributes)`` pairs; references are skipped.

        Raises:
            SourceError: the search failed (a missing base entry is an empty result).
        """
        try:
            results = self._conn.search_ext_s(
                base, scope, filterstr, attrlist=list(attrlist), timeout=self.timeout
            )
        except ldap.NO_SUCH_OBJECT:
            return []
        except ldap.SIZELIMIT_EXCEEDED as exc:
            raise SourceError(
                f"{self.uri}: a lookup under {base!r} hit the server's size limit; give the "
                "sync account unlimited size"
            ) from exc
        except ldap.LDAPError as exc:
            _, text = _describe(exc)
            raise SourceError(f"{self.uri}: search under {base!r} failed: {text}") from exc
        return [(dn, attrs) for dn, attrs in results if dn is not None]


def class_ancestors(conn: LdapConnection) -> dict[str, frozenset[str]]:
    """Every object class the server knows -> itself and all its superclasses (lower case).

    OpenLDAP stores only the object classes an entry was created with: an
    ``inetOrgPerson`` added without ``person`` matches ``(objectClass=person)`` on the
    server, yet its ``objectClass`` values do not say ``person``. kanidm-ldap-sync then
    skips it silently; with this table the mapping sees the whole class chain.

    Returns:
        The table; empty when the server does not publish its schema to the sync account.
    """
    subschema = "cn=Subschema"
    try:
        root = conn.search("", "(objectClass=*)", ["subschemaSubentry"], scope=ldap.SCOPE_BASE)
        for _, attributes in root:
            for name, values in attributes.items():
                if name.lower() == "subschemasubentry" and values:
                    subschema = values[0].decode("utf-8", "replace")
        found = conn.search(subschema, "(objectClass=*)", ["objectClasses"], scope=ldap.SCOPE_BASE)
    except SourceError:
        # The schema is a help, not a requirement: without it only listed classes count.
        _log.info("%s: cannot read the schema; object class inheritance unknown", conn.uri)
        return {}
    sups: dict[str, tuple[str, ...]] = {}
    for _, attributes in found:
        for name, values in attributes.items():
            if name.lower() != "objectclasses":
                continue
            for raw in values:
                try:
                    model = ObjectClass(raw.decode("utf-8", "replace"))
                except (ValueError, IndexError, KeyError):  # an odd definition: skip it
                    continue
                for oc_name in model.names or ():
                    sups[oc_name.lower()] = tuple(v.lower() for v in model.sup or ())
    table: dict[str, frozenset[str]] = {}
    for oc_name in sups:
        seen: set[str] = set()
        pending = [oc_name]
        while pending:
            current = pending.pop()
            if current not in seen:
                seen.add(current)
                pending.extend(sups.get(current, ()))
        table[oc_name] = frozenset(seen)
    return table


def or_filter(attribute: str, values: Iterable[str], *, chunk: int = 200) -> Iterator[str]:
    """``(|(attr=v1)(attr=v2)...)`` filters over ``values``, at most ``chunk`` per filter.

    Values are escaped (RFC 4515).
    """
    pending = sorted(set(values))
    for start in range(0, len(pending), chunk):
        terms = "".join(
            f"({attribute}={ldap.filter.escape_filter_chars(v)})"
            for v in pending[start : start + chunk]
        )
        yield f"(|{terms})"
