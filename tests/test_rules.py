"""Rules: exclusion and remapping of persons and groups, in entries, deletions and members."""

from __future__ import annotations

import pathlib
import re
import uuid

import attrs
import pytest

from kanidm_sync import (
    ConfigError,
    Entry,
    GenericEntry,
    Group,
    Mail,
    Person,
    PosixAccount,
    PosixGroup,
    Remap,
    Rules,
    SchemaUrn,
)
from kanidm_sync.adapters import Delta, FullImage, RefreshRequired

DOCS = pathlib.Path(__file__).parents[1] / "docs"

ALICE = uuid.UUID("9a7c1f52-4c7d-4b0e-8a43-1e4f6f1c2d10")
ALICE_NEW = uuid.UUID("5d3e6f70-1a2b-4c3d-8e4f-506172839405")
LEGACY = uuid.UUID("0c2b5e6a-7f3e-4d5b-9c1a-2b3c4d5e6f70")
CAROL = uuid.UUID("1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9")
STAFF = uuid.UUID("6b8d6f2e-0a8e-4c1f-9d62-6f7a2b1c0d3e")
BOB = uuid.UUID("2a3b4c5d-6e7f-4a8b-9c0d-1e2f3a4b5c6d")
COOKIE = b"c1"


def person(entry_id: uuid.UUID, name: str, **kwargs: object) -> Person:
    return Person(
        id=entry_id,
        external_id=f"uid={name},ou=people,dc=example,dc=org",
        name=name,
        displayname=name.title(),
        **kwargs,  # type: ignore[arg-type]
    )


def group(entry_id: uuid.UUID, name: str, members: list[str], **kwargs: object) -> Group:
    return Group(
        id=entry_id,
        external_id=f"cn={name},ou=groups,dc=example,dc=org",
        name=name,
        member=members,
        **kwargs,  # type: ignore[arg-type]
    )


def by_id(entries: tuple[Entry, ...]) -> dict[uuid.UUID, Entry]:
    return {e.id: e for e in entries}


def full(*entries: Entry) -> FullImage:
    return FullImage(entries=entries, cookie=COOKIE)


def docs_rules() -> Rules:
    text = (DOCS / "rules.md").read_text(encoding="utf-8")
    block = re.findall(r"```toml\n(.*?)```", text, flags=re.S)[0]
    return Rules.from_toml(block, source="docs/rules.md")


# --- the documented example -------------------------------------------------------------------


def test_docs_example() -> None:
    """The TOML example of docs/rules.md loads and does what the page says."""
    rules = docs_rules()
    legacy = person(LEGACY, "legacy")
    alice = person(ALICE, "alice", mail=[Mail("alice@example.org")])
    carol = person(CAROL, "carol")
    svc = person(uuid.uuid4(), "svc-backup")
    staff = group(
        STAFF,
        "staff",
        [str(ALICE), "uid=legacy,ou=people,dc=example,dc=org", carol.external_id or ""],
    )
    meta = group(uuid.uuid4(), "meta", ["CN=Staff,OU=Groups,DC=example,DC=org"])
    result = rules.apply(full(legacy, alice, carol, svc, staff, meta))
    assert isinstance(result, FullImage)
    out = by_id(result.entries)
    assert {ALICE_NEW, CAROL, STAFF, meta.id} == set(out)
    new_alice = out[ALICE_NEW]
    assert isinstance(new_alice, Person)
    assert ("alice-ldap", "Alice (from LDAP)") == (new_alice.name, new_alice.displayname)
    assert (Mail("alice@example.org"),) == new_alice.mail
    new_carol = out[CAROL]
    assert isinstance(new_carol, Person)
    assert ("carol2", PosixAccount(gidnumber=20003)) == (new_carol.name, new_carol.posix)
    new_staff = out[STAFF]
    assert isinstance(new_staff, Group)
    assert "cn=staff-ldap,ou=groups,dc=example,dc=org" == new_staff.external_id
    assert PosixGroup(gidnumber=20200) == new_staff.posix
    # The UUID member follows alice's remap; the excluded legacy member is dropped.
    assert (str(ALICE_NEW), carol.external_id) == new_staff.member
    # A member naming staff's old external id (in any case) follows its new one.
    assert ("cn=staff-ldap,ou=groups,dc=example,dc=org",) == out[meta.id].member  # type: ignore[union-attr]


