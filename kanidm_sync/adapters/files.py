"""File sources: CSV, JSON / JSONL and LDIF exports as snapshot sources.

Owns reading the three file formats (standard library only) and mapping their records to
:class:`~kanidm_sync.Person` and :class:`~kanidm_sync.Group` entries. Must not talk to
Kanidm or keep state: each source is a :class:`~kanidm_sync.adapters.SnapshotSource`,
so wrap it in :class:`~kanidm_sync.adapters.SnapshotAdapter` to send only what changed::

    adapter = SnapshotAdapter(CsvSource("people.csv"), "people.snapshot.json")

Every error is a :class:`~kanidm_sync.SourceError` naming the file, the line (or JSON
record) and the field; a wrong mapping is a :class:`~kanidm_sync.ConfigError`. Errors
never quote the value of a secret field (``password_import``, ``unix_password_import``).

**CSV and JSON.** A :class:`FieldMapping` says which column (or JSON key) fills which
entry field; a field not listed reads the column of its own name. Fields:

* both kinds: ``id``, ``external_id``, ``name``, ``mail``, ``gidnumber``;
* persons: ``displayname`` (required), ``legalname``, ``ssh_publickey``, ``loginshell``,
  ``account_valid_from``, ``account_expire``, ``account_softlock_expire``,
  ``password_import``, ``unix_password_import``;
* groups: ``description``, ``member``.

The ``kind`` column says ``person`` or ``group`` (or set ``default_kind`` for a file of
one kind). ``mail``, ``ssh_publickey`` and ``member`` are multi-valued: a JSON list, or a
string split on ``separator`` (default ``|``, which appears in no DN, address or key).
A person with a ``gidnumber`` or ``loginshell`` gets the POSIX facet; so does a group
with a ``gidnumber``. Members are external ids (or UUIDs) of other entries.
Text values are stripped of surrounding spaces. An SSH key
is labelled ``sshpublickey-`` plus 8 hex digits of its SHA-256, so labels do not shift
when another key is added or removed. Empty cells are absent values.

**Entry UUIDs.** From the ``id`` field when the record has one; otherwise derived with
``uuid5(EXTERNAL_ID_NAMESPACE, external_id.lower())`` (see :func:`uuid_for`): stable
across runs, and the same for an external id that only changes case, since Kanidm
compares external ids case-insensitively. Changing an entry's external id therefore
changes its UUID (Kanidm sees a delete and a create) unless the record carries an
``id``.

**LDIF** (RFC 2849, :func:`parse_ldif`): ``version: 1``, comments, folded lines, base64
(``::``) values, attribute options (kept in the name: ``cn;lang-fr``), CRLF or LF. URL
values (``:<``) are refused, since reading arbitrary files or URLs named by data is not
a source's job. ``changetype: add`` records are read as content; other change records
(``modify``, ``delete``, ``modrdn``, ``moddn``) are refused: a snapshot needs the full
content of every entry (export with ``ldapsearch -LLL`` or ``slapcat``).

:class:`LdifSource` maps records by objectClass, a small mapping in the spirit of
kanidm-ldap-sync (reference-sync-tools.md §4.3), kept here because the LDAP adapter's
mapping is configured for a live directory: persons (``person``, ``inetOrgPerson``,
``posixAccount``; checked first) take ``uid`` as name, ``displayName`` or the first
``cn`` as display name, ``mail``, ``sshPublicKey``, ``uidNumber`` as gidnumber (as the
reference tools do), ``loginShell`` and ``userPassword`` (as ``password_import``).
Groups (``groupOfNames``, ``groupOfUniqueNames``, ``posixGroup``) take ``cn``,
``description``, ``gidNumber``, and members from ``member`` and ``uniqueMember`` (DNs)
and ``memberUid`` (resolved to the DN of the person with that ``uid`` in the same file;
unresolved ones are dropped with a warning). Other records are skipped. The DN is the
external id, with the spaces around ``,`` and ``=`` removed so that a member DN written
with spaces still names the same entry; the UUID is ``entryUUID``, else 389-ds's
``nsUniqueId`` regrouped, else derived from the DN as above.
"""

