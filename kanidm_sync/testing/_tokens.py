"""JWS-shaped tokens for the in-memory Kanidm: minting and signature checking.

This module owns the compact-JWS encoding (``b64url(header).b64url(payload).b64url(sig)``) and
the per-instance signing keys of the double. It knows nothing about accounts, sessions or
HTTP: callers decide what a verified payload means (spec §6, auth spec §1.4 and §4.1).

Known difference from kanidmd: kanidmd signs sync tokens and user auth tokens with the domain's
ES256 key. We have no ECDSA implementation (and must not add a runtime dependency), so tokens
whose header says ``"alg":"ES256"`` are signed here with HMAC-SHA512 under a random
per-instance key (64 bytes, the length of a real ES256 signature). API tokens are HS256 in
kanidmd too and are signed with HMAC-SHA256. Nobody outside the double can verify these
signatures; clients must treat tokens as opaque strings, which is what the spec asks anyway.

Must not: log, print or put a token or key into a repr or an exception message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from typing import Final, Literal

import attrs

from .._types import JSONValue

__all__ = ["JwsKeys", "VerifiedJws", "b64url_decode", "b64url_encode"]

Alg = Literal["ES256", "HS256"]

_DIGESTS: Final = {"ES256": hashlib.sha512, "HS256": hashlib.sha256}


def b64url_encode(data: bytes) -> str:
    """Encode bytes as URL-safe base64 without padding (the JWS and cookie alphabet).

    Args:
        data: the bytes to encode.

    Returns:
        The unpadded URL-safe base64 text.
    """
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode URL-safe base64, padded or not.

    Args:
        text: the base64url text.

    Returns:
        The decoded bytes.

    Raises:
        ValueError: when the text is not URL-safe base64.
    """
    if any(c not in _B64URL_ALPHABET for c in text.rstrip("=")):
        raise ValueError("not base64url")
    padded = text.rstrip("=") + "=" * (-len(text.rstrip("=")) % 4)
    return base64.urlsafe_b64decode(padded)


_B64URL_ALPHABET: Final = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
)


def _compact_json(value: JSONValue) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


@attrs.frozen
class VerifiedJws:
    """A JWS whose signature checked out under one of the current keys.

    Attributes:
        alg: the header ``alg`` (``"ES256"`` or ``"HS256"``).
        kid: the header ``kid``.
        payload: the decoded payload JSON (``None`` when it is not JSON at all).
        payload_is_json: whether the payload bytes parsed as JSON.
    """

    alg: Alg
    kid: str
    payload: object = attrs.field(repr=False)
    payload_is_json: bool = True


def split_compact(token: str) -> tuple[dict[str, object], bytes, bytes, bytes] | None:
    """Split a compact JWS into (header, payload bytes, signing input, signature).

    Args:
        token: the candidate compact JWS.

    Returns:
        The parts, or ``None`` when the string does not parse as a compact JWS (kanidmd then
        ignores the Authorization header: the request is unauthenticated, spec §2.1).
    """
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header_obj: object = json.loads(b64url_decode(parts[0]))
        payload = b64url_decode(parts[1])
        signature = b64url_decode(parts[2])
    except ValueError:
        return None
    if not isinstance(header_obj, dict) or not isinstance(header_obj.get("alg"), str):
        return None
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
    return header_obj, payload, signing_input, signature


@attrs.define
class JwsKeys:
    """The double's signing keys: one "ES256" domain key and one HS256 domain key.

    Both are random per instance, so tokens of one ``FakeKanidm`` never validate on another.
    :meth:`revoke_es256` replaces the ES256 key (kanidmd's ``key_action_revoke``), which
    invalidates every sync token and user token signed before.
    """

    _es_key: bytes = attrs.field(factory=lambda: secrets.token_bytes(32), repr=False)
    _es_kid: str = attrs.field(factory=lambda: secrets.token_hex(16))
    _hs_key: bytes = attrs.field(factory=lambda: secrets.token_bytes(32), repr=False)
    _hs_kid: str = attrs.field(factory=lambda: secrets.token_hex(16))

    def _key(self, alg: str, kid: object) -> bytes | None:
        if alg == "ES256" and kid == self._es_kid:
            return self._es_key
        if alg == "HS256" and kid == self._hs_kid:
            return self._hs_key
        return None

    def sign(self, payload: JSONValue | bytes, *, alg: Alg = "ES256") -> str:
        """Mint a compact JWS.

        Args:
            payload: JSON to encode compactly, or raw payload bytes.
            alg: ``"ES256"`` (sync tokens, user auth tokens) or ``"HS256"`` (API tokens).

        Returns:
            The compact JWS string.
        """
        kid = self._es_kid if alg == "ES256" else self._hs_kid
        header = _compact_json({"alg": alg, "kid": kid})
        body = payload if isinstance(payload, bytes) else _compact_json(payload)
        signing_input = f"{b64url_encode(header)}.{b64url_encode(body)}"
        key = self._es_key if alg == "ES256" else self._hs_key
        sig = hmac.new(key, signing_input.encode("ascii"), _DIGESTS[alg]).digest()
        return f"{signing_input}.{b64url_encode(sig)}"

    def verify(self, token: str) -> VerifiedJws | Literal["not-jws", "bad-signature"]:
        """Check a token's signature.

        Args:
            token: the bearer value.

        Returns:
            The verified token, ``"not-jws"`` when the value is not a compact JWS at all,
            or ``"bad-signature"`` when the kid is unknown, the key was revoked, the alg is
            wrong or the signature does not match.
        """
        parts = split_compact(token)
        if parts is None:
            return "not-jws"
        header, payload, signing_input, signature = parts
        alg = header["alg"]
        kid = header.get("kid")
        if "jwk" in header or not isinstance(kid, str):
            # kanidmd stopped accepting embedded keys at domain level 6 (spec §6).
            return "bad-signature"
        key = self._key(str(alg), kid)
        if key is None or (alg != "ES256" and alg != "HS256"):
            return "bad-signature"
        expected = hmac.new(key, signing_input, _DIGESTS[alg]).digest()
        if not hmac.compare_digest(expected, signature):
            return "bad-signature"
        try:
            decoded: object = json.loads(payload)
        except ValueError:
            return VerifiedJws(alg=alg, kid=kid, payload=None, payload_is_json=False)
        return VerifiedJws(alg=alg, kid=kid, payload=decoded)

    def revoke_es256(self) -> None:
        """Replace the ES256 domain key: every token signed with the old one stops working."""
        self._es_key = secrets.token_bytes(32)
        self._es_kid = secrets.token_hex(16)


def payload_of(token: str) -> Mapping[str, object] | None:
    """Decode a token's payload without checking the signature (for tests and inspection).

    Args:
        token: a compact JWS.

    Returns:
        The payload object, or ``None`` when it is not a JWS with a JSON-object payload.
    """
    parts = split_compact(token)
    if parts is None:
        return None
    try:
        value: object = json.loads(parts[1])
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