# --- exclusion ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rules",
    [
        Rules(exclude_ids=[BOB]),
        Rules(exclude_external_ids=["UID=BOB,OU=PEOPLE,DC=EXAMPLE,DC=ORG"]),
        Rules(exclude_names=["b?b"]),
        Rules(exclude_if=[lambda e: e.external_id is not None and "bob" in e.external_id]),
    ],
    ids=["id", "external_id", "name", "predicate"],
)
def test_exclude_person(rules: Rules) -> None:
    """Each exclusion kind drops a person and its membership."""
    bob, alice = person(BOB, "bob"), person(ALICE, "alice")
    staff = group(STAFF, "staff", [bob.external_id or "", str(ALICE)])
    result = rules.apply(full(bob, alice, staff))
    assert isinstance(result, FullImage)
    out = by_id(result.entries)
    assert {ALICE, STAFF} == set(out)
    assert (str(ALICE),) == out[STAFF].member  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "rules",
    [
        Rules(exclude_ids=[STAFF]),
        Rules(exclude_external_ids=["cn=staff,ou=groups,dc=example,dc=org"]),
        Rules(exclude_names=["STA*"]),
        Rules(exclude_if=[lambda e: isinstance(e, Group)]),
    ],
    ids=["id", "external_id", "name", "predicate"],
)
def test_exclude_group(rules: Rules) -> None:
    """Each exclusion kind drops a group, and its id from deleted and present lists."""
    staff = group(STAFF, "staff", [])
    alice = person(ALICE, "alice")
    delta = Delta(entries=[staff, alice], deleted=[STAFF], present=[STAFF, ALICE], cookie=COOKIE)
    result = rules.apply(delta)
    assert Delta(entries=[alice], deleted=[], present=[ALICE], cookie=COOKIE) == result


def test_excluded_id_dropped_from_deleted_without_entry() -> None:
    """An id excluded by uuid is never sent for deletion (it may belong to a native entry)."""
    result = Rules(exclude_ids=[LEGACY]).apply(
        Delta(deleted=[LEGACY, BOB], present=[LEGACY, ALICE], cookie=COOKIE)
    )
    assert Delta(deleted=[BOB], present=[ALICE], cookie=COOKIE) == result


def test_predicate_error_names_entry() -> None:
    """A predicate that raises becomes a ConfigError naming the entry."""

    def broken(entry: Entry) -> bool:
        raise KeyError("boom")

    with pytest.raises(ConfigError, match=f"broken raised KeyError on entry {BOB}"):
        Rules(exclude_if=[broken]).apply(full(person(BOB, "bob")))


# --- remapping ---------------------------------------------------------------------------------


def test_remap_uuid_person_translates_deleted_present_and_members() -> None:
    """A person's new UUID is used in entries, deleted and present lists, and UUID members."""
    rules = Rules(remap_ids={ALICE: Remap(id=ALICE_NEW)})
    staff = group(STAFF, "staff", [str(ALICE).upper(), "uid=alice,ou=people,dc=example,dc=org"])
    delta = Delta(
        entries=[person(ALICE, "alice"), staff], deleted=[ALICE], present=[ALICE], cookie=COOKIE
    )
    result = rules.apply(delta)
    assert isinstance(result, Delta)
    out = by_id(result.entries)
    assert {ALICE_NEW, STAFF} == set(out)
    # The external-id member stays valid: the remapped entry keeps its external id.
    assert (str(ALICE_NEW), "uid=alice,ou=people,dc=example,dc=org") == out[STAFF].member  # type: ignore[union-attr]
    assert ((ALICE_NEW,), (ALICE_NEW,)) == (result.deleted, result.present)
    assert ALICE_NEW == rules.translate_id(ALICE)
    assert BOB == rules.translate_id(BOB)


def test_remap_uuid_group() -> None:
    """A group's UUID is remapped, in entries and in nested-group UUID members."""
    new = uuid.uuid4()
    rules = Rules(remap_ids={STAFF: Remap(id=new)})
    parent = group(uuid.uuid4(), "all", [str(STAFF)])
    result = rules.apply(full(group(STAFF, "staff", []), parent))
    out = by_id(result.entries)  # type: ignore[union-attr]
    assert {new, parent.id} == set(out)
    assert (str(new),) == out[parent.id].member  # type: ignore[union-attr]


