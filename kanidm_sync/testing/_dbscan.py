"""Reading a throwaway kanidmd's database with ``kanidmd db-scan``, for tests.

kanidmd's access controls let no account read ``sync_external_id`` or ``sync_parent_uuid``
(kanidm: server/lib/src/migration_data/dl*/access.rs: no search ACP lists them), and the
built-in ACPs cannot be extended over the API. A test that must see what a sync wrote
therefore reads the database itself: ``kanidmd db-scan list-id2entry`` lists the entries,
``kanidmd db-scan get-id2entry ID`` prints one with every attribute, as Rust ``Debug``
renderings of its value sets. This module parses those renderings into plain values (the
shapes the double's ``StoredEntry`` uses: strings, ints, UUID strings). Only for a kanidmd
started by :class:`~kanidm_sync.testing.Kanidmd` on this machine.

The format is kanidmd's internal debug output, not an API: it is parsed leniently, and an
attribute whose rendering is not understood keeps its raw text.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["parse_entry", "parse_listing", "parse_valueset"]

_DELIMS: Final = set('[](){},:"')
_ENTRY_ID = re.compile(
    r'^\s*(\d+): v\d+ - \{ Uuid\(\[([0-9a-f-]{36})\]\)(?:.*?Iname\(\["([^"]*)"\]\))?',
    re.MULTILINE,
)
_ATTR_LINE = re.compile(r"^([a-z0-9_]+) - \S+ (.*)$")
_STATE_LINE = re.compile(r"^(live|recycled|tombstone)\b")

Parsed = object


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def peek(self) -> str:
        self.skip()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise ValueError(f"expected {char!r} at {self.pos}")
        self.pos += 1

    def string(self) -> str:
        self.expect('"')
        out: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            self.pos += 1
            if char == '"':
                return "".join(out)
            if char != "\\":
                out.append(char)
                continue
            esc = self.text[self.pos]
            self.pos += 1
            if esc == "u" and self.text[self.pos] == "{":
                end = self.text.index("}", self.pos)
                out.append(chr(int(self.text[self.pos + 1 : end], 16)))
                self.pos = end + 1
            else:
                out.append({"n": "\n", "t": "\t", "r": "\r", "0": "\0"}.get(esc, esc))
        raise ValueError("unterminated string")

    def bare(self, stops: str) -> str:
        self.skip()
        start = self.pos
        depth = 0
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if depth == 0 and char in stops:
                break
            if char in "([{":
                depth += 1
            elif char in ")]}":
                depth -= 1
            self.pos += 1
        return self.text[start : self.pos].strip()

    def items(self, close: str) -> list[Parsed]:
        out: list[Parsed] = []
        while self.peek() != close:
            out.append(self.value())
            if self.peek() == ",":
                self.pos += 1
        self.expect(close)
        return out

    def value(self) -> Parsed:
        char = self.peek()
        if char == '"':
            return self.string()
        if char == "[":
            self.pos += 1
            return self.items("]")
        if char == "(":
            self.pos += 1
            return tuple(self.items(")"))
        match = re.compile(r"[A-Za-z_][A-Za-z0-9_]*").match(self.text, self.pos)
        if match is not None:
            after = self.text[match.end() : match.end() + 2].lstrip()[:1]
            if after in ("(", "{", "["):
                self.pos = match.end()
                name = match.group(0)
                if self.peek() == "{":
                    self.pos += 1
                    fields: dict[str, Parsed] = {}
                    while self.peek() != "}":
                        key = self.bare(":")
                        self.expect(":")
                        fields[key] = self.value()
                        if self.peek() == ",":
                            self.pos += 1
                    self.expect("}")
                    return (name, fields)
                return (name, self.value() if self.peek() == "[" else tuple(self._paren()))
        return self.bare(",)]}")

    def _paren(self) -> list[Parsed]:
        self.expect("(")
        return self.items(")")


def _flat(value: Parsed) -> list[Parsed]:
    if isinstance(value, list):
        return value
    if isinstance(value, tuple) and len(value) == 1 and isinstance(value[0], list):
        return value[0]
    return [value]


def parse_valueset(text: str) -> tuple[object, ...]:
    """The values of one rendered value set (``-`` is none), as the double would store them."""
    text = text.strip()
    if text in ("", "-"):
        return ()
    try:
        parsed = _Parser(text).value()
    except (ValueError, IndexError):
        return (text,)
    if not isinstance(parsed, tuple) or len(parsed) != 2 or not isinstance(parsed[0], str):
        return (text,)
    kind, inner = parsed
    values = _flat(inner)
    if kind in ("Uint32", "Int64", "Uint64"):
        return tuple(int(str(v)) for v in values)
    if kind == "Spn":
        return tuple(f"{v[0]}@{v[1]}" for v in values if isinstance(v, tuple) and len(v) == 2)
    if kind == "EmailAddress" and isinstance(inner, tuple) and len(inner) == 2:
        primary, addresses = inner
        rest = [a for a in _flat(addresses) if a != primary]
        return (primary, *rest)
    if kind == "SshKey":
        out = []
        for v in values:
            if isinstance(v, tuple) and isinstance(v[1], dict):
                out.append(f"{v[1].get('tag')}: {v[1].get('data')}")
        return tuple(out)
    if kind == "Credential":
        out = []
        for v in values:
            if isinstance(v, tuple) and isinstance(v[1], dict):
                data = v[1].get("data")
                detail = str(data)
                if isinstance(data, tuple) and len(data) == 2 and isinstance(data[1], dict):
                    kinds = [str(x) for x in data[1].values() if isinstance(x, str)]
                    detail = f"{data[0]}({kinds[0] if kinds else ''})"
                out.append(f"{v[1].get('tag')}: {detail}")
        return tuple(out)
    if kind == "PrivateBinary":
        return ("private_binary",)
    if all(isinstance(v, str) for v in values):
        return tuple(str(v) for v in values)
    return (text,)


def parse_listing(text: str) -> dict[str, tuple[int, str | None]]:
    """``kanidmd db-scan list-id2entry`` output: entry UUID to (id2entry id, name)."""
    return {m.group(2): (int(m.group(1)), m.group(3)) for m in _ENTRY_ID.finditer(text)}


def parse_entry(text: str) -> tuple[str, dict[str, tuple[object, ...]]]:
    """``kanidmd db-scan get-id2entry`` output: the entry's state and its attributes."""
    state = "live"
    attrs: dict[str, tuple[object, ...]] = {}
    for line in text.splitlines():
        line = line.strip()
        found = _STATE_LINE.match(line)
        if found is not None:
            state = found.group(1)
            continue
        match = _ATTR_LINE.match(line)
        if match is None:
            continue
        values = parse_valueset(match.group(2))
        if values:
            attrs[match.group(1)] = values
    classes = attrs.get("class", ())
    if state == "live" and "recycled" in classes:
        # A recycled entry is a live database entry with the class "recycled".
        state = "recycled"
        attrs["class"] = tuple(c for c in classes if c != "recycled")
    return state, attrs
