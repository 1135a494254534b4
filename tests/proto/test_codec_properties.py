"""Property tests of the codec: round trips, no data loss, and hostile input."""

from __future__ import annotations

import json
import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kanidm_sync import REFRESH, ChangeSet, DecodeError, EncodeError, GenericEntry
from kanidm_sync._proto._codec import decode_changeset, encode_changeset
from kanidm_sync.testing.strategies import changesets, raw_values

URN = "urn:ietf:params:scim:schemas:kanidm:sync:1:"
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Whole ChangeSets are costly to generate; fewer, smaller examples keep the suite quick on 2 cores.
CHANGESET_SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)

# Attribute names a fuzzer should hit: every modelled one, a cased variant, header names, junk.
attribute_names = st.sampled_from(
    [
        "name",
        "Name",
        "displayname",
        "legalname",
        "mail",
        "ssh_publickey",
        "totp_import",
        "password_import",
        "gidnumber",
        "loginshell",
        "unix_password_import",
        "member",
        "description",
        "account_expire",
        "oauth2_account_provider",
        "oauth2_account_unique_user_id",
        "external_id",
        "x_custom",
    ]
) | st.text(max_size=6)

item_values = st.lists(
    st.dictionaries(
        st.sampled_from(
            ["value", "primary", "label", "external_id", "secret", "algo", "step", "digits", "type"]
        ),
        st.text(max_size=4) | st.booleans() | st.integers(0, 100),
        max_size=5,
    ),
    max_size=3,
)

schema_lists = st.lists(
    st.sampled_from(
        [
            URN + s
            for s in (
                "account",
                "person",
                "posixaccount",
                "oauth2_account",
                "group",
                "posixgroup",
                "service_account",
                "custom",
            )
        ]
    ),
    max_size=4,
)


typed_schema_lists = st.sampled_from(
    [
        [URN + "account", URN + "person"],
        [URN + "person", URN + "account", URN + "posixaccount"],
        [URN + "account", URN + "person", URN + "oauth2_account"],
        [URN + "group"],
        [URN + "group", URN + "posixgroup"],
        [URN + "service_account", URN + "account", URN + "posixaccount"],
    ]
)

# Values shaped like what typed fields hold, so typed decoding is reached often.
typed_values = st.one_of(
    st.text(max_size=6),
    st.integers(0, 70000),
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
    st.lists(st.fixed_dictionaries({"external_id": st.text(max_size=4)}), min_size=1, max_size=2),
    st.lists(
        st.fixed_dictionaries(
            {
                "external_id": st.text(max_size=3),
                "secret": st.text(max_size=3),
                "algo": st.just("sha1"),
                "step": st.integers(30, 60),
                "digits": st.sampled_from([6, 8]),
            }
        ),
        min_size=1,
        max_size=2,
    ),
)


