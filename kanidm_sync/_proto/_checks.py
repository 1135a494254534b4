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
    r"[a-zA-Z0-9.!#$%&'*+=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
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
# kanidm: libs/crypto/src/lib.rs `impl TryFrom<&str> for Password`. The prefixes are
# matched exactly: the LDAP digest and CRYPT schemes in all-upper or all-lower case
# ("{SSHA}" or "{ssha}"), the OpenLDAP PBKDF2 and ARGON2 schemes in upper case only. The
# spec (§3.9.5) says "case-insensitively"; the source is narrower, and a mixed-case
# "{Ssha}" fails there, so it is refused here too.

_DIGEST_LENGTHS: Final = {"SHA": 20, "SHA256": 32, "SHA512": 64}
_PBKDF2_MIN_KEY: Final = {"PBKDF2": 19, "PBKDF2-SHA1": 19, "PBKDF2-SHA256": 32, "PBKDF2-SHA512": 32}
_SCHEME_RE: Final = re.compile(r"\{([A-Za-z0-9_-]+)\}")
_DECIMAL_RE: Final = re.compile(r"[0-9]+")
_PHC_B64_RE: Final = re.compile(r"[A-Za-z0-9+/]+")
_HEX_RE: Final = re.compile(r"(?:[0-9a-fA-F]{2})*")


def _django_problem(parts: list[str]) -> str | None:
    _, cost, _salt, digest = parts
    if _DECIMAL_RE.fullmatch(cost) is None:
        return "pbkdf2_sha256: the iteration count is not a decimal number"
    raw = b64decode_strict(digest)
    if raw is None:
        return "pbkdf2_sha256: the hash is not canonical standard base64"
    if len(raw) < 32:
        return "pbkdf2_sha256: the hash is shorter than 32 bytes"
    return None


def _ab64(value: str) -> bytes | None:
    # passlib's "adapted base64": '.' for '+', padding optional; kanidmd allows trailing
    # bits here (GeneralPurposeConfig::with_decode_allow_trailing_bits(true)).
    return b64decode_strict(value.replace(".", "+"), padding="optional", trailing_bits=True)


def _pbkdf2_problem(scheme: str, body: str) -> str | None:
    parts = body.split("$")
    if len(parts) != 3:
        return f"{{{scheme}}}: expected iterations$salt$hash"
    cost, salt, digest = parts
    if _DECIMAL_RE.fullmatch(cost) is None:
        return f"{{{scheme}}}: the iteration count is not a decimal number"
    if _ab64(salt) is None:
        return f"{{{scheme}}}: the salt is not ab64/base64"
    raw = _ab64(digest)
    if raw is None:
        return f"{{{scheme}}}: the hash is not ab64/base64"
    if len(raw) < _PBKDF2_MIN_KEY[scheme]:
        return f"{{{scheme}}}: the hash is shorter than {_PBKDF2_MIN_KEY[scheme]} bytes"
    return None


def _argon2_problem(phc: str) -> str | None:
    # A PHC string: $argon2id[$v=<n>]$m=<n>,t=<n>,p=<n>$<salt>$<hash>. kanidmd parses it
    # with the password-hash crate and then requires argon2id, m/t/p, a salt and a hash.
    # Salt length 4..64 characters and hash 10..64 bytes are the crate's limits [inferred].
    fields = phc.split("$")
    if len(fields) < 2 or fields[0] != "" or fields[1] != "argon2id":
        return "{ARGON2}: only a PHC string for argon2id is accepted"
    rest = fields[2:]
    if rest and rest[0].startswith("v="):
        if rest[0] not in ("v=16", "v=19"):
            return "{ARGON2}: unsupported argon2 version"
        rest = rest[1:]
    if len(rest) != 3:
        return "{ARGON2}: expected parameters, salt and hash"
    params, salt, digest = rest
    names: dict[str, str] = {}
    for item in params.split(","):
        key, sep, val = item.partition("=")
        if not sep or _DECIMAL_RE.fullmatch(val) is None:
            return "{ARGON2}: malformed parameters"
        names[key] = val
    if not {"m", "t", "p"} <= names.keys():
        return "{ARGON2}: the m, t and p parameters are required"
    if any(int(names[k]) > 0xFFFFFFFF for k in ("m", "t", "p")):
        return "{ARGON2}: a parameter does not fit 32 bits"
    if _PHC_B64_RE.fullmatch(salt) is None or not 4 <= len(salt) <= 64:
        return "{ARGON2}: the salt is not 4 to 64 base64 characters"
    raw = b64decode_strict(digest, padding="none") if _PHC_B64_RE.fullmatch(digest) else None
    if raw is None or not 10 <= len(raw) <= 64:
        return "{ARGON2}: the hash is not 10 to 64 bytes of unpadded base64"
    return None


