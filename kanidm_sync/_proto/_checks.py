"""Pure value recognisers for what kanidmd accepts in a sync entry (spec §3.9).

Each function answers one question about one value, with no server state: is this a
valid Kanidm name, a mail address kanidmd's regex accepts, a password hash format its
importer understands, an OpenSSH public key line, an RFC 3339 timestamp, and so on.
They are shared by the ChangeSet validator (``_validate.py``) and the in-memory Kanidm
double (``kanidm_sync.testing``), so they are plain functions over plain values.

Rules for this module:

* pure: no I/O, no clock, no logging, no randomness; standard library only;
* never put a secret (a password hash, a TOTP secret) in a returned message: messages say
  which *format* was not recognised and why, never the value;
* where kanidmd's exact rule was read from its source it is cited; where it was inferred
  the comment says **[inferred]**, and the check leans towards accepting.
"""

from __future__ import annotations

import binascii
import datetime as _dt
import re
from typing import Final

import attrs

__all__ = [
    "GID_ALLOWED_RANGES",
    "RFC3339_CRASH",
    "SSH_KEY_CRASH",
    "TOTP_ALGORITHMS",
    "SshPublicKeyInfo",
    "b64decode_strict",
    "derived_gidnumber",
    "gidnumber_allowed",
    "has_c1_control_chars",
    "has_control_chars",
    "iname_problem",
    "is_rfc3339",
    "is_uuid",
    "is_valid_iname",
    "mail_ok",
    "parse_rfc3339",
    "parse_ssh_public_key",
    "password_import_format_ok",
    "password_import_problem",
    "password_import_scheme",
    "rfc3339_problem",
    "ssh_public_key_oddity",
    "ssh_public_key_problem",
    "totp_problems",
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


# --- password imports ----------------------------------------------------------------------
# kanidm: libs/crypto/src/lib.rs `impl TryFrom<&str> for Password` (v1.11.1), branch by branch:
#
# * `pbkdf2_sha256$` (Django, prefix case-sensitive): exactly four `$` fields; the cost a Rust
#   `u32` ("+5" is accepted); the salt any text, even empty; the hash canonical standard base64
#   of at least 32 bytes (`parse_django_password`).
# * `ipaNTHash: `: URL-safe base64 without padding, else with canonical padding; any length,
#   even empty (`parse_ipanthash`).
# * `sambaNTPassword: `: hex pairs (`hex::decode`), any length, even empty.
# * `{scheme}`: the text up to the first `}` is lower-cased (so every scheme is matched
#   case-insensitively) and dispatched: pbkdf2/pbkdf2-sha1/-sha256/-sha512 (`parse_pbkdf2`),
#   pbkdf2_sha256 refused (389-ds binary form), argon2 (`parse_argon`), crypt (`parse_crypt`),
#   sha/sha256/sha512 (digest of exactly 20/32/64 bytes), ssha/ssha256 (at least 20/32 bytes:
#   an empty salt is accepted), ssha512 (more than 64 bytes); all canonical standard base64.
# * anything else: NoDecoderFound.

_DIGEST_LENGTHS: Final = {"sha": 20, "sha256": 32, "sha512": 64}
_PBKDF2_MIN_KEY: Final = {"pbkdf2": 19, "pbkdf2-sha1": 19, "pbkdf2-sha256": 32, "pbkdf2-sha512": 32}
_HEX_RE: Final = re.compile(r"(?:[0-9a-fA-F]{2})*")
_RUST_U32_RE: Final = re.compile(r"\+?[0-9]+")


def _rust_u32(text: str) -> int | None:
    """``text.parse::<u32>()``: decimal digits with an optional ``+``, at most 2**32-1."""
    if _RUST_U32_RE.fullmatch(text) is None:
        return None
    value = int(text)
    return value if value <= U32_MAX else None


def _django_problem(value: str) -> str | None:
    parts = value.split("$")
    if len(parts) != 4:
        return "pbkdf2_sha256: expected pbkdf2_sha256$iterations$salt$hash"
    if _rust_u32(parts[1]) is None:
        return "pbkdf2_sha256: the iteration count is not an unsigned 32-bit number"
    raw = b64decode_strict(parts[3])
    if raw is None:
        return "pbkdf2_sha256: the hash is not canonical standard base64"
    if len(raw) < 32:
        return "pbkdf2_sha256: the hash is shorter than 32 bytes"
    return None


def _ab64(value: str) -> bytes | None:
    # kanidm: libs/crypto/src/lib.rs `ab64_to_b64!`: '.' becomes '+', then "==" or "=" is
    # appended when the length is 2 or 3 modulo 4 (whatever padding was already there), and
    # the result is decoded with the standard alphabet, canonical padding and trailing bits
    # allowed (`with_decode_allow_trailing_bits(true)`).
    text = value.replace(".", "+")
    text += {2: "==", 3: "="}.get(len(text) % 4, "")
    return b64decode_strict(text, trailing_bits=True)


def _pbkdf2_problem(scheme: str, body: str) -> str | None:
    name = "{" + scheme.upper() + "}"
    parts = body.split("$")
    if len(parts) != 3:
        return f"{name}: expected iterations$salt$hash"
    cost, salt, digest = parts
    if _rust_u32(cost) is None:
        return f"{name}: the iteration count is not an unsigned 32-bit number"
    if _ab64(salt) is None:
        return f"{name}: the salt is not ab64/base64"
    raw = _ab64(digest)
    if raw is None:
        return f"{name}: the hash is not ab64/base64"
    if len(raw) < _PBKDF2_MIN_KEY[scheme]:
        return f"{name}: the hash is shorter than {_PBKDF2_MIN_KEY[scheme]} bytes"
    return None


# The password-hash crate (0.5) PHC grammar kanidm's `parse_argon` relies on:
# identifiers [a-z0-9-]{1,32}; values up to 64 characters of [A-Za-z0-9/+.-]; decimals
# without a leading zero that fit 32 bits; the parameter string at most 127 bytes.
_PHC_IDENT_RE: Final = re.compile(r"[a-z0-9-]{1,32}")
_PHC_VALUE_RE: Final = re.compile(r"[A-Za-z0-9/+.-]{0,64}")
_PHC_DECIMAL_RE: Final = re.compile(r"0|[1-9][0-9]*")
_PHC_SALT_RE: Final = re.compile(r"[A-Za-z0-9/+.-]*")


def _phc_decimal(text: str) -> int | None:
    if _PHC_DECIMAL_RE.fullmatch(text) is None or int(text) > U32_MAX:
        return None
    return int(text)


def _phc_params(field: str) -> dict[str, str] | None:
    """`ParamsString::from_str`: name=value pairs, comma separated; the first name wins."""
    if len(field.encode()) > 127:
        return None
    found: dict[str, str] = {}
    for pair in field.split(","):
        pieces = pair.split("=")
        if len(pieces) != 2:
            return None
        name, val = pieces
        if _PHC_IDENT_RE.fullmatch(name) is None or _PHC_VALUE_RE.fullmatch(val) is None:
            return None
        found.setdefault(name, val)
    return found


def _argon2_problem(phc: str) -> str | None:
    # kanidm: libs/crypto/src/lib.rs `parse_argon` over password-hash 0.5 `PasswordHash::parse`:
    # $<alg>[$v=<n>][$<params>][$<salt>[$<hash>]]; the version field must come before the
    # parameters (the order of m, t and p is free); kanidm then needs argon2id, a version of
    # 16 or 19 (19 when absent), decimal m, t and p, a salt decoding as unpadded base64 and
    # a hash (10 to 64 bytes of unpadded base64).
    fields = phc.split("$")
    if fields[0] != "" or len(fields) < 2 or _PHC_IDENT_RE.fullmatch(fields[1]) is None:
        return "{ARGON2}: not a PHC string ($argon2id$...)"
    if fields[1] != "argon2id":
        return "{ARGON2}: only argon2id is accepted"
    rest = fields[2:]
    version = 19
    if rest and rest[0].startswith("v=") and "," not in rest[0]:
        parsed = _phc_decimal(rest[0][2:]) if _PHC_VALUE_RE.fullmatch(rest[0][2:]) else None
        if parsed is None:
            return "{ARGON2}: the version is not a decimal number"
        version = parsed
        rest = rest[1:]
    params: dict[str, str] = {}
    if rest and "=" in rest[0]:
        got = _phc_params(rest[0])
        if got is None:
            return "{ARGON2}: malformed parameters"
        params = got
        rest = rest[1:]
    if len(rest) > 2:
        return "{ARGON2}: unexpected fields after the hash"
    salt = rest[0] if rest else None
    if salt is not None and (not 4 <= len(salt) <= 64 or _PHC_SALT_RE.fullmatch(salt) is None):
        return "{ARGON2}: the salt is not 4 to 64 base64 characters"
    digest = b64decode_strict(rest[1], padding="none") if len(rest) == 2 else None
    if len(rest) == 2 and (digest is None or not 10 <= len(digest) <= 64):
        return "{ARGON2}: the hash is not 10 to 64 bytes of unpadded base64"
    if version not in (16, 19):
        return "{ARGON2}: unsupported argon2 version (16 or 19)"
    if any(_phc_decimal(params.get(k, "")) is None for k in ("m", "t", "p")):
        return "{ARGON2}: the m, t and p parameters must be present and decimal"
    if salt is None or b64decode_strict(salt, padding="none") is None:
        return "{ARGON2}: the salt is missing or not unpadded base64"
    if digest is None:
        return "{ARGON2}: the hash is missing"
    return None


def _crypt_problem(body: str) -> str | None:
    # kanidm: libs/crypto/src/lib.rs `parse_crypt`: only the prefix is looked at; the rest is
    # stored as text and checked at login.
    if body.startswith("$1$"):
        if "$" not in body[3:]:
            return "{CRYPT}$1$: expected salt$hash"
        return None
    if body.startswith(("$5$", "$6$")):
        return None
    return "{CRYPT}: only $1$ (md5-crypt), $5$ (sha256-crypt) and $6$ (sha512-crypt)"


def _digest_problem(scheme: str, body: str) -> str | None:
    name = "{" + scheme.upper() + "}"
    raw = b64decode_strict(body)
    if raw is None:
        return f"{name}: the value is not canonical standard base64"
    salted = scheme.startswith("ss")
    size = _DIGEST_LENGTHS[scheme[1:] if salted else scheme]
    if not salted:
        return None if len(raw) == size else f"{name}: the digest is not {size} bytes"
    if scheme == "ssha512" and len(raw) <= size:
        return f"{name}: no salt after the 64-byte digest"
    if len(raw) < size:
        return f"{name}: shorter than the {size}-byte digest"
    return None


def _password_scheme_and_problem(value: str) -> tuple[str | None, str | None]:
    if value.startswith("pbkdf2_sha256$"):
        return "pbkdf2_sha256", _django_problem(value)
    if value.startswith("ipaNTHash: "):
        body = value[len("ipaNTHash: ") :]
        raw = b64decode_strict(body, urlsafe=True, padding="none")
        if raw is None:
            raw = b64decode_strict(body, urlsafe=True, padding="required")
        if raw is None:
            return "ipaNTHash", "ipaNTHash: the hash is not URL-safe base64"
        return "ipaNTHash", None
    if value.startswith("sambaNTPassword: "):
        if _HEX_RE.fullmatch(value[len("sambaNTPassword: ") :]) is None:
            return "sambaNTPassword", "sambaNTPassword: the hash is not hexadecimal"
        return "sambaNTPassword", None
    if not value.startswith("{"):
        return None, "not a recognised password hash format"
    head, brace, body = value.partition("}")
    if not brace:
        return None, "not a recognised password hash format ('{' without '}')"
    # Rust's str::to_lowercase and Python's str.lower agree here (both full Unicode case
    # mapping: "{PBKDF2}" with a Kelvin sign for the K is pbkdf2 on both).
    scheme = head[1:].lower()
    if scheme in _PBKDF2_MIN_KEY:
        return scheme.upper(), _pbkdf2_problem(scheme, body)
    if scheme == "argon2":
        return "ARGON2", _argon2_problem(body)
    if scheme == "crypt":
        return "CRYPT", _crypt_problem(body)
    if scheme in ("sha", "ssha", "sha256", "ssha256", "sha512", "ssha512"):
        return scheme.upper(), _digest_problem(scheme, body)
    if scheme == "pbkdf2_sha256":
        return None, "{PBKDF2_SHA256} (389-ds binary form) is not importable"
    return None, "not a recognised password hash format"


def password_import_problem(value: str) -> str | None:
    """Why kanidmd's password importer would refuse ``value``, or ``None``.

    Recognises the formats of spec §3.9.5 exactly as kanidmd 1.11.1's importer does
    (kanidm: libs/crypto/src/lib.rs): Django ``pbkdf2_sha256$iter$salt$hash``;
    ``ipaNTHash: <base64url>``; ``sambaNTPassword: <hex>``; and, with the scheme name
    matched case-insensitively, ``{PBKDF2}``, ``{PBKDF2-SHA1}``, ``{PBKDF2-SHA256}``,
    ``{PBKDF2-SHA512}`` in passlib ab64; ``{ARGON2}`` + an argon2id PHC string;
    ``{CRYPT}$1$`` / ``$5$`` / ``$6$``; ``{SHA}``, ``{SSHA}``, ``{SHA256}``,
    ``{SSHA256}``, ``{SHA512}``, ``{SSHA512}`` with their digest lengths. bcrypt and
    other crypt schemes are refused. The message never contains the hash.

    Args:
        value: the ``password_import`` / ``unix_password_import`` string.

    Returns:
        The reason, naming the format, or ``None`` when kanidmd would import it.
    """
    return _password_scheme_and_problem(value)[1]


def password_import_scheme(value: str) -> str | None:
    """The hash format ``value`` claims to be (``"SSHA512"``, ``"ipaNTHash"``...).

    Args:
        value: the import string.

    Returns:
        The format's name, or ``None`` when no known prefix or shape matches.
    """
    return _password_scheme_and_problem(value)[0]


def password_import_format_ok(value: str) -> bool:
    """Whether kanidmd can import ``value`` as a password hash (spec §3.9.5).

    Args:
        value: the import string.

    Returns:
        ``True`` when :func:`password_import_problem` finds nothing.
    """
    return _password_scheme_and_problem(value)[1] is None


# --- TOTP ----------------------------------------------------------------------------------

TOTP_ALGORITHMS: Final = frozenset({"sha1", "sha256", "sha512"})
"""The ``algo`` values kanidmd accepts for a TOTP import."""


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def totp_problems(
    *, external_id: object, secret: object, algo: object, step: object, digits: object
) -> list[tuple[str, str]]:
    """Every problem kanidmd would find in one ``totp_import`` item (spec §3.9.4).

    kanidmd checks the fields in this order and stops at the first; this function checks
    them all. Each problem is ``(code, kanidm_message)`` where ``kanidm_message`` is the
    exact ``invalidattribute`` text kanidmd sends for it (the double can return the first
    one verbatim). No message contains the secret.

    Args:
        external_id: the TOTP label (must be a string).
        secret: the raw key in base64, URL-safe or standard, canonical padding.
        algo: ``"sha1"``, ``"sha256"`` or ``"sha512"``.
        step: an integer >= 30.
        digits: 6 or 8.

    Returns:
        The problems, in kanidmd's checking order; empty when the item is accepted.
    """
    found: list[tuple[str, str]] = []
    if not isinstance(external_id, str):
        found.append(("totp.external_id", "external_id must be scim simple string - totp_import"))
    if not isinstance(secret, str):
        found.append(("totp.secret", "secret must be scim simple string - totp_import"))
    elif b64decode_strict(secret, urlsafe=True) is None and b64decode_strict(secret) is None:
        found.append(("totp.secret", "secret must be base64 string - totp_import"))
    if not isinstance(algo, str):
        found.append(("totp.algo", "algo must be scim simple string - totp_import"))
    elif algo not in TOTP_ALGORITHMS:
        found.append(("totp.algo", "algo must be one of sha1, sha256 or sha512 - totp_import"))
    if not (isinstance(step, int) and not isinstance(step, bool) and step >= 30):
        found.append(
            (
                "totp.step",
                "step must be a positive integer value equal to or greater than 30 - totp_import",
            )
        )
    if not _is_int(digits) or digits not in (6, 8):
        found.append(
            ("totp.digits", "digits must be a positive integer value of 6 OR 8 - totp_import")
        )
    return found


# --- SSH public keys -----------------------------------------------------------------------
# kanidm: server/lib/src/idm/scim.rs `scim_attr_to_values` parses the value with
# `SshPublicKey::from_string` (sshkey-attest re-exports the sshkeys 0.3.4 crate's PublicKey):
# sshkeys src/pubkey.rs `PublicKey::from_string` and `from_reader`, src/reader.rs. It reads
# the first line only, splits it at Unicode whitespace (a leading space leaves an empty key
# type), needs a known key type (certificates included), canonical standard base64, and a
# blob whose embedded type equals the line's. It then reads the fields of that key type
# without checking their sizes, the ECDSA curve against the type name, or that the blob is
# used up. A zero-length RSA/DSA number makes `read_mpint` index an empty vector: kanidmd
# panics and the request gets no answer at all.

# Rust's char::is_whitespace (the Unicode White_Space property); Python's str.isspace also
# counts U+001C-U+001F, which Rust does not.
_RUST_WHITESPACE: Final = frozenset(
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
# sshkeys src/keytype.rs `KeyType::from_name`: name -> how `from_reader` reads the blob.
_SSH_KEY_KINDS: Final = {
    "ssh-rsa": "rsa",
    "ssh-rsa-cert-v01@openssh.com": "rsa",
    "ssh-dss": "dsa",
    "ssh-dss-cert-v01@openssh.com": "dsa",
    "ecdsa-sha2-nistp256": "ecdsa",
    "ecdsa-sha2-nistp384": "ecdsa",
    "ecdsa-sha2-nistp521": "ecdsa",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com": "ecdsa",
    "ecdsa-sha2-nistp384-cert-v01@openssh.com": "ecdsa",
    "ecdsa-sha2-nistp521-cert-v01@openssh.com": "ecdsa",
    "sk-ecdsa-sha2-nistp256@openssh.com": "sk-ecdsa",
    "ssh-ed25519": "ed25519",
    "ssh-ed25519-cert-v01@openssh.com": "ed25519",
    "sk-ssh-ed25519@openssh.com": "sk-ed25519",
}
_ECDSA_CURVES: Final = frozenset({"nistp256", "nistp384", "nistp521"})
SSH_KEY_CRASH: Final = "kanidmd crashes on this key (a zero-length RSA/DSA number)"
"""The problem text of a key that makes kanidmd panic instead of answering."""


@attrs.frozen
class SshPublicKeyInfo:
    """A parsed OpenSSH public key line.

    Attributes:
        key_type: the algorithm name (``"ssh-ed25519"``).
        blob: the decoded key blob (SSH wire format).
        comment: the trailing comment, or ``None``.
    """

    key_type: str
    blob: bytes = attrs.field(repr=False)
    comment: str | None = None


def _rust_split_whitespace(text: str) -> tuple[str, str] | None:
    """The ``split_whitespace`` of sshkeys: up to the first whitespace, and after the run."""
    start = next((i for i, c in enumerate(text) if c in _RUST_WHITESPACE), None)
    if start is None:
        return None
    end = next((i for i in range(start, len(text)) if text[i] not in _RUST_WHITESPACE), None)
    if end is None:
        return None
    return text[:start], text[end:]


class _SshBlob:
    """sshkeys src/reader.rs ``Reader``: length-prefixed fields, no end-of-blob check."""

    def __init__(self, blob: bytes) -> None:
        self.blob = blob
        self.pos = 0

    def read_bytes(self) -> bytes | None:
        rest = self.blob[self.pos :]
        if len(rest) < 4:
            return None
        size = int.from_bytes(rest[:4], "big")
        if len(rest) < size + 4:
            return None
        self.pos += size + 4
        return rest[4 : size + 4]

    def read_string(self) -> str | None:
        data = self.read_bytes()
        if data is None:
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return None


def _ssh_fields_problem(kind: str, reader: _SshBlob) -> str | None:
    if kind in ("rsa", "dsa"):
        for _ in range(2 if kind == "rsa" else 4):
            number = reader.read_bytes()
            if number is None:
                return "the key blob is truncated"
            if not number:
                return SSH_KEY_CRASH
        return None
    if kind in ("ecdsa", "sk-ecdsa"):
        curve = reader.read_string()
        if curve is None or curve not in _ECDSA_CURVES:
            return "the key blob does not name a known ECDSA curve"
        if reader.read_bytes() is None:
            return "the key blob is truncated"
    elif reader.read_bytes() is None:
        return "the key blob is truncated"
    if kind.startswith("sk-") and reader.read_string() is None:
        return "the key blob is truncated"
    return None


def _ssh_parse(line: str) -> tuple[SshPublicKeyInfo | None, str | None]:
    # Rust's str::lines(): split at "\n", dropping one "\r" before it.
    first = line.split("\n", 1)[0]
    if "\n" in line and first.endswith("\r"):
        first = first[:-1]
    if not line:
        return None, "empty"
    head = _rust_split_whitespace(first)
    if head is None:
        return None, "not an OpenSSH public key line (type, base64 key, optional comment)"
    key_type, remainder = head
    tail = _rust_split_whitespace(remainder)
    if tail is not None:
        data, comment = tail
    else:
        end = len(remainder)
        while end and remainder[end - 1] in _RUST_WHITESPACE:
            end -= 1
        data, comment = remainder[:end], None
    kind = _SSH_KEY_KINDS.get(key_type)
    if kind is None:
        if not key_type:
            return None, "the line starts with whitespace"
        return None, "unsupported key type"
    blob = b64decode_strict(data)
    if blob is None:
        return None, "the key is not canonical base64"
    reader = _SshBlob(blob)
    embedded = reader.read_string()
    if embedded is None:
        return None, "the key blob is truncated"
    if embedded != key_type:
        return None, "the key type does not match the type inside the key blob"
    problem = _ssh_fields_problem(kind, reader)
    if problem is not None:
        return None, problem
    return SshPublicKeyInfo(key_type=key_type, blob=blob, comment=comment), None


_ECDSA_POINT_LENGTHS: Final = {"nistp256": 65, "nistp384": 97, "nistp521": 133}


def _strict_ssh_fields(body: bytes, count: int) -> list[bytes] | None:
    fields: list[bytes] = []
    reader = _SshBlob(body)
    for _ in range(count):
        field = reader.read_bytes()
        if field is None:
            return None
        fields.append(field)
    return fields if reader.pos == len(body) else None


def ssh_public_key_oddity(line: str) -> str | None:
    """What is odd about a key kanidmd accepts (``None`` also when it refuses the key).

    kanidmd's parser does not check sizes or leftovers, so it stores keys that ``sshd``
    will never use: an ed25519 key that is not 32 bytes, an ECDSA key whose curve does not
    match its type, extra bytes after the key, more lines after the first (ignored), and
    certificates (kanidmd re-encodes them in a form its parser cannot read back, so the
    key is dropped when the entry is next loaded [inferred]).

    Args:
        line: the key line.

    Returns:
        A short reason that does not repeat the key, or ``None``.
    """
    info = parse_ssh_public_key(line)
    if info is None:
        return None
    if line.split("\n", 1)[1:] not in ([], [""]):
        return "only the first line is read; the rest is ignored"
    if "-cert-v01@" in info.key_type:
        return "a certificate: kanidmd cannot read it back after storing it"
    body = info.blob[4 + len(info.key_type.encode()) :]
    kind = _SSH_KEY_KINDS[info.key_type]
    counts = {"rsa": 2, "dsa": 4, "ecdsa": 2, "sk-ecdsa": 3, "ed25519": 1, "sk-ed25519": 2}
    fields = _strict_ssh_fields(body, counts[kind])
    if fields is None:
        return "extra bytes after the key"
    if kind.endswith("ed25519") and len(fields[0]) != 32:
        return "an ed25519 key that is not 32 bytes"
    if kind.endswith("ecdsa"):
        curve = fields[0].decode()
        if not info.key_type.removeprefix("sk-").startswith(f"ecdsa-sha2-{curve}"):
            return "the ECDSA curve does not match the key type"
        if len(fields[1]) != _ECDSA_POINT_LENGTHS[curve] or fields[1][:1] != b"\x04":
            return "the ECDSA point has the wrong size for its curve"
    return None


def parse_ssh_public_key(line: str) -> SshPublicKeyInfo | None:
    """Parse one OpenSSH public key line as kanidmd's ssh key parser does.

    The first line of ``line`` must be ``<type> <base64 blob> [comment]`` with a key type
    the sshkeys crate knows (``ssh-ed25519``, ``ssh-rsa``, ``ssh-dss``,
    ``ecdsa-sha2-nistp256/384/521``, the ``sk-`` and ``-cert-v01@openssh.com`` variants),
    canonical base64, and a blob that starts with the same type and holds that type's
    fields. Like kanidmd, sizes are not checked and extra bytes after the fields are
    ignored; a line starting with whitespace is refused.

    Args:
        line: the key line.

    Returns:
        The parsed key, or ``None`` (kanidmd answers ``sc0001incomingsshpublickey``, or
        crashes: see :func:`ssh_public_key_problem`).
    """
    return _ssh_parse(line)[0]


def ssh_public_key_problem(line: str) -> str | None:
    """Why :func:`parse_ssh_public_key` refuses ``line``, or ``None``.

    Args:
        line: the key line.

    Returns:
        A short reason that does not repeat the key (:data:`SSH_KEY_CRASH` for a key that
        makes kanidmd crash), or ``None``.
    """
    return _ssh_parse(line)[1]


# --- RFC 3339 ------------------------------------------------------------------------------
# kanidm: server/lib/src/value.rs `Value::new_datetime_s`: `OffsetDateTime::parse(s, &Rfc3339)`
# then `.to_offset(UTC)`; the time crate (0.3.55) src/parsing/parsable.rs `impl Sealed for
# Rfc3339` `parse_offset_date_time`. Date and time are exactly `YYYY-MM-DD`, then *any one
# ASCII character* as the separator (`T`, `t`, a space, even `x`), `hh:mm:ss`, an optional
# fraction of any number of digits (nanoseconds kept), and `Z`/`z` or `+hh:mm`/`-hh:mm`
# (hours up to 23, minutes up to 59). Second 60 is read as :59.999999999 and must then be
# 23:59:59 UTC on the last day of a month. Storing needs the UTC year within 0000-9999:
# beyond (9999-12-31T23:00:00-01:00, 0000-01-01T00:00:00+01:00) `to_offset` or the RFC 3339
# formatting when the entry is written panics, and kanidmd answers nothing at all.

_RFC3339_RE: Final = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[\x00-\x7f]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]+))?(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))"
)
RFC3339_CRASH: Final = "kanidmd crashes on this timestamp (in UTC it is outside years 0000-9999)"
"""The problem text of a timestamp that makes kanidmd panic instead of answering."""


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return 29 if leap else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 in the proleptic Gregorian calendar (any year)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _civil_from_days(days: int) -> tuple[int, int, int]:
    days += 719468
    era = days // 146097
    doe = days - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day


