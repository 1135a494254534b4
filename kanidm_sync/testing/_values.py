"""Value rules of the double: SCIM-to-Kanidm conversion and Kanidm's value recognisers.

Owns: the recognisers kanidmd applies to sync values (iname syntax, UTF-8 control
characters, the HTML5 mail regex, OpenSSH public-key lines, password-hash import formats,
TOTP item fields, gidnumber ranges) and the error messages of spec §3.9. Must not: hold
state or know about HTTP. Conversion of references needs an external-id lookup, which
the caller passes in as a function.

The SDK's own local validation may grow similar recognisers; the double keeps its own on
purpose so that one bug cannot hide in both.
"""

from __future__ import annotations

import base64
import hashlib
import re
import struct
import uuid
from collections.abc import Callable
from typing import Final

import attrs

from ._parse import Complex, MultiComplex, ScimValue, parse_rfc3339, parse_rust_uuid
from ._schema_table import AttrDef

__all__ = [
    "Credential",
    "ImportedTotp",
    "MailValue",
    "Reject",
    "ServerPanic",
    "SshKeyValue",
    "convert",
    "credential_for",
    "gid_from_uuid",
    "gid_in_allowed_range",
    "iname_ok",
    "mail_ok",
    "parse_password_hash",
    "parse_ssh_key",
    "utf8_ok",
    "valueset_ok",
]


class ServerPanic(Exception):
    """A value on which kanidmd panics: the request gets no answer, nothing is written.

    The HTTP half turns it into a connection closed without a response.
    """


class Reject(Exception):
    """A value-level failure, carrying the Kanidm ``OperationError`` as (variant, detail)."""

    def __init__(self, variant: str, detail: object = None) -> None:
        super().__init__(variant)
        self.variant = variant
        self.detail = detail


def _invalid(message: str) -> Reject:
    return Reject("invalidattribute", message)


@attrs.frozen
class MailValue:
    """One ``mail`` value before the primary rule is applied.

    Attributes:
        address: the address as sent.
        primary: the ``primary`` flag.
    """

    address: str
    primary: bool


@attrs.frozen
class SshKeyValue:
    """One ``ssh_publickey`` value.

    Attributes:
        label: the key's label (tag).
        key: the key as kanidmd stores and shows it (:func:`parse_ssh_key`).
    """

    label: str
    key: str


@attrs.frozen
class ImportedTotp:
    """One ``totp_import`` item (the secret is never shown).

    Attributes:
        label: the ``external_id`` of the item (Kanidm's TOTP label).
        secret: the raw key bytes.
        algo: ``sha1``, ``sha256`` or ``sha512``.
        step: seconds per code.
        digits: 6 or 8.
    """

    label: str
    secret: bytes = attrs.field(repr=False)
    algo: str
    step: int
    digits: int


@attrs.frozen
class Credential:
    """A stored password credential (``primary_credential`` or ``unix_password``).

    Attributes:
        kind: the hash family (``nt_md4``, ``pbkdf2_sha256``, ...).
        digest: a SHA-256 of the imported hash, so two imports can be compared without
            keeping or showing the hash itself.
        totp_labels: labels of the TOTPs attached (primary credential only).
    """

    kind: str
    digest: str = attrs.field(repr=False)
    totp_labels: tuple[str, ...] = ()

    def render(self) -> str:
        """Kanidm-like one-line summary without secrets (``password(nt_md4) totp(a,b)``)."""
        text = f"password({self.kind})"
        if self.totp_labels:
            text += " totp(" + ",".join(self.totp_labels) + ")"
        return text


# --- recognisers ---------------------------------------------------------------------------

_INAME = re.compile(r"[a-z][a-z0-9\-_.]{0,63}")
_RESERVED_INAMES: Final = frozenset({"root", "dn=token"})


def iname_ok(value: str) -> bool:
    """Whether a (lower-cased) name passes Kanidm's iname rule (spec §3.9.2)."""
    return (
        _INAME.fullmatch(value) is not None
        and value not in _RESERVED_INAMES
        and parse_rust_uuid(value) is None
    )


# kanidm: server/lib/src/value.rs `validate_str_escapes` (UNICODE_CONTROL_RE `[[:cntrl:]]`)
# and `validate_singleline` (`[\n\r\t]`). The Rust regex crate's POSIX classes are ASCII
# only, so `[[:cntrl:]]` is U+0000-U+001F and U+007F: C1 controls (U+0080-U+009F) and every
# other Unicode format character are accepted.
_CONTROL = re.compile("[\x00-\x1f\x7f]")


