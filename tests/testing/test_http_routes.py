"""Routing, framework rejections and headers of FakeKanidm (spec §2.1, §2.2)."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from kanidm_sync.testing import FakeKanidm

JSON = {"content-type": "application/json"}
REFRESH_EMPTY = b'{"from_state":"Refresh","to_state":"Refresh","entries":[],"retain":"Ignore"}'


@pytest.fixture
def fake() -> FakeKanidm:
    return FakeKanidm()


@pytest.fixture
def admin(fake: FakeKanidm) -> httpx.Client:
    headers = {"authorization": f"Bearer {fake.admin_token}"}
    return httpx.Client(transport=fake.transport, base_url=fake.url, headers=headers)


@pytest.fixture
def anon(fake: FakeKanidm) -> httpx.Client:
    return httpx.Client(transport=fake.transport, base_url=fake.url)


def test_unknown_path_is_404_route_not_found(anon: httpx.Client) -> None:
    """An unknown path answers 404 with kanidmd's plain-text body and no operation id."""
    response = anon.get("/v1/nothing_here")
    assert 404 == response.status_code
    assert "Route not found" == response.text
    assert "x-kanidm-opid" not in response.headers
    assert "1.12.0-dev" == response.headers["x-kanidm-version"]


def test_trailing_slash_is_not_a_route(admin: httpx.Client) -> None:
    """Routes match exactly: a trailing slash is an unknown path."""
    assert 404 == admin.get("/v1/sync_account/").status_code


def test_wrong_method_is_405_with_allow(admin: httpx.Client) -> None:
    """POST on the attribute route (the OpenAPI mistake) answers 405, empty body, Allow."""
    response = admin.post("/v1/sync_account/x/_attr/sync_credential_portal", json=["u"])
    assert 405 == response.status_code
    assert b"" == response.content
    assert "GET,HEAD,PUT" == response.headers["allow"]


def test_finalise_and_terminate_only_answer_get(admin: httpx.Client) -> None:
    """The destructive admin actions are GET routes: POST and DELETE get 405."""
    for path in ("/v1/sync_account/x/_finalise", "/v1/sync_account/x/_terminate"):
        assert 405 == admin.post(path).status_code
        assert 405 == admin.delete(path).status_code


def test_every_response_carries_a_fresh_operation_id(admin: httpx.Client) -> None:
    """Matched routes send X-KANIDM-OPID, a new UUID each time."""
    first = admin.get("/v1/sync_account").headers["x-kanidm-opid"]
    second = admin.get("/v1/sync_account").headers["x-kanidm-opid"]
    assert first != second
    assert uuid.UUID(first)


def test_create_with_text_content_type_is_415(admin: httpx.Client) -> None:
    """A JSON body sent as text/plain is refused with axum's 415 text."""
    response = admin.post(
        "/v1/sync_account",
        content=b'{"attrs":{"name":["a"]}}',
        headers={"content-type": "text/plain"},
    )
    assert 415 == response.status_code
    assert "Expected request with `Content-Type: application/json`" == response.text


def test_plus_json_content_type_is_accepted(admin: httpx.Client) -> None:
    """Axum 0.8 also accepts application/*+json content types."""
    response = admin.post(
        "/v1/sync_account",
        content=b'{"attrs":{"name":["plusjson"]}}',
        headers={"content-type": "application/vnd.test+json; charset=utf-8"},
    )
    assert 200 == response.status_code
    assert "null" == response.text


def test_generate_token_with_text_label_is_415(fake: FakeKanidm, admin: httpx.Client) -> None:
    """A4's label must be a JSON string with a JSON content type (the OpenAPI client's bug)."""
    fake.create_sync_account("ipasync")
    response = admin.post(
        "/v1/sync_account/ipasync/_sync_token",
        content=b"mylabel",
        headers={"content-type": "text/plain"},
    )
    assert 415 == response.status_code


def test_generate_token_with_non_string_label_is_422(fake: FakeKanidm, admin: httpx.Client) -> None:
    """A4's body must be a JSON string, not an object."""
    fake.create_sync_account("ipasync")
    response = admin.post("/v1/sync_account/ipasync/_sync_token", json={"label": "x"})
    assert 422 == response.status_code
    assert response.text.startswith("Failed to deserialize the JSON body into the target type")


