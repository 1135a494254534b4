"""Configuration of the Active Directory source: a TOML file read into a frozen value.

This module owns the AD source's configuration keys, their defaults and their checks. It
is pure (no LDAP, no network) and must not import python-ldap, so a configuration loads
and is tested without the ``ldap`` extra. TOML parsing and the "did you mean" hint are
shared with the LDAP source's configuration (``_ldap_config.py``).

An unknown or misspelled key is a :class:`~kanidm_sync.ConfigError` naming the key, as
in the LDAP source. The bind password is masked in ``repr`` and never appears in an
error message.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
from collections.abc import Mapping
from typing import Final, Literal, TypeAlias

import attrs

from .._exceptions import ConfigError
from ._ldap_config import _parse_toml, _read, _suggest

__all__ = [
    "DEFAULT_GROUP_FILTER",
    "DEFAULT_USER_FILTER",
    "AdAttributeMap",
    "AdConfig",
    "load_ad_config",
]

AdMode: TypeAlias = Literal["dirsync", "usn"]
"""How changes are tracked: the DirSync control, or polling ``uSNChanged``."""

NamePolicy: TypeAlias = Literal["error", "remap", "skip"]
"""What to do with an account name that cannot be a Kanidm name."""

DEFAULT_USER_FILTER: Final = "(&(objectCategory=person)(objectClass=user))"
"""User accounts; leaves out computers (also ``objectClass=user``) and contacts."""

DEFAULT_GROUP_FILTER: Final = "(objectClass=group)"
"""Every group, security and distribution."""

_MASK: Final = "'***'"


def _mask(value: object) -> str:
    return "None" if value is None else _MASK


@attrs.frozen(kw_only=True)
class AdAttributeMap:
    """Which AD attribute fills which Kanidm attribute (the ``[attributes]`` table).

    Names are LDAP attribute names, compared case-insensitively.

    Attributes:
        person_name: the person's Kanidm ``name``.
        person_displayname: the person's ``displayname`` (falls back to ``cn``, then
            ``name``).
        person_mail: the person's ``mail`` (every value).
        person_gidnumber: the person's POSIX ``gidnumber``; an account without it has no
            POSIX facet. Kanidm uses one number as both uid and gid.
        person_loginshell: the person's ``loginshell``.
        group_name: the group's Kanidm ``name``.
        group_description: the group's ``description``.
        group_mail: the group's ``mail``.
        group_gidnumber: the group's POSIX ``gidnumber``; a group without it has no POSIX
            facet.
    """

    person_name: str = "sAMAccountName"
    person_displayname: str = "displayName"
    person_mail: str = "mail"
    person_gidnumber: str = "uidNumber"
    person_loginshell: str = "loginShell"
    group_name: str = "sAMAccountName"
    group_description: str = "description"
    group_mail: str = "mail"
    group_gidnumber: str = "gidNumber"

    def ldap_names(self) -> tuple[str, ...]:
        """Every mapped attribute name, once each, in a stable order."""
        names = [getattr(self, a.name) for a in attrs.fields(AdAttributeMap)]
        return tuple(dict.fromkeys(names))


@attrs.frozen(kw_only=True)
class AdConfig:
    """The Active Directory source's configuration.

    Attributes:
        url: ``ldap://`` or ``ldaps://`` URL of *one* domain controller (cookies and
            USNs belong to one DC).
        bind_dn: the account to bind as: a DN or a UPN (``sync@example.com``).
        bind_password: its password. Masked in ``repr``.
        base_dn: where users and groups are read (a naming-context root or an OU).
        naming_context: the domain's naming-context root (DirSync needs it as its
            base); by default read from the rootDSE (``defaultNamingContext``).
        mode: ``"dirsync"`` (needs "Replicating Directory Changes", or
            ``dirsync_object_security``) or ``"usn"`` (any account that can read the
            objects and the deleted-objects container).
        dirsync_object_security: send DirSync's OBJECT_SECURITY flag, so an account
            without the replication right can use DirSync; it then sees only what it
            may read.
        user_filter: RFC 4515 filter selecting the users to sync.
        group_filter: RFC 4515 filter selecting the groups to sync.
        attributes: the attribute map.
        skip_system_objects: leave out built-in critical system objects
            (``isCriticalSystemObject``, well-known RIDs below 1000: Administrator,
            krbtgt, Guest, Domain Admins, ...).
        name_policy: an account name that is not a valid Kanidm name is an error
            (``"error"``), is made one (``"remap"``: lower-cased, invalid characters
            replaced by ``_``; a warning is logged) or leaves the entry out
            (``"skip"``).
        tls_ca: a PEM CA file, the only trust root for ``ldaps://`` when set.
        tls_verify: ``False`` disables certificate checks (ignored with ``tls_ca``).
        page_size: entries per page of a paged search (AD's MaxPageSize is 1000).
        range_size: values per window when reading ``member``; ``0`` lets the server
            choose (AD's MaxValRange is 1500). A positive value asks explicit windows.
        timeout: seconds to wait for the connection and for each answer.
        source: where the configuration came from, for messages.
    """

    url: str
    bind_dn: str
    bind_password: str = attrs.field(repr=_mask)
    base_dn: str
    naming_context: str | None = None
    mode: AdMode = attrs.field(
        default="dirsync", validator=attrs.validators.in_(("dirsync", "usn"))
    )
    dirsync_object_security: bool = False
    user_filter: str = DEFAULT_USER_FILTER
    group_filter: str = DEFAULT_GROUP_FILTER
    attributes: AdAttributeMap = attrs.field(factory=AdAttributeMap)
    skip_system_objects: bool = True
    name_policy: NamePolicy = attrs.field(
        default="remap", validator=attrs.validators.in_(("error", "remap", "skip"))
    )
    tls_ca: str | None = None
    tls_verify: bool = True
    page_size: int = attrs.field(default=500, validator=attrs.validators.ge(1))
    range_size: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    timeout: float = 300.0
    source: str = attrs.field(default="<config>", eq=False)

    @property
    def fingerprint(self) -> bytes:
        """A short digest of everything that decides *which* entries are read and how.

        It is kept in the cookie: a cookie written under another base, filter or
        attribute map forces a full refresh, since changes it skipped would be missed.
        """
        parts = (
            self.base_dn.lower(),
            (self.naming_context or "").lower(),
            self.user_filter,
            self.group_filter,
            *(n.lower() for n in self.attributes.ldap_names()),
            str(self.skip_system_objects),
            self.name_policy,
        )
        return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()[:16].encode()

    @classmethod
    def from_toml(
        cls, text: str, *, source: str = "<string>", base_dir: pathlib.Path | None = None
    ) -> AdConfig:
        """Parse a configuration document.

        Args:
            text: the TOML text.
            source: where it came from, for error messages.
            base_dir: directory that a relative ``bind_password_file`` is relative to
                (default: the current directory).

        Returns:
            The configuration.

        Raises:
            ConfigError: bad TOML, an unknown key, a missing key or a wrong value.
        """
        return _build(_parse_toml(text, source), source, base_dir)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> AdConfig:
        """Read a configuration file.

        Args:
            path: the TOML file.

        Returns:
            The configuration.

        Raises:
            ConfigError: the file cannot be read or is not a valid configuration.
        """
        where = pathlib.Path(path)
        return cls.from_toml(_read(path), source=os.fspath(path), base_dir=where.parent)


def load_ad_config(path: str | os.PathLike[str]) -> AdConfig:
    """Read an Active Directory source configuration file (see docs/ad.md).

    Args:
        path: the TOML file.

    Returns:
        The configuration.

    Raises:
        ConfigError: the file cannot be read or is not a valid configuration.
    """
    return AdConfig.from_file(path)


# --- the key table -------------------------------------------------------------------------

_Kind: TypeAlias = Literal["str", "bool", "int", "float"]
_KEYS: Final[dict[str, tuple[_Kind, bool]]] = {
    "url": ("str", True),
    "bind_dn": ("str", True),
    "bind_password": ("str", False),
    "bind_password_file": ("str", False),
    "base_dn": ("str", True),
    "naming_context": ("str", False),
    "mode": ("str", False),
    "dirsync_object_security": ("bool", False),
    "user_filter": ("str", False),
    "group_filter": ("str", False),
    "skip_system_objects": ("bool", False),
    "name_policy": ("str", False),
    "tls_ca": ("str", False),
    "tls_verify": ("bool", False),
    "page_size": ("int", False),
    "range_size": ("int", False),
    "timeout": ("float", False),
}
_ATTRIBUTE_KEYS: Final = tuple(a.name for a in attrs.fields(AdAttributeMap))
_CHOICES: Final[Mapping[str, tuple[str, ...]]] = {
    "mode": ("dirsync", "usn"),
    "name_policy": ("error", "remap", "skip"),
}


def _check(kind: _Kind, key: str, value: object, source: str) -> object:
    if kind == "str":
        if not isinstance(value, str):
            raise ConfigError(f"{source}: {key} must be a string, not {type(value).__name__}")
        if key in _CHOICES and value not in _CHOICES[key]:
            raise ConfigError(f"{source}: {key} must be one of {', '.join(_CHOICES[key])}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: {key} must be true or false")
        return value
    if kind == "float":
        if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"{source}: {key} must be a positive number")
        return float(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"{source}: {key} must be a non-negative integer")
    if key == "page_size" and value == 0:
        raise ConfigError(f"{source}: page_size must be at least 1")
    return value


def _attribute_map(table: object, source: str) -> AdAttributeMap:
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: [attributes] must be a table")
    for key, value in table.items():
        if key not in _ATTRIBUTE_KEYS:
            raise ConfigError(
                f"{source}: unknown key {key!r} in [attributes]"
                f"{_suggest(key, list(_ATTRIBUTE_KEYS))}; allowed: {', '.join(_ATTRIBUTE_KEYS)}"
            )
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{source}: attributes.{key} must be an attribute name")
    return AdAttributeMap(**{k: v.strip() for k, v in table.items()})


def _password(values: dict[str, object], source: str, base_dir: pathlib.Path | None) -> str:
    inline = values.pop("bind_password", None)
    from_file = values.pop("bind_password_file", None)
    if (inline is None) == (from_file is None):
        raise ConfigError(f"{source}: set exactly one of bind_password and bind_password_file")
    if isinstance(inline, str):
        return inline
    assert isinstance(from_file, str)
    path = pathlib.Path(from_file)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    try:
        # One trailing newline is an artefact of `echo pw > file`, not part of the secret.
        return path.read_text(encoding="utf-8").removesuffix("\n")
    except (OSError, UnicodeDecodeError) as exc:
        # The message names the file, never its content.
        raise ConfigError(f"{source}: cannot read bind_password_file {path}: {exc}") from exc


def _build(data: dict[str, object], source: str, base_dir: pathlib.Path | None) -> AdConfig:
    values: dict[str, object] = {}
    attribute_map = AdAttributeMap()
    for key, value in data.items():
        if key == "attributes":
            attribute_map = _attribute_map(value, source)
        elif key in _KEYS:
            values[key] = _check(_KEYS[key][0], key, value, source)
        else:
            raise ConfigError(
                f"{source}: unknown key {key!r}{_suggest(key, [*_KEYS, 'attributes'])}"
            )
    missing = [key for key, (_, required) in _KEYS.items() if required and key not in values]
    if missing:
        raise ConfigError(f"{source}: missing required key(s): {', '.join(missing)}")
    password = _password(values, source, base_dir)
    return AdConfig(
        **values,  # type: ignore[arg-type]
        bind_password=password,
        attributes=attribute_map,
        source=source,
    )
