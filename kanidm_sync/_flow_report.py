"""Reports of runs and the runner's status: the part of the run flows that records.

Owns: :class:`_Reporting`, the mixin of ``_flow._RunnerCore`` that turns a run (planned,
applied, refused or failed) into a :class:`~kanidm_sync.RunReport`, diagnoses a rejected
request, logs a failure, and keeps the :class:`~kanidm_sync.RunnerStatus` (counters, last
success and error, next run); :class:`_Unrecorded`, a run committed in Kanidm whose local
record could not be written; dropping a local record found damaged while read.

Must not: perform an effect or decide anything about a run: ``_flow`` does.
"""

from __future__ import annotations

import datetime as _dt
import logging
import time

import attrs

from ._chunk import is_keep_alive
from ._diagnose import Diagnosis, diagnose
from ._effects import _Diagnosed, _error_json, _now, _Planned
from ._exceptions import DataError, PermissionDeniedError
from ._plan_model import Plan
from ._proto._changeset import ChangeSet
from ._proto._state import SyncState
from ._record import RecordWriteError, _RecordStore
from ._record_view import RecordDamagedError
from ._report import RunOutcome, RunReport
from ._rules import Rules
from ._schedule import RunnerStatus

__all__: list[str] = []

_log = logging.getLogger("kanidm_sync.runner")


class _Unrecorded(Exception):
    """Internal carrier: the run committed in Kanidm, the local record was not written."""

    def __init__(self, error: RecordWriteError, sent: int, size: int, plan: Plan) -> None:
        super().__init__(str(error))
        self.error = error
        self.sent = sent
        self.size = size
        self.plan = plan


class _Reporting:
    """Reports and status, for ``_flow._RunnerCore`` (which sets the attributes below)."""

    _status: RunnerStatus
    _fetch_seconds: float | None
    _in_loop: bool
    _rules: Rules | None
    _store: _RecordStore

    def _discard_record(self, exc: RecordDamagedError) -> None:
        """A row of the local record read on demand is damaged: plan without it."""
        _log.warning("%s; diff base unknown", exc)
        self._store.discard()

    def _diagnosed(
        self,
        planned: _Planned,
        plan: Plan,
        request: ChangeSet,
        exc: DataError | PermissionDeniedError,
        sent: int,
        size: int,
    ) -> _Diagnosed:
        """Diagnose a rejected request and log it; the carrier to raise."""
        known = planned.known
        matching = known if known is not None and known.matches(request.from_state) else None
        if matching is None and plan.base_known:
            matching = known
        while True:
            try:
                diagnosis = diagnose(
                    exc,
                    request,
                    known=matching,
                    rules=self._rules,
                    deleting=plan.deleting,
                    delete_first=plan.delete_first,
                    released=plan.released,
                    record_path=self._store.path is not None,
                    record=known is not None,
                )
                break
            except RecordDamagedError as damaged:
                # The diagnosis reads the whole record: without it, when a row is damaged.
                if matching is None:
                    raise
                self._discard_record(damaged)
                matching = None
        # The caller of run_once() gets the diagnosis with the exception (run_report): a
        # handled outcome, logged at INFO. Inside run_forever nobody else sees it.
        _log.log(logging.ERROR if self._in_loop else logging.INFO, "%s", diagnosis.to_text())
        return _Diagnosed(exc, diagnosis, sent, size, plan)

    def _unrecorded(
        self, started: _dt.datetime, t0: float, planned: _Planned, unrecorded: _Unrecorded
    ) -> RunReport:
        """The report of a run Kanidm committed but the local record could not follow."""
        _log.log(
            logging.ERROR if self._in_loop else logging.WARNING,
            "run failed after Kanidm committed it: %s",
            unrecorded.error,
        )
        return self._report(
            outcome="failed",
            started=started,
            t0=t0,
            state_before=planned.plan.from_state,
            state_after=planned.plan.to_state,
            planned=planned,
            sent=unrecorded.sent,
            size=unrecorded.size,
            error=unrecorded.error,
        )

    # --- reports and status ----------------------------------------------------------------

    def _report(
        self,
        *,
        outcome: RunOutcome,
        started: _dt.datetime,
        t0: float,
        state_before: SyncState | None,
        state_after: SyncState | None,
        planned: _Planned | None,
        sent: int = 0,
        size: int = 0,
        error: BaseException | None = None,
        diagnosis: Diagnosis | None = None,
    ) -> RunReport:
        plan = planned.plan if planned is not None else None
        counts: dict[str, int] = dict(plan.counts) if plan is not None else {}
        if plan is not None:
            # Each entry once: an entry released first is sent again with its own values.
            counts["sent"] = len(
                {
                    e.id
                    for r in plan.pending_requests[:sent]
                    for e in r.entries
                    if not is_keep_alive(e)
                }
            )
        return RunReport(
            outcome=outcome,
            started_at=started,
            finished_at=_now(),
            duration=time.monotonic() - t0,
            state_before=state_before,
            state_after=state_after,
            counts=counts,
            requests_sent=sent,
            requests_total=len(plan.requests) if plan is not None else 0,
            bytes_sent=size,
            changes=plan.changes if plan is not None else (),
            warnings=planned.warnings if planned is not None else (),
            error=None if error is None else _error_json(error, diagnosis),
            diagnosis=diagnosis,
            base_note=plan.base_note if plan is not None else "",
            fetch_seconds=self._fetch_seconds,
        )

    def _failure(
        self,
        started: _dt.datetime,
        t0: float,
        planned: _Planned | None,
        exc: BaseException,
        wrapped: _Diagnosed | None,
        outcome: RunOutcome = "failed",
        seen: SyncState | None = None,
    ) -> RunReport:
        plan = planned.plan if planned is not None else None
        before = plan.from_state if plan is not None else seen
        _log.log(
            logging.WARNING if self._in_loop else logging.INFO,
            "run %s: %s: %s",
            outcome,
            type(exc).__name__,
            exc,
        )
        return self._report(
            outcome=outcome,
            started=started,
            t0=t0,
            state_before=before,
            state_after=None,
            planned=planned,
            sent=wrapped.sent if wrapped is not None else 0,
            size=wrapped.size if wrapped is not None else 0,
            error=exc,
            diagnosis=wrapped.diagnosis if wrapped is not None else None,
        )

    def _record(self, report: RunReport) -> None:
        s = self._status
        when = report.finished_at
        if report.ok:
            self._status = attrs.evolve(
                s,
                state="ok",
                runs=s.runs + 1,
                consecutive_failures=0,
                last_run_at=when,
                last_success_at=when,
                last_report=report,
            )
        else:
            error = report.error or {}
            self._status = attrs.evolve(
                s,
                state="failing",
                runs=s.runs + 1,
                failures=s.failures + 1,
                consecutive_failures=s.consecutive_failures + 1,
                last_run_at=when,
                last_error_at=when,
                last_error=f"{error.get('type')}: {error.get('message')}",
                last_error_detail={
                    **error,
                    **(
                        {"diagnosis": report.diagnosis.to_dict()}
                        if report.diagnosis is not None
                        else {}
                    ),
                },
                last_report=report,
            )

    def _set_next_run(self, delay: float) -> None:
        self._status = attrs.evolve(self._status, next_run_at=_now() + _dt.timedelta(seconds=delay))

    def _stopped(self) -> None:
        # The loop ended: no run is due any more.
        self._status = attrs.evolve(self._status, next_run_at=None)

    def _begin(self) -> None:
        self._status = attrs.evolve(self._status, state="running")
