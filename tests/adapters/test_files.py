"""File sources: CSV, JSON/JSONL and LDIF exports mapped to persons and groups."""

from __future__ import annotations

import base64
import pathlib
import re
import uuid

import pytest

from kanidm_sync import (
    REFRESH,
    ActiveState,
    ConfigError,
    Entry,
    Group,
    Mail,
    Person,
    PosixAccount,
    PosixGroup,
    SourceError,
)
from kanidm_sync.adapters import Delta, FullImage, SnapshotAdapter, SnapshotSource
from kanidm_sync.adapters.files import (
    EXTERNAL_ID_NAMESPACE,
    CsvSource,
    FieldMapping,
    JsonSource,
    LdifMapping,
    LdifSource,
    parse_ldif,
    uuid_for,
)

FILES = pathlib.Path(__file__).parents[1] / "fixtures" / "files"
ALICE_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGxhcHRvcGtleWxhcHRvcGtleWxhcHRvcGtleQ alice@laptop"
)


def by_name(entries: list[Entry]) -> dict[str, Entry]:
    return {e.name: e for e in entries}  # type: ignore[union-attr]


def write(tmp_path: pathlib.Path, name: str, text: str) -> pathlib.Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- helpers -----------------------------------------------------------------------------------


def test_uuid_for_is_stable_and_case_insensitive() -> None:
    """Derived UUIDs are uuid5 under the documented namespace, ignoring case."""
    assert uuid.uuid5(EXTERNAL_ID_NAMESPACE, "e1001") == uuid_for("E1001")
    assert uuid.UUID("33948611-92ec-58e0-8b9f-1a0a6d12c652") == EXTERNAL_ID_NAMESPACE
    assert uuid.uuid5(uuid.NAMESPACE_URL, "x:e1") == uuid_for("X:E1", namespace=uuid.NAMESPACE_URL)


def test_sources_are_snapshot_sources() -> None:
    """All three file sources satisfy the SnapshotSource protocol."""
    for source in (CsvSource("a.csv"), JsonSource("a.json"), LdifSource("a.ldif")):
        assert isinstance(source, SnapshotSource)


# --- CSV ---------------------------------------------------------------------------------------


def test_csv_default_mapping() -> None:
    """Columns named after fields map directly; kinds, ids, multi-values and POSIX facets."""
    entries = by_name(CsvSource(FILES / "people.csv").snapshot())
    alice = Person(
        id=uuid_for("E1001"),
        external_id="E1001",
        name="alice",
        displayname="Alice Liddell",
        mail=[Mail("alice@example.org"), Mail("a.liddell@example.org")],
        ssh_publickey=entries["alice"].ssh_publickey,  # type: ignore[union-attr]
        posix=PosixAccount(gidnumber=20001, loginshell="/bin/bash"),
    )
    assert alice == entries["alice"]
    (key,) = alice.ssh_publickey
    assert ALICE_KEY == key.value
    assert re.fullmatch(r"sshpublickey-[0-9a-f]{8}", key.label)
    bob = entries["bob"]
    assert uuid.UUID("7d5f3a9e-2b1c-4d8e-9f0a-1b2c3d4e5f60") == bob.id
    assert "Builder, Bob" == bob.displayname  # type: ignore[union-attr]
    assert bob.posix is None  # type: ignore[union-attr]
    staff = Group(
        id=uuid_for("T1"),
        external_id="T1",
        name="staff",
        description="All staff",
        mail=[Mail("staff@example.org")],
        member=["E1001", "E1002"],
        posix=PosixGroup(gidnumber=20100),
    )
    assert staff == entries["staff"]


