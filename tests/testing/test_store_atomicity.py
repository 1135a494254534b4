"""All or nothing: a request the double's core rejects leaves the store identical (spec §4)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings
from store_helpers import C1, TESTGROUP, TESTUSER, URN, b64, golden

from kanidm_sync.testing._store import Rejection, Store, parse_sync_request

NATIVE = uuid.UUID("11111111-1111-4111-8111-111111111111")
RECYCLED = uuid.UUID("22222222-2222-4222-8222-222222222222")
IPA_COOKIE = parse_sync_request(golden("ipa-1")).to_cookie or b""
POOL = [TESTUSER, TESTGROUP, NATIVE, RECYCLED, *(uuid.UUID(int=(7 << 100) + i) for i in range(4))]


def seeded() -> tuple[Store, uuid.UUID]:
    store = Store()
    account = store.create_sync_account("ipasync")
    store.apply(account, parse_sync_request(golden("ipa-1")))
    store.add_person("native", uuid=NATIVE, mail=["native@example.org"])
    store.add_group("gone", uuid=RECYCLED)
    store.recycle(RECYCLED)
    return store, account


names = st.sampled_from(["testuser", "testgroup", "native", "ipasync", "fresh", "Bad Name", "x"])
gids = st.sampled_from([12345, 1234567, 500, 70000, 4294967296, "1"])
members = st.lists(
    st.sampled_from(
        [
            {"external_id": "uid=testuser,cn=users,cn=accounts,dc=dev,dc=blackhats,dc=net,dc=au"},
            {"external_id": str(NATIVE)},
            {"external_id": str(uuid.UUID(int=99))},
            {"external_id": "unknown"},
            {"id": "no external_id key"},
        ]
    ),
    max_size=3,
)
extras = st.dictionaries(
    st.sampled_from(["description", "uuid", "member", "mail", "password_import", "legalname"]),
    st.sampled_from(["d", [], [{"value": "native@example.org"}], "{SHA}bad", "ipaNTHash: AAAA"]),
    max_size=1,
)


@st.composite
def entries(draw: st.DrawFn) -> dict[str, Any]:
    uid = draw(st.sampled_from(POOL))
    posix = draw(st.booleans())
    entry: dict[str, Any] = {
        "schemas": [URN + "group", *([URN + "posixgroup"] if posix else [])],
        "id": str(uid),
        "name": draw(names),
    }
    if draw(st.booleans()):
        entry["externalId"] = draw(st.sampled_from(["cn=a", "cn=b", "CN=A", f"cn={uid}"]))
    if posix and draw(st.booleans()):
        entry["gidnumber"] = draw(gids)
    mem = draw(members)
    if mem:
        entry["member"] = mem
    if draw(st.integers(0, 3)) == 0:
        entry.update(draw(extras))
    return entry


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    from_cookie = draw(st.sampled_from([None, IPA_COOKIE, IPA_COOKIE, C1]))
    retain = draw(
        st.sampled_from(
            [
                "Ignore",
                {"Retain": []},
                {"Retain": [str(TESTUSER)]},
                {"Delete": [str(NATIVE)]},
                {"Delete": [str(TESTGROUP), str(RECYCLED)]},
            ]
        )
    )
    data = {
        "from_state": "Refresh"
        if from_cookie is None
        else {"Active": {"cookie": b64(from_cookie)}},
        "to_state": {"Active": {"cookie": "AQ"}},
        "entries": draw(st.lists(entries(), max_size=4)),
        "retain": retain,
    }
    return json.dumps(data).encode()


@settings(max_examples=80, deadline=None)
@given(raw=requests())
def test_failed_apply_leaves_store_identical(raw: bytes) -> None:
    """Whatever check fails, the fingerprint (entries, indexes' inputs, cookie) is unchanged."""
    store, account = seeded()
    before = store.fingerprint()
    before_entries = store.entries(include_recycled=True)
    try:
        request = parse_sync_request(raw)
    except Rejection:
        return
    first = _error(store, account, request)
    if first is None:
        assert before != store.fingerprint()  # the cookie at least has changed
        return
    assert before == store.fingerprint()
    assert before_entries == store.entries(include_recycled=True)
    # Indexes (names, external ids, tokens) must answer as before: the same request fails
    # the same way again, and the same way on a store that never saw it.
    assert first == _error(store, account, request)
    again, account_again = seeded()
    assert first == _error(again, account_again, request)


def _error(store: Store, account: uuid.UUID, request: Any) -> tuple[int, bytes] | None:
    try:
        store.apply(account, request)
    except Rejection as err:
        return err.status, err.body
    return None


def test_failure_after_deletions_and_stubs_rolls_back() -> None:
    """A late failure (phase 4) undoes stubs, refresh deletions and external-id changes."""
    store, account = seeded()
    before = store.fingerprint()
    new = uuid.uuid4()
    raw = {
        "from_state": "Refresh",
        "to_state": {"Active": {"cookie": "AQ"}},
        "entries": [
            {"schemas": [URN + "group"], "id": str(new), "externalId": "cn=new", "name": "new"},
            {
                "schemas": [URN + "group"],
                "id": str(TESTGROUP),
                "externalId": "cn=renamed",
                "name": "renamed",
            },
        ],
        "retain": {"Delete": [str(NATIVE)]},
    }
    with pytest.raises(Rejection) as info:
        store.apply(account, parse_sync_request(json.dumps(raw).encode()))
    assert (403, "accessdenied") == (info.value.status, info.value.json())
    assert before == store.fingerprint()
    assert None is store.entry(new)
    assert None is store.entry("renamed")
    user = store.entry("testuser")
    assert user is not None
    assert "live" == user.state
    assert store.get_cookie(account) == parse_sync_request(golden("ipa-1")).to_cookie
