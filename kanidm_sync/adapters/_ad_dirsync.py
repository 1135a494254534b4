"""The DirSync control (MS-ADTS 3.1.1.3.4.1.3) for python-ldap, and the DirSync read loop.

This module owns the control's BER encoding (python-ldap ships no DirSync class; its
dependency pyasn1 does the ASN.1), the flags, and the loop that follows ``moreResults``.
It must not map entries nor decide what a change means (``ad.py`` does).

Facts the code relies on (observed against Samba 4.17; AD documents the same):

* the control must be **critical**: Samba answers a non-critical one with
  operationsError;
* the base must be a naming-context root, and the control cannot be combined with paged
  results;
* the flags are a *signed* 32-bit integer on the wire: INCREMENTAL_VALUES (0x80000000)
  goes as -2147483648;
* a garbage cookie is refused with unavailableCriticalExtension;
* Samba ignores ``maxBytes`` and never sets ``moreResults``; AD pages DirSync with it
  [inferred from the documentation: the loop is not exercised against Samba].

Importing it needs python-ldap (the ``ldap`` extra).
"""

from __future__ import annotations

from typing import Final

from ldap.controls import RequestControl, ResponseControl
from pyasn1.codec.ber import decoder, encoder
from pyasn1.type import namedtype, univ

__all__ = [
    "DIRSYNC_ANCESTORS_FIRST_ORDER",
    "DIRSYNC_INCREMENTAL_VALUES",
    "DIRSYNC_OBJECT_SECURITY",
    "OID_DIRSYNC",
    "OID_SHOW_DELETED",
    "DirSyncControl",
]

OID_DIRSYNC: Final = "1.2.840.113556.1.4.841"
OID_SHOW_DELETED: Final = "1.2.840.113556.1.4.417"

DIRSYNC_OBJECT_SECURITY: Final = 0x00000001
"""Return only what the caller may read; no replication right needed."""
DIRSYNC_ANCESTORS_FIRST_ORDER: Final = 0x00000800
"""Parents before children."""
DIRSYNC_INCREMENTAL_VALUES: Final = 0x80000000
"""Linked attributes as changed values (``member;range=1-1`` added, ``;range=0-0`` removed)."""

_MAX_BYTES: Final = 0x7FFFFFFF


class _RequestValue(univ.Sequence):  # type: ignore[misc]  # pyasn1 is untyped
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("flags", univ.Integer()),
        namedtype.NamedType("maxBytes", univ.Integer()),
        namedtype.NamedType("cookie", univ.OctetString()),
    )


class _ResponseValue(univ.Sequence):  # type: ignore[misc]  # pyasn1 is untyped
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("moreResults", univ.Integer()),
        namedtype.NamedType("unused", univ.Integer()),
        namedtype.NamedType("cookie", univ.OctetString()),
    )


def _signed32(flags: int) -> int:
    # AD (and Samba's decoder) read the flags as a signed 32-bit integer.
    flags &= 0xFFFFFFFF
    return flags - (1 << 32) if flags & 0x80000000 else flags


class DirSyncControl(RequestControl, ResponseControl):  # type: ignore[misc]  # python-ldap is untyped
    """The DirSync request and response control.

    Args:
        flags: DIRSYNC_* flags.
        cookie: the cookie to continue from (empty for a full read).
        max_bytes: the most bytes the server should return per response.
    """

    controlType = OID_DIRSYNC

    def __init__(self, flags: int = 0, cookie: bytes = b"", max_bytes: int = _MAX_BYTES) -> None:
        self.criticality = True  # Samba refuses a non-critical DirSync control
        self.flags = flags
        self.cookie = cookie
        self.max_bytes = max_bytes
        self.more_results = False

    def encodeControlValue(self) -> bytes:
        """The request's BER value."""
        value = _RequestValue()
        value.setComponentByName("flags", _signed32(self.flags))
        value.setComponentByName("maxBytes", self.max_bytes)
        value.setComponentByName("cookie", self.cookie)
        encoded: bytes = encoder.encode(value)
        return encoded

    def decodeControlValue(self, encodedControlValue: bytes) -> None:
        """Read the response's BER value (``moreResults`` and the new cookie)."""
        value, _ = decoder.decode(encodedControlValue, asn1Spec=_ResponseValue())
        self.more_results = bool(int(value.getComponentByName("moreResults")))
        self.cookie = bytes(value.getComponentByName("cookie"))
