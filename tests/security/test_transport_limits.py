"""A hostile or broken server cannot hold a request past its deadline or fill the memory.

Reported: a reply dripping one byte per 20 s made one GET take 161 s with a 60 s timeout
(httpx's timeouts are per socket read), and a 500 MB body took 2.2 GB. Here a real local
socket server drips or floods, with small timeouts so that the tests stay fast; and bodies
nested too deeply for ``json`` are a DecodeError, never a RecursionError.
"""

from __future__ import annotations

import gzip
import socket
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from kanidm_sync import (
    REFRESH,
    ActiveState,
    APITimeoutError,
    AsyncClient,
    ChangeSet,
    Client,
    DecodeError,
    ProtocolError,
    ServerError,
)
from kanidm_sync._deadline import WORKER_NAME
from kanidm_sync._exceptions import ApplyOutcomeUnknownError

TIMEOUT = 0.4  # the overall deadline of each request in these tests
DRIP = 0.1  # seconds between two bytes: always within the per-read timeout
SLOW = 30  # bytes dripped: SLOW * DRIP = 3 s, far past the deadline

Script = Callable[[socket.socket], None]


class _Server:
    """A one-route HTTP server on loopback that answers every request with ``script``."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.stop = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.threads: list[threading.Thread] = []
        self.accepter = threading.Thread(target=self._accept, daemon=True)
        self.accepter.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self.threads.append(thread)

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, rest = data.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(rest) < length:
                    rest += conn.recv(65536)
                self.script(conn)
            except OSError:
                return  # the client gave up and closed: what these tests expect

    def drip(self, conn: socket.socket, data: bytes) -> None:
        """Send ``data`` one byte at a time, ``DRIP`` seconds apart, until told to stop."""
        for byte in data:
            if self.stop.wait(DRIP):
                return
            conn.sendall(bytes([byte]))

    def close(self) -> None:
        self.stop.set()
        self.accepter.join()
        self.listener.close()
        for thread in self.threads:
            thread.join(5)


@pytest.fixture
def server() -> Iterator[Callable[[Script], _Server]]:
    """Start servers for a test; stop them (and wait for their threads) afterwards."""
    started: list[_Server] = []

    def start(script: Script) -> _Server:
        started.append(_Server(script))
        return started[-1]

    yield start
    for each in started:
        each.close()
    _wait_for_abandoned_requests()


def _wait_for_abandoned_requests() -> None:
    """A request given up at its deadline ends once its server stops (no thread leaks)."""
    end = time.monotonic() + 5
    while any(t.name == f"{WORKER_NAME} (abandoned)" for t in threading.enumerate()):
        assert time.monotonic() < end, "an abandoned request thread did not end"
        time.sleep(0.01)


HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
BODY = b'"Refresh"' + b" " * (SLOW - 9)  # valid JSON, SLOW bytes long


def _drip_body(server: list[_Server]) -> Script:
    def script(conn: socket.socket) -> None:
        conn.sendall(HEAD % len(BODY))
        server[0].drip(conn, BODY)

    return script


def _drip_head(server: list[_Server]) -> Script:
    def script(conn: socket.socket) -> None:
        server[0].drip(conn, (HEAD % len(BODY)) + BODY)

    return script


@pytest.mark.parametrize("dripper", [_drip_body, _drip_head])
def test_dripping_reply_is_cut_at_the_deadline(
    server: Callable[[Script], _Server], dripper: Callable[[list[_Server]], Script]
) -> None:
    """A body (or status line) dripped within every read timeout: APITimeoutError in time."""
    box: list[_Server] = []
    box.append(server(dripper(box)))
    with Client(box[0].url, token="t", allow_insecure_http=True, timeout=TIMEOUT) as client:
        client._sleep = lambda _delay: None
        client._max_retries = 0
        start = time.monotonic()
        with pytest.raises(APITimeoutError, match="deadline"):
            client.get_state()
        elapsed = time.monotonic() - start
    assert elapsed < TIMEOUT + 0.5, elapsed  # without the deadline: SLOW * DRIP = 3 s


@pytest.mark.anyio
@pytest.mark.parametrize("dripper", [_drip_body, _drip_head])
async def test_async_dripping_reply_is_cut_at_the_deadline(
    server: Callable[[Script], _Server], dripper: Callable[[list[_Server]], Script]
) -> None:
    """The async client cuts the same drip with a cancel scope."""
    box: list[_Server] = []
    box.append(server(dripper(box)))
    client = AsyncClient(
        box[0].url, token="t", allow_insecure_http=True, timeout=TIMEOUT, max_retries=0
    )
    async with client:
        start = time.monotonic()
        with pytest.raises(APITimeoutError, match="deadline"):
            await client.get_state()
        elapsed = time.monotonic() - start
    assert elapsed < TIMEOUT + 0.5, elapsed


def test_dripped_apply_reply_is_an_unknown_outcome(server: Callable[[Script], _Server]) -> None:
    """An apply whose reply drips past the deadline is settled by a re-read (here: unknown)."""
    box: list[_Server] = []
    calls: list[int] = []

    def script(conn: socket.socket) -> None:
        calls.append(1)
        if len(calls) == 1:  # the POST: its answer never completes
            conn.sendall(HEAD % 4)
            box[0].drip(conn, b"null")
            return
        conn.sendall((HEAD % 9) + b'"Refresh"')

    box.append(server(script))
    with Client(box[0].url, token="t", allow_insecure_http=True, timeout=TIMEOUT) as client:
        change = ChangeSet(from_state=REFRESH, to_state=ActiveState(b"c1"))
        with pytest.raises(ApplyOutcomeUnknownError) as info:
            client.apply(change)
    assert REFRESH == info.value.state
    assert isinstance(info.value.__cause__, APITimeoutError)


def _flood(length: int | None) -> Script:
    def script(conn: socket.socket) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        if length is None:
            conn.sendall(head + b"Transfer-Encoding: chunked\r\n\r\n")
            chunk = b"[" + b" " * 65534
            for _ in range(2000):  # 128 MiB if nobody stops reading
                conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        else:
            conn.sendall(head + b"Content-Length: %d\r\n\r\n" % length)
            for _ in range(length // 65536):
                conn.sendall(b" " * 65536)

    return script


@pytest.mark.parametrize("length", [None, 64 * 1024 * 1024], ids=["chunked", "content-length"])
def test_huge_body_is_refused_at_the_cap(
    server: Callable[[Script], _Server], length: int | None
) -> None:
    """A body over max_response_bytes is a ProtocolError naming the cap, read no further."""
    running = server(_flood(length))
    limit = 256 * 1024
    with Client(
        running.url, token="t", allow_insecure_http=True, timeout=5, max_response_bytes=limit
    ) as client:
        start = time.monotonic()
        with pytest.raises(ProtocolError, match=f"max_response_bytes={limit}"):
            client.list_sync_accounts()
        assert time.monotonic() - start < 2


@pytest.mark.anyio
async def test_async_huge_body_is_refused_at_the_cap(
    server: Callable[[Script], _Server],
) -> None:
    """The async client applies the same cap."""
    running = server(_flood(None))
    client = AsyncClient(
        running.url, token="t", allow_insecure_http=True, timeout=5, max_response_bytes=100_000
    )
    async with client:
        with pytest.raises(ProtocolError, match="max_response_bytes=100000"):
            await client.list_sync_accounts()


def test_compressed_bomb_is_counted_decoded() -> None:
    """A small gzip body that inflates past the cap is refused: the cap counts what is read."""
    bomb = gzip.compress(b" " * 5_000_000)
    assert len(bomb) < 100_000

    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"content-type": "application/json", "content-encoding": "gzip"}
        # An iterator: streamed as a server would, not read when the response is built.
        return httpx.Response(200, headers=headers, content=iter([bomb[:1000], bomb[1000:]]))

    http = httpx.Client(transport=httpx.MockTransport(handler))
    client = Client("https://kanidm.test", token="t", http_client=http, max_response_bytes=10**6)
    with client, pytest.raises(ProtocolError, match="max_response_bytes"):
        client.list_sync_accounts()
    http.close()


def test_default_cap_is_generous_and_documented() -> None:
    """16 MiB by default: admin listings fit, a runaway body does not."""
    from kanidm_sync._transport import DEFAULT_MAX_RESPONSE_BYTES

    assert 16 * 1024 * 1024 == DEFAULT_MAX_RESPONSE_BYTES


def test_slow_mock_transport_is_cut_at_the_deadline() -> None:
    """The deadline holds whatever the transport: a handler that hangs is abandoned."""
    release = threading.Event()

    def hang(request: httpx.Request) -> httpx.Response:
        release.wait(5)
        return httpx.Response(200, json="Refresh")

    http = httpx.Client(transport=httpx.MockTransport(hang))
    try:
        with Client("https://kanidm.test", token="t", http_client=http, timeout=0.2) as client:
            client._max_retries = 0
            start = time.monotonic()
            with pytest.raises(APITimeoutError):
                client.get_state()
            assert time.monotonic() - start < 1
    finally:
        release.set()
        _wait_for_abandoned_requests()
        http.close()


DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize(
    ("status", "expected"), [(200, DecodeError), (500, ServerError), (503, ServerError)]
)
def test_deeply_nested_body_is_never_a_recursion_error(
    status: int, expected: type[Exception]
) -> None:
    """A state, error or retried body nested 100 000 deep: a typed error, no RecursionError."""
    handler = httpx.MockTransport(
        lambda r: httpx.Response(status, content=DEEP, headers={"content-type": "application/json"})
    )
    http = httpx.Client(transport=handler)
    with Client("https://kanidm.test", token="t", http_client=http) as client:
        client._sleep = lambda _delay: None
        for call in (client.get_state, client.list_sync_accounts, lambda: client.finalise("x")):
            with pytest.raises(expected):
                call()
    http.close()


def test_no_read_timeout_means_no_deadline_and_no_thread() -> None:
    """timeout=httpx.Timeout(None) is unlimited by choice: the exchange runs in the caller."""
    threads: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        threads.append(threading.current_thread().name)
        return httpx.Response(200, json="Refresh")

    http = httpx.Client(transport=httpx.MockTransport(handler))
    with Client("https://kanidm.test", token="t", http_client=http, timeout=0.5) as client:
        client.get_state()
    with Client(
        "https://kanidm.test", token="t", http_client=http, timeout=httpx.Timeout(None)
    ) as client:
        client.get_state()
    http.close()
    assert [WORKER_NAME, threading.current_thread().name] == threads


def test_concurrent_calls_each_get_their_own_deadline() -> None:
    """Two threads sharing a client are not serialised behind one worker."""
    idents: list[int] = []

    def slow(request: httpx.Request) -> httpx.Response:
        idents.append(threading.get_ident())
        time.sleep(0.3)
        return httpx.Response(200, json="Refresh")

    http = httpx.Client(transport=httpx.MockTransport(slow))
    with Client("https://kanidm.test", token="t", http_client=http, timeout=0.5) as client:
        errors: list[BaseException] = []

        def call() -> None:
            try:
                client.get_state()
            except BaseException as exc:  # reported below
                errors.append(exc)

        start = time.monotonic()
        callers = [threading.Thread(target=call) for _ in range(2)]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join()
        assert [] == errors
        assert time.monotonic() - start < 0.5  # in parallel: one 0.3 s wait, not two
        assert 2 == len(set(idents))
        idents.clear()
        client.get_state()
        client.get_state()
        assert 1 == len(set(idents))  # an idle worker is reused, not a thread per call
    http.close()
