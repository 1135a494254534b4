"""Tests for ChangeSet.validate(): one report of everything kanidmd would refuse (spec §3-§4)."""

from __future__ import annotations

import base64
import hashlib
import pathlib
import uuid
from collections.abc import Mapping
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kanidm_sync import (
    REFRESH,
    ActiveState,
    ChangeSet,
    DeleteOnly,
    Entry,
    GenericEntry,
    Group,
    JSONValue,
    Mail,
    OAuth2Account,
    Person,
    PosixAccount,
    PosixGroup,
    Problem,
    RetainIgnore,
    RetainOnly,
    RetentionMode,
    SchemaUrn,
    ServiceAccount,
    Severity,
    SshPublicKey,
    SyncState,
    Totp,
    ValidationError,
    ValidationReport,
)
from kanidm_sync._proto._schema import ATTRIBUTES, CLASSES, AttributeSchema, Schema, Syntax
from kanidm_sync._proto._validate import validate_changeset

ED25519 = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAeGW1P6Pc2rPq0XqbRaDKBcXZUPRklo0L1EyR30CwoP"
    " william@amethyst"
)
NT_HASH = "ipaNTHash: iEb36u6PsRetBr3YMLdYbA"
SSHA512 = (
    "{SSHA512}"
    + base64.b64encode(hashlib.sha512(b"pw" + b"8bytesalt"[:8]).digest() + b"8bytesal").decode()
)
TOTP_SECRET = base64.b64encode(b"12345678901234567890").decode()
PROVIDER = "0c2b5e6a-7f3e-4d5b-9c1a-2b3c4d5e6f70"
URN = "urn:ietf:params:scim:schemas:kanidm:sync:1:"
FIXTURES = pathlib.Path(__file__).parent.parent / "fixtures"


def uid(n: int) -> uuid.UUID:
    """A UUID outside Kanidm's reserved range."""
    return uuid.UUID(int=(1 << 120) + n)


def person(n: int = 0, **kw: Any) -> Person:
    """A minimal valid person number ``n``; keywords override fields."""
    fields: dict[str, Any] = {
        "id": uid(n),
        "external_id": f"uid=p{n},ou=people,dc=example,dc=org",
        "name": f"p{n}",
        "displayname": f"Person {n}",
    }
    fields.update(kw)
    return Person(**fields)


def group(n: int = 0, **kw: Any) -> Group:
    """A minimal valid group number ``n``; keywords override fields."""
    fields: dict[str, Any] = {
        "id": uid(10_000 + n),
        "external_id": f"cn=g{n},ou=groups,dc=example,dc=org",
        "name": f"g{n}",
    }
    fields.update(kw)
    return Group(**fields)


def generic(n: int, schemas: list[str], attributes: Mapping[str, JSONValue]) -> GenericEntry:
    """A generic entry with the given class names (URN suffixes) and attributes."""
    return GenericEntry(
        id=uid(20_000 + n),
        external_id=f"cn=x{n},dc=example,dc=org",
        schemas=tuple(URN + s for s in schemas),
        attributes=attributes,
    )


def check(
    *entries: Entry, retain: RetentionMode | None = None, from_state: SyncState = REFRESH
) -> ValidationReport:
    """Validate a ChangeSet made of ``entries``."""
    cs = ChangeSet(
        from_state=from_state,
        to_state=ActiveState(b"next"),
        entries=entries,
        retain=retain or RetainIgnore(),
    )
    return cs.validate()


def found(report: ValidationReport) -> list[tuple[str, str, int | None, str | None]]:
    """(severity, code, index, field) of every problem."""
    return [(p.severity.value, p.code, p.index, p.field) for p in report.problems]


def E(
    code: str, index: int | None = 0, field: str | None = None
) -> tuple[str, str, int | None, str | None]:
    """An expected error row."""
    return ("error", code, index, field)


def W(
    code: str, index: int | None = 0, field: str | None = None
) -> tuple[str, str, int | None, str | None]:
    """An expected warning row."""
    return ("warning", code, index, field)


def full_person(n: int = 0) -> Person:
    """A person using every field, all valid."""
    return person(
        n,
        legalname="Person Legal",
        mail=(Mail(f"p{n}@example.org", primary=True), Mail(f"p{n}.alt@example.org")),
        ssh_publickey=(SshPublicKey("laptop", ED25519),),
        account_valid_from="2025-01-01T00:00:00Z",
        account_expire="2030-01-01T00:00:00+10:00",
        account_softlock_expire="2026-01-01T00:00:00.5Z",
        password_import=SSHA512,
        totp_import=(
            Totp(external_id="phone", secret=TOTP_SECRET, algo="sha256", step=60, digits=8),
        ),
        posix=PosixAccount(
            gidnumber=20_000 + n, loginshell="/bin/zsh", unix_password_import=NT_HASH
        ),
        oauth2=OAuth2Account(provider=PROVIDER, unique_user_id="u-1", unique_user_sub="sub-1"),
    )


