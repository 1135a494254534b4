"""LDAP and FreeIPA sources over RFC 4533 content sync (the ``ldap`` extra).

:class:`LdapSource` reads any directory that offers content sync (OpenLDAP with the
syncprov overlay, 389-ds with content sync), configured like kanidm-ldap-sync;
:class:`FreeIpaSource` reads FreeIPA, configured like kanidm-ipa-sync. Both implement
:class:`~kanidm_sync.adapters.SourceAdapter`: ``fetch(state)`` returns a
:class:`~kanidm_sync.adapters.FullImage` when Kanidm is in Refresh, a
:class:`~kanidm_sync.adapters.Delta` from the syncrepl cookie Kanidm holds, or
:class:`~kanidm_sync.adapters.RefreshRequired` when the directory cannot continue from
that cookie. Kanidm's cookie *is* the directory's syncrepl cookie, byte for byte, as the
reference tools store it.

This module owns the fetch flow (connect, search, interpret, look up, map, apply the
per-entry rules). It must not talk to Kanidm. See docs/ldap.md.

Needs python-ldap: ``pip install 'kanidm-sync[ldap]'``.
"""

from __future__ import annotations

from ._ldap_config import _needs_python_ldap

try:
    import ldap as _python_ldap
except ImportError as _exc:  # pragma: no cover - exercised in a subprocess test
    raise _needs_python_ldap(__name__) from _exc

import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from .._exceptions import SourceError
from .._proto._state import SyncState
from ._freeipa import IPA_FILTER, TOKEN_FILTER, is_token, map_ipa_entries, sync_uuid_from_attributes
from ._ldap_client import LdapConnection, RefreshNeeded, class_ancestors, or_filter
from ._ldap_config import EntryOverride, IpaConfig, LdapConfig, load_config, to_rfc4515_filter
from ._ldap_map import LdapEntry, MappedBatch, map_ldap_entries, map_ldap_entry
from ._ldap_syncrepl import Flavour, RefreshOutcome, flavour_of_cookie
from ._protocols import Closeable, Delta, FullImage, RefreshRequired, SourceBatch, position

if TYPE_CHECKING:
    from .._rules import Rules

__all__ = [
    "EntryOverride",
    "FreeIpaSource",
    "IpaConfig",
    "LdapConfig",
    "LdapEntry",
    "LdapSource",
    "load_config",
    "map_ipa_entries",
    "map_ldap_entries",
    "map_ldap_entry",
    "source_from_config",
    "to_rfc4515_filter",
]

_log = logging.getLogger("kanidm_sync.adapters.ldap")


