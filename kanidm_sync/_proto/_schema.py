"""Kanidm's schema as far as the sync protocol sees it: a pure data table (spec §1, §3.6-§3.9).

This module owns the facts "which attribute has which syntax and flags" and "which class
may/must carry which attributes", for the classes a sync account can request and the
attributes they touch, at the 1.12 baseline (kanidm:
server/lib/src/migration_data/dl_1_12/schema.rs and .../system/schema.rs). From them it
derives what an entry owns (spec §3.6, §4.5 step 4): the union over its classes of
may/must attributes whose schema flag ``sync_allowed`` is set, minus yielded ones, plus
the three phantom import attributes.

It must not: validate values (that is ``_checks.py``), know about entries or ChangeSets,
or do I/O. Admins can add sync-allowed classes and attributes to a real Kanidm; callers
that model such a server pass extra :class:`AttributeSchema` / :class:`ClassSchema`
values to :class:`Schema` rather than editing the tables here.

Public API (used by the validator and by the in-memory double):

* :data:`ATTRIBUTES`, :data:`CLASSES` - the tables, ``Mapping[str, ...]`` keyed by
  lower-case name;
* :data:`DEFAULT_SCHEMA` - a :class:`Schema` over them, with :meth:`Schema.owned`,
  :meth:`Schema.writable`, :meth:`Schema.purged`, :meth:`Schema.class_problems`,
  :meth:`Schema.missing_must`;
* :func:`class_from_urn` - ``"urn:...:sync:1:person"`` -> ``"person"``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Final

import attrs

from ._entries import SCHEMA_PREFIX

__all__ = [
    "ATTRIBUTES",
    "AUTO_GENERATED",
    "CLASSES",
    "CONVERTIBLE_SYNTAXES",
    "DEFAULT_SCHEMA",
    "HEADER_KEYS",
    "PHANTOM_ATTRIBUTES",
    "AttributeSchema",
    "ClassSchema",
    "Schema",
    "Syntax",
    "class_from_urn",
]


class Syntax(StrEnum):
    """Kanidm attribute syntaxes that matter to sync (kanidm: server/lib/src/value.rs).

    Only the syntaxes listed in :data:`CONVERTIBLE_SYNTAXES` have a JSON conversion in
    kanidmd's sync path (spec §3.9); an owned attribute of any other syntax fails with
    ``Unsupported attribute conversion``.
    """

    UTF8 = "utf8string"
    UTF8_INSENSITIVE = "utf8string_insensitive"
    INAME = "utf8string_iname"
    UINT32 = "uint32"
    REFERENCE_UUID = "reference_uuid"
    EMAIL = "email_address"
    SSHKEY = "sshkey"
    DATETIME = "datetime"
    TOTP_IMPORT = "totp_import"
    """The phantom ``totp_import``: a list of TOTP objects (spec §3.9.4)."""
    PASSWORD_IMPORT = "password_import"
    """The phantom password imports: one hash string (spec §3.9.5)."""
    UUID = "uuid"
    SPN = "security_principal_name"
    CREDENTIAL = "credential"
    PASSKEY = "passkey"
    ATTESTED_PASSKEY = "attested_passkey"
    SECRET_UTF8 = "secret_utf8string"
    SESSION = "session"
    OAUTH2_SESSION = "oauth2session"
    OAUTH_SCOPE_MAP = "oauth_scope_map"
    INTENT_TOKEN = "intent_token"
    API_TOKEN = "apitoken"
    PRIVATE_BINARY = "private_binary"
    URL = "url"
    EC_KEY_PRIVATE = "ec_key_private"
    APPLICATION_PASSWORD = "application_password"
    AUDIT_LOG_STRING = "audit_log_string"
    UI_HINT = "uihint"


CONVERTIBLE_SYNTAXES: Final = frozenset(
    {
        Syntax.UTF8,
        Syntax.UTF8_INSENSITIVE,
        Syntax.INAME,
        Syntax.UINT32,
        Syntax.REFERENCE_UUID,
        Syntax.EMAIL,
        Syntax.SSHKEY,
        Syntax.DATETIME,
        Syntax.TOTP_IMPORT,
        Syntax.PASSWORD_IMPORT,
    }
)
"""Syntaxes kanidmd's ``scim_attr_to_values`` can convert from JSON (spec §3.9)."""


