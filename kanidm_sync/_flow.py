"""The run itself, written once as generator flows both runners drive.

Owns: :class:`_RunnerCore`, the flows (plan, apply, run, schedule) that yield effects
(read Kanidm's state, ask the source, apply a ChangeSet, load or save the local record)
and receive their results; the configuration and status both runners share; the
re-plan after a conflict; reports of successful and failed runs.

Must not: perform an effect (``_runner.Runner`` and ``AsyncRunner`` do, blocking or
awaited: the httpx ``_auth.py`` pattern, STYLE §3.7), build HTTP requests (the clients
do), compute diffs (``_plan``), split requests (``_chunk``) or decide guards
(``_guards``): it wires them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pathlib
import random as _random
import time
from collections.abc import Callable, Generator, Iterator
from typing import cast

import attrs

from ._baseline import Baseline, unwrap
from ._chunk import (
    ChunkCookie,
    ChunkingError,
    is_keep_alive,
    parse_chunk_cookie,
)
from ._effects import (
    ProgressCallback,
    StalePlanError,
    _Apply,
    _Diagnosed,
    _Effect,
    _Fetch,
    _GetState,
    _LoadKnown,
    _now,
    _Planned,
    _Retry,
    _SaveKnown,
)
from ._exceptions import (
    DataError,
    KanidmSyncError,
    PermissionDeniedError,
    SourceError,
    UniquenessError,
    ValidationError,
)
from ._flow_report import _Reporting, _Unrecorded
from ._flow_support import (
    _baseline,
    _carry,
    describe_batch,
    describe_plan,
    describe_state,
    prefetch_batch,
    quiet_warnings,
)
from ._guards import GuardError, Guards, check_guards
from ._lock import ConcurrentRunError, RunLock
from ._plan import KnownState, Plan, apply_to_known, build_plan, resume_plan
from ._proto._changeset import ChangeSet
from ._proto._report import ValidationReport
from ._proto._state import ActiveState, RefreshState, SyncState
from ._record import RecordWriteError, _RecordStore
from ._record_view import RecordDamagedError
from ._report import Progress, RunReport
from ._rules import Rules
from ._schedule import RunnerStatus, Schedule
from .adapters._protocols import (
    Delta,
    FullImage,
    RefreshRequired,
    SourceBatch,
)

__all__: list[str] = []

_log = logging.getLogger("kanidm_sync.runner")


def _to_send(plan: Plan) -> int:
    """Entries the plan's requests carry, each once, without keep-alive placeholders."""
    return len({e.id for r in plan.requests for e in r.entries if not is_keep_alive(e)})


