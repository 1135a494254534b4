"""Configuration of the LDAP and FreeIPA sources: kanidm-ldap-sync / kanidm-ipa-sync TOML.

This module owns reading the reference tools' configuration files *as they are* (same
keys, same defaults, per-entry ``[<sync uuid>]`` tables) into frozen values, and turning
an ldap3-style filter into an RFC 4515 one. It is pure (no LDAP, no network); it must not
import python-ldap, so configurations load and test without the ``ldap`` extra.

Where we differ from the reference tools, on purpose:

* an unknown or misspelled key is a warning naming the key (in the value's ``warnings``
  and logged on ``kanidm_sync.config``), and the file is read (the tools parse it as an
  entry UUID and fail with "UUID parsing failed"; Kanidm's own example
  ``iam_migration_ldap.toml`` has two such keys). A required key that is missing is
  still an error, and it names the unknown key that looks like it;
* ``schedule`` is checked when the file is read, with the tools' cron grammar plus the
  five-field form kanidmd accepts (:mod:`kanidm_sync._cron`);
* attribute names and objectClass values are compared case-insensitively (the tools
  compare them as written against lower-cased LDAP names, so ``displayName`` never
  matched there);
* ``max_ber_size`` is accepted and ignored: libldap has no such client-side limit.
"""

from __future__ import annotations

import difflib
import logging
import os
import tomllib
import types
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final, Literal, TypeAlias, TypeVar

import attrs

from .._cron import CronExpression
from .._exceptions import ConfigError

if TYPE_CHECKING:
    from .._rules import Rules

from ._ldap_filter import to_rfc4515_filter

__all__ = [
    "DEFAULT_SCHEDULE",
    "EntryOverride",
    "IpaConfig",
    "LdapConfig",
    "load_config",
    "to_rfc4515_filter",
]

_log = logging.getLogger("kanidm_sync.config")

DEFAULT_SCHEDULE: Final = "0 */5 * * * * *"
"""The reference tools' default cron schedule (every five minutes)."""

DEFAULT_MAX_BER_SIZE: Final = 32 * 1024

GroupSchema: TypeAlias = Literal["rfc2307", "rfc2307bis"]

_MASK: Final = "'***'"


def _mask(value: object) -> str:
    return "None" if value is None else _MASK


def _needs_python_ldap(module: str) -> ImportError:
    """The import guard's error for a source module when python-ldap is missing."""
    return ImportError(
        f"{module} needs python-ldap, which is not installed: "
        "pip install 'kanidm-sync[ldap]' (building it needs the libldap and libsasl2 "
        "development headers, e.g. Debian's libldap2-dev and libsasl2-dev)"
    )


def _lower(value: str) -> str:
    return value.lower()


def _frozen_map(value: Mapping[uuid.UUID, EntryOverride]) -> Mapping[uuid.UUID, EntryOverride]:
    return types.MappingProxyType(dict(value))


def _valid_cron(inst: object, attribute: attrs.Attribute[str], value: str) -> None:
    CronExpression.parse(value)  # ValueError naming the field of the expression


@attrs.frozen(kw_only=True)
class EntryOverride:
    """A per-entry table of the reference tools, keyed by the entry's sync UUID.

    Unlike the reference tools, the ``map_*`` keys apply to groups as well as persons,
    and ``map_uuid`` is applied to deleted and present ids too.

    Attributes:
        exclude: never send this entry to Kanidm (removed there if it was synced).
        map_uuid: the Kanidm entry id to use instead of the sync UUID.
        map_name: the Kanidm ``name`` to use instead of the LDAP one.
        map_gidnumber: the gidnumber to use instead of the LDAP one.
    """

    exclude: bool = False
    map_uuid: uuid.UUID | None = None
    map_name: str | None = None
    map_gidnumber: int | None = None


