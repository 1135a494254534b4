"""What a newcomer found in the command line: status history, option names, small words."""

from __future__ import annotations

import json
import pathlib

from kanidm_sync._cli._run import merge_status
from kanidm_sync._types import JSONObject

from ._helpers import LDIF, Cli, Server, assert_one_error_line, write_run_config

PYTHON_WORDS = ("allow_deletes=True", "Guards(", "allow_insecure_http", "allow_empty_source=True")


def _without_bob() -> str:
    blocks = LDIF.split("\n\n")
    kept = [b for b in blocks if "uid=bob" not in b.split("\n")[0]]
    return "\n\n".join(kept).replace("member: uid=bob,ou=people,dc=example,dc=org\n", "")


def test_status_remembers_runs_of_earlier_processes(
    cli: Cli, server: Server, tmp_path: pathlib.Path
) -> None:
    """A success, then a failure in a new process: 2 runs, 1 failed, and the last success."""
    config = write_run_config(tmp_path, server, server.fake.provision_sync_account("hr_feed"))
    assert 0 == cli("run", "-c", str(config)).code
    first = json.loads(cli("status", "-c", str(config), "--json").stdout)["status"]
    (tmp_path / "directory.ldif").unlink()
    assert 1 == cli("run", "-c", str(config)).code
    status = cli("status", "-c", str(config))
    assert 1 == status.code
    assert "(2 runs, 1 failed)" in status.stdout
    assert f"last success: {first['last_success_at']}" in status.stdout
    assert "last success: never" not in status.stdout
    data = json.loads(cli("status", "-c", str(config), "--json").stdout)["status"]
    assert (2, 1, 1, "failing") == (
        data["runs"],
        data["failures"],
        data["consecutive_failures"],
        data["state"],
    )


def test_merge_status_carries_a_failure_streak_across_processes() -> None:
    """Failures in two processes add to the streak; a success resets it."""
    earlier: JSONObject = {
        "runs": 3,
        "failures": 2,
        "consecutive_failures": 2,
        "last_success_at": "t1",
    }
    failed: JSONObject = {
        "state": "failing",
        "runs": 1,
        "failures": 1,
        "consecutive_failures": 1,
        "last_success_at": None,
        "last_error_at": "t5",
    }
    merged = merge_status(earlier, failed)
    assert (4, 3, 3, "t1") == (
        merged["runs"],
        merged["failures"],
        merged["consecutive_failures"],
        merged["last_success_at"],
    )
    ok: JSONObject = {**failed, "state": "ok", "failures": 0, "consecutive_failures": 0}
    ok["last_success_at"], ok["last_error_at"] = "t6", None
    merged = merge_status({**earlier, "last_error": "X: y", "last_error_at": "t0"}, ok)
    assert (0, "t6", "X: y") == (
        merged["consecutive_failures"],
        merged["last_success_at"],
        merged["last_error"],
    )


def test_schedule_end_clears_next_run_due(cli: Cli, server: Server, tmp_path: pathlib.Path) -> None:
    """After `run --schedule --max-runs 2` stops, `status` shows no next run."""
    config = write_run_config(tmp_path, server, server.fake.provision_sync_account("hr_feed"))
    assert 0 == cli("run", "-c", str(config), "--schedule", "0.01", "--max-runs", "2").code
    status = cli("status", "-c", str(config))
    assert "next run due" not in status.stdout
    data = json.loads(cli("status", "-c", str(config), "--json").stdout)
    assert data["status"]["next_run_at"] is None


