"""Hostile input fails with the library's own error, naming the file, line, entry and field.

Never a raw ``KeyError`` / ``IndexError`` / ``UnicodeDecodeError`` / ``RecursionError``, and
never a half-written state file.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import pathlib
import sqlite3
import stat
import subprocess
import sys
import uuid
from collections.abc import Callable

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kanidm_sync import (
    REFRESH,
    ActiveState,
    ChangeSet,
    Client,
    ConfigError,
    DataError,
    DecodeError,
    Group,
    KanidmSyncError,
    Person,
    Runner,
    SourceError,
    ValidationError,
    load_cached_token,
    load_client_config,
)
from kanidm_sync._cli._config import load_run_config
from kanidm_sync.adapters import SnapshotAdapter
from kanidm_sync.adapters.files import CsvSource, JsonSource, LdifSource
from kanidm_sync.testing import FakeKanidm, serve

SCRIPT = pathlib.Path(sys.executable).with_name("kanidm-sync")
COMMAND: tuple[str, ...] = (
    (str(SCRIPT),) if SCRIPT.exists() else (sys.executable, "-m", "kanidm_sync")
)
HEADER = "kind,name,displayname,external_id\n"
DEEP = "[" * 100_000 + "]" * 100_000


def _fails(call: Callable[[], object], error: type[KanidmSyncError], *fragments: str) -> str:
    """``call`` raises ``error`` (not a builtin) and its message holds every fragment."""
    with pytest.raises(KanidmSyncError) as info:
        call()
    assert error is type(info.value) or isinstance(info.value, error), repr(info.value)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


def _write(path: pathlib.Path, data: bytes | str) -> pathlib.Path:
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


# --- LDIF --------------------------------------------------------------------------------------


def test_ldif_huge_line_and_deep_folding_parse(tmp_path: pathlib.Path) -> None:
    """A 2 MB value and a value folded over 200 000 lines are read whole."""
    huge = "x" * 2_000_000
    folded = "\n ".join(["y"] * 200_000)
    ldif = _write(
        tmp_path / "big.ldif",
        f"dn: uid=a,dc=x\nobjectClass: person\nuid: a\ncn: {huge}\n\n"
        f"dn: uid=b,dc=x\nobjectClass: person\nuid: b\ncn: {folded}\n",
    )
    entries = LdifSource(ldif).snapshot()
    assert [2_000_000, 200_000] == [len(e.displayname) for e in entries if isinstance(e, Person)]


def test_ldif_hundred_thousand_lines(tmp_path: pathlib.Path) -> None:
    """A 100 000-line export is read, every record in it."""
    records = "".join(
        f"dn: uid=u{i},dc=x\nobjectClass: person\nuid: u{i}\ncn: U {i}\n\n" for i in range(20_000)
    )
    assert 100_000 == records.count("\n")
    entries = LdifSource(_write(tmp_path / "many.ldif", records)).snapshot()
    assert 20_000 == len(entries)


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        (b"dn: uid=a,dc=x\nobjectClass: person\nuid:: !!not-base64\n", (":3:", "'uid'", "base64")),
        (b"dn: uid=a,dc=x\nobjectClass: person\nuid: \xff\xfe\x00\n", (":3:", "UTF-8")),
        (b"dn: uid=a,dc=x\nobjectClass: person\nuid:: //4A\ncn: A\n", (":1:", "'uid'", "UTF-8")),
        (b"dn:: //4A\nobjectClass: person\n", (":1:", "dn", "UTF-8")),
        (b" folded first\ndn: uid=a,dc=x\n", (":1:", "attribute: value")),
        (b"dn: uid=a,dc=x\nobjectClass person\n", (":2:", "attribute: value")),
        (b"dn: uid=a,dc=x\njpegPhoto:< file:///etc/passwd\n", (":2:", "'jpegPhoto'", "URL")),
        (b"dn: uid=a,dc=x\nchangetype: modify\n", (":2:", "changetype: modify")),
        (b"version: 7\n", (":1:", "version 1")),
        (b"objectClass: person\n", (":1:", "must start with 'dn:'")),
        (b"dn: uid=a,dc=x\nobjectClass: person\nuid: a\nuid: b\ncn: A\n", ("'uid'", "2 values")),
        (b"dn: uid=a,dc=x\nobjectClass: person\ncn: A\n", ("uid=a,dc=x", "'uid'", "missing")),
        (b"dn: uid=a,dc=x\nobjectClass: person\nuid: a\ncn: A\nentryUUID: zz\n", ("entryuuid",)),
        (b"dn: cn=g,dc=x\nobjectClass: posixGroup\ncn: g\ngidNumber: 1e9\n", ("gidnumber", "1e9")),
    ],
)
def test_ldif_errors_name_the_line_and_attribute(
    tmp_path: pathlib.Path, content: bytes, fragments: tuple[str, ...]
) -> None:
    """Each malformed LDIF is a SourceError naming the file, the line and the attribute."""
    path = _write(tmp_path / "bad.ldif", content)
    _fails(LdifSource(path).snapshot, SourceError, "bad.ldif", *fragments)


def test_ldif_error_quotes_a_huge_value_briefly(tmp_path: pathlib.Path) -> None:
    """A 100 000-digit uidNumber is named, not pasted whole into the message."""
    ldif = "dn: uid=a,dc=x\nobjectClass: posixAccount\nuid: a\ncn: A\nuidNumber: " + "9" * 100_000
    message = _fails(
        LdifSource(_write(tmp_path / "n.ldif", ldif)).snapshot,
        SourceError,
        "'uidnumber'",
        "100000 characters",
    )
    assert len(message) < 400


def test_ldif_error_quotes_a_huge_dn_briefly(tmp_path: pathlib.Path) -> None:
    """A 200 000-character DN is named by its start, in every kind of record error."""
    dn = "uid=" + "d" * 200_000
    for number, body in enumerate(
        (f"dn: {dn}\nobjectClass: person\ncn: A\n", f"dn: {dn}\nchangetype: delete\n")
    ):
        path = _write(tmp_path / f"dn{number}.ldif", body)
        message = _fails(LdifSource(path).snapshot, SourceError, "uid=ddd", "200004 characters")
        assert len(message) < 400


# --- CSV ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        (HEADER.encode() + "person,é,A,e\n".encode("latin-1"), (":2:", "UTF-8")),
        ((HEADER + "person,a,A,e\n").encode("utf-16"), (":1:", "UTF-8")),
        (b"kind,name\nperson,a\n", (":2:", "'external_id'", "missing")),
        (HEADER.encode() + b"person,a\n", (":2:", "2 values for 4 columns")),
        (HEADER.encode() + b'person,"a,A,e\n', (":2:", "unexpected end of data")),
        (HEADER.encode() + b"robot,a,A,e\n", (":2:", "'kind'", "'robot'")),
        (b"kind,kind\n", (":1:", "'kind' appears twice")),
        (b"name,displayname,external_id\na,A,e\n", (":1:", "'kind'")),
        (b"kind,name,displayname,external_id,gidnumber\nperson,a,A,e,ten\n", ("'gidnumber'",)),
        (b"kind,name,displayname,external_id,id\nperson,a,A,e,zz\n", ("'id'", "not a UUID")),
    ],
)
def test_csv_errors_name_the_line_and_field(
    tmp_path: pathlib.Path, content: bytes, fragments: tuple[str, ...]
) -> None:
    """Each malformed CSV is a SourceError naming the file, the line and the column."""
    path = _write(tmp_path / "bad.csv", content)
    _fails(CsvSource(path).snapshot, SourceError, "bad.csv", *fragments)


def test_csv_huge_cell_is_quoted_briefly(tmp_path: pathlib.Path) -> None:
    """A 100 000-character kind cell is named, not pasted whole into the message."""
    path = _write(tmp_path / "k.csv", HEADER + "p" * 100_000 + ",a,A,e\n")
    message = _fails(CsvSource(path).snapshot, SourceError, "'kind'", "100000 characters")
    assert len(message) < 400


@pytest.mark.parametrize("delimiter", [";;", "", '"', "\n"])
def test_csv_bad_delimiter_is_a_config_error(tmp_path: pathlib.Path, delimiter: str) -> None:
    """A delimiter csv cannot use is refused when the source is built, not at the first read."""
    with pytest.raises(ConfigError, match="delimiter"):
        CsvSource(tmp_path / "x.csv", delimiter=delimiter)


def test_csv_control_characters_reach_validation_named(tmp_path: pathlib.Path) -> None:
    """NUL, escape and bidi characters in a CSV are read, and validation names entry and field."""
    path = _write(
        tmp_path / "c.csv",
        "kind,name,displayname,external_id\n"
        "person,a\x00b,Al\x1b[2Jice,uid=a\n"
        "person,bo\u200bb,Bob,uid=b\n"
        "group,st\u202eaff,,cn=staff\n",
    )
    entries = CsvSource(path).snapshot()
    report = ChangeSet(from_state=REFRESH, to_state=ActiveState(b"c"), entries=entries).validate()
    flagged = {(p.index, p.field) for p in report.errors}
    assert {(0, "name"), (0, "displayname"), (1, "name"), (2, "name")} <= flagged
    text = str(report)
    # The message shows the characters escaped: no terminal escape, no reordering of text.
    assert ["\\x00", "\\u200b", "\\u202e"] == [
        e for e in ("\\x00", "\\u200b", "\\u202e") if e in text
    ]
    assert not any(c in text for c in "\x00\x1b\u200b\u202e")
    for problem in report.errors:
        assert problem.external_id in ("uid=a", "uid=b", "cn=staff")


# --- JSON --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "fragments"),
    [
        ("deep.json", "[" + DEEP + "]", ("nested too deeply",)),
        ("deep.jsonl", '{"name": ' + DEEP + "}\n", (":1:", "nested too deeply")),
        ("big.json", '[{"gidnumber": ' + "9" * 5000 + "}]", ("too many digits",)),
        ("big.jsonl", '{"gidnumber": ' + "9" * 5000 + "}\n", (":1:", "too many digits")),
        (
            "nan.json",
            '[{"kind": "group", "name": "g", "external_id": "g", "gidnumber": NaN}]',
            ("record [0]", "'gidnumber'", "nan"),
        ),
        (
            "inf.jsonl",
            '{"kind": "group", "name": "g", "external_id": "g", "gidnumber": 1e999}\n',
            (":1:", "'gidnumber'", "inf"),
        ),
        ("obj.json", '{"kind": "person"}', ("array of objects",)),
        ("list.json", "[[1]]", ("record [0]", "not a list")),
        ("syntax.json", '[\n{"kind": "person",\n', (":3:", "not JSON")),
        ("kind.json", '[{"kind": {"a": 1}}]', ("record [0]", "'kind'")),
        (
            "mail.json",
            '[{"kind": "person", "name": "a", "displayname": "A", "external_id": "e",'
            ' "mail": [1]}]',
            ("'mail'", "item 0"),
        ),
        ("latin.json", '[{"kind": "é"}]'.encode("latin-1"), (":1:", "UTF-8")),
    ],
)
def test_json_errors_name_the_record_and_field(
    tmp_path: pathlib.Path, name: str, content: str | bytes, fragments: tuple[str, ...]
) -> None:
    """Each hostile JSON source is a SourceError naming the file, the record and the field."""
    path = _write(tmp_path / name, content)
    message = _fails(JsonSource(path).snapshot, SourceError, name, *fragments)
    assert len(message) < 400


def test_sources_on_a_directory(tmp_path: pathlib.Path) -> None:
    """A source path naming a directory is a SourceError naming it."""
    for source in (CsvSource(tmp_path), JsonSource(tmp_path), LdifSource(tmp_path)):
        _fails(source.snapshot, SourceError, str(tmp_path), "cannot read")


# --- ChangeSet JSON from untrusted input -----------------------------------------------------

_URN = "urn:ietf:params:scim:schemas:kanidm:sync:1:"
_KEYS = st.sampled_from(
    [
        "from_state",
        "to_state",
        "entries",
        "retain",
        "Active",
        "cookie",
        "Retain",
        "Delete",
        "schemas",
        "id",
        "externalId",
        "name",
        "displayname",
        "mail",
        "member",
        "value",
        "primary",
        "password_import",
        "totp_import",
        "secret",
        "algo",
        "step",
        "digits",
        "gidnumber",
        "ssh_publickey",
        "label",
        "Refresh",
        "Ignore",
    ]
)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(
        ["Refresh", "Ignore", _URN + "person", _URN + "account", str(uuid.UUID(int=7))]
    )
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(_KEYS | st.text(max_size=8), inner, max_size=6)
    ),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=_JSON)
def test_changeset_from_arbitrary_json_raises_only_decode_error(document: object) -> None:
    """Arbitrary JSON gives a ChangeSet or a DecodeError, never another exception."""
    text = json.dumps(document)
    errors: tuple[tuple[str, str], ...] = (("$", "decoded"),)
    try:
        ChangeSet.from_json(text)
    except DecodeError as exc:
        errors = exc.errors
    assert errors
    assert all(path.startswith("$") for path, _ in errors)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entry=st.dictionaries(_KEYS, _JSON, max_size=8), secret=_JSON)
def test_changeset_entries_with_secrets_raise_only_decode_error(
    entry: dict[str, object], secret: object
) -> None:
    """A plausible entry with an arbitrary secret: a DecodeError that never quotes the secret."""
    marker = "HypoSecretMarker-1q"
    planted = {"password_import": [marker, secret], "totp_import": [{"secret": {marker: secret}}]}
    document = {
        "from_state": "Refresh",
        "to_state": {"Active": {"cookie": "MQ"}},
        "retain": "Ignore",
        "entries": [{**entry, **planted}],
    }
    with pytest.raises(DecodeError) as info:
        ChangeSet.from_json(json.dumps(document))
    assert marker not in str(info.value)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=200))
def test_changeset_from_arbitrary_bytes_raises_only_decode_error(data: bytes) -> None:
    """Arbitrary bytes give a ChangeSet or a DecodeError, never another exception."""
    errors: tuple[tuple[str, str], ...] = (("$", "decoded"),)
    try:
        ChangeSet.from_json(data)
    except DecodeError as exc:
        errors = exc.errors
    assert errors


def test_changeset_from_deep_json_is_a_decode_error() -> None:
    """JSON nested 100 000 deep is a DecodeError, not a RecursionError."""
    with pytest.raises(DecodeError, match="nested too deeply"):
        ChangeSet.from_json(DEEP)


# --- names with control, zero-width and bidi characters -------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "a\x00b",
        "a\x07b",
        "a\nb",
        "a\x1b[2Jb",
        "a\u202eb",
        "a\u2066b",
        "a\u200bb",
        "a\u200db",
        "\ufeffab",
        "a\u00adb",
        "\uff41\uff44\uff4d\uff49\uff4e",  # fullwidth "admin"
    ],
)
def test_invisible_characters_in_names_are_flagged(name: str) -> None:
    """Validation refuses the name, naming the entry and the field, the character escaped."""
    entries = [
        Person(
            id=uuid.uuid5(uuid.NAMESPACE_DNS, "p"), external_id="uid=p", name=name, displayname="P"
        ),
        Group(id=uuid.uuid5(uuid.NAMESPACE_DNS, "g"), external_id="cn=g", name=name),
    ]
    report = ChangeSet(from_state=REFRESH, to_state=ActiveState(b"c"), entries=entries).validate()
    named = {(p.index, p.field, p.external_id) for p in report.errors}
    assert {(0, "name", "uid=p"), (1, "name", "cn=g")} <= named
    shown = repr(name)[1:-1]
    assert shown in str(report)
    if shown != name:  # an invisible character: shown escaped, never raw
        assert name not in str(report)


# --- configuration files -----------------------------------------------------------------------

_BASE = (
    '[kanidm]\nurl = "https://idm.example.com"\nsync_token_file = "tok"\n'
    '[source]\ntype = "ldif"\npath = "d.ldif"\n'
)


@pytest.fixture
def config_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    """A directory with a token, an LDIF file and a subdirectory."""
    (tmp_path / "tok").write_text("not-a-real-token\n", encoding="utf-8")
    (tmp_path / "d.ldif").write_text("", encoding="utf-8")
    (tmp_path / "adir").mkdir()
    return tmp_path


@pytest.mark.parametrize(
    ("toml", "fragments"),
    [
        ("kanidm = 1\n", ("[kanidm] must be a table",)),
        (_BASE + "[extra]\n", ("unknown key 'extra'",)),
        (_BASE.replace("[source]", "colour = 1\n[source]"), ("[kanidm]", "'colour'")),
        (_BASE.replace('url = "https://idm.example.com"', "url = 1"), ("[kanidm] url",)),
        (_BASE.replace('"tok"', "1"), ("sync_token_file",)),
        (_BASE.replace('"tok"', '"adir"'), ("sync token file", "adir")),
        (_BASE.replace("[source]", "account = 5\n[source]"), ("[kanidm] account",)),
        (_BASE.replace("[source]", 'insecure_http = "yes"\n[source]'), ("insecure_http",)),
        (_BASE.replace('type = "ldif"', "type = 1"), ("[source] type",)),
        (_BASE.replace('path = "d.ldif"', "path = []"), ("[source] path",)),
        (_BASE.replace('type = "ldif"', 'type = "ldif"\nlines = true'), ("[source]", "'lines'")),
        (_BASE + "[rules]\nexclude = 1\n", ("[rules]", "exclude")),
        (_BASE + '[guards]\nmax_delete_count = "5"\n', ("[guards] max_delete_count",)),
        (_BASE + "[guards]\nmax_delete_count = 2.5\n", ("[guards] max_delete_count",)),
        (_BASE + "[guards]\nmax_delete_fraction = nan\n", ("[guards] max_delete_fraction",)),
        (_BASE + "[guards]\nmax_shrink_fraction = 3\n", ("[guards] max_shrink_fraction",)),
        (_BASE + "[guards]\nallow_shrink = 1\n", ("[guards] allow_shrink", "true or false")),
        (_BASE + '[schedule]\ninterval = "5m"\n', ("[schedule] interval",)),
        (_BASE + "[schedule]\ninterval = inf\n", ("[schedule] interval", "finite")),
        (_BASE + "[schedule]\ninterval = 1e300\n", ("[schedule] interval", "at most")),
        (_BASE + "[schedule]\ninterval = 60\nbackoff_max = 1e12\n", ("backoff_max", "at most")),
        (_BASE + "[schedule]\njitter = 0.5\n", ("[schedule] needs interval",)),
        (_BASE + "[schedule]\ninterval = 60\njitter = true\n", ("[schedule] jitter",)),
        (_BASE + "[state]\ndir = 1\n", ("[state] dir",)),
        (_BASE + "[state]\nplace = 1\n", ("[state]", "'place'")),
        ("x = \n", ("not valid TOML", "line 1")),
    ],
)
def test_wrong_configurations_name_the_key(
    config_dir: pathlib.Path, toml: str, fragments: tuple[str, ...]
) -> None:
    """Each wrong configuration is a ConfigError naming the file and the key."""
    path = _write(config_dir / "run.toml", toml)
    _fails(lambda: load_run_config(path), ConfigError, "run.toml", *fragments)


def test_rules_file_that_is_a_directory(config_dir: pathlib.Path) -> None:
    """A [rules] file naming a directory is a ConfigError naming it."""
    path = _write(config_dir / "run.toml", _BASE + '[rules]\nfile = "adir"\n')
    _fails(lambda: load_run_config(path), ConfigError, "adir", "rules file")


@pytest.mark.parametrize(
    ("source", "fragments"),
    [
        ('type = "csv"\npath = "d.ldif"\ndelimiter = ";;"', ("[source]", "delimiter")),
        ('type = "csv"\npath = "d.ldif"\n[source.fields]\nsurname = "sn"', ("'surname'",)),
        ('type = "json"\npath = "d.ldif"\nlines = "yes"', ("lines",)),
    ],
)
def test_wrong_source_options_name_the_key(
    config_dir: pathlib.Path, source: str, fragments: tuple[str, ...]
) -> None:
    """Source options are checked when the source is built, naming the configuration file."""
    text = _BASE.split("[source]")[0] + "[source]\n" + source + "\n"
    config = load_run_config(_write(config_dir / "run.toml", text))
    _fails(config.build_source, ConfigError, "run.toml", *fragments)


def test_state_dir_that_is_a_file(config_dir: pathlib.Path) -> None:
    """A [state] dir naming a file is a ConfigError naming the key, not a FileExistsError."""
    config = load_run_config(_write(config_dir / "run.toml", _BASE + '[state]\ndir = "d.ldif"\n'))
    _fails(config.build_source, ConfigError, "run.toml", "[state] dir")


def test_configuration_that_is_not_utf8(config_dir: pathlib.Path) -> None:
    """A Latin-1 or binary configuration is a ConfigError naming the file and line."""
    latin = _write(config_dir / "latin.toml", _BASE.encode() + b"# caf\xe9\n")
    _fails(lambda: load_run_config(latin), ConfigError, "latin.toml:7:", "UTF-8")
    binary = _write(config_dir / "bin.toml", b"\xff\xfe\x00\x01")
    _fails(lambda: load_run_config(binary), ConfigError, "bin.toml:1:", "UTF-8")
    client = _write(config_dir / "client.toml", b'uri = "https://\xff"\n')
    _fails(
        lambda: load_client_config(paths=[client], environ={}), ConfigError, "client.toml", "UTF-8"
    )


def test_ldap_config_with_wrong_types(tmp_path: pathlib.Path) -> None:
    """A kanidm-ldap-sync file with a wrong type or a non-UTF-8 byte names the key or file."""
    from kanidm_sync.adapters._ldap_config import load_config

    wrong = _write(
        tmp_path / "ldap-sync",
        'sync_token = "t"\nldap_uri = "ldap://x"\nldap_sync_dn = "cn=a"\nldap_sync_pw = 5\n'
        'ldap_sync_base_dn = "dc=x"\nldap_filter = "(x=*)"\n',
    )
    _fails(lambda: load_config(wrong), ConfigError, "ldap_sync_pw", "must be a string")
    binary = _write(tmp_path / "ldap-bin", b'ldap_sync_pw = "\xff"\n')
    _fails(lambda: load_config(binary), ConfigError, "ldap-bin", "UTF-8")


def test_token_cache_nested_too_deeply(tmp_path: pathlib.Path) -> None:
    """A hostile kanidm token cache is a ConfigError, not a RecursionError."""
    cache = _write(tmp_path / "tokens", DEEP)
    _fails(lambda: load_cached_token(path=cache), ConfigError, "tokens", "nested too deeply")


# --- state files: never half-written, hostile ones survived -----------------------------------


class _Source:
    """A file source whose file the test can make hostile."""

    def __init__(self, path: pathlib.Path) -> None:
        self.inner = JsonSource(path)

    def snapshot(self) -> list[Person | Group]:
        """The file's entries."""
        return [e for e in self.inner.snapshot() if isinstance(e, Person | Group)]


