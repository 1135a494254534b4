"""Pure mapping of Active Directory objects, cookies and configuration (no server)."""

from __future__ import annotations

import datetime as dt
import pathlib
import struct
import uuid

import pytest

from kanidm_sync import ConfigError, Group, Mail, Person, PosixAccount, PosixGroup, SourceError
from kanidm_sync.adapters._ad_config import AdAttributeMap, AdConfig, load_ad_config
from kanidm_sync.adapters._ad_cookie import (
    DirSyncCookie,
    UsnCookie,
    decode_cookie,
    encode_cookie,
)
from kanidm_sync.adapters._ad_map import (
    AdObject,
    filetime_to_rfc3339,
    guid_filter,
    guid_to_uuid,
    incremental_members,
    kanidm_name,
    map_ad_object,
    map_ad_objects,
    parse_range,
)

# Observed on Samba 4.17: raw objectGUID bytes and the string samba-tool prints.
RAW_GUID = bytes.fromhex("f374714cd3ea254cb11cfa8689bfb063")
GUID_TEXT = "4c7174f3-ead3-4c25-b11c-fa8689bfb063"
BASE = "DC=example,DC=test"


def config(**options: object) -> AdConfig:
    """A configuration for mapping tests (never connects)."""
    settings: dict[str, object] = {
        "url": "ldap://dc1.example.test",
        "bind_dn": "sync@example.test",
        "bind_password": "s3cret-pw",
        "base_dn": BASE,
        **options,
    }
    return AdConfig(**settings)  # type: ignore[arg-type]


def sid(rid: int) -> bytes:
    """A domain SID S-1-5-21-1-2-3-<rid> in binary form."""
    return bytes([1, 5, 0, 0, 0, 0, 0, 5]) + struct.pack("<IIIII", 21, 1, 2, 3, rid)


def user(name: str = "alice", rid: int = 1105, **extra: list[bytes]) -> AdObject:
    """A user object as python-ldap returns it."""
    attributes: dict[str, list[bytes]] = {
        "objectGUID": [RAW_GUID],
        "objectClass": [b"top", b"person", b"organizationalPerson", b"user"],
        "objectSid": [sid(rid)],
        "sAMAccountName": [name.encode()],
        "cn": [b"Alice Anders"],
        "userAccountControl": [b"512"],
    }
    attributes.update(extra)
    return AdObject(f"CN=Alice Anders,CN=Users,{BASE}", attributes)


def group(name: str = "developers", rid: int = 1110, **extra: list[bytes]) -> AdObject:
    """A group object."""
    attributes: dict[str, list[bytes]] = {
        "objectGUID": [uuid.UUID(int=7).bytes_le],
        "objectClass": [b"top", b"group"],
        "objectSid": [sid(rid)],
        "sAMAccountName": [name.encode()],
    }
    attributes.update(extra)
    return AdObject(f"CN={name},CN=Users,{BASE}", attributes)


def test_object_guid_is_read_in_microsoft_byte_order() -> None:
    """The objectGUID bytes give the UUID Windows and samba-tool print, not the big-endian one."""
    assert uuid.UUID(GUID_TEXT) == guid_to_uuid(RAW_GUID)
    assert uuid.UUID(bytes=RAW_GUID) != guid_to_uuid(RAW_GUID)
    assert "(objectGUID=\\f3\\74\\71\\4c\\d3\\ea\\25\\4c\\b1\\1c\\fa\\86\\89\\bf\\b0\\63)" == (
        guid_filter(uuid.UUID(GUID_TEXT))
    )
    with pytest.raises(ValueError, match="16 bytes"):
        guid_to_uuid(b"short")


def test_a_user_maps_to_a_person() -> None:
    """Name, display name, mail, RFC 2307 facet; the DN is the external id."""
    obj = user(
        displayName=[b"Alice Anders"],
        mail=[b"alice@example.test", b"a.anders@example.test"],
        uidNumber=[b"10001"],
        gidNumber=[b"20001"],
        loginShell=[b"/bin/bash"],
        accountExpires=[b"9223372036854775807"],
    )
    assert Person(
        id=GUID_TEXT,
        external_id=f"CN=Alice Anders,CN=Users,{BASE}",
        name="alice",
        displayname="Alice Anders",
        mail=[Mail("alice@example.test"), Mail("a.anders@example.test")],
        posix=PosixAccount(gidnumber=10001, loginshell="/bin/bash"),
    ) == map_ad_object(obj, config())


def test_display_name_falls_back_to_cn_and_no_uid_number_means_no_posix() -> None:
    """Without displayName the cn is used; without uidNumber there is no POSIX facet."""
    person = map_ad_object(user(loginShell=[b"/bin/sh"]), config())
    assert isinstance(person, Person)
    assert ("Alice Anders", None) == (person.displayname, person.posix)


