"""``store[key]``: a non-Optional read of the double's state for tests (issue 12).

``fake.store.entry(key)`` returns ``StoredEntry | None``, so ``fake.store.entry("alice").name``
fails ``mypy --strict``; ``fake.store["alice"]`` returns a ``StoredEntry`` or raises
:class:`NoSuchEntryError`, a ``KeyError`` that names the key.
"""

from __future__ import annotations

import uuid

import pytest

from kanidm_sync.testing import NoSuchEntryError, Store, StoredEntry


@pytest.fixture
def store() -> Store:
    return Store()


def test_getitem_finds_by_name_spn_and_uuid(store: Store) -> None:
    """A name (any case), an SPN, a UUID and a UUID string all find the live entry."""
    alice = store.add_person("alice", displayname="Alice")
    for key in ("alice", "ALICE", "alice@kanidm.test", alice, str(alice)):
        found = store[key]
        assert isinstance(found, StoredEntry)
        assert (alice, "Alice") == (found.uuid, found.first("displayname"))
        assert key in store
    assert store.entry("alice") == store["alice"]


def test_a_missing_name_raises_a_key_error_that_names_it(store: Store) -> None:
    """``store["nobody"]`` raises NoSuchEntryError, a KeyError, whose message names the key."""
    with pytest.raises(NoSuchEntryError) as raised:
        store["nobody"]
    assert isinstance(raised.value, KeyError)
    assert "nobody" == raised.value.key
    assert str(raised.value).startswith("no live entry named 'nobody' in the in-memory Kanidm")
    assert "nobody" not in store
    assert None is store.entry("nobody")  # the Optional read stays as it was


def test_a_missing_uuid_raises_naming_the_uuid(store: Store) -> None:
    """A UUID no entry has raises a KeyError with the UUID in a readable message."""
    missing = uuid.UUID("0c2b5e6a-7f3e-4d5b-9c1a-2b3c4d5e6f70")
    with pytest.raises(KeyError) as raised:
        store[missing]
    assert f"no entry with uuid {missing} in the in-memory Kanidm" == str(raised.value)
    assert missing not in store


def test_recycled_entries_by_uuid_only(store: Store) -> None:
    """As ``entry()``: a recycled entry is found by its UUID, not by its former name."""
    bob = store.add_person("bob")
    store.recycle(bob)
    assert "recycled" == store[bob].state
    assert bob in store
    with pytest.raises(NoSuchEntryError, match="look up a recycled entry or a tombstone by its"):
        store["bob"]
    assert "bob" not in store


def test_containment_of_other_types_is_false(store: Store) -> None:
    """``in`` answers False for keys that are neither UUIDs nor strings."""
    assert 1 not in store
    assert None not in store