from __future__ import annotations

import base64
import binascii
import csv
import hashlib
import io
import json
import logging
import os
import pathlib
import types
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Final, Literal, TypeAlias

import attrs

from .._exceptions import ConfigError, SourceError
from .._proto._entries import (
    Entry,
    Group,
    Mail,
    Person,
    PosixAccount,
    PosixGroup,
    SshPublicKey,
)

__all__ = [
    "EXTERNAL_ID_NAMESPACE",
    "CsvSource",
    "FieldMapping",
    "JsonSource",
    "LdifMapping",
    "LdifRecord",
    "LdifSource",
    "parse_ldif",
    "uuid_for",
]

_log = logging.getLogger("kanidm_sync.adapters.files")

EXTERNAL_ID_NAMESPACE: Final = uuid.UUID("33948611-92ec-58e0-8b9f-1a0a6d12c652")
"""The uuid5 namespace for entry UUIDs derived from external ids.

It is ``uuid5(NAMESPACE_URL, "https://github.com/kanidm-sync/kanidm-sync#external-id")``
and never changes: changing it would give every derived entry a new UUID.
"""

Kind: TypeAlias = Literal["person", "group"]
"""The kinds of entry the file sources build."""

_COMMON_FIELDS: Final = ("id", "external_id", "name", "mail", "gidnumber")
_PERSON_FIELDS: Final = (
    *_COMMON_FIELDS,
    "displayname",
    "legalname",
    "ssh_publickey",
    "loginshell",
    "account_valid_from",
    "account_expire",
    "account_softlock_expire",
    "password_import",
    "unix_password_import",
)
_GROUP_FIELDS: Final = (*_COMMON_FIELDS, "description", "member")
_ALL_FIELDS: Final = frozenset(_PERSON_FIELDS) | frozenset(_GROUP_FIELDS)
_MULTI_FIELDS: Final = frozenset({"mail", "ssh_publickey", "member"})
_SECRET_FIELDS: Final = frozenset({"password_import", "unix_password_import"})
_SHOWN_MAX: Final = 80
"""Longest value quoted in an error message; a hostile file may hold megabyte cells."""


def _shown(value: object) -> str:
    """``repr(value)``, cut to a readable length for an error message."""
    text = repr(value)
    if len(text) <= _SHOWN_MAX:
        return text
    return f"{text[:_SHOWN_MAX]}... ({len(str(value))} characters)"


def uuid_for(external_id: str, *, namespace: uuid.UUID = EXTERNAL_ID_NAMESPACE) -> uuid.UUID:
    """The entry UUID derived from an external id, as the file sources derive it.

    Args:
        external_id: the external id (compared case-insensitively, as Kanidm does).
        namespace: the uuid5 namespace.

    Returns:
        ``uuid5(namespace, external_id.lower())``.
    """
    return uuid.uuid5(namespace, external_id.lower())


def _ssh_label(key: str) -> str:
    return "sshpublickey-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:8]


def _ssh_keys(values: Sequence[str]) -> list[SshPublicKey]:
    seen: dict[str, SshPublicKey] = {}
    for value in values:
        key = value.strip()
        if key and key not in seen:
            seen[key] = SshPublicKey(label=_ssh_label(key), value=key)
    return list(seen.values())


