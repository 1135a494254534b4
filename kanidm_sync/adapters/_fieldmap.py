"""CSV and JSON records to entries: :class:`FieldMapping` and the record reader.

Owns: which column (or JSON key) fills which entry field, and building one
:class:`~kanidm_sync.Person` or :class:`~kanidm_sync.Group` from one record, with errors
naming the file, the line (or JSON record), the entry's external id and the field. Must
not: read a file (``_csv.py`` and ``_jsonsource.py`` do).
"""

from __future__ import annotations

import types
import uuid
from collections.abc import Iterable, Mapping
from typing import Final, Literal, TypeAlias

import attrs

from .._exceptions import ConfigError, SourceError
from .._proto._entries import Entry, Group, Mail, Person, PosixAccount, PosixGroup
from .._proto._ids import EXTERNAL_ID_NAMESPACE, uuid_for
from ._file_common import json_kind, lone_surrogate, shown, ssh_keys, unique

__all__ = ["FieldMapping", "Kind", "RecordReader"]

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
_SECRET_FIELDS: Final = frozenset({"password_import", "unix_password_import"})


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


class RecordReader:
    """Builds one entry from one record, with errors naming where, which entry and field.

    Args:
        mapping: the field mapping.
        record: column (or JSON key) -> cell (a str in CSV; any JSON value in JSON).
        where: the file and line (``people.csv:3``) or record (``p.json: record [2]``).
    """

    def __init__(self, mapping: FieldMapping, record: Mapping[str, object], where: str) -> None:
        self.mapping = mapping
        self.record = record
        self.where = where

    def error(self, field: str, message: str) -> SourceError:
        """An error about ``field`` of this record, naming the entry once it is known."""
        column = self.mapping.column(field)
        named = f"field {field!r}" + (f" (column {column!r})" if column != field else "")
        return SourceError(f"{self.where}: {named}: {message}")

    def raw(self, field: str) -> object:
        """The cell of ``field``; ``None`` when absent or empty."""
        value = self.record.get(self.mapping.column(field))
        if value is None or value == "" or value == []:
            return None
        return value

    def _checked(self, field: str, value: str, item: int | None = None) -> str:
        # A JSON "\ud800" escape gives a lone surrogate: no UTF-8 form, so no Kanidm value.
        index = lone_surrogate(value)
        if index is not None:
            at = "" if item is None else f"item {item}: "
            raise self.error(
                field,
                f"{at}a lone surrogate (a \\u escape of half a character) at index {index}: "
                "not Unicode text",
            )
        return value

    def text(self, field: str, *, required: bool = False) -> str | None:
        """A single text value, stripped; ``None`` when absent.

        Raises:
            SourceError: absent but required, not a string, or not Unicode text.
        """
        value = self.raw(field)
        if value is None:
            if required:
                raise self.error(field, "missing")
            return None
        if not isinstance(value, str):
            raise self.error(field, f"expected a string, not {json_kind(value)}")
        # Exports often pad cells ("a, b"); no Kanidm value keeps edge spaces usefully.
        value = self._checked(field, value.strip())
        if not value:
            if required:
                raise self.error(field, "missing")
            return None
        return value

    def texts(self, field: str) -> list[str]:
        """A multi-valued field: a list, or a string split on the separator; stripped."""
        value = self.raw(field)
        if value is None:
            return []
        if isinstance(value, str):
            parts = self._checked(field, value).split(self.mapping.separator)
        elif isinstance(value, list):
            parts = []
            for index, item in enumerate(value):
                if not isinstance(item, str):
                    raise self.error(field, f"item {index} is {json_kind(item)}, not a string")
                parts.append(self._checked(field, item, index))
        else:
            raise self.error(field, f"expected a string or a list, not {json_kind(value)}")
        return [p.strip() for p in parts if p.strip()]

    def integer(self, field: str) -> int | None:
        """An integer field (a JSON number, or decimal text); ``None`` when absent."""
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
        quoted = "value" if field in _SECRET_FIELDS else shown(value)
        raise self.error(field, f"{quoted} is not an integer")

    def kind(self) -> Kind:
        """Person or group, from the kind column or the mapping's default."""
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
            f"{self.where}: field {name!r}: {shown(value)} is not a kind "
            f"(known: {', '.join(known)})"
        )

    def entry(self) -> Entry:
        """The record's entry.

        Raises:
            SourceError: a field is missing or invalid; the message names the file, the
                line or record, the entry's external id (once read) and the field.
        """
        try:
            external_id = self.text("external_id", required=True)
            missing = None
        except SourceError as exc:
            external_id, missing = None, exc
        if external_id is not None:
            # From here on every error names the entry as well as the line.
            self.where = f"{self.where}: entry {shown(external_id)}"
        kind = self.kind()  # a wrong kind is reported first, as it says what the record is
        if external_id is None:
            assert missing is not None
            raise missing
        id_text = self.text("id")
        if id_text is None:
            entry_id = uuid_for(external_id, namespace=self.mapping.id_namespace)
        else:
            try:
                entry_id = uuid.UUID(id_text)
            except ValueError:
                raise self.error("id", f"{shown(id_text)} is not a UUID") from None
        name = self.text("name", required=True)
        assert name is not None
        mail = [Mail(value=m) for m in unique(self.texts("mail"))]
        gidnumber = self.integer("gidnumber")
        try:
            if kind == "group":
                return Group(
                    id=entry_id,
                    external_id=external_id,
                    name=name,
                    description=self.text("description"),
                    mail=mail,
                    member=unique(self.texts("member")),
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
                ssh_publickey=ssh_keys(self.texts("ssh_publickey")),
                account_valid_from=self.text("account_valid_from"),
                account_expire=self.text("account_expire"),
                account_softlock_expire=self.text("account_softlock_expire"),
                password_import=self.text("password_import"),
                posix=posix,
            )
        except (TypeError, ValueError) as exc:
            # The entry classes' checks name the class and the field, never the value.
            raise SourceError(f"{self.where}: {exc}") from None
