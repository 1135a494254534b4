"""Conformance with kanidmd, over HTTP (spec §7.1, §7.2, §7.3): the double and a real server.

Every scenario runs twice through the ``kanidm_target`` fixture: ``[fake]`` against the
in-memory double, ``[kanidmd]`` against a real kanidmd when one is given (``--kanidmd PATH``;
skipped otherwise). Each goes through a plain ``httpx.Client`` (not the SDK's
client), sends JSON bytes and checks statuses and exact bodies. The FreeIPA ChangeSets are
the golden payloads kanidmd's own tests apply (tests/fixtures/wire/changeset-kanidmd-ipa-*).
"""

from __future__ import annotations

import base64
import json
import pathlib
import uuid
from typing import Any

import httpx
import pytest

from kanidm_sync.testing import FakeTarget, KanidmTarget, TargetEntry
from kanidm_sync.testing._tokens import b64url_encode, payload_of

WIRE = pathlib.Path(__file__).parent.parent / "fixtures" / "wire"
URN = "urn:ietf:params:scim:schemas:kanidm:sync:1:"
JSON_TYPE = {"content-type": "application/json"}

USER = uuid.UUID("babb8302-43a1-11ed-a50d-919b4b1a5ec0")
TESTGROUP = uuid.UUID("d547c581-5f26-11ed-a50d-919b4b1a5ec0")
TESTEXTERNAL = uuid.UUID("d547c583-5f26-11ed-a50d-919b4b1a5ec0")
TESTPOSIX = uuid.UUID("f90b0b81-5f26-11ed-a50d-919b4b1a5ec0")
USER_XID = "uid=testuser,cn=users,cn=accounts,dc=dev,dc=blackhats,dc=net,dc=au"
SSH_KEY = (
    "sk-ecdsa-sha2-nistp256@openssh.com AAAAInNrLWVjZHNhLXNoYTItbmlzdHAyNTZAb3BlbnNzaC5jb20AAAAI"
    "bmlzdHAyNTYAAABBBENubZikrb8hu+HeVRdZ0pp/VAk2qv4JDbuJhvD0yNdWDL2e3cBbERiDeNPkWx58Q4rVnxkbV1fa"
    "8E2waRtT91wAAAAEc3NoOg== testuser@fidokey"
)
NT_HASH = "ipaNTHash: iEb36u6PsRetBr3YMLdYbA"
C1 = b64url_encode(bytes([1, 2, 3, 4]))
C2 = b64url_encode(bytes([2, 3, 4, 5]))


def golden(name: str) -> bytes:
    """A golden ChangeSet, byte for byte as stored."""
    return (WIRE / f"changeset-kanidmd-ipa-{name}.json").read_bytes()


class Kanidm:
    """A thin HTTP driver over a target (the double or a real kanidmd): admin and sync."""

    def __init__(self, target: KanidmTarget) -> None:
        self.target = target
        self.admin = target.http(admin="admin")
        self.plain = target.http()
        self.token = ""

    def create_account(self, name: str = "test_scim_sync") -> str:
        """Create the sync account and generate its token, both over HTTP."""
        self.target.track_sync_account(name)
        assert (
            200 == self.admin.post("/v1/sync_account", json={"attrs": {"name": [name]}}).status_code
        )
        response = self.admin.post(f"/v1/sync_account/{name}/_sync_token", json="test")
        assert 200 == response.status_code, response.text
        self.token = response.json()
        return name

    def sync_headers(self, token: str | None = None) -> dict[str, str]:
        return {"authorization": f"Bearer {token or self.token}", **JSON_TYPE}

    def state(self, token: str | None = None) -> httpx.Response:
        return self.plain.get("/scim/v1/Sync", headers=self.sync_headers(token))

    def push(self, body: bytes | dict[str, Any], token: str | None = None) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.plain.post("/scim/v1/Sync", content=content, headers=self.sync_headers(token))

    def ok(self, body: bytes | dict[str, Any]) -> None:
        response = self.push(body)
        assert 200 == response.status_code, response.text
        assert "null" == response.text

    def u(self, uid: uuid.UUID) -> uuid.UUID:
        """The UUID standing for a golden payload's fixed UUID on this target."""
        return self.target.fresh_uuid(uid)

    def golden(self, name: str) -> bytes:
        """A golden ChangeSet, its fixed UUIDs remapped on a real server."""
        for uid in (USER, TESTGROUP, TESTEXTERNAL, TESTPOSIX):
            self.u(uid)
        return self.target.remap(golden(name))

    def entry(self, key: str | uuid.UUID) -> TargetEntry:
        found = self.target.entry(key)
        assert found is not None, key
        return found

    def find(self, key: str | uuid.UUID) -> TargetEntry | None:
        return self.target.entry(key)

    def live(self, uid: uuid.UUID) -> bool:
        entry = self.target.entry(uid)
        return entry is not None and entry.state == "live"


