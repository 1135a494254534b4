"""HTTP-layer parsing of sync request bodies by the double's core (spec §3.2-§3.5, §4.0)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from kanidm_sync.testing._parse import (
    Binary,
    Complex,
    MultiComplex,
    MultiSimple,
    decode_cookie_b64,
    parse_rust_uuid,
)
from kanidm_sync.testing._store import Rejection, parse_sync_request

UID = "9a7c1f52-4c7d-4b0e-8a43-1e4f6f1c2d10"


def request(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "from_state": "Refresh",
        "to_state": {"Active": {"cookie": "AQIDBA"}},
        "entries": [],
        "retain": "Ignore",
    }
    data.update(overrides)
    return data


def entry(**attrs: Any) -> dict[str, Any]:
    return {"schemas": [], "id": UID, "externalId": "x", **attrs}


def parse(data: Any) -> Any:
    return parse_sync_request(json.dumps(data).encode())


def rejection(raw: bytes) -> Rejection:
    with pytest.raises(Rejection) as info:
        parse_sync_request(raw)
    return info.value


def test_spec_example_parses() -> None:
    """The request of spec §3.10 parses with cookie bytes and both entries."""
    raw = (
        '{"from_state":"Refresh","to_state":{"Active":{"cookie":"c3luYy0x"}},"entries":['
        '{"schemas":[],"id":"9a7c1f52-4c7d-4b0e-8a43-1e4f6f1c2d10","externalId":"a","gidnumber":'
        '20001,"mail":[{"primary":true,"value":"a@b"}]}],"retain":"Ignore"}'
    )
    got = parse_sync_request(raw.encode())
    assert (None, b"sync-1") == (got.from_cookie, got.to_cookie)
    assert 20001 == got.entries[0].attrs["gidnumber"]
    mail = got.entries[0].attrs["mail"]
    assert MultiComplex((Complex({"primary": True, "value": "a@b"}),)) == mail


def test_value_model_first_match_wins() -> None:
    """Scalars, Binary (incl. []), complex, multi-simple and multi-complex are told apart."""
    got = parse(
        request(
            entries=[
                entry(
                    b=True,
                    i=-3,
                    f=1.5,
                    s="x",
                    empty=[],
                    bytes_=[0, 255],
                    wide=[256],
                    mixed=[1, "a"],
                    obj={"k": "v", "n": [1, 2]},
                    objs=[{"external_id": "a"}],
                    nested_bytes=[[1, 2]],
                )
            ]
        )
    ).entries[0]
    assert True is got.attrs["b"]
    assert -3 == got.attrs["i"]
    assert 1.5 == got.attrs["f"]
    assert Binary(b"") == got.attrs["empty"]
    assert Binary(b"\x00\xff") == got.attrs["bytes_"]
    assert MultiSimple((256,)) == got.attrs["wide"]
    assert MultiSimple((1, "a")) == got.attrs["mixed"]
    assert Complex({"k": "v", "n": Binary(b"\x01\x02")}) == got.attrs["obj"]
    assert MultiComplex((Complex({"external_id": "a"}),)) == got.attrs["objs"]
    assert MultiSimple((Binary(b"\x01\x02"),)) == got.attrs["nested_bytes"]


@pytest.mark.parametrize(
    "value",
    [None, {"a": {"b": 1}}, [None], [{"a": None}], [{"a": 1}, "x"], {"a": [1, "x"]}],
)
def test_unparsable_values_are_422(value: Any) -> None:
    """null, nested objects and mixed arrays fail the untagged enum: 422."""
    err = rejection(json.dumps(request(entries=[entry(attr=value)])).encode())
    assert 422 == err.status
    assert err.content_type.startswith("text/plain")
    assert str(err.json()).startswith("Failed to deserialize the JSON body into the target type")


@pytest.mark.parametrize("raw", [b"{", b"not json", b'{"a": NaN}', b"\xff\xfe"])
def test_syntax_errors_are_400(raw: bytes) -> None:
    """Bodies that are not JSON are 400 with axum's prefix."""
    err = rejection(raw)
    assert 400 == err.status
    assert str(err.json()).startswith("Failed to parse the request body as JSON")