def _rfc3339_utc(value: str) -> tuple[int, int, int, int, int, int, int] | str:
    """The UTC fields (y, m, d, H, M, S, ns) kanidmd stores, or why it cannot."""
    match = _RFC3339_RE.fullmatch(value)
    if match is None:
        return "not an RFC 3339 timestamp"
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    frac = match.group(7) or ""
    nanos = int((frac + "000000000")[:9])
    offset = 0
    if not match.group(8):
        off_h, off_m = int(match.group(10)), int(match.group(11))
        if off_h > 23 or off_m > 59:
            return "the offset is out of range"
        offset = (off_h * 60 + off_m) * (-1 if match.group(9) == "-" else 1)
    if not 1 <= month <= 12 or not 1 <= day <= _days_in_month(year, month):
        return "no such date"
    leap = second == 60
    if leap:
        second, nanos = 59, 999_999_999
    if hour > 23 or minute > 59 or second > 59:
        return "no such time"
    minutes = (_days_from_civil(year, month, day) * 24 + hour) * 60 + minute - offset
    days, rest = divmod(minutes, 24 * 60)
    u_year, u_month, u_day = _civil_from_days(days)
    u_hour, u_minute = divmod(rest, 60)
    if leap and not (u_hour == 23 and u_minute == 59 and u_day == _days_in_month(u_year, u_month)):
        return "a leap second is only valid at 23:59:60 UTC on the last day of a month"
    if not 0 <= u_year <= 9999:
        return RFC3339_CRASH
    return u_year, u_month, u_day, u_hour, u_minute, second, nanos


