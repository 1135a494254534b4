"""Adversarial audit of FakeKanidm against the protocol spec, over HTTP with raw JSON bodies.

Each test in the "findings" sections failed before the fix it names; the "pinned" sections
lock down behaviour the audit checked and found correct on less-travelled paths (duplicate
ids, retain, refresh cleanup, yields, accumulating classes, error precedence, tokens).
Every rejected request is also checked to leave the store's fingerprint unchanged.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kanidm_sync import DecodeError
from kanidm_sync._proto._codec import decode_cookie
from kanidm_sync.testing import FakeKanidm, ProvisionedSyncAccount
from kanidm_sync.testing._parse import decode_cookie_b64

URN = "urn:ietf:params:scim:schemas:kanidm:sync:1:"
JSON_CT = {"content-type": "application/json"}
C1 = "AQIDBA"  # bytes 01 02 03 04
ACTIVE = {"Active": {"cookie": C1}}
U1 = uuid.UUID("11111111-1111-4111-8111-111111111111")
U2 = uuid.UUID("22222222-2222-4222-8222-222222222222")
U3 = uuid.UUID("33333333-3333-4333-8333-333333333333")
NT_HASH = "ipaNTHash: iEb36u6PsRetBr3YMLdYbA"


@pytest.fixture(name="fake")
def fake_fixture() -> FakeKanidm:
    """A fresh in-memory Kanidm."""
    return FakeKanidm()


@pytest.fixture(name="acct")
def acct_fixture(fake: FakeKanidm) -> ProvisionedSyncAccount:
    """A sync account ``ipasync`` with a token."""
    return fake.provision_sync_account("ipasync")


@pytest.fixture(name="client")
def client_fixture(fake: FakeKanidm) -> Iterator[httpx.Client]:
    """An unauthenticated client on the fake's transport."""
    with httpx.Client(transport=fake.transport, base_url=fake.url) as client:
        yield client


@pytest.fixture(name="admin")
def admin_fixture(fake: FakeKanidm) -> Iterator[httpx.Client]:
    """A client carrying the read-write admin API token."""
    headers = {"authorization": f"Bearer {fake.admin_token}", **JSON_CT}
    with httpx.Client(transport=fake.transport, base_url=fake.url, headers=headers) as client:
        yield client


def request(
    entries: list[dict[str, Any]],
    *,
    from_state: Any = "Refresh",
    to_state: Any = ACTIVE,
    retain: Any = "Ignore",
) -> bytes:
    body = {"from_state": from_state, "to_state": to_state, "entries": entries, "retain": retain}
    return json.dumps(body).encode()


def group(uid: uuid.UUID, name: str, **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "schemas": [URN + "group"],
        "id": str(uid),
        "externalId": f"cn={name}",
        "name": name,
    }
    entry.update(extra)
    return entry


def person(uid: uuid.UUID, name: str, **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "schemas": [URN + "account", URN + "person"],
        "id": str(uid),
        "externalId": f"uid={name}",
        "name": name,
        "displayname": name.title(),
    }
    entry.update(extra)
    return entry


def push(
    client: httpx.Client, acct: ProvisionedSyncAccount, body: bytes, **headers: str
) -> httpx.Response:
    all_headers = {"authorization": f"Bearer {acct.token}", **JSON_CT, **headers}
    return client.post("/scim/v1/Sync", content=body, headers=all_headers)


def push_rejected(
    fake: FakeKanidm, client: httpx.Client, acct: ProvisionedSyncAccount, body: bytes
) -> httpx.Response:
    """Push a request expected to fail, and check that nothing changed."""
    before = fake.store.fingerprint()
    response = push(client, acct, body)
    assert 200 != response.status_code, response.text
    assert before == fake.store.fingerprint()
    return response


def state(client: httpx.Client, acct: ProvisionedSyncAccount) -> Any:
    return client.get("/scim/v1/Sync", headers={"authorization": f"Bearer {acct.token}"}).json()