@attrs.frozen(kw_only=True)
class LdapConfig:
    """A kanidm-ldap-sync configuration (``/etc/kanidm/ldap-sync``).

    Defaults are the reference tool's. Attribute names and object classes are stored
    lower-case. Secrets are masked in ``repr``.

    Attributes:
        sync_token: the Kanidm sync token (not used by the source itself).
        schedule: when the reference daemon runs, a cron expression (checked when read;
            :attr:`cron` is its parsed form, which ``kanidm-sync run --schedule``
            follows).
        status_bind: the status listener address: ``kanidm-sync run --schedule`` serves
            the status endpoints there, as ``--listen`` would (loopback only unless
            ``--listen-public``).
        ldap_uri: ``ldap://`` or ``ldaps://`` URI of one specific server.
        ldap_ca: path of a PEM CA file, the only trust root when set.
        ldap_verify_ca: ``False`` disables certificate checks (ignored with ``ldap_ca``).
        ldap_sync_dn: bind DN of an account allowed to use content sync.
        ldap_sync_pw: its password.
        ldap_sync_base_dn: the search base.
        ldap_filter: the search filter as written in the file (ldap3 syntax); see
            :attr:`search_filter` for the RFC 4515 form sent to the server.
        ldap_first_cookie: the sync cookie sent with a full refresh (kanidm-sync only;
            kanidm-ldap-sync ignores the key). 389-ds in its OpenLDAP-compatible mode
            (``syncrepl-allow-openldap: on``) needs ``"rid=000"``: without it that server
            answers in its default mode (``nsUniqueId`` ids, ``host:port#...`` cookies).
            Leave unset for OpenLDAP and for 389-ds in its default mode (FreeIPA).
        sync_password_as_unix_password: also send the password as ``unix_password_import``.
        max_ber_size: accepted for compatibility; ignored (libldap has no such limit).
        person_objectclass: object class that marks a person.
        person_attr_user_name: attribute for ``name``.
        person_attr_display_name: attribute for ``displayname``.
        person_attr_gidnumber: attribute for the person's ``gidnumber``.
        person_attr_password: attribute for ``password_import``.
        person_password_prefix: text put before the password value.
        person_attr_login_shell: attribute for ``loginshell``.
        person_attr_mail: attribute for ``mail``.
        person_attr_ssh_public_key: attribute for ``ssh_publickey``.
        group_objectclass: object class that marks a group.
        group_attr_name: attribute for the group's ``name``.
        group_attr_description: attribute for ``description``.
        group_attr_gidnumber: attribute for the group's ``gidnumber``.
        group_attr_member: attribute holding the members.
        group_attr_schema: ``"rfc2307bis"`` (members are DNs) or ``"rfc2307"`` (members
            are user names, resolved to DNs).
        entry_map: per-entry overrides by sync UUID.
        warnings: what was ignored when the file was read (unknown keys), one message
            each, naming the file and the key.
    """

    sync_token: str | None = attrs.field(default=None, repr=_mask)
    schedule: str = attrs.field(default=DEFAULT_SCHEDULE, validator=_valid_cron)
    status_bind: str | None = None
    ldap_uri: str
    ldap_ca: str | None = None
    ldap_verify_ca: bool = True
    ldap_sync_dn: str
    ldap_sync_pw: str = attrs.field(repr=_mask)
    ldap_sync_base_dn: str
    ldap_filter: str
    ldap_first_cookie: str | None = None
    sync_password_as_unix_password: bool = False
    max_ber_size: int = DEFAULT_MAX_BER_SIZE
    person_objectclass: str = attrs.field(default="person", converter=_lower)
    person_attr_user_name: str = attrs.field(default="uid", converter=_lower)
    person_attr_display_name: str = attrs.field(default="cn", converter=_lower)
    person_attr_gidnumber: str = attrs.field(default="uidnumber", converter=_lower)
    person_attr_password: str = attrs.field(default="userpassword", converter=_lower)
    person_password_prefix: str | None = None
    person_attr_login_shell: str = attrs.field(default="loginshell", converter=_lower)
    person_attr_mail: str = attrs.field(default="mail", converter=_lower)
    person_attr_ssh_public_key: str = attrs.field(default="sshpublickey", converter=_lower)
    group_objectclass: str = attrs.field(default="groupofnames", converter=_lower)
    group_attr_name: str = attrs.field(default="cn", converter=_lower)
    group_attr_description: str = attrs.field(default="description", converter=_lower)
    group_attr_gidnumber: str = attrs.field(default="gidnumber", converter=_lower)
    group_attr_member: str = attrs.field(default="member", converter=_lower)
    group_attr_schema: GroupSchema = "rfc2307bis"
    entry_map: Mapping[uuid.UUID, EntryOverride] = attrs.field(
        factory=dict, converter=_frozen_map, hash=False
    )
    warnings: tuple[str, ...] = attrs.field(default=(), converter=tuple, eq=False, repr=False)

    @property
    def cron(self) -> CronExpression:
        """:attr:`schedule` parsed (it was checked when the configuration was made)."""
        return CronExpression.parse(self.schedule)

    @property
    def search_filter(self) -> str:
        """The filter in RFC 4515 syntax, as python-ldap sends it."""
        return to_rfc4515_filter(self.ldap_filter)

    @property
    def rules(self) -> Rules:
        """The per-entry tables as :class:`~kanidm_sync.Rules` (exclude and remaps)."""
        return _rules_from_entry_map(self.entry_map)

    @classmethod
    def from_toml(cls, text: str, *, source: str = "<string>") -> LdapConfig:
        """Parse a kanidm-ldap-sync TOML document.

        Args:
            text: the TOML text.
            source: where it came from, for error messages.

        Returns:
            The configuration.

        Raises:
            ConfigError: bad TOML, an unknown key, a missing key or a wrong type.
        """
        return _build(cls, _LDAP_KEYS, _parse_toml(text, source), source)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> LdapConfig:
        """Read a kanidm-ldap-sync configuration file.

        Args:
            path: the file, for example ``/etc/kanidm/ldap-sync``.

        Returns:
            The configuration.

        Raises:
            ConfigError: the file cannot be read or is not a valid configuration.
        """
        return cls.from_toml(_read(path), source=os.fspath(path))


