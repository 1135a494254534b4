"""The double's core against kanidmd's own sync unit tests (spec §7.1), at the store level.

Each test mirrors one test of kanidm: server/lib/src/idm/scim.rs, using the golden IPA
payloads where kanidmd does. The HTTP conformance suite replays the same scenarios over HTTP.
"""

from __future__ import annotations

import json
import uuid

import pytest
from store_helpers import (  # noqa: F401  # fixtures are used by name
    C1,
    C2,
    IPA_USER_EXT,
    SSH_KEY,
    TESTEXTERNAL,
    TESTGROUP,
    TESTPOSIX,
    TESTUSER,
    URN,
    account_fixture,
    apply,
    body,
    golden,
    group,
    rejected,
    store_fixture,
)

from kanidm_sync.testing._store import Store


def test_basic_function(store: Store, account: uuid.UUID) -> None:
    """A fresh account is a live sync account in state Refresh."""
    assert [account] == store.sync_accounts()
    assert None is store.get_cookie(account)
    assert account == store.resolve_sync_account("TEST_SCIM_SYNC")


def test_phase_1_inconsistent(store: Store, account: uuid.UUID) -> None:
    """Active from_state against an account without a cookie is invalidsyncstate."""
    err = rejected(store, account, body([], from_=b"\x00"))
    assert (500, "invalidsyncstate") == (err.status, err.json())


def test_phase_2_basic(store: Store, account: uuid.UUID) -> None:
    """The stub carries the requested UUID and the lower-cased external id."""
    uid = uuid.uuid4()
    apply(store, account, body([group(uid, "testgroup", externalId="CN=TestGroup,OU=X")]))
    entry = store.entry(uid)
    assert entry is not None
    assert ("cn=testgroup,ou=x",) == entry.get("sync_external_id")
    assert (str(account),) == entry.get("sync_parent_uuid")
    assert "sync_object" in entry.classes


def test_phase_2_deny_on_tombstone(store: Store, account: uuid.UUID) -> None:
    """An entry id equal to a recycled (or tombstoned) entry's UUID is invalidentrystate."""
    native = store.add_group("oldgroup")
    store.recycle(native)
    err = rejected(store, account, body([group(native, "newgroup")]))
    assert (500, "invalidentrystate") == (err.status, err.json())
    store.tombstone(native)
    err = rejected(store, account, body([group(native, "newgroup")]))
    assert "invalidentrystate" == err.json()


def test_phase_3_basic(store: Store, account: uuid.UUID) -> None:
    """A group entry is created with its name and external id."""
    uid = uuid.uuid4()
    apply(store, account, body([group(uid, "testgroup")]))
    entry = store.entry("testgroup")
    assert entry is not None
    assert uid == entry.uuid
    assert ("cn=testgroup,ou=groups",) == entry.get("sync_external_id")
    assert (f"testgroup@{store.domain}",) == entry.get("spn")


@pytest.mark.parametrize(
    ("attr", "value"),
    [
        ("uuid", "2f0b8b38-1bf4-4d08-9d14-1c4b5d9b7b10"),
        ("sync_parent_uuid", "2f0b8b38-1bf4-4d08-9d14-1c4b5d9b7b10"),
        ("class", "system"),
        ("sync_external_id", "x"),
        ("spn", "a@b"),
        ("external_id", "x"),
    ],
)
def test_phase_3_manipulation(store: Store, account: uuid.UUID, attr: str, value: str) -> None:
    """uuid, sync_parent_uuid, class (and other non-owned keys) are invalidentrystate."""
    err = rejected(store, account, body([group(uuid.uuid4(), "g", **{attr: value})]))
    assert (500, "invalidentrystate") == (err.status, err.json())
    assert [] == store.entries(owned_by=account)


def test_phase_3_disallowed_class_system(store: Store, account: uuid.UUID) -> None:
    """A URN naming a class that is not sync-allowed is invalidentrystate."""
    entry = group(uuid.uuid4(), "g")
    entry["schemas"] = [URN + "system"]
    err = rejected(store, account, body([entry]))
    assert "invalidentrystate" == err.json()


