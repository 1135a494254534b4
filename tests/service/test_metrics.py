"""/metrics: parsed with prometheus_client's parsers; names, types, labels; the tally's rules."""

from __future__ import annotations

import datetime as _dt
import pathlib
import re
import sys

import prometheus_client
import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from kanidm_sync import Guards, RunReport
from kanidm_sync._metrics import DURATION_BUCKETS, MAX_CONFLICT_KINDS, MetricsTally

from ._service_scenario import SCHEDULE, metric, open_service, person

T0 = _dt.datetime(2026, 1, 5, 8, 0, tzinfo=_dt.UTC)

# name -> (type, labels): the documented table (docs/service.md).
EXPECTED = {
    "kanidm_sync_info": ("gauge", {"account", "kanidm_url", "version"}),  # an info metric
    "kanidm_sync_up": ("gauge", set()),
    "kanidm_sync_ready": ("gauge", set()),
    "kanidm_sync_last_success_timestamp_seconds": ("gauge", set()),
    "kanidm_sync_last_failure_timestamp_seconds": ("gauge", set()),
    "kanidm_sync_next_run_timestamp_seconds": ("gauge", set()),
    "kanidm_sync_consecutive_failures": ("gauge", set()),
    "kanidm_sync_config_error": ("gauge", set()),
    "kanidm_sync_kanidm_state": ("gauge", {"state"}),
    "kanidm_sync_runs": ("counter", {"outcome"}),
    "kanidm_sync_entries": ("counter", {"action"}),
    "kanidm_sync_requests_sent": ("counter", set()),
    "kanidm_sync_sent_bytes": ("counter", set()),
    "kanidm_sync_guard_refusals": ("counter", {"guard"}),
    "kanidm_sync_conflicts": ("counter", {"kind"}),
    "kanidm_sync_run_duration_seconds": ("histogram", set()),
    "kanidm_sync_source_fetch_duration_seconds": ("histogram", set()),
}


def report(outcome: str = "applied", **fields: object) -> RunReport:
    """A report as the runner makes them (only what the tally reads)."""
    return RunReport(
        outcome=outcome,  # type: ignore[arg-type]
        started_at=T0,
        finished_at=T0,
        duration=fields.pop("duration", 0.2),  # type: ignore[arg-type]
        **fields,  # type: ignore[arg-type]
    )


def test_the_families_their_types_labels_and_conventions(tmp_path: pathlib.Path) -> None:
    """Every family is documented, typed and named by Prometheus conventions."""
    with open_service(tmp_path) as svc:
        svc.server.loop_started(SCHEDULE)
        svc.run()
        text = svc.get("/metrics").text
        assert svc.get("/metrics").headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert set(EXPECTED) == set(families)
    for name, (kind, labels) in EXPECTED.items():
        family = families[name]
        assert kind == family.type, name
        assert family.documentation, name
        assert re.fullmatch(r"kanidm_sync(_[a-z]+)*", name), name
        seen = {k for s in family.samples for k in s.labels} - {"le"}
        assert labels == seen or (name == "kanidm_sync_conflicts" and not seen), name
        if kind == "counter":
            assert all(s.name == name + "_total" for s in family.samples), name
        if "duration" in name or "timestamp" in name:
            assert name.endswith("_seconds"), name


def test_labels_start_at_zero_and_histograms_use_the_buckets(tmp_path: pathlib.Path) -> None:
    """Every outcome, action and guard exists at 0 before the first run (rates need them)."""
    with open_service(tmp_path) as svc:
        text = svc.get("/metrics").text
    for outcome in ("applied", "nothing-to-do", "planned", "refused", "failed"):
        assert 0 == metric(text, "kanidm_sync_runs_total", outcome=outcome)
    for action in ("create", "update", "delete", "unchanged", "create-or-replace"):
        assert 0 == metric(text, "kanidm_sync_entries_total", action=action)
    for guard in ("deletion", "empty", "shrink", "unknown"):
        assert 0 == metric(text, "kanidm_sync_guard_refusals_total", guard=guard)
    bounds = [
        s.labels["le"]
        for f in text_string_to_metric_families(text)
        if f.name == "kanidm_sync_run_duration_seconds"
        for s in f.samples
        if s.name.endswith("_bucket")
    ]
    assert [*map(str, map(float, DURATION_BUCKETS)), "+Inf"] == bounds


def test_openmetrics_when_the_scraper_asks(tmp_path: pathlib.Path) -> None:
    """Accept: application/openmetrics-text gets OpenMetrics, which its parser reads."""
    with open_service(tmp_path) as svc:
        svc.run()
        response = svc.get("/metrics", Accept="application/openmetrics-text; version=1.0.0")
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    families = {f.name: f for f in openmetrics_families(response.text)}
    runs = {s.labels["outcome"]: s.value for s in families["kanidm_sync_runs"].samples}
    assert 1 == runs["applied"]


