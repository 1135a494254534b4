r"""The JSON codec: the only place that knows Kanidm's wire names and encoding rules.

Owns every JSON decision between the typed values (``_state.py``, ``_entries.py``,
``_changeset.py``) and the bytes of ``POST /scim/v1/Sync``. Must not do I/O, log, read a
clock, or put a secret (password hash, TOTP secret) into an error message.

Encoding rules (what the Rust sync tools write, spec §3.1):

* serde **externally tagged** enums: a unit variant is a bare string (``"Refresh"``,
  ``"Ignore"``), a data variant a one-key object (``{"Active":{"cookie":"…"}}``,
  ``{"Retain":[…]}``) (§3.1, §3.2, §3.3).
* The cookie is URL-safe base64 **without padding** (§3.2).
* Compact JSON: separators ``,`` and ``:``, UTF-8, non-ASCII written as is; only ``"``,
  ``\`` and C0 controls are escaped, with ``\n \r \t \b \f`` and lower-case
  ``\u00xx`` (serde_json and :func:`json.dumps` agree on this, §3.1).
* Key order: the request is ``from_state, to_state, entries, retain`` (§3.4); an entry is
  its header ``schemas, id, externalId`` followed by every attribute key sorted byte-wise
  (serde's ``BTreeMap``); objects inside multi-valued attributes (mail, ssh key, member,
  TOTP items) and inside raw values also have sorted keys (§3.1, §3.5).
* ``externalId`` (camelCase) in the header, but ``external_id`` inside member and TOTP
  items (§3.5 casing trap).
* ``None`` is omitted, never written as ``null``; empty multi-valued typed attributes are
  omitted (an empty array parses as Binary and kanidmd answers 400, §3.5).
* Integers are JSON integers (a ``bool`` is not an integer); UUIDs are lower-case
  hyphenated (§3.1).
* Raw values (``extra`` of typed entries, ``GenericEntry.attributes``) are sent as given,
  with nested object keys sorted. A top-level ``None`` there is omitted; a nested ``None``,
  a non-finite float, an integer outside the signed 64-bit range (kanidmd would read a
  lossy float) or a non-JSON object raises :class:`~kanidm_sync.EncodeError`. An
  empty array there is sent as is: the user asked for it, and the validator flags it.
* Floats (only possible in raw values; kanidmd has no float attribute) are written as
  serde_json's ``ryu`` writes them (``1e16``, ``1e-7``, ``0.00001``), not as Python does.
* A string with a lone surrogate has no UTF-8 form: :class:`~kanidm_sync.EncodeError`.

Decoding rules (what kanidmd would parse; every problem is collected and raised as one
:class:`~kanidm_sync.DecodeError` with JSON paths such as ``$.entries[3].mail[0].value``):

* Not JSON, invalid UTF-8, a BOM, ``NaN``/``Infinity``, a number out of the f64 range, a
  lone surrogate escape, nesting too deep for Python, an integer of more digits than
  Python converts: all a :class:`~kanidm_sync.DecodeError` (serde_json refuses them too).
* **``null`` is refused everywhere** (kanidmd answers 422 for a ``null`` attribute,
  §3.5), except where serde accepts it: the spelling of a unit variant,
  ``{"Refresh":null}`` / ``{"Ignore":null}`` (§3.1), and the optional header keys
  ``externalId`` and ``meta`` (serde ``Option`` fields), where it means "absent"
  [inferred from serde's behaviour; the spec does not say].
* Integers outside the signed 64-bit range are refused: kanidmd would read them as a
  lossy float (§3.5 value model), so no faithful value exists.
* An object with a repeated key is refused: serde refuses repeated struct fields, and for
  maps the meaning would be ambiguous [inferred; the spec does not say].
* The cookie accepts padded or unpadded URL-safe base64; ``+``/``/``, misplaced or excess
  padding and non-canonical trailing bits are refused (serde_with and the base64 crate's
  defaults, §3.2; the trailing-bits rule is inferred from the crate's defaults). UUIDs
  accept what Rust's ``uuid`` crate parses: hyphenated, 32-hex simple, ``urn:uuid:`` and
  braced, any hex case (§3.1); they re-encode lower-case.
* Tolerant by default: unknown keys of the request and of the state objects are ignored
  (kanidmd ignores them, §3.4), and so is an entry's ``meta`` header (kanidmd ignores it;
  this is the one thing decoding drops). ``strict=True`` refuses all of these, and also
  unknown keys inside mail, ssh key, member and TOTP items.
* Attribute values must fit kanidmd's value model (§3.5): a scalar (string, bool, number,
  or an array of integers 0-255, the "Binary" form), an object of scalars, an array of
  scalars, or an array of objects of scalars. Anything else (nested objects, mixed
  arrays) is refused, as kanidmd answers 422. An empty array there is the Binary form:
  it is kept as is in ``extra`` or a GenericEntry, and the validator reports it (kanidmd
  refuses it for every multi-valued attribute, §3.5).
* **Typing** by the set of schema URNs (§3.6): {account, person} (+posixaccount,
  +oauth2_account) is a :class:`~kanidm_sync.Person` (the POSIX facet present iff the
  posixaccount URN is, the OAuth2 facet iff oauth2_account is); {group} (+posixgroup) a
  :class:`~kanidm_sync.Group`; {account, service_account} (+posixaccount) a
  :class:`~kanidm_sync.ServiceAccount`; anything else (or a URN listed twice) a
  :class:`~kanidm_sync.GenericEntry`. Attributes a typed class does not model go to
  ``extra``; the schema order is kept in ``schema_order`` so the bytes round-trip.
* A typed entry missing a required value (``name``, ``displayname``; the OAuth2 facet's
  provider and user id) or holding a value of the wrong JSON type is a DecodeError.
* But an entry whose content the typed class cannot represent faithfully decodes as a
  :class:`~kanidm_sync.GenericEntry`, so nothing is lost and the validator (or kanidmd)
  reports it: an attribute another typed class or facet models (``gidnumber`` without
  the posixaccount URN, ``member`` on a person), a differently cased spelling of a
  modelled attribute (``Name``), an explicit empty array for a modelled multi-valued
  attribute (``"mail": []``), or (tolerant mode) unknown keys in a mail, ssh key, member
  or TOTP item (``{"type":"work", …}``, which kanidmd ignores).
* Hence ``encode(decode(x))`` equals serde's normalisation of ``x`` for every ``x`` that
  decodes: same values, compact, ordered, cookie unpadded, UUIDs canonical, no ``meta``.
"""

