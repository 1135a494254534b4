"""389-ds's retro changelog settings, read without a server (see tests/ldap for the real one)."""

from __future__ import annotations

import pytest

pytest.importorskip("ldap", reason="python-ldap is not installed (pip install -e '.[ldap]')")

from kanidm_sync.adapters._ldap_ds389 import retro_changelog_problems

BASE = "dc=example,dc=com"
GOOD = {
    "nsslapd-pluginenabled": ["on"],
    "nsslapd-include-suffix": ["dc=example,dc=com"],
    "nsslapd-attribute": ["nsuniqueid:targetUniqueId", "entryuuid:targetEntryUUID"],
}


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"nsslapd-include-suffix": []},  # no include suffix: every suffix is recorded
        {"nsslapd-include-suffix": ["DC=Example, DC=Com"]},  # DNs compare case-insensitively
        {"nsslapd-include-suffix": ["dc=other,dc=org", "dc=com"]},  # a parent covers the base
        {"nsslapd-exclude-suffix": ["dc=other,dc=org"]},
        {"nsslapd-attribute": ["NsUniqueId:targetUniqueId"]},
    ],
)
def test_settings_that_record_the_base(changes: dict[str, list[str]]) -> None:
    """Settings under which the base's changes reach the changelog give no problem."""
    assert [] == retro_changelog_problems(BASE, {**GOOD, **changes})


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"nsslapd-pluginenabled": ["off"]}, "nsslapd-pluginEnabled"),
        ({"nsslapd-include-suffix": ["dc=other,dc=org"]}, "nsslapd-include-suffix (dc=other"),
        ({"nsslapd-include-suffix": ["ou=people,dc=example,dc=com"]}, "nsslapd-include-suffix"),
        ({"nsslapd-exclude-suffix": ["dc=example,dc=com"]}, "nsslapd-exclude-suffix"),
        ({"nsslapd-exclude-suffix": ["ou=people,dc=example,dc=com"]}, "--exclude-suffix"),
        ({"nsslapd-attribute": ["entryuuid:targetEntryUUID"]}, "nsuniqueid:targetUniqueId"),
        ({"nsslapd-attribute": []}, "nsuniqueid:targetUniqueId"),
    ],
)
def test_settings_that_hide_changes(changes: dict[str, list[str]], named: str) -> None:
    """Each setting that hides changes is one problem naming it, the fix and the refresh."""
    [problem] = retro_changelog_problems(BASE, {**GOOD, **changes})
    assert named in problem
    assert "restart" in problem
