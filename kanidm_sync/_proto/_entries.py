"""Typed entries: what one ChangeSet entry may say about a person, group or service account.

Pure values; no I/O. Wire names appear only in ``_codec.py``: here every Python field is
named after the Kanidm attribute it fills (``displayname``, ``mail``, ``member``), so
that a validation problem or a Kanidm error names the same field the user wrote.

An entry is one of:

* :class:`Person`: schemas ``account`` + ``person``, plus the :class:`PosixAccount` facet
  (schema ``posixaccount``) and the :class:`OAuth2Account` facet (``oauth2_account``);
* :class:`Group`: schema ``group``, plus the :class:`PosixGroup` facet (``posixgroup``);
* :class:`ServiceAccount`: schemas ``account`` + ``service_account`` (kanidmd accepts it
  although its own Rust proto has no helper for it, spec §8.3);
* :class:`GenericEntry`: any schema list and raw attribute values, for custom
  sync-allowed classes an admin added to Kanidm's schema, or combinations the typed
  classes refuse to express (useful to test that Kanidm rejects them).

Typed entries also take ``extra``: further sync-allowed attributes (for example one an
admin added to a class's ``may`` list), sent as given.

Secrets (password imports, TOTP secrets) are masked in every ``repr``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import html
import types
import uuid
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Final, Literal, TypeAlias

import attrs

from .._types import JSONValue
from ._state import _as_uuid

__all__ = [
    "SCHEMA_PREFIX",
    "SECRET_ATTRIBUTES",
    "Entry",
    "GenericEntry",
    "Group",
    "Mail",
    "OAuth2Account",
    "Person",
    "PosixAccount",
    "PosixGroup",
    "SchemaUrn",
    "ServiceAccount",
    "SshPublicKey",
    "Totp",
    "TotpAlgorithm",
]

SCHEMA_PREFIX: Final = "urn:ietf:params:scim:schemas:kanidm:sync:1:"
"""Every sync schema URN is this prefix followed by a Kanidm class name (spec §3.6)."""


class SchemaUrn(StrEnum):
    """The sync schema URNs kanidmd accepts at its 1.12 baseline (spec §3.6).

    Members are strings, so they compare equal to the URN text.
    """

    ACCOUNT = SCHEMA_PREFIX + "account"
    PERSON = SCHEMA_PREFIX + "person"
    POSIXACCOUNT = SCHEMA_PREFIX + "posixaccount"
    GROUP = SCHEMA_PREFIX + "group"
    POSIXGROUP = SCHEMA_PREFIX + "posixgroup"
    OAUTH2_ACCOUNT = SCHEMA_PREFIX + "oauth2_account"
    SERVICE_ACCOUNT = SCHEMA_PREFIX + "service_account"


SECRET_ATTRIBUTES: Final = frozenset({"password_import", "unix_password_import", "totp_import"})
"""Attributes whose values are secrets: never shown in a repr, a log line or an error."""

TotpAlgorithm: TypeAlias = Literal["sha1", "sha256", "sha512"]
"""The TOTP hash algorithms kanidmd accepts."""

_MASK: Final = "'***'"


def _mask(value: object) -> str:
    return "None" if value is None else _MASK


def _as_reference(value: uuid.UUID | str) -> str:
    # A reference is an external id, or a UUID written as a string (spec §3.9.1).
    return str(value) if isinstance(value, uuid.UUID) else value


def _as_rfc3339(value: _dt.datetime | str | None) -> str | None:
    if isinstance(value, _dt.datetime):
        if value.utcoffset() is None:
            raise ValueError(
                "a datetime for Kanidm must be timezone-aware (RFC 3339 needs an offset)"
            )
        return value.isoformat()
    return value


def _check_iterable(values: object, what: str) -> None:
    if isinstance(values, str | bytes):
        raise TypeError(f"expected an iterable of {what}, not a single string")


def _mails(values: Iterable[Mail]) -> tuple[Mail, ...]:
    _check_iterable(values, "Mail")
    return tuple(values)


def _ssh_keys(values: Iterable[SshPublicKey]) -> tuple[SshPublicKey, ...]:
    _check_iterable(values, "SshPublicKey")
    return tuple(values)


def _totps(values: Iterable[Totp]) -> tuple[Totp, ...]:
    _check_iterable(values, "Totp")
    return tuple(values)


def _strings(values: Iterable[str]) -> tuple[str, ...]:
    _check_iterable(values, "str")
    return tuple(values)


def _references(values: Iterable[uuid.UUID | str]) -> tuple[str, ...]:
    _check_iterable(values, "external ids")
    return tuple(_as_reference(v) for v in values)


def _frozen_mapping(value: Mapping[str, JSONValue]) -> Mapping[str, JSONValue]:
    if isinstance(value, types.MappingProxyType):
        return value
    return types.MappingProxyType(dict(value))


def _optional_str(inst: object, attribute: attrs.Attribute[str | None], value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{attribute.name} must be a str or None, not {type(value).__name__}")


def _optional_int(inst: object, attribute: attrs.Attribute[int | None], value: object) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise TypeError(f"{attribute.name} must be an int or None, not {type(value).__name__}")


def _masked_mapping_repr(value: Mapping[str, JSONValue]) -> str:
    shown = {k: ("***" if k in SECRET_ATTRIBUTES else v) for k, v in value.items()}
    return repr(shown)


_str = attrs.validators.instance_of(str)
_opt_str = _optional_str


# --- value items ---------------------------------------------------------------------------


@attrs.frozen
class Mail:
    """One mail address of a person, group or service account.

    Attributes:
        value: the address.
        primary: ``True`` to make it the primary address; ``None`` sends no flag. With no
            flag anywhere Kanidm makes the first address primary; with several flags the
            last flagged one wins (spec §3.9.6).
    """

    value: str = attrs.field(validator=_str)
    primary: bool | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(bool))
    )


@attrs.frozen
class SshPublicKey:
    """One SSH public key.

    Attributes:
        label: a name for the key, unique within the entry (``"laptop"``).
        value: one OpenSSH public key line (``"ssh-ed25519 AAAA... alice@laptop"``).
    """

    label: str = attrs.field(validator=_str)
    value: str = attrs.field(validator=_str)


@attrs.frozen(kw_only=True)
class Totp:
    """A TOTP token imported onto a person's primary credential (spec §3.9.4).

    Kanidm expects the *raw key in base64* (not base32, which authenticator apps show);
    use :meth:`from_key` or :meth:`from_base32` to build one from either. A TOTP import
    needs a ``password_import`` on the same person.

    Attributes:
        external_id: the token's label in Kanidm.
        secret: the raw key, base64 with canonical padding. Masked in ``repr``.
        algo: ``"sha1"``, ``"sha256"`` or ``"sha512"``.
        step: the period in seconds, at least 30.
        digits: 6 or 8.
    """

    external_id: str = attrs.field(validator=_str)
    secret: str = attrs.field(validator=_str, repr=_mask)
    algo: str = attrs.field(default="sha1", validator=_str)
    step: int = attrs.field(default=30, validator=attrs.validators.instance_of(int))
    digits: int = attrs.field(default=6, validator=attrs.validators.instance_of(int))

    @classmethod
    def from_key(
        cls,
        key: bytes,
        *,
        external_id: str,
        algo: TotpAlgorithm = "sha1",
        step: int = 30,
        digits: int = 6,
    ) -> Totp:
        """Build a TOTP import from the raw key bytes.

        Args:
            key: the shared secret as bytes.
            external_id: the token's label in Kanidm.
            algo: the hash algorithm.
            step: the period in seconds.
            digits: the code length.

        Returns:
            The import, with the key in canonical padded base64.
        """
        secret = base64.b64encode(key).decode("ascii")
        return cls(external_id=external_id, secret=secret, algo=algo, step=step, digits=digits)

    @classmethod
    def from_base32(
        cls,
        secret: str,
        *,
        external_id: str,
        algo: TotpAlgorithm = "sha1",
        step: int = 30,
        digits: int = 6,
    ) -> Totp:
        """Build a TOTP import from a base32 secret, as authenticator apps show it.

        Spaces are ignored, case and missing padding are tolerated.

        Args:
            secret: the base32 text (``"JBSWY3DPEHPK3PXP"``).
            external_id: the token's label in Kanidm.
            algo: the hash algorithm.
            step: the period in seconds.
            digits: the code length.

        Returns:
            The import, with the key converted to base64 as Kanidm needs.

        Raises:
            ValueError: the text is not base32 (the message does not repeat it).
        """
        text = "".join(secret.split()).upper()
        text += "=" * (-len(text) % 8)
        try:
            key = base64.b32decode(text)
        except (binascii.Error, ValueError):
            raise ValueError("the TOTP secret is not valid base32") from None
        return cls.from_key(key, external_id=external_id, algo=algo, step=step, digits=digits)


# --- facets --------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class PosixAccount:
    """The POSIX facet of a person or service account (schema ``posixaccount``).

    Attributes:
        gidnumber: the account's gid (and uid); ``None`` lets Kanidm derive one from the
            entry's UUID.
        loginshell: the login shell (Kanidm lower-cases it).
        unix_password_import: a password hash for the unix password. Masked in ``repr``.
            Unlike the primary password it is not removed when later applies omit it.
    """

    gidnumber: int | None = attrs.field(default=None, validator=_optional_int)
    loginshell: str | None = attrs.field(default=None, validator=_opt_str)
    unix_password_import: str | None = attrs.field(default=None, validator=_opt_str, repr=_mask)


@attrs.frozen(kw_only=True)
class OAuth2Account:
    """The OAuth2 facet of a person (schema ``oauth2_account``, Kanidm >= 1.9).

    Attributes:
        provider: the OAuth2 client provider entry: a UUID, or an external id.
        unique_user_id: the user's id at the provider.
        unique_user_sub: the provider's ``sub`` claim for the user; required by
            Kanidm >= 1.11 (spec §8.2).
    """

    provider: str = attrs.field(converter=_as_reference, validator=_str)
    unique_user_id: str = attrs.field(validator=_str)
    unique_user_sub: str | None = attrs.field(default=None, validator=_opt_str)


@attrs.frozen(kw_only=True)
class PosixGroup:
    """The POSIX facet of a group (schema ``posixgroup``).

    Attributes:
        gidnumber: the group's gid; ``None`` lets Kanidm derive one from the UUID.
    """

    gidnumber: int | None = attrs.field(default=None, validator=_optional_int)


# --- entries -------------------------------------------------------------------------------


def _ordered(derived: list[str], hint: tuple[str, ...]) -> tuple[str, ...]:
    if not hint:
        return tuple(derived)
    wanted = set(derived)
    first = [u for u in hint if u in wanted]
    seen = set(first)
    return tuple(first + [u for u in derived if u not in seen])


@attrs.frozen(kw_only=True)
class Person:
    """A person with an account: schemas ``account`` and ``person`` (spec §3.7).

    Attributes:
        id: the Kanidm entry UUID; the same id always means the same entry.
        external_id: the source's identifier (an LDAP DN, say). Kanidm stores it
            lower-cased and resolves group members by it; effectively required.
        name: the login name (lower-case, ``^[a-z][a-z0-9-_.]{0,63}$``, unique in Kanidm).
        displayname: the display name.
        legalname: the legal name.
        mail: mail addresses; see :class:`Mail` for the primary rule.
        ssh_publickey: SSH public keys.
        account_valid_from: RFC 3339 time the account becomes valid (a timezone-aware
            ``datetime`` is converted).
        account_expire: RFC 3339 time the account expires; the reference tools write
            ``"1970-01-01T00:00:00+00:00"`` for a disabled account.
        account_softlock_expire: RFC 3339 time a soft lock ends.
        password_import: a password hash in a format Kanidm imports (spec §3.9.5).
            Masked in ``repr``. Without it the person's primary credential is removed on
            every apply unless ``primary_credential`` is yielded.
        totp_import: TOTP tokens for the primary credential.
        posix: the POSIX facet, or ``None``.
        oauth2: the OAuth2 facet, or ``None``.
        extra: further sync-allowed attributes, sent as given (JSON values).
        schema_order: wire order of the schema URNs; only keeps a decoded payload
            byte-identical. Not part of equality.
    """

    id: uuid.UUID = attrs.field(converter=_as_uuid)
    external_id: str | None = attrs.field(default=None, validator=_opt_str)
    name: str = attrs.field(validator=_str)
    displayname: str = attrs.field(validator=_str)
    legalname: str | None = attrs.field(default=None, validator=_opt_str)
    mail: tuple[Mail, ...] = attrs.field(default=(), converter=_mails)
    ssh_publickey: tuple[SshPublicKey, ...] = attrs.field(default=(), converter=_ssh_keys)
    account_valid_from: str | None = attrs.field(
        default=None, converter=_as_rfc3339, validator=_opt_str
    )
    account_expire: str | None = attrs.field(
        default=None, converter=_as_rfc3339, validator=_opt_str
    )
    account_softlock_expire: str | None = attrs.field(
        default=None, converter=_as_rfc3339, validator=_opt_str
    )
    password_import: str | None = attrs.field(default=None, validator=_opt_str, repr=_mask)
    totp_import: tuple[Totp, ...] = attrs.field(default=(), converter=_totps)
    posix: PosixAccount | None = None
    oauth2: OAuth2Account | None = None
    extra: Mapping[str, JSONValue] = attrs.field(
        factory=dict, converter=_frozen_mapping, hash=False, repr=_masked_mapping_repr
    )
    schema_order: tuple[str, ...] = attrs.field(
        default=(), converter=_strings, eq=False, repr=False
    )

    @property
    def schemas(self) -> tuple[str, ...]:
        """The schema URNs this entry is sent with."""
        derived = [SchemaUrn.ACCOUNT.value, SchemaUrn.PERSON.value]
        if self.posix is not None:
            derived.append(SchemaUrn.POSIXACCOUNT.value)
        if self.oauth2 is not None:
            derived.append(SchemaUrn.OAUTH2_ACCOUNT.value)
        return _ordered(derived, self.schema_order)

    def _repr_html_(self) -> str:
        """An HTML table of the entry for Jupyter; secrets are masked."""
        return _entry_html(self)


@attrs.frozen(kw_only=True)
class Group:
    """A group: schema ``group``, plus ``posixgroup`` with the POSIX facet (spec §3.8).

    Attributes:
        id: the Kanidm entry UUID.
        external_id: the source's identifier; members elsewhere refer to it.
        name: the group name (same rules as a person's, unique across Kanidm).
        description: a description.
        mail: mail addresses of the group.
        member: members, each an external id (resolved by Kanidm; unknown ones are
            silently dropped) or a UUID string (must exist, else the apply fails).
        posix: the POSIX facet, or ``None``.
        extra: further sync-allowed attributes, sent as given.
        schema_order: wire order of the schema URNs; not part of equality.
    """

    id: uuid.UUID = attrs.field(converter=_as_uuid)
    external_id: str | None = attrs.field(default=None, validator=_opt_str)
    name: str = attrs.field(validator=_str)
    description: str | None = attrs.field(default=None, validator=_opt_str)
    mail: tuple[Mail, ...] = attrs.field(default=(), converter=_mails)
    member: tuple[str, ...] = attrs.field(default=(), converter=_references)
    posix: PosixGroup | None = None
    extra: Mapping[str, JSONValue] = attrs.field(
        factory=dict, converter=_frozen_mapping, hash=False, repr=_masked_mapping_repr
    )
    schema_order: tuple[str, ...] = attrs.field(
        default=(), converter=_strings, eq=False, repr=False
    )

    @property
    def schemas(self) -> tuple[str, ...]:
        """The schema URNs this entry is sent with."""
        derived = [SchemaUrn.GROUP.value]
        if self.posix is not None:
            derived.append(SchemaUrn.POSIXGROUP.value)
        return _ordered(derived, self.schema_order)

    def _repr_html_(self) -> str:
        """An HTML table of the entry for Jupyter; secrets are masked."""
        return _entry_html(self)


@attrs.frozen(kw_only=True)
class ServiceAccount:
    """A service account: schemas ``account`` and ``service_account`` (spec §3.6, §8.3).

    Attributes:
        id: the Kanidm entry UUID.
        external_id: the source's identifier.
        name: the account name.
        displayname: the display name.
        description: a description.
        mail: mail addresses.
        ssh_publickey: SSH public keys.
        account_valid_from: RFC 3339 time the account becomes valid.
        account_expire: RFC 3339 time the account expires.
        account_softlock_expire: RFC 3339 time a soft lock ends.
        password_import: a password hash to import. Masked in ``repr``.
        posix: the POSIX facet, or ``None``.
        extra: further sync-allowed attributes, sent as given.
        schema_order: wire order of the schema URNs; not part of equality.
    """

    id: uuid.UUID = attrs.field(converter=_as_uuid)
    external_id: str | None = attrs.field(default=None, validator=_opt_str)
    name: str = attrs.field(validator=_str)
    displayname: str = attrs.field(validator=_str)
    description: str | None = attrs.field(default=None, validator=_opt_str)
    mail: tuple[Mail, ...] = attrs.field(default=(), converter=_mails)
    ssh_publickey: tuple[SshPublicKey, ...] = attrs.field(default=(), converter=_ssh_keys)
    account_valid_from: str | None = attrs.field(
        default=None, converter=_as_rfc3339, validator=_opt_str
    )
    account_expire: str | None = attrs.field(
        default=None, converter=_as_rfc3339, validator=_opt_str
    )
    account_softlock_expire: str | None = attrs.field(
        default=None, converter=_as_rfc3339, validator=_opt_str
    )
    password_import: str | None = attrs.field(default=None, validator=_opt_str, repr=_mask)
    posix: PosixAccount | None = None
    extra: Mapping[str, JSONValue] = attrs.field(
        factory=dict, converter=_frozen_mapping, hash=False, repr=_masked_mapping_repr
    )
    schema_order: tuple[str, ...] = attrs.field(
        default=(), converter=_strings, eq=False, repr=False
    )

    @property
    def schemas(self) -> tuple[str, ...]:
        """The schema URNs this entry is sent with."""
        derived = [SchemaUrn.ACCOUNT.value, SchemaUrn.SERVICE_ACCOUNT.value]
        if self.posix is not None:
            derived.append(SchemaUrn.POSIXACCOUNT.value)
        return _ordered(derived, self.schema_order)

    def _repr_html_(self) -> str:
        """An HTML table of the entry for Jupyter; secrets are masked."""
        return _entry_html(self)


@attrs.frozen(kw_only=True)
class GenericEntry:
    """An entry given as schema URNs and raw attribute values.

    For custom sync-allowed classes, or combinations the typed classes do not express.
    Attribute values are JSON values as they go on the wire (spec §3.5): never ``None``,
    never an empty list.

    Attributes:
        id: the Kanidm entry UUID.
        external_id: the source's identifier.
        schemas: the full schema URNs, in wire order.
        attributes: attribute name -> JSON value. Secret attributes are masked in repr.
    """

    id: uuid.UUID = attrs.field(converter=_as_uuid)
    external_id: str | None = attrs.field(default=None, validator=_opt_str)
    schemas: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    attributes: Mapping[str, JSONValue] = attrs.field(
        factory=dict, converter=_frozen_mapping, hash=False, repr=_masked_mapping_repr
    )

    def _repr_html_(self) -> str:
        """An HTML table of the entry for Jupyter; secrets are masked."""
        return _entry_html(self)


Entry: TypeAlias = Person | Group | ServiceAccount | GenericEntry
"""Any entry a ChangeSet can carry."""


# --- HTML rendering for Jupyter (secrets masked) -----------------------------------------------

_SET: Final = "*** (set)"


def _short_urn(urn: str) -> str:
    return urn[len(SCHEMA_PREFIX) :] if urn.startswith(SCHEMA_PREFIX) else urn


def _mail_text(mails: tuple[Mail, ...]) -> str:
    return ", ".join(m.value + (" (primary)" if m.primary else "") for m in mails)


def _gid_text(gidnumber: int | None) -> str:
    return "(derived)" if gidnumber is None else str(gidnumber)


def _raw_text(key: str, value: JSONValue) -> str:
    return _SET if key in SECRET_ATTRIBUTES else repr(value)


def _entry_rows(entry: Entry) -> list[tuple[str, str]]:
    """The (field, shown value) rows of an entry, secrets masked, empty fields left out."""
    rows: list[tuple[str, str]] = [
        ("id", str(entry.id)),
        ("external_id", entry.external_id or ""),
        ("schemas", ", ".join(_short_urn(u) for u in entry.schemas)),
    ]
    if isinstance(entry, GenericEntry):
        rows.extend((k, _raw_text(k, v)) for k, v in sorted(entry.attributes.items()))
        return [r for r in rows if r[1]]
    rows.append(("name", entry.name))
    if isinstance(entry, Person | ServiceAccount):
        rows.append(("displayname", entry.displayname))
    if isinstance(entry, Person):
        rows.append(("legalname", entry.legalname or ""))
    if isinstance(entry, Group | ServiceAccount):
        rows.append(("description", entry.description or ""))
    rows.append(("mail", _mail_text(entry.mail)))
    if isinstance(entry, Group):
        if entry.member:
            shown = ", ".join(entry.member[:10])
            if len(entry.member) > 10:
                shown += f", … ({len(entry.member) - 10} more)"
            rows.append(("member", f"{len(entry.member)}: {shown}"))
        if entry.posix is not None:
            rows.append(("posix gidnumber", _gid_text(entry.posix.gidnumber)))
    else:
        rows.append(("ssh_publickey", ", ".join(k.label for k in entry.ssh_publickey)))
        rows.append(("account_valid_from", entry.account_valid_from or ""))
        rows.append(("account_expire", entry.account_expire or ""))
        rows.append(("account_softlock_expire", entry.account_softlock_expire or ""))
        rows.append(("password_import", _SET if entry.password_import is not None else ""))
        if isinstance(entry, Person):
            totps = ", ".join(
                f"{t.external_id} ({t.algo}, {t.digits} digits)" for t in entry.totp_import
            )
            rows.append(("totp_import", totps + (" (secrets masked)" if totps else "")))
            if entry.oauth2 is not None:
                rows.append(("oauth2 provider", entry.oauth2.provider))
                rows.append(("oauth2 user id", entry.oauth2.unique_user_id))
                rows.append(("oauth2 user sub", entry.oauth2.unique_user_sub or ""))
        if entry.posix is not None:
            rows.append(("posix gidnumber", _gid_text(entry.posix.gidnumber)))
            rows.append(("posix loginshell", entry.posix.loginshell or ""))
            rows.append(
                (
                    "posix unix_password_import",
                    _SET if entry.posix.unix_password_import is not None else "",
                )
            )
    rows.extend((f"extra: {k}", _raw_text(k, v)) for k, v in sorted(entry.extra.items()))
    return [r for r in rows if r[1]]


def _entry_summary(entry: Entry) -> str:
    """A one-cell summary of an entry's content, for the ChangeSet table (no secrets)."""
    parts: list[str] = []
    if isinstance(entry, GenericEntry):
        parts.append(f"{len(entry.attributes)} attributes")
    else:
        if entry.mail:
            parts.append(f"{len(entry.mail)} mail")
        if isinstance(entry, Group):
            parts.append(f"{len(entry.member)} members")
        else:
            if entry.ssh_publickey:
                parts.append(f"{len(entry.ssh_publickey)} ssh keys")
            if entry.password_import is not None:
                parts.append("password import")
            if isinstance(entry, Person) and entry.totp_import:
                parts.append(f"{len(entry.totp_import)} totp")
        if entry.posix is not None:
            parts.append(f"posix gid {_gid_text(entry.posix.gidnumber)}")
        if entry.extra:
            parts.append(f"{len(entry.extra)} extra")
    return ", ".join(parts)


def _entry_label(entry: Entry) -> str:
    return entry.name if not isinstance(entry, GenericEntry) else ""


def _entry_html(entry: Entry) -> str:
    title = f"{type(entry).__name__} {_entry_label(entry)}".strip()
    body = "".join(
        f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
        f"<td style='text-align:left'>{html.escape(v)}</td></tr>"
        for k, v in _entry_rows(entry)
    )
    return f"<p><b>{html.escape(title)}</b></p><table><tbody>{body}</tbody></table>"
