"""Running for years: interval scheduling with jitter and backoff, and the runner's status.

Owns: :class:`Schedule` (pure delay arithmetic: the next delay from the number of
consecutive failures and a random draw), :class:`CronSchedule` (the same for the times of
a cron expression, the reference tools' ``schedule`` key) and :class:`RunnerStatus` (a
frozen snapshot a daemon can expose on a health endpoint).

Must not: sleep, read a clock or draw randomness itself. The runners' ``run_forever``
loops inject ``sleep``, the clock and the random source (a :class:`CronSchedule` is given
its clock), so tests drive years of runs in microseconds.

Why: the reference tools (reference-sync-tools.md §2.5) retry a failed run at the next cron
tick with no backoff, start their status as "Ok" before any run, and report only Ok/Err.
Here a failing run backs off exponentially (a bad record keeps failing until an operator
acts; hammering Kanidm does not help), jitter spreads many sync daemons apart, the status
starts as "never run", and it carries the last error with its detail.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

import attrs
from typing_extensions import override

from ._cron import CronExpression
from ._exceptions import ConfigError
from ._types import JSONObject

if TYPE_CHECKING:
    from ._report import RunReport

__all__ = ["CronSchedule", "RunnerStatus", "Schedule"]


def _positive(inst: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be positive, not {value!r}")


def _jitter(inst: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{attribute.name} must be in [0, 1), not {value!r}")


@attrs.frozen(kw_only=True)
class Schedule:
    """When to run: every ``interval`` seconds, later after failures, never in lockstep.

    After ``n`` consecutive failures the base delay is
    ``min(backoff_max, interval * backoff_factor ** n)``; after a success it is
    ``interval``. Jitter then multiplies it by a factor drawn uniformly from
    ``[1 - jitter, 1 + jitter]``.

    Attributes:
        interval: seconds between successful runs.
        jitter: relative spread of each delay (0.1 = plus or minus 10%).
        backoff_factor: how much longer to wait after each further failure.
        backoff_max: the longest delay in seconds (defaults to ``max(interval, 3600)``).
        run_immediately: run once at start instead of waiting one interval first.
    """

    interval: float = attrs.field(validator=_positive)
    jitter: float = attrs.field(default=0.1, validator=_jitter)
    backoff_factor: float = attrs.field(default=2.0, validator=_positive)
    backoff_max: float | None = None
    run_immediately: bool = True

    def base_delay(self, consecutive_failures: int) -> float:
        """The delay before jitter.

        Args:
            consecutive_failures: failed runs since the last success (0 after a success).

        Returns:
            Seconds.
        """
        cap = self.backoff_max if self.backoff_max is not None else max(self.interval, 3600.0)
        if consecutive_failures <= 0:
            return self.interval
        # Bound the exponent so a years-long failure streak cannot overflow a float.
        exponent = min(consecutive_failures, 64)
        return min(max(cap, self.interval), self.interval * self.backoff_factor**exponent)

    def next_delay(self, consecutive_failures: int, random: Callable[[], float]) -> float:
        """The delay before the next run.

        Args:
            consecutive_failures: failed runs since the last success.
            random: returns a float in ``[0, 1)`` (``random.Random().random``).

        Returns:
            Seconds, never negative.
        """
        base = self.base_delay(consecutive_failures)
        factor = 1.0 + self.jitter * (2.0 * random() - 1.0)
        return max(0.0, base * factor)


def _no_jitter(inst: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value != 0.0:
        raise ValueError("a cron schedule runs at its times: jitter must be 0")


@attrs.frozen(kw_only=True)
class CronSchedule(Schedule):
    """When to run: at the times of a cron expression (UTC), as the reference tools do.

    kanidm-ldap-sync and kanidm-ipa-sync run at each time their ``schedule`` names, in
    UTC. So does this schedule: :meth:`next_delay` runs to the next such time, rounded as
    the tools round it (whole seconds, plus one: a run starts within the second after its
    time, and a clock that runs slightly behind cannot start the same time twice). It
    does not run at start, and it is not jittered.

    After ``n`` consecutive failures it waits for the first time at least
    :meth:`~Schedule.base_delay` away (``interval`` times ``backoff_factor ** n``, at
    most ``backoff_max``), where the tools retry at the very next time.

    Build it with :meth:`from_cron`.

    Attributes:
        cron: the expression.
        clock: returns the current time, timezone-aware (injected: tests drive it).
        interval: the backoff's unit, the gap between the expression's first two times
            after the schedule was made.
    """

    cron: CronExpression
    clock: Callable[[], _dt.datetime] = attrs.field(eq=False, repr=False)
    jitter: float = attrs.field(default=0.0, validator=_no_jitter)
    run_immediately: bool = False

    @classmethod
    def from_cron(
        cls,
        cron: CronExpression,
        *,
        clock: Callable[[], _dt.datetime],
        backoff_factor: float = 2.0,
        backoff_max: float | None = None,
    ) -> CronSchedule:
        """A schedule for ``cron``, its backoff unit measured from ``clock()``.

        Args:
            cron: the expression.
            clock: returns the current time, timezone-aware.
            backoff_factor: how much longer to wait after each further failure.
            backoff_max: the longest wait after failures, in seconds.

        Returns:
            The schedule.

        Raises:
            ConfigError: the expression has no time left after ``clock()``.
        """
        now = clock()
        first = cron.next_after(now)
        if first is None:
            raise ConfigError(f"the schedule {cron.source!r} has no time after {now:%Y-%m-%d}")
        second = cron.next_after(first)
        gap = (second - first) if second is not None else (first - now)
        return cls(
            cron=cron,
            clock=clock,
            interval=max(1.0, gap.total_seconds()),
            backoff_factor=backoff_factor,
            backoff_max=backoff_max,
        )

    def next_fire(self, consecutive_failures: int) -> _dt.datetime:
        """The time of the next run.

        Args:
            consecutive_failures: failed runs since the last success.

        Returns:
            A time the expression names, in UTC.

        Raises:
            ConfigError: the expression has no time left.
        """
        return self._fire(self.clock(), consecutive_failures)

    @override
    def next_delay(self, consecutive_failures: int, random: Callable[[], float]) -> float:
        """Seconds until the next time (see the class documentation).

        Args:
            consecutive_failures: failed runs since the last success.
            random: unused (a cron schedule is not jittered).

        Returns:
            Whole seconds, at least 1.

        Raises:
            ConfigError: the expression has no time left.
        """
        now = self.clock()
        fire = self._fire(now, consecutive_failures)
        return float(math.floor((fire - now).total_seconds()) + 1)

    def _fire(self, now: _dt.datetime, consecutive_failures: int) -> _dt.datetime:
        after = now
        if consecutive_failures > 0:
            # The first time at least the backoff away: search from one second before.
            after = now + _dt.timedelta(seconds=self.base_delay(consecutive_failures) - 1)
        fire = self.cron.next_after(after)
        if fire is None:
            raise ConfigError(
                f"the schedule {self.cron.source!r} has no time after {after:%Y-%m-%d}"
            )
        return fire


@attrs.frozen(kw_only=True, repr=False)
class RunnerStatus:
    """What a long-running runner has been doing, for a health check or a dashboard.

    Attributes:
        state: ``"never-run"`` before the first run, ``"running"`` during one, ``"ok"``
            when the last run succeeded, ``"failing"`` when it failed.
        runs: how many runs finished (successfully or not).
        failures: how many of them failed.
        consecutive_failures: failed runs since the last success.
        last_run_at: when the last run finished.
        last_success_at: when a run last succeeded.
        last_error_at: when a run last failed.
        last_error: ``"<ExceptionType>: <message>"`` of the last failure (no secrets).
        last_error_detail: the failure as JSON: exception type, Kanidm variant, status,
            operation id, and the conflict diagnosis when there is one.
        next_run_at: when the next run is due (set by ``run_forever``).
        last_report: the report of the last run.
    """

    state: Literal["never-run", "running", "ok", "failing"] = "never-run"
    runs: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    last_run_at: _dt.datetime | None = None
    last_success_at: _dt.datetime | None = None
    last_error_at: _dt.datetime | None = None
    last_error: str | None = None
    last_error_detail: JSONObject | None = None
    next_run_at: _dt.datetime | None = None
    last_report: RunReport | None = attrs.field(default=None, repr=False)

    @property
    def healthy(self) -> bool:
        """``True`` when the last finished run succeeded."""
        return self.state == "ok" or (self.state == "running" and self.consecutive_failures == 0)

    def to_dict(self) -> JSONObject:
        """The status as a JSON-ready dict (timestamps in ISO 8601, UTC)."""

        def iso(value: _dt.datetime | None) -> str | None:
            return None if value is None else value.isoformat()

        return {
            "state": self.state,
            "healthy": self.healthy,
            "runs": self.runs,
            "failures": self.failures,
            "consecutive_failures": self.consecutive_failures,
            "last_run_at": iso(self.last_run_at),
            "last_success_at": iso(self.last_success_at),
            "last_error_at": iso(self.last_error_at),
            "last_error": self.last_error,
            "last_error_detail": self.last_error_detail,
            "next_run_at": iso(self.next_run_at),
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        """The status as JSON text (what a health endpoint serves).

        Args:
            indent: passed to :func:`json.dumps`; ``None`` for compact output.

        Returns:
            The JSON text.
        """
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def __repr__(self) -> str:
        last = "never" if self.last_success_at is None else self.last_success_at.isoformat()
        error = f", last_error={self.last_error!r}" if self.last_error else ""
        return (
            f"RunnerStatus(state={self.state!r}, runs={self.runs}, failures={self.failures}, "
            f"last_success={last}{error})"
        )

    def _repr_html_(self) -> str:
        esc = html.escape
        rows = "".join(
            f"<tr><th>{esc(k)}</th><td>{esc('' if v is None else str(v))}</td></tr>"
            for k, v in self.to_dict().items()
            if k != "last_error_detail"
        )
        return f"<table>{rows}</table>"
