"""No secret shows anywhere: reprs, logs (httpx and httpcore included), tracebacks, files, CLI.

Each scenario gives every kind of secret a distinctive value (admin password, TOTP secret,
admin and session tokens, the sync token, password hashes, TOTP imports, the LDAP bind
password), runs the life cycle with its failures, captures every text it produced and
fails naming each place a secret appears.

httpcore's DEBUG records include *response* headers (so ``X-KANIDM-AUTH-SESSION-ID``, the
id of an unfinished login) but never request headers: the bearer token is not in them.
The SDK leaves third-party loggers alone (docs/api.md, "Logging").
"""

from __future__ import annotations

import base64
import json
import os
import pathlib
import pty
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest

from kanidm_sync import (
    REFRESH,
    ActiveState,
    APIConnectionError,
    APITimeoutError,
    ChangeSet,
    Client,
    ConfigError,
    DecodeError,
    Entry,
    Guards,
    KanidmAuth,
    KanidmSyncError,
    LoginError,
    Person,
    PosixAccount,
    Runner,
    SourceError,
    SyncAccount,
    Totp,
    ValidationError,
    load_cached_token,
)
from kanidm_sync.adapters import SnapshotAdapter
from kanidm_sync.adapters.files import CsvSource, JsonSource, LdifSource
from kanidm_sync.testing import FakeKanidm, serve, totp_code

from ._leaks import Capture, Secrets, crypt_sha512, ssha512

SCRIPT = pathlib.Path(sys.executable).with_name("kanidm-sync")
COMMAND: tuple[str, ...] = (
    (str(SCRIPT),) if SCRIPT.exists() else (sys.executable, "-m", "kanidm_sync")
)
ADMIN = "boss"


class _People:
    """A snapshot source whose persons carry every kind of imported secret."""

    def __init__(self, secrets: Secrets, *, bad_hash: bool = False) -> None:
        self.totp_key = b"totp-import-key-K7q2"
        secrets.add("totp import (base64)", base64.b64encode(self.totp_key).decode())
        self.password = secrets.add("password_import", ssha512("PwImportMarkQ7x"))
        self.unix = secrets.add("unix_password_import", crypt_sha512("UnixImportMarkZ4"))
        self.bad = secrets.add("bad password_import", "{SSHA512}BadHashMarkerX1!!")
        self.bad_hash = bad_hash

    def snapshot(self) -> list[Entry]:
        """Two persons with a password, a unix password and a TOTP import."""
        return [
            Person(
                id=uuid.uuid5(uuid.NAMESPACE_DNS, name),
                external_id=f"uid={name},ou=people",
                name=name,
                displayname=name.title(),
                password_import=self.bad if self.bad_hash and name == "bob" else self.password,
                posix=PosixAccount(gidnumber=gid, unix_password_import=self.unix),
                totp_import=[Totp.from_key(self.totp_key, external_id=f"{name}-phone")],
            )
            for name, gid in (("alice", 30001), ("bob", 30002))
        ]


@pytest.fixture
def fake() -> FakeKanidm:
    """A fresh double."""
    return FakeKanidm()


@pytest.fixture
def url(fake: FakeKanidm) -> Iterator[str]:
    """The double on loopback HTTP, so that httpx and httpcore really log."""
    with serve(fake) as served:
        yield served


def _admin_secrets(fake: FakeKanidm, secrets: Secrets) -> tuple[str, bytes]:
    password = secrets.add("admin password", "AdminPassMarker-9f3Kq")
    key = b"admin-totp-key-M4rk3r"
    secrets.add("admin TOTP (base32)", base64.b32encode(key).decode().rstrip("="))
    secrets.add("admin TOTP (base64)", base64.b64encode(key).decode())
    secrets.add_token("admin API token", fake.admin_token)
    fake.add_admin(ADMIN, password, totp_secret=key)
    return password, key


