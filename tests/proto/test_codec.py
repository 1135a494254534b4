"""The JSON codec: wire rules, entry typing, error paths, hostile input and reprs."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from kanidm_sync import (
    REFRESH,
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
    RetainIgnore,
    RetainOnly,
    ServiceAccount,
    SshPublicKey,
    Totp,
)
from kanidm_sync._proto._codec import (
    decode_changeset,
    decode_cookie,
    decode_entry,
    decode_retention,
    decode_sync_state,
    dumps,
    encode_changeset,
    encode_cookie,
    encode_entry,
    encode_retention,
    encode_sync_state,
)

URN = "urn:ietf:params:scim:schemas:kanidm:sync:1:"
UID = uuid.UUID("9a7c1f52-4c7d-4b0e-8a43-1e4f6f1c2d10")
UID2 = uuid.UUID("0c2b5e6a-7f3e-4d5b-9c1a-2b3c4d5e6f70")
SECRET = "S3cr3t-h4sh-do-not-show-zq"


def person_json(**attrs: Any) -> dict[str, Any]:
    """A minimal person entry as JSON, plus ``attrs``."""
    entry: dict[str, Any] = {
        "schemas": [URN + "account", URN + "person"],
        "id": str(UID),
        "externalId": "uid=alice,ou=people",
        "displayname": "Alice",
        "name": "alice",
    }
    entry.update(attrs)
    return entry


def group_json(**attrs: Any) -> dict[str, Any]:
    """A minimal group entry as JSON, plus ``attrs``."""
    entry: dict[str, Any] = {
        "schemas": [URN + "group"],
        "id": str(UID2),
        "externalId": "cn=staff",
        "name": "staff",
    }
    entry.update(attrs)
    return entry


def request(*entries: Any, **top: Any) -> dict[str, Any]:
    """A sync request with the given entries."""
    body: dict[str, Any] = {
        "from_state": "Refresh",
        "to_state": {"Active": {"cookie": "c3luYy0x"}},
        "entries": list(entries),
        "retain": "Ignore",
    }
    body.update(top)
    return body


def errors_of(fn: Any, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
    """Call ``fn`` and return the DecodeError's (path, message) pairs."""
    with pytest.raises(DecodeError) as info:
        fn(*args, **kwargs)
    return list(info.value.errors)


def paths_of(fn: Any, *args: Any, **kwargs: Any) -> list[str]:
    """Call ``fn`` and return the paths of its DecodeError."""
    return [path for path, _ in errors_of(fn, *args, **kwargs)]


# --- cookie ---------------------------------------------------------------------------------------


def test_encode_cookie_is_urlsafe_unpadded():
    """The spec's example: bytes 01 02 03 04 encode as AQIDBA (no padding)."""
    assert "AQIDBA" == encode_cookie(b"\x01\x02\x03\x04")


def test_encode_cookie_uses_the_urlsafe_alphabet():
    """Bytes that give + and / in standard base64 give - and _ here."""
    assert "-_8" == encode_cookie(b"\xfb\xff")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("AQIDBA", b"\x01\x02\x03\x04"),
        ("AQIDBA==", b"\x01\x02\x03\x04"),
        ("AQIDBA=", b"\x01\x02\x03\x04"),
        ("-_8", b"\xfb\xff"),
        ("", b""),
        ("c3luYy0x", b"sync-1"),
    ],
)
def test_decode_cookie_accepts_padded_and_unpadded(text, expected):
    """URL-safe base64 decodes with or without (partial) padding."""
    assert expected == decode_cookie(text)


@pytest.mark.parametrize(
    "text",
    ["+_8", "/w", "AQ=I", "AQIDB", "AQ===", "AQIDBA===", "AR", "AQ ID", "AQ\n", 5, None, b"AQ"],
)
def test_decode_cookie_rejects_junk(text):
    """Standard-alphabet characters, bad padding, non-canonical bits and non-strings fail."""
    assert ["$"] == paths_of(decode_cookie, text)


# --- sync state and retention ---------------------------------------------------------------------


def test_encode_sync_state_is_externally_tagged():
    """Refresh is a bare string, Active a one-key object holding the cookie."""
    assert "Refresh" == encode_sync_state(REFRESH)
    assert {"Active": {"cookie": "AQIDBA"}} == encode_sync_state(ActiveState(b"\x01\x02\x03\x04"))


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        ("Refresh", REFRESH),
        ({"Refresh": None}, REFRESH),
        ({"Active": {"cookie": "AQIDBA=="}}, ActiveState(b"\x01\x02\x03\x04")),
        ({"Active": {"cookie": ""}}, ActiveState(b"")),
    ],
)
def test_decode_sync_state(wire, expected):
    """Both serde spellings of Refresh, and Active with a padded or empty cookie."""
    assert expected == decode_sync_state(wire)