def request(
    entries: list[dict[str, Any]],
    *,
    from_state: Any = "Refresh",
    to_state: Any = None,
    retain: Any = "Ignore",
) -> dict[str, Any]:
    return {
        "from_state": from_state,
        "to_state": to_state if to_state is not None else {"Active": {"cookie": C1}},
        "entries": entries,
        "retain": retain,
    }


def group(uid: uuid.UUID, name: str, **extra: Any) -> dict[str, Any]:
    return {
        "schemas": [URN + "group"],
        "id": str(uid),
        "externalId": f"cn={name},ou=groups",
        "name": name,
        **extra,
    }


def person(uid: uuid.UUID, name: str, **extra: Any) -> dict[str, Any]:
    return {
        "schemas": [URN + "account", URN + "person"],
        "id": str(uid),
        "externalId": f"uid={name},ou=people",
        "name": name,
        "displayname": name.title(),
        **extra,
    }


def active(cookie: str) -> dict[str, Any]:
    return {"Active": {"cookie": cookie}}


@pytest.fixture
def k(kanidm_target: KanidmTarget) -> Kanidm:
    driver = Kanidm(kanidm_target)
    driver.create_account()
    return driver


# --- §7.1 kanidm: server/lib/src/idm/scim.rs -------------------------------------------------


def test_idm_scim_sync_basic_function(k: Kanidm) -> None:
    """A new account's token is accepted and its state reads Refresh."""
    response = k.state()
    assert 200 == response.status_code
    assert '"Refresh"' == response.text


def test_idm_scim_sync_token_security(k: Kanidm) -> None:
    """Destroyed token, revoked signing key and forged token all answer 401."""
    assert 200 == k.state().status_code
    assert 200 == k.admin.delete("/v1/sync_account/test_scim_sync/_sync_token").status_code
    gone = k.state()
    assert (401, '"notauthenticated"') == (gone.status_code, gone.text)
    fresh = k.admin.post("/v1/sync_account/test_scim_sync/_sync_token", json="again").json()
    assert 200 == k.state(fresh).status_code
    if isinstance(k.target, FakeTarget):
        # Revoking the domain's signing key (key_action_revoke) would also end the shared
        # admin sessions of a real test server: checked on the double only.
        k.target.fake.revoke_signing_key()
        assert 401 == k.state(fresh).status_code
    newest = k.admin.post("/v1/sync_account/test_scim_sync/_sync_token", json="x")
    assert 400 == newest.status_code  # the first token's session still exists (single-valued)
    k.admin.delete("/v1/sync_account/test_scim_sync/_sync_token")
    real = k.admin.post("/v1/sync_account/test_scim_sync/_sync_token", json="x").json()
    assert 200 == k.state(real).status_code
    claims = payload_of(real)
    assert claims is not None
    forged_payload = {
        "token_id": claims["token_id"],
        "issued_at": claims["issued_at"],
        "purpose": "readwrite",
    }
    header = b64url_encode(json.dumps({"alg": "ES256", "kid": "f" * 32}).encode())
    body = b64url_encode(json.dumps(forged_payload).encode())
    forged = f"{header}.{body}.{b64url_encode(bytes(64))}"
    assert 401 == k.state(forged).status_code


