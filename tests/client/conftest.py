"""Fixtures for the client tests: a FakeKanidm and clients bound to its MockTransport."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from kanidm_sync import AsyncClient, Client
from kanidm_sync.testing import FakeKanidm


class Clock:
    """A settable clock shared by the fake and the auth object (no real waiting)."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    """A controllable clock."""
    return Clock()


@pytest.fixture
def fake(clock: Clock) -> FakeKanidm:
    """A fresh in-memory Kanidm on the controllable clock."""
    return FakeKanidm(clock=clock)


def bind(fake: FakeKanidm, token: str | None = None, **kwargs: object) -> Client:
    """A blocking client on the fake's transport, sleeping nowhere."""
    client = Client(
        fake.url,
        token=token,
        http_client=httpx.Client(transport=fake.transport),
        **kwargs,  # type: ignore[arg-type]
    )
    client._sleep = lambda _delay: None
    return client


def abind(fake: FakeKanidm, token: str | None = None, **kwargs: object) -> AsyncClient:
    """An async client on the fake's transport, sleeping nowhere."""
    client = AsyncClient(
        fake.url,
        token=token,
        http_client=httpx.AsyncClient(transport=fake.transport),
        **kwargs,  # type: ignore[arg-type]
    )

    async def no_sleep(_delay: float) -> None:
        return None

    client._sleep = no_sleep
    return client


@pytest.fixture
def admin(fake: FakeKanidm) -> Iterator[Client]:
    """A blocking client holding the fake's read-write admin API token."""
    with bind(fake, fake.admin_token) as client:
        yield client


@pytest.fixture
async def aadmin(fake: FakeKanidm) -> AsyncIterator[AsyncClient]:
    """An async client holding the fake's read-write admin API token."""
    async with abind(fake, fake.admin_token) as client:
        yield client
