"""The typed model: states, retention modes, entries and ChangeSet values."""

from __future__ import annotations

import datetime as dt
import uuid

import attrs
import pytest

import kanidm_sync as ks

U1 = uuid.UUID("9a7c1f52-4c7d-4b0e-8a43-1e4f6f1c2d10")
U2 = uuid.UUID("0c2b5e6a-7f3e-4d5b-9c1a-2b3c4d5e6f70")
SECRET = "pbkdf2_sha256$36000$xIEozuZVAoYm$uW1b35DUKyhvQAf1mBqMvoBDcqSD06juzyO/nmyV0+w="


def person(**kw: object) -> ks.Person:
    base: dict[str, object] = {
        "id": U1,
        "external_id": "uid=a",
        "name": "alice",
        "displayname": "A",
    }
    base.update(kw)
    return ks.Person(**base)  # type: ignore[arg-type]


def test_states_are_values() -> None:
    """States compare by value; Refresh is one value; cookies are bytes."""
    assert ks.REFRESH == ks.RefreshState()
    assert ks.ActiveState(b"\x01\x02") == ks.ActiveState(bytearray(b"\x01\x02"))
    assert ks.ActiveState(b"a") != ks.ActiveState(b"b")
    with pytest.raises(TypeError):
        ks.ActiveState("text")  # type: ignore[arg-type]


def test_match_over_sync_state() -> None:
    """Users can match on the state union."""

    def describe(state: ks.SyncState) -> str:
        match state:
            case ks.RefreshState():
                return "refresh"
            case ks.ActiveState(cookie=c):
                return f"active:{c.hex()}"

    assert "refresh" == describe(ks.REFRESH)
    assert "active:0102" == describe(ks.ActiveState(b"\x01\x02"))


def test_retention_ids_are_uuids_in_order() -> None:
    """Retention lists convert strings to UUIDs and keep the wire order."""
    assert (U2, U1) == ks.RetainOnly([str(U2), U1]).ids
    assert (U1,) == ks.DeleteOnly([U1]).ids
    with pytest.raises(TypeError):
        ks.DeleteOnly(str(U1))  # type: ignore[arg-type]


def test_person_schemas_follow_facets() -> None:
    """A person's schema URNs follow its facets, in the Rust builder's order."""
    assert (ks.SchemaUrn.ACCOUNT, ks.SchemaUrn.PERSON) == person().schemas
    p = person(posix=ks.PosixAccount(gidnumber=20001), oauth2=None)
    assert (ks.SchemaUrn.ACCOUNT, ks.SchemaUrn.PERSON, ks.SchemaUrn.POSIXACCOUNT) == p.schemas


def test_schema_order_hint_keeps_wire_order_but_not_equality() -> None:
    """A decoded order is kept for the bytes, yet does not change equality or the URN set."""
    hinted = person(
        posix=ks.PosixAccount(),
        schema_order=(ks.SchemaUrn.PERSON, ks.SchemaUrn.ACCOUNT, ks.SchemaUrn.POSIXACCOUNT),
    )
    assert ks.SchemaUrn.PERSON == hinted.schemas[0]
    assert person(posix=ks.PosixAccount()) == hinted
    # Dropping the facet drops the URN even though the hint still names it.
    assert ks.SchemaUrn.POSIXACCOUNT not in attrs.evolve(hinted, posix=None).schemas


def test_group_members_accept_uuids_as_strings() -> None:
    """Members are external ids or UUIDs; UUIDs become their string form."""
    g = ks.Group(id=U2, external_id="cn=g", name="g", member=["uid=a", U1])
    assert ("uid=a", str(U1)) == g.member
    assert (ks.SchemaUrn.GROUP,) == g.schemas
    assert ks.SchemaUrn.POSIXGROUP in attrs.evolve(g, posix=ks.PosixGroup()).schemas


def test_dates_accept_aware_datetimes_only() -> None:
    """Datetimes become RFC 3339 text; naive ones are refused."""
    p = person(account_expire=dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    assert "2030-01-01T00:00:00+00:00" == p.account_expire
    with pytest.raises(ValueError, match="timezone-aware"):
        person(account_expire=dt.datetime(2030, 1, 1))


def test_types_are_checked_at_construction() -> None:
    """Wrong types fail early with the field name."""
    with pytest.raises(TypeError, match="name"):
        person(name=3)
    with pytest.raises(TypeError, match="gidnumber"):
        ks.PosixAccount(gidnumber="20001")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ks.PosixGroup(gidnumber=True)
    with pytest.raises(TypeError):
        person(mail="a@example.org")


def test_secrets_are_masked_in_repr() -> None:
    """Password, unix password and TOTP secrets never show in a repr."""
    totp = ks.Totp.from_key(b"0123456789abcdef0123", external_id="t1")
    p = person(
        password_import=SECRET,
        totp_import=[totp],
        posix=ks.PosixAccount(unix_password_import="{SSHA}c2VjcmV0c2VjcmV0"),
        extra={"password_import": "leak?"},
    )
    text = repr(p) + repr(ks.ChangeSet(from_state=ks.REFRESH, to_state=ks.REFRESH, entries=[p]))
    for secret in (SECRET, totp.secret, "c2VjcmV0c2VjcmV0", "leak?"):
        assert secret not in text
    generic = ks.GenericEntry(id=U2, schemas=[], attributes={"password_import": "zzz-secret"})
    assert "zzz-secret" not in repr(generic)


def test_totp_from_base32_gives_base64_key() -> None:
    """An authenticator's base32 secret is converted to the base64 key Kanidm expects."""
    t = ks.Totp.from_base32("JBSW Y3DP EHPK 3PXP", external_id="phone", digits=8)
    assert "SGVsbG8h3q2+7w==" == t.secret
    assert 8 == t.digits
    with pytest.raises(ValueError, match="base32") as info:
        ks.Totp.from_base32("not base32 !!", external_id="x")
    assert "not base32 !!" not in str(info.value)


def test_changeset_need_refresh_and_repr() -> None:
    """need_refresh mirrors the Rust helper; the repr counts entries by kind."""
    cs = ks.ChangeSet.need_refresh(ks.ActiveState(b"c"))
    assert ks.REFRESH == cs.to_state
    assert () == cs.entries
    assert ks.RetainIgnore() == cs.retain
    full = ks.ChangeSet(
        from_state=ks.REFRESH,
        to_state=ks.ActiveState(b"x"),
        entries=[person(), ks.Group(id=U2, name="g")],
    )
    assert "entries=<2: 1 Group, 1 Person>" in repr(full)
    assert {"Person": 1, "Group": 1} == full.counts()


def test_bad_entry_ids_are_named() -> None:
    """A malformed id says which value is wrong and that it must be a UUID."""
    with pytest.raises(ValueError, match=r"entry id must be a UUID, not 'bad'"):
        person(id="bad")
    with pytest.raises(ValueError, match=r"not 'nope'"):
        ks.DeleteOnly(["nope"])
    with pytest.raises(TypeError, match="int"):
        ks.Group(id=42, name="g")  # type: ignore[arg-type]


def test_report_counts_are_singular_or_plural() -> None:
    """One warning is 'warning', two errors are 'errors', in text and in HTML."""
    problem = ks.Problem(severity=ks.Severity.WARNING, code="x.y", message="m")
    error = ks.Problem(severity=ks.Severity.ERROR, code="x.z", message="n")
    report = ks.ValidationReport((problem, error, error))
    assert str(report).startswith("2 errors, 1 warning:")
    assert "2 errors, 1 warning</p>" in report._repr_html_()
