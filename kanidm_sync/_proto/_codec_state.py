"""The JSON codec for the cookie, the sync states and the retention modes (spec §3.2, §3.3).

Pure; no I/O. See ``_codec.py`` for the encoding and decoding rules.
"""

from __future__ import annotations

import base64

from .._exceptions import DecodeError, EncodeError
from .._types import JSONValue
from ._codec_common import (
    _COOKIE_RE,
    _as_object,
    _check_foreign,
    _Errors,
    _expected,
    _key_path,
    _parse_uuid,
    _unknown_keys,
)
from ._state import (
    REFRESH,
    ActiveState,
    DeleteOnly,
    RefreshState,
    RetainIgnore,
    RetainOnly,
    RetentionMode,
    SyncState,
)

__all__ = [
    "decode_cookie",
    "decode_retention",
    "decode_sync_state",
    "encode_cookie",
    "encode_retention",
    "encode_sync_state",
]

# --- cookie, state, retention ----------------------------------------------------------------


def encode_cookie(cookie: bytes) -> str:
    r"""Encode a cookie as URL-safe base64 without padding (spec §3.2).

    Args:
        cookie: the opaque cookie bytes.

    Returns:
        The wire text, for example ``"AQIDBA"`` for ``b"\x01\x02\x03\x04"``.
    """
    return base64.urlsafe_b64encode(cookie).rstrip(b"=").decode("ascii")


def _cookie(value: object, path: str, errs: _Errors) -> bytes | None:
    if not isinstance(value, str):
        _expected(errs, path, "a base64url string", value)
        return None
    data = value.rstrip("=")
    pads = len(value) - len(data)
    missing = -len(data) % 4
    if not _COOKIE_RE.fullmatch(data) or missing == 3 or pads > missing:
        errs.append((path, "not URL-safe base64 (alphabet A-Z a-z 0-9 - _, optional = padding)"))
        return None
    decoded = base64.urlsafe_b64decode(data + "=" * missing)
    if encode_cookie(decoded) != data:
        # Unused low bits set: the base64 crate refuses non-canonical trailing bits.
        errs.append((path, "not canonical base64: the last character has unused bits set"))
        return None
    return decoded


def decode_cookie(text: object, path: str = "$") -> bytes:
    """Decode a cookie from URL-safe base64, padded or not (spec §3.2).

    Args:
        text: the decoded JSON value.
        path: the JSON path used in error messages.

    Returns:
        The cookie bytes.

    Raises:
        DecodeError: not a string, or not URL-safe base64 (``+`` and ``/`` are refused).
    """
    errs: _Errors = []
    cookie = _cookie(text, path, errs)
    if cookie is None:
        raise DecodeError(errs)
    return cookie


def encode_sync_state(state: SyncState) -> JSONValue:
    """Encode a sync state: ``"Refresh"`` or ``{"Active":{"cookie":"…"}}`` (spec §3.2).

    Args:
        state: the state.

    Returns:
        The JSON value.

    Raises:
        EncodeError: ``state`` is not a sync state.
    """
    if isinstance(state, ActiveState):
        return {"Active": {"cookie": encode_cookie(state.cookie)}}
    if isinstance(state, RefreshState):
        return "Refresh"
    raise EncodeError(f"not a sync state: {type(state).__name__}")


def _tagged(value: object, path: str, errs: _Errors, what: str) -> tuple[str, object, str] | None:
    """Split a serde externally tagged enum into (variant, payload, payload path)."""
    if isinstance(value, str):
        return value, None, path
    obj = _as_object(value, path, errs, what)
    if obj is None:
        return None
    if len(obj) != 1:
        errs.append((path, f"expected {what}: an object with exactly one variant key"))
        return None
    ((variant, payload),) = obj.items()
    return variant, payload, _key_path(path, variant)


