"""The blocking Client against FakeKanidm: every call, and the fault cases."""

from __future__ import annotations

import uuid

import httpx
import pytest

from kanidm_sync import (
    REFRESH,
    ActiveState,
    APIConnectionError,
    AuthenticationError,
    ChangeSet,
    Client,
    ConfigError,
    Group,
    InvalidAttributeError,
    NotAppliedError,
    NotFoundError,
    PermissionDeniedError,
    SchemaViolationError,
    StateConflictError,
    SyncAccountInfo,
    UniquenessError,
)
from kanidm_sync._exceptions import ApplyOutcomeUnknownError
from kanidm_sync.testing import FakeKanidm, serve

from .conftest import bind

SYNC = "/scim/v1/Sync"


def _group(name: str) -> Group:
    return Group(id=uuid.uuid4(), external_id=f"cn={name}", name=name)


def test_admin_account_lifecycle(fake: FakeKanidm, admin: Client) -> None:
    """Create, list, get, token issue/destroy: A1-A5 with typed returns."""
    assert [] == admin.list_sync_accounts()
    admin.create_sync_account("ipasync", description="IPA feed")
    info = admin.get_sync_account("ipasync")
    assert isinstance(info, SyncAccountInfo)
    assert ("ipasync", "IPA feed", False, False) == (
        info.name,
        info.description,
        info.has_token,
        info.has_cookie,
    )
    assert [info] == admin.list_sync_accounts()
    assert info == admin.get_sync_account(str(info.uuid))
    assert None is admin.get_sync_account("nosuch")
    token = admin.generate_sync_token("ipasync", label="first")
    assert 3 == len(token.split("."))
    info2 = admin.get_sync_account("ipasync")
    assert info2 is not None
    assert info2.has_token
    with pytest.raises(SchemaViolationError):
        admin.generate_sync_token("ipasync", label="second")
    admin.destroy_sync_token("ipasync")
    admin.destroy_sync_token("ipasync")  # succeeds with no token too
    info3 = admin.get_sync_account("ipasync")
    assert info3 is not None
    assert not info3.has_token
    with pytest.raises(UniquenessError) as dup:
        admin.create_sync_account("ipasync")
    assert ("name",) == dup.value.conflicting_attributes


def test_yield_attributes_and_portal(admin: Client) -> None:
    """A7/A8/A9: set, read back (lower-cased), clear; a bad URL is refused."""
    admin.create_sync_account("feed")
    assert frozenset() == admin.get_yield_attributes("feed")
    assert None is admin.get_credential_portal("feed")
    admin.set_yield_attributes("feed", ["Mail", "primary_credential"])
    assert frozenset({"mail", "primary_credential"}) == admin.get_yield_attributes("feed")
    admin.set_credential_portal("feed", "https://portal.example.org/reset")
    assert "https://portal.example.org/reset" == admin.get_credential_portal("feed")
    info = admin.get_sync_account("feed")
    assert info is not None
    assert frozenset({"mail", "primary_credential"}) == info.yield_attributes
    assert "https://portal.example.org/reset" == info.credential_portal
    admin.set_yield_attributes("feed", [])
    admin.set_credential_portal("feed", None)
    assert frozenset() == admin.get_yield_attributes("feed")
    assert None is admin.get_credential_portal("feed")
    with pytest.raises(InvalidAttributeError):
        admin.set_credential_portal("feed", "not a url")
    with pytest.raises(TypeError):
        admin.set_yield_attributes("feed", "mail")


def test_state_apply_and_force_refresh(fake: FakeKanidm, admin: Client) -> None:
    """S1/S2 with a sync token, then A6 sends the account back to Refresh."""
    admin.create_sync_account("feed")
    token = admin.generate_sync_token("feed")
    with bind(fake, token) as sync:
        assert REFRESH == sync.get_state()
        sync.apply(
            ChangeSet(from_state=REFRESH, to_state=ActiveState(b"c1"), entries=[_group("g1")])
        )
        assert ActiveState(b"c1") == sync.get_state()
        assert b"c1" == fake.cookie("feed")
        with pytest.raises(StateConflictError):
            sync.apply(ChangeSet(from_state=ActiveState(b"old"), to_state=ActiveState(b"c2")))
        admin.force_refresh("feed")
        assert REFRESH == sync.get_state()
    with pytest.raises(NotFoundError):
        admin.force_refresh("nosuch")


