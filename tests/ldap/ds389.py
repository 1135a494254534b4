"""A throwaway 389 Directory Server with content sync (RFC 4533), started without systemd.

389-ds is FreeIPA's directory. Its content sync plugin has two modes, and tests run both:

* ``"default"`` -- what FreeIPA ships: sync ids are ``nsUniqueId``, cookies read
  ``host:port#binddn:base:filter#changenumber``, and every refresh ends with
  ``refreshDeletes=FALSE`` even when it sent explicit deletes (a naive consumer reads that
  as "delete everything not re-sent");
* ``"openldap"`` -- ``syncrepl-allow-openldap: on`` with ``entryuuid:targetEntryUUID`` in the
  retro changelog: sync ids are ``entryUUID`` and cookies read ``rid=000,csn=...`` once the
  consumer's first cookie is ``rid=000``.

How it runs without systemd or any system-wide change: ``dscreate`` (lib389) reads its paths
from ``defaults.inf``, and honours a ``PREFIX`` environment variable for "prefix installs". We
write our own ``<state>/prefix/share/dirsrv/inf/defaults.inf`` from the system one, with
``with_systemd = 0`` and every configuration, data, log and run path inside ``state``, so
lib389 starts ``ns-slapd -D <config> -i <pidfile>`` itself and nothing outside ``state`` is
written. The server then runs as the current user (root in CI). Stopping is by PID.

Configured with the LDIF blocks of docs/ldap.md ("389 Directory Server and FreeIPA"), read
from the page itself, so the documented settings are the tested ones: the retro changelog
(``nsuniqueid:targetUniqueId``, ``nsslapd-include-suffix``), content sync, the mode, the sync
control's ACI, read access and no size limit for the sync account. The openssh-lpk schema,
which 389-ds does not ship, is added too.

Used by ``tests/ldap/conftest.py``.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Iterator
from typing import Any, Literal

from slapd import BASE_DN, LAB, SYNC_DN, SYNC_PW, free_port

Mode = Literal["default", "openldap"]
MODES: tuple[Mode, ...] = ("default", "openldap")

DM_DN = "cn=Directory Manager"
DM_PW = "Secret-389-lab"
SYSTEM_DEFAULTS = pathlib.Path("/usr/share/dirsrv/inf/defaults.inf")
SYSTEM_CONFIG = pathlib.Path("/etc/dirsrv")
RETRO_DN = "cn=Retro Changelog Plugin,cn=plugins,cn=config"
CONTENT_SYNC_DN = "cn=Content Synchronization,cn=plugins,cn=config"
SYNC_FEATURE_DN = "oid=1.3.6.1.4.1.4203.1.9.1.1,cn=features,cn=config"
# Paths in defaults.inf that name system-wide places; each is moved under the prefix.
_MOVED_KEYS = (
    "sysconf_dir",
    "initconfig_dir",
    "config_dir",
    "local_state_dir",
    "run_dir",
    "ldapi",
    "pid_file",
    "tmpfiles_d",
    "schema_dir",
    "cert_dir",
    "lock_dir",
    "log_dir",
    "access_log",
    "audit_log",
    "error_log",
    "security_log",
    "db_dir",
    "db_home_dir",
    "backup_dir",
    "ldif_dir",
)


def find_389() -> str | None:
    """``dscreate`` when 389-ds-base (with lib389) is installed, else ``None``."""
    for directory in ("/usr/sbin", "/usr/local/sbin"):
        candidate = pathlib.Path(directory) / "dscreate"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("dscreate")


class Ds389:
    """One 389-ds instance in ``state`` listening on ``127.0.0.1:port``.

    Args:
        state: a directory of its own (wiped by :meth:`start` and :meth:`stop`).
        mode: the content sync mode (see the module docstring).
        port: the LDAP port; a free one when ``None``.
        seed: LDIF files added (over LDAP, as the Directory Manager) after start and by
            :meth:`reset`; the suffix entry itself already exists and is skipped.
        schema: LDIF files of ``cn=schema`` modifications applied once after start.
    """

    def __init__(
        self,
        state: pathlib.Path,
        *,
        mode: Mode = "default",
        port: int | None = None,
        seed: tuple[pathlib.Path, ...] = (LAB / "seed.ldif",),
        schema: tuple[pathlib.Path, ...] = (LAB / "ds389-openssh-lpk.ldif",),
    ) -> None:
        dscreate = find_389()
        if dscreate is None:
            raise FileNotFoundError("389-ds is not installed (apt-get install 389-ds-base)")
        self.dscreate = dscreate
        self.state = state
        self.mode: Mode = mode
        self.port = port or free_port()
        self.seed = seed
        self.schema = schema
        self.name = f"ks{self.port}"
        self.prefix = state / "prefix"

    @property
    def uri(self) -> str:
        """The ``ldap://`` URI clients connect to."""
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def config_dir(self) -> pathlib.Path:
        """The instance's ``dse.ldif`` directory."""
        return self.prefix / "etc" / "dirsrv" / f"slapd-{self.name}"

    @property
    def pid_file(self) -> pathlib.Path:
        """Where ns-slapd writes its PID."""
        return self.prefix / "run" / "dirsrv" / f"slapd-{self.name}.pid"

    @property
    def error_log(self) -> pathlib.Path:
        """The server's error log (read when something fails)."""
        return self.prefix / "var" / "log" / "dirsrv" / f"slapd-{self.name}" / "errors"

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Create the instance, configure content sync, restart, add schema and seed."""
        self.stop()
        self._write_prefix()
        self._dscreate()
        with self.admin() as conn:
            # docs/ldap.md's blocks, as written there: the docs are what the tests run.
            _apply_changes(conn, docs_ldif("plugins"))
            if self.mode == "openldap":
                _apply_changes(conn, docs_ldif("openldap mode"))
            # Loopback only (the default is every interface).
            _modify(conn, "cn=config", "replace", "nsslapd-listenhost", "127.0.0.1")
        self.restart()
        with self.admin() as conn:
            for ldif in self.schema:
                _apply_changes(conn, ldif.read_bytes())
            self._add_entries(conn, self.seed, only=SYNC_DN)
            _apply_changes(conn, docs_ldif("sync account"))
        self.reset()

    def reset(self) -> None:
        """Restore the seeded tree: delete every entry under the suffix, add the seed again.

        Leaves the server's configuration as :meth:`start` made it (tests that change a
        limit undo it themselves). The retro changelog keeps its history, so cookies
        taken before a reset stay valid and see the reset as deletes and adds.
        """
        with self.admin() as conn:
            _delete_subtree_below(conn, BASE_DN, keep=SYNC_DN)
            self._add_entries(conn, self.seed, skip=SYNC_DN)

    def restart(self) -> None:
        """Stop ns-slapd (SIGTERM, by PID) and start it again on the same data."""
        self._kill()
        self._launch()

    def stop(self) -> None:
        """Kill the server (its data goes too: no clean shutdown) and remove ``state``."""
        self._kill(signal.SIGKILL)
        shutil.rmtree(self.state, ignore_errors=True)

    @contextlib.contextmanager
    def admin(self) -> Iterator[Any]:
        """A python-ldap connection bound as the Directory Manager."""
        import ldap

        conn = ldap.initialize(self.uri)
        conn.set_option(ldap.OPT_NETWORK_TIMEOUT, 10)
        conn.simple_bind_s(DM_DN, DM_PW)
        try:
            yield conn
        finally:
            conn.unbind_s()

    # -- internals ---------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        return {**os.environ, "PREFIX": str(self.prefix)}

    def _write_prefix(self) -> None:
        """Our own defaults.inf: no systemd, every writable path under the prefix."""
        inf_dir = self.prefix / "share" / "dirsrv" / "inf"
        inf_dir.mkdir(parents=True)
        user = getpass.getuser()
        lines = []
        for line in SYSTEM_DEFAULTS.read_text(encoding="utf-8").splitlines():
            key, sep, value = line.partition("=")
            key, value = key.strip(), value.strip()
            if sep and key == "with_systemd":
                line = "with_systemd = 0"
            elif sep and key in ("user", "group"):
                line = f"{key} = {user}"
            elif sep and key in _MOVED_KEYS and value.startswith("/"):
                line = f"{key} = {self.prefix}{value}"
            lines.append(line)
        (inf_dir / "defaults.inf").write_text("\n".join(lines) + "\n", encoding="utf-8")
        # dscreate copies the packaged config and schema templates from sysconf_dir/dirsrv.
        shutil.copytree(SYSTEM_CONFIG, self.prefix / "etc" / "dirsrv")

    def _dscreate(self) -> None:
        user = getpass.getuser()
        inf = self.state / "instance.inf"
        inf.write_text(
            "[general]\nfull_machine_name = localhost\nstart = True\n"
            f"[slapd]\ninstance_name = {self.name}\nport = {self.port}\n"
            f"secure_port = {free_port()}\nself_sign_cert = False\n"
            f"root_password = {DM_PW}\nuser = {user}\ngroup = {user}\n"
            f"[backend-userroot]\nsuffix = {BASE_DN}\ncreate_suffix_entry = True\n"
            "sample_entries = no\n",
            encoding="utf-8",
        )
        done = subprocess.run(
            [self.dscreate, "from-file", str(inf)],
            capture_output=True,
            env=self._env(),
            check=False,
            timeout=120,
        )
        if done.returncode != 0 or not self.pid_file.exists():
            raise RuntimeError(
                f"dscreate failed ({done.returncode}):\n"
                f"{done.stdout.decode(errors='replace')}{done.stderr.decode(errors='replace')}"
                f"{self._log_tail()}"
            )

    def _add_entries(
        self,
        conn: Any,
        files: tuple[pathlib.Path, ...],
        *,
        only: str | None = None,
        skip: str | None = None,
    ) -> None:
        """Add the entries of LDIF files (the suffix entry exists: dscreate made it)."""
        import ldap.modlist

        for path in files:
            for dn, entry in _records(path):
                if dn.lower() == BASE_DN.lower():
                    continue
                if only is not None and dn.lower() != only.lower():
                    continue
                if skip is not None and dn.lower() == skip.lower():
                    continue
                conn.add_s(dn, ldap.modlist.addModlist(entry))

    def _launch(self) -> None:
        ns_slapd = shutil.which("ns-slapd") or "/usr/sbin/ns-slapd"
        done = subprocess.run(
            [ns_slapd, "-D", str(self.config_dir), "-i", str(self.pid_file)],
            capture_output=True,
            check=False,
            timeout=60,
        )
        if done.returncode != 0:
            raise RuntimeError(f"ns-slapd did not start ({done.returncode}):{self._log_tail()}")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._answers():
                return
            time.sleep(0.05)
        self._kill()
        raise RuntimeError(f"389-ds did not answer within 30 s:{self._log_tail()}")

    def _answers(self) -> bool:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2),
        ):
            return True
        return False

    def _pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text(encoding="ascii").strip())
        except (OSError, ValueError):
            return None

    def _kill(self, how: signal.Signals = signal.SIGTERM) -> None:
        pid = self._pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, how)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.02)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.02)
        with contextlib.suppress(FileNotFoundError):
            self.pid_file.unlink()

    def _log_tail(self) -> str:
        try:
            lines = self.error_log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n" + "\n".join(lines[-30:])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (our own child, not yet reaped) counts as gone.
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG) != (0, 0):
            return False
    return True


def _modify(conn: Any, dn: str, op: Literal["add", "replace"], attr: str, value: str) -> None:
    import ldap

    kind = ldap.MOD_ADD if op == "add" else ldap.MOD_REPLACE
    conn.modify_s(dn, [(kind, attr, [value.encode()])])


def _records(path: pathlib.Path) -> Iterable[tuple[str, dict[str, list[bytes]]]]:
    import ldif

    with path.open("rb") as handle:
        parser = ldif.LDIFRecordList(handle)
        parser.parse()
    return parser.all_records


def _apply_changes(conn: Any, text: bytes) -> None:
    """Apply an LDIF of ``changetype: modify`` records, as ``ldapmodify`` would."""
    import io

    import ldif

    parser = ldif.LDIFRecordList(io.BytesIO(text))
    parser.parse_change_records()
    for dn, modops, _controls in parser.all_modify_changes:
        conn.modify_s(dn, modops)


def docs_ldif(name: str) -> bytes:
    """The LDIF block after ``<!-- ds389: NAME -->`` in docs/ldap.md."""
    docs = (LAB.parents[2] / "docs" / "ldap.md").read_text(encoding="utf-8")
    marker = f"<!-- ds389: {name} -->\n```ldif\n"
    start = docs.index(marker) + len(marker)
    return docs[start : docs.index("```", start)].encode("utf-8")


def _delete_subtree_below(conn: Any, base: str, *, keep: str) -> None:
    """Delete every entry under ``base`` but ``base`` and ``keep``, leaves first."""
    import ldap

    found = conn.search_s(base, ldap.SCOPE_SUBTREE, "(objectClass=*)", ["1.1"])
    kept = {base.lower(), keep.lower()}
    dns = [dn for dn, _ in found if dn and dn.lower() not in kept]
    for dn in sorted(dns, key=lambda d: d.count(","), reverse=True):
        with contextlib.suppress(ldap.NO_SUCH_OBJECT):
            conn.delete_s(dn)


__all__ = ["DM_DN", "DM_PW", "MODES", "SYNC_PW", "Ds389", "Mode", "find_389"]
