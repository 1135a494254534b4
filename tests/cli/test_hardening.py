"""The command line under stress: Ctrl-C mid-run, two runs at once, hostile files.

Each test fails without its fix (issue 12): an interrupted run was not recorded and its
message did not say the apply may have committed; two `run`s shared a state directory
unlocked; validation problems were printed on one line; a deeply nested TOML file was "a
bug"; killed writes left temporary files forever; `generate-token -o` wrote through a
symbolic link.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import stat
import subprocess
import sys
import time

import pytest

from kanidm_sync._files import write_atomic
from kanidm_sync._lock import RunLock

from ._helpers import COMMAND, Cli, Server, assert_one_error_line, write_run_config


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(done.stdout)


def test_ctrl_c_during_a_run_is_recorded_and_explained(
    cli: Cli, server: Server, tmp_path: pathlib.Path
) -> None:
    """Ctrl-C mid-run: exit 130, the apply may have committed, `status` counts the run."""
    account = server.fake.provision_sync_account("hr_feed")
    pipe = tmp_path / "pipe.ldif"
    os.mkfifo(pipe)  # reading the source blocks until the test interrupts the run
    config = write_run_config(tmp_path, server, account, source='type = "ldif"\npath = "pipe.ldif"')
    proc = subprocess.Popen(
        [*COMMAND, "run", "-c", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli.env(),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not server.fake.history and time.monotonic() < deadline:
            time.sleep(0.05)  # wait until the run has read Kanidm's state
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert 130 == proc.returncode, err
    assert "kanidm-sync: warning: interrupted during the run: the apply may have committed" in err
    assert "the next run re-reads it and converges" in err
    assert err.rstrip().endswith("kanidm-sync: interrupted")
    assert "Traceback" not in err
    status = cli("status", "-c", str(config), "--json")
    assert 1 == status.code  # the last run did not succeed
    recorded = json.loads(status.stdout)["status"]
    assert ("interrupted", 1, 1, False) == (
        recorded["state"], recorded["runs"], recorded["failures"], recorded["healthy"]
    )  # fmt: skip
    assert "KeyboardInterrupt" == recorded["last_error_detail"]["type"]
    text = cli("status", "-c", str(config))
    assert "last run: interrupted at " in text.stdout
    assert "last error: interrupted (Ctrl-C): the apply may have committed" in text.stdout


def test_a_second_run_on_one_state_directory_is_refused(
    cli: Cli, server: Server, tmp_path: pathlib.Path
) -> None:
    """While one `run` holds the state directory, another fails naming the lock and pid."""
    account = server.fake.provision_sync_account("hr_feed")
    config = write_run_config(tmp_path, server, account)
    state = tmp_path / "sync.state"
    state.mkdir()
    with RunLock(state / "status.json") as held:  # as a running `run` holds it
        result = cli("run", "-c", str(config))
        assert 1 == result.code
        assert_one_error_line(
            result, f"(process {os.getpid()})", str(held.path), "nothing was done"
        )
        assert "hint: wait for it to finish" in result.stderr
        assert server.fake.cookie("hr_feed") is None  # nothing was sent
        assert not (state / "status.json").exists()  # the other run's status is untouched
        # `plan` writes no status and takes the runner's own lock per plan: it still works.
        assert 0 == cli("plan", "-c", str(config)).code
    done = cli("run", "-c", str(config))
    assert 0 == done.code, done.stderr
    assert 1 == json.loads(cli("status", "-c", str(config), "--json").stdout)["status"]["runs"]


def test_the_runners_own_lock_is_reported_in_the_commands_words(
    cli: Cli, server: Server, tmp_path: pathlib.Path
) -> None:
    """`plan` while a run holds the record's lock: exit 1, the directory and pid, no state_path."""
    config = write_run_config(tmp_path, server, server.fake.provision_sync_account("hr_feed"))
    state = tmp_path / "sync.state"
    state.mkdir()
    with RunLock(state / "record.sqlite") as held:  # as the runner holds it while it runs
        result = cli("plan", "-c", str(config))
    assert 1 == result.code
    assert_one_error_line(
        result, f"(process {os.getpid()})", f"state directory {state}", str(held.path)
    )
    assert "state_path" not in result.stderr
    assert "hint: wait for it to finish" in result.stderr


def test_validation_problems_are_one_per_line(
    cli: Cli, server: Server, tmp_path: pathlib.Path
) -> None:
    """Local validation prints each problem on its own line, with its entry and field."""
    account = server.fake.provision_sync_account("hr_feed")
    (tmp_path / "people.json").write_text(
        json.dumps(
            [
                {"external_id": "uid=ann", "name": "ann smith", "displayname": "Ann"},
                {"external_id": "uid=bo", "name": "bo", "displayname": "Bo"},
                {"external_id": "uid=cy", "name": "cy jones", "displayname": "Cy"},
            ]
        )
    )
    config = write_run_config(
        tmp_path, server, account,
        source='type = "json"\npath = "people.json"\ndefault_kind = "person"',
    )  # fmt: skip
    result = cli("run", "-c", str(config))
    assert 3 == result.code, result.stderr
    assert_one_error_line(result, "fail local validation (2 errors", "nothing was sent")
    problems = [line for line in result.stderr.splitlines() if line.startswith("  error: ")]
    assert 2 == len(problems), result.stderr
    assert "entries[0]" in problems[0]
    assert "'uid=ann'" in problems[0]
    assert "entries[2]" in problems[1]
    assert "'uid=cy'" in problems[1]
    assert all("field name" in p for p in problems)
    as_json = cli("run", "-c", str(config), "--json")
    error = json.loads(as_json.stdout)["error"]
    assert ["uid=ann", "uid=cy"] == [p["external_id"] for p in error["problems"]]
    assert {"name"} == {p["field"] for p in error["problems"]}


