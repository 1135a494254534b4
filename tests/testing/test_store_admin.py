"""Sync-account administration in the double's core (spec §2.2 A3-A11, §5), without HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from store_helpers import (  # noqa: F401  # fixtures are used by name
    C1,
    account_fixture,
    apply,
    body,
    group,
    store_fixture,
)

from kanidm_sync.testing._store import Rejection, Store

ADMIN = uuid.UUID("00000000-0000-0000-0000-000000000000")


def refused(call: Callable[[], object], store: Store) -> tuple[int, Any]:
    before = store.fingerprint()
    with pytest.raises(Rejection) as info:
        call()
    assert before == store.fingerprint()
    return info.value.status, info.value.json()


# --- A3 create -------------------------------------------------------------------------------


def test_create_starts_in_refresh(store: Store) -> None:
    """A new account has no cookie, token, yields or portal; class is overwritten."""
    uid = store.create_sync_account_v1(
        {"class": ["person"], "name": ["IPAsync"], "description": ["IPA feed"]}
    )
    v1 = store.sync_account_v1(uid)
    assert {
        "class": ["object", "sync_account"],
        "description": ["IPA feed"],
        "name": ["ipasync"],
        "uuid": [str(uid)],
    } == v1


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        ({"name": ["x"], "displayname": ["X"]}, (403, "accessdenied")),
        ({"description": ["d"]}, (400, {"schemaviolation": {"missingmustattribute": ["name"]}})),
        ({"name": ["1abc"]}, (400, {"schemaviolation": {"invalidattributesyntax": "name"}})),
        ({"name": ["root"]}, (400, {"schemaviolation": {"invalidattributesyntax": "name"}})),
        (
            {"name": ["ok"], "description": ["a\nb"]},
            (400, {"schemaviolation": {"invalidattributesyntax": "description"}}),
        ),
    ],
)
def test_create_errors(store: Store, attrs: dict[str, list[str]], expected: Any) -> None:
    """A3 refuses extra attributes (403), missing or invalid names (400)."""
    assert expected == refused(lambda: store.create_sync_account_v1(attrs), store)


def test_create_duplicate_name_is_409(store: Store) -> None:
    """Names are unique server-wide, including native persons."""
    store.add_person("alice")
    got = refused(lambda: store.create_sync_account("ALICE"), store)
    assert (409, {"error": "Attribute uniqueness error", "conflicting_attributes": ["name"]}) == got


# --- A4/A5 tokens ----------------------------------------------------------------------------


def test_token_lifecycle(store: Store, account: uuid.UUID) -> None:
    """A token is found by id; a second one is refused; destroy revokes; a new one works."""
    t1, t2 = uuid.uuid4(), uuid.uuid4()
    store.add_token_session(account, t1, "label", ADMIN)
    assert account == store.account_for_token(t1)
    got = refused(lambda: store.add_token_session(account, t2, "other", ADMIN), store)
    assert (400, {"schemaviolation": {"invalidattributesyntax": "sync_token_session"}}) == got
    store.destroy_token_sessions(account)
    assert None is store.account_for_token(t1)
    store.destroy_token_sessions(account)  # fine when none exists
    store.add_token_session(account, t2, "other", ADMIN)
    assert account == store.account_for_token(t2)
    (session,) = store.token_sessions(account)
    assert "other" == session.label
    assert store.sync_account_v1(account)["sync_token_session"][0].startswith(f"{t2}: ")


def test_token_label_must_be_single_line(store: Store, account: uuid.UUID) -> None:
    """A label with a line break is a schema violation."""
    got = refused(lambda: store.add_token_session(account, uuid.uuid4(), "a\nb", ADMIN), store)
    assert (400, {"schemaviolation": {"invalidattributesyntax": "sync_token_session"}}) == got


def test_destroy_keeps_cookie_and_entries(store: Store, account: uuid.UUID) -> None:
    """A5 touches neither the cookie nor the entries."""
    apply(store, account, body([group(uuid.uuid4(), "g")]))
    store.add_token_session(account, uuid.uuid4(), "l", ADMIN)
    store.destroy_token_sessions(account)
    assert C1 == store.get_cookie(account)
    assert 1 == len(store.entries(owned_by=account))


# --- A6 patch / force refresh, A8/A9 set attribute -------------------------------------------


def test_force_refresh_removes_cookie_only(store: Store, account: uuid.UUID) -> None:
    """PATCH sync_cookie: [] forgets the cookie and touches no entry."""
    apply(store, account, body([group(uuid.uuid4(), "g")]))
    entries = store.entries(owned_by=account)
    store.patch_sync_account(account, {"sync_cookie": []})
    assert None is store.get_cookie(account)
    assert entries == store.entries(owned_by=account)


def test_cookie_value_cannot_be_supplied(store: Store, account: uuid.UUID) -> None:
    """A sync_cookie value is 400 invalidattribute."""
    got = refused(lambda: store.patch_sync_account(account, {"sync_cookie": ["AQ"]}), store)
    msg = "Private Binary Values can not be supplied through modification"
    assert (400, {"invalidattribute": msg}) == got


def test_patch_refuses_ungranted_attribute(store: Store, account: uuid.UUID) -> None:
    """An attribute outside the manage ACP is 403."""
    got = refused(lambda: store.patch_sync_account(account, {"displayname": ["x"]}), store)
    assert (403, "accessdenied") == got


def test_patch_renames(store: Store, account: uuid.UUID) -> None:
    """A6 purges then adds: a rename takes effect and frees the old name."""
    store.patch_sync_account(account, {"name": ["Renamed"]})
    assert account == store.resolve_sync_account("renamed")
    assert None is store.resolve_sync_account("test_scim_sync")


def test_set_yield_lowercases_and_clears(store: Store, account: uuid.UUID) -> None:
    """A8 stores yield names lower-cased, unvalidated; [] clears them."""
    store.set_sync_account_attr(account, "sync_yield_authority", ["PassKeys", "no_such_attr"])
    assert frozenset({"passkeys", "no_such_attr"}) == store.yielded(account)
    store.set_sync_account_attr(account, "sync_yield_authority", [])
    assert frozenset() == store.yielded(account)


def test_credential_portal(store: Store, account: uuid.UUID) -> None:
    """A9 normalises a URL, refuses bad URLs and two values, and [] clears."""
    store.set_sync_account_attr(account, "sync_credential_portal", ["HTTPS://Portal.Example.org"])
    assert "https://portal.example.org/" == store.credential_portal(account)
    got = refused(
        lambda: store.set_sync_account_attr(account, "sync_credential_portal", ["not a url"]), store
    )
    assert (400, {"invalidattribute": "Invalid Url (whatwg/url) syntax"}) == got
    two = ["https://a.example/", "https://b.example/"]
    got = refused(
        lambda: store.set_sync_account_attr(account, "sync_credential_portal", two), store
    )
    assert (400, {"schemaviolation": {"invalidattributesyntax": "sync_credential_portal"}}) == got
    store.set_sync_account_attr(account, "sync_credential_portal", [])
    assert None is store.credential_portal(account)


def test_unknown_attribute_name(store: Store, account: uuid.UUID) -> None:
    """Unknown attribute: invalidattributename with values, a schema violation without."""
    got = refused(lambda: store.set_sync_account_attr(account, "nosuch", ["x"]), store)
    assert (400, {"invalidattributename": "nosuch"}) == got
    status, _ = refused(lambda: store.set_sync_account_attr(account, "nosuch", []), store)
    assert 400 == status


def test_unknown_account_is_404(store: Store) -> None:
    """Operations on a UUID that is not a live sync account are 404."""
    stray = uuid.uuid4()
    assert (404, "nomatchingentries") == refused(lambda: store.get_cookie(stray), store)
    assert (404, "nomatchingentries") == refused(
        lambda: store.patch_sync_account(stray, {"sync_cookie": []}), store
    )


# --- A10/A11 preamble ------------------------------------------------------------------------


@pytest.mark.parametrize("op", ["finalise", "terminate"])
def test_destructive_preamble(store: Store, account: uuid.UUID, op: str) -> None:
    """404 for an unknown UUID, 500 missingclass for a non-account, 500 notauthorised."""
    call = getattr(store, op)
    assert (404, "nomatchingentries") == refused(lambda: call(uuid.uuid4()), store)
    native = store.add_group("plain")
    assert (500, {"missingclass": "sync_account"}) == refused(lambda: call(native), store)
    got = refused(lambda: call(account, caller_can_delete=False), store)
    assert (500, "notauthorised") == got


def test_resolve_by_uuid_name_and_spn(store: Store, account: uuid.UUID) -> None:
    """{id} resolves by UUID (any form), name or name@domain, case-insensitively."""
    assert account == store.resolve(str(account).upper())
    assert account == store.resolve("Test_Scim_Sync")
    assert account == store.resolve(f"test_scim_sync@{store.domain}")
    assert None is store.resolve("nobody")


def test_finalised_account_releases_token_and_name(store: Store, account: uuid.UUID) -> None:
    """After finalise the token no longer resolves and the name can be reused."""
    token = uuid.uuid4()
    store.add_token_session(account, token, "l", ADMIN)
    store.finalise(account)
    assert None is store.account_for_token(token)
    assert [] == store.sync_accounts()
    store.create_sync_account("test_scim_sync")


def test_reattach_after_finalise_is_modifyassertionfailed(store: Store, account: uuid.UUID) -> None:
    """§5: a new account cannot take over entries Kanidm now owns."""
    uid = uuid.uuid4()
    apply(store, account, body([group(uid, "g")]))
    store.finalise(account)
    again = store.create_sync_account("again")
    before = store.fingerprint()
    with pytest.raises(Rejection) as info:
        apply(store, again, body([group(uid, "g")]))
    assert "modifyassertionfailed" == info.value.json()
    assert before == store.fingerprint()


def test_reimport_after_terminate_is_invalidentrystate(store: Store, account: uuid.UUID) -> None:
    """§5: terminated entries linger recycled, so re-importing their UUIDs fails."""
    uid = uuid.uuid4()
    apply(store, account, body([group(uid, "g")]))
    store.terminate(account)
    again = store.create_sync_account("again")
    with pytest.raises(Rejection) as info:
        apply(store, again, body([group(uid, "g")]))
    assert "invalidentrystate" == info.value.json()