def _expect(capture: Capture, where: str, call: Callable[[], object]) -> KanidmSyncError:
    with pytest.raises(KanidmSyncError) as info:
        call()
    capture.exception(info.value, where)
    return info.value


def test_library_life_cycle_leaks_no_secret(
    fake: FakeKanidm, url: str, tmp_path: pathlib.Path
) -> None:
    """Login, account, token, plan, run and every failure: no secret in any text or file."""
    secrets = Secrets()
    capture = Capture()
    password, key = _admin_secrets(fake, secrets)
    people = _People(secrets)
    with capture.logging():
        auth = KanidmAuth.password(ADMIN, password, totp=lambda: totp_code(key))
        with Client(url, auth=auth, allow_insecure_http=True) as admin:
            admin.create_sync_account("feed", description="HR")
            token = secrets.add_token("sync token", admin.generate_sync_token("feed"))
            assert auth._token is not None  # the session token the login obtained
            secrets.add_token("admin session token", auth._token)
            admin.set_yield_attributes("feed", ["legalname"])
            capture.object(admin.get_sync_account("feed"), "account info")
            capture.object(admin, "admin client")
            capture.object(auth, "auth")
            capture.object(auth.token_info, "token info")
            _expect(capture, "second token", lambda: admin.generate_sync_token("feed"))

        account = SyncAccount(url=url, token=token, name="feed", allow_insecure_http=True)
        capture.object(account, "sync account")
        with account.client() as client:
            capture.object(client, "sync client")
            adapter = SnapshotAdapter(people, tmp_path / "state" / "snapshot.json")
            runner = Runner(client, adapter, state_path=tmp_path / "state" / "record.json")
            plan = runner.plan()
            capture.object(plan, "plan")
            for change in plan.changes:
                capture.object(change, "change")
            report = runner.run_once()
            assert "applied" == report.outcome
            capture.object(report, "report")
            capture.object(runner.status, "status")
            for entry in people.snapshot():
                capture.object(entry, "entry")
                capture.add("entry json", entry_json(entry))

            # Kanidm refuses, in every way the error table knows.
            cs = ChangeSet(from_state=ActiveState(b"x"), to_state=REFRESH)
            for status, body in (
                (401, b'"notauthenticated"'),
                (403, b'"accessdenied"'),
                (409, b'{"attributeuniqueness":["name"]}'),
                (500, b'{"plugin":"credimport"}'),
                (500, b'"backenderror"'),
                (500, b""),
            ):
                fake.fail_next(1, status=status, body=body, path="/scim/v1/Sync")
                _expect(capture, f"apply {status}", lambda: client.apply(cs))
            fake.fail_next(3, status=503, path="/scim/v1/Sync")
            _expect(capture, "state 503", client.get_state)
            # A lost reply: the apply did not commit (stale from_state), so NotAppliedError.
            fake.drop_next_response(path="/scim/v1/Sync")
            stale = ChangeSet(from_state=ActiveState(b"stale"), to_state=ActiveState(b"y"))
            _expect(capture, "lost reply", lambda: client.apply(stale))
            _expect(capture, "sync token on admin API", client.list_sync_accounts)

        # A failed run through the runner: the report and the logged warning.
        with account.client() as client:
            failing = Runner(
                client,
                SnapshotAdapter(_People(secrets, bad_hash=True), tmp_path / "b" / "snap.json"),
                state_path=tmp_path / "b" / "record.json",
                guards=Guards.disabled(),
            )
            error = _expect(capture, "bad hash run", failing.run_once)
            assert isinstance(error, ValidationError)
            assert "password_import" in str(error)
            capture.object(error.report, "validation report")
            fake.fail_next(1, status=500, body=b'{"plugin":"credimport"}', path="/scim/v1/Sync")
            again = Runner(
                client,
                SnapshotAdapter(people, tmp_path / "c" / "snap.json"),
                state_path=tmp_path / "c" / "record.json",
                guards=Guards.disabled(),
            )
            _expect(capture, "refused run", again.run_once)
            if again.last_report is not None:
                capture.object(again.last_report, "refused report")

        # No answer at all, and no answer in time.
        fake.latency = 0.3
        with Client(url, token=token, timeout=0.05, allow_insecure_http=True) as slow:
            assert isinstance(_expect(capture, "timeout", slow.get_state), APITimeoutError)
        fake.latency = 0
        with Client("http://127.0.0.1:9", token=token, allow_insecure_http=True) as closed:
            error = _expect(capture, "refused", closed.get_state)
            assert isinstance(error, APIConnectionError)

        # Logins that fail: a wrong password, a wrong TOTP code, no TOTP callback.
        for where, wrong in (
            ("wrong password", KanidmAuth.password(ADMIN, password + "-x")),
            ("wrong totp", KanidmAuth.password(ADMIN, password, totp=lambda: "000000")),
            ("no totp", KanidmAuth.password(ADMIN, password)),
        ):
            secrets.add("wrong admin password", password + "-x")
            with Client(url, auth=wrong, allow_insecure_http=True) as bad:
                error = _expect(capture, where, bad.list_sync_accounts)
                assert isinstance(error, LoginError)
                capture.object(wrong, f"{where} auth")

        with Client(url, auth=KanidmAuth.from_token(token), allow_insecure_http=True) as wrong:
            _expect(capture, "sync token as admin", lambda: wrong.create_sync_account("x"))

    names = capture.files(tmp_path)
    assert {"record.json", "snapshot.json"} <= set(names)
    capture.assert_clean(secrets)


