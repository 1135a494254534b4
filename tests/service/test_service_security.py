r"""The status endpoints' security: loopback by default, the bearer token, no secret, escaping.

No endpoint may show a secret (the status token, the sync token, an imported password hash
or TOTP secret, a cookie's bytes), in a body, a header or a log line; a request never
gets its own input echoed; values from the source reach ``/status.json`` JSON-escaped
(with ``<``, ``>`` and ``&`` as ``\\u`` escapes, so the text is inert in HTML too).
"""

from __future__ import annotations

import base64
import json
import logging
import pathlib
import socket
from collections.abc import Iterator

import attrs
import pytest
from security._leaks import Capture, Secrets, crypt_sha512, ssha512

from kanidm_sync import ConfigError, Person, PosixAccount, StatusServer, Totp
from kanidm_sync._proto._codec import encode_cookie

from ._service_scenario import SCHEDULE, TOKEN, Service, open_service, person

PATHS = ("/", "/healthz", "/readyz", "/status.json", "/metrics")
HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture
def svc(tmp_path: pathlib.Path) -> Iterator[Service]:
    """A started service that requires :data:`TOKEN`."""
    with open_service(tmp_path, token=TOKEN) as service:
        service.server.loop_started(SCHEDULE)
        yield service


# --- where it listens ---------------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "idm.example.com", "::ffff:1"])
def test_a_non_loopback_address_is_refused_unless_allowed(host: str) -> None:
    """Only loopback without allow_public; the error says how to allow it."""
    with pytest.raises(ConfigError, match=r"not a loopback address.*allow_public=True"):
        StatusServer(host=host)
    StatusServer(host=host, allow_public=True, token=TOKEN)  # allowed: not started


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"])
def test_loopback_addresses_are_accepted(host: str) -> None:
    """IPv4 and IPv6 loopback, and localhost."""
    server = StatusServer(host=host)
    assert "stopped" in repr(server)


def test_public_without_a_token_warns(caplog: pytest.LogCaptureFixture) -> None:
    """allow_public without a token is allowed, with a warning that says what it means."""
    with caplog.at_level(logging.WARNING, logger="kanidm_sync"):
        StatusServer(host="0.0.0.0", allow_public=True)
    assert ["the status server listens on 0.0.0.0 without a token"] == [
        r.getMessage().split(":")[0] for r in caplog.records
    ]


@pytest.mark.parametrize("port", [-1, 65536, True, "8080"])
def test_a_bad_port_is_refused(port: object) -> None:
    """The port is an int in 0..65535."""
    with pytest.raises(ConfigError, match="port"):
        StatusServer(port=port)  # type: ignore[arg-type]


def test_a_port_in_use_is_a_config_error() -> None:
    """Listening where another server listens fails naming the address."""
    with StatusServer() as first:
        port = int(first.url.rsplit(":", 1)[1])
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}"):
            StatusServer(port=port).start()


# --- the token ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "words"),
    [
        ("short-token", "11 characters long"),
        ("has a space in it 0123456789", "printable ASCII"),
        ("tab\tseparated-0123456789", "printable ASCII"),
        ("", "printable ASCII"),
    ],
)
def test_a_weak_or_malformed_token_is_refused_without_showing_it(token: str, words: str) -> None:
    """The error says what is wrong, never the token."""
    with pytest.raises(ConfigError, match=words) as info:
        StatusServer(token=token)
    if token:
        assert token not in str(info.value)


