"""End-to-end: AsyncRunner against the in-memory Kanidm, and parity with Runner."""

from __future__ import annotations

import inspect
import pathlib

import pytest

from kanidm_sync import (
    AsyncClient,
    AsyncRunner,
    Progress,
    Runner,
    Schedule,
    SourceError,
    StalePlanError,
    SyncState,
    UniquenessError,
)
from kanidm_sync._chunk import parse_chunk_cookie
from kanidm_sync.adapters import SourceBatch
from kanidm_sync.testing import FakeKanidm, ProvisionedSyncAccount

from .conftest import ListSource, group, owned_names, person, pid, sync_posts


class AsyncListSource:
    """The async twin of ListSource."""

    def __init__(self, inner: ListSource) -> None:
        self.inner = inner

    async def fetch(self, state: SyncState) -> SourceBatch:
        return self.inner.fetch(state)


class Crash(Exception):
    """Stands in for the process dying."""


@pytest.mark.anyio
async def test_async_first_refresh_then_incremental(
    fake: FakeKanidm,
    account: ProvisionedSyncAccount,
    async_client: AsyncClient,
    tmp_path: pathlib.Path,
) -> None:
    """The async runner does a refresh, then sends only the churn."""
    inner = ListSource([person(1), person(2)])
    runner = AsyncRunner(async_client, AsyncListSource(inner), state_path=tmp_path / "a.json")
    assert "applied" == (await runner.run_once()).outcome
    inner.entries = [person(1, displayname="Changed")]
    report = await runner.run_once()
    assert [str(pid(1))] == [e["id"] for e in sync_posts(fake)[-1]["entries"]]
    assert 1 == report.counts["delete"]
    assert {"user1"} == owned_names(fake, account)


@pytest.mark.anyio
async def test_async_runner_accepts_a_blocking_source(
    fake: FakeKanidm, account: ProvisionedSyncAccount, async_client: AsyncClient
) -> None:
    """A blocking source adapter runs in a worker thread."""
    await AsyncRunner(async_client, ListSource([person(1)])).run_once()
    assert {"user1"} == owned_names(fake, account)


@pytest.mark.anyio
async def test_async_chunked_run_resumes_after_a_crash(
    fake: FakeKanidm,
    account: ProvisionedSyncAccount,
    async_client: AsyncClient,
    tmp_path: pathlib.Path,
) -> None:
    """A crash between chunks: the next async run finishes from the committed chunk."""

    def crash(p: Progress) -> None:
        if p.phase == "apply" and p.done == 1:
            raise Crash

    source = ListSource([group(1, range(40))] + [person(i) for i in range(40)])
    path = tmp_path / "a.json"
    with pytest.raises(Crash):
        await AsyncRunner(
            async_client, source, state_path=path, max_request_bytes=5000, progress=crash
        ).run_once()
    chunk = parse_chunk_cookie(await async_client.get_state())
    assert chunk is not None
    assert 1 == chunk.index
    report = await AsyncRunner(
        async_client, source, state_path=path, max_request_bytes=5000
    ).run_once()
    assert chunk.total - 1 == report.requests_sent
    assert 40 == len(fake.store.entry("group1").get("member"))  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_async_conflict_is_diagnosed(
    fake: FakeKanidm,
    account: ProvisionedSyncAccount,
    async_client: AsyncClient,
    tmp_path: pathlib.Path,
) -> None:
    """The async runner attaches the same diagnosis as the blocking one."""
    source = ListSource([person(1)])
    runner = AsyncRunner(async_client, source, state_path=tmp_path / "a.json")
    await runner.run_once()
    fake.store.add_person("dave")
    source.entries.append(person(4, name="dave"))
    with pytest.raises(UniquenessError):
        await runner.run_once()
    assert runner.last_report is not None
    assert runner.last_report.diagnosis is not None
    assert [pid(4)] == [s.id for s in runner.last_report.diagnosis.suspects]


@pytest.mark.anyio
async def test_async_stale_plan_is_refused(
    fake: FakeKanidm, account: ProvisionedSyncAccount, async_client: AsyncClient
) -> None:
    """An async plan applied after the state moved is refused without a POST."""
    runner = AsyncRunner(async_client, ListSource([person(1)]))
    plan = await runner.plan()
    await AsyncRunner(async_client, ListSource([person(2)])).run_once()
    with pytest.raises(StalePlanError):
        await runner.apply(plan)
    assert 1 == len(sync_posts(fake))


@pytest.mark.anyio
async def test_async_run_forever_backs_off(
    fake: FakeKanidm, account: ProvisionedSyncAccount, async_client: AsyncClient
) -> None:
    """The async loop sleeps through the injected sleep and records failures."""

    class Broken(ListSource):
        def fetch(self, state: SyncState) -> SourceBatch:
            raise SourceError("down")

    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    status = await AsyncRunner(async_client, Broken()).run_forever(
        Schedule(interval=5, jitter=0.0), max_runs=3, sleep=sleep, random=lambda: 0.5
    )
    assert [10.0, 20.0] == slept
    assert "failing" == status.state
    assert 3 == status.consecutive_failures


def public_signature(cls: type) -> dict[str, list[str]]:
    out = {}
    for name, member in inspect.getmembers(cls):
        if name.startswith("_") or not callable(member):
            continue
        out[name] = list(inspect.signature(member).parameters)
    return out


def test_runner_and_async_runner_have_the_same_public_methods() -> None:
    """Runner and AsyncRunner expose the same method names and parameters."""
    assert public_signature(Runner) == public_signature(AsyncRunner)
    for name in public_signature(AsyncRunner):
        assert inspect.iscoroutinefunction(getattr(AsyncRunner, name)), name