def _people(path: pathlib.Path, *names: str) -> None:
    records = [
        {"kind": "person", "name": n, "displayname": n.title(), "external_id": f"uid={n}"}
        for n in names
    ]
    path.write_text(json.dumps(records), encoding="utf-8")


def _snapshot(directory: pathlib.Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_csv_huge_cell_is_read(tmp_path: pathlib.Path) -> None:
    """A 200,000-character cell is read: csv's 131072 limit is lifted, as LDIF has none."""
    path = _write(tmp_path / "big.csv", HEADER + "person,a," + "x" * 200_000 + ",e\n")
    (entry,) = CsvSource(path).snapshot()
    assert isinstance(entry, Person)
    assert 200_000 == len(entry.displayname)


def _committed_snapshot(path: pathlib.Path) -> dict[str, str]:
    """The committed snapshot of a snapshot store (an SQLite file), opened read-only."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        return dict(db.execute("SELECT id, digest FROM committed"))


def test_failed_runs_leave_state_files_untouched(tmp_path: pathlib.Path) -> None:
    """A hostile source or a refused apply changes no byte of the record or snapshot store."""
    fake = FakeKanidm()
    account = fake.provision_sync_account("feed")
    source_file = tmp_path / "people.json"
    state = tmp_path / "state"
    _people(source_file, "alice", "bob")
    with httpx.Client(transport=fake.transport) as http:
        client = Client(account.url, token=account.token, http_client=http)
        adapter = SnapshotAdapter(_Source(source_file), state / "snapshot.json")
        runner = Runner(client, adapter, state_path=state / "record.json")
        assert "applied" == runner.run_once().outcome
        # The next run promotes the snapshot Kanidm committed; from then on nothing moves.
        assert "nothing-to-do" == runner.run_once().outcome
        before = _snapshot(state)
        # (record.json.lock: the run lock, holding the pid of the last run; docs/runner.md)
        assert {"record.json", "record.json.lock", "snapshot.json"} == set(before)
        for hostile in ("[" + DEEP + "]", b"[\xff]", '[{"kind": "person"}]', "[1, 2"):
            _write(source_file, hostile)
            with pytest.raises(SourceError):
                runner.run_once()
            assert before == _snapshot(state)
        # Refused after the fetch (locally, then by Kanidm): the store may note a pending
        # batch (docs/runner.md), but the record and the committed snapshot stay as they were.
        committed = _committed_snapshot(state / "snapshot.json")
        fake.store.add_person("carol")  # a native Kanidm person: the sync's carol collides
        for names, error in (
            (("alice", "bob", "a\u202eb"), ValidationError),
            (("alice", "carol"), DataError),
        ):
            _people(source_file, *names)
            with pytest.raises(error):
                runner.run_once(allow_deletes=True)
            after = _snapshot(state)
            assert before["record.json"] == after["record.json"]
            assert committed == _committed_snapshot(state / "snapshot.json")
        _people(source_file, "alice", "dave")
        assert "applied" == runner.run_once(allow_deletes=True).outcome
        assert "Dave" == fake.store.entry("dave").first("displayname")


def test_hostile_record_file_is_survived(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A deeply nested record.json is reported and ignored, not a RecursionError."""
    fake = FakeKanidm()
    account = fake.provision_sync_account("feed")
    source_file = tmp_path / "people.json"
    _people(source_file, "alice")
    (tmp_path / "record.json").write_text(DEEP, encoding="utf-8")
    (tmp_path / "snapshot.json").write_text(DEEP, encoding="utf-8")
    with httpx.Client(transport=fake.transport) as http:
        client = Client(account.url, token=account.token, http_client=http)
        adapter = SnapshotAdapter(_Source(source_file), tmp_path / "snapshot.json")
        runner = Runner(client, adapter, state_path=tmp_path / "record.json")
        assert "applied" == runner.run_once().outcome
    assert any("record.json" in r.getMessage() for r in caplog.records)
    assert "Alice" == fake.store.entry("alice").first("displayname")


def _cli(*args: str, home: pathlib.Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KANIDM_")}
    env["HOME"] = str(home)
    return subprocess.run(
        [*COMMAND, *args],
        input="",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_cli_status_file_is_private_and_hostile_one_is_reported(tmp_path: pathlib.Path) -> None:
    """status.json is written 0600 like the record; a hostile one is one error line, exit 1."""
    fake = FakeKanidm()
    account = fake.provision_sync_account("feed")
    (tmp_path / "sync.token").write_text(account.token, encoding="utf-8")
    _people(tmp_path / "people.json", "alice")
    with serve(fake) as url:
        config = _write(
            tmp_path / "sync.toml",
            f'[kanidm]\nurl = "{url}"\nsync_token_file = "sync.token"\ninsecure_http = true\n'
            '[source]\ntype = "json"\npath = "people.json"\n',
        )
        done = _cli("run", "-c", str(config), home=tmp_path)
        assert 0 == done.returncode, done.stderr
        status = tmp_path / "sync.state" / "status.json"
        for name in ("status.json", "record.sqlite", "snapshot.sqlite"):
            mode = stat.S_IMODE((status.parent / name).stat().st_mode)
            assert (name, 0o600) == (name, mode)
        status.write_text(DEEP, encoding="utf-8")
        done = _cli("status", "-c", str(config), home=tmp_path)
    assert 1 == done.returncode
    assert "Traceback" not in done.stderr
    assert "status.json" in done.stderr


def test_cli_hostile_config_is_one_error_line(tmp_path: pathlib.Path) -> None:
    """A binary configuration and a state dir that is a file: exit 2, one line, no traceback."""
    (tmp_path / "tok").write_text("t", encoding="utf-8")
    (tmp_path / "d.ldif").write_text("", encoding="utf-8")
    binary = _write(tmp_path / "bin.toml", b"\xff\xfe")
    state_file = _write(
        tmp_path / "state.toml",
        _BASE.replace("https://idm.example.com", "http://127.0.0.1:9")
        + '[state]\ndir = "d.ldif"\n',
    )
    for config, fragment in ((binary, "UTF-8"), (state_file, "[state] dir")):
        for flags in ([], ["--debug"]):
            done = _cli("plan", "-c", str(config), "--insecure-http", *flags, home=tmp_path)
            assert 2 == done.returncode, done.stderr
            lines = done.stderr.splitlines()
            errors = [line for line in lines if line.startswith("kanidm-sync: error:")]
            assert 1 == len(errors), done.stderr
            assert fragment in errors[0]


def test_ldap_missing_ca_file_is_a_source_error(tmp_path: pathlib.Path) -> None:
    """An ldap_ca naming no file is a SourceError naming it, not ValueError('option error')."""
    pytest.importorskip("ldap")
    from kanidm_sync.adapters._ldap_client import LdapConnection

    missing = str(tmp_path / "missing-ca.pem")
    _fails(
        lambda: LdapConnection(
            "ldaps://127.0.0.1:9", bind_dn="cn=a", bind_pw="pw", ca_file=missing
        ),
        SourceError,
        "missing-ca.pem",
        "CA file",
    )


def test_totp_secret_base64_helpers_refuse_garbage() -> None:
    """Totp.from_base32 on garbage is a ValueError that does not repeat the text."""
    from kanidm_sync import Totp

    with pytest.raises(ValueError, match="base32") as info:
        Totp.from_base32("NOT-BASE32-SECRET-!!", external_id="t")
    assert "NOT-BASE32-SECRET" not in str(info.value)
    assert "c2VjcmV0" == Totp.from_key(base64.b64decode("c2VjcmV0"), external_id="t").secret


def test_html_reprs_escape_hostile_text(tmp_path: pathlib.Path) -> None:
    """Names, ids and values holding markup are escaped in every notebook rendering."""
    script = "<script>alert(1)</script>"

    class Hostile:
        """Entries whose every free-text value is markup."""

        def snapshot(self) -> list[Person | Group]:
            """A person and a group full of markup."""
            return [
                Person(
                    id=uuid.uuid5(uuid.NAMESPACE_DNS, "p"),
                    external_id="uid=" + script,
                    name="alice",
                    displayname=script,
                ),
                Group(
                    id=uuid.uuid5(uuid.NAMESPACE_DNS, "g"),
                    external_id=script,
                    name="g" + script,
                    description=script,
                ),
            ]

    fake = FakeKanidm()
    account = fake.provision_sync_account("feed")
    entries = Hostile().snapshot()
    changes = ChangeSet(from_state=REFRESH, to_state=ActiveState(b"c"), entries=entries)
    shown: list[object] = [changes, changes.validate(), *entries]
    with httpx.Client(transport=fake.transport) as http:
        client = Client(account.url, token=account.token, http_client=http)
        adapter = SnapshotAdapter(Hostile(), tmp_path / "snapshot.json")
        runner = Runner(client, adapter, state_path=tmp_path / "record.json", validate=False)
        shown.append(runner.plan())
        with pytest.raises(DataError):
            runner.run_once()
        shown += [runner.last_report, runner.status]
    rendered = [o._repr_html_() for o in shown]  # type: ignore[union-attr]
    assert len(shown) == len(rendered)
    assert [] == [html for html in rendered if "<script>" in html]
    assert all("&lt;script&gt;" in html for html in rendered[:4])
