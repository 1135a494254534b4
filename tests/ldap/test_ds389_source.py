"""LdapSource against a real 389 Directory Server, in both content sync modes.

The slapd matrix of test_syncrepl.py, run against ``ds389`` (389-default: nsUniqueId ids,
``host:port#...`` cookies, ``refreshDeletes=FALSE`` after every refresh; 389-openldap:
entryUUID ids, ``rid=000`` cookies), plus the server-side misconfigurations an operator can
make and the SourceError each one gives.

Every test restores what it changes in the server's configuration (the instances are shared
by the session); the tree itself is restored by the ``ds389`` fixture.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import uuid
from collections.abc import Iterator

import httpx
import pytest
from ds389 import CONTENT_SYNC_DN, RETRO_DN, SYNC_FEATURE_DN, Ds389
from slapd import BASE_DN, GROUPS_DN, LAB, PEOPLE_DN, SYNC_DN, SYNC_PW

from kanidm_sync import (
    REFRESH,
    ActiveState,
    Client,
    Group,
    Mail,
    Person,
    PosixAccount,
    PosixGroup,
    Runner,
    SourceError,
    SshPublicKey,
)
from kanidm_sync.adapters import Delta, FullImage, RefreshRequired

try:
    import ldap
    import ldap.modlist as ldap_modlist
except ImportError:  # the conftest fixtures fail under CI=true; skip the module otherwise
    if os.environ.get("CI", "").lower() == "true":
        raise
    pytest.skip("python-ldap is not installed (pip install -e '.[ldap]')", allow_module_level=True)

from kanidm_sync.adapters.ldap import LdapConfig, LdapSource

pytestmark = [pytest.mark.ds389]

FILTER = "(|(objectClass=person)(objectClass=groupOfNames))"
STAFF_DN = f"ou=staff,{BASE_DN}"


# -- helpers -------------------------------------------------------------------------------


def make_config(server: Ds389, **options: object) -> LdapConfig:
    values: dict[str, object] = {
        "sync_token": "unused",
        "ldap_uri": server.uri,
        "ldap_sync_dn": SYNC_DN,
        "ldap_sync_pw": SYNC_PW,
        "ldap_sync_base_dn": BASE_DN,
        "ldap_filter": FILTER,
    }
    if server.mode == "openldap":
        values["ldap_first_cookie"] = "rid=000"
    values.update(options)
    return LdapConfig(**values)  # type: ignore[arg-type]


def source_for(server: Ds389, **options: object) -> LdapSource:
    return LdapSource(make_config(server, **options))


def read(server: Ds389, dn: str, *attributes: str) -> dict[str, list[bytes]]:
    with server.admin() as conn:
        [(_, found)] = conn.search_s(dn, ldap.SCOPE_BASE, "(objectClass=*)", list(attributes))
    return {name.lower(): values for name, values in found.items()}


def sync_id(server: Ds389, dn: str) -> uuid.UUID:
    """The id the mode gives: nsUniqueId regrouped (default), entryUUID (openldap)."""
    found = read(server, dn, "nsUniqueId", "entryUUID")
    if server.mode == "default":
        return uuid.UUID(hex=found["nsuniqueid"][0].decode().replace("-", ""))
    return uuid.UUID(found["entryuuid"][0].decode())


def by_name(entries: tuple[object, ...]) -> dict[str, Person | Group]:
    return {e.name: e for e in entries if isinstance(e, Person | Group)}


def full(source: LdapSource) -> FullImage:
    batch = source.fetch(REFRESH)
    assert isinstance(batch, FullImage), batch
    return batch


def delta(source: LdapSource, cookie: bytes) -> Delta:
    batch = source.fetch(ActiveState(cookie))
    assert isinstance(batch, Delta), batch
    return batch


def person(uid: str) -> str:
    return f"uid={uid},{PEOPLE_DN}"


def add_frank(server: Ds389) -> None:
    key = (LAB / "frank.pub").read_bytes().strip()
    with server.admin() as conn:
        conn.add_s(
            person("frank"),
            ldap_modlist.addModlist(
                {
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


@contextlib.contextmanager
def changed(server: Ds389, dn: str, attribute: str, values: list[bytes] | None) -> Iterator[None]:
    """Replace (or, with ``None``, remove) a configuration attribute; restore it after."""
    old = read(server, dn, attribute).get(attribute.lower())
    with server.admin() as conn:
        if values is None:
            conn.modify_s(dn, [(ldap.MOD_DELETE, attribute, None)])
        else:
            conn.modify_s(dn, [(ldap.MOD_REPLACE, attribute, values)])
    try:
        yield
    finally:
        with server.admin() as conn:
            if old:
                conn.modify_s(dn, [(ldap.MOD_REPLACE, attribute, old)])
            else:
                with contextlib.suppress(ldap.NO_SUCH_ATTRIBUTE):
                    conn.modify_s(dn, [(ldap.MOD_DELETE, attribute, None)])


@contextlib.contextmanager
def sync_size_limit(server: Ds389, limit: int) -> Iterator[None]:
    """The sync account's own ``nsSizeLimit`` for the block, the previous value after."""
    with changed(server, SYNC_DN, "nsSizeLimit", [str(limit).encode()]):
        yield