def test_entries_count_applied_runs_only_and_each_report_once(tmp_path: pathlib.Path) -> None:
    """A dry run plans, it does not apply: its counts stay out; a report counts once."""
    with open_service(tmp_path) as svc:
        svc.runner.run_once(dry_run=True)
        svc.server.observe(svc.runner.status)
        svc.server.observe(svc.runner.status)
        text = svc.get("/metrics").text
        assert 1 == metric(text, "kanidm_sync_runs_total", outcome="planned")
        assert 0 == metric(text, "kanidm_sync_entries_total", action="create-or-replace")
        svc.run()
        svc.source.entries = [person(1), person(2, displayname="Changed"), person(3)]
        svc.run()
        text = svc.get("/metrics").text
    assert 1 == metric(text, "kanidm_sync_entries_total", action="create")
    assert 1 == metric(text, "kanidm_sync_entries_total", action="update")
    assert 1 == metric(text, "kanidm_sync_entries_total", action="unchanged")
    assert 2 == metric(text, "kanidm_sync_entries_total", action="create-or-replace")
    assert 2 == metric(text, "kanidm_sync_requests_sent_total")


def test_a_deletion_guard_refusal_is_counted_by_guard(tmp_path: pathlib.Path) -> None:
    """The deletion guard refuses: guard="deletion", nothing sent, no entries counted."""
    guards = Guards(max_delete_count=0, max_delete_fraction=0.0)
    with open_service(tmp_path, guards=guards, entries=[person(1), person(2), person(3)]) as svc:
        svc.run()
        svc.source.entries = [person(1), person(2)]
        assert "refused" == svc.run().outcome
        text = svc.get("/metrics").text
    assert 1 == metric(text, "kanidm_sync_guard_refusals_total", guard="deletion")
    assert 0 == metric(text, "kanidm_sync_entries_total", action="delete")
    assert 1 == metric(text, "kanidm_sync_requests_sent_total")


def test_the_tally_names_guards_and_conflicts() -> None:
    """Guard reasons become labels; conflicts are Kanidm's variants, bounded; others are not."""
    tally = MetricsTally()
    tally.add(report("refused", error={"type": "SourceGuardError", "reason": "shrink"}))
    tally.add(report("refused", error={"type": "DeletionGuardError"}))
    tally.add(report("refused", error={"type": "ValidationError"}))  # not a guard
    tally.add(report("failed", error={"type": "SourceError"}))  # not a conflict
    tally.add(report("failed", error={"type": "StateConflictError", "variant": "invalidsyncstate"}))
    assert {"deletion": 1, "empty": 0, "shrink": 1, "unknown": 0} == tally.guard_refusals
    assert {"invalidsyncstate": 1} == tally.conflicts
    for i in range(MAX_CONFLICT_KINDS + 5):
        tally.add(report("failed", error={"type": "StateConflictError", "variant": f"v{i}"}))
    assert MAX_CONFLICT_KINDS + 1 == len(tally.conflicts)
    assert 6 == tally.conflicts["other"]


def test_the_fetch_histogram_reads_fetch_seconds() -> None:
    """fetch_seconds lands in its bucket (le is inclusive); a run without a fetch is skipped."""
    tally = MetricsTally()
    tally.add(report(fetch_seconds=1.0, duration=1.5))
    tally.add(report(fetch_seconds=None, duration=0.01))
    buckets = dict(tally.fetch_duration.cumulative())
    assert 0 == buckets["0.5"]
    assert 1 == buckets["1.0"]
    assert 1 == buckets["+Inf"]
    assert 1.0 == tally.fetch_duration.total
    assert 2 == dict(tally.run_duration.cumulative())["+Inf"]


def test_each_server_has_its_own_registry(tmp_path: pathlib.Path) -> None:
    """Two servers count apart, and the process-wide registry holds none of it."""
    with open_service(tmp_path / "a") as one, open_service(tmp_path / "b") as two:
        one.run()
        assert 1 == metric(one.get("/metrics").text, "kanidm_sync_runs_total", outcome="applied")
        assert 0 == metric(two.get("/metrics").text, "kanidm_sync_runs_total", outcome="applied")
    assert b"kanidm_sync" not in prometheus_client.generate_latest(prometheus_client.REGISTRY)


def test_label_values_from_configuration_are_escaped(tmp_path: pathlib.Path) -> None:
    """An account name with quotes, a backslash and a newline round-trips through the parser."""
    name = 'hr"} evil_metric 1\n\\'
    with open_service(tmp_path, account=name) as svc:
        text = svc.get("/metrics").text
    assert "evil_metric" not in {f.name for f in text_string_to_metric_families(text)}
    info = metrics_info(text)
    assert name == info["account"]


def metrics_info(text: str) -> dict[str, str]:
    """The labels of kanidm_sync_info."""
    for family in text_string_to_metric_families(text):
        if family.name == "kanidm_sync_info":
            return dict(family.samples[0].labels)
    raise AssertionError("no kanidm_sync_info")


def test_without_prometheus_client_metrics_says_how_to_install(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No prometheus-client: 501 with the pip command; every other endpoint still works."""
    for module in [m for m in sys.modules if m.split(".")[0] == "prometheus_client"]:
        monkeypatch.setitem(sys.modules, module, None)
    with open_service(tmp_path) as svc:
        svc.server.loop_started(SCHEDULE)
        svc.run()
        response = svc.get("/metrics")
        assert 501 == response.status_code
        assert "pip install 'kanidm-sync[metrics]'" in response.text
        assert 200 == svc.get("/readyz").status_code
        assert 200 == svc.get("/status.json").status_code


def test_importing_the_package_does_not_import_prometheus_client() -> None:
    """The extra is optional: kanidm_sync and StatusServer import without it."""
    import subprocess

    code = (
        "import sys, kanidm_sync; kanidm_sync.StatusServer(); "
        "print('prometheus_client' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "False" == out.stdout.strip()
