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

Types are checked when an entry (or a value in it) is built: a wrong type raises a
:class:`TypeError` naming the class, the field and the type it got
(``Person.mail[0] must be a Mail or a str, not int``), never the value. A few obviously
meant values are converted instead, and only these:

* any iterable (a list, a generator) becomes a tuple; a single ``str`` where an iterable
  is expected is refused (it would otherwise become a tuple of characters);
* a ``str`` in ``mail`` becomes ``Mail(str)`` (no primary flag);
* a UUID in ``member`` (or an OAuth2 ``provider``) becomes its text;
* ``id`` may be a UUID's text in any form :class:`uuid.UUID` parses;
* a timezone-aware ``datetime`` in an ``account_*`` field becomes RFC 3339 text;
* ``extra`` / ``attributes`` become a read-only copy (keys must be str; values are JSON
  values, checked when encoded).

Values are not checked here (a name's syntax, a key's format): ``ChangeSet.validate()``
reports those, all at once.

Secrets (password imports, TOTP secrets) are masked in every ``repr``.
"""

from __future__ import annotations

import html
import uuid
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Final, TypeAlias

import attrs

from .._types import JSONValue
from . import _entry_fields as _f
from ._values import (
    Mail,
    OAuth2Account,
    PosixAccount,
    PosixGroup,
    SshPublicKey,
    Totp,
    TotpAlgorithm,
    mask,
)

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


def _masked_mapping_repr(value: Mapping[str, JSONValue]) -> str:
    shown = {k: ("***" if k in SECRET_ATTRIBUTES else v) for k, v in value.items()}
    return repr(shown)


def _mails(values: Iterable[Mail | str]) -> tuple[Mail, ...]:
    # An address given as a plain str is what Mail(str) means: converted, as documented.
    # Exact-type fast paths first: the codec's decoder builds every entry through here.
    items = values if type(values) is tuple else tuple(values) if type(values) is list else None
    if items is not None:
        for value in items:
            if type(value) is not Mail:
                break
        else:
            return items  # all Mail: the hot path
    return _f.as_items(values, Mail)  # type: ignore[arg-type]


# Named one-argument converters (mypy's attrs plugin needs them so) over the shared ones.


def _strings(values: Iterable[str]) -> tuple[str, ...]:
    if type(values) is tuple:
        return values
    return tuple(values) if type(values) is list else _f.as_tuple(values)


def _ssh_keys(values: Iterable[SshPublicKey]) -> tuple[SshPublicKey, ...]:
    if type(values) is tuple:
        return values
    return tuple(values) if type(values) is list else _f.as_tuple(values)


def _totps(values: Iterable[Totp]) -> tuple[Totp, ...]:
    if type(values) is tuple:
        return values
    return tuple(values) if type(values) is list else _f.as_tuple(values)


_str = _f.check_str
_opt_str = _f.check_opt_str
_rfc3339 = _f.check_rfc3339
_strs = _f.items_of(str, "a str")
_members = _f.items_of(str, "a str (an external id) or a UUID")

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

    Every field's type is checked when the person is built (see the module notes for the
    few conversions): a wrong one raises :class:`TypeError` naming ``Person``, the field
    and the type.

    Attributes:
        id: the Kanidm entry UUID (or its text); the same id always means the same entry.
        external_id: the source's identifier (an LDAP DN, say). Kanidm stores it
            lower-cased and resolves group members by it; effectively required.
        name: the login name (lower-case, ``^[a-z][a-z0-9-_.]{0,63}$``, unique in Kanidm).
        displayname: the display name.
        legalname: the legal name.
        mail: mail addresses; see :class:`Mail` for the primary rule. A plain ``str``
            item is taken as ``Mail(str)``.
        ssh_publickey: SSH public keys (:class:`SshPublicKey`: each needs a label).
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

    id: uuid.UUID = attrs.field(converter=_f.as_entry_id, validator=_f.check_entry_id)
    external_id: str | None = attrs.field(default=None, validator=_opt_str)
    name: str = attrs.field(validator=_str)
    displayname: str = attrs.field(validator=_str)
    legalname: str | None = attrs.field(default=None, validator=_opt_str)
    mail: tuple[Mail, ...] = attrs.field(
        default=(), converter=_mails, validator=_f.items_of(Mail, "a Mail or a str")
    )
    ssh_publickey: tuple[SshPublicKey, ...] = attrs.field(
        default=(),
        converter=_ssh_keys,
        validator=_f.items_of(SshPublicKey, "an SshPublicKey(label, value)"),
    )
    account_valid_from: str | None = attrs.field(
        default=None, converter=_f.as_rfc3339, validator=_rfc3339
    )
    account_expire: str | None = attrs.field(
        default=None, converter=_f.as_rfc3339, validator=_rfc3339
    )
    account_softlock_expire: str | None = attrs.field(
        default=None, converter=_f.as_rfc3339, validator=_rfc3339
    )
    password_import: str | None = attrs.field(default=None, validator=_opt_str, repr=mask)
    totp_import: tuple[Totp, ...] = attrs.field(
        default=(), converter=_totps, validator=_f.items_of(Totp, "a Totp")
    )
    posix: PosixAccount | None = attrs.field(
        default=None, validator=_f.check_optional(PosixAccount, "a PosixAccount")
    )
    oauth2: OAuth2Account | None = attrs.field(
        default=None, validator=_f.check_optional(OAuth2Account, "an OAuth2Account")
    )
    extra: Mapping[str, JSONValue] = attrs.field(
        factory=dict,
        converter=_f.as_frozen_mapping,
        validator=_f.check_attribute_mapping,
        hash=False,
        repr=_masked_mapping_repr,
    )
    schema_order: tuple[str, ...] = attrs.field(
        default=(), converter=_strings, validator=_strs, eq=False, repr=False
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
        mail: mail addresses of the group (a plain ``str`` item is ``Mail(str)``).
        member: members, each an external id (resolved by Kanidm; unknown ones are
            silently dropped) or a UUID string (must exist, else the apply fails); a
            :class:`uuid.UUID` becomes its string.
        posix: the POSIX facet, or ``None``.
        extra: further sync-allowed attributes, sent as given.
        schema_order: wire order of the schema URNs; not part of equality.
    """

    id: uuid.UUID = attrs.field(converter=_f.as_entry_id, validator=_f.check_entry_id)
    external_id: str | None = attrs.field(default=None, validator=_opt_str)
    name: str = attrs.field(validator=_str)
    description: str | None = attrs.field(default=None, validator=_opt_str)
    mail: tuple[Mail, ...] = attrs.field(
        default=(), converter=_mails, validator=_f.items_of(Mail, "a Mail or a str")
    )
    member: tuple[str, ...] = attrs.field(
        default=(), converter=_f.as_references, validator=_members
    )
    posix: PosixGroup | None = attrs.field(
        default=None, validator=_f.check_optional(PosixGroup, "a PosixGroup")
    )
    extra: Mapping[str, JSONValue] = attrs.field(
        factory=dict,
        converter=_f.as_frozen_mapping,
        validator=_f.check_attribute_mapping,
        hash=False,
        repr=_masked_mapping_repr,
    )
    schema_order: tuple[str, ...] = attrs.field(
        default=(), converter=_strings, validator=_strs, eq=False, repr=False
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
        mail: mail addresses (a plain ``str`` item is ``Mail(str)``).
        ssh_publickey: SSH public keys.
        account_valid_from: RFC 3339 time the account becomes valid.
        account_expire: RFC 3339 time the account expires.
        account_softlock_expire: RFC 3339 time a soft lock ends.
        password_import: a password hash to import. Masked in ``repr``.
        posix: the POSIX facet, or ``None``.
        extra: further sync-allowed attributes, sent as given.
        schema_order: wire order of the schema URNs; not part of equality.
    """

    id: uuid.UUID = attrs.field(converter=_f.as_entry_id, validator=_f.check_entry_id)
    external_id: str | None = attrs.field(default=None, validator=_opt_str)
    name: str = attrs.field(validator=_str)
    displayname: str = attrs.field(validator=_str)
    description: str | None = attrs.field(default=None, validator=_opt_str)
    mail: tuple[Mail, ...] = attrs.field(
        default=(), converter=_mails, validator=_f.items_of(Mail, "a Mail or a str")
    )
    ssh_publickey: tuple[SshPublicKey, ...] = attrs.field(
        default=(),
        converter=_ssh_keys,
        validator=_f.items_of(SshPublicKey, "an SshPublicKey(label, value)"),
    )
    account_valid_from: str | None = attrs.field(
        default=None, converter=_f.as_rfc3339, validator=_rfc3339
    )
    account_expire: str | None = attrs.field(
        default=None, converter=_f.as_rfc3339, validator=_rfc3339
    )
    account_softlock_expire: str | None = attrs.field(
        default=None, converter=_f.as_rfc3339, validator=_rfc3339
    )
    password_import: str | None = attrs.field(default=None, validator=_opt_str, repr=mask)
    posix: PosixAccount | None = attrs.field(
        default=None, validator=_f.check_optional(PosixAccount, "a PosixAccount")
    )
    extra: Mapping[str, JSONValue] = attrs.field(
        factory=dict,
        converter=_f.as_frozen_mapping,
        validator=_f.check_attribute_mapping,
        hash=False,
        repr=_masked_mapping_repr,
    )
    schema_order: tuple[str, ...] = attrs.field(
        default=(), converter=_strings, validator=_strs, eq=False, repr=False
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

    id: uuid.UUID = attrs.field(converter=_f.as_entry_id, validator=_f.check_entry_id)
    external_id: str | None = attrs.field(default=None, validator=_opt_str)
    schemas: tuple[str, ...] = attrs.field(default=(), converter=_strings, validator=_strs)
    attributes: Mapping[str, JSONValue] = attrs.field(
        factory=dict,
        converter=_f.as_frozen_mapping,
        validator=_f.check_attribute_mapping,
        hash=False,
        repr=_masked_mapping_repr,
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