@pytest.mark.parametrize(
    ("uac", "expires", "expected"),
    [
        (b"512", None, None),
        (b"514", None, "1970-01-01T00:00:00+00:00"),  # disabled
        (b"512", b"0", None),  # never
        (b"512", b"9223372036854775807", None),  # never
        (b"512", b"133801632000000000", "2025-01-01T00:00:00+00:00"),
        (b"66050", b"133801632000000000", "1970-01-01T00:00:00+00:00"),  # disabled wins
    ],
)
def test_disabled_and_expiring_accounts(
    uac: bytes, expires: bytes | None, expected: str | None
) -> None:
    """The userAccountControl disabled bit and accountExpires become account_expire."""
    extra = {"userAccountControl": [uac]}
    if expires is not None:
        extra["accountExpires"] = [expires]
    person = map_ad_object(user(**extra), config())
    assert isinstance(person, Person)
    assert expected == person.account_expire


def test_filetime_conversion() -> None:
    """FILETIME ticks since 1601 become RFC 3339 UTC; never and absurd values are None."""
    ticks = (1893456000 + 11644473600) * 10_000_000 + 1234
    assert "2030-01-01T00:00:00+00:00" == filetime_to_rfc3339(ticks)
    assert None is filetime_to_rfc3339(0)
    assert None is filetime_to_rfc3339(0x7FFFFFFFFFFFFFFF)
    assert None is filetime_to_rfc3339(0x7FFFFFFFFFFFFFFE)  # past year 9999


def test_a_group_maps_with_members_by_dn() -> None:
    """Members stay DNs (nested groups included); gidNumber gives the POSIX facet."""
    members = [f"CN=Alice Anders,CN=Users,{BASE}".encode(), f"CN=admins,CN=Users,{BASE}".encode()]
    obj = group(
        member=members, gidNumber=[b"20001"], description=[b"Devs"], mail=[b"dev@example.test"]
    )
    assert Group(
        id=uuid.UUID(int=7),
        external_id=f"CN=developers,CN=Users,{BASE}",
        name="developers",
        description="Devs",
        mail=[Mail("dev@example.test")],
        member=[m.decode() for m in members],
        posix=PosixGroup(gidnumber=20001),
    ) == map_ad_object(obj, config())


@pytest.mark.parametrize(
    "obj",
    [
        user("Administrator", rid=500),
        user("krbtgt", rid=502, isCriticalSystemObject=[b"TRUE"]),
        user("Guest", rid=501),
        group("Domain Admins", rid=512),
        group("DnsAdmins", rid=1101),  # not flagged critical on Windows
        group("Some Critical", rid=1200, isCriticalSystemObject=[b"TRUE"]),
    ],
    ids=lambda o: o.dn.split(",")[0],
)
def test_system_objects_are_skipped_by_default(obj: AdObject) -> None:
    """Critical system objects are left out unless skip_system_objects is false."""
    assert None is map_ad_object(obj, config())
    assert None is not map_ad_object(obj, config(skip_system_objects=False, name_policy="remap"))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Alice", "alice"),
        ("j.doe-2", "j.doe-2"),
        ("Sales Team", "sales_team"),
        ("PC01$", "pc01_"),
        ("2fast", "g_2fast"),
        ("x" * 70, "x" * 64),
        ("Zoë", "zo_"),
    ],
)
def test_names_are_remapped_when_asked(raw: str, expected: str) -> None:
    """Remap: lower-case, invalid runs to _, a prefix before a non-letter, cut at 64."""
    assert expected == kanidm_name(raw, policy="remap", dn="CN=x", field="sAMAccountName")


def test_invalid_names_are_an_error_or_skipped_by_policy() -> None:
    """The error names the DN, the field, the value and why; skip returns None."""
    with pytest.raises(SourceError) as info:
        kanidm_name("Sales Team", policy="error", dn="CN=Sales Team,DC=x", field="sAMAccountName")
    assert "CN=Sales Team,DC=x: sAMAccountName 'Sales Team'" in str(info.value)
    assert "character ' ' is not allowed" in str(info.value)
    assert None is kanidm_name("Sales Team", policy="skip", dn="CN=x", field="sAMAccountName")
    with pytest.raises(SourceError, match="reserved"):
        kanidm_name("root", policy="error", dn="CN=root", field="sAMAccountName")
    with pytest.raises(SourceError, match="cannot be remapped"):
        kanidm_name("root", policy="remap", dn="CN=root", field="sAMAccountName")
    skipped = map_ad_objects([group("Sales Team")], config(name_policy="skip"))
    assert ((), (uuid.UUID(int=7),)) == (skipped.entries, skipped.left_out)