def test_csv_custom_mapping() -> None:
    """A mapping renames columns, kind values, the delimiter and the member separator."""
    mapping = FieldMapping(
        fields={
            "external_id": "EmployeeNo",
            "name": "Login",
            "displayname": "Full Name",
            "mail": "E-Mail",
            "member": "Teams",
        },
        kind_field="Type",
        separator=",",
    )
    entries = by_name(CsvSource(FILES / "hr-export.csv", mapping, delimiter=";").snapshot())
    assert {"alice", "bob", "staff"} == set(entries)
    assert ("E1001", "E1002") == entries["staff"].member  # type: ignore[union-attr]
    assert uuid_for("E1002") == entries["bob"].id


def test_csv_default_kind(tmp_path: pathlib.Path) -> None:
    """A file of one kind needs no kind column."""
    path = write(tmp_path, "groups.csv", "external_id,name\ncn=a,a\n")
    (entry,) = CsvSource(path, FieldMapping(default_kind="group")).snapshot()
    assert isinstance(entry, Group)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "kind,external_id,name\nperson,E1,alice\n",
            r":2: entry 'E1': field 'displayname': missing",
        ),
        (
            "kind,external_id,name,displayname\nperson,E1,,Alice\n",
            r":2: entry 'E1': field 'name': missing",
        ),
        ("kind,name,displayname\nperson,alice,Alice\n", r":2: field 'external_id': missing"),
        (
            "kind,external_id,name,displayname,gidnumber\nperson,E1,a,A,12x\n",
            r":2: entry 'E1': field 'gidnumber': '12x' is not an integer",
        ),
        (
            "kind,external_id,name,displayname,id\n\nperson,E1,a,A,nope\n",
            r":3: entry 'E1': field 'id': 'nope' is not a UUID",
        ),
        (
            "kind,external_id,name\nrobot,E1,a\n",
            r":2: entry 'E1': field 'kind': 'robot' is not a kind",
        ),
        ("kind,external_id,name\nperson,E1\n", r":2: 2 values for 3 columns"),
        ("external_id,name\nE1,a\n", r":1: no column 'kind'"),
        ("kind,name,name\n", r":1: column 'name' appears twice"),
        ('kind,external_id,name\nperson,"E1,a\n', r":\d+: unexpected end of data"),
    ],
)
def test_csv_errors_name_line_and_field(tmp_path: pathlib.Path, text: str, message: str) -> None:
    """Every CSV error names the file, the line and the field."""
    path = write(tmp_path, "people.csv", text)
    with pytest.raises(SourceError, match=r"people\.csv" + message):
        CsvSource(path).snapshot()


def test_csv_mapped_column_missing_from_header(tmp_path: pathlib.Path) -> None:
    """A column named in the mapping must exist: the error names column and field."""
    path = write(tmp_path, "people.csv", "kind,external_id,name,displayname\n")
    mapping = FieldMapping(fields={"mail": "Email"})
    with pytest.raises(SourceError, match=r":1: column 'Email' \(mapped to field 'mail'\)"):
        CsvSource(path, mapping).snapshot()


def test_csv_mapped_field_error_names_column(tmp_path: pathlib.Path) -> None:
    """An error on a renamed field names both the field and its column."""
    path = write(tmp_path, "p.csv", "kind,ext,login,cn\nperson,E1,alice,\n")
    mapping = FieldMapping(fields={"external_id": "ext", "name": "login", "displayname": "cn"})
    with pytest.raises(
        SourceError, match=r"p\.csv:2: entry 'E1': field 'displayname' \(column 'cn'\)"
    ):
        CsvSource(path, mapping).snapshot()


def test_csv_secret_value_not_in_error(tmp_path: pathlib.Path) -> None:
    """An error about a secret field never quotes the secret."""
    path = write(
        tmp_path,
        "p.json",
        '[{"kind": "person", "external_id": "E1", "name": "a", "displayname": "A",'
        ' "password_import": ["{SSHA}c2VjcmV0"]}]',
    )
    with pytest.raises(SourceError) as info:
        JsonSource(path).snapshot()
    assert "c2VjcmV0" not in str(info.value)
    assert "field 'password_import'" in str(info.value)


