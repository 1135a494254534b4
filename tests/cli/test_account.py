"""``kanidm-sync account ...``: every verb through the real console script over HTTP."""

from __future__ import annotations

import json
import pathlib
import stat
import uuid

import pytest

from kanidm_sync import AuthenticationError, ChangeSet, Client, Person, RefreshState
from kanidm_sync._proto._state import ActiveState

from ._helpers import Cli, Server, assert_one_error_line, write_run_config


def _seed(server: Server, name: str = "hr_feed") -> tuple[str, list[uuid.UUID]]:
    """Give account ``name`` a token and two synced persons; return the token and their ids."""
    account = server.fake.provision_sync_account(name)
    ids = [uuid.uuid5(uuid.NAMESPACE_DNS, f"{name}-{i}") for i in range(2)]
    people = [
        Person(id=i, external_id=f"uid=p{n},dc=example", name=f"p{n}", displayname=f"P {n}")
        for n, i in enumerate(ids)
    ]
    with Client(server.url, token=account.token, allow_insecure_http=True) as client:
        client.apply(
            ChangeSet(from_state=RefreshState(), to_state=ActiveState(b"c1"), entries=people)
        )
    return account.token, ids


def test_list_empty_and_json(cli: Cli, server: Server) -> None:
    """`list` with no account prints nothing on stdout, a note on stderr, and [] as JSON."""
    text = cli("account", "list", *server.admin())
    assert 0 == text.code
    assert "" == text.stdout
    assert "no sync accounts" in text.stderr
    as_json = cli("account", "list", "--json", *server.admin())
    assert 0 == as_json.code
    assert [] == json.loads(as_json.stdout)
    before_command = cli("--json", "account", "list", *server.admin())
    assert [] == json.loads(before_command.stdout)


def test_create_then_list_and_get(cli: Cli, server: Server) -> None:
    """`create` makes an account in Refresh without a token; `list` and `get` show it."""
    created = cli("account", "create", "hr_feed", "HR feed", *server.admin())
    assert 0 == created.code, created.stderr
    assert "created sync account hr_feed" in created.stderr
    listed = cli("account", "list", *server.admin())
    assert 0 == listed.code
    header, row = listed.stdout.splitlines()
    assert header.split() == ["NAME", "UUID", "TOKEN", "STATE", "DESCRIPTION"]
    assert ["hr_feed", "no", "refresh", "HR", "feed"] == [row.split()[0], *row.split()[2:]]
    got = cli("account", "get", "hr_feed", "--json", *server.admin())
    data = json.loads(got.stdout)
    assert {
        "name": "hr_feed",
        "description": "HR feed",
        "has_token": False,
        "state": "refresh",
        "yield_attributes": [],
        "credential_portal": None,
    } == {k: v for k, v in data.items() if k != "uuid"}
    assert server.fake.store.resolve_sync_account("hr_feed") == uuid.UUID(data["uuid"])
    text = cli("account", "get", "hr_feed", *server.admin())
    assert "sync token:        none" in text.stdout


def test_create_duplicate_fails_with_one_line(cli: Cli, server: Server) -> None:
    """A duplicate name exits 1 with one error line and no traceback."""
    server.fake.create_sync_account("hr_feed")
    result = cli("account", "create", "hr_feed", *server.admin())
    assert 1 == result.code
    assert_one_error_line(result, "409")


def test_get_unknown_account_exits_2(cli: Cli, server: Server) -> None:
    """`get` of a name Kanidm does not know is a usage error naming the account."""
    result = cli("account", "get", "nobody", *server.admin())
    assert 2 == result.code
    assert_one_error_line(result, "'nobody'")


def test_generate_token_prints_only_the_token(cli: Cli, server: Server) -> None:
    """`generate-token` prints the token alone on stdout, and it works as a sync token."""
    server.fake.create_sync_account("hr_feed")
    result = cli("account", "generate-token", "hr_feed", "mylabel", *server.admin())
    assert 0 == result.code, result.stderr
    token = result.stdout.strip()
    assert 1 == len(result.stdout.splitlines())
    assert token not in result.stderr
    with Client(server.url, token=token, allow_insecure_http=True) as client:
        assert RefreshState() == client.get_state()


def test_generate_token_to_file_and_json(cli: Cli, server: Server, tmp_path: pathlib.Path) -> None:
    """`--output` writes the token to a 0600 file and prints no token; `--json` carries it."""
    server.fake.create_sync_account("hr_feed")
    target = tmp_path / "hr.token"
    result = cli("account", "generate-token", "hr_feed", "-o", str(target), *server.admin())
    assert 0 == result.code, result.stderr
    token = target.read_text().strip()
    assert 0o600 == stat.S_IMODE(target.stat().st_mode)
    assert token not in result.stdout + result.stderr
    server.fake.create_sync_account("other")
    as_json = cli("account", "generate-token", "other", "--json", *server.admin())
    data = json.loads(as_json.stdout)
    assert ("other", "kanidm-sync") == (data["name"], data["label"])
    with Client(server.url, token=data["token"], allow_insecure_http=True) as client:
        assert RefreshState() == client.get_state()


