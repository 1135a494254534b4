"""`run --schedule --listen`: the status endpoints of the command line's service loop.

Each test runs the real console script against the in-memory Kanidm served on loopback,
reads the status URL the command prints, and talks to the endpoints over HTTP.
"""

from __future__ import annotations

import json
import pathlib
import re
import signal

import pytest

from ._helpers import Cli, Server, assert_one_error_line, write_run_config
from ._service import Service

LDAP_FILE = """\
sync_token = "{token}"
ldap_uri = "ldap://127.0.0.1:9"
ldap_sync_dn = "cn=admin,dc=example,dc=org"
ldap_sync_pw = "secret-password"
ldap_sync_base_dn = "dc=example,dc=org"
ldap_filter = "(objectClass=person)"
"""
STATUS_TOKEN = "status-token-0123456789abcdef"


def _config(tmp_path: pathlib.Path, server: Server, extra: str = "") -> pathlib.Path:
    account = server.fake.provision_sync_account("hr_feed")
    config = write_run_config(tmp_path, server, account, extra=extra)
    text = config.read_text().replace("[kanidm]\n", '[kanidm]\naccount = "hr_feed"\n', 1)
    config.write_text(text)
    return config


def test_listen_serves_every_endpoint(cli: Cli, server: Server, tmp_path: pathlib.Path) -> None:
    """/healthz, /readyz, /status.json, /metrics and / answer while the loop runs."""
    config = _config(tmp_path, server)
    args = ["run", "-c", str(config), "--schedule", "3600", "--listen", "127.0.0.1:0"]
    with Service(cli, args) as service:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", service.url), service.url
        service.wait_for(r"Z run applied: ")
        health = service.get("/healthz")
        assert (200, "ok\n") == (health.status, health.text)
        assert "no-store" == health.headers["Cache-Control"]
        ready = service.until("ready", lambda d: d["ready"] is True)
        assert "hr_feed" == ready["account"]
        assert server.url == ready["kanidm_url"]
        runs = ready["runs"]
        assert isinstance(runs, list)
        assert "applied" == runs[0]["outcome"]
        assert 200 == service.get("/readyz").status
        page = service.get("/")
        assert 200 == page.status
        assert page.headers["Content-Type"].startswith("text/html")
        assert "hr_feed" in page.text
        metrics = service.get("/metrics")
        assert 200 == metrics.status, metrics.text
        assert 'kanidm_sync_runs_total{outcome="applied"} 1.0' in metrics.text
        service.signal(signal.SIGTERM)
        assert 0 == service.finish()
    assert "stopped after 1 runs (0 failed)" in service.stderr
    token = (tmp_path / "sync.token").read_text().strip()
    assert token not in service.stderr
    assert token not in page.text + json.dumps(ready) + metrics.text


def test_readyz_is_503_with_the_reason_after_a_failed_run(
    cli: Cli, server: Server, tmp_path: pathlib.Path
) -> None:
    """A failing source: alive (200) but not ready (503), the reason in the body."""
    config = _config(tmp_path, server)
    (tmp_path / "directory.ldif").unlink()
    args = ["run", "-c", str(config), "--schedule", "3600", "--listen", "127.0.0.1:0"]
    with Service(cli, args) as service:
        service.wait_for(r"Z run failed: SourceError")
        service.until("the failed run", lambda d: bool(d["runs"]))
        assert 200 == service.get("/healthz").status
        ready = service.get("/readyz")
        assert 503 == ready.status
        assert "SourceError" in ready.text, ready.text
        service.signal(signal.SIGTERM)
        # Stopped on request: 0, whatever the last run did (docs/cli.md).
        assert 0 == service.finish()
    assert "stopped after 1 runs (1 failed)" in service.stderr


def test_a_non_loopback_listen_address_needs_listen_public(
    cli: Cli, server: Server, tmp_path: pathlib.Path
) -> None:
    """--listen 0.0.0.0:PORT is refused (exit 2) with the flag that allows it named."""
    config = _config(tmp_path, server)
    result = cli("run", "-c", str(config), "--schedule", "60", "--listen", "0.0.0.0:0")
    assert 2 == result.code
    assert_one_error_line(result, "--listen 0.0.0.0:0 is not a loopback address", "--listen-public")
    assert server.fake.cookie("hr_feed") is None  # nothing ran