def test_csv_missing_file() -> None:
    """A missing file is a SourceError naming it."""
    with pytest.raises(SourceError, match=r"absent\.csv: cannot read"):
        CsvSource(FILES / "absent.csv").snapshot()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fields": {"e-mail": "x"}}, "unknown entry field 'e-mail'"),
        ({"separator": ""}, "separator must not be empty"),
        ({"default_kind": "robot"}, "default_kind"),
        ({"person_values": frozenset({"x"}), "group_values": frozenset({"x"})}, "both"),
    ],
)
def test_bad_mapping_is_config_error(kwargs: dict[str, object], message: str) -> None:
    """A wrong FieldMapping is a ConfigError naming what is wrong."""
    with pytest.raises(ConfigError, match=re.escape(message)):
        FieldMapping(**kwargs)  # type: ignore[arg-type]


# --- JSON --------------------------------------------------------------------------------------


def test_jsonl_and_json_array() -> None:
    """JSON Lines and a JSON array map the same way; strings and lists both work."""
    lines = by_name(JsonSource(FILES / "people.jsonl").snapshot())
    array = by_name(JsonSource(FILES / "people.json").snapshot())
    assert (Mail("alice@example.org"),) == lines["alice"].mail  # type: ignore[union-attr]
    assert PosixAccount(gidnumber=20001) == lines["alice"].posix  # type: ignore[union-attr]
    assert ("E1001",) == lines["staff"].member == array["staff"].member  # type: ignore[union-attr]
    assert PosixGroup(gidnumber=20100) == array["staff"].posix  # type: ignore[union-attr]
    assert array["alice"].id == lines["alice"].id == uuid_for("E1001")


@pytest.mark.parametrize(
    ("name", "text", "lines", "message"),
    [
        ("p.jsonl", '{"kind": "group"}\n{oops\n', None, r"p\.jsonl:1: field 'external_id'"),
        (
            "p.jsonl",
            '{"kind": "group", "external_id": "g", "name": "g"}\n{oops\n',
            None,
            r":2: not JSON",
        ),
        ("p.jsonl", "[1]\n", None, r":1: expected an object"),
        ("p.json", '[\n {"kind": "group",\n  "x": }\n]', None, r"p\.json:3: not JSON"),
        ("p.json", '{"kind": "group"}', None, r"expected a JSON array"),
        (
            "p.json",
            '[{"kind": "group", "external_id": "g", "name": "g"}, {"kind": "group",'
            ' "external_id": "h", "name": 5}]',
            None,
            r"record \[1\]: entry 'h': field 'name': expected a string, not a number",
        ),
        (
            "p.txt",
            '{"kind": "group", "external_id": "g", "name": "g", "member": [1]}\n',
            True,
            r"p\.txt:1: entry 'g': field 'member': item 0 is a number",
        ),
    ],
)
def test_json_errors_name_record_and_field(
    tmp_path: pathlib.Path, name: str, text: str, lines: bool | None, message: str
) -> None:
    """JSON errors name the file, the line or record, and the field."""
    path = write(tmp_path, name, text)
    with pytest.raises(SourceError, match=message):
        JsonSource(path, lines=lines).snapshot()


# --- LDIF parsing ------------------------------------------------------------------------------


def test_parse_ldif_folding_base64_comments() -> None:
    """Folded lines, base64 values, comments and the version line are all understood."""
    records = parse_ldif((FILES / "directory.ldif").read_bytes(), where="d.ldif")
    dns = [r.dn for r in records]
    assert "uid=bob,ou=people,dc=example,dc=org" in dns  # a folded dn
    assert "uid=chloé,ou=people,dc=example,dc=org" in dns  # a base64 dn
    alice = next(r for r in records if r.dn.startswith("uid=alice"))
    assert ("Alice Liddell-Ærø".encode(),) == alice.attributes["displayname"]
    assert (b"{SSHA}b2xkLWhhc2gtc2FsdA==",) == alice.attributes["userpassword"]
    assert (ALICE_KEY.encode(),) == alice.attributes["sshpublickey"]  # folded value
    bob = next(r for r in records if r.dn.startswith("uid=bob"))
    assert (base64.b64decode("/9j/4AAQSkZJRgABAQ=="),) == bob.attributes["jpegphoto"]
    assert 15 == alice.line


