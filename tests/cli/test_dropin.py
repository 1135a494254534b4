"""Drop-in configurations: the reference tools' files as they are, and their cron schedule.

Kanidm's own example files (tests/fixtures/kanidm-examples/) load with warnings only; a
`run --schedule` started from such a file runs at the times of its `schedule` (UTC), and a
`status_bind` is served, loopback only (tests/cli/test_service.py).
"""

from __future__ import annotations

import datetime as dt
import json
import pathlib
import re
import shutil
import signal
import subprocess
import time

import pytest

from kanidm_sync._cli._config import CronSpec, load_run_config
from kanidm_sync._schedule import Schedule

from ._helpers import COMMAND, Cli, Server, assert_one_error_line, write_run_config

KANIDM_EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "kanidm-examples"
LDAP_FILE = """\
sync_token = "{token}"
ldap_uri = "ldap://127.0.0.1:9"
ldap_sync_dn = "cn=admin,dc=example,dc=org"
ldap_sync_pw = "secret-password"
ldap_sync_base_dn = "dc=example,dc=org"
ldap_filter = "(objectClass=person)"
"""


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("kanidm-sync: warning:")]


def test_kanidm_iam_migration_example_is_read_with_warnings_only(
    cli: Cli, server: Server, tmp_path: pathlib.Path
) -> None:
    """Kanidm's iam_migration_ldap.toml is no longer refused for its 'debug' key.

    Its two stray keys (the tool's command-line options) are one warning each, naming the
    key; nothing else is wrong with the file (only its token is replaced, to be valid).
    """
    account = server.fake.provision_sync_account("ldap_feed")
    config = tmp_path / "iam_migration_ldap.toml"
    text = (KANIDM_EXAMPLES / "iam_migration_ldap.toml").read_text()
    config.write_text(text.replace('sync_token="cheesemonkey"', f'sync_token="{account.token}"'))
    result = cli("status", "-c", str(config), "--url", server.url, "--insecure-http")
    assert "kanidm-sync: error:" not in result.stderr, result.stderr
    assert 1 == result.code  # no run recorded yet: status says so
    assert "no run recorded" in result.stdout
    warnings = _warnings(result.stderr)
    assert 2 == len(warnings), result.stderr
    assert "'debug' is a command-line option of kanidm-ldap-sync" in warnings[0]
    assert "'dry_run' is a command-line option of kanidm-ldap-sync" in warnings[1]
    assert "Traceback" not in result.stderr


def test_unknown_key_is_warned_even_with_quiet(
    cli: Cli, server: Server, tmp_path: pathlib.Path
) -> None:
    """An unknown key of a reference file is one warning, shown with --quiet, never twice."""
    account = server.fake.provision_sync_account("ldap_feed")
    config = tmp_path / "ldap-sync"
    config.write_text(LDAP_FILE.format(token=account.token) + 'person_attr_mial = "mail"\n')
    result = cli("status", "-c", str(config), "--url", server.url, "--insecure-http", "-q")
    assert [
        f"kanidm-sync: warning: {config}: unknown key 'person_attr_mial' ignored "
        "(did you mean 'person_attr_mail'?)"
    ] == _warnings(result.stderr)
    assert "WARNING" not in result.stderr  # the library's log line is not printed as well


def test_reference_files_schedule_is_what_run_schedule_follows(tmp_path: pathlib.Path) -> None:
    """A reference file's `schedule`, or the tools' default, becomes the run's cron schedule."""
    config = tmp_path / "ldap-sync"
    config.write_text(LDAP_FILE.format(token="t") + 'schedule = "0 30 2 * * Sun"\n')
    loaded = load_run_config(config, url="https://idm.example.com")
    assert isinstance(loaded.schedule, CronSpec)
    assert "0 30 2 * * Sun" == loaded.schedule.cron.source
    config.write_text(LDAP_FILE.format(token="t"))
    loaded = load_run_config(config, url="https://idm.example.com")
    assert isinstance(loaded.schedule, CronSpec)
    assert "0 */5 * * * * *" == loaded.schedule.cron.source  # kanidm-ldap-sync's default
    schedule = loaded.schedule.build(lambda: dt.datetime(2026, 1, 1, 0, 3, tzinfo=dt.UTC))
    assert dt.datetime(2026, 1, 1, 0, 5, tzinfo=dt.UTC) == schedule.next_fire(0)


def test_run_schedule_from_a_reference_file_follows_its_cron(
    cli: Cli, server: Server, tmp_path: pathlib.Path
) -> None:
    """`run --schedule` (no value) waits for the file's times; status_bind is served."""
    pytest.importorskip("ldap", reason="the LDAP source needs python-ldap")
    account = server.fake.provision_sync_account("ldap_feed")
    config = tmp_path / "ldap-sync"
    config.write_text(
        LDAP_FILE.format(token=account.token)
        + 'schedule = "* * * * * *"\nstatus_bind = "127.0.0.1:0"\n'
    )
    result = cli(
        "run", "-c", str(config), "--schedule", "--max-runs", "1",
        "--url", server.url, "--insecure-http",
    )  # fmt: skip
    assert 1 == result.code  # the LDAP server is not there: the one run failed
    assert re.search(
        r"following the schedule '\* \* \* \* \* \*' \(UTC\); first run at \d{4}-\d\d-\d\dT",
        result.stderr,
    ), result.stderr
    assert re.search(r"Z run failed: SourceError", result.stderr), result.stderr
    assert [] == _warnings(result.stderr)
    assert re.search(r"serving the status on http://127\.0\.0\.1:\d+/ ", result.stderr)
    assert "secret-password" not in result.stderr
    assert account.token not in result.stderr
    status = json.loads((tmp_path / "ldap-sync.state" / "status.json").read_text())
    assert "* * * * * *" == status["schedule_cron"]
    assert 1 == status["status"]["runs"]


