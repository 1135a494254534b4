"""run_forever(..., status_server=...) feeds the server: alive, each run, the next run, the end."""

from __future__ import annotations

import pathlib

import httpx
import pytest

from kanidm_sync import AsyncClient, AsyncRunner, Schedule, SourceError, SyncState
from kanidm_sync.adapters import SourceBatch

from ._service_scenario import SCHEDULE, Service, Source, metric, open_service, person


class Probe(Source):
    """A source that reads /healthz over HTTP while the run is fetching."""

    def __init__(self, svc_holder: list[Service]) -> None:
        super().__init__([person(1), person(2)])
        self.holder = svc_holder
        self.seen: list[tuple[int, str]] = []

    def fetch(self, state: SyncState) -> SourceBatch:
        svc = self.holder[0]
        response = svc.get("/healthz")
        self.seen.append((response.status_code, response.text))
        return super().fetch(state)


def test_run_forever_feeds_the_server(tmp_path: pathlib.Path) -> None:
    """Alive during runs, each report once, next_run_at before each sleep, dead at the end."""
    holder: list[Service] = []
    probe = Probe(holder)
    with open_service(tmp_path, source=probe) as svc:
        holder.append(svc)
        seen_at_sleep: list[object] = []

        def sleep(seconds: float) -> None:
            snapshot = svc.server.snapshot()
            seen_at_sleep.append((snapshot.status.next_run_at, len(snapshot.runs)))
            if len(seen_at_sleep) == 1:
                probe.failure = SourceError("down for a moment")
            else:
                probe.failure = None

        status = svc.runner.run_forever(
            Schedule(interval=60, jitter=0.0), max_runs=3, sleep=sleep, status_server=svc.server
        )
        assert [(200, "ok\n")] * 3 == probe.seen  # alive during every run
        assert 2 == len(seen_at_sleep)
        assert all(next_run is not None for next_run, _ in seen_at_sleep)
        assert [1, 2] == [n for _, n in seen_at_sleep]
        snapshot = svc.server.snapshot()
        assert ["applied", "failed", "nothing-to-do"] == [r.outcome for r in snapshot.runs][::-1]
        assert status is snapshot.status
        assert snapshot.status.next_run_at is None  # the loop ended: none is due
        assert not snapshot.alive
        assert 503 == svc.get("/healthz").status_code
        text = svc.get("/metrics").text
        assert 1 == metric(text, "kanidm_sync_runs_total", outcome="failed")
        assert 3 == metric(text, "kanidm_sync_run_duration_seconds_count")
        assert "every 60 s" == snapshot.schedule


def test_the_server_learns_the_loop_ended_even_by_an_exception(tmp_path: pathlib.Path) -> None:
    """Ctrl-C in the sleep: the exception propagates and /healthz says not alive."""
    with open_service(tmp_path) as svc:

        def sleep(seconds: float) -> None:
            assert 200 == svc.get("/healthz").status_code
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            svc.runner.run_forever(SCHEDULE, sleep=sleep, status_server=svc.server)
        assert 503 == svc.get("/healthz").status_code
        assert 1 == len(svc.server.snapshot().runs)


@pytest.mark.anyio
async def test_async_run_forever_feeds_the_server(tmp_path: pathlib.Path) -> None:
    """The async loop feeds the server the same way; it answers while the loop awaits."""
    with open_service(tmp_path) as svc:
        http = httpx.AsyncClient(transport=svc.fake.transport)
        client = AsyncClient(svc.fake.url, token=svc.account.token, http_client=http)
        runner = AsyncRunner(client, svc.source, state_path=tmp_path / "async.json")
        codes: list[int] = []

        async def sleep(seconds: float) -> None:
            codes.append(svc.get("/readyz").status_code)

        try:
            await runner.run_forever(SCHEDULE, max_runs=2, sleep=sleep, status_server=svc.server)
        finally:
            await http.aclose()
        assert [200] == codes
        snapshot = svc.server.snapshot()
        assert 2 == len(snapshot.runs)
        assert not snapshot.alive
        assert 2 == metric(svc.get("/metrics").text, "kanidm_sync_run_duration_seconds_count")
