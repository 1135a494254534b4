"""Helpers to hunt secrets: distinctive secret values, and every text a run can show.

A :class:`Secrets` catalogue holds, for each kind of secret, the strings that must never be
seen (the whole value and a distinctive fragment, so a truncated echo is caught too). A
:class:`Capture` collects every text a scenario produces: log records of every logger
(``kanidm_sync``, ``httpx``, ``httpcore``) at DEBUG, ``traceback.format_exception`` of each
exception with its chain and the chained exceptions' attributes, ``repr`` / ``str`` /
``_repr_html_`` of objects, command output and the files a run wrote.
"""

from __future__ import annotations

import base64
import logging
import pathlib
import traceback
from collections.abc import Iterable, Iterator

import attrs

# The loggers a run may write to; httpx and httpcore are the HTTP stack's own.
LOGGERS = ("", "kanidm_sync", "httpx", "httpcore")

# Exception attributes that may carry text from a request, a response or a file.
_EXCEPTION_ATTRIBUTES = (
    "message",
    "body",
    "url",
    "reason",
    "detail",
    "errors",
    "report",
    "plan",
    "offered",
    "args",
    "doc",
    "object",
    "request",
    "response",
)


def ssha512(marker: str) -> str:
    """A valid ``{SSHA512}`` import whose base64 text starts with ``marker``."""
    text = (marker + "A" * 96)[:96]
    assert 72 == len(base64.b64decode(text))
    return "{SSHA512}" + text


def crypt_sha512(marker: str) -> str:
    """A valid ``{CRYPT}$6$`` import that contains ``marker``."""
    return "{CRYPT}$6$saltsalt$" + (marker + "a" * 86)[:86]


@attrs.define
class Secrets:
    """Every secret of a scenario: kind -> the strings that must never appear."""

    needles: dict[str, list[str]] = attrs.field(factory=dict)

    def add(self, kind: str, value: str, *fragments: str) -> str:
        """Register a secret (and distinctive fragments of it); returns ``value``."""
        assert value, kind
        for text in (value, *fragments):
            assert len(text) >= 8, f"{kind}: a needle must be distinctive: {text!r}"
        self.needles.setdefault(kind, []).extend((value, *fragments))
        return value

    def add_token(self, kind: str, token: str) -> str:
        """Register a JWS: the whole token and its signature (its most secret part)."""
        return self.add(kind, token, token.rsplit(".", 1)[-1])

    def found_in(self, text: str) -> list[tuple[str, str]]:
        """The ``(kind, needle)`` pairs present in ``text``."""
        return [(k, n) for k, values in self.needles.items() for n in values if n in text]


def _walk_chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                todo.append(linked)
        if isinstance(current, BaseExceptionGroup):
            todo.extend(current.exceptions)


class _ListHandler(logging.Handler):
    def __init__(self, sink: list[tuple[str, str]]) -> None:
        super().__init__(logging.DEBUG)
        self.sink = sink
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append((f"log {record.name}", self.format(record)))
        self.sink.append((f"log args {record.name}", repr(record.args)))


@attrs.define
class Capture:
    """Everything a scenario showed, as ``(where, text)`` pairs."""

    texts: list[tuple[str, str]] = attrs.field(factory=list)

    def add(self, where: str, text: str) -> None:
        """Record one text."""
        self.texts.append((where, text))

    def exception(self, exc: BaseException, where: str) -> None:
        """Record the traceback of ``exc`` (chain included) and each linked exception's data.

        Frame locals are not recorded: a function's arguments are its caller's values
        (a decoder's input holds the secrets it was given), so they cannot be masked.
        """
        self.add(f"{where}: traceback", "".join(traceback.format_exception(exc)))
        for linked in _walk_chain(exc):
            name = type(linked).__name__
            self.add(f"{where}: str({name})", str(linked))
            self.add(f"{where}: repr({name})", repr(linked))
            for attribute in _EXCEPTION_ATTRIBUTES:
                value = getattr(linked, attribute, None)
                if value is not None:
                    self.add(f"{where}: {name}.{attribute}", repr(value))
                    self.add(f"{where}: {name}.{attribute} str", str(value))

    def object(self, obj: object, where: str) -> None:
        """Record ``repr``, ``str`` and the other renderings ``obj`` offers."""
        self.add(f"{where}: repr", repr(obj))
        self.add(f"{where}: str", str(obj))
        for method in ("_repr_html_", "to_html", "to_text", "to_json", "to_dict"):
            render = getattr(obj, method, None)
            if callable(render):
                self.add(f"{where}: {method}", str(render()))

    def files(self, directory: pathlib.Path, *, skip: Iterable[pathlib.Path] = ()) -> list[str]:
        """Record every file under ``directory`` except ``skip``; returns their names."""
        skipped = {p.resolve() for p in skip}
        names = []
        for path in sorted(directory.rglob("*")):
            if path.is_file() and path.resolve() not in skipped:
                names.append(path.name)
                self.add(f"file {path.relative_to(directory)}", path.read_bytes().decode("latin-1"))
        return names

    def logging(self) -> _LoggingCapture:
        """A context manager recording every log record at DEBUG, of every logger."""
        return _LoggingCapture(self.texts)

    def assert_clean(self, secrets: Secrets) -> None:
        """Fail naming every place a secret appears."""
        leaks = []
        for where, text in self.texts:
            for kind, needle in secrets.found_in(text):
                at = text.index(needle)
                leaks.append(f"{kind} in {where}: ...{text[max(0, at - 120) : at + 20]!r}")
        assert [] == leaks, "\n".join(leaks)


class _LoggingCapture:
    def __init__(self, sink: list[tuple[str, str]]) -> None:
        self.handler = _ListHandler(sink)
        self.saved: list[tuple[logging.Logger, int, bool]] = []

    def __enter__(self) -> _LoggingCapture:
        for name in LOGGERS:
            logger = logging.getLogger(name)
            self.saved.append((logger, logger.level, logger.propagate))
            logger.setLevel(logging.DEBUG)
            # Own handler on each logger: a logger that does not propagate is still seen.
            logger.addHandler(self.handler)
            logger.propagate = False
        return self

    def __exit__(self, *exc: object) -> None:
        for logger, level, propagate in self.saved:
            logger.removeHandler(self.handler)
            logger.setLevel(level)
            logger.propagate = propagate