def test_run_schedule_follows_a_cron_in_schedule_table(
    cli: Cli, server: Server, tmp_path: pathlib.Path
) -> None:
    """`[schedule] cron` runs at the expression's times; the first run waits for one."""
    config = write_run_config(
        tmp_path,
        server,
        server.fake.provision_sync_account("hr_feed"),
        extra='[schedule]\ncron = "* * * * * *"\n',
    )
    started = dt.datetime.now(dt.UTC)
    result = cli("run", "-c", str(config), "--schedule", "--max-runs", "2")
    assert 0 == result.code, result.stderr
    times = re.findall(r"^(\S+Z) run (\S+):", result.stderr, re.MULTILINE)
    assert ["applied", "nothing-to-do"] == [outcome for _, outcome in times]
    first, second = (dt.datetime.fromisoformat(t.replace("Z", "+00:00")) for t, _ in times)
    assert first >= started.replace(microsecond=0) + dt.timedelta(seconds=1)
    assert second > first  # a later time of the expression, never the same one twice
    status = json.loads(cli("status", "-c", str(config), "--json").stdout)
    assert 2 == status["status"]["runs"]
    assert status["status"]["next_run_at"] is None  # the loop ended


def test_schedule_seconds_override_the_files_cron(tmp_path: pathlib.Path) -> None:
    """`--schedule SECONDS` is an interval even when the file names a cron expression."""
    from kanidm_sync._cli._main import build_parser
    from kanidm_sync._cli._runbase import choose_schedule

    config = tmp_path / "ldap-sync"
    config.write_text(LDAP_FILE.format(token="t"))
    loaded = load_run_config(config, url="https://idm.example.com")
    args = build_parser().parse_args(["run", "-c", str(config), "--schedule", "30"])
    chosen = choose_schedule(args, loaded)
    assert type(chosen) is Schedule
    assert 30.0 == chosen.interval


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('interval = 60\ncron = "@daily"\n', "needs interval"),
        ("jitter = 0.1\n", "needs interval"),
        ('cron = "@daily"\njitter = 0.2\n', "jitter does not apply to cron"),
        ('cron = "0 61 * * * *"\n', "[schedule] cron: minutes: 61 is outside 0-59"),
        ("cron = 5\n", "cron must be a string"),
    ],
)
def test_schedule_table_mistakes_are_named(
    cli: Cli, server: Server, tmp_path: pathlib.Path, table: str, message: str
) -> None:
    """A [schedule] table with both, neither, or a bad cron is an error naming the key."""
    config = write_run_config(
        tmp_path,
        server,
        server.fake.provision_sync_account("hr_feed"),
        extra=f"[schedule]\n{table}",
    )
    result = cli("plan", "-c", str(config))
    assert 2 == result.code
    assert_one_error_line(result, "sync.toml", message)


def test_reference_file_example_copies_are_kanidms(tmp_path: pathlib.Path) -> None:
    """The documented examples load through the command line's reader with no warning."""
    for name in ("kanidm-ldap-sync", "kanidm-ipa-sync"):
        shutil.copy(KANIDM_EXAMPLES / name, tmp_path / name)
        loaded = load_run_config(tmp_path / name, url="https://idm.example.com")
        assert () == loaded.warnings
        assert loaded.reference is not None
        assert ("freeipa" if "ipa" in name else "ldap") == loaded.source_type


def test_sigterm_before_the_first_cron_time_stops_cleanly(
    cli: Cli, server: Server, tmp_path: pathlib.Path
) -> None:
    """Stopped while waiting for the first time: exit 0, no run, the status says so."""
    config = write_run_config(
        tmp_path,
        server,
        server.fake.provision_sync_account("hr_feed"),
        extra='[schedule]\ncron = "0 0 0 1 1 * 2099"\n',
    )
    proc = subprocess.Popen(
        [*COMMAND, "run", "-c", str(config), "--schedule"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli.env(),
    )  # fmt: skip
    status_file = tmp_path / "sync.state" / "status.json"
    try:
        deadline = time.monotonic() + 30
        while not status_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)  # written before the first wait, with the time it is due
        due = json.loads(status_file.read_text())["status"]["next_run_at"]
        assert due.startswith("2099-01-01T00:00:00")
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert 0 == proc.returncode, err
    assert "first run at 2099-01-01T00:00:00Z" in err
    assert "stopped after 0 runs (0 failed)" in err
    assert server.fake.cookie("hr_feed") is None
    assert json.loads(status_file.read_text())["status"]["next_run_at"] is None
