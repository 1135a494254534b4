"""What counts as Kanidm's answer, what an apply without one means, and where requests go.

Only what kanidmd sends counts: 200 with a JSON body on success, 400 and above on error.
Redirects are never followed; an apply that got something else (or nothing) is settled by
re-reading the state, and only a 408 or a request that never left proves "not applied".
A path prefix in the base URL (a reverse proxy's) is kept on every request.
"""

from __future__ import annotations

import uuid

import httpx
import pytest

from kanidm_sync import (
    REFRESH,
    ActiveState,
    APIConnectionError,
    ChangeSet,
    Client,
    ConfigError,
    DecodeError,
    Group,
    KanidmAuth,
    NotAppliedError,
    ProtocolError,
    SyncAccount,
    UniquenessError,
)
from kanidm_sync._exceptions import ApplyOutcomeUnknownError, BaseURLError
from kanidm_sync.testing import FakeKanidm

from ._helpers import mock_async_client, mock_client

SYNC = "/scim/v1/Sync"
JSON = {"content-type": "application/json"}


def _change() -> ChangeSet:
    group = Group(id=uuid.uuid4(), external_id="cn=g", name="g")
    return ChangeSet(from_state=REFRESH, to_state=ActiveState(b"c1"), entries=[group])


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        (httpx.Response(307, headers={"location": "https://sso.example/login?t=1"}), "307"),
        (httpx.Response(301, json="Refresh", headers={"location": "/other"}), "301"),
        (httpx.Response(204), "204"),
        (httpx.Response(200, text="<html>proxy</html>"), "text/plain"),
        (httpx.Response(200, content=b'"Refresh"'), "Content-Type none"),
    ],
)
def test_a_read_answered_by_something_else_is_a_protocol_error(
    answer: httpx.Response, fragment: str
) -> None:
    """A redirect, a 204 or a 200 that is not JSON is never taken as Kanidm's state."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return answer

    with mock_client(handler) as client, pytest.raises(ProtocolError, match=fragment) as info:
        client.get_state()
    assert ["https://kanidm.test/scim/v1/Sync"] == seen  # not followed, not retried
    assert "GET https://kanidm.test/scim/v1/Sync" in str(info.value)
    assert "t=1" not in str(info.value)


def test_redirects_are_not_followed_even_by_a_following_http_client() -> None:
    """An injected httpx.Client(follow_redirects=True) does not follow Kanidm's redirects."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.path == "/elsewhere":
            return httpx.Response(200, json="Refresh")
        return httpx.Response(302, headers={"location": "https://u:pw-9x7@kanidm.test/elsewhere"})

    http = httpx.Client(transport=httpx.MockTransport(handler), follow_redirects=True)
    with Client("https://kanidm.test", token="t", http_client=http) as client:
        with pytest.raises(ProtocolError, match="302") as info:
            client.get_state()
        with pytest.raises(ProtocolError, match="302"):
            client.create_sync_account("feed")
    assert [SYNC, "/v1/sync_account"] == seen
    assert "https://***@kanidm.test/elsewhere" in str(info.value)
    assert "pw-9x7" not in str(info.value)
    http.close()


def test_admin_write_answered_with_a_body_other_than_null_is_refused() -> None:
    """A write is answered with the JSON body null; anything else is not Kanidm's answer."""
    client = mock_client(lambda r: httpx.Response(200, json={"ok": True}))
    with client, pytest.raises(ProtocolError, match="not null"):
        client.destroy_sync_token("feed")


def test_generated_token_that_is_not_a_bearer_token_is_a_decode_error() -> None:
    """A token answer holding a newline is refused, without being shown."""
    client = mock_client(lambda r: httpx.Response(200, json="abc.def\nghi-secret"))
    with client, pytest.raises(ProtocolError) as info:
        client.generate_sync_token("feed")
    assert "ghi-secret" not in str(info.value)


def _with_fake(
    fake: FakeKanidm, answer: httpx.Response, *, commit: bool, seen: list[str]
) -> httpx.MockTransport:
    """The fake, except that the apply's answer is replaced (after committing, or not)."""

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        if request.method == "POST" and request.url.path == SYNC:
            if commit:
                fake(request)
            return answer
        return fake(request)

    return httpx.MockTransport(handler)


PROXY_ANSWERS = [
    httpx.Response(200, text="<html>maintenance page</html>"),
    httpx.Response(302, headers={"location": "https://sso.example/"}),
    httpx.Response(204),
    httpx.Response(502, text="<html>bad gateway</html>"),
    httpx.Response(504),
]


