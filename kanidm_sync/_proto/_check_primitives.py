"""Numeric ranges and strict base64, shared by the other value recognisers.

Owns the gidnumber rules (:data:`GID_ALLOWED_RANGES`, :func:`gidnumber_allowed`,
:func:`derived_gidnumber`, spec §3.9.3), :data:`U32_MAX`, and :func:`b64decode_strict`,
the Rust ``base64`` crate's strict decoding that the password, TOTP and SSH key checks
build on.

Pure: no I/O, no clock, no logging, no randomness; standard library only. Where kanidmd's
exact rule was read from its source it is cited; where it was inferred the comment says
**[inferred]**, and the check leans towards accepting. Re-exported by ``_checks.py``.
"""

from __future__ import annotations

import binascii
import re
from typing import Final

__all__ = [
    "GID_ALLOWED_RANGES",
    "U32_MAX",
    "b64decode_strict",
    "derived_gidnumber",
    "gidnumber_allowed",
]

# --- gidnumber -----------------------------------------------------------------------------

GID_ALLOWED_RANGES: Final[tuple[tuple[int, int], ...]] = (
    (1000, 60000),
    (60578, 61183),
    (65520, 65533),
    (65536, 524287),
    (524288, 1879048191),
    (1879048192, 2147483647),
)
"""Inclusive gidnumber ranges kanidmd accepts (kanidm: server/lib/src/plugins/gidnumber.rs)."""

U32_MAX: Final = 4294967295


def gidnumber_allowed(value: int) -> bool:
    """Whether kanidmd accepts ``value`` as a gidnumber (spec §3.9.3).

    Args:
        value: the gid.

    Returns:
        ``True`` when it lies in one of :data:`GID_ALLOWED_RANGES`; ``False`` for the
        system-reserved ranges and for anything outside 0..2**32-1.
    """
    # The ranges are contiguous from 65536 to 2147483647, which covers most real gids.
    if 65536 <= value <= 2147483647:
        return True
    return any(lo <= value <= hi for lo, hi in GID_ALLOWED_RANGES)


def derived_gidnumber(entry_uuid_int: int) -> int:
    """The gidnumber kanidmd derives for a posix entry sent without one (spec §3.9.3).

    Args:
        entry_uuid_int: the entry UUID as an integer (``uuid.UUID.int``).

    Returns:
        ``0x70000000 | (last 4 bytes of the UUID & 0x0FFFFFFF)``.
    """
    return 0x70000000 | (entry_uuid_int & 0x0FFFFFFF)


# --- base64 --------------------------------------------------------------------------------

_B64_STD_CHARS: Final = "A-Za-z0-9+/"
_B64_URL_CHARS: Final = "A-Za-z0-9\\-_"


def _b64_pattern(chars: str, padding: str) -> re.Pattern[str]:
    quad = f"(?:[{chars}]{{4}})*"
    if padding == "required":
        tail = f"(?:[{chars}]{{2}}==|[{chars}]{{3}}=)?"
    elif padding == "none":
        tail = f"(?:[{chars}]{{2,3}})?"
    else:
        tail = f"(?:[{chars}]{{2}}(?:==)?|[{chars}]{{3}}=?)?"
    return re.compile(quad + tail)


_B64_PATTERNS: Final = {
    (url, padding): _b64_pattern(_B64_URL_CHARS if url else _B64_STD_CHARS, padding)
    for url in (False, True)
    for padding in ("required", "none", "optional")
}
_B64_VALUES: Final = {
    c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
}
_URL_TO_STD: Final = str.maketrans("-_", "+/")


def b64decode_strict(
    value: str, *, urlsafe: bool = False, padding: str = "required", trailing_bits: bool = False
) -> bytes | None:
    """Decode base64 as strictly as Rust's ``base64`` crate engines do.

    The crate's ``STANDARD`` / ``URL_SAFE`` engines require canonical ``=`` padding and
    zero trailing bits; the ``*_NO_PAD`` engines refuse padding.

    Args:
        value: the text.
        urlsafe: use the URL-safe alphabet (``-``, ``_``) instead of ``+``, ``/``.
        padding: ``"required"`` (canonical), ``"none"`` (refused) or ``"optional"``.
        trailing_bits: accept non-zero bits in the last character (kanidmd's OpenLDAP
            PBKDF2 decoder does).

    Returns:
        The bytes, or ``None`` when the text is not base64 under those rules.
    """
    if _B64_PATTERNS[(urlsafe, padding)].fullmatch(value) is None:
        return None
    text = value.rstrip("=")
    if urlsafe:
        text = text.translate(_URL_TO_STD)
    rem = len(text) % 4
    if rem and not trailing_bits:
        last = _B64_VALUES[text[-1]]
        if (rem == 2 and last & 0x0F) or (rem == 3 and last & 0x03):
            return None
    text += "=" * (-len(text) % 4)
    try:
        return binascii.a2b_base64(text)
    except binascii.Error:  # pragma: no cover - the regex already admitted only base64
        return None
