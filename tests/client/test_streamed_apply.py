"""A large apply is streamed into the request body, with its exact Content-Length (issue 15).

Both clients, over the double's transport and over real loopback HTTP (``serve``, which
reads bodies by ``Content-Length`` and refuses chunked framing, as a strict proxy might):
Kanidm receives exactly ``to_json()``'s bytes, the request was never held whole as bytes,
and the lost-reply recovery still settles the outcome.
"""

from __future__ import annotations

import uuid

import httpx
import pytest

from kanidm_sync import REFRESH, ActiveState, AsyncClient, ChangeSet, Client, Mail, Person
from kanidm_sync._proto._encode_body import STREAM_MIN_ENTRIES
from kanidm_sync.testing import FakeKanidm, serve

from .conftest import abind, bind

SYNC = "/scim/v1/Sync"
NS = uuid.UUID("5b1c4f6e-2d7a-4e8b-9c0d-1e2f3a4b5c6d")


def big_changeset() -> ChangeSet:
    entries = [
        Person(
            id=uuid.uuid5(NS, str(i)),
            external_id=f"uid=user{i},dc=example",
            name=f"user{i}",
            displayname=f"Usér {i}",
            mail=[Mail(f"user{i}@example.org")],
        )
        for i in range(STREAM_MIN_ENTRIES + 10)
    ]
    return ChangeSet(from_state=REFRESH, to_state=ActiveState(b"1"), entries=entries)


class Recording(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Forwards to the double and notes how each POST's body was framed and carried."""

    def __init__(self, inner: httpx.MockTransport) -> None:
        self.inner = inner
        self.seen: list[tuple[str | None, str | None, bool]] = []

    def _note(self, request: httpx.Request) -> None:
        if request.method == "POST":
            self.seen.append(
                (
                    request.headers.get("Content-Length"),
                    request.headers.get("Transfer-Encoding"),
                    isinstance(request.stream, httpx.ByteStream),
                )
            )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self._note(request)
        return self.inner.handle_request(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self._note(request)
        return await self.inner.handle_async_request(request)


def test_sync_client_streams_a_large_apply(fake: FakeKanidm) -> None:
    account = fake.provision_sync_account("feed")
    cs = big_changeset()
    recording = Recording(fake.transport)
    with Client(
        fake.url, token=account.token, http_client=httpx.Client(transport=recording)
    ) as client:
        client.apply(cs)
    body = cs.to_json()
    assert recording.seen == [(str(len(body)), None, False)]  # not one bytes object
    assert fake.history[-1].body == body
    assert fake.cookie("feed") == b"1"


@pytest.mark.anyio
async def test_async_client_streams_a_large_apply(fake: FakeKanidm) -> None:
    account = fake.provision_sync_account("feed")
    cs = big_changeset()
    recording = Recording(fake.transport)
    async with AsyncClient(
        fake.url, token=account.token, http_client=httpx.AsyncClient(transport=recording)
    ) as client:
        await client.apply(cs)
    body = cs.to_json()
    assert recording.seen == [(str(len(body)), None, False)]
    assert fake.history[-1].body == body
    assert fake.cookie("feed") == b"1"


def test_small_apply_is_one_bytes_body(fake: FakeKanidm) -> None:
    account = fake.provision_sync_account("feed")
    cs = ChangeSet(
        from_state=REFRESH,
        to_state=ActiveState(b"1"),
        entries=[Person(id=uuid.uuid5(NS, "a"), external_id="a", name="a", displayname="A")],
    )
    recording = Recording(fake.transport)
    with Client(
        fake.url, token=account.token, http_client=httpx.Client(transport=recording)
    ) as client:
        client.apply(cs)
    assert recording.seen == [(str(len(cs.to_json())), None, True)]


def test_over_real_http_both_clients(fake: FakeKanidm) -> None:
    account = fake.provision_sync_account("feed")
    cs = big_changeset()
    with serve(fake) as url, Client(url, token=account.token, allow_insecure_http=True) as c:
        c.apply(cs)
    assert fake.history[-1].body == cs.to_json()
    assert fake.cookie("feed") == b"1"


@pytest.mark.anyio
async def test_over_real_http_async(fake: FakeKanidm) -> None:
    account = fake.provision_sync_account("feed")
    cs = big_changeset()
    with serve(fake) as url:
        async with AsyncClient(url, token=account.token, allow_insecure_http=True) as client:
            await client.apply(cs)
    assert fake.history[-1].body == cs.to_json()
    assert fake.cookie("feed") == b"1"


def test_lost_reply_of_a_streamed_apply_is_settled(fake: FakeKanidm) -> None:
    account = fake.provision_sync_account("feed")
    fake.drop_next_response(path=SYNC)
    cs = big_changeset()
    with bind(fake, account.token) as client:
        client.apply(cs)  # the state shows to_state: committed, no error
    assert fake.cookie("feed") == b"1"


@pytest.mark.anyio
async def test_async_lost_reply_of_a_streamed_apply_is_settled(fake: FakeKanidm) -> None:
    account = fake.provision_sync_account("feed")
    fake.drop_next_response(path=SYNC)
    async with abind(fake, account.token) as client:
        await client.apply(big_changeset())
    assert fake.cookie("feed") == b"1"
