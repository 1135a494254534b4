"""LdapSource against a real OpenLDAP slapd (syncprov): every RFC 4533 situation we know.

Each writing test gets its own fresh slapd (about 0.1 s); read-only tests share one.
"""

from __future__ import annotations

import os
import pathlib
import uuid

import httpx
import pytest
from slapd import (
    ADMIN_DN,
    ADMIN_PW,
    BASE_DN,
    CONFIG_DN,
    CONFIG_PW,
    FRONTEND_DN,
    GROUPS_DN,
    LAB,
    PEOPLE_DN,
    SYNC_DN,
    SYNC_PW,
    SYNCPROV_DN,
    Slapd,
)

from kanidm_sync import (
    REFRESH,
    ActiveState,
    ChangeSet,
    DeleteOnly,
    Group,
    Mail,
    Person,
    PosixAccount,
    PosixGroup,
    RetainIgnore,
    RetainOnly,
    SourceError,
    SshPublicKey,
    SyncState,
)
from kanidm_sync.adapters import Delta, FullImage, RefreshRequired, SourceAdapter, SourceBatch

try:
    import ldap
    import ldap.modlist as ldap_modlist
except ImportError:  # the conftest fixtures fail under CI=true; skip the module otherwise
    if os.environ.get("CI", "").lower() == "true":
        raise
    pytest.skip("python-ldap is not installed (pip install -e '.[ldap]')", allow_module_level=True)

from kanidm_sync.adapters.ldap import LdapConfig, LdapSource

pytestmark = pytest.mark.slapd

HERE = pathlib.Path(__file__).resolve().parent
FILTER = "(|(objectClass=person)(objectClass=groupOfNames))"


def make_config(server: Slapd, **options: object) -> LdapConfig:
    values: dict[str, object] = {
        "sync_token": "unused",
        "ldap_uri": server.uri,
        "ldap_sync_dn": SYNC_DN,
        "ldap_sync_pw": SYNC_PW,
        "ldap_sync_base_dn": BASE_DN,
        "ldap_filter": FILTER,
    }
    values.update(options)
    return LdapConfig(**values)  # type: ignore[arg-type]


def admin(server: Slapd):  # type: ignore[no-untyped-def]
    conn = ldap.initialize(server.uri)
    conn.simple_bind_s(ADMIN_DN, ADMIN_PW)
    return conn


def uuid_of(server: Slapd, dn: str) -> uuid.UUID:
    conn = admin(server)
    try:
        [(_, attrs)] = conn.search_s(dn, ldap.SCOPE_BASE, "(objectClass=*)", ["entryUUID"])
    finally:
        conn.unbind_s()
    return uuid.UUID(attrs["entryUUID"][0].decode())


def by_name(entries: tuple[object, ...]) -> dict[str, Person | Group]:
    return {e.name: e for e in entries if isinstance(e, Person | Group)}


def full(source: LdapSource) -> FullImage:
    batch = source.fetch(REFRESH)
    assert isinstance(batch, FullImage)
    return batch


def delta(source: LdapSource, cookie: bytes) -> Delta:
    batch = source.fetch(ActiveState(cookie))
    assert isinstance(batch, Delta), batch
    return batch


def add_frank(server: Slapd) -> None:
    conn = admin(server)
    key = (LAB / "frank.pub").read_bytes().strip()
    conn.add_s(
        f"uid=frank,{PEOPLE_DN}",
        ldap_modlist.addModlist(
            {
                # No explicit "person": the mapping must learn it from the schema.
                "objectClass": [b"inetOrgPerson", b"posixAccount", b"ldapPublicKey"],
                "uid": [b"frank"],
                "cn": [b"Frank Fischer"],
                "sn": [b"Fischer"],
                "mail": [b"frank@example.com"],
                "uidNumber": [b"10006"],
                "gidNumber": [b"10006"],
                "homeDirectory": [b"/home/frank"],
                "sshPublicKey": [key],
            }
        ),
    )
    conn.unbind_s()