class TestValidData:
    def test_rich_valid_changeset_has_no_problem(self) -> None:
        """Every field of every entry kind, used correctly, yields an empty report."""
        report = check(
            full_person(0),
            group(
                0,
                description="Staff",
                mail=(Mail("staff@example.org"),),
                member=(person(0).external_id or "", str(uid(0))),
                posix=PosixGroup(gidnumber=30_000),
            ),
            ServiceAccount(
                id=uid(5),
                external_id="cn=svc",
                name="svc",
                displayname="Service",
                description="bot",
                password_import=NT_HASH,
                posix=PosixAccount(),
            ),
            generic(
                1,
                ["group", "posixgroup"],
                {
                    "name": "gen",
                    "gidnumber": 40_000,
                    "member": [{"external_id": "cn=svc"}],
                    "description": "generic",
                },
            ),
        )
        expected: list[object] = []
        assert expected == found(report)
        assert True is report.ok

    @pytest.mark.parametrize(
        "fixture",
        [
            "changeset-kanidmd-ipa-1.json",
            "changeset-kanidmd-ipa-refresh-1.json",
        ],
    )
    def test_kanidmd_fixtures_are_clean(self, fixture: str) -> None:
        """The payloads kanidmd's own tests apply successfully validate without problems."""
        cs = ChangeSet.from_json((FIXTURES / "wire" / fixture).read_bytes())
        expected: list[object] = []
        assert expected == found(cs.validate())

    def test_incremental_fixture_only_warns_about_the_earlier_member(self) -> None:
        """IPA_2 names testuser, sent in IPA_1, as a member: a warning, not an error."""
        cs = ChangeSet.from_json((FIXTURES / "wire" / "changeset-kanidmd-ipa-2.json").read_bytes())
        expected = [W("member.unresolved", 0, "member[0]")]
        assert expected == found(cs.validate())

    def test_empty_changeset_is_fine(self) -> None:
        """A need_refresh-style ChangeSet with no entries has no problem."""
        expected: list[object] = []
        assert expected == found(ChangeSet.need_refresh(ActiveState(b"x")).validate())

    def test_function_and_method_agree(self) -> None:
        """ChangeSet.validate() is validate_changeset()."""
        cs = ChangeSet(from_state=REFRESH, to_state=REFRESH, entries=[person(0, name="1x")])
        assert validate_changeset(cs) == cs.validate()


class TestNames:
    @pytest.mark.parametrize("name", ["1abc", "_abc", "a b", "abc@example", "é", "a" * 65, ""])
    def test_syntax(self, name: str) -> None:
        """Names that fail ^[a-z][a-z0-9-_.]{0,63}$ are errors."""
        expected = [E("name.syntax", 0, "name")]
        assert expected == found(check(person(0, name=name)))

    @pytest.mark.parametrize("name", ["root", "Root", str(uid(3)), uid(3).hex])
    def test_reserved(self, name: str) -> None:
        """Names "root" and names that parse as UUIDs are refused."""
        expected = [E("name.reserved", 0, "name")]
        assert expected == found(check(person(0, name=name)))

    def test_upper_case_is_a_warning(self) -> None:
        """Kanidm lower-cases names; upper case is accepted with a warning."""
        expected = [W("name.case", 0, "name")]
        assert expected == found(check(person(0, name="Alice")))

    def test_group_and_service_account_names_are_checked(self) -> None:
        """Group and service account names follow the same rules."""
        svc = ServiceAccount(id=uid(7), external_id="cn=s", name="-s", displayname="S")
        expected = [E("name.syntax", 0, "name"), E("name.syntax", 1, "name")]
        assert expected == found(check(group(0, name="9g"), svc))


class TestControlCharacters:
    @pytest.mark.parametrize(
        ("entry", "field"),
        [
            (person(0, displayname="A\nB"), "displayname"),
            (person(0, legalname="A\tB"), "legalname"),
            (person(0, external_id="uid=a\r"), "external_id"),
            (
                person(0, ssh_publickey=(SshPublicKey("lap\ntop", ED25519),)),
                "ssh_publickey[0].label",
            ),
            (
                person(
                    0,
                    password_import=NT_HASH,
                    totp_import=(Totp(external_id="a\x1b", secret=TOTP_SECRET),),
                ),
                "totp_import[0].external_id",
            ),
            (person(0, posix=PosixAccount(loginshell="/bin/sh\x00")), "loginshell"),
            (
                person(
                    0,
                    oauth2=OAuth2Account(
                        provider=PROVIDER, unique_user_id="u\x7f", unique_user_sub="s"
                    ),
                ),
                "oauth2_account_unique_user_id",
            ),
            (group(0, description="multi\nline"), "description"),
            (group(0, member=("uid=x\n",)), "member[0]"),
        ],
    )
    def test_c0_controls_are_errors(self, entry: Entry, field: str) -> None:
        """Line breaks, tabs and other ASCII controls are refused in every string value."""
        report = check(entry)
        expected = [E("value.control_chars", 0, field)]
        assert expected == [r for r in found(report) if r[1] == "value.control_chars"]

    def test_c1_controls_are_warnings(self) -> None:
        """C1 controls pass kanidmd's ASCII [[:cntrl:]] but look like mis-decoded text."""
        expected = [W("value.control_chars", 0, "displayname")]
        assert expected == found(check(person(0, displayname="A\x85B")))


