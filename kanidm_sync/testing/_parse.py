"""HTTP-layer parsing of a ``POST /scim/v1/Sync`` body, as kanidmd's serde types do it.

Owns: :func:`parse_sync_request` (spec §4.0 step 3) and the generic SCIM value model of
spec §3.5 (the first-match-wins untagged enum of kanidm: libs/scim_proto/src/lib.rs),
plus the strict parsers it needs (Rust ``uuid`` crate forms, URL-safe base64 cookies).
Must not: apply anything, look at stored state, or reuse the SDK's typed entries. The
double works at the raw JSON level on purpose, so that a bug in the SDK's codec cannot
hide behind the same bug in the double.

Errors are :class:`FrameworkRejection` values carrying a status (400 or 422) and axum's
text; the store module turns them into HTTP rejections.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Final, Literal, TypeAlias

import attrs

__all__ = [
    "Binary",
    "Complex",
    "FrameworkRejection",
    "MultiComplex",
    "MultiSimple",
    "Scalar",
    "ScimEntry",
    "ScimValue",
    "SyncRequest",
    "Timestamp",
    "decode_cookie_b64",
    "parse_rfc3339",
    "parse_rust_uuid",
    "parse_sync_request",
]

_SYNTAX_PREFIX: Final = "Failed to parse the request body as JSON: "
_SHAPE_PREFIX: Final = "Failed to deserialize the JSON body into the target type: "


class FrameworkRejection(Exception):
    """A body rejection by the web framework (400 syntax, 422 shape).

    Attributes:
        status: 400 or 422.
        message: axum's plain-text body.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _shape(detail: str) -> FrameworkRejection:
    return FrameworkRejection(422, _SHAPE_PREFIX + detail)


@attrs.frozen
class Binary:
    """A SCIM value that parsed as bytes: an array of integers 0-255, including ``[]``.

    Attributes:
        data: the bytes.
    """

    data: bytes


Scalar: TypeAlias = "bool | int | float | str | Binary"
"""A SCIM simple value (``ScimSimpleAttr``)."""


@attrs.frozen
class Complex:
    """A SCIM complex value: a JSON object of simple values.

    Attributes:
        items: key to simple value, in the order received.
    """

    items: Mapping[str, Scalar]


@attrs.frozen
class MultiSimple:
    """A SCIM multi-valued simple attribute: an array of simple values.

    Attributes:
        values: the simple values.
    """

    values: tuple[Scalar, ...]


@attrs.frozen
class MultiComplex:
    """A SCIM multi-valued complex attribute: an array of complex values.

    Attributes:
        values: the complex values.
    """

    values: tuple[Complex, ...]


ScimValue: TypeAlias = "Scalar | Complex | MultiSimple | MultiComplex"
"""One attribute value as kanidmd's ``ScimValue`` parses it."""


@attrs.frozen
class ScimEntry:
    """One entry of a sync request, at the generic ``ScimEntry`` level.

    Attributes:
        schemas: the ``schemas`` strings as sent.
        id: the entry UUID.
        external_id: the header ``externalId`` as sent, or ``None``.
        attrs: every non-header key with its parsed value (keys as sent).
    """

    schemas: tuple[str, ...]
    id: uuid.UUID
    external_id: str | None
    attrs: Mapping[str, ScimValue]


RetainKind: TypeAlias = Literal["ignore", "retain", "delete"]


@attrs.frozen
class SyncRequest:
    """A parsed ``ScimSyncRequest`` (spec §3.4).

    Attributes:
        from_cookie: ``None`` for ``Refresh``, else the Active cookie bytes.
        to_cookie: ``None`` for ``Refresh``, else the Active cookie bytes.
        entries: the entries in the order sent (duplicates kept).
        retain: ``"ignore"``, ``"retain"`` or ``"delete"``.
        retain_ids: the UUID list of ``Retain``/``Delete`` (empty for ``Ignore``).
    """

    from_cookie: bytes | None = attrs.field(repr=False)
    to_cookie: bytes | None = attrs.field(repr=False)
    entries: tuple[ScimEntry, ...]
    retain: RetainKind = "ignore"
    retain_ids: tuple[uuid.UUID, ...] = ()


# --- strict scalar parsers ---------------------------------------------------------------

_HEX32 = re.compile(r"[0-9a-fA-F]{32}")
_HYPHENATED = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


