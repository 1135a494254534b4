"""Admin identities, /v1/auth, /v1/reauth, /v1/self and token validation (auth spec)."""

from __future__ import annotations

import base64
import json
import secrets
import uuid

import httpx
import pytest

from kanidm_sync.testing import FakeKanidm, totp_code
from kanidm_sync.testing._tokens import payload_of

AUTH_HEADER = "X-KANIDM-AUTH-SESSION-ID"


class Clock:
    """A settable clock for expiry tests."""

    def __init__(self) -> None:
        self.now = 1_767_225_600.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(clock: Clock) -> FakeKanidm:
    return FakeKanidm(clock=clock)


@pytest.fixture
def http(fake: FakeKanidm) -> httpx.Client:
    return httpx.Client(transport=fake.transport, base_url=fake.url)


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def login(
    http: httpx.Client,
    username: str,
    password: str,
    *,
    privileged: bool = False,
    totp: int | None = None,
) -> httpx.Response:
    """Run init2/begin/cred(s) echoing the session header; return the last response."""
    init = {"step": {"init2": {"username": username, "issue": "token", "privileged": privileged}}}
    response = http.post("/v1/auth", json=init)
    assert 200 == response.status_code, response.text
    mech = response.json()["state"]["choose"][0]
    session = response.headers[AUTH_HEADER]
    response = http.post("/v1/auth", json={"step": {"begin": mech}}, headers={AUTH_HEADER: session})
    if mech == "passwordmfa":
        session = response.headers[AUTH_HEADER]
        assert {"continue": ["totp"]} == response.json()["state"]
        response = http.post(
            "/v1/auth", json={"step": {"cred": {"totp": totp}}}, headers={AUTH_HEADER: session}
        )
        if "continue" not in response.json()["state"]:
            return response
    session = response.headers[AUTH_HEADER]
    return http.post(
        "/v1/auth", json={"step": {"cred": {"password": password}}}, headers={AUTH_HEADER: session}
    )


def token_of(response: httpx.Response) -> str:
    token = response.json()["state"]["success"]
    assert isinstance(token, str)
    return token


def test_admin_password_login_is_read_write(fake: FakeKanidm, http: httpx.Client) -> None:
    """Admin logs in with its generated password and may create sync accounts at once."""
    password = fake.recover_account("admin")
    response = login(http, "admin", password)
    assert AUTH_HEADER not in response.headers
    token = token_of(response)
    payload = payload_of(token)
    assert payload is not None
    assert payload["expiry"] == payload["purpose"]["readwrite"]["expiry"]  # type: ignore[index]
    created = http.post("/v1/sync_account", json={"attrs": {"name": ["a1"]}}, headers=bearer(token))
    assert 200 == created.status_code


def test_wrong_password_is_denied_with_200(fake: FakeKanidm, http: httpx.Client) -> None:
    """A wrong password is HTTP 200 with state denied, not 401."""
    fake.recover_account("admin")
    response = login(http, "admin", "wrong")
    assert 200 == response.status_code
    assert {"denied": "incorrect password"} == response.json()["state"]


def test_init_offers_password_and_sets_cookie(fake: FakeKanidm, http: httpx.Client) -> None:
    """init2 answers choose [password] with the session header and a matching cookie."""
    fake.recover_account("admin")
    init = {"step": {"init2": {"username": "ADMIN", "issue": "token"}}}
    response = http.post("/v1/auth", json=init)
    assert {"choose": ["password"]} == response.json()["state"]
    header = response.headers[AUTH_HEADER]
    assert f"auth-session-id={header}" in response.headers["set-cookie"]
    assert "HttpOnly" in response.headers["set-cookie"]


def test_unknown_user_is_404(http: httpx.Client) -> None:
    """init2 for an unknown name is 404 nomatchingentries."""
    init = {"step": {"init2": {"username": "ghost", "issue": "token"}}}
    response = http.post("/v1/auth", json=init)
    assert 404 == response.status_code
    assert '"nomatchingentries"' == response.text


def test_empty_username_is_400(http: httpx.Client) -> None:
    """init2 with a blank username is 400 emptyrequest."""
    init = {"step": {"init2": {"username": "  ", "issue": "token"}}}
    assert '"emptyrequest"' == http.post("/v1/auth", json=init).text