def gid_body(literal: str) -> bytes:
    entry = (
        f'{{"schemas":["{URN}group","{URN}posixgroup"],"id":"{U1}","externalId":"g",'
        f'"name":"g","gidnumber":{literal}}}'
    )
    return (
        f'{{"from_state":"Refresh","to_state":"Refresh","entries":[{entry}],"retain":"Ignore"}}'
    ).encode()


# --- findings: §3.5 value model and JSON syntax ------------------------------------------------


@pytest.mark.parametrize("literal", ["9223372036854775808", "18446744073709551615"])
def test_integer_above_i64_is_a_decimal(
    fake: FakeKanidm, client: httpx.Client, acct: ProvisionedSyncAccount, literal: str
) -> None:
    """§3.5: an integer not fitting i64 parses as Decimal, so a u32 attribute cannot convert it."""
    response = push_rejected(fake, client, acct, gid_body(literal))
    assert 400 == response.status_code
    assert {"invalidattribute": "Unsupported attribute conversion - gidnumber"} == response.json()


def test_integer_in_i64_range_out_of_u32_is_out_of_bounds(
    fake: FakeKanidm, client: httpx.Client, acct: ProvisionedSyncAccount
) -> None:
    """§3.9: an Integer outside 0..2^32-1 is the out-of-bounds error, not a conversion error."""
    response = push_rejected(fake, client, acct, gid_body("9223372036854775807"))
    assert {"invalidattribute": "Out of bounds unsigned integer - gidnumber"} == response.json()


@pytest.mark.parametrize("literal", ["1e400", "-1e400", "1" * 400])
def test_number_beyond_f64_is_a_syntax_error(
    fake: FakeKanidm, client: httpx.Client, acct: ProvisionedSyncAccount, literal: str
) -> None:
    """serde_json refuses a number out of the f64 range: 400 text, before any apply."""
    response = push_rejected(fake, client, acct, gid_body(literal))
    assert 400 == response.status_code
    assert response.text.startswith("Failed to parse the request body as JSON: ")
    assert response.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize("escaped", [r'"\ud800"', r'"x\udc00"', r'"\ud83d x"'])
def test_escaped_lone_surrogate_is_a_syntax_error(
    fake: FakeKanidm, client: httpx.Client, acct: ProvisionedSyncAccount, escaped: str
) -> None:
    """serde_json refuses an escaped lone surrogate: 400, nothing stored."""
    body = request([group(U1, "g")]).replace(b'"cn=g"', escaped.encode())
    response = push_rejected(fake, client, acct, body)
    assert 400 == response.status_code
    assert response.text.startswith("Failed to parse the request body as JSON: ")


def test_escaped_surrogate_pair_is_accepted(
    fake: FakeKanidm, client: httpx.Client, acct: ProvisionedSyncAccount
) -> None:
    """A correctly paired surrogate escape is one emoji, stored lower-cased as the external id."""
    body = request([group(U1, "g")]).replace(b'"cn=g"', rb'"\ud83d\ude00"')
    assert 200 == push(client, acct, body).status_code
    entry = fake.store.entry(U1)
    assert entry is not None
    assert ("\U0001f600",) == entry.get("sync_external_id")


def test_lone_surrogate_in_attribute_name_is_a_syntax_error(
    fake: FakeKanidm, client: httpx.Client, acct: ProvisionedSyncAccount
) -> None:
    """Keys are JSON strings too: an escaped lone surrogate there is also refused with 400."""
    body = request([group(U1, "g", description="d")]).replace(b'"description"', rb'"\udfff"')
    assert 400 == push_rejected(fake, client, acct, body).status_code


# --- findings: §3.2 cookie padding --------------------------------------------------------------


@pytest.mark.parametrize(
    ("cookie", "expected"),
    [("AQIDBA=", "AQIDBA"), ("AQ=", "AQ"), ("AQ==", "AQ"), ("AQI=", "AQI")],
)
def test_partly_padded_cookie_is_accepted(
    client: httpx.Client, acct: ProvisionedSyncAccount, cookie: str, expected: str
) -> None:
    """§3.2 [inferred]: base64 Indifferent padding mode accepts canonical or fewer `=`."""
    body = request([], to_state={"Active": {"cookie": cookie}})
    assert 200 == push(client, acct, body).status_code
    assert {"Active": {"cookie": expected}} == state(client, acct)
    follow = request([], from_state={"Active": {"cookie": cookie}}, to_state="Refresh")
    assert 200 == push(client, acct, follow).status_code


