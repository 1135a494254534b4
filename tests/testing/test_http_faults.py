"""Fault injection, latency and history of FakeKanidm, with blocking and async clients."""

from __future__ import annotations

import time

import httpx
import pytest

from kanidm_sync.testing import FakeKanidm, ProvisionedSyncAccount

BODY = (
    b'{"from_state":"Refresh","to_state":{"Active":{"cookie":"AQIDBA"}},'
    b'"entries":[],"retain":"Ignore"}'
)


@pytest.fixture
def fake() -> FakeKanidm:
    return FakeKanidm()


@pytest.fixture
def account(fake: FakeKanidm) -> ProvisionedSyncAccount:
    return fake.provision_sync_account("ipasync")


def sync_client(fake: FakeKanidm, account: ProvisionedSyncAccount) -> httpx.Client:
    headers = {"authorization": f"Bearer {account.token}", "content-type": "application/json"}
    return httpx.Client(transport=fake.transport, base_url=fake.url, headers=headers)


def test_fail_next_answers_without_processing(
    fake: FakeKanidm, account: ProvisionedSyncAccount
) -> None:
    """fail_next(2) fails two requests with the given status and body, then recovers."""
    http = sync_client(fake, account)
    fake.fail_next(2, status=503, body=b'"databaselockacquisitiontimeout"')
    for _ in range(2):
        response = http.post("/scim/v1/Sync", content=BODY)
        assert 503 == response.status_code
        assert '"databaselockacquisitiontimeout"' == response.text
    assert fake.cookie("ipasync") is None
    assert 200 == http.post("/scim/v1/Sync", content=BODY).status_code
    assert b"\x01\x02\x03\x04" == fake.cookie("ipasync")
    assert [True, True, False] == [r.injected for r in fake.history]


def test_fail_next_can_target_one_path(fake: FakeKanidm, account: ProvisionedSyncAccount) -> None:
    """With path=, other routes are served normally and the fault waits for its path."""
    http = sync_client(fake, account)
    fake.fail_next(status=500, path="/scim/v1/Sync")
    assert (
        200
        == http.get(
            "/v1/sync_account", headers={"authorization": f"Bearer {fake.admin_token}"}
        ).status_code
    )
    assert 500 == http.get("/scim/v1/Sync").status_code
    assert 200 == http.get("/scim/v1/Sync").status_code


def test_drop_next_response_commits_then_raises(
    fake: FakeKanidm, account: ProvisionedSyncAccount
) -> None:
    """A dropped reply raises ReadError in the client although the apply committed."""
    http = sync_client(fake, account)
    fake.drop_next_response()
    with pytest.raises(httpx.ReadError):
        http.post("/scim/v1/Sync", content=BODY)
    assert b"\x01\x02\x03\x04" == fake.cookie("ipasync")
    last = fake.history[-1]
    assert (200, True, True) == (last.status, last.committed, last.dropped)
    assert {"Active": {"cookie": "AQIDBA"}} == http.get("/scim/v1/Sync").json()


def test_drop_only_matches_its_path(fake: FakeKanidm, account: ProvisionedSyncAccount) -> None:
    """The default drop targets POST/GET /scim/v1/Sync only."""
    http = sync_client(fake, account)
    fake.drop_next_response()
    admin = {"authorization": f"Bearer {fake.admin_token}"}
    assert 200 == http.get("/v1/sync_account", headers=admin).status_code
    with pytest.raises(httpx.ReadError):
        http.get("/scim/v1/Sync")


def test_history_records_s2_bodies_and_outcomes(
    fake: FakeKanidm, account: ProvisionedSyncAccount
) -> None:
    """History keeps method, path, status and, for S2, the raw body and commit flag."""
    http = sync_client(fake, account)
    http.get("/scim/v1/Sync")
    http.post("/scim/v1/Sync", content=BODY)
    http.post("/scim/v1/Sync", content=BODY)  # from_state Refresh is always accepted
    bad = BODY.replace(b'"Refresh"', b'{"Active":{"cookie":"AAAA"}}')
    http.post("/scim/v1/Sync", content=bad)
    summary = [(r.method, r.path, r.status, r.committed) for r in fake.history]
    assert [
        ("GET", "/scim/v1/Sync", 200, False),
        ("POST", "/scim/v1/Sync", 200, True),
        ("POST", "/scim/v1/Sync", 200, True),
        ("POST", "/scim/v1/Sync", 500, False),
    ] == summary
    assert fake.history[0].body is None
    assert BODY == fake.history[1].body
    assert "Refresh" == fake.history[1].json()["from_state"]  # type: ignore[index,call-overload]
    assert "AAAA" not in repr(fake.history[3])


def test_latency_is_added_to_blocking_requests(
    fake: FakeKanidm, account: ProvisionedSyncAccount
) -> None:
    """The latency attribute sleeps before each request under a blocking client."""
    http = sync_client(fake, account)
    fake.latency = 0.05
    start = time.perf_counter()
    http.get("/scim/v1/Sync")
    assert time.perf_counter() - start >= 0.05


@pytest.mark.anyio
async def test_async_client_with_latency_and_drop(
    fake: FakeKanidm, account: ProvisionedSyncAccount
) -> None:
    """The same transport serves an AsyncClient; latency is awaited, drops raise ReadError."""
    fake.latency = 0.02
    headers = {"authorization": f"Bearer {account.token}", "content-type": "application/json"}
    async with httpx.AsyncClient(
        transport=fake.transport, base_url=fake.url, headers=headers
    ) as http:
        start = time.perf_counter()
        assert '"Refresh"' == (await http.get("/scim/v1/Sync")).text
        assert time.perf_counter() - start >= 0.02
        fake.drop_next_response()
        with pytest.raises(httpx.ReadError):
            await http.post("/scim/v1/Sync", content=BODY)
    assert b"\x01\x02\x03\x04" == fake.cookie("ipasync")


def test_plain_mock_transport_over_the_callable(
    fake: FakeKanidm, account: ProvisionedSyncAccount
) -> None:
    """FakeKanidm itself is a MockTransport handler."""
    http = httpx.Client(transport=httpx.MockTransport(fake), base_url=fake.url)
    response = http.get("/scim/v1/Sync", headers={"authorization": f"Bearer {account.token}"})
    assert '"Refresh"' == response.text


def test_fault_arguments_are_checked(fake: FakeKanidm) -> None:
    """Fault counts must be positive."""
    with pytest.raises(ValueError, match="count"):
        fake.fail_next(0)
    with pytest.raises(ValueError, match="count"):
        fake.drop_next_response(0)


def test_cookie_of_unknown_account_raises(fake: FakeKanidm) -> None:
    """cookie() names the missing account."""
    with pytest.raises(KeyError, match="nobody"):
        fake.cookie("nobody")