def test_init2_without_issue_is_422(http: httpx.Client) -> None:
    """Issue is a required field of init2."""
    response = http.post("/v1/auth", json={"step": {"init2": {"username": "admin"}}})
    assert 422 == response.status_code


def test_account_without_password_is_denied(http: httpx.Client) -> None:
    """Admin before recover-account has no credential: denied invalid credential state."""
    init = {"step": {"init2": {"username": "admin", "issue": "token"}}}
    assert {"denied": "invalid credential state"} == http.post("/v1/auth", json=init).json()[
        "state"
    ]


def test_begin_without_session_header_is_invalidauthstate(
    fake: FakeKanidm, http: httpx.Client
) -> None:
    """Begin without the header (only the body sessionid) is 500 invalidauthstate."""
    fake.recover_account("admin")
    init = {"step": {"init2": {"username": "admin", "issue": "token"}}}
    http.post("/v1/auth", json=init)
    http.cookies.clear()
    response = http.post("/v1/auth", json={"step": {"begin": "password"}})
    assert 500 == response.status_code
    assert {
        "invalidauthstate": "session id not present in cred presented to 'begin' step"
    } == response.json()


def test_tampered_session_header_is_rejected(fake: FakeKanidm, http: httpx.Client) -> None:
    """A session id that the server did not sign is not accepted."""
    fake.recover_account("admin")
    init = {"step": {"init2": {"username": "admin", "issue": "token"}}}
    sessionid = http.post("/v1/auth", json=init).json()["sessionid"]
    http.cookies.clear()
    response = http.post(
        "/v1/auth", json={"step": {"begin": "password"}}, headers={AUTH_HEADER: sessionid}
    )
    assert 500 == response.status_code


def test_session_cookie_works_without_header(fake: FakeKanidm, http: httpx.Client) -> None:
    """The auth-session-id cookie is the fallback carrier (the client keeps a jar)."""
    fake.recover_account("admin")
    http.post("/v1/auth", json={"step": {"init2": {"username": "admin", "issue": "token"}}})
    response = http.post("/v1/auth", json={"step": {"begin": "password"}})
    assert {"continue": ["password"]} == response.json()["state"]


def test_begin_twice_is_already_finalised(fake: FakeKanidm, http: httpx.Client) -> None:
    """A second begin on the same handshake is 500 invalidauthstate."""
    fake.recover_account("admin")
    init = {"step": {"init2": {"username": "admin", "issue": "token"}}}
    session = http.post("/v1/auth", json=init).headers[AUTH_HEADER]
    http.post("/v1/auth", json={"step": {"begin": "password"}}, headers={AUTH_HEADER: session})
    response = http.post(
        "/v1/auth", json={"step": {"begin": "password"}}, headers={AUTH_HEADER: session}
    )
    assert {"invalidauthstate": "session already finalised!"} == response.json()


def test_begin_with_unoffered_mechanism_is_denied(fake: FakeKanidm, http: httpx.Client) -> None:
    """Beginning a mechanism that was not offered is denied invalid credential message."""
    fake.recover_account("admin")
    init = {"step": {"init2": {"username": "admin", "issue": "token"}}}
    session = http.post("/v1/auth", json=init).headers[AUTH_HEADER]
    response = http.post(
        "/v1/auth", json={"step": {"begin": "passkey"}}, headers={AUTH_HEADER: session}
    )
    assert {"denied": "invalid credential message"} == response.json()["state"]


def test_handshake_expires_after_300_seconds(
    fake: FakeKanidm, http: httpx.Client, clock: Clock
) -> None:
    """An auth session older than 300 s is unknown: 500 invalidsessionstate."""
    fake.recover_account("admin")
    init = {"step": {"init2": {"username": "admin", "issue": "token"}}}
    session = http.post("/v1/auth", json=init).headers[AUTH_HEADER]
    clock.now += 301
    response = http.post(
        "/v1/auth", json={"step": {"begin": "password"}}, headers={AUTH_HEADER: session}
    )
    assert '"invalidsessionstate"' == response.text


