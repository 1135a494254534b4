"""The double against kanidmd v1.11.1's source: uniqueness, built-ins, names, schema pooling.

Each test pins one behaviour read from kanidm's Rust source (the file and function are named
in the docstring); docs/double-fidelity.md lists them under "Checked against kanidmd v1.11.1
source". Every rejection also leaves the store's fingerprint unchanged (``rejected``).
"""

# The project writes asserts as `expected == actual` (STYLE.md); SIM300 wants the reverse.

from __future__ import annotations

import uuid
from typing import Any

import pytest
from store_helpers import (  # noqa: F401  # fixtures are used by name
    C1,
    C2,
    URN,
    account_fixture,
    apply,
    body,
    group,
    person,
    rejected,
    store_fixture,
)

from kanidm_sync.testing._entry import MutEntry
from kanidm_sync.testing._schema_check import validate_entry
from kanidm_sync.testing._store import Rejection, Store


def conflict(store: Store, account: uuid.UUID, raw: bytes) -> list[str]:
    err = rejected(store, account, raw)
    got = err.json()
    assert 409 == err.status
    assert isinstance(got, dict)
    assert "Attribute uniqueness error" == got["error"]
    return list(got["conflicting_attributes"])


def mail(address: str) -> list[dict[str, Any]]:
    return [{"value": address}]


# --- uniqueness against the database before the write (plugins/attrunique.rs) --------------


def test_swap_of_names_in_one_request_is_409(store: Store, account: uuid.UUID) -> None:
    """attrunique.rs enforce_unique: each new name is held by the other entry's old value.

    One attribute per conflicting (attribute, value) key, duplicates kept, in Attribute order.
    """
    a, b = person(uuid.uuid4(), "swapa"), person(uuid.uuid4(), "swapb")
    apply(store, account, body([a, b]))
    swapped = [{**a, "name": "swapb"}, {**b, "name": "swapa"}]
    got = conflict(store, account, body(swapped, from_=C1, to=C2))
    assert ["name", "name", "spn", "spn"] == got


def test_swap_of_mails_in_one_request_is_409(store: Store, account: uuid.UUID) -> None:
    a = person(uuid.uuid4(), "maila", mail=mail("a@example.org"))
    b = person(uuid.uuid4(), "mailb", mail=mail("b@example.org"))
    apply(store, account, body([a, b]))
    swapped = [{**a, "mail": mail("b@example.org")}, {**b, "mail": mail("a@example.org")}]
    assert ["mail", "mail"] == conflict(store, account, body(swapped, from_=C1, to=C2))


def test_swap_of_gidnumbers_in_one_request_is_409(store: Store, account: uuid.UUID) -> None:
    schemas = [URN + "group", URN + "posixgroup"]
    a = group(uuid.uuid4(), "gida", gidnumber=70001, schemas=schemas)
    b = group(uuid.uuid4(), "gidb", gidnumber=70002, schemas=schemas)
    apply(store, account, body([a, b]))
    swapped = [{**a, "gidnumber": 70002}, {**b, "gidnumber": 70001}]
    assert ["gidnumber", "gidnumber"] == conflict(store, account, body(swapped, from_=C1, to=C2))


def test_swap_of_external_ids_in_one_request_is_409(store: Store, account: uuid.UUID) -> None:
    """Phase 2's batch modify checks the same way (idm/scim.rs scim_sync_apply_phase_2)."""
    a, b = group(uuid.uuid4(), "exta"), group(uuid.uuid4(), "extb")
    apply(store, account, body([a, b]))
    swapped = [{**a, "externalId": b["externalId"]}, {**b, "externalId": a["externalId"]}]
    got = conflict(store, account, body(swapped, from_=C1, to=C2))
    assert ["sync_external_id", "sync_external_id"] == got


