"""Prometheus metrics of a sync service: counters fed by run reports, gauges from a snapshot.

Owns: :class:`MetricsTally` (the counters and histograms, fed once per run report; plain
data, no dependency), :class:`ServiceMetrics` (a per-server ``CollectorRegistry`` whose
collector renders a tally and a :class:`~kanidm_sync._service_model.ServiceSnapshot` as
Prometheus families) and the metric names (docs/service.md has the table).

Must not: import ``prometheus_client`` at module import (it is the optional extra
``kanidm-sync[metrics]``; only rendering needs it), touch the library's global registry
(two servers in one process, or an application's own metrics, must not collide), or read
a clock (the snapshot carries its time).

Names follow Prometheus conventions: base units (seconds, bytes), ``_total`` counters,
``_seconds`` durations, ``_timestamp_seconds`` Unix times. Every label has a bounded set
of values: outcomes, actions and guards are fixed lists (all exported from the start,
at 0, so a rate over them exists before the first event); conflict kinds are Kanidm's
error variants, capped at :data:`MAX_CONFLICT_KINDS` (then ``"other"``).
"""

from __future__ import annotations

import bisect
import copy
import typing
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, cast

import attrs

from ._plan_model import Action
from ._proto._state import ActiveState, RefreshState
from ._report import RunOutcome, RunReport
from ._service_model import ServiceSnapshot
from ._version import __version__

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import Collector, CollectorRegistry

__all__ = [
    "DURATION_BUCKETS",
    "INSTALL_HINT",
    "MAX_CONFLICT_KINDS",
    "MetricsTally",
    "ServiceMetrics",
]

DURATION_BUCKETS: tuple[float, ...] = (
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
)  # fmt: skip
"""Upper bounds (seconds) of the run and source-fetch duration histograms."""

MAX_CONFLICT_KINDS = 32
"""Distinct ``kind`` labels of ``kanidm_sync_conflicts_total``; further kinds count as other."""

INSTALL_HINT = (
    "the /metrics endpoint needs the prometheus-client library: "
    "pip install 'kanidm-sync[metrics]'\n"
)
"""The body of ``/metrics`` (HTTP 501) when prometheus-client is not installed."""

OUTCOMES: tuple[str, ...] = typing.get_args(RunOutcome)
ACTIONS: tuple[str, ...] = tuple(a.value for a in Action)
GUARDS: tuple[str, ...] = ("deletion", "empty", "shrink", "unknown")
# The runs whose counts were applied: a dry run planned them, a failed run may have sent
# part of them (its committed requests count in requests and bytes, not here).
_APPLIED: frozenset[str] = frozenset({"applied", "nothing-to-do"})


@attrs.define
class _Histogram:
    """Observations per bucket (not cumulative; the last bucket is ``+Inf``) and their sum."""

    bounds: tuple[float, ...] = DURATION_BUCKETS
    counts: list[int] = attrs.field(factory=lambda: [0] * (len(DURATION_BUCKETS) + 1))
    total: float = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        running = 0
        for bound, n in zip((*map(_float_text, self.bounds), "+Inf"), self.counts, strict=True):
            running += n
            out.append((bound, running))
        return out


def _float_text(value: float) -> str:
    # Prometheus writes bucket bounds as floats ("1.0", "0.05"), like its own client.
    return repr(float(value))


def _guard(report: RunReport) -> str | None:
    """Which guard refused the run, or ``None`` (not refused by a guard)."""
    error = report.error or {}
    kind = error.get("type")
    if report.outcome != "refused":
        return None
    if kind == "DeletionGuardError":
        return "deletion"
    if kind == "SourceGuardError":
        reason = error.get("reason")
        return reason if isinstance(reason, str) and reason in GUARDS else "unknown"
    return None