def test_finalise_and_terminate(fake: FakeKanidm, admin: Client) -> None:
    """A10 keeps the entries and kills the token; A11 removes both."""
    for name in ("keep", "drop"):
        admin.create_sync_account(name)
    tokens = {n: admin.generate_sync_token(n) for n in ("keep", "drop")}
    groups = {"keep": _group("kept"), "drop": _group("dropped")}
    for name, token in tokens.items():
        with bind(fake, token) as sync:
            sync.apply(
                ChangeSet(from_state=REFRESH, to_state=ActiveState(b"1"), entries=[groups[name]])
            )
    admin.finalise("keep")
    admin.terminate("drop")
    assert [] == admin.list_sync_accounts()
    kept = fake.store.entry("kept")
    assert kept is not None
    assert "sync_object" not in kept.classes
    assert None is fake.store.entry("dropped")
    for token in tokens.values():
        with bind(fake, token) as sync, pytest.raises(AuthenticationError):
            sync.get_state()


def test_lost_reply_after_commit_reports_success(fake: FakeKanidm, admin: Client) -> None:
    """The reply is dropped after the commit: apply re-reads the state and succeeds."""
    admin.create_sync_account("feed")
    with bind(fake, admin.generate_sync_token("feed")) as sync:
        fake.drop_next_response(path=SYNC)
        sync.apply(
            ChangeSet(from_state=REFRESH, to_state=ActiveState(b"c1"), entries=[_group("g1")])
        )
        assert ActiveState(b"c1") == sync.get_state()
    methods = [(r.method, r.path) for r in fake.history if r.path == SYNC]
    assert [("POST", SYNC), ("GET", SYNC), ("GET", SYNC)] == methods
    assert fake.store.entry("g1") is not None