class TestMail:
    def test_syntax(self) -> None:
        """Addresses kanidmd's HTML5 regex refuses are errors, with their position."""
        report = check(person(0, mail=(Mail("ok@example.org"), Mail("not an address"))))
        expected = [E("mail.syntax", 0, "mail[1]")]
        assert expected == found(report)

    def test_group_mail_is_checked(self) -> None:
        """Group mail addresses are checked too."""
        expected = [E("mail.syntax", 0, "mail[0]")]
        assert expected == found(check(group(0, mail=(Mail("x@"),))))


class TestGidnumber:
    @pytest.mark.parametrize("gid", [0, 999, 60001, 65534, 2**31])
    def test_reserved_range(self, gid: int) -> None:
        """Gids in the system ranges are errors (pl0001gidoverlapssystemrange)."""
        report = check(
            person(0, posix=PosixAccount(gidnumber=gid)), group(0, posix=PosixGroup(gidnumber=gid))
        )
        expected = [
            E("gidnumber.reserved_range", 0, "gidnumber"),
            E("gidnumber.reserved_range", 1, "gidnumber"),
        ]
        assert expected == found(report)

    @pytest.mark.parametrize("gid", [-1, 2**32])
    def test_u32_bounds(self, gid: int) -> None:
        """Gids outside 0..2**32-1 are errors."""
        report = check(group(0, posix=PosixGroup(gidnumber=gid)))
        expected = [E("gidnumber.out_of_bounds", 0, "gidnumber")]
        assert expected == found(report)

    def test_generic_gidnumber_must_be_an_integer(self) -> None:
        """A string or float gidnumber is a type error."""
        report = check(generic(0, ["group", "posixgroup"], {"name": "g", "gidnumber": "20001"}))
        expected = [E("value.type", 0, "gidnumber")]
        assert expected == found(report)


class TestPasswordImport:
    def test_bad_format_is_an_error_without_the_hash(self) -> None:
        """An unrecognised hash is an error whose message does not contain it."""
        secret = "{PBKDF2_SHA256}AAAIAFxyzzysecretmaterial"
        report = check(person(0, password_import=secret))
        expected = [E("password_import.format", 0, "password_import")]
        assert expected == found(report)
        assert secret not in str(report)
        assert "389-ds" in report.problems[0].message

    def test_unix_password_import_is_checked(self) -> None:
        """unix_password_import uses the same format rules."""
        report = check(person(0, posix=PosixAccount(unix_password_import="plaintext")))
        expected = [E("unix_password_import.format", 0, "unix_password_import")]
        assert expected == found(report)
        assert "plaintext" not in str(report)

    def test_service_account_password_is_checked(self) -> None:
        """Service account password imports are checked."""
        svc = ServiceAccount(
            id=uid(7), external_id="cn=s", name="s", displayname="S", password_import="x"
        )
        expected = [E("password_import.format", 0, "password_import")]
        assert expected == found(check(svc))


class TestTotp:
    def test_bad_fields_are_all_reported(self) -> None:
        """Every bad TOTP field is reported, with kanidmd's message and no secret."""
        bad = Totp(external_id="t", secret="not base64!", algo="md5", step=15, digits=7)
        report = check(person(0, password_import=NT_HASH, totp_import=(bad,)))
        expected = [
            E("totp.secret", 0, "totp_import[0].secret"),
            E("totp.algo", 0, "totp_import[0].algo"),
            E("totp.step", 0, "totp_import[0].step"),
            E("totp.digits", 0, "totp_import[0].digits"),
        ]
        assert expected == found(report)
        assert "not base64!" not in str(report)

    def test_totp_without_password_import(self) -> None:
        """A TOTP import needs a password import in the same entry (credimport)."""
        report = check(person(0, totp_import=(Totp(external_id="t", secret=TOTP_SECRET),)))
        expected = [E("totp.without_password", 0, "totp_import")]
        assert expected == found(report)

    def test_duplicate_labels_warn(self) -> None:
        """Kanidmd keeps the first of two TOTPs with one label and drops the other."""
        t = Totp(external_id="phone", secret=TOTP_SECRET)
        report = check(person(0, password_import=NT_HASH, totp_import=(t, t)))
        expected = [W("totp.duplicate_label", 0, "totp_import[1].external_id")]
        assert expected == found(report)

    def test_generic_totp_missing_keys_and_password(self) -> None:
        """In raw attributes, missing TOTP keys and the missing password are errors."""
        report = check(
            generic(
                0,
                ["account", "person"],
                {
                    "name": "x",
                    "displayname": "X",
                    "totp_import": [{"external_id": "t", "secret": TOTP_SECRET, "algo": "sha1"}],
                },
            )
        )
        expected = [
            E("totp.step", 0, "totp_import[0].step"),
            E("totp.digits", 0, "totp_import[0].digits"),
            E("totp.without_password", 0, "totp_import"),
        ]
        assert expected == found(report)


