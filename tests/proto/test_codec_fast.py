"""The codec's fast paths give exactly what the reference paths give (issue 15).

``encode_changeset_json`` writes typed entries straight to text; the reference is the dict
builder ``encode_changeset`` written by ``_write``, which produced every byte before.
"""

from __future__ import annotations

import enum
import uuid

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kanidm_sync import (
    ActiveState,
    ChangeSet,
    DeleteOnly,
    EncodeError,
    GenericEntry,
    Group,
    Mail,
    OAuth2Account,
    Person,
    PosixAccount,
    PosixGroup,
    RefreshState,
    RetainOnly,
    SchemaUrn,
    ServiceAccount,
    SshPublicKey,
    Totp,
)
from kanidm_sync._proto import _encode, _encode_text
from kanidm_sync._proto._codec import encode_changeset_json
from kanidm_sync.testing.strategies import changesets

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def reference_bytes(cs: ChangeSet) -> bytes:
    """The bytes of the dict path (what to_json wrote before the text writers)."""
    before = _encode._tricky_floats[0]
    value = _encode.encode_changeset(cs)
    return _encode._write(value, exact_floats=_encode._tricky_floats[0] != before)


def without_order(cs: ChangeSet) -> ChangeSet:
    entries = [
        e if isinstance(e, GenericEntry) else attrs.evolve(e, schema_order=()) for e in cs.entries
    ]
    return attrs.evolve(cs, entries=entries)


@SETTINGS
@given(changesets(extra=True, generic=True))
def test_text_writer_matches_dict_path(cs: ChangeSet) -> None:
    assert encode_changeset_json(cs) == reference_bytes(cs)
    plain = without_order(cs)
    assert encode_changeset_json(plain) == reference_bytes(plain)


@SETTINGS
@given(changesets())
def test_text_writer_matches_dict_path_typed_only(cs: ChangeSet) -> None:
    # Without extra or generic entries every entry takes the text writers (TOTP aside).
    assert cs.to_json() == reference_bytes(cs)


class Gid(enum.IntEnum):
    STAFF = 5000


UID = uuid.UUID("9a7c1f52-4c7d-4b0e-8a43-1e4f6f1c2d10")


def corner_entries() -> list[object]:
    return [
        Person(
            id=UID,
            name="a",
            displayname='quote " back \\ nl \n tab \t ctl \x01 del \x7f é 😀',
            legalname="L",
            mail=(Mail("a@x", primary=True), Mail("b@x", primary=False), Mail("c@x")),
            ssh_publickey=(SshPublicKey("one", "k1"), SshPublicKey("two", "k2")),
            account_valid_from="2020-01-01T00:00:00Z",
            account_expire="2030-01-01T00:00:00Z",
            account_softlock_expire="2025-01-01T00:00:00Z",
            password_import="hash",
            posix=PosixAccount(gidnumber=Gid.STAFF, loginshell="/bin/sh", unix_password_import="u"),
            oauth2=OAuth2Account(provider="prov", unique_user_id="uid", unique_user_sub="sub"),
        ),
        Person(
            id=uuid.UUID(int=2),
            external_id="ext2",
            name="b",
            displayname="B",
            mail=(Mail("only@x", primary=False),),
            oauth2=OAuth2Account(provider=UID, unique_user_id="u"),
            posix=PosixAccount(),
            schema_order=(SchemaUrn.OAUTH2_ACCOUNT, SchemaUrn.POSIXACCOUNT, SchemaUrn.PERSON),
        ),
        Person(
            id=uuid.UUID(int=3),
            name="c",
            displayname="C",
            password_import="h",
            totp_import=(Totp(external_id="t", secret="c2VjcmV0"),),
        ),
        Group(
            id=uuid.UUID(int=4),
            external_id="g",
            name="g",
            description="d",
            mail=("g@x",),
            member=("m1", UID, "m\u00e9"),
            posix=PosixGroup(gidnumber=-1),
        ),
        Group(id=uuid.UUID(int=5), name="h", member=("one",), posix=PosixGroup()),
        Group(id=uuid.UUID(int=6), name="i", extra={"x_float": 1e16, "x_list": [1, 2]}),
        ServiceAccount(
            id=uuid.UUID(int=7),
            external_id="s",
            name="s",
            displayname="S",
            description="d",
            mail=(Mail("s@x"),),
            ssh_publickey=(SshPublicKey("k", "v"),),
            account_expire="2030-01-01T00:00:00Z",
            account_softlock_expire="2031-01-01T00:00:00Z",
            account_valid_from="2020-01-01T00:00:00Z",
            password_import="p",
            posix=PosixAccount(gidnumber=1, loginshell="sh", unix_password_import="x"),
        ),
        ServiceAccount(id=uuid.UUID(int=8), name="t", displayname="T"),
        GenericEntry(id=uuid.UUID(int=9), schemas=("urn:x",), attributes={"a": 1.5e-7}),
    ]


