"""A throwaway OpenLDAP slapd (mdb + syncprov + nis + openssh-lpk) for tests and benchmarks.

Everything lives in one temporary directory: cn=config is generated from
``lab/config.ldif.in``, the data is loaded offline with ``slapadd``, and slapd runs in
the foreground (``-d 0``) so it can be stopped by its own PID. No systemd, no system
slapd configuration, no root needed (root is fine too). Adapted from the LDAP lab recipe.

Used by ``tests/ldap/conftest.py`` and ``bench/bench_ldap.py``.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator

LAB = pathlib.Path(__file__).resolve().parent / "lab"
BASE_DN = "dc=example,dc=com"
PEOPLE_DN = f"ou=people,{BASE_DN}"
GROUPS_DN = f"ou=groups,{BASE_DN}"
ADMIN_DN = f"cn=admin,{BASE_DN}"
ADMIN_PW = "secret"
SYNC_DN = f"cn=sync,{BASE_DN}"
SYNC_PW = "syncpw"
CONFIG_DN = "cn=admin,cn=config"
CONFIG_PW = "secret"
SYNCPROV_DN = "olcOverlay={0}syncprov,olcDatabase={1}mdb,cn=config"
FRONTEND_DN = "olcDatabase={-1}frontend,cn=config"


def find_binary(name: str) -> str | None:
    """Locate ``slapd`` / ``slapadd`` (Debian puts them in /usr/sbin, often not on PATH).

    The environment variables ``SLAPD`` / ``SLAPADD`` override the search (an empty or
    missing path means "not installed").
    """
    override = os.environ.get(name.upper())
    if override is not None:
        return override if override and os.access(override, os.X_OK) else None
    found = shutil.which(name)
    if found:
        return found
    for directory in ("/usr/sbin", "/usr/local/sbin", "/usr/local/libexec", "/usr/libexec"):
        candidate = pathlib.Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Slapd:
    """One slapd instance in ``state`` listening on ``127.0.0.1:port``.

    Args:
        state: a directory of its own (wiped by :meth:`start` and :meth:`stop`).
        port: the TCP port; a free one when ``None``.
        sessionlog: syncprov's session log size; 0 means none (deletes then come
            through the present phase).
        seed: LDIF files loaded offline before start (the lab seed by default).
        max_size: the LMDB map size in bytes (default 100 MiB, too small for 80,000 persons).
    """

    def __init__(
        self,
        state: pathlib.Path,
        *,
        port: int | None = None,
        sessionlog: int = 100,
        seed: tuple[pathlib.Path, ...] = (LAB / "seed.ldif",),
        max_size: int = 104857600,
    ) -> None:
        slapd, slapadd = find_binary("slapd"), find_binary("slapadd")
        if slapd is None or slapadd is None:
            raise FileNotFoundError("slapd/slapadd not installed (apt-get install slapd)")
        self.slapd, self.slapadd = slapd, slapadd
        self.state = state
        self.port = port or free_port()
        self.sessionlog = sessionlog
        self.seed = seed
        self.max_size = max_size
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        """The ``ldap://`` URI clients connect to."""
        return f"ldap://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Build a fresh cn=config and database, load the seed, launch and wait."""
        self.stop()
        (self.state / "slapd.d").mkdir(parents=True)
        (self.state / "data").mkdir()
        template = (LAB / "config.ldif.in").read_text(encoding="utf-8")
        sessionlog = f"olcSpSessionlog: {self.sessionlog}" if self.sessionlog else ""
        config = (
            template.replace("@STATE@", str(self.state))
            .replace("@LAB@", str(LAB))
            .replace("@LOGLEVEL@", "none")
            .replace("@SESSIONLOG_LINE@", sessionlog)
            .replace("olcDbMaxSize: 104857600", f"olcDbMaxSize: {self.max_size}")
        )
        (self.state / "config.ldif").write_text(config, encoding="utf-8")
        self._run(
            [
                self.slapadd,
                "-n0",
                "-F",
                str(self.state / "slapd.d"),
                "-l",
                str(self.state / "config.ldif"),
            ]
        )
        for ldif in self.seed:
            # -w writes contextCSN, so syncprov has a cookie base from the first search.
            self._run(
                [
                    self.slapadd,
                    "-q",
                    "-w",
                    "-n1",
                    "-F",
                    str(self.state / "slapd.d"),
                    "-l",
                    str(ldif),
                ]
            )
        self._launch()

    def restart(self) -> None:
        """A new slapd process on the same data (syncprov's in-memory session log is lost)."""
        self._kill()
        self._launch()

    def stop(self) -> None:
        """Stop slapd (by its PID) and remove its state directory."""
        self._kill()
        shutil.rmtree(self.state, ignore_errors=True)

    def _run(self, argv: list[str]) -> None:
        done = subprocess.run(argv, capture_output=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(
                f"{argv[0]} failed ({done.returncode}): {done.stderr.decode(errors='replace')}"
            )

    def _launch(self) -> None:
        log = open(self.state / "slapd.log", "ab")  # noqa: SIM115 - slapd owns it until stop
        with log:
            self.process = subprocess.Popen(
                [self.slapd, "-d", "0", "-F", str(self.state / "slapd.d"), "-h", f"{self.uri}/"],
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                text = (self.state / "slapd.log").read_text(errors="replace")
                raise RuntimeError(f"slapd exited during start-up:\n{text}")
            if self._answers():
                return
            time.sleep(0.03)
        self._kill()
        raise RuntimeError("slapd did not answer within 10 s")

    def _answers(self) -> bool:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock,
        ):
            # An anonymous whoami-free probe: an LDAP unbind is enough to prove a listener;
            # slapd accepts connections only once its databases are open.
            sock.sendall(b"\x30\x05\x02\x01\x01\x42\x00")
            return True
        return False

    def _kill(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextlib.contextmanager
def running(state: pathlib.Path, **options: object) -> Iterator[Slapd]:
    """Start a :class:`Slapd` for the duration of a ``with`` block."""
    server = Slapd(state, **options)  # type: ignore[arg-type]
    server.start()
    try:
        yield server
    finally:
        server.stop()
