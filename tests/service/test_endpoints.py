"""Every endpoint over real HTTP, through a service's life: success, failure, refusal, conflict.

A Runner over the in-memory Kanidm runs; after each run the StatusServer observes its
status (what ``run_forever`` does), and each endpoint is read the way a probe, a scraper,
a script and a browser read it.
"""

from __future__ import annotations

import datetime as _dt
import json
import pathlib
import threading
import uuid
from collections.abc import Iterator

import attrs
import pytest

from kanidm_sync import Action, EntryChange, RunnerStatus, RunReport, SourceError
from kanidm_sync._status_page import STATUS_PAGE_CSP

from ._service_scenario import SCHEDULE, Service, metric, open_service, person


@pytest.fixture
def svc(tmp_path: pathlib.Path) -> Iterator[Service]:
    """A started service with two persons in its source."""
    with open_service(tmp_path) as service:
        yield service


def status(svc: Service) -> dict[str, object]:
    """/status.json, parsed (and checked to be JSON served as JSON)."""
    response = svc.get("/status.json")
    assert 200 == response.status_code
    assert "application/json" == response.headers["content-type"]
    parsed = json.loads(response.text)
    assert isinstance(parsed, dict)
    return parsed


def test_a_service_through_success_failure_refusal_conflict_and_recovery(svc: Service) -> None:
    """Each endpoint tells the truth at each step of a service's life."""
    # Before the loop: not alive, not ready, nothing run.
    assert (503, "not alive: the sync loop has not started\n") == (
        svc.get("/healthz").status_code,
        svc.get("/healthz").text,
    )
    assert 503 == svc.get("/readyz").status_code

    svc.server.loop_started(SCHEDULE)
    assert (200, "ok\n") == (svc.get("/healthz").status_code, svc.get("/healthz").text)
    ready = svc.get("/readyz")
    assert (503, "not ready: no run finished yet") == (ready.status_code, ready.text[:30])
    assert "every 60 s" == status(svc)["schedule"]
    assert 60 == status(svc)["interval_seconds"]

    # 1. Success.
    assert "applied" == svc.run().outcome
    ready = svc.get("/readyz")
    assert 200 == ready.status_code
    assert ready.text.startswith("ready: last run succeeded at ")
    text = svc.get("/metrics").text
    assert 1 == metric(text, "kanidm_sync_runs_total", outcome="applied")
    assert 2 == sum(
        metric(text, "kanidm_sync_entries_total", action=a) for a in ("create", "create-or-replace")
    )
    assert 1 == metric(text, "kanidm_sync_requests_sent_total")
    assert metric(text, "kanidm_sync_sent_bytes_total") > 100
    assert 1 == metric(text, "kanidm_sync_kanidm_state", state="active")
    assert 0 == metric(text, "kanidm_sync_kanidm_state", state="refresh")
    assert 1 == metric(text, "kanidm_sync_ready")
    assert 1 == metric(text, "kanidm_sync_up")
    last_success = metric(text, "kanidm_sync_last_success_timestamp_seconds")
    assert last_success == pytest.approx(svc.runner.status.last_success_at.timestamp())  # type: ignore[union-attr]
    assert 0 == metric(text, "kanidm_sync_last_failure_timestamp_seconds")
    assert 1 == metric(text, "kanidm_sync_source_fetch_duration_seconds_count")
    assert 1 == metric(text, "kanidm_sync_run_duration_seconds_count")
    body = status(svc)
    assert body["ready"] is True
    assert body["alive"] is True
    assert {"state": "active"}.items() <= body["kanidm"].items()  # type: ignore[union-attr]

    # 2. The source fails: alive, not ready, the error shown.
    svc.source.failure = SourceError("the HR API is down")
    assert "failed" == svc.run().outcome
    assert 200 == svc.get("/healthz").status_code
    ready = svc.get("/readyz")
    assert 503 == ready.status_code
    assert "the last 1 run(s) failed (last: SourceError: the HR API is down)" in ready.text
    text = svc.get("/metrics").text
    assert 1 == metric(text, "kanidm_sync_runs_total", outcome="failed")
    assert 1 == metric(text, "kanidm_sync_consecutive_failures")
    assert metric(text, "kanidm_sync_last_failure_timestamp_seconds") >= last_success
    assert 0 == metric(text, "kanidm_sync_ready")
    body = status(svc)
    assert {"type": "SourceError", "message": "the HR API is down"} == {
        k: v
        for k, v in body["last_run"]["error"].items()  # type: ignore[index]
        if k in ("type", "message")
    }

    # 3. The source comes back empty: a guard refuses, nothing is sent.
    svc.source.failure = None
    svc.source.entries = []
    posts = len(svc.fake.history)
    assert "refused" == svc.run().outcome
    assert [] == [r for r in svc.fake.history[posts:] if r.method == "POST"]
    text = svc.get("/metrics").text
    assert 1 == metric(text, "kanidm_sync_runs_total", outcome="refused")
    refusals = {
        g: metric(text, "kanidm_sync_guard_refusals_total", guard=g)
        for g in ("deletion", "empty", "shrink", "unknown")
    }
    # "empty" once the report's error carries the guard's reason (else counted as "unknown").
    assert 1 == refusals["empty"]
    assert 0 == refusals["deletion"] + refusals["shrink"]
    assert "SourceGuardError" in svc.get("/readyz").text

    # 4. A native person holds a name the source wants: Kanidm refuses, diagnosed.
    svc.fake.store.add_person("carol")
    svc.source.entries = [person(1), person(2), person(3, name="carol")]
    report = svc.run()
    assert "failed" == report.outcome
    assert report.diagnosis is not None
    variant = report.error["variant"]  # type: ignore[index]
    assert isinstance(variant, str)
    text = svc.get("/metrics").text
    assert 1 == metric(text, "kanidm_sync_conflicts_total", kind=variant)
    assert 3 == metric(text, "kanidm_sync_consecutive_failures")
    body = status(svc)
    assert "carol" in json.dumps(body["last_run"]["diagnosis"])  # type: ignore[index]
    assert "carol" in svc.get("/").text

    # 5. Recovery: the source drops the clash; ready again, the failures reset.
    svc.source.entries = [person(1), person(2), person(3, name="carol-hr")]
    assert "applied" == svc.run().outcome
    assert 200 == svc.get("/readyz").status_code
    text = svc.get("/metrics").text
    assert 2 == metric(text, "kanidm_sync_runs_total", outcome="applied")
    assert 0 == metric(text, "kanidm_sync_consecutive_failures")
    assert 5 == metric(text, "kanidm_sync_run_duration_seconds_count")
    body = status(svc)
    assert ["applied", "failed", "refused", "failed", "applied"] == [
        r["outcome"]  # type: ignore[index]
        for r in body["runs"]  # type: ignore[attr-defined]
    ]
    assert body["last_run"]["outcome"] == "applied"  # type: ignore[index]

    # The loop ends: not alive, not ready, saying since when.
    svc.server.loop_stopped()
    assert 503 == svc.get("/healthz").status_code
    ready = svc.get("/readyz")
    assert 503 == ready.status_code
    assert ready.text.startswith("not ready: the sync loop stopped at ")
    assert 0 == metric(svc.get("/metrics").text, "kanidm_sync_up")


