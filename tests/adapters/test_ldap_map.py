"""Pure LDAP and FreeIPA mappings: (dn, attributes) -> Person / Group, no server needed."""

from __future__ import annotations

import base64
import json
import logging
import pathlib
import uuid
from typing import Any

import pytest

from kanidm_sync import (
    ChangeSet,
    Group,
    Mail,
    Person,
    PosixAccount,
    PosixGroup,
    SourceError,
    SshPublicKey,
    Totp,
)
from kanidm_sync.adapters import FullImage
from kanidm_sync.adapters._freeipa import map_ipa_entries, nt_hash_import, sync_uuid_from_attributes
from kanidm_sync.adapters._ldap_config import IpaConfig, LdapConfig
from kanidm_sync.adapters._ldap_map import LdapEntry, map_ldap_entries, map_ldap_entry

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "fixtures"
U1 = uuid.UUID("9a7c1f52-4c7d-4b0e-8a43-1e4f6f1c2d10")
U2 = uuid.UUID("0c2b5e6a-7f3e-4d5b-9c1a-2b3c4d5e6f70")
ALICE_DN = "uid=alice,ou=people,dc=example,dc=com"
KEY_A = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHWVmJFCb+YGIsjoqv4r4+gQzu0Mp1+EwDoIleN6lDtI a@x"
KEY_B = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILzkaOg6aCmJhBae/sz1C82m+rUHHy8zxq4JmQarzKZe b@x"


def config(**options: Any) -> LdapConfig:
    values: dict[str, Any] = {
        "ldap_uri": "ldap://127.0.0.1",
        "ldap_sync_dn": "cn=sync",
        "ldap_sync_pw": "pw",
        "ldap_sync_base_dn": "dc=example,dc=com",
        "ldap_filter": "(objectClass=*)",
    }
    values.update(options)
    return LdapConfig(**values)


def b(*values: str) -> list[bytes]:
    return [v.encode() for v in values]


def alice(**extra: list[bytes]) -> dict[str, list[bytes]]:
    attrs = {
        "objectClass": b("top", "person", "inetOrgPerson", "posixAccount", "ldapPublicKey"),
        "uid": b("alice"),
        "cn": b("Alice Anderson"),
        "uidNumber": b("10001"),
        "gidNumber": b("100"),
        "loginShell": b("/bin/bash"),
        "mail": b("alice@example.com", "a.anderson@example.com"),
        "sshPublicKey": b(KEY_B, KEY_A),
        "userPassword": b("{SSHA}ONxQnCf+B6kBolzpXaN/ABPpJ381CMSs"),
    }
    attrs.update(extra)
    return attrs


# --- generic LDAP ------------------------------------------------------------------------------


def test_person_is_mapped_like_kanidm_ldap_sync() -> None:
    """Defaults: uid, cn, uidNumber as gid, loginShell, sorted mail and labelled SSH keys."""
    expected = Person(
        id=U1,
        external_id=ALICE_DN,
        name="alice",
        displayname="Alice Anderson",
        mail=[Mail(value="a.anderson@example.com"), Mail(value="alice@example.com")],
        ssh_publickey=[
            SshPublicKey(label="sshpublickey-0", value=KEY_A),
            SshPublicKey(label="sshpublickey-1", value=KEY_B),
        ],
        password_import="{SSHA}ONxQnCf+B6kBolzpXaN/ABPpJ381CMSs",
        posix=PosixAccount(gidnumber=10001, loginshell="/bin/bash"),
    )
    assert expected == map_ldap_entry(ALICE_DN, alice(), sync_uuid=U1, config=config())


def test_attribute_names_in_any_case() -> None:
    """Config and LDAP names match case-insensitively (the tool needs lower case)."""
    cfg = config(person_objectclass="inetOrgPerson", person_attr_display_name="displayName")
    person = map_ldap_entry(ALICE_DN, alice(DISPLAYNAME=b("Ms Anderson")), sync_uuid=U1, config=cfg)
    assert isinstance(person, Person)
    assert "Ms Anderson" == person.displayname