@pytest.mark.parametrize(
    ("wire", "path"),
    [
        ("refresh", "$"),
        ("Active", "$"),
        ({"Active": None}, "$.Active"),
        ({"Active": {}}, "$.Active.cookie"),
        ({"Active": {"cookie": "a+b"}}, "$.Active.cookie"),
        ({"Refresh": None, "Active": {"cookie": ""}}, "$"),
        ({"Refresh": {}}, "$.Refresh"),
        ([], "$"),
        (None, "$"),
    ],
)
def test_decode_sync_state_rejects(wire, path):
    """Wrong case, missing data, two variants and non-objects are refused at their path."""
    assert [path] == paths_of(decode_sync_state, wire)


def test_encode_retention_modes():
    """Ignore is a bare string; Retain and Delete carry lower-case hyphenated UUIDs."""
    assert "Ignore" == encode_retention(RetainIgnore())
    assert {"Retain": [str(UID), str(UID2)]} == encode_retention(RetainOnly([UID, UID2]))
    assert {"Delete": [str(UID)]} == encode_retention(DeleteOnly([UID]))
    assert {"Retain": []} == encode_retention(RetainOnly([]))


@pytest.mark.parametrize(
    "text",
    [
        "9A7C1F52-4C7D-4B0E-8A43-1E4F6F1C2D10",
        "9a7c1f524c7d4b0e8a431e4f6f1c2d10",
        "urn:uuid:9a7c1f52-4c7d-4b0e-8a43-1e4f6f1c2d10",
        "{9a7c1f52-4c7d-4b0e-8a43-1e4f6f1c2d10}",
    ],
)
def test_decode_retention_accepts_the_uuid_forms_rust_parses(text):
    """Every form the Rust uuid crate parses decodes (and re-encodes canonical)."""
    mode = decode_retention({"Delete": [text]})
    assert DeleteOnly([UID]) == mode
    assert {"Delete": [str(UID)]} == encode_retention(mode)


@pytest.mark.parametrize(
    ("wire", "path"),
    [
        ("Retain", "$"),
        ({"Retain": None}, "$.Retain"),
        ({"Retain": "9a7c1f52-4c7d-4b0e-8a43-1e4f6f1c2d10"}, "$.Retain"),
        ({"Delete": ["9a7c1f524c7d4b0e-8a43-1e4f6f1c2d10"]}, "$.Delete[0]"),
        ({"Delete": ["urn:uuid:9a7c1f524c7d4b0e8a431e4f6f1c2d10"]}, "$.Delete[0]"),
        ({"Delete": [str(UID), 7]}, "$.Delete[1]"),
        ({"Keep": []}, "$"),
        ({"Ignore": []}, "$.Ignore"),
    ],
)
def test_decode_retention_rejects(wire, path):
    """Bare data variants, non-lists, UUID forms Rust refuses and unknown variants fail."""
    assert [path] == paths_of(decode_retention, wire)


def test_decode_retention_accepts_serde_unit_spelling():
    """{"Ignore": null} is how serde also spells the unit variant."""
    assert RetainIgnore() == decode_retention({"Ignore": None})


# --- encoding entries -----------------------------------------------------------------------------


def full_person() -> Person:
    """A person with every field set."""
    return Person(
        id=UID,
        external_id="uid=alice",
        name="alice",
        displayname="Alice",
        legalname="Alice Liddell",
        mail=(Mail("a@example.org", primary=True), Mail("b@example.org")),
        ssh_publickey=(SshPublicKey("laptop", "ssh-ed25519 AAAA"),),
        account_valid_from="2020-01-01T00:00:00Z",
        account_expire="2030-01-01T00:00:00Z",
        account_softlock_expire="2025-01-01T00:00:00Z",
        password_import=SECRET,
        totp_import=(Totp(external_id="tok", secret=SECRET, algo="sha256", step=60, digits=8),),
        posix=PosixAccount(gidnumber=20001, loginshell="/bin/bash", unix_password_import=SECRET),
        oauth2=OAuth2Account(provider=UID2, unique_user_id="u1", unique_user_sub="sub1"),
        extra={"zz_custom": "z", "aa_custom": ["a"]},
    )