@attrs.frozen(kw_only=True)
class IpaConfig:
    """A kanidm-ipa-sync configuration (``/etc/kanidm/ipa-sync``).

    Attributes:
        sync_token: the Kanidm sync token (not used by the source itself).
        schedule: when the reference daemon runs, a cron expression (checked when read;
            :attr:`cron` is its parsed form, which ``kanidm-sync run --schedule``
            follows).
        status_bind: the status listener address: ``kanidm-sync run --schedule`` serves
            the status endpoints there, as ``--listen`` would (loopback only unless
            ``--listen-public``).
        ipa_uri: ``ldap://`` or ``ldaps://`` URI of one specific FreeIPA replica.
        ipa_ca: path of a PEM CA file (on IPA: ``/etc/ipa/ca.crt``).
        ipa_verify_ca: ``False`` disables certificate checks (ignored with ``ipa_ca``).
        ipa_sync_dn: bind DN with content-sync rights.
        ipa_sync_pw: its password.
        ipa_sync_base_dn: the search base; must cover ``cn=accounts`` and ``cn=otp``.
        skip_invalid_password_formats: import a user without a password (with a
            warning) when its hash is in a format Kanidm refuses as invalid.
        sync_password_as_unix_password: also send the password as ``unix_password_import``.
        max_ber_size: accepted for compatibility; ignored (libldap has no such limit).
        entry_map: per-entry overrides by sync UUID.
        warnings: what was ignored when the file was read (unknown keys), one message
            each, naming the file and the key.
    """

    sync_token: str | None = attrs.field(default=None, repr=_mask)
    schedule: str = attrs.field(default=DEFAULT_SCHEDULE, validator=_valid_cron)
    status_bind: str | None = None
    ipa_uri: str
    ipa_ca: str | None = None
    ipa_verify_ca: bool = True
    ipa_sync_dn: str
    ipa_sync_pw: str = attrs.field(repr=_mask)
    ipa_sync_base_dn: str
    skip_invalid_password_formats: bool = False
    sync_password_as_unix_password: bool = False
    max_ber_size: int = DEFAULT_MAX_BER_SIZE
    entry_map: Mapping[uuid.UUID, EntryOverride] = attrs.field(
        factory=dict, converter=_frozen_map, hash=False
    )
    warnings: tuple[str, ...] = attrs.field(default=(), converter=tuple, eq=False, repr=False)

    @property
    def cron(self) -> CronExpression:
        """:attr:`schedule` parsed (it was checked when the configuration was made)."""
        return CronExpression.parse(self.schedule)

    @property
    def rules(self) -> Rules:
        """The per-entry tables as :class:`~kanidm_sync.Rules` (exclude and remaps)."""
        return _rules_from_entry_map(self.entry_map)

    @classmethod
    def from_toml(cls, text: str, *, source: str = "<string>") -> IpaConfig:
        """Parse a kanidm-ipa-sync TOML document.

        Args:
            text: the TOML text.
            source: where it came from, for error messages.

        Returns:
            The configuration.

        Raises:
            ConfigError: bad TOML, an unknown key, a missing key or a wrong type.
        """
        return _build(cls, _IPA_KEYS, _parse_toml(text, source), source)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> IpaConfig:
        """Read a kanidm-ipa-sync configuration file.

        Args:
            path: the file, for example ``/etc/kanidm/ipa-sync``.

        Returns:
            The configuration.

        Raises:
            ConfigError: the file cannot be read or is not a valid configuration.
        """
        return cls.from_toml(_read(path), source=os.fspath(path))