def test_password_prefix_and_unix_password() -> None:
    """person_password_prefix is prepended; the same value can become the unix password."""
    cfg = config(
        person_attr_password="sambaNTPassword",
        person_password_prefix="sambaNTPassword: ",
        sync_password_as_unix_password=True,
    )
    person = map_ldap_entry(
        ALICE_DN,
        alice(sambaNTPassword=b("AAD3B435B51404EEAAD3B435B51404EE")),
        sync_uuid=U1,
        config=cfg,
    )
    assert isinstance(person, Person)
    assert "sambaNTPassword: AAD3B435B51404EEAAD3B435B51404EE" == person.password_import
    assert person.posix is not None
    assert person.password_import == person.posix.unix_password_import


def test_multi_valued_password_takes_the_importable_one(caplog: pytest.LogCaptureFixture) -> None:
    """Several userPassword values: the first Kanidm can import is used, with a warning."""
    good = "{SSHA}ONxQnCf+B6kBolzpXaN/ABPpJ381CMSs"
    with caplog.at_level(logging.WARNING):
        person = map_ldap_entry(
            ALICE_DN,
            alice(userPassword=b("{MD5}X03MO1qnZdYdgyfeuILPmQ==", good)),
            sync_uuid=U1,
            config=config(),
        )
    assert isinstance(person, Person)
    assert good == person.password_import
    assert "userpassword has 2 values" in caplog.text
    assert good not in caplog.text


def test_locked_account_expires() -> None:
    """A nsAccountLock other than false disables the account; 'False' is unlocked too."""
    locked = map_ldap_entry(ALICE_DN, alice(nsAccountLock=b("TRUE")), sync_uuid=U1, config=config())
    unlocked = map_ldap_entry(
        ALICE_DN, alice(nsAccountLock=b("False")), sync_uuid=U1, config=config()
    )
    assert isinstance(locked, Person)
    assert isinstance(unlocked, Person)
    assert "1970-01-01T00:00:00+00:00" == locked.account_expire
    assert unlocked.account_expire is None


def test_superclasses_from_the_schema_make_a_person() -> None:
    """An inetOrgPerson without an explicit 'person' class is a person given the schema."""
    attrs = alice(objectClass=b("inetOrgPerson", "posixAccount"))
    assert map_ldap_entry(ALICE_DN, attrs, sync_uuid=U1, config=config()) is None
    ancestors = {"inetorgperson": frozenset({"inetorgperson", "organizationalperson", "person"})}
    person = map_ldap_entry(
        ALICE_DN, attrs, sync_uuid=U1, config=config(), class_ancestors=ancestors
    )
    assert isinstance(person, Person)


def test_group_of_names() -> None:
    """A groupOfNames maps its cn, description, gidNumber and member DNs."""
    group = map_ldap_entry(
        "cn=devs,ou=groups,dc=example,dc=com",
        {
            "objectClass": b("groupOfNames"),
            "cn": b("devs"),
            "description": b("Developers"),
            "gidNumber": b("20001"),
            "member": b("uid=bob,ou=people,dc=example,dc=com", ALICE_DN),
        },
        sync_uuid=U2,
        config=config(),
    )
    expected = Group(
        id=U2,
        external_id="cn=devs,ou=groups,dc=example,dc=com",
        name="devs",
        description="Developers",
        member=[ALICE_DN, "uid=bob,ou=people,dc=example,dc=com"],
        posix=PosixGroup(gidnumber=20001),
    )
    assert expected == group


def test_rfc2307_member_uids(caplog: pytest.LogCaptureFixture) -> None:
    """The memberUid names resolve through the given table; unknown names are dropped loudly."""
    cfg = config(
        group_objectclass="posixgroup", group_attr_member="memberuid", group_attr_schema="rfc2307"
    )
    attrs = {"objectClass": b("posixGroup"), "cn": b("admins"), "memberUid": b("alice", "ghost")}
    with caplog.at_level(logging.WARNING):
        group = map_ldap_entry(
            "cn=admins,dc=example,dc=com",
            attrs,
            sync_uuid=U2,
            config=cfg,
            member_dns_by_uid={"alice": ALICE_DN},
        )
    assert isinstance(group, Group)
    assert (ALICE_DN,) == group.member
    assert "'ghost' does not resolve" in caplog.text


