"""The admin API (spec §2.2, A1-A11) through the public clients, logged in with a password.

Runs against the double and, with ``pytest --kanidmd PATH``, a real kanidmd: ``admin`` logs in
with its recovered password through ``/v1/auth`` (``KanidmAuth.password``), then every
sync-account call of :class:`~kanidm_sync.Client` and :class:`~kanidm_sync.AsyncClient`.
"""

from __future__ import annotations

import uuid

import httpx
import pytest

from kanidm_sync import (
    REFRESH,
    ActiveState,
    AsyncClient,
    AuthenticationError,
    ChangeSet,
    Client,
    Group,
    KanidmAuth,
    NotFoundError,
    PermissionDeniedError,
    SyncAccount,
)
from kanidm_sync.testing import FakeTarget, KanidmTarget

_G = uuid.UUID("5f0c1e0a-3d7e-4c55-9a61-2b6f0e4d7a10")


def test_a1_to_a11_with_password_login(kanidm_target: KanidmTarget) -> None:
    """Create, read, token, yield, portal, force refresh, destroy, finalise: all as admin."""
    kanidm_target.track_sync_account("admin_api_a")
    with kanidm_target.admin_client() as admin:
        assert "admin_api_a" not in [a.name for a in admin.list_sync_accounts()]
        admin.create_sync_account("admin_api_a", description="A3 description")  # A3
        info = admin.get_sync_account("admin_api_a")  # A2
        assert info is not None
        assert ("admin_api_a", "A3 description", False, False) == (
            info.name,
            info.description,
            info.has_token,
            info.has_cookie,
        )
        assert info.uuid == admin.get_sync_account(str(info.uuid)).uuid  # type: ignore[union-attr]
        assert "admin_api_a" in [a.name for a in admin.list_sync_accounts()]  # A1
        token = admin.generate_sync_token("admin_api_a", label="a4")  # A4
        assert admin.get_sync_account("admin_api_a").has_token  # type: ignore[union-attr]
        admin.set_yield_attributes("admin_api_a", ["legalname", "mail"])  # A8
        assert frozenset({"legalname", "mail"}) == admin.get_yield_attributes("admin_api_a")
        admin.set_yield_attributes("admin_api_a", [])
        assert frozenset() == admin.get_yield_attributes("admin_api_a")
        admin.set_credential_portal("admin_api_a", "https://portal.example.com/reset")  # A9
        assert "https://portal.example.com/reset" == admin.get_credential_portal("admin_api_a")
        admin.set_credential_portal("admin_api_a", None)
        assert admin.get_credential_portal("admin_api_a") is None

        with Client(kanidm_target.url, token=token, **kanidm_target.client_options()) as sync:
            assert REFRESH == sync.get_state()
            group = Group(id=kanidm_target.fresh_uuid(_G), external_id="cn=a_grp", name="a_grp")
            sync.apply(ChangeSet(from_state=REFRESH, to_state=ActiveState(b"a1"), entries=[group]))
            assert ActiveState(b"a1") == sync.get_state()
            assert admin.get_sync_account("admin_api_a").has_cookie  # type: ignore[union-attr]
            admin.force_refresh("admin_api_a")  # A6
            assert REFRESH == sync.get_state()
            admin.destroy_sync_token("admin_api_a")  # A5
            with pytest.raises(AuthenticationError):
                sync.get_state()
        assert not admin.get_sync_account("admin_api_a").has_token  # type: ignore[union-attr]
        admin.finalise("admin_api_a")  # A10
        assert admin.get_sync_account("admin_api_a") is None
        kept = kanidm_target.entry("a_grp")
        assert kept is not None
        assert "sync_object" not in kept.classes


def test_a11_terminate_through_sync_account(kanidm_target: KanidmTarget) -> None:
    """SyncAccount.create, apply through it, then terminate: the group is gone."""
    kanidm_target.track_sync_account("admin_api_b")
    with kanidm_target.admin_client() as admin:
        feed = SyncAccount.create(admin, "admin_api_b")
        feed = SyncAccount(
            url=kanidm_target.url,
            token=feed.token,
            name="admin_api_b",
            ca_path=kanidm_target.ca_path,
        )
        group = Group(id=kanidm_target.fresh_uuid(_G), external_id="cn=b_grp", name="b_grp")
        http_client = kanidm_target.client_options().get("http_client")
        with feed.client(http_client=http_client) as sync:
            sync.apply(ChangeSet(from_state=REFRESH, to_state=ActiveState(b"b1"), entries=[group]))
        assert kanidm_target.entry("b_grp") is not None
        feed.terminate(admin)  # A11
        assert kanidm_target.entry("b_grp") is None
        assert admin.get_sync_account("admin_api_b") is None


def test_idm_admin_cannot_manage_sync_accounts(kanidm_target: KanidmTarget) -> None:
    """idm_admin logs in but is not in domain_admins: creating an account is refused."""
    with kanidm_target.admin_client("idm_admin") as idm_admin:
        assert [] == [a for a in idm_admin.list_sync_accounts() if a.name == "nobody_sync"]
        with pytest.raises(PermissionDeniedError):
            idm_admin.create_sync_account("idm_admin_sync")


def test_unknown_account_is_not_found(kanidm_target: KanidmTarget) -> None:
    """A login of an unknown account: kanidmd answers 404 nomatchingentries at init2.

    (A wrong password for ``admin`` would soft-lock the account for every later test of a
    shared server: kanidmd locks an account after a failed password.)
    """
    auth = KanidmAuth.password("nobody_here", "not-the-password-0")
    with (
        Client(kanidm_target.url, auth=auth, **kanidm_target.client_options()) as client,
        pytest.raises(NotFoundError) as caught,
    ):
        client.list_sync_accounts()
    assert "not-the-password-0" not in str(caught.value)


@pytest.mark.anyio
async def test_async_client_admin_calls(kanidm_target: KanidmTarget) -> None:
    """The async twin does the same admin calls with the same password login."""
    kanidm_target.track_sync_account("admin_api_c")
    # The double: an async transport for the async client; a real server: its CA.
    http_client = (
        httpx.AsyncClient(transport=kanidm_target.fake.transport)
        if isinstance(kanidm_target, FakeTarget)
        else None
    )
    async with AsyncClient(
        kanidm_target.url,
        auth=kanidm_target.admin_auth(),
        http_client=http_client,
        ca_path=kanidm_target.client_options().get("ca_path"),
    ) as admin:
        await admin.create_sync_account("admin_api_c")
        token = await admin.generate_sync_token("admin_api_c")
        assert token
        info = await admin.get_sync_account("admin_api_c")
        assert info is not None
        assert info.has_token
        await admin.terminate("admin_api_c")
        assert await admin.get_sync_account("admin_api_c") is None
