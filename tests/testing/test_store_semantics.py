"""Apply semantics of the double's core beyond kanidmd's unit tests (spec §7.3, §3.9, §4).

Every rejection is checked for its exact status and body, and (through ``rejected``) for
leaving the store's fingerprint unchanged.
"""

# The project writes asserts as `expected == actual` (STYLE.md); SIM300 wants the reverse.

from __future__ import annotations

import uuid
from typing import Any

import pytest
from store_helpers import (  # noqa: F401  # fixtures are used by name
    C1,
    C2,
    SSH_KEY,
    URN,
    account_fixture,
    apply,
    body,
    group,
    person,
    rejected,
    store_fixture,
)

from kanidm_sync.testing._store import Store, parse_sync_request

NT = "ipaNTHash: iEb36u6PsRetBr3YMLdYbA"
TOTP = {"external_id": "t1", "secret": "AAAAAAAAAAAAAAAAAAAAAAAAAAAA", "algo": "sha1", "step": 30,
        "digits": 6}  # fmt: skip


def posix_person(uid: uuid.UUID, name: str, **extra: Any) -> dict[str, Any]:
    entry = person(uid, name, **extra)
    entry["schemas"] = [*entry["schemas"], URN + "posixaccount"]
    return entry


def error_of(store: Store, account: uuid.UUID, entries: list[dict[str, Any]]) -> tuple[int, Any]:
    err = rejected(store, account, body(entries))
    return err.status, err.json()


# --- §7.3 ----------------------------------------------------------------------------------


def test_yielded_attribute_sent_is_invalidentrystate(store: Store, account: uuid.UUID) -> None:
    """7.3.1: sending a yielded attribute fails the whole apply."""
    store.set_sync_account_attr(account, "sync_yield_authority", ["legalname"])
    got = error_of(store, account, [person(uuid.uuid4(), "alice", legalname="Alice L")])
    assert (500, "invalidentrystate") == got


def test_no_external_id_anywhere_is_emptyrequest(store: Store, account: uuid.UUID) -> None:
    """7.3.2: entries without any externalId give 400 emptyrequest."""
    entry = group(uuid.uuid4(), "g")
    del entry["externalId"]
    assert (400, "emptyrequest") == error_of(store, account, [entry])


def test_one_external_id_is_enough(store: Store, account: uuid.UUID) -> None:
    """7.3.2 control: one entry with externalId makes the batch non-empty."""
    a, b = uuid.uuid4(), uuid.uuid4()
    entry_b = group(b, "gb")
    del entry_b["externalId"]
    apply(store, account, body([group(a, "ga"), entry_b]))
    entry = store.entry(b)
    assert entry is not None
    assert () == entry.get("sync_external_id")


def test_empty_member_array_is_invalidattribute(store: Store, account: uuid.UUID) -> None:
    """7.3.3: ``"member": []`` parses as Binary and fails conversion with 400."""
    got = error_of(store, account, [group(uuid.uuid4(), "g", member=[])])
    assert (400, {"invalidattribute": "Unsupported attribute conversion - member"}) == got


def test_duplicate_id_last_wins(store: Store, account: uuid.UUID) -> None:
    """7.3.4: with a duplicate id only the last occurrence is applied."""
    uid = uuid.uuid4()
    apply(store, account, body([group(uid, "first"), group(uid, "second")]))
    entry = store.entry(uid)
    assert entry is not None
    assert ("second",) == entry.get("name")
    assert None is store.entry("first")


def test_retain_not_listing_submitted_entry_recycles_it(store: Store, account: uuid.UUID) -> None:
    """7.3.5: Retain runs after phase 3, so an unlisted submitted entry ends up recycled."""
    a, b = uuid.uuid4(), uuid.uuid4()
    apply(store, account, body([group(a, "ga"), group(b, "gb")], retain={"Retain": [str(a)]}))
    entry = store.entry(b)
    assert entry is not None
    assert "recycled" == entry.state