class TestSshKeys:
    def test_unparsable_key(self) -> None:
        """A key that is not an OpenSSH public key line is an error (sc0001)."""
        report = check(
            person(0, ssh_publickey=(SshPublicKey("a", ED25519), SshPublicKey("b", "ssh-rsa AAAA")))
        )
        expected = [E("ssh_publickey.syntax", 0, "ssh_publickey[1]")]
        assert expected == found(report)

    def test_type_mismatch(self) -> None:
        """A blob whose embedded type differs from the declared one is refused."""
        line = "ssh-rsa " + ED25519.split(" ", 1)[1]
        report = check(person(0, ssh_publickey=(SshPublicKey("a", line),)))
        expected = [E("ssh_publickey.syntax", 0, "ssh_publickey[0]")]
        assert expected == found(report)
        assert "does not match" in report.problems[0].message

    def test_duplicate_labels_warn(self) -> None:
        """Two keys with one label: only one is kept."""
        keys = (SshPublicKey("a", ED25519), SshPublicKey("a", ED25519))
        expected = [W("ssh_publickey.duplicate_label", 0, "ssh_publickey[1].label")]
        assert expected == found(check(person(0, ssh_publickey=keys)))


class TestDates:
    @pytest.mark.parametrize(
        "field", ["account_valid_from", "account_expire", "account_softlock_expire"]
    )
    def test_each_date_field(self, field: str) -> None:
        """Every validity date must be RFC 3339."""
        expected = [E("date.rfc3339", 0, field)]
        assert expected == found(check(person(0, **{field: "2025-01-01"})))

    def test_generic_date(self) -> None:
        """Dates in raw attributes are checked too."""
        report = check(
            generic(
                0,
                ["account", "person"],
                {"name": "x", "displayname": "X", "account_expire": "tomorrow"},
            )
        )
        expected = [E("date.rfc3339", 0, "account_expire")]
        assert expected == found(report)


class TestSchema:
    @pytest.mark.parametrize(
        ("schemas", "attrs", "expected"),
        [
            (["posixaccount"], {}, [E("schema.supplements", 0, "schemas")]),
            (["posixgroup"], {}, [E("schema.supplements", 0, "schemas")]),
            (
                ["account"],
                {"displayname": "X"},
                [E("schema.supplements", 0, "schemas"), E("schema.must", 0, "name")],
            ),
            (
                ["account", "person", "service_account"],
                {"name": "x", "displayname": "X"},
                [E("schema.excludes", 0, "schemas"), E("schema.excludes", 0, "schemas")],
            ),
            (
                ["oauth2_account"],
                {
                    "oauth2_account_provider": PROVIDER,
                    "oauth2_account_unique_user_id": "u",
                    "oauth2_account_unique_user_sub": "s",
                },
                [E("schema.supplements", 0, "schemas")],
            ),
            (["account", "person"], {"name": "x"}, [E("schema.must", 0, "displayname")]),
            (["group"], {}, [E("schema.must", 0, "name")]),
            (
                ["account", "person", "oauth2_account"],
                {
                    "name": "x",
                    "displayname": "X",
                    "oauth2_account_provider": PROVIDER,
                    "oauth2_account_unique_user_id": "u",
                },
                [E("schema.must", 0, "oauth2_account_unique_user_sub")],
            ),
        ],
    )
    def test_class_combinations(
        self,
        schemas: list[str],
        attrs: dict[str, JSONValue],
        expected: list[tuple[str, str, int, str]],
    ) -> None:
        """Supplements, excludes and must-attributes follow kanidmd's schema (§3.6, §4.5 d)."""
        assert expected == found(check(generic(0, schemas, attrs)))

    def test_typed_oauth2_needs_unique_user_sub(self) -> None:
        """Since Kanidm 1.11 oauth2_account requires oauth2_account_unique_user_sub."""
        report = check(person(0, oauth2=OAuth2Account(provider=PROVIDER, unique_user_id="u")))
        expected = [E("schema.must", 0, "oauth2_account_unique_user_sub")]
        assert expected == found(report)

    def test_oauth2_provider_by_external_id_warns(self) -> None:
        """An OAuth2 provider given by external id will hardly resolve: a warning."""
        o = OAuth2Account(provider="cn=google", unique_user_id="u", unique_user_sub="s")
        expected = [W("oauth2.provider_reference", 0, "oauth2_account_provider")]
        assert expected == found(check(person(0, oauth2=o)))

    @pytest.mark.parametrize(
        ("urn", "expected"),
        [
            ("urn:ietf:params:scim:schemas:core:2.0:User", E("schema.urn", 0, "schemas[1]")),
            ("URN:IETF:PARAMS:SCIM:SCHEMAS:KANIDM:SYNC:1:GROUP", E("schema.urn", 0, "schemas[1]")),
            (URN + "system", E("schema.not_sync_allowed", 0, "schemas[1]")),
            (URN + "sync_account", E("schema.not_sync_allowed", 0, "schemas[1]")),
            (URN + "customclass", W("schema.unknown_class", 0, "schemas[1]")),
        ],
    )
    def test_urns(self, urn: str, expected: tuple[str, str, int, str]) -> None:
        """Only sync-allowed class URNs with the exact prefix are accepted."""
        entry = GenericEntry(
            id=uid(1), external_id="cn=x", schemas=(SchemaUrn.GROUP, urn), attributes={"name": "x"}
        )
        assert [expected] == found(check(entry))

    def test_empty_schemas_warn(self) -> None:
        """An entry without schemas owns only the import attributes."""
        entry = GenericEntry(id=uid(1), external_id="cn=x", schemas=(), attributes={})
        expected = [W("schema.empty", 0, "schemas")]
        assert expected == found(check(entry))

    def test_password_import_on_a_group(self) -> None:
        """Groups have no primary credential (attributenotvalidforclass)."""
        report = check(
            generic(0, ["group"], {"name": "g", "password_import": NT_HASH}),
            group(1, extra={"password_import": NT_HASH}),
        )
        expected = [
            E("password_import.class", 0, "password_import"),
            E("password_import.class", 1, "password_import"),
        ]
        assert expected == found(report)

    def test_unix_password_import_needs_posixaccount(self) -> None:
        """unix_password_import without posixaccount is an error."""
        report = check(
            generic(
                0,
                ["account", "person"],
                {"name": "x", "displayname": "X", "unix_password_import": NT_HASH},
            )
        )
        expected = [E("unix_password_import.class", 0, "unix_password_import")]
        assert expected == found(report)


