"""Shared helpers for the store-level tests of the double's core (tests/testing/test_store_*).

Builds raw request JSON (the core works at the raw JSON level), applies it, and checks that a
rejected request leaves the store's fingerprint unchanged.
"""

from __future__ import annotations

import base64
import json
import pathlib
import struct
import uuid
from typing import Any

import pytest

from kanidm_sync.testing._store import Rejection, Store, parse_sync_request

WIRE = pathlib.Path(__file__).parent.parent / "fixtures" / "wire"
URN = "urn:ietf:params:scim:schemas:kanidm:sync:1:"
C1 = bytes([1, 2, 3, 4])
C2 = bytes([2, 3, 4, 5])

TESTUSER = uuid.UUID("babb8302-43a1-11ed-a50d-919b4b1a5ec0")
TESTGROUP = uuid.UUID("d547c581-5f26-11ed-a50d-919b4b1a5ec0")
TESTEXTERNAL = uuid.UUID("d547c583-5f26-11ed-a50d-919b4b1a5ec0")
TESTPOSIX = uuid.UUID("f90b0b81-5f26-11ed-a50d-919b4b1a5ec0")
IPA_USER_EXT = "uid=testuser,cn=users,cn=accounts,dc=dev,dc=blackhats,dc=net,dc=au"


def golden(name: str) -> bytes:
    return (WIRE / f"changeset-kanidmd-{name}.json").read_bytes()


def b64(cookie: bytes) -> str:
    return base64.urlsafe_b64encode(cookie).decode().rstrip("=")


def state(cookie: bytes | None) -> Any:
    return "Refresh" if cookie is None else {"Active": {"cookie": b64(cookie)}}


def body(
    entries: list[dict[str, Any]],
    *,
    from_: bytes | None = None,
    to: bytes | None = C1,
    retain: Any = "Ignore",
) -> bytes:
    data = {"from_state": state(from_), "to_state": state(to), "entries": entries, "retain": retain}
    return json.dumps(data).encode()


def group(uid: uuid.UUID, name: str, **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "schemas": [URN + "group"],
        "id": str(uid),
        "externalId": f"cn={name},ou=groups",
        "name": name,
    }
    entry.update(extra)
    return entry


def person(uid: uuid.UUID, name: str, **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "schemas": [URN + "person", URN + "account"],
        "id": str(uid),
        "externalId": f"uid={name},ou=people",
        "name": name,
        "displayname": name.title(),
    }
    entry.update(extra)
    return entry


def _ssh_string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


SSH_KEY = (
    "ssh-ed25519 "
    + base64.b64encode(_ssh_string(b"ssh-ed25519") + _ssh_string(bytes(range(32)))).decode()
    + " alice@laptop"
)


def apply(store: Store, account: uuid.UUID, raw: bytes) -> None:
    store.apply(account, parse_sync_request(raw))


def rejected(store: Store, account: uuid.UUID, raw: bytes) -> Rejection:
    before = store.fingerprint()
    with pytest.raises(Rejection) as info:
        apply(store, account, raw)
    assert before == store.fingerprint()
    return info.value


@pytest.fixture(name="store")
def store_fixture() -> Store:
    """A fresh in-memory Kanidm."""
    return Store()


@pytest.fixture(name="account")
def account_fixture(store: Store) -> uuid.UUID:
    """The sync account ``test_scim_sync`` of kanidmd's helper."""
    return store.create_sync_account("test_scim_sync")
