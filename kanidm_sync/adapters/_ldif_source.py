"""The LDIF file source: :class:`LdifSource` and its :class:`LdifMapping`.

Owns: mapping LDIF records to persons and groups by objectClass (a small mapping in the
spirit of kanidm-ldap-sync, reference-sync-tools.md §4.3). Must not: talk to a directory
(the LDAP adapter does) or to Kanidm.
"""

from __future__ import annotations

import logging
import os
import pathlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

import attrs

from .._exceptions import SourceError
from .._proto._entries import Entry, Group, Mail, Person, PosixAccount, PosixGroup
from .._proto._ids import EXTERNAL_ID_NAMESPACE, uuid_for
from ._file_common import Problems, read_bytes, shown, ssh_keys, unique, utf8
from ._ldif import LdifRecord, parse_ldif

__all__ = ["LdifMapping", "LdifSource"]

_log = logging.getLogger("kanidm_sync.adapters.files")

_E = TypeVar("_E", Person, Group)


def _normalize_dn(dn: str) -> str:
    """Remove insignificant spaces around ``,``, ``+`` and ``=`` (escapes respected)."""
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for char in dn:
        if escaped:
            current.append(char)
            escaped = False
            continue
        if char == "\\":
            current.append(char)
            escaped = True
            continue
        if char in ",+=":
            parts.append(_strip_unescaped("".join(current)))
            parts.append(char)
            current = []
            continue
        current.append(char)
    parts.append(_strip_unescaped("".join(current)))
    return "".join(parts)


def _strip_unescaped(text: str) -> str:
    text = text.lstrip(" ")
    while text.endswith(" ") and not text.endswith("\\ "):
        text = text[:-1]
    return text


def _lower(value: str) -> str:
    return value.lower()


