"""Fixtures for the runner tests: a FakeKanidm, a sync account, clients and sources."""

from __future__ import annotations

import pathlib
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import httpx
import pytest

from kanidm_sync import (
    ActiveState,
    AsyncClient,
    Client,
    Entry,
    Group,
    Mail,
    Person,
    SyncState,
    source_state,
)
from kanidm_sync.adapters import Delta, FullImage, SourceBatch
from kanidm_sync.testing import FakeKanidm, ProvisionedSyncAccount

NS = uuid.UUID("2d0b5b8e-9a55-4a8f-8d7e-1f4b0c7a9e31")


def source_cookie(cookie: bytes | None) -> bytes:
    """The source's cookie inside the one Kanidm holds (without the count the runner carries)."""
    assert cookie is not None, "Kanidm is in Refresh"
    state = source_state(ActiveState(cookie))
    assert isinstance(state, ActiveState)
    return state.cookie


def pid(i: int) -> uuid.UUID:
    """A stable UUID for person number ``i``."""
    return uuid.uuid5(NS, f"person-{i}")


def gid(i: int) -> uuid.UUID:
    """A stable UUID for group number ``i``."""
    return uuid.uuid5(NS, f"group-{i}")


def person(i: int, *, name: str | None = None, displayname: str | None = None) -> Person:
    """Person number ``i`` with a mail address."""
    return Person(
        id=pid(i),
        external_id=f"uid=user{i},ou=people,dc=example,dc=org",
        name=name or f"user{i}",
        displayname=displayname or f"User {i}",
        mail=[Mail(f"user{i}@example.org")],
    )


def group(i: int, members: Sequence[int]) -> Group:
    """Group number ``i`` whose members are persons, by external id."""
    return Group(
        id=gid(i),
        external_id=f"cn=group{i},ou=groups,dc=example,dc=org",
        name=f"group{i}",
        member=[f"uid=user{m},ou=people,dc=example,dc=org" for m in members],
    )


class ListSource:
    """A source that returns its ``entries`` as a full image, with a new cookie each change."""

    def __init__(self, entries: Sequence[Entry] = ()) -> None:
        self.entries: list[Entry] = list(entries)
        self.generation = 0
        self.fetched: list[SyncState] = []
        self._last: tuple[Entry, ...] | None = None

    def fetch(self, state: SyncState) -> SourceBatch:
        self.fetched.append(state)
        now = tuple(self.entries)
        if now != self._last:
            self.generation += 1
            self._last = now
        return FullImage(entries=now, cookie=b"list-%d" % self.generation)


class DeltaSource:
    """A source that returns the next queued batch (deltas), or an empty delta."""

    def __init__(self) -> None:
        self.queue: list[SourceBatch] = []
        self.fetched: list[SyncState] = []

    def fetch(self, state: SyncState) -> SourceBatch:
        self.fetched.append(state)
        if self.queue:
            return self.queue.pop(0)
        return Delta(cookie=b"empty")


@pytest.fixture
def fake() -> FakeKanidm:
    """A fresh in-memory Kanidm."""
    return FakeKanidm()


@pytest.fixture
def account(fake: FakeKanidm) -> ProvisionedSyncAccount:
    """A sync account ``hr`` with its token."""
    return fake.provision_sync_account("hr")


@pytest.fixture
def client(fake: FakeKanidm, account: ProvisionedSyncAccount) -> Iterator[Client]:
    """A blocking client for the sync account, bound to the fake."""
    http = httpx.Client(transport=fake.transport)
    with Client(fake.url, token=account.token, http_client=http) as c:
        yield c
    http.close()


@pytest.fixture
def admin(fake: FakeKanidm) -> Iterator[Client]:
    """A blocking client with the fake's admin token."""
    http = httpx.Client(transport=fake.transport)
    with Client(fake.url, token=fake.admin_token, http_client=http) as c:
        yield c
    http.close()


@pytest.fixture
async def async_client(
    fake: FakeKanidm, account: ProvisionedSyncAccount
) -> AsyncIterator[AsyncClient]:
    """An async client for the sync account, bound to the fake."""
    http = httpx.AsyncClient(transport=fake.transport)
    yield AsyncClient(fake.url, token=account.token, http_client=http)
    await http.aclose()


@pytest.fixture
def state_path(tmp_path: pathlib.Path) -> pathlib.Path:
    """Where the runner keeps its record of the last applied state."""
    return tmp_path / "applied.json"


def sync_posts(fake: FakeKanidm) -> list[dict[str, Any]]:
    """Every ChangeSet the fake received, parsed, in order."""
    out = []
    for r in fake.history:
        if r.method == "POST" and r.path == "/scim/v1/Sync":
            body = r.json()
            assert isinstance(body, dict)
            out.append(body)
    return out


def owned_names(fake: FakeKanidm, account: ProvisionedSyncAccount) -> set[str]:
    """Names of the live entries the sync account owns."""
    return {str(e.first("name")) for e in fake.store.entries(owned_by=account.uuid)}
