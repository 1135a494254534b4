"""The codec's fast paths give exactly what the reference paths give (issue 15).

``encode_changeset_json`` writes typed entries straight to text; the reference is the dict
builder ``encode_changeset`` written by ``_write``, which produced every byte before.
``_decode_fast.fast_entry`` builds an entry only where the full decoder (``_decode._entry``)
would build an equal one and report nothing; everything else is left to the full decoder.
"""

from __future__ import annotations

import enum
import json
import uuid

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kanidm_sync import (
    ActiveState,
    ChangeSet,
    DecodeError,
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
from kanidm_sync._proto import _decode, _decode_fast, _decode_stream, _encode, _encode_text
from kanidm_sync._proto._codec import encode_changeset_json
from kanidm_sync._proto._codec_common import _object_pairs
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


# --- decoding: the fast path builds exactly what the full decoder builds --------------------

URN = "urn:ietf:params:scim:schemas:kanidm:sync:1:"
TYPED_SCHEMAS = [
    [URN + "account", URN + "person"],
    [URN + "person", URN + "account", URN + "posixaccount"],
    [URN + "account", URN + "person", URN + "oauth2_account"],
    [URN + "oauth2_account", URN + "posixaccount", URN + "person", URN + "account"],
    [URN + "group"],
    [URN + "posixgroup", URN + "group"],
    [URN + "service_account", URN + "account"],
    [URN + "account", URN + "service_account", URN + "posixaccount"],
    [URN + "account", URN + "person", URN + "person"],
    [URN + "group", URN + "custom"],
    [URN + "group", 5],
    [URN + "group", [URN + "group"]],
]
ID_TEXTS = [
    str(UID),
    str(UID).upper(),
    UID.hex,
    "{" + str(UID) + "}",
    "urn:uuid:" + str(UID),
    "not-a-uuid",
    str(UID) + "\n",
]
ATTRIBUTE_NAMES = [
    "name",
    "Name",
    "displayname",
    "legalname",
    "description",
    "mail",
    "ssh_publickey",
    "member",
    "totp_import",
    "password_import",
    "gidnumber",
    "loginshell",
    "unix_password_import",
    "account_expire",
    "account_valid_from",
    "account_softlock_expire",
    "oauth2_account_provider",
    "oauth2_account_unique_user_id",
    "oauth2_account_unique_user_sub",
    "externalId",
    "meta",
    "x_custom",
]
leaf_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**64), 2**64),
    st.sampled_from([2**63, -(2**63) - 1, 2**63 - 1, -(2**63)]),
    st.integers(0, 70000),
    st.text(max_size=4),
    st.floats(allow_nan=False, allow_infinity=False),
)
item_dicts = st.dictionaries(
    st.sampled_from(["value", "primary", "label", "external_id", "type"]),
    leaf_values,
    max_size=3,
)
attribute_values = st.one_of(
    leaf_values,
    st.lists(item_dicts, max_size=3),
    st.lists(
        st.fixed_dictionaries({"value": st.text(max_size=4)}, optional={"primary": st.booleans()}),
        min_size=1,
        max_size=2,
    ),
    st.lists(
        st.fixed_dictionaries({"label": st.text(max_size=4), "value": st.text(max_size=4)}),
        min_size=1,
        max_size=2,
    ),
    st.lists(st.fixed_dictionaries({"external_id": st.text(max_size=4)}), min_size=1, max_size=3),
    st.lists(leaf_values, max_size=2),
    # Item-shaped, with a wrong type somewhere now and then.
    st.lists(
        st.fixed_dictionaries({"value": leaf_values}, optional={"primary": leaf_values}),
        min_size=1,
        max_size=2,
    ),
    st.lists(
        st.fixed_dictionaries({"label": leaf_values, "value": leaf_values}), min_size=1, max_size=2
    ),
    st.lists(st.fixed_dictionaries({"external_id": leaf_values}), min_size=1, max_size=2),
)


def _valid_objects() -> list[dict[str, object]]:
    cs = ChangeSet(from_state=RefreshState(), to_state=RefreshState(), entries=corner_entries()[:8])  # type: ignore[arg-type]
    objects: list[dict[str, object]] = json.loads(cs.to_json())["entries"]
    return objects


VALID_OBJECTS = _valid_objects()

# A valid entry object (so the fast path is reached) with a few keys replaced or dropped.
entry_objects = st.builds(
    lambda base, changes, drop: {k: v for k, v in {**base, **changes}.items() if k not in drop},
    st.sampled_from(VALID_OBJECTS),
    st.dictionaries(
        st.sampled_from([*ATTRIBUTE_NAMES, "schemas", "id"]),
        attribute_values | st.sampled_from(TYPED_SCHEMAS) | st.sampled_from(ID_TEXTS),
        max_size=2,
    ),
    st.sets(
        st.sampled_from(["schemas", "id", "name", "displayname", "oauth2_account_provider"]),
        max_size=1,
    ),
)


