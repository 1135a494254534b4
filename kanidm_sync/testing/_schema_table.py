"""The slice of Kanidm's schema the in-memory double needs (spec §1, §3.6, §3.9).

Owns: one table of attribute definitions (syntax, multi-valued, unique, sync-allowed,
phantom) and one table of class definitions (must/may lists, supplements, excludes,
sync-allowed), plus the derived sets the apply logic uses (sync-allowed classes, the
sync-owned attribute set of an entry). Must not: hold state, do I/O, or know about HTTP.

The apply logic derives every owned-attribute set from these tables instead of
hard-coding one per test, as spec §3.6 asks: adding a sync-allowed ``may`` attribute
to a class here extends what a sync may write, exactly as an admin's schema change
would on kanidmd. Values follow kanidm: server/lib/src/migration_data/dl_1_12/schema.rs
and system/schema.rs at the spec's baseline; the non-sync-allowed ``may`` lists are
abridged to the attributes the double can ever hold.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Final

import attrs

__all__ = [
    "ATTRIBUTES",
    "CLASSES",
    "REFERENCE_ATTRS",
    "SYNC_ALLOWED_CLASSES",
    "SYNC_URN_PREFIX",
    "UNIQUE_ATTRS",
    "AttrDef",
    "ClassDef",
    "class_rules",
    "owned_attributes",
]

SYNC_URN_PREFIX: Final = "urn:ietf:params:scim:schemas:kanidm:sync:1:"


@attrs.frozen
class AttrDef:
    """One attribute of Kanidm's schema.

    Attributes:
        name: the attribute name (lower-case).
        syntax: the syntax tag; decides the SCIM conversion (§3.9).
        multi: whether the attribute is multi-valued.
        unique: whether values are unique across all live entries.
        sync_allowed: the schema flag ``sync_allowed``.
        phantom: a phantom attribute (consumed by a plugin, never stored).
    """

    name: str
    syntax: str
    multi: bool = False
    unique: bool = False
    sync_allowed: bool = False
    phantom: bool = False


@attrs.frozen
class ClassDef:
    """One class of Kanidm's schema.

    Attributes:
        name: the class name.
        must: attributes the class requires (systemmust + must).
        may: attributes the class allows (systemmay + may).
        supplements: at least one of these classes must also be present.
        excludes: none of these classes may be present.
        sync_allowed: the schema flag ``sync_allowed``.
    """

    name: str
    must: frozenset[str] = frozenset()
    may: frozenset[str] = frozenset()
    supplements: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    sync_allowed: bool = False


def _a(
    name: str,
    syntax: str,
    *,
    multi: bool = False,
    unique: bool = False,
    sync: bool = False,
    phantom: bool = False,
) -> AttrDef:
    return AttrDef(name, syntax, multi, unique, sync, phantom)


ATTRIBUTES: Final[Mapping[str, AttrDef]] = {
    a.name: a
    for a in (
        # Core bookkeeping.
        _a("uuid", "uuid", unique=True),
        _a("class", "utf8_ci", multi=True),
        _a("spn", "spn", unique=True),
        _a("memberof", "reference", multi=True),
        _a("directmemberof", "reference", multi=True),
        # Sync markers (spec §1).
        _a("sync_parent_uuid", "reference"),
        _a("sync_external_id", "utf8_ci", unique=True),
        _a("sync_class", "utf8_ci", multi=True),
        _a("sync_token_session", "apitoken", unique=True),
        _a("sync_cookie", "private_binary"),
        _a("sync_credential_portal", "url"),
        _a("sync_yield_authority", "utf8_ci", multi=True),
        # Sync-allowed, writable (§3.6 table).
        _a("name", "iname", unique=True, sync=True),
        _a("displayname", "utf8", sync=True),
        _a("description", "utf8", sync=True),
        _a("legalname", "utf8", sync=True),
        _a("mail", "email", multi=True, unique=True, sync=True),
        _a("ssh_publickey", "sshkey", multi=True, sync=True),
        _a("account_expire", "datetime", sync=True),
        _a("account_valid_from", "datetime", sync=True),
        _a("account_softlock_expire", "datetime", sync=True),
        _a("loginshell", "utf8_ci", sync=True),
        _a("gidnumber", "uint32", unique=True, sync=True),
        _a("member", "reference", multi=True, sync=True),
        _a("oauth2_account_provider", "reference", sync=True),
        _a("oauth2_account_unique_user_id", "utf8", sync=True),
        _a("oauth2_account_unique_user_sub", "utf8", sync=True),
        # Sync-allowed but no SCIM conversion ("purge-only", §3.6).
        _a("name_history", "auditlog", multi=True, sync=True),
        _a("primary_credential", "credential", sync=True),
        _a("passkeys", "passkey", multi=True, sync=True),
        _a("attested_passkeys", "attested_passkey", multi=True, sync=True),
        _a("radius_secret", "secret", sync=True),
        # Phantoms (consumed by the credential-import plugin).
        _a("password_import", "utf8", sync=True, phantom=True),
        _a("unix_password_import", "utf8", sync=True, phantom=True),
        _a("totp_import", "totp", multi=True, sync=True, phantom=True),
        # Not sync-allowed.
        _a("unix_password", "credential"),
        _a("oauth2_account_credential_uuid", "uuid"),
        _a("user_auth_token_session", "session", multi=True),
        _a("oauth2_session", "oauth2session", multi=True),
        _a("builtin", "bool"),
    )
}
"""Every attribute the double knows, keyed by name."""


def _c(
    name: str,
    *,
    must: Iterable[str] = (),
    may: Iterable[str] = (),
    supplements: tuple[str, ...] = (),
    excludes: tuple[str, ...] = (),
    sync: bool = False,
) -> ClassDef:
    return ClassDef(name, frozenset(must), frozenset(may), supplements, excludes, sync)


CLASSES: Final[Mapping[str, ClassDef]] = {
    c.name: c
    for c in (
        _c("object", must=("uuid", "class"), may=("description",)),
        _c("builtin"),
        _c("memberof", may=("memberof", "directmemberof")),
        _c("sync_object", must=("sync_parent_uuid",), may=("sync_external_id", "sync_class")),
        _c(
            "sync_account",
            must=("name",),
            may=(
                "description",
                "sync_token_session",
                "sync_cookie",
                "sync_credential_portal",
                "sync_yield_authority",
            ),
            excludes=("account",),
        ),
        _c(
            "account",
            must=("displayname", "spn"),
            may=(
                "account_expire",
                "account_valid_from",
                "account_softlock_expire",
                "name_history",
                "user_auth_token_session",
                "oauth2_session",
                "memberof",
                "directmemberof",
            ),
            supplements=("person", "service_account", "oauth2_resource_server"),
            sync=True,
        ),
        _c(
            "person",
            must=("name",),
            may=(
                "mail",
                "ssh_publickey",
                "legalname",
                "primary_credential",
                "passkeys",
                "attested_passkeys",
                "radius_secret",
            ),
            excludes=("service_account", "application"),
            sync=True,
        ),
        _c(
            "posixaccount",
            must=("gidnumber",),
            may=("loginshell", "unix_password"),
            supplements=("account",),
            sync=True,
        ),
        _c(
            "group",
            # name is a may of group (SCHEMA_CLASS_GROUP_DL6 in kanidm v1.11.1
            # migration_data/dl15/schema.rs): a synced group re-sent without name loses it.
            must=("spn",),
            may=("name", "description", "mail", "member", "memberof", "directmemberof"),
            sync=True,
        ),
        _c("posixgroup", must=("gidnumber",), supplements=("group",), sync=True),
        _c(
            "oauth2_account",
            must=(
                "oauth2_account_provider",
                "oauth2_account_unique_user_id",
                "oauth2_account_unique_user_sub",
                "oauth2_account_credential_uuid",
            ),
            supplements=("person",),
            sync=True,
        ),
        _c(
            "service_account",
            must=("name",),
            may=("description", "mail", "ssh_publickey", "primary_credential"),
            excludes=("person",),
            sync=True,
        ),
        _c("oauth2_resource_server", must=("name",), may=("description",)),
        _c("application", must=("name",), may=("description",)),
        _c("system", may=("description",)),
    )
}
"""Every class the double knows, keyed by name."""

SYNC_ALLOWED_CLASSES: Final = frozenset(c.name for c in CLASSES.values() if c.sync_allowed)
"""Classes a ``schemas`` URN may name (spec §3.6)."""

UNIQUE_ATTRS: Final = tuple(sorted(a.name for a in ATTRIBUTES.values() if a.unique))
"""Attributes whose values must be unique across live entries (sorted)."""

REFERENCE_ATTRS: Final = ("member", "oauth2_account_provider")
"""Stored reference attributes that referential integrity maintains (memberof is derived)."""


_PHANTOMS: Final = frozenset(a.name for a in ATTRIBUTES.values() if a.phantom and a.sync_allowed)


@functools.lru_cache(maxsize=256)
def _owned(classes: frozenset[str], yielded: frozenset[str]) -> frozenset[str]:
    names: set[str] = set()
    for cls in classes:
        cdef = CLASSES[cls]
        names |= cdef.must
        names |= cdef.may
    purged = frozenset(n for n in names if ATTRIBUTES[n].sync_allowed and not ATTRIBUTES[n].phantom)
    return purged - yielded


def owned_attributes(
    classes: Iterable[str], yielded: frozenset[str]
) -> tuple[frozenset[str], frozenset[str]]:
    """The sync-owned attribute set of an entry that requests ``classes`` (spec §3.6).

    Args:
        classes: the classes named by the entry's ``schemas`` URNs.
        yielded: the account's ``sync_yield_authority`` values (lower-case).

    Returns:
        ``(purged, phantoms)``: the non-phantom owned attributes (purged before the new
        values are written) and the phantom attributes (never purged, never yielded).
    """
    # Cached: a refresh computes this for every entry, with few distinct class sets.
    return _owned(frozenset(classes), yielded), _PHANTOMS


@functools.lru_cache(maxsize=256)
def class_rules(classes: frozenset[str]) -> tuple[frozenset[str], frozenset[str]]:
    """The (must, allowed) attribute sets of an entry with ``classes`` (cached).

    Args:
        classes: the entry's classes (all known to :data:`CLASSES`).

    Returns:
        ``(must, must + may)``.
    """
    must: set[str] = set()
    may: set[str] = set()
    for cls in classes:
        must |= CLASSES[cls].must
        may |= CLASSES[cls].may
    return frozenset(must), frozenset(must | may)
