"""Pure mapping of FreeIPA entries to Kanidm sync entries, compatible with kanidm-ipa-sync.

This module owns the FreeIPA rules (reference-sync-tools §3.4, §4.1, §4.2): the built-in
search filter, the built-in skips (``admin``, ``editors``, ``trust admins`` ...),
``ipaNTHash`` preferred over ``userPassword``, password-format checks with
``skip_invalid_password_formats``, and TOTP tokens (separate LDAP entries) attached to
their owners. It must stay pure: no python-ldap, no network; the extra LDAP lookups an
incremental run needs are done by the source (``ldap.py``) and handed in.

Differences from kanidm-ipa-sync, on purpose (docs/ldap.md):

* TOTP secrets are sent as canonical padded base64 of the raw key (the reference
  forwards whatever its LDAP library produced; the old unpadded form is refused by Kanidm);
* the per-entry tables become :class:`~kanidm_sync.Rules`, applied by the source
  to the whole batch: ``map_uuid`` / ``map_name`` / ``map_gidnumber`` work for groups
  too and remapped ids are translated in deletes;
* disabled tokens and tokens Kanidm would refuse (digits not 6/8, step < 30, unknown
  algorithm) are left out with a warning instead of failing the whole apply.
"""

from __future__ import annotations

import base64
import logging
import uuid
from collections.abc import Iterable, Mapping
from typing import Final

from .._exceptions import SourceError
from .._proto._checks import password_import_problem, password_import_scheme
from .._proto._entries import Group, Person, PosixAccount, PosixGroup, Totp
from ._ldap_config import EntryOverride, IpaConfig
from ._ldap_map import (
    DISABLED_EXPIRE,
    LdapEntry,
    MappedBatch,
    account_locked,
    mails,
    parse_u32,
    required_value,
    single_value,
    ssh_keys,
)
from ._ldap_syncrepl import Flavour

__all__ = [
    "IPA_FILTER",
    "IPA_SKIPPED_GROUPS",
    "IPA_SKIPPED_PERSONS",
    "TOKEN_FILTER",
    "is_token",
    "map_ipa_entries",
    "nt_hash_import",
    "sync_uuid_from_attributes",
]

_log = logging.getLogger("kanidm_sync.adapters.ldap")

IPA_SKIPPED_GROUPS: Final = frozenset({"admins", "ipausers", "editors", "trust admins"})
"""Groups kanidm-ipa-sync never sends: ``admins`` clashes with ``admin``'s gid,
``ipausers`` duplicates Kanidm's all-persons group, the rest are IPA internals."""

IPA_SKIPPED_PERSONS: Final = frozenset({"admin", "idm_admin"})
"""Person names kanidm-ipa-sync never sends (they are Kanidm's own accounts)."""

TOKEN_FILTER: Final = "(&(objectClass=ipatoken)(objectClass=ipatokentotp))"

IPA_FILTER: Final = (
    "(|"
    # No ipaNTUserAttrs here: users from before FreeIPA's SID generation lack it and
    # kanidm-ipa-sync syncs them (with their userPassword).
    "(&(objectClass=person)(objectClass=posixaccount))"
    "(&(objectClass=groupofnames)(objectClass=ipausergroup)"
    "(!(objectClass=mepmanagedentry))(!(cn=admins))(!(cn=ipausers))"
    "(!(cn=editors))(!(cn=trust admins)))"
    f"{TOKEN_FILTER}"
    ")"
)
"""The search filter kanidm-ipa-sync builds in (kanidm: tools/iam_migrations/freeipa/src/main.rs).

User-private groups (``mepManagedEntry``) are left out because Kanidm makes its own."""

_NO_OVERRIDE: Final = EntryOverride()
_ALGOS: Final = frozenset({"sha1", "sha256", "sha512"})


def is_token(entry: LdapEntry) -> bool:
    """Whether the entry is a FreeIPA TOTP token."""
    classes = entry.object_classes()
    return "ipatoken" in classes and "ipatokentotp" in classes


