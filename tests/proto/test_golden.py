"""Golden wire payloads: kanidmd's own test ChangeSets and the spec's §3.10 example.

Each fixture must decode into typed values, re-encode to the same JSON value, and to the exact
bytes serde_json would write for it (spec §3.1). The byte reference is computed by
``serde_bytes`` below, written independently of the codec from the spec's rules.
"""

from __future__ import annotations

import json
import pathlib
import uuid
from typing import Any

import pytest

from kanidm_sync import (
    ActiveState,
    ChangeSet,
    DeleteOnly,
    Group,
    Mail,
    Person,
    RefreshState,
    RetainIgnore,
    SchemaUrn,
    SshPublicKey,
)

WIRE = pathlib.Path(__file__).parent.parent / "fixtures" / "wire"
KANIDMD_FIXTURES = sorted(p.name for p in WIRE.glob("changeset-kanidmd-ipa-*.json"))
TESTUSER = "uid=testuser,cn=users,cn=accounts,dc=dev,dc=blackhats,dc=net,dc=au"
NT_HASH = "ipaNTHash: iEb36u6PsRetBr3YMLdYbA"
HEADER = ("schemas", "id", "externalId")


def _sorted_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted_value(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted_value(v) for v in value]
    return value


def _serde_entry(entry: dict[str, Any]) -> dict[str, Any]:
    out = {k: entry[k] for k in HEADER if k in entry}
    for key in sorted(k for k in entry if k not in HEADER):
        out[key] = _sorted_value(entry[key])
    return out