def test_source_satisfies_the_protocol(slapd_session: Slapd) -> None:
    """LdapSource is a SourceAdapter."""
    assert isinstance(LdapSource(make_config(slapd_session)), SourceAdapter)


def test_first_sync_maps_the_seed(slapd_session: Slapd) -> None:
    """A full refresh returns the five persons and the groupOfNames, mapped as the tool does."""
    batch = full(LdapSource(make_config(slapd_session)))
    entries = by_name(batch.entries)
    assert ["alice", "bob", "carol", "dave", "developers", "erin"] == sorted(entries)
    alice_dn = f"uid=alice,{PEOPLE_DN}"
    expected_alice = Person(
        id=uuid_of(slapd_session, alice_dn),
        external_id=alice_dn,
        name="alice",
        displayname="Alice Anderson",
        mail=[Mail(value="alice@example.com")],
        ssh_publickey=[
            SshPublicKey(
                label="sshpublickey-0",
                value="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHWVmJFCb+YGIsjoqv4r4+gQzu0Mp1+"
                "EwDoIleN6lDtI alice@example.com",
            )
        ],
        password_import="{SSHA}ONxQnCf+B6kBolzpXaN/ABPpJ381CMSs",
        posix=PosixAccount(gidnumber=10001, loginshell="/bin/bash"),
    )
    assert expected_alice == entries["alice"]
    developers_dn = f"cn=developers,{GROUPS_DN}"
    expected_group = Group(
        id=uuid_of(slapd_session, developers_dn),
        external_id=developers_dn,
        name="developers",
        description="Developers",
        member=[f"uid={u},{PEOPLE_DN}" for u in ("alice", "bob", "carol")],
    )
    assert expected_group == entries["developers"]
    assert batch.cookie.startswith(b"rid=000,csn=")


def test_slapds_sync_state_controls_are_read_without_pyasn1(
    slapd_session: Slapd, pyasn1_specs: list[str]
) -> None:
    """Every entry's Sync State control from slapd is in the form ``_ldap_ber`` reads."""
    batch = full(LdapSource(make_config(slapd_session)))
    assert len(batch.entries) == 6
    assert "SyncStateValue" not in pyasn1_specs


def changeset_for(state: SyncState, batch: SourceBatch) -> ChangeSet:
    """The ChangeSet a runner would build (the runner is tested elsewhere)."""
    if isinstance(batch, RefreshRequired):
        return ChangeSet.need_refresh(state)
    to_state = ActiveState(batch.cookie)
    if isinstance(batch, FullImage):
        return ChangeSet(from_state=state, to_state=to_state, entries=batch.entries)
    if batch.present is not None:
        keep = {e.id for e in batch.entries} | set(batch.present)
        return ChangeSet(
            from_state=state, to_state=to_state, entries=batch.entries, retain=RetainOnly(keep)
        )
    retain = DeleteOnly(batch.deleted) if batch.deleted else RetainIgnore()
    return ChangeSet(from_state=state, to_state=to_state, entries=batch.entries, retain=retain)


def test_first_and_incremental_sync_into_the_double(new_slapd) -> None:  # type: ignore[no-untyped-def]
    """Full then incremental batches apply cleanly to the in-memory Kanidm."""
    testing = pytest.importorskip("kanidm_sync.testing")
    from kanidm_sync import Client

    server = new_slapd()
    fake = testing.FakeKanidm()
    account = fake.provision_sync_account("ldap")
    source = LdapSource(make_config(server))
    with Client(
        fake.url, token=account.token, http_client=httpx.Client(transport=fake.transport)
    ) as client:
        state = client.get_state()
        client.apply(changeset_for(state, source.fetch(state)))
        assert fake.store.entry("alice") is not None
        developers = fake.store.entry("developers")
        assert developers is not None
        assert 3 == len(developers.get("member"))

        conn = admin(server)
        conn.delete_s(f"uid=erin,{PEOPLE_DN}")
        conn.modify_s(f"uid=bob,{PEOPLE_DN}", [(ldap.MOD_REPLACE, "cn", [b"Robert Brown"])])
        conn.unbind_s()
        state = client.get_state()
        client.apply(changeset_for(state, source.fetch(state)))
    assert fake.store.entry("erin") is None
    bob = fake.store.entry("bob")
    assert bob is not None
    assert ("Robert Brown",) == tuple(bob.get("displayname"))
    assert isinstance(client.get_state(), ActiveState)