def test_delete_of_submitted_entry_recycles_it(store: Store, account: uuid.UUID) -> None:
    """An entry present both in entries and Delete ends up deleted."""
    a = uuid.uuid4()
    apply(store, account, body([group(a, "ga")], retain={"Delete": [str(a)]}))
    entry = store.entry(a)
    assert entry is not None
    assert "recycled" == entry.state


def test_unknown_member_external_id_is_dropped(store: Store, account: uuid.UUID) -> None:
    """7.3.6: a member external id matching nothing is silently omitted."""
    uid = uuid.uuid4()
    members = [{"external_id": "uid=nobody"}, {"external_id": "uid=alice,ou=people"}]
    alice = uuid.uuid4()
    apply(store, account, body([person(alice, "alice"), group(uid, "g", member=members)]))
    entry = store.entry(uid)
    assert entry is not None
    assert (str(alice),) == entry.get("member")


def test_missing_member_uuid_is_referentialintegrity(store: Store, account: uuid.UUID) -> None:
    """7.3.6: a member UUID that does not exist fails referential integrity with 500."""
    members = [{"external_id": str(uuid.uuid4())}]
    got = error_of(store, account, [group(uuid.uuid4(), "g", member=members)])
    expected = {"plugin": {"referentialintegrity": "Uuid referenced not found in database"}}
    assert (500, expected) == got


def test_member_may_be_native_entry_by_uuid(store: Store, account: uuid.UUID) -> None:
    """§3.9.1: a member UUID is used directly, even for a native entry."""
    native = store.add_person("native")
    uid = uuid.uuid4()
    apply(store, account, body([group(uid, "g", member=[{"external_id": str(native)}])]))
    entry = store.entry("native")
    assert entry is not None
    assert (str(uid),) == entry.get("memberof")


def test_omitting_multi_valued_attributes_clears_them(store: Store, account: uuid.UUID) -> None:
    """7.3.7: an apply that omits mail, ssh keys and member removes them."""
    alice, g = uuid.uuid4(), uuid.uuid4()
    first = [
        person(
            alice,
            "alice",
            mail=[{"value": "alice@example.org"}],
            ssh_publickey=[{"label": "k", "value": SSH_KEY}],
        ),
        group(g, "g", member=[{"external_id": "uid=alice,ou=people"}]),
    ]
    apply(store, account, body(first))
    apply(store, account, body([person(alice, "alice"), group(g, "g")], from_=C1, to=C2))
    entry_a, entry_g = store.entry(alice), store.entry(g)
    assert entry_a is not None
    assert entry_g is not None
    assert ((), ()) == (entry_a.get("mail"), entry_a.get("ssh_publickey"))
    assert () == entry_g.get("member")
    assert () == entry_a.get("memberof")


def test_credential_purged_unless_yielded(store: Store, account: uuid.UUID) -> None:
    """7.3.8: an apply without password_import removes the primary credential."""
    uid = uuid.uuid4()
    apply(store, account, body([person(uid, "alice", password_import=NT)]))
    entry = store.entry(uid)
    assert entry is not None
    assert ("password(nt_md4)",) == entry.get("primary_credential")
    apply(store, account, body([person(uid, "alice")], from_=C1, to=C2))
    entry = store.entry(uid)
    assert entry is not None
    assert () == entry.get("primary_credential")


def test_yielded_credential_survives(store: Store, account: uuid.UUID) -> None:
    """7.3.8: with primary_credential yielded, the credential survives; totp appends to it."""
    uid = uuid.uuid4()
    apply(store, account, body([person(uid, "alice", password_import=NT)]))
    store.set_sync_account_attr(account, "sync_yield_authority", ["primary_credential"])
    apply(store, account, body([person(uid, "alice", totp_import=[TOTP])], from_=C1, to=C2))
    entry = store.entry(uid)
    assert entry is not None
    assert ("password(nt_md4) totp(t1)",) == entry.get("primary_credential")


