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
import binascii
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
]


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
        key: the OpenSSH line as sent.
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


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def utf8_ok(value: str) -> bool:
    """Whether a UTF-8 value has no line breaks, tabs or control characters (§3.9.2)."""
    return _CONTROL.search(value) is None


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


def _read_string(blob: bytes, pos: int) -> tuple[bytes, int] | None:
    if pos + 4 > len(blob):
        return None
    (length,) = struct.unpack(">I", blob[pos : pos + 4])
    end = pos + 4 + length
    if end > len(blob):
        return None
    return blob[pos + 4 : end], end


def _read_fields(blob: bytes, count: int) -> list[bytes] | None:
    pos = 0
    out: list[bytes] = []
    for _ in range(count):
        got = _read_string(blob, pos)
        if got is None:
            return None
        field, pos = got
        out.append(field)
    return out if pos == len(blob) else None


# Number of length-prefixed fields after the type name, per key type.
_SSH_FIELDS: Final = {
    "ssh-ed25519": 1,
    "ssh-rsa": 2,
    "ssh-dss": 4,
    "ecdsa-sha2-nistp256": 2,
    "ecdsa-sha2-nistp384": 2,
    "ecdsa-sha2-nistp521": 2,
    "sk-ecdsa-sha2-nistp256@openssh.com": 3,
    "sk-ssh-ed25519@openssh.com": 2,
}


def parse_ssh_key(line: str) -> bool:
    """Whether a string is one OpenSSH public-key line kanidmd would accept.

    The line is ``<type> <base64 blob> [comment]``; the blob must decode, start with the
    same type name and hold exactly the fields of that key type.

    Args:
        line: the candidate line.

    Returns:
        True when the key parses.
    """
    parts = line.strip().split(None, 2)
    if len(parts) < 2 or parts[0] not in _SSH_FIELDS:
        return False
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        return False
    fields = _read_fields(blob, 1 + _SSH_FIELDS[parts[0]])
    if fields is None or fields[0] != parts[0].encode():
        return False
    if parts[0] == "ssh-ed25519":
        return len(fields[1]) == 32
    if parts[0] == "sk-ssh-ed25519@openssh.com":
        return len(fields[1]) == 32
    if parts[0].startswith(("ecdsa-", "sk-ecdsa-")):
        curve = parts[0].split("@")[0].rsplit("-", 1)[1]
        return fields[1] == curve.encode() and fields[2][:1] == b"\x04"
    return True


# --- password hash import (kanidm: libs/crypto/src/lib.rs) -----------------------------------

_STD_B64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_AB64 = re.compile(r"[A-Za-z0-9./]*={0,2}")
_CRYPT = re.compile(r"\$(1|5|6)\$(rounds=\d+\$)?[./0-9A-Za-z]{0,16}\$[./0-9A-Za-z]+")
_ARGON2 = re.compile(
    r"\$argon2id\$v=\d+\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+={0,2}\$[A-Za-z0-9+/]+={0,2}"
)
_SHA_LEN: Final = {"sha": 20, "sha256": 32, "sha512": 64}


def _b64(text: str, alphabet: re.Pattern[str]) -> bytes | None:
    if alphabet.fullmatch(text) is None:
        return None
    raw = text.rstrip("=").replace(".", "+")
    try:
        return base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def _pbkdf2_parts(rest: str, *, alphabet: re.Pattern[str]) -> bool:
    parts = rest.split("$")
    if len(parts) != 3 or not parts[0].isdigit():
        return False
    return _b64(parts[1], alphabet) is not None and bool(_b64(parts[2], alphabet))


def parse_password_hash(value: str) -> str | None:
    """Recognise a password-import hash (spec §3.9.5).

    Args:
        value: the ``password_import`` / ``unix_password_import`` string.

    Returns:
        The hash family (``nt_md4``, ``pbkdf2_sha256``, ``crypt_sha512``, ...), or ``None``
        when kanidmd would fail with "unable to convert hash format".
    """
    if value.startswith("pbkdf2_sha256$"):
        parts = value.split("$")
        if len(parts) != 4 or not parts[1].isdigit() or not parts[2]:
            return None
        digest = _b64(parts[3], _STD_B64)
        return "pbkdf2_sha256" if digest is not None and len(digest) >= 32 else None
    if value.startswith("ipaNTHash: "):
        from ._parse import decode_cookie_b64  # same padding-indifferent URL-safe decoder

        data = decode_cookie_b64(value[len("ipaNTHash: ") :])
        return "nt_md4" if data else None
    if value.startswith("sambaNTPassword: "):
        try:
            data = bytes.fromhex(value[len("sambaNTPassword: ") :])
        except ValueError:
            return None
        return "nt_md4" if data else None
    m = re.match(r"\{([A-Za-z0-9_-]+)\}", value)
    if m is None:
        return None
    scheme, rest = m.group(1).upper(), value[m.end() :]
    if scheme in ("PBKDF2", "PBKDF2-SHA1", "PBKDF2-SHA256", "PBKDF2-SHA512"):
        ok = _pbkdf2_parts(rest, alphabet=_AB64)
        return scheme.lower().replace("-", "_") if ok else None
    if scheme == "ARGON2":
        return "argon2id" if _ARGON2.fullmatch(rest) else None
    if scheme == "CRYPT":
        m2 = _CRYPT.fullmatch(rest)
        return (
            {"1": "crypt_md5", "5": "crypt_sha256", "6": "crypt_sha512"}[m2.group(1)]
            if (m2)
            else None
        )
    salted = scheme.startswith("SSHA")
    base = scheme[1:] if salted else scheme
    want = _SHA_LEN.get(base.lower())
    if want is None:
        return None  # includes {PBKDF2_SHA256}, explicitly refused by kanidmd
    raw = _b64(rest, _STD_B64)
    if raw is None or (len(raw) <= want if salted else len(raw) != want):
        return None
    return scheme.lower()


def credential_for(kind: str, value: str, totps: tuple[str, ...] = ()) -> Credential:
    """Build the stored credential for an accepted import hash."""
    return Credential(kind, hashlib.sha256(value.encode()).hexdigest(), totps)


# --- SCIM -> Kanidm conversion (kanidm: server/lib/src/idm/scim.rs scim_attr_to_values) -------


def _unsupported(attr: str) -> Reject:
    return _invalid(f"Unsupported attribute conversion - {attr}")


def _totp_b64(text: str) -> bytes | None:
    # URL-safe first, then standard; both require canonical "=" padding.
    if len(text) % 4 != 0:
        return None
    for alphabet in (re.compile(r"[A-Za-z0-9_-]*={0,2}"), _STD_B64):
        if alphabet.fullmatch(text) is None:
            continue
        try:
            if "-" in text or "_" in text:
                data = base64.urlsafe_b64decode(text)
                canonical = base64.urlsafe_b64encode(data).decode()
            else:
                data = base64.b64decode(text, validate=True)
                canonical = base64.b64encode(data).decode()
        except (binascii.Error, ValueError):
            continue
        # [inferred] the Rust base64 crate refuses set unused bits in the last symbol
        # ("AB==") by default, as for the cookie (spec §3.2); Python ignores them.
        if canonical == text:
            return data
    return None


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
            when = parse_rfc3339(s)
            if when is None:
                raise _invalid(
                    f"value must be scim simple string with rfc3339 formatted datetime - {a}"
                )
            return [when]
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
            if not parse_ssh_key(key):
                raise Reject("sc0001incomingsshpublickey")
            out.append(SshKeyValue(label, key))
        return out
    if syn == "totp":
        return [_totp_item(item) for item in value.values]
    raise _unsupported(a)