def test_every_response_has_the_safety_headers(svc: Service) -> None:
    """no-store and nosniff everywhere; the page has its CSP, the rest deny everything."""
    for path in ("/", "/healthz", "/readyz", "/status.json", "/metrics", "/missing"):
        response = svc.get(path)
        assert "no-store" == response.headers["cache-control"], path
        assert "nosniff" == response.headers["x-content-type-options"], path
        csp = response.headers["content-security-policy"]
        if path == "/":
            assert STATUS_PAGE_CSP == csp
            assert "text/html; charset=utf-8" == response.headers["content-type"]
        else:
            assert csp.startswith("default-src 'none'"), path
        assert "kanidm-sync" == response.headers["server"]  # no Python version


def test_head_answers_like_get_without_a_body(svc: Service) -> None:
    """HEAD has GET's status, type and length, and no body."""
    svc.server.loop_started(SCHEDULE)
    svc.run()
    for path in ("/", "/healthz", "/readyz", "/status.json", "/missing"):
        get, head = svc.get(path), svc.get(path, method="HEAD")
        assert get.status_code == head.status_code, path
        assert get.headers["content-type"] == head.headers["content-type"], path
        assert b"" == head.content
    assert int(svc.get("/healthz", method="HEAD").headers["content-length"]) == len(b"ok\n")


def test_other_paths_404_and_other_methods_405(svc: Service) -> None:
    """Unknown paths are 404, any method but GET and HEAD is 405 with Allow; bodies small."""
    for path in ("/healthz/", "/status", "/../etc/passwd", "/metrics.json"):
        response = svc.get(path)
        assert (404, "not found\n") == (response.status_code, response.text), path
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "BREW"):
        response = svc.get("/healthz", method=method)
        assert 405 == response.status_code, method
        assert "GET, HEAD" == response.headers["allow"]
        assert len(response.content) < 64
    assert 200 == svc.get("/status.json?pretty=1").status_code  # a query is ignored


