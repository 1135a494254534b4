"""Parsing a request's JSON: the ordinary parse, and a streaming one decoding entries as it goes.

Pure; no I/O. :func:`json.loads` of a whole request builds every raw entry before the first
is decoded, so the raw tree of a 200k-entry request (several times the body) is alive
at once and ages into the collector's oldest generation, where every full collection
walks it again. :func:`stream_request` walks the request object itself and hands each
value to the C scanner :func:`json.loads` uses (same hooks, same number rules), decoding
each element of ``entries`` as soon as it is parsed; the raw entry dies young.

Anything unusual makes it give up (``None``), and the caller decodes the request the
ordinary way, which reports exactly what it always reported: a syntax error anywhere, a
repeated key in the request object, a possible lone surrogate, a request that is not an
object. Entry problems found on the way are only collected here; the caller reports them
after the request's own keys, in the order the ordinary path reports them.
"""

from __future__ import annotations

import json
import json.decoder
import json.scanner
import math
import re
from collections.abc import Callable
from typing import Any, Final

from .._exceptions import DecodeError
from ._codec_common import _LONE_SURROGATE_ESCAPE, _Errors, _object_pairs, _surrogate_path
from ._decode_fast import fast_entry
from ._entries import Entry

__all__ = ["ENTRIES_STREAMED", "loads", "stream_request"]

ENTRIES_STREAMED: Final = object()
"""Stands for the ``entries`` array in the request object when its entries were streamed."""

_Scanner = Callable[[str, int], tuple[Any, int]]
_EntryDecoder = Callable[[object, str, _Errors, bool], "Entry | None"]

_ws: Final = re.compile(r"[ \t\n\r]*").match  # json.decoder.WHITESPACE


def _skip(text: str, i: int) -> int:
    """The index of the first non-whitespace character at or after ``i``."""
    return _ws(text, i).end()  # type: ignore[union-attr]  # the pattern always matches


_ScanString = Callable[[str, int], tuple[str, int]]
_scanstring: _ScanString = json.decoder.scanstring  # type: ignore[attr-defined]  # json.loads's


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON (serde_json refuses it)")


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number out of range (serde_json refuses it)")
    return value


def loads(text: str, *, literal_surrogates: bool = False) -> object:
    """The ordinary parse: the whole text at once, every problem a :class:`DecodeError`."""
    try:
        value = json.loads(
            text,
            object_pairs_hook=_object_pairs,
            parse_constant=_refuse_constant,
            parse_float=_parse_float,
        )
    except json.JSONDecodeError as exc:
        raise DecodeError(
            [("$", f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")]
        ) from None
    except ValueError as exc:
        # The int-string conversion limit, NaN/Infinity, an out-of-range float.
        raise DecodeError([("$", f"not acceptable JSON: {exc}")]) from None
    except RecursionError:
        raise DecodeError([("$", "JSON nested too deeply")]) from None
    if literal_surrogates or _LONE_SURROGATE_ESCAPE.search(text):
        # serde_json refuses escapes of lone surrogates; a str given to us may even hold
        # them literally. Neither is Unicode text, and neither could be encoded again.
        where = _surrogate_path(value, "$")
        if where is not None:
            raise DecodeError([(where, "a string holds a lone surrogate (not Unicode)")])
    return value


def _make_scanner() -> _Scanner:
    # The C scanner json.loads uses, with the same hooks as loads() below.
    decoder = json.JSONDecoder(
        object_pairs_hook=_object_pairs, parse_constant=_refuse_constant, parse_float=_parse_float
    )
    scan: _Scanner = json.scanner.make_scanner(decoder)  # type: ignore[arg-type]  # typeshed
    return scan


_SCAN: Final = _make_scanner()


class _GiveUp(Exception):
    """The ordinary path must decode this request (never escapes this module)."""


def _entries(
    text: str, i: int, scan: _Scanner, strict: bool, full: _EntryDecoder
) -> tuple[list[Entry], _Errors, int]:
    """Parse and decode the array starting at ``text[i] == "["``; the index after it."""
    entries: list[Entry] = []
    errs: _Errors = []
    append = entries.append
    i = _skip(text, i + 1)
    if text[i : i + 1] == "]":
        return entries, errs, i + 1
    n = 0
    while True:
        raw, i = scan(text, i)
        entry = fast_entry(raw, strict)
        if entry is None:
            entry = full(raw, f"$.entries[{n}]", errs, strict)
        if entry is not None:
            append(entry)
        n += 1
        separator = text[i : i + 1]
        if separator != "," and separator != "]":
            i = _skip(text, i)
            separator = text[i : i + 1]
        if separator == "]":
            return entries, errs, i + 1
        if separator != ",":
            raise _GiveUp
        i += 1
        if text[i : i + 1] != "{":  # compact JSON goes straight on to the next entry
            i = _skip(text, i)


def stream_request(
    text: str, strict: bool, full: _EntryDecoder
) -> tuple[dict[str, object], list[Entry], _Errors] | None:
    """Parse a request object, decoding its entries as they are parsed.

    Args:
        text: the whole JSON text.
        strict: the decoder's strict mode.
        full: the full entry decoder, for entries the fast path leaves.

    Returns:
        The request object (its ``entries`` value :data:`ENTRIES_STREAMED` if the entries
        were decoded here), the decoded entries and the problems found in them; or
        ``None``: decode the request the ordinary way.
    """
    try:
        return _request(text, _SCAN, strict, full)
    except (_GiveUp, ValueError, StopIteration, RecursionError):
        # ValueError covers json.JSONDecodeError and the number hooks' refusals.
        return None


def _request(
    text: str, scan: _Scanner, strict: bool, full: _EntryDecoder
) -> tuple[dict[str, object], list[Entry], _Errors]:
    i = _skip(text, 0)
    if text[i : i + 1] != "{":
        raise _GiveUp
    i = _skip(text, i + 1)
    top: dict[str, object] = {}
    entries: list[Entry] = []
    errs: _Errors = []
    if text[i : i + 1] == "}":
        raise _GiveUp
    while True:
        if text[i : i + 1] != '"':
            raise _GiveUp
        key, i = _scanstring(text, i + 1)
        if key in top:
            raise _GiveUp  # the ordinary path reports the repeated key
        i = _skip(text, i)
        if text[i : i + 1] != ":":
            raise _GiveUp
        i = _skip(text, i + 1)
        if key == "entries" and text[i : i + 1] == "[":
            entries, errs, i = _entries(text, i, scan, strict, full)
            top[key] = ENTRIES_STREAMED
        else:
            top[key], i = scan(text, i)
        i = _skip(text, i)
        separator = text[i : i + 1]
        if separator == "}":
            break
        if separator != ",":
            raise _GiveUp
        i = _skip(text, i + 1)
    if _skip(text, i + 1) != len(text):
        raise _GiveUp  # extra data after the request
    return top, entries, errs
