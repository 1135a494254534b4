"""The Active Directory source against a real Samba AD DC: full, DirSync and USN deltas."""

from __future__ import annotations

import datetime as dt
import os
import pathlib
import uuid
from collections.abc import Iterator, Sequence

import attrs
import httpx
import pytest
import samba_dc as samba

try:
    import ldap
except ImportError:  # the conftest's rule: skipped with the reason, a failure in CI
    if os.environ.get("CI", "").lower() == "true":
        raise
    pytest.skip("python-ldap is not installed (pip install -e '.[ldap]')", allow_module_level=True)

from kanidm_sync import (
    ActiveState,
    ChangeSet,
    Client,
    Group,
    Mail,
    Person,
    PosixAccount,
    PosixGroup,
    RefreshState,
    RetainIgnore,
    SourceError,
)
from kanidm_sync._runner import Runner
from kanidm_sync.adapters import Delta, FullImage, RefreshRequired
from kanidm_sync.adapters._ad_cookie import DirSyncCookie, UsnCookie, decode_cookie, encode_cookie
from kanidm_sync.adapters.ad import AdConfig, AdSource, guid_to_uuid
from kanidm_sync.testing import FakeKanidm

MODES = ["dirsync", "usn"]
DISABLED = "1970-01-01T00:00:00+00:00"


def make_config(dc: samba.SambaDC, mode: str = "dirsync", **options: object) -> AdConfig:
    """A configuration pointed at the test DC, bound as Administrator."""
    settings: dict[str, object] = {
        "url": dc.uri,
        "bind_dn": dc.admin_dn,
        "bind_password": dc.admin_pw,
        "base_dn": dc.base_dn,
        "mode": mode,
        **options,
    }
    return AdConfig(**settings)  # type: ignore[arg-type]


def full(source: AdSource) -> FullImage:
    """A full image from ``source``."""
    batch = source.fetch(RefreshState())
    assert isinstance(batch, FullImage)
    return batch


def delta(source: AdSource, cookie: bytes) -> Delta:
    """A delta from ``cookie``."""
    batch = source.fetch(ActiveState(cookie))
    assert isinstance(batch, Delta), batch
    return batch


def by_name(entries: Sequence[object]) -> dict[str, Person | Group]:
    """Entries keyed by Kanidm name."""
    out: dict[str, Person | Group] = {}
    for entry in entries:
        assert isinstance(entry, Person | Group)
        out[entry.name] = entry
    return out


def guid_of(dc: samba.SambaDC, dn: str) -> uuid.UUID:
    """The objectGUID of ``dn`` as AD prints it."""
    conn = samba.connect(dc)
    try:
        raw = conn.search_s(dn, ldap.SCOPE_BASE, attrlist=["objectGUID"])[0][1]["objectGUID"][0]
    finally:
        conn.unbind_s()
    return guid_to_uuid(raw)


@pytest.fixture
def admin(fresh_ad: samba.SambaDC) -> Iterator[object]:
    """An administrator connection to the freshly restored domain."""
    conn = samba.connect(fresh_ad)
    yield conn
    conn.unbind_s()


def add_user(conn: object, name: str, uid: int, *, mail: str | None = None) -> str:
    """Add an enabled user ``name`` in CN=Users; returns its DN."""
    dn = f"CN={name.title()} New,{samba.USERS_DN}"
    attributes = samba.user_attributes(
        name, name.title(), "New", uid, "/bin/bash", mail or f"{name}@example.test", True
    )
    conn.add_s(dn, attributes)  # type: ignore[attr-defined]
    return dn


def test_full_image_maps_the_seeded_domain(fresh_ad: samba.SambaDC) -> None:
    """A full read maps users and groups, skips system objects and keys entries by objectGUID."""
    source = AdSource(make_config(fresh_ad))
    batch = full(source)
    entries = by_name(batch.entries)
    assert [
        "admins",
        "alice",
        "bob",
        "carol",
        "dave",
        "developers",
        "erin",
        "sales_team",
    ] == sorted(entries)
    alice = entries["alice"]
    assert (
        Person(
            id=guid_of(fresh_ad, samba.user_dn("alice")),
            external_id=samba.user_dn("alice"),
            name="alice",
            displayname="Alice Anders",
            mail=[Mail("alice@example.test")],
            posix=PosixAccount(gidnumber=10001, loginshell="/bin/bash"),
        )
        == alice
    )
    assert DISABLED == entries["carol"].account_expire  # type: ignore[union-attr]
    assert "2030-01-01T00:00:00+00:00" == entries["dave"].account_expire  # type: ignore[union-attr]
    erin = entries["erin"]
    assert isinstance(erin, Person)
    assert (None, (), DISABLED) == (erin.posix, erin.mail, erin.account_expire)
    developers = entries["developers"]
    assert isinstance(developers, Group)
    assert PosixGroup(gidnumber=20001) == developers.posix
    assert "The developers" == developers.description
    # Nested group: admins is a member of developers, by DN.
    assert sorted(
        [samba.user_dn(n) for n in ("alice", "bob", "carol")] + [samba.group_dn("admins")]
    ) == sorted(developers.member)
    assert samba.group_dn("Sales Team") == entries["sales_team"].external_id
    assert isinstance(decode_cookie(batch.cookie), DirSyncCookie)
    assert "full" == (source.last_stats.kind if source.last_stats else None)