def _conflict(report: RunReport) -> str | None:
    """The kind of conflict that failed the run, or ``None``.

    A conflict is Kanidm refusing the data (the run has a diagnosis: uniqueness, schema,
    ownership, ...) or the state (``invalidsyncstate``: another writer moved the cookie).
    The kind is Kanidm's error variant, else the exception's type.
    """
    if report.outcome != "failed":
        return None
    error = report.error or {}
    if report.diagnosis is None and error.get("type") != "StateConflictError":
        return None
    variant = error.get("variant")
    kind = variant if isinstance(variant, str) and variant else error.get("type")
    return kind if isinstance(kind, str) and kind else "unknown"


@attrs.define
class MetricsTally:
    """The counters and histograms of a service, fed once per run report.

    Not thread-safe by itself: :class:`~kanidm_sync.StatusServer` feeds and copies it
    under its lock.
    """

    runs: dict[str, int] = attrs.field(factory=lambda: dict.fromkeys(OUTCOMES, 0))
    entries: dict[str, int] = attrs.field(factory=lambda: dict.fromkeys(ACTIONS, 0))
    requests_sent: int = 0
    bytes_sent: int = 0
    guard_refusals: dict[str, int] = attrs.field(factory=lambda: dict.fromkeys(GUARDS, 0))
    conflicts: dict[str, int] = attrs.field(factory=dict)
    run_duration: _Histogram = attrs.field(factory=_Histogram)
    fetch_duration: _Histogram = attrs.field(factory=_Histogram)

    def add(self, report: RunReport) -> None:
        """Count one finished run.

        Args:
            report: the run's report (each report once: the caller checks).
        """
        self.runs[report.outcome] = self.runs.get(report.outcome, 0) + 1
        if report.outcome in _APPLIED:
            for action in ACTIONS:
                self.entries[action] += report.counts.get(action, 0)
        self.requests_sent += report.requests_sent
        self.bytes_sent += report.bytes_sent
        guard = _guard(report)
        if guard is not None:
            self.guard_refusals[guard] += 1
        conflict = _conflict(report)
        if conflict is not None:
            if conflict not in self.conflicts and len(self.conflicts) >= MAX_CONFLICT_KINDS:
                conflict = "other"
            self.conflicts[conflict] = self.conflicts.get(conflict, 0) + 1
        self.run_duration.observe(max(0.0, report.duration))
        fetch = getattr(report, "fetch_seconds", None)
        if isinstance(fetch, int | float):
            self.fetch_duration.observe(max(0.0, float(fetch)))

    def copy(self) -> MetricsTally:
        """An independent copy (rendered outside the caller's lock)."""
        return copy.deepcopy(self)


def _timestamp(value: object) -> float:
    # A datetime as Unix seconds; 0 when there is none (Prometheus has no null).
    timestamp = getattr(value, "timestamp", None)
    return float(timestamp()) if callable(timestamp) else 0.0