@pytest.mark.parametrize("where", ["config", "rules"])
def test_deeply_nested_toml_is_a_configuration_error(
    cli: Cli, server: Server, tmp_path: pathlib.Path, where: str
) -> None:
    """A hostile, deeply nested file exits 2 naming the file, not "a bug" (exit 1)."""
    nested = "x = " + "[" * 3000 + "]" * 3000 + "\n"
    account = server.fake.provision_sync_account("hr_feed")
    if where == "config":
        config = write_run_config(tmp_path, server, account, extra=nested)
        named = "sync.toml"
    else:
        (tmp_path / "rules.toml").write_text(nested)
        config = write_run_config(tmp_path, server, account, extra='[rules]\nfile = "rules.toml"\n')
        named = "rules.toml"
    result = cli("plan", "-c", str(config))
    assert 2 == result.code, result.stderr
    assert_one_error_line(result, named, "nested too deeply")
    assert "bug" not in result.stderr


def test_temporary_files_of_killed_writes_are_removed(tmp_path: pathlib.Path) -> None:
    """A write removes the temporary files dead writers left; a live writer's stay."""
    target = tmp_path / "status.json"
    dead = tmp_path / f".status.json.tmp-{_dead_pid()}-0badc0de"
    live = tmp_path / f".status.json.tmp-{os.getpid()}-0badc0de"
    other = tmp_path / ".record.sqlite.tmp-1-0badc0de"  # another file's: not this write's
    for path in (dead, live, other):
        path.write_text("half a document")
    write_atomic(target, "{}")
    assert "{}" == target.read_text()
    assert not dead.exists()
    assert live.exists()
    assert other.exists()
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".status.json.tmp-")]
    assert [live.name] == leftovers  # the write's own temporary file is gone too


def test_a_run_cleans_the_state_directory_of_dead_writers(
    cli: Cli, server: Server, tmp_path: pathlib.Path
) -> None:
    """`run` writes its status atomically and removes a killed run's temporary file."""
    config = write_run_config(tmp_path, server, server.fake.provision_sync_account("hr_feed"))
    state = tmp_path / "sync.state"
    state.mkdir()
    stale = state / f".status.json.tmp-{_dead_pid()}-12345678"
    stale.write_text('{"format": "kanidm-sync st')
    assert 0 == cli("run", "-c", str(config)).code
    assert not stale.exists()
    assert 0o600 == stat.S_IMODE((state / "status.json").stat().st_mode)


def test_generate_token_refuses_a_symlink_and_issues_no_token(
    cli: Cli, server: Server, tmp_path: pathlib.Path
) -> None:
    """`-o LINK` is refused before Kanidm issues a token; the link's target is untouched."""
    server.fake.create_sync_account("hr_feed")
    victim = tmp_path / "authorized_keys"
    victim.write_text("ssh-ed25519 AAAA precious\n")
    link = tmp_path / "hr.token"
    link.symlink_to(victim)
    result = cli("account", "generate-token", "hr_feed", "-o", str(link), *server.admin())
    assert 2 == result.code
    assert_one_error_line(result, str(link), "symbolic link")
    assert "ssh-ed25519 AAAA precious\n" == victim.read_text()
    got = json.loads(cli("account", "get", "hr_feed", "--json", *server.admin()).stdout)
    assert got["has_token"] is False  # no token was issued and lost


def test_generate_token_file_is_0600_even_when_it_existed(
    cli: Cli, server: Server, tmp_path: pathlib.Path
) -> None:
    """An existing, world-readable file is made 0600 and replaced; a pipe is refused."""
    server.fake.create_sync_account("hr_feed")
    target = tmp_path / "hr.token"
    target.write_text("an old, longer token that must not survive in part\n")
    target.chmod(0o644)
    result = cli("account", "generate-token", "hr_feed", "-o", str(target), *server.admin())
    assert 0 == result.code, result.stderr
    assert 0o600 == stat.S_IMODE(target.stat().st_mode)
    token = target.read_text()
    assert 1 == token.count("\n")
    assert "old" not in token
    server.fake.create_sync_account("other")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    refused = cli("account", "generate-token", "other", "-o", str(fifo), *server.admin())
    assert 2 == refused.code
    assert_one_error_line(refused, "not a plain file")
    missing_dir = tmp_path / "no" / "such" / "dir" / "x.token"
    failed = cli("account", "generate-token", "other", "-o", str(missing_dir), *server.admin())
    assert 1 == failed.code
    got = json.loads(cli("account", "get", "other", "--json", *server.admin()).stdout)
    assert got["has_token"] is False