def test_other_entries_are_unmapped() -> None:
    """Entries that are neither persons nor groups map to nothing and are listed."""
    ou = LdapEntry("ou=people,dc=example,dc=com", U2, {"objectClass": b("organizationalUnit")})
    person = LdapEntry(ALICE_DN, U1, alice())
    batch = map_ldap_entries([ou, person], config())
    assert [U1] == [e.id for e in batch.entries]
    assert (U2,) == batch.unmapped


def test_missing_name_names_entry_and_role() -> None:
    """A person without its name attribute is an error naming the DN and the config key."""
    attrs = alice()
    del attrs["uid"]
    with pytest.raises(SourceError, match=r"uid=alice.*missing required attribute uid"):
        map_ldap_entry(ALICE_DN, attrs, sync_uuid=U1, config=config())


def test_bad_gidnumber_is_an_error() -> None:
    """A gidnumber that is not a u32 fails with the entry and attribute named."""
    with pytest.raises(SourceError, match="uidnumber"):
        map_ldap_entry(ALICE_DN, alice(uidNumber=b("-5")), sync_uuid=U1, config=config())


def test_non_utf8_value_is_an_error_without_the_value() -> None:
    """A value that is not UTF-8 fails; the message shows neither the bytes nor a secret."""
    with pytest.raises(SourceError, match="userpassword holds a value that is not UTF-8") as info:
        map_ldap_entry(
            ALICE_DN, alice(userPassword=[b"\xff\xfesecret"]), sync_uuid=U1, config=config()
        )
    assert "secret" not in str(info.value)


def test_login_shell_without_gid_still_gets_the_posix_class() -> None:
    """A loginshell needs posixaccount; the facet is added (Kanidm derives the gid)."""
    attrs = alice()
    del attrs["uidNumber"]
    person = map_ldap_entry(ALICE_DN, attrs, sync_uuid=U1, config=config())
    assert isinstance(person, Person)
    assert PosixAccount(gidnumber=None, loginshell="/bin/bash") == person.posix


# --- FreeIPA ---------------------------------------------------------------------------------

# Binary attributes reach the fixture as base64 text (ldap3 encodes non-UTF-8 values);
# python-ldap hands us the raw bytes, so the fixture is turned back into bytes here.
_BINARY = {"ipanthash", "ipatokenotpkey", "krbprincipalkey", "krbextradata"}
IPA_BASE = "cn=accounts,dc=dev,dc=blackhats,dc=net,dc=au"


