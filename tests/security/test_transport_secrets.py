"""A token with stray whitespace, and a URL with credentials, leak nowhere.

The first case of each test is the reported one: ``Client(url, token=open("tok").read())``
kept the file's trailing newline, h11 refused the header and quoted it, token included, in
the exception and in httpcore's DEBUG log, three times (the read was retried). Every text a
scenario produces is captured (all loggers at DEBUG, exceptions with their chains, reprs).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import httpx
import pytest

from kanidm_sync import (
    AsyncClient,
    Client,
    ConfigError,
    EncodeError,
    KanidmAuth,
    KanidmSyncError,
    SyncAccount,
)
from kanidm_sync.testing import FakeKanidm, serve

from ._leaks import Capture, Secrets


@pytest.fixture
def fake() -> FakeKanidm:
    """A fresh double."""
    return FakeKanidm()


@pytest.fixture
def url(fake: FakeKanidm) -> Iterator[str]:
    """The double over real loopback HTTP, so that h11, httpx and httpcore really run."""
    with serve(fake) as served:
        yield served


def _secrets(fake: FakeKanidm) -> tuple[Secrets, str, str]:
    secrets = Secrets()
    admin = secrets.add_token("admin API token", fake.admin_token)
    sync = secrets.add_token("sync token", fake.provision_sync_account("feed").token)
    return secrets, admin, sync


def test_token_read_with_its_newline_works_and_leaks_nothing(
    fake: FakeKanidm, url: str, tmp_path: os.PathLike[str]
) -> None:
    """A token file's trailing newline is dropped: the calls work, no text shows the token."""
    secrets, admin, sync = _secrets(fake)
    token_file = os.path.join(tmp_path, "tok")
    with open(token_file, "w", encoding="utf-8") as handle:
        handle.write(sync + "\n")
    capture = Capture()
    with capture.logging():
        with open(token_file, encoding="utf-8") as handle:
            read = handle.read()
        with Client(url, token=read, allow_insecure_http=True, max_retries=0) as client:
            capture.object(client, "sync client")
            assert "Refresh" == type(client.get_state()).__name__.removesuffix("State")
        with Client(url, token=f"  {admin}\r\n", allow_insecure_http=True) as client:
            assert [] != client.list_sync_accounts()
        with Client(url, auth=KanidmAuth.from_token(admin + "\n"), allow_insecure_http=True) as c:
            assert [] != c.list_sync_accounts()
        account = SyncAccount(url=f" {url}\n", token=f"{sync}\n", allow_insecure_http=True)
        assert sync == account.token
        assert "Refresh" == type(account.state()).__name__.removesuffix("State")
        env = {"KANIDM_URL": url, "KANIDM_SYNC_TOKEN": sync + "\n"}
        env["KANIDM_ALLOW_INSECURE_HTTP"] = "true"
        assert sync == SyncAccount.from_env(env).token
        from_file = SyncAccount.from_token_file(token_file, url=url, allow_insecure_http=True)
        assert sync == from_file.token
    capture.assert_clean(secrets)
    assert any(where.startswith("log httpcore") for where, _ in capture.texts)


BAD_TOKENS: list[Callable[[str], str]] = [
    lambda t: t[:20] + "\n" + t[20:],  # a line break inside
    lambda t: t[:20] + " " + t[20:],  # a space
    lambda t: t[:20] + "\t" + t[20:],
    lambda t: t[:20] + "\x00" + t[20:],  # a control character
    lambda t: t[:20] + "\x7f" + t[20:],
    lambda t: t[:20] + "é" + t[20:],  # non-ASCII
    lambda t: t[:20] + "\u2028" + t[20:],
    lambda t: t[:20] + "," + t[20:],  # not in RFC 6750's b64token
    lambda t: "=" + t,
    lambda t: "",
    lambda t: " \n",
]