def _two_groups(store: Store, account: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID]:
    a, b = uuid.uuid4(), uuid.uuid4()
    apply(store, account, body([group(a, "group-a"), group(b, "group-b")]))
    return a, b


def test_phase_4_correct_delete(store: Store, account: uuid.UUID) -> None:
    """Delete([uuid]) in a second, incremental apply recycles the group."""
    a, _ = _two_groups(store, account)
    apply(store, account, body([], from_=C1, to=C2, retain={"Delete": [str(a)]}))
    entry = store.entry(a)
    assert entry is not None
    assert "recycled" == entry.state
    assert None is store.entry("group-a")


def test_phase_4_nonexisting_delete(store: Store, account: uuid.UUID) -> None:
    """Delete of a UUID that exists nowhere is a no-op."""
    a, b = _two_groups(store, account)
    apply(store, account, body([], from_=C1, to=C2, retain={"Delete": [str(uuid.uuid4())]}))
    assert sorted([a, b]) == sorted(e.uuid for e in store.entries(owned_by=account))
    assert C2 == store.get_cookie(account)


def test_phase_4_out_of_scope_delete(store: Store, account: uuid.UUID) -> None:
    """Delete of a live native entry is 403 accessdenied and nothing happens."""
    _two_groups(store, account)
    native = store.add_group("native")
    err = rejected(store, account, body([], from_=C1, to=C2, retain={"Delete": [str(native)]}))
    assert (403, "accessdenied") == (err.status, err.json())
    assert C1 == store.get_cookie(account)


def test_phase_4_delete_already_deleted(store: Store, account: uuid.UUID) -> None:
    """Delete of an already recycled, unowned entry is a no-op."""
    native = store.add_group("native")
    store.recycle(native)
    apply(store, account, body([], retain={"Delete": [str(native)]}))
    assert C1 == store.get_cookie(account)


def test_phase_4_correct_retain(store: Store, account: uuid.UUID) -> None:
    """Retain([a]) recycles b."""
    a, b = _two_groups(store, account)
    apply(store, account, body([], from_=C1, to=C2, retain={"Retain": [str(a)]}))
    assert [a] == [e.uuid for e in store.entries(owned_by=account)]
    entry_b = store.entry(b)
    assert entry_b is not None
    assert "recycled" == entry_b.state


def test_phase_4_retain_none(store: Store, account: uuid.UUID) -> None:
    """Retain([]) recycles every entry of the account."""
    _two_groups(store, account)
    apply(store, account, body([], from_=C1, to=C2, retain={"Retain": []}))
    assert [] == store.entries(owned_by=account)
    assert 2 == len(store.entries(owned_by=account, include_recycled=True))


def test_phase_4_retain_no_deletes(store: Store, account: uuid.UUID) -> None:
    """Retain([a]) with only a existing leaves a live and unchanged."""
    a = uuid.uuid4()
    apply(store, account, body([group(a, "group-a")]))
    before = store.entry(a)
    apply(store, account, body([], from_=C1, to=C2, retain={"Retain": [str(a)]}))
    assert before == store.entry(a)


def test_phase_5_cookie_chaining(store: Store, account: uuid.UUID) -> None:
    """Refresh->Active{01020304} then Active{01020304}->Active{02030405}; a stale cookie fails."""
    apply(store, account, body([], to=C1))
    assert C1 == store.get_cookie(account)
    apply(store, account, body([], from_=C1, to=C2))
    assert C2 == store.get_cookie(account)
    err = rejected(store, account, body([], from_=C1, to=C2))
    assert "invalidsyncstate" == err.json()