@attrs.frozen(kw_only=True)
class AttributeSchema:
    """One attribute type.

    Attributes:
        name: the lower-case attribute name.
        syntax: its value syntax.
        multi: multi-valued (a JSON array on the wire) or single-valued (a scalar).
        unique: values are unique server-wide (a collision answers 409).
        sync_allowed: a sync account may own it (schema flag ``sync_allowed``).
        phantom: consumed by a plugin, never stored, never purged, not affected by yield
            (the three imports).
        description: one line for people.
    """

    name: str
    syntax: Syntax
    multi: bool = False
    unique: bool = False
    sync_allowed: bool = False
    phantom: bool = False
    description: str = ""

    @property
    def convertible(self) -> bool:
        """Whether kanidmd can convert a JSON value for it (else "Unsupported attribute")."""
        return self.syntax in CONVERTIBLE_SYNTAXES


@attrs.frozen(kw_only=True)
class ClassSchema:
    """One object class (``systemmay``/``may`` and ``systemmust``/``must`` merged).

    Attributes:
        name: the lower-case class name (the URN suffix for sync).
        may: attributes the class allows.
        must: attributes the class requires (some are generated, see
            :data:`AUTO_GENERATED`).
        supplements: the entry must also carry at least one of these classes.
        excludes: the entry must carry none of these classes.
        sync_allowed: a sync account may request it through a schema URN.
    """

    name: str
    may: frozenset[str] = frozenset()
    must: frozenset[str] = frozenset()
    supplements: frozenset[str] = frozenset()
    excludes: frozenset[str] = frozenset()
    sync_allowed: bool = False

    @property
    def attributes(self) -> frozenset[str]:
        """``may`` and ``must`` together."""
        return self.may | self.must


def _attr(
    name: str,
    syntax: Syntax,
    *,
    multi: bool = False,
    unique: bool = False,
    sync_allowed: bool = False,
    phantom: bool = False,
    description: str = "",
) -> tuple[str, AttributeSchema]:
    return name, AttributeSchema(
        name=name,
        syntax=syntax,
        multi=multi,
        unique=unique,
        sync_allowed=sync_allowed,
        phantom=phantom,
        description=description,
    )


