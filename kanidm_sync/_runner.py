"""Runner / AsyncRunner: read state, read source, rules, validate, guard, plan, apply, report.

Owns: the run itself, written once as generator flows (:class:`_RunnerCore`) that yield
effects (read Kanidm's state, ask the source, apply a ChangeSet, load or save the local
record) and receive their results; the blocking :class:`Runner` and the async
:class:`AsyncRunner` only perform those effects (httpx ``_auth.py`` pattern, STYLE §3.7).
Also the local record of what was last applied (:class:`_RecordStore`), the scheduling
loops and the status.

Must not: build HTTP requests (the clients do), compute diffs (``_plan``), split requests
(``_chunk``) or decide guards (``_guards``): it wires them.

A run, step by step:

1. ``GET`` Kanidm's state. A chunk cookie means a previous chunked run stopped part-way:
   the source is asked again from the state that run started from (docs/runner.md).
2. Ask the source. ``RefreshRequired`` is answered by asking again for a full image; the
   full image is then applied from Kanidm's current state with ``RetainOnly``, in one
   atomic step (no separate "forget the cookie" apply that could leave Kanidm in Refresh).
3. Apply the rules, validate the result (one pass; errors refuse the run, warnings go to
   the report).
4. Plan against the last known state (``_plan``), split under the size limit (``_chunk``).
5. Guards (``_guards``): a refused run sends nothing.
6. Apply each request. A lost reply is settled by the client (it re-reads the state); a
   rejection is diagnosed (``_diagnose``) and re-raised. One exception: over an unknown
   base a 409 on the first request of a plan that deletes is retried once with the
   deletions sent first (an entry deleted and re-created at the source, docs/runner.md).
7. Record what Kanidm now holds (atomic file write) and return the report.

A crash anywhere converges: before the apply nothing changed; after it, Kanidm holds the
new cookie and the local record the old one, so the next run treats its diff base as
unknown and re-sends the whole image with ``RetainOnly`` (nothing is lost, nothing stale
is kept); between chunks, the next run finishes or restarts the split.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as _dt
import inspect
import json
import logging
import os
import pathlib
import random as _random
import time
import uuid
from collections.abc import Awaitable, Callable, Generator, Iterator
from typing import Final, TypeAlias, TypeVar, cast

import anyio
import attrs

from ._chunk import (
    DEFAULT_MAX_REQUEST_BYTES,
    ChunkingError,
    is_keep_alive,
    parse_chunk_cookie,
)
from ._client import AsyncClient, Client
from ._diagnose import Diagnosis, diagnose
from ._exceptions import (
    APIError,
    APIStatusError,
    DataError,
    PermissionDeniedError,
    SourceError,
    UniquenessError,
    ValidationError,
)
from ._files import write_atomic
from ._guards import GuardError, Guards, check_guards
from ._plan import KnownState, Plan, apply_to_known, build_plan, resume_plan
from ._proto._changeset import ChangeSet
from ._proto._report import ValidationReport
from ._proto._state import ActiveState, RefreshState, RetainIgnore, SyncState
from ._report import Progress, RunOutcome, RunReport
from ._rules import Rules
from ._schedule import RunnerStatus, Schedule
from ._types import JSONObject, JSONValue
from .adapters._protocols import (
    AsyncSourceAdapter,
    Delta,
    FullImage,
    RefreshRequired,
    SourceAdapter,
    SourceBatch,
)

__all__ = ["AsyncRunner", "ProgressCallback", "Runner", "StalePlanError"]

_log = logging.getLogger("kanidm_sync.runner")

ProgressCallback: TypeAlias = Callable[[Progress], None]
"""Called with a :class:`~kanidm_sync.Progress` at each step of a run.