@pytest.mark.parametrize("cookie", ["AQIDBA===", "AQI==", "A", "====", "+/8", "AQIDBB"])
def test_bad_cookie_is_422(
    fake: FakeKanidm, client: httpx.Client, acct: ProvisionedSyncAccount, cookie: str
) -> None:
    """Excess padding, impossible length, standard alphabet, unused bits set: 422 text."""
    response = push_rejected(
        fake, client, acct, request([], to_state={"Active": {"cookie": cookie}})
    )
    assert 422 == response.status_code


@pytest.mark.parametrize("length", range(8))
def test_cookie_of_every_length_round_trips(
    client: httpx.Client, acct: ProvisionedSyncAccount, length: int
) -> None:
    """Cookies of every length mod 3, sent padded, come back unpadded with the same bytes."""
    raw = bytes(range(250, 250 - length, -1))
    padded = base64.urlsafe_b64encode(raw).decode()
    assert (
        200 == push(client, acct, request([], to_state={"Active": {"cookie": padded}})).status_code
    )
    assert {"Active": {"cookie": padded.rstrip("=")}} == state(client, acct)


# --- findings: §3.9.4 TOTP secret ----------------------------------------------------------------


def _totp(secret: str) -> dict[str, Any]:
    return {"external_id": "t", "secret": secret, "algo": "sha1", "step": 30, "digits": 6}


@pytest.mark.parametrize("secret", ["AB==", "AAB=", "-_9="])
def test_totp_secret_with_unused_bits_set_is_refused(
    fake: FakeKanidm, client: httpx.Client, acct: ProvisionedSyncAccount, secret: str
) -> None:
    """§3.9.4 [inferred]: the base64 crate refuses set unused bits in the last symbol."""
    entry = person(U1, "alice", password_import=NT_HASH, totp_import=[_totp(secret)])
    response = push_rejected(fake, client, acct, request([entry]))
    assert {"invalidattribute": "secret must be base64 string - totp_import"} == response.json()


@pytest.mark.parametrize("secret", ["AA==", "-_8=", "+/8=", "AAAA"])
def test_canonical_totp_secret_is_accepted(
    client: httpx.Client, acct: ProvisionedSyncAccount, secret: str
) -> None:
    """Canonical URL-safe or standard base64 with canonical padding is accepted."""
    entry = person(U1, "alice", password_import=NT_HASH, totp_import=[_totp(secret)])
    assert 200 == push(client, acct, request([entry])).status_code


# --- findings: §2.1 bearer extraction, §2.2 A6 ---------------------------------------------------


def test_bearer_cookie_ignored_when_authorization_header_present(
    client: httpx.Client, acct: ProvisionedSyncAccount
) -> None:
    """§2.1: the `bearer` cookie is only read without an Authorization header."""
    headers = {"authorization": "Basic abc", "cookie": f"bearer={acct.token}"}
    response = client.get("/scim/v1/Sync", headers=headers)
    assert 401 == response.status_code
    assert "Bearer" == response.headers["www-authenticate"]
    assert (
        200 == client.get("/scim/v1/Sync", headers={"cookie": f"bearer={acct.token}"}).status_code
    )


def test_patch_without_attributes_is_emptyrequest(fake: FakeKanidm, admin: httpx.Client) -> None:
    """A6 [inferred]: an empty modification list is kanidmd's EmptyRequest (400)."""
    fake.create_sync_account("ipasync")
    before = fake.store.fingerprint()
    response = admin.patch("/v1/sync_account/ipasync", content=b'{"attrs":{}}')
    assert 400 == response.status_code
    assert "emptyrequest" == response.json()
    assert before == fake.store.fingerprint()


# --- pinned: §4.2-§4.6 less-travelled apply paths ------------------------------------------------