def test_every_endpoint_requires_the_token(svc: Service) -> None:
    """Missing, wrong, truncated, extended or Basic credentials: 401 everywhere, same body."""
    wrong = {
        "missing": {},
        "wrong": {"Authorization": "Bearer " + "x" * len(TOKEN)},
        "prefix": {"Authorization": "Bearer " + TOKEN[:-1]},
        "extended": {"Authorization": "Bearer " + TOKEN + "0"},
        "basic": {"Authorization": "Basic " + base64.b64encode(TOKEN.encode()).decode()},
        "no scheme": {"Authorization": TOKEN},
    }
    bodies = set()
    for path in (*PATHS, "/missing", "/healthz?token=" + TOKEN):
        for method in ("GET", "HEAD", "POST"):
            for what, headers in wrong.items():
                response = svc.get(path, method=method, **headers)
                assert 401 == response.status_code, (path, method, what)
                assert response.headers["www-authenticate"].startswith("Bearer"), what
                assert "no-store" == response.headers["cache-control"]
                bodies.add(response.content)
    assert {b"", b"unauthorized: send Authorization: Bearer <token>\n"} == bodies


def test_the_right_token_opens_every_endpoint(svc: Service) -> None:
    """With the token (scheme case-insensitive) each endpoint answers; none shows the token."""
    svc.run()
    for path in PATHS:
        for scheme in ("Bearer", "bearer"):
            response = svc.get(path, Authorization=f"{scheme} {TOKEN}")
            assert 200 == response.status_code, path
            assert TOKEN not in response.text
            assert TOKEN not in str(response.headers)
    assert 404 == svc.get("/missing", token=TOKEN).status_code
    assert 405 == svc.get("/healthz", token=TOKEN, method="PUT").status_code
    assert TOKEN not in repr(svc.server)
    assert "token=***" in repr(svc.server)


# --- secrets --------------------------------------------------------------------------------


def test_no_secret_on_any_endpoint_or_in_the_logs(tmp_path: pathlib.Path) -> None:
    """A life with secrets in the source, a refusal and a conflict: no endpoint shows one."""
    secrets = Secrets()
    secrets.add("status token", TOKEN)
    key = b"totp-import-key-K7q2"
    secrets.add("totp import (base64)", base64.b64encode(key).decode())
    secrets.add("totp import (base32)", base64.b32encode(key).decode().rstrip("="))
    password = secrets.add("password_import", ssha512("PwImportMarkQ7x"))
    unix = secrets.add("unix_password_import", crypt_sha512("UnixImportMarkZ4"))
    bad = secrets.add("bad password_import", "{SSHA512}BadHashMarkerX1!!")
    secrets.add("source cookie", "hr-export-")

    def armed(p: Person, hashed: str = password) -> Person:
        return attrs.evolve(
            p,
            password_import=hashed,
            posix=PosixAccount(
                gidnumber=30000 + int(p.name.removeprefix("user")), unix_password_import=unix
            ),
            totp_import=[Totp.from_key(key, external_id=f"{p.name}-phone")],
        )

    capture = Capture()
    with (
        capture.logging(),
        open_service(tmp_path, token=TOKEN, entries=[armed(person(1)), armed(person(2))]) as svc,
    ):
        secrets.add_token("sync token", svc.account.token)
        svc.server.loop_started(SCHEDULE)
        seen: list[str] = []

        def read_all(step: str) -> None:
            for path in (*PATHS, "/missing"):
                response = svc.get(path, token=TOKEN)
                capture.add(f"{step} {path} headers", str(response.headers))
                capture.add(f"{step} {path} body", response.text)
            cookie = svc.fake.cookie("hr")
            if cookie is not None:
                encoded = encode_cookie(cookie)
                seen.append(encoded)
                secrets.add("kanidm cookie", encoded)

        assert "applied" == svc.run().outcome
        read_all("applied")
        svc.source.entries = [armed(person(1)), armed(person(2), bad)]
        assert "refused" == svc.run().outcome  # the bad hash fails local validation
        read_all("refused")
        svc.fake.store.add_person("carol")
        svc.source.entries = [armed(person(1)), armed(person(2)), person(3, name="carol")]
        assert "failed" == svc.run().outcome
        read_all("conflict")
        for _ in range(2):  # unauthenticated attempts
            capture.add("401", svc.get("/status.json", Authorization="Bearer nope").text)
        svc.server.loop_stopped()
        read_all("stopped")
    assert seen, "the scenario reached Active"
    capture.assert_clean(secrets)