An exception raised by the callback aborts the run at that point (after a committed
request, the next run resumes from what Kanidm holds)."""

RECORD_FORMAT: Final = "kanidm-sync applied record"
RECORD_VERSION: Final = 1


class StalePlanError(APIError):
    """Raised by ``apply(plan)`` when Kanidm's state moved since the plan was made.

    Nothing was sent: the runner re-read the state before applying, and no HTTP error
    happened, so this is not an :class:`~kanidm_sync.APIStatusError` (nor a
    :class:`~kanidm_sync.StateConflictError`, which is Kanidm refusing a request). Make a
    new plan.

    Attributes:
        expected: the plan's ``from_state``.
        actual: Kanidm's state now.
    """

    def __init__(self, message: str, *, expected: SyncState, actual: SyncState) -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual


# --- the local record ---------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


class _RecordStore:
    """The file holding the last known state of one sync account (see ``_plan``).

    Written atomically (temporary file, fsync, rename) with mode 0600: it holds the
    entries' wire JSON, with password and TOTP imports replaced by digests.
    """

    def __init__(self, path: pathlib.Path | None) -> None:
        self.path = path

    def load(self) -> KnownState | None:
        if self.path is None:
            return None
        try:
            data: object = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, RecursionError) as exc:
            # RecursionError: json's scanner on a hostile, deeply nested file.
            _log.warning("%s: unreadable record (%s); diff base unknown", self.path, exc)
            return None
        try:
            return self._decode(data)
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            _log.warning("%s: corrupt record (%s); diff base unknown", self.path, exc)
            return None

    @staticmethod
    def _decode(data: object) -> KnownState:
        if not isinstance(data, dict) or data.get("format") != RECORD_FORMAT:
            raise ValueError("not a kanidm-sync record")
        if data.get("version") != RECORD_VERSION:
            raise ValueError(f"record version {data.get('version')!r}")
        cookie = base64.urlsafe_b64decode(str(data["cookie"]))
        raw = data["entries"]
        if not isinstance(raw, dict):
            raise TypeError("entries is not an object")
        entries: dict[uuid.UUID, JSONObject] = {}
        for key, value in raw.items():
            if not isinstance(value, dict):
                raise TypeError(f"entry {key} is not an object")
            entries[uuid.UUID(key)] = cast("JSONObject", value)
        deleted = data.get("deleted", [])
        if not isinstance(deleted, list):
            raise TypeError("deleted is not a list")
        return KnownState(
            cookie=cookie, entries=entries, deleted=tuple(uuid.UUID(str(d)) for d in deleted)
        )

    def save(self, known: KnownState | None) -> None:
        if self.path is None:
            return
        if known is None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            return
        doc: JSONObject = {
            "format": RECORD_FORMAT,
            "version": RECORD_VERSION,
            "cookie": _b64(known.cookie),
            "count": len(known.entries),
            "deleted": [str(d) for d in known.deleted],
            "entries": {str(k): v for k, v in known.entries.items()},
        }
        write_atomic(self.path, json.dumps(doc, ensure_ascii=False, separators=(",", ":")))


# --- effects the flows yield ----------------------------------------------------------------


@attrs.frozen
class _GetState:
    pass


@attrs.frozen
class _Fetch:
    state: SyncState


@attrs.frozen
class _Apply:
    changeset: ChangeSet


@attrs.frozen
class _LoadKnown:
    pass


@attrs.frozen
class _SaveKnown:
    known: KnownState | None


_Effect: TypeAlias = _GetState | _Fetch | _Apply | _LoadKnown | _SaveKnown
_T = TypeVar("_T")


@attrs.frozen
class _Planned:
    plan: Plan
    known: KnownState | None
    warnings: tuple[str, ...]
    # The source's answer the plan was made from (None for a plan given to apply()):
    # what a delete-first retry re-plans from.
    batch: FullImage | Delta | None = None


class _Retry(Exception):
    """Internal: a request hit a 409 that deleting first may resolve."""

    def __init__(self, state: SyncState, sent: int, size: int) -> None:
        super().__init__("retry with the deletions first")
        self.state = state  # what Kanidm holds: the failed request's from_state
        self.sent = sent
        self.size = size


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


def _error_json(exc: BaseException, diagnosis: Diagnosis | None = None) -> JSONObject:
    out: JSONObject = {"type": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, APIStatusError):
        out["status"] = exc.status_code
        out["variant"] = exc.variant
        out["operation_id"] = exc.operation_id
        detail: JSONValue = exc.detail
        out["detail"] = detail
    if diagnosis is not None:
        out["diagnosis"] = diagnosis.summary
    return out


class _RunnerCore:
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
        self._store = _RecordStore(None if state_path is None else pathlib.Path(state_path))
        self._guards = guards if guards is not None else Guards()
        self._max_bytes = max_request_bytes
        self._progress = progress
        self._validate = validate
        self._status = RunnerStatus()

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

    # --- flows ---------------------------------------------------------------------------

    def _guards_for(self, allow_deletes: bool) -> Guards:
        return attrs.evolve(self._guards, allow_deletes=True) if allow_deletes else self._guards

    def _plan_flow(self, guards: Guards) -> Generator[_Effect, object, _Planned]:
        state = cast("SyncState", (yield _GetState()))
        return (yield from self._plan_from(state, guards))

    def _plan_from(self, state: SyncState, guards: Guards) -> Generator[_Effect, object, _Planned]:
        self._emit(Progress(phase="state", done=1, total=1, message=repr(state)))
        known = cast("KnownState | None", (yield _LoadKnown()))
        # The size of the last image applied, whatever its cookie (for the shrink guard).
        previous = len(known.entries) if known is not None else None
        chunk = parse_chunk_cookie(state)
        ask = chunk.base if chunk is not None else state
        if chunk is not None:
            _log.info(
                "Kanidm holds chunk %d of %d of an unfinished run; asking the source again",
                chunk.index,
                chunk.total,
            )
        batch = yield from self._fetch(ask)
        self._emit(Progress(phase="fetch", done=1, total=1, message=repr(batch)))
        warnings: list[str] = []
        report = self._check(state, batch)
        warnings.extend(str(p) for p in report.warnings)
        plan: Plan | None = None
        if chunk is not None:
            # The crashed run may have been a delete-first retry (see _apply_flow): try
            # the plain split, then the delete-first one.
            for forced in (False, True):
                rebuilt = build_plan(
                    state=state,
                    batch=batch,
                    known=known,
                    max_request_bytes=self._max_bytes,
                    chunk_base=chunk.base,
                    delete_first=forced,
                )
                plan = resume_plan(rebuilt, state, chunk)
                if plan is not None:
                    break
            if plan is None:
                _log.info("the source moved since the chunked run began; starting it over")
                if isinstance(batch, Delta):
                    batch = yield from self._fetch(RefreshState())
                    self._check(state, batch)
                known = None
        if plan is None:
            plan = build_plan(
                state=state, batch=batch, known=known, max_request_bytes=self._max_bytes
            )
        self._emit(Progress(phase="plan", done=1, total=1, message=repr(plan)))
        _log.info("plan: %s; base: %s", plan.counts, plan.base_note)
        check_guards(plan, guards, previous_count=previous)
        return _Planned(plan=plan, known=known, warnings=(*warnings, *plan.notes), batch=batch)

    def _fetch(self, state: SyncState) -> Generator[_Effect, object, FullImage | Delta]:
        batch = self._batch((yield _Fetch(state)))
        if isinstance(batch, RefreshRequired):
            _log.info("the source needs a refresh (%s); asking for a full image", batch.reason)
            batch = self._batch((yield _Fetch(RefreshState())))
            if not isinstance(batch, FullImage):
                raise SourceError("the source answered a Refresh state with something else")
        if isinstance(batch, Delta) and isinstance(state, RefreshState):
            raise SourceError(
                "the source returned a delta for Kanidm in Refresh; a refresh needs a full image"
            )
        if self._rules is not None:
            ruled = self._rules.apply(batch)
            assert isinstance(ruled, FullImage | Delta)  # rules keep the kind of batch
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
                # source (its old self's values are unknown). Kanidm rolled the request
                # back: send the deletions first, then the entries, from what Kanidm holds
                # now (a chunk cookie when earlier requests of a split committed; every
                # apply replaces whole entries, so re-sending them is harmless).
                assert planned.batch is not None  # _can_retry checked it
                plan = build_plan(
                    state=retry.state,
                    batch=planned.batch,
                    known=planned.known,
                    max_request_bytes=self._max_bytes,
                    delete_first=True,
                )
                _log.warning(
                    "Kanidm refused a value this run may delete (deleted and re-created at "
                    "the source?); sending the deletions first and retrying"
                )
                sent, size = yield from self._send(planned, plan, retry=False)
                sent, size = sent + retry.sent, size + retry.size
        if not (plan.is_noop and plan.base_known):
            # (A no-op over a known base leaves the record exactly right: no rewrite.)
            known_base = planned.known if plan.base_known else None
            yield _SaveKnown(apply_to_known(known_base, plan))
        return sent, size, plan

    @staticmethod
    def _can_retry(planned: _Planned) -> bool:
        # Only over an unknown base (a known one shows every reuse up front), from an
        # Active state (from Refresh no safe split is known without a record), when the
        # plan deletes something and nothing of it was committed yet.
        plan = planned.plan
        return (
            planned.batch is not None
            and not plan.base_known
            and not plan.delete_first
            and plan.resume_from == 0
            and isinstance(plan.from_state, ActiveState)
            and not isinstance(plan.retain, RetainIgnore)
        )

    def _send(
        self, planned: _Planned, plan: Plan, *, retry: bool
    ) -> Generator[_Effect, object, tuple[int, int]]:
        sent = 0
        size = 0
        entries = 0
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
                    raise _Retry(request.from_state, sent, size) from exc
                known = planned.known
                base_state = request.from_state
                matching = known if known is not None and known.matches(base_state) else None
                if matching is None and plan.base_known:
                    matching = known
                diagnosis = diagnose(
                    exc,
                    request,
                    known=matching,
                    rules=self._rules,
                    deleting=plan.deleting,
                    delete_first=plan.delete_first,
                    record_path=self._store.path is not None,
                )
                _log.error("%s", diagnosis.to_text())
                raise _Diagnosed(exc, diagnosis, sent, size, plan) from exc
            sent += 1
            size += body
            entries += len(request.entries)
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
                    entries=entries,
                    message=f"request {n + plan.resume_from} of {len(plan.requests)}",
                )
            )
        return sent, size

    def _run_flow(
        self, *, given: Plan | None = None, allow_deletes: bool = False, dry_run: bool = False
    ) -> Generator[_Effect, object, RunReport]:
        # A whole run: plan (or take the ``given`` plan, re-checking Kanidm's state before
        # sending it), apply, record the outcome in the status; returns the report.
        planned: _Planned | None = None
        if given is not None:
            known = cast("KnownState | None", (yield _LoadKnown()))
            planned = _Planned(plan=given, known=known, warnings=given.notes)
        started, t0 = _now(), time.monotonic()
        self._begin()
        seen: SyncState | None = None  # Kanidm's state as first read, for a failure's report
        try:
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
            raise wrapped.error from None
        except (GuardError, ValidationError) as exc:
            if isinstance(exc, GuardError):
                planned = _Planned(plan=exc.plan, known=None, warnings=exc.plan.notes)
            self._record(
                self._failure(started, t0, planned, exc, None, outcome="refused", seen=seen)
            )
            raise
        except Exception as exc:
            self._record(self._failure(started, t0, planned, exc, None, seen=seen))
            raise
        self._record(report)
        self._emit(Progress(phase="done", done=1, total=1, message=report.outcome))
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
            counts["sent"] = sum(
                1 for r in plan.pending_requests[:sent] for e in r.entries if not is_keep_alive(e)
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
        _log.warning("run %s: %s: %s", outcome, type(exc).__name__, exc)
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


class _Diagnosed(Exception):
    """Internal carrier: a rejection, its diagnosis and how far the run got."""

    def __init__(
        self, error: APIStatusError, diagnosis: Diagnosis, sent: int, size: int, plan: Plan
    ) -> None:
        super().__init__(str(error))
        self.error = error
        self.diagnosis = diagnosis
        self.sent = sent
        self.size = size
        self.plan = plan


class Runner(_RunnerCore):
    """Sync a source into Kanidm: the blocking runner.

    Args:
        client: a :class:`~kanidm_sync.Client` holding the sync token.
        source: the source adapter (see :mod:`kanidm_sync.adapters`).
        rules: exclude and remap rules applied to every batch.
        state_path: the file recording what was last applied (the plan's diff base, and
            what lets an unchanged entry stay unsent). One file per sync account. Without
            it every run plans against an unknown base and re-sends every entry.
        guards: deletion and source guards (default: refuse deleting more than 50 entries
            that are also more than 10%, an empty source, a source half its last size).
        max_request_bytes: the largest request body sent (default 30 MiB; Kanidm's limit
            is 32 MiB); larger changes are split into chained requests.
        progress: called with a :class:`~kanidm_sync.Progress` at every step.
        validate: validate every batch locally before planning (default on).

    Example:
        >>> runner = Runner(client, source, state_path="state/hr.json")  # doctest: +SKIP
        >>> report = runner.run_once()  # doctest: +SKIP
    """

    def __init__(
        self,
        client: Client,
        source: SourceAdapter,
        *,
        rules: Rules | None = None,
        state_path: str | os.PathLike[str] | None = None,
        guards: Guards | None = None,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        progress: ProgressCallback | None = None,
        validate: bool = True,
    ) -> None:
        super().__init__(
            rules=rules,
            state_path=state_path,
            guards=guards,
            max_request_bytes=max_request_bytes,
            progress=progress,
            validate=validate,
        )
        self._client = client
        self._source = source

    def _source_object(self) -> object:
        return self._source

    def _perform(self, effect: _Effect) -> object:
        if isinstance(effect, _GetState):
            return self._client.get_state()
        if isinstance(effect, _Fetch):
            return self._source.fetch(effect.state)
        if isinstance(effect, _Apply):
            self._client.apply(effect.changeset)
            return None
        if isinstance(effect, _LoadKnown):
            return self._store.load()
        self._store.save(effect.known)
        return None

    def _drive(self, flow: Generator[_Effect, object, _T]) -> _T:
        value: object = None
        error: BaseException | None = None
        while True:
            try:
                effect = flow.send(value) if error is None else flow.throw(error)
            except StopIteration as stop:
                return cast("_T", stop.value)
            error = None
            try:
                value = self._perform(effect)
            except Exception as exc:  # handed to the flow, which re-raises
                value, error = None, exc

    def plan(self, *, allow_deletes: bool = False) -> Plan:
        """Read Kanidm's state and the source, and plan the run without applying it.

        Args:
            allow_deletes: skip the deletion guard for this plan.

        Returns:
            The plan, bound to Kanidm's current state.

        Raises:
            GuardError: a guard refused the plan (the plan is on the exception).
            ValidationError: the source's entries fail local validation.
            SourceError: the source failed.
            APIError: reading Kanidm's state failed.
        """
        return self._drive(self._plan_flow(self._guards_for(allow_deletes))).plan

    def apply(self, plan: Plan) -> RunReport:
        """Apply a plan made by :meth:`plan`, if Kanidm is still in its ``from_state``.

        Args:
            plan: the plan.

        Returns:
            The run report.

        Raises:
            StalePlanError: Kanidm's state moved since the plan was made; nothing sent.
            DataError: Kanidm refused the data (the report's diagnosis names the entries).
            APIError: talking to Kanidm failed.
        """
        return self._drive(self._run_flow(given=plan))

    def run_once(self, *, allow_deletes: bool = False, dry_run: bool = False) -> RunReport:
        """Run once: state, source, rules, validate, plan, guards, apply, record, report.

        Args:
            allow_deletes: skip the deletion guard for this run.
            dry_run: plan and report, apply nothing (outcome ``"planned"``).

        Returns:
            The report (also kept as :attr:`last_report` and in :attr:`status`).

        Raises:
            GuardError: a guard refused the run; nothing was sent.
            ValidationError: the source's entries fail local validation.
            DataError: Kanidm refused the data; the report's diagnosis names the entries
                and suggests rules.
            SourceError: the source failed.
            APIError: talking to Kanidm failed.
        """
        return self._drive(self._run_flow(allow_deletes=allow_deletes, dry_run=dry_run))

    def run_forever(
        self,
        schedule: Schedule,
        *,
        stop: Callable[[], bool] | None = None,
        max_runs: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
        random: Callable[[], float] | None = None,
    ) -> RunnerStatus:
        """Run on ``schedule`` until ``stop()`` is true or ``max_runs`` runs finished.

        A failed run never ends the loop: it is logged, recorded in :attr:`status`, and
        the next run waits longer (the schedule's backoff).

        Args:
            schedule: interval, jitter and backoff.
            stop: checked before each run; ``True`` ends the loop.
            max_runs: end after this many runs (``None``: forever).
            sleep: the sleep function (injected by tests).
            random: returns floats in ``[0, 1)`` for the jitter (injected by tests).

        Returns:
            The status when the loop ends.
        """
        for delay in self._schedule_flow(schedule, stop, max_runs, random):
            if delay is None:
                with contextlib.suppress(Exception):
                    self.run_once()
            else:
                sleep(delay)
        self._stopped()
        return self._status


class AsyncRunner(_RunnerCore):
    """Sync a source into Kanidm: the async runner (same flow as :class:`Runner`).

    Args:
        client: a :class:`~kanidm_sync.AsyncClient` holding the sync token.
        source: an async source adapter; a blocking :class:`SourceAdapter` also works
            (its ``fetch`` runs in a worker thread, LDAP libraries block).
        rules: exclude and remap rules applied to every batch.
        state_path: the file recording what was last applied (see :class:`Runner`).
        guards: deletion and source guards.
        max_request_bytes: the largest request body sent (default 30 MiB).
        progress: called with a :class:`~kanidm_sync.Progress` at every step.
        validate: validate every batch locally before planning (default on).
    """

    def __init__(
        self,
        client: AsyncClient,
        source: AsyncSourceAdapter | SourceAdapter,
        *,
        rules: Rules | None = None,
        state_path: str | os.PathLike[str] | None = None,
        guards: Guards | None = None,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        progress: ProgressCallback | None = None,
        validate: bool = True,
    ) -> None:
        super().__init__(
            rules=rules,
            state_path=state_path,
            guards=guards,
            max_request_bytes=max_request_bytes,
            progress=progress,
            validate=validate,
        )
        self._client = client
        self._source = source

    def _source_object(self) -> object:
        return self._source

    async def _fetch_source(self, state: SyncState) -> object:
        fetch = self._source.fetch
        if inspect.iscoroutinefunction(fetch):
            return await cast("Callable[[SyncState], Awaitable[SourceBatch]]", fetch)(state)
        return await anyio.to_thread.run_sync(
            cast("Callable[[SyncState], SourceBatch]", fetch), state
        )

    async def _perform(self, effect: _Effect) -> object:
        if isinstance(effect, _GetState):
            return await self._client.get_state()
        if isinstance(effect, _Fetch):
            return await self._fetch_source(effect.state)
        if isinstance(effect, _Apply):
            await self._client.apply(effect.changeset)
            return None
        if isinstance(effect, _LoadKnown):
            return await anyio.to_thread.run_sync(self._store.load)
        await anyio.to_thread.run_sync(self._store.save, effect.known)
        return None

    async def _drive(self, flow: Generator[_Effect, object, _T]) -> _T:
        value: object = None
        error: BaseException | None = None
        while True:
            try:
                effect = flow.send(value) if error is None else flow.throw(error)
            except StopIteration as stop:
                return cast("_T", stop.value)
            error = None
            try:
                value = await self._perform(effect)
            except Exception as exc:
                value, error = None, exc

    async def plan(self, *, allow_deletes: bool = False) -> Plan:
        """Read Kanidm's state and the source, and plan the run (see :meth:`Runner.plan`).

        Args:
            allow_deletes: skip the deletion guard for this plan.

        Returns:
            The plan, bound to Kanidm's current state.

        Raises:
            GuardError: a guard refused the plan.
            ValidationError: the source's entries fail local validation.
            SourceError: the source failed.
            APIError: reading Kanidm's state failed.
        """
        return (await self._drive(self._plan_flow(self._guards_for(allow_deletes)))).plan

    async def apply(self, plan: Plan) -> RunReport:
        """Apply a plan if Kanidm is still in its ``from_state`` (see :meth:`Runner.apply`).

        Args:
            plan: the plan.

        Returns:
            The run report.

        Raises:
            StalePlanError: Kanidm's state moved since the plan was made; nothing sent.
            DataError: Kanidm refused the data (the report's diagnosis names the entries).
            APIError: talking to Kanidm failed.
        """
        return await self._drive(self._run_flow(given=plan))

    async def run_once(self, *, allow_deletes: bool = False, dry_run: bool = False) -> RunReport:
        """Run once (see :meth:`Runner.run_once`).

        Args:
            allow_deletes: skip the deletion guard for this run.
            dry_run: plan and report, apply nothing.

        Returns:
            The report.

        Raises:
            GuardError: a guard refused the run; nothing was sent.
            ValidationError: the source's entries fail local validation.
            DataError: Kanidm refused the data; the report's diagnosis names the entries.
            SourceError: the source failed.
            APIError: talking to Kanidm failed.
        """
        return await self._drive(self._run_flow(allow_deletes=allow_deletes, dry_run=dry_run))

    async def run_forever(
        self,
        schedule: Schedule,
        *,
        stop: Callable[[], bool] | None = None,
        max_runs: int | None = None,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        random: Callable[[], float] | None = None,
    ) -> RunnerStatus:
        """Run on ``schedule`` until ``stop()`` is true (see :meth:`Runner.run_forever`).

        Args:
            schedule: interval, jitter and backoff.
            stop: checked before each run; ``True`` ends the loop.
            max_runs: end after this many runs (``None``: forever).
            sleep: the async sleep function (injected by tests).
            random: returns floats in ``[0, 1)`` for the jitter.

        Returns:
            The status when the loop ends.
        """
        for delay in self._schedule_flow(schedule, stop, max_runs, random):
            if delay is None:
                with contextlib.suppress(Exception):
                    await self.run_once()
            else:
                await sleep(delay)
        self._stopped()
        return self._status