@pytest.mark.parametrize("answer", PROXY_ANSWERS)
@pytest.mark.parametrize("commit", [True, False])
def test_apply_answered_by_a_proxy_is_settled_by_the_state(
    fake: FakeKanidm, answer: httpx.Response, commit: bool
) -> None:
    """Not reported applied on a proxy's answer: success only if Kanidm holds to_state."""
    token = fake.provision_sync_account("feed").token
    seen: list[str] = []
    http = httpx.Client(transport=_with_fake(fake, answer, commit=commit, seen=seen))
    with Client(fake.url, token=token, http_client=http) as client:
        if commit:
            client.apply(_change())
            assert ActiveState(b"c1") == client.get_state()
        else:
            with pytest.raises(ApplyOutcomeUnknownError) as info:
                client.apply(_change())
            assert REFRESH == info.value.state
            assert REFRESH == client.get_state()
    http.close()
    assert ["POST", "GET", "GET"] == seen  # the apply, the re-read, the check above


def test_a_timed_out_apply_that_commits_later_is_not_reported_not_applied(
    fake: FakeKanidm,
) -> None:
    """A POST held past the timeout and committed afterwards: "unknown", never "not applied"."""
    token = fake.provision_sync_account("feed").token
    held: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == SYNC and not held:
            held.append(request)  # Kanidm is still working on it when the client gives up
            raise httpx.ReadTimeout("timed out", request=request)
        return fake(request)

    http = httpx.Client(transport=httpx.MockTransport(handler))
    with Client(fake.url, token=token, http_client=http) as client:
        with pytest.raises(ApplyOutcomeUnknownError) as info:
            client.apply(ChangeSet(from_state=REFRESH, to_state=ActiveState(b"c1")))
        assert not isinstance(info.value, NotAppliedError)
        message = str(info.value)
        assert "outcome unknown" in message
        assert "may still be applying" in message
        assert "safe to retry" not in message
        fake(held[0])  # ... and then Kanidm commits
        assert ActiveState(b"c1") == client.get_state()
    http.close()


def test_never_sent_apply_says_nothing_was_applied() -> None:
    """A refused connection is the one lost reply that proves nothing was applied."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = mock_client(refuse, max_retries=0)
    with client, pytest.raises(APIConnectionError, match="nothing was applied, safe to") as info:
        client.apply(_change())
    assert isinstance(info.value.__cause__, httpx.ConnectError)


def test_408_is_the_provable_not_applied(fake: FakeKanidm) -> None:
    """A 408 from kanidmd means unapplied: NotAppliedError, "safe to retry"."""
    token = fake.provision_sync_account("feed").token
    http = httpx.Client(transport=fake.transport)
    with Client(fake.url, token=token, http_client=http) as client:
        fake.fail_next(status=408, path=SYNC)
        with pytest.raises(NotAppliedError, match="safe to retry") as info:
            client.apply(_change())
    assert REFRESH == info.value.state
    http.close()


@pytest.mark.anyio
async def test_async_apply_answered_by_a_proxy_is_unknown(fake: FakeKanidm) -> None:
    """The async client settles a proxy's answer the same way."""
    token = fake.provision_sync_account("feed").token
    answer = httpx.Response(200, text="<html>portal</html>")
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        if request.method == "POST":
            return answer
        return fake(request)

    client = mock_async_client(handler, token=token)
    async with client:
        with pytest.raises(ApplyOutcomeUnknownError):
            await client.apply(_change())
        await client._http.aclose()
        client._http = httpx.AsyncClient(
            transport=httpx.MockTransport(
                lambda r: httpx.Response(307, headers={"location": "/x"})
            ),
            follow_redirects=True,
        )
        with pytest.raises(ProtocolError, match="307"):
            await client.get_state()
        await client._http.aclose()
    assert ["POST", "GET"] == seen