def test_full_sync_into_the_double_through_the_runner(
    fresh_ad: samba.SambaDC, tmp_path: pathlib.Path
) -> None:
    """The runner applies the domain to the in-memory Kanidm, nested groups resolved."""
    fake = FakeKanidm()
    account = fake.provision_sync_account("ad")
    source = AdSource(make_config(fresh_ad))
    with Client(
        fake.url, token=account.token, http_client=httpx.Client(transport=fake.transport)
    ) as client:
        Runner(client, source, state_path=tmp_path / "state.json").run_once()
    alice = fake.store.entry("alice")
    admins = fake.store.entry("admins")
    developers = fake.store.entry("developers")
    assert alice is not None
    assert admins is not None
    assert developers is not None
    assert guid_of(fresh_ad, samba.user_dn("alice")) == alice.uuid
    members = {str(v) for v in developers.get("member")}
    assert str(admins.uuid) in members  # the nested group
    assert str(alice.uuid) in members
    assert "1970-01-01T00:00:00Z" == str(fake.store.entry("carol").first("account_expire"))  # type: ignore[union-attr]
    assert fake.store.entry("administrator") is None  # system objects are skipped
    assert fake.store.entry("sales_team") is not None


def test_full_sync_through_client_apply(fresh_ad: samba.SambaDC) -> None:
    """A full image applied with Client.apply as one refresh ChangeSet lands in the double."""
    fake = FakeKanidm()
    account = fake.provision_sync_account("ad")
    batch = full(AdSource(make_config(fresh_ad, "usn")))
    with Client(
        fake.url, token=account.token, http_client=httpx.Client(transport=fake.transport)
    ) as client:
        client.apply(
            ChangeSet(
                from_state=RefreshState(),
                to_state=ActiveState(batch.cookie),
                entries=batch.entries,
                retain=RetainIgnore(),
            )
        )
    assert batch.cookie == fake.cookie("ad")
    assert 8 == len([e for e in fake.store.entries() if e.name in by_name(batch.entries)])


@pytest.mark.parametrize("mode", MODES)
def test_add_modify_disable_delete_then_delta(
    fresh_ad: samba.SambaDC, admin: object, mode: str
) -> None:
    """Add, modify, disable and delete, then one delta carries exactly those changes."""
    source = AdSource(make_config(fresh_ad, mode))
    first = full(source)
    before = by_name(first.entries)
    frank_dn = add_user(admin, "frank", 10006)
    admin.modify_s(  # type: ignore[attr-defined]
        samba.user_dn("alice"), [(ldap.MOD_REPLACE, "mail", [b"alice.anders@example.test"])]
    )
    admin.modify_s(  # type: ignore[attr-defined]
        samba.user_dn("dave"), [(ldap.MOD_REPLACE, "userAccountControl", [samba.DISABLED])]
    )
    admin.delete_s(samba.user_dn("bob"))  # type: ignore[attr-defined]
    change = delta(source, first.cookie)
    entries = by_name(change.entries)
    assert (before["bob"].id,) == change.deleted
    # The delete made every group be re-read; the runner sends only the changed ones.
    assert ["admins", "alice", "dave", "developers", "frank", "sales_team"] == sorted(entries)
    assert (Mail("alice.anders@example.test"),) == entries["alice"].mail
    assert DISABLED == entries["dave"].account_expire  # type: ignore[union-attr]
    assert guid_of(fresh_ad, frank_dn) == entries["frank"].id
    developers = entries["developers"]
    assert isinstance(developers, Group)
    assert samba.user_dn("bob") not in developers.member
    assert 3 == len(developers.member)
    # Nothing changed since: an empty delta.
    again = delta(source, change.cookie)
    assert ((), ()) == (again.entries, again.deleted)