def test_person_login_is_read_only_until_reauth(fake: FakeKanidm, http: httpx.Client) -> None:
    """A person's session reads but gets 403 on writes; /v1/reauth elevates it."""
    fake.add_admin("alice", "pw-alice")
    fake.create_sync_account("ipasync")
    token = token_of(login(http, "alice", "pw-alice"))
    assert {"readwrite": {"expiry": None}} == payload_of(token)["purpose"]  # type: ignore[index]
    assert 1 == len(http.get("/v1/sync_account", headers=bearer(token)).json())
    path = "/v1/sync_account/ipasync/_attr/sync_yield_authority"
    assert '"accessdenied"' == http.put(path, json=["x"], headers=bearer(token)).text
    assert (
        '"notauthorised"'
        == http.get("/v1/sync_account/ipasync/_finalise", headers=bearer(token)).text
    )
    reauth = http.post("/v1/reauth", json="token", headers=bearer(token))
    assert {"continue": ["password"]} == reauth.json()["state"]
    session = reauth.headers[AUTH_HEADER]
    done = http.post(
        "/v1/auth",
        json={"step": {"cred": {"password": "pw-alice"}}},
        headers={AUTH_HEADER: session},
    )
    elevated = token_of(done)
    assert payload_of(elevated)["session_id"] == payload_of(token)["session_id"]  # type: ignore[index]
    assert 200 == http.put(path, json=["x"], headers=bearer(elevated)).status_code


def test_elevation_expires_after_ten_minutes(
    fake: FakeKanidm, http: httpx.Client, clock: Clock
) -> None:
    """Re-auth grants 600 s of read-write; after that writes are 403 again."""
    fake.add_admin("alice", "pw-alice")
    fake.create_sync_account("ipasync")
    token = token_of(login(http, "alice", "pw-alice"))
    session = http.post("/v1/reauth", json="token", headers=bearer(token)).headers[AUTH_HEADER]
    elevated = token_of(
        http.post(
            "/v1/auth",
            json={"step": {"cred": {"password": "pw-alice"}}},
            headers={AUTH_HEADER: session},
        )
    )
    clock.now += 601
    response = http.patch(
        "/v1/sync_account/ipasync", json={"attrs": {"sync_cookie": []}}, headers=bearer(elevated)
    )
    assert 403 == response.status_code


def test_privileged_person_login_is_read_write(fake: FakeKanidm, http: httpx.Client) -> None:
    """privileged:true gives a person a read-write session that cannot re-auth."""
    fake.add_admin("alice", "pw-alice")
    token = token_of(login(http, "alice", "pw-alice", privileged=True))
    created = http.post("/v1/sync_account", json={"attrs": {"name": ["s"]}}, headers=bearer(token))
    assert 200 == created.status_code
    reauth = http.post("/v1/reauth", json="token", headers=bearer(token))
    assert 500 == reauth.status_code
    assert '"sessionmaynotreauth"' == reauth.text


def test_totp_comes_before_the_password(fake: FakeKanidm, http: httpx.Client, clock: Clock) -> None:
    """An admin with TOTP is offered passwordmfa: TOTP code first, then password."""
    secret = secrets.token_bytes(20)
    fake.add_admin("bob", "pw-bob", totp_secret=secret)
    init = {"step": {"init2": {"username": "bob", "issue": "token"}}}
    assert {"choose": ["passwordmfa"]} == http.post("/v1/auth", json=init).json()["state"]
    good = login(http, "bob", "pw-bob", totp=totp_code(secret, at=clock.now))
    assert "success" in good.json()["state"]
    bad_code = (totp_code(secret, at=clock.now) + 1) % 1_000_000
    bad = login(http, "bob", "pw-bob", totp=bad_code)
    assert {"denied": "incorrect totp"} == bad.json()["state"]


def test_totp_code_matches_rfc6238_vector() -> None:
    """totp_code reproduces the RFC 6238 SHA-1 test vector (59 s -> 94287082, 8 digits)."""
    assert 94287082 == totp_code(b"12345678901234567890", at=59, digits=8)


