"""Helpers for the command-line tests: run the real console script, write run configurations.

Every test runs ``kanidm-sync`` as a subprocess (the console script installed next to the
interpreter, else ``python -m kanidm_sync``) against ``kanidm_sync.testing.serve`` on
loopback, with a private HOME so no real Kanidm configuration or token cache is read.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap
from collections.abc import Sequence

import attrs

from kanidm_sync.testing import FakeKanidm, ProvisionedSyncAccount

SCRIPT = pathlib.Path(sys.executable).with_name("kanidm-sync")
COMMAND: tuple[str, ...] = (
    (str(SCRIPT),) if SCRIPT.exists() else (sys.executable, "-m", "kanidm_sync")
)

LDIF = textwrap.dedent(
    """\
    version: 1

    dn: uid=alice,ou=people,dc=example,dc=org
    objectClass: inetOrgPerson
    entryUUID: 0b6f3a2e-1c4d-4e5f-8a9b-0c1d2e3f4a01
    uid: alice
    cn: Alice Liddell
    mail: alice@example.org

    dn: uid=bob,ou=people,dc=example,dc=org
    objectClass: inetOrgPerson
    entryUUID: 0b6f3a2e-1c4d-4e5f-8a9b-0c1d2e3f4a02
    uid: bob
    cn: Bob Builder

    dn: cn=staff,ou=groups,dc=example,dc=org
    objectClass: groupOfNames
    entryUUID: 0b6f3a2e-1c4d-4e5f-8a9b-0c1d2e3f4a03
    cn: staff
    member: uid=alice,ou=people,dc=example,dc=org
    member: uid=bob,ou=people,dc=example,dc=org
    """
)


@attrs.frozen
class Result:
    """What one run of the command did."""

    code: int
    stdout: str
    stderr: str


@attrs.define
class Server:
    """The double, served over HTTP, plus an admin token file."""

    fake: FakeKanidm
    url: str
    admin_token_file: pathlib.Path

    def admin(self) -> list[str]:
        """The admin options for ``account`` verbs."""
        return ["--url", self.url, "--token-file", str(self.admin_token_file), "--insecure-http"]


class Cli:
    """Runs ``kanidm-sync`` in a subprocess."""

    def __init__(self, home: pathlib.Path) -> None:
        self.home = home

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The environment: no KANIDM_* from the caller, HOME private."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("KANIDM_")}
        env["HOME"] = str(self.home)
        env.pop("CI_DEBUG", None)
        env.update(extra or {})
        return env

    def __call__(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        stdin: str | None = None,
        timeout: float = 60,
    ) -> Result:
        """Run the command and return its exit status and output."""
        proc = subprocess.run(
            [*COMMAND, *args],
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            env=self.env(env),
            timeout=timeout,
            check=False,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def with_tty(self, args: Sequence[str], answer: str, timeout: float = 30) -> Result:
        """Run with a pseudo-terminal on stdin and type ``answer`` at the prompt."""
        import pty

        master, slave = pty.openpty()
        try:
            proc = subprocess.Popen(
                [*COMMAND, *args],
                stdin=slave,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=self.env(),
            )
            os.close(slave)
            slave = -1
            os.write(master, answer.encode() + b"\n")
            out, err = proc.communicate(timeout=timeout)
        finally:
            os.close(master)
            if slave >= 0:
                os.close(slave)
        return Result(proc.returncode, out, err)


def assert_one_error_line(result: Result, *fragments: str) -> None:
    """The failure is reported as one ``error:`` line (plus an optional hint), no traceback."""
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("kanidm-sync: error:")]
    assert 1 == len(errors), result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def write_run_config(
    directory: pathlib.Path,
    server: Server,
    account: ProvisionedSyncAccount,
    *,
    source: str = 'type = "ldif"\npath = "directory.ldif"',
    extra: str = "",
) -> pathlib.Path:
    """A kanidm-sync configuration for ``account`` with an LDIF source in ``directory``."""
    (directory / "sync.token").write_text(account.token + "\n", encoding="utf-8")
    if not (directory / "directory.ldif").exists():
        (directory / "directory.ldif").write_text(LDIF, encoding="utf-8")
    config = directory / "sync.toml"
    config.write_text(
        f'[kanidm]\nurl = "{server.url}"\nsync_token_file = "sync.token"\n'
        f"insecure_http = true\n\n[source]\n{source}\n\n{extra}",
        encoding="utf-8",
    )
    return config
