"""Entry and value classes refuse wrong types when built, naming the class, field and type.

Issue 12 item 4: ``Person(mail=["a@x"])`` used to be accepted and to fail much later with
``AttributeError: 'str' object has no attribute 'primary'``. Now a wrong type is a
TypeError at construction, or an obviously meant value is converted (documented in
``_proto/_entries.py`` and docs/adapters.md).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Callable

import attrs
import pytest

import kanidm_sync as ks

U1 = uuid.UUID("9a7c1f52-4c7d-4b0e-8a43-1e4f6f1c2d10")
SECRET = "pbkdf2_sha256$36000$xIEozuZVAoYm$uW1b35DUKyhvQAf1mBqMvoBDcqSD06juzyO/nmyV0+w="


def person(**kw: object) -> ks.Person:
    base: dict[str, object] = {
        "id": U1,
        "external_id": "uid=a",
        "name": "alice",
        "displayname": "A",
    }
    base.update(kw)
    return ks.Person(**base)  # type: ignore[arg-type]


def group(**kw: object) -> ks.Group:
    base: dict[str, object] = {"id": U1, "external_id": "cn=g", "name": "g"}
    base.update(kw)
    return ks.Group(**base)  # type: ignore[arg-type]


def service(**kw: object) -> ks.ServiceAccount:
    base: dict[str, object] = {"id": U1, "name": "svc", "displayname": "S"}
    base.update(kw)
    return ks.ServiceAccount(**base)  # type: ignore[arg-type]


# --- conversions -------------------------------------------------------------------------------


def test_str_in_mail_becomes_mail_and_encodes() -> None:
    """The issue's case: a str address is taken as Mail(str), and the entry encodes."""
    p = person(mail=["a@example.org", ks.Mail("b@example.org", primary=True)])
    assert (ks.Mail("a@example.org"), ks.Mail("b@example.org", primary=True)) == p.mail
    sent = json.loads(
        ks.ChangeSet(from_state=ks.REFRESH, to_state=ks.REFRESH, entries=[p]).to_json()
    )
    assert [{"value": "a@example.org"}, {"value": "b@example.org", "primary": True}] == sent[
        "entries"
    ][0]["mail"]
    assert (ks.Mail("g@example.org"),) == group(mail=["g@example.org"]).mail
    assert (ks.Mail("s@example.org"),) == service(mail=("s@example.org",)).mail


def test_iterables_become_tuples() -> None:
    """Lists and generators become tuples; UUID members and ids given as text convert."""
    key = ks.SshPublicKey("laptop", "ssh-ed25519 AAAA")
    p = person(ssh_publickey=[key], schema_order=iter([ks.SchemaUrn.PERSON]))
    assert (key,) == p.ssh_publickey
    assert (ks.SchemaUrn.PERSON,) == p.schema_order
    g = group(id=str(U1).upper(), member=(m for m in ["cn=x", U1]))
    assert U1 == g.id
    assert ("cn=x", str(U1)) == g.member
    assert ("a",) == ks.GenericEntry(id=U1, schemas=["a"]).schemas
    assert str(U1) == ks.OAuth2Account(provider=U1, unique_user_id="u").provider


def test_evolve_checks_types_too() -> None:
    """attrs.evolve builds through the same checks."""
    with pytest.raises(TypeError, match=r"^Person\.posix must be a PosixAccount or None, not str$"):
        attrs.evolve(person(), posix="yes")


# --- refusals ----------------------------------------------------------------------------------

