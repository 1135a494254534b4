"""Pure mapping of Active Directory objects to Kanidm sync entries.

This module owns turning ``(dn, attributes)`` (raw ``bytes`` values, as python-ldap
returns them) into :class:`~kanidm_sync.Person` / :class:`~kanidm_sync.Group` values:

* ``objectGUID`` is the entry id, read in Microsoft byte order (``uuid.UUID(bytes_le=)``,
  the string Windows and samba-tool print); the DN is the external id, so a rename keeps
  the id and updates the external id;
* the account name (``sAMAccountName``) becomes a valid Kanidm name, or a clear error;
* ``displayName`` (else ``cn``), ``mail``, RFC 2307 ``uidNumber`` / ``gidNumber`` /
  ``loginShell`` when present;
* a disabled account (``userAccountControl`` bit 0x2) and ``accountExpires`` become
  ``account_expire``;
* group members are DNs, nested groups included (Kanidm resolves them by external id);
* built-in critical system objects are skipped.

It also parses DirSync's incremental member values and AD's ranged attribute names. It
must stay pure: no python-ldap import, no network, no clock (tests/adapters/test_ad_map.py
tests every rule without a server).
"""

from __future__ import annotations

import datetime as _dt
import logging
import re
import struct
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

import attrs

from .._exceptions import SourceError
from .._proto._entries import Entry, Group, Mail, Person, PosixAccount, PosixGroup
from ._ad_config import AdConfig, NamePolicy
from ._ldap_map import DISABLED_EXPIRE, normalise_attributes

__all__ = [
    "DISABLED_EXPIRE",
    "AdMapped",
    "AdObject",
    "filetime_to_rfc3339",
    "guid_filter",
    "guid_to_uuid",
    "incremental_members",
    "kanidm_name",
    "map_ad_object",
    "map_ad_objects",
    "parse_range",
]

_log = logging.getLogger("kanidm_sync.adapters.ad")

UF_ACCOUNTDISABLE: Final = 0x0002
"""``userAccountControl`` bit of a disabled account."""

_NEVER: Final = frozenset({0, 0x7FFFFFFFFFFFFFFF})
# accountExpires counts 100-ns ticks since 1601-01-01 UTC; 0 and 2^63-1 both mean "never".
_FILETIME_EPOCH: Final = _dt.datetime(1601, 1, 1, tzinfo=_dt.UTC)

_NAME_RE: Final = re.compile(r"^[a-z][a-z0-9\-_.]{0,63}$")  # spec §3.9.2
_RESERVED_NAMES: Final = frozenset({"root", "dn=token"})
_INVALID_RUN: Final = re.compile(r"[^a-z0-9\-_.]+")

# Built-ins that real AD does not always flag isCriticalSystemObject (Samba flags them all),
# by sAMAccountName, lower case; well-known RIDs (< 1000) are skipped as well.
_SYSTEM_NAMES: Final = frozenset(
    {
        "administrator",
        "guest",
        "krbtgt",
        "defaultaccount",
        "wdagutilityaccount",
        "domain admins",
        "domain users",
        "domain guests",
        "domain computers",
        "domain controllers",
        "schema admins",
        "enterprise admins",
        "dnsadmins",
        "dnsupdateproxy",
    }
)

_RANGE_RE: Final = re.compile(r"^(?P<attr>[^;]+);range=(?P<lo>\d+)-(?P<hi>\d+|\*)$", re.IGNORECASE)


def guid_to_uuid(raw: bytes) -> uuid.UUID:
    """An ``objectGUID`` value as a UUID, in Microsoft byte order.

    AD stores the GUID's first three fields little-endian; ``uuid.UUID(bytes_le=...)``
    reads exactly that layout, so ``str()`` of the result is what Windows and
    samba-tool print. (``uuid.UUID(bytes=...)`` would give a different, wrong id.)

    Args:
        raw: the 16 bytes of ``objectGUID``.

    Returns:
        The UUID.

    Raises:
        ValueError: ``raw`` is not 16 bytes.
    """
    if len(raw) != 16:
        raise ValueError(f"an objectGUID is 16 bytes, not {len(raw)}")
    return uuid.UUID(bytes_le=raw)


def guid_filter(value: uuid.UUID) -> str:
    r"""``(objectGUID=\xx\xx...)``: an RFC 4515 filter matching exactly this GUID."""
    return "(objectGUID=" + "".join(f"\\{b:02x}" for b in value.bytes_le) + ")"


