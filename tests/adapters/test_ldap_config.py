"""kanidm-ldap-sync / kanidm-ipa-sync configuration files, read as the tools read them."""

from __future__ import annotations

import logging
import pathlib
import uuid

import pytest

from kanidm_sync import ConfigError
from kanidm_sync.adapters._ad_config import AdConfig
from kanidm_sync.adapters._ldap_config import (
    DEFAULT_SCHEDULE,
    EntryOverride,
    IpaConfig,
    LdapConfig,
    load_config,
    to_rfc4515_filter,
)

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "ldap"
KANIDM_EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "kanidm-examples"
EXCLUDED = uuid.UUID("ac60034b-3498-11ed-a50d-919b4b1a5ec0")
MINIMAL = """
sync_token = "token"
ldap_uri = "ldap://127.0.0.1:389"
ldap_sync_dn = "cn=sync,dc=example,dc=com"
ldap_sync_pw = "s3cret-pw"
ldap_sync_base_dn = "dc=example,dc=com"
ldap_filter = "(objectClass=person)"
"""
IPA_MINIMAL = """
sync_token = "token"
ipa_uri = "ldap://127.0.0.1:389"
ipa_sync_dn = "cn=sync,dc=example,dc=com"
ipa_sync_pw = "s3cret-pw"
ipa_sync_base_dn = "dc=example,dc=com"
"""


def test_ldap_example_from_the_documentation_loads_unchanged() -> None:
    """The example file shipped with kanidm-ldap-sync loads as it is."""
    config = load_config(EXAMPLES / "kanidm-ldap-sync.example.toml")
    assert isinstance(config, LdapConfig)
    assert "ldaps://specific-server.ldap.kanidm.com" == config.ldap_uri
    assert "(|(objectclass=person)(objectclass=posixgroup))" == config.ldap_filter
    assert "/path/to/kanidm-ldap-ca.pem" == config.ldap_ca
    assert {EXCLUDED: EntryOverride(exclude=True)} == dict(config.entry_map)
    assert frozenset({EXCLUDED}) == config.rules.exclude_ids


def test_ipa_example_from_the_documentation_loads_unchanged() -> None:
    """The example file shipped with kanidm-ipa-sync loads as it is."""
    config = load_config(EXAMPLES / "kanidm-ipa-sync.example.toml")
    assert isinstance(config, IpaConfig)
    assert "dc=ipa,dc=dev,dc=kanidm,dc=com" == config.ipa_sync_base_dn
    assert config.skip_invalid_password_formats is False
    assert {EXCLUDED: EntryOverride(exclude=True)} == dict(config.entry_map)


def test_defaults_are_the_reference_tool_defaults() -> None:
    """Unset keys take kanidm-ldap-sync's defaults."""
    config = LdapConfig.from_toml(MINIMAL)
    assert DEFAULT_SCHEDULE == config.schedule
    assert ("person", "uid", "cn", "uidnumber", "userpassword", "loginshell") == (
        config.person_objectclass,
        config.person_attr_user_name,
        config.person_attr_display_name,
        config.person_attr_gidnumber,
        config.person_attr_password,
        config.person_attr_login_shell,
    )
    assert ("mail", "sshpublickey") == (config.person_attr_mail, config.person_attr_ssh_public_key)
    assert ("groupofnames", "cn", "description", "gidnumber", "member", "rfc2307bis") == (
        config.group_objectclass,
        config.group_attr_name,
        config.group_attr_description,
        config.group_attr_gidnumber,
        config.group_attr_member,
        config.group_attr_schema,
    )
    assert config.ldap_verify_ca is True
    assert 32768 == config.max_ber_size


def test_attribute_names_are_lower_cased() -> None:
    """Names written in any case are kept lower case, as LDAP compares them."""
    config = LdapConfig.from_toml(MINIMAL + 'person_attr_display_name = "displayName"\n')
    assert "displayname" == config.person_attr_display_name