class TestAttributes:
    @pytest.mark.parametrize(
        "name",
        [
            "uuid",
            "class",
            "sync_parent_uuid",
            "sync_external_id",
            "external_id",
            "spn",
            "memberof",
            "unix_password",
            "user_auth_token_session",
        ],
    )
    def test_not_owned(self, name: str) -> None:
        """Attributes Kanidm manages or no schema owns are refused (invalidentrystate)."""
        expected = [E("attribute.not_owned", 0, name)]
        assert expected == found(check(person(0, extra={name: "x"})))

    def test_attribute_of_an_unrequested_class(self) -> None:
        """A gidnumber on a group without posixgroup is not owned."""
        report = check(generic(0, ["group"], {"name": "g", "gidnumber": 20_000}))
        expected = [E("attribute.not_owned", 0, "gidnumber")]
        assert expected == found(report)

    @pytest.mark.parametrize(
        "name", ["primary_credential", "passkeys", "radius_secret", "name_history"]
    )
    def test_purge_only(self, name: str) -> None:
        """Purge-only attributes cannot be written (Unsupported attribute conversion)."""
        expected = [E("attribute.unsupported", 0, name)]
        assert expected == found(check(person(0, extra={name: "x"})))

    def test_unknown_attribute_warns(self) -> None:
        """An attribute unknown to the default schema may be admin-added: a warning."""
        expected = [W("attribute.unknown", 0, "employeenumber")]
        assert expected == found(check(person(0, extra={"employeenumber": "42"})))

    def test_unknown_attribute_values_are_still_checked(self) -> None:
        """Control characters in an unknown attribute's strings are still reported."""
        report = check(person(0, extra={"employeenumber": "4\n2"}))
        assert [
            W("attribute.unknown", 0, "employeenumber"),
            E("value.control_chars", 0, "employeenumber"),
        ] == found(report)

    def test_extra_cannot_shadow_a_typed_field(self) -> None:
        """A typed field given again through extra is an error."""
        expected = [E("extra.shadows_field", 0, "displayname")]
        assert expected == found(check(person(0, extra={"displayname": "Other"})))

    def test_header_keys(self) -> None:
        """externalId, id, schemas and meta are header keys, not attributes."""
        expected = [E("attribute.header_key", 0, "externalId")]
        assert expected == [
            r
            for r in found(check(generic(0, ["group"], {"name": "g", "externalId": "x"})))
            if r[1] != "attribute.case"
        ]

    def test_upper_case_attribute_names_warn(self) -> None:
        """Attribute names should be sent in lower case."""
        expected = [W("attribute.case", 0, "Description")]
        assert expected == found(check(generic(0, ["group"], {"name": "g", "Description": "x"})))

    def test_same_attribute_twice(self) -> None:
        """Name and name are the same single-valued attribute."""
        report = check(generic(0, ["group"], {"name": "g", "Name": "h"}))
        assert E("attribute.duplicate", 0, "Name") in found(report)

    def test_admin_added_class_makes_not_owned_a_warning(self) -> None:
        """With an unknown (admin-added) class the owned set is unknown: only a warning."""
        report = check(generic(0, ["group", "customclass"], {"name": "g", "gidnumber": 20_000}))
        assert [
            W("schema.unknown_class", 0, "schemas[1]"),
            W("attribute.not_owned", 0, "gidnumber"),
        ] == found(report)