_S = Syntax
ATTRIBUTES: Final[Mapping[str, AttributeSchema]] = MappingProxyType(
    dict(
        [
            # --- sync-allowed and convertible (the writable set of spec §3.6) ---
            _attr("name", _S.INAME, unique=True, sync_allowed=True, description="login name"),
            _attr("displayname", _S.UTF8, sync_allowed=True, description="display name"),
            _attr("legalname", _S.UTF8, sync_allowed=True, description="legal name"),
            _attr("description", _S.UTF8, sync_allowed=True, description="description"),
            _attr("mail", _S.EMAIL, multi=True, unique=True, sync_allowed=True),
            _attr("ssh_publickey", _S.SSHKEY, multi=True, sync_allowed=True),
            _attr("loginshell", _S.UTF8_INSENSITIVE, sync_allowed=True),
            _attr("gidnumber", _S.UINT32, unique=True, sync_allowed=True),
            _attr("member", _S.REFERENCE_UUID, multi=True, sync_allowed=True),
            _attr("account_expire", _S.DATETIME, sync_allowed=True),
            _attr("account_valid_from", _S.DATETIME, sync_allowed=True),
            _attr("account_softlock_expire", _S.DATETIME, sync_allowed=True),
            _attr("oauth2_account_provider", _S.REFERENCE_UUID, sync_allowed=True),
            _attr("oauth2_account_unique_user_id", _S.UTF8, sync_allowed=True),
            _attr("oauth2_account_unique_user_sub", _S.UTF8, sync_allowed=True),
            # --- phantoms: accepted for any URN, consumed by the credential import plugin ---
            _attr("password_import", _S.PASSWORD_IMPORT, sync_allowed=True, phantom=True),
            _attr("unix_password_import", _S.PASSWORD_IMPORT, sync_allowed=True, phantom=True),
            _attr("totp_import", _S.TOTP_IMPORT, multi=True, sync_allowed=True, phantom=True),
            # --- sync-allowed but no JSON conversion: purged every apply, never writable ---
            _attr("name_history", _S.AUDIT_LOG_STRING, multi=True, sync_allowed=True),
            _attr("primary_credential", _S.CREDENTIAL, sync_allowed=True),
            _attr("passkeys", _S.PASSKEY, multi=True, sync_allowed=True),
            _attr("attested_passkeys", _S.ATTESTED_PASSKEY, multi=True, sync_allowed=True),
            _attr("radius_secret", _S.SECRET_UTF8, sync_allowed=True),
            # --- not sync-allowed: kanidmd refuses them in a sync entry (invalidentrystate) ---
            _attr("uuid", _S.UUID, unique=True),
            _attr("class", _S.UTF8_INSENSITIVE, multi=True),
            _attr("spn", _S.SPN, unique=True, description="generated from name"),
            _attr("memberof", _S.REFERENCE_UUID, multi=True),
            _attr("directmemberof", _S.REFERENCE_UUID, multi=True),
            _attr("sync_parent_uuid", _S.REFERENCE_UUID),
            _attr("sync_external_id", _S.UTF8_INSENSITIVE, unique=True),
            _attr("sync_class", _S.UTF8_INSENSITIVE, multi=True),
            _attr("sync_token_session", _S.API_TOKEN),
            _attr("sync_cookie", _S.PRIVATE_BINARY),
            _attr("sync_credential_portal", _S.URL),
            _attr("sync_yield_authority", _S.UTF8_INSENSITIVE, multi=True),
            _attr("unix_password", _S.CREDENTIAL, description="set via unix_password_import"),
            _attr("user_auth_token_session", _S.SESSION, multi=True),
            _attr("oauth2_session", _S.OAUTH2_SESSION, multi=True),
            _attr("oauth2_consent_scope_map", _S.OAUTH_SCOPE_MAP, multi=True),
            _attr("credential_update_intent_token", _S.INTENT_TOKEN, multi=True),
            _attr("api_token_session", _S.API_TOKEN, multi=True),
            _attr("application_password", _S.APPLICATION_PASSWORD, multi=True),
            _attr("id_verification_eckey", _S.EC_KEY_PRIVATE),
            _attr("oauth2_account_credential_uuid", _S.UUID),
            _attr("grant_ui_hint", _S.UI_HINT, multi=True),
        ]
    )
)
"""Every attribute a sync entry can mention or that a synced class carries, by name."""

PHANTOM_ATTRIBUTES: Final = frozenset(n for n, a in ATTRIBUTES.items() if a.phantom)
"""``password_import``, ``unix_password_import``, ``totp_import``."""

AUTO_GENERATED: Final = frozenset(
    {"spn", "gidnumber", "oauth2_account_credential_uuid", "id_verification_eckey"}
)
"""Must-attributes kanidmd's plugins generate, so a sync entry need not send them
(``spn`` is generated from ``name``, which therefore becomes required)."""

HEADER_KEYS: Final = frozenset({"schemas", "id", "externalid", "meta"})
"""Keys of the entry header (lower-cased); an attribute cannot use them."""


def _cls(
    name: str,
    *,
    may: Iterable[str] = (),
    must: Iterable[str] = (),
    supplements: Iterable[str] = (),
    excludes: Iterable[str] = (),
    sync_allowed: bool = False,
) -> tuple[str, ClassSchema]:
    return name, ClassSchema(
        name=name,
        may=frozenset(may),
        must=frozenset(must),
        supplements=frozenset(supplements),
        excludes=frozenset(excludes),
        sync_allowed=sync_allowed,
    )