@pytest.mark.parametrize("kind", ["person", "group"])
def test_remap_name_and_gidnumber(kind: str) -> None:
    """Name and gidnumber remaps work for persons and groups, adding the POSIX facet."""
    entry: Entry = person(BOB, "bob") if kind == "person" else group(BOB, "bob", [])
    rules = Rules(remap_ids={BOB: Remap(name="bob2", gidnumber=30001)})
    (out,) = rules.apply(full(entry)).entries  # type: ignore[union-attr]
    assert "bob2" == out.name  # type: ignore[union-attr]
    expected_facet = (
        PosixAccount(gidnumber=30001) if kind == "person" else PosixGroup(gidnumber=30001)
    )
    assert expected_facet == out.posix  # type: ignore[union-attr]
    assert type(entry) is type(out)


def test_remap_gidnumber_keeps_other_posix_fields() -> None:
    """Replacing a gidnumber keeps the login shell of the POSIX facet."""
    bob = person(BOB, "bob", posix=PosixAccount(gidnumber=1000, loginshell="/bin/zsh"))
    rules = Rules(remap_ids={BOB: Remap(gidnumber=30001)})
    (out,) = rules.apply(full(bob)).entries  # type: ignore[union-attr]
    assert PosixAccount(gidnumber=30001, loginshell="/bin/zsh") == out.posix  # type: ignore[union-attr]


@pytest.mark.parametrize("kind", ["person", "group"])
def test_remap_patch_any_attribute(kind: str) -> None:
    """JSON Patch edits any attribute, for persons and groups."""
    mails = [Mail("a@example.org"), Mail("b@example.org")]
    entry: Entry = (
        person(BOB, "bob", mail=mails) if kind == "person" else group(BOB, "bob", [], mail=mails)
    )
    rules = Rules(
        remap_external_ids={
            entry.external_id or "": Remap(
                patch=[
                    {"op": "remove", "path": "/mail/0"},
                    {"op": "add", "path": "/mail/-", "value": {"value": "c@example.org"}},
                ]
            )
        }
    )
    (out,) = rules.apply(full(entry)).entries  # type: ignore[union-attr]
    assert (Mail("b@example.org"), Mail("c@example.org")) == out.mail  # type: ignore[union-attr]


def test_remap_external_id_rewrites_members() -> None:
    """A new external id is given to the entry and to every member naming the old one."""
    old = "uid=bob,ou=people,dc=example,dc=org"
    rules = Rules(
        remap_external_ids={old: Remap(external_id="uid=bob2,ou=people,dc=example,dc=org")}
    )
    staff = group(STAFF, "staff", [old.upper()])
    # The person is not in this batch: a group change alone must still follow the remap.
    result = rules.apply(Delta(entries=[staff], cookie=COOKIE))
    (out,) = result.entries  # type: ignore[union-attr]
    assert ("uid=bob2,ou=people,dc=example,dc=org",) == out.member  # type: ignore[union-attr]
    (moved,) = rules.apply(full(person(BOB, "bob"))).entries  # type: ignore[union-attr]
    assert "uid=bob2,ou=people,dc=example,dc=org" == moved.external_id


def test_generic_entry_members_follow() -> None:
    """Members of a GenericEntry group (raw wire form) follow remaps and exclusions too."""
    generic = GenericEntry(
        id=STAFF,
        external_id="cn=g",
        schemas=[SchemaUrn.GROUP],
        attributes={
            "name": "g",
            "member": [{"external_id": str(ALICE)}, {"external_id": str(LEGACY)}],
        },
    )
    rules = Rules(exclude_ids=[LEGACY], remap_ids={ALICE: Remap(id=ALICE_NEW)})
    (out,) = rules.apply(full(generic)).entries  # type: ignore[union-attr]
    assert [{"external_id": str(ALICE_NEW)}] == out.attributes["member"]  # type: ignore[union-attr]


def test_remap_collision_is_config_error() -> None:
    """Two entries ending with one id is refused, naming both."""
    rules = Rules(remap_ids={ALICE: Remap(id=BOB)})
    with pytest.raises(ConfigError, match="share the id"):
        rules.apply(full(person(ALICE, "alice"), person(BOB, "bob")))


