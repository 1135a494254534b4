"""Admin authentication against FakeKanidm's /v1/auth, plus the token cache and config files."""

from __future__ import annotations

import base64
import json
import pathlib

import httpx
import pytest

from kanidm_sync import (
    AsyncClient,
    Client,
    ClientConfig,
    ConfigError,
    KanidmAuth,
    LoginError,
    NotFoundError,
    PermissionDeniedError,
    load_cached_token,
    load_client_config,
)
from kanidm_sync.testing import FakeKanidm, totp_code

from .conftest import Clock

SECRET = b"0123456789abcdef0123"


class Recorder:
    """A transport that records every request before handing it to the fake."""

    def __init__(self, fake: FakeKanidm) -> None:
        self.fake = fake
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.fake(request)

    def paths(self) -> list[str]:
        return [r.url.path for r in self.requests]


def _client(fake: FakeKanidm, auth: KanidmAuth) -> tuple[Client, Recorder]:
    recorder = Recorder(fake)
    http = httpx.Client(transport=httpx.MockTransport(recorder))
    return Client(fake.url, auth=auth, http_client=http), recorder


def test_admin_password_login_is_read_write(fake: FakeKanidm) -> None:
    """init2/begin/cred with the session header echoed; the session can write at once."""
    auth = KanidmAuth.password("admin", fake.recover_account("admin"))
    client, rec = _client(fake, auth)
    with client:
        client.create_sync_account("feed")
        client.create_sync_account("feed2")
    assert ["/v1/auth"] * 3 + ["/v1/sync_account"] * 2 == rec.paths()
    first, begin, cred = rec.requests[:3]
    assert "x-kanidm-auth-session-id" not in first.headers
    assert begin.headers["x-kanidm-auth-session-id"]
    assert cred.headers["x-kanidm-auth-session-id"]
    assert "authorization" not in first.headers
    assert True is json.loads(first.content)["step"]["init2"]["privileged"]
    info = auth.token_info
    assert info is not None
    assert ("user", "readwrite") == (info.kind, info.purpose)


def test_totp_login_with_callback(fake: FakeKanidm, clock: Clock, admin: Client) -> None:
    """A person with TOTP logs in through passwordmfa when a callback is given."""
    fake.add_admin("alice", "pw-alice", totp_secret=SECRET)
    auth = KanidmAuth.password("alice", "pw-alice", totp=lambda: totp_code(SECRET, at=clock.now))
    client, rec = _client(fake, auth)
    with client:
        client.create_sync_account("feed")
    assert ["feed"] == [a.name for a in admin.list_sync_accounts()]
    assert 4 == rec.paths().count("/v1/auth")  # init2, begin, totp, password


def test_totp_required_without_callback_is_clear(fake: FakeKanidm) -> None:
    """No totp callback: LoginError naming the mechanism, and no cred was sent."""
    fake.add_admin("alice", "pw-alice", totp_secret=SECRET)
    client, rec = _client(fake, KanidmAuth.password("alice", "pw-alice"))
    with client, pytest.raises(LoginError, match="TOTP") as info:
        client.list_sync_accounts()
    assert "passwordmfa" in info.value.offered
    assert ["/v1/auth"] == rec.paths()


def test_wrong_password_is_denied_once(fake: FakeKanidm) -> None:
    """Denied -> LoginError with Kanidm's reason; no automatic retry."""
    fake.recover_account("admin")
    client, rec = _client(fake, KanidmAuth.password("admin", "wrong"))
    with client, pytest.raises(LoginError) as info:
        client.list_sync_accounts()
    assert "incorrect password" == info.value.reason
    assert 3 == rec.paths().count("/v1/auth")


def test_unknown_user_is_not_found(fake: FakeKanidm) -> None:
    """404 nomatchingentries at init2 is a NotFoundError."""
    client, _ = _client(fake, KanidmAuth.password("ghost", "pw"))
    with client, pytest.raises(NotFoundError):
        client.list_sync_accounts()


def test_privilege_capable_session_reauths_before_write(fake: FakeKanidm) -> None:
    """privileged=False: reads use the read-only session; a write triggers /v1/reauth."""
    fake.add_admin("bob", "pw-bob")
    auth = KanidmAuth.password("bob", "pw-bob", privileged=False)
    client, rec = _client(fake, auth)
    with client:
        client.list_sync_accounts()
        info = auth.token_info
        assert info is not None
        assert "privilege_capable" == info.purpose
        client.create_sync_account("feed")
    assert "/v1/reauth" in rec.paths()
    info = auth.token_info
    assert info is not None
    assert "readwrite" == info.purpose


