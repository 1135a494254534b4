"""The JSON decoder: kanidmd's sync request JSON to typed entries and ChangeSets.

Pure; no I/O. See ``_codec.py`` for the decoding rules; every problem is collected and
raised as one :class:`~kanidm_sync.DecodeError` with its JSON path.
"""

from __future__ import annotations

import uuid
from typing import Final

from .._exceptions import DecodeError
from .._types import JSONValue
from ._changeset import ChangeSet
from ._codec_common import (
    _ACCOUNT,
    _GROUP,
    _GROUP_KEYS,
    _HEADER_KEYS,
    _ITEM_KEYS,
    _LONE_SURROGATE_ESCAPE,
    _MODELLED,
    _OAUTH2,
    _OAUTH2_KEYS,
    _PERSON,
    _PERSON_KEYS,
    _POSIXACCOUNT,
    _POSIXACCOUNT_KEYS,
    _POSIXGROUP,
    _POSIXGROUP_KEYS,
    _SERVICE_ACCOUNT,
    _SERVICE_KEYS,
    _as_object,
    _check_foreign,
    _check_int,
    _check_raw,
    _Errors,
    _expected,
    _key_path,
    _parse_uuid,
    _unknown_keys,
)
from ._codec_state import _retention, _sync_state
from ._decode_fast import fast_entry
from ._decode_stream import ENTRIES_STREAMED, loads, stream_request
from ._entries import (
    Entry,
    GenericEntry,
    Group,
    Mail,
    OAuth2Account,
    Person,
    PosixAccount,
    PosixGroup,
    ServiceAccount,
    SshPublicKey,
    Totp,
)

__all__ = ["decode_changeset", "decode_changeset_json", "decode_entry"]

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


def _decode_changeset(
    obj: object,
    strict: bool,
    *,
    own: bool = False,
    streamed: tuple[list[Entry], _Errors] = ([], []),
) -> ChangeSet:
    # own: the JSON came from our own parser, so each raw entry is dropped once decoded
    # (the raw tree shrinks as the typed one grows: less memory, shorter GC passes).
    # streamed: the entries (and their problems) _decode_stream decoded while parsing.
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
        if raw_entries is ENTRIES_STREAMED:
            entries, entry_errs = streamed
            errs.extend(entry_errs)
        elif isinstance(raw_entries, list):
            append = entries.append
            for i, raw in enumerate(raw_entries):
                if own:
                    raw_entries[i] = None
                # The fast path builds an entry with nothing to report; anything else
                # (and every problem, with its path) is the full decoder's.
                entry = fast_entry(raw, strict)
                if entry is None:
                    entry = _entry(raw, f"$.entries[{i}]", errs, strict)
                if entry is not None:
                    append(entry)
        else:
            _expected(errs, "$.entries", "an array of entries", raw_entries)

    if errs or from_state is None or to_state is None or retain is None:
        raise DecodeError(errs)
    return ChangeSet(from_state=from_state, to_state=to_state, entries=entries, retain=retain)


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
    if not literal_surrogates and not _LONE_SURROGATE_ESCAPE.search(text):
        # Entries decoded as they are parsed; None: something for the ordinary path.
        streamed = stream_request(text, strict, _entry)
        if streamed is not None:
            top, entries, entry_errs = streamed
            return _decode_changeset(top, strict, streamed=(entries, entry_errs))
    try:
        # Our own parser's output needs no foreign-object check.
        return _decode_changeset(
            loads(text, literal_surrogates=literal_surrogates), strict, own=True
        )
    except RecursionError:
        raise DecodeError([("$", "JSON nested too deeply")]) from None