def _attr_tuple(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(v.lower() for v in values)


@attrs.frozen(kw_only=True)
class LdifMapping:
    """Which objectClasses and attributes :class:`LdifSource` reads (lower-case names).

    Attributes:
        person_classes: an entry with any of these objectClasses is a person (checked
            before groups).
        group_classes: an entry with any of these objectClasses is a group.
        person_name: the login name.
        person_displayname: display name attributes, first present wins.
        person_gidnumber: the person's gidnumber (``uidnumber``, as the reference tools).
        person_loginshell: the login shell.
        person_password: the password hash for ``password_import``; ``None`` skips it.
        person_ssh_publickey: SSH public keys.
        mail: mail addresses (persons and groups).
        group_name: the group name.
        group_description: the description.
        group_gidnumber: the group's gidnumber.
        group_members: attributes holding member DNs.
        group_member_uids: attributes holding member uids (RFC 2307), resolved through
            ``person_name`` to the DN of a person in the same file.
        id_attributes: attributes holding the entry UUID, first present wins
            (``nsuniqueid`` in 389-ds's grouping is accepted); none -> derived from the DN.
        id_namespace: the uuid5 namespace for derived UUIDs.
    """

    person_classes: tuple[str, ...] = attrs.field(
        default=("person", "inetorgperson", "posixaccount"), converter=_attr_tuple
    )
    group_classes: tuple[str, ...] = attrs.field(
        default=("groupofnames", "groupofuniquenames", "posixgroup"), converter=_attr_tuple
    )
    person_name: str = attrs.field(default="uid", converter=_lower)
    person_displayname: tuple[str, ...] = attrs.field(
        default=("displayname", "cn"), converter=_attr_tuple
    )
    person_gidnumber: str = attrs.field(default="uidnumber", converter=_lower)
    person_loginshell: str = attrs.field(default="loginshell", converter=_lower)
    person_password: str | None = "userpassword"
    person_ssh_publickey: str = attrs.field(default="sshpublickey", converter=_lower)
    mail: str = attrs.field(default="mail", converter=_lower)
    group_name: str = attrs.field(default="cn", converter=_lower)
    group_description: str = attrs.field(default="description", converter=_lower)
    group_gidnumber: str = attrs.field(default="gidnumber", converter=_lower)
    group_members: tuple[str, ...] = attrs.field(
        default=("member", "uniquemember"), converter=_attr_tuple
    )
    group_member_uids: tuple[str, ...] = attrs.field(default=("memberuid",), converter=_attr_tuple)
    id_attributes: tuple[str, ...] = attrs.field(
        default=("entryuuid", "nsuniqueid"), converter=_attr_tuple
    )
    id_namespace: uuid.UUID = EXTERNAL_ID_NAMESPACE


class _LdifEntry:
    """Reads one record's values, with errors naming the file, line, dn and attribute."""

    def __init__(self, record: LdifRecord, where: str) -> None:
        self.record = record
        self.where = f"{where}:{record.line}: {shown(record.dn)}"

    def error(self, attribute: str, message: str) -> SourceError:
        return SourceError(f"{self.where}: attribute {attribute!r}: {message}")

    def built(self, cls: type[_E], **fields: Any) -> _E:
        """``cls(**fields)``; a value the class refuses becomes a SourceError naming the dn."""
        try:
            return cls(**fields)
        except (TypeError, ValueError) as exc:
            # The entry classes' checks name the class and the field, never the value.
            raise SourceError(f"{self.where}: {exc}") from None

    def texts(self, attribute: str) -> list[str]:
        out: list[str] = []
        for raw in self.record.attributes.get(attribute, ()):
            text = utf8(raw)
            if text is None:
                raise self.error(attribute, "a value is not UTF-8 text")
            out.append(text)
        return out

    def single(self, attribute: str, *, required: bool = False) -> str | None:
        values = self.texts(attribute)
        if not values:
            if required:
                raise self.error(attribute, "missing")
            return None
        if len(values) > 1:
            raise self.error(attribute, f"{len(values)} values where one is needed")
        return values[0]

    def first(self, attributes: Sequence[str]) -> str | None:
        for attribute in attributes:
            values = self.texts(attribute)
            if values:
                return values[0]
        return None

    def integer(self, attribute: str) -> int | None:
        value = self.single(attribute)
        if value is None:
            return None
        try:
            return int(value.strip(), 10)
        except ValueError:
            raise self.error(attribute, f"{shown(value)} is not an integer") from None

    def classes(self) -> set[str]:
        return {c.strip().lower() for c in self.texts("objectclass")}

    def entry_id(self, mapping: LdifMapping, external_id: str) -> uuid.UUID:
        for attribute in mapping.id_attributes:
            value = self.single(attribute)
            if value is None:
                continue
            compact = value.strip().replace("-", "")
            try:
                return uuid.UUID(compact)
            except ValueError:
                raise self.error(attribute, f"{shown(value)} is not a UUID") from None
        return uuid_for(external_id, namespace=mapping.id_namespace)


class LdifSource:
    """An LDIF export (RFC 2849) read as persons and groups.

    Args:
        path: the file.
        mapping: which objectClasses and attributes to read.
    """

    def __init__(self, path: str | os.PathLike[str], mapping: LdifMapping | None = None) -> None:
        self._path = pathlib.Path(path)
        self._mapping = mapping if mapping is not None else LdifMapping()

    def __repr__(self) -> str:
        return f"LdifSource({str(self._path)!r})"

    @property
    def path(self) -> pathlib.Path:
        """The file."""
        return self._path

    def snapshot(self) -> list[Entry]:
        """Read the whole file.

        Returns:
            One entry per person or group record; other records are skipped.

        Raises:
            SourceError: the file cannot be read or parsed, or records lack a value the
                mapping needs: one error lists every bad record, each with the file, the
                line, the dn and the attribute.
        """
        where = str(self._path)
        records = parse_ldif(read_bytes(self._path), where=where)
        mapping = self._mapping
        problems = Problems(self._path, "records")
        persons: list[tuple[_LdifEntry, str]] = []
        groups: list[tuple[_LdifEntry, str]] = []
        for record in records:
            reader = _LdifEntry(record, where)
            try:
                classes = reader.classes()
            except SourceError as exc:
                problems.add(exc)
                continue
            if classes.intersection(mapping.person_classes):
                persons.append((reader, _normalize_dn(record.dn)))
            elif classes.intersection(mapping.group_classes):
                groups.append((reader, _normalize_dn(record.dn)))
            else:
                _log.debug("%s: skipped (neither a person nor a group)", reader.where)
        entries: list[Entry] = []
        uids: dict[str, str] = {}
        for reader, dn in persons:
            try:
                person = self._person(reader, dn)
            except SourceError as exc:
                problems.add(exc)
                continue
            uids.setdefault(person.name.lower(), dn)
            entries.append(person)
        for reader, dn in groups:
            try:
                entries.append(self._group(reader, dn, uids))
            except SourceError as exc:
                problems.add(exc)
        problems.raise_if_any()
        return entries

    def _person(self, reader: _LdifEntry, dn: str) -> Person:
        mapping = self._mapping
        name = reader.single(mapping.person_name, required=True)
        assert name is not None
        displayname = reader.first(mapping.person_displayname)
        if displayname is None:
            raise reader.error(mapping.person_displayname[0], "missing (needed for displayname)")
        gidnumber = reader.integer(mapping.person_gidnumber)
        loginshell = reader.single(mapping.person_loginshell)
        password = None
        if mapping.person_password is not None:
            values = reader.record.attributes.get(mapping.person_password.lower(), ())
            if len(values) > 1:
                raise reader.error(
                    mapping.person_password, f"{len(values)} values where one is needed"
                )
            if values:
                password = utf8(values[0])
                if password is None:
                    raise reader.error(mapping.person_password, "the value is not text")
        posix = None
        if gidnumber is not None or loginshell is not None:
            posix = PosixAccount(gidnumber=gidnumber, loginshell=loginshell)
        return reader.built(
            Person,
            id=reader.entry_id(mapping, dn),
            external_id=dn,
            name=name,
            displayname=displayname,
            mail=[Mail(value=m) for m in unique(reader.texts(mapping.mail))],
            ssh_publickey=ssh_keys(reader.texts(mapping.person_ssh_publickey)),
            password_import=password,
            posix=posix,
        )

    def _group(self, reader: _LdifEntry, dn: str, uids: Mapping[str, str]) -> Group:
        mapping = self._mapping
        name = reader.single(mapping.group_name, required=True)
        assert name is not None
        members: list[str] = []
        for attribute in mapping.group_members:
            for value in reader.texts(attribute):
                # groupOfUniqueNames may append an optional "#'0101'B" uid to the DN.
                if value.endswith("'B") and "#'" in value:
                    value = value[: value.rindex("#'")]
                members.append(_normalize_dn(value))
        for attribute in mapping.group_member_uids:
            for uid in reader.texts(attribute):
                member_dn = uids.get(uid.strip().lower())
                if member_dn is None:
                    _log.warning(
                        "%s: %s %r names no person in the file; dropped",
                        reader.where,
                        attribute,
                        uid,
                    )
                    continue
                members.append(member_dn)
        gidnumber = reader.integer(mapping.group_gidnumber)
        return reader.built(
            Group,
            id=reader.entry_id(mapping, dn),
            external_id=dn,
            name=name,
            description=reader.first((mapping.group_description,)),
            mail=[Mail(value=m) for m in unique(reader.texts(mapping.mail))],
            member=unique(members),
            posix=None if gidnumber is None else PosixGroup(gidnumber=gidnumber),
        )