def utf8_ok(value: str) -> bool:
    """Whether a UTF-8 value has no line breaks, tabs or ASCII control characters (§3.9.2)."""
    return _CONTROL.search(value) is None


def valueset_ok(syntax: str, values: list[object]) -> bool:
    """The checks kanidmd's value sets add at entry validation (spec §4.5 d).

    kanidm: server/lib/src/valueset/utf8.rs and valueset/ssh.rs ``validate`` refuse an empty
    string and an empty key label (``invalidattributesyntax``); the modification-time
    value check (``Value::validate``) lets both through. Case-insensitive strings
    (``loginshell``) may be empty.

    Args:
        syntax: the attribute's syntax in the schema table.
        values: the entry's values of that attribute.

    Returns:
        False when kanidmd's schema validation refuses the value set.
    """
    if syntax == "utf8":
        return all(v != "" for v in values)
    if syntax == "sshkey":
        return all(not isinstance(v, SshKeyValue) or v.label != "" for v in values)
    return True


# kanidm: server/lib/src/value.rs VALIDATE_EMAIL_RE (the WHATWG HTML5 "valid e-mail").
_MAIL = re.compile(
    r"[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*"
)


def mail_ok(value: str) -> bool:
    """Whether an address matches Kanidm's HTML5-style mail regex (§3.9.2)."""
    return _MAIL.fullmatch(value) is not None


_GID_RANGES: Final = (
    (1000, 60000),
    (60578, 61183),
    (65520, 65533),
    (65536, 524287),
    (524288, 1879048191),
    (1879048192, 2147483647),
)


def gid_in_allowed_range(gid: int) -> bool:
    """Whether a gidnumber lies in one of the ranges the gidnumber plugin allows (§3.9.3)."""
    return any(lo <= gid <= hi for lo, hi in _GID_RANGES)


def gid_from_uuid(value: uuid.UUID) -> int:
    """The gidnumber Kanidm generates for a posix entry without one (§3.9.3)."""
    return 0x70000000 | (int.from_bytes(value.bytes[12:16], "big") & 0x0FFFFFFF)


# --- OpenSSH public keys (kanidm: server/lib/src/idm/scim.rs via sshkey-attest ->
# sshkeys 0.3.4 src/pubkey.rs `PublicKey::from_string`, `from_reader`, `encode`, Display) --

# char::is_whitespace in Rust (Unicode White_Space); not Python's str.isspace, which also
# takes U+001C..U+001F.
_WS: Final = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000"
)

# name -> (plain name written into a re-encoded blob, field layout read by from_reader).
_KEY_TYPES: Final = {
    "ssh-rsa": ("ssh-rsa", "rsa"),
    "ssh-rsa-cert-v01@openssh.com": ("ssh-rsa", "rsa"),
    "ssh-dss": ("ssh-dss", "dsa"),
    "ssh-dss-cert-v01@openssh.com": ("ssh-dss", "dsa"),
    "ecdsa-sha2-nistp256": ("ecdsa-sha2-nistp256", "ecdsa"),
    "ecdsa-sha2-nistp384": ("ecdsa-sha2-nistp384", "ecdsa"),
    "ecdsa-sha2-nistp521": ("ecdsa-sha2-nistp521", "ecdsa"),
    "ecdsa-sha2-nistp256-cert-v01@openssh.com": ("ecdsa-sha2-nistp256", "ecdsa"),
    "ecdsa-sha2-nistp384-cert-v01@openssh.com": ("ecdsa-sha2-nistp384", "ecdsa"),
    "ecdsa-sha2-nistp521-cert-v01@openssh.com": ("ecdsa-sha2-nistp521", "ecdsa"),
    "sk-ecdsa-sha2-nistp256@openssh.com": ("sk-ecdsa-sha2-nistp256@openssh.com", "ecdsa-sk"),
    "ssh-ed25519": ("ssh-ed25519", "ed25519"),
    "ssh-ed25519-cert-v01@openssh.com": ("ssh-ed25519", "ed25519"),
    "sk-ssh-ed25519@openssh.com": ("sk-ssh-ed25519@openssh.com", "ed25519-sk"),
}


class _Short(Exception):
    """The blob ran out (sshkeys' UnexpectedEof / InvalidFormat)."""