def test_parse_ldif_crlf() -> None:
    """CRLF line endings parse the same as LF."""
    data = (FILES / "directory.ldif").read_bytes()
    assert parse_ldif(data) == parse_ldif(data.replace(b"\n", b"\r\n"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("dn: cn=a\njpegPhoto:< file:///etc/passwd\n", r"x\.ldif:2: attribute 'jpegPhoto': URL"),
        (
            "dn: cn=a\ncn:: not*base64\n",
            r"x\.ldif:2: attribute 'cn': the value is not valid base64",
        ),
        ("dn: cn=a\nchangetype: modify\nreplace: cn\n", r"x\.ldif:2: 'cn=a': change records"),
        ("dn: cn=a\nchangetype: delete\n", r"changetype: delete"),
        ("dn: cn=a\ncn: a\nchangetype: add\n", r"x\.ldif:3: 'cn=a': change records"),
        ("dn: cn=a\ncontrol: 1.2.3\n", r"'control:' belongs to change records"),
        ("cn: a\n", r"x\.ldif:1: a record must start with 'dn:'"),
        ("version: 2\n\ndn: cn=a\n", r"x\.ldif:1: only LDIF version 1"),
        ("dn: cn=a\nno colon here\n", r"x\.ldif:2: expected 'attribute: value'"),
    ],
)
def test_parse_ldif_errors(text: str, message: str) -> None:
    """LDIF errors name the file and the line; URLs and change records are refused."""
    with pytest.raises(SourceError, match=message):
        parse_ldif(text.encode(), where="x.ldif")


def test_parse_ldif_invalid_utf8() -> None:
    """A plain value that is not UTF-8 is refused with its line."""
    with pytest.raises(SourceError, match=r"x\.ldif:2: not valid UTF-8"):
        parse_ldif(b"dn: cn=a\ncn: \xff\n", where="x.ldif")


# --- LDIF mapping ------------------------------------------------------------------------------


def test_ldif_source_maps_persons_and_groups() -> None:
    """The objectClass decides the kind; ids, names, facets and members follow the mapping."""
    entries = by_name(LdifSource(FILES / "directory.ldif").snapshot())
    assert {"alice", "bob", "chloe", "staff", "developers"} == set(entries)
    alice = entries["alice"]
    assert isinstance(alice, Person)
    assert uuid.UUID("9a7c1f52-4c7d-4b0e-8a43-1e4f6f1c2d10") == alice.id  # entryUUID
    assert "Alice Liddell-Ærø" == alice.displayname  # displayName wins over cn
    assert "{SSHA}b2xkLWhhc2gtc2FsdA==" == alice.password_import
    assert PosixAccount(gidnumber=20001, loginshell="/bin/bash") == alice.posix
    assert (ALICE_KEY,) == tuple(k.value for k in alice.ssh_publickey)
    bob = entries["bob"]
    assert uuid.UUID("ac60034b-3498-11ed-8f6e-a5b10e4f6f1c") == bob.id  # nsUniqueId regrouped
    assert ("Bob Builder", None) == (bob.displayname, bob.posix)  # type: ignore[union-attr]
    chloe = entries["chloe"]
    chloe_dn = "uid=chloé,ou=people,dc=example,dc=org"
    assert uuid_for(chloe_dn) == chloe.id  # derived from the dn
    assert chloe_dn == chloe.external_id
    staff = entries["staff"]
    assert isinstance(staff, Group)
    assert (
        "uid=alice,ou=people,dc=example,dc=org",  # spaces around ',' removed
        "UID=Bob,ou=people,dc=example,dc=org",
    ) == staff.member
    assert ("All staff", None) == (staff.description, staff.posix)
    developers = entries["developers"]
    assert isinstance(developers, Group)
    # memberUid resolved to the dn of the person with that uid; "ghost" dropped.
    assert ("uid=alice,ou=people,dc=example,dc=org", chloe_dn) == developers.member
    assert PosixGroup(gidnumber=20100) == developers.posix