def test_bad_json_is_400(admin: httpx.Client) -> None:
    """A body that is not JSON is refused with axum's 400 text."""
    response = admin.post("/v1/sync_account", content=b"{nope", headers=JSON)
    assert 400 == response.status_code
    assert response.text.startswith("Failed to parse the request body as JSON: ")


def test_admin_body_over_2_mib_is_413(admin: httpx.Client) -> None:
    """Admin endpoints keep axum's default 2 MiB body limit."""
    big = json.dumps({"attrs": {"name": ["x"], "description": ["d" * (2 * 1024 * 1024)]}})
    response = admin.post("/v1/sync_account", content=big.encode(), headers=JSON)
    assert 413 == response.status_code
    assert "Failed to buffer the request body: length limit exceeded" == response.text


def test_sync_body_over_32_mib_is_413(fake: FakeKanidm) -> None:
    """POST /scim/v1/Sync allows 32 MiB; one byte more is 413."""
    account = fake.provision_sync_account("ipasync")
    client = httpx.Client(transport=fake.transport, base_url=fake.url)
    body = b" " * (32 * 1024 * 1024 - len(REFRESH_EMPTY)) + REFRESH_EMPTY
    auth = {"authorization": f"Bearer {account.token}", **JSON}
    assert 200 == client.post("/scim/v1/Sync", content=body, headers=auth).status_code
    response = client.post("/scim/v1/Sync", content=b" " + body, headers=auth)
    assert 413 == response.status_code


def test_sync_body_is_parsed_before_the_token_is_checked(anon: httpx.Client) -> None:
    """Without a token, a malformed ChangeSet is still reported as 400/415/422 (§2.1)."""
    assert 400 == anon.post("/scim/v1/Sync", content=b"{", headers=JSON).status_code
    assert 415 == anon.post("/scim/v1/Sync", content=REFRESH_EMPTY).status_code
    null_body = b'{"from_state":"Refresh","to_state":null,"entries":[],"retain":"Ignore"}'
    assert 422 == anon.post("/scim/v1/Sync", content=null_body, headers=JSON).status_code
    response = anon.post("/scim/v1/Sync", content=REFRESH_EMPTY, headers=JSON)
    assert 401 == response.status_code
    assert '"notauthenticated"' == response.text
    assert "Bearer" == response.headers["www-authenticate"]


def test_admin_body_is_parsed_before_the_token_is_checked(anon: httpx.Client) -> None:
    """A3 with a malformed body and no token answers 422, a good body 401."""
    assert 422 == anon.post("/v1/sync_account", json={"name": "x"}).status_code
    assert 401 == anon.post("/v1/sync_account", json={"attrs": {"name": ["x"]}}).status_code


def test_head_on_a_get_route_has_no_body(admin: httpx.Client) -> None:
    """Axum answers HEAD on every GET route, without a body."""
    response = admin.head("/v1/sync_account")
    assert 200 == response.status_code
    assert b"" == response.content


def test_get_missing_sync_account_is_200_null(admin: httpx.Client) -> None:
    """A2 answers 200 with body null for an unknown id, never 404."""
    response = admin.get("/v1/sync_account/nobody")
    assert 200 == response.status_code
    assert "null" == response.text
    assert "application/json" == response.headers["content-type"]


def test_id_resolves_by_uuid_name_and_spn_case_insensitively(
    fake: FakeKanidm, admin: httpx.Client
) -> None:
    """{id} may be the UUID, the name or the SPN, in any case."""
    account = fake.create_sync_account("ipasync")
    for ident in (str(account), str(account).upper(), "IPASync", f"ipasync@{fake.domain}"):
        body = admin.get(f"/v1/sync_account/{ident}").json()
        assert ["ipasync"] == body["attrs"]["name"], ident