def _take(blob: bytes, pos: int) -> tuple[bytes, int]:
    # sshkeys src/reader.rs read_bytes: a u32 length, then that many bytes. Nothing checks
    # that the blob ends after the last field.
    if len(blob) - pos < 4:
        raise _Short
    size = struct.unpack(">I", blob[pos : pos + 4])[0]
    if len(blob) - pos - 4 < size:
        raise _Short
    return blob[pos + 4 : pos + 4 + size], pos + 4 + size


def _take_text(blob: bytes, pos: int) -> tuple[str, int]:
    data, pos = _take(blob, pos)
    try:
        return data.decode("utf-8"), pos
    except UnicodeDecodeError:
        raise _Short from None


def _ssh_string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _split_ws(text: str) -> tuple[str, str] | None:
    """The split_whitespace of sshkeys: (text before the first whitespace, after the run)."""
    for i, ch in enumerate(text):
        if ch in _WS:
            for j in range(i, len(text)):
                if text[j] not in _WS:
                    return text[:i], text[j:]
            return None
    return None


def _b64_standard(text: str) -> bytes | None:
    # The base64 crate's STANDARD engine: canonical padding, zero trailing bits.
    if (
        len(text) % 4
        or re.fullmatch(r"[A-Za-z0-9+/]*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?", text) is None
    ):
        return None
    data = base64.b64decode(text)
    return data if base64.b64encode(data).decode() == text else None


def parse_ssh_key(line: str) -> str | None:
    """Parse an ``ssh_publickey`` value as kanidmd does; the key as kanidmd stores it.

    Only the first line is read. It is split at Unicode whitespace into the key type, the
    base64 blob and an optional comment (a line starting with whitespace has an empty key
    type and fails). The key type must be one sshkeys knows (certificates included), the
    blob canonical base64 whose embedded type equals it, and the blob must hold that
    type's fields; their sizes, the ECDSA curve against the type, and bytes after the last
    field are not checked.

    Args:
        line: the value as sent.

    Returns:
        kanidmd's rendering of the stored key (``<type> <re-encoded blob> <comment>``,
        with a trailing space when there is no comment), or ``None`` when kanidmd answers
        ``sc0001incomingsshpublickey``.

    Raises:
        ServerPanic: a zero-length RSA or DSA number (sshkeys' ``read_mpint`` indexes an
            empty vector and kanidmd panics).
    """
    if not line:
        return None
    first = line.split("\n", 1)[0]
    if "\n" in line and first.endswith("\r"):
        first = first[:-1]  # str::lines() drops the "\r" of a "\r\n"
    head = _split_ws(first)
    if head is None:
        return None
    name, rest = head
    tail = _split_ws(rest)
    if tail is None:
        data, comment = rest.rstrip("".join(_WS)), ""
    else:
        data, comment = tail
    if name not in _KEY_TYPES:
        return None
    blob = _b64_standard(data)
    if blob is None:
        return None
    plain, layout = _KEY_TYPES[name]
    out = [_ssh_string(plain.encode())]
    try:
        embedded, pos = _take_text(blob, 0)
        if embedded != name:
            return None
        if layout in ("rsa", "dsa"):
            for _ in range(2 if layout == "rsa" else 4):
                number, pos = _take(blob, pos)
                if not number:
                    raise ServerPanic("sshkeys read_mpint on an empty number")
                # read_mpint drops one leading zero byte; write_mpint adds one back when
                # the top bit is set.
                number = number[1:] if number[0] == 0 else number
                out.append(_ssh_string(b"\0" + number if number[:1] >= b"\x80" else number))
        else:
            if layout.startswith("ecdsa"):
                curve, pos = _take_text(blob, pos)
                if curve not in ("nistp256", "nistp384", "nistp521"):
                    return None
                out.append(_ssh_string(curve.encode()))
            key, pos = _take(blob, pos)
            out.append(_ssh_string(key))
            if layout.endswith("-sk"):
                application, pos = _take_text(blob, pos)
                out.append(_ssh_string(application.encode()))
    except _Short:
        return None
    return f"{name} {base64.b64encode(b''.join(out)).decode()} {comment}"


# --- password hash import (kanidm: libs/crypto/src/lib.rs `impl TryFrom<&str> for Password`,
# v1.11.1; the argon2 branch parses a PHC string with password-hash 0.5 `PasswordHash::parse`)

_B64_STD_CANONICAL = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_B64_URL_PADDED = re.compile(r"(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2}==|[A-Za-z0-9_-]{3}=)?")
_B64_URL_BARE = re.compile(r"(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2,3})?")
_B64_STD_BARE = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2,3})?")