def parse_rust_uuid(text: str) -> uuid.UUID | None:
    """Parse a UUID the way the Rust ``uuid`` crate's ``Uuid::parse_str`` does.

    Accepts the hyphenated, simple (32 hex), ``urn:uuid:`` and braced forms in any hex
    case; Python's own ``uuid.UUID`` is laxer (stray hyphens anywhere), so it is only
    used after the shape is checked.

    Args:
        text: the candidate string.

    Returns:
        The UUID, or ``None`` when the crate would refuse the string.
    """
    if _HEX32.fullmatch(text) is not None:
        return uuid.UUID(text)
    body = text
    if body.startswith("urn:uuid:"):
        body = body[len("urn:uuid:") :]
    elif body.startswith("{") and body.endswith("}"):
        body = body[1:-1]
    # The braced and URN forms wrap the hyphenated form only.
    if _HYPHENATED.fullmatch(body) is None:
        return None
    return uuid.UUID(body)


_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def decode_cookie_b64(text: str) -> bytes | None:
    """Decode a cookie as serde_with's ``Base64<UrlSafe, Unpadded>`` does on input.

    Padded, partly padded and unpadded URL-safe base64 are accepted; the standard alphabet
    (``+``/``/``), excess padding, impossible lengths and non-zero trailing bits are refused
    (the Rust ``base64`` crate rejects non-canonical trailing bits).

    Args:
        text: the JSON string value.

    Returns:
        The bytes, or ``None`` if the string is not acceptable.
    """
    stripped = text.rstrip("=")
    pad = len(text) - len(stripped)
    if _B64URL.fullmatch(stripped) is None or len(stripped) % 4 == 1:
        return None
    # serde_with decodes with the base64 crate's DecodePaddingMode::Indifferent: canonical
    # padding or any fewer `=` (so "AQ=" is accepted), never more [inferred; spec §3.2 only
    # says "padded or unpadded"].
    if pad > -len(stripped) % 4:
        return None
    try:
        data = base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
    except (binascii.Error, ValueError):
        return None
    if base64.urlsafe_b64encode(data).decode().rstrip("=") != stripped:
        return None
    return data


# time 0.3.55 src/parsing/parsable.rs `impl Sealed for Rfc3339`: exactly four date digits,
# any single ASCII byte between date and time, an optional fraction of any length
# (nanoseconds kept), then Z/z or +hh:mm/-hh:mm.
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[\x00-\x7f](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(?:[Zz]|([+-])(\d{2}):(\d{2}))",
    re.ASCII,
)


@attrs.frozen
class Timestamp:
    """An RFC 3339 timestamp as kanidmd's ``time`` crate reads it.

    Attributes:
        utc: the instant in UTC to the minute, shifted by 400 years (one Gregorian cycle)
            into the range Python's ``datetime`` handles; ``shift`` undoes it.
        shift: years to add to ``utc.year`` for the real year.
        second: the second (a leap second is already read as :59).
        nanosecond: the fraction, in nanoseconds.
    """

    utc: datetime
    shift: int
    second: int
    nanosecond: int

    def render_utc(self) -> str | None:
        """The form kanidmd stores (``YYYY-MM-DDTHH:MM:SS[.fraction]Z``, no trailing zeros).

        Returns:
            The text, or ``None`` when the UTC year is outside 0000-9999, which kanidmd
            cannot convert (``to_offset``) or format when writing the entry: it panics.
        """
        year = self.utc.year + self.shift
        if not 0 <= year <= 9999:
            return None
        text = f"{year:04d}-{self.utc:%m-%dT%H:%M}:{self.second:02d}"
        if self.nanosecond:
            text += "." + f"{self.nanosecond:09d}".rstrip("0")
        return text + "Z"


