"""The encoder's fast path: typed entries written straight to JSON text.

Pure; no I/O. :func:`encode_changeset_json` writes each :class:`~kanidm_sync.Person`,
:class:`~kanidm_sync.Group` and :class:`~kanidm_sync.ServiceAccount` without ``extra``
directly as text, in the key order ``_encode.py``'s dict builders give it, with the
C string escaper :func:`json.dumps` itself uses, so the bytes are the ones
``dumps(encode_changeset(cs))`` writes (tests/proto/test_codec_fast.py compares them).
Building a dict per entry and walking it again in :func:`json.dumps` cost about as
much as the walk itself. Every other entry (``extra``, TOTP imports, a
:class:`~kanidm_sync.GenericEntry`, a subclass) goes through the dict builder and is
written on its own; any problem (a lone surrogate, a value with no JSON form) re-runs
the whole request through the dict path, which raises the error it always raised.
"""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable
from typing import Final

from .._exceptions import EncodeError
from ._changeset import ChangeSet
from ._codec_common import _GROUP_SCHEMAS, _PERSON_SCHEMAS, _SERVICE_SCHEMAS
from ._codec_state import encode_retention, encode_sync_state
from ._encode import _tricky_floats, _write, encode_changeset, encode_entry
from ._entries import Entry, Group, Mail, OAuth2Account, Person, ServiceAccount, SshPublicKey

__all__ = ["TEXT_ERRORS", "encode_changeset_json", "entry_text", "head_and_tail"]

# The escaper json.dumps(..., ensure_ascii=False) uses for every string (C when available).
_enc: Final[Callable[[str], str]] = json.encoder.encode_basestring

_SCHEMAS_CACHE_MAX: Final = 256
_schemas_text: dict[tuple[object, ...], str] = {}


def _schemas(
    entry: Person | Group | ServiceAccount, common: tuple[str, ...], extra_key: object
) -> str:
    """The ``schemas`` array as JSON text, memoised per facet set and decoded order."""
    order = entry.schema_order
    if not order:
        key: tuple[object, ...] = (extra_key,)
        text = _schemas_text.get(key)
        if text is None:
            text = _compact(common)
            _schemas_text[key] = text
        return text
    key = (extra_key, order)
    text = _schemas_text.get(key)
    if text is None:
        text = _compact(entry.schemas)
        if len(_schemas_text) < _SCHEMAS_CACHE_MAX:
            _schemas_text[key] = text
    return text


def _compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _mail(m: Mail) -> str:
    primary = m.primary
    if primary is None:
        return '{"value":' + _enc(m.value) + "}"
    return (
        ('{"primary":true,"value":' if primary else '{"primary":false,"value":')
        + _enc(m.value)
        + "}"
    )


def _mails(mails: tuple[Mail, ...]) -> str:
    if len(mails) == 1:
        return ',"mail":[' + _mail(mails[0]) + "]"
    return ',"mail":[' + ",".join([_mail(m) for m in mails]) + "]"


def _ssh_keys(keys: tuple[SshPublicKey, ...]) -> str:
    enc = _enc
    if len(keys) == 1:
        k = keys[0]
        return ',"ssh_publickey":[{"label":' + enc(k.label) + ',"value":' + enc(k.value) + "}]"
    return (
        ',"ssh_publickey":['
        + ",".join(['{"label":' + enc(k.label) + ',"value":' + enc(k.value) + "}" for k in keys])
        + "]"
    )


def _person(p: Person) -> str | None:
    if p.extra or p.totp_import:
        return None
    enc = _enc
    posix = p.posix
    oauth2 = p.oauth2
    facets = (posix is not None, oauth2 is not None)
    external_id = p.external_id
    expire = p.account_expire
    softlock = p.account_softlock_expire
    valid_from = p.account_valid_from
    legalname = p.legalname
    password = p.password_import
    gidnumber = loginshell = unix_password = None
    if posix is not None:
        gidnumber = posix.gidnumber
        loginshell = posix.loginshell
        unix_password = posix.unix_password_import
    # One join, keys in byte-sorted order (BTreeMap); "" for what is absent.
    return "".join(
        (
            '{"schemas":',
            _schemas(p, _PERSON_SCHEMAS[facets], ("p", facets)),
            ',"id":"',
            str(p.id),
            '"',
            "" if external_id is None else ',"externalId":' + enc(external_id),
            "" if expire is None else ',"account_expire":' + enc(expire),
            "" if softlock is None else ',"account_softlock_expire":' + enc(softlock),
            "" if valid_from is None else ',"account_valid_from":' + enc(valid_from),
            ',"displayname":',
            enc(p.displayname),
            "" if gidnumber is None else ',"gidnumber":' + int.__repr__(gidnumber),
            "" if legalname is None else ',"legalname":' + enc(legalname),
            "" if loginshell is None else ',"loginshell":' + enc(loginshell),
            _mails(p.mail) if p.mail else "",
            ',"name":',
            enc(p.name),
            "" if oauth2 is None else _oauth2(oauth2),
            "" if password is None else ',"password_import":' + enc(password),
            _ssh_keys(p.ssh_publickey) if p.ssh_publickey else "",
            "" if unix_password is None else ',"unix_password_import":' + enc(unix_password),
            "}",
        )
    )


def _oauth2(oauth2: OAuth2Account) -> str:
    enc = _enc
    sub = oauth2.unique_user_sub
    return (
        ',"oauth2_account_provider":'
        + enc(oauth2.provider)
        + ',"oauth2_account_unique_user_id":'
        + enc(oauth2.unique_user_id)
        + ("" if sub is None else ',"oauth2_account_unique_user_sub":' + enc(sub))
    )