def test_person_key_order_is_header_then_byte_sorted():
    """Header keys first, then every attribute (typed and extra) in byte order."""
    encoded = encode_entry(full_person())
    keys = list(encoded)
    assert ["schemas", "id", "externalId"] == keys[:3]
    assert sorted(keys[3:]) == keys[3:]
    assert {
        "aa_custom",
        "account_expire",
        "account_softlock_expire",
        "account_valid_from",
        "displayname",
        "gidnumber",
        "legalname",
        "loginshell",
        "mail",
        "name",
        "oauth2_account_provider",
        "oauth2_account_unique_user_id",
        "oauth2_account_unique_user_sub",
        "password_import",
        "ssh_publickey",
        "totp_import",
        "unix_password_import",
        "zz_custom",
    } == set(keys[3:])


def test_person_nested_items_are_sorted_and_snake_case():
    """Mail, ssh key and TOTP items have sorted keys; the TOTP label is external_id."""
    encoded = encode_entry(full_person())
    assert [{"primary": True, "value": "a@example.org"}, {"value": "b@example.org"}] == encoded[
        "mail"
    ]
    assert [{"label": "laptop", "value": "ssh-ed25519 AAAA"}] == encoded["ssh_publickey"]
    totp = encoded["totp_import"]
    assert isinstance(totp, list)
    assert isinstance(totp[0], dict)
    assert ["algo", "digits", "external_id", "secret", "step"] == list(totp[0])
    assert 60 == totp[0]["step"]
    assert [URN + "account", URN + "person", URN + "posixaccount", URN + "oauth2_account"] == list(
        encoded["schemas"]  # type: ignore[arg-type]
    )
    assert str(UID2) == encoded["oauth2_account_provider"]


def test_minimal_person_omits_none_and_empty():
    """Unset optional fields and empty lists are omitted, never null or []."""
    person = Person(id=UID, name="alice", displayname="Alice")
    expected = (
        b'{"schemas":["' + (URN + "account").encode() + b'","' + (URN + "person").encode() + b'"],'
        b'"id":"9a7c1f52-4c7d-4b0e-8a43-1e4f6f1c2d10","displayname":"Alice","name":"alice"}'
    )
    assert expected == dumps(encode_entry(person))


def test_posix_facet_without_values_sends_only_the_urn():
    """A posix facet with no gidnumber sends the URN and lets Kanidm derive the gid."""
    encoded = encode_entry(Person(id=UID, name="a", displayname="A", posix=PosixAccount()))
    assert URN + "posixaccount" in encoded["schemas"]  # type: ignore[operator]
    assert "gidnumber" not in encoded


def test_group_encoding():
    """A group: header, sorted attributes, members as external_id objects."""
    group = Group(
        id=UID2,
        external_id="cn=staff",
        name="staff",
        description="All staff",
        mail=(Mail("staff@example.org"),),
        member=("uid=alice", UID),
        posix=PosixGroup(gidnumber=20100),
    )
    expected = {
        "schemas": [URN + "group", URN + "posixgroup"],
        "id": str(UID2),
        "externalId": "cn=staff",
        "description": "All staff",
        "gidnumber": 20100,
        "mail": [{"value": "staff@example.org"}],
        "member": [{"external_id": "uid=alice"}, {"external_id": str(UID)}],
        "name": "staff",
    }
    assert json.dumps(expected, separators=(",", ":")).encode() == dumps(encode_entry(group))


def test_service_account_encoding():
    """A service account sends the account and service_account URNs and its fields."""
    sa = ServiceAccount(
        id=UID,
        external_id="uid=bot",
        name="bot",
        displayname="Bot",
        description="a bot",
        posix=PosixAccount(gidnumber=30000),
    )
    encoded = encode_entry(sa)
    assert [URN + "account", URN + "service_account", URN + "posixaccount"] == list(
        encoded["schemas"]  # type: ignore[arg-type]
    )
    assert ["description", "displayname", "gidnumber", "name"] == list(encoded)[3:]


def test_generic_entry_sorts_attributes_and_nested_keys():
    """Raw attributes are sorted byte-wise, nested objects too; a top-level None is omitted."""
    entry = GenericEntry(
        id=UID,
        schemas=[URN + "custom"],
        attributes={"z": [{"b": 1, "a": 2}], "B": True, "a": "x", "none": None, "é": 1, "_": 0},
    )
    assert (
        b'{"schemas":["' + (URN + "custom").encode() + b'"],"id":"' + str(UID).encode() + b'",'
        b'"B":true,"_":0,"a":"x","z":[{"a":2,"b":1}],"\xc3\xa9":1}'
    ) == dumps(encode_entry(entry))