def test_chain_in_one_request_is_409_in_either_order(store: Store, account: uuid.UUID) -> None:
    """A takes B's old name while B takes a new one: B's old name is still in the database."""
    a, b = person(uuid.uuid4(), "chaina"), person(uuid.uuid4(), "chainb")
    apply(store, account, body([a, b]))
    changed = [{**a, "name": "chainb"}, {**b, "name": "chainc"}]
    for entries in (changed, changed[::-1]):
        assert ["name", "spn"] == conflict(store, account, body(entries, from_=C1, to=C2))


def test_released_values_are_free_in_the_next_request(store: Store, account: uuid.UUID) -> None:
    a, b = person(uuid.uuid4(), "relea"), person(uuid.uuid4(), "releb")
    apply(store, account, body([a, b]))
    apply(store, account, body([{**a, "name": "tmpa"}, {**b, "name": "tmpb"}], from_=C1, to=C2))
    apply(store, account, body([{**a, "name": "releb"}, {**b, "name": "relea"}], from_=C2))
    assert "releb" == store.entry(uuid.UUID(a["id"])).name  # type: ignore[union-attr]


def test_in_request_duplicates_are_reported_alone(store: Store, account: uuid.UUID) -> None:
    """attrunique.rs get_cand_attr_set: values shared by candidates fail before the DB check.

    Here B and C share a new name while A also takes a mail held in the database: only the
    in-request clash is reported, once per shared value.
    """
    store.add_person("native", mail=["n@example.org"])
    b, c = person(uuid.uuid4(), "twin"), person(uuid.uuid4(), "twin")
    c["externalId"] = "uid=twin-2,ou=people"
    entries = [person(uuid.uuid4(), "a", mail=mail("n@example.org")), b, c]
    assert ["name", "spn"] == conflict(store, account, body(entries))


def test_in_request_duplicate_external_ids_are_reported_once(
    store: Store, account: uuid.UUID
) -> None:
    """An unchanged entry is a candidate too: a new entry taking its id clashes in-request."""
    a = group(uuid.uuid4(), "same")
    apply(store, account, body([a]))
    twin = {**group(uuid.uuid4(), "other"), "externalId": a["externalId"]}
    got = conflict(store, account, body([a, twin], from_=C1, to=C2))
    assert ["sync_external_id"] == got


def test_refresh_cleanup_frees_values_for_phase_3(store: Store, account: uuid.UUID) -> None:
    """A refresh recycles the entries it omits before phase 3: their names are free again."""
    old = group(uuid.uuid4(), "reused")
    apply(store, account, body([old]))
    new = {**group(uuid.uuid4(), "reused"), "externalId": "cn=reused-2,ou=groups"}
    apply(store, account, body([new], from_=None, to=C2))
    assert uuid.UUID(new["id"]) == store.resolve("reused")


def test_retain_does_not_free_values_for_phase_3(store: Store, account: uuid.UUID) -> None:
    """Deletions by retain run after phase 3: the name is still held when it is checked."""
    old = group(uuid.uuid4(), "kept")
    apply(store, account, body([old]))
    new = {**group(uuid.uuid4(), "kept"), "externalId": "cn=kept-2,ou=groups"}
    raw = body([new], from_=C1, to=C2, retain={"Retain": [new["id"]]})
    assert ["name", "spn"] == conflict(store, account, raw)


def test_two_mails_taken_are_listed_twice(store: Store, account: uuid.UUID) -> None:
    store.add_person("native", mail=["n1@example.org", "n2@example.org"])
    entry = person(
        uuid.uuid4(), "x", mail=[{"value": "n1@example.org"}, {"value": "n2@example.org"}]
    )
    assert ["mail", "mail"] == conflict(store, account, body([entry]))


# --- built-in entries (migration_data/dl15, constants/uuids.rs) -----------------------------

ADMIN = uuid.UUID("00000000-0000-0000-0000-000000000000")
ANONYMOUS = uuid.UUID("00000000-0000-0000-0000-ffffffffffff")
SYSTEM_ADMINS = uuid.UUID("00000000-0000-0000-0000-000000000019")
DOMAIN_ADMINS = uuid.UUID("00000000-0000-0000-0000-000000000020")


