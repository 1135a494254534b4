"""Conflict diagnosis from local knowledge, and the rules it suggests (pure)."""

from __future__ import annotations

import json
import uuid

import attrs

from kanidm_sync import ActiveState, ChangeSet, DeleteOnly, PosixAccount, Remap, Rules
from kanidm_sync._diagnose import diagnose
from kanidm_sync._plan import KnownState, project_entry
from kanidm_sync._proto._status import error_from_response

from .conftest import person, pid

STATE = ActiveState(b"c1")


def changeset(*entries, retain=None) -> ChangeSet:  # type: ignore[no-untyped-def]
    kw = {"retain": retain} if retain is not None else {}
    return ChangeSet(from_state=STATE, to_state=ActiveState(b"c2"), entries=entries, **kw)


def known_of(*entries, deleted=()) -> KnownState:  # type: ignore[no-untyped-def]
    return KnownState(
        cookie=b"c1", entries={e.id: project_entry(e) for e in entries}, deleted=tuple(deleted)
    )


UNIQUE_NAME = error_from_response(
    409, '{"error":"Attribute uniqueness error","conflicting_attributes":["name"]}'
)


def test_name_collision_inside_the_changeset_names_both_entries() -> None:
    """Two entries with one name (case-insensitively) are both suspects, narrowed."""
    cs = changeset(person(1, name="alice"), person(2, name="ALICE"), person(3))
    d = diagnose(UNIQUE_NAME, cs)
    assert {pid(1), pid(2)} == {s.id for s in d.suspects}
    assert d.narrowed


def test_name_collision_with_a_native_entry_names_the_new_name() -> None:
    """With a known base, only the entry whose name is new can collide with Kanidm."""
    known = known_of(person(1), person(2))
    cs = changeset(person(2, displayname="changed"), person(3, name="admin"))
    d = diagnose(UNIQUE_NAME, cs, known=known)
    assert [pid(3)] == [s.id for s in d.suspects]
    assert d.narrowed
    assert "name" == d.suspects[0].attribute


def test_without_base_every_candidate_is_listed_and_not_narrowed() -> None:
    """An unknown base cannot narrow: every entry with the attribute is listed."""
    d = diagnose(UNIQUE_NAME, changeset(person(1), person(2)))
    assert {pid(1), pid(2)} == {s.id for s in d.suspects}
    assert not d.narrowed
    assert any("unknown" in n for n in d.notes)


def test_suggested_rules_load_and_key_by_source_uuid() -> None:
    """The TOML snippets are valid Rules, keyed by the source id behind a remap."""
    source_id = uuid.UUID("11111111-1111-4111-8111-111111111111")
    rules = Rules(remap_ids={source_id: Remap(id=pid(3))})
    known = known_of(person(1))
    d = diagnose(UNIQUE_NAME, changeset(person(3, name="admin")), known=known, rules=rules)
    exclude, remap = d.rules_toml.split("# Or remap them:")
    assert source_id in Rules.from_toml(exclude).exclude_ids
    loaded = Rules.from_toml(remap)
    assert "admin-sync" == loaded.remap_ids[source_id].name


def test_ownership_error_names_ids_new_to_the_account() -> None:
    """modifyassertionfailed: the entry whose id the account never sent."""
    error = error_from_response(500, '"modifyassertionfailed"')
    d = diagnose(error, changeset(person(1), person(2)), known=known_of(person(1)))
    assert [pid(2)] == [s.id for s in d.suspects]
    assert 'id = "' in d.rules_toml.split("# Or remap them:")[1]


def test_recycled_id_is_named_from_the_deletion_history() -> None:
    """invalidentrystate: an id this runner deleted earlier is in the recycle bin."""
    error = error_from_response(500, '"invalidentrystate"')
    known = known_of(person(1), deleted=[pid(5)])
    d = diagnose(error, changeset(person(1), person(5), person(6)), known=known)
    assert [pid(5)] == [s.id for s in d.suspects]
    assert d.narrowed


def test_gid_in_reserved_range_is_found_locally() -> None:
    """pl0001gidoverlapssystemrange: the entry with the reserved gid."""
    error = error_from_response(500, '"pl0001gidoverlapssystemrange"')
    bad = attrs.evolve(person(2), posix=PosixAccount(gidnumber=100))
    good = attrs.evolve(person(1), posix=PosixAccount(gidnumber=20001))
    d = diagnose(error, changeset(good, bad))
    assert [pid(2)] == [s.id for s in d.suspects]
    assert "gidnumber" in d.rules_toml