def test_two_objects_with_one_name_are_an_error() -> None:
    """Two objects mapping to one Kanidm name fail with both DNs named."""
    first = group("Sales Team")
    second = AdObject(
        f"CN=sales_team,OU=Other,{BASE}",
        {"objectGUID": [uuid.UUID(int=8).bytes_le], "objectClass": [b"group"],
         "sAMAccountName": [b"sales_team"]},
    )  # fmt: skip
    with pytest.raises(SourceError) as info:
        map_ad_objects([first, second], config())
    assert f"CN=sales_team,OU=Other,{BASE}: Kanidm name 'sales_team'" in str(info.value)
    assert f"CN=Sales Team,CN=Users,{BASE}" in str(info.value)


def test_mapping_errors_name_the_entry_and_field() -> None:
    """A bad integer or a missing name is reported with the DN and the attribute."""
    with pytest.raises(SourceError, match=r"CN=Alice Anders,CN=Users,.*: uidNumber 'x'"):
        map_ad_object(user(uidNumber=[b"x"]), config())
    nameless = AdObject("CN=n,DC=x", {"objectGUID": [RAW_GUID], "objectClass": [b"user"]})
    with pytest.raises(SourceError, match="CN=n,DC=x: no sAMAccountName"):
        map_ad_object(nameless, config())
    with pytest.raises(SourceError, match="CN=n,DC=x: no objectGUID"):
        _ = AdObject("CN=n,DC=x", {}).guid


def test_the_attribute_map_is_used() -> None:
    """Another attribute can fill the name and the gidnumber."""
    cfg = config(attributes=AdAttributeMap(person_name="uid", person_gidnumber="gidNumber"))
    person = map_ad_object(user(uid=[b"aanders"], gidNumber=[b"20001"]), cfg)
    assert isinstance(person, Person)
    assert ("aanders", 20001) == (person.name, person.posix.gidnumber if person.posix else None)


def test_ranged_attribute_names() -> None:
    """AD's member;range=lo-hi names are parsed; * marks the last window."""
    assert ("member", 0, 1499) == parse_range("member;range=0-1499")
    assert ("member", 1500, None) == parse_range("Member;Range=1500-*")
    assert None is parse_range("member")


def test_dirsync_incremental_values() -> None:
    """member;range=1-1 holds added values and member;range=0-0 removed ones."""
    attributes = {
        "objectGUID": [RAW_GUID],
        "member;range=1-1": [b"CN=frank,DC=x", b"CN=gina,DC=x"],
        "member;range=0-0": [b"CN=alice,DC=x"],
    }
    assert (("CN=frank,DC=x", "CN=gina,DC=x"), ("CN=alice,DC=x",)) == incremental_members(
        attributes
    )
    assert None is incremental_members({"member": [b"CN=a,DC=x"]})


def test_cookies_round_trip_and_are_told_apart() -> None:
    """Both cookie kinds round-trip; anything else is not a cookie of this source."""
    made = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
    usn = UsnCookie(b"0123456789abcdef", uuid.UUID(GUID_TEXT), 4017, made)
    assert usn == decode_cookie(encode_cookie(usn))
    # An MSDS cookie: the DC's invocationId at offset 52 and its NTTIME at offset 8.
    nttime = (int(made.timestamp()) + 11644473600) * 10_000_000
    raw = (
        b"MSDS" + struct.pack("<IQ", 3, nttime) + bytes(36) + uuid.UUID(GUID_TEXT).bytes_le
        + bytes(40)
    )  # fmt: skip
    dirsync = DirSyncCookie(b"0123456789abcdef", raw)
    decoded = decode_cookie(encode_cookie(dirsync))
    assert dirsync == decoded
    assert isinstance(decoded, DirSyncCookie)
    assert (uuid.UUID(GUID_TEXT), made) == (decoded.invocation_id, decoded.made_at)
    assert (None, None) == (
        DirSyncCookie(b"x", b"opaque").invocation_id,
        DirSyncCookie(b"x", b"opaque").made_at,
    )
    garbage_cookies = (
        b"",
        b"garbage",
        b"KSAD1:X:0123456789abcdef:1",
        b"KSAD1:U:0123456789abcdef:a:b:c",
        b"KSAD1:D:0123456789abcdef:",
        b"KSAD1:U:short:1:2:3",
    )
    for garbage in garbage_cookies:
        assert None is decode_cookie(garbage)


# --- configuration ---------------------------------------------------------------------------

MINIMAL = """
url = "ldaps://dc1.example.test"
bind_dn = "sync@example.test"
bind_password = "s3cret-pw"
base_dn = "DC=example,DC=test"
"""


def test_a_minimal_configuration_takes_the_defaults() -> None:
    """Only the connection keys are required; the defaults are DirSync and remapping names."""
    cfg = AdConfig.from_toml(MINIMAL)
    assert ("dirsync", "remap", 500, 0, True) == (
        cfg.mode, cfg.name_policy, cfg.page_size, cfg.range_size, cfg.skip_system_objects
    )  # fmt: skip
    assert "s3cret-pw" not in repr(cfg)


