"""RunReport: what one run of the runner did, as a value and as JSON.

Owns: :class:`RunReport` and :class:`Progress` (the value handed to progress callbacks).
Must not: do I/O or log; the runner builds reports, callers print or store them.
Secrets never appear: per-entry changes carry digests of password and TOTP imports, and
rendering masks them as ``***``.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
from collections.abc import Mapping
from typing import Literal

import attrs

from ._diagnose import Diagnosis
from ._plan_model import EntryChange, _state_text
from ._proto._codec import encode_sync_state
from ._proto._state import SyncState
from ._types import JSONObject, JSONValue

__all__ = ["Progress", "RunOutcome", "RunReport"]

RunOutcome = Literal["applied", "nothing-to-do", "planned", "refused", "failed"]
"""How a run ended: applied, nothing to apply, planned only (dry run), refused by a guard
or by validation, or failed (Kanidm or the source raised)."""


@attrs.frozen(kw_only=True)
class Progress:
    """A progress event of a long run, handed to the ``progress`` callback.

    Attributes:
        phase: ``"state"``, ``"fetch"``, ``"plan"``, ``"apply"`` (one per committed
            request) or ``"done"``.
        done: units finished in this phase: requests committed (``"apply"``, and
            ``"done"`` for the whole run), 0 for ``"plan"``, else 1.
        total: units in this phase: requests (``"plan"``, ``"apply"``, ``"done"``), else 1.
        entries: entries the source returned (``"fetch"``), the plan will send
            (``"plan"``), sent so far (``"apply"``) or sent (``"done"``); each entry once,
            never the placeholders that keep an intermediate request non-empty; else 0.
        message: a short human description.
    """

    phase: str
    done: int = 0
    total: int = 0
    entries: int = 0
    message: str = ""


def _warning_text(warning: str) -> str:
    # Validation problems render as "warning: entries[3] ...": the label says it once.
    return warning[len("warning: ") :] if warning.startswith("warning: ") else warning


def _state_json(state: SyncState | None) -> JSONValue:
    return None if state is None else encode_sync_state(state)


@attrs.frozen(kw_only=True, repr=False)
class RunReport:
    """What one run did.

    Attributes:
        outcome: how the run ended (see :data:`RunOutcome`).
        started_at: when the run started (UTC).
        finished_at: when it ended (UTC).
        duration: seconds, measured with a monotonic clock.
        state_before: Kanidm's state when the run started, when read.
        state_after: Kanidm's state when the run ended, as far as the run knows.
        counts: entries per action (``create``, ``update``, ``delete``, ``unchanged``,
            ``create-or-replace``), plus ``sent`` (entries sent in the committed requests,
            each once: an entry sent first with temporary values and then with its own
            counts once).
        requests_sent: requests Kanidm committed during this run.
        requests_total: requests the plan had (more than one when chunked).
        bytes_sent: body bytes of the committed requests.
        changes: per-entry actions (unchanged entries included).
        warnings: validation warnings and plan notes.
        error: the failure as JSON (type, message, variant, status, operation id).
        diagnosis: the conflict diagnosis, when Kanidm refused the data.
        base_note: where the plan's diff base came from.
        fetch_seconds: seconds spent in the source's ``fetch`` (every call of the run),
            or ``None`` when the run did not ask the source (``apply(plan)``, a refused lock).
    """

    outcome: RunOutcome
    started_at: _dt.datetime
    finished_at: _dt.datetime
    duration: float
    state_before: SyncState | None = None
    state_after: SyncState | None = None
    counts: Mapping[str, int] = attrs.field(factory=dict)
    requests_sent: int = 0
    requests_total: int = 0
    bytes_sent: int = 0
    changes: tuple[EntryChange, ...] = ()
    warnings: tuple[str, ...] = ()
    error: JSONObject | None = None
    diagnosis: Diagnosis | None = None
    base_note: str = ""
    fetch_seconds: float | None = None

    @property
    def ok(self) -> bool:
        """``True`` unless the run failed or was refused."""
        return self.outcome not in ("failed", "refused")

    def to_dict(self) -> JSONObject:
        """The report as a JSON-ready dict (what :meth:`to_json` serialises)."""
        return {
            "outcome": self.outcome,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "duration": round(self.duration, 6),
            "cookie_before": _state_json(self.state_before),
            "cookie_after": _state_json(self.state_after),
            "counts": dict(self.counts),
            "requests_sent": self.requests_sent,
            "requests_total": self.requests_total,
            "bytes_sent": self.bytes_sent,
            "base": self.base_note,
            "fetch_seconds": None if self.fetch_seconds is None else round(self.fetch_seconds, 6),
            "warnings": list(self.warnings),
            "error": self.error,
            "diagnosis": None if self.diagnosis is None else self.diagnosis.to_dict(),
            "changes": [c.to_dict() for c in self.changes],
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        """The report as JSON text.

        Args:
            indent: passed to :func:`json.dumps`; ``None`` for compact output.

        Returns:
            The JSON text; cookies appear as Kanidm's wire form (URL-safe base64).
        """
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def _summary(self) -> str:
        counts = ", ".join(f"{n:,} {a}" for a, n in self.counts.items() if n and a != "sent")
        if self.outcome == "nothing-to-do":
            sent = "nothing to send"
        elif self.requests_total:
            sent = (
                f"{self.requests_sent} of {self.requests_total} requests committed, "
                f"{self.bytes_sent:,} bytes"
            )
        else:
            sent = "nothing sent"
        return f"{counts or 'no entries'}; {sent}, {self.duration:.3f}s"

    def _error_line(self) -> str | None:
        if self.error is None:
            return None
        line = f"{self.error.get('type')}: {self.error.get('message')}"
        operation = self.error.get("operation_id")
        return line + (f" (Kanidm operation id {operation})" if operation else "")

    def _states_line(self) -> str:
        before = "unknown" if self.state_before is None else _state_text(self.state_before)
        if self.state_after is not None:
            return f"Kanidm state: {before} -> {_state_text(self.state_after)}"
        if self.requests_sent == 0:
            if self.outcome == "refused":
                what = "nothing was sent"
            elif self.diagnosis is not None:
                what = "nothing was applied: Kanidm rolled the failing request back"
            else:
                what = "no request was committed"
            return f"Kanidm state: {before}, unchanged ({what})"
        return (
            f"Kanidm state: {before} -> an intermediate cookie: {self.requests_sent} of "
            f"{self.requests_total} requests committed before the failure, and the next run "
            "continues from what Kanidm holds"
        )

    def to_text(self) -> str:
        """The report for a terminal or a log.

        A failed or refused run reads: the outcome and the error (with Kanidm's operation
        id), what happened to Kanidm's state (nothing applied, or how many requests of a
        split committed), the warnings, then the diagnosis with its rules.

        Returns:
            Multi-line text; secrets never appear.
        """
        lines = [f"run {self.outcome}: {self._summary()}"]
        error = self._error_line()
        if error is not None:
            lines.append(f"  error: {error}")
        lines.append(f"  {self._states_line()}")
        if self.base_note:
            lines.append(f"  base: {self.base_note}")
        lines.extend(f"  warning: {_warning_text(w)}" for w in self.warnings)
        if self.diagnosis is not None:
            lines.append("  " + self.diagnosis.to_text().replace("\n", "\n  "))
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        esc = html.escape
        rows = [f"<b>run {esc(self.outcome)}</b>: {esc(self._summary())}"]
        error = self._error_line()
        if error is not None:
            rows.append(f"error: {esc(error)}")
        if not self.ok or self.requests_total:
            rows.append(esc(self._states_line()))
        if self.base_note:
            rows.append(f"base: {esc(self.base_note)}")
        rows.extend(f"warning: {esc(_warning_text(w))}" for w in self.warnings)
        body = "".join(f"<li>{r}</li>" for r in rows[1:])
        diagnosis = "" if self.diagnosis is None else self.diagnosis._repr_html_()
        # Per-entry changes render through EntryChange.to_dict, which masks secrets.
        changes = "".join(
            f"<tr><td>{esc(c.action.value)}</td><td>{esc(c.kind)}</td>"
            f"<td>{esc(c.label())}</td></tr>"
            for c in self.changes
            if c.action.value != "unchanged"
        )
        table = f"<table>{changes}</table>" if changes else ""
        return f"<div><p>{rows[0]}</p><ul>{body}</ul>{diagnosis}{table}</div>"

    def __repr__(self) -> str:
        counts = ", ".join(f"{n} {a}" for a, n in self.counts.items() if n)
        return (
            f"RunReport(outcome={self.outcome!r}, <{counts or 'no entries'}>, "
            f"requests={self.requests_sent}/{self.requests_total}, "
            f"duration={self.duration:.3f}s)"
        )