def outcome(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call ``fn``; return its value, or the DecodeError it raised (any other error escapes)."""
    try:
        return fn(*args, **kwargs)
    except DecodeError as exc:
        return exc


def shuffled(value: Any, draw: Any) -> Any:
    """The same JSON value with every object's keys in a random order."""
    if isinstance(value, dict):
        keys = draw(st.permutations(list(value)))
        return {k: shuffled(value[k], draw) for k in keys}
    if isinstance(value, list):
        return [shuffled(v, draw) for v in value]
    return value


@CHANGESET_SETTINGS
@given(changesets(max_entries=4, extra=True, generic=True))
def test_round_trip_of_arbitrary_valid_changesets(cs):
    """decode(encode(x)) == x and encode(decode(encode(x))) == encode(x)."""
    data = cs.to_json()
    decoded = ChangeSet.from_json(data)
    assert cs == decoded
    assert data == decoded.to_json()
    assert decoded == ChangeSet.from_json(data, strict=True)


@CHANGESET_SETTINGS
@given(changesets(max_entries=4), st.data())
def test_key_order_and_whitespace_do_not_matter(cs, data):
    """Any key order and indentation decodes to the same value and the same serde bytes."""
    wire = cs.to_json()
    messy = json.dumps(shuffled(json.loads(wire), data.draw), indent=data.draw(st.integers(0, 3)))
    assert wire == ChangeSet.from_json(messy).to_json()


@SETTINGS
@given(st.binary(max_size=200))
def test_arbitrary_bytes_decode_or_raise_decode_error(data):
    """Any bytes give a ChangeSet or a DecodeError, never another exception."""
    result = outcome(ChangeSet.from_json, data)
    assert isinstance(result, ChangeSet) or result.errors


@SETTINGS
@given(json_values)
def test_arbitrary_json_decodes_or_raises_decode_error(value):
    """Any JSON document gives a ChangeSet or a DecodeError."""
    result = outcome(ChangeSet.from_json, json.dumps(value))
    assert isinstance(result, ChangeSet) or result.errors


@SETTINGS
@given(json_values, json_values, st.lists(json_values, max_size=3), json_values)
def test_arbitrary_json_in_request_slots(from_state, to_state, entries, retain):
    """Arbitrary JSON in every slot of a request gives a ChangeSet or a DecodeError."""
    body = {"from_state": from_state, "to_state": to_state, "entries": entries, "retain": retain}
    result = outcome(decode_changeset, body)
    assert isinstance(result, ChangeSet) or result.errors


@settings(max_examples=300, deadline=None)
@given(
    schema_lists | typed_schema_lists,
    st.dictionaries(
        attribute_names, typed_values | json_values | item_values | raw_values(), max_size=6
    ),
    st.booleans(),
)
def test_decoded_entries_lose_nothing(schemas, attrs, strict):
    """Whatever entry decodes re-encodes to the same JSON value (nothing dropped or invented)."""
    base = (
        {
            "name": "n",
            "displayname": "d",
            "oauth2_account_provider": "p",
            "oauth2_account_unique_user_id": "u",
        }
        if URN + "oauth2_account" in schemas
        else {"name": "n", "displayname": "d"}
    )
    entry = {"schemas": schemas, "id": str(uuid.UUID(int=7)), "externalId": "x", **base, **attrs}
    body = {"from_state": "Refresh", "to_state": "Refresh", "entries": [entry], "retain": "Ignore"}
    cs = outcome(decode_changeset, body, strict=strict)
    if isinstance(cs, DecodeError):
        assert all(path.startswith("$.entries[0]") for path, _ in cs.errors)
        return
    assert body == json.loads(cs.to_json())
    assert cs == ChangeSet.from_json(cs.to_json())


@CHANGESET_SETTINGS
@given(changesets(max_entries=3, extra=True), st.data())
def test_mutated_requests_decode_or_raise(cs, data):
    """Replacing any one value of a valid request by arbitrary JSON never crashes the decoder."""
    value = json.loads(cs.to_json())
    slots: list[tuple[Any, Any]] = []

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            for key in node:
                slots.append((node, key))
                collect(node[key])
        elif isinstance(node, list):
            for index in range(len(node)):
                slots.append((node, index))
                collect(node[index])

    collect(value)
    parent, key = data.draw(st.sampled_from(slots))
    parent[key] = data.draw(json_values)
    try:
        decoded = decode_changeset(value)
    except DecodeError:
        return
    assert decoded == ChangeSet.from_json(decoded.to_json())


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changesets(max_entries=3, generic=True))
def test_encode_changeset_is_the_json_of_to_json(cs):
    """encode_changeset and to_json agree (to_json is just the bytes of the dict)."""
    assert json.loads(cs.to_json()) == json.loads(json.dumps(encode_changeset(cs)))
    assert all(isinstance(e, GenericEntry) or e.external_id for e in cs.entries)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changesets(max_entries=4))
def test_strategies_promise_validation_clean_changesets(cs):
    """The default strategies draw ChangeSets local validation finds nothing wrong with."""
    assert () == cs.validate().problems


hostile_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(st.characters(codec=None), max_size=6)
    | st.binary(max_size=4),
    lambda children: (
        st.lists(children, max_size=3)
        | st.tuples(children)
        | st.dictionaries(st.text(max_size=4) | st.integers(), children, max_size=3)
    ),
    max_leaves=12,
)


@SETTINGS
@given(st.dictionaries(st.text(max_size=6), hostile_values, max_size=4))
def test_encoding_arbitrary_raw_values_gives_bytes_or_encode_error(attributes):
    """Whatever a GenericEntry holds, to_json returns bytes or raises EncodeError only."""
    entry = GenericEntry(id=uuid.UUID(int=1), schemas=[URN + "custom"], attributes=attributes)
    cs = ChangeSet(from_state=REFRESH, to_state=REFRESH, entries=[entry])
    result = outcome_encode(cs)
    if isinstance(result, bytes):
        # Valid UTF-8 JSON that holds every non-None attribute.
        sent = json.loads(result.decode("utf-8"))["entries"][0]
        assert {k for k, v in attributes.items() if v is not None} == set(sent) - {"schemas", "id"}


def outcome_encode(cs: ChangeSet) -> bytes | EncodeError:
    """Encode ``cs``; return the bytes, or the EncodeError raised (any other error escapes)."""
    try:
        return cs.to_json()
    except EncodeError as exc:
        return exc