# --- URLs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://idm.example.com",
        "http://10.0.0.5:8443",
        "http://[2001:db8::1]",
        "http://localhost.example.com",
    ],
)
def test_plain_http_off_loopback_is_refused_even_when_allowed(url: str) -> None:
    """allow_insecure_http covers loopback only; the ConfigError says what to do instead."""
    with pytest.raises(ConfigError) as info:
        Client(url, token="t", allow_insecure_http=True)
    message = str(info.value)
    assert "https://" in message
    assert "TLS-terminating proxy" in message
    assert "allow_insecure_http=True" not in message  # it would not help
    assert isinstance(info.value, ValueError)  # what the refusal was before
    with pytest.raises(BaseURLError):
        SyncAccount(url=url, token="t", allow_insecure_http=True)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080", "http://127.1.2.3", "http://[::1]:8443", "http://localhost"]
)
def test_plain_http_to_loopback_needs_the_flag(url: str) -> None:
    """Loopback: refused without allow_insecure_http (naming it), accepted with it."""
    with pytest.raises(ConfigError, match="allow_insecure_http=True"):
        Client(url, token="t")
    with Client(url, token="t", allow_insecure_http=True) as client:
        assert client.base_url.startswith("http://")


@pytest.mark.parametrize(
    "url",
    [
        "https://admin:hunter2-Zq9@idm.example.com",
        "https://hunter2-Zq9@idm.example.com/kanidm",
        "ftp://admin:hunter2-Zq9@idm.example.com",
        "https://idm.example.com/?token=hunter2-Zq9",
        "https://idm.example.com/#hunter2-Zq9",
    ],
)
def test_credentials_or_a_query_in_the_url_are_refused_unseen(url: str) -> None:
    """A user:password@ (or a query) is refused, and never echoed by the error or a repr."""
    for build in (
        lambda: Client(url, token="t"),
        lambda: SyncAccount(url=url, token="t"),
        lambda: SyncAccount.from_env({"KANIDM_URL": url, "KANIDM_SYNC_TOKEN": "t"}),
    ):
        with pytest.raises(ConfigError) as info:
            build()
        assert "hunter2-Zq9" not in str(info.value)
        assert "hunter2-Zq9" not in repr(info.value)


def test_path_prefix_is_kept_on_every_request(fake: FakeKanidm) -> None:
    """A reverse proxy's /kanidm prefix reaches every call, logins and errors included."""
    seen: list[str] = []

    def proxy(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        path = request.url.path
        if not path.startswith("/kanidm/"):
            return httpx.Response(404, text="not behind the proxy")
        stripped = httpx.Request(
            request.method,
            request.url.copy_with(path=path.removeprefix("/kanidm")),
            headers=request.headers,
            content=request.content,
        )
        return fake(stripped)

    password = fake.recover_account("admin")
    http = httpx.Client(transport=httpx.MockTransport(proxy))
    auth = KanidmAuth.password("admin", password)
    with Client("https://kanidm.test/kanidm/", auth=auth, http_client=http) as admin:
        assert "https://kanidm.test/kanidm" == admin.base_url
        assert "base_url='https://kanidm.test/kanidm'" in repr(admin)
        account = SyncAccount.create(admin, "feed")
        assert "https://kanidm.test/kanidm" == account.url
        assert None is admin.get_sync_account("nosuch")
        with pytest.raises(UniquenessError) as info:
            admin.create_sync_account("feed")
        assert "https://kanidm.test/kanidm/v1/sync_account" == info.value.url
    with account.client(http_client=http) as sync:
        sync.apply(_change())
        assert ActiveState(b"c1") == sync.get_state()
    http.close()
    assert all(line.split(" ", 1)[1].startswith("/kanidm/") for line in seen), seen
    assert "POST /kanidm/v1/auth" in seen
    assert "POST /kanidm/scim/v1/Sync" in seen


def test_login_issuing_a_token_that_is_not_a_bearer_token_is_refused_unseen() -> None:
    """A login answered with a token holding a newline: a DecodeError that does not show it."""
    secret = "eyJh.eyJz.c2ln\nSecretTail-4Rw"

    def handler(request: httpx.Request) -> httpx.Response:
        step = request.content
        if b"init2" in step:
            state: object = {"choose": ["password"]}
        elif b"begin" in step:
            state = {"continue": ["password"]}
        elif b"cred" in step:
            state = {"success": secret}
        else:
            return httpx.Response(500, json="unexpected")
        return httpx.Response(200, json={"sessionid": "s", "state": state})

    http = httpx.Client(transport=httpx.MockTransport(handler))
    auth = KanidmAuth.password("admin", "pw")
    client = Client("https://kanidm.test", auth=auth, http_client=http)
    with client, pytest.raises(DecodeError, match="not a bearer token") as info:
        client.list_sync_accounts()
    http.close()
    assert "SecretTail-4Rw" not in str(info.value)