def _decode(
    text: str, shape: re.Pattern[str], *, urlsafe: bool = False, trailing_bits: bool = False
) -> bytes | None:
    """A Rust base64 engine: alphabet and padding by ``shape``; zero trailing bits unless told."""
    if shape.fullmatch(text) is None:
        return None
    bare = text.rstrip("=")
    if urlsafe:
        bare = bare.translate(str.maketrans("-_", "+/"))
    data = base64.b64decode(bare + "=" * (-len(bare) % 4))
    if not trailing_bits and base64.b64encode(data).decode().rstrip("=") != bare:
        return None
    return data


def _u32(text: str) -> bool:
    # `str::parse::<u32>`: ASCII digits after an optional '+', at most 4294967295.
    digits = text[1:] if text.startswith("+") else text
    return digits.isascii() and digits.isdigit() and int(digits) <= 0xFFFFFFFF


def _ab64_to_b64(text: str) -> bytes | None:
    # The `ab64_to_b64!` macro: '.' -> '+', then "==" / "=" appended for a length of 2 / 3
    # modulo 4, then the standard alphabet with canonical padding and trailing bits allowed.
    text = text.replace(".", "+")
    text += ("", "", "==", "=")[len(text) % 4]
    return _decode(text, _B64_STD_CANONICAL, trailing_bits=True)


def _openldap_pbkdf2(scheme: str, rest: str) -> bool:
    fields = rest.split("$")
    if len(fields) != 3 or not _u32(fields[0]) or _ab64_to_b64(fields[1]) is None:
        return False
    key = _ab64_to_b64(fields[2])
    return key is not None and len(key) >= (19 if scheme in ("pbkdf2", "pbkdf2-sha1") else 32)


_PHC_CHARS = re.compile(r"[A-Za-z0-9/+.\-]*")


def _phc_decimal(text: str) -> int | None:
    # password-hash Value::decimal: ASCII digits, no leading zero, fits u32.
    if not text or not (text.isascii() and text.isdigit()) or (text[0] == "0" and text != "0"):
        return None
    return int(text) if int(text) <= 0xFFFFFFFF else None


def _argon2(phc: str) -> bool:
    fields = phc.split("$")
    if len(fields) < 2 or fields[0] != "":
        return False
    algorithm, queue = fields[1], fields[2:]
    if re.fullmatch(r"[a-z0-9-]{1,32}", algorithm) is None:
        return False
    version: int | None = 19  # kanidm's default when the PHC string has none
    if queue and queue[0].startswith("v=") and "," not in queue[0]:
        raw = queue.pop(0)[2:]
        if len(raw) > 64 or _PHC_CHARS.fullmatch(raw) is None:
            return False
        version = _phc_decimal(raw)
        if version is None:
            return False
    params: dict[str, str] = {}
    if queue and "=" in queue[0]:
        text = queue.pop(0)
        if len(text.encode()) > 127:
            return False
        for pair in text.split(","):
            bits = pair.split("=")
            if len(bits) != 2 or re.fullmatch(r"[a-z0-9-]{1,32}", bits[0]) is None:
                return False
            if len(bits[1]) > 64 or _PHC_CHARS.fullmatch(bits[1]) is None:
                return False
            if bits[0] not in params:
                params[bits[0]] = bits[1]
    if len(queue) != 2:
        return False  # kanidm needs both the salt and the hash (more is PhcStringTrailingData)
    salt, digest = queue
    if not 4 <= len(salt) <= 64 or _PHC_CHARS.fullmatch(salt) is None:
        return False
    output = _decode(digest, _B64_STD_BARE)
    if output is None or not 10 <= len(output) <= 64:
        return False
    if algorithm != "argon2id" or version not in (0x10, 0x13):
        return False
    if any(_phc_decimal(params.get(k, "")) is None for k in "mtp"):
        return False
    return _decode(salt, _B64_STD_BARE) is not None


_LDAP_DIGESTS: Final = {"sha": 20, "sha256": 32, "sha512": 64}


