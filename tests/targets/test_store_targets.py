"""Uniqueness, built-in entries and required names: the double against a real kanidmd.

Each expectation here was first observed on kanidmd 1.11.1 (``pytest --kanidmd PATH``) and
is pinned on the double by the ``[fake]`` variant; docs/double-fidelity.md lists them.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kanidm_sync.testing import KanidmTarget

URN = "urn:ietf:params:scim:schemas:kanidm:sync:1:"
ADMIN_UUID = "00000000-0000-0000-0000-000000000000"
ANONYMOUS_UUID = "00000000-0000-0000-0000-ffffffffffff"


def cookie(n: int) -> dict[str, Any]:
    return {"Active": {"cookie": base64.urlsafe_b64encode(bytes([n])).decode().rstrip("=")}}


class Sync:
    """One sync account on the target and its cookie chain."""

    def __init__(self, target: KanidmTarget, name: str) -> None:
        self.account = target.provision_sync_account(name)
        self.http = target.http(self.account.token)
        self.n = 0

    def push(self, entries: list[dict[str, Any]], **kw: Any) -> httpx.Response:
        body = {
            "from_state": cookie(self.n) if self.n else "Refresh",
            "to_state": cookie(self.n + 1),
            "entries": entries,
            "retain": kw.get("retain", "Ignore"),
        }
        response = self.http.post("/scim/v1/Sync", json=body)
        if response.status_code == 200:
            self.n += 1
        return response


@pytest.fixture
def sync(kanidm_target: KanidmTarget) -> Iterator[Sync]:
    s = Sync(kanidm_target, "store_sync")
    yield s
    s.http.close()


def person(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "schemas": [URN + "account", URN + "person"],
        "id": str(uuid.uuid4()),
        "externalId": f"uid={name},ou=people",
        "name": name,
        "displayname": name.title(),
        **extra,
    }


def group(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "schemas": [URN + "group"],
        "id": str(uuid.uuid4()),
        "externalId": f"cn={name},ou=groups",
        "name": name,
        **extra,
    }


def conflict(response: httpx.Response) -> list[str]:
    assert 409 == response.status_code, response.text
    body = response.json()
    assert "Attribute uniqueness error" == body["error"]
    return list(body["conflicting_attributes"])


# --- uniqueness is checked against the database before the apply -------------------------


def test_swap_of_names_in_one_request_is_409(sync: Sync) -> None:
    """Two entries trading names in one request: each conflicts with the other's old value."""
    a, b = person("swapa"), person("swapb")
    assert 200 == sync.push([a, b]).status_code
    response = sync.push([{**a, "name": "swapb"}, {**b, "name": "swapa"}])
    assert ["name", "name", "spn", "spn"] == conflict(response)


def test_swap_of_mails_in_one_request_is_409(sync: Sync) -> None:
    a = person("maila", mail=[{"value": "a@example.org"}])
    b = person("mailb", mail=[{"value": "b@example.org"}])
    assert 200 == sync.push([a, b]).status_code
    response = sync.push(
        [{**a, "mail": [{"value": "b@example.org"}]}, {**b, "mail": [{"value": "a@example.org"}]}]
    )
    assert ["mail", "mail"] == conflict(response)


@pytest.mark.parametrize("order", ["taker-first", "giver-first"])
def test_chain_in_one_request_is_409(sync: Sync, order: str) -> None:
    """A takes B's old name while B takes a new one: 409 whatever the order."""
    a, b = person("chaina"), person("chainb")
    assert 200 == sync.push([a, b]).status_code
    changed = [{**a, "name": "chainb"}, {**b, "name": "chainc"}]
    response = sync.push(changed if order == "taker-first" else changed[::-1])
    assert ["name", "spn"] == conflict(response)


def test_released_values_are_free_in_the_next_request(sync: Sync) -> None:
    """Released in one request (both to temporary names), taken in the next: accepted."""
    a, b = person("relea"), person("releb")
    assert 200 == sync.push([a, b]).status_code
    assert 200 == sync.push([{**a, "name": "tmp-a"}, {**b, "name": "tmp-b"}]).status_code
    assert 200 == sync.push([{**a, "name": "releb"}, {**b, "name": "relea"}]).status_code


def test_in_request_duplicates_are_reported_once(sync: Sync) -> None:
    """Two new entries with one name, mail or external id: each attribute listed once."""
    twin = {**person("dupname"), "externalId": "uid=dupname-2,ou=people"}
    assert ["name", "spn"] == conflict(sync.push([person("dupname"), twin]))
    same_mail = [{"value": "dup@example.org"}]
    assert ["mail"] == conflict(
        sync.push([person("dupm1", mail=same_mail), person("dupm2", mail=same_mail)])
    )
    x, y = person("dupx1"), person("dupx2")
    y["externalId"] = x["externalId"]
    assert ["sync_external_id"] == conflict(sync.push([x, y]))


# --- built-in entries -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["admin", "idm_admin", "anonymous"])
def test_synced_person_named_like_a_builtin_account_is_409(sync: Sync, name: str) -> None:
    assert ["name", "spn"] == conflict(sync.push([person(name)]))


@pytest.mark.parametrize("name", ["idm_admins", "system_admins", "domain_admins"])
def test_synced_group_named_like_a_builtin_group_is_409(sync: Sync, name: str) -> None:
    assert ["name", "spn"] == conflict(sync.push([group(name)]))


@pytest.mark.parametrize("member", [ADMIN_UUID, ANONYMOUS_UUID])
def test_member_given_as_a_builtin_uuid_resolves(
    kanidm_target: KanidmTarget, sync: Sync, member: str
) -> None:
    g = group("withbuiltin", member=[{"external_id": member}])
    assert 200 == sync.push([g]).status_code
    stored = kanidm_target.entry(uuid.UUID(g["id"]))
    assert stored is not None
    assert (member,) == stored.get("member")


@pytest.mark.parametrize("name", ["admin", "idm_admins", "anonymous", "domain_admins"])
def test_sync_account_named_like_a_builtin_is_409(kanidm_target: KanidmTarget, name: str) -> None:
    with kanidm_target.http(admin="admin") as admin:
        response = admin.post("/v1/sync_account", json={"attrs": {"name": [name]}})
    assert ["name"] == conflict(response)


# --- required names -------------------------------------------------------------------------


def test_group_resent_without_name_is_accepted(kanidm_target: KanidmTarget, sync: Sync) -> None:
    """A synced group re-sent without ``name`` loses its name; kanidmd accepts it."""
    g = group("losesname")
    assert 200 == sync.push([g]).status_code
    nameless = {k: v for k, v in g.items() if k != "name"}
    response = sync.push([nameless])
    assert (200, "null") == (response.status_code, response.text)
    assert kanidm_target.entry("losesname") is None


def test_person_resent_without_name_is_400(sync: Sync) -> None:
    p = person("keepsname")
    assert 200 == sync.push([p]).status_code
    response = sync.push([{k: v for k, v in p.items() if k != "name"}])
    assert 400 == response.status_code
    assert {"schemaviolation": {"missingmustattribute": ["name"]}} == response.json()


def test_new_group_without_name_is_500_invalidentrystate(sync: Sync) -> None:
    """A group created without ``name``: kanidmd 1.11.1 answers 500 invalidentrystate."""
    nameless = {k: v for k, v in group("nameless").items() if k != "name"}
    response = sync.push([nameless])
    assert (500, '"invalidentrystate"') == (response.status_code, response.text)