# -- the matrix ----------------------------------------------------------------------------


def test_first_sync_ids_cookie_and_mapping(ds389: Ds389) -> None:
    """A full refresh maps the seed; ids and cookies are the mode's own."""
    batch = full(source_for(ds389))
    entries = by_name(batch.entries)
    assert ["alice", "bob", "carol", "dave", "developers", "erin"] == sorted(entries)
    for name, entry in entries.items():
        assert sync_id(ds389, entry.external_id) == entry.id, name
    alice = read(ds389, person("alice"), "nsUniqueId", "entryUUID")
    from_unique_id = uuid.UUID(hex=alice["nsuniqueid"][0].decode().replace("-", ""))
    if ds389.mode == "default":
        assert from_unique_id == entries["alice"].id
        assert batch.cookie.startswith(
            f"localhost:{ds389.port}#{SYNC_DN}:{BASE_DN}:{FILTER}#".encode()
        )
    else:
        assert uuid.UUID(alice["entryuuid"][0].decode()) == entries["alice"].id
        assert from_unique_id != entries["alice"].id
        assert batch.cookie.startswith(b"rid=000,csn=")
    expected_alice = Person(
        id=sync_id(ds389, person("alice")),
        external_id=person("alice"),
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
    developers = entries["developers"]
    assert isinstance(developers, Group)
    assert [person(u) for u in ("alice", "bob", "carol")] == list(developers.member)


def test_sync_state_controls_are_read_without_pyasn1(ds389: Ds389, pyasn1_specs: list[str]) -> None:
    """389-ds's Sync State controls are in the plain form ``_ldap_ber`` reads.

    Both modes, a full and an incremental refresh.
    """
    source = source_for(ds389)
    first = full(source)
    assert first.entries
    with ds389.admin() as conn:
        conn.modify_s(person("bob"), [(ldap.MOD_REPLACE, "mail", [b"robert@example.com"])])
    assert delta(source, first.cookie).entries
    assert "SyncStateValue" not in pyasn1_specs


def test_incremental_never_deletes_an_unchanged_entry(ds389: Ds389) -> None:
    """Modify, add, delete: the delta has exactly those, and deletes only the deleted id.

    In the default mode the server ends this refresh with refreshDeletes=FALSE; read as
    RFC 4533 says (forced with flavour="rfc4533") that is a present phase listing only bob,
    which would delete every unchanged entry. The source must not read it so.
    """
    source = source_for(ds389)
    first = full(source)
    erin = sync_id(ds389, person("erin"))
    with ds389.admin() as conn:
        conn.modify_s(person("bob"), [(ldap.MOD_REPLACE, "mail", [b"robert@example.com"])])
        conn.delete_s(person("erin"))
    add_frank(ds389)

    batch = delta(source, first.cookie)
    entries = by_name(batch.entries)
    assert ["bob", "frank"] == sorted(entries)
    assert (Mail(value="robert@example.com"),) == entries["bob"].mail
    assert sync_id(ds389, person("frank")) == entries["frank"].id
    assert (erin,) == batch.deleted
    assert batch.present is None
    assert batch.cookie != first.cookie

    literal = delta(LdapSource(make_config(ds389), flavour="rfc4533"), first.cookie)
    unchanged = {sync_id(ds389, person(u)) for u in ("alice", "carol", "dave")}
    if ds389.mode == "default":
        # The trap is real on this server: a literal reading drops the unchanged entries.
        assert literal.present is not None
        assert not unchanged & set(literal.present)
    else:
        # The OpenLDAP-compatible mode ends with refreshDeletes=TRUE: no present phase.
        assert literal.present is None

    again = delta(source, batch.cookie)
    assert () == again.entries
    assert () == again.deleted
    assert again.present is None


def test_rename_and_move_keep_the_id(ds389: Ds389) -> None:
    """A rename (modrdn) and a move to another OU: the same id with the new DN, nothing deleted."""
    with ds389.admin() as conn:
        conn.add_s(
            STAFF_DN,
            ldap_modlist.addModlist({"objectClass": [b"organizationalUnit"], "ou": [b"staff"]}),
        )
    source = source_for(ds389)
    cookie = full(source).cookie
    carol = sync_id(ds389, person("carol"))
    dave = sync_id(ds389, person("dave"))
    with ds389.admin() as conn:
        conn.rename_s(person("carol"), "uid=carol2", delold=1)
        conn.rename_s(person("dave"), "uid=dave", newsuperior=STAFF_DN, delold=1)

    batch = delta(source, cookie)
    entries = by_name(batch.entries)
    assert ["carol2", "dave"] == sorted(entries)
    assert carol == entries["carol2"].id
    assert person("carol2") == entries["carol2"].external_id
    assert dave == entries["dave"].id
    assert f"uid=dave,{STAFF_DN}" == entries["dave"].external_id
    assert () == batch.deleted
    assert batch.present is None


def test_group_membership_changes(ds389: Ds389) -> None:
    """Changes of member (groupOfNames) and memberUid (rfc2307) re-send the whole group."""
    dn_source = source_for(ds389)
    uid_source = source_for(
        ds389,
        ldap_filter="(|(objectClass=person)(objectClass=posixGroup))",
        group_objectclass="posixGroup",
        group_attr_member="memberUid",
        group_attr_schema="rfc2307",
    )
    dn_cookie = full(dn_source).cookie
    first_uid = by_name(full(uid_source).entries)
    admins = first_uid["admins"]
    assert isinstance(admins, Group)
    assert [person("alice"), person("dave")] == list(admins.member)
    assert PosixGroup(gidnumber=20001) == admins.posix
    uid_cookie = full(uid_source).cookie

    with ds389.admin() as conn:
        conn.modify_s(
            f"cn=developers,{GROUPS_DN}",
            [
                (ldap.MOD_ADD, "member", [person("dave").encode()]),
                (ldap.MOD_DELETE, "member", [person("bob").encode()]),
            ],
        )
        conn.modify_s(
            f"cn=admins,{GROUPS_DN}",
            [(ldap.MOD_ADD, "memberUid", [b"erin"]), (ldap.MOD_DELETE, "memberUid", [b"alice"])],
        )

    [developers] = delta(dn_source, dn_cookie).entries
    assert isinstance(developers, Group)
    assert [person(u) for u in ("alice", "carol", "dave")] == list(developers.member)
    uid_batch = delta(uid_source, uid_cookie)
    # erin is not in this batch: her DN comes from the lookup.
    [admins] = uid_batch.entries
    assert isinstance(admins, Group)
    assert [person("dave"), person("erin")] == list(admins.member)
    assert () == uid_batch.deleted


def test_delete_and_recreate_under_the_same_dn(ds389: Ds389) -> None:
    """The re-created entry has a new id; the old id is deleted."""
    source = source_for(ds389)
    cookie = full(source).cookie
    old_bob = sync_id(ds389, person("bob"))
    with ds389.admin() as conn:
        [(_, attributes)] = conn.search_s(person("bob"), ldap.SCOPE_BASE, "(objectClass=*)")
        conn.delete_s(person("bob"))
        conn.add_s(person("bob"), ldap_modlist.addModlist(attributes))
    new_bob = sync_id(ds389, person("bob"))
    assert new_bob != old_bob

    batch = delta(source, cookie)
    [bob] = batch.entries
    assert isinstance(bob, Person)
    assert new_bob == bob.id
    assert person("bob") == bob.external_id
    assert (old_bob,) == batch.deleted
    assert batch.present is None


def test_restart_between_runs_and_the_content_sync_plugin_off(ds389: Ds389) -> None:
    """Content sync off (and the restart it needs): a SourceError naming the plugin.

    On again (another restart), the changes made before and during the outage reach the
    next run, and nothing else is deleted.
    """
    source = source_for(ds389)
    cookie = full(source).cookie
    erin = sync_id(ds389, person("erin"))
    with ds389.admin() as conn:
        conn.delete_s(person("erin"))
    try:
        with ds389.admin() as conn:
            conn.modify_s(CONTENT_SYNC_DN, [(ldap.MOD_REPLACE, "nsslapd-pluginEnabled", [b"off"])])
        ds389.restart()
        for state in (REFRESH, ActiveState(cookie)):
            with pytest.raises(SourceError, match="content sync plugin is not enabled") as info:
                source.fetch(state)
            assert "dsconf INSTANCE plugin contentsync enable" in str(info.value)
            assert "389-Directory/" in str(info.value)
            assert SYNC_PW not in str(info.value)
        with ds389.admin() as conn:
            conn.modify_s(person("bob"), [(ldap.MOD_REPLACE, "loginShell", [b"/bin/zsh"])])
    finally:
        with ds389.admin() as conn:
            conn.modify_s(CONTENT_SYNC_DN, [(ldap.MOD_REPLACE, "nsslapd-pluginEnabled", [b"on"])])
        ds389.restart()

    batch = delta(source, cookie)
    [bob] = batch.entries
    assert isinstance(bob, Person)
    assert PosixAccount(gidnumber=10002, loginshell="/bin/zsh") == bob.posix
    assert (erin,) == batch.deleted
    assert batch.present is None
    unchanged = delta(source, batch.cookie)
    assert () == unchanged.entries
    assert () == unchanged.deleted


def test_cookie_from_another_server_asks_for_a_refresh(
    ds389: Ds389, ds389_servers: dict[str, Ds389]
) -> None:
    """The other mode's instance's cookie, or a default-mode cookie naming another port."""
    other = ds389_servers["openldap" if ds389.mode == "default" else "default"]
    foreign = full(source_for(other)).cookie
    own = full(source_for(ds389)).cookie
    source = source_for(ds389)
    batch = source.fetch(ActiveState(foreign))
    assert isinstance(batch, RefreshRequired), batch
    assert "e-syncRefreshRequired" in batch.reason
    if ds389.mode == "default":
        moved = own.replace(f"localhost:{ds389.port}#".encode(), b"ipa.example.com:389#")
        batch = source.fetch(ActiveState(moved))
        assert isinstance(batch, RefreshRequired), batch
        assert "e-syncRefreshRequired" in batch.reason


def test_size_limit_fails_loudly(ds389: Ds389) -> None:
    """A size limit below the tree stops a full refresh with an error naming nsSizeLimit."""
    with sync_size_limit(ds389, 3), pytest.raises(SourceError, match="size limit") as info:
        source_for(ds389).fetch(REFRESH)
    assert "nsSizeLimit: -1" in str(info.value)
    assert SYNC_PW not in str(info.value)
    assert 6 == len(full(source_for(ds389)).entries)  # restored


def test_through_the_runner_keeps_unchanged_entries(ds389: Ds389, tmp_path: pathlib.Path) -> None:
    """First sync and an incremental run into the double: only what changed changes."""
    testing = pytest.importorskip("kanidm_sync.testing")
    fake = testing.FakeKanidm()
    account = fake.provision_sync_account("ldap")
    with Client(
        fake.url, token=account.token, http_client=httpx.Client(transport=fake.transport)
    ) as client:
        runner = Runner(client, source_for(ds389), state_path=tmp_path / "state.json")
        runner.run_once()
        for name in ("alice", "bob", "carol", "dave", "erin", "developers"):
            assert fake.store.entry(name) is not None, name
        with ds389.admin() as conn:
            conn.delete_s(person("erin"))
            conn.rename_s(person("carol"), "uid=caroline", delold=1)
            conn.modify_s(person("bob"), [(ldap.MOD_REPLACE, "cn", [b"Robert Brown"])])
        runner.run_once()
        assert isinstance(client.get_state(), ActiveState)
    assert fake.store.entry("erin") is None
    caroline = fake.store.entry("caroline")
    assert caroline is not None
    assert sync_id(ds389, person("caroline")) == caroline.uuid
    bob = fake.store.entry("bob")
    assert bob is not None
    assert ("Robert Brown",) == tuple(bob.get("displayname"))
    # The key assertion: the unchanged entries are still there after the incremental run.
    for name in ("alice", "dave"):
        entry = fake.store.entry(name)
        assert entry is not None, name
        assert sync_id(ds389, person(name)) == entry.uuid
    developers = fake.store.entry("developers")
    assert developers is not None
    assert 3 == len(developers.get("member"))


# -- misconfigurations ---------------------------------------------------------------------


def test_sync_control_without_access(ds389: Ds389) -> None:
    """No ACI on the Sync Request control's feature entry: 389-ds answers 50; the error names it.

    389-ds 2.3.1 ships an ACI there for every bound user (``ldap:///all``); a server where
    it was removed and the sync account was not given its own refuses the control.
    """
    acis = read(ds389, SYNC_FEATURE_DN, "aci")["aci"]
    with ds389.admin() as conn:
        conn.modify_s(SYNC_FEATURE_DN, [(ldap.MOD_DELETE, "aci", None)])
    try:
        with pytest.raises(SourceError, match="refused the Sync Request control") as info:
            source_for(ds389).fetch(REFRESH)
    finally:
        with ds389.admin() as conn:
            conn.modify_s(SYNC_FEATURE_DN, [(ldap.MOD_ADD, "aci", acis)])
    message = str(info.value)
    assert SYNC_FEATURE_DN in message
    assert f'userdn = "ldap:///{SYNC_DN}"' in message
    assert SYNC_PW not in message
    assert 6 == len(full(source_for(ds389)).entries)  # restored


def test_look_through_limit_fails_loudly(ds389: Ds389) -> None:
    """A look-through limit (nsLookThroughLimit) below the tree: 389-ds answers 11, named."""
    with (
        changed(ds389, SYNC_DN, "nsLookThroughLimit", [b"2"]),
        pytest.raises(SourceError, match="administrative limit") as info,
    ):
        source_for(ds389).fetch(REFRESH)
    assert f"nsLookThroughLimit: -1 on {SYNC_DN!r}" in str(info.value)


def test_retro_changelog_scope_is_checked_when_readable(ds389: Ds389) -> None:
    """A changelog that would hide changes is refused, when the sync account may read it.

    Without an include suffix covering the base, an exclude suffix over it, or the
    nsuniqueid:targetUniqueId attribute, 389-ds (after the restart such a change needs)
    answers every incremental run with no change at all and advances nothing useful: the
    changes are lost for good. The settings themselves are read at once, no restart needed.
    docs/ldap.md's sync account block gives the account read access to the plugin entry;
    without that ACI nothing can be checked, and the run goes on.
    """
    assert 6 == len(full(source_for(ds389)).entries)  # the lab's settings pass
    cases = [
        ("nsslapd-include-suffix", [b"dc=other,dc=org"], "nsslapd-include-suffix"),
        ("nsslapd-exclude-suffix", [PEOPLE_DN.encode()], "nsslapd-exclude-suffix"),
        ("nsslapd-attribute", None, "nsuniqueid:targetUniqueId"),
    ]
    for attribute, values, named in cases:
        with (
            changed(ds389, RETRO_DN, attribute, values),
            pytest.raises(SourceError, match=named) as info,
        ):
            source_for(ds389).fetch(REFRESH)
        assert "force-refresh" in str(info.value), attribute
    acis = read(ds389, RETRO_DN, "aci")["aci"]
    with (
        changed(ds389, RETRO_DN, "aci", None),
        changed(ds389, RETRO_DN, "nsslapd-include-suffix", [b"dc=other,dc=org"]),
    ):
        assert 6 == len(full(source_for(ds389)).entries)  # not readable: not checked
    assert acis == read(ds389, RETRO_DN, "aci")["aci"]
