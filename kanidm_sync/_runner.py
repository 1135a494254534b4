"""Runner / AsyncRunner: read state, read source, rules, validate, guard, plan, apply, report.

Owns: the two shells that perform the effects the run's flows yield (``_flow._RunnerCore``):
the blocking :class:`Runner` and the async :class:`AsyncRunner` (httpx ``_auth.py``
pattern, STYLE §3.7), with their public methods.

Must not: hold any logic of a run: the flows (``_flow``) decide, the effects
(``_effects``) describe what to perform, the local record is ``_record``.

A run, step by step:

1. ``GET`` Kanidm's state. A chunk cookie means a previous chunked run stopped part-way:
   the source is asked again from the state that run started from (docs/runner.md).
2. Ask the source. ``RefreshRequired`` is answered by asking again for a full image; the
   full image is then applied from Kanidm's current state with ``RetainOnly``, in one
   atomic step (no separate "forget the cookie" apply that could leave Kanidm in Refresh).
   So is a delta while the local record does not describe Kanidm (a crash before the
   record was written): the full image makes the record exact again.
3. Apply the rules, validate the result (one pass; errors refuse the run, warnings go to
   the report).
4. Plan against the last known state (``_plan``), split under the size limit (``_chunk``),
   with a first request that frees the unique values entries take from each other or
   from entries the run deletes (``_release``).
5. Guards (``_guards``): a refused run sends nothing.
6. Apply each request. A lost reply is settled by the client (it re-reads the state); a
   rejection is diagnosed (``_diagnose``) and re-raised. One exception: over an unknown
   base a 409 is retried once with a first request (the deletions, and the values the
   local record of another cookie shows changing hands), when there is one to send.
7. Record what Kanidm now holds (atomic file write) and return the report.

A crash anywhere converges: before the apply nothing changed; after it, Kanidm holds the
new cookie and the local record the old one, so the next run treats its diff base as
unknown and re-sends the whole image with ``RetainOnly`` (nothing is lost, nothing stale
is kept); between chunks, the next run finishes or restarts the split.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import time
from collections.abc import Awaitable, Callable, Generator
from typing import TYPE_CHECKING, cast

import anyio

from ._chunk import DEFAULT_MAX_REQUEST_BYTES
from ._client import AsyncClient, Client
from ._effects import (
    _T,
    ProgressCallback,
    StalePlanError,
    _Apply,
    _Effect,
    _Fetch,
    _GetState,
    _LoadKnown,
)
from ._flow import _RunnerCore
from ._guards import Guards
from ._plan import Plan
from ._proto._state import SyncState
from ._record import _RecordStore as _RecordStore  # the CLI and tests read the record
from ._report import RunReport
from ._rules import Rules
from ._schedule import RunnerStatus, Schedule
from .adapters._protocols import (
    AsyncSourceAdapter,
    SourceAdapter,
    SourceBatch,
)

if TYPE_CHECKING:
    from ._status_server import StatusServer

__all__ = ["AsyncRunner", "ProgressCallback", "Runner", "StalePlanError"]


class Runner(_RunnerCore):
    """Sync a source into Kanidm: the blocking runner.

    Args:
        client: a :class:`~kanidm_sync.Client` holding the sync token.
        source: the source adapter (see :mod:`kanidm_sync.adapters`).
        rules: exclude and remap rules applied to every batch.
        state_path: the file recording what was last applied (the plan's diff base, and
            what lets an unchanged entry stay unsent): an SQLite database (a JSON record
            of an older release there is converted on first use). One file per sync
            account; each run holds ``<state_path>.lock`` (a second runner on it raises
            :class:`~kanidm_sync.ConcurrentRunError`). Without it every run plans against
            an unknown base and re-sends every entry (the guards then use the count
            Kanidm's cookie carries; the runner warns once).
        guards: deletion and source guards (default: refuse deleting more than 50 entries
            that are also more than 10%, an empty source, a source half its last size).
        max_request_bytes: the largest request body sent (default 30 MiB; Kanidm's limit
            is 32 MiB); larger changes are split into chained requests.
        progress: called with a :class:`~kanidm_sync.Progress` at every step.
        validate: validate every batch locally before planning (default on).

    Example:
        >>> runner = Runner(client, source, state_path="state/hr.sqlite")  # doctest: +SKIP
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
        with self._exclusive():
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
        status_server: StatusServer | None = None,
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
            status_server: a :class:`~kanidm_sync.StatusServer` to feed: alive while the
                loop runs (also when it ends by an exception), the status after each run
                and whenever the next run is scheduled.

        Returns:
            The status when the loop ends.
        """
        if status_server is not None:
            status_server.loop_started(schedule)
        self._in_loop = True
        try:
            for delay in self._schedule_flow(schedule, stop, max_runs, random):
                if delay is None:
                    with contextlib.suppress(Exception):
                        self.run_once()
                    if status_server is not None:
                        status_server.observe(self._status)
                else:
                    if status_server is not None:
                        status_server.observe(self._status)
                    sleep(delay)
            self._stopped()
        finally:
            self._in_loop = False
            if status_server is not None:
                status_server.observe(self._status)
                status_server.loop_stopped()
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
        with self._exclusive():
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
        status_server: StatusServer | None = None,
    ) -> RunnerStatus:
        """Run on ``schedule`` until ``stop()`` is true (see :meth:`Runner.run_forever`).

        Args:
            schedule: interval, jitter and backoff.
            stop: checked before each run; ``True`` ends the loop.
            max_runs: end after this many runs (``None``: forever).
            sleep: the async sleep function (injected by tests).
            random: returns floats in ``[0, 1)`` for the jitter.
            status_server: a :class:`~kanidm_sync.StatusServer` to feed (see
                :meth:`Runner.run_forever`); it serves from its own thread, so it answers
                while a run awaits.

        Returns:
            The status when the loop ends.
        """
        if status_server is not None:
            status_server.loop_started(schedule)
        self._in_loop = True
        try:
            for delay in self._schedule_flow(schedule, stop, max_runs, random):
                if delay is None:
                    with contextlib.suppress(Exception):
                        await self.run_once()
                    if status_server is not None:
                        status_server.observe(self._status)
                else:
                    if status_server is not None:
                        status_server.observe(self._status)
                    await sleep(delay)
            self._stopped()
        finally:
            self._in_loop = False
            if status_server is not None:
                status_server.observe(self._status)
                status_server.loop_stopped()
        return self._status