def entry_json(entry: Entry) -> str:
    """An entry as the plan records it (secrets digested)."""
    from kanidm_sync._plan import project_entry

    return json.dumps(project_entry(entry))


def test_decode_errors_echo_no_secret() -> None:
    """ChangeSet JSON with secrets in the wrong shape: the DecodeError names paths, not values."""
    secrets = Secrets()
    capture = Capture()
    marker = secrets.add("password hash", "DecodeSecretMarker-3s")
    urn = "urn:ietf:params:scim:schemas:kanidm:sync:1:"
    base = {
        "schemas": [urn + "account", urn + "person", urn + "posixaccount"],
        "id": "9a7c1f52-4c7d-4b0e-8a43-1e4f6f1c2d10",
        "externalId": "e",
        "name": "bob",
        "displayname": "Bob",
    }
    shapes: list[dict[str, object]] = [
        {"password_import": [marker]},
        {"password_import": {"hash": marker}},
        {"unix_password_import": [marker]},
        {"totp_import": marker},
        {"totp_import": [marker]},
        {"totp_import": [{"external_id": "t", "secret": [marker], "algo": "sha1"}]},
        {"totp_import": [{"external_id": marker, "secret": 5, "algo": marker, "step": marker}]},
        {"password_import": marker, "displayname": 5},
    ]
    for number, shape in enumerate(shapes):
        document = {
            "from_state": "Refresh",
            "to_state": {"Active": {"cookie": "MQ"}},
            "entries": [{**base, **shape}],
            "retain": "Ignore",
        }
        text = json.dumps(document)
        error = _expect(capture, f"shape {number}", lambda t=text: ChangeSet.from_json(t))
        assert isinstance(error, DecodeError)
        assert error.errors
        assert all(path.startswith("$.entries[0]") for path, _ in error.errors)
    capture.assert_clean(secrets)