from __future__ import annotations

import base64
import json
import math
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Final

from .._exceptions import DecodeError, EncodeError
from .._types import JSONObject, JSONValue
from ._changeset import ChangeSet
from ._entries import (
    Entry,
    GenericEntry,
    Group,
    Mail,
    OAuth2Account,
    Person,
    PosixAccount,
    PosixGroup,
    SchemaUrn,
    ServiceAccount,
    SshPublicKey,
    Totp,
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
    "decode_changeset",
    "decode_changeset_json",
    "decode_cookie",
    "decode_entry",
    "decode_retention",
    "decode_sync_state",
    "dumps",
    "encode_changeset",
    "encode_changeset_json",
    "encode_cookie",
    "encode_entry",
    "encode_retention",
    "encode_sync_state",
]

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


# --- encoding entries --------------------------------------------------------------------------

# Bumped whenever a raw value holds a float Python and serde_json write differently; the
# changeset encoder compares it before and after to pick the exact (slower) writer. A race
# between threads can only cause an unneeded slow path, never a wrong output.
_tricky_floats: list[int] = [0]


def _plain(value: object, path: str) -> JSONValue:
    """Copy a raw value into plain JSON (dicts with sorted keys, lists), checking it."""
    if isinstance(value, str | bool):
        return value
    if isinstance(value, int):
        if not _I64_MIN <= value <= _I64_MAX:
            # kanidmd would read it as a lossy float (§3.5): not expressible.
            raise EncodeError(f"{path}: integer outside the signed 64-bit range")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise EncodeError(f"{path}: {value!r} has no JSON form")
        if "e" in repr(value):
            _tricky_floats[0] += 1
        return value
    if isinstance(value, Mapping):
        keys = list(value)
        if not all(isinstance(key, str) for key in keys):
            raise EncodeError(f"{path}: an object key must be a str")
        out: JSONObject = {}
        for key in sorted(keys):
            item = value[key]
            if item is None:
                raise EncodeError(f"{_key_path(path, key)}: null is never sent to kanidmd")
            out[key] = _plain(item, _key_path(path, key))
        return out
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        items: list[JSONValue] = []
        for i, item in enumerate(value):
            if item is None:
                raise EncodeError(f"{path}[{i}]: null is never sent to kanidmd")
            items.append(_plain(item, f"{path}[{i}]"))
        return items
    if value is None:
        raise EncodeError(f"{path}: null is never sent to kanidmd")
    raise EncodeError(f"{path}: a {type(value).__name__} has no JSON form")


