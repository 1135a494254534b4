"""How the command line talks: results on stdout, everything else on stderr.

Owns: :class:`Output` (text or ``--json`` results, notes, progress lines, the one-line error
with its hint; with ``--log-format json`` every stderr line is a JSON object instead), the
exit codes, and :func:`error_json` (an exception as JSON without secrets).

Must not: decide anything about Kanidm or a source; print a secret. The only secret that
ever reaches stdout is the token ``account generate-token`` was asked to print, and it goes
through :meth:`Output.secret` so that is easy to audit.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Final, TextIO

from .._exceptions import APIStatusError, KanidmSyncError, ValidationError
from .._logjson import LogContext, json_line
from .._report import Progress
from .._types import JSONObject, JSONValue

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_USAGE",
    "LOGGER",
    "Output",
    "Refused",
    "UsageError",
    "error_json",
    "split_hint",
]

EXIT_OK: Final = 0
"""The command did what it was asked."""
EXIT_FAILED: Final = 1
"""Kanidm, the source or the network failed; or ``status`` found the last run failing."""
EXIT_USAGE: Final = 2
"""Wrong arguments or a wrong configuration file (argparse uses 2 as well)."""
EXIT_REFUSED: Final = 3
"""Refused before anything was sent: a guard, local validation, or no confirmation."""
EXIT_INTERRUPTED: Final = 130
"""Interrupted by Ctrl-C (SIGINT) during a run (a second one, under ``run --schedule``)."""

LOGGER: Final = "kanidm_sync.cli"
"""The logger name of the command line's own lines in ``--log-format json``."""

_HINT_MARK: Final = " (hint: "


class UsageError(Exception):
    """A command was called in a way that cannot work (exit status 2)."""


class Refused(Exception):
    """The command refused to act, for example without confirmation (exit status 3)."""


def split_hint(message: str) -> tuple[str, str]:
    """Split ``"... (hint: do this)"`` into the message and the hint.

    The status table of ``_proto/_status.py`` appends its hint to the exception message
    in that form; the command line shows it on a line of its own.

    Args:
        message: an exception message.

    Returns:
        ``(message, hint)``; the hint is ``""`` when there is none.
    """
    at = message.rfind(_HINT_MARK)
    if at < 0 or not message.endswith(")"):
        return message, ""
    return message[:at], message[at + len(_HINT_MARK) : -1]


def error_json(exc: BaseException, hint: str = "", message: str | None = None) -> JSONObject:
    """An exception as a JSON object for ``--json`` output.

    Args:
        exc: the exception (its message carries no secret: the library's rule).
        hint: a hint to report besides the one in the message.
        message: the message to report instead of the exception's own (the command
            line's wording of a library message).

    Returns:
        ``{"type", "message", "hint"}`` plus status, variant and operation id for
        Kanidm's errors.
    """
    text, own_hint = split_hint(str(exc) if message is None else message)
    out: JSONObject = {"type": type(exc).__name__, "message": text, "hint": hint or own_hint}
    if isinstance(exc, APIStatusError):
        out["status"] = exc.status_code
        out["variant"] = exc.variant
        out["operation_id"] = exc.operation_id
        detail: JSONValue = exc.detail
        out["detail"] = detail
    if isinstance(exc, ValidationError):
        out["problems"] = [
            {
                "severity": p.severity.value,
                "code": p.code,
                "message": p.message,
                "index": p.index,
                "entry_id": None if p.entry_id is None else str(p.entry_id),
                "external_id": p.external_id,
                "field": p.field,
            }
            for p in exc.report.problems
        ]
    return out