def test_duplicate_ids_last_wins(
    fake: FakeKanidm, client: httpx.Client, acct: ProvisionedSyncAccount
) -> None:
    """§4.2.5: with a duplicate id only the last occurrence is applied."""
    body = request([group(U1, "first"), group(U1, "second")])
    assert 200 == push(client, acct, body).status_code
    entry = fake.store.entry(U1)
    assert entry is not None
    assert ("second",) == entry.get("name")
    assert ("cn=second",) == entry.get("sync_external_id")
    assert fake.store.entry("first") is None


def test_retain_not_listing_a_sent_entry_recycles_it(
    fake: FakeKanidm, client: httpx.Client, acct: ProvisionedSyncAccount
) -> None:
    """§4.6: Retain runs after phase 3, so an entry sent but not retained ends up recycled."""
    body = request([group(U1, "g1"), group(U2, "g2")], retain={"Retain": [str(U2)]})
    assert 200 == push(client, acct, body).status_code
    assert "recycled" == fake.store.entry(U1).state  # type: ignore[union-attr]
    assert "live" == fake.store.entry(U2).state  # type: ignore[union-attr]


def test_member_external_id_of_entry_deleted_by_refresh_cleanup_is_dropped(
    fake: FakeKanidm, client: httpx.Client, acct: ProvisionedSyncAccount
) -> None:
    """§3.9.1/§4.4: cleanup runs before phase 3, so the external id no longer resolves."""
    assert 200 == push(client, acct, request([person(U1, "alice"), group(U2, "g")])).status_code
    member = [{"external_id": "uid=alice"}]
    assert 200 == push(client, acct, request([group(U2, "g", member=member)])).status_code
    assert "recycled" == fake.store.entry(U1).state  # type: ignore[union-attr]
    assert () == fake.store.entry(U2).get("member")  # type: ignore[union-attr]


def test_member_uuid_of_entry_deleted_by_refresh_cleanup_fails(
    fake: FakeKanidm, client: httpx.Client, acct: ProvisionedSyncAccount
) -> None:
    """§4.4/§4.5e [inferred]: a UUID reference to a just-recycled entry fails integrity."""
    assert 200 == push(client, acct, request([person(U1, "alice"), group(U2, "g")])).status_code
    body = request([group(U2, "g", member=[{"external_id": str(U1)}])])
    response = push_rejected(fake, client, acct, body)
    assert 500 == response.status_code
    assert {"plugin": {"referentialintegrity": "Uuid referenced not found in database"}} == (
        response.json()
    )


def test_yield_survives_refresh_and_sending_it_fails(
    fake: FakeKanidm, client: httpx.Client, acct: ProvisionedSyncAccount, admin: httpx.Client
) -> None:
    """§3.6/§4.5: yielded attributes survive a refresh; sending one is invalidentrystate."""
    assert 200 == push(client, acct, request([person(U1, "alice")])).status_code
    put = admin.put("/v1/sync_account/ipasync/_attr/sync_yield_authority", content=b'["LegalName"]')
    assert 200 == put.status_code
    fake.store.set_attribute(U1, "legalname", ["Alice L"])
    assert 200 == push(client, acct, request([person(U1, "alice")])).status_code
    assert ("Alice L",) == fake.store.entry(U1).get("legalname")  # type: ignore[union-attr]
    body = request([person(U1, "alice", legalname="x")], from_state=ACTIVE)
    assert "invalidentrystate" == push_rejected(fake, client, acct, body).json()


def test_phantom_import_unaffected_by_yield(
    fake: FakeKanidm, client: httpx.Client, acct: ProvisionedSyncAccount, admin: httpx.Client
) -> None:
    """§3.6: phantoms are never yielded, so password_import still works when listed."""
    put = admin.put(
        "/v1/sync_account/ipasync/_attr/sync_yield_authority", content=b'["password_import"]'
    )
    assert 200 == put.status_code
    assert (
        200 == push(client, acct, request([person(U1, "a", password_import=NT_HASH)])).status_code
    )
    assert ("password(nt_md4)",) == fake.store.entry(U1).get("primary_credential")  # type: ignore[union-attr]