def test_session_expires_after_an_hour_for_admin(
    fake: FakeKanidm, http: httpx.Client, clock: Clock
) -> None:
    """Admin's session is capped at one hour; then every call is 401 sessionexpired."""
    token = token_of(login(http, "admin", fake.recover_account("admin")))
    assert 200 == http.get("/v1/auth/valid", headers=bearer(token)).status_code
    clock.now += 3601
    response = http.get("/v1/auth/valid", headers=bearer(token))
    assert 401 == response.status_code
    assert '"sessionexpired"' == response.text
    assert "Bearer" == response.headers["www-authenticate"]


def test_logout_revokes_the_session(fake: FakeKanidm, http: httpx.Client) -> None:
    """After /v1/logout the token is 401 sessionexpired; logout is idempotent."""
    token = token_of(login(http, "admin", fake.recover_account("admin")))
    assert "null" == http.get("/v1/logout", headers=bearer(token)).text
    assert '"sessionexpired"' == http.get("/v1/auth/valid", headers=bearer(token)).text
    assert 200 == http.get("/v1/logout", headers=bearer(token)).status_code


def test_auth_valid_without_token_is_401(http: httpx.Client) -> None:
    """/v1/auth/valid without a bearer is 401 notauthenticated."""
    response = http.get("/v1/auth/valid")
    assert 401 == response.status_code
    assert '"notauthenticated"' == response.text


def test_self_shows_domain_admin_membership(fake: FakeKanidm, http: httpx.Client) -> None:
    """/v1/self with the admin API token lists domain_admins among memberof."""
    attrs = http.get("/v1/self", headers=bearer(fake.admin_token)).json()["youare"]["attrs"]
    assert ["admin"] == attrs["name"]
    assert f"domain_admins@{fake.domain}" in attrs["memberof"]
    assert ["00000000-0000-0000-0000-000000000000"] == attrs["uuid"]


def test_self_uat_is_for_user_sessions_only(fake: FakeKanidm, http: httpx.Client) -> None:
    """/v1/self/_uat returns the UAT for a login and 401 for an API token."""
    token = token_of(login(http, "admin", fake.recover_account("admin")))
    uat = http.get("/v1/self/_uat", headers=bearer(token)).json()
    assert f"admin@{fake.domain}" == uat["spn"]
    assert 401 == http.get("/v1/self/_uat", headers=bearer(fake.admin_token)).status_code


def test_reauth_with_api_token_is_invalidstate(fake: FakeKanidm, http: httpx.Client) -> None:
    """/v1/reauth with an API token is 500 invalidstate."""
    response = http.post("/v1/reauth", json="token", headers=bearer(fake.admin_token))
    assert 500 == response.status_code
    assert '"invalidstate"' == response.text


def test_read_only_api_token_reads_but_cannot_write(fake: FakeKanidm, http: httpx.Client) -> None:
    """A read-only API token lists accounts, gets 403 on writes and 500 on finalise."""
    fake.create_sync_account("ipasync")
    headers = bearer(fake.read_only_admin_token())
    assert 1 == len(http.get("/v1/sync_account", headers=headers).json())
    assert (
        '"accessdenied"'
        == http.post("/v1/sync_account", json={"attrs": {"name": ["other"]}}, headers=headers).text
    )
    assert (
        403
        == http.post(
            "/v1/sync_account/ipasync/_sync_token", json="label", headers=headers
        ).status_code
    )
    assert 403 == http.delete("/v1/sync_account/ipasync/_sync_token", headers=headers).status_code
    assert (
        '"notauthorised"' == http.get("/v1/sync_account/ipasync/_terminate", headers=headers).text
    )


def test_non_domain_admin_sees_nothing(fake: FakeKanidm, http: httpx.Client) -> None:
    """idm_admin (read-write, not in domain_admins): [], null, 404 on writes, 500 on finalise."""
    account = fake.create_sync_account("ipasync")
    headers = bearer(fake.api_token("idm_admin"))
    assert [] == http.get("/v1/sync_account", headers=headers).json()
    assert http.get(f"/v1/sync_account/{account}", headers=headers).json() is None
    attr = "/v1/sync_account/ipasync/_attr/name"
    assert http.get(attr, headers=headers).json() is None
    assert (
        403
        == http.post(
            "/v1/sync_account", json={"attrs": {"name": ["x"]}}, headers=headers
        ).status_code
    )
    assert (
        '"nomatchingentries"'
        == http.patch(
            "/v1/sync_account/ipasync", json={"attrs": {"sync_cookie": []}}, headers=headers
        ).text
    )
    assert 404 == http.put(attr, json=["y"], headers=headers).status_code
    assert '"notauthorised"' == http.get("/v1/sync_account/ipasync/_finalise", headers=headers).text


