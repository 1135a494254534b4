"""The decoder's fast path: a typed entry with nothing to report, checked once and built as is.

Pure; no I/O. :func:`fast_entry` takes one decoded entry object and returns the typed entry
the full decoder (``_decode._entry``) would return for it, or ``None`` whenever anything
is unusual: a problem to report, a repeated key, ``extra`` attributes, TOTP imports, an
explicit ``null``, an empty array, an unknown key in an item, strict mode's ``meta``. The
caller then runs the full decoder on that entry, which builds the JSON paths and reports
every problem exactly as before; so paths are only built when there is something to say.

Every value is checked here once, with exact type tests (``type(v) is str``: JSON's own
types), and the entry is built through a *trusted constructor* that sets the slots
directly, without the attrs converters and validators: they would only re-check what was
just checked (and convert nothing: the values are already tuples, strings and facets).
A user building a ``Person(...)`` still goes through the validating ``__init__``.
tests/proto/test_codec_fast.py checks that both paths give equal entries.
"""

from __future__ import annotations

import itertools
import types
import uuid
from collections.abc import Callable
from typing import Any, Final

import attrs

from ._codec_common import (
    _ACCOUNT,
    _GROUP,
    _GROUP_KEYS,
    _HEADER_KEYS,
    _I64_MAX,
    _I64_MIN,
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
    _UUID_RE,
)
from ._entries import (
    Entry,
    Group,
    Mail,
    OAuth2Account,
    Person,
    PosixAccount,
    PosixGroup,
    ServiceAccount,
    SshPublicKey,
)

__all__ = ["fast_entry"]


def _trusted(cls: type, fields: str) -> Callable[..., Any]:
    """A constructor of ``cls`` that sets every field's slot as given, checking nothing.

    Only for values the decoder has checked and built in their final form. It takes
    every field, positionally (a keyword call costs more than the rest of the call), in
    the order ``fields`` names them: the class's own order, checked here at import.
    """
    names = [a.name for a in attrs.fields(cls)]
    if names != fields.split():  # pragma: no cover - a model changed; update the call sites
        raise RuntimeError(f"{cls.__name__} fields are {names}, not {fields.split()}")
    params = ", ".join(names)
    body = "".join(f"    _set_{n}(self, {n})\n" for n in names)
    source = f"def build({params}, /):\n    self = _new(_cls)\n{body}    return self\n"
    scope: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    scope.update({f"_set_{n}": cls.__dict__[n].__set__ for n in names})
    exec(source, scope)  # generated from the class's own field names
    build: Callable[..., Any] = scope["build"]
    build.__qualname__ = f"trusted {cls.__name__}"
    return build


_new_person: Final = _trusted(
    Person,
    "id external_id name displayname legalname mail ssh_publickey account_valid_from"
    " account_expire account_softlock_expire password_import totp_import posix oauth2 extra"
    " schema_order",
)
_new_group: Final = _trusted(
    Group, "id external_id name description mail member posix extra schema_order"
)
_new_service_account: Final = _trusted(
    ServiceAccount,
    "id external_id name displayname description mail ssh_publickey account_valid_from"
    " account_expire account_softlock_expire password_import posix extra schema_order",
)
_new_mail: Final = _trusted(Mail, "value primary")
_new_ssh_key: Final = _trusted(SshPublicKey, "label value")
_new_posix_account: Final = _trusted(PosixAccount, "gidnumber loginshell unix_password_import")
_new_posix_group: Final = _trusted(PosixGroup, "gidnumber")
_new_oauth2: Final = _trusted(OAuth2Account, "provider unique_user_id unique_user_sub")

_NO_EXTRA: Final[types.MappingProxyType[str, Any]] = types.MappingProxyType({})
"""The ``extra`` of every fast-decoded entry: empty and read-only, so it can be shared."""

_Info = tuple[int, bool, bool, frozenset[str], tuple[str, ...]]
"""Kind, POSIX facet, OAuth2 facet, allowed keys, the schema list (shared)."""

_PERSON_KIND: Final = 1
_GROUP_KIND: Final = 2
_SERVICE_KIND: Final = 3


