"""Tests for the schema table in kanidm_sync._proto._schema against spec §3.6."""

from __future__ import annotations

import pytest

from kanidm_sync import SCHEMA_PREFIX, SchemaUrn
from kanidm_sync._proto._schema import (
    ATTRIBUTES,
    CLASSES,
    DEFAULT_SCHEMA,
    PHANTOM_ATTRIBUTES,
    AttributeSchema,
    ClassSchema,
    Schema,
    Syntax,
    class_from_urn,
)

PHANTOMS = frozenset({"password_import", "unix_password_import", "totp_import"})

# Spec §3.6, "Sync-owned attributes per URN": (writable, purge-only) for each class alone.
SPEC_OWNED = {
    "account": (
        {"displayname", "account_expire", "account_valid_from", "account_softlock_expire"},
        {"name_history"},
    ),
    "person": (
        {"name", "mail", "ssh_publickey", "legalname"},
        {"primary_credential", "passkeys", "attested_passkeys", "radius_secret"},
    ),
    "posixaccount": ({"loginshell", "gidnumber"}, set()),
    "group": ({"name", "description", "mail", "member"}, set()),
    "posixgroup": ({"gidnumber"}, set()),
    "oauth2_account": (
        {
            "oauth2_account_provider",
            "oauth2_account_unique_user_id",
            "oauth2_account_unique_user_sub",
        },
        set(),
    ),
    "service_account": ({"name", "description", "mail", "ssh_publickey"}, {"primary_credential"}),
}


@pytest.mark.parametrize("cname", sorted(SPEC_OWNED))
def test_writable_matches_the_spec(cname: str) -> None:
    """Each class's writable set is the spec's list plus the three phantoms."""
    expected = frozenset(SPEC_OWNED[cname][0]) | PHANTOMS
    assert expected == DEFAULT_SCHEMA.writable([cname])


@pytest.mark.parametrize("cname", sorted(SPEC_OWNED))
def test_purged_matches_the_spec(cname: str) -> None:
    """Each class's purged set is writable and purge-only, never the phantoms."""
    writable, purge_only = SPEC_OWNED[cname]
    expected = frozenset(writable | purge_only)
    assert expected == DEFAULT_SCHEMA.purged([cname])


def test_the_sync_allowed_classes_are_the_spec_urns() -> None:
    """Exactly the seven classes of spec §3.6 are sync-allowed, matching SchemaUrn."""
    expected = frozenset(u.value.removeprefix(SCHEMA_PREFIX) for u in SchemaUrn)
    assert expected == frozenset(n for n, c in CLASSES.items() if c.sync_allowed)


def test_phantoms() -> None:
    """The phantom attributes are the three imports."""
    assert PHANTOMS == PHANTOM_ATTRIBUTES


def test_yielded_attributes_are_not_owned_but_phantoms_stay() -> None:
    """Yielding removes an attribute from the owned set; phantoms are unaffected."""
    owned = DEFAULT_SCHEMA.owned(["account", "person"], yielded=["legalname", "password_import"])
    assert ("legalname" in owned, "password_import" in owned) == (False, True)


def test_unknown_classes_own_only_phantoms() -> None:
    """An empty or unknown class list owns only the phantom imports."""
    assert PHANTOMS == DEFAULT_SCHEMA.owned([]) == DEFAULT_SCHEMA.owned(["nosuchclass"])


@pytest.mark.parametrize(
    ("classes", "expected"),
    [
        (["posixaccount"], [("schema.supplements", "posixaccount", "account")]),
        (["posixgroup"], [("schema.supplements", "posixgroup", "group")]),
        (
            ["account"],
            [
                (
                    "schema.supplements",
                    "account",
                    "oauth2_resource_server or person or service_account",
                )
            ],
        ),
        (["oauth2_account", "account", "person"], []),
        (
            ["person", "service_account"],
            [
                ("schema.excludes", "person", "service_account"),
                ("schema.excludes", "service_account", "person"),
            ],
        ),
        (["account", "person", "posixaccount"], []),
    ],
)
def test_class_problems(classes: list[str], expected: list[tuple[str, str, str]]) -> None:
    """Supplements and excludes follow kanidmd's schema (spec §4.5 d)."""
    assert expected == DEFAULT_SCHEMA.class_problems(classes)


@pytest.mark.parametrize(
    ("classes", "present", "expected"),
    [
        (["account", "person"], {"name"}, ["displayname"]),
        (["account", "person"], {"name", "displayname"}, []),
        (["group", "posixgroup"], set(), ["name"]),
        (
            ["oauth2_account"],
            {"oauth2_account_provider"},
            ["oauth2_account_unique_user_id", "oauth2_account_unique_user_sub"],
        ),
        (["service_account"], set(), ["name"]),
    ],
)
def test_missing_must(classes: list[str], present: set[str], expected: list[str]) -> None:
    """Generated must-attributes are not required; name is, because spn derives from it."""
    assert expected == DEFAULT_SCHEMA.missing_must(classes, present)


@pytest.mark.parametrize(
    ("urn", "expected"),
    [
        (SchemaUrn.PERSON.value, "person"),
        (SCHEMA_PREFIX + "customclass", "customclass"),
        (SCHEMA_PREFIX, None),
        ("urn:ietf:params:scim:schemas:core:2.0:User", None),
        (SCHEMA_PREFIX.upper() + "PERSON", None),
    ],
)
def test_class_from_urn(urn: str, expected: str | None) -> None:
    """The prefix is matched exactly and the class is what follows it."""
    assert expected == class_from_urn(urn)


def test_only_import_and_known_syntaxes_convert() -> None:
    """Purge-only attributes have no JSON conversion; writable ones do."""
    convertible = {n for n, a in ATTRIBUTES.items() if a.sync_allowed and a.convertible}
    purge_only = {n for n, a in ATTRIBUTES.items() if a.sync_allowed and not a.convertible}
    expected = {
        "name_history",
        "primary_credential",
        "passkeys",
        "attested_passkeys",
        "radius_secret",
    }
    assert expected == purge_only
    assert True is PHANTOMS.issubset(convertible)


def test_a_custom_schema_extends_the_owned_set() -> None:
    """An admin-added sync-allowed attribute on a class becomes owned in a custom Schema."""
    attrs = {
        **ATTRIBUTES,
        "employeenumber": AttributeSchema(
            name="employeenumber", syntax=Syntax.UTF8, sync_allowed=True
        ),
    }
    person = CLASSES["person"]
    classes = {
        **CLASSES,
        "person": ClassSchema(
            name="person",
            may=person.may | {"employeenumber"},
            must=person.must,
            excludes=person.excludes,
            sync_allowed=True,
        ),
    }
    schema = Schema(attrs, classes)
    assert ("employeenumber" in schema.writable(["person"])) is True
    assert ("employeenumber" in DEFAULT_SCHEMA.writable(["person"])) is False
