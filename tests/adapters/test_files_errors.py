"""File sources, hardened (issue 12).

Every bad record at once, the entry named, byte order marks, lone surrogates, and CSV
cells longer than Python's csv limit.
"""

from __future__ import annotations

import codecs
import csv
import json
import pathlib
import re
import uuid

import pytest

from kanidm_sync import Group, Person, SourceError
from kanidm_sync.adapters import EXTERNAL_ID_NAMESPACE, files, uuid_for
from kanidm_sync.adapters.files import CsvSource, JsonSource, LdifSource, parse_ldif

FILES = pathlib.Path(__file__).parents[1] / "fixtures" / "files"
HEADER = "kind,external_id,name,displayname,gidnumber\n"


def write(tmp_path: pathlib.Path, name: str, text: str, *, bom: bool = False) -> pathlib.Path:
    path = tmp_path / name
    path.write_bytes((codecs.BOM_UTF8 if bom else b"") + text.encode("utf-8"))
    return path


def refused(source: CsvSource | JsonSource | LdifSource) -> str:
    with pytest.raises(SourceError) as info:
        source.snapshot()
    return str(info.value)


# --- every bad record in one error -------------------------------------------------------------


def test_csv_reports_every_bad_row_with_its_line(tmp_path: pathlib.Path) -> None:
    """Three bad rows among good ones: one error lists all three, by line, entry and field."""
    path = write(
        tmp_path,
        "p.csv",
        HEADER
        + "person,E1,alice,Alice,\n"  # line 2: good
        + "person,E2,,Bob,\n"  # line 3: no name
        + "person,E3,carol,Carol,12x\n"  # line 4: bad gidnumber
        + "person,E4,dave\n"  # line 5: too few values
        + "group,G1,staff,,20100\n",  # line 6: good
    )
    message = refused(CsvSource(path))
    lines = message.splitlines()
    assert f"{path}: 3 rows refused:" == lines[0]
    assert [
        f"  {path}:3: entry 'E2': field 'name': missing",
        f"  {path}:4: entry 'E3': field 'gidnumber': '12x' is not an integer",
        f"  {path}:5: 3 values for 5 columns",
    ] == lines[1:]


def test_csv_quoting_error_keeps_the_rows_before_it(tmp_path: pathlib.Path) -> None:
    """A quoting error ends the read; the bad rows before it are still reported."""
    path = write(tmp_path, "p.csv", HEADER + "person,E1,,A,\n" + 'person,"E2,b,B,\n')
    message = refused(CsvSource(path))
    assert "2 rows refused" in message
    assert ":2: entry 'E1': field 'name': missing" in message
    assert "unexpected end of data" in message


def test_json_reports_every_bad_record(tmp_path: pathlib.Path) -> None:
    """JSON arrays and JSON Lines list every bad record, by index or line, with the entry."""
    records = [
        {"kind": "person", "external_id": "E1", "name": "a", "displayname": "A"},
        {"kind": "person", "external_id": "E2", "name": 5, "displayname": "B"},
        "not an object",
        {"kind": "group", "external_id": "G1", "name": "g", "member": [1]},
    ]
    array = refused(JsonSource(write(tmp_path, "p.json", json.dumps(records))))
    assert "p.json: 3 records refused:" in array
    assert "record [1]: entry 'E2': field 'name': expected a string, not a number" in array
    assert "record [2]: expected an object, not str" in array
    assert "record [3]: entry 'G1': field 'member': item 0 is a number, not a string" in array
    text = "\n".join(json.dumps(r) for r in records) + "\n{oops\n"
    lines = refused(JsonSource(write(tmp_path, "p.jsonl", text)))
    assert "p.jsonl: 4 records refused:" in lines
    for fragment in ("p.jsonl:2: entry 'E2'", "p.jsonl:3: expected", "p.jsonl:4: entry 'G1'"):
        assert fragment in lines
    assert "p.jsonl:5: not JSON" in lines


def test_ldif_reports_every_bad_record(tmp_path: pathlib.Path) -> None:
    """Two bad persons and a bad group: one error names each dn and attribute."""
    ldif = (
        "dn: uid=a,dc=x\nobjectClass: person\ncn: A\n\n"  # no uid
        "dn: uid=b,dc=x\nobjectClass: person\nuid: b\ncn: B\n\n"  # good
        "dn: uid=c,dc=x\nobjectClass: posixAccount\nuid: c\ncn: C\nuidNumber: x\n\n"
        "dn: cn=g,dc=x\nobjectClass: groupOfNames\ncn: g\ncn: h\n"  # two names
    )
    message = refused(LdifSource(write(tmp_path, "d.ldif", ldif)))
    assert "d.ldif: 3 records refused:" in message
    assert "d.ldif:1: 'uid=a,dc=x': attribute 'uid': missing" in message
    assert "d.ldif:10: 'uid=c,dc=x': attribute 'uidnumber': 'x' is not an integer" in message
    assert "d.ldif:16: 'cn=g,dc=x': attribute 'cn': 2 values where one is needed" in message


def test_a_file_of_bad_rows_lists_the_first_hundred_and_counts_all(tmp_path: pathlib.Path) -> None:
    """A systematically wrong file gives a bounded message that still counts every row."""
    path = write(tmp_path, "p.csv", HEADER + "".join(f"person,E{i},u{i},,\n" for i in range(250)))
    lines = refused(CsvSource(path)).splitlines()
    assert f"{path}: 250 rows refused:" == lines[0]
    assert 1 + 100 + 1 == len(lines)
    assert lines[1].endswith(":2: entry 'E0': field 'displayname': missing")
    assert "  ... and 150 more" == lines[-1]