def test_totp_without_password_is_credimport(store: Store, account: uuid.UUID) -> None:
    """7.3.8: totp_import without a primary credential is 500 credimport."""
    got = error_of(store, account, [person(uuid.uuid4(), "alice", totp_import=[TOTP])])
    message = "totp_import can not be used if primary_credential (password) is missing"
    assert (500, {"plugin": {"credimport": message}}) == got


# --- ownership, uniqueness, order of checks ------------------------------------------------


def test_native_entry_with_external_id_is_modifyassertionfailed(
    store: Store, account: uuid.UUID
) -> None:
    """Phase 2: an existing entry not owned by S fails the ownership assertion."""
    native = store.add_group("native")
    assert (500, "modifyassertionfailed") == error_of(store, account, [group(native, "native")])


def test_native_entry_without_external_id_fails_in_phase_3(
    store: Store, account: uuid.UUID
) -> None:
    """Phase 3 b catches a non-owned entry that had no externalId in phase 2."""
    native = store.add_group("native")
    entry = group(native, "native")
    del entry["externalId"]
    got = error_of(store, account, [group(uuid.uuid4(), "mine"), entry])
    assert (500, "modifyassertionfailed") == got


def test_other_accounts_entry_is_modifyassertionfailed(store: Store, account: uuid.UUID) -> None:
    """An entry owned by another sync account cannot be touched."""
    other = store.create_sync_account("other")
    uid = uuid.uuid4()
    apply(store, other, body([group(uid, "theirs")]))
    assert (500, "modifyassertionfailed") == error_of(store, account, [group(uid, "theirs")])


def test_external_id_conflict_is_409(store: Store, account: uuid.UUID) -> None:
    """Two entries ending with the same external id (case-insensitively) give 409."""
    a, b = group(uuid.uuid4(), "ga"), group(uuid.uuid4(), "gb")
    b["externalId"] = a["externalId"].upper()
    expected = {
        "error": "Attribute uniqueness error",
        "conflicting_attributes": ["sync_external_id"],
    }
    assert (409, expected) == error_of(store, account, [a, b])


def test_name_conflict_with_native_person_is_409(store: Store, account: uuid.UUID) -> None:
    """A synced person named like a native one collides on name (and SPN) server-wide."""
    store.add_person("alice")
    got = error_of(store, account, [person(uuid.uuid4(), "Alice")])
    expected = {"error": "Attribute uniqueness error", "conflicting_attributes": ["name", "spn"]}
    assert (409, expected) == got


def test_name_conflict_with_sync_account_is_409(store: Store, account: uuid.UUID) -> None:
    """Names are unique across all classes: a group cannot take the sync account's name."""
    status, got = error_of(store, account, [group(uuid.uuid4(), "test_scim_sync")])
    assert 409 == status
    assert "name" in got["conflicting_attributes"]


def test_mail_and_gid_conflicts_are_409(store: Store, account: uuid.UUID) -> None:
    """Mail and gidnumber are unique server-wide."""
    store.add_person("native", mail=["n@example.org"])
    got = error_of(store, account, [person(uuid.uuid4(), "x", mail=[{"value": "n@example.org"}])])
    assert (409, ["mail"]) == (got[0], got[1]["conflicting_attributes"])
    ents = [
        group(uuid.uuid4(), "p1", gidnumber=5000, schemas=[URN + "group", URN + "posixgroup"]),
        group(uuid.uuid4(), "p2", gidnumber=5000, schemas=[URN + "group", URN + "posixgroup"]),
    ]
    got = error_of(store, account, ents)
    assert (409, ["gidnumber"]) == (got[0], got[1]["conflicting_attributes"])


def test_recycled_names_and_external_ids_are_reusable(store: Store, account: uuid.UUID) -> None:
    """Uniqueness only considers live entries: a new UUID may reuse a deleted entry's ids."""
    old = uuid.uuid4()
    apply(store, account, body([group(old, "g")]))
    apply(store, account, body([], from_=C1, to=C2, retain={"Delete": [str(old)]}))
    new = uuid.uuid4()
    apply(store, account, body([group(new, "g")], from_=C2, to=C1))
    entry = store.entry("g")
    assert entry is not None
    assert new == entry.uuid