def _with_raw(
    entry: JSONObject, raw: Mapping[str, JSONValue], header: int, path: str
) -> JSONObject:
    """Merge raw attributes into an encoded entry, re-sorting the attribute keys."""
    items = list(entry.items())
    attrs_part = items[header:]
    for key, value in raw.items():
        if value is None:
            continue
        if not isinstance(key, str):
            raise EncodeError(f"{path}: an attribute name must be a str")
        if key in _HEADER_KEYS or key in entry:
            raise EncodeError(
                f"{_key_path(path, key)}: the attribute is already sent by a typed field "
                "or the header; set it there, not in extra"
            )
        attrs_part.append((key, _plain(value, _key_path(path, key))))
    attrs_part.sort(key=lambda kv: kv[0])
    return dict(items[:header] + attrs_part)


def _entry_where(entry: Entry) -> str:
    return f"entry {entry.id}"


def _encode_mail(mails: tuple[Mail, ...]) -> list[JSONObject]:
    return [
        {"value": m.value} if m.primary is None else {"primary": m.primary, "value": m.value}
        for m in mails
    ]


def _encode_totps(totps: tuple[Totp, ...], where: str) -> list[JSONObject]:
    out: list[JSONObject] = []
    for t in totps:
        if isinstance(t.step, bool) or isinstance(t.digits, bool):
            raise EncodeError(f"{where}: totp_import {t.external_id!r}: step/digits must be int")
        out.append(
            {
                "algo": t.algo,
                "digits": t.digits,
                "external_id": t.external_id,
                "secret": t.secret,
                "step": t.step,
            }
        )
    return out


def _encode_person(p: Person) -> JSONObject:
    posix = p.posix
    oauth2 = p.oauth2
    d: JSONObject = {
        "schemas": p.schemas
        if p.schema_order
        else _PERSON_SCHEMAS[(posix is not None, oauth2 is not None)],
        "id": str(p.id),
    }
    header = 2
    if p.external_id is not None:
        d["externalId"] = p.external_id
        header = 3
    # Attribute keys below are written in byte-sorted order (BTreeMap), no sort at run time.
    if p.account_expire is not None:
        d["account_expire"] = p.account_expire
    if p.account_softlock_expire is not None:
        d["account_softlock_expire"] = p.account_softlock_expire
    if p.account_valid_from is not None:
        d["account_valid_from"] = p.account_valid_from
    d["displayname"] = p.displayname
    if posix is not None and posix.gidnumber is not None:
        d["gidnumber"] = posix.gidnumber
    if p.legalname is not None:
        d["legalname"] = p.legalname
    if posix is not None and posix.loginshell is not None:
        d["loginshell"] = posix.loginshell
    if p.mail:
        d["mail"] = _encode_mail(p.mail)
    d["name"] = p.name
    if oauth2 is not None:
        d["oauth2_account_provider"] = oauth2.provider
        d["oauth2_account_unique_user_id"] = oauth2.unique_user_id
        if oauth2.unique_user_sub is not None:
            d["oauth2_account_unique_user_sub"] = oauth2.unique_user_sub
    if p.password_import is not None:
        d["password_import"] = p.password_import
    if p.ssh_publickey:
        d["ssh_publickey"] = [{"label": k.label, "value": k.value} for k in p.ssh_publickey]
    if p.totp_import:
        d["totp_import"] = _encode_totps(p.totp_import, _entry_where(p))
    if posix is not None and posix.unix_password_import is not None:
        d["unix_password_import"] = posix.unix_password_import
    if p.extra:
        return _with_raw(d, p.extra, header, _entry_where(p))
    return d


def _encode_group(g: Group) -> JSONObject:
    posix = g.posix
    d: JSONObject = {
        "schemas": g.schemas if g.schema_order else _GROUP_SCHEMAS[posix is not None],
        "id": str(g.id),
    }
    header = 2
    if g.external_id is not None:
        d["externalId"] = g.external_id
        header = 3
    if g.description is not None:
        d["description"] = g.description
    if posix is not None and posix.gidnumber is not None:
        d["gidnumber"] = posix.gidnumber
    if g.mail:
        d["mail"] = _encode_mail(g.mail)
    if g.member:
        d["member"] = [{"external_id": m} for m in g.member]
    d["name"] = g.name
    if g.extra:
        return _with_raw(d, g.extra, header, _entry_where(g))
    return d