def test_generate_second_token_says_destroy_first(cli: Cli, server: Server) -> None:
    """A second token fails (exit 1, not a usage error) before asking Kanidm, naming the fix."""
    server.fake.provision_sync_account("hr_feed")
    result = cli("account", "generate-token", "hr_feed", *server.admin())
    assert 1 == result.code
    assert_one_error_line(result, "destroy-token hr_feed")
    assert "" == result.stdout


def test_destroy_token_revokes_it(cli: Cli, server: Server) -> None:
    """`destroy-token` makes the old token fail with 401; entries and cookie stay."""
    token, ids = _seed(server)
    result = cli("account", "destroy-token", "hr_feed", *server.admin())
    assert 0 == result.code, result.stderr
    got = json.loads(cli("account", "get", "hr_feed", "--json", *server.admin()).stdout)
    assert (False, "active") == (got["has_token"], got["state"])
    assert all(server.fake.store.entry(i) is not None for i in ids)
    with (
        Client(server.url, token=token, allow_insecure_http=True) as client,
        pytest.raises(AuthenticationError),
    ):
        client.get_state()


def test_force_refresh_drops_the_cookie(cli: Cli, server: Server) -> None:
    """`force-refresh` puts the account back in Refresh without touching entries."""
    _, ids = _seed(server)
    assert b"c1" == server.fake.cookie("hr_feed")
    result = cli("account", "force-refresh", "hr_feed", "--json", *server.admin())
    assert 0 == result.code, result.stderr
    assert {"name": "hr_feed", "state": "refresh"} == json.loads(result.stdout)
    assert server.fake.cookie("hr_feed") is None
    assert all(server.fake.store.entry(i) is not None for i in ids)


def test_set_and_clear_yield_attributes(cli: Cli, server: Server) -> None:
    """`set-yield-attributes` sets the list; without attributes it clears it."""
    server.fake.create_sync_account("hr_feed")
    result = cli(
        "account", "set-yield-attributes", "hr_feed", "passkeys", "Mail", "--json", *server.admin()
    )
    assert 0 == result.code, result.stderr
    assert ["mail", "passkeys"] == json.loads(result.stdout)["yield_attributes"]
    cleared = cli("account", "set-yield-attributes", "hr_feed", "--json", *server.admin())
    assert [] == json.loads(cleared.stdout)["yield_attributes"]


def test_set_and_clear_credential_portal(cli: Cli, server: Server) -> None:
    """`set-credential-portal` sets a URL, refuses a bad one, and clears without one."""
    server.fake.create_sync_account("hr_feed")
    url = "https://portal.example.org/reset"
    result = cli("account", "set-credential-portal", "hr_feed", url, "--json", *server.admin())
    assert 0 == result.code, result.stderr
    assert url == json.loads(result.stdout)["credential_portal"]
    bad = cli("account", "set-credential-portal", "hr_feed", "not a url", *server.admin())
    assert 1 == bad.code
    assert_one_error_line(bad, "400")
    cleared = cli("account", "set-credential-portal", "hr_feed", *server.admin())
    assert 0 == cleared.code
    assert (
        server.fake.store.credential_portal(server.fake.store.resolve_sync_account("hr_feed"))
        is None
    )  # type: ignore[arg-type]


def test_finalise_refuses_without_yes_and_without_tty(cli: Cli, server: Server) -> None:
    """Without --yes and a terminal, finalise explains, refuses (exit 3), changes nothing."""
    _seed(server)
    before = server.fake.store.fingerprint()
    result = cli("account", "finalise", "hr_feed", *server.admin())
    assert 3 == result.code
    assert_one_error_line(result, "--yes")
    assert "FINALISE" in result.stderr
    assert "cannot list or count" in result.stderr
    assert before == server.fake.store.fingerprint()


def test_finalise_yes_keeps_entries_as_native(cli: Cli, server: Server) -> None:
    """`finalise --yes` deletes the account and leaves its entries as ordinary entries."""
    token, ids = _seed(server)
    result = cli("account", "finalise", "hr_feed", "--yes", "--json", *server.admin())
    assert 0 == result.code, result.stderr
    assert {"action": "finalise", "done": True} == {
        k: v for k, v in json.loads(result.stdout).items() if k in ("action", "done")
    }
    for entry_id in ids:
        entry = server.fake.store.entry(entry_id)
        assert entry is not None
        assert ("live", False) == (entry.state, "sync_object" in entry.classes)
    assert [] == json.loads(cli("account", "list", "--json", *server.admin()).stdout)
    with (
        Client(server.url, token=token, allow_insecure_http=True) as client,
        pytest.raises(AuthenticationError),
    ):
        client.get_state()  # the account is gone, and its token with it