def _crypt_problem(body: str) -> str | None:
    if body.startswith("$1$"):
        # md5-crypt needs salt$hash after the tag; kanidmd keeps both as text.
        if "$" not in body[3:]:
            return "{CRYPT}$1$: expected salt$hash"
        return None
    if body.startswith(("$5$", "$6$")):
        # sha256-crypt / sha512-crypt strings are stored whole and checked at login.
        return None
    return "{CRYPT}: only $1$ (md5-crypt), $5$ (sha256-crypt) and $6$ (sha512-crypt)"


def _password_scheme_and_problem(value: str) -> tuple[str | None, str | None]:
    parts = value.split("$")
    if len(parts) == 4 and parts[0] == "pbkdf2_sha256":
        return "pbkdf2_sha256", _django_problem(parts)
    if value.startswith("ipaNTHash: "):
        body = value[len("ipaNTHash: ") :]
        raw = b64decode_strict(body, urlsafe=True, padding="none")
        if raw is None:
            raw = b64decode_strict(body, urlsafe=True, padding="required")
        if raw is None:
            return "ipaNTHash", "ipaNTHash: the hash is not URL-safe base64"
        return "ipaNTHash", None
    if value.startswith("sambaNTPassword: "):
        body = value[len("sambaNTPassword: ") :]
        if _HEX_RE.fullmatch(body) is None:
            return "sambaNTPassword", "sambaNTPassword: the hash is not hexadecimal"
        return "sambaNTPassword", None
    match = _SCHEME_RE.match(value)
    if match is None:
        return None, "not a recognised password hash format"
    word = match.group(1)
    body = value[match.end() :]
    upper = word.upper()
    if upper == "CRYPT" and word in ("CRYPT", "crypt"):
        return "CRYPT", _crypt_problem(body)
    if upper in ("SHA", "SSHA", "SHA256", "SSHA256", "SHA512", "SSHA512") and word in (
        upper,
        word.lower(),
    ):
        raw = b64decode_strict(body)
        if raw is None:
            return upper, f"{{{upper}}}: the value is not canonical standard base64"
        size = _DIGEST_LENGTHS[upper.removeprefix("S") if upper.startswith("SS") else upper]
        if upper.startswith("SS"):
            if len(raw) < size:
                return upper, f"{{{upper}}}: shorter than the {size}-byte digest"
        elif len(raw) != size:
            return upper, f"{{{upper}}}: the digest is not {size} bytes"
        return upper, None
    if word in _PBKDF2_MIN_KEY:
        return word, _pbkdf2_problem(word, body)
    if word == "ARGON2":
        return word, _argon2_problem(body)
    if upper == "PBKDF2_SHA256":
        return None, "{PBKDF2_SHA256} (389-ds binary form) is not importable"
    return None, "not a recognised password hash format"