def test_refresh_ipa_example_1(store: Store, account: uuid.UUID) -> None:
    """IPA_1 imports correctly; IPA_2 then deletes, renames and clears as kanidmd's test says."""
    apply(store, account, golden("ipa-1"))
    user = store.entry("testuser")
    assert user is not None
    assert (IPA_USER_EXT,) == user.get("sync_external_id")
    assert (12345,) == user.get("gidnumber")
    assert ("Test User",) == user.get("displayname")
    assert ("/bin/sh",) == user.get("loginshell")
    assert 1 == len(user.get("ssh_publickey"))
    assert {str(TESTGROUP), str(TESTPOSIX)} == set(user.get("memberof"))
    posix = store.entry("testposix")
    assert posix is not None
    assert (1234567,) == posix.get("gidnumber")
    for name in ("testgroup", "testexternal"):
        plain = store.entry(name)
        assert plain is not None
        assert () == plain.get("gidnumber")
    testgroup = store.entry("testgroup")
    assert testgroup is not None
    assert (str(TESTUSER),) == testgroup.get("member")

    apply(store, account, golden("ipa-2"))
    assert None is store.entry("testgroup")
    assert None is store.entry("testexternal")
    renamed = store.entry("testexternal2")
    assert renamed is not None
    assert TESTEXTERNAL == renamed.uuid
    assert ("cn=testexternal2,cn=groups,cn=accounts,dc=dev,dc=blackhats,dc=net,dc=au",) == (
        renamed.get("sync_external_id")
    )
    assert (str(TESTUSER),) == renamed.get("member")
    posix = store.entry("testposix")
    assert posix is not None
    assert () == posix.get("member")
    assert (1234567,) == posix.get("gidnumber")
    user = store.entry("testuser")
    assert user is not None
    assert (str(TESTEXTERNAL),) == user.get("memberof")


def _ipa_1_cookie() -> bytes:
    from kanidm_sync.testing._parse import decode_cookie_b64

    cookie = decode_cookie_b64(json.loads(golden("ipa-1"))["to_state"]["Active"]["cookie"])
    assert cookie is not None
    return cookie


def test_refresh_ipa_example_2(store: Store, account: uuid.UUID) -> None:
    """need_refresh keeps all data; IPA_REFRESH_1 then deletes what the full image lacks."""
    apply(store, account, golden("ipa-1"))
    before = {e.uuid: e for e in store.entries(owned_by=account)}
    apply(store, account, body([], from_=_ipa_1_cookie(), to=None))
    assert None is store.get_cookie(account)
    assert before == {e.uuid: e for e in store.entries(owned_by=account)}

    apply(store, account, golden("ipa-refresh-1"))
    assert {TESTUSER, TESTGROUP} == {e.uuid for e in store.entries(owned_by=account)}
    for gone in (TESTPOSIX, TESTEXTERNAL):
        entry = store.entry(gone)
        assert entry is not None
        assert "recycled" == entry.state
    testgroup = store.entry("testgroup")
    assert testgroup is not None
    assert (str(TESTUSER),) == testgroup.get("member")
    user = store.entry("testuser")
    assert user is not None
    assert (str(TESTGROUP),) == user.get("memberof")
    assert () == user.get("mail")
    assert () == user.get("ssh_publickey")
    assert ("2023-11-28T04:57:55Z",) == user.get("account_expire")
    assert ("2021-11-28T04:57:55Z",) == user.get("account_valid_from")


def test_yield_authority(store: Store, account: uuid.UUID) -> None:
    """With legalname yielded, a locally set value survives a refresh that omits it."""
    store.set_sync_account_attr(account, "sync_yield_authority", ["LegalName"])
    assert frozenset({"legalname"}) == store.yielded(account)
    apply(store, account, golden("ipa-1"))
    store.set_attribute(TESTUSER, "legalname", ["Test Legal"])
    apply(store, account, golden("ipa-refresh-1"))
    user = store.entry(TESTUSER)
    assert user is not None
    assert ("Test Legal",) == user.get("legalname")


def test_without_yield_legalname_is_purged(store: Store, account: uuid.UUID) -> None:
    """Control for the yield test: without the yield, the local legalname is wiped."""
    apply(store, account, golden("ipa-1"))
    store.set_attribute(TESTUSER, "legalname", ["Test Legal"])
    apply(store, account, golden("ipa-refresh-1"))
    user = store.entry(TESTUSER)
    assert user is not None
    assert () == user.get("legalname")


def _names() -> list[str]:
    return ["testuser", "testgroup", "testexternal", "testposix"]