class Output:
    """Where and how one command writes.

    Args:
        json_mode: print results as JSON (one document on stdout).
        progress: print progress lines on stderr.
        quiet: print no notes (results and errors still).
        stdout: the result stream.
        stderr: the stream for notes, progress and errors.
        log_json: write every line on stderr as one JSON object (``--log-format json``),
            with the fields ``log_context`` knows (run id, account, phase).
        log_context: the fields the command knows at the moment, shared with the
            library's log handler.
    """

    def __init__(
        self,
        *,
        json_mode: bool = False,
        progress: bool = False,
        quiet: bool = False,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
        log_json: bool = False,
        log_context: LogContext | None = None,
    ) -> None:
        self.json_mode = json_mode
        self.show_progress = progress
        self.quiet = quiet
        self.log_json = log_json
        self.log_context = log_context if log_context is not None else LogContext()
        self.context: JSONObject = {}
        """Extra keys for the ``--json`` error document (a failed run's report)."""
        self._out = stdout if stdout is not None else sys.stdout
        self._err = stderr if stderr is not None else sys.stderr

    def result(self, text: str, data: JSONValue) -> None:
        """Print a command's result: ``text`` normally, ``data`` as JSON with ``--json``.

        Args:
            text: the human form (may be empty: nothing printed).
            data: the machine form.
        """
        if self.json_mode:
            print(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False), file=self._out)
        elif text:
            print(text, file=self._out)
        self._out.flush()

    def secret(self, value: str) -> None:
        """Print a secret on stdout, alone on its line (only ``generate-token`` does this).

        Args:
            value: the secret.
        """
        print(value, file=self._out)
        self._out.flush()

    def note(self, text: str) -> None:
        """A remark for the operator on stderr (not shown with ``--quiet``).

        Args:
            text: the remark.
        """
        self.event("info", text)

    def warn(self, text: str) -> None:
        """A warning on stderr, shown even with ``--quiet``.

        Args:
            text: the warning.
        """
        self.event("warning", text)

    def event(self, level: str, text: str, **fields: object) -> None:
        """A line on stderr: ``text`` as it is, or a JSON object with ``fields``.

        ``info`` lines are notes (not shown with ``--quiet``); a warning or an error reads
        ``kanidm-sync: warning: <text>`` or ``kanidm-sync: error: <text>`` in text form and
        is always shown.

        Args:
            level: ``"info"``, ``"warning"`` or ``"error"``.
            text: the line.
            **fields: what a JSON line carries besides the message (``counts``,
                ``outcome``, ...); the text form does not show them.
        """
        if level == "info" and self.quiet:
            return
        self._line(level, text, fields)

    def _line(self, level: str, text: str, fields: dict[str, object]) -> None:
        if self.log_json:
            context = {k: v for k, v in self.log_context.fields.items() if k not in fields}
            line = json_line(level, LOGGER, text, {**context, **fields})
        elif level in ("warning", "error"):
            line = f"kanidm-sync: {level}: {text}"
        else:
            line = text
        # One write per line: the service's signal thread writes lines too.
        self._err.write(line + "\n")
        self._err.flush()

    def error(
        self,
        exc: BaseException,
        *,
        hint: str = "",
        message: str | None = None,
        details: Sequence[str] = (),
    ) -> None:
        """Report a failure: one line, its details one per line, then the hint.

        With ``--json`` the error also goes to stdout as ``{"ok": false, "error": ...}``,
        so a script reading stdout always gets a JSON document.

        Args:
            exc: the failure.
            hint: what to do about it, when the message does not say.
            message: the message to print instead of the exception's own (the library
                names Python arguments; the command line names its options).
            details: lines under the message (the problems of a failed validation, each
                with its entry and field), indented.
        """
        raw = str(exc) if message is None else message
        message, own_hint = split_hint(raw.strip() or type(exc).__name__)
        message = " ".join(message.split())  # one line, whatever the message held
        hint = hint or own_hint
        kind = type(exc).__name__ if isinstance(exc, KanidmSyncError) else ""
        prefix = f"{kind}: " if kind and kind not in message else ""
        if self.log_json:
            self.event(
                "error",
                f"{prefix}{message}",
                error_type=type(exc).__name__,
                details=[" ".join(line.split()) for line in details] or None,
                hint=hint or None,
            )
        else:
            print(f"kanidm-sync: error: {prefix}{message}", file=self._err)
            for line in details:
                print(f"  {' '.join(line.split())}", file=self._err)
            if hint:
                print(f"  hint: {hint}", file=self._err)
            self._err.flush()
        if self.json_mode:
            self.result("", {"ok": False, "error": error_json(exc, hint, raw), **self.context})

    def progress(self, event: Progress) -> None:
        """A progress callback for the runner: one line on stderr per step.

        Args:
            event: the runner's progress event.
        """
        if not self.show_progress:
            return
        if event.phase == "state":
            line = "read Kanidm's sync state"
        elif event.phase == "fetch":
            line = "read the source"
        elif event.phase == "plan":
            line = "planned the changes"
        elif event.phase == "apply":
            line = f"applied request {event.done} of {event.total} ({event.entries} entries sent)"
        elif event.phase == "done":
            line = f"done: {event.message}"
        else:
            line = event.message or event.phase
        if self.log_json:
            # Asked for (--progress), so shown with --quiet too, as in text form.
            fields: dict[str, object] = {
                "phase": event.phase,
                "done": event.done,
                "total": event.total,
                "entries": event.entries,
            }
            self._line("info", line, fields)
            return
        print(f"kanidm-sync: {line}", file=self._err)
        self._err.flush()
