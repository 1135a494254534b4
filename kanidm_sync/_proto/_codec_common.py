"""The JSON codec's shared pieces: wire constants, JSON paths, error collection, raw values.

Pure; no I/O. See ``_codec.py`` for the encoding and decoding rules.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Final

from .._exceptions import DecodeError
from ._entries import (
    SchemaUrn,
)

_Errors = list[tuple[str, str]]

_I64_MIN: Final = -(2**63)
_I64_MAX: Final = 2**63 - 1

_HEADER_KEYS: Final = frozenset({"schemas", "id", "externalId", "meta"})

_ACCOUNT: Final = SchemaUrn.ACCOUNT.value
_PERSON: Final = SchemaUrn.PERSON.value
_POSIXACCOUNT: Final = SchemaUrn.POSIXACCOUNT.value
_OAUTH2: Final = SchemaUrn.OAUTH2_ACCOUNT.value
_GROUP: Final = SchemaUrn.GROUP.value
_POSIXGROUP: Final = SchemaUrn.POSIXGROUP.value
_SERVICE_ACCOUNT: Final = SchemaUrn.SERVICE_ACCOUNT.value

# Shared, immutable schema arrays for the common case (no decoded order to keep):
# a tuple serialises as a JSON array and nobody can mutate it through encode_entry's result.
_PERSON_SCHEMAS: Final = {
    (False, False): (_ACCOUNT, _PERSON),
    (True, False): (_ACCOUNT, _PERSON, _POSIXACCOUNT),
    (False, True): (_ACCOUNT, _PERSON, _OAUTH2),
    (True, True): (_ACCOUNT, _PERSON, _POSIXACCOUNT, _OAUTH2),
}
_GROUP_SCHEMAS: Final = {False: (_GROUP,), True: (_GROUP, _POSIXGROUP)}
_SERVICE_SCHEMAS: Final = {
    False: (_ACCOUNT, _SERVICE_ACCOUNT),
    True: (_ACCOUNT, _SERVICE_ACCOUNT, _POSIXACCOUNT),
}

# Attribute keys per typed class and facet (wire names).
_PERSON_KEYS: Final = frozenset(
    {
        "name",
        "displayname",
        "legalname",
        "mail",
        "ssh_publickey",
        "account_valid_from",
        "account_expire",
        "account_softlock_expire",
        "password_import",
        "totp_import",
    }
)
_POSIXACCOUNT_KEYS: Final = frozenset({"gidnumber", "loginshell", "unix_password_import"})
_OAUTH2_KEYS: Final = frozenset(
    {"oauth2_account_provider", "oauth2_account_unique_user_id", "oauth2_account_unique_user_sub"}
)
_GROUP_KEYS: Final = frozenset({"name", "description", "mail", "member"})
_POSIXGROUP_KEYS: Final = frozenset({"gidnumber"})
_SERVICE_KEYS: Final = frozenset(
    {
        "name",
        "displayname",
        "description",
        "mail",
        "ssh_publickey",
        "account_valid_from",
        "account_expire",
        "account_softlock_expire",
        "password_import",
    }
)
_MODELLED: Final = (
    _PERSON_KEYS
    | _POSIXACCOUNT_KEYS
    | _OAUTH2_KEYS
    | _GROUP_KEYS
    | _POSIXGROUP_KEYS
    | _SERVICE_KEYS
)
_ITEM_KEYS: Final = {
    "mail": frozenset({"value", "primary"}),
    "ssh_publickey": frozenset({"label", "value"}),
    "member": frozenset({"external_id"}),
    "totp_import": frozenset({"external_id", "secret", "algo", "step", "digits"}),
}

_COOKIE_RE: Final = re.compile(r"[A-Za-z0-9_-]*")
_HEX = "[0-9a-fA-F]"
_HYPHENATED = f"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}"
_UUID_RE: Final = re.compile(
    rf"(?:{_HYPHENATED}|{_HEX}{{32}}|urn:uuid:{_HYPHENATED}|\{{{_HYPHENATED}\}})"
)
_IDENT_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LONE_SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89a-fA-F]")
_PY_EXPONENT: Final = re.compile(rb"[0-9]e[+-][0-9]")

_NULL_MESSAGE: Final = "null is not allowed (kanidmd answers 422); omit the key instead"


# --- small helpers -------------------------------------------------------------------------


def _key_path(path: str, key: str) -> str:
    if _IDENT_RE.fullmatch(key):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def _kind(value: object) -> str:
    """The JSON type name of a decoded value, for messages (never the value itself)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number with a fraction or exponent"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _expected(errs: _Errors, path: str, what: str, value: object) -> None:
    if value is None:
        errs.append((path, _NULL_MESSAGE))
    else:
        errs.append((path, f"expected {what}, got {_kind(value)}"))


class _DuplicateKeys(dict[str, object]):
    """A decoded JSON object that repeated a key; the decoder reports it where it is used."""

    duplicates: tuple[str, ...] = ()


