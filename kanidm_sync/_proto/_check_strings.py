"""Value recognisers for kanidmd's UTF-8 strings: control characters, UUIDs, names, mail.

Owns :func:`has_control_chars`, :func:`has_c1_control_chars`, :func:`is_uuid`,
:func:`iname_problem`, :func:`is_valid_iname` and :func:`mail_ok` (spec §3.9.2).

Pure: no I/O, no clock, no logging, no randomness; standard library only. Where kanidmd's
exact rule was read from its source it is cited; where it was inferred the comment says
**[inferred]**, and the check leans towards accepting. Re-exported by ``_checks.py``.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "has_c1_control_chars",
    "has_control_chars",
    "iname_problem",
    "is_uuid",
    "is_valid_iname",
    "mail_ok",
]

# --- strings -------------------------------------------------------------------------------

# kanidm: server/lib/src/value.rs. UNICODE_CONTROL_RE is `[[:cntrl:]]`, which in Rust's
# regex crate is the ASCII class [\x00-\x1F\x7F]; SINGLELINE_RE is `[\n\r\t]` (a subset).
_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f]")
# C1 controls are *not* matched by Rust's ASCII [[:cntrl:]], so kanidmd stores them; the
# validator only warns about them.
_C1_RE: Final = re.compile(r"[\x80-\x9f]")


def has_control_chars(value: str) -> bool:
    r"""Whether kanidmd refuses ``value`` as a UTF-8 string for its control characters.

    kanidmd rejects ``\n``, ``\r``, ``\t`` and every other ASCII control character
    (U+0000-U+001F, U+007F) in every UTF-8 string value: names, display names,
    descriptions, external ids, labels (spec §3.9.2).

    Args:
        value: the string.

    Returns:
        ``True`` when it contains such a character.
    """
    return _CONTROL_RE.search(value) is not None


def has_c1_control_chars(value: str) -> bool:
    """Whether ``value`` holds a C1 control character (U+0080-U+009F).

    kanidmd accepts these (its ``[[:cntrl:]]`` class is ASCII-only) but they are almost
    always mojibake from a wrong decoding upstream.

    Args:
        value: the string.

    Returns:
        ``True`` when it contains such a character.
    """
    return _C1_RE.search(value) is not None


# The forms Rust's `Uuid::parse_str` accepts: simple (32 hex), hyphenated, braced, urn.
_UUID_RE: Final = re.compile(
    r"(?:urn:uuid:|\{)?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}?"
    r"|[0-9a-fA-F]{32}"
)


def is_uuid(value: str) -> bool:
    """Whether kanidmd parses ``value`` as a UUID (and so takes it as a direct reference).

    Accepts what Rust's ``uuid`` crate parses: 32 hex digits, the hyphenated form, and the
    hyphenated form braced or behind ``urn:uuid:``; any hex case.

    Args:
        value: the string.

    Returns:
        ``True`` when it is a UUID literal.
    """
    if _UUID_RE.fullmatch(value) is None:
        return False
    # A brace must be closed, and only a brace-opened value may end with one.
    if value.startswith("{") != value.endswith("}"):
        return False
    return not (value.startswith("urn:uuid:") and value.endswith("}"))


# kanidm: server/lib/src/value.rs INAME_RE plus the 64-character bound of spec §3.9.2.
_INAME_RE: Final = re.compile(r"[a-z][a-z0-9\-_.]{0,63}")
_DISALLOWED_NAMES: Final = frozenset({"root", "dn=token"})


def iname_problem(value: str) -> str | None:
    """Why kanidmd would refuse ``value`` as a name (an ``iname``), or ``None``.

    kanidmd lower-cases a name on input, then requires
    ``^[a-z][a-z0-9-_.]{0,63}$``, refuses anything that parses as a UUID, and refuses
    ``root`` and ``dn=token`` (spec §3.9.2; kanidm: server/lib/src/value.rs).

    Args:
        value: the name as sent (before kanidmd lower-cases it).

    Returns:
        A short reason (``"reserved"``, ``"uuid"``, or a syntax description), or ``None``
        when the name is accepted.
    """
    lowered = value.lower()
    if is_uuid(lowered):
        return "uuid"
    if _INAME_RE.fullmatch(lowered) is None:
        if not lowered:
            return "empty"
        if len(lowered) > 64:
            return "longer than 64 characters"
        if not ("a" <= lowered[0] <= "z"):
            return "must start with a letter a-z"
        return "may only contain a-z, 0-9, '-', '_' and '.'"
    if lowered in _DISALLOWED_NAMES:
        return "reserved"
    return None


def is_valid_iname(value: str) -> bool:
    """Whether kanidmd accepts ``value`` as a name (after lower-casing it).

    Args:
        value: the name as sent.

    Returns:
        ``True`` when :func:`iname_problem` finds nothing.
    """
    return iname_problem(value) is None


# kanidm: server/lib/src/value.rs VALIDATE_EMAIL_RE (the WHATWG HTML5 "valid e-mail
# address" production). fullmatch() mirrors Rust's ^...$ (Python's $ would also match
# before a trailing newline).
_MAIL_RE: Final = re.compile(
    r"[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*"
)


def mail_ok(value: str) -> bool:
    """Whether kanidmd's mail regex (``VALIDATE_EMAIL_RE``) accepts ``value``.

    Args:
        value: the address.

    Returns:
        ``True`` when it is a valid HTML5 e-mail address (ASCII only).
    """
    return _MAIL_RE.fullmatch(value) is not None