def test_conversion_errors_precede_validation(store: Store, account: uuid.UUID) -> None:
    """All modification lists are built before the batch: a later entry's unknown key wins."""
    low = uuid.UUID(int=1 << 100)
    high = uuid.UUID(int=1 << 120)
    ents = [group(low, "Not Valid!"), group(high, "ok", bogus="x")]
    assert (500, "invalidentrystate") == error_of(store, account, ents)
    ents = [group(low, "Not Valid!"), group(high, "ok")]
    got = error_of(store, account, ents)
    assert (400, {"schemaviolation": {"invalidattributesyntax": "name"}}) == got


def test_recycled_check_precedes_emptyrequest(store: Store, account: uuid.UUID) -> None:
    """Phase 2 checks recycled UUIDs before the external-id batch."""
    native = store.add_group("native")
    store.recycle(native)
    entry = group(native, "x")
    del entry["externalId"]
    assert (500, "invalidentrystate") == error_of(store, account, [entry])


def test_refresh_cleanup_runs_before_phase_3(store: Store, account: uuid.UUID) -> None:
    """§4.4: external ids of entries deleted by the refresh cleanup no longer resolve."""
    alice, g = uuid.uuid4(), uuid.uuid4()
    apply(store, account, body([person(alice, "alice")]))
    apply(store, account, body([group(g, "g", member=[{"external_id": "uid=alice,ou=people"}])]))
    entry = store.entry(g)
    assert entry is not None
    assert () == entry.get("member")
    alice_entry = store.entry(alice)
    assert alice_entry is not None
    assert "recycled" == alice_entry.state


def test_refresh_cleanup_removes_native_memberships(store: Store, account: uuid.UUID) -> None:
    """Deleting a synced entry removes it from native groups (referential integrity)."""
    alice = uuid.uuid4()
    apply(store, account, body([person(alice, "alice")]))
    native = store.add_group("native", members=[alice])
    apply(store, account, body([]))
    entry = store.entry(native)
    assert entry is not None
    assert () == entry.get("member")


def test_need_refresh_with_no_entries_deletes_nothing_but_refresh_does(
    store: Store, account: uuid.UUID
) -> None:
    """from_state Refresh with no entries deletes every owned entry (cleanup of §4.4)."""
    apply(store, account, body([group(uuid.uuid4(), "g")]))
    apply(store, account, body([], from_=C1, to=None))
    assert 1 == len(store.entries(owned_by=account))
    apply(store, account, body([], from_=None, to=C1))
    assert [] == store.entries(owned_by=account)


# --- classes, schema, plugins --------------------------------------------------------------


def test_classes_accumulate(store: Store, account: uuid.UUID) -> None:
    """Dropping a URN keeps the class and its attributes, but makes them unwritable."""
    uid = uuid.uuid4()
    posix = group(uid, "g", gidnumber=5000, schemas=[URN + "group", URN + "posixgroup"])
    apply(store, account, body([posix]))
    apply(store, account, body([group(uid, "g")], from_=C1, to=C2))
    entry = store.entry(uid)
    assert entry is not None
    assert "posixgroup" in entry.classes
    assert ("group", "posixgroup") == entry.get("sync_class")
    assert (5000,) == entry.get("gidnumber")
    got = error_of(store, account, [group(uid, "g", gidnumber=5001)])
    assert (500, "invalidentrystate") == got


def test_gidnumber_generated_from_uuid(store: Store, account: uuid.UUID) -> None:
    """A posix entry without gidnumber gets 0x70000000 | (last 4 bytes & 0x0FFFFFFF)."""
    uid = uuid.UUID("00000000-0000-4000-8000-0000ffffffff")
    apply(store, account, body([group(uid, "g", schemas=[URN + "group", URN + "posixgroup"])]))
    entry = store.entry(uid)
    assert entry is not None
    assert (0x7FFFFFFF,) == entry.get("gidnumber")