@pytest.mark.parametrize("mode", MODES)
def test_membership_added_and_removed(fresh_ad: samba.SambaDC, admin: object, mode: str) -> None:
    """A membership change sends the group with its full member list, not the change alone."""
    source = AdSource(make_config(fresh_ad, mode))
    first = full(source)
    admin.modify_s(  # type: ignore[attr-defined]
        samba.group_dn("admins"), [(ldap.MOD_ADD, "member", [samba.user_dn("erin").encode()])]
    )
    admin.modify_s(  # type: ignore[attr-defined]
        samba.group_dn("developers"),
        [(ldap.MOD_DELETE, "member", [samba.user_dn("alice").encode()])],
    )
    change = delta(source, first.cookie)
    entries = by_name(change.entries)
    assert ["admins", "developers"] == sorted(entries)
    assert sorted(samba.user_dn(n) for n in ("alice", "dave", "erin")) == sorted(
        entries["admins"].member  # type: ignore[union-attr]
    )
    assert sorted(
        [samba.user_dn("bob"), samba.user_dn("carol"), samba.group_dn("admins")]
    ) == sorted(entries["developers"].member)  # type: ignore[union-attr]
    assert () == change.deleted
    stats = source.last_stats
    assert stats is not None
    # DirSync's incremental values said one value added and one removed (member;range=1-1
    # and member;range=0-0); USN polling cannot tell.
    expected_values = (1, 1) if mode == "dirsync" else (0, 0)
    assert (False, 2, expected_values) == (stats.groups_reread, stats.changed, stats.member_values)


def sync_posts(fake: FakeKanidm) -> list[dict[str, object]]:
    """Every ChangeSet the double received, parsed."""
    out = []
    for record in fake.history:
        if record.method == "POST" and record.path == "/scim/v1/Sync":
            body = record.json()
            assert isinstance(body, dict)
            out.append(body)
    return out


@pytest.mark.parametrize("mode", MODES)
def test_deleted_user_leaves_its_groups(
    fresh_ad: samba.SambaDC, admin: object, tmp_path: pathlib.Path, mode: str
) -> None:
    """A deleted user leaves its groups although AD records no change on them.

    Then a new user under the same DN joins again: the group must be sent again, which
    works only because the runner's record of the group lost the old member.
    """
    fake = FakeKanidm()
    account = fake.provision_sync_account("ad")
    source = AdSource(make_config(fresh_ad, mode))
    with Client(
        fake.url, token=account.token, http_client=httpx.Client(transport=fake.transport)
    ) as client:
        runner = Runner(client, source, state_path=tmp_path / "state.json")
        runner.run_once()
        bob = fake.store.entry("bob")
        assert bob is not None
        admin.delete_s(samba.user_dn("bob"))  # type: ignore[attr-defined]
        runner.run_once()
        stats = source.last_stats
        assert stats is not None
        # The premise: AD reported bob's deletion and no change on any group.
        assert (0, 1, True) == (stats.changed, stats.deleted, stats.groups_reread)
        last = sync_posts(fake)[-1]
        sent = {e["name"] for e in last["entries"]}  # type: ignore[attr-defined,index]
        # Only developers held bob: the runner sends it and no other group.
        assert {"developers"} == sent
        assert {"Delete": [str(bob.uuid)]} == last["retain"]
        developers = fake.store.entry("developers")
        assert developers is not None
        assert str(bob.uuid) not in {str(v) for v in developers.get("member")}
        # Bob comes back (a new object, same DN) and joins developers again.
        conn = admin
        conn.add_s(  # type: ignore[attr-defined]
            samba.user_dn("bob"),
            samba.user_attributes("bob", "Bob", "Brown", 10002, "/bin/zsh", None, True),
        )
        conn.modify_s(  # type: ignore[attr-defined]
            samba.group_dn("developers"),
            [(ldap.MOD_ADD, "member", [samba.user_dn("bob").encode()])],
        )
        runner.run_once()
    new_bob = fake.store.entry("bob")
    developers = fake.store.entry("developers")
    assert new_bob is not None
    assert developers is not None
    assert bob.uuid != new_bob.uuid
    assert str(new_bob.uuid) in {str(v) for v in developers.get("member")}