def _encode_service_account(s: ServiceAccount) -> JSONObject:
    posix = s.posix
    d: JSONObject = {
        "schemas": s.schemas if s.schema_order else _SERVICE_SCHEMAS[posix is not None],
        "id": str(s.id),
    }
    header = 2
    if s.external_id is not None:
        d["externalId"] = s.external_id
        header = 3
    if s.account_expire is not None:
        d["account_expire"] = s.account_expire
    if s.account_softlock_expire is not None:
        d["account_softlock_expire"] = s.account_softlock_expire
    if s.account_valid_from is not None:
        d["account_valid_from"] = s.account_valid_from
    if s.description is not None:
        d["description"] = s.description
    d["displayname"] = s.displayname
    if posix is not None and posix.gidnumber is not None:
        d["gidnumber"] = posix.gidnumber
    if posix is not None and posix.loginshell is not None:
        d["loginshell"] = posix.loginshell
    if s.mail:
        d["mail"] = _encode_mail(s.mail)
    d["name"] = s.name
    if s.password_import is not None:
        d["password_import"] = s.password_import
    if s.ssh_publickey:
        d["ssh_publickey"] = [{"label": k.label, "value": k.value} for k in s.ssh_publickey]
    if posix is not None and posix.unix_password_import is not None:
        d["unix_password_import"] = posix.unix_password_import
    if s.extra:
        return _with_raw(d, s.extra, header, _entry_where(s))
    return d


def _encode_generic(e: GenericEntry) -> JSONObject:
    d: JSONObject = {"schemas": e.schemas, "id": str(e.id)}
    header = 2
    if e.external_id is not None:
        d["externalId"] = e.external_id
        header = 3
    return _with_raw(d, e.attributes, header, _entry_where(e))


_ENTRY_ENCODERS: Final[dict[type, Callable[[Entry], JSONObject]]] = {
    Person: _encode_person,  # type: ignore[dict-item]  # keyed by the exact class
    Group: _encode_group,  # type: ignore[dict-item]  # keyed by the exact class
    ServiceAccount: _encode_service_account,  # type: ignore[dict-item]  # exact class
    GenericEntry: _encode_generic,  # type: ignore[dict-item]  # keyed by the exact class
}


def encode_entry(entry: Entry) -> JSONObject:
    """Encode one entry as kanidmd's ``ScimEntry`` (spec §3.5-§3.8).

    Args:
        entry: a :class:`~kanidm_sync.Person`, :class:`~kanidm_sync.Group`,
            :class:`~kanidm_sync.ServiceAccount` or :class:`~kanidm_sync.GenericEntry`.

    Returns:
        The JSON object in wire key order (header, then attributes sorted byte-wise).

    Raises:
        EncodeError: a raw value has no JSON form, or an ``extra`` key repeats a key a
            typed field or the header already sends.
    """
    encoder = _ENTRY_ENCODERS.get(type(entry))
    if encoder is None:
        for cls, candidate in _ENTRY_ENCODERS.items():
            if isinstance(entry, cls):
                return candidate(entry)
        raise EncodeError(f"not an entry: {type(entry).__name__}")
    return encoder(entry)


def encode_changeset(cs: ChangeSet) -> JSONObject:
    """Encode a ChangeSet as kanidmd's ``ScimSyncRequest`` (spec §3.4).

    Args:
        cs: the ChangeSet.

    Returns:
        ``{"from_state", "to_state", "entries", "retain"}`` in that key order.

    Raises:
        EncodeError: a value has no JSON form.
    """
    encoders = _ENTRY_ENCODERS
    entries: list[JSONValue] = []
    append = entries.append
    for entry in cs.entries:
        encoder = encoders.get(type(entry))
        append(encoder(entry) if encoder is not None else encode_entry(entry))
    return {
        "from_state": encode_sync_state(cs.from_state),
        "to_state": encode_sync_state(cs.to_state),
        "entries": entries,
        "retain": encode_retention(cs.retain),
    }


# --- writing bytes -------------------------------------------------------------------------------


def _ryu(value: float) -> str:
    """Format a finite float the way serde_json (ryu) does."""
    text = repr(value)
    if "e" not in text:
        return text
    mantissa, exponent_text = text.split("e")
    exponent = int(exponent_text)
    if exponent == -5:
        # ryu keeps plain notation down to 1e-5 (Python switches at 1e-5 already).
        sign = "-" if mantissa.startswith("-") else ""
        digits = mantissa.lstrip("-").replace(".", "")
        return f"{sign}0.0000{digits}"
    return f"{mantissa}e{exponent}"