def full_decode(value: object, strict: bool) -> tuple[object, list[tuple[str, str]]]:
    errs: list[tuple[str, str]] = []
    return _decode._entry(value, "$.entries[0]", errs, strict), errs


def assert_same_entry(fast: object, full: object) -> None:
    assert type(fast) is type(full)
    assert fast == full
    for field in attrs.fields(type(fast)):  # type: ignore[arg-type]  # an entry class
        mine, theirs = getattr(fast, field.name), getattr(full, field.name)
        assert mine == theirs, field.name
        assert type(mine) is type(theirs), field.name
    assert repr(fast) == repr(full)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entry_objects, st.booleans())
def test_fast_entry_is_the_full_decoders_entry_or_none(
    value: dict[str, object], strict: bool
) -> None:
    fast = _decode_fast.fast_entry(value, strict)
    full, errs = full_decode(value, strict)
    if fast is not None:
        assert errs == []
        assert_same_entry(fast, full)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(VALID_OBJECTS), st.data(), st.booleans())
def test_fast_entry_with_one_leaf_changed(
    base: dict[str, object], data: st.DataObject, strict: bool
) -> None:
    # Replace one value deep inside a valid entry (an item's key, too): the fast path must
    # not build what the full decoder refuses or builds differently.
    value = json.loads(json.dumps(base))
    key = data.draw(st.sampled_from(sorted(value)))
    if isinstance(value[key], list) and value[key] and isinstance(value[key][0], dict):
        item = data.draw(st.sampled_from(value[key]))
        inner = data.draw(st.sampled_from([*sorted(item), "primary", "type"]))
        item[inner] = data.draw(leaf_values)
    else:
        value[key] = data.draw(leaf_values | attribute_values)
    fast = _decode_fast.fast_entry(value, strict)
    full, errs = full_decode(value, strict)
    if fast is not None:
        assert errs == []
        assert_same_entry(fast, full)


@SETTINGS
@given(changesets(extra=True, generic=True), st.booleans())
def test_fast_path_takes_every_plain_typed_entry(cs: ChangeSet, strict: bool) -> None:
    raw_entries = json.loads(cs.to_json())["entries"]
    for entry, raw in zip(cs.entries, raw_entries, strict=True):
        fast = _decode_fast.fast_entry(raw, strict)
        full, errs = full_decode(raw, strict)
        assert errs == []
        plain = not isinstance(entry, GenericEntry) and not entry.extra
        if plain and not (isinstance(entry, Person) and entry.totp_import):
            assert fast is not None
        if fast is not None:
            assert_same_entry(fast, full)
    assert ChangeSet.from_json(cs.to_json(), strict=strict) == cs


def test_fast_path_leaves_duplicates_nulls_and_strict_meta_to_the_full_decoder() -> None:
    base = {"schemas": [URN + "group"], "id": str(UID), "name": "g"}
    assert _decode_fast.fast_entry(base, False) is not None
    duplicated = _object_pairs(
        [("schemas", [URN + "group"]), ("id", str(UID)), ("name", "g"), ("name", "h")]
    )
    assert _decode_fast.fast_entry(duplicated, False) is None
    assert _decode_fast.fast_entry({**base, "description": None}, False) is None
    assert _decode_fast.fast_entry({**base, "externalId": None}, False) is None
    assert _decode_fast.fast_entry({**base, "meta": {"x": 1}}, False) is not None
    assert _decode_fast.fast_entry({**base, "meta": {"x": 1}}, True) is None
    assert _decode_fast.fast_entry({**base, "member": []}, False) is None
    mail_dup = _object_pairs([("value", "a@x"), ("value", "b@x")])
    assert _decode_fast.fast_entry({**base, "mail": [mail_dup]}, False) is None


def test_decode_errors_are_reported_with_paths_for_every_bad_entry() -> None:
    good = {"schemas": [URN + "group"], "id": str(UID), "name": "g"}
    bad_name = {**good, "name": 5}
    bad_mail = {**good, "mail": [{"value": "a@x", "primary": "yes"}]}
    doc = {
        "from_state": "Refresh",
        "to_state": "Refresh",
        "entries": [good, bad_name, good, bad_mail],
        "retain": "Ignore",
    }
    with pytest.raises(DecodeError) as caught:
        ChangeSet.from_json(json.dumps(doc))
    assert caught.value.errors == (
        ("$.entries[1].name", "expected a string, got an integer"),
        ("$.entries[3].mail[0].primary", "expected a boolean, got a string"),
    )