def test_purge_only_attributes_wiped_unless_yielded(
    fake: FakeKanidm, client: httpx.Client, acct: ProvisionedSyncAccount, admin: httpx.Client
) -> None:
    """§3.6/§8.12: primary_credential is wiped by an apply without password_import."""
    assert (
        200 == push(client, acct, request([person(U1, "a", password_import=NT_HASH)])).status_code
    )
    assert 200 == push(client, acct, request([person(U1, "a")], from_state=ACTIVE)).status_code
    assert () == fake.store.entry(U1).get("primary_credential")  # type: ignore[union-attr]
    put = admin.put(
        "/v1/sync_account/ipasync/_attr/sync_yield_authority", content=b'["primary_credential"]'
    )
    assert 200 == put.status_code
    with_pw = request([person(U1, "a", password_import=NT_HASH)], from_state=ACTIVE)
    assert 200 == push(client, acct, with_pw).status_code
    assert 200 == push(client, acct, request([person(U1, "a")], from_state=ACTIVE)).status_code
    assert ("password(nt_md4)",) == fake.store.entry(U1).get("primary_credential")  # type: ignore[union-attr]


@pytest.mark.parametrize("attr", ["primary_credential", "passkeys", "radius_secret"])
def test_sending_purge_only_attribute_is_unsupported(
    fake: FakeKanidm, client: httpx.Client, acct: ProvisionedSyncAccount, attr: str
) -> None:
    """§3.6: purge-only attributes have no converter: 400 Unsupported attribute conversion."""
    response = push_rejected(fake, client, acct, request([person(U1, "a", **{attr: "x"})]))
    assert {"invalidattribute": f"Unsupported attribute conversion - {attr}"} == response.json()


def test_classes_accumulate_after_urn_dropped(
    fake: FakeKanidm, client: httpx.Client, acct: ProvisionedSyncAccount
) -> None:
    """§4.5.3/§8.13: a dropped URN keeps its class and attributes, which become unwritable."""
    posix = person(U1, "a", gidnumber=5000, loginshell="/bin/SH")
    posix["schemas"] = [URN + "account", URN + "person", URN + "posixaccount"]
    assert 200 == push(client, acct, request([posix])).status_code
    assert 200 == push(client, acct, request([person(U1, "a")], from_state=ACTIVE)).status_code
    entry = fake.store.entry(U1)
    assert entry is not None
    assert "posixaccount" in entry.classes
    assert (5000,) == entry.get("gidnumber")
    assert ("/bin/sh",) == entry.get("loginshell")
    assert ("account", "person", "posixaccount") == entry.get("sync_class")
    body = request([person(U1, "a", gidnumber=5001)], from_state=ACTIVE)
    assert "invalidentrystate" == push_rejected(fake, client, acct, body).json()


def test_mail_primary_last_flag_wins(
    fake: FakeKanidm, client: httpx.Client, acct: ProvisionedSyncAccount
) -> None:
    """§3.9.6: the last item flagged primary wins; unflagged, the first listed is primary."""
    mail = [
        {"value": "a@x.org"},
        {"value": "b@x.org", "primary": True},
        {"value": "c@x.org", "primary": True},
        {"value": "d@x.org", "type": "work"},
    ]
    assert 200 == push(client, acct, request([person(U1, "a", mail=mail)])).status_code
    assert "c@x.org" == fake.store.entry(U1).first("mail")  # type: ignore[union-attr]
    plain = [{"value": "b@x.org", "primary": False}, {"value": "a@x.org"}]
    body = request([person(U1, "a", mail=plain)], from_state=ACTIVE)
    assert 200 == push(client, acct, body).status_code
    assert ("b@x.org", "a@x.org") == fake.store.entry(U1).get("mail")  # type: ignore[union-attr]