@pytest.mark.parametrize(
    ("listen", "message"),
    [
        ("localhost", "is not HOST:PORT"),
        ("::1:80", "put an IPv6 address in brackets"),
        ("127.0.0.1:70000", "the port must be a number from 0 to 65535"),
        ("status.example.com:80", "HOST must be an IP address or localhost"),
    ],
)
def test_a_bad_listen_address_is_a_usage_error(
    cli: Cli, server: Server, tmp_path: pathlib.Path, listen: str, message: str
) -> None:
    """A malformed --listen names the option and what is wrong."""
    config = _config(tmp_path, server)
    result = cli("run", "-c", str(config), "--schedule", "60", "--listen", listen)
    assert 2 == result.code
    assert_one_error_line(result, "--listen", message)


def test_listen_public_with_a_token(cli: Cli, server: Server, tmp_path: pathlib.Path) -> None:
    """--listen-public serves beyond loopback; --status-token-file requires the bearer token."""
    config = _config(tmp_path, server)
    token_file = tmp_path / "status.token"
    token_file.write_text(STATUS_TOKEN + "\n")
    args = [
        "run", "-c", str(config), "--schedule", "3600", "--listen", "0.0.0.0:0",
        "--listen-public", "--status-token-file", str(token_file),
    ]  # fmt: skip
    with Service(cli, args) as service:
        port = service.url.rsplit(":", 1)[1]
        service._url = f"http://127.0.0.1:{port}"  # 0.0.0.0 listens on loopback too
        service.wait_for(r"Z run applied: ")
        assert 401 == service.get("/healthz").status
        assert 401 == service.get("/status.json", token="wrong-token-0123456789").status
        assert 200 == service.get("/healthz", token=STATUS_TOKEN).status
        service.signal(signal.SIGTERM)
        assert 0 == service.finish()
    assert "kanidm-sync: warning:" not in service.stderr  # a token is set: no warning
    assert STATUS_TOKEN not in service.stderr


def test_listen_public_without_a_token_is_warned(
    cli: Cli, server: Server, tmp_path: pathlib.Path
) -> None:
    """Serving beyond loopback without a token works, with a warning naming the fix."""
    config = _config(tmp_path, server)
    args = [
        "run", "-c", str(config), "--schedule", "3600", "--max-runs", "1",
        "--listen", "0.0.0.0:0", "--listen-public",
    ]  # fmt: skip
    result = cli(*args)
    assert 0 == result.code, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "warning" in line.lower()]
    assert 1 == len(warnings), result.stderr  # the library's own warning is not shown too
    assert re.fullmatch(
        r"kanidm-sync: warning: --listen 0\.0\.0\.0:0 serves the sync status to anyone who "
        r"can reach it: add --status-token-file FILE",
        warnings[0],
    ), result.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "the file is empty"),
        ("short\n", "at least 16 printable ASCII characters"),
        ("two words-0123456789abcdef\n", "one word of printable characters"),
    ],
)
def test_a_bad_status_token_file_is_refused_without_showing_it(
    cli: Cli, server: Server, tmp_path: pathlib.Path, content: str, message: str
) -> None:
    """The token file is checked before anything runs; its text never appears."""
    config = _config(tmp_path, server)
    token_file = tmp_path / "status.token"
    token_file.write_text(content)
    result = cli(
        "run", "-c", str(config), "--schedule", "60", "--listen", "127.0.0.1:0",
        "--status-token-file", str(token_file),
    )  # fmt: skip
    assert 2 == result.code
    assert_one_error_line(result, "--status-token-file", message)
    if content.strip():
        assert content.strip() not in result.stderr
    assert server.fake.cookie("hr_feed") is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--listen", "127.0.0.1:0"], "--listen applies to a service: add --schedule"),
        (["--max-runs", "2"], "--max-runs applies to a service: add --schedule"),
        (["--schedule", "60", "--dry-run"], "--dry-run plans one run"),
        (["--schedule", "60", "--allow-deletes"], "--allow-deletes lets one run past"),
        (["--schedule", "60", "--listen-public"], "--listen-public applies to the status"),
        (["--schedule", "60", "--ready-intervals", "0", "--listen", "127.0.0.1:0"],
         "--ready-intervals must be a positive number"),
    ],
)  # fmt: skip
def test_options_that_cannot_work_together(
    cli: Cli, server: Server, tmp_path: pathlib.Path, extra: list[str], message: str
) -> None:
    """A service option without --schedule, or a one-run option with it: exit 2, nothing run.

    Before, `run --schedule --dry-run` applied every run (the loop ignored --dry-run).
    """
    config = _config(tmp_path, server)
    result = cli("run", "-c", str(config), *extra)
    assert 2 == result.code
    assert_one_error_line(result, message)
    assert server.fake.cookie("hr_feed") is None