def families(tally: MetricsTally, snapshot: ServiceSnapshot) -> Iterator[Metric]:
    """The metric families of a tally and a snapshot.

    Args:
        tally: the counters (a copy; not changed).
        snapshot: the service's state now.

    Yields:
        ``prometheus_client`` metric families.

    Raises:
        ImportError: prometheus-client is not installed.
    """
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
        InfoMetricFamily,
    )

    info = InfoMetricFamily(
        "kanidm_sync", "The sync service: its account, Kanidm URL and kanidm-sync version."
    )
    info.add_metric(
        [],
        {"account": snapshot.account, "kanidm_url": snapshot.kanidm_url, "version": __version__},
    )
    yield info

    def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, doc, value=value)

    status = snapshot.status
    yield gauge("kanidm_sync_up", "1 while the sync loop runs (/healthz).", float(snapshot.alive))
    yield gauge(
        "kanidm_sync_ready",
        "1 when the last run succeeded within the ready intervals (/readyz).",
        float(snapshot.ready),
    )
    yield gauge(
        "kanidm_sync_last_success_timestamp_seconds",
        "When a run last succeeded (Unix time; 0: none since the service started).",
        _timestamp(status.last_success_at),
    )
    yield gauge(
        "kanidm_sync_last_failure_timestamp_seconds",
        "When a run last failed or was refused (Unix time; 0: none since the service started).",
        _timestamp(status.last_error_at),
    )
    yield gauge(
        "kanidm_sync_next_run_timestamp_seconds",
        "When the next run is due (Unix time; 0: none is due).",
        _timestamp(status.next_run_at),
    )
    yield gauge(
        "kanidm_sync_consecutive_failures",
        "Runs that failed or were refused since the last success.",
        float(status.consecutive_failures),
    )
    yield gauge(
        "kanidm_sync_config_error",
        "1 while a configuration reload is refused (the previous configuration runs on).",
        float(snapshot.config_error is not None),
    )
    state = GaugeMetricFamily(
        "kanidm_sync_kanidm_state",
        "Kanidm's state of the sync account as last seen: 1 for the current one.",
        labels=["state"],
    )
    seen = snapshot.kanidm_state
    state.add_metric(["refresh"], float(isinstance(seen, RefreshState)))
    state.add_metric(["active"], float(isinstance(seen, ActiveState)))
    yield state

    def counter(name: str, doc: str, label: str, values: dict[str, int]) -> CounterMetricFamily:
        family = CounterMetricFamily(name, doc, labels=[label])
        for key, n in values.items():
            family.add_metric([key], float(n))
        return family

    yield counter("kanidm_sync_runs", "Finished runs, by outcome.", "outcome", tally.runs)
    yield counter(
        "kanidm_sync_entries",
        "Entries of applied runs, by action (a run with nothing to do counts its unchanged).",
        "action",
        tally.entries,
    )
    yield CounterMetricFamily(
        "kanidm_sync_requests_sent",
        "Sync requests Kanidm committed (chunked runs send several).",
        value=float(tally.requests_sent),
    )
    yield CounterMetricFamily(
        "kanidm_sync_sent_bytes",
        "Body bytes of the sync requests Kanidm committed.",
        value=float(tally.bytes_sent),
    )
    yield counter(
        "kanidm_sync_guard_refusals",
        "Runs a guard refused (nothing was sent), by guard.",
        "guard",
        tally.guard_refusals,
    )
    yield counter(
        "kanidm_sync_conflicts",
        "Runs Kanidm refused for their data or state, by Kanidm's error variant.",
        "kind",
        tally.conflicts,
    )
    for name, doc, histogram in (
        ("kanidm_sync_run_duration_seconds", "How long runs took.", tally.run_duration),
        (
            "kanidm_sync_source_fetch_duration_seconds",
            "How long the source took to answer, per run.",
            tally.fetch_duration,
        ),
    ):
        yield HistogramMetricFamily(
            name, doc, buckets=histogram.cumulative(), sum_value=histogram.total
        )


class _Collector:
    def __init__(self, source: Callable[[], tuple[MetricsTally, ServiceSnapshot]]) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        tally, snapshot = self._source()
        yield from families(tally, snapshot)


class ServiceMetrics:
    """A per-server registry rendering the service's metrics, built on first use.

    Args:
        source: returns a copy of the tally and a snapshot, consistent with each other.
    """

    def __init__(self, source: Callable[[], tuple[MetricsTally, ServiceSnapshot]]) -> None:
        self._source = source
        self._registry: CollectorRegistry | None = None

    def render(self, accept: str | None) -> tuple[bytes, str]:
        """The exposition, in the format the scraper accepts.

        Args:
            accept: the request's ``Accept`` header (OpenMetrics when asked, else the
                Prometheus text format).

        Returns:
            ``(body, content type)``.

        Raises:
            ImportError: prometheus-client is not installed.
        """
        from prometheus_client.exposition import choose_encoder
        from prometheus_client.registry import CollectorRegistry

        if self._registry is None:
            registry = CollectorRegistry(auto_describe=False)
            registry.register(cast("Collector", _Collector(self._source)))
            self._registry = registry
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self._registry), content_type