def _unique(values: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for value in values:
        if value.lower() not in seen:
            seen.add(value.lower())
            out.append(value)
    return out


def _read_bytes(path: pathlib.Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SourceError(f"{path}: cannot read the file ({type(exc).__name__})") from exc


def _read_text(path: pathlib.Path) -> str:
    # UTF-8, a byte order mark skipped; an invalid byte is reported with its line.
    data = _read_bytes(path)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        start = exc.start
    # Raised outside the handler: the decode error's .object is the whole file (password
    # hashes included) and would stay reachable as __context__ even with "from None".
    line = data[:start].count(b"\n") + 1
    raise SourceError(f"{path}:{line}: not valid UTF-8")


# --- CSV and JSON ------------------------------------------------------------------------------


def _field_map(value: Mapping[str, str]) -> Mapping[str, str]:
    return types.MappingProxyType(dict(value))


def _lower_set(values: Iterable[str]) -> frozenset[str]:
    if isinstance(values, str):
        raise TypeError("expected an iterable of strings, not a single string")
    return frozenset(v.lower() for v in values)


@attrs.frozen(kw_only=True)
class FieldMapping:
    """How the columns of a CSV file (or keys of JSON records) become entry fields.

    Attributes:
        fields: entry field -> column (or JSON key). A field not listed reads the column
            of its own name when the file has one. A listed column must exist in a CSV
            header.
        kind_field: the column that says ``person`` or ``group``.
        default_kind: the kind of a record whose ``kind_field`` is absent or empty;
            ``None`` makes that an error.
        person_values: the (lower-case) values of ``kind_field`` meaning a person.
        group_values: the (lower-case) values of ``kind_field`` meaning a group.
        separator: splits a multi-valued field given as one string.
        id_namespace: the uuid5 namespace for UUIDs derived from external ids.

    Raises:
        ConfigError: an unknown entry field, an empty separator, a value meaning both kinds.
    """

    fields: Mapping[str, str] = attrs.field(factory=dict, converter=_field_map, hash=False)
    kind_field: str = "kind"
    default_kind: Kind | None = None
    person_values: frozenset[str] = attrs.field(
        default=frozenset({"person", "user"}), converter=_lower_set
    )
    group_values: frozenset[str] = attrs.field(default=frozenset({"group"}), converter=_lower_set)
    separator: str = "|"
    id_namespace: uuid.UUID = EXTERNAL_ID_NAMESPACE

    def __attrs_post_init__(self) -> None:
        for field, column in self.fields.items():
            if field not in _ALL_FIELDS:
                raise ConfigError(
                    f"FieldMapping.fields: unknown entry field {field!r} "
                    f"(known: {', '.join(sorted(_ALL_FIELDS))})"
                )
            if not column:
                raise ConfigError(f"FieldMapping.fields[{field!r}]: the column must be a name")
        if not self.separator:
            raise ConfigError("FieldMapping.separator must not be empty")
        if self.default_kind not in (None, "person", "group"):
            raise ConfigError("FieldMapping.default_kind must be 'person', 'group' or None")
        both = self.person_values & self.group_values
        if both:
            raise ConfigError(f"FieldMapping: {sorted(both)} mean both a person and a group")

    def column(self, field: str) -> str:
        """The column (or JSON key) that fills ``field``.

        Args:
            field: an entry field name.

        Returns:
            The mapped column, or the field's own name.
        """
        return self.fields.get(field, field)


class _RecordReader:
    """Builds one entry from one record, with errors naming where and which field."""

    def __init__(self, mapping: FieldMapping, record: Mapping[str, object], where: str) -> None:
        self.mapping = mapping
        self.record = record
        self.where = where

    def error(self, field: str, message: str) -> SourceError:
        column = self.mapping.column(field)
        named = f"field {field!r}" + (f" (column {column!r})" if column != field else "")
        return SourceError(f"{self.where}: {named}: {message}")

    def raw(self, field: str) -> object:
        value = self.record.get(self.mapping.column(field))
        if value is None or value == "" or value == []:
            return None
        return value

    def text(self, field: str, *, required: bool = False) -> str | None:
        value = self.raw(field)
        if value is None:
            if required:
                raise self.error(field, "missing")
            return None
        if not isinstance(value, str):
            raise self.error(field, f"expected a string, not {_json_kind(value)}")
        # Exports often pad cells ("a, b"); no Kanidm value keeps edge spaces usefully.
        value = value.strip()
        if not value:
            if required:
                raise self.error(field, "missing")
            return None
        return value

    def texts(self, field: str) -> list[str]:
        value = self.raw(field)
        if value is None:
            return []
        if isinstance(value, str):
            parts = value.split(self.mapping.separator)
        elif isinstance(value, list):
            parts = []
            for index, item in enumerate(value):
                if not isinstance(item, str):
                    raise self.error(field, f"item {index} is {_json_kind(item)}, not a string")
                parts.append(item)
        else:
            raise self.error(field, f"expected a string or a list, not {_json_kind(value)}")
        return [p.strip() for p in parts if p.strip()]

    def integer(self, field: str) -> int | None:
        value = self.raw(field)
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value.strip(), 10)
            except ValueError:
                pass
        shown = "value" if field in _SECRET_FIELDS else _shown(value)
        raise self.error(field, f"{shown} is not an integer")

    def kind(self) -> Kind:
        name = self.mapping.kind_field
        value = self.record.get(name)
        if value is None or value == "":
            if self.mapping.default_kind is None:
                raise SourceError(
                    f"{self.where}: field {name!r}: missing, and no default kind is set"
                )
            return self.mapping.default_kind
        if not isinstance(value, str):
            raise SourceError(f"{self.where}: field {name!r}: expected a string")
        lowered = value.strip().lower()
        if lowered in self.mapping.person_values:
            return "person"
        if lowered in self.mapping.group_values:
            return "group"
        known = sorted(self.mapping.person_values | self.mapping.group_values)
        raise SourceError(
            f"{self.where}: field {name!r}: {_shown(value)} is not a kind "
            f"(known: {', '.join(known)})"
        )

    def entry(self) -> Entry:
        kind = self.kind()
        external_id = self.text("external_id", required=True)
        assert external_id is not None  # required=True
        id_text = self.text("id")
        if id_text is None:
            entry_id = uuid_for(external_id, namespace=self.mapping.id_namespace)
        else:
            try:
                entry_id = uuid.UUID(id_text.strip())
            except ValueError:
                raise self.error("id", f"{_shown(id_text)} is not a UUID") from None
        name = self.text("name", required=True)
        assert name is not None
        mail = [Mail(value=m) for m in _unique(self.texts("mail"))]
        gidnumber = self.integer("gidnumber")
        try:
            if kind == "group":
                return Group(
                    id=entry_id,
                    external_id=external_id,
                    name=name,
                    description=self.text("description"),
                    mail=mail,
                    member=_unique(self.texts("member")),
                    posix=None if gidnumber is None else PosixGroup(gidnumber=gidnumber),
                )
            loginshell = self.text("loginshell")
            posix = None
            unix_password = self.text("unix_password_import")
            if gidnumber is not None or loginshell is not None or unix_password is not None:
                posix = PosixAccount(
                    gidnumber=gidnumber, loginshell=loginshell, unix_password_import=unix_password
                )
            return Person(
                id=entry_id,
                external_id=external_id,
                name=name,
                displayname=self.text("displayname", required=True) or "",
                legalname=self.text("legalname"),
                mail=mail,
                ssh_publickey=_ssh_keys(self.texts("ssh_publickey")),
                account_valid_from=self.text("account_valid_from"),
                account_expire=self.text("account_expire"),
                account_softlock_expire=self.text("account_softlock_expire"),
                password_import=self.text("password_import"),
                posix=posix,
            )
        except (TypeError, ValueError) as exc:
            # attrs validators; their messages name the field, never the value.
            raise SourceError(f"{self.where}: {exc}") from None


def _json_kind(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


class CsvSource:
    """A CSV file with a header row, one entry per row.

    Args:
        path: the file (UTF-8; a byte order mark is skipped).
        mapping: how columns become entry fields.
        delimiter: the column separator.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        mapping: FieldMapping | None = None,
        *,
        delimiter: str = ",",
    ) -> None:
        self._path = pathlib.Path(path)
        self._mapping = mapping if mapping is not None else FieldMapping()
        # The csv module would raise a bare TypeError at the first read; say it here.
        if len(delimiter) != 1 or delimiter in '"\r\n':
            raise ConfigError(
                f"CsvSource({str(self._path)!r}): delimiter must be one character other than "
                f"a quote or a line break, not {delimiter!r}"
            )
        self._delimiter = delimiter

    def __repr__(self) -> str:
        return f"CsvSource({str(self._path)!r})"

    @property
    def path(self) -> pathlib.Path:
        """The file."""
        return self._path

    def snapshot(self) -> list[Entry]:
        """Read the whole file.

        Returns:
            One entry per data row.

        Raises:
            SourceError: the file cannot be read, a row is malformed, or a field is
                missing or invalid; the message names the file, the line and the field.
        """
        text = _read_text(self._path)
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=self._delimiter, strict=True)
        mapping = self._mapping
        entries: list[Entry] = []
        try:
            header = next(reader, None)
            if header is None:
                return []
            columns = [c.strip() for c in header]
            seen: set[str] = set()
            for column in columns:
                if column in seen:
                    raise SourceError(f"{self._path}:1: column {_shown(column)} appears twice")
                seen.add(column)
            for field, column in mapping.fields.items():
                if column not in seen:
                    raise SourceError(
                        f"{self._path}:1: column {column!r} (mapped to field {field!r}) "
                        "is not in the header"
                    )
            if mapping.default_kind is None and mapping.kind_field not in seen:
                raise SourceError(
                    f"{self._path}:1: no column {mapping.kind_field!r} to tell persons "
                    "from groups, and no default kind is set"
                )
            for row in reader:
                line = reader.line_num
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(columns):
                    raise SourceError(
                        f"{self._path}:{line}: {len(row)} values for {len(columns)} columns"
                    )
                record = dict(zip(columns, row, strict=True))
                entries.append(_RecordReader(mapping, record, f"{self._path}:{line}").entry())
        except csv.Error as exc:
            raise SourceError(f"{self._path}:{reader.line_num}: {exc}") from None
        return entries


class JsonSource:
    """A JSON array of objects, or JSON Lines (one object per line), one entry each.

    Args:
        path: the file (UTF-8).
        mapping: how keys become entry fields.
        lines: ``True`` for JSON Lines, ``False`` for one array; ``None`` decides from
            the suffix (``.jsonl`` / ``.ndjson`` mean lines).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        mapping: FieldMapping | None = None,
        *,
        lines: bool | None = None,
    ) -> None:
        self._path = pathlib.Path(path)
        self._mapping = mapping if mapping is not None else FieldMapping()
        self._lines = (
            lines if lines is not None else self._path.suffix.lower() in (".jsonl", ".ndjson")
        )

    def __repr__(self) -> str:
        return f"JsonSource({str(self._path)!r}, lines={self._lines})"

    @property
    def path(self) -> pathlib.Path:
        """The file."""
        return self._path

    def snapshot(self) -> list[Entry]:
        """Read the whole file.

        Returns:
            One entry per object.

        Raises:
            SourceError: the file cannot be read or parsed, or a field is missing or
                invalid; the message names the file, the line or record, and the field.
        """
        text = _read_text(self._path)
        return [
            _RecordReader(self._mapping, record, where).entry()
            for where, record in self._records(text)
        ]

    def _records(self, text: str) -> Iterator[tuple[str, Mapping[str, object]]]:
        if self._lines:
            for number, line in enumerate(text.splitlines(), start=1):
                if not line.strip():
                    continue
                where = f"{self._path}:{number}"
                value, problem, _ = _json_loads(line)
                if problem is not None:
                    raise SourceError(f"{where}: not JSON ({problem})")
                if not isinstance(value, dict):
                    raise SourceError(f"{where}: expected an object, not {_json_kind(value)}")
                yield where, value
            return
        document, problem, line_number = _json_loads(text)
        if problem is not None:
            at = "" if line_number is None else f":{line_number}"
            raise SourceError(f"{self._path}{at}: not JSON ({problem})")
        if not isinstance(document, list):
            raise SourceError(f"{self._path}: expected a JSON array of objects")
        for index, value in enumerate(document):
            where = f"{self._path}: record [{index}]"
            if not isinstance(value, dict):
                raise SourceError(f"{where}: expected an object, not {_json_kind(value)}")
            yield where, value


def _json_loads(text: str) -> tuple[object, str | None, int | None]:
    """Parse JSON: ``(value, None, None)``, or ``(None, why, line or None)``.

    The decode error is not kept, not even as ``__context__``: its ``.doc`` is the whole
    text, secrets included; and its message is used only when it quotes nothing.
    """
    try:
        return json.loads(text), None, None
    except json.JSONDecodeError as exc:
        return None, exc.msg, exc.lineno
    except RecursionError:
        # json's C scanner recurses once per nesting level.
        return None, "nested too deeply", None
    except ValueError as exc:
        # The one other ValueError is int() refusing more than
        # sys.get_int_max_str_digits() digits (CVE-2020-10735).
        digits = "digits" in str(exc)
        return None, "a number has too many digits" if digits else "ValueError", None


# --- LDIF --------------------------------------------------------------------------------------


@attrs.frozen
class LdifRecord:
    """One content record of an LDIF file.

    Attributes:
        dn: the distinguished name, as written (base64 decoded).
        attributes: lower-case attribute description -> raw values (plain values as
            UTF-8 bytes, base64 values decoded), in file order.
        line: the line the record starts on.
    """

    dn: str
    attributes: Mapping[str, tuple[bytes, ...]]
    line: int


_CHANGE_TYPES_REFUSED: Final = frozenset({"modify", "delete", "modrdn", "moddn"})


def _utf8(raw: bytes) -> str | None:
    """``raw`` decoded, or ``None``: callers raise their own error outside any handler.

    A UnicodeDecodeError's ``.object`` holds the bytes (a password hash, say); raising
    inside the handler would keep it reachable as ``__context__`` even with ``from None``.
    """
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _logical_lines(data: bytes, where: str) -> Iterator[tuple[int, str]]:
    """Unfold lines; yield (first physical line number, text); '' separates records."""
    current: list[str] = []
    start = 0
    for number, raw in enumerate(data.split(b"\n"), start=1):
        line = _utf8(raw.removesuffix(b"\r"))
        if line is None:
            raise SourceError(f"{where}:{number}: not valid UTF-8")
        if line.startswith(" ") and current:
            # RFC 2849: a line starting with one space continues the previous line.
            current.append(line[1:])
            continue
        if current:
            yield start, "".join(current)
            current = []
        if line == "":
            yield number, ""
            continue
        current = [line]
        start = number
    if current:
        yield start, "".join(current)


def _split_attr_value(line: str, number: int, where: str) -> tuple[str, bytes]:
    colon = line.find(":")
    if colon <= 0:
        raise SourceError(f"{where}:{number}: expected 'attribute: value'")
    name = line[:colon].strip()
    rest = line[colon + 1 :]
    if rest.startswith(":"):
        encoded = "".join(rest[1:].split())
        try:
            return name, base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise SourceError(
                f"{where}:{number}: attribute {_shown(name)}: the value is not valid base64"
            ) from None
    if rest.startswith("<"):
        raise SourceError(
            f"{where}:{number}: attribute {_shown(name)}: URL values (':<') are not supported; "
            "put the value in the file"
        )
    return name, rest.lstrip(" ").encode("utf-8")


def parse_ldif(data: bytes, *, where: str = "<ldif>") -> list[LdifRecord]:
    """Parse LDIF content records (RFC 2849).

    Args:
        data: the file content.
        where: the file name for error messages.

    Returns:
        The records, in file order.

    Raises:
        SourceError: a syntax error, a URL value, or a change record other than
            ``changetype: add``; the message names the file and the line.
    """
    records: list[LdifRecord] = []
    block: list[tuple[int, str]] = []
    first = True

    def flush() -> None:
        if block:
            records.append(_parse_record(block, where))
            block.clear()

    for number, line in _logical_lines(data, where):
        if line == "":
            flush()
            continue
        if line.startswith("#"):
            continue
        if first:
            first = False
            lowered = line.lower()
            if lowered.startswith("version:"):
                if line.split(":", 1)[1].strip() != "1":
                    raise SourceError(f"{where}:{number}: only LDIF version 1 is supported")
                continue
        block.append((number, line))
    flush()
    return records


def _parse_record(block: list[tuple[int, str]], where: str) -> LdifRecord:
    number, line = block[0]
    name, value = _split_attr_value(line, number, where)
    if name.lower() != "dn":
        raise SourceError(f"{where}:{number}: a record must start with 'dn:', not {_shown(name)}")
    try:
        dn = value.decode("utf-8")
    except UnicodeDecodeError:
        raise SourceError(f"{where}:{number}: the dn is not valid UTF-8") from None
    attributes: dict[str, list[bytes]] = {}
    for index, (line_number, text) in enumerate(block[1:]):
        attr, raw = _split_attr_value(text, line_number, where)
        lowered = attr.lower()
        if lowered == "control":
            raise SourceError(
                f"{where}:{line_number}: {_shown(dn)}: 'control:' belongs to change records, "
                "which are not a snapshot"
            )
        if lowered == "changetype":
            kind = raw.decode("utf-8", "replace").strip().lower()
            if index == 0 and kind == "add":
                continue
            if kind in _CHANGE_TYPES_REFUSED or index != 0:
                raise SourceError(
                    f"{where}:{line_number}: {_shown(dn)}: change records (changetype: {kind}) "
                    "are not a snapshot; export the full entries (ldapsearch -LLL, slapcat)"
                )
            raise SourceError(
                f"{where}:{line_number}: {_shown(dn)}: unknown changetype {_shown(kind)}"
            )
        attributes.setdefault(lowered, []).append(raw)
    return LdifRecord(dn=dn, attributes={k: tuple(v) for k, v in attributes.items()}, line=number)


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
        self.where = f"{where}:{record.line}: {_shown(record.dn)}"

    def error(self, attribute: str, message: str) -> SourceError:
        return SourceError(f"{self.where}: attribute {attribute!r}: {message}")

    def texts(self, attribute: str) -> list[str]:
        out: list[str] = []
        for raw in self.record.attributes.get(attribute, ()):
            text = _utf8(raw)
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
            raise self.error(attribute, f"{_shown(value)} is not an integer") from None

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
                raise self.error(attribute, f"{_shown(value)} is not a UUID") from None
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
            SourceError: the file cannot be read or parsed, or a record lacks a value
                the mapping needs; the message names the file, the line, the dn and the
                attribute.
        """
        where = str(self._path)
        records = parse_ldif(_read_bytes(self._path), where=where)
        mapping = self._mapping
        persons: list[tuple[_LdifEntry, str]] = []
        groups: list[tuple[_LdifEntry, str]] = []
        for record in records:
            reader = _LdifEntry(record, where)
            classes = reader.classes()
            if classes.intersection(mapping.person_classes):
                persons.append((reader, _normalize_dn(record.dn)))
            elif classes.intersection(mapping.group_classes):
                groups.append((reader, _normalize_dn(record.dn)))
            else:
                _log.debug("%s: skipped (neither a person nor a group)", reader.where)
        entries: list[Entry] = []
        uids: dict[str, str] = {}
        for reader, dn in persons:
            person = self._person(reader, dn)
            uids.setdefault(person.name.lower(), dn)
            entries.append(person)
        for reader, dn in groups:
            entries.append(self._group(reader, dn, uids))
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
                password = _utf8(values[0])
                if password is None:
                    raise reader.error(mapping.person_password, "the value is not text")
        posix = None
        if gidnumber is not None or loginshell is not None:
            posix = PosixAccount(gidnumber=gidnumber, loginshell=loginshell)
        return Person(
            id=reader.entry_id(mapping, dn),
            external_id=dn,
            name=name,
            displayname=displayname,
            mail=[Mail(value=m) for m in _unique(reader.texts(mapping.mail))],
            ssh_publickey=_ssh_keys(reader.texts(mapping.person_ssh_publickey)),
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
        return Group(
            id=reader.entry_id(mapping, dn),
            external_id=dn,
            name=name,
            description=reader.first((mapping.group_description,)),
            mail=[Mail(value=m) for m in _unique(reader.texts(mapping.mail))],
            member=_unique(members),
            posix=None if gidnumber is None else PosixGroup(gidnumber=gidnumber),
        )