def test_a_fresh_store_holds_kanidmds_builtin_entries() -> None:
    """dl15/mod.rs phase_3 to phase_7: accounts, groups, ACPs and system entries, no more."""
    store = Store()
    assert [] == store.entries(include_builtin=False)
    names = {e.name for e in store.entries()}
    assert {"admin", "idm_admin", "anonymous", "idm_admins", "system_admins"} <= names
    assert {"idm_all_persons", "idm_all_accounts", "domain_admins", "idm_high_privilege"} <= names
    assert {"idm_acp_sync_account_manage", "domain_local", "hmac_name_feature"} <= names
    admin = store.entry("admin")
    assert admin is not None
    assert ADMIN == admin.uuid
    assert ("admin@kanidm.test",) == admin.get("spn")
    assert {"account", "service_account", "builtin", "memberof", "object"} == admin.classes
    assert {str(SYSTEM_ADMINS), str(DOMAIN_ADMINS)} <= set(admin.get("memberof"))
    acp = store.entry("idm_acp_people_read")
    assert acp is not None
    assert () == acp.get("spn")  # only accounts and groups get an SPN (plugins/spn.rs)


def test_builtins_use_the_stores_domain() -> None:
    store = Store(domain="example.com")
    assert SYSTEM_ADMINS == store.resolve("system_admins@example.com")


def test_synced_person_named_like_a_builtin_account_is_409(
    store: Store, account: uuid.UUID
) -> None:
    for name in ("admin", "idm_admin", "anonymous"):
        assert ["name", "spn"] == conflict(store, account, body([person(uuid.uuid4(), name)]))


def test_synced_group_named_like_a_builtin_is_409(store: Store, account: uuid.UUID) -> None:
    """Built-in groups collide on name and SPN; ACPs and system entries on name only."""
    for name in ("idm_admins", "system_admins", "domain_admins", "idm_all_persons"):
        assert ["name", "spn"] == conflict(store, account, body([group(uuid.uuid4(), name)]))
    for name in ("idm_acp_people_read", "domain_local", "key_provider_internal"):
        assert ["name"] == conflict(store, account, body([group(uuid.uuid4(), name)]))


def test_member_given_as_a_builtin_uuid_resolves(store: Store, account: uuid.UUID) -> None:
    uid = uuid.uuid4()
    members = [{"external_id": str(ADMIN)}, {"external_id": str(ANONYMOUS)}]
    apply(store, account, body([group(uid, "withbuiltins", member=members)]))
    stored = store.entry(uid)
    assert stored is not None
    assert (str(ADMIN), str(ANONYMOUS)) == stored.get("member")
    anonymous = store.entry(ANONYMOUS)
    assert anonymous is not None
    assert str(uid) in anonymous.get("memberof")


@pytest.mark.parametrize(
    "name", ["admin", "idm_admins", "anonymous", "domain_admins", "idm_acp_self_read"]
)
def test_sync_account_named_like_a_builtin_is_409(store: Store, name: str) -> None:
    """A3 is an internal create: attrunique.rs pre_create_transform sees the built-in."""
    before = store.fingerprint()
    with pytest.raises(Rejection) as info:
        store.create_sync_account(name)
    expected = {"error": "Attribute uniqueness error", "conflicting_attributes": ["name"]}
    assert (409, expected) == (info.value.status, info.value.json())
    assert before == store.fingerprint()


def test_synced_entry_with_a_builtin_uuid_is_not_owned(store: Store, account: uuid.UUID) -> None:
    """Phase 2 finds the live built-in: the ownership assertion fails."""
    err = rejected(store, account, body([group(ADMIN, "hijack")]))
    assert (500, "modifyassertionfailed") == (err.status, err.json())


def test_finalise_of_a_builtin_is_missingclass(store: Store) -> None:
    """The entry exists but is no sync account (idm/scim.rs scim_sync_finalise)."""
    with pytest.raises(Rejection) as info:
        store.finalise(ADMIN)
    assert (500, {"missingclass": "sync_account"}) == (info.value.status, info.value.json())