def test_user_built_entries_are_still_validated() -> None:
    with pytest.raises(TypeError, match=r"Person\.name must be a str, not int"):
        Person(id=UID, name=5, displayname="x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"Mail\.primary must be a bool or None"):
        Mail("a@x", primary="yes")  # type: ignore[arg-type]


# --- decoding: the streaming parse reports what the ordinary parse reports ------------------


def ordinary(text: str | bytes, strict: bool) -> object:
    """The request decoded without the streaming parse: a ChangeSet or the error's problems."""
    original = _decode.stream_request  # type: ignore[attr-defined]
    _decode.stream_request = lambda *args: None  # type: ignore[attr-defined]
    try:
        return outcome(text, strict)
    finally:
        _decode.stream_request = original  # type: ignore[attr-defined]


def outcome(text: str | bytes, strict: bool) -> object:
    try:
        cs = ChangeSet.from_json(text, strict=strict)
    except DecodeError as exc:
        return exc.errors
    return cs, [getattr(e, "schema_order", None) for e in cs.entries]


def mutations(text: str) -> st.SearchStrategy[str]:
    """Texts near ``text``: a character replaced, inserted or deleted, or a piece repeated."""
    positions = st.integers(0, max(len(text) - 1, 0))
    chars = st.sampled_from([*'{}[]:,"\\ \n0aenul-', "\ud800", "é"])
    return st.one_of(
        st.tuples(positions, chars).map(lambda pc: text[: pc[0]] + pc[1] + text[pc[0] + 1 :]),
        st.tuples(positions, chars).map(lambda pc: text[: pc[0]] + pc[1] + text[pc[0] :]),
        positions.map(lambda p: text[:p] + text[p + 1 :]),
        st.tuples(positions, positions).map(
            lambda ab: text[: max(ab)] + text[min(ab) : max(ab)] + text[max(ab) :]
        ),
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changesets(max_entries=3, extra=True, generic=True), st.data(), st.booleans())
def test_streaming_parse_reports_what_the_ordinary_parse_reports(
    cs: ChangeSet, data: st.DataObject, strict: bool
) -> None:
    text = data.draw(mutations(cs.to_json().decode()))
    assert outcome(text, strict) == ordinary(text, strict)


STREAM_CASES = [
    '{"from_state":"Refresh","to_state":"Refresh","entries":[],"retain":"Ignore"}',
    ' { "from_state" : "Refresh" , "to_state":"Refresh", "entries" : [ ] , "retain":"Ignore" } ',
    '{"from_state":"Refresh","to_state":"Refresh","entries":[],"retain":"Ignore"} x',
    '{"from_state":"Refresh","to_state":"Refresh","entries":[],"retain":"Ignore","retain":"x"}',
    '{"from_state":"Refresh","to_state":"Refresh","entries":{},"retain":"Ignore"}',
    '{"from_state":"Refresh","to_state":"Refresh","entries":[1,],"retain":"Ignore"}',
    '{"from_state":"Refresh","entries":[5, {"schemas":[]}],"to_state":"Nope","x":1}',
    '{"entries":[{"id":"\\ud800"}],"from_state":"Refresh","to_state":"Refresh","retain":"Ignore"}',
    '{"entries":[NaN],"from_state":"Refresh","to_state":"Refresh","retain":"Ignore"}',
    '{"entries":[1e999],"from_state":"Refresh","to_state":"Refresh","retain":"Ignore"}',
    '{"entries":[' + "[" * 100_000 + "]" * 100_000 + "]}",
    "{}",
    "[]",
    "",
    '{"entries":[]',
]


@pytest.mark.parametrize("text", STREAM_CASES)
@pytest.mark.parametrize("strict", [False, True])
def test_streaming_parse_edge_cases(text: str, strict: bool) -> None:
    assert outcome(text, strict) == ordinary(text, strict)
    assert outcome(text.encode("utf-8", "surrogatepass"), strict) == ordinary(
        text.encode("utf-8", "surrogatepass"), strict
    )


def test_streaming_parse_is_taken_and_drops_raw_entries() -> None:
    cs = ChangeSet(from_state=RefreshState(), to_state=RefreshState(), entries=corner_entries())  # type: ignore[arg-type]
    for text in (cs.to_json().decode(), json.dumps(json.loads(cs.to_json()), indent=2)):
        streamed = _decode_stream.stream_request(text, False, _decode._entry)
        assert streamed is not None
        top, entries, errs = streamed
        assert top["entries"] is _decode_stream.ENTRIES_STREAMED
        assert errs == []
        assert entries == list(cs.entries)