def filetime_to_rfc3339(ticks: int) -> str | None:
    """An AD FILETIME (``accountExpires``) as RFC 3339 UTC, or ``None`` for "never".

    Args:
        ticks: 100-nanosecond intervals since 1601-01-01 UTC; ``0`` and
            ``0x7FFFFFFFFFFFFFFF`` mean the account never expires.

    Returns:
        ``"2030-01-01T00:00:00+00:00"`` style text (whole seconds), or ``None``.
    """
    if ticks in _NEVER or ticks < 0:
        return None
    try:
        moment = _FILETIME_EPOCH + _dt.timedelta(seconds=ticks // 10_000_000)
    except OverflowError:  # past year 9999: as good as never
        return None
    return moment.isoformat()


def kanidm_name(raw: str, *, policy: NamePolicy, dn: str, field: str) -> str | None:
    """Turn an AD account name into a valid Kanidm name (``^[a-z][a-z0-9-_.]{0,63}$``).

    A name that is valid once lower-cased is used as is. Otherwise ``policy`` decides:
    ``"error"`` raises, ``"skip"`` returns ``None``, ``"remap"`` replaces every run of
    invalid characters by ``_`` (``"Sales Team"`` -> ``"sales_team"``,
    ``"PC01$"`` -> ``"pc01_"``), puts ``g_`` before a name that does not start with a
    letter, and cuts it to 64 characters; a name still invalid then (empty, reserved)
    is an error.

    Args:
        raw: the name as AD holds it.
        policy: ``"error"``, ``"remap"`` or ``"skip"``.
        dn: the object's DN, for messages.
        field: the AD attribute the name came from, for messages.

    Returns:
        The Kanidm name, or ``None`` when skipped.

    Raises:
        SourceError: the name is invalid and ``policy`` is ``"error"``, or it cannot be
            remapped.
    """
    lowered = raw.lower()
    if _valid_name(lowered):
        return lowered
    why = _why_invalid(lowered)
    if policy == "skip":
        # Debug only: map_ad_objects logs one summary per batch, not one line per object.
        _log.debug("%s: %s %r is not a valid Kanidm name (%s); skipped", dn, field, raw, why)
        return None
    if policy == "error":
        raise SourceError(
            f"{dn}: {field} {raw!r} is not a valid Kanidm name ({why}); set "
            'name_policy = "remap" or "skip", or exclude the entry'
        )
    remapped = _INVALID_RUN.sub("_", lowered)
    if not remapped[:1].isascii() or not remapped[:1].isalpha():
        remapped = "g_" + remapped
    remapped = remapped[:64]
    if not _valid_name(remapped):
        raise SourceError(
            f"{dn}: {field} {raw!r} is not a valid Kanidm name ({why}) and cannot be remapped"
        )
    _log.debug("%s: %s %r is not a valid Kanidm name; sent as %r", dn, field, raw, remapped)
    return remapped


def _valid_name(name: str) -> bool:
    if not _NAME_RE.match(name) or name in _RESERVED_NAMES:
        return False
    try:
        uuid.UUID(name)
    except ValueError:
        return True
    return False


def _why_invalid(name: str) -> str:
    if not name:
        return "empty"
    if len(name) > 64:
        return "longer than 64 characters"
    if not ("a" <= name[0] <= "z"):
        return "must start with a letter a-z"
    if name in _RESERVED_NAMES:
        return "reserved"
    bad = _INVALID_RUN.search(name)
    if bad is not None:
        return f"character {bad.group()[0]!r} is not allowed"
    return "looks like a UUID"


def parse_range(key: str) -> tuple[str, int, int | None] | None:
    """Split an AD ranged attribute name: ``"member;range=0-1499"`` -> ``("member", 0, 1499)``.

    Args:
        key: the attribute name as the server returned it.

    Returns:
        ``(attribute, low, high)`` (attribute lower case) with ``high`` ``None`` for the
        last window (``*``),
        or ``None`` when ``key`` carries no range option.
    """
    match = _RANGE_RE.match(key)
    if match is None:
        return None
    hi = match["hi"]
    return match["attr"].lower(), int(match["lo"]), None if hi == "*" else int(hi)


def incremental_members(
    attributes: Mapping[str, Sequence[bytes]], attribute: str = "member"
) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """The member values a DirSync read with INCREMENTAL_VALUES says were added and removed.

    With that flag a changed group carries ``member;range=1-1`` (values added) and
    ``member;range=0-0`` (values removed) instead of the whole list. Kanidm replaces
    every sync-owned attribute of an entry it is sent, so the source still re-reads the
    group's full member list; these values are for the log and for tests.

    Args:
        attributes: the attributes of one DirSync entry.
        attribute: the linked attribute.

    Returns:
        ``(added DNs, removed DNs)``, or ``None`` when the entry has no incremental values.
    """
    added: list[str] = []
    removed: list[str] = []
    seen = False
    for key, values in attributes.items():
        parsed = parse_range(key)
        if parsed is None or parsed[0].lower() != attribute.lower():
            continue
        seen = True
        target = added if (parsed[1], parsed[2]) == (1, 1) else removed
        if (parsed[1], parsed[2]) not in ((1, 1), (0, 0)):
            continue
        target.extend(v.decode("utf-8", "replace") for v in values)
    return (tuple(added), tuple(removed)) if seen else None


@attrs.frozen
class AdObject:
    """One AD object as read from the directory.

    Attributes:
        dn: its DN (the Kanidm ``externalId``).
        attributes: lower-case attribute name -> raw values; a ranged ``member`` has
            been completed and stored as plain ``member``.
    """

    dn: str
    attributes: Mapping[str, tuple[bytes, ...]] = attrs.field(
        converter=normalise_attributes, repr=False, eq=False, hash=False
    )

    @property
    def guid(self) -> uuid.UUID:
        """The ``objectGUID`` as a UUID (Microsoft byte order)."""
        raw = self.attributes.get("objectguid", ())
        if len(raw) != 1:
            raise SourceError(f"{self.dn}: no objectGUID was read")
        try:
            return guid_to_uuid(raw[0])
        except ValueError as exc:
            raise SourceError(f"{self.dn}: objectGUID: {exc}") from exc

    def text(self, name: str) -> str | None:
        """The first value of ``name`` as text, or ``None``."""
        values = self.texts(name)
        return values[0] if values else None

    def texts(self, name: str) -> list[str]:
        """Every value of ``name`` decoded as UTF-8 (errors name the object and field)."""
        out = []
        for raw in self.attributes.get(name.lower(), ()):
            try:
                out.append(raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise SourceError(f"{self.dn}: {name} is not UTF-8 text") from exc
        return out

    def integer(self, name: str) -> int | None:
        """The first value of ``name`` as an integer, or ``None`` when absent."""
        text = self.text(name)
        if text is None or not text.strip():
            return None
        try:
            return int(text)
        except ValueError:
            raise SourceError(f"{self.dn}: {name} {text!r} is not an integer") from None

    @property
    def object_classes(self) -> frozenset[str]:
        """The ``objectClass`` values, lower case (AD stores the whole class chain)."""
        return frozenset(v.lower() for v in self.texts("objectClass"))

    @property
    def is_group(self) -> bool:
        """Whether it is a group."""
        return "group" in self.object_classes

    @property
    def is_deleted(self) -> bool:
        """Whether it is a tombstone (``isDeleted: TRUE``)."""
        return (self.text("isDeleted") or "").upper() == "TRUE"

    @property
    def rid(self) -> int | None:
        """The relative id (last sub-authority of ``objectSid``), or ``None``."""
        raw = self.attributes.get("objectsid", ())
        if not raw or len(raw[0]) < 12:
            return None
        value: int = struct.unpack("<I", raw[0][-4:])[0]
        return value

    @property
    def is_system_object(self) -> bool:
        """A built-in critical system object (Administrator, krbtgt, Domain Admins, ...)."""
        if (self.text("isCriticalSystemObject") or "").upper() == "TRUE":
            return True
        rid = self.rid
        if rid is not None and rid < 1000:  # well-known RIDs (MS-DTYP 2.4.2.4)
            return True
        name = (self.text("sAMAccountName") or "").lower()
        return name in _SYSTEM_NAMES or name.startswith("krbtgt_")


@attrs.frozen
class AdMapped:
    """The result of mapping a batch of AD objects.

    Attributes:
        entries: the Kanidm entries, in input order.
        left_out: ids of objects read but not sent (system objects, skipped names):
            a delta lists them as deleted, in case Kanidm holds them from before.
    """

    entries: tuple[Entry, ...]
    left_out: tuple[uuid.UUID, ...]


def map_ad_object(obj: AdObject, config: AdConfig) -> Person | Group | None:
    """Map one AD user or group to a Kanidm entry.

    Args:
        obj: the object, with every mapped attribute read (and ``member`` complete).
        config: the source configuration (attribute map, name policy, system objects).

    Returns:
        A :class:`~kanidm_sync.Person` or :class:`~kanidm_sync.Group`, or ``None`` for a
        system object or a name skipped by ``name_policy = "skip"``.

    Raises:
        SourceError: the object cannot be mapped; the message names the DN and field.
    """
    if config.skip_system_objects and obj.is_system_object:
        return None
    amap = config.attributes
    if obj.is_group:
        return _map_group(obj, config)
    raw_name = obj.text(amap.person_name)
    if raw_name is None:
        raise SourceError(f"{obj.dn}: no {amap.person_name}, so no Kanidm name")
    name = kanidm_name(raw_name, policy=config.name_policy, dn=obj.dn, field=amap.person_name)
    if name is None:
        return None
    displayname = (
        obj.text(amap.person_displayname) or obj.text("cn") or obj.text("name") or raw_name
    )
    posix = None
    gidnumber = obj.integer(amap.person_gidnumber)
    if gidnumber is not None:
        posix = PosixAccount(gidnumber=gidnumber, loginshell=obj.text(amap.person_loginshell))
    return Person(
        id=obj.guid,
        external_id=obj.dn,
        name=name,
        displayname=displayname,
        mail=[Mail(v) for v in obj.texts(amap.person_mail)],
        account_expire=_account_expire(obj),
        posix=posix,
    )


def _account_expire(obj: AdObject) -> str | None:
    uac = obj.integer("userAccountControl")
    if uac is not None and uac & UF_ACCOUNTDISABLE:
        # As the reference tools express a locked account (spec §3.9.7).
        return DISABLED_EXPIRE
    ticks = obj.integer("accountExpires")
    return None if ticks is None else filetime_to_rfc3339(ticks)


def _map_group(obj: AdObject, config: AdConfig) -> Group | None:
    amap = config.attributes
    raw_name = obj.text(amap.group_name) or obj.text("cn")
    if raw_name is None:
        raise SourceError(f"{obj.dn}: no {amap.group_name}, so no Kanidm name")
    name = kanidm_name(raw_name, policy=config.name_policy, dn=obj.dn, field=amap.group_name)
    if name is None:
        return None
    gidnumber = obj.integer(amap.group_gidnumber)
    return Group(
        id=obj.guid,
        external_id=obj.dn,
        name=name,
        description=obj.text(amap.group_description),
        mail=[Mail(v) for v in obj.texts(amap.group_mail)],
        # Members by DN, nested groups included: Kanidm resolves each by external id and
        # silently drops the ones it does not hold (contacts, computers, skipped objects).
        member=obj.texts("member"),
        posix=None if gidnumber is None else PosixGroup(gidnumber=gidnumber),
    )


def map_ad_objects(objects: Iterable[AdObject], config: AdConfig) -> AdMapped:
    """Map AD objects, checking that no two entries get the same Kanidm name.

    Args:
        objects: the objects (tombstones are not expected here).
        config: the source configuration.

    Returns:
        The entries and the ids of the objects left out.

    Raises:
        SourceError: an object cannot be mapped, or two map to one name (the message
            names both DNs).
    """
    entries: list[Entry] = []
    left_out: list[uuid.UUID] = []
    names: dict[str, str] = {}
    renamed: list[str] = []
    for obj in objects:
        entry = map_ad_object(obj, config)
        if entry is None:
            left_out.append(obj.guid)
            if not (config.skip_system_objects and obj.is_system_object):
                renamed.append(f"{obj.dn} (skipped)")
            continue
        name = entry.name
        raw_name = obj.text(
            config.attributes.group_name if obj.is_group else config.attributes.person_name
        )
        if raw_name is not None and raw_name.lower() != name:
            renamed.append(f"{obj.dn} -> {name!r}")
        other = names.setdefault(name, obj.dn)
        if other != obj.dn:
            raise SourceError(
                f"{obj.dn}: Kanidm name {name!r} is also the name of {other}; "
                "rename one in AD, or exclude or remap one with rules"
            )
        entries.append(entry)
    if renamed:
        # One line per batch: a directory full of "Sales Team"-style names would otherwise
        # log one warning per group on every run.
        _log.warning(
            "%d account names are not valid Kanidm names (name_policy=%r): %s%s",
            len(renamed),
            config.name_policy,
            "; ".join(renamed[:5]),
            f"; and {len(renamed) - 5} more" if len(renamed) > 5 else "",
        )
    return AdMapped(entries=tuple(entries), left_out=tuple(left_out))
