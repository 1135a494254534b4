"""The direct Sync State reader agrees with pyasn1 on every value it reads (``_ldap_ber``).

``sync_state`` reads the plain BER that slapd and 389-ds send and leaves everything else
to pyasn1 (it returns ``None``). Here its answer is compared with python-ldap's ASN.1
type decoded by pyasn1, for values pyasn1 itself encodes (every state, with and without
a cookie, short and long lengths) and for mangled ones: whatever it reads, pyasn1 reads
the same. The real servers' values are read through it by every LDAP and 389-ds test.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kanidm_sync.adapters._ldap_ber import sync_state

try:
    from ldap.syncrepl import SyncStateValue
    from pyasn1.codec.ber import decoder, encoder
except ImportError:  # python-ldap is an extra; under CI=true it is installed
    if os.environ.get("CI", "").lower() == "true":
        raise
    pytest.skip("python-ldap is not installed (pip install -e '.[ldap]')", allow_module_level=True)


def encode(state: int, entry_uuid: bytes, cookie: bytes | None) -> bytes:
    value = SyncStateValue()
    value.setComponentByName("state", state)
    value.setComponentByName("entryUUID", entry_uuid)
    if cookie is not None:
        value.setComponentByName("cookie", cookie)
    return bytes(encoder.encode(value))


def by_pyasn1(data: bytes) -> tuple[int, bytes, bytes | None] | None:
    """What the pyasn1 path of ``_ldap_client`` takes from ``data``; None if it refuses."""
    try:
        value, _rest = decoder.decode(data, asn1Spec=SyncStateValue())
    except Exception:  # pyasn1 raises its own errors for what it refuses
        return None
    cookie = value.getComponentByName("cookie")
    return (
        int(value.getComponentByName("state")),
        bytes(value.getComponentByName("entryUUID")),
        bytes(cookie) if cookie.hasValue() else None,
    )


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 3),
    st.binary(min_size=16, max_size=16),
    st.none() | st.binary(max_size=600),
)
def test_values_pyasn1_encodes_are_read_alike(
    state: int, entry_uuid: bytes, cookie: bytes | None
) -> None:
    data = encode(state, entry_uuid, cookie)
    assert sync_state(data) == (state, entry_uuid, cookie)
    assert by_pyasn1(data) == (state, entry_uuid, cookie)


@settings(max_examples=500, deadline=None)
@given(
    st.integers(0, 3),
    st.binary(min_size=16, max_size=16),
    st.none() | st.binary(max_size=300),
    st.data(),
)
def test_mangled_values_are_read_as_pyasn1_reads_them_or_left_to_it(
    state: int, entry_uuid: bytes, cookie: bytes | None, data: st.DataObject
) -> None:
    raw = bytearray(encode(state, entry_uuid, cookie))
    for _ in range(data.draw(st.integers(1, 3))):
        action = data.draw(st.sampled_from(["flip", "cut", "extend"]))
        if action == "flip" and raw:
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
        elif action == "cut" and raw:
            del raw[data.draw(st.integers(0, len(raw) - 1)) :]
        else:
            raw += data.draw(st.binary(min_size=1, max_size=4))
    mangled = bytes(raw)
    read = sync_state(mangled)
    if read is not None:
        assert read == by_pyasn1(mangled)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "empty"),
        (b"\x30\x80\x0a\x01\x01\x04\x10" + bytes(16) + b"\x00\x00", "indefinite length"),
        (b"\x30\x13\x0a\x01\x04\x04\x10" + bytes(16), "state 4"),
        (b"\x30\x12\x0a\x01\x01\x04\x0f" + bytes(15), "UUID of 15 bytes"),
        (b"\x30\x14\x0a\x01\x01\x04\x10" + bytes(16) + b"\x05\x00", "NULL where the cookie goes"),
        (b"\x30\x13\x0a\x01\x01\x04\x10" + bytes(16) + b"\x00", "a trailing byte"),
        (b"\x30\x17\x0a\x01\x01\x24\x80\x04\x10" + bytes(16) + b"\x00\x00", "constructed"),
    ],
)
def test_unusual_forms_are_left_to_pyasn1(data: bytes, why: str) -> None:
    assert sync_state(data) is None, why


def test_long_lengths() -> None:
    cookie = b"c" * 300  # a two-byte length (0x82 0x01 0x2c), and the sequence's too
    data = encode(2, bytes(range(16)), cookie)
    assert data[1] == 0x82
    assert sync_state(data) == (2, bytes(range(16)), cookie)
