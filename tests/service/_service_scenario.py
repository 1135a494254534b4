"""A sync service under test: a Runner over the in-memory Kanidm, fed to a real StatusServer.

:func:`open_service` builds a :class:`~kanidm_sync.testing.FakeKanidm` with a sync account,
a :class:`~kanidm_sync.Runner` over a :class:`Source` the test steers (entries, a failure),
and a started :class:`~kanidm_sync.StatusServer` on loopback with an injected
:class:`Clock`. Requests go over real HTTP (an ``httpx.Client`` that ignores proxy settings);
:func:`metric` reads ``/metrics`` through ``prometheus_client.parser``.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import pathlib
import uuid
from collections.abc import Iterator, Sequence

import attrs
import httpx
from prometheus_client.parser import text_string_to_metric_families

from kanidm_sync import (
    Client,
    Entry,
    Guards,
    KanidmSyncError,
    Mail,
    Person,
    Runner,
    RunReport,
    Schedule,
    StatusServer,
    SyncState,
)
from kanidm_sync.adapters import FullImage, SourceBatch
from kanidm_sync.testing import FakeKanidm, ProvisionedSyncAccount

NS = uuid.UUID("6f1d3c2a-8b4e-4f7a-9d21-5c0e7b3a9f14")
TOKEN = "status-token-0123456789abcdef"
"""A bearer token for the status endpoints (long enough to be accepted)."""


def person(i: int, *, name: str | None = None, displayname: str | None = None) -> Person:
    """Person number ``i`` with a mail address."""
    return Person(
        id=uuid.uuid5(NS, f"person-{i}"),
        external_id=f"uid=user{i},ou=people,dc=example,dc=org",
        name=name or f"user{i}",
        displayname=displayname or f"User {i}",
        mail=[Mail(f"user{i}@example.org")],
    )


class Clock:
    """A clock the test moves (timezone-aware, starting at the real time)."""

    def __init__(self) -> None:
        self.now = _dt.datetime.now(_dt.UTC)

    def __call__(self) -> _dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.now += _dt.timedelta(seconds=seconds)


class Source:
    """A full-image source: its ``entries``, a new cookie per change, or ``failure`` raised."""

    def __init__(self, entries: Sequence[Entry]) -> None:
        self.entries: list[Entry] = list(entries)
        self.failure: Exception | None = None
        self.generation = 0
        self._last: tuple[Entry, ...] | None = None

    def fetch(self, state: SyncState) -> SourceBatch:
        if self.failure is not None:
            raise self.failure
        now = tuple(self.entries)
        if now != self._last:
            self.generation += 1
            self._last = now
        return FullImage(entries=now, cookie=b"hr-export-%d" % self.generation)


@attrs.define
class Service:
    """The pieces of a running service, and how to talk to its endpoints."""

    fake: FakeKanidm
    account: ProvisionedSyncAccount
    source: Source
    runner: Runner
    server: StatusServer
    clock: Clock
    web: httpx.Client

    def run(self) -> RunReport:
        """One run (its error swallowed, as the loop does), then the server observes."""
        with contextlib.suppress(KanidmSyncError):
            self.runner.run_once()
        self.server.observe(self.runner.status)
        report = self.runner.last_report
        assert report is not None
        return report

    def get(
        self, path: str, *, token: str | None = None, method: str = "GET", **headers: str
    ) -> httpx.Response:
        """A request to the server over HTTP (with ``Authorization: Bearer token``)."""
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.web.request(method, self.server.url + path, headers=headers)


@contextlib.contextmanager
def open_service(
    tmp_path: pathlib.Path,
    *,
    entries: Sequence[Entry] = (),
    source: Source | None = None,
    guards: Guards | None = None,
    start: bool = True,
    **server: object,
) -> Iterator[Service]:
    """A started service over a fresh FakeKanidm; ``server`` goes to StatusServer."""
    fake = FakeKanidm()
    account = fake.provision_sync_account("hr")
    mock = httpx.Client(transport=fake.transport)
    client = Client(fake.url, token=account.token, http_client=mock)
    if source is None:
        source = Source(entries or [person(1), person(2)])
    runner = Runner(client, source, state_path=tmp_path / "hr.json", guards=guards)
    clock = Clock()
    options: dict[str, object] = {"account": "hr", "kanidm_url": fake.url, "clock": clock}
    status = StatusServer(**{**options, **server})  # type: ignore[arg-type]
    web = httpx.Client(trust_env=False, timeout=10.0)
    try:
        if start:
            status.start()
        yield Service(fake, account, source, runner, status, clock, web)
    finally:
        status.stop()
        web.close()
        client.close()
        mock.close()


def metrics(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, parsed by prometheus_client: (name, labels) -> value."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def metric(text: str, name: str, **labels: str) -> float:
    """One sample's value (a KeyError names what the exposition has instead)."""
    found = metrics(text)
    key = (name, frozenset(labels.items()))
    if key not in found:
        near = sorted(f"{n}{dict(lbl)}" for n, lbl in found if n == name)
        raise KeyError(f"{name}{labels} not exposed; {name} has: {near}")
    return found[key]


SCHEDULE = Schedule(interval=60, jitter=0.0)
"""The loop's schedule in these tests: a run a minute, readiness over 3 minutes."""
