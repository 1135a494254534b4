"""Adversarial audit of the codec's byte form against serde_json (spec §3.1, §3.2, §3.5).

Pins the exact bytes serde_json writes for unusual strings, floats and integers, the byte-wise
key order for non-ASCII attribute names, and cookies of every length mod 3. The audit found
no codec bug; these tests make sure none appears.
"""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from kanidm_sync import (
    REFRESH,
    ChangeSet,
    DecodeError,
    EncodeError,
    GenericEntry,
    Person,
)
from kanidm_sync._proto._codec import decode_changeset_json, decode_cookie, dumps, encode_cookie
from kanidm_sync._types import JSONValue

UID = uuid.UUID("9a7c1f52-4c7d-4b0e-8a43-1e4f6f1c2d10")
URN = "urn:ietf:params:scim:schemas:kanidm:sync:1:"


def attr_bytes(value: object) -> bytes:
    """The bytes of attribute ``a`` of a generic entry as the codec writes them."""
    entry = GenericEntry(id=UID, external_id="x", schemas=("s",), attributes={"a": value})  # type: ignore[dict-item]  # JSON value
    data = ChangeSet(from_state=REFRESH, to_state=REFRESH, entries=(entry,)).to_json()
    start = data.index(b'"a":') + len(b'"a":')
    return data[start : data.rindex(b"}]")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\x00\x01\x1f", rb'"\u0000\u0001\u001f"'),
        ("\x1a\x1b", rb'"\u001a\u001b"'),  # lower-case hex, as serde_json
        ("\n\r\t\b\f", rb'"\n\r\t\b\f"'),
        ("\x7f\x85\x9f", '"\x7f\x85\x9f"'.encode()),  # DEL and C1: not escaped
        ("\u2028\u2029", '"\u2028\u2029"'.encode()),  # not escaped (unlike JS-safe writers)
        ("/", b'"/"'),  # solidus never escaped
        ('"\\', rb'"\"\\"'),
        ("\U0001f600\ufeff", '"\U0001f600\ufeff"'.encode()),  # raw UTF-8, no surrogate pairs
    ],
)
def test_string_escapes_are_serde_json(text: str, expected: bytes) -> None:
    r"""Only `"`, `\\` and C0 controls are escaped; everything else is raw UTF-8."""
    assert expected == attr_bytes(text)
    assert expected == dumps(text)


@pytest.mark.parametrize("text", ["\ud800", "a\udfffb", "\udc00\ud800"])
def test_lone_surrogates_are_encode_errors(text: str) -> None:
    """A lone (or reversed) surrogate has no UTF-8 form: EncodeError, the value not shown."""
    with pytest.raises(EncodeError) as info:
        attr_bytes(text)
    assert text not in str(info.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.0, b"1.0"),
        (-0.0, b"-0.0"),
        (0.1, b"0.1"),
        (1e15, b"1000000000000000.0"),
        (1234567890123456.8, b"1234567890123456.8"),
        (1e16, b"1e16"),
        (1.5e16, b"1.5e16"),
        (1.2345678901234568e17, b"1.2345678901234568e17"),
        (1e21, b"1e21"),
        (1e300, b"1e300"),
        (0.0001, b"0.0001"),
        (1e-5, b"0.00001"),
        (1.5e-5, b"0.000015"),
        (1.234e-5, b"0.00001234"),
        (-2.5e-5, b"-0.000025"),
        (1e-6, b"1e-6"),
        (1.234e-7, b"1.234e-7"),
        (5e-324, b"5e-324"),
    ],
)
def test_floats_in_extra_are_ryu(value: float, expected: bytes) -> None:
    """Floats are written as ryu does: plain for 1e-5 <= |x| < 1e16, else `1e16`/`1e-6`."""
    assert expected == attr_bytes(value)
    assert expected == dumps([value])[1:-1]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_floats_are_encode_errors(value: float) -> None:
    """NaN and infinities have no JSON form."""
    with pytest.raises(EncodeError):
        attr_bytes(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(2**63 - 1, b"9223372036854775807"), (-(2**63), b"-9223372036854775808")],
)
def test_i64_bounds_are_written_exactly(value: int, expected: bytes) -> None:
    """Integers at the i64 bounds are plain JSON integers."""
    assert expected == attr_bytes(value)


@pytest.mark.parametrize("value", [2**63, 2**64 - 1, -(2**63) - 1, 10**400])
def test_integers_beyond_i64_are_encode_errors(value: int) -> None:
    """Refused: kanidmd would read them as a lossy Decimal (spec §3.5)."""
    with pytest.raises(EncodeError):
        attr_bytes(value)


