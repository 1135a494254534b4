"""SyncAccount: constructors, masking, and the calls it composes."""

from __future__ import annotations

import pathlib
import uuid

import pytest

from kanidm_sync import (
    REFRESH,
    ActiveState,
    AuthenticationError,
    ChangeSet,
    Client,
    ConfigError,
    Group,
    SyncAccount,
)
from kanidm_sync.testing import FakeKanidm, serve

TOKEN = "aaa.bbb.ccc"


def test_repr_masks_the_token() -> None:
    """The token is never in the repr, str or attrs-generated output."""
    account = SyncAccount(url="https://idm.example.com", token=TOKEN, name="ipasync")
    assert "SyncAccount(url='https://idm.example.com', name='ipasync', token=***)" == repr(account)
    assert TOKEN not in str(account)
    assert TOKEN not in repr(account.client())


def test_from_env_token_and_file(tmp_path: pathlib.Path) -> None:
    """KANIDM_SYNC_TOKEN wins; KANIDM_SYNC_TOKEN_FILE is read (stripped) otherwise."""
    env = {
        "KANIDM_URL": "https://idm.example.com",
        "KANIDM_SYNC_TOKEN": TOKEN,
        "KANIDM_SYNC_ACCOUNT": "ipasync",
        "KANIDM_CA_PATH": "ca.pem",
    }
    account = SyncAccount.from_env(env)
    assert ("https://idm.example.com", TOKEN, "ipasync", "ca.pem") == (
        account.url,
        account.token,
        account.name,
        account.ca_path,
    )
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    from_file = SyncAccount.from_env(
        {"KANIDM_URL": "https://x.test", "KANIDM_SYNC_TOKEN_FILE": str(token_file)}
    )
    assert (TOKEN, None) == (from_file.token, from_file.name)
    assert TOKEN == SyncAccount.from_token_file(token_file, url="https://x.test").token


def test_from_env_errors(tmp_path: pathlib.Path) -> None:
    """Missing URL or token, unreadable or empty files: ConfigError without the token."""
    with pytest.raises(ConfigError, match="KANIDM_URL"):
        SyncAccount.from_env({})
    with pytest.raises(ConfigError, match="KANIDM_SYNC_TOKEN"):
        SyncAccount.from_env({"KANIDM_URL": "https://x.test"})
    with pytest.raises(ConfigError, match="cannot read"):
        SyncAccount.from_token_file(tmp_path / "missing", url="https://x.test")
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(ConfigError, match="empty"):
        SyncAccount.from_token_file(empty, url="https://x.test")


def test_composed_calls_over_loopback(fake: FakeKanidm) -> None:
    """create() issues the token; state()/apply()/rotate/finalise work end to end."""
    with serve(fake) as url, Client(url, token=fake.admin_token, allow_insecure_http=True) as adm:
        account = SyncAccount.create(adm, "feed", description="d")
        assert TOKEN not in repr(account)
        assert account.token not in repr(account)
        assert REFRESH == account.state()
        group = Group(id=uuid.uuid4(), external_id="cn=g", name="g")
        account.apply(ChangeSet(from_state=REFRESH, to_state=ActiveState(b"1"), entries=[group]))
        assert ActiveState(b"1") == account.state()
        info = account.info(adm)
        assert info is not None
        assert info.has_cookie
        account.force_refresh(adm)
        assert REFRESH == account.state()
        rotated = account.rotate_token(adm)
        assert rotated.token != account.token
        with pytest.raises(AuthenticationError):
            account.state()
        assert REFRESH == rotated.state()
        rotated.finalise(adm)
        with pytest.raises(AuthenticationError):
            rotated.state()


def test_terminate_and_nameless_helpers(fake: FakeKanidm) -> None:
    """terminate() deletes the account; admin helpers need a name."""
    with serve(fake) as url, Client(url, token=fake.admin_token, allow_insecure_http=True) as adm:
        account = SyncAccount.create(adm, "feed")
        account.terminate(adm)
        assert [] == adm.list_sync_accounts()
        with pytest.raises(ValueError, match="name"):
            SyncAccount(url=url, token=TOKEN, allow_insecure_http=True).finalise(adm)


@pytest.mark.anyio
async def test_async_state_and_apply(fake: FakeKanidm) -> None:
    """astate()/aapply() use an AsyncClient."""
    provisioned = fake.provision_sync_account("feed")
    with serve(fake) as url:
        account = SyncAccount(url=url, token=provisioned.token, allow_insecure_http=True)
        assert REFRESH == await account.astate()
        await account.aapply(ChangeSet(from_state=REFRESH, to_state=ActiveState(b"1")))
        assert ActiveState(b"1") == await account.astate()


def test_from_env_allows_plain_http_only_when_asked(fake: FakeKanidm) -> None:
    """KANIDM_ALLOW_INSECURE_HTTP=true lets from_env reach a loopback server; default refuses."""
    with serve(fake) as url:
        token = fake.provision_sync_account("envfeed").token
        env = {"KANIDM_URL": url, "KANIDM_SYNC_TOKEN": token}
        with pytest.raises(ValueError, match="http"):
            SyncAccount.from_env(env).state()
        account = SyncAccount.from_env({**env, "KANIDM_ALLOW_INSECURE_HTTP": "true"})
        assert account.allow_insecure_http
        assert REFRESH == account.state()
    with pytest.raises(ConfigError, match="KANIDM_ALLOW_INSECURE_HTTP") as info:
        SyncAccount.from_env({**env, "KANIDM_ALLOW_INSECURE_HTTP": "maybe"})
    assert token not in str(info.value)