CLASSES: Final[Mapping[str, ClassSchema]] = MappingProxyType(
    dict(
        [
            _cls(
                "account",
                may=(
                    "account_expire",
                    "account_valid_from",
                    "account_softlock_expire",
                    "name_history",
                ),
                # 1.12 moved `name` to person/service_account (spec §3.6); spn needs it.
                must=("displayname", "spn"),
                supplements=("person", "service_account", "oauth2_resource_server"),
                sync_allowed=True,
            ),
            _cls(
                "person",
                may=(
                    "mail",
                    "ssh_publickey",
                    "legalname",
                    "primary_credential",
                    "passkeys",
                    "attested_passkeys",
                    "radius_secret",
                    "credential_update_intent_token",
                    "oauth2_consent_scope_map",
                    "user_auth_token_session",
                    "oauth2_session",
                    "application_password",
                ),
                must=("name", "id_verification_eckey"),
                excludes=("service_account", "application"),
                sync_allowed=True,
            ),
            _cls(
                "posixaccount",
                may=("loginshell", "unix_password"),
                must=("gidnumber",),
                supplements=("account",),
                sync_allowed=True,
            ),
            _cls(
                "group",
                may=("member", "grant_ui_hint", "description", "mail"),
                must=("name", "spn"),
                sync_allowed=True,
            ),
            _cls("posixgroup", must=("gidnumber",), supplements=("group",), sync_allowed=True),
            _cls(
                "oauth2_account",
                must=(
                    "oauth2_account_provider",
                    "oauth2_account_unique_user_id",
                    # Required since Kanidm 1.11 (spec §8.2).
                    "oauth2_account_unique_user_sub",
                    "oauth2_account_credential_uuid",
                ),
                supplements=("person",),
                sync_allowed=True,
            ),
            _cls(
                "service_account",
                may=(
                    "ssh_publickey",
                    "user_auth_token_session",
                    "oauth2_session",
                    "oauth2_consent_scope_map",
                    "description",
                    "mail",
                    "primary_credential",
                    "api_token_session",
                ),
                must=("name",),
                excludes=("person",),
                sync_allowed=True,
            ),
            # --- classes a sync entry may not request (named here so they are "known") ---
            _cls("object", must=("uuid", "class")),
            _cls(
                "sync_object",
                must=("sync_parent_uuid",),
                may=("sync_external_id", "sync_class"),
            ),
            _cls(
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
            _cls("system"),
            _cls("builtin"),
            _cls("memberof", may=("memberof", "directmemberof")),
            _cls("application", must=("name",), may=("description",)),
            _cls("oauth2_resource_server"),
        ]
    )
)
"""Every class a sync entry can name, by name; only ``sync_allowed`` ones are requestable."""


def class_from_urn(urn: str) -> str | None:
    """The class a sync schema URN names.

    The prefix is matched exactly (case-sensitive) as kanidmd does.

    Args:
        urn: a schema URN (``"urn:ietf:params:scim:schemas:kanidm:sync:1:person"``).

    Returns:
        The class name after the prefix (``"person"``), or ``None`` when ``urn`` does
        not start with :data:`~kanidm_sync.SCHEMA_PREFIX` or names nothing.
    """
    if not urn.startswith(SCHEMA_PREFIX):
        return None
    return urn[len(SCHEMA_PREFIX) :] or None


@attrs.frozen
class Schema:
    """A schema: attribute and class tables plus the derivations sync needs.

    Build a custom one to model a server whose admin added sync-allowed classes or
    attributes: ``Schema({**ATTRIBUTES, "x": AttributeSchema(...)}, CLASSES)``.

    Attributes:
        attributes: attribute name -> :class:`AttributeSchema`.
        classes: class name -> :class:`ClassSchema`.
    """

    attributes: Mapping[str, AttributeSchema] = ATTRIBUTES
    classes: Mapping[str, ClassSchema] = CLASSES

    def owned(self, classes: Iterable[str], *, yielded: Iterable[str] = ()) -> frozenset[str]:
        """The attribute keys an entry with ``classes`` may carry (spec §3.6, §4.5 step 5).

        The union over the known classes of their attributes whose schema flag
        ``sync_allowed`` is set, minus ``yielded`` ones, plus the phantom imports.

        Args:
            classes: the entry's requested class names.
            yielded: the sync account's ``sync_yield_authority`` (lower-case names).

        Returns:
            The owned attribute names.
        """
        names: set[str] = set()
        for cname in classes:
            cls = self.classes.get(cname)
            if cls is not None:
                names |= cls.may
                names |= cls.must
        skip = frozenset(yielded)
        owned = {
            n
            for n in names
            if n not in skip and (a := self.attributes.get(n)) is not None and a.sync_allowed
        }
        owned |= {n for n, a in self.attributes.items() if a.phantom}
        return frozenset(owned)

    def purged(self, classes: Iterable[str], *, yielded: Iterable[str] = ()) -> frozenset[str]:
        """The attributes kanidmd purges before writing an entry (owned, not phantom).

        Args:
            classes: the entry's requested class names.
            yielded: the yielded attribute names.

        Returns:
            The attributes an apply fully replaces (or removes, when not sent).
        """
        return frozenset(
            n for n in self.owned(classes, yielded=yielded) if not self.attributes[n].phantom
        )

    def writable(self, classes: Iterable[str], *, yielded: Iterable[str] = ()) -> frozenset[str]:
        """The owned attributes a sync entry can actually send values for.

        Owned attributes without a JSON conversion (``primary_credential``, ``passkeys``...)
        are purge-only: sending them fails with ``Unsupported attribute conversion``.

        Args:
            classes: the entry's requested class names.
            yielded: the yielded attribute names.

        Returns:
            The writable attribute names.
        """
        return frozenset(
            n for n in self.owned(classes, yielded=yielded) if self.attributes[n].convertible
        )

    def class_problems(self, classes: Iterable[str]) -> list[tuple[str, str, str]]:
        """Class-combination problems, in kanidmd's schema-check order (spec §4.5 d).

        Args:
            classes: the entry's class names (known ones are checked).

        Returns:
            ``(code, class, detail)`` triples: ``("schema.supplements", "posixaccount",
            "account")`` when none of the supplementing classes is present,
            ``("schema.excludes", "person", "service_account")`` for an excluded class.
        """
        present = frozenset(classes)
        out: list[tuple[str, str, str]] = []
        for cname in sorted(present):
            cls = self.classes.get(cname)
            if cls is not None and cls.supplements and not (cls.supplements & present):
                out.append(("schema.supplements", cname, " or ".join(sorted(cls.supplements))))
        for cname in sorted(present):
            cls = self.classes.get(cname)
            if cls is not None:
                out.extend(("schema.excludes", cname, x) for x in sorted(cls.excludes & present))
        return out

    def missing_must(self, classes: Iterable[str], present: Iterable[str]) -> list[str]:
        """Must-attributes a sync entry has to send but does not.

        Generated attributes (:data:`AUTO_GENERATED`) are not required; ``spn`` needs
        ``name``, so ``name`` is required wherever ``spn`` is a must.

        Args:
            classes: the entry's class names.
            present: the attribute names the entry sends.

        Returns:
            The missing attribute names, sorted.
        """
        have = frozenset(present)
        need: set[str] = set()
        for cname in classes:
            cls = self.classes.get(cname)
            if cls is not None:
                need |= cls.must
        if "spn" in need:
            need.add("name")
        return sorted(n for n in need - AUTO_GENERATED if n not in have)


DEFAULT_SCHEMA: Final = Schema()
"""The schema of an unmodified Kanidm 1.12 server."""