@pytest.mark.parametrize("gid", [0, 999, 60001, 65534, 2147483648])
def test_gidnumber_in_system_range(store: Store, account: uuid.UUID, gid: int) -> None:
    """A gidnumber outside the allowed ranges is 500 pl0001gidoverlapssystemrange."""
    ent = group(uuid.uuid4(), "g", gidnumber=gid, schemas=[URN + "group", URN + "posixgroup"])
    assert (500, "pl0001gidoverlapssystemrange") == error_of(store, account, [ent])


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (-1, "Out of bounds unsigned integer - gidnumber"),
        (4294967296, "Out of bounds unsigned integer - gidnumber"),
        (20001.0, "Unsupported attribute conversion - gidnumber"),
        ("20001", "Unsupported attribute conversion - gidnumber"),
    ],
)
def test_gidnumber_conversion(store: Store, account: uuid.UUID, value: Any, message: str) -> None:
    """Gidnumber must be a JSON integer fitting u32."""
    ent = group(uuid.uuid4(), "g", gidnumber=value, schemas=[URN + "group", URN + "posixgroup"])
    assert (400, {"invalidattribute": message}) == error_of(store, account, [ent])


def test_posixaccount_without_account_is_supplements(store: Store, account: uuid.UUID) -> None:
    """Posixaccount needs account: 400 supplementsnotsatisfied."""
    ent = person(uuid.uuid4(), "alice", schemas=[URN + "person", URN + "posixaccount"])
    del ent["displayname"]
    got = error_of(store, account, [ent])
    assert (400, {"schemaviolation": {"supplementsnotsatisfied": ["account"]}}) == got


def test_account_without_displayname_is_missingmust(store: Store, account: uuid.UUID) -> None:
    """Account requires displayname: 400 missingmustattribute."""
    ent = person(uuid.uuid4(), "alice")
    del ent["displayname"]
    got = error_of(store, account, [ent])
    assert (400, {"schemaviolation": {"missingmustattribute": ["displayname"]}}) == got


def test_person_and_service_account_exclude(store: Store, account: uuid.UUID) -> None:
    """Person excludes service_account."""
    ent = person(uuid.uuid4(), "alice", schemas=[URN + "person", URN + "service_account"])
    del ent["displayname"]
    status, got = error_of(store, account, [ent])
    assert 400 == status
    assert "excludesnotsatisfied" in got["schemaviolation"]


def test_group_without_name_is_invalidentrystate(store: Store, account: uuid.UUID) -> None:
    """The SPN plugin cannot build an SPN without a name: 500 invalidentrystate."""
    ent = group(uuid.uuid4(), "g")
    del ent["name"]
    assert (500, "invalidentrystate") == error_of(store, account, [ent])


def test_password_import_on_group(store: Store, account: uuid.UUID) -> None:
    """On a group the imported credential is not allowed by any class: 400."""
    got = error_of(store, account, [group(uuid.uuid4(), "g", password_import=NT)])
    expected = {"schemaviolation": {"attributenotvalidforclass": "primary_credential"}}
    assert (400, expected) == got


def test_unix_password_import_needs_posixaccount(store: Store, account: uuid.UUID) -> None:
    """unix_password_import without posixaccount is 400 attributenotvalidforclass."""
    got = error_of(store, account, [person(uuid.uuid4(), "a", unix_password_import=NT)])
    expected = {"schemaviolation": {"attributenotvalidforclass": "unix_password"}}
    assert (400, expected) == got


def test_unix_password_is_not_purged(store: Store, account: uuid.UUID) -> None:
    """unix_password is not sync-owned: omitting the import later keeps it."""
    uid = uuid.uuid4()
    apply(store, account, body([posix_person(uid, "a", unix_password_import=NT)]))
    apply(store, account, body([posix_person(uid, "a")], from_=C1, to=C2))
    entry = store.entry(uid)
    assert entry is not None
    assert ("password(nt_md4)",) == entry.get("unix_password")


