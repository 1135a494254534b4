"""The RFC 4533 refreshOnly state machine, fed messages by hand (no server)."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from kanidm_sync.adapters._ldap_syncrepl import SyncreplAccumulator, flavour_of_cookie

A, B, C = (uuid.UUID(int=n) for n in (1, 2, 3))
OPENLDAP = b"rid=000,csn=20261127000000.000000Z#000000#000#000000"
IPA = b"ipa.example.com:389#cn=directory manager:dc=example:(uid=*)#109"


def entry(acc: SyncreplAccumulator, sync_uuid: uuid.UUID, state: str = "add") -> None:
    acc.entry(
        sync_uuid=sync_uuid,
        dn=f"uid={sync_uuid.int},dc=x",
        attributes={"uid": [str(sync_uuid.int).encode()]},
        state=state,  # type: ignore[arg-type]
    )


def test_full_refresh_collects_entries_and_cookie() -> None:
    """A full refresh returns every entry and the Sync Done cookie."""
    acc = SyncreplAccumulator(incremental=False)
    entry(acc, A)
    entry(acc, B)
    acc.done(cookie=OPENLDAP, refresh_deletes=True)
    outcome = acc.outcome()
    assert [A, B] == [e.sync_uuid for e in outcome.entries]
    assert OPENLDAP == outcome.cookie
    assert outcome.present is None
    assert outcome.refresh_required is None


def test_delete_phase_from_sync_id_set() -> None:
    """A syncIdSet with refreshDeletes lists deleted ids; no present phase."""
    acc = SyncreplAccumulator(incremental=True, sent_cookie=OPENLDAP)
    acc.id_set([C], refresh_deletes=True, cookie=OPENLDAP + b",delcsn=1")
    entry(acc, A)
    acc.done(cookie=OPENLDAP + b"2", refresh_deletes=True)
    outcome = acc.outcome()
    assert (C,) == outcome.deleted
    assert outcome.present is None
    assert OPENLDAP + b"2" == outcome.cookie


def test_present_phase_lists_presented_and_sent() -> None:
    """SyncIdSet refreshDeletes=FALSE + entries: present = both, minus explicit deletes."""
    acc = SyncreplAccumulator(incremental=True, sent_cookie=OPENLDAP)
    acc.id_set([A, C], refresh_deletes=False)
    entry(acc, B)
    entry(acc, C, "delete")
    acc.done(cookie=OPENLDAP, refresh_deletes=False)
    outcome = acc.outcome()
    assert (A, B) == outcome.present
    assert (C,) == outcome.deleted


def test_openldap_full_resend_is_a_present_phase() -> None:
    """RFC 4533: refreshDeletes=FALSE with only entries means everything else is gone."""
    acc = SyncreplAccumulator(incremental=True, sent_cookie=OPENLDAP)
    entry(acc, A)
    acc.done(cookie=OPENLDAP, refresh_deletes=False)
    assert (A,) == acc.outcome().present


def test_389_default_mode_ignores_the_done_flag() -> None:
    """389-ds always says refreshDeletes=FALSE; only explicit deletes count there."""
    acc = SyncreplAccumulator(incremental=True, sent_cookie=IPA)
    acc.id_set([C], refresh_deletes=True)
    entry(acc, A)
    acc.done(cookie=IPA, refresh_deletes=False)
    outcome = acc.outcome()
    assert outcome.present is None
    assert (C,) == outcome.deleted
    forced = acc.outcome(flavour="rfc4533")
    assert (A,) == forced.present


def test_present_state_entries_count_as_present() -> None:
    """Entries with the 'present' sync state add to the present set."""
    acc = SyncreplAccumulator(incremental=True, sent_cookie=OPENLDAP)
    entry(acc, A, "present")
    entry(acc, B, "modify")
    acc.refresh_phase("present", done=True)
    acc.done(cookie=OPENLDAP, refresh_deletes=False)
    outcome = acc.outcome()
    assert (A, B) == outcome.present
    assert [B] == [e.sync_uuid for e in outcome.entries]


def test_later_message_wins() -> None:
    """An add after a delete revives the entry; a delete after an add removes it."""
    acc = SyncreplAccumulator(incremental=True, sent_cookie=OPENLDAP)
    entry(acc, A, "delete")
    entry(acc, A)
    entry(acc, B)
    acc.id_set([B], refresh_deletes=True)
    acc.done(cookie=OPENLDAP, refresh_deletes=True)
    outcome = acc.outcome()
    assert [A] == [e.sync_uuid for e in outcome.entries]
    assert (B,) == outcome.deleted


def test_empty_present_set_asks_for_a_refresh() -> None:
    """An empty present set never deletes everything by inference."""
    acc = SyncreplAccumulator(incremental=True, sent_cookie=OPENLDAP)
    acc.id_set([], refresh_deletes=False)
    acc.done(cookie=OPENLDAP, refresh_deletes=False)
    outcome = acc.outcome()
    assert outcome.refresh_required is not None
    assert "no entry" in outcome.refresh_required


def test_changes_without_cookie_ask_for_a_refresh() -> None:
    """A foreign cookie answered with a re-send and an empty cookie needs a refresh."""
    acc = SyncreplAccumulator(incremental=True, sent_cookie=b"garbage")
    entry(acc, A)
    acc.done(cookie=b"", refresh_deletes=True)
    outcome = acc.outcome()
    assert outcome.cookie is None
    assert outcome.refresh_required is not None


def test_no_change_and_no_cookie_is_fine() -> None:
    """OpenLDAP's answer when nothing changed: no cookie, no change, no refresh."""
    acc = SyncreplAccumulator(incremental=True, sent_cookie=OPENLDAP)
    acc.done(cookie=None, refresh_deletes=True)
    outcome = acc.outcome()
    assert not outcome.changed
    assert outcome.refresh_required is None


def test_newcookie_and_phase_markers_update_the_cookie() -> None:
    """A newcookie message and phase markers carry cookies; an empty one never replaces."""
    acc = SyncreplAccumulator(incremental=False)
    acc.new_cookie(b"c1")
    acc.refresh_phase("delete", done=False, cookie=b"c2")
    acc.new_cookie(b"")
    acc.done(cookie=None, refresh_deletes=None)
    assert b"c2" == acc.outcome().cookie


def test_outcome_before_done_is_a_usage_error() -> None:
    """Asking for the outcome of an unfinished search raises RuntimeError."""
    with pytest.raises(RuntimeError):
        SyncreplAccumulator(incremental=False).outcome()


def test_flavour_of_cookie() -> None:
    """rid= cookies (OpenLDAP, 389 compat mode) are RFC 4533; host:port#... is 389."""
    assert "rfc4533" == flavour_of_cookie(OPENLDAP)
    assert "rfc4533" == flavour_of_cookie(None)
    assert "389" == flavour_of_cookie(IPA)


def test_import_without_python_ldap_says_how_to_install() -> None:
    """Without python-ldap, importing the LDAP adapter names the extra to install."""
    code = (
        "import sys; sys.modules['ldap'] = None\n"
        "try:\n    import kanidm_sync.adapters.ldap\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'kanidm-sync[ldap]'" in done.stdout