def test_idm_scim_sync_apply_phase_1_inconsistent(k: Kanidm) -> None:
    """Active from_state against an account without cookie is 500 invalidsyncstate."""
    response = k.push(request([], from_state=active(C1), to_state=active(C2)))
    assert (500, '"invalidsyncstate"') == (response.status_code, response.text)


def test_idm_scim_sync_apply_phase_2_basic(k: Kanidm) -> None:
    """The stub gets the requested UUID and the lower-cased external id."""
    uid = uuid.uuid4()
    k.ok(request([group(uid, "testgroup", externalId="CN=TestGroup,OU=Groups")]))
    entry = k.entry(uid)
    assert "live" == entry.state
    if k.target.reads_sync_attributes:
        assert ("cn=testgroup,ou=groups",) == entry.get("sync_external_id")


def test_idm_scim_sync_apply_phase_2_deny_on_tombstone(k: Kanidm) -> None:
    """An entry id equal to a recycled entry's UUID is 500 invalidentrystate."""
    uid = k.target.add_group("oldgroup")
    k.target.recycle(uid)
    response = k.push(request([group(uid, "testgroup")]))
    assert (500, '"invalidentrystate"') == (response.status_code, response.text)


def test_idm_scim_sync_phase_3_basic(k: Kanidm) -> None:
    """A group entry is created with its name and external id."""
    uid = uuid.uuid4()
    k.ok(request([group(uid, "testgroup")]))
    entry = k.entry("testgroup")
    assert uid == entry.uuid
    if k.target.reads_sync_attributes:
        assert ("cn=testgroup,ou=groups",) == entry.get("sync_external_id")
    assert {"group", "sync_object"} <= entry.classes


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({"uuid": str(uuid.uuid4())}, id="uuid_manipulation"),
        pytest.param({"sync_parent_uuid": str(uuid.uuid4())}, id="sync_parent_uuid_manipulation"),
        pytest.param({"class": ["posixgroup"]}, id="disallowed_class_forbidden"),
    ],
)
def test_idm_scim_sync_phase_3_forbidden_attributes(k: Kanidm, extra: dict[str, Any]) -> None:
    """Attributes the account does not own (uuid, sync_parent_uuid, class) are refused."""
    response = k.push(request([group(uuid.uuid4(), "testgroup", **extra)]))
    assert (500, '"invalidentrystate"') == (response.status_code, response.text)
    assert k.find("testgroup") is None


def test_idm_scim_sync_phase_3_disallowed_class_system(k: Kanidm) -> None:
    """A schema URN naming a class that is not sync-allowed is refused."""
    entry = group(uuid.uuid4(), "testgroup")
    entry["schemas"] = [URN + "system"]
    response = k.push(request([entry]))
    assert (500, '"invalidentrystate"') == (response.status_code, response.text)


def test_idm_scim_sync_phase_4_correct_delete(k: Kanidm) -> None:
    """A group created in one apply is recycled by Delete in the next."""
    uid = uuid.uuid4()
    k.ok(request([group(uid, "testgroup")]))
    k.ok(request([], from_state=active(C1), to_state=active(C2), retain={"Delete": [str(uid)]}))
    assert "recycled" == k.entry(uid).state


def test_idm_scim_sync_phase_4_nonexisting_delete(k: Kanidm) -> None:
    """Delete of a UUID that exists nowhere succeeds."""
    k.ok(request([], retain={"Delete": [str(uuid.uuid4())]}))