def _rules_from_entry_map(entry_map: Mapping[uuid.UUID, EntryOverride]) -> Rules:
    # Imported here: _rules imports the adapters package, which must not import back.
    from .._rules import Remap, Rules

    remaps = {
        key: Remap(id=o.map_uuid, name=o.map_name, gidnumber=o.map_gidnumber)
        for key, o in entry_map.items()
        if o.map_uuid is not None or o.map_name is not None or o.map_gidnumber is not None
    }
    excluded = [key for key, o in entry_map.items() if o.exclude]
    return Rules(exclude_ids=excluded, remap_ids=remaps)


def load_config(path: str | os.PathLike[str]) -> LdapConfig | IpaConfig:
    """Read a kanidm-ldap-sync or kanidm-ipa-sync file, telling them apart by their keys.

    A file with ``ipa_uri`` is a FreeIPA configuration; one with ``ldap_uri`` is a
    generic LDAP one.

    Args:
        path: the configuration file.

    Returns:
        An :class:`LdapConfig` or an :class:`IpaConfig`.

    Raises:
        ConfigError: the file cannot be read, is neither kind, or is invalid.
    """
    source = os.fspath(path)
    data = _parse_toml(_read(path), source)
    if "ipa_uri" in data and "ldap_uri" in data:
        raise ConfigError(f"{source}: has both ipa_uri and ldap_uri; use one tool's keys")
    if "ipa_uri" in data:
        return _build(IpaConfig, _IPA_KEYS, data, source)
    if "ldap_uri" in data:
        return _build(LdapConfig, _LDAP_KEYS, data, source)
    raise ConfigError(
        f"{source}: neither ldap_uri (kanidm-ldap-sync) nor ipa_uri (kanidm-ipa-sync) is set"
    )


# --- the key tables --------------------------------------------------------------------------