REFUSED = [
    pytest.param(
        lambda: person(mail=[3]),
        r"Person\.mail\[0\] must be a Mail or a str, not int",
        id="mail item",
    ),
    pytest.param(
        lambda: person(mail="a@x"),
        r"Person\.mail must be an iterable of Mail, not a single str",
        id="mail str",
    ),
    pytest.param(
        lambda: group(mail=5),
        r"Group\.mail must be an iterable of Mail, not int",
        id="mail number",
    ),
    pytest.param(
        lambda: person(name=3),
        r"Person\.name must be a str, not int",
        id="name",
    ),
    pytest.param(
        lambda: service(displayname=None),
        r"ServiceAccount\.displayname must be a str, not NoneType",
        id="displayname",
    ),
    pytest.param(
        lambda: person(legalname=b"x"),
        r"Person\.legalname must be a str or None, not bytes",
        id="legalname",
    ),
    pytest.param(
        lambda: group(external_id=U1),
        r"Group\.external_id must be a str or None, not UUID",
        id="external_id",
    ),
    pytest.param(
        lambda: group(id=42),
        r"Group\.id must be a UUID or its text, not int",
        id="id type",
    ),
    pytest.param(
        lambda: person(id="bad"),
        r"Person\.id: an entry id must be a UUID, not 'bad'",
        id="id text",
    ),
    pytest.param(
        lambda: person(ssh_publickey=["ssh-ed25519 AAAA"]),
        r"Person\.ssh_publickey\[0\] must be an SshPublicKey\(label, value\), not str",
        id="ssh str",
    ),
    pytest.param(
        lambda: person(totp_import=[{"secret": "x"}]),
        r"Person\.totp_import\[0\] must be a Totp, not dict",
        id="totp",
    ),
    pytest.param(
        lambda: person(posix=ks.PosixGroup()),
        r"Person\.posix must be a PosixAccount or None, not PosixGroup",
        id="posix of group",
    ),
    pytest.param(
        lambda: group(posix=ks.PosixAccount()),
        r"Group\.posix must be a PosixGroup or None, not PosixAccount",
        id="group posix",
    ),
    pytest.param(
        lambda: service(posix=True),
        r"ServiceAccount\.posix must be a PosixAccount or None, not bool",
        id="service posix",
    ),
    pytest.param(
        lambda: person(oauth2={"provider": "p"}),
        r"Person\.oauth2 must be an OAuth2Account or None, not dict",
        id="oauth2",
    ),
    pytest.param(
        lambda: group(member=["cn=a", 7]),
        r"Group\.member\[1\] must be a str \(an external id\) or a UUID, not int",
        id="member item",
    ),
    pytest.param(
        lambda: group(member="cn=a"),
        r"Group\.member must be an iterable of str, not a single str",
        id="member str",
    ),
    pytest.param(
        lambda: person(account_expire=dt.date(2030, 1, 1)),
        r"Person\.account_expire must be RFC 3339 text, a timezone-aware datetime or None, "
        "not date",
        id="expire type",
    ),
    pytest.param(
        lambda: service(account_valid_from=dt.datetime(2030, 1, 1)),
        r"ServiceAccount\.account_valid_from: a datetime for Kanidm must be timezone-aware",
        id="expire naive",
    ),
    pytest.param(
        lambda: person(extra=[("a", "b")]),
        r"Person\.extra must be a mapping of attribute name to JSON value, not list",
        id="extra type",
    ),
    pytest.param(
        lambda: group(extra={1: "x"}),
        r"Group\.extra keys must be attribute names \(str\), not int",
        id="extra key",
    ),
    pytest.param(
        lambda: ks.GenericEntry(id=U1, attributes="x"),
        r"GenericEntry\.attributes must be a mapping",
        id="attributes",
    ),
    pytest.param(
        lambda: ks.GenericEntry(id=U1, schemas=[1]),
        r"GenericEntry\.schemas\[0\] must be a str, not int",
        id="schemas item",
    ),
    pytest.param(
        lambda: person(schema_order="urn"),
        r"Person\.schema_order must be an iterable of str, not a single str",
        id="schema_order",
    ),
    pytest.param(
        lambda: ks.Mail(None),
        r"Mail\.value must be a str, not NoneType",
        id="mail value",
    ),
    pytest.param(
        lambda: ks.Mail("a@x", primary=1),
        r"Mail\.primary must be a bool or None, not int",
        id="mail primary",
    ),
    pytest.param(
        lambda: ks.SshPublicKey(None, "k"),
        r"SshPublicKey\.label must be a str, not NoneType",
        id="ssh label",
    ),
    pytest.param(
        lambda: ks.Totp(external_id="t", secret="AAAA", step=True),
        r"Totp\.step must be an int, not bool",
        id="totp step bool",
    ),
    pytest.param(
        lambda: ks.Totp(external_id="t", secret="AAAA", digits="6"),
        r"Totp\.digits must be an int, not str",
        id="totp digits",
    ),
    pytest.param(
        lambda: ks.Totp(external_id="t", secret="AAAA", algo=1),
        r"Totp\.algo must be a str, not int",
        id="totp algo",
    ),
    pytest.param(
        lambda: ks.PosixAccount(gidnumber="20001"),
        r"PosixAccount\.gidnumber must be an int or None, not str",
        id="posix gid",
    ),
    pytest.param(
        lambda: ks.PosixAccount(loginshell=["/bin/sh"]),
        r"PosixAccount\.loginshell must be a str or None, not list",
        id="posix shell",
    ),
    pytest.param(
        lambda: ks.PosixGroup(gidnumber=True),
        r"PosixGroup\.gidnumber must be an int or None, not bool",
        id="posixgroup gid",
    ),
    pytest.param(
        lambda: ks.OAuth2Account(provider=3, unique_user_id="u"),
        r"OAuth2Account\.provider must be a str \(an external id\) or a UUID, not int",
        id="oauth2 provider",
    ),
    pytest.param(
        lambda: ks.OAuth2Account(provider="p", unique_user_id="u", unique_user_sub=1),
        r"OAuth2Account\.unique_user_sub must be a str or None, not int",
        id="oauth2 sub",
    ),
]


@pytest.mark.parametrize(("build", "message"), REFUSED)
def test_wrong_types_are_refused_naming_class_field_and_type(
    build: Callable[[], object], message: str
) -> None:
    """Each wrong type is refused when built; the message names class, field and type."""
    with pytest.raises((TypeError, ValueError), match="^" + message):
        build()


@pytest.mark.parametrize(
    "build",
    [
        lambda v: person(password_import=v.encode()),
        lambda v: service(password_import=[v]),
        lambda v: ks.PosixAccount(unix_password_import=v.encode()),
        lambda v: ks.Totp(external_id="t", secret=v.encode()),
        lambda v: person(extra={v: 1}.keys()),
    ],
)
def test_refusals_never_quote_a_secret(build: Callable[[str], object]) -> None:
    """A secret of the wrong type is named by its type only, never shown."""
    with pytest.raises(TypeError) as info:
        build(SECRET)
    assert SECRET not in str(info.value)
    assert SECRET.encode() not in str(info.value).encode()
    assert re.search(r"\.(password_import|unix_password_import|secret|extra)", str(info.value))


def test_a_type_error_is_raised_before_anything_is_built() -> None:
    """The original symptom: no late AttributeError from a str where a Mail belongs."""
    with pytest.raises(TypeError, match=r"Person\.mail\[1\] must be a Mail or a str, not dict"):
        person(mail=[ks.Mail("a@x"), {"value": "b@x"}])