def test_idm_scim_sync_phase_4_out_of_scope_delete(k: Kanidm) -> None:
    """Delete of a live native entry is 403 accessdenied and nothing commits."""
    native = k.target.add_group("native")
    before = k.target.fingerprint()
    response = k.push(request([group(uuid.uuid4(), "g1")], retain={"Delete": [str(native)]}))
    assert (403, '"accessdenied"') == (response.status_code, response.text)
    assert before == k.target.fingerprint()
    assert '"Refresh"' == k.state().text


def test_idm_scim_sync_phase_4_delete_already_deleted(k: Kanidm) -> None:
    """Delete of an already recycled, unowned entry is a no-op."""
    native = k.target.add_group("native")
    k.target.recycle(native)
    k.ok(request([], retain={"Delete": [str(native)]}))


def test_idm_scim_sync_phase_4_correct_retain(k: Kanidm) -> None:
    """Retain([a]) recycles the account's other entry b."""
    a, b = uuid.uuid4(), uuid.uuid4()
    k.ok(request([group(a, "ga"), group(b, "gb")]))
    k.ok(request([], from_state=active(C1), to_state=active(C2), retain={"Retain": [str(a)]}))
    assert k.live(a)
    assert not k.live(b)


def test_idm_scim_sync_phase_4_retain_none(k: Kanidm) -> None:
    """Retain([]) recycles every entry of the account."""
    a, b = uuid.uuid4(), uuid.uuid4()
    k.ok(request([group(a, "ga"), group(b, "gb")]))
    k.ok(request([], from_state=active(C1), to_state=active(C2), retain={"Retain": []}))
    assert not k.live(a)
    assert not k.live(b)


def test_idm_scim_sync_phase_4_retain_no_deletes(k: Kanidm) -> None:
    """Retain([a]) with only a existing leaves a live and unchanged."""
    a = uuid.uuid4()
    k.ok(request([group(a, "ga", description="kept")]))
    before = k.entry(a)
    k.ok(request([], from_state=active(C1), to_state=active(C2), retain={"Retain": [str(a)]}))
    assert before == k.entry(a)


def test_idm_scim_sync_phase_5_from_refresh_to_active(k: Kanidm) -> None:
    """Refresh->Active{01020304} then Active{01020304}->Active{02030405} chain cookies."""
    k.ok(request([]))
    assert {"Active": {"cookie": "AQIDBA"}} == k.state().json()
    k.ok(request([], from_state=active(C1), to_state=active(C2)))
    assert {"Active": {"cookie": C2}} == k.state().json()


def ipa_1_checks(k: Kanidm) -> None:
    user = k.entry("testuser")
    assert k.u(USER) == user.uuid
    if k.target.reads_sync_attributes:
        assert (USER_XID,) == user.get("sync_external_id")
    assert (12345,) == user.get("gidnumber")
    assert ("Test User",) == user.get("displayname")
    assert ("/bin/sh",) == user.get("loginshell")
    assert 1 == len(user.get("ssh_publickey"))
    posix = k.entry("testposix")
    assert (1234567,) == posix.get("gidnumber")
    for name in ("testgroup", "testexternal"):
        assert () == k.entry(name).get("gidnumber")
    assert (str(k.u(USER)),) == k.entry("testgroup").get("member")
    assert (str(k.u(USER)),) == posix.get("member")
    assert {str(k.u(TESTGROUP)), str(k.u(TESTPOSIX))} <= set(user.get("memberof"))


def test_idm_scim_sync_refresh_ipa_example_1(k: Kanidm) -> None:
    """IPA_1 imports correctly; IPA_2 deletes, renames and drops members as kanidmd does."""
    k.ok(k.golden("1"))
    ipa_1_checks(k)
    k.ok(k.golden("2"))
    assert "recycled" == k.entry(k.u(TESTGROUP)).state
    renamed = k.entry("testexternal2")
    assert k.u(TESTEXTERNAL) == renamed.uuid
    if k.target.reads_sync_attributes:
        assert (
            "cn=testexternal2,cn=groups,cn=accounts,dc=dev,dc=blackhats,dc=net,dc=au",
        ) == renamed.get("sync_external_id")
    assert (str(k.u(USER)),) == renamed.get("member")
    assert k.find("testexternal") is None
    posix = k.entry("testposix")
    assert () == posix.get("member")
    assert (1234567,) == posix.get("gidnumber")