def test_gidnumber_generated_from_uuid_and_rederived(
    fake: FakeKanidm, client: httpx.Client, acct: ProvisionedSyncAccount
) -> None:
    """§3.9.3: 0x70000000 | (last 4 UUID bytes & 0x0FFFFFFF), re-derived on every apply."""
    uid = uuid.UUID("0c2b5e6a-7f3e-4d5b-9c1a-2b3c4d5e6f70")
    entry = group(uid, "staff", schemas=[URN + "group", URN + "posixgroup"])
    expected = 0x70000000 | (0x4D5E6F70 & 0x0FFFFFFF)
    assert 200 == push(client, acct, request([entry])).status_code
    assert (expected,) == fake.store.entry(uid).get("gidnumber")  # type: ignore[union-attr]
    with_gid = dict(entry, gidnumber=20100)
    assert 200 == push(client, acct, request([with_gid], from_state=ACTIVE)).status_code
    assert 200 == push(client, acct, request([entry], from_state=ACTIVE)).status_code
    assert (expected,) == fake.store.entry(uid).get("gidnumber")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("form", "ok"),
    [
        (str(U1).upper(), True),
        (U1.hex, True),
        (f"urn:uuid:{U1}", True),
        (f"{{{U1}}}", True),
        (f"{{{U1.hex}}}", False),
        (f"urn:uuid:{U1.hex}", False),
        (f"URN:UUID:{U1}", False),
        (f" {U1}", False),
    ],
)
def test_uuid_forms_on_input(
    fake: FakeKanidm, client: httpx.Client, acct: ProvisionedSyncAccount, form: str, ok: bool
) -> None:
    """§3.1: the Rust uuid crate's forms (hyphenated, simple, urn, braced) and no others."""
    entry = group(U1, "g")
    entry["id"] = form
    response = push(client, acct, request([entry]))
    assert (200 if ok else 422) == response.status_code
    assert ok == (fake.store.entry(U1) is not None)


def test_refresh_null_spelling_of_unit_variants(
    client: httpx.Client, acct: ProvisionedSyncAccount
) -> None:
    """§3.1: `{"Refresh":null}` and `{"Ignore":null}` are accepted as the unit variants."""
    body = request([], from_state={"Refresh": None}, to_state={"Refresh": None})
    body = body.replace(b'"Ignore"', b'{"Ignore":null}')
    assert 200 == push(client, acct, body).status_code
    assert "Refresh" == state(client, acct)


@pytest.mark.parametrize(
    ("meta", "status"),
    [
        (None, 200),
        (
            {
                "resourceType": "User",
                "created": "2024-01-01T00:00:00Z",
                "lastModified": "2024-01-01T00:00:00Z",
                "location": "https://idm.example/x",
                "version": "W/1",
            },
            200,
        ),
        ({}, 422),
        ({"resourceType": "User"}, 422),
    ],
)
def test_meta_complete_or_absent(
    client: httpx.Client, acct: ProvisionedSyncAccount, meta: Any, status: int
) -> None:
    """§3.5: `meta` is ignored when complete (or null), 422 when partial."""
    assert status == push(client, acct, request([group(U1, "g", meta=meta)])).status_code


def test_meta_unknown_key_is_422(
    fake: FakeKanidm, client: httpx.Client, acct: ProvisionedSyncAccount
) -> None:
    """§3.5: unknown keys inside meta are refused (deny_unknown_fields)."""
    meta = {
        "resourceType": "User",
        "created": "2024-01-01T00:00:00Z",
        "lastModified": "2024-01-01T00:00:00Z",
        "location": "https://idm.example/x",
        "version": "W/1",
        "extra": "x",
    }
    assert (
        422 == push_rejected(fake, client, acct, request([group(U1, "g", meta=meta)])).status_code
    )


def test_emptyrequest_quirk_with_and_without_refresh(
    fake: FakeKanidm, client: httpx.Client, acct: ProvisionedSyncAccount
) -> None:
    """§4.3: entries present but none with externalId: 400 emptyrequest, cookie unchanged."""
    assert 200 == push(client, acct, request([])).status_code
    entry = group(U1, "g")
    del entry["externalId"]
    for from_state in ("Refresh", ACTIVE):
        body = request([entry], from_state=from_state, to_state="Refresh")
        response = push_rejected(fake, client, acct, body)
        assert 400 == response.status_code
        assert "emptyrequest" == response.json()
    assert {"Active": {"cookie": C1}} == state(client, acct)


# --- pinned: precedence of checks (§2.1, §4.0-§4.9) ----------------------------------------------