def test_extra_key_that_repeats_a_typed_key_is_refused():
    """An extra attribute cannot repeat a key a typed field or the header sends."""
    with pytest.raises(EncodeError, match=r"name"):
        encode_entry(Person(id=UID, name="a", displayname="A", extra={"name": "b"}))
    with pytest.raises(EncodeError, match=r"externalId"):
        encode_entry(GenericEntry(id=UID, attributes={"externalId": "x"}))


@pytest.mark.parametrize(
    "value",
    [
        [None],
        {"a": None},
        float("nan"),
        float("inf"),
        {1, 2},
        b"bytes",
        object(),
        {1: "a", "b": 2},
        2**63,
    ],
)
def test_raw_values_without_json_form_are_refused(value):
    """Nested null, non-finite floats and non-JSON objects raise EncodeError."""
    entry = GenericEntry(id=UID, schemas=[URN + "x"], attributes={"attr": value})
    with pytest.raises(EncodeError, match=r"attr"):
        ChangeSet(from_state=REFRESH, to_state=REFRESH, entries=[entry]).to_json()


def test_lone_surrogate_is_an_encode_error_naming_the_field_not_the_value():
    """A lone surrogate has no UTF-8 form; the error names the path, never the string."""
    person = Person(id=UID, name="a", displayname="A", password_import=SECRET + "\ud800")
    cs = ChangeSet(from_state=REFRESH, to_state=REFRESH, entries=[person])
    with pytest.raises(EncodeError) as info:
        cs.to_json()
    assert "$.entries[0].password_import" in str(info.value)
    assert SECRET not in str(info.value)


def test_bool_totp_step_is_an_encode_error():
    """A bool is not an integer on the wire: the encoder refuses a TOTP step of True.

    (Totp itself refuses it when built.)
    """
    totp = Totp(external_id="t", secret="AAAA")
    object.__setattr__(totp, "step", True)  # past Totp's own type check
    person = Person(
        id=UID,
        name="a",
        displayname="A",
        password_import="x",
        totp_import=(totp,),
    )
    with pytest.raises(EncodeError, match=r"step"):
        encode_entry(person)


def test_encode_changeset_top_level_order():
    """The request keys come in serde's struct order."""
    cs = ChangeSet(from_state=ActiveState(b"a"), to_state=REFRESH, retain=DeleteOnly([UID]))
    assert ["from_state", "to_state", "entries", "retain"] == list(encode_changeset(cs))
    assert (
        b'{"from_state":{"Active":{"cookie":"YQ"}},"to_state":"Refresh","entries":[],'
        b'"retain":{"Delete":["9a7c1f52-4c7d-4b0e-8a43-1e4f6f1c2d10"]}}'
    ) == cs.to_json()


# --- dumps ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("\x00\x1f\x7f", b'"\\u0000\\u001f\x7f"'),
        ("\n\r\t\b\f", b'"\\n\\r\\t\\b\\f"'),
        ('"\\/', b'"\\"\\\\/"'),
        ("\u2028é😀", '"\u2028é😀"'.encode()),
        (1e16, b"1e16"),
        (1e-5, b"0.00001"),
        (-2.5e-5, b"-0.000025"),
        (1.5e-7, b"1.5e-7"),
        (1e-4, b"0.0001"),
        (123.0, b"123.0"),
        (1e15, b"1000000000000000.0"),
        (5e-324, b"5e-324"),
        (1.7976931348623157e308, b"1.7976931348623157e308"),
        ({"b": [1, True, None], "a": "x"}, b'{"b":[1,true,null],"a":"x"}'),
    ],
)
def test_dumps_matches_serde_json(value, expected):
    """Escapes and float formats are serde_json's (ryu), key order is kept as given."""
    assert expected == dumps(value)


def test_changeset_floats_in_extra_use_serde_format():
    """A float in an extra attribute is written as serde_json writes it."""
    person = Person(id=UID, name="a", displayname="A", extra={"x_num": [1e16, 0.5, 1e-5]})
    cs = ChangeSet(from_state=REFRESH, to_state=REFRESH, entries=[person])
    assert b'"x_num":[1e16,0.5,0.00001]' in cs.to_json()
    assert cs == ChangeSet.from_json(cs.to_json())


def test_dumps_refuses_lone_surrogates_and_nan():
    """The dumps function raises EncodeError, never a ValueError or UnicodeEncodeError."""
    with pytest.raises(EncodeError, match=r"\$\[1\]"):
        dumps(["ok", "\udc00"])
    with pytest.raises(EncodeError):
        dumps(float("nan"))