@pytest.mark.parametrize("mode", MODES)
def test_rename_keeps_the_id_and_updates_the_external_id(
    fresh_ad: samba.SambaDC, admin: object, mode: str
) -> None:
    """A renamed (and moved) user keeps its id; its external id is the new DN."""
    source = AdSource(make_config(fresh_ad, mode))
    first = full(source)
    carol_id = by_name(first.entries)["carol"].id
    admin.rename_s(samba.user_dn("carol"), "CN=Carol Cooper")  # type: ignore[attr-defined]
    change = delta(source, first.cookie)
    entries = by_name(change.entries)
    assert ["carol"] == sorted(entries)
    carol = entries["carol"]
    assert (carol_id, f"CN=Carol Cooper,{samba.USERS_DN}") == (carol.id, carol.external_id)
    assert () == change.deleted


@pytest.mark.parametrize("mode", MODES)
def test_an_old_cookie_replays_the_net_changes(
    fresh_ad: samba.SambaDC, admin: object, mode: str
) -> None:
    """Replaying the first cookie after two rounds of changes returns both rounds."""
    source = AdSource(make_config(fresh_ad, mode))
    first = full(source)
    admin.modify_s(  # type: ignore[attr-defined]
        samba.user_dn("alice"), [(ldap.MOD_REPLACE, "loginShell", [b"/bin/zsh"])]
    )
    round1 = delta(source, first.cookie)
    assert ["alice"] == sorted(by_name(round1.entries))
    admin.modify_s(  # type: ignore[attr-defined]
        samba.user_dn("dave"), [(ldap.MOD_REPLACE, "displayName", [b"David Davis"])]
    )
    round2 = delta(source, round1.cookie)
    assert ["dave"] == sorted(by_name(round2.entries))
    replay = delta(source, first.cookie)
    entries = by_name(replay.entries)
    assert ["alice", "dave"] == sorted(entries)
    assert "/bin/zsh" == entries["alice"].posix.loginshell  # type: ignore[union-attr]
    assert "David Davis" == entries["dave"].displayname  # type: ignore[union-attr]
    # And the cookie it returns is current.
    assert () == delta(source, replay.cookie).entries


def test_a_dirsync_cookie_from_another_dc_forces_a_refresh(fresh_ad: samba.SambaDC) -> None:
    """A DirSync cookie whose invocationId is not this DC's is not continued from."""
    source = AdSource(make_config(fresh_ad))
    cookie = decode_cookie(full(source).cookie)
    assert isinstance(cookie, DirSyncCookie)
    other = uuid.uuid4()
    raw = cookie.raw[:52] + other.bytes_le + cookie.raw[68:]
    foreign = encode_cookie(DirSyncCookie(cookie.fingerprint, raw))
    batch = source.fetch(ActiveState(foreign))
    assert isinstance(batch, RefreshRequired)
    assert "another domain controller" in batch.reason
    assert str(other) in batch.reason


def test_a_usn_cookie_from_another_dc_forces_a_refresh(fresh_ad: samba.SambaDC) -> None:
    """A USN watermark of another DC (another invocationId) is meaningless here."""
    source = AdSource(make_config(fresh_ad, "usn"))
    cookie = decode_cookie(full(source).cookie)
    assert isinstance(cookie, UsnCookie)
    foreign = encode_cookie(UsnCookie(cookie.fingerprint, uuid.uuid4(), cookie.usn, cookie.made_at))
    batch = source.fetch(ActiveState(foreign))
    assert isinstance(batch, RefreshRequired)
    assert "another domain controller" in batch.reason


@pytest.mark.parametrize(
    ("cookie", "reason"),
    [
        (b"garbage", "not written by this Active Directory source"),
        (b"KSAD1:U:0123456789abcdef:not-a-usn", "not written by this Active Directory source"),
    ],
)
def test_a_foreign_cookie_forces_a_refresh(
    fresh_ad: samba.SambaDC, cookie: bytes, reason: str
) -> None:
    """A cookie this source did not write asks for a refresh instead of guessing."""
    batch = AdSource(make_config(fresh_ad)).fetch(ActiveState(cookie))
    assert isinstance(batch, RefreshRequired)
    assert reason in batch.reason


