"""The AsyncClient against FakeKanidm: every call, and the fault cases."""

from __future__ import annotations

import uuid

import httpx
import pytest

from kanidm_sync import (
    REFRESH,
    ActiveState,
    AsyncClient,
    AuthenticationError,
    ChangeSet,
    Group,
    NotAppliedError,
    PermissionDeniedError,
    StateConflictError,
    UniquenessError,
)
from kanidm_sync.testing import FakeKanidm, serve

from .conftest import abind

pytestmark = pytest.mark.anyio
SYNC = "/scim/v1/Sync"


async def test_every_admin_call(fake: FakeKanidm, aadmin: AsyncClient) -> None:
    """A1-A11 through the async client."""
    await aadmin.create_sync_account("feed", description="d")
    await aadmin.create_sync_account("other")
    with pytest.raises(UniquenessError):
        await aadmin.create_sync_account("feed")
    assert ["feed", "other"] == sorted(a.name for a in await aadmin.list_sync_accounts())
    info = await aadmin.get_sync_account("feed")
    assert info is not None
    assert "d" == info.description
    assert None is await aadmin.get_sync_account("nosuch")
    token = await aadmin.generate_sync_token("feed", label="l")
    assert 3 == len(token.split("."))
    await aadmin.destroy_sync_token("feed")
    info = await aadmin.get_sync_account("feed")
    assert info is not None
    assert not info.has_token
    await aadmin.set_yield_attributes("feed", {"legalname"})
    assert frozenset({"legalname"}) == await aadmin.get_yield_attributes("feed")
    await aadmin.set_credential_portal("feed", "https://portal.example.org/")
    assert "https://portal.example.org/" == await aadmin.get_credential_portal("feed")
    await aadmin.set_credential_portal("feed", None)
    assert None is await aadmin.get_credential_portal("feed")
    await aadmin.force_refresh("feed")
    await aadmin.finalise("feed")
    await aadmin.terminate("other")
    assert [] == await aadmin.list_sync_accounts()


async def test_state_apply_and_conflict(fake: FakeKanidm, aadmin: AsyncClient) -> None:
    """S1/S2 with a sync token; a stale from_state is a StateConflictError."""
    await aadmin.create_sync_account("feed")
    token = await aadmin.generate_sync_token("feed")
    group = Group(id=uuid.uuid4(), external_id="cn=g", name="g")
    async with abind(fake, token) as sync:
        assert REFRESH == await sync.get_state()
        await sync.apply(ChangeSet(from_state=REFRESH, to_state=ActiveState(b"1"), entries=[group]))
        assert ActiveState(b"1") == await sync.get_state()
        with pytest.raises(StateConflictError):
            await sync.apply(ChangeSet(from_state=ActiveState(b"0"), to_state=ActiveState(b"2")))
        await aadmin.force_refresh("feed")
        assert REFRESH == await sync.get_state()


async def test_lost_reply_after_commit(fake: FakeKanidm, aadmin: AsyncClient) -> None:
    """The reply is dropped after the commit: apply succeeds after re-reading."""
    await aadmin.create_sync_account("feed")
    async with abind(fake, await aadmin.generate_sync_token("feed")) as sync:
        fake.drop_next_response(path=SYNC)
        await sync.apply(ChangeSet(from_state=REFRESH, to_state=ActiveState(b"1")))
    assert b"1" == fake.cookie("feed")
    assert ["POST", "GET"] == [r.method for r in fake.history if r.path == SYNC]


async def test_408_not_applied(fake: FakeKanidm, aadmin: AsyncClient) -> None:
    """A 408 that rolled back yields NotAppliedError carrying Kanidm's state."""
    await aadmin.create_sync_account("feed")
    async with abind(fake, await aadmin.generate_sync_token("feed")) as sync:
        fake.fail_next(status=408, path=SYNC)
        with pytest.raises(NotAppliedError) as info:
            await sync.apply(ChangeSet(from_state=REFRESH, to_state=ActiveState(b"1")))
    assert REFRESH == info.value.state


async def test_retries_timeout_and_auth_errors(fake: FakeKanidm, aadmin: AsyncClient) -> None:
    """5xx on a GET is retried; a destroyed token is 401; read-only writes are 403."""
    await aadmin.create_sync_account("feed")
    token = await aadmin.generate_sync_token("feed")
    async with abind(fake, token) as sync:
        fake.fail_next(2, status=502, path=SYNC)
        assert REFRESH == await sync.get_state()
        await aadmin.destroy_sync_token("feed")
        with pytest.raises(AuthenticationError):
            await sync.get_state()
    async with abind(fake, fake.read_only_admin_token()) as ro:
        with pytest.raises(PermissionDeniedError):
            await ro.set_yield_attributes("feed", ["mail"])


async def test_timeout_after_commit(fake: FakeKanidm, aadmin: AsyncClient) -> None:
    """An async read timeout after the commit is recovered by the re-read."""
    await aadmin.create_sync_account("feed")
    token = await aadmin.generate_sync_token("feed")

    def slow(request: httpx.Request) -> httpx.Response:
        response = fake(request)
        if request.method == "POST" and request.url.path == SYNC:
            raise httpx.ReadTimeout("timed out", request=request)
        return response

    transport = httpx.MockTransport(slow)
    async with AsyncClient(
        fake.url, token=token, http_client=httpx.AsyncClient(transport=transport)
    ) as c:
        await c.apply(ChangeSet(from_state=REFRESH, to_state=ActiveState(b"1")))
    assert b"1" == fake.cookie("feed")


async def test_over_real_loopback_http(fake: FakeKanidm) -> None:
    """The async client over a real HTTP server."""
    with serve(fake) as url:
        async with AsyncClient(url, token=fake.admin_token, allow_insecure_http=True) as client:
            await client.create_sync_account("feed")
            assert ["feed"] == [a.name for a in await client.list_sync_accounts()]
