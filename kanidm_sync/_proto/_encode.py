"""The JSON encoder: typed entries and ChangeSets to the bytes the Rust sync tools send.

Pure; no I/O. See ``_codec.py`` for the encoding rules.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Final

from .._exceptions import EncodeError
from .._types import JSONObject, JSONValue
from ._changeset import ChangeSet
from ._codec_common import (
    _GROUP_SCHEMAS,
    _HEADER_KEYS,
    _I64_MAX,
    _I64_MIN,
    _PERSON_SCHEMAS,
    _PY_EXPONENT,
    _SERVICE_SCHEMAS,
    _key_path,
    _surrogate_path,
)
from ._codec_state import encode_retention, encode_sync_state
from ._entries import (
    Entry,
    GenericEntry,
    Group,
    Mail,
    Person,
    ServiceAccount,
    Totp,
)

__all__ = ["dumps", "encode_changeset", "encode_entry"]

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