def test_modify_add_delete_then_incremental(new_slapd) -> None:  # type: ignore[no-untyped-def]
    """An incremental refresh returns changed and added entries, and the deleted ids."""
    server = new_slapd()
    source = LdapSource(make_config(server))
    first = full(source)
    erin = uuid_of(server, f"uid=erin,{PEOPLE_DN}")
    conn = admin(server)
    conn.modify_s(f"uid=bob,{PEOPLE_DN}", [(ldap.MOD_REPLACE, "mail", [b"robert@example.com"])])
    conn.delete_s(f"uid=erin,{PEOPLE_DN}")
    conn.unbind_s()
    add_frank(server)

    batch = delta(source, first.cookie)
    entries = by_name(batch.entries)
    assert ["bob", "frank"] == sorted(entries)
    assert (Mail(value="robert@example.com"),) == entries["bob"].mail
    frank = entries["frank"]
    assert isinstance(frank, Person)
    assert "Frank Fischer" == frank.displayname
    assert (erin,) == batch.deleted
    assert batch.present is None
    assert batch.cookie != first.cookie

    unchanged = delta(source, batch.cookie)
    assert () == unchanged.entries
    assert () == unchanged.deleted
    assert batch.cookie == unchanged.cookie


def test_present_phase_deletes_without_session_log(new_slapd) -> None:  # type: ignore[no-untyped-def]
    """With no session log, deletes arrive as a present set that omits the deleted entry."""
    server = new_slapd(sessionlog=0)
    source = LdapSource(make_config(server))
    first = full(source)
    erin = uuid_of(server, f"uid=erin,{PEOPLE_DN}")
    alice = uuid_of(server, f"uid=alice,{PEOPLE_DN}")
    conn = admin(server)
    conn.delete_s(f"uid=erin,{PEOPLE_DN}")
    conn.modify_s(f"uid=bob,{PEOPLE_DN}", [(ldap.MOD_REPLACE, "loginShell", [b"/bin/zsh"])])
    conn.unbind_s()

    batch = delta(source, first.cookie)
    assert ["bob"] == sorted(by_name(batch.entries))
    assert batch.present is not None
    assert erin not in batch.present
    assert alice in batch.present
    assert {e.id for e in first.entries} - {erin} <= set(batch.present)


def test_restart_between_writes(new_slapd) -> None:  # type: ignore[no-untyped-def]
    """Deletes survive slapd restarts: via the session log, then via the present phase."""
    server = new_slapd()
    source = LdapSource(make_config(server))
    cookie = full(source).cookie
    dave = uuid_of(server, f"uid=dave,{PEOPLE_DN}")
    bob = uuid_of(server, f"uid=bob,{PEOPLE_DN}")

    server.restart()  # the cookie is current: later deletes still come as a syncIdSet
    conn = admin(server)
    conn.delete_s(f"uid=dave,{PEOPLE_DN}")
    conn.unbind_s()
    batch = delta(source, cookie)
    assert (dave,) == batch.deleted
    assert batch.present is None

    conn = admin(server)
    conn.delete_s(f"uid=bob,{PEOPLE_DN}")
    conn.unbind_s()
    server.restart()  # the in-memory session log lost the delete: present phase
    batch2 = delta(source, batch.cookie)
    assert batch2.present is not None
    assert bob not in batch2.present
    assert uuid_of(server, f"uid=alice,{PEOPLE_DN}") in batch2.present