@pytest.mark.parametrize(
    ("from_state", "to_state", "retain"),
    [
        (RefreshState(), ActiveState(b"\x01\x02"), RetainOnly([UID])),
        (ActiveState(b"c"), ActiveState(b""), DeleteOnly([uuid.UUID(int=2)])),
    ],
)
def test_corner_cases_match_dict_path(from_state, to_state, retain) -> None:  # type: ignore[no-untyped-def]
    cs = ChangeSet(
        from_state=from_state,
        to_state=to_state,
        entries=corner_entries(),  # type: ignore[arg-type]
        retain=retain,
    )
    assert encode_changeset_json(cs) == reference_bytes(cs)
    plain = without_order(cs)
    assert encode_changeset_json(plain) == reference_bytes(plain)


def test_typed_entries_take_the_text_writers() -> None:
    # The fast path is really taken (the equality tests above would pass without it).
    entries = corner_entries()
    assert _encode_text._person(entries[0]) is not None  # type: ignore[arg-type]
    assert _encode_text._person(entries[2]) is None  # type: ignore[arg-type]  # TOTP: dicts
    assert _encode_text._group(entries[3]) is not None  # type: ignore[arg-type]
    assert _encode_text._group(entries[5]) is None  # type: ignore[arg-type]  # extra: dicts
    assert _encode_text._service_account(entries[6]) is not None  # type: ignore[arg-type]


@pytest.mark.parametrize("where", ["typed", "extra", "generic"])
def test_lone_surrogate_error_is_unchanged(where: str) -> None:
    bad = "x\ud800"
    entry: object
    if where == "typed":
        entry = Person(id=UID, name="a", displayname=bad)
    elif where == "extra":
        entry = Person(id=UID, name="a", displayname="A", extra={"x_a": [bad]})
    else:
        entry = GenericEntry(id=UID, schemas=("urn:x",), attributes={"a": bad})
    cs = ChangeSet(
        from_state=RefreshState(),
        to_state=RefreshState(),
        entries=[Group(id=uuid.UUID(int=1), name="g"), entry],
    )
    with pytest.raises(EncodeError) as fast:
        encode_changeset_json(cs)
    with pytest.raises(EncodeError) as reference:
        reference_bytes(cs)
    assert str(fast.value) == str(reference.value)
    assert "$.entries[1]" in str(fast.value)


def test_bad_extra_error_is_unchanged() -> None:
    entry = Group(id=UID, name="g", extra={"x": {"n": None}})
    cs = ChangeSet(from_state=RefreshState(), to_state=RefreshState(), entries=[entry])
    with pytest.raises(EncodeError) as fast:
        encode_changeset_json(cs)
    with pytest.raises(EncodeError) as reference:
        reference_bytes(cs)
    assert str(fast.value) == str(reference.value)


@given(st.text())
@settings(max_examples=200, deadline=None)
def test_any_text_is_escaped_as_json_dumps_does(text: str) -> None:
    entry = Person(id=UID, name=text, displayname=text, mail=(text,))
    cs = ChangeSet(from_state=RefreshState(), to_state=RefreshState(), entries=[entry])
    expected: bytes | str
    try:
        expected = reference_bytes(cs)
    except EncodeError as exc:
        expected = str(exc)
    if isinstance(expected, str):
        with pytest.raises(EncodeError) as fast:
            encode_changeset_json(cs)
        assert str(fast.value) == expected
    else:
        assert encode_changeset_json(cs) == expected
