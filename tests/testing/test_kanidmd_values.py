"""Value checks as kanidmd v1.11.1 makes them: the double, a real kanidmd, and the SDK.

Each table row goes into a small ChangeSet sent over HTTP through the ``kanidm_target``
fixture: ``[fake]`` is the in-memory double, ``[kanidmd]`` a real kanidmd (skipped unless the
suite runs with ``--kanidmd PATH``). The status and the exact body are checked, and for
accepted values also what kanidmd stores. The same rows then go through
``ChangeSet.validate()``, which must report an error exactly when kanidmd refuses.

The expected outcomes were read from kanidmd's source (release v1.11.1 and the crates it
pins; docs/double-fidelity.md, "Checked against kanidmd v1.11.1 source"); a real-server run
confirms them. Every case uses its own sync account and entry names, so cases never collide
on a shared server. Values on which kanidmd panics are only sent to the double.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from typing import Any

import httpx
import pytest

from kanidm_sync import ChangeSet
from kanidm_sync.testing import KanidmTarget

URN = "urn:ietf:params:scim:schemas:kanidm:sync:1:"
COOKIE = base64.urlsafe_b64encode(b"values-1").decode().rstrip("=")

Expected = tuple[int, object]
"""(status, body): the body as JSON (``None`` for kanidmd's ``null``)."""

OK: Expected = (200, None)
PANIC: Expected = (0, "kanidmd panics: the connection closes without an answer")
SC0001: Expected = (500, "sc0001incomingsshpublickey")
CREDIMPORT: Expected = (
    500,
    {"plugin": {"credimport": "password_import was unable to convert hash format"}},
)
GID_RANGE: Expected = (500, "pl0001gidoverlapssystemrange")


def invalid(message: str) -> Expected:
    return (400, {"invalidattribute": message})


def bad_syntax(attr: str) -> Expected:
    return (400, {"schemaviolation": {"invalidattributesyntax": attr}})


BAD_DATE = invalid(
    "value must be scim simple string with rfc3339 formatted datetime - account_expire"
)


def names(case: object) -> tuple[str, str]:
    """A sync account name and an entry name of its own for one table row."""
    digest = hashlib.sha256(repr(case).encode()).hexdigest()[:12]
    return f"sv{digest}", f"v{digest}"


def person(name: str, *, posix: bool = False, **extra: Any) -> dict[str, Any]:
    schemas = [URN + "account", URN + "person"] + ([URN + "posixaccount"] if posix else [])
    return {
        "schemas": schemas,
        "id": str(uuid.uuid4()),
        "externalId": f"uid={name},ou=people",
        "name": name,
        "displayname": "Value Test",
        **extra,
    }


def group(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "schemas": [URN + "group"],
        "id": str(uuid.uuid4()),
        "externalId": f"cn={name},ou=groups",
        "name": name,
        **extra,
    }


def request(*entries: dict[str, Any]) -> dict[str, Any]:
    return {
        "from_state": "Refresh",
        "to_state": {"Active": {"cookie": COOKIE}},
        "entries": list(entries),
        "retain": "Ignore",
    }


def sync_client(target: KanidmTarget, account: str) -> httpx.Client:
    """A new sync account's token on a plain HTTP client."""
    return target.http(target.provision_sync_account(account).token)


def push(target: KanidmTarget, account: str, *entries: dict[str, Any]) -> httpx.Response:
    """Create a sync account, then send ``entries`` with its token."""
    return sync_client(target, account).post("/scim/v1/Sync", json=request(*entries))


def expect(target: KanidmTarget, account: str, entry: dict[str, Any], want: Expected) -> None:
    """Send one entry; check status and exact body (or the closed connection)."""
    if want == PANIC:
        if target.is_real:
            pytest.skip("kanidmd panics on this value; it is not sent to a real server")
        http = sync_client(target, account)
        before = target.fingerprint()
        with pytest.raises(httpx.RemoteProtocolError):
            http.post("/scim/v1/Sync", json=request(entry))
        assert before == target.fingerprint()
        return
    response = push(target, account, entry)
    status, body = want
    text = "null" if body is None else json.dumps(body, separators=(",", ":"))
    assert (status, text) == (response.status_code, response.text)


def sdk_refuses(*entries: dict[str, Any]) -> list[str]:
    """The error codes ``ChangeSet.validate()`` reports for a request of ``entries``."""
    report = ChangeSet.from_json(json.dumps(request(*entries))).validate()
    return sorted(p.code for p in report.errors)


def check_sdk(entry: dict[str, Any], want: Expected) -> None:
    codes = sdk_refuses(entry)
    assert (want != OK) == bool(codes), codes


# --- 1. datetimes -----------------------------------------------------------------------------
# kanidm: server/lib/src/value.rs Value::new_datetime_s; time 0.3.55 Rfc3339. Any one ASCII
# character separates date and time; the stored value is UTC, nanoseconds kept.

DATES: list[tuple[str, Expected, str | None]] = [
    ("2030-01-31T00:00:00Z", OK, "2030-01-31T00:00:00Z"),
    ("2030-01-31 00:00:00+10:00", OK, "2030-01-30T14:00:00Z"),
    ("2030-01-31t00:00:00z", OK, "2030-01-31T00:00:00Z"),
    ("2030-01-31x00:00:00-00:30", OK, "2030-01-31T00:30:00Z"),
    ("2030-01-31T00:00:00.123456789+00:00", OK, "2030-01-31T00:00:00.123456789Z"),
    ("2030-01-31T00:00:00.5000Z", OK, "2030-01-31T00:00:00.5Z"),
    ("2016-12-31T23:59:60Z", OK, "2016-12-31T23:59:59.999999999Z"),
    ("0000-01-01T00:00:00Z", OK, "0000-01-01T00:00:00Z"),
    ("2016-06-15T23:59:60Z", BAD_DATE, None),
    ("2030-01-31T00:00:00", BAD_DATE, None),
    ("2030-01-31", BAD_DATE, None),
    ("2030-01-31T00:00:00+10", BAD_DATE, None),
    ("2030-01-31T00:00:00+10:60", BAD_DATE, None),
    ("2030-01-31T00:00:00+24:00", BAD_DATE, None),
    ("2030-02-30T00:00:00Z", BAD_DATE, None),
    ("2030-01-31\u00a000:00:00Z", BAD_DATE, None),
    ("2030-01-31T00:00Z", BAD_DATE, None),
    (" 2030-01-31T00:00:00Z", BAD_DATE, None),
    ("9999-12-31T23:00:00-01:00", PANIC, None),
    ("0000-01-01T00:30:00+01:00", PANIC, None),
]


@pytest.mark.parametrize(("value", "want", "stored"), DATES)
def test_datetimes(
    kanidm_target: KanidmTarget, value: str, want: Expected, stored: str | None
) -> None:
    """account_expire takes what the time crate's Rfc3339 parser takes; stored in UTC."""
    account, name = names(("date", value))
    entry = person(name, account_expire=value)
    expect(kanidm_target, account, entry, want)
    if stored is not None:
        found = kanidm_target.entry(name)
        assert found is not None
        assert (stored,) == found.get("account_expire")


@pytest.mark.parametrize(("value", "want", "stored"), DATES)
def test_datetimes_sdk(value: str, want: Expected, stored: str | None) -> None:
    """ChangeSet.validate() refuses exactly the datetimes kanidmd refuses."""
    del stored
    check_sdk(person("sdk", account_expire=value), want)


# --- 2. SSH public keys -----------------------------------------------------------------------
# kanidm: server/lib/src/idm/scim.rs -> sshkeys 0.3.4 PublicKey::from_string / from_reader.
# kanidmd stores the key re-encoded: "<type> <blob> <comment>" (a trailing space without a
# comment), the blob holding only the fields it read.

ED25519_B64 = "AAAAC3NzaC1lZDI1NTE5AAAAIAeGW1P6Pc2rPq0XqbRaDKBcXZUPRklo0L1EyR30CwoP"
ED25519 = f"ssh-ed25519 {ED25519_B64} william@amethyst"
SK_ECDSA = (
    "sk-ecdsa-sha2-nistp256@openssh.com AAAAInNrLWVjZHNhLXNoYTItbmlzdHAyNTZAb3BlbnNzaC5jb20AAAAI"
    "bmlzdHAyNTYAAABBBENubZikrb8hu+HeVRdZ0pp/VAk2qv4JDbuJhvD0yNdWDL2e3cBbERiDeNPkWx58Q4rVnxkbV1fa"
    "8E2waRtT91wAAAAEc3NoOg== testuser@fidokey"
)


def blob(key_type: str, *fields: bytes) -> str:
    raw = b"".join(len(f).to_bytes(4, "big") + f for f in (key_type.encode(), *fields))
    return base64.b64encode(raw).decode()


SHORT_ED = blob("ssh-ed25519", b"k" * 16)
ED_TRAILING = blob("ssh-ed25519", b"k" * 32)
ED_TRAILING_SENT = base64.b64encode(
    base64.b64decode(blob("ssh-ed25519", b"k" * 32)) + b"\x00\x00\x00\x03xyz"
).decode()
ECDSA_MISMATCH = blob("ecdsa-sha2-nistp256", b"nistp384", b"\x04" + b"p" * 96)
RSA_ZERO_PADDED = blob("ssh-rsa", b"\x00\x01\x00\x01", b"\x00\x00\xc5" + b"n" * 63)
RSA_NORMALISED = blob("ssh-rsa", b"\x01\x00\x01", b"\x00\xc5" + b"n" * 63)
RSA_EMPTY = blob("ssh-rsa", b"", b"\x00\xc5" + b"n" * 63)
CERT = blob("ssh-ed25519-cert-v01@openssh.com", b"nonce" * 4, b"k" * 32)
CERT_STORED = blob("ssh-ed25519", b"nonce" * 4)

SSH_KEYS: list[tuple[str, Expected, str | None]] = [
    (ED25519, OK, ED25519),
    (SK_ECDSA, OK, SK_ECDSA),
    (f"ssh-ed25519 {ED25519_B64}", OK, f"ssh-ed25519 {ED25519_B64} "),
    (f"ssh-ed25519  {ED25519_B64}\t two  words ", OK, f"ssh-ed25519 {ED25519_B64} two  words "),
    (f"ssh-ed25519\t{ED25519_B64}   ", OK, f"ssh-ed25519 {ED25519_B64} "),
    (f"{ED25519}\nssh-rsa second line", OK, ED25519),
    (f"ssh-ed25519 {SHORT_ED} short", OK, f"ssh-ed25519 {SHORT_ED} short"),
    (f"ssh-ed25519 {ED_TRAILING_SENT} tail", OK, f"ssh-ed25519 {ED_TRAILING} tail"),
    (f"ecdsa-sha2-nistp256 {ECDSA_MISMATCH} c", OK, f"ecdsa-sha2-nistp256 {ECDSA_MISMATCH} c"),
    (f"ssh-rsa {RSA_ZERO_PADDED} r", OK, f"ssh-rsa {RSA_NORMALISED} r"),
    (
        f"ssh-ed25519-cert-v01@openssh.com {CERT} c",
        OK,
        f"ssh-ed25519-cert-v01@openssh.com {CERT_STORED} c",
    ),
    (" " + ED25519, SC0001, None),
    ("\t" + ED25519, SC0001, None),
    ("\n" + ED25519, SC0001, None),
    ("", SC0001, None),
    ("ssh-ed25519", SC0001, None),
    (f"ssh-rsa {ED25519_B64} mismatch", SC0001, None),
    (f"ssh-ed448 {ED25519_B64} unknown", SC0001, None),
    (f"ssh-ed25519 {ED25519_B64[:-1]} unpadded", SC0001, None),
    (f"ssh-ed25519 {ED25519_B64[:40]}AAAA truncated", SC0001, None),
    (f"ecdsa-sha2-nistp256 {blob('ecdsa-sha2-nistp256', b'prime256', b'x')} curve", SC0001, None),
    (f"ssh-rsa {RSA_EMPTY} empty-e", PANIC, None),
]


@pytest.mark.parametrize(("line", "want", "stored"), SSH_KEYS)
def test_ssh_keys(
    kanidm_target: KanidmTarget, line: str, want: Expected, stored: str | None
) -> None:
    """ssh_publickey values are parsed as the sshkeys crate does; stored re-encoded."""
    account, name = names(("ssh", line))
    entry = person(name, ssh_publickey=[{"label": "k", "value": line}])
    expect(kanidm_target, account, entry, want)
    if stored is not None:
        found = kanidm_target.entry(name)
        assert found is not None
        assert (f"k: {stored}",) == found.get("ssh_publickey")


@pytest.mark.parametrize(("line", "want", "stored"), SSH_KEYS)
def test_ssh_keys_sdk(line: str, want: Expected, stored: str | None) -> None:
    """ChangeSet.validate() refuses exactly the keys kanidmd refuses."""
    del stored
    check_sdk(person("sdk", ssh_publickey=[{"label": "k", "value": line}]), want)


# --- 3. password hash imports -----------------------------------------------------------------
# kanidm: libs/crypto/src/lib.rs `impl TryFrom<&str> for Password`, branch by branch.


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _ab64(raw: bytes) -> str:
    return _b64(raw).rstrip("=").replace("+", ".")


def _phc(raw: bytes) -> str:
    return _b64(raw).rstrip("=")


D20, D32, D64 = bytes(range(20)), bytes(range(32)), bytes(range(64))
SALT = b"0123456789abcdef"
ARGON = f"$m=65536,t=3,p=4${_phc(SALT)}${_phc(D32)}"

PASSWORDS: list[tuple[str, bool]] = [
    # Django pbkdf2_sha256$cost$salt$hash: u32 cost ('+' allowed), any salt, >= 32 bytes.
    ("pbkdf2_sha256$36000$xIEozuZVAoYm$uW1b35DUKyhvQAf1mBqMvoBDcqSD06juzyO/nmyV0+w=", True),
    ("pbkdf2_sha256$36000$xIEozuZVAoYm$uW1b35DUKyhvQAf1mBqMvoBDcqSD06juzyO/nmyV0+w", False),
    ("pbkdf2_sha256$+36000$$" + _b64(D32), True),
    ("pbkdf2_sha256$4294967296$salt$" + _b64(D32), False),
    ("pbkdf2_sha256$36000$salt$" + _b64(D32[:31]), False),
    ("pbkdf2_sha256$36000$salt$more$" + _b64(D32), False),
    ("PBKDF2_SHA256$36000$salt$" + _b64(D32), False),
    # NT hashes: URL-safe base64 unpadded or canonically padded; hex pairs; any length.
    ("ipaNTHash: iEb36u6PsRetBr3YMLdYbA", True),
    ("ipaNTHash: iEb36u6PsRetBr3YMLdYbA==", True),
    ("ipaNTHash: iEb36u6PsRetBr3YMLdYbA=", False),
    ("ipaNTHash: iEb36u6P+RetBr3YMLdYbA", False),
    ("ipaNTHash: ", True),
    ("ipanthash: iEb36u6PsRetBr3YMLdYbA", False),
    ("sambaNTPassword: 8846F7EAEE8FB117AD06BDD830B7586C", True),
    ("sambaNTPassword: 8846f7eaee8fb117ad06bdd830b7586", False),
    ("sambaNTPassword: 88 46", False),
    # LDAP digests, any case: exact lengths; salted: the digest, then a salt (may be empty,
    # except for SSHA512).
    ("{SHA}" + _b64(D20), True),
    ("{sha}" + _b64(D20), True),
    ("{Sha256}" + _b64(D32), True),
    ("{SHA}" + _b64(D20[:19]), False),
    ("{SSHA}" + _b64(D20), True),
    ("{SSHA}" + _b64(D20[:19]), False),
    ("{SSHA256}" + _b64(D32), True),
    ("{SSHA512}" + _b64(D64), False),
    ("{ssha512}" + _b64(D64 + b"salt1234"), True),
    ("{SHA512}" + _b64(D64).rstrip("="), False),
    # OpenLDAP PBKDF2 in passlib ab64: u32 cost, any salt (even empty, partly padded), key
    # of at least 19 (SHA1) or 32 bytes.
    ("{PBKDF2}10000$" + _ab64(SALT) + "$" + _ab64(D20[:19]), True),
    ("{PBKDF2-SHA1}10000$" + _ab64(SALT) + "$" + _ab64(D20[:18]), False),
    ("{PBKDF2-SHA256}10000$" + _ab64(SALT) + "$" + _ab64(D32), True),
    ("{pbkdf2-sha512}10000$" + _ab64(SALT) + "$" + _ab64(D64), True),
    ("{PBKDF2-SHA256}10000$$" + _ab64(D32), True),
    ("{PBKDF2-SHA256}10000$AB=$" + _ab64(D32), True),
    ("{PBKDF2-SHA256}10000$" + _ab64(SALT) + "$" + _ab64(D32) + "==", False),
    ("{PBKDF2_SHA256}AAAnEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", False),
    # Argon2: an argon2id PHC string; the version (16 or 19, default 19) before the
    # parameters, whose order is free; m, t, p decimal; salt and hash present.
    ("{ARGON2}$argon2id$v=19" + ARGON, True),
    ("{ARGON2}$argon2id$v=19$t=3,p=4,m=65536$" + _phc(SALT) + "$" + _phc(D32), True),
    ("{ARGON2}$argon2id" + ARGON, True),
    ("{argon2}$argon2id$v=16" + ARGON, True),
    ("{ARGON2}$argon2id$m=65536,t=3,p=4$v=19$" + _phc(SALT) + "$" + _phc(D32), False),
    ("{ARGON2}$argon2i$v=19" + ARGON, False),
    ("{ARGON2}$argon2id$v=18" + ARGON, False),
    ("{ARGON2}$argon2id$v=19$m=065536,t=3,p=4$" + _phc(SALT) + "$" + _phc(D32), False),
    ("{ARGON2}$argon2id$v=19$m=65536,t=3,p=4$" + _phc(SALT) + "$" + _phc(D32[:8]), False),
    ("{ARGON2}$argon2id$v=19$m=65536,t=3,p=4$" + _phc(SALT), False),
    # crypt: only the $1$ (salt$hash), $5$ and $6$ prefixes are looked at; no bcrypt.
    ("{CRYPT}$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2", True),
    ("{crypt}$5$anything", True),
    ("{CRYPT}$1$salt$hash", True),
    ("{CRYPT}$1$saltonly", False),
    ("{CRYPT}$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW", False),
    ("{CRYPT}$y$j9T$salt$hash", False),
    ("{BCRYPT}$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW", False),
    ("$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW", False),
    # Anything else.
    ("", False),
    ("hunter2", False),
    ("{SHA" + _b64(D20), False),
    ("{MD5}" + _b64(D20[:16]), False),
]


@pytest.mark.parametrize(("value", "accepted"), PASSWORDS)
def test_password_imports(kanidm_target: KanidmTarget, value: str, accepted: bool) -> None:
    """password_import takes exactly the hash formats kanidm's crypto crate parses."""
    account, name = names(("password", value))
    entry = person(name, password_import=value)
    expect(kanidm_target, account, entry, OK if accepted else CREDIMPORT)


@pytest.mark.parametrize(("value", "accepted"), PASSWORDS)
def test_password_imports_sdk(value: str, accepted: bool) -> None:
    """ChangeSet.validate() refuses exactly the hashes kanidmd refuses."""
    check_sdk(person("sdk", password_import=value), OK if accepted else CREDIMPORT)


# --- 4. control characters --------------------------------------------------------------------
# kanidm: server/lib/src/value.rs validate_str_escapes ([[:cntrl:]], ASCII only in Rust's regex
# crate) and validate_singleline ([\n\r\t]): C1 controls and other Unicode format characters
# are stored; names and mails fail their own regexes.

CONTROLS: list[tuple[str, str, dict[str, Any], Expected]] = [
    ("nel displayname", "person", {"displayname": "Zo\u00eb\u0085"}, OK),
    ("c1 displayname", "person", {"displayname": "a\u0080b\u009fc"}, OK),
    ("line separator", "person", {"displayname": "a\u2028b"}, OK),
    ("bidi mark", "person", {"displayname": "a\u200fb"}, OK),
    ("c1 legalname", "person", {"legalname": "\u0090legal"}, OK),
    ("c1 description", "group", {"description": "x\u0080y"}, OK),
    ("c1 external id", "person", {"externalId": "uid=c1\u0085,ou=people"}, OK),
    ("c1 ssh label", "person", {"ssh_publickey": [{"label": "k\u0085", "value": ED25519}]}, OK),
    ("c1 loginshell", "posix", {"loginshell": "/bin/\u0085sh"}, OK),
    ("del displayname", "person", {"displayname": "a\x7fb"}, bad_syntax("displayname")),
    ("esc displayname", "person", {"displayname": "a\x1b[31m"}, bad_syntax("displayname")),
    ("tab displayname", "person", {"displayname": "a\tb"}, bad_syntax("displayname")),
    ("nul description", "group", {"description": "x\x00"}, bad_syntax("description")),
    ("del external id", "person", {"externalId": "uid=x\x7f"}, bad_syntax("sync_external_id")),
    ("tab ssh label", "person", {"ssh_publickey": [{"label": "a\tb", "value": ED25519}]},
     bad_syntax("ssh_publickey")),
    ("c1 mail", "person", {"mail": [{"value": "a\u0085@example.org"}]}, bad_syntax("mail")),
    ("c1 name", "person", {"name": "al\u0085ice"}, bad_syntax("name")),
]  # fmt: skip


def build(kind: str, name: str, extra: dict[str, Any]) -> dict[str, Any]:
    entry = group(name) if kind == "group" else person(name, posix=kind == "posix")
    entry.update(extra)
    return entry


@pytest.mark.parametrize(("case", "kind", "extra", "want"), CONTROLS)
def test_control_characters(
    kanidm_target: KanidmTarget, case: str, kind: str, extra: dict[str, Any], want: Expected
) -> None:
    """ASCII controls are refused in UTF-8 values; C1 controls are stored as sent."""
    account, name = names(("control", case))
    entry = build(kind, name, extra)
    expect(kanidm_target, account, entry, want)
    if want == OK:
        found = kanidm_target.entry(uuid.UUID(entry["id"]))
        assert found is not None
        for attr, value in extra.items():
            if isinstance(value, str) and attr != "externalId":
                assert (value,) == found.get(attr)


@pytest.mark.parametrize(("case", "kind", "extra", "want"), CONTROLS)
def test_control_characters_sdk(
    case: str, kind: str, extra: dict[str, Any], want: Expected
) -> None:
    """ChangeSet.validate() refuses ASCII controls and only warns about C1 controls."""
    del case
    check_sdk(build(kind, "sdk", extra), want)


# --- 5. the Authorization header --------------------------------------------------------------
# kanidm: server/core/src/https/extractors/mod.rs: the header value split at its first space,
# the scheme compared lower-cased, the rest parsed as a compact JWS (compact_jwt 0.5
# JwsCompact::from_str: base64url fields, no whitespace) or silently ignored; the `bearer`
# cookie only without an Authorization header. httparse trims the value's ends first.

BEARERS: list[tuple[str, str, bool]] = [
    ("authorization", "Bearer {t}", True),
    ("authorization", "bearer {t}", True),
    ("authorization", "BEARER {t}", True),
    ("authorization", "Bearer  {t}", False),
    ("authorization", "Bearer\t{t}", False),
    ("authorization", "Bearer {t} x", False),
    ("authorization", "Bearer {t}.x", False),
    ("authorization", "Token {t}", False),
    ("authorization", "Basic {t}", False),
    ("authorization", "{t}", False),
    ("authorization", "Bearer", False),
    ("cookie", "bearer={t}", True),
    ("cookie", "other=1; bearer={t}", True),
]


@pytest.mark.parametrize(("header", "template", "accepted"), BEARERS)
def test_authorization_header(
    kanidm_target: KanidmTarget, header: str, template: str, accepted: bool
) -> None:
    """Which spellings of the sync token reach the sync endpoint (GET /scim/v1/Sync)."""
    account, _ = names(("bearer", header, template))
    token = kanidm_target.provision_sync_account(account).token
    http = kanidm_target.http()
    response = http.get("/scim/v1/Sync", headers={header: template.format(t=token)})
    if accepted:
        assert (200, '"Refresh"') == (response.status_code, response.text)
    else:
        assert (401, '"notauthenticated"') == (response.status_code, response.text)


def test_cookie_is_ignored_beside_an_authorization_header(kanidm_target: KanidmTarget) -> None:
    """With any Authorization header, even an unusable one, the bearer cookie is not read."""
    token = kanidm_target.provision_sync_account("sv_cookie_beside_header").token
    http = kanidm_target.http()
    headers = {"authorization": "Token x", "cookie": f"bearer={token}"}
    response = http.get("/scim/v1/Sync", headers=headers)
    assert (401, '"notauthenticated"') == (response.status_code, response.text)


@pytest.mark.parametrize(
    ("first", "second", "accepted"),
    [("Bearer {t}", "Token x", True), ("Token x", "Bearer {t}", False)],
)
def test_first_authorization_header_counts(
    kanidm_target: KanidmTarget, first: str, second: str, accepted: bool
) -> None:
    """Of two Authorization headers only the first is read (``HeaderMap::get``)."""
    account, _ = names(("two headers", first))
    token = kanidm_target.provision_sync_account(account).token
    headers = [("authorization", first.format(t=token)), ("authorization", second)]
    response = kanidm_target.http().get("/scim/v1/Sync", headers=headers)
    assert (200 if accepted else 401) == response.status_code


def test_non_ascii_authorization_header_is_ignored(kanidm_target: KanidmTarget) -> None:
    """A header value that is not visible ASCII is ignored (``HeaderValue::to_str``)."""
    token = kanidm_target.provision_sync_account("sv_non_ascii_header").token
    value = f"Bearer {token}".encode() + b"\xa0"
    response = kanidm_target.http().get("/scim/v1/Sync", headers={"authorization": value})
    assert (401, '"notauthenticated"') == (response.status_code, response.text)


@pytest.mark.parametrize("template", [" Bearer {t}", "Bearer {t} ", "Bearer {t}\t"])
def test_authorization_header_ends_are_trimmed(kanidm_target: KanidmTarget, template: str) -> None:
    """Whitespace around the header value is not part of it (httparse trims it)."""
    if kanidm_target.is_real:
        pytest.skip("h11 refuses to send a header value with whitespace at its ends")
    account, _ = names(("trim", template))
    token = kanidm_target.provision_sync_account(account).token
    response = kanidm_target.http().get(
        "/scim/v1/Sync", headers={"authorization": template.format(t=token)}
    )
    assert 200 == response.status_code


# --- 6. other value syntaxes ------------------------------------------------------------------
# mail: value.rs VALIDATE_EMAIL_RE; name: INAME_RE after lower-casing, not a UUID, not root;
# gidnumber: scim.rs u32 bounds, then plugins/gidnumber.rs ranges; empty strings:
# valueset/utf8.rs and valueset/ssh.rs refuse them at schema validation, valueset/iutf8.rs
# (loginshell, the external id) does not.

OTHERS: list[tuple[str, str, dict[str, Any], Expected]] = [
    ("slash in mail", "person", {"mail": [{"value": "a/b@example.org"}]}, OK),
    ("mail case kept", "person", {"mail": [{"value": "A.B@Example.ORG"}]}, OK),
    ("dotless mail", "person", {"mail": [{"value": "root@localhost"}]}, OK),
    ("mail hyphen label", "person", {"mail": [{"value": "a@-b.org"}]}, bad_syntax("mail")),
    ("mail idn", "person", {"mail": [{"value": "a@b\u00fccher.de"}]}, bad_syntax("mail")),
    ("empty mail", "person", {"mail": [{"value": ""}]}, bad_syntax("mail")),
    ("name 64", "person", {"name": "n" + "a" * 63}, OK),
    ("name 65", "person", {"name": "n" + "a" * 64}, bad_syntax("name")),
    ("name kelvin", "person", {"name": "\u212aelvin-values"}, OK),
    ("name uuid", "person", {"name": "deadbeefdeadbeefdeadbeefdeadbeef"}, bad_syntax("name")),
    ("name root", "person", {"name": "Root"}, bad_syntax("name")),
    ("name digit", "person", {"name": "1abc"}, bad_syntax("name")),
    ("gid 1000", "posix", {"gidnumber": 1000}, OK),
    ("gid nspawn", "posix", {"gidnumber": 524288}, OK),
    ("gid 999", "posix", {"gidnumber": 999}, GID_RANGE),
    ("gid homed", "posix", {"gidnumber": 60001}, GID_RANGE),
    ("gid nobody", "posix", {"gidnumber": 65534}, GID_RANGE),
    ("gid 2^31", "posix", {"gidnumber": 2147483648}, GID_RANGE),
    ("gid 2^32", "posix", {"gidnumber": 4294967296},
     invalid("Out of bounds unsigned integer - gidnumber")),
    ("gid -1", "posix", {"gidnumber": -1}, invalid("Out of bounds unsigned integer - gidnumber")),
    ("empty displayname", "person", {"displayname": ""}, bad_syntax("displayname")),
    ("empty legalname", "person", {"legalname": ""}, bad_syntax("legalname")),
    ("empty description", "group", {"description": ""}, bad_syntax("description")),
    ("empty ssh label", "person", {"ssh_publickey": [{"label": "", "value": ED25519}]},
     bad_syntax("ssh_publickey")),
    ("empty loginshell", "posix", {"loginshell": ""}, OK),
    ("empty external id", "person", {"externalId": ""}, OK),
    ("long displayname", "person", {"displayname": "d" * 10000}, OK),
]  # fmt: skip


@pytest.mark.parametrize(("case", "kind", "extra", "want"), OTHERS)
def test_other_values(
    kanidm_target: KanidmTarget, case: str, kind: str, extra: dict[str, Any], want: Expected
) -> None:
    """Mail, name, gidnumber and empty-string rules."""
    account, name = names(("other", case))
    entry = build(kind, name, extra)
    expect(kanidm_target, account, entry, want)
    if want == OK and "name" in extra:
        assert kanidm_target.entry(extra["name"].lower()) is not None


@pytest.mark.parametrize(("case", "kind", "extra", "want"), OTHERS)
def test_other_values_sdk(case: str, kind: str, extra: dict[str, Any], want: Expected) -> None:
    """ChangeSet.validate() agrees on the same rows."""
    del case
    check_sdk(build(kind, "sdk", extra), want)


MEMBER_FORMS: list[tuple[str, bool]] = [
    ("{u}", True),
    ("{U}", True),
    ("{s}", True),
    ("{{{u}}}", True),
    ("urn:uuid:{u}", True),
    ("URN:UUID:{u}", False),
    ("{{{u}", False),
    ("urn:uuid:{s}", False),
]


@pytest.mark.parametrize(("form", "resolves"), MEMBER_FORMS)
def test_member_uuid_forms(kanidm_target: KanidmTarget, form: str, resolves: bool) -> None:
    """A member in a form Rust's Uuid::parse_str takes is a direct reference.

    Any other string is looked up as an external id and, unknown, silently dropped.
    """
    account, name = names(("member", form))
    member = person(name + "m")
    uid = uuid.UUID(member["id"])
    ref = form.format(u=str(uid), U=str(uid).upper(), s=uid.hex)
    team = group(name + "g", member=[{"external_id": ref}])
    response = push(kanidm_target, account, member, team)
    assert (200, "null") == (response.status_code, response.text)
    found = kanidm_target.entry(uuid.UUID(team["id"]))
    assert found is not None
    assert ((str(uid),) if resolves else ()) == tuple(str(m) for m in found.get("member"))
    assert [] == sdk_refuses(member, team)