def test_unknown_keys_are_rejected_with_the_key_named() -> None:
    """A misspelled key, top level or in [attributes], is a ConfigError naming it."""
    with pytest.raises(ConfigError, match=r"unknown key 'user_fitler'.*did you mean 'user_filter'"):
        AdConfig.from_toml(MINIMAL + 'user_fitler = "(cn=*)"\n')
    with pytest.raises(ConfigError, match="unknown key 'person_nmae' in \\[attributes\\]"):
        AdConfig.from_toml(MINIMAL + '[attributes]\nperson_nmae = "uid"\n')


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('mode = "ldap"', "mode must be one of dirsync, usn"),
        ('name_policy = "ignore"', "name_policy must be one of error, remap, skip"),
        ("page_size = 0", "page_size must be at least 1"),
        ('range_size = "big"', "range_size must be a non-negative integer"),
        ('bind_password_file = "pw"', "set exactly one of bind_password and bind_password_file"),
    ],
)
def test_bad_values_are_rejected(extra: str, message: str) -> None:
    """Wrong values name the key and say what is allowed, never the password."""
    with pytest.raises(ConfigError) as info:
        AdConfig.from_toml(MINIMAL + extra + "\n")
    assert message in str(info.value)
    assert "s3cret-pw" not in str(info.value)


def test_missing_keys_are_listed() -> None:
    """Every missing required key is named."""
    with pytest.raises(ConfigError, match="missing required key\\(s\\): url, base_dn"):
        AdConfig.from_toml('bind_dn = "x"\nbind_password = "y"\n')


def test_the_password_file_is_relative_to_the_configuration(tmp_path: pathlib.Path) -> None:
    """bind_password_file is read relative to the file; one trailing newline is dropped."""
    (tmp_path / "pw").write_text("from-file\n", encoding="utf-8")
    text = MINIMAL.replace('bind_password = "s3cret-pw"', 'bind_password_file = "pw"')
    text += 'mode = "usn"\n[attributes]\nperson_name = "userPrincipalName"\n'
    path = tmp_path / "ad.toml"
    path.write_text(text, encoding="utf-8")
    cfg = load_ad_config(path)
    assert ("from-file", "usn", "userPrincipalName") == (
        cfg.bind_password, cfg.mode, cfg.attributes.person_name
    )  # fmt: skip
    missing = text.replace('"pw"', '"nope"')
    path.write_text(missing, encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot read bind_password_file"):
        load_ad_config(path)


def test_the_fingerprint_follows_what_decides_the_entries() -> None:
    """Changing the base, a filter or the attribute map changes the fingerprint; the URL not."""
    cfg = AdConfig.from_toml(MINIMAL)
    same = AdConfig.from_toml(MINIMAL.replace("ldaps://dc1", "ldaps://dc2"))
    other = AdConfig.from_toml(MINIMAL + 'group_filter = "(cn=x)"\n')
    assert cfg.fingerprint == same.fingerprint
    assert cfg.fingerprint != other.fingerprint
    assert 16 == len(cfg.fingerprint)


def test_importing_the_source_without_python_ldap_says_how_to_install_it() -> None:
    """Without python-ldap, importing kanidm_sync.adapters.ad fails with the install hint."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['ldap'] = None\n"
        "try:\n    import kanidm_sync.adapters.ad\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert "pip install 'kanidm-sync[ldap]'" in done.stdout


def test_remapped_names_are_logged_once_per_batch(caplog: pytest.LogCaptureFixture) -> None:
    """One warning sums up every remapped or skipped name of a batch."""
    objects = [group(f"Team {i}", rid=2000 + i) for i in range(7)]
    objects = [
        AdObject(o.dn, {**o.attributes, "objectguid": (uuid.UUID(int=i).bytes_le,)})
        for i, o in enumerate(objects)
    ]
    with caplog.at_level("WARNING", logger="kanidm_sync.adapters.ad"):
        mapped = map_ad_objects(objects, config())
    assert [f"team_{i}" for i in range(7)] == [e.name for e in mapped.entries]  # type: ignore[union-attr]
    assert 1 == len(caplog.records)
    message = caplog.records[0].getMessage()
    assert message.startswith("7 account names are not valid Kanidm names (name_policy='remap')")
    assert f"CN=Team 0,CN=Users,{BASE} -> 'team_0'" in message
    assert message.endswith("; and 2 more")


def test_a_configuration_built_in_code_is_checked() -> None:
    """AdConfig refuses an unknown mode or policy and a zero page size."""
    with pytest.raises(ValueError, match="mode"):
        config(mode="ldap")
    with pytest.raises(ValueError, match="name_policy"):
        config(name_policy="ignore")
    with pytest.raises(ValueError, match="page_size"):
        config(page_size=0)
