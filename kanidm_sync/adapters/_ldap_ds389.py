"""389 Directory Server specifics of the LDAP source: where its settings live, what they mean.

389-ds (FreeIPA's directory) answers an incremental content sync from its retro changelog;
a changelog that does not record the synced suffix, or that lacks ``nsUniqueId``, makes
every incremental run return no change without any error. :func:`retro_changelog_problems`
reads the plugin's settings and says what is wrong and how to fix it, for
:meth:`~._ldap_client.LdapConnection.check_ds389_changelog`. Pure: no I/O (python-ldap's
DN parser only).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

import ldap
import ldap.dn

__all__ = ["RETRO_ATTRIBUTES", "RETRO_DN", "SYNC_FEATURE_DN", "retro_changelog_problems"]

# 389-ds: where the Sync Request control's access rights live, and the retro changelog.
SYNC_FEATURE_DN: Final = "oid=1.3.6.1.4.1.4203.1.9.1.1,cn=features,cn=config"
RETRO_DN: Final = "cn=Retro Changelog Plugin,cn=plugins,cn=config"
RETRO_ATTRIBUTES: Final = (
    "nsslapd-pluginEnabled",
    "nsslapd-include-suffix",
    "nsslapd-exclude-suffix",
    "nsslapd-attribute",
)
# Changes recorded after the fix only: Kanidm must be refreshed once it is fixed.
_THEN_REFRESH: Final = (
    "restart the server (dsctl INSTANCE restart), then force a full refresh "
    "(kanidm-sync account force-refresh NAME): changes made meanwhile were never recorded"
)


def _dn_key(dn: str) -> tuple[tuple[str, str], ...]:
    """A DN as lower-case (attribute, value) pairs, leaf first; unparseable: the text."""
    try:
        rdns = ldap.dn.str2dn(dn)
    except ldap.DECODING_ERROR:
        return ((dn.strip().lower(), ""),)
    return tuple((name.lower(), str(value).lower()) for rdn in rdns for name, value, _ in rdn)


def _within(dn: str, suffix: str) -> bool:
    """Whether ``dn`` is ``suffix`` or below it (case-insensitive)."""
    inner, outer = _dn_key(dn), _dn_key(suffix)
    return len(inner) >= len(outer) and inner[len(inner) - len(outer) :] == outer


def retro_changelog_problems(base: str, settings: Mapping[str, Sequence[str]]) -> list[str]:
    """What in 389-ds's retro changelog settings would hide changes under ``base``.

    Args:
        base: the sync search base.
        settings: the plugin entry's attributes, lower-case names -> values.

    Returns:
        One sentence per problem, naming the setting and the fix; empty when none.
    """
    problems: list[str] = []
    enabled = [v.strip().lower() for v in settings.get("nsslapd-pluginenabled", [])]
    if enabled and enabled[0] != "on":
        problems.append(
            f"the retro changelog plugin is disabled (nsslapd-pluginEnabled on {RETRO_DN}): "
            "dsconf INSTANCE plugin retro-changelog enable, then restart the server"
        )
    included = settings.get("nsslapd-include-suffix", [])
    if included and not any(_within(base, suffix) for suffix in included):
        problems.append(
            f"the retro changelog's nsslapd-include-suffix ({', '.join(included)}) does not "
            f"cover {base!r}, so it records no change there and every incremental run sees "
            f"none: add nsslapd-include-suffix: <the suffix of {base!r}> to {RETRO_DN} "
            f"(ldapmodify; dsconf cannot set it), {_THEN_REFRESH}"
        )
    for suffix in settings.get("nsslapd-exclude-suffix", []):
        if _within(base, suffix) or _within(suffix, base):
            problems.append(
                f"the retro changelog's nsslapd-exclude-suffix {suffix!r} excludes changes "
                f"under {base!r}: dsconf INSTANCE plugin retro-changelog del --exclude-suffix "
                f"{suffix!r}, {_THEN_REFRESH}"
            )
    recorded = {v.strip().lower().partition(":")[0] for v in settings.get("nsslapd-attribute", [])}
    if "nsuniqueid" not in recorded:
        problems.append(
            "the retro changelog does not record nsUniqueId (nsslapd-attribute: "
            "nsuniqueid:targetUniqueId), so content sync sends no change at all: dsconf "
            "INSTANCE plugin retro-changelog add --attribute nsuniqueid:targetUniqueId, "
            f"{_THEN_REFRESH}"
        )
    return problems