@pytest.mark.parametrize("missing", ["from_state", "to_state", "entries", "retain"])
def test_all_four_keys_required(missing: str) -> None:
    """Each of the four request keys is required (no serde defaults)."""
    data = request()
    del data[missing]
    assert 422 == rejection(json.dumps(data).encode()).status


def test_unknown_request_keys_ignored() -> None:
    """Unknown top-level keys are ignored."""
    assert () == parse(request(extra=1)).entries


@pytest.mark.parametrize(
    "bad",
    [
        {"from_state": "refresh"},
        {"from_state": {"Active": {}}},
        {"to_state": {"Active": {"cookie": "a+b/"}}},
        {"to_state": {"Active": {"cookie": "A"}}},
        {"retain": "Keep"},
        {"retain": {"Retain": ["not-a-uuid"]}},
        {"retain": {"Delete": "x"}},
        {"entries": {}},
        {"entries": [{"id": UID}]},
        {"entries": [{"schemas": [], "id": "1234"}]},
        {"entries": [{"schemas": [], "id": UID, "externalId": 5}]},
        {"entries": [{"schemas": [], "id": UID, "meta": {"resourceType": "User"}}]},
    ],
)
def test_shape_errors_are_422(bad: dict[str, Any]) -> None:
    """Wrong variants, bad cookies, bad UUIDs and bad headers are 422."""
    assert 422 == rejection(json.dumps(request(**bad)).encode()).status


def test_complete_meta_is_accepted_and_ignored() -> None:
    """A complete SCIM meta object is accepted; it does not become an attribute."""
    meta = {
        "resourceType": "User",
        "created": "2024-01-01T00:00:00Z",
        "lastModified": "2024-01-01T00:00:00Z",
        "location": "https://x/y",
        "version": "W/1",
    }
    got = parse(request(entries=[entry(meta=meta)])).entries[0]
    assert {} == dict(got.attrs)


def test_retain_variants() -> None:
    """Ignore, Retain and Delete parse with their UUID lists."""
    assert ("ignore", ()) == (parse(request()).retain, parse(request()).retain_ids)
    got = parse(request(retain={"Retain": [UID.upper()]}))
    assert ("retain", (uuid.UUID(UID),)) == (got.retain, got.retain_ids)
    got = parse(request(retain={"Delete": []}))
    assert ("delete", ()) == (got.retain, got.retain_ids)


def test_duplicates_are_kept_for_the_store() -> None:
    """Duplicate entry ids survive parsing (the store lets the last one win)."""
    got = parse(request(entries=[entry(), entry()]))
    assert 2 == len(got.entries)


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        (UID, True),
        (UID.upper(), True),
        (UID.replace("-", ""), True),
        ("urn:uuid:" + UID, True),
        ("{" + UID + "}", True),
        ("{" + UID.replace("-", "") + "}", False),
        ("9a7c1f524c7d-4b0e-8a43-1e4f6f1c2d10", False),
        (UID + " ", False),
        ("", False),
    ],
)
def test_rust_uuid_forms(text: str, ok: bool) -> None:
    """The forms the Rust uuid crate accepts, and no others."""
    assert ok == (parse_rust_uuid(text) == uuid.UUID(UID))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("AQIDBA", b"\x01\x02\x03\x04"),
        ("AQIDBA==", b"\x01\x02\x03\x04"),
        ("", b""),
        ("-_8", b"\xfb\xff"),
        ("AQIDBA=", b"\x01\x02\x03\x04"),  # partial padding: base64 Indifferent mode
        ("AQIDBA===", None),
        ("AQIDBB", None),
        ("+/8", None),
        ("A", None),
    ],
)
def test_cookie_base64(text: str, expected: bytes | None) -> None:
    """URL-safe base64, padded or not; wrong padding, alphabet or trailing bits refused."""
    assert expected == decode_cookie_b64(text)