def _group(g: Group) -> str | None:
    if g.extra:
        return None
    enc = _enc
    posix = g.posix
    gidnumber = None if posix is None else posix.gidnumber
    external_id = g.external_id
    description = g.description
    return "".join(
        (
            '{"schemas":',
            _schemas(g, _GROUP_SCHEMAS[posix is not None], ("g", posix is not None)),
            ',"id":"',
            str(g.id),
            '"',
            "" if external_id is None else ',"externalId":' + enc(external_id),
            "" if description is None else ',"description":' + enc(description),
            "" if gidnumber is None else ',"gidnumber":' + int.__repr__(gidnumber),
            _mails(g.mail) if g.mail else "",
            ',"member":[{"external_id":' + '},{"external_id":'.join(map(enc, g.member)) + "}]"
            if g.member
            else "",
            ',"name":',
            enc(g.name),
            "}",
        )
    )


def _service_account(s: ServiceAccount) -> str | None:
    if s.extra:
        return None
    enc = _enc
    posix = s.posix
    external_id = s.external_id
    expire = s.account_expire
    softlock = s.account_softlock_expire
    valid_from = s.account_valid_from
    description = s.description
    password = s.password_import
    gidnumber = loginshell = unix_password = None
    if posix is not None:
        gidnumber = posix.gidnumber
        loginshell = posix.loginshell
        unix_password = posix.unix_password_import
    return "".join(
        (
            '{"schemas":',
            _schemas(s, _SERVICE_SCHEMAS[posix is not None], ("s", posix is not None)),
            ',"id":"',
            str(s.id),
            '"',
            "" if external_id is None else ',"externalId":' + enc(external_id),
            "" if expire is None else ',"account_expire":' + enc(expire),
            "" if softlock is None else ',"account_softlock_expire":' + enc(softlock),
            "" if valid_from is None else ',"account_valid_from":' + enc(valid_from),
            "" if description is None else ',"description":' + enc(description),
            ',"displayname":',
            enc(s.displayname),
            "" if gidnumber is None else ',"gidnumber":' + int.__repr__(gidnumber),
            "" if loginshell is None else ',"loginshell":' + enc(loginshell),
            _mails(s.mail) if s.mail else "",
            ',"name":',
            enc(s.name),
            "" if password is None else ',"password_import":' + enc(password),
            _ssh_keys(s.ssh_publickey) if s.ssh_publickey else "",
            "" if unix_password is None else ',"unix_password_import":' + enc(unix_password),
            "}",
        )
    )


_TEXT_WRITERS: Final[dict[type, Callable[[Entry], str | None]]] = {
    Person: _person,  # type: ignore[dict-item]  # keyed by the exact class
    Group: _group,  # type: ignore[dict-item]  # keyed by the exact class
    ServiceAccount: _service_account,  # type: ignore[dict-item]  # keyed by the exact class
}


def _via_dict(entry: Entry) -> str:
    """An entry the text writers do not take: the dict builder, then one dumps of it."""
    before = _tricky_floats[0]
    value = encode_entry(entry)
    return _write(value, exact_floats=_tricky_floats[0] != before).decode("utf-8")


def entry_text(entry: Entry) -> str:
    """One entry of a ChangeSet as compact JSON text (the fast writers, else the dict path).

    Raises:
        EncodeError, ValueError, TypeError, RecursionError: the entry has no JSON form
            here; the caller re-runs the request through the dict path for its error.
    """
    kind = type(entry)
    if kind is Person:
        text = _person(entry)  # type: ignore[arg-type]  # the exact class
    else:
        writer = _TEXT_WRITERS.get(kind)
        text = None if writer is None else writer(entry)
    return _via_dict(entry) if text is None else text


def head_and_tail(cs: ChangeSet) -> tuple[str, str]:
    """The text before the first entry and after the last one (states, then retain)."""
    head = _compact(
        {
            "from_state": encode_sync_state(cs.from_state),
            "to_state": encode_sync_state(cs.to_state),
        }
    )
    return head[:-1] + ',"entries":[', '],"retain":' + _compact(encode_retention(cs.retain)) + "}"


#: What :func:`entry_text` and :func:`head_and_tail` raise for a value with no JSON form.
TEXT_ERRORS: Final = (EncodeError, ValueError, TypeError, RecursionError, UnicodeEncodeError)


def encode_changeset_json(cs: ChangeSet) -> bytes:
    """Encode a ChangeSet to the exact bytes the Rust sync tools would send.

    Args:
        cs: the ChangeSet.

    Returns:
        Compact UTF-8 JSON bytes (backs :meth:`~kanidm_sync.ChangeSet.to_json`).

    Raises:
        EncodeError: a value has no JSON form.
    """
    try:
        parts = [entry_text(entry) for entry in cs.entries]
        prefix, suffix = head_and_tail(cs)
        # The header and the tail ride on the first and last entry: no copy of the whole text.
        if parts:
            parts[0] = prefix + parts[0]
            parts[-1] += suffix
            return ",".join(parts).encode("utf-8")
        return (prefix + suffix).encode("utf-8")
    except TEXT_ERRORS:
        pass
    # Something has no JSON form: the dict path raises the error (and path) it always raised.
    before = _tricky_floats[0]
    value = encode_changeset(cs)
    return _write(value, exact_floats=_tricky_floats[0] != before)