def test_terminate_with_typed_confirmation_deletes_entries(cli: Cli, server: Server) -> None:
    """At a terminal, typing the account name confirms terminate; its entries are recycled."""
    _, ids = _seed(server)
    result = cli.with_tty(["account", "terminate", "hr_feed", *server.admin()], "hr_feed")
    assert 0 == result.code, result.stderr
    assert "TERMINATE" in result.stderr
    assert "Type the account name (hr_feed)" in result.stderr
    assert ["recycled", "recycled"] == [server.fake.store.entry(i).state for i in ids]  # type: ignore[union-attr]


def test_terminate_wrong_confirmation_changes_nothing(cli: Cli, server: Server) -> None:
    """A wrong answer at the prompt refuses (exit 3) and leaves everything as it was."""
    _seed(server)
    before = server.fake.store.fingerprint()
    result = cli.with_tty(["account", "terminate", "hr_feed", *server.admin()], "yes")
    assert 3 == result.code
    assert_one_error_line(result, "not confirmed")
    assert before == server.fake.store.fingerprint()


def test_finalise_counts_entries_from_a_run_record(
    cli: Cli, server: Server, tmp_path: pathlib.Path
) -> None:
    """With --config, finalise says how many entries the local record holds."""
    account = server.fake.provision_sync_account("hr_feed")
    config = write_run_config(tmp_path, server, account)
    assert 0 == cli("run", "-c", str(config)).code
    result = cli("account", "finalise", "hr_feed", "--config", str(config), *server.admin())
    assert 3 == result.code
    assert "says it owns 3 entries" in result.stderr


def test_bad_admin_token_is_one_line_with_hint_and_no_secret(cli: Cli, server: Server) -> None:
    """A refused token exits 1 with one error line and a hint; the token is never printed."""
    secret = server.fake.generate_sync_token(str(server.fake.create_sync_account("x")))
    result = cli("account", "list", "--url", server.url, "--token", secret, "--insecure-http")
    assert 1 == result.code
    assert_one_error_line(result)
    assert "hint:" in result.stderr
    assert secret not in result.stdout + result.stderr


def test_read_only_admin_cannot_create(cli: Cli, server: Server, tmp_path: pathlib.Path) -> None:
    """A read-only admin token gets a permission error (exit 1) for a write."""
    token_file = tmp_path / "ro.token"
    token_file.write_text(server.fake.read_only_admin_token())
    result = cli(
        "account", "create", "x", "--url", server.url, "--token-file", str(token_file),
        "--insecure-http",
    )  # fmt: skip
    assert 1 == result.code
    assert_one_error_line(result, "PermissionDeniedError")


def test_password_login_with_name(cli: Cli, server: Server) -> None:
    """-D NAME without a cached session logs in with KANIDM_PASSWORD."""
    password = server.fake.recover_account("admin")
    result = cli(
        "account", "create", "hr_feed", "-D", "admin", "--url", server.url, "--insecure-http",
        env={"KANIDM_PASSWORD": password},
    )  # fmt: skip
    assert 0 == result.code, result.stderr
    assert server.fake.store.resolve_sync_account("hr_feed") is not None
    assert password not in result.stdout + result.stderr


def test_token_cache_and_kanidm_url(cli: Cli, server: Server) -> None:
    """Without token options, the `kanidm login` cache and KANIDM_URL are used."""
    cache = cli.home / ".cache" / "kanidm_tokens"
    cache.parent.mkdir(parents=True)
    cache.write_text(
        json.dumps(
            {
                "instances": {
                    "": {"keys": {}, "tokens": {"admin@kanidm.test": server.fake.admin_token}}
                }
            }
        )
    )
    result = cli("account", "create", "hr_feed", "--insecure-http", env={"KANIDM_URL": server.url})
    assert 0 == result.code, result.stderr
    assert server.fake.store.resolve_sync_account("hr_feed") is not None


def test_no_credentials_is_a_usage_error(cli: Cli, server: Server) -> None:
    """No token, no cache and no name: exit 2 with a hint on how to authenticate."""
    result = cli("account", "list", "--url", server.url, "--insecure-http")
    assert 2 == result.code
    assert_one_error_line(result, "no admin credentials")


def test_plain_http_needs_the_flag(cli: Cli, server: Server) -> None:
    """An http:// URL without --insecure-http is refused with a hint naming the flag."""
    result = cli(
        "account", "list", "--url", server.url, "--token-file", str(server.admin_token_file)
    )
    assert 2 == result.code
    assert_one_error_line(result, "plain http")
    assert "--insecure-http" in result.stderr


def test_debug_shows_the_traceback(cli: Cli, server: Server) -> None:
    """--debug lets the traceback through."""
    result = cli("account", "get", "nobody", "--debug", *server.admin())
    assert 0 != result.code
    assert "Traceback" in result.stderr