class _SyncreplSource(Closeable):
    """The fetch flow shared by both sources; subclasses map and look up."""

    def __init__(
        self,
        *,
        uri: str,
        bind_dn: str,
        bind_pw: str,
        base_dn: str,
        search_filter: str,
        ca_file: str | None,
        verify_ca: bool,
        rules: Rules,
        timeout: float,
        flavour: Flavour | None,
        first_cookie: bytes | None = None,
    ) -> None:
        self._uri = uri
        self._first_cookie = first_cookie
        self._bind_dn = bind_dn
        self._bind_pw = bind_pw
        self._base_dn = base_dn
        self._filter = search_filter
        self._ca_file = ca_file
        self._verify_ca = verify_ca
        self._rules = rules
        self._timeout = timeout
        self._flavour = flavour

    def __repr__(self) -> str:
        return f"{type(self).__name__}(uri={self._uri!r}, base_dn={self._base_dn!r})"

    def _connect(self) -> LdapConnection:
        return LdapConnection(
            self._uri,
            bind_dn=self._bind_dn,
            bind_pw=self._bind_pw,
            ca_file=self._ca_file,
            verify_ca=self._verify_ca,
            timeout=self._timeout,
        )

    def fetch(self, state: SyncState) -> SourceBatch:
        """Return what changed in the directory since ``state``.

        Args:
            state: Kanidm's current sync state.

        Returns:
            A :class:`FullImage` when ``state`` is Refresh; a :class:`Delta` when Kanidm
            holds a cookie the directory can continue from (with the same cookie when
            nothing changed); :class:`RefreshRequired` when it cannot.

        Raises:
            SourceError: the directory could not be read, an entry could not be
                mapped, or a size limit would have truncated the result.
        """
        cookie = position(state)
        # A full refresh sends the configured first cookie (389-ds's OpenLDAP-compatible
        # mode needs rid=000); it is still a full refresh, mapped and returned as one.
        sent = self._first_cookie if cookie is None else cookie
        with self._connect() as conn:
            try:
                accumulator = conn.sync_refresh(self._base_dn, self._filter, sent)
            except RefreshNeeded as exc:
                _log.warning("%s: refresh required: %s", self._uri, exc)
                return RefreshRequired(reason=f"syncrepl: {exc}")
            outcome = accumulator.outcome(flavour=self._flavour)
            if outcome.refresh_required is not None:
                _log.warning("%s: refresh required: %s", self._uri, outcome.refresh_required)
                return RefreshRequired(reason=f"syncrepl: {outcome.refresh_required}")
            if cookie is not None and not outcome.changed:
                # OpenLDAP sends no cookie when nothing changed: keep Kanidm's.
                return Delta(entries=(), cookie=outcome.cookie or cookie)
            mapped = self._map(conn, outcome, incremental=cookie is not None)
        _log.info(
            "%s: %s refresh: %d entries sent, %d mapped, %d deleted, present phase: %s",
            self._uri,
            "incremental" if cookie is not None else "full",
            len(outcome.entries),
            len(mapped.entries),
            len(outcome.deleted),
            "no" if outcome.present is None else f"{len(outcome.present)} ids",
        )
        batch: SourceBatch
        if cookie is None:
            if outcome.cookie is None:
                raise SourceError(
                    f"{self._uri}: the full refresh returned no sync cookie, so no later "
                    "incremental sync could start from it; is content sync (syncprov) "
                    "configured for this database?"
                )
            batch = FullImage(entries=mapped.entries, cookie=outcome.cookie)
        else:
            unmapped = set(mapped.unmapped)
            present = None
            if outcome.present is not None:
                present = [i for i in outcome.present if i not in unmapped]
            batch = Delta(
                entries=mapped.entries,
                deleted=list(dict.fromkeys([*outcome.deleted, *mapped.unmapped])),
                present=present,
                cookie=outcome.cookie or cookie,
            )
        return self._rules.apply(batch)

    def _map(
        self, conn: LdapConnection, outcome: RefreshOutcome, *, incremental: bool
    ) -> MappedBatch:
        raise NotImplementedError


