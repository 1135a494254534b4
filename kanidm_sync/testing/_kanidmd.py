"""A throwaway kanidmd on loopback, for tests: :class:`Kanidmd`.

kanidm-sync never builds or ships Kanidm: give :class:`Kanidmd` the path of a ``kanidmd``
binary you have (a release package, or one you built) and it runs that server in a
temporary directory with its own configuration, its own self-signed certificate
(``kanidmd cert-generate``), its own database, and the ``admin`` and ``idm_admin``
passwords recovered with ``kanidmd scripting recover-account``. Nothing outside the
temporary directory is touched, and :meth:`Kanidmd.stop` removes it.

The configuration is the smallest one kanidmd accepts (server config version 2, see
kanidm's ``server/core/src/config.rs`` ``ServerConfigV2``): HTTPS on ``127.0.0.1`` at a free
port with ``origin = https://localhost:<port>``, no LDAP listener, no online backup, the
admin socket inside the temporary directory.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from types import TracebackType
from typing import Final, Self

import httpx

__all__ = ["Kanidmd", "KanidmdError"]

_START_TIMEOUT: Final = 120.0
_LOG_TAIL: Final = 4000


class KanidmdError(RuntimeError):
    """The kanidmd under test could not be started or answered unexpectedly."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Kanidmd:
    """A kanidmd process in a temporary directory, on loopback, for one test session.

    Use it as a context manager (or call :meth:`start` and :meth:`stop`)::

        with Kanidmd("/usr/sbin/kanidmd") as server:
            admin = KanidmAuth.password("admin", server.admin_password)
            client = Client(server.url, auth=admin, ca_path=server.ca_path)

    Args:
        binary: the ``kanidmd`` executable.
        workdir: where to keep the database, certificates and log (default: a new temporary
            directory, removed by :meth:`stop`; a given one is kept).
        log_level: kanidmd's ``log_level`` (``info``, ``debug`` or ``trace``).
        maximum_request_size_bytes: kanidmd's request body limit (default: kanidmd's own,
            32 MiB).

    Attributes:
        binary: the executable.
        workdir: the directory holding the server's files.
        log_level: kanidmd's ``log_level``.
        maximum_request_size_bytes: kanidmd's request body limit, or ``None`` for its own.
        port: the HTTPS port on 127.0.0.1.
        url: ``https://localhost:<port>``, the server's origin.
        ca_path: the PEM file of the CA that signed the server's certificate.
        log_path: the server's combined stdout and stderr.
    """

    binary: pathlib.Path
    workdir: pathlib.Path
    log_level: str
    maximum_request_size_bytes: int | None
    port: int

    def __init__(
        self,
        binary: str | os.PathLike[str],
        *,
        workdir: str | os.PathLike[str] | None = None,
        log_level: str = "info",
        maximum_request_size_bytes: int | None = None,
    ) -> None:
        self.binary = pathlib.Path(binary)
        self._own_workdir = workdir is None
        self.workdir = pathlib.Path(workdir) if workdir is not None else pathlib.Path()
        self.log_level = log_level
        self.maximum_request_size_bytes = maximum_request_size_bytes
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._passwords: dict[str, str] = {}

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"Kanidmd(binary={str(self.binary)!r}, url={self.url!r}, {state})"

    @property
    def url(self) -> str:
        """The server's origin, ``https://localhost:<port>``."""
        return f"https://localhost:{self.port}"

    @property
    def ca_path(self) -> pathlib.Path:
        """The CA certificate that signed the server's certificate (``ca.pem``)."""
        return self.workdir / "ca.pem"

    @property
    def config_path(self) -> pathlib.Path:
        """The server configuration file written by :meth:`start`."""
        return self.workdir / "server.toml"

    @property
    def log_path(self) -> pathlib.Path:
        """The server's log (stdout and stderr)."""
        return self.workdir / "kanidmd.log"

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def admin_password(self) -> str:
        """The recovered password of ``admin`` (a member of ``domain_admins``)."""
        return self.password("admin")

    @property
    def idm_admin_password(self) -> str:
        """The recovered password of ``idm_admin`` (manages persons and groups)."""
        return self.password("idm_admin")

    def password(self, account: str) -> str:
        """The password recovered for ``account`` (recovering it on first use)."""
        if account not in self._passwords:
            self._passwords[account] = self.recover_account(account)
        return self._passwords[account]

    def ssl_context(self) -> ssl.SSLContext:
        """A TLS context trusting exactly the server's own CA."""
        return ssl.create_default_context(cafile=str(self.ca_path))

    def version(self) -> str:
        """What ``kanidmd version`` prints (the server's version), or ``unknown``."""
        for args in (["version"], ["--version"]):
            done = subprocess.run(
                [str(self.binary), *args],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
                env=self._env(),
            )
            text = (done.stdout or done.stderr).strip()
            if done.returncode == 0 and text:
                return text.splitlines()[-1].strip()
        return "unknown"

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Write the configuration and certificates, start the server, wait until it answers."""
        if self.running:
            return
        if not self.binary.is_file() or not os.access(self.binary, os.X_OK):
            raise KanidmdError(f"kanidmd binary {str(self.binary)!r} is not an executable file")
        if self._own_workdir:
            self.workdir = pathlib.Path(tempfile.mkdtemp(prefix="kanidm-sync-kanidmd-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self._write_config()
        self._run_tool(["cert-generate"], "generate its certificate")
        log = self.log_path.open("ab")
        try:
            self._process = subprocess.Popen(
                [str(self.binary), "server", "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env(),
                start_new_session=True,
            )
        finally:
            log.close()
        self._wait_ready()

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and remove a temporary workdir."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=20)
        if self._own_workdir and self.workdir != pathlib.Path():
            shutil.rmtree(self.workdir, ignore_errors=True)
        self._passwords.clear()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def recover_account(self, account: str) -> str:
        """Set a new generated password for ``account`` and return it.

        Runs ``kanidmd scripting recover-account`` against the running server's admin
        socket; its JSON output is ``{"status": "ok", "output": "<password>"}``.
        """
        out = self._run_tool(["scripting", "recover-account", account], f"recover {account}")
        for line in reversed(out.splitlines()):
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                answer = json.loads(line)
            except ValueError:
                continue
            if isinstance(answer, dict) and answer.get("status") == "ok":
                password = answer.get("output")
                if isinstance(password, str) and password:
                    return password
        raise KanidmdError(f"kanidmd did not print a recovered password for {account!r}")

    def db_listing(self) -> dict[str, tuple[int, str | None]]:
        """Every entry in the database: UUID to (id2entry id, name) (``kanidmd db-scan``)."""
        from ._dbscan import parse_listing

        return parse_listing(self._run_tool(["db-scan", "list-id2entry"], "list its entries"))

    def db_entry(self, entry_id: int) -> tuple[str, dict[str, tuple[object, ...]]]:
        """One entry read from the database, every attribute: (state, attributes).

        The state is ``live``, ``recycled`` or ``tombstone``; values are parsed from
        ``kanidmd db-scan get-id2entry`` (see ``kanidm_sync.testing._dbscan``).
        """
        from ._dbscan import parse_entry

        out = self._run_tool(["db-scan", "get-id2entry", str(entry_id)], "read an entry")
        return parse_entry(out)

    def log_tail(self, size: int = _LOG_TAIL) -> str:
        """The end of the server's log, for error messages."""
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return ""
        return data[-size:].decode("utf-8", "replace")

    # --- internals ----------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KANIDM_")}
        env.setdefault("RUST_BACKTRACE", "1")
        return env

    def _write_config(self) -> None:
        lines = [
            'version = "2"',
            f'bindaddress = "127.0.0.1:{self.port}"',
            f"db_path = {json.dumps(str(self.workdir / 'kanidm.db'))}",
            f"tls_chain = {json.dumps(str(self.workdir / 'chain.pem'))}",
            f"tls_key = {json.dumps(str(self.workdir / 'key.pem'))}",
            f"adminbindpath = {json.dumps(str(self.workdir / 'admin.sock'))}",
            'domain = "localhost"',
            f'origin = "https://localhost:{self.port}"',
            f"log_level = {json.dumps(self.log_level)}",
        ]
        if self.maximum_request_size_bytes is not None:
            lines.append(f"maximum_request_size_bytes = {int(self.maximum_request_size_bytes)}")
        self.config_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.config_path.chmod(0o600)

    def _run_tool(self, args: list[str], what: str) -> str:
        done = subprocess.run(
            [str(self.binary), *args, "-c", str(self.config_path)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env=self._env(),
            stdin=subprocess.DEVNULL,
        )
        if done.returncode != 0:
            raise KanidmdError(
                f"kanidmd could not {what} (exit {done.returncode}):\n"
                f"{(done.stdout + done.stderr)[-_LOG_TAIL:]}"
            )
        return done.stdout

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        context = self.ssl_context()
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                code = self._process.returncode if self._process is not None else None
                raise KanidmdError(f"kanidmd exited ({code}) while starting:\n{self.log_tail()}")
            try:
                response = httpx.get(f"{self.url}/status", verify=context, timeout=5)
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            time.sleep(0.25)
        self.stop()
        raise KanidmdError(f"kanidmd did not answer within {_START_TIMEOUT:.0f} s ({last})")