def _object_pairs(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result = dict(pairs)
    if len(result) != len(pairs):
        marked = _DuplicateKeys(result)
        seen: set[str] = set()
        repeated: list[str] = []
        for key, _ in pairs:
            if key in seen:
                repeated.append(key)
            seen.add(key)
        marked.duplicates = tuple(repeated)
        return marked
    return result


def _as_object(value: object, path: str, errs: _Errors, what: str) -> dict[str, object] | None:
    if not isinstance(value, dict):
        _expected(errs, path, what, value)
        return None
    if isinstance(value, _DuplicateKeys):
        for key in dict.fromkeys(value.duplicates):
            errs.append((_key_path(path, key), "this key appears more than once in the object"))
    return value


def _unknown_keys(obj: dict[str, object], known: frozenset[str], path: str, errs: _Errors) -> None:
    for key in obj:
        if key not in known:
            errs.append((_key_path(path, key), "unknown key (refused in strict mode)"))


def _check_int(value: int, path: str, errs: _Errors) -> bool:
    if _I64_MIN <= value <= _I64_MAX:
        return True
    errs.append((path, "integer outside the signed 64-bit range kanidmd reads exactly"))
    return False


def _parse_uuid(value: object, path: str, errs: _Errors) -> uuid.UUID | None:
    if not isinstance(value, str):
        _expected(errs, path, "a UUID string", value)
        return None
    if not _UUID_RE.fullmatch(value):
        errs.append((path, "not a UUID (hyphenated, 32 hex digits, urn:uuid: or braced)"))
        return None
    return uuid.UUID(value)


def _foreign(value: object, path: str, errs: _Errors) -> None:
    """Report what :func:`json.loads` never produces but a caller's Python object may hold.

    Non-string object keys and non-finite floats; run on values that did not come from our
    own parser, before decoding, so the decoders can rely on JSON's shapes.
    """
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                errs.append((f"{path}[{key!r}]", "an object key must be a string"))
            else:
                _foreign(item, _key_path(path, key), errs)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _foreign(item, f"{path}[{i}]", errs)
    elif isinstance(value, float) and not math.isfinite(value):
        errs.append((path, "NaN and infinities are not JSON"))


def _check_foreign(value: object, path: str) -> None:
    errs: _Errors = []
    try:
        _foreign(value, path, errs)
    except RecursionError:
        errs.append((path, "nested too deeply"))
    if errs:
        raise DecodeError(errs)


# --- raw JSON values: kanidmd's generic value model (§3.5) ----------------------------------


def _is_binary(value: list[object]) -> bool:
    # An array of integers 0..255 (even empty) is kanidmd's Binary scalar.
    return all(type(v) is int and 0 <= v <= 255 for v in value)


def _check_scalar(value: object, path: str, errs: _Errors) -> bool:
    """Check a Simple value: string, bool, number, or an array of bytes."""
    if isinstance(value, str | bool):
        return True
    if isinstance(value, int):
        _check_int(value, path, errs)  # a scalar either way; out of range is reported
        return True
    if isinstance(value, float):
        return True  # the parser already refused non-finite numbers
    return isinstance(value, list) and _is_binary(value)


def _check_raw(value: object, path: str, errs: _Errors) -> None:
    """Check that a raw attribute value fits kanidmd's untagged value model (§3.5)."""
    if value is None:
        errs.append((path, _NULL_MESSAGE))
        return
    if _check_scalar(value, path, errs):
        return
    if isinstance(value, dict):
        _check_complex(value, path, errs)
        return
    if isinstance(value, list):
        if all(isinstance(v, dict) for v in value):
            for i, item in enumerate(value):
                _check_complex(item, f"{path}[{i}]", errs)
            return
        for i, item in enumerate(value):
            item_path = f"{path}[{i}]"
            if item is None:
                errs.append((item_path, _NULL_MESSAGE))
            elif not _check_scalar(item, item_path, errs):
                errs.append(
                    (item_path, "an array must hold only scalars or only objects (kanidmd: 422)")
                )
        return
    errs.append((path, f"unsupported JSON value {_kind(value)}"))  # pragma: no cover


def _check_complex(value: object, path: str, errs: _Errors) -> None:
    obj = _as_object(value, path, errs, "an object")
    if obj is None:
        return
    for key, item in obj.items():
        item_path = _key_path(path, key)
        if item is None:
            errs.append((item_path, _NULL_MESSAGE))
        elif not _check_scalar(item, item_path, errs):
            errs.append(
                (item_path, "an object inside a value may only hold scalars (kanidmd: 422)")
            )


def _surrogate_path(value: object, path: str) -> str | None:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            found = _surrogate_path(key, path) or _surrogate_path(item, _key_path(path, key))
            if found:
                return found
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        for i, item in enumerate(value):
            found = _surrogate_path(item, f"{path}[{i}]")
            if found:
                return found
    return None