def parse_password_hash(value: str) -> str | None:
    """Recognise a password-import hash exactly as kanidmd 1.11.1 does (spec §3.9.5).

    Args:
        value: the ``password_import`` / ``unix_password_import`` string.

    Returns:
        The hash family (``nt_md4``, ``pbkdf2_sha256``, ``crypt_sha512``, ...), or ``None``
        when kanidmd would fail with "unable to convert hash format".
    """
    if value.startswith("pbkdf2_sha256$"):
        # parse_django_password: the salt is taken as text, even empty.
        fields = value.split("$")
        if len(fields) != 4 or not _u32(fields[1]):
            return None
        digest = _decode(fields[3], _B64_STD_CANONICAL)
        return "pbkdf2_sha256" if digest is not None and len(digest) >= 32 else None
    if value.startswith("ipaNTHash: "):
        # parse_ipanthash: URL_SAFE_NO_PAD, else URL_SAFE; no length check (even empty).
        body = value[len("ipaNTHash: ") :]
        found = _decode(body, _B64_URL_BARE, urlsafe=True)
        if found is None:
            found = _decode(body, _B64_URL_PADDED, urlsafe=True)
        return "nt_md4" if found is not None else None
    if value.startswith("sambaNTPassword: "):
        # parse_sambantpassword: hex::decode, even length, either case, even empty.
        body = value[len("sambaNTPassword: ") :]
        return "nt_md4" if re.fullmatch(r"(?:[0-9a-fA-F][0-9a-fA-F])*", body) else None
    if not value.startswith("{") or "}" not in value:
        return None
    head, rest = value[1:].split("}", 1)
    scheme = head.lower()  # to_lowercase: every scheme name is case-insensitive
    if scheme in ("pbkdf2", "pbkdf2-sha1", "pbkdf2-sha256", "pbkdf2-sha512"):
        return scheme.replace("-", "_") if _openldap_pbkdf2(scheme, rest) else None
    if scheme == "argon2":
        return "argon2id" if _argon2(rest) else None
    if scheme == "crypt":
        # parse_crypt keeps the text; only the prefix matters ($1$ also needs salt$hash).
        if rest.startswith("$1$"):
            return "crypt_md5" if "$" in rest[3:] else None
        if rest.startswith("$5$"):
            return "crypt_sha256"
        return "crypt_sha512" if rest.startswith("$6$") else None
    salted = scheme.startswith("ssha")
    size = _LDAP_DIGESTS.get(scheme[1:] if salted else scheme)
    if size is None:
        return None  # pbkdf2_sha256 (389-ds binary form) is InvalidFormat; others NoDecoderFound
    raw = _decode(rest, _B64_STD_CANONICAL)
    if raw is None:
        return None
    if not salted:
        return scheme if len(raw) == size else None
    # split_at_checked accepts an empty salt for ssha and ssha256; ssha512 wants one byte.
    return scheme if len(raw) > size or (len(raw) == size and scheme != "ssha512") else None


def credential_for(kind: str, value: str, totps: tuple[str, ...] = ()) -> Credential:
    """Build the stored credential for an accepted import hash."""
    return Credential(kind, hashlib.sha256(value.encode()).hexdigest(), totps)


# --- SCIM -> Kanidm conversion (kanidm: server/lib/src/idm/scim.rs scim_attr_to_values) -------


def _unsupported(attr: str) -> Reject:
    return _invalid(f"Unsupported attribute conversion - {attr}")


def _totp_b64(text: str) -> bytes | None:
    # kanidm: server/lib/src/idm/scim.rs: URL_SAFE.decode, else STANDARD.decode; both want
    # canonical "=" padding and refuse set unused bits in the last symbol ("AB==").
    found = _decode(text, _B64_URL_PADDED, urlsafe=True)
    return found if found is not None else _decode(text, _B64_STD_CANONICAL)


def _totp_item(item: Complex) -> ImportedTotp:
    a = "totp_import"
    v = item.items
    for key in ("external_id", "secret", "algo", "step", "digits"):
        if key not in v:
            raise _invalid(f"missing required key {key} - {a}")
        got = v[key]
        if key == "external_id" and not isinstance(got, str):
            raise _invalid(f"external_id must be scim simple string - {a}")
        if key == "secret":
            if not isinstance(got, str):
                raise _invalid(f"secret must be scim simple string - {a}")
            if _totp_b64(got) is None:
                raise _invalid(f"secret must be base64 string - {a}")
        if key == "algo":
            if not isinstance(got, str):
                raise _invalid(f"algo must be scim simple string - {a}")
            if got not in ("sha1", "sha256", "sha512"):
                raise _invalid(f"algo must be one of sha1, sha256 or sha512 - {a}")
        if key == "step" and (type(got) is not int or got < 30):
            raise _invalid(
                f"step must be a positive integer value equal to or greater than 30 - {a}"
            )
        if key == "digits" and (type(got) is not int or got not in (6, 8)):
            raise _invalid(f"digits must be a positive integer value of 6 OR 8 - {a}")
    secret = _totp_b64(str(v["secret"])) or b""
    step, digits = v["step"], v["digits"]
    if not isinstance(step, int) or not isinstance(digits, int):  # pragma: no cover - checked above
        raise _invalid(f"step must be a positive integer value equal to or greater than 30 - {a}")
    return ImportedTotp(str(v["external_id"]), secret, str(v["algo"]), step, digits)


