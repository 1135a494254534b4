"""The loopback HTTP server and the ``python -m kanidm_sync.testing serve`` command."""

from __future__ import annotations

import io
import json
import pathlib
import socket
import subprocess
import sys
import threading
import time
from contextlib import redirect_stdout

import httpx
import pytest

from kanidm_sync.testing import FakeKanidm, serve
from kanidm_sync.testing.__main__ import main

GOLDEN = pathlib.Path(__file__).parent.parent / "fixtures" / "wire" / "changeset-kanidmd-ipa-1.json"


def test_golden_changeset_over_real_http() -> None:
    """A real socket round trip: admin creates an account, the sync token applies IPA_1."""
    fake = FakeKanidm()
    with serve(fake) as url, httpx.Client(base_url=url) as http:
        assert url.startswith("http://127.0.0.1:")
        admin = {"authorization": f"Bearer {fake.admin_token}"}
        assert (
            "null"
            == http.post("/v1/sync_account", json={"attrs": {"name": ["ipa"]}}, headers=admin).text
        )
        token = http.post("/v1/sync_account/ipa/_sync_token", json="t", headers=admin).json()
        sync = {"authorization": f"Bearer {token}", "content-type": "application/json"}
        response = http.post("/scim/v1/Sync", content=GOLDEN.read_bytes(), headers=sync)
        assert (200, "null") == (response.status_code, response.text)
        assert response.headers["x-kanidm-opid"]
        state = http.get("/scim/v1/Sync", headers=sync).json()
        assert json.loads(GOLDEN.read_bytes())["to_state"] == state
        assert 405 == http.post("/v1/sync_account/ipa/_finalise", headers=admin).status_code
        missing = http.get("/nowhere")
        assert (404, "Route not found") == (missing.status_code, missing.text)
    assert fake.store.entry("testuser") is not None


def test_dropped_reply_closes_the_connection() -> None:
    """Over HTTP a dropped reply is a closed connection; the apply still committed."""
    fake = FakeKanidm()
    account = fake.provision_sync_account("ipa")
    with serve(fake) as url, httpx.Client(base_url=url) as http:
        fake.drop_next_response()
        sync = {"authorization": f"Bearer {account.token}", "content-type": "application/json"}
        with pytest.raises(httpx.RemoteProtocolError):
            http.post("/scim/v1/Sync", content=GOLDEN.read_bytes(), headers=sync)
    assert fake.cookie("ipa") is not None


def test_cli_serve_prints_url_and_tokens() -> None:
    """main() serves, prints URL, admin token and the sync account's token, and stops."""
    stop = threading.Event()
    out = io.StringIO()
    result: list[int] = []

    def run() -> None:
        with redirect_stdout(out):
            result.append(main(["serve", "--port", "0", "--sync-account", "ipa"], stop=stop))

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 10
    while "sync account ipa token" not in out.getvalue() and time.monotonic() < deadline:
        time.sleep(0.01)
    lines = dict(line.split(": ", 1) for line in out.getvalue().splitlines())
    try:
        token = lines["sync account ipa token"]
        response = httpx.get(
            lines["url"] + "/scim/v1/Sync", headers={"authorization": f"Bearer {token}"}
        )
        assert '"Refresh"' == response.text
        me = httpx.get(
            lines["url"] + "/v1/self", headers={"authorization": f"Bearer {lines['admin token']}"}
        )
        assert ["admin"] == me.json()["youare"]["attrs"]["name"]
    finally:
        stop.set()
        thread.join(10)
    assert [0] == result


def test_cli_stops_on_sigterm() -> None:
    """The command runs as a process until SIGTERM and exits 0."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "kanidm_sync.testing", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("url: http://127.0.0.1:")
        url = first.split(": ", 1)[1].strip()
        assert 401 == httpx.get(url + "/v1/auth/valid").status_code
        proc.terminate()
        assert 0 == proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def test_bad_content_length_is_400() -> None:
    """A request with an unparsable Content-Length is refused, not crashed on."""
    fake = FakeKanidm()
    with serve(fake) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(b"POST /v1/auth HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n")
            reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 400")


def test_a_bug_in_the_double_is_a_500(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unexpected exception in the handler answers 500 instead of dropping the client."""
    fake = FakeKanidm()

    def broken(*args: object, **kwargs: object) -> list[object]:
        raise RuntimeError("boom")

    monkeypatch.setattr(fake.store, "sync_accounts", broken)
    with serve(fake) as url:
        response = httpx.get(
            url + "/v1/sync_account", headers={"authorization": f"Bearer {fake.admin_token}"}
        )
    assert 500 == response.status_code