def test_file_sources_echo_no_secret(tmp_path: pathlib.Path) -> None:
    """CSV, JSON and LDIF sources with bad secret fields: the errors name the field only."""
    secrets = Secrets()
    capture = Capture()
    marker = secrets.add("password hash", "FileSecretMarker-8p")
    header = "kind,name,displayname,external_id,gidnumber,password_import,unix_password_import\n"
    cases: list[tuple[str, object]] = [
        ("a.csv", CsvSource(tmp_path / "a.csv")),
        ("b.json", JsonSource(tmp_path / "b.json")),
        ("c.jsonl", JsonSource(tmp_path / "c.jsonl")),
        ("d.json", JsonSource(tmp_path / "d.json")),
        ("e.ldif", LdifSource(tmp_path / "e.ldif")),
        ("f.ldif", LdifSource(tmp_path / "f.ldif")),
        ("g.ldif", LdifSource(tmp_path / "g.ldif")),
        ("h.json", JsonSource(tmp_path / "h.json")),
    ]
    person = {"kind": "person", "name": "a", "displayname": "A", "external_id": "e"}
    contents = {
        "a.csv": header + f'person,a,A,e,,"{marker}",y,extra\n',
        "b.json": json.dumps([{**person, "password_import": [marker]}]),
        "c.jsonl": json.dumps({**person, "unix_password_import": {"h": marker}}) + "\n",
        "d.json": json.dumps([{**person, "password_import": marker, "gidnumber": "x"}]),
        "e.ldif": f"dn: uid=a,dc=x\nobjectClass: person\nuid: a\ncn: A\n"
        f"userPassword: {marker}\nuserPassword: {marker}2\n",
        "f.ldif": "dn: uid=a,dc=x\nobjectClass: person\nuid: a\ncn: A\n"
        "userPassword:: " + base64.b64encode(b"\xff" + marker.encode()).decode() + "\n",
        "g.ldif": f"dn: uid=a,dc=x\nobjectClass: person\nuid: a\ncn: A\nuserPassword:: {marker}!\n",
        "h.json": '[{"kind": "person", "password_import": "' + marker + '", ',
    }
    for name, source in cases:
        (tmp_path / name).write_text(contents[name], encoding="utf-8")
        error = _expect(capture, name, source.snapshot)  # type: ignore[attr-defined]
        assert isinstance(error, SourceError | ConfigError)
        assert name in str(error)
    capture.assert_clean(secrets)


def test_secret_files_that_are_not_text_echo_nothing(tmp_path: pathlib.Path) -> None:
    """A token file, token cache or config that is not UTF-8: a ConfigError, no bytes kept."""
    from kanidm_sync._cli._config import load_run_config

    secrets = Secrets()
    capture = Capture()
    token = secrets.add("sync token", "TokenFileMarker-5z")
    bad = token.encode() + b"\xff"
    (tmp_path / "sync.token").write_bytes(bad)
    (tmp_path / "cache.json").write_bytes(
        b'{"instances": {"": {"tokens": {"a@b": "' + bad + b'"}}}}'
    )
    (tmp_path / "broken.json").write_text(
        '{"instances": {"": {"tokens": {"a": "' + token + '"', "utf-8"
    )
    (tmp_path / "run.toml").write_bytes(
        b'[kanidm]\nurl = "https://idm"\nsync_token = "' + bad + b'"\n'
    )
    calls: list[tuple[str, Callable[[], object]]] = [
        (
            "token file",
            lambda: SyncAccount.from_token_file(tmp_path / "sync.token", url="https://i"),
        ),
        ("token cache", lambda: load_cached_token(path=tmp_path / "cache.json")),
        ("broken cache", lambda: load_cached_token(path=tmp_path / "broken.json")),
        ("run config", lambda: load_run_config(tmp_path / "run.toml")),
    ]
    for where, call in calls:
        error = _expect(capture, where, call)
        assert isinstance(error, ConfigError)
        # The file's bytes must not ride along as a linked decode error's .object / .doc.
        assert (None, None) == (error.__cause__, error.__context__)
    capture.assert_clean(secrets)