def rfc3339_problem(value: str) -> str | None:
    """Why kanidmd would not store ``value`` as a datetime, or ``None`` (spec §3.9.7).

    Args:
        value: the text.

    Returns:
        A short reason (:data:`RFC3339_CRASH` for a timestamp that makes kanidmd crash),
        or ``None`` when kanidmd accepts it.
    """
    got = _rfc3339_utc(value)
    return got if isinstance(got, str) else None


def parse_rfc3339(value: str) -> _dt.datetime | None:
    """Parse an RFC 3339 timestamp the way kanidmd's ``time`` crate does, in UTC.

    ``2025-01-31T00:00:00Z``, ``2025-01-31 00:00:00+10:00`` (any one ASCII character may
    separate date and time) and fractional seconds are accepted; ``2025-01-31``, a missing
    offset or an offset without minutes are not. A leap second (``:60``) is accepted at
    23:59:60 UTC on the last day of a month and read as :59.999999.

    Args:
        value: the text.

    Returns:
        The instant as a UTC datetime (microseconds; kanidmd keeps nanoseconds), or
        ``None`` when kanidmd would not store it or Python cannot represent it (UTC year
        0000).
    """
    got = _rfc3339_utc(value)
    if isinstance(got, str) or got[0] == 0:
        return None
    year, month, day, hour, minute, second, nanos = got
    return _dt.datetime(year, month, day, hour, minute, second, nanos // 1000, tzinfo=_dt.UTC)


def is_rfc3339(value: str) -> bool:
    """Whether kanidmd accepts and stores ``value`` as a datetime (spec §3.9.7).

    Args:
        value: the text.

    Returns:
        ``True`` when :func:`rfc3339_problem` finds nothing.
    """
    return rfc3339_problem(value) is None