def password_import_problem(value: str) -> str | None:
    """Why kanidmd's password importer would refuse ``value``, or ``None``.

    Recognises the formats of spec §3.9.5 (kanidm: libs/crypto/src/lib.rs): Django
    ``pbkdf2_sha256$iter$salt$hash``; ``ipaNTHash: <base64url>``;
    ``sambaNTPassword: <hex>``; ``{PBKDF2}``, ``{PBKDF2-SHA1}``, ``{PBKDF2-SHA256}``,
    ``{PBKDF2-SHA512}`` in passlib ab64; ``{ARGON2}`` + an argon2id PHC string;
    ``{CRYPT}$1$`` / ``$5$`` / ``$6$``; ``{SHA}``, ``{SSHA}``, ``{SHA256}``,
    ``{SSHA256}``, ``{SHA512}``, ``{SSHA512}`` with their digest lengths. The message
    never contains the hash.

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


_SSH_LINE_RE: Final = re.compile(r"(\S+)[ \t]+([A-Za-z0-9+/]+={0,2})(?:[ \t]+(.*?))?\s*")
_ECDSA_CURVES: Final = {"nistp256": 65, "nistp384": 97, "nistp521": 133}


def _ssh_strings(blob: bytes, count: int) -> list[bytes] | None:
    """Read ``count`` SSH ``string``/``mpint`` fields; ``None`` unless exactly consumed."""
    out: list[bytes] = []
    pos = 0
    for _ in range(count):
        if pos + 4 > len(blob):
            return None
        size = int.from_bytes(blob[pos : pos + 4], "big")
        pos += 4
        if pos + size > len(blob):
            return None
        out.append(blob[pos : pos + size])
        pos += size
    if pos != len(blob):
        return None
    return out


def _ssh_blob_problem(key_type: str, blob: bytes) -> str | None:
    if len(blob) < 4:
        return "the key blob is truncated"
    size = int.from_bytes(blob[:4], "big")
    embedded = blob[4 : 4 + size]
    if len(embedded) != size:
        return "the key blob is truncated"
    if embedded != key_type.encode("utf-8", "surrogatepass"):
        return "the key type does not match the type inside the key blob"
    body = blob[4 + size :]
    if key_type == "ssh-ed25519":
        fields = _ssh_strings(body, 1)
        ok = fields is not None and len(fields[0]) == 32
    elif key_type == "sk-ssh-ed25519@openssh.com":
        fields = _ssh_strings(body, 2)
        ok = fields is not None and len(fields[0]) == 32
    elif key_type == "ssh-rsa":
        fields = _ssh_strings(body, 2)
        ok = fields is not None and all(fields)
    elif key_type == "ssh-dss":
        fields = _ssh_strings(body, 4)
        ok = fields is not None and all(fields)
    elif key_type.startswith("ecdsa-sha2-") or key_type == "sk-ecdsa-sha2-nistp256@openssh.com":
        curve = key_type.removeprefix("sk-").removeprefix("ecdsa-sha2-").split("@")[0]
        fields = _ssh_strings(body, 3 if key_type.startswith("sk-") else 2)
        ok = (
            curve in _ECDSA_CURVES
            and fields is not None
            and fields[0] == curve.encode()
            and len(fields[1]) == _ECDSA_CURVES[curve]
            and fields[1][:1] == b"\x04"
        )
    else:
        return "unsupported key type"
    return None if ok else "the key blob does not hold a valid key of that type"


def _ssh_parse(line: str) -> tuple[SshPublicKeyInfo | None, str | None]:
    match = _SSH_LINE_RE.fullmatch(line.strip())
    if match is None:
        return None, "not an OpenSSH public key line (type, base64 key, optional comment)"
    key_type, data, comment = match.groups()
    blob = b64decode_strict(data)
    if blob is None:
        return None, "the key is not canonical base64"
    problem = _ssh_blob_problem(key_type, blob)
    if problem is not None:
        return None, problem
    return SshPublicKeyInfo(key_type=key_type, blob=blob, comment=comment or None), None


def parse_ssh_public_key(line: str) -> SshPublicKeyInfo | None:
    """Parse one OpenSSH public key line as kanidmd would accept it.

    The line is ``<type> <base64 blob> [comment]``; the blob must decode, start with the
    same type string, and hold a structurally valid key of that type: ``ssh-ed25519``,
    ``ssh-rsa``, ``ssh-dss``, ``ecdsa-sha2-nistp256/384/521``,
    ``sk-ecdsa-sha2-nistp256@openssh.com`` or ``sk-ssh-ed25519@openssh.com`` (the key
    types of the ``ssh-key`` crate kanidmd uses [inferred]). Certificates and options
    prefixes (``from="..." ssh-ed25519 ...``) are refused.

    Args:
        line: the key line.

    Returns:
        The parsed key, or ``None`` (kanidmd answers ``sc0001incomingsshpublickey``).
    """
    return _ssh_parse(line)[0]


def ssh_public_key_problem(line: str) -> str | None:
    """Why :func:`parse_ssh_public_key` refuses ``line``, or ``None``.

    Args:
        line: the key line.

    Returns:
        A short reason that does not repeat the key, or ``None``.
    """
    return _ssh_parse(line)[1]


# --- RFC 3339 ------------------------------------------------------------------------------

_RFC3339_RE: Final = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?"
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))"
)


def parse_rfc3339(value: str) -> _dt.datetime | None:
    """Parse an RFC 3339 timestamp the way kanidmd's ``time`` crate does.

    Requires date, ``T``, time with seconds, optional fraction, and ``Z`` or a
    ``+HH:MM``/``-HH:MM`` offset. ``2025-01-31T00:00:00Z``, ``...+10:00`` and fractional
    seconds are accepted; ``2025-01-31``, a space instead of ``T``, a missing offset or an
    offset without minutes are not. A leap second (``:60``) is accepted at 23:59 and read
    as :59 [inferred].

    Args:
        value: the text.

    Returns:
        A timezone-aware datetime, or ``None`` when kanidmd would refuse it.
    """
    match = _RFC3339_RE.fullmatch(value)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    frac = match.group(7)
    if second == 60 and hour == 23 and minute == 59:
        second = 59
    if match.group(8):
        offset = _dt.timedelta(0)
    else:
        off_h, off_m = int(match.group(10)), int(match.group(11))
        if off_h > 23 or off_m > 59:
            return None
        offset = _dt.timedelta(hours=off_h, minutes=off_m)
        if match.group(9) == "-":
            offset = -offset
    micro = int((frac[1:] + "000000")[:6]) if frac else 0
    try:
        return _dt.datetime(
            year, month, day, hour, minute, second, micro, tzinfo=_dt.timezone(offset)
        )
    except ValueError:
        return None


def is_rfc3339(value: str) -> bool:
    """Whether kanidmd accepts ``value`` as an RFC 3339 timestamp (spec §3.9.7).

    Args:
        value: the text.

    Returns:
        ``True`` when :func:`parse_rfc3339` parses it.
    """
    return parse_rfc3339(value) is not None
