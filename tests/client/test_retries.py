"""Retry math (pure) and retry behaviour of both clients (no real sleeping)."""

from __future__ import annotations

import email.utils

import httpx
import pytest

from kanidm_sync import APIConnectionError, ChangeSet, DataError, ServerError
from kanidm_sync._proto._state import REFRESH, ActiveState
from kanidm_sync._transport import (
    DEFAULT_TIMEOUT,
    USER_AGENT,
    parse_retry_after,
    retry_delay,
    should_retry_status,
)

from ._helpers import mock_async_client, mock_client


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (408, "", True),
        (429, "", True),
        (502, "bad gateway", True),
        (503, "", True),
        (500, "", True),
        (500, '"databaselockacquisitiontimeout"', True),
        (500, '"invalidsyncstate"', False),
        (500, '{"plugin":{"credimport":"x"}}', False),
        (500, '"notauthorised"', False),
        (400, '"emptyrequest"', False),
        (401, '"notauthenticated"', False),
        (404, "", False),
    ],
)
def test_should_retry_status(status: int, body: str, expected: bool) -> None:
    """Only transient statuses retry; 500 operation errors are final answers."""
    assert expected == should_retry_status(status, body)


def test_retry_delay_is_exponential_capped_and_jittered() -> None:
    """0.5, 1, 2, 4, 8, 8 s without jitter; jitter takes off up to 25 %."""
    assert [0.5, 1.0, 2.0, 4.0, 8.0, 8.0] == [retry_delay(n, None, 0.0) for n in range(6)]
    assert 0.75 == retry_delay(1, None, 1.0)
    assert 3.0 == retry_delay(5, 3.0, 0.9)


def test_parse_retry_after_forms() -> None:
    """Seconds and HTTP dates are read; junk, negatives and waits over 60 s are ignored."""
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 5, usegmt=True)
    assert 2.5 == parse_retry_after("2.5", now)
    assert 5.0 == parse_retry_after(date, now)
    assert None is parse_retry_after(None, now)
    assert None is parse_retry_after("soon", now)
    assert None is parse_retry_after("-1", now)
    assert None is parse_retry_after("3600", now)


def test_defaults_are_explicit() -> None:
    """The default timeout is finite and the User-Agent names the SDK."""
    assert 10.0 == DEFAULT_TIMEOUT.connect
    assert DEFAULT_TIMEOUT.read is not None
    assert USER_AGENT.startswith("kanidm-sync/")


def _flaky(failures: list[httpx.Response], final: httpx.Response) -> tuple[list[str], object]:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        return failures.pop(0) if failures else final

    return seen, handler


def test_get_retried_on_503_honouring_retry_after() -> None:
    """A GET retried after 503s; Retry-After replaces the computed delay."""
    seen, handler = _flaky(
        [httpx.Response(503, headers={"Retry-After": "3"}), httpx.Response(502)],
        httpx.Response(200, json="Refresh"),
    )
    with mock_client(handler) as client:  # type: ignore[arg-type]
        assert REFRESH == client.get_state()
    assert ["GET", "GET", "GET"] == seen
    assert [3.0, 1.0] == client.sleeps  # type: ignore[attr-defined]


def test_get_gives_up_after_max_retries() -> None:
    """After max_retries the last error is raised."""
    seen, handler = _flaky([], httpx.Response(503))
    with mock_client(handler, max_retries=3) as client, pytest.raises(ServerError):  # type: ignore[arg-type]
        client.list_sync_accounts()
    assert 4 == len(seen)
    assert [0.5, 1.0, 2.0] == client.sleeps  # type: ignore[attr-defined]


def test_operation_error_500_is_not_retried() -> None:
    """A 500 carrying a Kanidm variant is a final answer."""
    seen, handler = _flaky([], httpx.Response(500, json={"missingclass": "sync_account"}))
    with mock_client(handler) as client, pytest.raises(DataError):  # type: ignore[arg-type]
        client.get_sync_account("x")
    assert ["GET"] == seen


def test_get_retried_on_connection_errors() -> None:
    """Connection errors on a read are retried."""
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) < 3:
            raise httpx.ReadError("reset", request=request)
        return httpx.Response(200, json=[])

    with mock_client(handler) as client:
        assert [] == client.list_sync_accounts()
    assert 3 == len(calls)


def test_writes_are_not_retried_on_5xx() -> None:
    """An admin write is never resent after a 503 (it may have happened)."""
    seen, handler = _flaky([], httpx.Response(503))
    with mock_client(handler) as client, pytest.raises(ServerError):  # type: ignore[arg-type]
        client.create_sync_account("x")
    assert ["POST"] == seen


def test_destructive_get_is_not_retried() -> None:
    """Finalise is a GET but not idempotent: no retry on 503."""
    seen, handler = _flaky([], httpx.Response(503))
    with mock_client(handler) as client, pytest.raises(ServerError):  # type: ignore[arg-type]
        client.finalise("x")
    assert ["GET"] == seen


def test_apply_resent_when_never_sent() -> None:
    """A connect error means the POST never left: it is resent."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        if len(seen) == 1:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, content=b"null", headers={"content-type": "application/json"})

    with mock_client(handler) as client:
        client.apply(ChangeSet(from_state=REFRESH, to_state=ActiveState(b"1")))
    assert ["POST", "POST"] == seen


def test_apply_connect_error_exhausted_raises_connection_error() -> None:
    """When the POST can never be sent, the connection error surfaces."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with mock_client(handler, max_retries=1) as client, pytest.raises(APIConnectionError):
        client.apply(ChangeSet(from_state=REFRESH, to_state=ActiveState(b"1")))


@pytest.mark.anyio
async def test_async_get_retried_on_503() -> None:
    """The async client retries reads the same way, awaiting its sleep."""
    seen, handler = _flaky([httpx.Response(503)], httpx.Response(200, json="Refresh"))
    async with mock_async_client(handler) as client:  # type: ignore[arg-type]
        assert REFRESH == await client.get_state()
    assert ["GET", "GET"] == seen
    assert [0.5] == client.sleeps  # type: ignore[attr-defined]


def test_apply_waits_longer_than_kanidmd_request_timeout() -> None:
    """POST /scim/v1/Sync reads for 330 s by default (kanidmd answers 408 after 300 s).

    Measured against kanidmd 1.11.1: one apply of 10,000 persons takes about 25 s and the
    time grows faster than the entry count, so the 60 s of other calls is too short.
    An explicit ``timeout=`` applies to every call.
    """
    import httpx as _httpx

    from kanidm_sync import REFRESH, ActiveState, ChangeSet, Client

    seen: dict[str, float] = {}

    def handler(request: _httpx.Request) -> _httpx.Response:
        seen[request.method] = request.extensions["timeout"]["read"]
        body = b'"Refresh"' if request.method == "GET" else b"null"
        return _httpx.Response(200, content=body, headers={"content-type": "application/json"})

    change = ChangeSet(from_state=REFRESH, to_state=ActiveState(b"c"))
    for timeout, expected in (
        (None, {"GET": 60.0, "POST": 330.0}),
        (5.0, {"GET": 5.0, "POST": 5.0}),
    ):
        seen.clear()
        with Client("https://idm.example.com", token="t.t.t", timeout=timeout) as client:
            client._http = _httpx.Client(transport=_httpx.MockTransport(handler))
            client.get_state()
            client.apply(change)
        assert expected == seen