# --- entry typing on decode -----------------------------------------------------------------------


def test_decode_person_with_facets():
    """account+person+posixaccount+oauth2_account gives a Person with both facets."""
    entry = decode_entry(
        person_json(
            schemas=[URN + "account", URN + "person", URN + "posixaccount", URN + "oauth2_account"],
            gidnumber=20001,
            loginshell="/bin/zsh",
            unix_password_import=SECRET,
            oauth2_account_provider="provider-ext-id",
            oauth2_account_unique_user_id="42",
            oauth2_account_unique_user_sub="sub-42",
            legalname="Alice L",
            x_custom=["v"],
        )
    )
    assert isinstance(entry, Person)
    assert PosixAccount(gidnumber=20001, loginshell="/bin/zsh", unix_password_import=SECRET) == (
        entry.posix
    )
    assert OAuth2Account(
        provider="provider-ext-id", unique_user_id="42", unique_user_sub="sub-42"
    ) == (entry.oauth2)
    assert "Alice L" == entry.legalname
    assert {"x_custom": ["v"]} == dict(entry.extra)


def test_decode_service_account():
    """account+service_account gives a ServiceAccount."""
    entry = decode_entry(
        person_json(schemas=[URN + "service_account", URN + "account"], description="bot", mail=[])
        | {"mail": [{"value": "bot@example.org"}]}
    )
    assert isinstance(entry, ServiceAccount)
    assert "bot" == entry.description
    assert (Mail("bot@example.org"),) == entry.mail
    assert (URN + "service_account", URN + "account") == entry.schemas


def test_posix_facet_present_iff_urn():
    """The posixaccount URN alone (no posix attributes) still gives a posix facet."""
    with_urn = decode_entry(
        person_json(schemas=[URN + "account", URN + "person", URN + "posixaccount"])
    )
    without = decode_entry(person_json())
    assert isinstance(with_urn, Person)
    assert isinstance(without, Person)
    assert PosixAccount() == with_urn.posix
    assert without.posix is None


@pytest.mark.parametrize(
    "entry",
    [
        person_json(gidnumber=20001),  # posix attribute without the posixaccount URN
        person_json(member=[{"external_id": "x"}]),  # a group attribute on a person
        person_json(Name="Alice"),  # a differently cased modelled key
        person_json(mail=[]),  # an explicit empty array
        person_json(mail=[{"value": "a@example.org", "type": "work"}]),  # a key kanidmd ignores
        person_json(schemas=[URN + "account", URN + "person", URN + "person"]),  # a repeated URN
        person_json(schemas=[URN + "person"]),  # person without account
        person_json(schemas=[URN + "account", URN + "person", URN + "group"]),  # mixed classes
        group_json(legalname="x"),  # a person attribute on a group
        group_json(oauth2_account_provider="x"),
        person_json(oauth2_account_provider="x"),  # oauth2 attribute without the URN
    ],
)
def test_unrepresentable_entries_decode_as_generic_and_round_trip(entry):
    """What a typed class cannot hold faithfully becomes a GenericEntry, losing nothing."""
    cs = decode_changeset(request(entry))
    (decoded,) = cs.entries
    assert isinstance(decoded, GenericEntry)
    assert request(entry) == json.loads(cs.to_json())


def test_unknown_attributes_go_to_extra_and_are_sent():
    """An attribute no typed class models is kept in extra and re-encoded in sorted place."""
    cs = decode_changeset(request(person_json(zz_site="HQ", aa_flags=[1, 2, 300])))
    (person,) = cs.entries
    assert isinstance(person, Person)
    assert {"zz_site": "HQ", "aa_flags": [1, 2, 300]} == dict(person.extra)
    keys = list(json.loads(cs.to_json())["entries"][0])
    assert ["schemas", "id", "externalId", "aa_flags", "displayname", "name", "zz_site"] == keys


def test_empty_array_in_extra_is_kept_as_is():
    """An empty array on an unmodelled attribute is kept for the validator to flag."""
    cs = decode_changeset(request(person_json(x_list=[])))
    (person,) = cs.entries
    assert isinstance(person, Person)
    assert {"x_list": []} == dict(person.extra)
    assert b'"x_list":[]' in cs.to_json()