class LdapSource(_SyncreplSource):
    """A generic LDAP directory read over RFC 4533, configured like kanidm-ldap-sync.

    Implements :class:`~kanidm_sync.adapters.SourceAdapter`.

    Args:
        config: the kanidm-ldap-sync configuration.
        rules: exclude and remap rules applied to every batch; by default the
            configuration's per-entry tables (:attr:`LdapConfig.rules`). Do not give
            the same rules to the runner as well.
        timeout: seconds to wait for the connection and for each server message.
        flavour: how to read the end of a refresh: ``"rfc4533"`` (OpenLDAP, 389-ds in
            OpenLDAP-compatible mode) or ``"389"`` (389-ds default mode); by default
            told from the cookie.
        first_cookie: the cookie sent with a full refresh; by default the
            configuration's ``ldap_first_cookie`` (``b"rid=000"`` for 389-ds in its
            OpenLDAP-compatible mode), else none.
    """

    def __init__(
        self,
        config: LdapConfig,
        *,
        rules: Rules | None = None,
        timeout: float = 300.0,
        flavour: Flavour | None = None,
        first_cookie: bytes | None = None,
    ) -> None:
        if first_cookie is None and config.ldap_first_cookie:
            first_cookie = config.ldap_first_cookie.encode("utf-8")
        super().__init__(
            uri=config.ldap_uri,
            bind_dn=config.ldap_sync_dn,
            bind_pw=config.ldap_sync_pw,
            base_dn=config.ldap_sync_base_dn,
            search_filter=config.search_filter,
            ca_file=config.ldap_ca,
            verify_ca=config.ldap_verify_ca,
            rules=config.rules if rules is None else rules,
            timeout=timeout,
            flavour=flavour,
            first_cookie=first_cookie,
        )
        self.config = config
        # The server's class hierarchy, read once per source (schemas rarely change).
        self._class_ancestors: dict[str, frozenset[str]] | None = None

    def _map(
        self, conn: LdapConnection, outcome: RefreshOutcome, *, incremental: bool
    ) -> MappedBatch:
        if self._class_ancestors is None:
            self._class_ancestors = class_ancestors(conn)
        member_dns = None
        if self.config.group_attr_schema == "rfc2307":
            member_dns = self._resolve_member_uids(conn, outcome.entries)
        return map_ldap_entries(
            outcome.entries,
            self.config,
            member_dns_by_uid=member_dns,
            class_ancestors=self._class_ancestors,
        )

    def _resolve_member_uids(
        self, conn: LdapConnection, entries: Sequence[LdapEntry]
    ) -> dict[str, str]:
        """Map rfc2307 member names to person DNs: from the batch, then by one lookup.

        kanidm-ldap-sync looks each name up under the base with
        ``(&(<user name attr>=<uid>)(objectclass=<person class>))``; we do the same,
        batched, for the names the batch itself does not hold.
        """
        cfg = self.config
        wanted: set[str] = set()
        found: dict[str, list[str]] = {}
        for entry in entries:
            classes = entry.object_classes(self._class_ancestors)
            if cfg.group_objectclass in classes and cfg.person_objectclass not in classes:
                wanted.update(v.lower() for v in entry.texts(cfg.group_attr_member))
            if cfg.person_objectclass in classes:
                for name in entry.texts(cfg.person_attr_user_name):
                    found.setdefault(name.lower(), []).append(entry.dn)
        missing = wanted - set(found)
        person_filter = f"(objectClass={_escape(cfg.person_objectclass)})"
        for names in or_filter(cfg.person_attr_user_name, missing):
            for dn, attributes in conn.search(
                self._base_dn, f"(&{person_filter}{names})", [cfg.person_attr_user_name]
            ):
                entry = LdapEntry(dn, uuid.UUID(int=0), attributes)
                for name in entry.texts(cfg.person_attr_user_name):
                    if name.lower() in missing:
                        found.setdefault(name.lower(), []).append(dn)
        resolved: dict[str, str] = {}
        for name, dns in found.items():
            distinct = sorted(set(dns), key=str.lower)
            if len(distinct) > 1:
                # kanidm-ldap-sync silently takes the last match; a wrong member is worse
                # than a missing one.
                _log.warning("member name %r matches %d persons; not resolved", name, len(distinct))
                continue
            resolved[name] = distinct[0]
        return resolved


