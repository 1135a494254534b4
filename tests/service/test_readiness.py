"""/readyz over time: the injected clock moves, the reason follows."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from kanidm_sync import ConfigError, SourceError, StatusServer
from kanidm_sync._cron import CronExpression
from kanidm_sync._schedule import CronSchedule

from ._service_scenario import SCHEDULE, Service, metric, open_service


@pytest.fixture
def svc(tmp_path: pathlib.Path) -> Iterator[Service]:
    """A started service whose loop runs every 60 s; ready for 3 intervals (180 s)."""
    with open_service(tmp_path, ready_intervals=3) as service:
        service.server.loop_started(SCHEDULE)
        yield service


def readyz(svc: Service) -> tuple[int, str]:
    """/readyz's status and body."""
    response = svc.get("/readyz")
    return response.status_code, response.text


def test_a_success_stays_ready_for_the_intervals_then_goes_stale(svc: Service) -> None:
    """Ready right after a success, still at 3 intervals, not after; a new success heals."""
    assert 503 == readyz(svc)[0]
    svc.run()
    succeeded = svc.runner.status.last_success_at
    assert succeeded is not None
    svc.clock.now = succeeded
    assert 200 == readyz(svc)[0]
    svc.clock.advance(180)
    assert 200 == readyz(svc)[0]  # exactly 3 intervals old: still ready
    svc.clock.advance(1)
    code, text = readyz(svc)
    assert 503 == code
    assert "the last success is 181 s old, more than 3 intervals (180 s)" in text
    assert 0 == metric(svc.get("/metrics").text, "kanidm_sync_ready")
    svc.run()  # nothing to do is a success too
    svc.clock.now = svc.runner.status.last_success_at  # type: ignore[assignment]
    assert (200, "ready") == (readyz(svc)[0], readyz(svc)[1][:5])


def test_a_failure_makes_it_unready_at_once(svc: Service) -> None:
    """A failed run after a fresh success: not ready, naming the failure and the success."""
    svc.run()
    svc.source.failure = SourceError("LDAP bind failed")
    svc.run()
    svc.clock.now = svc.runner.status.last_run_at  # type: ignore[assignment]
    code, text = readyz(svc)
    assert 503 == code
    assert "the last 1 run(s) failed (last: SourceError: LDAP bind failed); last success" in text


def test_failures_before_any_success(svc: Service) -> None:
    """Never succeeded: the count and the last error."""
    svc.source.failure = SourceError("LDAP bind failed")
    svc.run()
    svc.run()
    code, text = readyz(svc)
    assert 503 == code
    assert "no run succeeded yet (2 failed; last: SourceError: LDAP bind failed)" in text


def test_ready_intervals_is_configurable(tmp_path: pathlib.Path) -> None:
    """ready_intervals=1: stale after one interval."""
    with open_service(tmp_path, ready_intervals=1) as svc:
        svc.server.loop_started(SCHEDULE)
        svc.run()
        svc.clock.now = svc.runner.status.last_success_at  # type: ignore[assignment]
        svc.clock.advance(61)
        assert 503 == readyz(svc)[0]


def test_a_loop_without_schedule_counts_only_the_last_outcome(tmp_path: pathlib.Path) -> None:
    """No interval: a success is fresh however old."""
    with open_service(tmp_path) as svc:
        svc.server.loop_started(None)
        svc.run()
        svc.clock.advance(10 * 365 * 86400)
        assert 200 == readyz(svc)[0]
        assert "" == svc.server.snapshot().schedule


def test_a_cron_schedule_gives_its_interval(tmp_path: pathlib.Path) -> None:
    """A CronSchedule's gap between times is the unit; its words name the expression."""
    with open_service(tmp_path) as svc:
        cron = CronSchedule.from_cron(CronExpression.parse("0 */5 * * * *"), clock=svc.clock)
        svc.server.loop_started(cron)
        snapshot = svc.server.snapshot()
        assert 300 == snapshot.interval
        assert "cron '0 */5 * * * *' (UTC)" == snapshot.schedule


@pytest.mark.parametrize("value", [0, -1, True, "3", float("nan")])
def test_bad_ready_intervals_are_refused(value: object) -> None:
    """ready_intervals must be a positive number."""
    with pytest.raises(ConfigError, match="ready_intervals"):
        StatusServer(ready_intervals=value)  # type: ignore[arg-type]


def test_set_schedule_changes_readiness_without_restarting_the_loop() -> None:
    """A reload's new schedule reaches /readyz; started_at stays (the loop did not stop)."""
    import datetime as dt

    from kanidm_sync import Schedule, StatusServer

    times = [dt.datetime(2026, 1, 1, tzinfo=dt.UTC)]
    server = StatusServer(clock=lambda: times[-1])
    server.loop_started(Schedule(interval=60))
    started = server.snapshot().started_at
    times.append(times[-1] + dt.timedelta(seconds=30))
    server.set_schedule(Schedule(interval=600))
    snapshot = server.snapshot()
    assert 600 == snapshot.interval
    assert started == snapshot.started_at
    assert snapshot.alive