def test_status_bind_of_a_reference_file_is_served_on_loopback_only(
    cli: Cli, server: Server, tmp_path: pathlib.Path
) -> None:
    """A non-loopback status_bind is refused, naming the key and --listen-public."""
    account = server.fake.provision_sync_account("ldap_feed")
    config = tmp_path / "ldap-sync"
    config.write_text(LDAP_FILE.format(token=account.token) + 'status_bind = "[::]:12345"\n')
    result = cli(
        "run", "-c", str(config), "--schedule", "--url", server.url, "--insecure-http",
    )  # fmt: skip
    assert 2 == result.code
    assert_one_error_line(
        result,
        f"{config}: status_bind [::]:12345 is not a loopback address",
        "pass --listen-public to serve it",
        "--listen 127.0.0.1:PORT",
    )
    assert "secret-password" not in result.stderr
    assert account.token not in result.stderr


def test_listen_overrides_status_bind(cli: Cli, server: Server, tmp_path: pathlib.Path) -> None:
    """--listen wins over a reference file's status_bind (which is then not checked)."""
    pytest.importorskip("ldap", reason="the LDAP source needs python-ldap")
    account = server.fake.provision_sync_account("ldap_feed")
    config = tmp_path / "ldap-sync"
    config.write_text(
        LDAP_FILE.format(token=account.token)
        + 'schedule = "* * * * * *"\nstatus_bind = "0.0.0.0:12345"\n'
    )
    result = cli(
        "run", "-c", str(config), "--schedule", "--max-runs", "1", "--url", server.url,
        "--insecure-http", "--listen", "127.0.0.1:0",
    )  # fmt: skip
    assert 1 == result.code  # no LDAP server: the run failed; the listener was fine
    assert re.search(r"serving the status on http://127\.0\.0\.1:\d+/ ", result.stderr)
    assert "kanidm-sync: error:" not in result.stderr


def test_the_sync_token_from_systemd_credentials(
    cli: Cli, server: Server, tmp_path: pathlib.Path
) -> None:
    """[kanidm] sync_token_credential reads $CREDENTIALS_DIRECTORY/NAME (LoadCredential=)."""
    account = server.fake.provision_sync_account("hr_feed")
    config = write_run_config(tmp_path, server, account)
    config.write_text(
        config.read_text().replace(
            'sync_token_file = "sync.token"', 'sync_token_credential = "kanidm-sync-token"'
        )
    )
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "kanidm-sync-token").write_text(account.token + "\n")
    result = cli("run", "-c", str(config), env={"CREDENTIALS_DIRECTORY": str(credentials)})
    assert 0 == result.code, result.stderr
    assert server.fake.cookie("hr_feed") is not None

    result = cli("run", "-c", str(config))  # not started by systemd
    assert 2 == result.code
    assert_one_error_line(
        result, "sync_token_credential = 'kanidm-sync-token' needs $CREDENTIALS_DIRECTORY"
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('sync_token_credential = "../sync.token"', "must be a credential's name"),
        ('sync_token_credential = "x"\nsync_token = "y"', "has both sync_token_credential and"),
    ],
)
def test_sync_token_credential_mistakes(
    cli: Cli, server: Server, tmp_path: pathlib.Path, line: str, message: str
) -> None:
    """A path instead of a name, or two token keys: exit 2, the key named."""
    account = server.fake.provision_sync_account("hr_feed")
    config = write_run_config(tmp_path, server, account)
    config.write_text(config.read_text().replace('sync_token_file = "sync.token"', line))
    result = cli("plan", "-c", str(config), env={"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert 2 == result.code
    assert_one_error_line(result, "[kanidm]", message)


def test_a_listen_address_in_use_is_a_usage_error(
    cli: Cli, server: Server, tmp_path: pathlib.Path
) -> None:
    """A port another process holds: exit 2 before any run, the address named."""
    import socket

    config = _config(tmp_path, server)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli("run", "-c", str(config), "--schedule", "60", "--listen", f"127.0.0.1:{port}")
    assert 2 == result.code
    assert_one_error_line(result, f"cannot listen on 127.0.0.1:{port}")
    assert server.fake.cookie("hr_feed") is None