def test_ldap_bind_password_never_shown(tmp_path: pathlib.Path) -> None:
    """An LDAP source whose server is down: the error and its chain hide the bind password."""
    pytest.importorskip("ldap")
    from kanidm_sync.adapters.ldap import LdapConfig, load_config, source_from_config

    secrets = Secrets()
    capture = Capture()
    bind_pw = secrets.add("LDAP bind password", "LdapBindMarker-2w")
    token = secrets.add("sync token", "LdapSyncTokenMarker-6")
    config_file = tmp_path / "ldap-sync"
    config_file.write_text(
        f'sync_token = "{token}"\nldap_uri = "ldap://127.0.0.1:9"\n'
        f'ldap_sync_dn = "cn=sync,dc=example"\nldap_sync_pw = "{bind_pw}"\n'
        'ldap_sync_base_dn = "dc=example"\nldap_filter = "(objectClass=*)"\n'
        f'ldap_ca = "{tmp_path / "no-such-ca.pem"}"\n',
        encoding="utf-8",
    )
    with capture.logging():
        config = load_config(config_file)
        assert isinstance(config, LdapConfig)
        capture.object(config, "ldap config")
        source = source_from_config(config, timeout=2)
        capture.object(source, "ldap source")
        error = _expect(capture, "ldap fetch", lambda: source.fetch(REFRESH))
        assert isinstance(error, SourceError)
        assert "no-such-ca.pem" in str(error)
        no_ca = source_from_config(attrs_evolve(config, ldap_ca=None), timeout=2)
        error = _expect(capture, "ldap fetch without CA", lambda: no_ca.fetch(REFRESH))
        assert isinstance(error, SourceError)
        assert "cn=sync,dc=example" in str(error)
    capture.assert_clean(secrets)


def attrs_evolve(config: object, **changes: object) -> object:
    """``attrs.evolve`` for a frozen configuration."""
    import attrs

    return attrs.evolve(config, **changes)  # type: ignore[misc]


# --- the command line --------------------------------------------------------------------------


class _Cli:
    """Runs the real ``kanidm-sync`` with a private HOME; keeps every output."""

    def __init__(self, home: pathlib.Path, capture: Capture) -> None:
        self.home = home
        self.capture = capture

    def env(self, extra: dict[str, str] | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KANIDM_")}
        env["HOME"] = str(self.home)
        env.update(extra or {})
        return env

    def __call__(
        self, *args: str, env: dict[str, str] | None = None, keep: bool = True
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*COMMAND, *args],
            input="",
            capture_output=True,
            text=True,
            env=self.env(env),
            timeout=60,
            check=False,
        )
        if keep:
            self.capture.add(f"stdout of {args[:3]}", done.stdout)
        self.capture.add(f"stderr of {args[:3]}", done.stderr)
        return done

    def with_terminal(self, args: list[str], typed: Callable[[], str], env: dict[str, str]) -> int:
        """Run with a pseudo-terminal as stdin (no controlling terminal), typing ``typed()``.

        getpass flushes pending input when it prompts, so the answer is typed again every
        0.2 s until the command ends.
        """
        main, child = pty.openpty()
        try:
            proc = subprocess.Popen(
                [*COMMAND, *args],
                stdin=child,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=self.env(env),
                start_new_session=True,
            )
            os.close(child)
            child = -1
            stop = threading.Event()

            def type_answer() -> None:
                while not stop.wait(0.2):
                    os.write(main, typed().encode() + b"\n")

            typist = threading.Thread(target=type_answer, daemon=True)
            typist.start()
            try:
                out, err = proc.communicate(timeout=60)
            finally:
                stop.set()
                typist.join()
        finally:
            os.close(main)
            if child >= 0:
                os.close(child)
        self.capture.add(f"stdout of {args[:3]} (terminal)", out)
        self.capture.add(f"stderr of {args[:3]} (terminal)", err)
        return proc.returncode