def test_a_handler_failure_is_a_500_and_the_server_goes_on(
    svc: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception while answering is a generic 500; the next request is served."""

    def boom(snapshot: object) -> str:
        raise RuntimeError("a secret detail that must not be served")

    monkeypatch.setattr("kanidm_sync._status_server.render_status_page", boom)
    response = svc.get("/")
    assert (500, "internal error\n") == (response.status_code, response.text)
    assert 200 == svc.get("/status.json").status_code


def test_history_keeps_the_last_runs_each_once(tmp_path: pathlib.Path) -> None:
    """``history`` bounds the runs shown; a report observed twice joins once."""
    with open_service(tmp_path, history=2) as svc:
        svc.server.loop_started(SCHEDULE)
        first = svc.run()
        svc.server.observe(svc.runner.status)  # the same report again
        assert [first] == list(svc.server.snapshot().runs)
        svc.source.entries.append(person(3))
        second = svc.run()
        svc.source.entries.append(person(4))
        third = svc.run()
        assert [third, second] == list(svc.server.snapshot().runs)
        text = svc.get("/metrics").text
        assert 3 == metric(text, "kanidm_sync_runs_total", outcome="applied")


def test_status_json_shows_cookie_summaries_and_bounded_changes(svc: Service) -> None:
    """The last run's cookies are summaries; unchanged entries are not listed."""
    svc.server.loop_started(SCHEDULE)
    svc.run()
    svc.source.entries = [person(1), person(2, displayname="Renamed")]
    svc.run()
    last = status(svc)["last_run"]
    assert isinstance(last, dict)
    assert "cookie_before" not in last
    assert "cookie_after" not in last
    assert "active" == last["kanidm_after"]["state"]
    assert ["update"] == [c["action"] for c in last["changes"]]
    assert 0 == last["changes_omitted"]
    assert 1 == last["counts"]["unchanged"]


def test_feeding_while_serving_is_consistent(svc: Service) -> None:
    """Runs observed from one thread while others read every endpoint: no error, no tear."""
    svc.server.loop_started(SCHEDULE)
    failures: list[str] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            for path in ("/status.json", "/metrics", "/readyz", "/"):
                response = svc.get(path)
                if response.status_code not in (200, 503):
                    failures.append(f"{path}: {response.status_code}")
            body = svc.get("/status.json").json()
            if body["status"]["runs"] < len(body["runs"]):
                failures.append(f"torn snapshot: {body['status']['runs']} < {len(body['runs'])}")

    readers = [threading.Thread(target=read) for _ in range(3)]
    for thread in readers:
        thread.start()
    try:
        for i in range(8):
            svc.source.entries = [person(1), person(2, displayname=f"User 2 v{i}")]
            svc.run()
    finally:
        done.set()
        for thread in readers:
            thread.join()
    assert [] == failures
    assert 8 == metric(svc.get("/metrics").text, "kanidm_sync_runs_total", outcome="applied")


def test_ipv6_loopback(tmp_path: pathlib.Path) -> None:
    """::1 is served, and the URL brackets it."""
    with open_service(tmp_path, host="::1") as svc:
        assert svc.server.url.startswith("http://[::1]:")
        assert 503 == svc.get("/healthz").status_code


def test_status_json_bounds_the_last_runs_changes_and_warnings(svc: Service) -> None:
    """A huge last run: 1000 changes and 100 warnings listed, the rest counted."""
    now = _dt.datetime.now(_dt.UTC)
    changes = tuple(
        EntryChange(id=uuid.UUID(int=i), action=(Action.CREATE, Action.UNCHANGED)[i % 2], kind="p")
        for i in range(3000)
    )
    report = RunReport(
        outcome="applied",
        started_at=now,
        finished_at=now,
        duration=1.0,
        changes=changes,
        warnings=tuple(f"warning: entries[{i}] has no mail" for i in range(250)),
    )
    svc.server.observe(attrs.evolve(RunnerStatus(), state="ok", runs=1, last_report=report))
    last = status(svc)["last_run"]
    assert isinstance(last, dict)
    assert 1000 == len(last["changes"])
    assert {"create"} == {c["action"] for c in last["changes"]}
    assert 500 == last["changes_omitted"]
    assert 100 == len(last["warnings"])
    assert 150 == last["warnings_omitted"]