def parse_rfc3339(text: str) -> Timestamp | None:
    """Parse an RFC 3339 timestamp as kanidmd does (the ``time`` crate's ``Rfc3339``).

    A space (or any other ASCII character) may stand for the ``T``; second 60 is read as
    :59.999999999 and is only valid at 23:59 UTC on the last day of a month.

    Args:
        text: the candidate string.

    Returns:
        The timestamp, or ``None`` if the ``time`` crate refuses the string.
    """
    m = _RFC3339.fullmatch(text)
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    nanos = int(((m.group(7) or "") + "0" * 9)[:9])
    sign, off_h, off_m = m.group(8), int(m.group(9) or 0), int(m.group(10) or 0)
    if off_h > 23 or off_m > 59:
        return None
    leap = second == 60
    if leap:
        second, nanos = 59, 999_999_999
    # The 400-year Gregorian cycle keeps weekdays and leap days: years 0000-9999 and
    # their UTC neighbours -0001 and 10000 map into 1..9999.
    shift = 400 if year < 5000 else -400
    try:
        local = datetime(year + shift, month, day, hour, minute, second)
    except ValueError:
        return None
    offset = timedelta(hours=off_h, minutes=off_m) * (-1 if sign == "-" else 1)
    utc = local - offset
    if leap:
        last_day = (utc.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        if (utc.hour, utc.minute, utc.day) != (23, 59, last_day.day):
            return None
    return Timestamp(utc.replace(second=0), -shift, second, nanos)


# --- the generic value model ---------------------------------------------------------------


def _is_byte(v: object) -> bool:
    return type(v) is int and 0 <= v <= 255


_I64_MIN: Final = -(2**63)
_I64_MAX: Final = 2**63 - 1
_U64_MAX: Final = 2**64 - 1


def _simple(value: object) -> Scalar | None:
    """Try ``ScimSimpleAttr``: bool, number, string, or a byte array (Binary)."""
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        # Spec §3.5: an integer fitting i64 is Integer; any other number is Decimal (a
        # u64 above i64::MAX too: the untagged enum's i64 arm refuses it, the f64 arm takes it).
        if _I64_MIN <= value <= _I64_MAX:
            return value
        return float(value)
    if isinstance(value, float):
        return value
    if isinstance(value, list) and all(_is_byte(v) for v in value):
        return Binary(bytes(value))
    return None


def _complex(value: object) -> Complex | None:
    if not isinstance(value, dict):
        return None
    items: dict[str, Scalar] = {}
    for key, inner in value.items():
        simple = _simple(inner)
        if simple is None:
            return None
        items[key] = simple
    return Complex(items)


def _scim_value(value: object, where: str) -> ScimValue:
    # Fast paths for the common shapes; each gives the result the general path would.
    kind = type(value)
    if kind is str:
        return value  # type: ignore[return-value]  # narrowed by the type check above
    if kind is list and value and type(value[0]) is dict:  # type: ignore[index]  # list
        # A list starting with an object is neither Binary nor MultiSimple.
        complexes = [_complex(v) for v in value]  # type: ignore[attr-defined]  # list
        if all(c is not None for c in complexes):
            return MultiComplex(tuple(c for c in complexes if c is not None))
        raise _shape(f"{where}: data did not match any variant of untagged enum ScimValue")
    simple = _simple(value)
    if simple is not None:
        return simple
    cplx = _complex(value)
    if cplx is not None:
        return cplx
    if isinstance(value, list):
        simples = [_simple(v) for v in value]
        if all(s is not None for s in simples):
            return MultiSimple(tuple(s for s in simples if s is not None))
        complexes = [_complex(v) for v in value]
        if all(c is not None for c in complexes):
            return MultiComplex(tuple(c for c in complexes if c is not None))
    raise _shape(f"{where}: data did not match any variant of untagged enum ScimValue")


# --- request structure ---------------------------------------------------------------------


def _state(value: object, where: str) -> bytes | None:
    if value == "Refresh" or value == {"Refresh": None}:
        return None
    if isinstance(value, dict) and len(value) == 1 and "Active" in value:
        inner = value["Active"]
        if not isinstance(inner, dict) or "cookie" not in inner:
            raise _shape(f"{where}: missing field `cookie`")
        cookie = inner["cookie"]
        if not isinstance(cookie, str):
            raise _shape(f"{where}.Active.cookie: invalid type, expected a string")
        data = decode_cookie_b64(cookie)
        if data is None:
            raise _shape(f"{where}.Active.cookie: invalid base64")
        return data
    raise _shape(f"{where}: unknown variant, expected `Refresh` or `Active`")


def _uuid_list(value: object, where: str) -> tuple[uuid.UUID, ...]:
    if not isinstance(value, list):
        raise _shape(f"{where}: invalid type, expected a sequence")
    out: list[uuid.UUID] = []
    for i, item in enumerate(value):
        parsed = parse_rust_uuid(item) if isinstance(item, str) else None
        if parsed is None:
            raise _shape(f"{where}[{i}]: UUID parsing failed")
        out.append(parsed)
    return tuple(out)


def _retain(value: object) -> tuple[RetainKind, tuple[uuid.UUID, ...]]:
    if value == "Ignore" or value == {"Ignore": None}:
        return "ignore", ()
    if isinstance(value, dict) and len(value) == 1:
        ((key, inner),) = value.items()
        if key == "Retain":
            return "retain", _uuid_list(inner, "retain.Retain")
        if key == "Delete":
            return "delete", _uuid_list(inner, "retain.Delete")
    raise _shape("retain: unknown variant, expected one of `Ignore`, `Retain`, `Delete`")


_META_KEYS: Final = ("resourceType", "created", "lastModified", "location", "version")


def _check_meta(value: object, where: str) -> None:
    # A complete SCIM meta object or nothing (spec §3.5); the server then ignores it.
    if not isinstance(value, dict):
        raise _shape(f"{where}.meta: invalid type, expected struct Meta")
    for key in value:
        if key not in _META_KEYS:
            raise _shape(f"{where}.meta: unknown field `{key}`")
    for key in _META_KEYS:
        if key not in value:
            raise _shape(f"{where}.meta: missing field `{key}`")
        if not isinstance(value[key], str):
            raise _shape(f"{where}.meta.{key}: invalid type, expected a string")
    for key in ("created", "lastModified"):
        if parse_rfc3339(value[key]) is None:
            raise _shape(f"{where}.meta.{key}: invalid rfc3339 datetime")
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", value["location"]) is None:
        raise _shape(f"{where}.meta.location: relative URL without a base")


def _entry(value: object, index: int) -> ScimEntry:
    where = f"entries[{index}]"
    if not isinstance(value, dict):
        raise _shape(f"{where}: invalid type, expected struct ScimEntry")
    if "schemas" not in value:
        raise _shape(f"{where}: missing field `schemas`")
    if "id" not in value:
        raise _shape(f"{where}: missing field `id`")
    schemas = value["schemas"]
    if not isinstance(schemas, list) or not all(isinstance(s, str) for s in schemas):
        raise _shape(f"{where}.schemas: invalid type, expected a sequence of strings")
    raw_id = value["id"]
    entry_id = parse_rust_uuid(raw_id) if isinstance(raw_id, str) else None
    if entry_id is None:
        raise _shape(f"{where}.id: UUID parsing failed")
    external = value.get("externalId")
    # [inferred] `externalId: null` is serde's Option None, i.e. absent.
    if external is not None and not isinstance(external, str):
        raise _shape(f"{where}.externalId: invalid type, expected a string")
    if "meta" in value and value["meta"] is not None:
        _check_meta(value["meta"], where)
    attrs_: dict[str, ScimValue] = {}
    for key, inner in value.items():
        if key in ("schemas", "id", "externalId", "meta"):
            continue
        attrs_[key] = _scim_value(inner, f"{where}.{key}")
    return ScimEntry(tuple(schemas), entry_id, external, attrs_)


def _no_constants(name: str) -> object:
    # serde_json rejects NaN/Infinity, which Python's json accepts by default.
    raise ValueError(f"invalid number {name}")


def _finite_float(text: str) -> float:
    # serde_json refuses a number beyond the f64 range ("number out of range", a syntax
    # error: 400); Python's json would silently read it as infinity.
    value = float(text)
    if value in (_INF, -_INF):
        raise ValueError("number out of range")
    return value


def _int_or_float(text: str) -> int | float:
    # serde_json reads an integer beyond u64 as an f64, which overflows for huge ones.
    value = int(text)
    if _I64_MIN <= value <= _U64_MAX:
        return value
    return _finite_float(text)


_INF: Final = float("inf")
# Only a body containing an escape of a surrogate can hold a lone one after parsing.
_SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89a-fA-F]")