class TestValueShapes:
    @pytest.mark.parametrize(
        ("value", "code"),
        [
            (None, "value.null"),
            ([], "value.empty_list"),
            ([1, 2, 3], "value.shape"),
            ([{"a": [1]}], "value.shape"),
            ({"a": {"b": 1}}, "value.shape"),
            ([{"value": None}], "value.null"),
            (["a", None], "value.null"),
            (["a", {"b": 1}], "value.shape"),
        ],
    )
    def test_generic_shapes(self, value: JSONValue, code: str) -> None:
        """null, [], byte arrays and nested values are refused (spec §3.5)."""
        report = check(person(0, extra={"employeenumber": value}))
        expected = [code]
        assert expected == [p.code for p in report.problems]
        assert Severity.ERROR is report.problems[0].severity

    def test_empty_member_list_in_generic_entry(self) -> None:
        """An empty member list parses as binary; omit the attribute instead."""
        report = check(generic(0, ["group"], {"name": "g", "member": []}))
        expected = [E("value.empty_list", 0, "member")]
        assert expected == found(report)

    @pytest.mark.parametrize(
        ("attr", "value"),
        [
            ("member", [{"id": "x"}]),
            ("mail", [{"value": 5}]),
            ("mail", [{"value": "a@b", "primary": "yes"}]),
            ("description", ["a", "b"]),
            ("mail", "a@b"),
        ],
    )
    def test_wrong_types(self, attr: str, value: JSONValue) -> None:
        """Values of the wrong JSON type for the attribute's syntax are errors."""
        report = check(generic(0, ["group"], {"name": "g", attr: value}))
        expected = ["value.type"]
        assert expected == [p.code for p in report.problems]

    def test_generic_values_go_through_the_same_checks(self) -> None:
        """Names, mails, gids and SSH keys in raw attributes are checked like typed ones."""
        report = check(
            generic(
                0,
                ["account", "service_account", "posixaccount"],
                {
                    "name": "Bad Name",
                    "displayname": "X",
                    "mail": [{"value": "nope"}],
                    "gidnumber": 5,
                    "ssh_publickey": [{"label": "k", "value": "ssh-rsa AAAA"}],
                    "password_import": "nope",
                },
            )
        )
        expected = {
            E("name.syntax", 0, "name"),
            E("mail.syntax", 0, "mail[0]"),
            E("gidnumber.reserved_range", 0, "gidnumber"),
            E("ssh_publickey.syntax", 0, "ssh_publickey[0]"),
            E("password_import.format", 0, "password_import"),
        }
        assert expected == set(found(report))


class TestDuplicates:
    def test_duplicate_id_is_an_error(self) -> None:
        """Kanidmd keeps only the last entry with an id: silent data loss, so an error."""
        report = check(person(0), person(1, id=uid(0)))
        expected = [E("duplicate.id", 1, "id")]
        assert expected == found(report)
        assert "entries[0]" in report.problems[0].message

    def test_external_ids_compare_case_insensitively(self) -> None:
        """Kanidm lower-cases external ids, so case variants collide (409)."""
        report = check(person(0, external_id="UID=A"), person(1, external_id="uid=a"))
        expected = [E("duplicate.external_id", 1, "external_id")]
        assert expected == found(report)

    def test_names_collide_across_kinds(self) -> None:
        """A person and a group cannot share a name, whatever the case."""
        report = check(person(0, name="staff"), group(0, name="Staff"))
        expected = [W("name.case", 1, "name"), E("duplicate.name", 1, "name")]
        assert expected == found(report)

    def test_mail_duplicates(self) -> None:
        """The same address twice is an error; differing only in case, a warning."""
        report = check(
            person(0, mail=(Mail("a@example.org"),)),
            person(1, mail=(Mail("a@example.org"),)),
            group(0, mail=(Mail("A@example.org"),)),
        )
        expected = [E("duplicate.mail", 1, "mail[0]"), W("duplicate.mail", 2, "mail[0]")]
        assert expected == found(report)

    def test_gidnumber_duplicates_across_persons_and_groups(self) -> None:
        """Gidnumbers are unique across all posix entries."""
        report = check(
            person(0, posix=PosixAccount(gidnumber=5000)),
            group(0, posix=PosixGroup(gidnumber=5000)),
        )
        expected = [E("duplicate.gidnumber", 1, "gidnumber")]
        assert expected == found(report)

    def test_derived_gidnumbers_collide(self) -> None:
        """Two posix entries without gid whose UUIDs end alike derive the same gid."""
        a = person(0, id=uuid.UUID("10000000-0000-4000-8000-000012345678"), posix=PosixAccount())
        b = group(0, id=uuid.UUID("20000000-0000-4000-8000-00ff12345678"), posix=PosixGroup())
        report = check(a, b)
        expected = [E("duplicate.gidnumber", 1, "gidnumber")]
        assert expected == found(report)
        assert "derived" in report.problems[0].message

    def test_superseded_entries_do_not_count_for_uniqueness(self) -> None:
        """Only the last entry with an id reaches kanidmd, so only it holds its name."""
        report = check(person(0, name="same"), person(1, id=uid(0), name="same"))
        expected = [E("duplicate.id", 1, "id")]
        assert expected == found(report)