# --- name is a may of group, a must of person (dl15/schema.rs, plugins/spn.rs) ---------------


def test_group_resent_without_name_loses_it(store: Store, account: uuid.UUID) -> None:
    """SCHEMA_CLASS_GROUP_DL6: name is systemmay, spn systemmust; generate_spn keeps the SPN."""
    uid = uuid.uuid4()
    g = group(uid, "losesname")
    apply(store, account, body([g]))
    nameless = {k: v for k, v in g.items() if k != "name"}
    apply(store, account, body([nameless], from_=C1, to=C2))
    stored = store.entry(uid)
    assert stored is not None
    assert (None, ("losesname@kanidm.test",)) == (stored.name, stored.get("spn"))
    assert None is store.entry("losesname")


def test_the_kept_spn_still_blocks_the_old_name(store: Store, account: uuid.UUID) -> None:
    """The nameless group keeps its SPN, which stays unique (attrunique.rs)."""
    g = group(uuid.uuid4(), "oldname")
    apply(store, account, body([g]))
    apply(store, account, body([{k: v for k, v in g.items() if k != "name"}], from_=C1, to=C2))
    again = {**group(uuid.uuid4(), "oldname"), "externalId": "cn=oldname-2,ou=groups"}
    assert ["spn"] == conflict(store, account, body([again], from_=C2, to=C1))


def test_new_group_without_name_is_invalidentrystate(store: Store, account: uuid.UUID) -> None:
    """A new stub has neither name nor SPN: plugins/spn.rs cannot generate one."""
    g = {k: v for k, v in group(uuid.uuid4(), "x").items() if k != "name"}
    err = rejected(store, account, body([g]))
    assert (500, "invalidentrystate") == (err.status, err.json())


def test_person_resent_without_name_is_400(store: Store, account: uuid.UUID) -> None:
    """SCHEMA_CLASS_PERSON_DL14: name is systemmust; the kept SPN satisfies account."""
    p = person(uuid.uuid4(), "keepsname")
    apply(store, account, body([p]))
    err = rejected(store, account, body([{k: v for k, v in p.items() if k != "name"}], from_=C1))
    assert (400, {"schemaviolation": {"missingmustattribute": ["name"]}}) == (
        err.status,
        err.json(),
    )


# --- schema rules pooled over all classes (entry.rs Entry::validate) -------------------------


def _schema_error(entry: MutEntry) -> object:
    with pytest.raises(Rejection) as info:
        validate_entry(entry)
    assert 400 == info.value.status
    return info.value.json()


def test_supplements_are_pooled_over_all_classes(store: Store, account: uuid.UUID) -> None:
    """Posixaccount's supplement (account) is not needed when posixgroup's (group) is present."""
    uid = uuid.uuid4()
    schemas = [URN + "group", URN + "posixgroup", URN + "posixaccount"]
    apply(store, account, body([group(uid, "odd", schemas=schemas, gidnumber=70010)]))
    stored = store.entry(uid)
    assert stored is not None
    assert {"group", "posixgroup", "posixaccount"} <= stored.classes


def test_account_is_supplemented_by_posixaccounts_pooled_list(
    store: Store, account: uuid.UUID
) -> None:
    """A group made an account: posixaccount's supplement list names account, which is present."""
    uid = uuid.uuid4()
    apply(store, account, body([group(uid, "grp")]))
    schemas = [URN + "group", URN + "account", URN + "posixaccount"]
    entry = group(uid, "grp", schemas=schemas, displayname="Grp", gidnumber=70011)
    apply(store, account, body([entry], from_=C1, to=C2))
    stored = store.entry(uid)
    assert stored is not None
    assert {"group", "account", "posixaccount"} <= stored.classes