def test_ldif_mapping_options(tmp_path: pathlib.Path) -> None:
    """The mapping can skip passwords and read other attributes (names are lower-cased)."""
    path = write(
        tmp_path,
        "d.ldif",
        "dn: uid=a,dc=x\nobjectClass: account\nobjectClass: posixAccount\n"
        "uid: a\ngecos: Person A\nuserPassword: {CRYPT}x\n",
    )
    mapping = LdifMapping(person_displayname=("GECOS",), person_password=None)
    (entry,) = LdifSource(path, mapping).snapshot()
    assert isinstance(entry, Person)
    assert ("Person A", None) == (entry.displayname, entry.password_import)


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ("objectClass: person\ncn: A\n", r"d\.ldif:1: 'uid=a,dc=x': attribute 'uid': missing"),
        ("objectClass: person\nuid: a\nuid: b\ncn: A\n", r"attribute 'uid': 2 values"),
        ("objectClass: person\nuid: a\n", r"attribute 'displayname': missing"),
        ("objectClass: posixAccount\nuid: a\ncn: A\nuidNumber: x1\n", r"'uidnumber': 'x1' is not"),
        ("objectClass: person\nuid: a\ncn: A\nentryUUID: zz\n", r"'entryuuid': 'zz' is not a UUID"),
        ("objectClass: person\nuid:: /w==\ncn: A\n", r"attribute 'uid': a value is not UTF-8"),
        (
            "objectClass: person\nuid: a\ncn: A\nuserPassword: x\nuserPassword: y\n",
            r"attribute 'userpassword': 2 values",
        ),
    ],
)
def test_ldif_mapping_errors_name_dn_and_attribute(
    tmp_path: pathlib.Path, record: str, message: str
) -> None:
    """Mapping errors name the file, line, dn and attribute."""
    path = write(tmp_path, "d.ldif", "dn: uid=a,dc=x\n" + record)
    with pytest.raises(SourceError, match=message):
        LdifSource(path).snapshot()


# --- with the snapshot adapter -----------------------------------------------------------------


def test_csv_through_snapshot_adapter(tmp_path: pathlib.Path) -> None:
    """A CSV source wrapped in SnapshotAdapter sends a full image, then only the change."""
    csv_path = write(tmp_path, "p.csv", (FILES / "people.csv").read_text(encoding="utf-8"))
    adapter = SnapshotAdapter(CsvSource(csv_path), tmp_path / "store.json")
    first = adapter.fetch(REFRESH)
    assert isinstance(first, FullImage)
    assert 3 == len(first.entries)
    csv_path.write_text(
        csv_path.read_text(encoding="utf-8").replace("Alice Liddell", "Alice L."),
        encoding="utf-8",
    )
    batch = adapter.fetch(ActiveState(first.cookie))
    assert isinstance(batch, Delta)
    assert ["alice"] == [e.name for e in batch.entries]  # type: ignore[union-attr]
    assert () == batch.deleted


def test_csv_cells_are_stripped(tmp_path: pathlib.Path) -> None:
    """Padded cells lose their spaces; a cell of spaces is absent."""
    path = write(
        tmp_path,
        "p.csv",
        "kind,external_id,name,displayname,legalname,mail\n"
        "person, E1 , alice ,Alice A. ,   , a@x.org | b@x.org \n",
    )
    (entry,) = CsvSource(path).snapshot()
    assert isinstance(entry, Person)
    assert ("E1", "alice", "Alice A.", None) == (
        entry.external_id,
        entry.name,
        entry.displayname,
        entry.legalname,
    )
    assert (Mail("a@x.org"), Mail("b@x.org")) == entry.mail