@pytest.mark.parametrize(
    "value",
    [
        "pbkdf2_sha256$36000$xIEozuZVAoYm$uW1b35DUKyhvQAf1mBqMvoBDcqSD06juzyO/nmyV0+w=",
        "sambaNTPassword: 31d6cfe0d16ae931b73c59d7e0c089c0",
        "{SSHA512}" + "A" * 96,
        "{sha}" + "A" * 27 + "=",
        "{CRYPT}$6$rounds=5000$salt$" + "a" * 86,
        "{ARGON2}$argon2id$v=19$m=65536,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
        "{PBKDF2-SHA256}10000$c2FsdA$" + "A" * 43,
    ],
)
def test_password_formats_accepted(store: Store, account: uuid.UUID, value: str) -> None:
    """The import formats of §3.9.5 are accepted."""
    uid = uuid.uuid4()
    apply(store, account, body([person(uid, "a", password_import=value)]))
    entry = store.entry(uid)
    assert entry is not None
    assert 1 == len(entry.get("primary_credential"))


@pytest.mark.parametrize(
    "value",
    ["{PBKDF2_SHA256}AAAA", "plaintext", "{SHA}short", "{CRYPT}$2b$10$abc", "ipaNTHash: +/"],
)
def test_password_formats_refused(store: Store, account: uuid.UUID, value: str) -> None:
    """Unknown formats are 500 credimport with kanidmd's message."""
    got = error_of(store, account, [person(uuid.uuid4(), "a", password_import=value)])
    message = "password_import was unable to convert hash format"
    assert (500, {"plugin": {"credimport": message}}) == got


def test_denied_name_is_valuedenyname(store: Store, account: uuid.UUID) -> None:
    """A name on the system deny list is 500 valuedenyname."""
    store.set_denied_names(["badname"])
    assert (500, "valuedenyname") == error_of(store, account, [group(uuid.uuid4(), "badname")])


def test_builtin_range_stub_gets_builtin_class(store: Store, account: uuid.UUID) -> None:
    """Stub UUIDs below 00000000-0000-0000-0001-000000000000 get class builtin."""
    uid = uuid.UUID("00000000-0000-0000-0000-0000000000ff")
    apply(store, account, body([group(uid, "g")]))
    entry = store.entry(uid)
    assert entry is not None
    assert "builtin" in entry.classes


def test_empty_schemas_owns_only_phantoms(store: Store, account: uuid.UUID) -> None:
    """An empty schemas list is accepted; any real attribute is then not owned."""
    uid = uuid.uuid4()
    apply(store, account, body([{"schemas": [], "id": str(uid), "externalId": "x"}]))
    entry = store.entry(uid)
    assert entry is not None
    assert {"object", "sync_object"} == set(entry.classes)
    got = error_of(
        store, account, [{"schemas": [], "id": str(uid), "externalId": "x", "name": "n"}]
    )
    assert (500, "invalidentrystate") == got


def test_attribute_keys_are_case_insensitive(store: Store, account: uuid.UUID) -> None:
    """Known attribute names match case-insensitively; two values on a single attr fail."""
    uid = uuid.uuid4()
    ent = group(uid, "g")
    ent["Description"] = "d"
    apply(store, account, body([ent]))
    entry = store.entry(uid)
    assert entry is not None
    assert ("d",) == entry.get("description")
    ent = group(uuid.uuid4(), "h", Name="other")
    got = error_of(store, account, [ent])
    assert (400, {"schemaviolation": {"invalidattributesyntax": "name"}}) == got


def test_oauth2_provider_reference(store: Store, account: uuid.UUID) -> None:
    """A single reference must resolve, else the (typo'd) kanidmd message."""
    ent = person(
        uuid.uuid4(),
        "a",
        schemas=[URN + "person", URN + "account", URN + "oauth2_account"],
        oauth2_account_provider="no-such-ext-id",
        oauth2_account_unique_user_id="u",
        oauth2_account_unique_user_sub="s",
    )
    msg = "Reference uuid must a uuid or external_id - oauth2_account_provider"
    assert (400, {"invalidattribute": msg}) == error_of(store, account, [ent])
    provider = store.add_group("provider")
    ent["oauth2_account_provider"] = str(provider)
    apply(store, account, body([ent]))
    entry = store.entry("a")
    assert entry is not None
    assert (str(provider),) == entry.get("oauth2_account_provider")
    assert 1 == len(entry.get("oauth2_account_credential_uuid"))