def test_meta_is_dropped_when_tolerant_and_refused_when_strict():
    """Kanidmd ignores an entry's meta: tolerant decoding drops it, strict refuses it."""
    meta = {
        "resourceType": "User",
        "created": "x",
        "lastModified": "x",
        "location": "x",
        "version": "x",
    }
    tolerant = decode_changeset(request(person_json(meta=meta)))
    assert "meta" not in json.loads(tolerant.to_json())["entries"][0]
    assert ["$.entries[0].meta"] == paths_of(
        decode_changeset, request(person_json(meta=meta)), strict=True
    )


def test_strict_refuses_unknown_keys_everywhere():
    """Strict mode names every unknown key: request, state object, and items."""
    body = request(
        person_json(mail=[{"value": "a@example.org", "type": "work"}]),
        group_json(member=[{"external_id": "x", "display": "X"}]),
        to_state={"Active": {"cookie": "AQ", "extra": 1}},
        version=2,
    )
    assert {
        "$.version",
        "$.to_state.Active.extra",
        "$.entries[0].mail[0].type",
        "$.entries[1].member[0].display",
    } == set(paths_of(decode_changeset, body, strict=True))
    # Tolerant mode accepts the same body.
    assert 2 == len(decode_changeset(body).entries)


def test_tolerant_ignores_unknown_request_keys():
    """Unknown top-level keys are ignored by default, as kanidmd ignores them."""
    cs = decode_changeset(request(version=2))
    assert ChangeSet(from_state=REFRESH, to_state=ActiveState(b"sync-1")) == cs


def test_member_uuid_strings_are_kept_as_given():
    """A member written as a UUID string stays a string (resolution is kanidmd's)."""
    cs = decode_changeset(
        request(group_json(member=[{"external_id": "9A7C1F52-4C7D-4B0E-8A43-1E4F6F1C2D10"}]))
    )
    (group,) = cs.entries
    assert isinstance(group, Group)
    assert ("9A7C1F52-4C7D-4B0E-8A43-1E4F6F1C2D10",) == group.member


def test_id_forms_are_normalised():
    """An upper-case or simple-form id decodes and re-encodes lower-case hyphenated."""
    cs = decode_changeset(request(person_json(id=str(UID).upper().replace("-", ""))))
    assert str(UID) == json.loads(cs.to_json())["entries"][0]["id"]


# --- decode errors --------------------------------------------------------------------------------


def test_every_problem_is_reported_with_its_path():
    """One DecodeError lists all problems of all entries, each at its JSON path."""
    body = request(
        person_json(name=None, mail=[{"value": 5}, {"primary": "yes", "value": "a"}]),
        group_json(id="not-a-uuid", gidnumber=1) | {"schemas": [URN + "group", URN + "posixgroup"]},
        person_json(schemas=[URN + "account", URN + "person", URN + "posixaccount"], gidnumber="1")
        | {"displayname": ["x"]},
        {"schemas": "group"},
        from_state="refresh",
        retain={"Delete": ["x"]},
    )
    del body["entries"][3]
    body["entries"].append({"schemas": "group"})
    errors = errors_of(decode_changeset, body)
    assert [
        "$.from_state",
        "$.retain.Delete[0]",
        "$.entries[0].name",
        "$.entries[0].mail[0].value",
        "$.entries[0].mail[1].primary",
        "$.entries[1].id",
        "$.entries[2].displayname",
        "$.entries[2].gidnumber",
        "$.entries[3].schemas",
        "$.entries[3].id",
    ] == [path for path, _ in errors]
    assert "null" in dict(errors)["$.entries[0].name"]


def test_missing_required_values():
    """A person without name and displayname reports both; missing top-level keys too."""
    entry = person_json()
    del entry["name"], entry["displayname"]
    assert ["$.name", "$.displayname"] == paths_of(decode_entry, entry)
    assert ["$.entries[0].name", "$.entries[0].displayname"] == paths_of(
        decode_changeset, request(entry)
    )
    assert ["$.from_state", "$.to_state", "$.entries", "$.retain"] == paths_of(decode_changeset, {})


def test_decode_entry_uses_the_given_path():
    """decode_entry prefixes its errors with the path it is given."""
    assert ["$.entries[7].name"] == paths_of(decode_entry, person_json(name=1), "$.entries[7]")


def test_oauth2_urn_needs_provider_and_user_id():
    """The oauth2_account URN without its must-attributes is a decode error."""
    entry = person_json(schemas=[URN + "account", URN + "person", URN + "oauth2_account"])
    assert ["$.oauth2_account_provider", "$.oauth2_account_unique_user_id"] == paths_of(
        decode_entry, entry
    )