# --- escaping -------------------------------------------------------------------------------


def test_source_values_come_back_json_escaped(tmp_path: pathlib.Path) -> None:
    """Markup from the source: absent from status.json's raw text, intact once parsed."""
    with open_service(tmp_path) as svc:
        svc.server.loop_started(SCHEDULE)
        svc.run()
        svc.source.entries = [person(1), person(2, displayname=HOSTILE)]
        svc.run()
        raw = svc.get("/status.json").text
        assert "<" not in raw
        assert ">" not in raw
        assert "\\u003cimg src=x onerror=alert(1)\\u003e" in raw
        assert HOSTILE in json.dumps(json.loads(raw)["last_run"]["changes"], ensure_ascii=False)
        # A name Kanidm could never take: refused locally, the error names it.
        svc.source.entries = [person(1), person(2, name="<script>alert(1)</script>")]
        assert "refused" == svc.run().outcome
        raw = svc.get("/status.json").text
        assert "<script>" not in raw
        assert "<script>alert(1)</script>" in json.loads(raw)["last_run"]["error"]["message"]
        ready = svc.get("/readyz")
        assert "text/plain; charset=utf-8" == ready.headers["content-type"]
        assert "nosniff" == ready.headers["x-content-type-options"]


def test_kanidm_url_credentials_are_dropped() -> None:
    """A URL with user:password@ is shown without them."""
    server = StatusServer(kanidm_url="https://sync:hunter2-secret@idm.example.com:8443/x")
    assert "https://idm.example.com:8443/x" == server.snapshot().kanidm_url


# --- malformed requests ---------------------------------------------------------------------


def raw(svc: Service, request: bytes) -> bytes:
    """Send bytes as they are; the whole answer."""
    host, port = svc.server.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(request)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /<script>alert(1)</script> HTTP/9.9\r\n\r\n", b"505"),
        (b"GET /<script>alert(1)</script> NOT-HTTP\r\n\r\n", b"400"),
        (b"GET /" + b"<script>" * 10000 + b" HTTP/1.1\r\n\r\n", b"414"),
        (b"GET /healthz HTTP/1.1\r\n" + b"X-<script>: 1\r\n" * 200 + b"\r\n", b"431"),
    ],
)
def test_a_malformed_request_is_not_echoed(
    svc: Service, request_bytes: bytes, status: bytes
) -> None:
    """http.server's error page quotes the request; ours says only the status."""
    answer = raw(svc, request_bytes)
    assert b"<script>" not in answer
    if answer.startswith(b"HTTP/"):
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.split(b" ")[1] == status, answer[:200]
        assert b"nosniff" in head
    else:  # a request without a version is answered as HTTP/0.9: the body alone
        body = answer
    assert body.endswith(b"\n")
    assert len(body) < 64


def test_the_path_is_taken_as_sent(svc: Service) -> None:
    """No normalisation on the server: /./healthz or an escaped letter is not /healthz."""
    for target in (b"/./healthz", b"/%68ealthz", b"/healthz/", b"/HEALTHZ"):
        answer = raw(
            svc,
            b"GET "
            + target
            + b" HTTP/1.0\r\nAuthorization: Bearer "
            + TOKEN.encode()
            + b"\r\n\r\n",
        )
        assert answer.startswith(b"HTTP/1.0 404 "), (target, answer[:60])


def test_a_non_ascii_authorization_header_is_a_401(svc: Service) -> None:
    """Bytes beyond ASCII in the credentials are compared as bytes, not a crash."""
    answer = raw(
        svc, b"GET /healthz HTTP/1.0\r\nAuthorization: Bearer \xff\xfe" + b"a" * 30 + b"\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.0 401 ")