def sync_uuid_from_attributes(
    entry_dn: str, attributes: Mapping[str, object], *, flavour: Flavour = "rfc4533"
) -> uuid.UUID:
    """The sync UUID of an entry read by a plain search (no Sync State control).

    The attribute the server's content sync identifies entries by: ``entryUUID`` for
    OpenLDAP and 389-ds in its OpenLDAP-compatible mode (``flavour="rfc4533"``);
    ``nsUniqueId`` for 389-ds in its default mode (``flavour="389"``, FreeIPA), whose
    ``ac60034b-349811ed-a50d919b-4b1a5ec0`` is the same 32 hex digits regrouped as a UUID
    (reference-sync-tools §3.5). 389-ds 2.x stores an ``entryUUID`` too, which its
    default mode does not use: reading that one would give a looked-up entry a new id,
    and Kanidm would refuse the batch (409 on ``sync_external_id``). The other attribute
    is the fallback.

    Args:
        entry_dn: the DN, for the error message.
        attributes: lower-case attribute names -> raw values.
        flavour: the content sync flavour of the search whose ids these must match.

    Returns:
        The UUID.

    Raises:
        SourceError: the entry has neither attribute.
    """
    order = ("nsuniqueid", "entryuuid") if flavour == "389" else ("entryuuid", "nsuniqueid")
    for name in order:
        values = attributes.get(name)
        if isinstance(values, tuple | list) and values:
            raw = values[0]
            text = raw.decode("ascii", "replace") if isinstance(raw, bytes) else str(raw)
            try:
                return uuid.UUID(hex=text.replace("-", "").strip())
            except ValueError:
                break
    raise SourceError(f"{entry_dn}: no entryUUID or nsUniqueId to identify the entry")


def nt_hash_import(raw: bytes) -> str:
    """The ``password_import`` value for a raw ``ipaNTHash``.

    URL-safe base64 without padding, as the golden kanidmd fixtures carry it (Kanidm
    accepts it with or without padding).
    """
    return "ipaNTHash: " + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _password(entry: LdapEntry, config: IpaConfig) -> str | None:
    nt_hashes = entry.attributes.get("ipanthash", ())
    if nt_hashes:
        return nt_hash_import(nt_hashes[0])
    value = single_value(entry, "userpassword", "userPassword")
    if value is None:
        return None
    problem = password_import_problem(value)
    if problem is None:
        return value
    # Kanidm's parser says InvalidFormat for a format it knows but refuses (the 389-ds
    # {PBKDF2_SHA256}) or cannot read, and NoDecoderFound for an unknown scheme. Only
    # InvalidFormat may be skipped, as in kanidm-ipa-sync. [inferred: which malformed
    # values Kanidm classes as InvalidFormat]
    invalid_format = (
        password_import_scheme(value) is not None or value[:15].upper() == "{PBKDF2_SHA256}"
    )
    if invalid_format and config.skip_invalid_password_formats:
        _log.warning(
            "%s: userPassword is in a format Kanidm cannot import; importing the user "
            "without a password (skip_invalid_password_formats)",
            entry.dn,
        )
        return None
    hint = " (or set skip_invalid_password_formats = true)" if invalid_format else ""
    raise SourceError(f"{entry.dn}: userPassword cannot be imported by Kanidm: {problem}{hint}")


def _totp(token: LdapEntry) -> Totp | None:
    if any(v.strip().upper() == "TRUE" for v in token.texts("ipatokendisabled")):
        _log.warning("%s: token is disabled; not imported", token.dn)
        return None
    keys = token.attributes.get("ipatokenotpkey", ())
    external_id = token.first("ipatokenuniqueid")
    algo = (token.first("ipatokenotpalgorithm") or "sha1").strip().lower()
    try:
        step = int(token.first("ipatokentotptimestep") or "30")
        digits = int(token.first("ipatokenotpdigits") or "6")
    except ValueError:
        _log.warning("%s: token step or digits is not a number; not imported", token.dn)
        return None
    if not keys or external_id is None:
        _log.warning("%s: token has no key or no id; not imported", token.dn)
        return None
    if algo not in _ALGOS or step < 30 or digits not in (6, 8):
        _log.warning(
            "%s: token settings Kanidm cannot import (algo, step >= 30, digits 6 or 8); "
            "not imported",
            token.dn,
        )
        return None
    # The key is raw bytes from python-ldap: encode it as canonical padded base64, which
    # is what Kanidm decodes (the reference tool's unpadded secrets are refused).
    secret = base64.b64encode(keys[0]).decode("ascii")
    return Totp(external_id=external_id, secret=secret, algo=algo, step=step, digits=digits)