def test_patch_failure_names_rule_and_entry() -> None:
    """A patch whose path does not exist fails as ConfigError naming the table and entry."""
    rules = Rules(
        remap_ids={BOB: Remap(patch=[{"op": "replace", "path": "/legalname", "value": "x"}])}
    )
    with pytest.raises(ConfigError, match=rf'remap.id."{BOB}": patch\[0\] failed on entry {BOB}'):
        rules.apply(full(person(BOB, "bob")))


def test_patch_that_breaks_the_entry_is_config_error() -> None:
    """A patch removing a required value is refused with the decode problem."""
    rules = Rules(remap_ids={BOB: Remap(patch=[{"op": "remove", "path": "/displayname"}])})
    with pytest.raises(ConfigError, match="not a valid entry"):
        rules.apply(full(person(BOB, "bob")))


def test_gidnumber_on_entry_without_account_or_group() -> None:
    """A gidnumber remap on an entry that is neither account nor group is refused."""
    odd = GenericEntry(id=BOB, external_id="x", schemas=[], attributes={})
    with pytest.raises(ConfigError, match="neither"):
        Rules(remap_ids={BOB: Remap(gidnumber=30000)}).apply(full(odd))


def test_both_remap_tables_matching_is_config_error() -> None:
    """An entry matched by uuid and external id tables must be merged by the operator."""
    bob = person(BOB, "bob")
    rules = Rules(
        remap_ids={BOB: Remap(name="a")},
        remap_external_ids={bob.external_id or "": Remap(name="b")},
    )
    with pytest.raises(ConfigError, match="merge them"):
        rules.apply(full(bob))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Rules(remap_ids={BOB: Remap(external_id="x")}), "remap.external_id table"),
        (lambda: Rules(remap_external_ids={"x": Remap(id=BOB)}), "remap.id table"),
        (
            lambda: Rules(remap_ids={BOB: Remap(id=ALICE), CAROL: Remap(id=ALICE)}),
            "also the new id",
        ),
        (lambda: Remap(patch=[{"op": "replace", "path": "/id", "value": "x"}]), "identity"),
        (lambda: Remap(patch=[{"op": "move", "from": "/externalId", "path": "/x"}]), "identity"),
        (lambda: Remap(patch=[{"op": "frobnicate", "path": "/x"}]), "'op' must be one of"),
        (lambda: Remap(patch=[{"op": "add", "path": "/x"}]), "needs a 'value'"),
        (lambda: Remap(gidnumber=-1), "gidnumber"),
    ],
)
def test_invalid_rules_in_code(build: object, message: str) -> None:
    """Rules that could not work are refused when built."""
    with pytest.raises(ConfigError, match=re.escape(message)):
        build()  # type: ignore[operator]


def test_refresh_required_and_empty_rules_pass_through() -> None:
    """RefreshRequired is untouched, and empty rules return the batch itself."""
    refresh = RefreshRequired("syncrepl")
    batch = full(person(BOB, "bob"))
    assert refresh is docs_rules().apply(refresh)
    assert batch is Rules().apply(batch)


def test_fingerprint_tracks_rules() -> None:
    """Equal rules share a fingerprint; any change alters it."""
    a = Rules(exclude_names=["svc-*"], remap_ids={BOB: Remap(name="b")})
    b = Rules(exclude_names=["svc-*"], remap_ids={BOB: Remap(name="b")})
    c = Rules(exclude_names=["svc-*"], remap_ids={BOB: Remap(name="c")})
    assert a.fingerprint == b.fingerprint
    assert a.fingerprint != c.fingerprint
    assert Rules().fingerprint != a.fingerprint


# --- TOML --------------------------------------------------------------------------------------