def test_oauth2_account_requires_unique_user_sub(store: Store, account: uuid.UUID) -> None:
    """[inferred] oauth2_account_unique_user_sub is a must-attribute of oauth2_account."""
    provider = store.add_group("provider")
    ent = person(
        uuid.uuid4(),
        "a",
        schemas=[URN + "person", URN + "account", URN + "oauth2_account"],
        oauth2_account_provider=str(provider),
        oauth2_account_unique_user_id="u",
    )
    got = error_of(store, account, [ent])
    expected = {"missingmustattribute": ["oauth2_account_unique_user_sub"]}
    assert (400, {"schemaviolation": expected}) == got


# --- §3.9 value rules ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mail", "primary"),
    [
        ([{"value": "a@x.org"}, {"value": "b@x.org"}], "a@x.org"),
        ([{"value": "a@x.org"}, {"value": "b@x.org", "primary": True}], "b@x.org"),
        (
            [{"value": "a@x.org", "primary": True}, {"value": "b@x.org", "primary": True}],
            "b@x.org",
        ),
    ],
)
def test_mail_primary_rule(
    store: Store, account: uuid.UUID, mail: list[dict[str, Any]], primary: str
) -> None:
    """§3.9.6: the first address is primary unless a later one is flagged; the last flag wins."""
    uid = uuid.uuid4()
    apply(store, account, body([person(uid, "a", mail=mail)]))
    entry = store.entry(uid)
    assert entry is not None
    assert primary == entry.first("mail")
    assert {"a@x.org", "b@x.org"} == set(entry.get("mail"))


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        ({"mail": [{"primary": True}]}, {"invalidattribute": "missing required key value - mail"}),
        ({"mail": [{"value": 1}]}, {"invalidattribute": "value must be scim simple string - mail"}),
        (
            {"mail": [{"value": "a@x.org", "primary": "yes"}]},
            {"invalidattribute": "primary must be scim simple bool - mail"},
        ),
        (
            {"mail": {"value": "a@x.org"}},
            {"invalidattribute": "Unsupported attribute conversion - mail"},
        ),
        (
            {"mail": [{"value": "not-an-address"}]},
            {"schemaviolation": {"invalidattributesyntax": "mail"}},
        ),
        (
            {"ssh_publickey": [{"value": SSH_KEY}]},
            {"invalidattribute": "missing required key label - ssh_publickey"},
        ),
        (
            {"ssh_publickey": [{"label": 1, "value": SSH_KEY}]},
            {"invalidattribute": "value must be scim simple string - ssh_publickey"},
        ),
        (
            {"account_expire": "2025-01-31"},
            {
                "invalidattribute": "value must be scim simple string with rfc3339 formatted "
                "datetime - account_expire"
            },
        ),
        (
            {"account_expire": 0},
            {"invalidattribute": "Unsupported attribute conversion - account_expire"},
        ),
        (
            {"displayname": "two\nlines"},
            {"schemaviolation": {"invalidattributesyntax": "displayname"}},
        ),
        ({"name": "UUID-like"}, None),
    ],
)
def test_value_rules(
    store: Store, account: uuid.UUID, attrs: dict[str, Any], expected: Any
) -> None:
    """§3.9: conversion messages (400 invalidattribute) and value validation (schemaviolation)."""
    ent = person(uuid.uuid4(), "alice")
    ent.update(attrs)
    if expected is None:
        apply(store, account, body([ent]))
        assert store.entry("uuid-like") is not None
        return
    assert (400, expected) == error_of(store, account, [ent])


