"""Log lines as JSON: one object per line, for journald, Kubernetes and log shippers.

Owns: :class:`JsonFormatter` (a :class:`logging.Formatter` writing one JSON object per
record), :func:`json_line` (the same object built without a record, for the command
line's own lines), and :class:`LogContext` (a filter that stamps the run id, the account
and the phase the command line knows onto every record, the library's included).

An object always has ``time`` (UTC, ISO 8601 with milliseconds), ``level`` (lower case),
``logger`` and ``message``; then, when known, ``run_id``, ``account``, ``phase``,
``counts`` and whatever else the caller passed in ``extra=`` (JSON-ready values; anything
else is written as its ``str``). A traceback is ``exception``, one string.

Must not: put a secret in a field. Only what a caller passes is written, and the library
never passes a token, a password hash or a TOTP secret to a log call.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
from collections.abc import Mapping
from typing import Final

__all__ = ["CONTEXT_FIELDS", "JsonFormatter", "LogContext", "json_line"]

CONTEXT_FIELDS: Final = ("run_id", "account", "phase")
"""The fields :class:`LogContext` stamps on records, when it knows them."""

# Every attribute a LogRecord has of its own (and what Formatter.format adds): the rest
# came from ``extra=``.
_RECORD_ATTRIBUTES: Final = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", (), None))
) | {"message", "asctime", "taskName"}
_FIRST: Final = ("time", "level", "logger", "message")


def _time(created: float) -> str:
    moment = _dt.datetime.fromtimestamp(created, _dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _jsonable(value: object) -> object:
    """``value`` if json can write it as it is, else its ``str`` (never an exception)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)


def json_line(
    level: str,
    logger: str,
    message: str,
    fields: Mapping[str, object] | None = None,
    *,
    created: float | None = None,
) -> str:
    """One log object as a line of JSON (no newline at the end).

    Args:
        level: ``"debug"``, ``"info"``, ``"warning"``, ``"error"`` or ``"critical"``.
        logger: the logger's name (``"kanidm_sync.cli"`` for the command line's lines).
        message: the text.
        fields: more fields (``run_id``, ``account``, ``phase``, ``counts``, ...);
            ``None`` values are left out.
        created: the time as a POSIX timestamp (default: now).

    Returns:
        ``{"time": ..., "level": ..., "logger": ..., "message": ..., ...}`` as compact
        JSON on one line.
    """
    when = _dt.datetime.now(_dt.UTC).timestamp() if created is None else created
    data: dict[str, object] = {
        "time": _time(when),
        "level": level,
        "logger": logger,
        "message": message,
    }
    for key, value in (fields or {}).items():
        if value is not None and key not in _FIRST:
            data[key] = _jsonable(value)
    # ensure_ascii keeps the line one line and plain ASCII whatever a source's names hold
    # (a U+2028 in a name stays an escape, never a line break to a log shipper).
    return json.dumps(data, ensure_ascii=True, separators=(",", ":"))


class JsonFormatter(logging.Formatter):
    """Formats a log record as one line of JSON (see the module documentation).

    Example:
        >>> import logging, sys
        >>> handler = logging.StreamHandler(sys.stderr)
        >>> handler.setFormatter(JsonFormatter())
        >>> logging.getLogger("kanidm_sync").addHandler(handler)
    """

    def format(self, record: logging.LogRecord) -> str:
        """The record as JSON.

        Args:
            record: the log record.

        Returns:
            One line of JSON.
        """
        fields = {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRIBUTES}
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            fields["exception"] = record.exc_text
        if record.stack_info:
            fields["stack"] = self.formatStack(record.stack_info)
        return json_line(
            record.levelname.lower(),
            record.name,
            record.getMessage(),
            fields,
            created=record.created,
        )


class LogContext(logging.Filter):
    """What the command line knows about the moment: stamped on every record it passes.

    Attach it to a handler; set :attr:`fields` as the run goes (``run_id`` when a run
    starts, ``phase`` at each step, ``None`` to forget one). A record that already
    carries a field (through ``extra=``) keeps its own value.
    """

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, object | None] = dict.fromkeys(CONTEXT_FIELDS)

    def filter(self, record: logging.LogRecord) -> bool:
        """Add the known fields to ``record``; never drops a record.

        Args:
            record: the log record.

        Returns:
            ``True``.
        """
        for key, value in self.fields.items():
            if value is not None and not hasattr(record, key):
                setattr(record, key, value)
        return True
