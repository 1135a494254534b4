"""The Active Directory source's cookies: what Kanidm keeps as its sync cookie.

This module owns the byte layout of the two cookie kinds and nothing else; it is pure (no
LDAP, no clock). Every cookie starts with a prefix naming its kind, so the source tells a
DirSync cookie from a USN cookie and from anything else (another source's cookie, garbage),
and carries the configuration fingerprint (``AdConfig.fingerprint``), so a cookie written
under another base, filter or attribute map forces a full refresh::

    KSAD1:D:<fingerprint>:<the DC's opaque DirSync cookie, as is>
    KSAD1:U:<fingerprint>:<invocationId>:<highest committed USN>:<unix time written>

A USN is only meaningful on the DC that issued it, together with that DC's
``invocationId`` (a new one after a restore): the cookie keeps both. The DirSync cookie is
opaque to the protocol, but AD and Samba both write it in the ``MSDS`` layout (Samba's
``ldapControlDirSyncCookie``), which holds the issuing DC's invocationId and the time it
was made; :class:`DirSyncCookie` reads them when it can.
"""

from __future__ import annotations

import datetime as _dt
import struct
import uuid
from typing import Final, TypeAlias

import attrs

__all__ = ["AdCookie", "DirSyncCookie", "UsnCookie", "decode_cookie", "encode_cookie"]

_MAGIC: Final = b"KSAD1:"
_DIRSYNC: Final = b"D:"
_USN: Final = b"U:"
_FP_LEN: Final = 16

# MSDS cookie: "MSDS", u32 version (3), NTTIME time, u32, u32, u32 extra length,
# highwatermark (3 x u64), GUID invocationId (Microsoft byte order), then the up-to-date
# vector. [inferred from Samba's librpc/idl/drsblobs.idl; Windows writes the same layout]
_MSDS: Final = b"MSDS"
_MSDS_TIME_AT: Final = 8
_MSDS_GUID_AT: Final = 52
_NTTIME_UNIX_OFFSET: Final = 11_644_473_600  # seconds from 1601-01-01 to 1970-01-01


@attrs.frozen
class DirSyncCookie:
    """A DirSync cookie as this source keeps it.

    Attributes:
        fingerprint: the configuration fingerprint it was written under.
        raw: the DC's opaque DirSync cookie.
    """

    fingerprint: bytes
    raw: bytes = attrs.field(repr=lambda raw: f"<{len(raw)} bytes>")

    @property
    def invocation_id(self) -> uuid.UUID | None:
        """The issuing DC's invocationId, when the cookie is in the MSDS layout."""
        if not self.raw.startswith(_MSDS) or len(self.raw) < _MSDS_GUID_AT + 16:
            return None
        return uuid.UUID(bytes_le=self.raw[_MSDS_GUID_AT : _MSDS_GUID_AT + 16])

    @property
    def made_at(self) -> _dt.datetime | None:
        """When the DC issued the cookie, when the cookie is in the MSDS layout."""
        if not self.raw.startswith(_MSDS) or len(self.raw) < _MSDS_TIME_AT + 8:
            return None
        (nttime,) = struct.unpack_from("<Q", self.raw, _MSDS_TIME_AT)
        seconds = nttime // 10_000_000 - _NTTIME_UNIX_OFFSET
        if seconds <= 0:
            return None
        return _dt.datetime.fromtimestamp(seconds, tz=_dt.UTC)


@attrs.frozen
class UsnCookie:
    """A USN watermark: everything up to ``usn`` on the DC ``invocation_id`` was read.

    Attributes:
        fingerprint: the configuration fingerprint it was written under.
        invocation_id: the DC's invocationId when the watermark was read.
        usn: the DC's highestCommittedUSN read *before* the changes were searched.
        made_at: when it was written (for the tombstone-lifetime check).
    """

    fingerprint: bytes
    invocation_id: uuid.UUID
    usn: int
    made_at: _dt.datetime


AdCookie: TypeAlias = DirSyncCookie | UsnCookie
"""A cookie of the Active Directory source."""


def encode_cookie(cookie: AdCookie) -> bytes:
    """The bytes Kanidm keeps for ``cookie``."""
    if isinstance(cookie, DirSyncCookie):
        return _MAGIC + _DIRSYNC + cookie.fingerprint + b":" + cookie.raw
    stamp = int(cookie.made_at.timestamp())
    body = f"{cookie.invocation_id}:{cookie.usn}:{stamp}".encode("ascii")
    return _MAGIC + _USN + cookie.fingerprint + b":" + body


def decode_cookie(data: bytes) -> AdCookie | None:
    """Read a cookie written by :func:`encode_cookie`.

    Args:
        data: Kanidm's sync cookie.

    Returns:
        The cookie, or ``None`` when ``data`` is not a cookie of this source (another
        source's, a damaged one, garbage).
    """
    if not data.startswith(_MAGIC):
        return None
    rest = data[len(_MAGIC) :]
    kind, rest = rest[:2], rest[2:]
    fingerprint, sep, body = rest[:_FP_LEN], rest[_FP_LEN : _FP_LEN + 1], rest[_FP_LEN + 1 :]
    if sep != b":" or len(fingerprint) != _FP_LEN:
        return None
    if kind == _DIRSYNC:
        return DirSyncCookie(fingerprint, body) if body else None
    if kind != _USN:
        return None
    try:
        invocation, usn, stamp = body.decode("ascii").split(":")
        made_at = _dt.datetime.fromtimestamp(int(stamp), tz=_dt.UTC)
        return UsnCookie(fingerprint, uuid.UUID(invocation), int(usn), made_at)
    except (UnicodeDecodeError, ValueError, OverflowError, OSError):
        return None
