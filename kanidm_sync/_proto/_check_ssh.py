"""Value recognisers for OpenSSH public key lines, as kanidmd's sshkeys parser reads them.

Owns :class:`SshPublicKeyInfo`, :func:`parse_ssh_public_key`,
:func:`ssh_public_key_problem`, :func:`ssh_public_key_oddity` and :data:`SSH_KEY_CRASH`.
Messages never repeat the key.

Pure: no I/O, no clock, no logging, no randomness; standard library and attrs only.
Where kanidmd's exact rule was read from its source it is cited; where it was inferred
the comment says **[inferred]**, and the check leans towards accepting. Re-exported by
``_checks.py``.
"""

from __future__ import annotations

from typing import Final

import attrs

from ._check_primitives import b64decode_strict

__all__ = [
    "SSH_KEY_CRASH",
    "SshPublicKeyInfo",
    "parse_ssh_public_key",
    "ssh_public_key_oddity",
    "ssh_public_key_problem",
]

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
