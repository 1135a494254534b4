"""What a sync service shows about itself: one frozen snapshot, and its JSON form.

Owns: :class:`ServiceSnapshot` (the data behind ``/status.json``, the HTML status page,
``/readyz`` and ``/metrics``), the readiness rule (:func:`readiness`), the safe cookie
summary (:func:`cookie_summary`) and a schedule in words (:func:`describe_schedule`).

Must not: do I/O, read a clock (times are passed in), or hold a secret. Pure.

Everything here may be shown to anyone who can reach the status endpoint: no token, no
password hash or TOTP secret (run reports never hold them), and no cookie bytes (a
source cookie may name a server and a position in its change log): a cookie is shown as
its length, a short digest and the count of entries kanidm-sync carries in it, also in
the last run's report (``RunReport.to_dict`` has the cookies in Kanidm's wire form; the
snapshot's JSON replaces them with summaries).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from collections.abc import Mapping

import attrs

from ._baseline import unwrap
from ._proto._state import ActiveState, SyncState
from ._report import RunReport
from ._schedule import CronSchedule, RunnerStatus, Schedule
from ._types import JSONObject, JSONValue

__all__ = [
    "MAX_CHANGES_SHOWN",
    "MAX_WARNINGS_SHOWN",
    "ServiceSnapshot",
    "cookie_summary",
    "describe_schedule",
    "readiness",
]

MAX_CHANGES_SHOWN = 1000
"""Per-entry changes of the last run that ``/status.json`` lists (unchanged entries never):
a run over 100,000 entries would otherwise make every poll serialise megabytes."""

MAX_WARNINGS_SHOWN = 100
"""Warnings of the last run that ``/status.json`` lists (one per entry is possible)."""


def describe_schedule(schedule: Schedule | None) -> str:
    """A schedule in words, for the status page and ``/status.json``.

    Args:
        schedule: the loop's schedule, or ``None`` (a custom loop that did not say).

    Returns:
        ``"every 300 s (jitter 10%)"``, ``"cron '0 */5 * * * *' (UTC)"`` or ``""``.
    """
    if schedule is None:
        return ""
    if isinstance(schedule, CronSchedule):
        return f"cron {schedule.cron.source!r} (UTC)"
    jitter = f" (jitter {schedule.jitter:.0%})" if schedule.jitter else ""
    return f"every {schedule.interval:g} s{jitter}"


def cookie_summary(state: SyncState | None) -> JSONObject | None:
    """A cookie as it may be shown: length, digest prefix and the carried count.

    Args:
        state: Kanidm's state, or ``None`` when unknown.

    Returns:
        ``None`` (unknown), ``{"state": "refresh"}``, or ``{"state": "active", "bytes": n,
        "sha256": "<12 hex>", "held": count or None, "held_exact": bool or None}``.
    """
    if state is None:
        return None
    if not isinstance(state, ActiveState):
        return {"state": "refresh"}
    _, baseline = unwrap(state)
    return {
        "state": "active",
        "bytes": len(state.cookie),
        "sha256": hashlib.sha256(state.cookie).hexdigest()[:12],
        "held": baseline.count if baseline is not None else None,
        "held_exact": baseline.exact if baseline is not None else None,
    }


def readiness(
    status: RunnerStatus,
    *,
    now: _dt.datetime,
    interval: float | None,
    ready_intervals: float,
    started_at: _dt.datetime | None,
) -> tuple[bool, str]:
    """Whether the service is ready: its last run succeeded recently enough.

    Ready when the last finished run succeeded and the last success is at most
    ``ready_intervals`` intervals old (without an interval, only the last outcome counts).

    Args:
        status: the runner's status.
        now: the current time (timezone-aware).
        interval: seconds between runs (the schedule's), or ``None``.
        ready_intervals: how many intervals a success stays fresh.
        started_at: when the loop started (a loop that has not run yet is not ready).

    Returns:
        ``(ready, reason)``; the reason says why not, or what made it ready.
    """
    if status.last_success_at is None:
        if status.runs:
            return (
                False,
                f"no run succeeded yet ({status.failures} failed; last: {status.last_error})",
            )
        return False, "no run finished yet" + (
            f" (started {started_at.isoformat()})" if started_at is not None else ""
        )
    if status.consecutive_failures:
        return False, (
            f"the last {status.consecutive_failures} run(s) failed (last: {status.last_error}); "
            f"last success {status.last_success_at.isoformat()}"
        )
    if interval is not None:
        age = (now - status.last_success_at).total_seconds()
        limit = ready_intervals * interval
        if age > limit:
            return False, (
                f"the last success is {age:.0f} s old, more than {ready_intervals:g} "
                f"intervals ({limit:.0f} s)"
            )
    return True, f"last run succeeded at {status.last_success_at.isoformat()}"


def _iso(value: _dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@attrs.frozen(kw_only=True)
class ServiceSnapshot:
    """Everything a status endpoint shows, at one moment.

    Attributes:
        account: the sync account's name (from the configuration; may be empty).
        kanidm_url: Kanidm's URL, without credentials.
        now: when the snapshot was taken (UTC).
        started_at: when the loop started, or ``None`` before.
        alive: the loop is running (``/healthz``).
        ready: the last run succeeded recently enough (``/readyz``).
        ready_reason: why (not) ready, in words.
        schedule: the schedule in words (``"every 300 s"``, ``"cron '0 */5 * * * *' (UTC)"``).
        interval: seconds between runs, when the schedule has one.
        kanidm_state: Kanidm's state as last seen (after the last run, else before it).
        status: the runner's status (counters, last success and error, next run).
        runs: the last runs' reports, newest first.
        config_error: a configuration reload that was refused (SIGHUP with a broken
            file), with its error; the service goes on with the previous configuration.
        notes: other things the operator should know (an interrupted run, a stop
            requested), newest last.
    """

    account: str = ""
    kanidm_url: str = ""
    now: _dt.datetime
    started_at: _dt.datetime | None = None
    alive: bool = False
    ready: bool = False
    ready_reason: str = ""
    schedule: str = ""
    interval: float | None = None
    kanidm_state: SyncState | None = None
    status: RunnerStatus = attrs.field(factory=RunnerStatus)
    runs: tuple[RunReport, ...] = ()
    config_error: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def last_report(self) -> RunReport | None:
        """The newest run's report, or ``None``."""
        return self.runs[0] if self.runs else None

    def to_dict(self) -> JSONObject:
        """The snapshot as JSON values: what ``/status.json`` serves.

        ``last_run`` is the newest report's JSON with its cookies as summaries
        (``kanidm_before``, ``kanidm_after``) and its changes without the unchanged
        entries, at most :data:`MAX_CHANGES_SHOWN` (``changes_omitted`` counts the rest),
        and at most :data:`MAX_WARNINGS_SHOWN` warnings (``warnings_omitted``).
        """
        runs: list[JSONValue] = [_run_dict(r) for r in self.runs]
        last = self.last_report
        return {
            "account": self.account,
            "kanidm_url": self.kanidm_url,
            "now": _iso(self.now),
            "started_at": _iso(self.started_at),
            "alive": self.alive,
            "ready": self.ready,
            "ready_reason": self.ready_reason,
            "schedule": self.schedule,
            "interval_seconds": self.interval,
            "next_run_at": _iso(self.status.next_run_at),
            "kanidm": cookie_summary(self.kanidm_state),
            "status": self.status.to_dict(),
            "runs": runs,
            "last_run": None if last is None else _last_run_dict(last),
            "config_error": self.config_error,
            "notes": list(self.notes),
        }


def _last_run_dict(report: RunReport) -> JSONObject:
    # The report's own JSON, with the cookies as summaries and the changes bounded.
    changed = [c for c in report.changes if c.action.value != "unchanged"]
    out = attrs.evolve(
        report,
        changes=tuple(changed[:MAX_CHANGES_SHOWN]),
        warnings=report.warnings[:MAX_WARNINGS_SHOWN],
    ).to_dict()
    del out["cookie_before"], out["cookie_after"]
    out["kanidm_before"] = cookie_summary(report.state_before)
    out["kanidm_after"] = cookie_summary(report.state_after)
    out["changes_omitted"] = max(0, len(changed) - MAX_CHANGES_SHOWN)
    out["warnings_omitted"] = max(0, len(report.warnings) - MAX_WARNINGS_SHOWN)
    return out


def _run_dict(report: RunReport) -> JSONObject:
    # One row of the runs table: no per-entry changes (the last run has them in full).
    counts: Mapping[str, int] = report.counts
    error = report.error or {}
    return {
        "outcome": report.outcome,
        "started_at": _iso(report.started_at),
        "finished_at": _iso(report.finished_at),
        "duration_seconds": report.duration,
        "counts": dict(counts),
        "requests_sent": report.requests_sent,
        "requests_total": report.requests_total,
        "bytes_sent": report.bytes_sent,
        "error": None
        if report.error is None
        else {"type": error.get("type"), "message": error.get("message")},
    }