def test_cli_life_cycle_leaks_no_secret(fake: FakeKanidm, url: str, tmp_path: pathlib.Path) -> None:
    """The real CLI, plain, --json and --debug, successes and failures: no secret anywhere."""
    secrets = Secrets()
    capture = Capture()
    password, key = _admin_secrets(fake, secrets)
    people = _People(secrets)
    home = tmp_path / "home"
    home.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    cli = _Cli(home, capture)
    login = {"KANIDM_PASSWORD": password}
    admin = ["--url", url, "--insecure-http", "-D", ADMIN]

    # Password + TOTP login: the code is typed at the prompt.
    code = cli.with_terminal(
        ["account", "create", "feed", "HR feed", "--debug", *admin],
        lambda: str(totp_code(key)),
        login,
    )
    assert 0 == code
    token_file = work / "sync.token"
    done = cli(
        "account",
        "generate-token",
        "feed",
        "-o",
        str(token_file),
        "--debug",
        *admin[:2],
        "--insecure-http",
        "--token",
        fake.admin_token,
    )
    assert 0 == done.returncode, done.stderr
    token = secrets.add_token("sync token", token_file.read_text(encoding="utf-8").strip())
    admin_file = work / "admin.token"
    admin_file.write_text(fake.admin_token, encoding="utf-8")
    by_file = ["--url", url, "--insecure-http", "--token-file", str(admin_file)]
    for verb in (["list"], ["get", "feed"], ["set-yield-attributes", "feed", "legalname"]):
        for flags in ([], ["--json"], ["--debug"]):
            assert 0 == cli("account", *verb, *flags, *by_file).returncode

    # The one allowed place: the token printed on stdout when asked for.
    cli("account", "destroy-token", "feed", *by_file)
    printed = cli("account", "generate-token", "feed", *by_file, keep=False)
    assert 0 == printed.returncode
    token = printed.stdout.strip().splitlines()[0].strip()
    secrets.add_token("printed sync token", token)
    token_file.write_text(token + "\n", encoding="utf-8")

    # Sources with every secret a file can carry.
    (work / "directory.ldif").write_text(
        "dn: uid=alice,ou=people\nobjectClass: inetOrgPerson\nuid: alice\ncn: Alice\n"
        f"userPassword: {people.password}\n\n"
        "dn: uid=bob,ou=people\nobjectClass: inetOrgPerson\nuid: bob\ncn: Bob\n"
        f"userPassword: {people.password}\n",
        encoding="utf-8",
    )
    (work / "people.csv").write_text(
        "kind,name,displayname,external_id,gidnumber,password_import,unix_password_import\n"
        f"person,carol,Carol,uid=carol,30003,{people.password},{people.unix}\n",
        encoding="utf-8",
    )
    (work / "bad.json").write_text(
        json.dumps(
            [
                {
                    "kind": "person",
                    "name": "dave",
                    "displayname": "D",
                    "external_id": "d",
                    "password_import": people.bad,
                }
            ]
        ),
        encoding="utf-8",
    )
    configs = {}
    for name, source in (("ldif", "directory.ldif"), ("csv", "people.csv"), ("json", "bad.json")):
        config = work / f"{name}.toml"
        config.write_text(
            f'[kanidm]\nurl = "{url}"\nsync_token_file = "sync.token"\ninsecure_http = true\n'
            f'[source]\ntype = "{name}"\npath = "{source}"\n[guards]\nallow_shrink = true\n'
            "max_delete_count = 1000\n",
            encoding="utf-8",
        )
        configs[name] = str(config)
    for name in ("ldif", "csv"):
        for verb in ("plan", "run", "status"):
            for flags in ([], ["--json"], ["--debug", "--json"]):
                cli(verb, "-c", configs[name], *flags)
    assert 0 == cli("status", "-c", configs["csv"]).returncode
    assert "Carol" == fake.store.entry("carol").first("displayname")

    # Failures: a hash Kanidm would refuse, Kanidm refusing, and refusing the token.
    for flags in ([], ["--json"], ["--debug", "--json"]):
        assert 3 == cli("run", "-c", configs["json"], *flags).returncode
    for status, body in (
        (401, b'"notauthenticated"'),
        (403, b'"accessdenied"'),
        (409, b'{"attributeuniqueness":["name"]}'),
        (500, b'{"plugin":"credimport"}'),
        (500, b'"backenderror"'),
    ):
        (work / "people.csv").write_text(
            (work / "people.csv").read_text(encoding="utf-8").replace("Carol", f"Carol {status}"),
            encoding="utf-8",
        )
        fake.fail_next(1, status=status, body=body, path="/scim/v1/Sync")
        assert 1 == cli("run", "-c", configs["csv"], "--debug", "--json").returncode
    assert 1 == cli("status", "-c", configs["csv"], "--debug").returncode
    # A login that fails, a bogus token, a closed port.
    wrong = {"KANIDM_PASSWORD": password + "-x"}
    secrets.add("wrong admin password", password + "-x")
    assert 0 != cli.with_terminal(["account", "list", "--debug", *admin], lambda: "123456", wrong)
    assert (
        1 == cli("account", "list", "--debug", "--json", *by_file[:3], "--token", token).returncode
    )
    closed = ["--url", "http://127.0.0.1:9", "--insecure-http", "--token-file", str(admin_file)]
    assert 1 == cli("account", "list", "--debug", *closed).returncode
    # An LDAP configuration whose bind password must stay hidden.
    if _has_python_ldap():
        bind_pw = secrets.add("LDAP bind password", "CliLdapBindMarker-4e")
        ldap_config = work / "ldap-sync"
        ldap_config.write_text(
            f'sync_token = "{token}"\nldap_uri = "ldap://127.0.0.1:9"\n'
            f'ldap_sync_dn = "cn=sync,dc=example"\nldap_sync_pw = "{bind_pw}"\n'
            'ldap_sync_base_dn = "dc=example"\nldap_filter = "(objectClass=*)"\n',
            encoding="utf-8",
        )
        for flags in ([], ["--json"], ["--debug", "--json"]):
            done = cli("run", "-c", str(ldap_config), "--url", url, "--insecure-http", *flags)
            assert 1 == done.returncode

    for name in ("ldif", "csv"):
        state = work / f"{name}.state"
        assert {"record.sqlite", "snapshot.sqlite", "status.json"} <= set(capture.files(state))
    capture.assert_clean(secrets)