def test_modrdn_keeps_the_id_and_moves_the_external_id(new_slapd) -> None:  # type: ignore[no-untyped-def]
    """A rename arrives as the same id with the new DN and name."""
    server = new_slapd()
    source = LdapSource(make_config(server))
    cookie = full(source).cookie
    carol = uuid_of(server, f"uid=carol,{PEOPLE_DN}")
    conn = admin(server)
    conn.rename_s(f"uid=carol,{PEOPLE_DN}", "uid=carol2", delold=1)
    conn.unbind_s()

    batch = delta(source, cookie)
    [renamed] = batch.entries
    assert isinstance(renamed, Person)
    assert carol == renamed.id
    assert f"uid=carol2,{PEOPLE_DN}" == renamed.external_id
    assert "carol2" == renamed.name
    assert () == batch.deleted


def test_modrdn_keeping_the_old_name_uses_the_rdn(new_slapd) -> None:  # type: ignore[no-untyped-def]
    """A rename without deleteoldrdn leaves two uid values; the one in the RDN wins."""
    server = new_slapd()
    source = LdapSource(make_config(server))
    cookie = full(source).cookie
    conn = admin(server)
    conn.rename_s(f"uid=carol,{PEOPLE_DN}", "uid=caz", delold=0)
    conn.unbind_s()
    [renamed] = delta(source, cookie).entries
    assert isinstance(renamed, Person)
    assert "caz" == renamed.name


def test_group_membership_change_resends_the_whole_group(new_slapd) -> None:  # type: ignore[no-untyped-def]
    """Adding a member re-sends the group with all its members."""
    server = new_slapd()
    source = LdapSource(make_config(server))
    cookie = full(source).cookie
    conn = admin(server)
    conn.modify_s(
        f"cn=developers,{GROUPS_DN}",
        [(ldap.MOD_ADD, "member", [f"uid=dave,{PEOPLE_DN}".encode()])],
    )
    conn.unbind_s()
    [group] = delta(source, cookie).entries
    assert isinstance(group, Group)
    assert [f"uid={u},{PEOPLE_DN}" for u in ("alice", "bob", "carol", "dave")] == list(group.member)


def test_rfc2307_member_uids_resolve_to_dns(slapd_session: Slapd) -> None:
    """The posixGroup memberUid values become person DNs (group_attr_schema = rfc2307)."""
    config = make_config(
        slapd_session,
        ldap_filter="(|(objectClass=person)(objectClass=posixGroup))",
        group_objectclass="posixGroup",
        group_attr_member="memberUid",
        group_attr_schema="rfc2307",
    )
    entries = by_name(full(LdapSource(config)).entries)
    admins = entries["admins"]
    assert isinstance(admins, Group)
    assert [f"uid=alice,{PEOPLE_DN}", f"uid=dave,{PEOPLE_DN}"] == list(admins.member)
    assert PosixGroup(gidnumber=20001) == admins.posix


def test_rfc2307_members_outside_the_batch_are_looked_up(slapd_session: Slapd) -> None:
    """A memberUid whose person is not in the batch is found with a lookup, as the tool does."""
    config = make_config(
        slapd_session,
        ldap_filter="(objectClass=posixGroup)",
        group_objectclass="posixGroup",
        group_attr_member="memberUid",
        group_attr_schema="rfc2307",
    )
    [admins] = full(LdapSource(config)).entries
    assert isinstance(admins, Group)
    assert [f"uid=alice,{PEOPLE_DN}", f"uid=dave,{PEOPLE_DN}"] == list(admins.member)


def test_foreign_and_stale_cookies_ask_for_a_refresh(new_slapd) -> None:  # type: ignore[no-untyped-def]
    """A cookie newer than the server, or one it cannot read, gives RefreshRequired."""
    server = new_slapd()
    source = LdapSource(make_config(server))
    newer = source.fetch(ActiveState(b"rid=000,csn=29991231000000.000000Z#000000#000#000000"))
    assert isinstance(newer, RefreshRequired)
    assert "newer than provider" in newer.reason
    garbage = source.fetch(ActiveState(b"ipa.example.com:389#cn=dm:dc=x:(uid=*)#42"))
    assert isinstance(garbage, RefreshRequired)
    assert "no new cookie" in garbage.reason