def test_lost_reply_without_commit_is_unknown(fake: FakeKanidm, admin: Client) -> None:
    """The connection drops before Kanidm acts: the old state proves nothing (unknown)."""
    admin.create_sync_account("feed")
    token = admin.generate_sync_token("feed")

    def lossy(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == SYNC:
            raise httpx.RemoteProtocolError("peer closed connection", request=request)
        return fake(request)

    client = Client(
        fake.url, token=token, http_client=httpx.Client(transport=httpx.MockTransport(lossy))
    )
    with client, pytest.raises(ApplyOutcomeUnknownError) as info:
        client.apply(ChangeSet(from_state=REFRESH, to_state=ActiveState(b"c1")))
    assert REFRESH == info.value.state
    assert isinstance(info.value.__cause__, APIConnectionError)
    assert "outcome unknown" in str(info.value)
    assert "safe to retry" not in str(info.value)


def test_timeout_after_commit_reports_success(fake: FakeKanidm, admin: Client) -> None:
    """A read timeout after Kanidm committed: the re-read proves success."""
    admin.create_sync_account("feed")
    token = admin.generate_sync_token("feed")

    def slow(request: httpx.Request) -> httpx.Response:
        response = fake(request)
        if request.method == "POST" and request.url.path == SYNC:
            raise httpx.ReadTimeout("timed out", request=request)
        return response

    client = Client(
        fake.url, token=token, http_client=httpx.Client(transport=httpx.MockTransport(slow))
    )
    with client:
        client.apply(ChangeSet(from_state=REFRESH, to_state=ActiveState(b"c1")))
    assert b"c1" == fake.cookie("feed")


def test_408_without_commit_is_not_applied(fake: FakeKanidm, admin: Client) -> None:
    """Kanidmd's 408 (rolled back): the re-read shows the old state -> NotAppliedError."""
    admin.create_sync_account("feed")
    with bind(fake, admin.generate_sync_token("feed")) as sync:
        fake.fail_next(status=408, path=SYNC)
        with pytest.raises(NotAppliedError) as info:
            sync.apply(ChangeSet(from_state=REFRESH, to_state=ActiveState(b"c1")))
    assert REFRESH == info.value.state
    assert 408 == getattr(info.value.__cause__, "status_code", None)


def test_5xx_on_get_is_retried(fake: FakeKanidm, admin: Client) -> None:
    """Two 503s on S1 are absorbed by the retries."""
    admin.create_sync_account("feed")
    with bind(fake, admin.generate_sync_token("feed")) as sync:
        fake.fail_next(2, status=503, path=SYNC)
        assert REFRESH == sync.get_state()
    assert [503, 503, 200] == [r.status for r in fake.history if r.path == SYNC]


def test_revoked_token_is_an_authentication_error(fake: FakeKanidm, admin: Client) -> None:
    """A destroyed sync token gets 401; so does a sync token on an admin endpoint."""
    admin.create_sync_account("feed")
    token = admin.generate_sync_token("feed")
    with bind(fake, token) as sync:
        with pytest.raises(AuthenticationError) as info:
            sync.list_sync_accounts()
        assert 401 == info.value.status_code
        admin.destroy_sync_token("feed")
        with pytest.raises(AuthenticationError):
            sync.get_state()
    with pytest.raises(AuthenticationError):
        admin.get_state()  # an admin token on the sync endpoint


def test_read_only_session_is_permission_denied(fake: FakeKanidm, admin: Client) -> None:
    """A read-only admin can read, gets 403 on writes and 500 notauthorised on finalise."""
    admin.create_sync_account("feed")
    with bind(fake, fake.read_only_admin_token()) as ro:
        assert ["feed"] == [a.name for a in ro.list_sync_accounts()]
        with pytest.raises(PermissionDeniedError) as write:
            ro.create_sync_account("other")
        assert 403 == write.value.status_code
        with pytest.raises(PermissionDeniedError) as fin:
            ro.finalise("feed")
        assert (500, "notauthorised") == (fin.value.status_code, fin.value.variant)


def test_non_domain_admin_sees_nothing(fake: FakeKanidm, admin: Client) -> None:
    """idm_admin is not in domain_admins: empty list and None (never 404) on reads."""
    admin.create_sync_account("feed")
    with bind(fake, fake.api_token("idm_admin")) as idm:
        assert [] == idm.list_sync_accounts()
        assert None is idm.get_sync_account("feed")


def test_over_real_loopback_http(fake: FakeKanidm) -> None:
    """The same calls over a real HTTP server (plain http explicitly allowed)."""
    with serve(fake) as url:
        with pytest.raises(ValueError, match="allow_insecure_http"):
            Client(url, token=fake.admin_token)
        with Client(url, token=fake.admin_token, allow_insecure_http=True) as client:
            client.create_sync_account("feed")
            token = client.generate_sync_token("feed")
        with Client(url, token=token, allow_insecure_http=True, max_retries=0) as sync:
            fake.drop_next_response(path=SYNC)
            sync.apply(ChangeSet(from_state=REFRESH, to_state=ActiveState(b"x")))
            assert ActiveState(b"x") == sync.get_state()


def test_constructor_validation() -> None:
    """Bad URLs, token+auth, TLS options with an injected client are refused."""
    with pytest.raises(ConfigError, match="https"):
        Client("ftp://kanidm.test", token="t")
    with pytest.raises(ValueError, match="max_retries"):
        Client("https://kanidm.test", max_retries=-1)
    with pytest.raises(ValueError, match="max_response_bytes"):
        Client("https://kanidm.test", max_response_bytes=0)
    with pytest.raises(ValueError, match="TLS"), httpx.Client() as http:
        Client("https://kanidm.test", http_client=http, ca_path="ca.pem")
    with pytest.raises(ConfigError, match="query") as query:
        Client("https://kanidm.test/some/path?token=secret-q", token="t")
    assert "secret-q" not in str(query.value)
    with Client(" https://kanidm.test/some/path/\n", token="t") as client:
        assert "https://kanidm.test/some/path" == client.base_url