def test_mode_and_configuration_changes_force_a_refresh(fresh_ad: samba.SambaDC) -> None:
    """A USN cookie in DirSync mode, or one written under another filter, is refused."""
    usn_cookie = full(AdSource(make_config(fresh_ad, "usn"))).cookie
    batch = AdSource(make_config(fresh_ad, "dirsync")).fetch(ActiveState(usn_cookie))
    assert isinstance(batch, RefreshRequired)
    assert "mode is 'dirsync'" in batch.reason
    narrower = AdSource(make_config(fresh_ad, "usn", group_filter="(cn=admins)"))
    batch = narrower.fetch(ActiveState(usn_cookie))
    assert isinstance(batch, RefreshRequired)
    assert "another configuration" in batch.reason


@pytest.mark.parametrize("mode", MODES)
def test_a_cookie_older_than_the_tombstone_lifetime_forces_a_refresh(
    fresh_ad: samba.SambaDC, mode: str
) -> None:
    """Deletions older than the tombstone lifetime may be gone: the cookie is refused."""
    cookie = full(AdSource(make_config(fresh_ad, mode))).cookie
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=181)  # Samba's lifetime is 180 days
    batch = AdSource(make_config(fresh_ad, mode), clock=lambda: later).fetch(ActiveState(cookie))
    assert isinstance(batch, RefreshRequired)
    assert "tombstone lifetime (180 days)" in batch.reason
    sooner = dt.datetime.now(dt.UTC) + dt.timedelta(days=179)
    assert isinstance(
        AdSource(make_config(fresh_ad, mode), clock=lambda: sooner).fetch(ActiveState(cookie)),
        Delta,
    )


def test_a_delta_applies_through_the_runner(
    fresh_ad: samba.SambaDC, admin: object, tmp_path: pathlib.Path
) -> None:
    """Full then incremental runs keep the double equal to the domain (DirSync)."""
    fake = FakeKanidm()
    account = fake.provision_sync_account("ad")
    source = AdSource(make_config(fresh_ad))
    with Client(
        fake.url, token=account.token, http_client=httpx.Client(transport=fake.transport)
    ) as client:
        runner = Runner(client, source, state_path=tmp_path / "state.json")
        runner.run_once()
        add_user(admin, "frank", 10006)
        admin.modify_s(  # type: ignore[attr-defined]
            samba.user_dn("dave"), [(ldap.MOD_REPLACE, "userAccountControl", [samba.DISABLED])]
        )
        admin.rename_s(samba.user_dn("carol"), "CN=Carol Cooper")  # type: ignore[attr-defined]
        runner.run_once()
    last = sync_posts(fake)[-1]
    assert "Active" in last["from_state"]  # type: ignore[operator]
    assert {"carol", "dave", "frank"} == {e["name"] for e in last["entries"]}  # type: ignore[attr-defined,index]
    frank = fake.store.entry("frank")
    carol = fake.store.entry("carol")
    assert frank is not None
    assert carol is not None
    assert "1970-01-01T00:00:00Z" == str(fake.store.entry("dave").first("account_expire"))  # type: ignore[union-attr]


def test_a_large_group_is_read_in_full_by_range_retrieval(large_ad: samba.SambaDC) -> None:
    """A 1,600-member group comes back whole with 500-value windows and 200-entry pages."""
    source = AdSource(make_config(large_ad, range_size=500, page_size=200))
    batch = full(source)
    entries = by_name(batch.entries)
    big = entries["biggroup"]
    assert isinstance(big, Group)
    assert 1600 == len(big.member) == len(set(big.member))
    assert f"CN=bulk01599,OU=Bulk,{samba.BASE_DN}" in big.member
    assert 1600 + 1 + 8 == len(batch.entries)  # bulk users, biggroup, the seed


def test_a_large_group_change_is_reread_in_full(large_ad: samba.SambaDC) -> None:
    """One member added to the large group: the delta carries all 1,601 members."""
    source = AdSource(make_config(large_ad, "usn", range_size=500, page_size=200))
    first = full(source)
    conn = samba.connect(large_ad)
    try:
        conn.modify_s(
            f"CN=biggroup,OU=Bulk,{samba.BASE_DN}",
            [(ldap.MOD_ADD, "member", [samba.user_dn("alice").encode()])],
        )
    finally:
        conn.unbind_s()
    change = delta(source, first.cookie)
    big = by_name(change.entries)["biggroup"]
    assert 1601 == len(big.member)  # type: ignore[union-attr]


def test_dirsync_without_the_replication_right(fresh_ad: samba.SambaDC, admin: object) -> None:
    """A plain account gets a clear error for DirSync, and works with OBJECT_SECURITY or USN."""
    plain = plain_account(fresh_ad, admin)
    with pytest.raises(SourceError, match="Replicating Directory Changes"):
        AdSource(plain).fetch(RefreshState())