class TestExternalIds:
    def test_no_external_id_anywhere(self) -> None:
        """Entries but no external id at all: kanidmd answers emptyrequest."""
        report = check(person(0, external_id=None), group(0, external_id=None))
        expected = [E("changeset.no_external_id", None, None)]
        assert expected == found(report)

    def test_one_entry_without_external_id_warns(self) -> None:
        """Among others, an entry without external id is a warning."""
        report = check(person(0), group(0, external_id=None))
        expected = [W("external_id.missing", 1, None)]
        assert expected == found(report)

    def test_external_id_that_looks_like_a_uuid_warns(self) -> None:
        """A UUID-shaped external id cannot be used to refer to the entry as a member."""
        report = check(person(0, external_id=str(uid(99))))
        expected = [W("external_id.uuid", 0, "external_id")]
        assert expected == found(report)

    def test_reserved_uuid_range_warns(self) -> None:
        """Ids below 00000000-0000-0000-0001-000000000000 get the builtin class."""
        report = check(person(0, id=uuid.UUID(int=42)))
        expected = [W("id.reserved", 0, "id")]
        assert expected == found(report)


class TestMembers:
    def test_unresolved_member_warns(self) -> None:
        """Kanidmd silently drops a member external id that matches nothing."""
        report = check(person(0), group(0, member=("uid=ghost,dc=example,dc=org",)))
        expected = [W("member.unresolved", 1, "member[0]")]
        assert expected == found(report)
        assert "refresh" in report.problems[0].message

    def test_incremental_message_mentions_existing_entries(self) -> None:
        """In an Active apply the member may exist in Kanidm already."""
        report = check(group(0, member=("uid=ghost",)), from_state=ActiveState(b"c"))
        assert "already exists in Kanidm" in report.problems[0].message

    def test_resolution_is_case_insensitive(self) -> None:
        """Member external ids are looked up lower-cased."""
        report = check(person(0, external_id="UID=Alice"), group(0, member=("uid=alice",)))
        expected: list[object] = []
        assert expected == found(report)

    def test_uuid_members_are_direct_references(self) -> None:
        """A member that parses as a UUID is not looked up and not reported."""
        expected: list[object] = []
        assert expected == found(check(group(0, member=(str(uid(12345)),))))

    def test_generic_members_resolve(self) -> None:
        """Members in raw attributes take part in resolution."""
        report = check(
            person(0),
            generic(
                0,
                ["group"],
                {
                    "name": "g",
                    "member": [
                        {"external_id": "uid=p0,ou=people,dc=example,dc=org"},
                        {"external_id": "nobody"},
                    ],
                },
            ),
        )
        expected = [W("member.unresolved", 1, "member[1]")]
        assert expected == found(report)


class TestRetention:
    def test_delete_of_a_sent_entry_warns(self) -> None:
        """An entry both sent and deleted ends up deleted (§4.6)."""
        report = check(person(0), group(0), retain=DeleteOnly([uid(10_000), uid(77)]))
        expected = [W("retain.deletes_sent_entry", 1, "id")]
        assert expected == found(report)

    def test_retain_not_listing_a_sent_entry_warns(self) -> None:
        """Retain not listing an entry of the same ChangeSet deletes it (§7.3.5)."""
        report = check(person(0), group(0), retain=RetainOnly([uid(0)]))
        expected = [W("retain.drops_sent_entry", 1, "id")]
        assert expected == found(report)

    def test_retain_listing_everything_is_fine(self) -> None:
        """Retain listing every sent entry has no problem."""
        expected: list[object] = []
        assert expected == found(
            check(person(0), group(0), retain=RetainOnly([uid(0), uid(10_000)]))
        )