def test_one_bad_row_is_reported_as_it_is(tmp_path: pathlib.Path) -> None:
    """A single bad row keeps the one-line message (no list header)."""
    path = write(tmp_path, "p.csv", HEADER + "person,E1,alice,,\n")
    assert f"{path}:2: entry 'E1': field 'displayname': missing" == refused(CsvSource(path))


# --- lone surrogates (a JSON \ud800 escape) ----------------------------------------------------


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (
            {"external_id": "E\ud800"},
            r"p\.json: record \[0\]: field 'external_id': a lone surrogate",
        ),
        ({"name": "al\udfffice"}, r"entry 'E1': field 'name': a lone surrogate .* at index 2"),
        ({"mail": ["a@x", "b\ud800@x"]}, r"entry 'E1': field 'mail': item 1: a lone surrogate"),
        ({"password_import": "{SSHA}\ud800zz"}, r"entry 'E1': field 'password_import': a lone"),
    ],
)
def test_json_lone_surrogate_is_a_source_error_naming_the_field(
    tmp_path: pathlib.Path, record: dict[str, object], message: str
) -> None:
    """Never a raw UnicodeEncodeError: the error names the record, the entry and the field."""
    base: dict[str, object] = {
        "kind": "person",
        "external_id": "E1",
        "name": "a",
        "displayname": "A",
    }
    base.update(record)
    # json.dumps writes a lone surrogate as a \ud800 escape, as a hostile export would.
    path = write(tmp_path, "p.json", json.dumps([base]))
    with pytest.raises(SourceError, match=message) as info:
        JsonSource(path).snapshot()
    assert "SSHA" not in str(info.value)
    assert info.value.__context__ is None


def test_uuid_for_refuses_a_lone_surrogate_clearly() -> None:
    """uuid_for names the problem instead of raising UnicodeEncodeError from uuid5."""
    with pytest.raises(
        ValueError, match=r"uuid_for: the external id holds a lone surrogate at index 1"
    ):
        uuid_for("E\ud800")
    with pytest.raises(TypeError, match=r"uuid_for: the external id must be a str, not bytes"):
        uuid_for(b"E1")  # type: ignore[arg-type]


# --- byte order marks --------------------------------------------------------------------------


def test_ldif_with_a_bom_is_read() -> None:
    """A UTF-8 BOM before 'version: 1' (Windows tools write one) is skipped."""
    data = (FILES / "directory.ldif").read_bytes()
    assert parse_ldif(data) == parse_ldif(codecs.BOM_UTF8 + data)
    assert parse_ldif(b"dn: cn=a\ncn: a\n") == parse_ldif(codecs.BOM_UTF8 + b"dn: cn=a\ncn: a\n")


def test_ldif_source_with_a_bom(tmp_path: pathlib.Path) -> None:
    """LdifSource reads a BOM-prefixed file like the same file without it."""
    text = (FILES / "directory.ldif").read_text(encoding="utf-8")
    plain = LdifSource(write(tmp_path, "a.ldif", text)).snapshot()
    assert plain == LdifSource(write(tmp_path, "b.ldif", text, bom=True)).snapshot()


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("p.csv", HEADER + "person,E1,alice,Alice,\n"),
        (
            "p.json",
            '[{"kind": "person", "external_id": "E1", "name": "alice", "displayname": "A"}]',
        ),
        (
            "p.jsonl",
            '{"kind": "person", "external_id": "E1", "name": "alice", "displayname": "A"}\n',
        ),
    ],
)
def test_csv_and_json_with_a_bom(tmp_path: pathlib.Path, name: str, text: str) -> None:
    """CSV and JSON files with a BOM read as without (the BOM is not part of 'kind')."""
    source = CsvSource if name.endswith(".csv") else JsonSource
    (entry,) = source(write(tmp_path, name, text, bom=True)).snapshot()
    assert isinstance(entry, Person)
    assert "alice" == entry.name


# --- large groups ------------------------------------------------------------------------------


def test_csv_group_with_fifty_thousand_members(tmp_path: pathlib.Path) -> None:
    """A members cell of about 2.4 MB (far over csv's 131072) is read; the limit is restored."""
    members = [f"uid=user{i:05d},ou=people,dc=example,dc=org" for i in range(50_000)]
    path = write(
        tmp_path,
        "g.csv",
        'kind,external_id,name,member\ngroup,G1,staff,"' + "|".join(members) + '"\n',
    )
    before = csv.field_size_limit()
    (staff,) = CsvSource(path).snapshot()
    assert isinstance(staff, Group)
    assert tuple(members) == staff.member
    assert before == csv.field_size_limit()


# --- uuid_for lives with the adapters ----------------------------------------------------------


def test_uuid_for_is_one_function_in_every_place() -> None:
    """uuid_for and its namespace are public in kanidm_sync.adapters and still in files."""
    assert files.uuid_for is uuid_for
    assert files.EXTERNAL_ID_NAMESPACE is EXTERNAL_ID_NAMESPACE
    assert uuid.uuid5(EXTERNAL_ID_NAMESPACE, "e1001") == uuid_for("E1001")


def test_file_source_classes_present_as_the_public_module() -> None:
    """The split into private modules is invisible: classes say kanidm_sync.adapters.files."""
    for name in ("CsvSource", "JsonSource", "LdifSource", "FieldMapping", "LdifMapping"):
        assert "kanidm_sync.adapters.files" == getattr(files, name).__module__
    assert re.fullmatch(r"CsvSource\('.*'\)", repr(CsvSource("x.csv")))