class FreeIpaSource(_SyncreplSource):
    """A FreeIPA server read over RFC 4533, configured like kanidm-ipa-sync.

    Uses kanidm-ipa-sync's built-in filter and skips. On an incremental run it also
    looks up, with plain searches, every TOTP token of every changed person and the
    owner of every changed token (Kanidm keeps TOTPs inside the person's credential).

    Args:
        config: the kanidm-ipa-sync configuration.
        rules: exclude and remap rules; by default the configuration's per-entry tables.
        timeout: seconds to wait for the connection and for each server message.
        flavour: see :class:`LdapSource`; FreeIPA's 389-ds default mode is told from
            its cookies.
    """

    def __init__(
        self,
        config: IpaConfig,
        *,
        rules: Rules | None = None,
        timeout: float = 300.0,
        flavour: Flavour | None = None,
    ) -> None:
        super().__init__(
            uri=config.ipa_uri,
            bind_dn=config.ipa_sync_dn,
            bind_pw=config.ipa_sync_pw,
            base_dn=config.ipa_sync_base_dn,
            search_filter=IPA_FILTER,
            ca_file=config.ipa_ca,
            verify_ca=config.ipa_verify_ca,
            rules=config.rules if rules is None else rules,
            timeout=timeout,
            flavour=flavour,
        )
        self.config = config

    def _map(
        self, conn: LdapConnection, outcome: RefreshOutcome, *, incremental: bool
    ) -> MappedBatch:
        entries = list(outcome.entries)
        extra_tokens: list[LdapEntry] = []
        if incremental:
            # Looked-up entries must carry the ids the sync search uses.
            flavour = self._flavour or flavour_of_cookie(outcome.cookie)
            owners, extra_tokens = self._token_lookups(conn, entries, flavour)
            entries.extend(owners)
        return map_ipa_entries(entries, self.config, extra_tokens=extra_tokens)

    def _token_lookups(
        self, conn: LdapConnection, entries: Sequence[LdapEntry], flavour: Flavour
    ) -> tuple[list[LdapEntry], list[LdapEntry]]:
        persons = {e.dn.lower() for e in entries if "person" in e.object_classes()}
        owners_needed: set[str] = set()
        for token in filter(is_token, entries):
            owner = token.first("ipatokenowner")
            if owner is not None and owner.lower() not in persons:
                owners_needed.add(owner)
        # LDAP is not transactional: these reads may see a newer state than the sync
        # search did; the next run repairs any difference (as in kanidm-ipa-sync).
        owners: list[LdapEntry] = []
        for owner_dn in sorted(owners_needed):
            for dn, attributes in conn.search(
                owner_dn,
                "(&(objectClass=person)(objectClass=posixaccount))",
                # nsAccountLock is operational on 389-ds: "*" alone leaves it out, and
                # the owner would be re-sent unlocked.
                ["*", "entryUUID", "nsUniqueId", "nsAccountLock"],
                scope=_python_ldap.SCOPE_BASE,
            ):
                uid = sync_uuid_from_attributes(dn, _lower(attributes), flavour=flavour)
                owners.append(LdapEntry(dn, uid, attributes))
        tokens: list[LdapEntry] = []
        all_persons = sorted(persons | {o.dn.lower() for o in owners})
        for owner_terms in or_filter("ipatokenOwner", all_persons):
            for dn, attributes in conn.search(
                self._base_dn, f"(&{TOKEN_FILTER}{owner_terms})", ["*", "entryUUID", "nsUniqueId"]
            ):
                uid = sync_uuid_from_attributes(dn, _lower(attributes), flavour=flavour)
                tokens.append(LdapEntry(dn, uid, attributes))
        return owners, tokens


def _lower(attributes: Mapping[str, Iterable[bytes]]) -> dict[str, tuple[bytes, ...]]:
    return {k.lower(): tuple(v) for k, v in attributes.items()}


def _escape(value: str) -> str:
    from ldap.filter import escape_filter_chars

    return str(escape_filter_chars(value))


def source_from_config(
    config: LdapConfig | IpaConfig, *, rules: Rules | None = None, timeout: float = 300.0
) -> LdapSource | FreeIpaSource:
    """The source for a configuration read by :func:`load_config`.

    Args:
        config: a kanidm-ldap-sync or kanidm-ipa-sync configuration.
        rules: exclude and remap rules; by default the configuration's own.
        timeout: seconds to wait for the connection and for each server message.

    Returns:
        An :class:`LdapSource` or a :class:`FreeIpaSource`.
    """
    if isinstance(config, IpaConfig):
        return FreeIpaSource(config, rules=rules, timeout=timeout)
    return LdapSource(config, rules=rules, timeout=timeout)


# Not a public name: the "from __future__" import leaves it in dir().
del annotations