def test_kanidm_ldap_sync_top_level_tables() -> None:
    """kanidm-ldap-sync's top-level UUID tables are read as entry_map."""
    rules = Rules.from_toml(
        f'["{BOB}"]\nexclude = true\n\n["{ALICE}"]\nmap_uuid = "{ALICE_NEW}"\nmap_name = "a2"\n'
    )
    assert frozenset({BOB}) == rules.exclude_ids
    assert Remap(id=ALICE_NEW, name="a2") == rules.remap_ids[ALICE]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sync_token = 'x'\n", "top level: unknown key 'sync_token'"),
        ("[exclude]\nuuids = []\n", "[exclude]: unknown key 'uuids'"),
        (f'[remap.id."{BOB}"]\nmap_name = "x"\n', f"[remap.id.\"{BOB}\"]: unknown key 'map_name'"),
        ('[remap.external_id."cn=x"]\nid = "x"\n', "unknown key 'id'"),
        ("[remap.uuid]\n", "[remap]: unknown key 'uuid'"),
        (f'[entry_map."{BOB}"]\nmap_gid = 5\n', f"[entry_map.\"{BOB}\"]: unknown key 'map_gid'"),
        ('[entry_map."not-a-uuid"]\nexclude = true\n', "the table name' is not a UUID"),
        ("[exclude]\nids = ['nope']\n", "'ids[0]' is not a UUID"),
        ("[exclude]\nnames = 'svc-*'\n", "'names' must be a list"),
        (f'[remap.id."{BOB}"]\ngidnumber = "5"\n', "'gidnumber' must be an integer"),
        (f'[remap.id."{BOB}"]\npatch = [{{op = "replace", path = "/x"}}]\n', "needs a 'value'"),
        (
            f'[remap.id."{BOB}"]\npatch = [{{op = "add", path = "/x", value = 1979-05-27}}]\n',
            "not JSON",
        ),
        (f'[entry_map."{BOB}"]\nexclude = "yes"\n', "'exclude' must be true or false"),
        ("[exclude\n", "not valid TOML"),
    ],
)
def test_toml_errors_name_table_and_key(text: str, message: str) -> None:
    """Unknown keys and bad values are refused, naming the table and the key."""
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        Rules.from_toml(text, source="rules.toml")
    assert str(info.value).startswith("rules.toml: ")


def test_load_file(tmp_path: pathlib.Path) -> None:
    """Rules.load reads a file; a missing file is a ConfigError naming it."""
    path = tmp_path / "rules.toml"
    path.write_text('[exclude]\nnames = ["svc-*"]\n', encoding="utf-8")
    assert ("svc-*",) == Rules.load(path).exclude_names
    with pytest.raises(ConfigError, match=r"nope\.toml"):
        Rules.load(tmp_path / "nope.toml")


def test_rules_are_frozen() -> None:
    """Rules are immutable values; evolve adds a predicate."""
    rules = Rules(exclude_names=["a"])
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        rules.exclude_names = ()  # type: ignore[misc]
    evolved = attrs.evolve(rules, exclude_if=(lambda e: True,))
    assert [] == list(evolved.apply(full(person(BOB, "bob"))).entries)  # type: ignore[union-attr]


def test_excluded_and_remapped_entry_is_refused() -> None:
    """Pasting both suggested alternatives for one entry is a ConfigError naming it."""
    uid = "6db058b5-e4ea-5baa-83b0-1981e2f97783"
    text = f'[exclude]\nids = ["{uid}"]\n\n[remap.id."{uid}"]\nname = "rlopez-sync"\n'
    with pytest.raises(ConfigError, match=f"{uid} is both excluded") as info:
        Rules.from_toml(text)
    assert "keep one" in str(info.value)
    ext = '[exclude]\nexternal_ids = ["UID=Bob"]\n\n[remap.external_id."uid=bob"]\nname = "b"\n'
    with pytest.raises(ConfigError, match="'uid=bob' is both excluded"):
        Rules.from_toml(ext)


def test_deeply_nested_rules_are_a_config_error_naming_the_source() -> None:
    """A hostile nesting is a ConfigError naming the file, not a RecursionError.

    Arrays nest in tomllib's recursion; table headers nest without limit and reach the
    patch check as a deep value.
    """
    arrays = "[exclude]\nnames = " + "[" * 3000 + "]" * 3000 + "\n"
    with pytest.raises(ConfigError, match=r"^rules\.toml: not valid TOML: .*nested too deeply"):
        Rules.from_toml(arrays, source="rules.toml")
    header = ".".join(["v"] * 3000)
    tables = (
        f'[[remap.id."{BOB}".patch]]\nop = "add"\npath = "/displayname"\n'
        f'[remap.id."{BOB}".patch.value.{header}]\nx = 1\n'
    )
    with pytest.raises(ConfigError, match=r"^rules\.toml: a value is nested too deeply$"):
        Rules.from_toml(tables, source="rules.toml")