def _person(
    entry: LdapEntry, config: IpaConfig, override: EntryOverride, tokens: list[LdapEntry]
) -> Person | None:
    name = required_value(entry, "uid", "uid")
    # The skip looks at the final name, so map_name can bring such a user back under
    # another name (the rename itself is applied later, by the Rules).
    if (override.map_name or name) in IPA_SKIPPED_PERSONS:
        _log.info("%s: built-in skip of %r", entry.dn, name)
        return None
    displayname = required_value(entry, "cn", "cn")
    # uidNumber, not gidNumber: installs that point many users at one shared group
    # would clash on Kanidm's unique gidnumber (kanidm/kanidm#1737).
    gidnumber = parse_u32(entry, single_value(entry, "uidnumber", "uidNumber"), "uidNumber", "")
    password = _password(entry, config)
    totps: list[Totp] = []
    for token in sorted(tokens, key=lambda t: t.dn.lower()):
        totp = _totp(token)
        if totp is not None:
            totps.append(totp)
    if totps and password is None:
        _log.warning(
            "%s: has TOTP tokens but no password to attach them to; tokens not imported",
            entry.dn,
        )
        totps = []
    unix_pw = password if config.sync_password_as_unix_password else None
    loginshell = single_value(entry, "loginshell", "loginShell")
    posix = None
    if gidnumber is not None or loginshell is not None or unix_pw is not None:
        posix = PosixAccount(
            gidnumber=gidnumber, loginshell=loginshell, unix_password_import=unix_pw
        )
    return Person(
        id=entry.sync_uuid,
        external_id=entry.dn,
        name=name,
        displayname=displayname,
        mail=mails(entry.texts("mail")),
        ssh_publickey=ssh_keys(entry.texts("ipasshpubkey"), "ipasshpubkey"),
        password_import=password,
        totp_import=totps,
        account_expire=DISABLED_EXPIRE if account_locked(entry) else None,
        posix=posix,
    )


def _group(entry: LdapEntry, override: EntryOverride) -> Group | None:
    cn = required_value(entry, "cn", "cn")
    if (override.map_name or cn).lower() in IPA_SKIPPED_GROUPS:
        _log.info("%s: built-in skip of group %r", entry.dn, cn)
        return None
    gidnumber = parse_u32(entry, single_value(entry, "gidnumber", "gidNumber"), "gidNumber", "")
    return Group(
        id=entry.sync_uuid,
        external_id=entry.dn,
        name=cn,
        description=single_value(entry, "description", "description"),
        member=sorted(set(entry.texts("member"))),
        posix=PosixGroup(gidnumber=gidnumber) if gidnumber is not None else None,
    )


def map_ipa_entries(
    entries: Iterable[LdapEntry],
    config: IpaConfig,
    *,
    extra_tokens: Iterable[LdapEntry] = (),
) -> MappedBatch:
    """Map a FreeIPA sync batch the way kanidm-ipa-sync does (with its bugs fixed).

    TOTP token entries are attached to the person named by their ``ipatokenOwner``
    (matched case-insensitively by DN); they never become entries themselves.

    Args:
        entries: the entries of the sync search (persons, groups, tokens), then any
            looked up by plain searches (owners of changed tokens), whose ids the source
            read with :func:`sync_uuid_from_attributes` in the search's flavour.
        config: the kanidm-ipa-sync configuration.
        extra_tokens: further tokens of persons in ``entries`` (an incremental run
            fetches every token of every changed person, since tokens that did not
            change are not in the batch).

    Returns:
        The mapped entries (in input order) and the ids of entries that map to nothing
        (token entries are not listed: they are part of their owner).

    Raises:
        SourceError: a required attribute is missing or a password cannot be imported.
    """
    batch = list(entries)
    extra = list(extra_tokens)
    tokens_by_owner: dict[str, dict[uuid.UUID, LdapEntry]] = {}
    for token in [e for e in batch if is_token(e)] + extra:
        owner = token.first("ipatokenowner")
        if owner is None:
            _log.warning("%s: token has no owner; not imported", token.dn)
            continue
        tokens_by_owner.setdefault(owner.lower(), {})[token.sync_uuid] = token
    out: list[Person | Group] = []
    unmapped: list[uuid.UUID] = []
    for entry in batch:
        if is_token(entry):
            continue
        override = config.entry_map.get(entry.sync_uuid, _NO_OVERRIDE)
        mapped: Person | Group | None = None
        if "person" in entry.object_classes():
            tokens = list(tokens_by_owner.get(entry.dn.lower(), {}).values())
            mapped = _person(entry, config, override, tokens)
        elif "groupofnames" in entry.object_classes():
            mapped = _group(entry, override)
        else:
            _log.debug("%s: not a person, group or token; skipped", entry.dn)
        if mapped is None:
            unmapped.append(entry.sync_uuid)
        else:
            out.append(mapped)
    return MappedBatch(tuple(out), tuple(unmapped))
