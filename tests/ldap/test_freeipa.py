"""FreeIpaSource against slapd loaded with a FreeIPA-shaped tree (lab/ipa-mini.ldif)."""

from __future__ import annotations

import os

import httpx
import pytest
from slapd import ADMIN_DN, ADMIN_PW, BASE_DN, LAB, SYNC_DN, SYNC_PW, Slapd

from kanidm_sync import REFRESH, ActiveState, ChangeSet, Group, Person, PosixGroup
from kanidm_sync.adapters import Delta, FullImage

try:
    import ldap
except ImportError:
    if os.environ.get("CI", "").lower() == "true":
        raise
    pytest.skip("python-ldap is not installed (pip install -e '.[ldap]')", allow_module_level=True)

from kanidm_sync.adapters.ldap import FreeIpaSource, IpaConfig

pytestmark = pytest.mark.slapd

SEED = (LAB / "seed.ldif", LAB / "ipa-seed.ldif")
TUSER_DN = f"uid=tuser,cn=users,cn=accounts,{BASE_DN}"
TOKEN_DN = f"ipaTokenUniqueID=380e27a4-438d-4c94-9dde-a3f6bc64ea1a,cn=otp,{BASE_DN}"
STAFF_DN = f"cn=staff,cn=groups,cn=accounts,{BASE_DN}"


def source(server: Slapd) -> FreeIpaSource:
    config = IpaConfig(
        ipa_uri=server.uri, ipa_sync_dn=SYNC_DN, ipa_sync_pw=SYNC_PW, ipa_sync_base_dn=BASE_DN
    )
    return FreeIpaSource(config)


def modify(server: Slapd, dn: str, changes: list[tuple[int, str, list[bytes]]]) -> None:
    conn = ldap.initialize(server.uri)
    conn.simple_bind_s(ADMIN_DN, ADMIN_PW)
    conn.modify_s(dn, changes)
    conn.unbind_s()


def test_full_refresh_applies_builtin_skips_and_totp(new_slapd) -> None:  # type: ignore[no-untyped-def]
    """Admin, editors and user-private groups are left out; the token joins its owner.

    seed.ldif's posixAccount persons (no ipaNTUserAttrs) are synced, as by kanidm-ipa-sync.
    """
    batch = source(new_slapd(seed=SEED)).fetch(REFRESH)
    assert isinstance(batch, FullImage)
    entries = {e.name: e for e in batch.entries if isinstance(e, Person | Group)}
    assert ["alice", "bob", "carol", "dave", "erin", "staff", "tuser"] == sorted(entries)
    tuser = entries["tuser"]
    assert isinstance(tuser, Person)
    assert "ipaNTHash: iEb36u6PsRetBr3YMLdYbA" == tuser.password_import
    [totp] = tuser.totp_import
    assert "hS/2a0DXBSKMJIlIcAJbBfCCZN0b8aTpoaJcj0RAAlV7QRQ=" == totp.secret
    assert PosixGroup(gidnumber=8200100) == entries["staff"].posix


def test_changed_token_brings_its_owner(new_slapd) -> None:  # type: ignore[no-untyped-def]
    """Only the token changed: its owner is looked up and sent with the new token."""
    server = new_slapd(seed=SEED)
    src = source(server)
    first = src.fetch(REFRESH)
    assert isinstance(first, FullImage)
    modify(server, TOKEN_DN, [(ldap.MOD_REPLACE, "ipaTokenOTPDigits", [b"8"])])
    batch = src.fetch(ActiveState(first.cookie))
    assert isinstance(batch, Delta)
    [tuser] = batch.entries
    assert isinstance(tuser, Person)
    assert [8] == [t.digits for t in tuser.totp_import]


def test_changed_person_keeps_its_tokens(new_slapd) -> None:  # type: ignore[no-untyped-def]
    """Only the person changed: its unchanged tokens are looked up so none is lost."""
    server = new_slapd(seed=SEED)
    src = source(server)
    first = src.fetch(REFRESH)
    assert isinstance(first, FullImage)
    modify(server, TUSER_DN, [(ldap.MOD_REPLACE, "cn", [b"Tess User"])])
    batch = src.fetch(ActiveState(first.cookie))
    assert isinstance(batch, Delta)
    [tuser] = batch.entries
    assert isinstance(tuser, Person)
    assert "Tess User" == tuser.displayname
    assert ["380e27a4-438d-4c94-9dde-a3f6bc64ea1a"] == [t.external_id for t in tuser.totp_import]


def test_freeipa_batches_apply_to_the_double(new_slapd) -> None:  # type: ignore[no-untyped-def]
    """The person with NT hash and TOTP, and the group, are accepted by the in-memory Kanidm."""
    testing = pytest.importorskip("kanidm_sync.testing")
    from kanidm_sync import Client

    server = new_slapd(seed=SEED)
    fake = testing.FakeKanidm()
    account = fake.provision_sync_account("ipa")
    with Client(
        fake.url, token=account.token, http_client=httpx.Client(transport=fake.transport)
    ) as client:
        state = client.get_state()
        batch = source(server).fetch(state)
        assert isinstance(batch, FullImage)
        client.apply(
            ChangeSet(from_state=state, to_state=ActiveState(batch.cookie), entries=batch.entries)
        )
    staff = fake.store.entry("staff")
    assert staff is not None
    assert 1 == len(staff.get("member"))
    assert fake.store.entry("tuser") is not None