def test_framework_checks_before_auth(client: httpx.Client) -> None:
    """§2.1/§4.0: 413, then 415, then 400/422 are answered to an unauthenticated caller."""
    big = b" " * (32 * 1024 * 1024 + 1)
    assert 413 == client.post("/scim/v1/Sync", content=big).status_code
    assert 415 == client.post("/scim/v1/Sync", content=b"{").status_code
    assert 400 == client.post("/scim/v1/Sync", content=b"{", headers=JSON_CT).status_code
    assert 422 == client.post("/scim/v1/Sync", content=b"{}", headers=JSON_CT).status_code
    ok_shape = request([])
    response = client.post("/scim/v1/Sync", content=ok_shape, headers=JSON_CT)
    assert 401 == response.status_code
    assert "notauthenticated" == response.json()


def test_state_check_before_recycled_ids(
    fake: FakeKanidm, client: httpx.Client, acct: ProvisionedSyncAccount
) -> None:
    """§4.2 before §4.3: a stale from_state wins over a recycled entry id."""
    assert 200 == push(client, acct, request([group(U1, "g")])).status_code
    fake.store.recycle(U1)
    stale = {"Active": {"cookie": "AAAA"}}
    assert (
        "invalidsyncstate"
        == push_rejected(fake, client, acct, request([group(U1, "g")], from_state=stale)).json()
    )
    assert (
        "invalidentrystate"
        == push_rejected(fake, client, acct, request([group(U1, "g")], from_state=ACTIVE)).json()
    )


def test_recycled_id_before_emptyrequest(
    fake: FakeKanidm, client: httpx.Client, acct: ProvisionedSyncAccount
) -> None:
    """§4.3: the recycled/tombstone check precedes the emptyrequest quirk."""
    assert 200 == push(client, acct, request([group(U1, "g")])).status_code
    fake.store.recycle(U1)
    entry = group(U1, "g")
    del entry["externalId"]
    assert (
        "invalidentrystate"
        == push_rejected(fake, client, acct, request([entry], from_state=ACTIVE)).json()
    )


def test_conversion_error_of_lower_uuid_wins(
    fake: FakeKanidm, client: httpx.Client, acct: ProvisionedSyncAccount
) -> None:
    """§4.5: entries are processed in ascending UUID order; the first error aborts."""
    bad_value = group(U1, "g1", member=[])  # 400 invalidattribute
    bad_urn = group(U2, "g2", schemas=[URN + "system"])  # 500 invalidentrystate
    response = push_rejected(fake, client, acct, request([bad_urn, bad_value]))
    assert {"invalidattribute": "Unsupported attribute conversion - member"} == response.json()


def test_value_validation_before_ownership_assertion(
    fake: FakeKanidm, client: httpx.Client, acct: ProvisionedSyncAccount
) -> None:
    """§4.5 a before b: an invalid name wins over a non-owned entry without externalId."""
    native = fake.store.add_group("native")
    foreign = {"schemas": [URN + "group"], "id": str(native), "name": "native"}
    body = request([group(U1, "Bad Name"), foreign])
    response = push_rejected(fake, client, acct, body)
    assert {"schemaviolation": {"invalidattributesyntax": "name"}} == response.json()
    body = request([group(U1, "fine"), foreign])
    assert "modifyassertionfailed" == push_rejected(fake, client, acct, body).json()


def test_delete_of_native_entry_rolls_everything_back(
    fake: FakeKanidm, client: httpx.Client, acct: ProvisionedSyncAccount
) -> None:
    """§4.6: Delete naming a live non-owned entry is 403 and nothing (not even stubs) stays."""
    native = fake.store.add_group("native")
    body = request([group(U1, "g")], retain={"Delete": [str(native)]})
    response = push_rejected(fake, client, acct, body)
    assert 403 == response.status_code
    assert "accessdenied" == response.json()
    assert fake.store.entry(U1) is None
    assert "Refresh" == state(client, acct)


# --- pinned: tokens and admin endpoints ----------------------------------------------------------