_Kind: TypeAlias = Literal["str", "bool", "int", "schema"]
# key -> (kind, required)
_COMMON_KEYS: Final[dict[str, tuple[_Kind, bool]]] = {
    "sync_token": ("str", True),
    "schedule": ("str", False),
    "status_bind": ("str", False),
    "sync_password_as_unix_password": ("bool", False),
    "max_ber_size": ("int", False),
}
_LDAP_KEYS: Final[dict[str, tuple[_Kind, bool]]] = {
    **_COMMON_KEYS,
    "ldap_uri": ("str", True),
    "ldap_ca": ("str", False),
    "ldap_verify_ca": ("bool", False),
    "ldap_sync_dn": ("str", True),
    "ldap_sync_pw": ("str", True),
    "ldap_sync_base_dn": ("str", True),
    "ldap_filter": ("str", True),
    "ldap_first_cookie": ("str", False),
    "person_objectclass": ("str", False),
    "person_attr_user_name": ("str", False),
    "person_attr_display_name": ("str", False),
    "person_attr_gidnumber": ("str", False),
    "person_attr_password": ("str", False),
    "person_password_prefix": ("str", False),
    "person_attr_login_shell": ("str", False),
    "person_attr_mail": ("str", False),
    "person_attr_ssh_public_key": ("str", False),
    "group_objectclass": ("str", False),
    "group_attr_name": ("str", False),
    "group_attr_description": ("str", False),
    "group_attr_gidnumber": ("str", False),
    "group_attr_member": ("str", False),
    "group_attr_schema": ("schema", False),
}
_IPA_KEYS: Final[dict[str, tuple[_Kind, bool]]] = {
    **_COMMON_KEYS,
    "ipa_uri": ("str", True),
    "ipa_ca": ("str", False),
    "ipa_verify_ca": ("bool", False),
    "ipa_sync_dn": ("str", True),
    "ipa_sync_pw": ("str", True),
    "ipa_sync_base_dn": ("str", True),
    "skip_invalid_password_formats": ("bool", False),
}
_OVERRIDE_KEYS: Final = ("exclude", "map_uuid", "map_name", "map_gidnumber")


def _read(path: str | os.PathLike[str]) -> str:
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise ConfigError(f"cannot read {os.fspath(path)}: {exc}") from exc
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    # Raised outside the handler: the decode error's .object is the file, bind password
    # and sync token included, and would stay reachable as __context__.
    raise ConfigError(f"cannot read {os.fspath(path)}: not UTF-8 text")


def _parse_toml(text: str, source: str) -> dict[str, object]:
    problem = None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        problem = str(exc).splitlines()[0]
    except RecursionError:
        # tomllib recurses once per nested array or inline table.
        problem = "arrays or inline tables nested too deeply"
    # Not chained: since Python 3.14 the TOML error holds the whole document (.doc), bind
    # password included. Its message gives a position, never the text.
    raise ConfigError(f"{source}: not valid TOML: {problem}")


def _suggest(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _is_uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def _check(kind: _Kind, key: str, value: object, source: str) -> object:
    if kind in ("str", "schema"):
        if not isinstance(value, str):
            raise ConfigError(f"{source}: {key} must be a string, not {type(value).__name__}")
        if kind == "schema" and value.lower() not in ("rfc2307", "rfc2307bis"):
            raise ConfigError(f"{source}: {key} must be 'rfc2307' or 'rfc2307bis'")
        return value.lower() if kind == "schema" else value
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: {key} must be true or false")
        return value
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"{source}: {key} must be a non-negative integer")
    return value


def _override(name: str, table: object, source: str, warnings: list[str]) -> EntryOverride:
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: [{name}] must be a table of per-entry settings")
    for key in table:
        if key not in _OVERRIDE_KEYS:
            warnings.append(
                _unknown(key, list(_OVERRIDE_KEYS), source, "", f" in [{name}]")
                + f" (allowed: {', '.join(_OVERRIDE_KEYS)})"
            )
    where = f"[{name}]"
    exclude = table.get("exclude", False)
    if not isinstance(exclude, bool):
        raise ConfigError(f"{source}: {where}.exclude must be true or false")
    map_uuid: uuid.UUID | None = None
    if "map_uuid" in table:
        raw = table["map_uuid"]
        map_uuid = _is_uuid(raw) if isinstance(raw, str) else None
        if map_uuid is None:
            raise ConfigError(f"{source}: {where}.map_uuid must be a UUID string")
    map_name = table.get("map_name")
    if map_name is not None and not isinstance(map_name, str):
        raise ConfigError(f"{source}: {where}.map_name must be a string")
    map_gid = table.get("map_gidnumber")
    if map_gid is not None and (
        not isinstance(map_gid, int) or isinstance(map_gid, bool) or not 0 <= map_gid < 2**32
    ):
        raise ConfigError(f"{source}: {where}.map_gidnumber must be an integer (u32)")
    return EntryOverride(
        exclude=exclude, map_uuid=map_uuid, map_name=map_name, map_gidnumber=map_gid
    )