def _write_exact(value: object, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        out.append(_ryu(value))
    elif isinstance(value, Mapping):
        out.append("{")
        first = True
        for key, item in value.items():
            if not first:
                out.append(",")
            first = False
            out.append(json.dumps(key, ensure_ascii=False))
            out.append(":")
            _write_exact(item, out)
        out.append("}")
    else:
        assert isinstance(value, Sequence)  # only JSON values reach here
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _write_exact(item, out)
        out.append("]")


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


def _write(value: JSONValue, exact_floats: bool) -> bytes:
    try:
        if exact_floats:
            parts: list[str] = []
            _write_exact(value, parts)
            text = "".join(parts)
        else:
            text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (ValueError, TypeError, RecursionError) as exc:
        # ValueError: NaN/Infinity, or an int too long for str(); TypeError: not JSON.
        raise EncodeError(f"the value has no JSON form ({type(exc).__name__})") from None
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        where = _surrogate_path(value, "$") or "$"
        # Never show the string: it may be a secret.
        raise EncodeError(
            f"{where}: a string holds a lone surrogate, which has no UTF-8 form"
        ) from None


def dumps(value: JSONValue) -> bytes:
    """Write a JSON value as serde_json would: compact, UTF-8, minimal escaping.

    Object keys are written in the order given (the encoders already order them).

    Args:
        value: the JSON value.

    Returns:
        The UTF-8 bytes.

    Raises:
        EncodeError: a string with a lone surrogate, a non-finite float, a non-JSON value.
    """
    data = _write(value, exact_floats=False)
    # Python and serde_json only disagree on floats in exponent form; look closer if one
    # may be present (the pattern can also match inside a string: then the slow path is
    # merely unneeded, never wrong).
    if _PY_EXPONENT.search(data):
        return _write(value, exact_floats=True)
    return data


def encode_changeset_json(cs: ChangeSet) -> bytes:
    """Encode a ChangeSet to the exact bytes the Rust sync tools would send.

    Args:
        cs: the ChangeSet.

    Returns:
        Compact UTF-8 JSON bytes (backs :meth:`~kanidm_sync.ChangeSet.to_json`).

    Raises:
        EncodeError: a value has no JSON form.
    """
    before = _tricky_floats[0]
    value = encode_changeset(cs)
    return _write(value, exact_floats=_tricky_floats[0] != before)


# --- decoding entries ----------------------------------------------------------------------------


class _Fields:
    """Typed field readers over one entry's attributes, collecting errors."""

    __slots__ = ("attrs", "errs", "path", "strict")

    def __init__(self, attrs: dict[str, object], path: str, errs: _Errors, strict: bool) -> None:
        self.attrs = attrs
        self.path = path
        self.errs = errs
        self.strict = strict

    def opt_str(self, key: str) -> str | None:
        value = self.attrs.get(key)
        if value is None and key not in self.attrs:
            return None
        if isinstance(value, str):
            return value
        _expected(self.errs, _key_path(self.path, key), "a string", value)
        return None

    def req_str(self, key: str, why: str = "") -> str | None:
        if key not in self.attrs:
            self.errs.append((_key_path(self.path, key), f"missing required attribute{why}"))
            return None
        return self.opt_str(key)

    def opt_int(self, key: str) -> int | None:
        value = self.attrs.get(key)
        if value is None and key not in self.attrs:
            return None
        return self._int(value, _key_path(self.path, key))

    def _int(self, value: object, path: str) -> int | None:
        if isinstance(value, int) and not isinstance(value, bool):
            return value if _check_int(value, path, self.errs) else None
        _expected(self.errs, path, "an integer", value)
        return None

    def items(self, key: str) -> list[tuple[str, dict[str, object]]]:
        """The objects of a multi-valued attribute, each with its path."""
        value = self.attrs.get(key)
        if value is None and key not in self.attrs:
            return []
        path = _key_path(self.path, key)
        if not isinstance(value, list):
            _expected(self.errs, path, "an array of objects", value)
            return []
        out = []
        for i, item in enumerate(value):
            obj = _as_object(item, f"{path}[{i}]", self.errs, "an object")
            if obj is not None:
                out.append((f"{path}[{i}]", obj))
        return out

    def item_str(self, obj: dict[str, object], key: str, path: str) -> str | None:
        if key not in obj:
            self.errs.append((_key_path(path, key), "missing required key"))
            return None
        value = obj[key]
        if isinstance(value, str):
            return value
        _expected(self.errs, _key_path(path, key), "a string", value)
        return None

    def item_int(self, obj: dict[str, object], key: str, path: str) -> int | None:
        if key not in obj:
            self.errs.append((_key_path(path, key), "missing required key"))
            return None
        return self._int(obj[key], _key_path(path, key))

    def mails(self) -> list[Mail]:
        out = []
        for path, obj in self.items("mail"):
            value = self.item_str(obj, "value", path)
            primary = obj.get("primary")
            if "primary" in obj and not isinstance(primary, bool):
                _expected(self.errs, _key_path(path, "primary"), "a boolean", primary)
                continue
            if value is not None:
                out.append(Mail(value, primary if isinstance(primary, bool) else None))
        return out

    def ssh_keys(self) -> list[SshPublicKey]:
        out = []
        for path, obj in self.items("ssh_publickey"):
            label = self.item_str(obj, "label", path)
            value = self.item_str(obj, "value", path)
            if label is not None and value is not None:
                out.append(SshPublicKey(label, value))
        return out

    def members(self) -> list[str]:
        out = []
        for path, obj in self.items("member"):
            ref = self.item_str(obj, "external_id", path)
            if ref is not None:
                out.append(ref)
        return out

    def totps(self) -> list[Totp]:
        out = []
        for path, obj in self.items("totp_import"):
            external_id = self.item_str(obj, "external_id", path)
            secret = self.item_str(obj, "secret", path)
            algo = self.item_str(obj, "algo", path)
            step = self.item_int(obj, "step", path)
            digits = self.item_int(obj, "digits", path)
            if (
                external_id is not None
                and secret is not None
                and algo is not None
                and step is not None
                and digits is not None
            ):
                out.append(
                    Totp(
                        external_id=external_id, secret=secret, algo=algo, step=step, digits=digits
                    )
                )
        return out

    def extra(self, modelled: frozenset[str]) -> dict[str, JSONValue]:
        out: dict[str, JSONValue] = {}
        for key, value in self.attrs.items():
            if key not in modelled:
                before = len(self.errs)
                _check_raw(value, _key_path(self.path, key), self.errs)
                if len(self.errs) == before:
                    out[key] = value  # type: ignore[assignment]  # checked by _check_raw
        return out


def _representable(
    attrs: dict[str, object], allowed: frozenset[str], path: str, errs: _Errors, strict: bool
) -> bool:
    """Whether a typed class can hold these attributes without losing anything."""
    for key, value in attrs.items():
        if key in _MODELLED:
            if key not in allowed:
                return False  # another class's or facet's attribute (member on a person)
        elif key.lower() in _MODELLED:
            return False  # "Name" next to, or instead of, "name": kanidmd merges them
        if key in _ITEM_KEYS and key in allowed and isinstance(value, list):
            if not value:
                return False  # an explicit empty array: typed fields would omit it
            known = _ITEM_KEYS[key]
            for i, item in enumerate(value):
                if isinstance(item, dict) and not item.keys() <= known:
                    if not strict:
                        return False  # keys kanidmd ignores ("type" in a mail): keep them
                    _unknown_keys(item, known, f"{_key_path(path, key)}[{i}]", errs)
    return True


def _classify(schemas: list[str]) -> str:
    urns = set(schemas)
    if len(urns) != len(schemas):
        return "generic"
    if _ACCOUNT in urns and _PERSON in urns and urns <= {_ACCOUNT, _PERSON, _POSIXACCOUNT, _OAUTH2}:
        return "person"
    if _GROUP in urns and urns <= {_GROUP, _POSIXGROUP}:
        return "group"
    if (
        _ACCOUNT in urns
        and _SERVICE_ACCOUNT in urns
        and urns
        <= {
            _ACCOUNT,
            _SERVICE_ACCOUNT,
            _POSIXACCOUNT,
        }
    ):
        return "service_account"
    return "generic"


def _allowed_keys(kind: str, urns: list[str]) -> frozenset[str]:
    if kind == "person":
        keys = _PERSON_KEYS
        if _POSIXACCOUNT in urns:
            keys |= _POSIXACCOUNT_KEYS
        if _OAUTH2 in urns:
            keys |= _OAUTH2_KEYS
        return keys
    if kind == "group":
        return _GROUP_KEYS | _POSIXGROUP_KEYS if _POSIXGROUP in urns else _GROUP_KEYS
    if kind == "service_account":
        return _SERVICE_KEYS | _POSIXACCOUNT_KEYS if _POSIXACCOUNT in urns else _SERVICE_KEYS
    return frozenset()


def _posix_account(f: _Fields) -> PosixAccount:
    return PosixAccount(
        gidnumber=f.opt_int("gidnumber"),
        loginshell=f.opt_str("loginshell"),
        unix_password_import=f.opt_str("unix_password_import"),
    )


def _account_fields(f: _Fields) -> dict[str, object]:
    # The fields persons and service accounts share, read in the order errors are reported.
    return {
        "mail": f.mails(),
        "ssh_publickey": f.ssh_keys(),
        "account_valid_from": f.opt_str("account_valid_from"),
        "account_expire": f.opt_str("account_expire"),
        "account_softlock_expire": f.opt_str("account_softlock_expire"),
        "password_import": f.opt_str("password_import"),
    }


def _typed(
    kind: str,
    urns: list[str],
    entry_id: uuid.UUID,
    external_id: str | None,
    f: _Fields,
    allowed: frozenset[str],
) -> Entry | None:
    errs = f.errs
    before = len(errs)
    if kind == "person":
        name = f.req_str("name")
        displayname = f.req_str("displayname")
        posix = _posix_account(f) if _POSIXACCOUNT in urns else None
        oauth2_parts = None
        if _OAUTH2 in urns:
            why = " (the oauth2_account schema needs it)"
            oauth2_parts = (
                f.req_str("oauth2_account_provider", why),
                f.req_str("oauth2_account_unique_user_id", why),
                f.opt_str("oauth2_account_unique_user_sub"),
            )
        fields = {
            "legalname": f.opt_str("legalname"),
            **_account_fields(f),
            "totp_import": f.totps(),
        }
        extra = f.extra(allowed)
        if len(errs) != before or name is None or displayname is None:
            return None
        oauth2 = None
        if oauth2_parts is not None:
            provider, user_id, sub = oauth2_parts
            if provider is None or user_id is None:
                return None
            oauth2 = OAuth2Account(provider=provider, unique_user_id=user_id, unique_user_sub=sub)
        return Person(
            id=entry_id,
            external_id=external_id,
            name=name,
            displayname=displayname,
            posix=posix,
            oauth2=oauth2,
            extra=extra,
            schema_order=urns,
            **fields,  # type: ignore[arg-type]  # each value read with the matching type
        )
    if kind == "group":
        name = f.req_str("name")
        description = f.opt_str("description")
        mail = f.mails()
        member = f.members()
        group_posix = PosixGroup(gidnumber=f.opt_int("gidnumber")) if _POSIXGROUP in urns else None
        extra = f.extra(allowed)
        if len(errs) != before or name is None:
            return None
        return Group(
            id=entry_id,
            external_id=external_id,
            name=name,
            description=description,
            mail=mail,
            member=member,
            posix=group_posix,
            extra=extra,
            schema_order=urns,
        )
    name = f.req_str("name")
    displayname = f.req_str("displayname")
    posix = _posix_account(f) if _POSIXACCOUNT in urns else None
    fields = {"description": f.opt_str("description"), **_account_fields(f)}
    extra = f.extra(allowed)
    if len(errs) != before or name is None or displayname is None:
        return None
    return ServiceAccount(
        id=entry_id,
        external_id=external_id,
        name=name,
        displayname=displayname,
        posix=posix,
        extra=extra,
        schema_order=urns,
        **fields,  # type: ignore[arg-type]  # each value read with the matching type
    )


def _entry(value: object, path: str, errs: _Errors, strict: bool) -> Entry | None:
    obj = _as_object(value, path, errs, "an entry object")
    if obj is None:
        return None
    before = len(errs)

    schemas: list[str] = []
    raw_schemas = obj.get("schemas")
    if "schemas" not in obj:
        errs.append((_key_path(path, "schemas"), "missing required key"))
    elif not isinstance(raw_schemas, list):
        _expected(errs, _key_path(path, "schemas"), "an array of schema URN strings", raw_schemas)
    else:
        for i, urn in enumerate(raw_schemas):
            if isinstance(urn, str):
                schemas.append(urn)
            else:
                _expected(errs, f"{path}.schemas[{i}]", "a schema URN string", urn)

    entry_id = None
    if "id" not in obj:
        errs.append((_key_path(path, "id"), "missing required key"))
    else:
        entry_id = _parse_uuid(obj["id"], _key_path(path, "id"), errs)

    # externalId and meta are serde Options: null reads as absent (and is re-encoded absent).
    external_id = None
    raw_external = obj.get("externalId")
    if isinstance(raw_external, str):
        external_id = raw_external
    elif raw_external is not None:
        _expected(errs, _key_path(path, "externalId"), "a string", raw_external)

    if obj.get("meta") is not None and strict:
        # kanidmd ignores meta; tolerant decoding drops it, strict decoding refuses it.
        errs.append((_key_path(path, "meta"), "kanidmd ignores meta; do not send it"))

    attrs = {k: v for k, v in obj.items() if k not in _HEADER_KEYS}
    fields = _Fields(attrs, path, errs, strict)
    kind = _classify(schemas)
    if kind != "generic":
        allowed = _allowed_keys(kind, schemas)
        if _representable(attrs, allowed, path, errs, strict):
            if entry_id is None:
                # Still check the attributes, so one pass reports every problem.
                _typed(kind, schemas, uuid.UUID(int=0), external_id, fields, allowed)
                return None
            typed = _typed(kind, schemas, entry_id, external_id, fields, allowed)
            return typed if len(errs) == before else None
    raw = fields.extra(frozenset())
    if len(errs) != before or entry_id is None:
        return None
    return GenericEntry(id=entry_id, external_id=external_id, schemas=schemas, attributes=raw)


def decode_entry(obj: object, path: str = "$", *, strict: bool = False) -> Entry:
    """Decode one ``ScimEntry`` into a typed entry (spec §3.5-§3.8).

    Args:
        obj: the decoded JSON value.
        path: the JSON path used in error messages.
        strict: refuse unknown keys (``meta``, unknown keys in mail, ssh key, member and
            TOTP items) instead of tolerating them.

    Returns:
        A :class:`~kanidm_sync.Person`, :class:`~kanidm_sync.Group`,
        :class:`~kanidm_sync.ServiceAccount` or :class:`~kanidm_sync.GenericEntry`.

    Raises:
        DecodeError: with every problem found.
    """
    _check_foreign(obj, path)
    errs: _Errors = []
    entry = _entry(obj, path, errs, strict)
    if entry is None or errs:
        raise DecodeError(errs)
    return entry


_REQUEST_KEYS: Final = ("from_state", "to_state", "entries", "retain")


def decode_changeset(obj: object, *, strict: bool = False) -> ChangeSet:
    """Decode a ``ScimSyncRequest`` into a :class:`~kanidm_sync.ChangeSet` (spec §3.4).

    Args:
        obj: the decoded JSON value.
        strict: refuse unknown keys instead of ignoring them.

    Returns:
        The ChangeSet with typed entries.

    Raises:
        DecodeError: with every problem found and its JSON path.
    """
    _check_foreign(obj, "$")
    return _decode_changeset(obj, strict)


def _decode_changeset(obj: object, strict: bool) -> ChangeSet:
    errs: _Errors = []
    top = _as_object(obj, "$", errs, "a sync request object")
    if top is None:
        raise DecodeError(errs)
    for key in _REQUEST_KEYS:
        if key not in top:
            errs.append((_key_path("$", key), "missing required key"))
    if strict:
        _unknown_keys(top, frozenset(_REQUEST_KEYS), "$", errs)

    from_state = (
        _sync_state(top["from_state"], "$.from_state", errs, strict)
        if "from_state" in top
        else None
    )
    to_state = (
        _sync_state(top["to_state"], "$.to_state", errs, strict) if "to_state" in top else None
    )
    retain = _retention(top["retain"], "$.retain", errs) if "retain" in top else None

    entries: list[Entry] = []
    if "entries" in top:
        raw_entries = top["entries"]
        if isinstance(raw_entries, list):
            for i, raw in enumerate(raw_entries):
                entry = _entry(raw, f"$.entries[{i}]", errs, strict)
                if entry is not None:
                    entries.append(entry)
        else:
            _expected(errs, "$.entries", "an array of entries", raw_entries)

    if errs or from_state is None or to_state is None or retain is None:
        raise DecodeError(errs)
    return ChangeSet(from_state=from_state, to_state=to_state, entries=entries, retain=retain)


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON (serde_json refuses it)")


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number out of range (serde_json refuses it)")
    return value


def _loads(text: str, *, literal_surrogates: bool = False) -> object:
    try:
        value = json.loads(
            text,
            object_pairs_hook=_object_pairs,
            parse_constant=_refuse_constant,
            parse_float=_parse_float,
        )
    except json.JSONDecodeError as exc:
        raise DecodeError(
            [("$", f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")]
        ) from None
    except ValueError as exc:
        # The int-string conversion limit, NaN/Infinity, an out-of-range float.
        raise DecodeError([("$", f"not acceptable JSON: {exc}")]) from None
    except RecursionError:
        raise DecodeError([("$", "JSON nested too deeply")]) from None
    if literal_surrogates or _LONE_SURROGATE_ESCAPE.search(text):
        # serde_json refuses escapes of lone surrogates; a str given to us may even hold
        # them literally. Neither is Unicode text, and neither could be encoded again.
        where = _surrogate_path(value, "$")
        if where is not None:
            raise DecodeError([(where, "a string holds a lone surrogate (not Unicode)")])
    return value


def decode_changeset_json(data: str | bytes, *, strict: bool = False) -> ChangeSet:
    """Decode a ChangeSet from JSON text or UTF-8 bytes (backs ``ChangeSet.from_json``).

    Args:
        data: the JSON document.
        strict: refuse unknown keys instead of ignoring them.

    Returns:
        The ChangeSet with typed entries.

    Raises:
        DecodeError: for anything that is not a valid sync request, never another error.
    """
    literal_surrogates = False
    if isinstance(data, bytes | bytearray | memoryview):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError([("$", f"not UTF-8 (byte offset {exc.start})")]) from None
    elif isinstance(data, str):
        text = data
        try:
            text.encode("utf-8")
            literal_surrogates = False
        except UnicodeEncodeError:
            literal_surrogates = True
    else:
        raise DecodeError([("$", f"expected JSON text or bytes, got {type(data).__name__}")])
    try:
        # Our own parser's output needs no foreign-object check.
        return _decode_changeset(_loads(text, literal_surrogates=literal_surrogates), strict)
    except RecursionError:
        raise DecodeError([("$", "JSON nested too deeply")]) from None