@pytest.mark.parametrize("action", ["_finalise", "_terminate"])
def test_token_dead_after_finalise_or_terminate(
    client: httpx.Client, acct: ProvisionedSyncAccount, admin: httpx.Client, action: str
) -> None:
    """§5: the account is recycled, so its token stops validating (401)."""
    assert 200 == admin.get(f"/v1/sync_account/ipasync/{action}").status_code
    assert (
        401
        == client.get(
            "/scim/v1/Sync", headers={"authorization": f"Bearer {acct.token}"}
        ).status_code
    )
    assert admin.get("/v1/sync_account/ipasync").json() is None
    assert 404 == admin.get(f"/v1/sync_account/{acct.uuid}/{action}").status_code


def test_second_token_and_destroy(
    fake: FakeKanidm, client: httpx.Client, acct: ProvisionedSyncAccount, admin: httpx.Client
) -> None:
    """A4 twice is 400 schemaviolation; after A5 the old token is 401 and a new one works."""
    second = admin.post("/v1/sync_account/ipasync/_sync_token", content=b'"again"')
    assert 400 == second.status_code
    assert {"schemaviolation": {"invalidattributesyntax": "sync_token_session"}} == second.json()
    assert 200 == push(client, acct, request([])).status_code
    assert 200 == admin.delete("/v1/sync_account/ipasync/_sync_token").status_code
    assert 401 == push(client, acct, request([], from_state=ACTIVE)).status_code
    new = admin.post("/v1/sync_account/ipasync/_sync_token", content=b'"new"').json()
    fresh = ProvisionedSyncAccount(name="ipasync", uuid=acct.uuid, token=new, url=fake.url)
    assert 200 == push(client, fresh, request([], from_state=ACTIVE)).status_code


def test_reads_return_null_not_404(admin: httpx.Client, acct: ProvisionedSyncAccount) -> None:
    """A2/A7: missing account or attribute is 200 `null`, never 404."""
    assert admin.get("/v1/sync_account/nosuch").json() is None
    assert admin.get("/v1/sync_account/ipasync/_attr/sync_cookie").json() is None
    assert admin.get("/v1/sync_account/ipasync/_attr/nosuchattr").json() is None
    assert ["ipasync"] == admin.get("/v1/sync_account/IPASYNC/_attr/NAME").json()


def test_a6_cookie_value_and_a8_unknown_attribute(
    fake: FakeKanidm, admin: httpx.Client, acct: ProvisionedSyncAccount
) -> None:
    """A6 with a cookie value and A8 with an unknown attribute: the spec's 400 bodies."""
    before = fake.store.fingerprint()
    cookie = admin.patch("/v1/sync_account/ipasync", content=b'{"attrs":{"sync_cookie":["AQ"]}}')
    assert 400 == cookie.status_code
    expected = {
        "invalidattribute": "Private Binary Values can not be supplied through modification"
    }
    assert expected == cookie.json()
    with_values = admin.put("/v1/sync_account/ipasync/_attr/nosuch", content=b'["a"]')
    assert {"invalidattributename": "nosuch"} == with_values.json()
    empty = admin.put("/v1/sync_account/ipasync/_attr/nosuch", content=b"[]")
    assert 400 == empty.status_code
    assert "schemaviolation" in empty.json()
    assert before == fake.store.fingerprint()


def test_405_carries_allow(admin: httpx.Client) -> None:
    """A wrong method on a known path is 405 with an empty body and an Allow header (A8 POST)."""
    response = admin.post("/v1/sync_account/ipasync/_attr/sync_yield_authority", content=b"[]")
    assert 405 == response.status_code
    assert b"" == response.content
    assert "GET,HEAD,PUT" == response.headers["allow"]


# --- pinned: the double and the SDK codec agree on cookies (§3.2) --------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "AQ",
        "AQ=",
        "AQ==",
        "AQ===",
        "AQI",
        "AQI=",
        "AQI==",
        "AQID",
        "AQID=",
        "A",
        "AR",
        "+/8",
        "-_8",
        "AQIDBA=",
        "====",
        "AQ=I",
    ],
)
def test_double_and_codec_agree_on_cookie_text(text: str) -> None:
    """The double's cookie parser accepts exactly what the SDK codec decodes, to the byte."""
    try:
        sdk: bytes | None = decode_cookie(text)
    except DecodeError:
        sdk = None
    assert sdk == decode_cookie_b64(text)