def test_deletion_guard_names_the_option(cli: Cli, server: Server, tmp_path: pathlib.Path) -> None:
    """The refusal names --allow-deletes and the [guards] keys, not Python arguments."""
    config = write_run_config(
        tmp_path,
        server,
        server.fake.provision_sync_account("hr_feed"),
        extra="[guards]\nmax_delete_count = 0\nmax_delete_fraction = 0.0\n",
    )
    assert 0 == cli("run", "-c", str(config)).code
    (tmp_path / "directory.ldif").write_text(_without_bob())
    refused = cli("run", "-c", str(config))
    assert 3 == refused.code
    assert_one_error_line(refused, "would delete 1 of 3", "max_delete_count")
    assert "--allow-deletes" in refused.stderr
    assert not [w for w in PYTHON_WORDS if w in refused.stderr]
    data = json.loads(cli("run", "-c", str(config), "--json").stdout)
    assert "--allow-deletes" in data["error"]["hint"]


def test_empty_source_names_the_guards_key(
    cli: Cli, server: Server, tmp_path: pathlib.Path
) -> None:
    """An emptied CSV is refused with the [guards] allow_empty_source key."""
    config = write_run_config(
        tmp_path,
        server,
        server.fake.provision_sync_account("hr_feed"),
        source='type = "csv"\npath = "people.csv"\ndefault_kind = "person"',
    )
    csv = tmp_path / "people.csv"
    csv.write_text("external_id,name,displayname\nuid=a,a,A\nuid=b,b,B\n", encoding="utf-8")
    assert 0 == cli("run", "-c", str(config)).code
    csv.write_text("external_id,name,displayname\n", encoding="utf-8")
    refused = cli("run", "-c", str(config))
    assert 3 == refused.code, refused.stderr
    assert_one_error_line(refused, "no entries")
    assert "allow_empty_source = true" in refused.stderr
    assert "[guards]" in refused.stderr
    assert not [w for w in PYTHON_WORDS if w in refused.stderr]
    assert 2 == sum(e.state == "live" for e in server.fake.store.entries() if e.name in ("a", "b"))


def test_plain_http_message_names_the_flag_only(cli: Cli, server: Server) -> None:
    """The plain-http refusal does not tell a CLI user a Python argument."""
    result = cli(
        "account", "list", "--url", server.url, "--token-file", str(server.admin_token_file)
    )
    assert 2 == result.code
    assert_one_error_line(result, "plain http")
    assert "--insecure-http" in result.stderr
    assert "allow_insecure_http" not in result.stderr


def test_nothing_to_do_says_nothing_to_send(
    cli: Cli, server: Server, tmp_path: pathlib.Path
) -> None:
    """A second identical run prints "nothing to send", not "0 of 1 requests sent"."""
    config = write_run_config(tmp_path, server, server.fake.provision_sync_account("hr_feed"))
    assert 0 == cli("run", "-c", str(config)).code
    again = cli("run", "-c", str(config))
    assert again.stdout.startswith("run nothing-to-do")
    assert "nothing to send" in again.stdout
    assert "requests sent" not in again.stdout


def test_status_after_finalise_says_the_account_may_be_gone(
    cli: Cli, server: Server, tmp_path: pathlib.Path
) -> None:
    """After finalise the sync token is refused; status says why that may be."""
    config = write_run_config(tmp_path, server, server.fake.provision_sync_account("hr_feed"))
    assert 0 == cli("run", "-c", str(config)).code
    assert 0 == cli("account", "finalise", "hr_feed", "--yes", *server.admin()).code
    status = cli("status", "-c", str(config))
    assert 1 == status.code
    assert_one_error_line(status, "may have been finalised or terminated")


def test_finalise_prompt_says_recycled_entries_stay_recycled(cli: Cli, server: Server) -> None:
    """The finalise explanation matches spec §5: recycled entries stay in the recycle bin."""
    server.fake.provision_sync_account("hr_feed")
    result = cli("account", "finalise", "hr_feed", *server.admin())
    assert 3 == result.code
    text = " ".join(result.stderr.split())
    assert "every live entry it owns KEEPS" in text
    assert "entries already in the recycle bin stay there, unlinked" in text
    assert "(live, and in the recycle bin) KEEPS" not in text
