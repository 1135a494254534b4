"""Pure values of the admin API: sync-account records and what a bearer token says about itself.

Pure: no httpx, no I/O, no clock (callers pass ``now``), no logging.

* :class:`SyncAccountInfo` is read from Kanidm's v1 entry format
  (``{"attrs": {"name": ["ipasync"], ...}}``, spec §2.2 A1/A2) by :func:`decode_sync_account`.
* :class:`TokenInfo` is what :func:`inspect_token` reads from the payload of a bearer token
  (kanidm-auth.md §1.4, §4.1, sync-protocol §6) without verifying it: enough to know whether a
  user session can write *now*, so the clients can re-authenticate before a write instead of
  collecting a 403. It never holds the token itself.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Mapping
from typing import Final, Literal

import attrs

from .._exceptions import DecodeError

__all__ = [
    "PRIVILEGE_MARGIN",
    "SyncAccountInfo",
    "TokenInfo",
    "decode_string_list",
    "decode_sync_account",
    "decode_sync_account_list",
    "inspect_token",
]

PRIVILEGE_MARGIN: Final = 30
"""Seconds before the end of a read-write window at which a session counts as read-only.

The kanidm CLI uses 20 s (kanidm: proto/src/internal/token.rs ``purpose_privilege_state``);
kanidm-auth.md §2.6 recommends 30 s for an SDK, which leaves room for a slow write.
"""


@attrs.frozen(kw_only=True)
class SyncAccountInfo:
    """What Kanidm reports about one sync account (spec §2.2 A1/A2).

    Attributes:
        name: the account name (Kanidm lower-cases it).
        uuid: the account's UUID.
        description: the free-text description, or ``None``.
        has_token: whether a sync token exists (``sync_token_session`` present).
        has_cookie: whether Kanidm holds a cookie (``False`` means the account is in Refresh).
        yield_attributes: attribute names whose authority was yielded to Kanidm.
        credential_portal: the URL shown to synced users for credential changes, or ``None``.
    """

    name: str
    uuid: uuid.UUID
    description: str | None = None
    has_token: bool = False
    has_cookie: bool = False
    yield_attributes: frozenset[str] = frozenset()
    credential_portal: str | None = None


def _first(attrs_: Mapping[str, object], key: str) -> object:
    values = attrs_.get(key)
    if isinstance(values, list) and values:
        return values[0]
    return None


def decode_sync_account(obj: object, path: str = "$") -> SyncAccountInfo:
    """Read one v1 entry (``{"attrs": {...}}``) into a :class:`SyncAccountInfo`.

    Renderings follow spec §2.2: ``sync_cookie`` is the literal ``"private_binary"`` and
    ``sync_token_session`` an opaque debug dump, so only their presence is kept.

    Args:
        obj: the parsed JSON.
        path: the JSON path of ``obj``, for error messages.

    Returns:
        The typed record.

    Raises:
        DecodeError: the entry lacks a name or a valid uuid, or is not an object.
    """
    errors: list[tuple[str, str]] = []
    if not isinstance(obj, dict) or not isinstance(obj.get("attrs"), dict):
        raise DecodeError([(path, "expected a v1 entry object with an 'attrs' object")])
    a: dict[str, object] = obj["attrs"]
    for key, values in a.items():
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            errors.append((f"{path}.attrs.{key}", "expected a list of strings"))
    if errors:
        raise DecodeError(errors)
    name = _first(a, "name")
    raw_uuid = _first(a, "uuid")
    if not isinstance(name, str):
        errors.append((f"{path}.attrs.name", "missing"))
    parsed_uuid: uuid.UUID | None = None
    if not isinstance(raw_uuid, str):
        errors.append((f"{path}.attrs.uuid", "missing"))
    else:
        try:
            parsed_uuid = uuid.UUID(raw_uuid)
        except ValueError:
            errors.append((f"{path}.attrs.uuid[0]", "not a UUID"))
    if errors or parsed_uuid is None or not isinstance(name, str):
        raise DecodeError(errors)
    description = _first(a, "description")
    portal = _first(a, "sync_credential_portal")
    yields = a.get("sync_yield_authority")
    return SyncAccountInfo(
        name=name,
        uuid=parsed_uuid,
        description=description if isinstance(description, str) else None,
        has_token=bool(a.get("sync_token_session")),
        has_cookie=bool(a.get("sync_cookie")),
        yield_attributes=frozenset(v for v in yields if isinstance(v, str))
        if isinstance(yields, list)
        else frozenset(),
        credential_portal=portal if isinstance(portal, str) else None,
    )


def decode_sync_account_list(obj: object) -> list[SyncAccountInfo]:
    """Read the A1 answer (a JSON array of v1 entries).

    Args:
        obj: the parsed JSON.

    Returns:
        One record per entry, in Kanidm's order.

    Raises:
        DecodeError: the answer is not an array, or an entry is malformed.
    """
    if not isinstance(obj, list):
        raise DecodeError([("$", "expected an array of sync account entries")])
    return [decode_sync_account(item, f"$[{i}]") for i, item in enumerate(obj)]


def decode_string_list(obj: object) -> tuple[str, ...] | None:
    """Read an A7 answer: a JSON array of strings, or ``null`` when the attribute is absent.

    Args:
        obj: the parsed JSON.

    Returns:
        The strings, or ``None`` for ``null``.

    Raises:
        DecodeError: the answer is neither ``null`` nor an array of strings.
    """
    if obj is None:
        return None
    if not isinstance(obj, list) or not all(isinstance(v, str) for v in obj):
        raise DecodeError([("$", "expected null or an array of strings")])
    return tuple(v for v in obj if isinstance(v, str))


TokenKind = Literal["user", "api", "sync", "opaque"]
Purpose = Literal["readonly", "privilege_capable", "readwrite", "synchronise", "unknown"]


@attrs.frozen(kw_only=True)
class TokenInfo:
    """What a bearer token's payload says, read without verifying the signature.

    Attributes:
        kind: ``"user"`` (a session from ``/v1/auth``), ``"api"`` (a service-account API
            token), ``"sync"`` (a sync token) or ``"opaque"`` (not readable, such as a
            compact API token).
        purpose: ``"readonly"``, ``"privilege_capable"`` (a user session that must
            re-authenticate to write), ``"readwrite"``, ``"synchronise"`` or ``"unknown"``.
        spn: the user session's SPN (``admin@idm.example.com``), or ``None``.
        expiry: Unix time when the token stops working, or ``None`` when it does not say.
        rw_expiry: Unix time when a user session's read-write window ends, or ``None``.
    """

    kind: TokenKind
    purpose: Purpose
    spn: str | None = None
    expiry: int | None = None
    rw_expiry: int | None = None

    def expired(self, now: float) -> bool:
        """Whether the whole token has expired at ``now`` (Unix seconds)."""
        return self.expiry is not None and now >= self.expiry

    def can_write(self, now: float, margin: float = PRIVILEGE_MARGIN) -> bool | None:
        """Whether a write made at ``now`` will be allowed by the session's scope.

        Args:
            now: the current Unix time.
            margin: seconds of read-write window that must remain.

        Returns:
            ``True`` or ``False`` when the payload says; ``None`` when it cannot be known
            (opaque tokens: only a failed write reveals their scope, kanidm-auth.md §4.3).
        """
        if self.kind == "opaque" or self.purpose == "unknown":
            return None
        if self.expired(now):
            return False
        if self.purpose == "readwrite":
            return self.rw_expiry is None or now + margin < self.rw_expiry
        return False


_OPAQUE: Final = TokenInfo(kind="opaque", purpose="unknown")


def _b64url_json(segment: str) -> object:
    padded = segment + "=" * (-len(segment) % 4)
    try:
        raw = base64.urlsafe_b64decode(padded.encode("ascii"))
        return json.loads(raw)
    except (ValueError, binascii.Error, UnicodeError, RecursionError):
        # RecursionError: json's scanner on a hostile, deeply nested payload.
        return None


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def inspect_token(token: str) -> TokenInfo:
    """Read a bearer token's payload (the middle JWS segment) without verifying it.

    Never raises and never keeps the token: an unreadable token is ``kind="opaque"``.

    Args:
        token: a compact JWS.

    Returns:
        What the payload says (see :class:`TokenInfo`).
    """
    parts = token.split(".")
    if len(parts) != 3:
        return _OPAQUE
    payload = _b64url_json(parts[1])
    if not isinstance(payload, dict):
        return _OPAQUE
    purpose = payload.get("purpose")
    expiry = _int_or_none(payload.get("expiry"))
    if "session_id" in payload and "spn" in payload:
        # A user auth token (kanidm: proto/src/internal/token.rs UserAuthToken).
        spn = payload["spn"] if isinstance(payload["spn"], str) else None
        if purpose == "readonly":
            return TokenInfo(kind="user", purpose="readonly", spn=spn, expiry=expiry)
        if isinstance(purpose, dict) and isinstance(purpose.get("readwrite"), dict):
            rw = _int_or_none(purpose["readwrite"].get("expiry"))
            if rw is None:
                return TokenInfo(kind="user", purpose="privilege_capable", spn=spn, expiry=expiry)
            return TokenInfo(kind="user", purpose="readwrite", spn=spn, expiry=expiry, rw_expiry=rw)
        return TokenInfo(kind="user", purpose="unknown", spn=spn, expiry=expiry)
    if purpose == "synchronise":
        return TokenInfo(kind="sync", purpose="synchronise")
    if "token_id" in payload and purpose in ("readwrite", "readonly"):
        # A service-account API token: its scope holds for its whole life (§4.2).
        return TokenInfo(
            kind="api", purpose="readwrite" if purpose == "readwrite" else "readonly", expiry=expiry
        )
    return _OPAQUE
