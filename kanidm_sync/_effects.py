"""The values the runner's flows exchange: effects, carriers, and the errors they raise.

Owns: the effects a flow yields for a runner to perform (:class:`_GetState`,
:class:`_Fetch`, :class:`_Apply`, :class:`_LoadKnown`, :class:`_SaveKnown`), the internal
carriers between the steps of a run (:class:`_Planned`, :class:`_Retry`,
:class:`_Diagnosed`), :class:`StalePlanError`, and the JSON form of a run's error.

Must not: do anything; these are values.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from typing import TypeAlias, TypeVar

import attrs

from ._diagnose import Diagnosis
from ._exceptions import APIError, APIStatusError, UniquenessError
from ._guards import SourceGuardError
from ._plan import KnownState, Plan
from ._proto._changeset import ChangeSet
from ._proto._state import SyncState
from ._report import Progress
from ._types import JSONObject, JSONValue
from .adapters._protocols import Delta, FullImage

__all__ = ["ProgressCallback", "StalePlanError"]

ProgressCallback: TypeAlias = Callable[[Progress], None]
"""Called with a :class:`~kanidm_sync.Progress` at each step of a run.

An exception raised by the callback aborts the run at that point (after a committed
request, the next run resumes from what Kanidm holds)."""


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

    expected: SyncState
    actual: SyncState

    def __init__(self, message: str, *, expected: SyncState, actual: SyncState) -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual


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
    # what a retry after a conflict re-plans from.
    batch: FullImage | Delta | None = None


class _Retry(Exception):
    """Internal: a request hit a 409 that a first request (deletions, releases) may resolve."""

    def __init__(self, request: ChangeSet, error: UniquenessError, sent: int, size: int) -> None:
        super().__init__("retry with a first request")
        self.request = request
        self.state = request.from_state  # what Kanidm holds: the failed request's from_state
        self.error = error
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
    if isinstance(exc, SourceGuardError):
        out["reason"] = exc.reason  # empty, shrink or unknown (the metrics' guard label)
    if diagnosis is not None:
        out["diagnosis"] = diagnosis.summary
    return out


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
