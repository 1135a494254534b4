"""Value recognisers for credential imports: password hashes and TOTP items.

Owns :func:`password_import_problem`, :func:`password_import_scheme`,
:func:`password_import_format_ok` (spec §3.9.5) and :func:`totp_problems` with
:data:`TOTP_ALGORITHMS` (spec §3.9.4). Never put a secret (a password hash, a TOTP
secret) in a returned message: messages say which *format* was not recognised and why,
never the value.

Pure: no I/O, no clock, no logging, no randomness; standard library only. Where kanidmd's
exact rule was read from its source it is cited; where it was inferred the comment says
**[inferred]**, and the check leans towards accepting. Re-exported by ``_checks.py``.
"""

from __future__ import annotations

import re
from typing import Final

from ._check_primitives import U32_MAX, b64decode_strict

__all__ = [
    "TOTP_ALGORITHMS",
    "password_import_format_ok",
    "password_import_problem",
    "password_import_scheme",
    "totp_problems",
]

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