def _unb64(text: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    return base64.b64decode(padded.replace("-", "+").replace("_", "/"))


def ipa_fixture() -> list[LdapEntry]:
    path = FIXTURES / "ldap" / "freeipa-syncrepl-refresh-1.json"
    data = json.loads(path.read_text(encoding="utf-8"))["Success"]
    out = []
    for item in data["entries"]:
        attrs = {
            name: [_unb64(v) if name in _BINARY else v.encode() for v in values]
            for name, values in item["entry"]["attrs"].items()
        }
        out.append(LdapEntry(item["entry"]["dn"], uuid.UUID(item["entry_uuid"]), attrs))
    return out


def ipa_config(**options: Any) -> IpaConfig:
    values: dict[str, Any] = {
        "ipa_uri": "ldaps://ipa.example.com",
        "ipa_sync_dn": "cn=Directory Manager",
        "ipa_sync_pw": "pw",
        "ipa_sync_base_dn": "dc=dev,dc=blackhats,dc=net,dc=au",
    }
    values.update(options)
    return IpaConfig(**values)


TESTUSER = uuid.UUID("babb8302-43a1-11ed-a50d-919b4b1a5ec0")
TESTUSER_DN = f"uid=testuser,cn=users,{IPA_BASE}"


def test_freeipa_fixture_maps_as_kanidm_ipa_sync_today() -> None:
    """The FreeIPA refresh maps to 4 entries: built-in skips, uidNumber gid, mail, TOTP."""
    batch = map_ipa_entries(ipa_fixture(), ipa_config())
    entries = {e.name: e for e in batch.entries}
    assert ["testexternal", "testgroup", "testposix", "testuser"] == sorted(entries)
    expected_user = Person(
        id=TESTUSER,
        external_id=TESTUSER_DN,
        name="testuser",
        displayname="Test User",
        mail=[Mail(value="testuser@dev.blackhats.net.au")],
        password_import="ipaNTHash: iEb36u6PsRetBr3YMLdYbA",
        totp_import=[
            Totp(
                external_id="380e27a4-438d-4c94-9dde-a3f6bc64ea1a",
                # the fixture's 47-character unpadded secret, padded as Kanidm needs
                secret="hS/2a0DXBSKMJIlIcAJbBfCCZN0b8aTpoaJcj0RAAlV7QRQ=",
                algo="sha1",
                step=30,
                digits=6,
            )
        ],
        posix=PosixAccount(gidnumber=8200004, loginshell="/bin/sh"),
    )
    assert expected_user == entries["testuser"]
    assert PosixGroup(gidnumber=1234567) == entries["testposix"].posix
    assert (
        Group(
            id=uuid.UUID("d547c581-5f26-11ed-a50d-919b4b1a5ec0"),
            external_id=f"cn=testgroup,cn=groups,{IPA_BASE}",
            name="testgroup",
            description="Test group",
        )
        == entries["testgroup"]
    )
    skipped = {
        uuid.UUID("ac60034b-3498-11ed-a50d-919b4b1a5ec0"),  # admin
        uuid.UUID("ac60034e-3498-11ed-a50d-919b4b1a5ec0"),  # editors
        uuid.UUID("0c56a965-3499-11ed-a50d-919b4b1a5ec0"),  # trust admins
    }
    assert skipped == set(batch.unmapped)


def test_freeipa_mapping_agrees_with_the_golden_kanidmd_changeset() -> None:
    """Where they overlap, the mapping equals kanidmd's own IPA ChangeSet fixture."""
    golden = ChangeSet.from_json((FIXTURES / "wire/changeset-kanidmd-ipa-1.json").read_bytes())
    gold = {e.id: e for e in golden.entries}
    ours = {e.id: e for e in map_ipa_entries(ipa_fixture(), ipa_config()).entries}
    gold_user, our_user = gold[TESTUSER], ours[TESTUSER]
    assert isinstance(gold_user, Person)
    assert isinstance(our_user, Person)
    for field in ("external_id", "name", "displayname", "password_import"):
        assert getattr(gold_user, field) == getattr(our_user, field), field
    assert gold_user.posix is not None
    assert our_user.posix is not None
    assert gold_user.posix.loginshell == our_user.posix.loginshell
    # The golden file predates the switch of the person gid to uidNumber (12345 there).
    for group_id in (uuid.UUID("d547c581-5f26-11ed-a50d-919b4b1a5ec0"),):
        gold_group, our_group = gold[group_id], ours[group_id]
        assert isinstance(gold_group, Group)
        assert isinstance(our_group, Group)
        assert (gold_group.external_id, gold_group.name, gold_group.description) == (
            our_group.external_id,
            our_group.name,
            our_group.description,
        )


def test_ipa_unix_password_option() -> None:
    """sync_password_as_unix_password also sends the NT hash as the unix password."""
    batch = map_ipa_entries(ipa_fixture(), ipa_config(sync_password_as_unix_password=True))
    [user] = [e for e in batch.entries if e.id == TESTUSER]
    assert isinstance(user, Person)
    assert user.posix is not None
    assert "ipaNTHash: iEb36u6PsRetBr3YMLdYbA" == user.posix.unix_password_import


def _without_nt_hash() -> list[LdapEntry]:
    out = []
    for entry in ipa_fixture():
        attrs = dict(entry.attributes)
        if entry.sync_uuid == TESTUSER:
            attrs.pop("ipanthash")
        out.append(LdapEntry(entry.dn, entry.sync_uuid, attrs))
    return out


def test_ipa_pbkdf2_sha256_password_fails_without_skip() -> None:
    """Without ipaNTHash the 389-ds {PBKDF2_SHA256} hash fails, naming the remedy, not the hash."""
    with pytest.raises(SourceError, match="skip_invalid_password_formats") as info:
        map_ipa_entries(_without_nt_hash(), ipa_config())
    assert "AAAIAOTKJT" not in str(info.value)
    assert TESTUSER_DN in str(info.value)


def test_ipa_skip_invalid_password_formats(caplog: pytest.LogCaptureFixture) -> None:
    """With the skip option the user comes without password, and so without TOTP."""
    with caplog.at_level(logging.WARNING):
        batch = map_ipa_entries(_without_nt_hash(), ipa_config(skip_invalid_password_formats=True))
    [user] = [e for e in batch.entries if e.id == TESTUSER]
    assert isinstance(user, Person)
    assert user.password_import is None
    assert () == user.totp_import
    assert "without a password" in caplog.text


def test_ipa_map_name_brings_admin_back() -> None:
    """The admin skip looks at the final name: map_name lets such a user through."""
    admin_id = uuid.UUID("ac60034b-3498-11ed-a50d-919b4b1a5ec0")
    cfg = IpaConfig.from_toml(
        "\n".join(
            [
                'sync_token = "t"',
                'ipa_uri = "ldaps://ipa"',
                'ipa_sync_dn = "cn=dm"',
                'ipa_sync_pw = "pw"',
                'ipa_sync_base_dn = "dc=x"',
                f'["{admin_id}"]',
                'map_name = "ipa_admin"',
            ]
        )
    )
    batch = cfg.rules.apply(
        FullImage(entries=map_ipa_entries(ipa_fixture(), cfg).entries, cookie=b"c")
    )
    names = {e.name for e in batch.entries if isinstance(e, Person)}
    assert {"ipa_admin", "testuser"} == names


def test_disabled_and_unimportable_tokens_are_left_out() -> None:
    """A disabled token, or one Kanidm would refuse (digits 7), is not imported."""
    entries = ipa_fixture()
    token = next(e for e in entries if "ipatokenotpkey" in e.attributes)
    variants = [
        {**token.attributes, "ipatokendisabled": (b"TRUE",)},
        {**token.attributes, "ipatokenotpdigits": (b"7",)},
    ]
    for attrs in variants:
        changed = [LdapEntry(e.dn, e.sync_uuid, attrs) if e is token else e for e in entries]
        [user] = [e for e in map_ipa_entries(changed, ipa_config()).entries if e.id == TESTUSER]
        assert isinstance(user, Person)
        assert () == user.totp_import


def test_extra_tokens_attach_to_their_owner() -> None:
    """Tokens looked up separately (incremental runs) attach like tokens in the batch."""
    entries = ipa_fixture()
    token = next(e for e in entries if "ipatokenotpkey" in e.attributes)
    rest = [e for e in entries if e is not token]
    [user] = [
        e
        for e in map_ipa_entries(rest, ipa_config(), extra_tokens=[token]).entries
        if e.id == TESTUSER
    ]
    assert isinstance(user, Person)
    assert ["380e27a4-438d-4c94-9dde-a3f6bc64ea1a"] == [t.external_id for t in user.totp_import]


def test_sync_uuid_from_plain_search_attributes() -> None:
    """entryUUID, or 389-ds nsUniqueId regrouped, identify entries read by plain searches."""
    assert U1 == sync_uuid_from_attributes("x", {"entryuuid": [str(U1).encode()]})
    ns = uuid.UUID("ac60034b-3498-11ed-a50d-919b4b1a5ec0")
    assert ns == sync_uuid_from_attributes(
        "x", {"nsuniqueid": [b"ac60034b-349811ed-a50d919b-4b1a5ec0"]}
    )
    with pytest.raises(SourceError, match="no entryUUID"):
        sync_uuid_from_attributes("cn=x", {})
    # 389-ds 2.x holds both; its default mode (cookies host:port#...) syncs by nsUniqueId.
    both = {"entryuuid": [str(U1).encode()], "nsuniqueid": [b"ac60034b-349811ed-a50d919b-4b1a5ec0"]}
    assert U1 == sync_uuid_from_attributes("x", both)
    assert U1 == sync_uuid_from_attributes("x", both, flavour="rfc4533")
    assert ns == sync_uuid_from_attributes("x", both, flavour="389")
    assert U1 == sync_uuid_from_attributes("x", {"entryuuid": both["entryuuid"]}, flavour="389")


def test_nt_hash_import_is_unpadded_urlsafe() -> None:
    """The NT hash is sent as unpadded URL-safe base64, as in kanidmd's fixtures."""
    assert "ipaNTHash: iEb36u6PsRetBr3YMLdYbA" == nt_hash_import(_unb64("iEb36u6PsRetBr3YMLdYbA"))