def _has_python_ldap() -> bool:
    try:
        import ldap  # noqa: F401
    except ImportError:
        return False
    return True


def test_httpcore_debug_logs_carry_no_request_header(fake: FakeKanidm, url: str) -> None:
    """At DEBUG, httpx and httpcore log request lines and response headers, never the token."""
    secrets = Secrets()
    capture = Capture()
    token = secrets.add_token("admin API token", fake.admin_token)
    with capture.logging(), Client(url, token=token, allow_insecure_http=True) as admin:
        admin.list_sync_accounts()
    logged = [text for where, text in capture.texts if where.startswith("log httpcore")]
    # The check is only meaningful if httpcore did log the exchange, headers included.
    assert any("receive_response_headers.complete" in text for text in logged)
    assert any("HTTP Request: GET" in text for where, text in capture.texts if "httpx" in where)
    capture.assert_clean(secrets)


def test_async_login_and_apply_leak_no_secret(fake: FakeKanidm) -> None:
    """The async client's login and apply over the in-process transport leak nothing."""
    import anyio

    from kanidm_sync import AsyncClient

    secrets = Secrets()
    capture = Capture()
    password, key = _admin_secrets(fake, secrets)

    async def main() -> None:
        auth = KanidmAuth.password(ADMIN, password, totp=lambda: totp_code(key))
        async with httpx.AsyncClient(transport=fake.transport) as http:
            async with AsyncClient(fake.url, auth=auth, http_client=http) as admin:
                await admin.create_sync_account("feed")
                token = secrets.add_token("sync token", await admin.generate_sync_token("feed"))
                capture.object(admin, "async admin")
            async with AsyncClient(fake.url, token=token, http_client=http) as sync:
                capture.object(sync, "async sync")
                fake.fail_next(1, status=401, body=b'"notauthenticated"')
                with pytest.raises(KanidmSyncError) as info:
                    await sync.get_state()
                capture.exception(info.value, "async 401")

    with capture.logging():
        anyio.run(main)
    capture.assert_clean(secrets)