def test_expired_read_write_window_logs_in_again(fake: FakeKanidm, clock: Clock) -> None:
    """An admin login lasts one hour; after it a write logs in again (no reauth possible)."""
    auth = KanidmAuth(
        credentials=KanidmAuth.password("admin", fake.recover_account("admin"))._credentials,
        clock=clock,
    )
    client, rec = _client(fake, auth)
    with client:
        client.create_sync_account("a")
        clock.now += 3700
        client.create_sync_account("b")
    assert 6 == rec.paths().count("/v1/auth")
    assert "/v1/reauth" not in rec.paths()


def test_rw_window_near_its_end_relogs_before_write(fake: FakeKanidm, clock: Clock) -> None:
    """Inside the 30 s margin the admin session is replaced before the write."""
    auth = KanidmAuth(
        credentials=KanidmAuth.password("admin", fake.recover_account("admin"))._credentials,
        clock=clock,
    )
    client, rec = _client(fake, auth)
    with client:
        client.create_sync_account("a")
        clock.now += 3600 - 10
        client.list_sync_accounts()  # a read does not need the window
        assert 3 == rec.paths().count("/v1/auth")
        client.create_sync_account("b")
    assert 6 == rec.paths().count("/v1/auth")


def test_401_logs_in_again_once(fake: FakeKanidm) -> None:
    """A server-side revoked session (401) leads to one new login and a resend."""
    auth = KanidmAuth.password("admin", fake.recover_account("admin"))
    client, rec = _client(fake, auth)
    with client:
        client.list_sync_accounts()
        fake.revoke_signing_key()
        assert [] == client.list_sync_accounts()
    assert 6 == rec.paths().count("/v1/auth")


def test_read_only_token_without_credentials_fails_before_the_write(fake: FakeKanidm) -> None:
    """A privilege-capable token and no password: LoginError, nothing sent."""
    fake.add_admin("bob", "pw-bob")
    login = KanidmAuth.password("bob", "pw-bob", privileged=False)
    client, _ = _client(fake, login)
    with client:
        client.list_sync_accounts()
    token = login._token
    assert token is not None
    client, rec = _client(fake, KanidmAuth.from_token(token))
    with client:
        assert [] == client.list_sync_accounts()
        with pytest.raises(LoginError, match="read-write"):
            client.create_sync_account("feed")
    assert ["/v1/sync_account"] == rec.paths()


def test_read_only_api_token_is_permission_denied(fake: FakeKanidm) -> None:
    """API tokens are not pre-checked: the server's 403 surfaces."""
    client, _ = _client(fake, KanidmAuth.from_token(fake.read_only_admin_token()))
    with client, pytest.raises(PermissionDeniedError):
        client.create_sync_account("feed")


@pytest.mark.anyio
async def test_async_password_login(fake: FakeKanidm) -> None:
    """The same auth object drives /v1/auth under the async client."""
    auth = KanidmAuth.password("admin", fake.recover_account("admin"))
    http = httpx.AsyncClient(transport=fake.transport)
    async with AsyncClient(fake.url, auth=auth, http_client=http) as client:
        await client.create_sync_account("feed")
        assert ["feed"] == [a.name for a in await client.list_sync_accounts()]
    await http.aclose()


def test_auth_repr_hides_secrets(fake: FakeKanidm) -> None:
    """Neither the password nor the token shows in the repr."""
    auth = KanidmAuth.password("admin", "s3cret-pw")
    assert "s3cret-pw" not in repr(auth)
    token_auth = KanidmAuth.from_token(fake.admin_token)
    assert fake.admin_token not in repr(token_auth)
    with pytest.raises(ValueError, match="token"):
        KanidmAuth()


# --- token cache -------------------------------------------------------------------------


def _jws(payload: dict[str, object]) -> str:
    body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    return f"eyJhbGciOiJFUzI1NiJ9.{body}.c2ln"


def _uat(spn: str, expiry: int) -> str:
    return _jws(
        {
            "session_id": "s",
            "spn": spn,
            "expiry": expiry,
            "purpose": {"readwrite": {"expiry": expiry}},
        }
    )


def _cache(tmp_path: pathlib.Path, tokens: dict[str, str], instance: str = "") -> pathlib.Path:
    path = tmp_path / "kanidm_tokens"
    path.write_text(json.dumps({"instances": {instance: {"keys": {}, "tokens": tokens}}}))
    return path