def _schema_table() -> dict[tuple[str, ...], _Info]:
    """Every schema list the typed classes take, in any order: kind, facets, allowed keys."""
    table: dict[tuple[str, ...], _Info] = {}

    def add(kind: int, urns: list[str], keys: frozenset[str], posix: bool, oauth2: bool) -> None:
        for order in itertools.permutations(urns):
            table[order] = (kind, posix, oauth2, keys | _HEADER_KEYS, order)

    for posix in (False, True):
        for oauth2 in (False, True):
            urns = [_ACCOUNT, _PERSON] + [_POSIXACCOUNT] * posix + [_OAUTH2] * oauth2
            keys = _PERSON_KEYS
            if posix:
                keys |= _POSIXACCOUNT_KEYS
            if oauth2:
                keys |= _OAUTH2_KEYS
            add(_PERSON_KIND, urns, keys, posix, oauth2)
        add(
            _GROUP_KIND,
            [_GROUP] + [_POSIXGROUP] * posix,
            _GROUP_KEYS | _POSIXGROUP_KEYS if posix else _GROUP_KEYS,
            posix,
            False,
        )
        add(
            _SERVICE_KIND,
            [_ACCOUNT, _SERVICE_ACCOUNT] + [_POSIXACCOUNT] * posix,
            _SERVICE_KEYS | _POSIXACCOUNT_KEYS if posix else _SERVICE_KEYS,
            posix,
            False,
        )
    return table


_SCHEMAS: Final = _schema_table()


class _Unusual(Exception):
    """Something the fast path leaves to the full decoder (never escapes this module)."""


def _uuid_setters() -> tuple[Any, Any] | None:
    # uuid.UUID keeps its value in two slots; set them as UUID.__init__ does, without its
    # string handling (the text was matched by _UUID_RE already). If a Python version
    # lays the class out differently, uuid.UUID(text) is used instead.
    try:
        setters = (uuid.UUID.__dict__["int"].__set__, uuid.UUID.__dict__["is_safe"].__set__)
    except (KeyError, AttributeError):  # pragma: no cover - another uuid implementation
        return None
    sample = "9a7c1f52-4c7d-4b0e-8a43-1e4f6f1c2d10"
    built = object.__new__(uuid.UUID)
    setters[0](built, int(sample.replace("-", ""), 16))
    setters[1](built, uuid.SafeUUID.unknown)
    reference = uuid.UUID(sample)
    if built != reference or built.is_safe != reference.is_safe or str(built) != sample:
        return None  # pragma: no cover
    return setters


_UUID_SETTERS: Final = _uuid_setters()
_UNKNOWN: Final = uuid.SafeUUID.unknown


def _entry_id(text: str) -> uuid.UUID:
    """The UUID of an id ``_UUID_RE`` matched."""
    setters = _UUID_SETTERS
    if len(text) != 36 or setters is None:
        return uuid.UUID(text)  # the simple, urn:uuid: and braced forms
    value = object.__new__(uuid.UUID)
    setters[0](value, int(text.replace("-", ""), 16))
    setters[1](value, _UNKNOWN)
    return value


def _mail(item: object) -> Mail:
    if type(item) is not dict:
        raise _Unusual
    value = item.get("value")
    if type(value) is not str:
        raise _Unusual
    if len(item) == 1:
        return _new_mail(value, None)  # type: ignore[no-any-return]
    primary = item.get("primary")
    if len(item) != 2 or type(primary) is not bool:
        raise _Unusual
    return _new_mail(value, primary)  # type: ignore[no-any-return]


def _mails(items: object) -> tuple[Mail, ...]:
    if items is None:
        return ()
    if type(items) is not list or not items:
        raise _Unusual  # not an array, or an explicit empty one (a GenericEntry)
    if len(items) == 1:
        return (_mail(items[0]),)
    return tuple([_mail(item) for item in items])


def _ssh_key(item: object) -> SshPublicKey:
    if type(item) is not dict or len(item) != 2:
        raise _Unusual
    label = item.get("label")
    value = item.get("value")
    if type(label) is not str or type(value) is not str:
        raise _Unusual
    return _new_ssh_key(label, value)  # type: ignore[no-any-return]


def _ssh_keys(items: object) -> tuple[SshPublicKey, ...]:
    if items is None:
        return ()
    if type(items) is not list or not items:
        raise _Unusual
    if len(items) == 1:
        return (_ssh_key(items[0]),)
    return tuple([_ssh_key(item) for item in items])


_ONLY_STR: Final = frozenset({str})


def _members(items: object) -> tuple[str, ...]:
    if items is None:
        return ()
    if type(items) is not list or not items:
        raise _Unusual
    # Each item must be {"external_id": "…"}: anything else reads as None here.
    refs = [
        item.get("external_id") if type(item) is dict and len(item) == 1 else None for item in items
    ]
    if set(map(type, refs)) != _ONLY_STR:
        raise _Unusual
    return tuple(refs)  # type: ignore[arg-type]  # every item is a str