def _sync_state(value: object, path: str, errs: _Errors, strict: bool) -> SyncState | None:
    what = '"Refresh" or {"Active":{"cookie":…}}'
    split = _tagged(value, path, errs, what)
    if split is None:
        return None
    variant, payload, inner = split
    if variant == "Refresh":
        # serde accepts {"Refresh":null} for a unit variant (§3.1); "Refresh" is None here too.
        if payload is not None:
            errs.append((inner, "the Refresh variant carries no data"))
            return None
        return REFRESH
    if variant == "Active" and not (payload is None and isinstance(value, str)):
        obj = _as_object(payload, inner, errs, 'an object {"cookie":…}')
        if obj is None:
            return None
        if strict:
            _unknown_keys(obj, frozenset({"cookie"}), inner, errs)
        if "cookie" not in obj:
            errs.append((_key_path(inner, "cookie"), "missing required key"))
            return None
        cookie = _cookie(obj["cookie"], _key_path(inner, "cookie"), errs)
        return None if cookie is None else ActiveState(cookie)
    errs.append((path, f"expected {what}; unknown variant (variant names are case-sensitive)"))
    return None


def decode_sync_state(obj: object, path: str = "$") -> SyncState:
    """Decode a sync state (spec §3.2); ``{"Refresh":null}`` is accepted as serde does.

    Args:
        obj: the decoded JSON value.
        path: the JSON path used in error messages.

    Returns:
        :class:`~kanidm_sync.RefreshState` or :class:`~kanidm_sync.ActiveState`.

    Raises:
        DecodeError: with every problem found.
    """
    _check_foreign(obj, path)
    errs: _Errors = []
    state = _sync_state(obj, path, errs, strict=False)
    if state is None or errs:
        raise DecodeError(errs)
    return state


def encode_retention(mode: RetentionMode) -> JSONValue:
    """Encode a retention mode: ``"Ignore"``, ``{"Retain":[…]}`` or ``{"Delete":[…]}``.

    Args:
        mode: the retention mode (spec §3.3).

    Returns:
        The JSON value, UUIDs lower-case hyphenated.

    Raises:
        EncodeError: ``mode`` is not a retention mode.
    """
    if isinstance(mode, RetainIgnore):
        return "Ignore"
    if isinstance(mode, RetainOnly):
        return {"Retain": [str(u) for u in mode.ids]}
    if isinstance(mode, DeleteOnly):
        return {"Delete": [str(u) for u in mode.ids]}
    raise EncodeError(f"not a retention mode: {type(mode).__name__}")


def _retention(value: object, path: str, errs: _Errors) -> RetentionMode | None:
    what = '"Ignore", {"Retain":[…]} or {"Delete":[…]}'
    split = _tagged(value, path, errs, what)
    if split is None:
        return None
    variant, payload, inner = split
    if variant == "Ignore":
        if payload is not None:
            errs.append((inner, "the Ignore variant carries no data"))
            return None
        return RetainIgnore()
    if variant in ("Retain", "Delete") and not isinstance(value, str):
        if not isinstance(payload, list):
            _expected(errs, inner, "an array of UUID strings", payload)
            return None
        before = len(errs)
        ids = [_parse_uuid(item, f"{inner}[{i}]", errs) for i, item in enumerate(payload)]
        if len(errs) != before:
            return None
        clean = [u for u in ids if u is not None]
        return RetainOnly(clean) if variant == "Retain" else DeleteOnly(clean)
    errs.append((path, f"expected {what}; unknown variant (variant names are case-sensitive)"))
    return None


def decode_retention(obj: object, path: str = "$") -> RetentionMode:
    """Decode a retention mode (spec §3.3).

    Args:
        obj: the decoded JSON value.
        path: the JSON path used in error messages.

    Returns:
        :class:`~kanidm_sync.RetainIgnore`, :class:`~kanidm_sync.RetainOnly` or
        :class:`~kanidm_sync.DeleteOnly`.

    Raises:
        DecodeError: with every problem found.
    """
    _check_foreign(obj, path)
    errs: _Errors = []
    mode = _retention(obj, path, errs)
    if mode is None or errs:
        raise DecodeError(errs)
    return mode