def test_finalise_1(store: Store, account: uuid.UUID) -> None:
    """After IPA_1 and finalise, all four entries exist and none is a sync object."""
    apply(store, account, golden("ipa-1"))
    store.finalise(account)
    for name in _names():
        entry = store.entry(name)
        assert entry is not None
        assert "sync_object" not in entry.classes
        assert () == entry.get("sync_external_id")
        assert () == entry.get("sync_parent_uuid")
        assert () == entry.get("sync_class")
    assert [] == store.sync_accounts()
    user = store.entry("testuser")
    assert user is not None
    assert (12345,) == user.get("gidnumber")


def _refresh_recycling_two(store: Store, account: uuid.UUID) -> None:
    apply(store, account, golden("ipa-1"))
    apply(store, account, golden("ipa-refresh-1"))


def test_finalise_2(store: Store, account: uuid.UUID) -> None:
    """Finalise after a refresh that recycled two entries unlinks the recycled ones too."""
    _refresh_recycling_two(store, account)
    store.finalise(account)
    assert None is store.entry("testposix")
    assert None is store.entry("testexternal")
    for uid in (TESTPOSIX, TESTEXTERNAL):
        entry = store.entry(uid)
        assert entry is not None
        assert ("recycled", False) == (entry.state, "sync_object" in entry.classes)
    for name in ("testuser", "testgroup"):
        entry = store.entry(name)
        assert entry is not None
        assert "sync_object" not in entry.classes


@pytest.mark.parametrize("after_refresh", [False, True])
def test_terminate(store: Store, account: uuid.UUID, after_refresh: bool) -> None:
    """After terminate (with or without an earlier refresh), none of the names is found."""
    if after_refresh:
        _refresh_recycling_two(store, account)
    else:
        apply(store, account, golden("ipa-1"))
    store.terminate(account)
    for name in [*_names(), "test_scim_sync"]:
        assert None is store.entry(name)
    assert [] == store.entries(include_recycled=False, include_builtin=False)


def test_json_proto(store: Store, account: uuid.UUID) -> None:
    """A minimal person, a minimal group, a full person and a posix group apply in one go."""
    full = uuid.uuid4()
    entries = [
        {
            "schemas": [URN + "person", URN + "account"],
            "id": str(uuid.uuid4()),
            "externalId": "cn=minimal",
            "name": "minimal",
            "displayname": "Minimal",
        },
        group(uuid.uuid4(), "minimal-group"),
        {
            "schemas": [URN + "person", URN + "account", URN + "posixaccount"],
            "id": str(full),
            "externalId": "cn=full",
            "name": "full",
            "displayname": "Full Person",
            "gidnumber": 20001,
            "loginshell": "/bin/Zsh",
            "password_import": "ipaNTHash: iEb36u6PsRetBr3YMLdYbA",
            "unix_password_import": "ipaNTHash: iEb36u6PsRetBr3YMLdYbA",
            "totp_import": [
                {
                    "external_id": "totp",
                    "secret": "QICWIWDU4EXHGQCYTCP5BZJTNQHFVMRBXWQJJM6LAVKKSY4TPDJX5DL5",
                    "algo": "sha256",
                    "step": 60,
                    "digits": 8,
                }
            ],
            "mail": [{"primary": True, "value": "full@example.org"}],
            "ssh_publickey": [
                {
                    "label": "laptop",
                    "value": SSH_KEY,
                }
            ],
            "account_valid_from": "2021-11-28T14:57:55+10:00",
            "account_expire": "2030-01-01T00:00:00.5Z",
        },
        {
            "schemas": [URN + "group", URN + "posixgroup"],
            "id": str(uuid.uuid4()),
            "externalId": "cn=posix",
            "name": "posix",
            "description": "posix group",
            "gidnumber": 20100,
            "member": [{"external_id": "CN=FULL"}, {"external_id": "cn=minimal"}],
        },
    ]
    apply(store, account, body(entries))
    person = store.entry(full)
    assert person is not None
    assert ("/bin/zsh",) == person.get("loginshell")
    assert ("password(nt_md4) totp(totp)",) == person.get("primary_credential")
    assert ("2021-11-28T04:57:55Z",) == person.get("account_valid_from")
    assert ("2030-01-01T00:00:00.5Z",) == person.get("account_expire")
    posix = store.entry("posix")
    assert posix is not None
    assert 2 == len(posix.get("member"))