class _RunnerCore(_Reporting):
    """Everything both runners share: configuration, status, and the flows."""

    def __init__(
        self,
        *,
        rules: Rules | None,
        state_path: str | os.PathLike[str] | None,
        guards: Guards | None,
        max_request_bytes: int,
        progress: ProgressCallback | None,
        validate: bool,
    ) -> None:
        if max_request_bytes < 4096:
            raise ValueError("max_request_bytes must be at least 4096")
        self._rules = rules
        self._store = _RecordStore(
            None if state_path is None else pathlib.Path(state_path), migrate=True
        )
        # One run at a time per record (``_lock``); no record, nothing local to protect.
        self._lock = None if self._store.path is None else RunLock(self._store.path)
        self._guards = guards if guards is not None else Guards()
        self._max_bytes = max_request_bytes
        self._progress = progress
        self._validate = validate
        self._status = RunnerStatus()
        self._warned_no_record = False
        # Inside run_forever, where a failed run's exception is not seen by any caller:
        # failures are logged at WARNING and diagnoses at ERROR (else at INFO).
        self._in_loop = False
        self._fetch_seconds: float | None = None  # of the run in progress

    @property
    def status(self) -> RunnerStatus:
        """The runner's status: last success, last error, next run (a frozen snapshot)."""
        return self._status

    @property
    def last_report(self) -> RunReport | None:
        """The report of the last run (also of a failed one), or ``None``."""
        return self._status.last_report

    @property
    def guards(self) -> Guards:
        """The guards every run is checked against."""
        return self._guards

    def _emit(self, progress: Progress) -> None:
        if self._progress is not None:
            self._progress(progress)

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Hold the record's lock for one plan or run; a refusal is a failed run."""
        if self._lock is None:
            yield
            return
        try:
            self._lock.acquire()
        except ConcurrentRunError as exc:
            self._fetch_seconds = None  # this run asked no source
            report = self._failure(_now(), time.monotonic(), None, exc, None)
            self._record(report)
            exc.run_report = report
            raise
        try:
            yield
        finally:
            self._store.close()  # the record read on demand: its read ends with the run
            self._lock.release()

    # --- flows ---------------------------------------------------------------------------

    def _guards_for(self, allow_deletes: bool) -> Guards:
        return attrs.evolve(self._guards, allow_deletes=True) if allow_deletes else self._guards

    def _plan_flow(self, guards: Guards) -> Generator[_Effect, object, _Planned]:
        state = cast("SyncState", (yield _GetState()))
        return (yield from self._plan_from(state, guards))

    def _plan_from(self, state: SyncState, guards: Guards) -> Generator[_Effect, object, _Planned]:
        self._emit(Progress(phase="state", done=1, total=1, message=describe_state(state)))
        known = cast("KnownState | None", (yield _LoadKnown()))
        self._warn_without_record()
        chunk = parse_chunk_cookie(state)
        ask = chunk.base if chunk is not None else state
        # Kanidm's cookie carries the count of entries the account holds (_baseline);
        # the source sees only its own cookie.
        source_state, carried = unwrap(ask)
        if chunk is not None:
            _log.info(
                "Kanidm holds chunk %d of %d of an unfinished run; asking the source again",
                chunk.index,
                chunk.total,
            )
        batch = yield from self._fetch(source_state)
        known = self._readable(known, batch, ask)
        try:
            return (yield from self._plan_batch(state, guards, known, batch, chunk, carried))
        except RecordDamagedError as exc:
            # A row the plan needed is damaged: as with a damaged record at load.
            self._discard_record(exc)
            return (yield from self._plan_batch(state, guards, None, batch, chunk, carried))

    def _readable(
        self, known: KnownState | None, batch: FullImage | Delta, ask: SyncState
    ) -> KnownState | None:
        """``known`` with the rows the plan reads read in one go; ``None`` if damaged."""
        if known is None or not known.matches(ask):
            return known  # a record of another cookie is read only if a plan uses it
        try:
            prefetch_batch(known, batch)
        except RecordDamagedError as exc:
            self._discard_record(exc)
            return None
        return known

    def _plan_batch(
        self,
        state: SyncState,
        guards: Guards,
        known: KnownState | None,
        batch: FullImage | Delta,
        chunk: ChunkCookie | None,
        carried: Baseline | None,
    ) -> Generator[_Effect, object, _Planned]:
        ask = chunk.base if chunk is not None else state
        if (
            chunk is None
            and isinstance(batch, Delta)
            and isinstance(state, ActiveState)
            and self._store.path is not None
            and (known is None or not known.matches(state))
        ):
            # A delta over an unknown base leaves the record unknown for good (the plan
            # cannot say what Kanidm holds afterwards), and with it every exchange of
            # values the runner could otherwise release first. A full image, once, makes
            # the record describe Kanidm again (docs/runner.md, "Lost replies and crashes").
            _log.info(
                "the local record does not describe Kanidm's state; asking the source for a "
                "full image"
            )
            batch = yield from self._fetch(RefreshState())
        exact = known if known is not None and known.matches(ask) else None
        baseline = _baseline(exact, known, carried, batch)
        batch = _carry(batch, baseline, exact)
        self._emit(
            Progress(
                phase="fetch",
                done=1,
                total=1,
                entries=len(batch.entries),
                message=describe_batch(batch),
            )
        )
        warnings: list[str] = []
        report = self._check(state, batch)
        warnings.extend(quiet_warnings(report, batch, exact))
        plan: Plan | None = None
        if chunk is not None:
            # The crashed run may have been a retry after a conflict (see _apply_flow):
            # try the plain split, then the retry's.
            for retried in (False, True):
                rebuilt = build_plan(
                    state=state,
                    batch=batch,
                    known=known,
                    max_request_bytes=self._max_bytes,
                    chunk_base=chunk.base,
                    retry=retried,
                )
                plan = resume_plan(rebuilt, state, chunk)
                if plan is not None:
                    break
            if plan is None:
                _log.info("the source moved since the chunked run began; starting it over")
                if isinstance(batch, Delta):
                    batch = _carry((yield from self._fetch(RefreshState())), baseline, None)
                    self._check(state, batch)
                # The record (for the state the crashed run started from) no longer
                # describes Kanidm, so the plan's base is unknown; it stays a hint for a
                # retry after a conflict (values the crashed run released or moved).
        if plan is None:
            plan = build_plan(
                state=state, batch=batch, known=known, max_request_bytes=self._max_bytes
            )
        self._emit(
            Progress(
                phase="plan",
                done=0,
                total=len(plan.requests),
                entries=_to_send(plan),
                message=describe_plan(plan),
            )
        )
        _log.info("plan: %s; base: %s", plan.counts, plan.base_note)
        check_guards(plan, guards, baseline=baseline, started_from=ask)
        return _Planned(plan=plan, known=known, warnings=(*warnings, *plan.notes), batch=batch)

    def _warn_without_record(self) -> None:
        if self._store.path is not None or self._warned_no_record:
            return
        self._warned_no_record = True
        _log.warning(
            "this runner has no state_path: every plan is over an unknown base (a full image "
            "is re-sent whole, deletions cannot be named), and the guards know only the "
            "count Kanidm's cookie carries; pass state_path= to keep a local record"
        )

    def _ask(self, state: SyncState) -> Generator[_Effect, object, SourceBatch]:
        # One call of the source's fetch, timed (RunReport.fetch_seconds).
        t0 = time.monotonic()
        try:
            return self._batch((yield _Fetch(state)))
        finally:
            self._fetch_seconds = (self._fetch_seconds or 0.0) + time.monotonic() - t0

    def _fetch(self, state: SyncState) -> Generator[_Effect, object, FullImage | Delta]:
        batch = yield from self._ask(state)
        if isinstance(batch, RefreshRequired):
            _log.info("the source needs a refresh (%s); asking for a full image", batch.reason)
            batch = yield from self._ask(RefreshState())
            if not isinstance(batch, FullImage):
                raise SourceError("the source answered a Refresh state with something else")
        if isinstance(batch, Delta) and isinstance(state, RefreshState):
            raise SourceError(
                "the source returned a delta for Kanidm in Refresh; a refresh needs a full image"
            )
        if self._rules is not None:
            ruled = self._rules.apply(batch)
            assert isinstance(ruled, FullImage | Delta)  # rules keep the kind of batch
            if isinstance(ruled, Delta) and isinstance(batch, Delta) and ruled.total is None:
                ruled = attrs.evolve(ruled, total=batch.total)
            batch = ruled
        return batch

    def _batch(self, answer: object) -> SourceBatch:
        # A source is user code: a wrong return type would otherwise surface far away
        # as an AttributeError on ``.cookie``.
        if isinstance(answer, FullImage | Delta | RefreshRequired):
            return answer
        raise TypeError(
            f"{type(self._source_object()).__name__}.fetch() returned "
            f"{type(answer).__name__}, not a FullImage, Delta or RefreshRequired "
            "(kanidm_sync.adapters)"
        )

    def _source_object(self) -> object:
        raise NotImplementedError

    def _check(self, state: SyncState, batch: FullImage | Delta) -> ValidationReport:
        if not self._validate:
            return ValidationReport()
        report = ChangeSet(
            from_state=state, to_state=ActiveState(batch.cookie), entries=batch.entries
        ).validate()
        if not report.ok:
            raise ValidationError(report)
        return report

    def _apply_flow(
        self, planned: _Planned, *, recheck: bool
    ) -> Generator[_Effect, object, tuple[int, int, Plan]]:
        plan = planned.plan
        if recheck:
            current = cast("SyncState", (yield _GetState()))
            if current != plan.from_state:
                raise StalePlanError(
                    f"Kanidm's state moved since the plan was made (plan from "
                    f"{plan.from_state!r}, Kanidm now {current!r}); nothing was sent",
                    expected=plan.from_state,
                    actual=current,
                )
        sent = 0
        size = 0
        if plan.is_noop:
            _log.info("nothing to apply: Kanidm already holds the source's state")
        else:
            try:
                sent, size = yield from self._send(planned, plan, retry=self._can_retry(planned))
            except _Retry as retry:
                # Over an unknown base the plan cannot see an entry re-created at the
                # source (its old self's values are unknown), nor values that entries of
                # this account take from each other (a swap, a chain of renames). Kanidm
                # rolled the request back: re-plan from what Kanidm holds now (a chunk
                # cookie when earlier requests of a split committed; every apply replaces
                # whole entries, so re-sending them is harmless) with a first request:
                # the deletions, and the values the local record (of another cookie)
                # shows changing hands, released.
                again = self._replan(retry.state, planned)
                if not (again.delete_first or again.released):
                    # Nothing to send first: the same request would fail the same way.
                    raise self._diagnosed(
                        planned, plan, retry.request, retry.error, retry.sent, retry.size
                    ) from retry.error
                _log.warning(
                    "Kanidm refused a unique value over an unknown base (an entry deleted and "
                    "re-created at the source, or values changing hands between entries of "
                    "this account?); retrying with %s first",
                    " and ".join(
                        w
                        for w, on in (
                            ("the deletions", again.delete_first),
                            (f"{len(again.released)} entries releasing values", again.released),
                        )
                        if on
                    ),
                )
                plan = again
                sent, size = yield from self._send(planned, plan, retry=False)
                sent, size = sent + retry.sent, size + retry.size
        if not (plan.is_noop and plan.base_known):
            # (A no-op over a known base leaves the record exactly right: no rewrite.)
            known_base = planned.known if plan.base_known else None
            try:
                yield _SaveKnown(apply_to_known(known_base, plan))
            except RecordWriteError as exc:
                # Kanidm committed the run; only the local record is behind. The report
                # says both (a full disk is not "nothing was applied").
                raise _Unrecorded(exc, sent, size, plan) from exc
        return sent, size, plan

    def _replan(self, state: SyncState, planned: _Planned) -> Plan:
        """The retry's plan: the record (of another cookie) is a hint of who holds what."""
        assert planned.batch is not None  # _can_retry checked it
        known = planned.known
        while True:
            try:
                return build_plan(
                    state=state,
                    batch=planned.batch,
                    known=known,
                    max_request_bytes=self._max_bytes,
                    retry=True,
                )
            except RecordDamagedError as exc:
                if known is None:
                    raise
                self._discard_record(exc)
                known = None

    @staticmethod
    def _can_retry(planned: _Planned) -> bool:
        # Only over an unknown base (a known one shows every reuse up front), from an
        # Active state (from Refresh the plan already used the record as a hint, and
        # without a record no safe split is known), when the plan sent nothing first and
        # nothing of it was committed yet. Whether the retry has anything to send first
        # is known once it is planned.
        plan = planned.plan
        return (
            planned.batch is not None
            and not plan.base_known
            and not plan.delete_first
            and not plan.released
            and plan.resume_from == 0
            and isinstance(plan.from_state, ActiveState)
        )

    def _send(
        self, planned: _Planned, plan: Plan, *, retry: bool
    ) -> Generator[_Effect, object, tuple[int, int]]:
        sent = 0
        size = 0
        # Each entry once (an entry releasing a value is sent again with its own), and
        # not the placeholders that keep an intermediate request non-empty.
        entries: set[int] = set()
        pending = plan.pending_requests
        sizes = plan.request_sizes[plan.resume_from :]
        for n, (request, body) in enumerate(zip(pending, sizes, strict=True), start=1):
            # _chunk measured every request exactly; a plan from elsewhere is re-checked.
            if body > self._max_bytes:
                raise ChunkingError(
                    f"request {n} measures {body} bytes, over max_request_bytes "
                    f"({self._max_bytes}): make the plan with this runner's limit"
                )
            try:
                yield _Apply(request)
            except (DataError, PermissionDeniedError) as exc:
                if retry and isinstance(exc, UniquenessError):
                    raise _Retry(request, exc, sent, size) from exc
                raise self._diagnosed(planned, plan, request, exc, sent, size) from exc
            sent += 1
            size += body
            entries.update(e.id.int for e in request.entries if not is_keep_alive(e))
            _log.info(
                "applied request %d of %d (%d entries, %d bytes)",
                n + plan.resume_from,
                len(plan.requests),
                len(request.entries),
                body,
            )
            self._emit(
                Progress(
                    phase="apply",
                    done=n + plan.resume_from,
                    total=len(plan.requests),
                    entries=len(entries),
                    message=f"applied request {n + plan.resume_from} of {len(plan.requests)}",
                )
            )
        return sent, size

    def _run_flow(
        self, *, given: Plan | None = None, allow_deletes: bool = False, dry_run: bool = False
    ) -> Generator[_Effect, object, RunReport]:
        # A whole run: plan (or take the ``given`` plan, re-checking Kanidm's state before
        # sending it), apply, record the outcome in the status; returns the report.
        planned: _Planned | None = None
        started, t0 = _now(), time.monotonic()
        self._fetch_seconds = None
        self._begin()
        seen: SyncState | None = None  # Kanidm's state as first read, for a failure's report
        try:
            if given is not None:
                known = cast("KnownState | None", (yield _LoadKnown()))
                planned = _Planned(plan=given, known=known, warnings=given.notes)
            if planned is None:
                seen = cast("SyncState", (yield _GetState()))
                planned = yield from self._plan_from(seen, self._guards_for(allow_deletes))
            if dry_run:
                report = self._report(
                    outcome="planned",
                    started=started,
                    t0=t0,
                    state_before=planned.plan.from_state,
                    state_after=planned.plan.from_state,
                    planned=planned,
                )
            else:
                sent, size, used = yield from self._apply_flow(planned, recheck=given is not None)
                planned = attrs.evolve(planned, plan=used)
                report = self._report(
                    outcome="nothing-to-do" if planned.plan.is_noop else "applied",
                    started=started,
                    t0=t0,
                    state_before=planned.plan.from_state,
                    state_after=planned.plan.to_state,
                    planned=planned,
                    sent=sent,
                    size=size,
                )
        except _Diagnosed as wrapped:
            if planned is not None:
                planned = attrs.evolve(planned, plan=wrapped.plan)
            report = self._failure(started, t0, planned, wrapped.error, wrapped)
            self._record(report)
            wrapped.error.run_report = report
            raise wrapped.error from None
        except _Unrecorded as unrecorded:
            assert planned is not None  # the run got as far as the apply
            planned = attrs.evolve(planned, plan=unrecorded.plan)
            report = self._unrecorded(started, t0, planned, unrecorded)
            self._record(report)
            unrecorded.error.run_report = report
            raise unrecorded.error from unrecorded.error.__cause__
        except (GuardError, ValidationError) as exc:
            if isinstance(exc, GuardError):
                planned = _Planned(plan=exc.plan, known=None, warnings=exc.plan.notes)
            report = self._failure(started, t0, planned, exc, None, outcome="refused", seen=seen)
            self._record(report)
            exc.run_report = report
            raise
        except Exception as exc:
            report = self._failure(started, t0, planned, exc, None, seen=seen)
            self._record(report)
            if isinstance(exc, KanidmSyncError):
                exc.run_report = report
            raise
        self._record(report)
        self._emit(
            Progress(
                phase="done",
                done=report.requests_sent,
                total=report.requests_total,
                entries=report.counts.get("sent", 0),
                message=f"run {report.outcome}",
            )
        )
        _log.info("run %s in %.3fs: %s", report.outcome, report.duration, dict(report.counts))
        return report

    def _schedule_flow(
        self,
        schedule: Schedule,
        stop: Callable[[], bool] | None,
        max_runs: int | None,
        random: Callable[[], float] | None,
    ) -> Iterator[float | None]:
        # The run_forever loop: yields a delay to sleep for, or None for "run once now".
        draw = random if random is not None else _random.Random().random
        runs = 0
        delay = 0.0 if schedule.run_immediately else schedule.next_delay(0, draw)
        while True:
            if delay > 0:
                self._set_next_run(delay)
                yield delay
            if stop is not None and stop():
                return
            yield None
            runs += 1
            if max_runs is not None and runs >= max_runs:
                return
            delay = schedule.next_delay(self._status.consecutive_failures, draw)