def _has_lone_surrogate(value: object) -> bool:
    if isinstance(value, str):
        return any("\ud800" <= ch <= "\udfff" for ch in value)
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    return False


def parse_sync_request(body: bytes) -> SyncRequest:
    """Parse a ``POST /scim/v1/Sync`` body as kanidmd's extractor does (spec §4.0, §3.5).

    Args:
        body: the raw request body.

    Returns:
        The parsed request, at the generic ``ScimEntry`` level.

    Raises:
        FrameworkRejection: 400 for a body that is not JSON, 422 for a JSON value of the
            wrong shape (missing keys, ``null`` values, bad UUIDs or cookies, unknown
            enum variants, nested objects).
    """
    try:
        text = body.decode("utf-8")
        data: object = json.loads(
            text,
            parse_constant=_no_constants,
            parse_float=_finite_float,
            parse_int=_int_or_float,
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise FrameworkRejection(400, _SYNTAX_PREFIX + str(exc)) from None
    # serde_json refuses an escaped lone surrogate (`"\ud800"`); Python's json keeps it.
    if _SURROGATE_ESCAPE.search(text) is not None and _has_lone_surrogate(data):
        raise FrameworkRejection(400, _SYNTAX_PREFIX + "lone surrogate in hex escape")
    if not isinstance(data, dict):
        raise _shape("invalid type, expected struct ScimSyncRequest")
    for key in ("from_state", "to_state", "entries", "retain"):
        if key not in data:
            raise _shape(f"missing field `{key}`")
    from_cookie = _state(data["from_state"], "from_state")
    to_cookie = _state(data["to_state"], "to_state")
    raw_entries = data["entries"]
    if not isinstance(raw_entries, list):
        raise _shape("entries: invalid type, expected a sequence")
    entries = tuple(_entry(e, i) for i, e in enumerate(raw_entries))
    kind, ids = _retain(data["retain"])
    return SyncRequest(from_cookie, to_cookie, entries, kind, ids)