def test_non_domain_admin_person(fake: FakeKanidm, http: httpx.Client) -> None:
    """A person outside domain_admins sees an empty list even when privileged."""
    fake.create_sync_account("ipasync")
    fake.add_admin("carol", "pw", domain_admin=False)
    token = token_of(login(http, "carol", "pw", privileged=True))
    assert [] == http.get("/v1/sync_account", headers=bearer(token)).json()


def test_admin_name_is_reserved_in_the_store(fake: FakeKanidm) -> None:
    """A person added as admin exists in the store, so a sync account cannot take the name."""
    fake.add_admin("dave", "pw")
    entry = fake.store.entry("dave")
    assert entry is not None
    assert "person" in entry.classes


def test_sync_token_is_401_on_admin_and_self_endpoints(
    fake: FakeKanidm, http: httpx.Client
) -> None:
    """A sync token is accepted nowhere but /scim/v1/Sync (spec §6)."""
    account = fake.provision_sync_account("ipasync")
    for path in ("/v1/sync_account", "/v1/self", "/v1/auth/valid", "/v1/sync_account/ipasync"):
        response = http.get(path, headers=bearer(account.token))
        assert 401 == response.status_code, path
        assert '"notauthenticated"' == response.text


def test_uat_on_sync_endpoint_is_serdejsonerror_api_token_401(
    fake: FakeKanidm, http: httpx.Client
) -> None:
    """A user session (ES256) gets 500 serdejsonerror on S1 (§7.3 #9); an API token 401.

    Both checked against kanidmd 1.11.1 (tests/targets/test_tokens_targets.py).
    """
    token = token_of(login(http, "admin", fake.recover_account("admin")))
    response = http.get("/scim/v1/Sync", headers=bearer(token))
    assert (500, '"serdejsonerror"') == (response.status_code, response.text)
    response = http.get("/scim/v1/Sync", headers=bearer(fake.admin_token))
    assert (401, '"notauthenticated"') == (response.status_code, response.text)


def test_forged_and_malformed_tokens_are_401(fake: FakeKanidm, http: httpx.Client) -> None:
    """Unknown kid, bad signature, not-a-JWS and lowercase scheme behave per spec §2.1."""
    account = fake.provision_sync_account("ipasync")
    header, payload, sig = account.token.split(".")
    flipped = sig[:-2] + ("AA" if sig[-2:] != "AA" else "BB")
    for bad in (f"{header}.{payload}.{flipped}", "not-a-jws", f"{header}.{payload}"):
        response = http.get("/scim/v1/Sync", headers=bearer(bad))
        assert 401 == response.status_code, bad
    ok = http.get("/scim/v1/Sync", headers={"authorization": f"bearer {account.token}"})
    assert 200 == ok.status_code


def test_sync_token_shape(fake: FakeKanidm) -> None:
    """Sync tokens are ES256-headed JWS with a kid, no jwk, and a sync-token payload (§6)."""
    account = fake.provision_sync_account("ipasync")
    header_b64 = account.token.split(".")[0]
    header = json.loads(base64.urlsafe_b64decode(header_b64 + "=" * (-len(header_b64) % 4)))
    assert "ES256" == header["alg"]
    assert isinstance(header["kid"], str)
    assert "jwk" not in header
    payload = payload_of(account.token)
    assert payload is not None
    assert {"token_id", "issued_at", "purpose"} == set(payload)
    assert "synchronise" == payload["purpose"]
    assert uuid.UUID(str(payload["token_id"]))
    assert "***" in repr(account)
    assert account.token not in repr(account)


def test_tokens_of_one_fake_do_not_work_on_another() -> None:
    """Signing keys are per instance."""
    one, two = FakeKanidm(), FakeKanidm()
    http = httpx.Client(transport=two.transport, base_url=two.url)
    assert 401 == http.get("/v1/sync_account", headers=bearer(one.admin_token)).status_code
