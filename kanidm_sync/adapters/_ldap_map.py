"""Pure mapping of LDAP entries to Kanidm sync entries, compatible with kanidm-ldap-sync.

This module owns turning ``(dn, attributes)`` (attribute values as the raw ``bytes``
python-ldap returns) into :class:`~kanidm_sync.Person` / :class:`~kanidm_sync.Group`
values, following the rules of kanidm-ldap-sync (reference-sync-tools §4.3) with the
corrections listed in docs/ldap.md. It must stay pure: no python-ldap import, no network,
no clock; so every rule is tested without a server (tests/adapters/test_ldap_map.py).

Rules shared with the FreeIPA mapping (``_freeipa.py``) live here too: attribute-name
normalisation, text decoding with errors that name the entry and field (never a secret
value), overrides, disabled accounts.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

import attrs

from .._exceptions import SourceError
from .._proto._checks import password_import_format_ok
from .._proto._entries import Group, Mail, Person, PosixAccount, PosixGroup, SshPublicKey
from ._ldap_config import LdapConfig

__all__ = [
    "DISABLED_EXPIRE",
    "LdapEntry",
    "MappedBatch",
    "account_locked",
    "dn_first_value",
    "map_ldap_entries",
    "map_ldap_entry",
    "normalise_attributes",
]

_log = logging.getLogger("kanidm_sync.adapters.ldap")

DISABLED_EXPIRE: Final = "1970-01-01T00:00:00+00:00"
"""``account_expire`` the reference tools send for a locked account."""


def normalise_attributes(
    attributes: Mapping[str, Sequence[bytes]],
) -> dict[str, tuple[bytes, ...]]:
    """Lower-case attribute names (LDAP names are case-insensitive), merging duplicates.

    Args:
        attributes: attribute name -> raw values, as python-ldap returns them.

    Returns:
        A new mapping with lower-case names and tuple values.
    """
    out: dict[str, tuple[bytes, ...]] = {}
    for name, values in attributes.items():
        key = name.lower()
        out[key] = out.get(key, ()) + tuple(values)
    return out


@attrs.frozen
class LdapEntry:
    """One LDAP entry as the sync search returned it.

    Attributes:
        dn: the entry's DN (becomes the Kanidm ``externalId``).
        sync_uuid: the RFC 4533 sync UUID (entryUUID on OpenLDAP, nsUniqueId on 389-ds).
        attributes: lower-case attribute name -> raw values.
    """

    dn: str
    sync_uuid: uuid.UUID
    attributes: Mapping[str, tuple[bytes, ...]] = attrs.field(
        converter=normalise_attributes, repr=False, eq=False, hash=False
    )

    def texts(self, name: str) -> list[str]:
        """Every value of ``name`` decoded as UTF-8.

        Args:
            name: the attribute name (any case).

        Returns:
            The values, in server order.

        Raises:
            SourceError: a value is not UTF-8 (the value itself is not shown).
        """
        out = []
        for raw in self.attributes.get(name.lower(), ()):
            try:
                out.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                raise SourceError(
                    f"{self.dn}: attribute {name} holds a value that is not UTF-8"
                ) from None
        return out

    def first(self, name: str) -> str | None:
        """The first value of ``name`` as text, or ``None`` when absent."""
        values = self.texts(name)
        return values[0] if values else None

    def object_classes(
        self, ancestors: Mapping[str, frozenset[str]] | None = None
    ) -> frozenset[str]:
        """The entry's object classes, lower-cased.

        Args:
            ancestors: object class -> itself and its superclasses (lower case), from
                the server's schema; with it the result includes every superclass.
        """
        own = {v.lower() for v in self.texts("objectclass")}
        if ancestors:
            for name in list(own):
                own.update(ancestors.get(name, ()))
        return frozenset(own)


def dn_first_value(dn: str, attribute: str) -> str | None:
    """The value of ``attribute`` in the DN's first RDN, or ``None``.

    Handles simple RDNs (``uid=alice,...``) and escaped commas; multi-valued RDNs
    (``cn=a+sn=b``) are searched too.

    Args:
        dn: the DN.
        attribute: the attribute name (any case).

    Returns:
        The unescaped value, or ``None`` when the first RDN does not carry it.
    """
    rdn, escaped = [], False
    for char in dn:
        if escaped:
            rdn.append(char)
            escaped = False
        elif char == "\\":
            rdn.append(char)
            escaped = True
        elif char == ",":
            break
        else:
            rdn.append(char)
    for part in "".join(rdn).split("+"):
        name, sep, value = part.partition("=")
        if sep and name.strip().lower() == attribute.lower():
            return _unescape_dn_value(value.strip())
    return None


def _unescape_dn_value(value: str) -> str:
    out, i = bytearray(), 0
    raw = value.encode("utf-8")
    while i < len(raw):
        if raw[i : i + 1] == b"\\" and i + 1 < len(raw):
            pair = raw[i + 1 : i + 3]
            try:
                out.append(int(pair, 16))
                i += 3
                continue
            except ValueError:
                out += raw[i + 1 : i + 2]
                i += 2
                continue
        out += raw[i : i + 1]
        i += 1
    return out.decode("utf-8", "replace")


def single_value(entry: LdapEntry, name: str, role: str) -> str | None:
    """The one value of a single-valued role, or ``None`` when absent.

    When the attribute has several values, the one in the entry's RDN wins (a
    ``modrdn`` without ``deleteoldrdn`` leaves the old name behind); otherwise the
    first one is used. kanidm-ldap-sync fails on several values instead.

    Args:
        entry: the entry.
        name: the attribute name.
        role: the config key that named the attribute, for messages.

    Returns:
        The value, or ``None``.
    """
    values = entry.texts(name)
    if len(values) <= 1:
        return values[0] if values else None
    in_rdn = dn_first_value(entry.dn, name)
    if in_rdn is not None:
        for value in values:
            if value.lower() == in_rdn.lower():
                return value
    _log.warning("%s: %s (%s) has %d values; using the first", entry.dn, name, role, len(values))
    return values[0]


def required_value(entry: LdapEntry, name: str, role: str) -> str:
    """Like :func:`single_value` but a missing value is an error.

    Raises:
        SourceError: the attribute is missing (the message names entry and role).
    """
    value = single_value(entry, name, role)
    if value is None:
        raise SourceError(f"{entry.dn}: missing required attribute {name} ({role})")
    return value


def parse_u32(entry: LdapEntry, text: str | None, name: str, role: str) -> int | None:
    """Parse a gidnumber-like value.

    Raises:
        SourceError: the value is not an unsigned 32-bit integer.
    """
    if text is None:
        return None
    try:
        number = int(text.strip())
    except ValueError:
        number = -1
    if not 0 <= number < 2**32:
        raise SourceError(f"{entry.dn}: {name} ({role}) is not a u32 number")
    return number


def account_locked(entry: LdapEntry) -> bool:
    """Whether ``nsAccountLock`` locks the account (389-ds, FreeIPA).

    Any value other than ``false`` (any case) locks it. kanidm-ldap-sync accepts only
    ``FALSE`` and ``false`` as unlocked; ``False`` locked the account there.
    """
    return any(value.strip().lower() != "false" for value in entry.texts("nsaccountlock"))


def ssh_keys(values: Iterable[str], prefix: str) -> tuple[SshPublicKey, ...]:
    """SSH keys labelled ``<prefix>-<n>`` in sorted value order, as the reference tools do."""
    return tuple(
        SshPublicKey(label=f"{prefix}-{i}", value=value.strip())
        for i, value in enumerate(sorted(set(values)))
    )


def mails(values: Iterable[str]) -> tuple[Mail, ...]:
    """Mail addresses in sorted order without flags (Kanidm makes the first primary).

    The reference tools keep values in a sorted set, so the primary address is the
    alphabetically first one; we keep that for compatibility.
    """
    return tuple(Mail(value=v) for v in sorted(set(values)))


def _password(entry: LdapEntry, config: LdapConfig) -> str | None:
    values = entry.texts(config.person_attr_password)
    if not values:
        return None
    prefix = config.person_password_prefix or ""
    candidates = [prefix + value for value in values]
    if len(candidates) == 1:
        return candidates[0]
    # kanidm-ldap-sync silently drops a multi-valued password (kanidm/kanidm#4359); the
    # user then cannot log in. Take the first value Kanidm can import instead.
    for candidate in candidates:
        if password_import_format_ok(candidate):
            _log.warning(
                "%s: %s has %d values; importing the first Kanidm understands",
                entry.dn,
                config.person_attr_password,
                len(values),
            )
            return candidate
    _log.warning(
        "%s: none of the %d %s values is in a format Kanidm imports; sending the first",
        entry.dn,
        len(values),
        config.person_attr_password,
    )
    return candidates[0]


def map_ldap_entry(
    dn: str,
    attributes: Mapping[str, Sequence[bytes]],
    *,
    sync_uuid: uuid.UUID,
    config: LdapConfig,
    member_dns_by_uid: Mapping[str, str] | None = None,
    class_ancestors: Mapping[str, frozenset[str]] | None = None,
) -> Person | Group | None:
    """Map one LDAP entry the way kanidm-ldap-sync does (with its bugs fixed).

    Persons are recognised before groups, by ``person_objectclass`` and
    ``group_objectclass``. Anything else maps to ``None``. The per-entry tables
    (``exclude``, ``map_*``) are not applied here: they become a
    :class:`~kanidm_sync.Rules` (:attr:`LdapConfig.rules`) that the source applies
    to the whole batch, so that deleted ids and group members follow remaps too.

    Args:
        dn: the entry's DN; the Kanidm ``externalId``.
        attributes: raw attribute values (names in any case).
        sync_uuid: the entry's sync UUID; the Kanidm id.
        config: the kanidm-ldap-sync configuration.
        member_dns_by_uid: for ``group_attr_schema = "rfc2307"``, user name -> DN
            (lower-case keys); names not in it are dropped with a warning.
        class_ancestors: object class -> its superclasses, from the server's schema,
            so that an ``inetOrgPerson`` is a ``person`` even when its ``objectClass``
            values do not say so (kanidm-ldap-sync skips such entries).

    Returns:
        A Person, a Group, or ``None`` when the entry is not synced.

    Raises:
        SourceError: a required attribute is missing or a number does not parse.
    """
    return _map(
        LdapEntry(dn, sync_uuid, attributes),
        config=config,
        member_dns_by_uid=member_dns_by_uid,
        class_ancestors=class_ancestors,
    )


def _map(
    entry: LdapEntry,
    *,
    config: LdapConfig,
    member_dns_by_uid: Mapping[str, str] | None,
    class_ancestors: Mapping[str, frozenset[str]] | None,
) -> Person | Group | None:
    """:func:`map_ldap_entry` of an entry already built (its attributes normalised once)."""
    dn, sync_uuid = entry.dn, entry.sync_uuid
    classes = entry.object_classes(class_ancestors)
    if config.person_objectclass in classes:
        name = required_value(entry, config.person_attr_user_name, "person_attr_user_name")
        displayname = required_value(
            entry, config.person_attr_display_name, "person_attr_display_name"
        )
        gidnumber = parse_u32(
            entry,
            single_value(entry, config.person_attr_gidnumber, "person_attr_gidnumber"),
            config.person_attr_gidnumber,
            "person_attr_gidnumber",
        )
        password = _password(entry, config)
        loginshell = single_value(entry, config.person_attr_login_shell, "person_attr_login_shell")
        posix = None
        unix_pw = password if config.sync_password_as_unix_password else None
        # loginshell and unix_password_import need the posixaccount class; the reference
        # tool only adds it with a gidnumber, and Kanidm then refuses the entry.
        if gidnumber is not None or loginshell is not None or unix_pw is not None:
            posix = PosixAccount(
                gidnumber=gidnumber, loginshell=loginshell, unix_password_import=unix_pw
            )
        return Person(
            id=sync_uuid,
            external_id=dn,
            name=name,
            displayname=displayname,
            mail=mails(entry.texts(config.person_attr_mail)),
            ssh_publickey=ssh_keys(entry.texts(config.person_attr_ssh_public_key), "sshpublickey"),
            password_import=password,
            account_expire=DISABLED_EXPIRE if account_locked(entry) else None,
            posix=posix,
        )
    if config.group_objectclass in classes:
        name = required_value(entry, config.group_attr_name, "group_attr_name")
        gidnumber = parse_u32(
            entry,
            single_value(entry, config.group_attr_gidnumber, "group_attr_gidnumber"),
            config.group_attr_gidnumber,
            "group_attr_gidnumber",
        )
        members = entry.texts(config.group_attr_member)
        if config.group_attr_schema == "rfc2307":
            members = _resolve_member_uids(entry, members, member_dns_by_uid or {})
        return Group(
            id=sync_uuid,
            external_id=dn,
            name=name,
            description=single_value(
                entry, config.group_attr_description, "group_attr_description"
            ),
            member=sorted(set(members)),
            posix=PosixGroup(gidnumber=gidnumber) if gidnumber is not None else None,
        )
    _log.debug("%s: neither a person nor a group; skipped", dn)
    return None


def _resolve_member_uids(
    entry: LdapEntry, uids: list[str], member_dns_by_uid: Mapping[str, str]
) -> list[str]:
    out = []
    for uid in uids:
        member_dn = member_dns_by_uid.get(uid.lower())
        if member_dn is None:
            _log.warning("%s: member %r does not resolve to a person; dropped", entry.dn, uid)
        else:
            out.append(member_dn)
    return out


@attrs.frozen
class MappedBatch:
    """What a batch of LDAP entries maps to.

    Attributes:
        entries: the Kanidm entries, in the order of the LDAP entries.
        unmapped: sync UUIDs of LDAP entries that map to nothing (skipped, not a person
            or group). The source reports
            them as deleted, so an entry that stops being synced leaves Kanidm, as a full
            refresh would make it.
    """

    entries: tuple[Person | Group, ...]
    unmapped: tuple[uuid.UUID, ...]


def map_ldap_entries(
    entries: Iterable[LdapEntry],
    config: LdapConfig,
    *,
    member_dns_by_uid: Mapping[str, str] | None = None,
    class_ancestors: Mapping[str, frozenset[str]] | None = None,
) -> MappedBatch:
    """Map many entries with :func:`map_ldap_entry`.

    Args:
        entries: the LDAP entries.
        config: the configuration.
        member_dns_by_uid: rfc2307 member resolution, see :func:`map_ldap_entry`.
        class_ancestors: the server's class hierarchy, see :func:`map_ldap_entry`.

    Returns:
        The mapped entries and the ids of entries that map to nothing.

    Raises:
        SourceError: an entry cannot be mapped.
    """
    out: list[Person | Group] = []
    unmapped: list[uuid.UUID] = []
    for entry in entries:
        mapped = _map(
            entry,
            config=config,
            member_dns_by_uid=member_dns_by_uid,
            class_ancestors=class_ancestors,
        )
        if mapped is None:
            unmapped.append(entry.sync_uuid)
        else:
            out.append(mapped)
    return MappedBatch(tuple(out), tuple(unmapped))