@pytest.mark.parametrize("spoil", BAD_TOKENS)
def test_unusable_token_is_a_config_error_at_construction(
    fake: FakeKanidm, url: str, spoil: Callable[[str], str]
) -> None:
    """Whitespace or control characters inside, non-ASCII: ConfigError before any request."""
    secrets, admin, sync = _secrets(fake)
    before = len(fake.history)
    capture = Capture()
    with capture.logging():
        for token in (sync, admin):
            bad = spoil(token)
            for build in (
                lambda bad=bad: Client(url, token=bad, allow_insecure_http=True),
                lambda bad=bad: AsyncClient(url, token=bad, allow_insecure_http=True),
                lambda bad=bad: KanidmAuth.from_token(bad),
                lambda bad=bad: KanidmAuth(token=bad),
                lambda bad=bad: SyncAccount(url=url, token=bad, allow_insecure_http=True),
                lambda bad=bad: SyncAccount.from_env({"KANIDM_URL": url, "KANIDM_SYNC_TOKEN": bad}),
            ):
                with pytest.raises(ConfigError) as info:
                    build()
                capture.exception(info.value, "construction")
                assert "token" in str(info.value).lower()
    capture.assert_clean(secrets)
    assert before == len(fake.history)  # nothing was sent


def test_token_file_with_an_inner_newline_names_the_file_only(
    fake: FakeKanidm, tmp_path: os.PathLike[str]
) -> None:
    """A token file holding two lines is refused naming the file and position, not the token."""
    secrets, _, sync = _secrets(fake)
    path = os.path.join(tmp_path, "token")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(sync[:30] + "\n" + sync[30:] + "\n")
    with pytest.raises(ConfigError, match="character 31") as info:
        SyncAccount.from_token_file(path, url="https://idm.example.com")
    assert path in str(info.value)
    capture = Capture()
    capture.exception(info.value, "token file")
    capture.assert_clean(secrets)


def test_a_header_httpx_cannot_send_is_never_quoted(fake: FakeKanidm, url: str) -> None:
    """Last line of defence: h11's "Illegal header value" message is dropped, not retried."""
    secrets, admin, _ = _secrets(fake)
    capture = Capture()
    with capture.logging(), Client(url, token=admin, allow_insecure_http=True) as client:
        assert client._auth is not None
        client._auth._token = admin[:20] + "\n" + admin[20:]  # bypass the constructor's check
        before = len(fake.history)
        with pytest.raises(EncodeError, match="nothing was sent") as info:
            client.list_sync_accounts()
        capture.exception(info.value, "send")
        assert before == len(fake.history)
    assert None is info.value.__cause__
    assert None is info.value.__context__  # the h11 error, which quotes the header, is gone
    # httpcore's own DEBUG record of the failure quotes the header: that record is httpcore's,
    # and is the reason the token is checked when the client is built.
    capture.texts = [(w, t) for w, t in capture.texts if not w.startswith("log httpcore")]
    capture.assert_clean(secrets)


def test_url_credentials_never_shown(fake: FakeKanidm) -> None:
    """A user:password@ in the URL is refused; no error, repr or log shows the password."""
    secrets = Secrets()
    password = secrets.add("URL password", "UrlPassMarker-7Hq2")
    capture = Capture()
    with capture.logging():
        for url in (
            f"https://admin:{password}@idm.example.com",
            f"http://admin:{password}@127.0.0.1:8443",
            f"https://{password}@idm.example.com/kanidm/",
            f"https://idm.example.com/?password={password}",
        ):
            for build in (
                lambda url=url: Client(url, token=fake.admin_token, allow_insecure_http=True),
                lambda url=url: SyncAccount(url=url, token="t", allow_insecure_http=True),
                lambda url=url: SyncAccount.from_env({"KANIDM_URL": url, "KANIDM_SYNC_TOKEN": "t"}),
            ):
                with pytest.raises(KanidmSyncError) as info:
                    build()
                assert isinstance(info.value, ConfigError)
                capture.exception(info.value, url.replace(password, "<pw>"))
    capture.assert_clean(secrets)


def test_redirect_location_credentials_never_shown() -> None:
    """A redirect's Location with credentials and a query is named without them."""
    secrets = Secrets()
    password = secrets.add("Location password", "LocPassMarker-3Kd8")
    query = secrets.add("Location query", "QueryMarker-9Vb1")
    location = f"https://user:{password}@sso.example.com/login?ticket={query}"
    transport = httpx.MockTransport(lambda r: httpx.Response(302, headers={"location": location}))
    capture = Capture()
    with (
        capture.logging(),
        Client(
            "https://kanidm.test", token="t", http_client=httpx.Client(transport=transport)
        ) as c,
    ):
        with pytest.raises(KanidmSyncError) as info:
            c.get_state()
        capture.exception(info.value, "redirect")
    assert "https://***@sso.example.com/login" in str(info.value)
    capture.assert_clean(secrets)