def test_unsatisfied_supplements_list_every_class_s_supplements() -> None:
    """The error lists the pooled supplements, class by class in byte order."""
    entry = MutEntry(uuid.uuid4(), {"object", "posixaccount", "posixgroup"}, {})
    got = _schema_error(entry)
    assert {"schemaviolation": {"supplementsnotsatisfied": ["account", "group"]}} == got
    entry = MutEntry(uuid.uuid4(), {"object", "account", "posixaccount"}, {})
    got = _schema_error(entry)  # account supplements posixaccount: on to the must check
    assert {"schemaviolation": {"missingmustattribute": ["displayname", "spn", "gidnumber"]}} == got


def test_excludes_are_pooled_over_all_classes(store: Store, account: uuid.UUID) -> None:
    """Person excludes service_account and service_account excludes person: both listed."""
    ent = person(uuid.uuid4(), "alice", schemas=[URN + "person", URN + "service_account"])
    del ent["displayname"]
    err = rejected(store, account, body([ent]))
    expected = {"schemaviolation": {"excludesnotsatisfied": ["service_account", "person"]}}
    assert (400, expected) == (err.status, err.json())


def test_invalid_classes_are_listed_together() -> None:
    entry = MutEntry(uuid.uuid4(), {"object", "zeta", "alpha"}, {})
    assert {"schemaviolation": {"invalidclass": ["alpha", "zeta"]}} == _schema_error(entry)


def test_missing_must_attributes_keep_duplicates_in_class_order() -> None:
    """service_account and sync_account both require name: listed once per class."""
    entry = MutEntry(uuid.uuid4(), {"object", "service_account", "sync_account"}, {})
    expected = {"schemaviolation": {"missingmustattribute": ["name", "name"]}}
    assert expected == _schema_error(entry)


def test_attributes_are_checked_in_kanidms_attribute_order() -> None:
    """account_valid_from precedes account_softlock_expire in the Attribute enum."""
    attrs_: dict[str, list[object]] = {
        "name": ["g"],
        "spn": ["g@kanidm.test"],
        "account_softlock_expire": ["x"],
        "account_valid_from": ["x"],
    }
    entry = MutEntry(uuid.uuid4(), {"object", "group"}, attrs_)
    expected = {"schemaviolation": {"attributenotvalidforclass": "account_valid_from"}}
    assert expected == _schema_error(entry)


# --- value-deny names only when a name changes (plugins/valuedeny.rs) -------------------------


def test_unchanged_denied_name_passes(store: Store, account: uuid.UUID) -> None:
    """ValueDeny::modify: a denied name that does not change is not refused."""
    g = group(uuid.uuid4(), "legacy")
    apply(store, account, body([g]))
    store.set_denied_names(["legacy"])
    apply(store, account, body([{**g, "description": "still here"}], from_=C1, to=C2))


def test_changing_to_a_denied_name_is_valuedenyname(store: Store, account: uuid.UUID) -> None:
    g = group(uuid.uuid4(), "fine")
    apply(store, account, body([g]))
    store.set_denied_names(["legacy"])
    err = rejected(store, account, body([{**g, "name": "legacy"}], from_=C1, to=C2))
    assert (500, "valuedenyname") == (err.status, err.json())


def test_entries_below_the_dynamic_range_are_exempt(store: Store, account: uuid.UUID) -> None:
    """UUIDs below DYNAMIC_RANGE_MINIMUM_UUID skip the value-deny plugin."""
    store.set_denied_names(["legacy"])
    low = uuid.UUID("00000000-0000-0000-0000-0000000000ab")
    apply(store, account, body([group(low, "legacy")]))
    assert low == store.resolve("legacy")


def test_sync_account_patch_keeps_a_denied_name(store: Store) -> None:
    """A3 checks the name on create; a later patch only checks a changed name."""
    account = store.create_sync_account("legacy_sync")
    store.set_denied_names(["legacy_sync", "other_denied"])
    store.patch_sync_account(account, {"description": ["patched"]})
    with pytest.raises(Rejection) as info:
        store.patch_sync_account(account, {"name": ["other_denied"]})
    assert (500, "valuedenyname") == (info.value.status, info.value.json())
    with pytest.raises(Rejection) as info:
        store.create_sync_account("other_denied")
    assert (500, "valuedenyname") == (info.value.status, info.value.json())