def test_stale_cookie_with_reload_hint_is_refresh_required(new_slapd) -> None:  # type: ignore[no-untyped-def]
    """e-syncRefreshRequired (4096) from slapd becomes RefreshRequired."""
    server = new_slapd()
    conn = ldap.initialize(server.uri)
    conn.simple_bind_s(CONFIG_DN, CONFIG_PW)
    conn.modify_s(SYNCPROV_DN, [(ldap.MOD_REPLACE, "olcSpReloadHint", [b"TRUE"])])
    conn.unbind_s()
    batch = LdapSource(make_config(server)).fetch(
        ActiveState(b"rid=000,csn=19700101000000.000000Z#000000#000#000000")
    )
    assert isinstance(batch, RefreshRequired)
    assert "e-syncRefreshRequired" in batch.reason


def test_cookie_from_another_database_incarnation(new_slapd) -> None:  # type: ignore[no-untyped-def]
    """After a wipe and re-seed, the old cookie yields a present set of the new ids only."""
    server = new_slapd()
    source = LdapSource(make_config(server))
    first = full(source)
    old_ids = {e.id for e in first.entries}
    server.start()  # wipe and re-seed: same names, new entryUUIDs
    batch = delta(source, first.cookie)
    new_ids = {e.id for e in batch.entries}
    assert 6 == len(new_ids)
    assert not (old_ids & new_ids)
    assert batch.present is not None
    assert not (old_ids & set(batch.present))


def test_empty_cookie_is_a_full_refresh(slapd_session: Slapd) -> None:
    """An Active state with an empty cookie is treated as no cookie at all."""
    batch = LdapSource(make_config(slapd_session)).fetch(ActiveState(b""))
    assert isinstance(batch, FullImage)
    assert 6 == len(batch.entries)


def test_size_limit_fails_loudly(new_slapd) -> None:  # type: ignore[no-untyped-def]
    """A server size limit is an error naming the remedy, never a silent truncation."""
    server = new_slapd()
    conn = ldap.initialize(server.uri)
    conn.simple_bind_s(CONFIG_DN, CONFIG_PW)
    conn.modify_s(FRONTEND_DN, [(ldap.MOD_REPLACE, "olcSizeLimit", [b"3"])])
    conn.unbind_s()
    config = LdapConfig(
        sync_token="unused",
        ldap_uri=server.uri,
        ldap_sync_dn=f"uid=alice,{PEOPLE_DN}",  # an ordinary user: the global limit applies
        ldap_sync_pw="alicepw",
        ldap_sync_base_dn=BASE_DN,
        ldap_filter=FILTER,
    )
    with pytest.raises(SourceError, match="size limit") as info:
        LdapSource(config).fetch(REFRESH)
    assert "unlimited" in str(info.value)


def test_bad_password_is_a_source_error_without_the_password(slapd_session: Slapd) -> None:
    """A failed bind raises SourceError; the message names the DN, not the password."""
    config = LdapConfig(
        sync_token="unused",
        ldap_uri=slapd_session.uri,
        ldap_sync_dn=SYNC_DN,
        ldap_sync_pw="wrong-password-123",
        ldap_sync_base_dn=BASE_DN,
        ldap_filter=FILTER,
    )
    with pytest.raises(SourceError, match="invalid credentials") as info:
        LdapSource(config).fetch(REFRESH)
    assert "wrong-password-123" not in str(info.value)