def test_idm_scim_sync_refresh_ipa_example_2(k: Kanidm) -> None:
    """need_refresh keeps data; a refresh image then deletes what it omits."""
    k.ok(k.golden("1"))
    cookie = json.loads(k.golden("1"))["to_state"]
    k.ok(request([], from_state=cookie, to_state="Refresh"))
    assert '"Refresh"' == k.state().text
    ipa_1_checks(k)
    k.ok(k.golden("refresh-1"))
    assert not k.live(k.u(TESTPOSIX))
    assert not k.live(k.u(TESTEXTERNAL))
    assert k.live(k.u(USER))
    assert (str(k.u(USER)),) == k.entry("testgroup").get("member")
    user = k.entry("testuser")
    assert () == user.get("mail")
    assert ("2023-11-28T04:57:55Z",) == user.get("account_expire")


def test_idm_scim_sync_yield_authority(k: Kanidm) -> None:
    """With legalname yielded, a locally set value survives a refresh that omits it."""
    put = k.admin.put(
        "/v1/sync_account/test_scim_sync/_attr/sync_yield_authority", json=["legalname"]
    )
    assert 200 == put.status_code
    k.ok(k.golden("1"))
    k.target.set_attribute(k.u(USER), "legalname", ["Local Legal Name"])
    k.ok(k.golden("refresh-1"))
    assert ("Local Legal Name",) == k.entry("testuser").get("legalname")


def after_refresh_recycling_two(k: Kanidm) -> None:
    k.ok(k.golden("1"))
    k.ok(k.golden("refresh-1"))
    assert not k.live(k.u(TESTPOSIX))
    assert not k.live(k.u(TESTEXTERNAL))


def test_idm_scim_sync_finalise_1(k: Kanidm) -> None:
    """After finalise all four entries remain, none is a sync object any more."""
    k.ok(k.golden("1"))
    assert "null" == k.admin.get("/v1/sync_account/test_scim_sync/_finalise").text
    for name in ("testuser", "testgroup", "testexternal", "testposix"):
        entry = k.entry(name)
        assert "sync_object" not in entry.classes
        assert () == entry.get("sync_parent_uuid")
    assert 401 == k.state().status_code  # the account is gone, so is its token


def test_idm_scim_sync_finalise_2(k: Kanidm) -> None:
    """Finalise after a refresh that recycled two entries: survivors lose sync_object."""
    after_refresh_recycling_two(k)
    assert 200 == k.admin.get("/v1/sync_account/test_scim_sync/_finalise").status_code
    for name in ("testuser", "testgroup"):
        assert "sync_object" not in k.entry(name).classes
    assert k.find("testposix") is None
    assert k.find("testexternal") is None


def test_idm_scim_sync_terminate_1(k: Kanidm) -> None:
    """After terminate none of the four names can be found."""
    k.ok(k.golden("1"))
    assert "null" == k.admin.get("/v1/sync_account/test_scim_sync/_terminate").text
    for name in ("testuser", "testgroup", "testexternal", "testposix", "test_scim_sync"):
        assert k.find(name) is None, name
    assert 401 == k.state().status_code


def test_idm_scim_sync_terminate_2(k: Kanidm) -> None:
    """Terminate after a refresh that recycled two entries still removes everything."""
    after_refresh_recycling_two(k)
    assert 200 == k.admin.get("/v1/sync_account/test_scim_sync/_terminate").status_code
    for name in ("testuser", "testgroup", "testexternal", "testposix"):
        assert k.find(name) is None, name