def test_totp_without_password_is_named() -> None:
    """Credimport about TOTP: the person with TOTP but no password."""
    from kanidm_sync import Totp

    error = error_from_response(
        500,
        '{"plugin":{"credimport":"totp_import can not be used if primary_credential '
        '(password) is missing"}}',
    )
    totp = Totp(external_id="t", secret="AAAAAAAAAAAAAAAAAAAAAAAAAAA=")
    d = diagnose(error, changeset(person(1), attrs.evolve(person(2), totp_import=[totp])))
    assert [pid(2)] == [s.id for s in d.suspects]
    assert "AAAA" not in d.to_text()


def test_referential_integrity_names_unknown_member_uuids() -> None:
    """A member UUID that is neither sent nor known is the cause."""
    from kanidm_sync import Group

    error = error_from_response(
        500, '{"plugin":{"referentialintegrity":"Uuid referenced not found in database"}}'
    )
    g = Group(id=uuid.uuid4(), external_id="cn=g", name="g", member=[str(pid(1)), str(pid(9))])
    d = diagnose(error, changeset(person(1), g), known=known_of(person(1)))
    assert [g.id] == [s.id for s in d.suspects]
    assert str(pid(9)) in d.suspects[0].reason


def test_access_denied_on_delete_names_foreign_ids() -> None:
    """403 with a Delete list: the ids the account does not hold."""
    error = error_from_response(403, '"accessdenied"')
    cs = changeset(retain=DeleteOnly([pid(1), pid(7)]))
    d = diagnose(error, cs, known=known_of(person(1)))
    assert [pid(7)] == [s.id for s in d.suspects]


def test_diagnosis_renders_to_text_and_json() -> None:
    """Text and JSON carry the summary and each suspect."""
    d = diagnose(UNIQUE_NAME, changeset(person(1, name="x"), person(2, name="x")))
    assert "user" not in d.summary
    text = d.to_text()
    assert str(pid(1)) in text
    assert "[exclude]" in text
    assert 2 == len(json.loads(d.to_json())["suspects"])


def test_ssh_key_error_lists_entries_with_keys() -> None:
    """sc0001incomingsshpublickey: the entries carrying SSH keys are the candidates."""
    from kanidm_sync import SshPublicKey

    error = error_from_response(500, '"sc0001incomingsshpublickey"')
    with_key = attrs.evolve(person(2), ssh_publickey=[SshPublicKey("laptop", "ssh-ed25519 AAAA")])
    d = diagnose(error, changeset(person(1), with_key))
    assert [pid(2)] == [s.id for s in d.suspects]
    assert 'path = "/ssh_publickey"' in d.rules_toml


def test_attribute_named_in_the_error_detail_picks_the_suspects() -> None:
    """An invalidattribute naming an attribute lists the entries that carry it."""
    error = error_from_response(
        400, '{"invalidattribute":"Unsupported attribute conversion - mail"}'
    )
    from kanidm_sync import Group

    g = Group(id=pid(9), external_id="cn=g", name="g")
    d = diagnose(error, changeset(person(1), g))
    assert [pid(1)] == [s.id for s in d.suspects]
    assert "mail" == d.suspects[0].attribute


def test_errors_that_are_not_about_data_have_no_suspects() -> None:
    """A server error names no entry and suggests no rule."""
    error = error_from_response(500, '"databaselockacquisitiontimeout"')
    d = diagnose(error, changeset(person(1)))
    assert () == d.suspects
    assert "" == d.rules_toml


def test_new_value_held_by_an_unchanged_entry_of_the_account_is_named() -> None:
    """A changed entry taking the name of an entry this run does not send is the suspect."""
    known = known_of(person(1), person(2))
    d = diagnose(UNIQUE_NAME, changeset(person(2, name="user1")), known=known)
    assert [pid(2)] == [s.id for s in d.suspects]
    assert str(pid(1)) in d.suspects[0].reason


def test_a_template_without_suspects_renders() -> None:
    """A hand-made diagnosis with a rule template and no suspect renders (no IndexError)."""
    from kanidm_sync import Diagnosis

    diagnosis = Diagnosis(
        error="attributeuniqueness",
        summary="a value is taken",
        rule_template="[exclude]\nids = []\n",
        narrowed=False,
    )
    assert "a value is taken" in diagnosis.to_text()
    assert "a value is taken" in diagnosis._repr_html_()
