"""Small helpers shared by the client tests (MockTransport handlers, clients on them)."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from kanidm_sync import AsyncClient, Client

BASE = "https://kanidm.test"
TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJ0b2tlbl9pZCI6IngiLCJwdXJwb3NlIjoic3luY2hyb25pc2UifQ.c2lnbmF0dXJl"

Handler = Callable[[httpx.Request], httpx.Response]


def mock_client(handler: Handler, **kwargs: object) -> Client:
    """A blocking Client whose transport is ``handler``, with recorded (not real) sleeps."""
    client = Client(
        BASE,
        token=kwargs.pop("token", TOKEN),  # type: ignore[arg-type]
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
        **kwargs,  # type: ignore[arg-type]
    )
    client.sleeps = []  # type: ignore[attr-defined]
    client._sleep = client.sleeps.append  # type: ignore[attr-defined]
    client._random = lambda: 0.0
    return client


def mock_async_client(handler: Handler, **kwargs: object) -> AsyncClient:
    """An AsyncClient whose transport is ``handler``, with recorded (not real) sleeps."""
    client = AsyncClient(
        BASE,
        token=kwargs.pop("token", TOKEN),  # type: ignore[arg-type]
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        **kwargs,  # type: ignore[arg-type]
    )
    sleeps: list[float] = []

    async def record(delay: float) -> None:
        sleeps.append(delay)

    client.sleeps = sleeps  # type: ignore[attr-defined]
    client._sleep = record
    client._random = lambda: 0.0
    return client