def serde_bytes(request: dict[str, Any]) -> bytes:
    """Re-serialise a raw sync request the way kanidm's Rust client (serde_json) does."""
    ordered = {
        "from_state": request["from_state"],
        "to_state": request["to_state"],
        "entries": [_serde_entry(e) for e in request["entries"]],
        "retain": request["retain"],
    }
    return json.dumps(ordered, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def load(name: str) -> bytes:
    """The raw bytes of a wire fixture."""
    return (WIRE / name).read_bytes()


def test_three_kanidmd_fixtures_are_present():
    """The three golden payloads from kanidmd's scim.rs tests are all found."""
    assert [
        "changeset-kanidmd-ipa-1.json",
        "changeset-kanidmd-ipa-2.json",
        "changeset-kanidmd-ipa-refresh-1.json",
    ] == KANIDMD_FIXTURES


def test_ipa_1_decodes_into_typed_values():
    """IPA_1: a posix person with mail, ssh key and masked password imports, and three groups."""
    cs = ChangeSet.from_json(load("changeset-kanidmd-ipa-1.json"))
    assert RefreshState() == cs.from_state
    assert isinstance(cs.to_state, ActiveState)
    assert cs.to_state.cookie.startswith(b"ipa-syncrepl-kani.dev.blackhats.net.au:389#")
    assert RetainIgnore() == cs.retain
    person, group, external, posix_group = cs.entries
    assert isinstance(person, Person)
    assert uuid.UUID("babb8302-43a1-11ed-a50d-919b4b1a5ec0") == person.id
    assert TESTUSER == person.external_id
    assert ("testuser", "Test User") == (person.name, person.displayname)
    assert person.posix is not None
    assert 12345 == person.posix.gidnumber
    assert "/bin/sh" == person.posix.loginshell
    assert NT_HASH == person.posix.unix_password_import
    assert NT_HASH == person.password_import
    assert (Mail("testuser@dev.blackhats.net.au"),) == person.mail
    assert 1 == len(person.ssh_publickey)
    key = person.ssh_publickey[0]
    assert isinstance(key, SshPublicKey)
    assert "ssh-key" == key.label
    assert key.value.startswith("sk-ecdsa-sha2-nistp256@openssh.com AAAA")
    assert {} == dict(person.extra)
    # The payload lists person before account: the order is kept for byte equality.
    assert (
        SchemaUrn.PERSON.value,
        SchemaUrn.ACCOUNT.value,
        SchemaUrn.POSIXACCOUNT.value,
    ) == person.schemas
    # Secrets are masked in the repr.
    assert "iEb36u6PsRetBr3YMLdYbA" not in repr(person)
    assert isinstance(group, Group)
    assert ("testgroup", "Test group", (TESTUSER,)) == (
        group.name,
        group.description,
        group.member,
    )
    assert group.posix is None
    assert isinstance(external, Group)
    assert () == external.member
    assert isinstance(posix_group, Group)
    assert posix_group.posix is not None
    assert 1234567 == posix_group.posix.gidnumber
    assert (TESTUSER,) == posix_group.member


def test_ipa_2_decodes_delete_only():
    """IPA_2: Active to Active with a Delete retention mode."""
    cs = ChangeSet.from_json(load("changeset-kanidmd-ipa-2.json"))
    assert isinstance(cs.from_state, ActiveState)
    assert isinstance(cs.to_state, ActiveState)
    assert cs.from_state.cookie != cs.to_state.cookie
    assert DeleteOnly([uuid.UUID("d547c581-5f26-11ed-a50d-919b4b1a5ec0")]) == cs.retain
    renamed, posix_group = cs.entries
    assert isinstance(renamed, Group)
    assert "testexternal2" == renamed.name
    assert (TESTUSER,) == renamed.member
    assert isinstance(posix_group, Group)
    assert posix_group.posix is not None
    assert 1234567 == posix_group.posix.gidnumber
    assert () == posix_group.member


def test_ipa_refresh_1_decodes_validity_dates():
    """REFRESH_1: the person carries validity dates and both password imports."""
    cs = ChangeSet.from_json(load("changeset-kanidmd-ipa-refresh-1.json"))
    person, group = cs.entries
    assert isinstance(person, Person)
    assert "2021-11-28T04:57:55Z" == person.account_valid_from
    assert "2023-11-28T04:57:55Z" == person.account_expire
    assert () == person.mail
    assert NT_HASH == person.password_import
    assert person.posix is not None
    assert NT_HASH == person.posix.unix_password_import
    assert isinstance(group, Group)
    assert (TESTUSER,) == group.member


@pytest.mark.parametrize("name", KANIDMD_FIXTURES)
def test_fixture_round_trips_as_a_json_value(name):
    """Decoding and re-encoding a kanidmd fixture gives the same JSON value."""
    raw = load(name)
    assert json.loads(raw) == json.loads(ChangeSet.from_json(raw).to_json())


@pytest.mark.parametrize("name", KANIDMD_FIXTURES)
def test_fixture_round_trips_to_serde_bytes(name):
    """Re-encoding a kanidmd fixture gives exactly the bytes serde_json writes for it."""
    raw = load(name)
    assert serde_bytes(json.loads(raw)) == ChangeSet.from_json(raw).to_json()


@pytest.mark.parametrize("name", KANIDMD_FIXTURES)
def test_fixture_decodes_the_same_in_strict_mode(name):
    """The golden payloads carry no unknown keys: strict decoding accepts them unchanged."""
    raw = load(name)
    assert ChangeSet.from_json(raw) == ChangeSet.from_json(raw, strict=True)


def test_spec_3_10_example_is_byte_exact():
    """The spec's complete request, already in serde's form, re-encodes byte for byte."""
    raw = load("changeset-spec-3-10.json")
    assert raw == ChangeSet.from_json(raw).to_json()


def test_spec_3_10_example_matches_the_reference_serialiser():
    """The independent serde helper reproduces the spec's bytes (the helper is right)."""
    raw = load("changeset-spec-3-10.json")
    assert raw == serde_bytes(json.loads(raw))


def test_spec_3_10_example_decodes_typed():
    """The spec example holds a posix person with two mails and a posix group."""
    cs = ChangeSet.from_json(load("changeset-spec-3-10.json"))
    assert ActiveState(b"sync-1") == cs.to_state
    person, group = cs.entries
    assert isinstance(person, Person)
    assert (Mail("alice@example.org", primary=True), Mail("a.example@example.org")) == person.mail
    assert person.posix is not None
    assert 20001 == person.posix.gidnumber
    assert "2030-01-01T00:00:00Z" == person.account_expire
    assert isinstance(group, Group)
    assert group.posix is not None
    assert 20100 == group.posix.gidnumber
    assert ("uid=alice,ou=people,dc=example,dc=org",) == group.member