def test_entry_map_excludes_and_remaps(new_slapd) -> None:  # type: ignore[no-untyped-def]
    """Per-entry tables exclude, rename and remap, and remapped ids are deleted by their new id."""
    server = new_slapd()
    alice = uuid_of(server, f"uid=alice,{PEOPLE_DN}")
    bob = uuid_of(server, f"uid=bob,{PEOPLE_DN}")
    developers = uuid_of(server, f"cn=developers,{GROUPS_DN}")
    new_bob = uuid.UUID("5d3e6f70-1a2b-4c3d-8e4f-506172839405")
    text = f"""
sync_token = "x"
ldap_uri = "{server.uri}"
ldap_sync_dn = "{SYNC_DN}"
ldap_sync_pw = "{SYNC_PW}"
ldap_sync_base_dn = "{BASE_DN}"
ldap_filter = "{FILTER}"

[{alice}]
exclude = true

[{bob}]
map_uuid = "{new_bob}"
map_name = "robert"

[{developers}]
map_name = "devs"
map_gidnumber = 30000
"""
    source = LdapSource(LdapConfig.from_toml(text))
    first = full(source)
    entries = by_name(first.entries)
    assert "alice" not in entries
    assert new_bob == entries["robert"].id
    devs = entries["devs"]
    assert isinstance(devs, Group)
    assert PosixGroup(gidnumber=30000) == devs.posix

    conn = admin(server)
    conn.delete_s(f"uid=bob,{PEOPLE_DN}")
    conn.unbind_s()
    assert (new_bob,) == delta(source, first.cookie).deleted


def test_documented_config_runs_unchanged(new_slapd) -> None:  # type: ignore[no-untyped-def]
    """kanidm-ldap-sync's example file, pointed at slapd, gives the entries that tool sends."""
    server = new_slapd()
    text = (HERE / "kanidm-ldap-sync.example.toml").read_text(encoding="utf-8")
    pointed = (
        text.replace("ldaps://specific-server.ldap.kanidm.com", server.uri)
        .replace('ldap_ca = "/path/to/kanidm-ldap-ca.pem"\n', "")
        .replace('"cn=Directory Manager"', f'"{SYNC_DN}"')
        .replace('"directory manager password"', f'"{SYNC_PW}"')
        .replace('"dc=ldap,dc=dev,dc=kanidm,dc=com"', f'"{BASE_DN}"')
    )
    batch = full(LdapSource(LdapConfig.from_toml(pointed)))
    # The example's filter fetches persons and posixGroups, but its default group class is
    # groupOfNames: the posixGroup "admins" is fetched and skipped, exactly as in the tool.
    entries = by_name(batch.entries)
    assert ["alice", "bob", "carol", "dave", "erin"] == sorted(entries)
    erin = entries["erin"]
    assert isinstance(erin, Person)
    assert "Erin Evans" == erin.displayname
    assert PosixAccount(gidnumber=10005, loginshell="/bin/bash") == erin.posix
    assert ("sshpublickey-0",) == tuple(k.label for k in erin.ssh_publickey)
    assert "{SSHA}eyPlgwNSFL07rGr8yTAkxQer48wIivCA" == erin.password_import


def test_through_the_runner(new_slapd, tmp_path: pathlib.Path) -> None:  # type: ignore[no-untyped-def]
    """The Runner drives the source: a first sync, then a delete and a rename."""
    testing = pytest.importorskip("kanidm_sync.testing")
    runner_module = pytest.importorskip("kanidm_sync._runner")
    from kanidm_sync import Client

    server = new_slapd()
    fake = testing.FakeKanidm()
    account = fake.provision_sync_account("ldap")
    with Client(
        fake.url, token=account.token, http_client=httpx.Client(transport=fake.transport)
    ) as client:
        runner = runner_module.Runner(
            client, LdapSource(make_config(server)), state_path=tmp_path / "state.json"
        )
        runner.run_once()
        assert fake.store.entry("erin") is not None
        conn = admin(server)
        conn.delete_s(f"uid=erin,{PEOPLE_DN}")
        conn.rename_s(f"uid=carol,{PEOPLE_DN}", "uid=caroline", delold=1)
        conn.unbind_s()
        runner.run_once()
    assert fake.store.entry("erin") is None
    caroline = fake.store.entry("caroline")
    assert caroline is not None
    assert uuid_of(server, f"uid=caroline,{PEOPLE_DN}") == caroline.uuid