def test_unparsable_ssh_key_is_sc0001(store: Store, account: uuid.UUID) -> None:
    """An SSH key that does not parse is 500 sc0001incomingsshpublickey."""
    ent = person(uuid.uuid4(), "a", ssh_publickey=[{"label": "k", "value": "ssh-rsa AAAA"}])
    assert (500, "sc0001incomingsshpublickey") == error_of(store, account, [ent])


def test_name_that_is_a_uuid_is_refused(store: Store, account: uuid.UUID) -> None:
    """§3.9.2: a name that parses as a UUID is invalidattributesyntax."""
    ent = person(uuid.uuid4(), "a")
    ent["name"] = str(uuid.uuid4())
    got = error_of(store, account, [ent])
    assert (400, {"schemaviolation": {"invalidattributesyntax": "name"}}) == got


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({k: v for k, v in TOTP.items() if k != "secret"}, "missing required key secret"),
        ({**TOTP, "external_id": 1}, "external_id must be scim simple string"),
        ({**TOTP, "secret": 5}, "secret must be scim simple string"),
        ({**TOTP, "secret": "AAA"}, "secret must be base64 string"),
        ({**TOTP, "algo": "md5"}, "algo must be one of sha1, sha256 or sha512"),
        ({**TOTP, "algo": True}, "algo must be scim simple string"),
        ({**TOTP, "step": 29}, "step must be a positive integer value equal to or greater than 30"),
        (
            {**TOTP, "step": 30.0},
            "step must be a positive integer value equal to or greater than 30",
        ),
        ({**TOTP, "digits": 7}, "digits must be a positive integer value of 6 OR 8"),
    ],
)
def test_totp_rules(store: Store, account: uuid.UUID, item: dict[str, Any], message: str) -> None:
    """§3.9.4: TOTP items are checked field by field with kanidmd's messages."""
    ent = person(uuid.uuid4(), "a", password_import=NT, totp_import=[item])
    got = error_of(store, account, [ent])
    assert (400, {"invalidattribute": f"{message} - totp_import"}) == got


def test_duplicate_totp_labels_first_wins(store: Store, account: uuid.UUID) -> None:
    """§3.9.4: a second TOTP with the same label is dropped silently."""
    uid = uuid.uuid4()
    second = {**TOTP, "algo": "sha512"}
    apply(store, account, body([person(uid, "a", password_import=NT, totp_import=[TOTP, second])]))
    entry = store.entry(uid)
    assert entry is not None
    assert ("password(nt_md4) totp(t1)",) == entry.get("primary_credential")


def test_memberof_is_transitive(store: Store, account: uuid.UUID) -> None:
    """Memberof follows nested groups; directmemberof holds only the direct parents."""
    alice, inner, outer = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    ents = [
        person(alice, "alice"),
        group(inner, "inner", member=[{"external_id": "uid=alice,ou=people"}]),
        group(outer, "outer", member=[{"external_id": "cn=inner,ou=groups"}]),
    ]
    apply(store, account, body(ents))
    entry = store.entry(alice)
    assert entry is not None
    assert (str(inner),) == entry.get("directmemberof")
    assert set(map(str, (inner, outer))) == set(entry.get("memberof"))
    apply(store, account, body([*ents[:2], group(outer, "outer")], from_=C1, to=C2))
    entry = store.entry(alice)
    assert entry is not None
    assert (str(inner),) == entry.get("memberof")


def test_secrets_never_show(store: Store, account: uuid.UUID) -> None:
    """Imported hashes, TOTP secrets and cookies never appear in entries or reprs."""
    uid = uuid.uuid4()
    secret_cookie = b"very-secret-cookie"
    raw = body([person(uid, "a", password_import=NT, totp_import=[TOTP])], to=secret_cookie)
    apply(store, account, raw)
    shown = repr(store.entries()) + repr(store.sync_account_v1(account))
    assert NT.split(": ")[1] not in shown
    assert TOTP["secret"] not in shown
    assert "very-secret" not in shown
    assert "private_binary" in shown
    assert "very-secret" not in repr(parse_sync_request(raw))