@pytest.mark.parametrize(
    ("attrs", "path"),
    [
        ({"gidnumber": True}, "$.gidnumber"),
        ({"gidnumber": 1.0}, "$.gidnumber"),
        ({"gidnumber": 2**63}, "$.gidnumber"),
        ({"loginshell": 1}, "$.loginshell"),
        ({"mail": {"value": "a"}}, "$.mail"),
        ({"mail": ["a@example.org"]}, "$.mail[0]"),
        ({"ssh_publickey": [{"label": "x"}]}, "$.ssh_publickey[0].value"),
        (
            {"totp_import": [{"external_id": "t", "secret": "AA", "algo": "sha1", "step": 30}]},
            "$.totp_import[0].digits",
        ),
        (
            {
                "totp_import": [
                    {"external_id": "t", "secret": "AA", "algo": "sha1", "step": True, "digits": 6}
                ]
            },
            "$.totp_import[0].step",
        ),
        ({"x_attr": None}, "$.x_attr"),
        ({"x_attr": [[1, 300]]}, "$.x_attr[0]"),
        ({"x_attr": {"a": {"b": 1}}}, "$.x_attr.a"),
        ({"x_attr": ["a", {"b": 1}]}, "$.x_attr[1]"),
        ({"x_attr": [{"a": None}]}, "$.x_attr[0].a"),
        ({"x_attr": -(2**63) - 1}, "$.x_attr"),
        ({"$ref": None}, '$["$ref"]'),
    ],
)
def test_wrong_types_are_reported(attrs, path):
    """Wrong JSON types for typed fields and values outside kanidmd's model fail at their path."""
    entry = person_json(schemas=[URN + "account", URN + "person", URN + "posixaccount"], **attrs)
    assert [path] == paths_of(decode_entry, entry)


def test_generic_entry_values_are_checked_too():
    """A GenericEntry's raw values must also fit kanidmd's value model."""
    entry = {"schemas": [URN + "custom"], "id": str(UID), "a": None, "b": [[[1]]]}
    assert ["$.a", "$.b[0]"] == paths_of(decode_entry, entry)


def test_duplicate_keys_are_reported():
    """A key repeated in one object is refused (serde refuses repeated struct fields)."""
    text = (
        '{"from_state":"Refresh","to_state":"Refresh","retain":"Ignore","entries":[{"schemas":[],'
        '"id":"9a7c1f52-4c7d-4b0e-8a43-1e4f6f1c2d10","a":1,"a":2}],"entries":[]}'
    )
    assert ["$.entries"] == paths_of(ChangeSet.from_json, text)
    inner = text.replace(',"entries":[]}', "}")
    assert ["$.entries[0].a"] == paths_of(ChangeSet.from_json, inner)


def test_decode_error_messages_never_contain_secrets():
    """A malformed entry carrying secrets reports problems without repeating them."""
    entry = person_json(
        password_import=SECRET,
        name=5,
        totp_import=[
            {"external_id": "t", "secret": SECRET, "algo": "sha1", "step": "30", "digits": 6}
        ],
    )
    with pytest.raises(DecodeError) as info:
        decode_entry(entry)
    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value.errors)


# --- hostile input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xfe{}",
        b'{"from_state":"Refresh"\xc3}',
        b"\xef\xbb\xbf{}",
        "not json",
        "{'a': 1}",
        '{"from_state": NaN}',
        '{"from_state": Infinity}',
        '{"from_state": -Infinity}',
        '{"from_state": 1e400}',
        '{"from_state": ' + "9" * 5000 + "}",
        "[" * 100_000 + "]" * 100_000,
        '{"a":' * 50_000 + "1" + "}" * 50_000,
        '{"from_state":"\\ud800"}',
        '{"from_state":"a\x01"}',
        "[]",
        "null",
        '"Refresh"',
        "{}",
    ],
)
def test_hostile_input_raises_decode_error_only(data):
    """Invalid UTF-8, non-JSON, NaN, huge and deep input all raise DecodeError, nothing else."""
    with pytest.raises(DecodeError):
        ChangeSet.from_json(data)


def test_lone_surrogate_escape_reports_its_path():
    r"""A \u escape for a lone surrogate is refused (serde_json refuses it) at its path."""
    body = json.dumps(request(person_json(displayname="\ud800")))
    assert ["$.entries[0].displayname"] == paths_of(ChangeSet.from_json, body)


def test_surrogate_pair_escape_is_accepted():
    r"""A \u escape pair is one valid code point."""
    body = json.dumps(request(person_json(displayname="😀")), ensure_ascii=True)
    (person,) = ChangeSet.from_json(body).entries
    assert isinstance(person, Person)
    assert "😀" == person.displayname