def test_token_cache_selection_rules(tmp_path: pathlib.Path) -> None:
    """Exact SPN, name@host of the URL, unique prefix, the only token; expired skipped."""
    now = 1_800_000_000
    admin = _uat("admin@idm.example.com", now + 100)
    alice = _uat("alice@idm.example.com", now + 100)
    alice_dev = _uat("alice@dev.example.com", now + 100)
    old = _uat("old@idm.example.com", now - 1)
    path = _cache(
        tmp_path,
        {
            "admin@idm.example.com": admin,
            "alice@idm.example.com": alice,
            "alice@dev.example.com": alice_dev,
            "old@idm.example.com": old,
        },
    )
    env: dict[str, str] = {}
    assert admin == load_cached_token("admin@idm.example.com", path=path, environ=env, now=now)
    assert admin == load_cached_token("admin", path=path, environ=env, now=now)
    assert alice_dev == load_cached_token(
        "alice", url="https://dev.example.com", path=path, environ=env, now=now
    )
    with pytest.raises(ConfigError, match="alice"):
        load_cached_token("alice", path=path, environ=env, now=now)  # ambiguous
    with pytest.raises(ConfigError):
        load_cached_token("old", path=path, environ=env, now=now)  # expired
    with pytest.raises(ConfigError, match="several unexpired sessions"):
        load_cached_token(path=path, environ=env, now=now)  # several and no name
    only_old = _cache(tmp_path, {"old@idm.example.com": old, "x@idm.example.com": 5})  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match="expired or unreadable") as info:
        load_cached_token(path=only_old, environ=env, now=now)
    assert old not in str(info.value)
    single = _cache(tmp_path, {"admin@idm.example.com": admin}, instance="dev")
    env = {"KANIDM_TOKEN_CACHE_PATH": str(single), "KANIDM_INSTANCE": "dev"}
    assert admin == load_cached_token(environ=env, now=now)
    with pytest.raises(ConfigError, match="no kanidm token cache"):
        load_cached_token(path=tmp_path / "missing", environ={}, now=now)
    (tmp_path / "bad").write_text("{not json")
    with pytest.raises(ConfigError):
        load_cached_token(path=tmp_path / "bad", environ={}, now=now)


def test_token_cache_session_drives_a_client(fake: FakeKanidm, tmp_path: pathlib.Path) -> None:
    """A session stored by `kanidm login` is reused as is."""
    login = KanidmAuth.password("admin", fake.recover_account("admin"))
    client, _ = _client(fake, login)
    with client:
        client.list_sync_accounts()
    assert login._token is not None
    path = _cache(tmp_path, {"admin@kanidm.test": login._token})
    auth = KanidmAuth.from_token_cache("admin", url=fake.url, path=path)
    client, rec = _client(fake, auth)
    with client:
        client.create_sync_account("feed")
    assert ["/v1/sync_account"] == rec.paths()


# --- client config files ---------------------------------------------------------------


def test_client_config_files_instances_and_env(tmp_path: pathlib.Path) -> None:
    """Later files override earlier; named instances do not inherit; env overrides last."""
    system = tmp_path / "system"
    user = tmp_path / "user"
    system.write_text('uri = "https://sys.example.com"\nverify_ca = true\nconnect_timeout = 5\n')
    user.write_text(
        'uri = "https://idm.example.com"\nca_path = "ca.pem"\n\n'
        '["dev"]\nuri = "https://dev.example.com"\n'
    )
    paths = [system, user, tmp_path / "missing"]
    default = load_client_config(paths=paths, environ={})
    assert (
        ClientConfig(uri="https://idm.example.com", ca_path="ca.pem", connect_timeout=5) == default
    )
    dev = load_client_config("dev", paths=paths, environ={})
    assert ClientConfig(uri="https://dev.example.com") == dev
    env = {
        "KANIDM_URL": "https://env.example.com",
        "KANIDM_ACCEPT_INVALID_CERTS": "true",
        "KANIDM_SKIP_HOSTNAME_VERIFICATION": "1",
        "KANIDM_INSTANCE": "dev",
    }
    overridden = load_client_config(paths=paths, environ=env)
    assert ("https://env.example.com", False, False) == (
        overridden.uri,
        overridden.verify_ca,
        overridden.verify_hostnames,
    )
    assert False is overridden.verify()


def test_client_config_errors_and_from_config(tmp_path: pathlib.Path) -> None:
    """Bad TOML and wrong types are ConfigErrors; from_config needs a uri."""
    bad = tmp_path / "bad"
    bad.write_text("uri = ")
    with pytest.raises(ConfigError, match="TOML"):
        load_client_config(paths=[bad], environ={})
    typed = tmp_path / "typed"
    typed.write_text("verify_ca = 'yes'\n")
    with pytest.raises(ConfigError, match="verify_ca"):
        load_client_config(paths=[typed], environ={})
    with pytest.raises(ConfigError, match="uri"):
        Client.from_config(ClientConfig())
    config = ClientConfig(uri="https://idm.example.com/kanidm/", connect_timeout=3)
    with Client.from_config(config, token="t") as client:
        assert "https://idm.example.com/kanidm" == client.base_url  # a proxy's prefix is kept
        assert 3 == client._timeout.connect
    with pytest.raises(ConfigError, match="plain http"):
        Client.from_config(ClientConfig(uri="http://idm.example.com"), allow_insecure_http=True)