Value = object
"""A converted value as the store keeps it (str, int, UUID, MailValue, ...)."""


def convert(
    adef: AttrDef, value: ScimValue, resolve: Callable[[str], uuid.UUID | None]
) -> list[Value]:
    """Convert one SCIM attribute value to Kanidm values (spec §3.9).

    Dispatch is on (syntax, multi-valued, value shape), as kanidmd's
    ``scim_attr_to_values``; anything else is "Unsupported attribute conversion".

    Args:
        adef: the attribute's schema definition.
        value: the parsed SCIM value.
        resolve: looks a lower-cased external id up among live entries.

    Returns:
        The converted values, in the order sent.

    Raises:
        Reject: ``invalidattribute`` with kanidmd's message, or
            ``sc0001incomingsshpublickey`` for an unparsable SSH key.
    """
    a, syn, multi = adef.name, adef.syntax, adef.multi
    is_str = isinstance(value, str)
    if not multi and is_str:
        s = str(value)
        if syn == "iname" or syn == "utf8_ci":
            return [s.lower()]
        if syn == "utf8":
            return [s]
        if syn == "reference":
            ref = parse_rust_uuid(s)
            if ref is None:
                ref = resolve(s.lower())
            if ref is None:
                raise _invalid(f"Reference uuid must a uuid or external_id - {a}")
            return [ref]
        if syn == "datetime":
            # kanidm: server/lib/src/value.rs `Value::new_datetime_s`: parse, then to UTC.
            when = parse_rfc3339(s)
            if when is None:
                raise _invalid(
                    f"value must be scim simple string with rfc3339 formatted datetime - {a}"
                )
            stored = when.render_utc()
            if stored is None:
                # [inferred] beyond 9999 `to_offset` panics here; below 0000 the entry's
                # RFC 3339 formatting panics later, when it is written.
                raise ServerPanic(f"datetime out of range - {a}")
            return [stored]
    if not multi and syn == "uint32" and type(value) is int:
        if not 0 <= value <= 0xFFFFFFFF:
            raise _invalid(f"Out of bounds unsigned integer - {a}")
        return [value]
    if multi and isinstance(value, MultiComplex):
        return _convert_multi_complex(a, syn, value, resolve)
    raise _unsupported(a)


def _convert_multi_complex(
    a: str, syn: str, value: MultiComplex, resolve: Callable[[str], uuid.UUID | None]
) -> list[Value]:
    out: list[Value] = []
    if syn == "reference":
        for item in value.values:
            if "external_id" not in item.items:
                raise _invalid(f"missing required key external_id - {a}")
            ext = item.items["external_id"]
            if not isinstance(ext, str):
                raise _invalid(f"external_id must be scim simple string - {a}")
            ref = parse_rust_uuid(ext)
            if ref is None:
                ref = resolve(ext.lower())
            if ref is not None:  # unknown external ids are dropped silently (§3.9.1)
                out.append(ref)
        return out
    if syn == "email":
        for item in value.values:
            if "value" not in item.items:
                raise _invalid(f"missing required key value - {a}")
            addr = item.items["value"]
            if not isinstance(addr, str):
                raise _invalid(f"value must be scim simple string - {a}")
            primary = item.items.get("primary", False)
            if not isinstance(primary, bool):
                raise _invalid(f"primary must be scim simple bool - {a}")
            out.append(MailValue(addr, primary))
        return out
    if syn == "sshkey":
        for item in value.values:
            if "label" not in item.items:
                raise _invalid(f"missing required key label - {a}")
            label = item.items["label"]
            if not isinstance(label, str):
                # Copy/paste quirk of kanidmd: the label error talks about `value`.
                raise _invalid(f"value must be scim simple string - {a}")
            if "value" not in item.items:
                raise _invalid(f"missing required key value - {a}")
            key = item.items["value"]
            if not isinstance(key, str):
                raise _invalid(f"value must be scim simple string - {a}")
            stored = parse_ssh_key(key)
            if stored is None:
                raise Reject("sc0001incomingsshpublickey")
            out.append(SshKeyValue(label, stored))
        return out
    if syn == "totp":
        return [_totp_item(item) for item in value.values]
    raise _unsupported(a)
