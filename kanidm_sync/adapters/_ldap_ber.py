"""A direct reader of the RFC 4533 Sync State control value, the one every entry carries.

Pure; no I/O, no python-ldap. Every entry of a sync search carries a Sync State control::

    syncStateValue ::= SEQUENCE {
        state ENUMERATED { present (0), add (1), modify (2), delete (3) },
        entryUUID syncUUID,             -- OCTET STRING (SIZE(16))
        cookie    syncCookie OPTIONAL   -- OCTET STRING
    }

Decoding it with pyasn1 was over half of reading a 10,000-entry directory (cProfile of
bench/bench_ldap.py). :func:`sync_state` reads the plain definite-length BER that
OpenLDAP and 389-ds send; anything else (a constructed string, an indefinite length,
another tag, trailing bytes, a state outside 0-3, a UUID not of 16 bytes) returns
``None`` and the caller decodes it with pyasn1 as before, which accepts or refuses it
exactly as it always did (tests/ldap/test_ldap_ber.py compares the two).
"""

from __future__ import annotations

__all__ = ["sync_state"]

_SEQUENCE = 0x30
_ENUMERATED = 0x0A
_OCTET_STRING = 0x04


def _length(data: bytes, at: int) -> tuple[int, int] | None:
    """A definite length at ``at``: (length, where its content starts), or None."""
    if at >= len(data):
        return None
    first = data[at]
    if first < 0x80:
        return first, at + 1
    count = first & 0x7F
    if count == 0 or count > 4 or at + 1 + count > len(data):
        return None  # indefinite (0x80), or absurd: left to pyasn1
    return int.from_bytes(data[at + 1 : at + 1 + count], "big"), at + 1 + count


def sync_state(value: bytes) -> tuple[int, bytes, bytes | None] | None:
    """Read a Sync State control value in its plain form.

    Args:
        value: the control's BER-encoded value.

    Returns:
        ``(state, entryUUID bytes, cookie or None)``, or ``None`` when the value is not in
        the plain form read here (the caller then decodes it with pyasn1).
    """
    if len(value) < 2 or value[0] != _SEQUENCE:
        return None
    found = _length(value, 1)
    if found is None:
        return None
    size, at = found
    end = at + size
    if end != len(value):
        return None
    # state: ENUMERATED of one content byte, 0-3.
    if at + 3 > end or value[at] != _ENUMERATED or value[at + 1] != 1 or value[at + 2] > 3:
        return None
    state = value[at + 2]
    at += 3
    # entryUUID: OCTET STRING of 16 bytes.
    if at + 18 > end or value[at] != _OCTET_STRING or value[at + 1] != 16:
        return None
    entry_uuid = value[at + 2 : at + 18]
    at += 18
    if at == end:
        return state, entry_uuid, None
    # cookie: OCTET STRING, the last element.
    if value[at] != _OCTET_STRING:
        return None
    found = _length(value, at + 1)
    if found is None:
        return None
    size, at = found
    if at + size != end:
        return None
    return state, entry_uuid, value[at:end]