class TestReport:
    def test_all_problems_of_all_entries_are_reported(self) -> None:
        """Validation never stops at the first problem; problems come in entry order."""
        report = check(
            person(0, name="1", displayname="a\nb", mail=(Mail("x"),)),
            group(0, name="root", posix=PosixGroup(gidnumber=1)),
            person(1, external_id=None),
        )
        expected = [
            E("name.syntax", 0, "name"),
            E("value.control_chars", 0, "displayname"),
            E("mail.syntax", 0, "mail[0]"),
            E("name.reserved", 1, "name"),
            E("gidnumber.reserved_range", 1, "gidnumber"),
            W("external_id.missing", 2, None),
        ]
        assert expected == found(report)

    def test_problems_carry_entry_context(self) -> None:
        """Each problem names the entry's index, id and external id."""
        p = check(person(3, name="1")).problems[0]
        expected = Problem(
            severity=Severity.ERROR,
            code="name.syntax",
            message=p.message,
            index=0,
            entry_id=uid(3),
            external_id="uid=p3,ou=people,dc=example,dc=org",
            field="name",
        )
        assert expected == p

    def test_no_secret_in_any_message(self) -> None:
        """Neither password hashes nor TOTP secrets appear in messages or renderings."""
        pw = "{SSHA512}c2VjcmV0LXBhc3N3b3JkLW1hdGVyaWFs"
        secret = "c2VjcmV0LXRvdHAta2V5!"
        report = check(
            person(0, password_import=pw, totp_import=(Totp(external_id="t", secret=secret),))
        )
        text = str(report) + report._repr_html_() + repr(report)
        leaks = (False, False)
        assert leaks == (pw in text or pw[9:] in text, secret in text)
        errors = 2
        assert errors == len(report.errors)

    def test_by_code_and_by_entry(self) -> None:
        """Reports filter by code or code family and group by entry."""
        report = check(person(0, name="1"), person(1, name="1", mail=(Mail("x"),)))
        name_errors = 2
        assert name_errors == len(report.by_code("name.syntax"))
        mail_family = ["mail.syntax"]
        assert mail_family == [p.code for p in report.by_code("mail.")]
        indexes = [0, 1]
        assert indexes == sorted(k for k in report.by_entry() if k is not None)
        assert frozenset({"name.syntax", "mail.syntax"}) == report.codes

    def test_raise_for_errors(self) -> None:
        """raise_for_errors raises ValidationError carrying the report; warnings do not raise."""
        check(person(0, name="Alice")).raise_for_errors()
        report = check(person(0, name="1"))
        with pytest.raises(ValidationError) as info:
            report.raise_for_errors()
        assert report is info.value.report


class TestCustomSchema:
    def _schema(self) -> Schema:
        """Kanidm's schema plus an admin-added sync-allowed uint32 attribute on person."""
        person_cls = CLASSES["person"]
        return Schema(
            {
                **ATTRIBUTES,
                "badge": AttributeSchema(name="badge", syntax=Syntax.UINT32, sync_allowed=True),
            },
            {**CLASSES, "person": attrs.evolve(person_cls, may=person_cls.may | {"badge"})},
        )

    def test_admin_added_attribute_is_owned(self) -> None:
        """With the custom schema, the attribute is owned: no warning."""
        cs = ChangeSet(
            from_state=REFRESH, to_state=REFRESH, entries=[person(0, extra={"badge": 7})]
        )
        expected: list[object] = []
        assert expected == found(validate_changeset(cs, schema=self._schema()))

    def test_admin_added_uint32_is_range_checked(self) -> None:
        """A uint32 attribute outside 0..2**32-1 is an error."""
        cs = ChangeSet(
            from_state=REFRESH, to_state=REFRESH, entries=[person(0, extra={"badge": -1})]
        )
        expected = [E("value.out_of_bounds", 0, "badge")]
        assert expected == found(validate_changeset(cs, schema=self._schema()))


_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
_CLASS_NAMES = st.sampled_from([*sorted(CLASSES), "custom", ""])


class TestRobustness:
    @settings(max_examples=100, deadline=None)
    @given(
        classes=st.lists(_CLASS_NAMES, max_size=4),
        attributes=st.dictionaries(
            st.sampled_from(sorted(ATTRIBUTES)) | st.text(max_size=12), _JSON, max_size=6
        ),
    )
    def test_generic_entries_never_raise(
        self, classes: list[str], attributes: dict[str, JSONValue]
    ) -> None:
        """Any schemas and any JSON attribute values give a report, never an exception."""
        report = check(generic(0, classes, attributes))
        assert isinstance(report, ValidationReport)

    @settings(max_examples=100, deadline=None)
    @given(
        name=st.text(max_size=70),
        displayname=st.text(max_size=20),
        mail=st.text(max_size=30),
        key=st.text(max_size=40),
        password=st.text(max_size=40),
        date=st.text(max_size=30),
        gid=st.integers(-(2**33), 2**33),
    )
    def test_typed_entries_never_raise(
        self, name: str, displayname: str, mail: str, key: str, password: str, date: str, gid: int
    ) -> None:
        """Arbitrary strings and integers in typed fields give a report, never an exception."""
        entry = person(
            0,
            name=name,
            displayname=displayname,
            mail=(Mail(mail),),
            ssh_publickey=(SshPublicKey("k", key),),
            password_import="SECRET-" + password,
            account_expire=date,
            posix=PosixAccount(gidnumber=gid),
        )
        report = check(entry)
        # The hash is marked so that it cannot occur in the report by accident.
        assert ("SECRET-" + password in str(report)) is False