def test_idm_scim_sync_json_proto(k: Kanidm) -> None:
    """Entries shaped like the typed builders' output apply in one Refresh->Active request."""
    full = person(
        uuid.uuid4(),
        "fulluser",
        schemas=[URN + "account", URN + "person", URN + "posixaccount"],
        password_import=NT_HASH,
        unix_password_import=NT_HASH,
        totp_import=[
            {
                "external_id": "totp-1",
                "secret": base64.b64encode(b"0123456789abcdefghij").decode(),
                "algo": "sha256",
                "step": 60,
                "digits": 8,
            }
        ],
        mail=[{"primary": True, "value": "full@example.org"}],
        ssh_publickey=[{"label": "key", "value": SSH_KEY}],
        loginshell="/bin/zsh",
        account_valid_from="2021-11-28T04:57:55Z",
        account_expire="2031-11-28T04:57:55+10:00",
        gidnumber=20001,
    )
    minimal_person = person(uuid.uuid4(), "minuser")
    minimal_group = group(uuid.uuid4(), "mingroup")
    posix_group = group(
        uuid.uuid4(),
        "posixg",
        schemas=[URN + "group", URN + "posixgroup"],
        description="posix group",
        gidnumber=20002,
        member=[
            {"external_id": "uid=fulluser,ou=people"},
            {"external_id": "uid=minuser,ou=people"},
        ],
    )
    k.ok(request([full, minimal_person, minimal_group, posix_group]))
    assert 2 == len(k.entry("posixg").get("member"))
    assert ("2031-11-27T18:57:55Z",) == k.entry("fulluser").get("account_expire")


# --- §7.2 kanidm: server/testkit/tests/testkit/scim_test.rs ---------------------------------


def test_sync_account_lifecycle(kanidm_target: KanidmTarget) -> None:
    """List, create, portal set and read, token generation and destruction, as admin."""
    kanidm_target.track_sync_account("ipa_sync_account")
    admin = Kanidm(kanidm_target).admin
    listing = admin.get("/v1/sync_account")
    assert (200, "[]") == (listing.status_code, listing.text)
    created = admin.post("/v1/sync_account", json={"attrs": {"name": ["ipa_sync_account"]}})
    assert (200, "null") == (created.status_code, created.text)
    names = [e["attrs"]["name"] for e in admin.get("/v1/sync_account").json()]
    assert [["ipa_sync_account"]] == names
    portal = "/v1/sync_account/ipa_sync_account/_attr/sync_credential_portal"
    assert admin.get(portal).json() is None
    assert "null" == admin.put(portal, json=["https://portal.example.com/"]).text
    entry = admin.get("/v1/sync_account/ipa_sync_account").json()
    assert ["https://portal.example.com/"] == entry["attrs"]["sync_credential_portal"]
    assert ["https://portal.example.com/"] == admin.get(portal).json()
    token = admin.post("/v1/sync_account/ipa_sync_account/_sync_token", json="lifecycle").json()
    head = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert "ES256" == head["alg"]
    assert head["kid"]
    assert "jwk" not in head
    claims = payload_of(token)
    assert claims is not None
    assert "synchronise" == claims["purpose"]
    assert isinstance(claims["issued_at"], int)
    uuid.UUID(str(claims["token_id"]))
    destroyed = admin.delete("/v1/sync_account/ipa_sync_account/_sync_token")
    assert (200, "null") == (destroyed.status_code, destroyed.text)


# --- §7.3 scenarios derived from the code --------------------------------------------------


def test_yielded_attribute_sent_is_invalidentrystate(k: Kanidm) -> None:
    """Sending a yielded attribute fails the whole apply (§7.3 #1)."""
    k.admin.put("/v1/sync_account/test_scim_sync/_attr/sync_yield_authority", json=["description"])
    response = k.push(request([group(uuid.uuid4(), "g1", description="d")]))
    assert (500, '"invalidentrystate"') == (response.status_code, response.text)


def test_entries_without_any_external_id_is_emptyrequest(k: Kanidm) -> None:
    """Non-empty entries without a single externalId is 400 emptyrequest (§7.3 #2)."""
    entry = group(uuid.uuid4(), "g1")
    del entry["externalId"]
    response = k.push(request([entry]))
    assert (400, '"emptyrequest"') == (response.status_code, response.text)