# The reference tools' command-line options (opt.rs). Kanidm's example iam_migration_ldap.toml
# writes two of them into the file, where neither tool reads them.
_TOOL_OPTIONS: Final[Mapping[str, str]] = {
    "debug": "use --debug",
    "dry_run": "use `kanidm-sync plan`, or `run --dry-run`",
    "proto_dump": "use `kanidm-sync plan --json`",
    "skip_root_check": "kanidm-sync has no root check",
    "client_config": "the Kanidm client configuration is read from its usual places",
    "ldap_sync_config": "pass the file with -c",
    "ipa_sync_config": "pass the file with -c",
}


def _unknown(key: str, known: list[str], source: str, tool: str, where: str = "") -> str:
    if not where and key in _TOOL_OPTIONS:
        return (
            f"{source}: {key!r} is a command-line option of {tool}, not a configuration "
            f"key; ignored (kanidm-sync: {_TOOL_OPTIONS[key]})"
        )
    return f"{source}: unknown key {key!r}{where} ignored{_suggest(key, known)}"


# The two config classes share no base; a constrained TypeVar keeps _build typed.
_C = TypeVar("_C", LdapConfig, IpaConfig)


def _build(
    cls: type[_C], keys: Mapping[str, tuple[_Kind, bool]], data: dict[str, object], source: str
) -> _C:
    tool = "kanidm-ipa-sync" if "ipa_uri" in keys else "kanidm-ldap-sync"
    values: dict[str, object] = {}
    entry_map: dict[uuid.UUID, EntryOverride] = {}
    warnings: list[str] = []
    unknown: list[str] = []
    items = list(data.items())
    nested = data.get("entry_map")
    if nested is not None:
        # The tools flatten the per-entry tables into the top level (``[<uuid>]``); the
        # explicit ``[entry_map."<uuid>"]`` form (kanidm_sync.Rules' spelling) is read too.
        if not isinstance(nested, dict):
            raise ConfigError(f"{source}: entry_map must be a table of per-entry tables")
        items = [(k, v) for k, v in items if k != "entry_map"]
        for key, value in nested.items():
            if _is_uuid(key) is None:
                raise ConfigError(f"{source}: [entry_map.{key}]: the table name must be a UUID")
            items.append((key, value))
    for key, value in items:
        if key in keys:
            values[key] = _check(keys[key][0], key, value, source)
            continue
        sync_uuid = _is_uuid(key)
        if sync_uuid is not None and isinstance(value, dict):
            if sync_uuid in entry_map:
                raise ConfigError(f"{source}: two tables for entry {sync_uuid}")
            entry_map[sync_uuid] = _override(key, value, source, warnings)
            continue
        if sync_uuid is not None:
            raise ConfigError(f"{source}: [{key}] must be a table of per-entry settings")
        # The tools' serde structs do not deny unknown fields: read the file, say what
        # was ignored.
        unknown.append(key)
        warnings.append(_unknown(key, list(keys), source, tool))
    missing = [key for key, (_, required) in keys.items() if required and key not in values]
    if missing:
        lookalikes = [u for u in unknown if difflib.get_close_matches(u, missing, n=1)]
        seen = f" (the file has {', '.join(map(repr, lookalikes))})" if lookalikes else ""
        raise ConfigError(f"{source}: missing required key(s): {', '.join(missing)}{seen}")
    schedule = values.get("schedule")
    if isinstance(schedule, str):
        try:
            CronExpression.parse(schedule)
        except ValueError as exc:
            raise ConfigError(f"{source}: schedule: {exc}") from None
    config = cls(**values, entry_map=entry_map, warnings=warnings)  # type: ignore[arg-type]
    for warning in warnings:
        _log.warning("%s", warning)
    return config