def test_create_rejects_attributes_outside_the_create_acp(admin: httpx.Client) -> None:
    """A3 with an attribute other than class/name/description is 403 accessdenied."""
    response = admin.post(
        "/v1/sync_account", json={"attrs": {"name": ["x"], "sync_cookie": ["AA"]}}
    )
    assert 403 == response.status_code
    assert '"accessdenied"' == response.text


def test_create_without_name_is_a_schema_violation(admin: httpx.Client) -> None:
    """A3 without a name is 400 missingmustattribute."""
    response = admin.post("/v1/sync_account", json={"attrs": {"description": ["x"]}})
    assert 400 == response.status_code
    assert {"schemaviolation": {"missingmustattribute": ["name"]}} == response.json()


def test_create_overwrites_class(fake: FakeKanidm, admin: httpx.Client) -> None:
    """A3 ignores a supplied class: the entry is an object + sync_account."""
    response = admin.post("/v1/sync_account", json={"attrs": {"name": ["x1"], "class": ["person"]}})
    assert 200 == response.status_code
    entry = fake.store.entry("x1")
    assert entry is not None
    assert {"object", "sync_account"} <= set(entry.classes)
    assert "person" not in entry.classes


def test_duplicate_create_is_409(admin: httpx.Client) -> None:
    """Creating a second account with the same name is a uniqueness conflict."""
    assert 200 == admin.post("/v1/sync_account", json={"attrs": {"name": ["dup"]}}).status_code
    response = admin.post("/v1/sync_account", json={"attrs": {"name": ["dup"]}})
    assert 409 == response.status_code
    assert "Attribute uniqueness error" == response.json()["error"]


def test_patch_with_unknown_account_is_404(admin: httpx.Client) -> None:
    """A6 on an id that is no sync account is 404 nomatchingentries."""
    response = admin.patch("/v1/sync_account/nobody", json={"attrs": {"sync_cookie": []}})
    assert 404 == response.status_code
    assert '"nomatchingentries"' == response.text


def test_patch_outside_the_modify_acp_is_403(fake: FakeKanidm, admin: httpx.Client) -> None:
    """A6 on an attribute the ACP does not grant (displayname) is 403."""
    fake.create_sync_account("ipasync")
    response = admin.patch("/v1/sync_account/ipasync", json={"attrs": {"displayname": ["x"]}})
    assert 403 == response.status_code


def test_read_attribute_absent_is_null(fake: FakeKanidm, admin: httpx.Client) -> None:
    """A7 for an absent attribute answers null."""
    fake.create_sync_account("ipasync")
    response = admin.get("/v1/sync_account/ipasync/_attr/sync_credential_portal")
    assert 200 == response.status_code
    assert response.json() is None


def test_finalise_of_a_non_sync_account_is_missingclass(
    fake: FakeKanidm, admin: httpx.Client
) -> None:
    """A10 on an entry that exists but is not a sync account is 500 missingclass."""
    fake.store.add_group("plain_group")
    response = admin.get("/v1/sync_account/plain_group/_finalise")
    assert 500 == response.status_code
    assert {"missingclass": "sync_account"} == response.json()


def test_finalise_of_unknown_name_is_404(admin: httpx.Client) -> None:
    """A10 on an unknown name is 404 nomatchingentries."""
    assert 404 == admin.get("/v1/sync_account/nobody/_finalise").status_code


def test_set_yield_attributes_lower_cases(fake: FakeKanidm, admin: httpx.Client) -> None:
    """A8 stores yielded attribute names lower-cased and A7 reads them back."""
    fake.create_sync_account("ipasync")
    path = "/v1/sync_account/ipasync/_attr/sync_yield_authority"
    assert 200 == admin.put(path, json=["LegalName", "passkeys"]).status_code
    assert ["legalname", "passkeys"] == sorted(admin.get(path).json())


def test_invalid_portal_url_is_400(fake: FakeKanidm, admin: httpx.Client) -> None:
    """A9 with something that is not a URL is 400 invalidattribute."""
    fake.create_sync_account("ipasync")
    response = admin.put(
        "/v1/sync_account/ipasync/_attr/sync_credential_portal", json=["not a url"]
    )
    assert 400 == response.status_code
    assert {"invalidattribute": "Invalid Url (whatwg/url) syntax"} == response.json()