def test_empty_member_array_is_400_and_null_is_422(k: Kanidm) -> None:
    """`"member": []` is 400 invalidattribute; an attribute null is 422 (§7.3 #3)."""
    response = k.push(request([group(uuid.uuid4(), "g1", member=[])]))
    assert 400 == response.status_code
    assert {"invalidattribute": "Unsupported attribute conversion - member"} == response.json()
    response = k.push(request([group(uuid.uuid4(), "g1", description=None)]))
    assert 422 == response.status_code
    assert response.text.startswith("Failed to deserialize the JSON body into the target type: ")


def test_duplicate_id_last_one_wins(k: Kanidm) -> None:
    """Two entries with the same id: only the last is applied (§7.3 #4)."""
    uid = uuid.uuid4()
    first = group(uid, "first")
    second = group(uid, "second")
    second["externalId"] = first["externalId"]
    k.ok(request([first, second]))
    assert "second" == k.entry(uid).name
    assert k.find("first") is None


def test_retain_not_listing_a_submitted_entry_recycles_it(k: Kanidm) -> None:
    """Retain runs after phase 3: an entry sent but not retained ends up recycled (§7.3 #5)."""
    a, b = uuid.uuid4(), uuid.uuid4()
    k.ok(request([group(a, "ga"), group(b, "gb")], retain={"Retain": [str(a)]}))
    assert k.live(a)
    assert "recycled" == k.entry(b).state


def test_member_resolution(k: Kanidm) -> None:
    """Unknown member external ids are dropped; unknown member UUIDs fail refint (§7.3 #6)."""
    uid = uuid.uuid4()
    k.ok(request([group(uid, "g1", member=[{"external_id": "cn=nobody"}])]))
    assert () == k.entry(uid).get("member")
    response = k.push(
        request(
            [group(uid, "g1", member=[{"external_id": str(uuid.uuid4())}])],
            from_state=active(C1),
        )
    )
    assert 500 == response.status_code
    assert {
        "plugin": {"referentialintegrity": "Uuid referenced not found in database"}
    } == response.json()


def test_omitting_multivalued_attributes_clears_them(k: Kanidm) -> None:
    """Omitted mail, SSH keys and members are purged on the next apply (§7.3 #7)."""
    uid, gid = uuid.uuid4(), uuid.uuid4()
    full = person(
        uid,
        "alice",
        mail=[{"value": "alice@example.org"}],
        ssh_publickey=[{"label": "k", "value": SSH_KEY}],
    )
    k.ok(request([full, group(gid, "g1", member=[{"external_id": "uid=alice,ou=people"}])]))
    assert k.entry(uid).get("mail")
    assert k.entry(gid).get("member")
    k.ok(request([person(uid, "alice"), group(gid, "g1")], from_state=active(C1)))
    assert () == k.entry(uid).get("mail")
    assert () == k.entry(uid).get("ssh_publickey")
    assert () == k.entry(gid).get("member")


def test_credentials_are_purged_and_totp_needs_a_password(k: Kanidm) -> None:
    """No password_import wipes the credential; totp_import alone is credimport (§7.3 #8)."""
    uid = uuid.uuid4()
    k.ok(request([person(uid, "alice", password_import=NT_HASH)]))
    assert k.entry(uid).get("primary_credential")
    k.ok(request([person(uid, "alice")], from_state=active(C1)))
    assert () == k.entry(uid).get("primary_credential")
    totp = {
        "external_id": "t",
        "secret": base64.b64encode(b"x" * 20).decode(),
        "algo": "sha1",
        "step": 30,
        "digits": 6,
    }
    response = k.push(request([person(uid, "alice", totp_import=[totp])], from_state=active(C1)))
    assert 500 == response.status_code
    assert {
        "plugin": {
            "credimport": "totp_import can not be used if primary_credential (password) is missing"
        }
    } == response.json()


