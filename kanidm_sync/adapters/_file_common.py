"""What the file sources share: reading a file, quoting values in errors, collecting errors.

Owns: reading a file's bytes or UTF-8 text (a byte order mark skipped), the short quotes
of values in error messages, and :class:`Problems`, which gathers the errors of every bad
record so that one :class:`~kanidm_sync.SourceError` reports them all. Must not: know a
file format.
"""

from __future__ import annotations

import codecs
import hashlib
import pathlib
from collections.abc import Iterable, Sequence
from typing import Final

from .._exceptions import SourceError
from .._proto._entries import SshPublicKey

SHOWN_MAX: Final = 80
"""Longest value quoted in an error message; a hostile file may hold megabyte cells."""

LISTED_MAX: Final = 100
"""At most this many bad records are listed in one error; the count says how many in all."""


def shown(value: object) -> str:
    """``repr(value)``, cut to a readable length for an error message."""
    text = repr(value)
    if len(text) <= SHOWN_MAX:
        return text
    return f"{text[:SHOWN_MAX]}... ({len(str(value))} characters)"


def without_bom(data: bytes) -> bytes:
    """``data`` without a leading UTF-8 byte order mark (Windows tools write one)."""
    return data[len(codecs.BOM_UTF8) :] if data.startswith(codecs.BOM_UTF8) else data


def read_bytes(path: pathlib.Path) -> bytes:
    """The file's content.

    Raises:
        SourceError: the file cannot be read; the message names it and the OS error's type.
    """
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SourceError(f"{path}: cannot read the file ({type(exc).__name__})") from exc


def read_text(path: pathlib.Path) -> str:
    """The file's content as UTF-8 text, a byte order mark skipped.

    Raises:
        SourceError: the file cannot be read, or holds a byte sequence that is not UTF-8
            (the message names its line).
    """
    data = read_bytes(path)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        start = exc.start
    # Raised outside the handler: the decode error's .object is the whole file (password
    # hashes included) and would stay reachable as __context__ even with "from None".
    line = data[:start].count(b"\n") + 1
    raise SourceError(f"{path}:{line}: not valid UTF-8")


def utf8(raw: bytes) -> str | None:
    """``raw`` decoded, or ``None``: callers raise their own error outside any handler.

    A UnicodeDecodeError's ``.object`` holds the bytes (a password hash, say); raising
    inside the handler would keep it reachable as ``__context__`` even with ``from None``.
    """
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def lone_surrogate(text: str) -> int | None:
    r"""The index of a lone surrogate in ``text`` (a JSON ``\ud800`` escape), else ``None``.

    Such a string is not Unicode text: it has no UTF-8 form, so Kanidm could never be sent
    it. The error is not kept: its ``.object`` is the string, which may be a secret.
    """
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.start
    return None


def json_kind(value: object) -> str:
    """How an error names the JSON type of ``value`` (``"a number"``, ``"a list"``)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def ssh_label(key: str) -> str:
    """A key's label: ``sshpublickey-`` and 8 hex digits of its SHA-256 (stable)."""
    return "sshpublickey-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:8]


def ssh_keys(values: Sequence[str]) -> list[SshPublicKey]:
    """The distinct keys among ``values``, stripped and labelled by :func:`ssh_label`."""
    seen: dict[str, SshPublicKey] = {}
    for value in values:
        key = value.strip()
        if key and key not in seen:
            seen[key] = SshPublicKey(label=ssh_label(key), value=key)
    return list(seen.values())


def unique(values: Iterable[str]) -> list[str]:
    """``values`` in order, later case-insensitive repeats dropped (Kanidm ignores case)."""
    seen: set[str] = set()
    out: list[str] = []
    for value in values:
        if value.lower() not in seen:
            seen.add(value.lower())
            out.append(value)
    return out


class Problems:
    """The errors of a file's bad records, reported together in one SourceError.

    A file with one bad record raises that record's error as it is; with several, one
    error lists them all (the first :data:`LISTED_MAX`, and the count), so that one run
    shows everything to fix.

    Args:
        path: the file.
        noun: what the file holds, in the plural (``"rows"``, ``"records"``).
    """

    def __init__(self, path: pathlib.Path, noun: str) -> None:
        self._path = path
        self._noun = noun
        self._messages: list[str] = []
        self._count = 0

    def __bool__(self) -> bool:
        return self._count > 0

    def add(self, error: SourceError) -> None:
        """Record one bad record's error."""
        self._count += 1
        if len(self._messages) < LISTED_MAX:
            self._messages.append(str(error))

    def raise_if_any(self) -> None:
        """Raise the recorded errors, if any.

        Raises:
            SourceError: one error naming every bad record (or the one error as it is).
        """
        if self._count == 0:
            return
        if self._count == 1:
            raise SourceError(self._messages[0])
        lines = [f"{self._path}: {self._count} {self._noun} refused:"]
        lines.extend(f"  {message}" for message in self._messages)
        if self._count > len(self._messages):
            lines.append(f"  ... and {self._count - len(self._messages)} more")
        raise SourceError("\n".join(lines))