def test_non_text_input_is_a_decode_error():
    """from_json given something that is neither str nor bytes raises DecodeError."""
    with pytest.raises(DecodeError):
        ChangeSet.from_json(5)  # type: ignore[arg-type]


# --- reprs ----------------------------------------------------------------------------------------


def secret_entries() -> list[Any]:
    """Entries of every kind carrying the distinctive secret in every secret field."""
    return [
        full_person(),
        ServiceAccount(
            id=uuid.uuid4(),
            name="svc",
            displayname="Svc",
            password_import=SECRET,
            posix=PosixAccount(unix_password_import=SECRET),
            extra={"password_import": SECRET},
        ),
        GenericEntry(
            id=uuid.uuid4(),
            schemas=[URN + "x"],
            attributes={
                "password_import": SECRET,
                "unix_password_import": SECRET,
                "totp_import": [{"secret": SECRET}],
            },
        ),
        Group(id=uuid.uuid4(), name="g", extra={"totp_import": [{"secret": SECRET}]}),
    ]


@pytest.mark.parametrize("index", range(4))
def test_entry_reprs_mask_secrets(index):
    """No secret appears in repr() or _repr_html_() of any entry kind."""
    entry = secret_entries()[index]
    assert SECRET not in repr(entry)
    html = entry._repr_html_()
    assert SECRET not in html
    assert type(entry).__name__ in html


def test_changeset_reprs_mask_secrets_and_count_kinds():
    """The ChangeSet repr and HTML count entries by kind and never show a secret."""
    cs = ChangeSet(from_state=REFRESH, to_state=ActiveState(b"c"), entries=secret_entries())
    text = repr(cs)
    html = cs._repr_html_()
    assert SECRET not in text
    assert SECRET not in html
    assert "1 GenericEntry, 1 Group, 1 Person, 1 ServiceAccount" in text
    assert "1 GenericEntry, 1 Group, 1 Person, 1 ServiceAccount" in html
    assert 4 == html.count("<tr><td>")


def test_changeset_html_shows_at_most_50_entries():
    """A large ChangeSet's table stops at 50 rows and says how many more there are."""
    groups = [Group(id=uuid.UUID(int=i + 1), name=f"g{i}") for i in range(120)]
    html = ChangeSet(from_state=REFRESH, to_state=REFRESH, entries=groups)._repr_html_()
    assert 50 == html.count("<tr><td>")
    assert "and 70 more entries" in html
    assert "120 entries: 120 Group" in html


def test_entry_html_escapes_markup():
    """Values are HTML-escaped in the entry table."""
    html = Group(id=UID, name="g", description="<script>x</script>")._repr_html_()
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


@pytest.mark.parametrize(
    ("fn", "value", "path"),
    [
        (decode_changeset, request(person_json(x={1: "a"})), "$.entries[0].x[1]"),
        (decode_changeset, {("tuple",): 1}, "$[('tuple',)]"),
        (decode_entry, person_json(x_num=float("nan")), "$.x_num"),
        (decode_sync_state, {"Active": {"cookie": "AQ", 2: 3}}, "$.Active[2]"),
        (decode_retention, {"Delete": [float("inf")]}, "$.Delete[0]"),
    ],
)
def test_python_objects_json_cannot_hold_are_decode_errors(fn, value, path):
    """Decoders given Python objects with non-string keys or NaN report them, never crash."""
    assert [path] == paths_of(fn, value)


def test_python_tuples_are_not_arrays():
    """A tuple is not what json.loads produces: it is reported as the wrong type."""
    assert ["$.entries"] == paths_of(decode_changeset, request() | {"entries": ()})


def test_null_optional_header_keys_read_as_absent():
    """Null externalId and meta (serde Options) read as absent and are re-encoded absent."""
    cs = decode_changeset(request(person_json(externalId=None, meta=None)), strict=True)
    (person,) = cs.entries
    assert isinstance(person, Person)
    assert person.external_id is None
    assert ["schemas", "id", "displayname", "name"] == list(json.loads(cs.to_json())["entries"][0])


def test_literal_lone_surrogate_in_text_input_is_a_decode_error():
    """A str input holding a lone surrogate literally is not Unicode: DecodeError with path."""
    body = json.dumps(request(person_json(name="a\ud800")), ensure_ascii=False)
    assert ["$.entries[0].name"] == paths_of(ChangeSet.from_json, body)
