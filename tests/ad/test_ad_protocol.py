"""AD behaviours Samba cannot show: DirSync paging, capped value ranges, the control's BER.

Samba ignores DirSync's ``maxBytes`` (never sets ``moreResults``) and caps neither pages
nor value ranges, so these paths of the source are driven here by a scripted stand-in for
python-ldap's connection object, answering as Windows AD documents. Everything else is
tested against the real Samba DC in test_ad_source.py.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import pytest

try:
    import ldap
    from pyasn1.codec.ber import decoder, encoder
except ImportError:  # skipped with the reason; a failure in CI
    if os.environ.get("CI", "").lower() == "true":
        raise
    pytest.skip("python-ldap is not installed (pip install -e '.[ldap]')", allow_module_level=True)

from kanidm_sync.adapters._ad_client import AdConnection
from kanidm_sync.adapters._ad_dirsync import (
    DIRSYNC_INCREMENTAL_VALUES,
    DIRSYNC_OBJECT_SECURITY,
    DirSyncControl,
    _RequestValue,
    _ResponseValue,
)

GROUP = "CN=big,DC=example,DC=test"


def response(more: bool, cookie: bytes) -> DirSyncControl:
    """A decoded DirSync response control, as python-ldap hands it over."""
    value = _ResponseValue()
    value.setComponentByName("moreResults", int(more))
    value.setComponentByName("unused", 0)
    value.setComponentByName("cookie", cookie)
    control = DirSyncControl()
    control.decodeControlValue(encoder.encode(value))
    return control


class ScriptedLdap:
    """Answers searches from a script, recording what was asked."""

    def __init__(self) -> None:
        self.dirsync_answers: list[tuple[list[tuple[str, dict[str, list[bytes]]]], object]] = []
        self.members: list[bytes] = []
        self.cap = 1500
        self.asked: list[object] = []

    def search_ext(
        self,
        base: str,
        scope: int,
        filterstr: str,
        attrlist: Sequence[str],
        serverctrls: Sequence[object] = (),
        timeout: float = -1,
    ) -> int:
        self.asked.append([c.cookie for c in serverctrls if isinstance(c, DirSyncControl)])
        return len(self.asked)

    def result3(self, msgid: int, timeout: float = -1, resp_ctrl_classes: object = None) -> object:
        data, control = self.dirsync_answers.pop(0)
        return ldap.RES_SEARCH_RESULT, data, msgid, [control]

    def search_ext_s(
        self, base: str, scope: int, filterstr: str, attrlist: Sequence[str], timeout: float = -1
    ) -> list[tuple[str, dict[str, list[bytes]]]]:
        # AD range retrieval: the window asked, at most `cap` values, the last marked *.
        (wanted,) = attrlist
        self.asked.append(wanted)
        low_text, high_text = wanted.split("=")[1].split("-")
        low = int(low_text)
        size = self.cap if high_text == "*" else min(self.cap, int(high_text) - low + 1)
        chunk = self.members[low : low + size]
        last = low + len(chunk) >= len(self.members)
        key = f"member;range={low}-{'*' if last else low + len(chunk) - 1}"
        return [(base, {key: chunk})]


def connection(scripted: ScriptedLdap) -> AdConnection:
    """An AdConnection over the scripted stand-in (no bind)."""
    conn = AdConnection.__new__(AdConnection)
    conn.uri = "ldap://dc.example.test"
    conn.timeout = 5.0
    conn._conn = scripted
    return conn


def test_the_dirsync_request_is_critical_and_its_flags_signed() -> None:
    """INCREMENTAL_VALUES goes on the wire as the signed 32-bit -2147483648."""
    control = DirSyncControl(
        flags=DIRSYNC_INCREMENTAL_VALUES | DIRSYNC_OBJECT_SECURITY, cookie=b"MSDS..."
    )
    value, _ = decoder.decode(control.encodeControlValue(), asn1Spec=_RequestValue())
    assert True is control.criticality
    assert -2147483647 == int(value.getComponentByName("flags"))
    assert b"MSDS..." == bytes(value.getComponentByName("cookie"))


def test_dirsync_follows_more_results_with_each_new_cookie() -> None:
    """A paged DirSync answer (moreResults set) is read to the end, cookie by cookie."""
    scripted = ScriptedLdap()
    scripted.dirsync_answers = [
        ([("CN=a,DC=x", {"name": [b"a"]})], response(True, b"cookie-1")),
        ([("CN=b,DC=x", {"name": [b"b"]})], response(True, b"cookie-2")),
        ([], response(False, b"cookie-3")),
    ]
    entries, cookie = connection(scripted).dirsync(
        "DC=x", "(objectClass=user)", ["name"], cookie=b"cookie-0", flags=0
    )
    assert ["CN=a,DC=x", "CN=b,DC=x"] == [dn for dn, _ in entries]
    assert b"cookie-3" == cookie
    assert [[b"cookie-0"], [b"cookie-1"], [b"cookie-2"]] == scripted.asked


def test_a_capped_member_list_is_completed_window_by_window() -> None:
    """AD's answer member;range=0-1499 is followed by 1500-*, and so on, to the last window."""
    scripted = ScriptedLdap()
    scripted.members = [f"CN=u{i},DC=x".encode() for i in range(3200)]
    first = {"member;range=0-1499": scripted.members[:1500], "cn": [b"big"]}
    done = connection(scripted).complete_ranges(GROUP, first, 0)
    assert scripted.members == done["member"]
    assert [b"big"] == done["cn"]
    assert ["member;range=1500-*", "member;range=3000-*"] == scripted.asked


def test_explicit_windows_are_asked_when_configured() -> None:
    """With range_size, each further window is asked with an explicit upper bound."""
    scripted = ScriptedLdap()
    scripted.cap = 10_000  # a server that would answer everything, like Samba
    scripted.members = [f"CN=u{i},DC=x".encode() for i in range(1200)]
    first = {"member;range=0-499": scripted.members[:500]}
    done = connection(scripted).complete_ranges(GROUP, first, 500)
    assert scripted.members == done["member"]
    assert ["member;range=500-999", "member;range=1000-1499"] == scripted.asked