def test_unknown_key_is_a_warning_naming_the_key_and_a_suggestion(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An unknown key is read past with a warning naming it (the tools' structs allow it)."""
    with caplog.at_level(logging.WARNING, logger="kanidm_sync.config"):
        config = LdapConfig.from_toml(MINIMAL + 'person_attr_mial = "mail"\n', source="ldap-sync")
    assert (
        "ldap-sync: unknown key 'person_attr_mial' ignored (did you mean 'person_attr_mail'?)",
    ) == config.warnings
    assert [config.warnings[0]] == [r.getMessage() for r in caplog.records]
    assert LdapConfig.from_toml(MINIMAL) == config  # nothing else changed


def test_a_misspelled_required_key_is_named_in_the_missing_key_error() -> None:
    """When the misspelling leaves a required key unset, the error names both."""
    text = MINIMAL.replace("ldap_filter =", "ldap_filtre =")
    with pytest.raises(
        ConfigError, match=r"missing required key\(s\): ldap_filter \(the file has 'ldap_filtre'\)"
    ):
        LdapConfig.from_toml(text)


def test_unknown_key_in_an_entry_table_is_a_warning() -> None:
    """A misspelled key inside a per-entry table names the table and the key."""
    config = LdapConfig.from_toml(MINIMAL + f"[{EXCLUDED}]\nexclud = true\n")
    assert 1 == len(config.warnings)
    assert (
        f"unknown key 'exclud' in [{EXCLUDED}] ignored (did you mean 'exclude'?)"
        in (config.warnings[0])
    )
    assert {EXCLUDED: EntryOverride()} == dict(config.entry_map)


def test_ipa_key_in_an_ldap_file_is_not_taken() -> None:
    """A key of the other tool is not silently taken: it is ignored with a warning."""
    config = LdapConfig.from_toml(MINIMAL + "skip_invalid_password_formats = true\n")
    assert ["<string>: unknown key 'skip_invalid_password_formats' ignored"] == list(
        config.warnings
    )


def test_kanidm_iam_migration_example_loads_with_warnings_only() -> None:
    """Kanidm's examples/iam_migration_ldap.toml loads; its two stray keys are warnings.

    `debug` and `dry_run` are kanidm-ldap-sync's command-line options, which the example
    writes into the file; its five-field schedule is read as kanidmd pads it.
    """
    path = KANIDM_EXAMPLES / "iam_migration_ldap.toml"
    config = load_config(path)
    assert isinstance(config, LdapConfig)
    assert [
        f"{path}: 'debug' is a command-line option of kanidm-ldap-sync, not a configuration "
        "key; ignored (kanidm-sync: use --debug)",
        f"{path}: 'dry_run' is a command-line option of kanidm-ldap-sync, not a "
        "configuration key; ignored (kanidm-sync: use `kanidm-sync plan`, or `run --dry-run`)",
    ] == list(config.warnings)
    assert "* * * * *" == config.schedule
    assert (0,) == config.cron.seconds  # every minute at :00
    assert "ldaps://example.com:636" == config.ldap_uri


@pytest.mark.parametrize(
    ("name", "kind"), [("kanidm-ldap-sync", LdapConfig), ("kanidm-ipa-sync", IpaConfig)]
)
def test_kanidm_documented_examples_load_without_warnings(name: str, kind: type) -> None:
    """The examples the tools document load as they are, with nothing ignored."""
    config = load_config(KANIDM_EXAMPLES / name)
    assert isinstance(config, kind)
    assert () == config.warnings
    assert DEFAULT_SCHEDULE == config.schedule
    assert {EXCLUDED: EntryOverride(exclude=True)} == dict(config.entry_map)


def test_schedule_is_checked_when_read() -> None:
    """A schedule the cron grammar refuses is an error naming the key and the field."""
    with pytest.raises(ConfigError, match=r"schedule: minutes: 61 is outside 0-59"):
        LdapConfig.from_toml(MINIMAL + 'schedule = "0 61 * * * *"\n')
    with pytest.raises(ValueError, match="not a cron expression"):
        LdapConfig(
            ldap_uri="ldap://x", ldap_sync_dn="cn=x", ldap_sync_pw="pw",
            ldap_sync_base_dn="dc=x", ldap_filter="(uid=*)", schedule="often",
        )  # fmt: skip
    config = IpaConfig.from_toml(
        IPA_MINIMAL + 'schedule = "@hourly"\nstatus_bind = "[::1]:12345"\n'
    )
    assert ("@hourly", "[::1]:12345") == (config.schedule, config.status_bind)


def test_deeply_nested_toml_is_a_config_error() -> None:
    """A hostile, deeply nested document is a ConfigError naming the file, not a crash."""
    nested = "x = " + "[" * 5000 + "]" * 5000 + "\n"
    with pytest.raises(ConfigError, match=r"^ldap-sync: not valid TOML: .*nested too deeply"):
        LdapConfig.from_toml(MINIMAL + nested, source="ldap-sync")
    with pytest.raises(ConfigError, match=r"^ad\.toml: not valid TOML: .*nested too deeply"):
        AdConfig.from_toml(nested, source="ad.toml")


def test_wrong_types_and_missing_keys() -> None:
    """Wrong types and missing required keys are named."""
    with pytest.raises(ConfigError, match="ldap_verify_ca must be true or false"):
        LdapConfig.from_toml(MINIMAL + 'ldap_verify_ca = "no"\n')
    with pytest.raises(ConfigError, match="group_attr_schema"):
        LdapConfig.from_toml(MINIMAL + 'group_attr_schema = "ad"\n')
    with pytest.raises(ConfigError, match=r"missing required key.*ldap_filter"):
        LdapConfig.from_toml(MINIMAL.replace('ldap_filter = "(objectClass=person)"', ""))
    with pytest.raises(ConfigError, match="map_gidnumber"):
        LdapConfig.from_toml(MINIMAL + f'[{EXCLUDED}]\nmap_gidnumber = "12"\n')


def test_bad_toml_and_unknown_kind(tmp_path: pathlib.Path) -> None:
    """A file that is not TOML, or is neither tool's, is a ConfigError."""
    broken = tmp_path / "broken"
    broken.write_text("ldap_uri = ", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(broken)
    neither = tmp_path / "neither"
    neither.write_text('sync_token = "x"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="neither ldap_uri"):
        load_config(neither)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing")


def test_entry_tables_become_rules() -> None:
    """map_uuid, map_name and map_gidnumber become a remap; exclude an excluded id."""
    new = uuid.UUID("5d3e6f70-1a2b-4c3d-8e4f-506172839405")
    text = MINIMAL + (
        f'[{EXCLUDED}]\nmap_uuid = "{new}"\nmap_name = "alice2"\nmap_gidnumber = 20002\n'
    )
    rules = LdapConfig.from_toml(text).rules
    assert new == rules.translate_id(EXCLUDED)
    remap = rules.remap_ids[EXCLUDED]
    assert ("alice2", 20002) == (remap.name, remap.gidnumber)
    assert not rules.exclude_ids


def test_secrets_are_masked_in_repr() -> None:
    """The bind password and the sync token never appear in a repr."""
    config = LdapConfig.from_toml(MINIMAL)
    assert "s3cret-pw" not in repr(config)
    assert "token" not in repr(config).replace("sync_token", "")


def test_quoted_filter_values_become_rfc4515() -> None:
    """ldap3-style quoted values are unquoted and escaped; RFC 4515 filters pass through."""
    assert r"(cn=my value \28x\29\2a)" == to_rfc4515_filter('(cn="my value (x)*")')
    assert r"(cn=a\5cb)" == to_rfc4515_filter(r"(cn=a\5cb)")
    config = LdapConfig.from_toml(MINIMAL.replace("(objectClass=person)", '(cn=\\"my value\\")'))
    assert "(cn=my value)" == config.search_filter


def test_entry_map_table_spelling_is_read_too() -> None:
    """Per-entry tables may also be written under [entry_map."<uuid>"]; duplicates are refused."""
    config = LdapConfig.from_toml(MINIMAL + f'[entry_map."{EXCLUDED}"]\nexclude = true\n')
    assert {EXCLUDED: EntryOverride(exclude=True)} == dict(config.entry_map)
    both = MINIMAL + f'[entry_map."{EXCLUDED}"]\nexclude = true\n[{EXCLUDED}]\nexclude = true\n'
    with pytest.raises(ConfigError, match="two tables"):
        LdapConfig.from_toml(both)
    with pytest.raises(ConfigError, match="must be a UUID"):
        LdapConfig.from_toml(MINIMAL + '[entry_map."alice"]\nexclude = true\n')


def test_first_cookie_is_read_and_given_to_the_source() -> None:
    """``ldap_first_cookie`` (kanidm-sync only) is read without a warning; the source sends it.

    389-ds in its OpenLDAP-compatible mode needs ``rid=000`` as the first cookie; the
    source's own keyword wins over the file, and the default is no cookie.
    """
    pytest.importorskip("ldap")
    from kanidm_sync.adapters.ldap import LdapSource

    config = LdapConfig.from_toml(MINIMAL + 'ldap_first_cookie = "rid=000"\n')
    assert () == config.warnings
    assert "rid=000" == config.ldap_first_cookie
    assert b"rid=000" == LdapSource(config)._first_cookie
    assert b"rid=001" == LdapSource(config, first_cookie=b"rid=001")._first_cookie
    assert LdapSource(LdapConfig.from_toml(MINIMAL))._first_cookie is None
    # The IPA tool's file has no such key: FreeIPA ships the default mode.
    ipa = IpaConfig.from_toml(IPA_MINIMAL + 'ldap_first_cookie = "rid=000"\n')
    assert any("ldap_first_cookie" in w for w in ipa.warnings)