def _gidnumber(value: object) -> int | None:
    if value is None:
        return None
    if type(value) is not int or not _I64_MIN <= value <= _I64_MAX:
        raise _Unusual
    return value


_STR_OR_NONE: Final = frozenset({str, type(None)})
"""The types of an optional string read with ``dict.get`` (nulls were refused before)."""


def _posix_account(get: Callable[[str], object]) -> PosixAccount:
    gidnumber = get("gidnumber")
    loginshell = get("loginshell")
    unix_password = get("unix_password_import")
    if type(loginshell) not in _STR_OR_NONE or type(unix_password) not in _STR_OR_NONE:
        raise _Unusual
    return _new_posix_account(_gidnumber(gidnumber), loginshell, unix_password)  # type: ignore[no-any-return]


def _entry(obj: dict[str, object], strict: bool) -> Entry:
    schemas = obj.get("schemas")
    if type(schemas) is not list:
        raise _Unusual
    try:
        info = _SCHEMAS.get(tuple(schemas))
    except TypeError:  # an unhashable item (an object, an array): not a URN
        raise _Unusual from None
    if info is None:
        raise _Unusual
    kind, posix, oauth2, allowed, order = info
    if not obj.keys() <= allowed or "totp_import" in obj or None in obj.values():
        # extra attributes, TOTP imports, or a null (refused, or an absent externalId)
        raise _Unusual
    if strict and "meta" in obj:
        raise _Unusual
    # The builders take every field positionally, in the class's order (_trusted checks it).
    get = obj.get
    raw_id = get("id")
    name = get("name")
    external_id = get("externalId")
    if (
        type(raw_id) is not str
        or type(name) is not str
        or type(external_id) not in _STR_OR_NONE
        or not _UUID_RE.fullmatch(raw_id)
    ):
        raise _Unusual
    if kind == _GROUP_KIND:
        description = get("description")
        if type(description) not in _STR_OR_NONE:
            raise _Unusual
        return _new_group(  # type: ignore[no-any-return]
            _entry_id(raw_id),
            external_id,
            name,
            description,
            _mails(get("mail")),
            _members(get("member")),
            _new_posix_group(_gidnumber(get("gidnumber"))) if posix else None,
            _NO_EXTRA,
            order,
        )
    displayname = get("displayname")
    valid_from = get("account_valid_from")
    expire = get("account_expire")
    softlock = get("account_softlock_expire")
    password = get("password_import")
    if (
        type(displayname) is not str
        or type(valid_from) not in _STR_OR_NONE
        or type(expire) not in _STR_OR_NONE
        or type(softlock) not in _STR_OR_NONE
        or type(password) not in _STR_OR_NONE
    ):
        raise _Unusual
    if kind == _SERVICE_KIND:
        description = get("description")
        if type(description) not in _STR_OR_NONE:
            raise _Unusual
        return _new_service_account(  # type: ignore[no-any-return]
            _entry_id(raw_id),
            external_id,
            name,
            displayname,
            description,
            _mails(get("mail")),
            _ssh_keys(get("ssh_publickey")),
            valid_from,
            expire,
            softlock,
            password,
            _posix_account(get) if posix else None,
            _NO_EXTRA,
            order,
        )
    legalname = get("legalname")
    if type(legalname) not in _STR_OR_NONE:
        raise _Unusual
    facet = None
    if oauth2:
        provider = get("oauth2_account_provider")
        user_id = get("oauth2_account_unique_user_id")
        sub = get("oauth2_account_unique_user_sub")
        if type(provider) is not str or type(user_id) is not str or type(sub) not in _STR_OR_NONE:
            raise _Unusual
        facet = _new_oauth2(provider, user_id, sub)
    return _new_person(  # type: ignore[no-any-return]
        _entry_id(raw_id),
        external_id,
        name,
        displayname,
        legalname,
        _mails(get("mail")),
        _ssh_keys(get("ssh_publickey")),
        valid_from,
        expire,
        softlock,
        password,
        (),
        _posix_account(get) if posix else None,
        facet,
        _NO_EXTRA,
        order,
    )


def fast_entry(value: object, strict: bool) -> Entry | None:
    """The typed entry for ``value`` if it decodes with nothing to report, else ``None``.

    Args:
        value: one decoded element of the request's ``entries`` array.
        strict: the decoder's strict mode.

    Returns:
        The entry the full decoder would build, or ``None`` to let it decode (and report).
    """
    if type(value) is not dict:
        return None
    try:
        return _entry(value, strict)
    except _Unusual:
        return None