def test_token_kinds_on_the_wrong_endpoints(k: Kanidm) -> None:
    """Sync token on admin endpoints is 401; a user UAT on S2 is 500 serdejsonerror (#9)."""
    for path in ("/v1/sync_account", "/v1/sync_account/test_scim_sync", "/v1/self"):
        response = k.plain.get(path, headers={"authorization": f"Bearer {k.token}"})
        assert (401, '"notauthenticated"') == (response.status_code, response.text), path
    password = k.target.password("admin")
    client = k.target.http()
    init = {"step": {"init2": {"username": "admin", "issue": "token"}}}
    session = client.post("/v1/auth", json=init).headers["x-kanidm-auth-session-id"]
    hdr = {"x-kanidm-auth-session-id": session}
    client.post("/v1/auth", json={"step": {"begin": "password"}}, headers=hdr)
    done = client.post("/v1/auth", json={"step": {"cred": {"password": password}}}, headers=hdr)
    uat = done.json()["state"]["success"]
    response = k.push(request([]), token=uat)
    assert (500, '"serdejsonerror"') == (response.status_code, response.text)


def test_second_token_without_destroy_is_schemaviolation(k: Kanidm) -> None:
    """Generating a second token before destroying the first is 400 (§7.3 #10)."""
    response = k.admin.post("/v1/sync_account/test_scim_sync/_sync_token", json="second")
    assert 400 == response.status_code
    assert {"schemaviolation": {"invalidattributesyntax": "sync_token_session"}} == response.json()


# --- revocation, force refresh, all-or-nothing over HTTP ------------------------------------


@pytest.mark.parametrize("action", ["_finalise", "_terminate"])
def test_token_is_revoked_by_finalise_and_terminate(k: Kanidm, action: str) -> None:
    """Deleting the account (finalise or terminate) makes its token 401."""
    assert 200 == k.state().status_code
    assert 200 == k.admin.get(f"/v1/sync_account/test_scim_sync/{action}").status_code
    assert 401 == k.push(request([])).status_code
    assert k.admin.get("/v1/sync_account/test_scim_sync").json() is None


def test_force_refresh_removes_the_cookie(k: Kanidm) -> None:
    """PATCH sync_cookie [] makes S1 answer Refresh; a value for it is 400."""
    k.ok(request([]))
    assert "Active" in k.state().json()
    patch = k.admin.patch("/v1/sync_account/test_scim_sync", json={"attrs": {"sync_cookie": []}})
    assert (200, "null") == (patch.status_code, patch.text)
    assert '"Refresh"' == k.state().text
    bad = k.admin.patch(
        "/v1/sync_account/test_scim_sync", json={"attrs": {"sync_cookie": ["AAAA"]}}
    )
    assert 400 == bad.status_code
    assert {
        "invalidattribute": "Private Binary Values can not be supplied through modification"
    } == bad.json()


def test_cookie_reads_as_private_binary(k: Kanidm) -> None:
    """A2 renders the stored cookie as the literal private_binary."""
    k.ok(request([]))
    attrs = k.admin.get("/v1/sync_account/test_scim_sync").json()["attrs"]
    assert ["private_binary"] == attrs["sync_cookie"]


def test_failed_apply_leaves_store_identical(k: Kanidm) -> None:
    """A failing ChangeSet (a name conflict in its second entry) commits nothing."""
    k.target.add_person("taken", displayname="Taken")
    k.ok(request([group(uuid.uuid4(), "g0")]))
    before = k.target.fingerprint()
    response = k.push(
        request(
            [group(uuid.uuid4(), "g1"), group(uuid.uuid4(), "taken")],
            from_state=active(C1),
            to_state=active(C2),
        )
    )
    assert 409 == response.status_code
    assert "name" in response.json()["conflicting_attributes"]
    assert before == k.target.fingerprint()
    assert {"Active": {"cookie": C1}} == k.state().json()
