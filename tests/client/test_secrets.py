"""No token or password appears in a log record, a repr or an exception text."""

from __future__ import annotations

import logging
import traceback

import httpx
import pytest

from kanidm_sync import (
    REFRESH,
    ActiveState,
    ChangeSet,
    Client,
    KanidmAuth,
    KanidmSyncError,
    SyncAccount,
)
from kanidm_sync._proto._flows import LoginCredentials
from kanidm_sync.testing import FakeKanidm, serve


def _run(
    url: str, fake: FakeKanidm, password: str, texts: list[str], http: httpx.Client | None
) -> list[str]:
    """A full admin + sync run with failures; returns the secrets it handled."""
    secrets = [password, fake.admin_token]
    kwargs = {"http_client": http} if http is not None else {"allow_insecure_http": True}

    def capture(exc: BaseException) -> None:
        texts.append(str(exc))
        texts.append(repr(exc))
        texts.append("".join(traceback.format_exception(exc)))
        texts.extend(str(getattr(exc, a, "")) for a in ("body", "url", "reason", "detail"))

    auth = KanidmAuth.password("admin", password)
    with Client(url, auth=auth, **kwargs) as admin:
        admin.create_sync_account("feed", description="d")
        token = admin.generate_sync_token("feed", label="l")
        secrets += [token, auth._token or ""]
        account = SyncAccount(url=url, token=token, name="feed", allow_insecure_http=True)
        texts += [repr(admin), repr(auth), repr(account), str(account), repr(account.client())]
        with Client(url, token=token, **kwargs) as sync:
            texts.append(repr(sync))
            sync.apply(ChangeSet(from_state=REFRESH, to_state=ActiveState(b"1")))
            fake.drop_next_response(path="/scim/v1/Sync")
            sync.apply(ChangeSet(from_state=ActiveState(b"1"), to_state=ActiveState(b"2")))
            for failing in (
                lambda: sync.apply(ChangeSet(from_state=ActiveState(b"stale"), to_state=REFRESH)),
                lambda: sync.list_sync_accounts(),
                lambda: admin.generate_sync_token("feed"),
            ):
                with pytest.raises(KanidmSyncError) as info:
                    failing()
                capture(info.value)
            admin.destroy_sync_token("feed")
            with pytest.raises(KanidmSyncError) as revoked:
                sync.get_state()
            capture(revoked.value)
    with Client(url, auth=KanidmAuth.password("admin", password + "-wrong"), **kwargs) as bad:
        with pytest.raises(KanidmSyncError) as denied:
            bad.list_sync_accounts()
        capture(denied.value)
        secrets.append(password + "-wrong")
    texts.append(repr(LoginCredentials(username="admin", password=password, backup_code="bc-1")))
    return secrets


def _assert_clean(secrets: list[str], texts: list[str], caplog: pytest.LogCaptureFixture) -> None:
    logged = [r.getMessage() for r in caplog.records] + [caplog.text]
    assert caplog.records, "the run should have logged request lines"
    assert any("kanidm_sync" == r.name and "opid=" in r.getMessage() for r in caplog.records)
    for secret in secrets:
        assert secret
        for text in logged + texts:
            assert secret not in text


def test_no_secret_leaks_over_mock_transport(
    fake: FakeKanidm, caplog: pytest.LogCaptureFixture
) -> None:
    """A full run through MockTransport leaks nothing at DEBUG."""
    caplog.set_level(logging.DEBUG)
    password = fake.recover_account("admin")
    texts: list[str] = []
    with httpx.Client(transport=fake.transport) as http:
        secrets = _run(fake.url, fake, password, texts, http)
    _assert_clean(secrets, texts, caplog)


def test_no_secret_leaks_over_real_http(fake: FakeKanidm, caplog: pytest.LogCaptureFixture) -> None:
    """The same run over loopback HTTP (httpcore's DEBUG logs included) leaks nothing."""
    caplog.set_level(logging.DEBUG)
    password = fake.recover_account("admin")
    texts: list[str] = []
    with serve(fake) as url:
        secrets = _run(url, fake, password, texts, None)
    assert any(r.name.startswith("httpcore") for r in caplog.records)
    _assert_clean(secrets, texts, caplog)


def test_library_configures_no_handlers() -> None:
    """logging.getLogger("kanidm_sync") has no handler of ours but a NullHandler."""
    handlers = logging.getLogger("kanidm_sync").handlers
    assert [logging.NullHandler] == [type(h) for h in handlers]
