"""LDIF parsing (RFC 2849): :func:`parse_ldif` and :class:`LdifRecord`.

Owns: turning LDIF content records into :class:`LdifRecord` values, with errors naming the
file and the line. Must not: map records to entries (``_ldif_source.py`` does).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Mapping
from typing import Final

import attrs

from .._exceptions import SourceError
from ._file_common import shown, utf8, without_bom

__all__ = ["LdifRecord", "parse_ldif"]


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


def _logical_lines(data: bytes, where: str) -> Iterator[tuple[int, str]]:
    """Unfold lines; yield (first physical line number, text); '' separates records."""
    current: list[str] = []
    start = 0
    for number, raw in enumerate(data.split(b"\n"), start=1):
        line = utf8(raw.removesuffix(b"\r"))
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
                f"{where}:{number}: attribute {shown(name)}: the value is not valid base64"
            ) from None
    if rest.startswith("<"):
        raise SourceError(
            f"{where}:{number}: attribute {shown(name)}: URL values (':<') are not supported; "
            "put the value in the file"
        )
    return name, rest.lstrip(" ").encode("utf-8")


def parse_ldif(data: bytes, *, where: str = "<ldif>") -> list[LdifRecord]:
    """Parse LDIF content records (RFC 2849).

    A UTF-8 byte order mark at the start (as Windows tools write) is skipped.

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

    for number, line in _logical_lines(without_bom(data), where):
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
        raise SourceError(f"{where}:{number}: a record must start with 'dn:', not {shown(name)}")
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
                f"{where}:{line_number}: {shown(dn)}: 'control:' belongs to change records, "
                "which are not a snapshot"
            )
        if lowered == "changetype":
            kind = raw.decode("utf-8", "replace").strip().lower()
            if index == 0 and kind == "add":
                continue
            if kind in _CHANGE_TYPES_REFUSED or index != 0:
                raise SourceError(
                    f"{where}:{line_number}: {shown(dn)}: change records (changetype: {kind}) "
                    "are not a snapshot; export the full entries (ldapsearch -LLL, slapcat)"
                )
            raise SourceError(
                f"{where}:{line_number}: {shown(dn)}: unknown changetype {shown(kind)}"
            )
        attributes.setdefault(lowered, []).append(raw)
    return LdifRecord(dn=dn, attributes={k: tuple(v) for k, v in attributes.items()}, line=number)