def test_bool_is_not_an_integer() -> None:
    """`True` is written `true`, never `1`."""
    assert b"[true,1]" == attr_bytes([True, 1])


NON_ASCII_KEYS = [
    "z",
    "Z",
    "_",
    "é",
    "\ue000",
    "\uffff",
    "\U0001f600",
    "\U00010000",
    "a\u0301",
    "ä",
]


def test_code_point_order_is_utf8_byte_order() -> None:
    """Python sorts str by code point, which is UTF-8 byte order (unlike UTF-16 order)."""
    by_code_point = sorted(NON_ASCII_KEYS)
    assert sorted(NON_ASCII_KEYS, key=lambda k: k.encode("utf-8")) == by_code_point
    # The UTF-16 trap: U+E000..U+FFFF sort *after* astral characters in UTF-16 code units.
    assert by_code_point.index("\uffff") < by_code_point.index("\U00010000")


def test_attribute_keys_are_sorted_byte_wise() -> None:
    """Raw attribute keys (and nested object keys) come out in UTF-8 byte order."""
    attributes: dict[str, JSONValue] = {k: 1 for k in reversed(NON_ASCII_KEYS)}
    attributes["nested"] = {k: 1 for k in reversed(NON_ASCII_KEYS)}
    entry = GenericEntry(id=UID, external_id="x", schemas=("s",), attributes=attributes)
    data = ChangeSet(from_state=REFRESH, to_state=REFRESH, entries=(entry,)).to_json()
    obj = json.loads(data)["entries"][0]
    expected = sorted([*NON_ASCII_KEYS, "nested"], key=lambda k: k.encode("utf-8"))
    assert ["schemas", "id", "externalId", *expected] == list(obj)
    nested_expected = sorted(NON_ASCII_KEYS, key=lambda k: k.encode("utf-8"))
    assert nested_expected == list(obj["nested"])


def test_typed_entry_extra_keys_merge_in_byte_order() -> None:
    """Extra keys of a typed entry interleave with its own keys in byte order (BTreeMap)."""
    person = Person(
        id=UID, name="alice", displayname="A", extra={"Zed": "1", "émail": "2", "legalname": "L"}
    )
    data = ChangeSet(from_state=REFRESH, to_state=REFRESH, entries=(person,)).to_json()
    keys = list(json.loads(data)["entries"][0])
    attrs = keys[keys.index("id") + 1 :]
    assert sorted(attrs, key=lambda k: k.encode("utf-8")) == attrs
    assert ["Zed", "displayname", "legalname", "name", "émail"] == attrs


@pytest.mark.parametrize("length", range(10))
def test_cookie_every_length_mod_3(length: int) -> None:
    """Encoded unpadded; decoded from unpadded, canonical and partial padding alike."""
    raw = bytes((7 * i + 251) % 256 for i in range(length))
    canonical = base64.urlsafe_b64encode(raw).decode()
    unpadded = canonical.rstrip("=")
    assert unpadded == encode_cookie(raw)
    pads = len(canonical) - len(unpadded)
    for n in range(pads + 1):
        assert raw == decode_cookie(unpadded + "=" * n)
    with pytest.raises(DecodeError):
        decode_cookie(unpadded + "=" * (pads + 1))


def test_cookie_length_one_mod_four_is_refused() -> None:
    """A base64 text of length 1 mod 4 encodes no whole byte: refused."""
    with pytest.raises(DecodeError):
        decode_cookie("AQIDB")


def _request(entry_value: str) -> str:
    entry = (
        f'{{"schemas":["{URN}group"],"id":"{UID}","externalId":"x",'
        f'"description":{entry_value},"name":"g"}}'
    )
    return f'{{"from_state":"Refresh","to_state":"Refresh","entries":[{entry}],"retain":"Ignore"}}'


@pytest.mark.parametrize("literal", ["1e400", "9223372036854775808", r'"\ud800"', "NaN"])
def test_decoder_refuses_what_serde_json_or_kanidmd_cannot_hold(literal: str) -> None:
    """Numbers beyond f64, integers beyond i64, lone surrogates and NaN: DecodeError."""
    with pytest.raises(DecodeError):
        decode_changeset_json(_request(literal))


def test_round_trip_of_unusual_strings_is_byte_exact() -> None:
    """Decoding then encoding a request with unusual strings reproduces its bytes exactly."""
    raw = _request(json.dumps('\u2028 é 😀 \x7f \\ " \x01', ensure_ascii=False)).encode()
    assert raw == decode_changeset_json(raw).to_json()