def plain_account(dc: samba.SambaDC, admin: object) -> AdConfig:
    """A configuration binding as a new ordinary user (no rights beyond reading)."""
    attributes = samba.user_attributes("syncreader", "Sync", "Reader", None, "", None, True)
    attributes.append(("unicodePwd", ['"Passw0rd!Sync1"'.encode("utf-16-le")]))
    admin.add_s(f"CN=Sync Reader,{samba.USERS_DN}", attributes)  # type: ignore[attr-defined]
    return AdConfig(
        url=dc.uri,
        bind_dn="syncreader@example.test",
        bind_password="Passw0rd!Sync1",
        base_dn=dc.base_dn,
    )


@pytest.mark.parametrize("mode", ["dirsync-object-security", "usn"])
def test_an_account_that_cannot_read_tombstones_still_sees_deletions(
    fresh_ad: samba.SambaDC, admin: object, tmp_path: pathlib.Path, mode: str
) -> None:
    """Without access to Deleted Objects, every id in scope is listed and Kanidm drops the rest."""
    plain = plain_account(fresh_ad, admin)
    if mode == "usn":
        plain = attrs.evolve(plain, mode="usn")
    else:
        plain = attrs.evolve(plain, dirsync_object_security=True)
    source = AdSource(plain)
    fake = FakeKanidm()
    account = fake.provision_sync_account("ad")
    with Client(
        fake.url, token=account.token, http_client=httpx.Client(transport=fake.transport)
    ) as client:
        runner = Runner(client, source, state_path=tmp_path / "state.json")
        runner.run_once()
        bob = fake.store.entry("bob")
        assert bob is not None
        admin.delete_s(samba.user_dn("bob"))  # type: ignore[attr-defined]
        runner.run_once()
    stats = source.last_stats
    assert stats is not None
    assert (0, True, True) == (stats.deleted, stats.present_scan, stats.groups_reread)
    assert fake.store.entry("bob") is None
    developers = fake.store.entry("developers")
    assert developers is not None
    assert str(bob.uuid) not in {str(v) for v in developers.get("member")}
    assert fake.store.entry("alice") is not None


def test_a_user_moved_out_of_the_base_is_deleted(fresh_ad: samba.SambaDC, admin: object) -> None:
    """With an OU as base, a user moved out of it is deleted from Kanidm's view."""
    ou = f"OU=Staff,{samba.BASE_DN}"
    admin.add_s(ou, [("objectClass", [b"organizationalUnit"])])  # type: ignore[attr-defined]
    admin.rename_s(samba.user_dn("alice"), "CN=Alice Anders", ou)  # type: ignore[attr-defined]
    admin.rename_s(samba.user_dn("bob"), "CN=Bob Brown", ou)  # type: ignore[attr-defined]
    source = AdSource(make_config(fresh_ad, "usn", base_dn=ou))
    first = full(source)
    assert ["alice", "bob"] == sorted(by_name(first.entries))
    alice_id = by_name(first.entries)["alice"].id
    admin.rename_s(f"CN=Alice Anders,{ou}", "CN=Alice Anders", samba.USERS_DN)  # type: ignore[attr-defined]
    change = delta(source, first.cookie)
    assert (alice_id,) == change.deleted
    assert () == change.entries


@pytest.mark.parametrize("mode", MODES)
def test_a_full_read_skips_old_tombstones(
    fresh_ad: samba.SambaDC, admin: object, mode: str
) -> None:
    """Objects deleted before the first sync are not sent, and the next delta is empty."""
    admin.delete_s(samba.user_dn("erin"))  # type: ignore[attr-defined]
    source = AdSource(make_config(fresh_ad, mode))
    first = full(source)
    assert "erin" not in by_name(first.entries)
    assert 7 == len(first.entries)
    assert ((), ()) == (delta(source, first.cookie).entries, delta(source, first.cookie).deleted)


def test_a_damaged_dirsync_cookie_refused_by_the_dc_forces_a_refresh(
    fresh_ad: samba.SambaDC,
) -> None:
    """A cookie with our prefix whose DirSync part the DC cannot read asks for a refresh."""
    config = make_config(fresh_ad)
    damaged = encode_cookie(DirSyncCookie(config.fingerprint, b"not an MSDS cookie"))
    batch = AdSource(config).fetch(ActiveState(damaged))
    assert isinstance(batch, RefreshRequired)
    assert "the DC refused the DirSync cookie" in batch.reason
