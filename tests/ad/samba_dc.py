"""A throwaway Samba Active Directory domain controller, for tests and benchmarks.

Everything lives in one directory (``smb.conf``, ``sam.ldb``, logs, the pid file): provision
writes nothing to /etc/samba or /var/lib/samba. Samba runs as one process in the foreground
(``-M single``, LDAP service only, no winbindd), so it is stopped by its own PID. Provision
needs root (it chowns files and sets ``security.NTACL`` xattrs). The LDAP ports are fixed by
Samba at 389/636 on 127.0.0.1; nothing else may listen there.

Adapted from the Samba AD lab recipe; see docs/ad.md ("Testing against Samba").
Used by ``tests/ad/conftest.py`` and ``bench/bench_ad.py``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator

REALM = "EXAMPLE.TEST"
DOMAIN = "EXAMPLE"
BASE_DN = "DC=example,DC=test"
USERS_DN = f"CN=Users,{BASE_DN}"
ADMIN_DN = "Administrator@example.test"  # the UPN works as a bind DN
ADMIN_PW = "Passw0rd!Lab"
URI = "ldap://127.0.0.1"

# An anonymous rootDSE search (base "", scope base, (objectClass=*)), message id 1, so the
# readiness check needs no LDAP library.
_ROOTDSE_SEARCH = bytes.fromhex(
    "3025020101632004000a01000a0100020100020100010100870b6f626a656374436c6173733000"
)


def _find(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for directory in ("/usr/sbin", "/usr/bin", "/usr/local/sbin"):
        candidate = pathlib.Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def missing_reason() -> str | None:
    """Why a Samba AD DC cannot run here, or ``None`` when it can."""
    if _find("samba") is None or _find("samba-tool") is None:
        return "Samba is not installed (run scripts/install-samba-ad as root)"
    if _find("ldbadd") is None:
        return "ldb-tools is not installed (run scripts/install-samba-ad as root)"
    if not pathlib.Path("/usr/share/samba/setup").is_dir():
        return "samba-ad-provision is not installed (run scripts/install-samba-ad as root)"
    if os.geteuid() != 0:
        return "provisioning a Samba AD DC needs root"
    return None


def ldap_answers(host: str = "127.0.0.1", port: int = 389) -> bool:
    """Whether an LDAP server answers a rootDSE search on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            sock.settimeout(2)
            sock.sendall(_ROOTDSE_SEARCH)
            data = sock.recv(65536)
    except OSError:
        return False
    # Up: the answer to message id 1 is a SearchResultEntry (tag 0x64).
    return data[:1] == b"\x30" and b"\x02\x01\x01\x64" in data[:12]


LOCK_PATH = pathlib.Path(tempfile.gettempdir()) / "kanidm-sync-samba-ad.lock"


@contextlib.contextmanager
def port_lock(timeout: float = 600.0) -> Iterator[bool]:
    """Hold the machine-wide lock on Samba's fixed LDAP ports while the body runs.

    Two test sessions (or a test session and the benchmark) on one machine would both
    need 127.0.0.1:389; the second waits here for the first instead of failing.

    Yields:
        Whether the lock was obtained within ``timeout`` seconds.
    """
    with LOCK_PATH.open("a") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    yield False
                    return
                time.sleep(0.5)
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class SambaDC:
    """One Samba AD DC whose whole state is in ``state``.

    Args:
        state: an empty (or previously provisioned) directory.
        max_runtime: seconds after which samba exits by itself (a safety net).
    """

    def __init__(self, state: pathlib.Path, *, max_runtime: int = 3600) -> None:
        self.state = state
        self.max_runtime = max_runtime
        self.conf = state / "etc" / "smb.conf"
        self.sam_ldb = state / "private" / "sam.ldb"
        self.uri = URI
        self.base_dn = BASE_DN
        self.admin_dn = ADMIN_DN
        self.admin_pw = ADMIN_PW
        self._proc: subprocess.Popen[bytes] | None = None

    def provision(self) -> None:
        """Provision the domain EXAMPLE.TEST with RFC 2307 attributes (about 4 s)."""
        self.state.mkdir(parents=True, exist_ok=True)
        empty = self.state / "empty.conf"  # so Debian's /etc/samba/smb.conf does not leak in
        empty.write_text("", encoding="utf-8")
        log = self.state / "provision.log"
        with log.open("wb") as out:
            done = subprocess.run(
                [
                    "samba-tool", "domain", "provision", "-s", str(empty),
                    "--use-rfc2307", f"--realm={REALM}", f"--domain={DOMAIN}",
                    "--server-role=dc", "--dns-backend=NONE", f"--adminpass={ADMIN_PW}",
                    "--host-name=dc1", f"--targetdir={self.state}",
                    "--option=interfaces=lo", "--option=bind interfaces only=yes",
                    "--option=server services=ldap",
                    f"--option=log file={self.state}/log.%m",
                    f"--option=pid directory={self.state}",
                ],
                stdout=out, stderr=subprocess.STDOUT, check=False,
            )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"samba-tool domain provision failed:\n{log.read_text()[-3000:]}")
        # Simple binds over plain LDAP: provision drops this --option, so add it by hand.
        text = self.conf.read_text(encoding="utf-8")
        self.conf.write_text(
            text.replace("[global]\n", "[global]\n\tldap server require strong auth = no\n", 1),
            encoding="utf-8",
        )

    def start(self) -> None:
        """Start samba and wait until LDAP answers (about 0.5 s; 1-3 s the first time)."""
        if self._proc is not None and self._proc.poll() is None:
            return
        if ldap_answers():
            raise RuntimeError("something else already answers LDAP on 127.0.0.1:389")
        if not self.conf.is_file():
            self.provision()
        out = (self.state / "samba.out").open("wb")
        self._proc = subprocess.Popen(
            ["samba", "-i", "-M", "single", "-s", str(self.conf),
             f"--maximum-runtime={self.max_runtime}"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        out.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                break
            if ldap_answers():
                return
            time.sleep(0.05)
        self.stop()
        tail = (self.state / "samba.out").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"samba did not come up:\n{tail}")

    def stop(self) -> None:
        """Stop samba (SIGTERM, then SIGKILL after 10 s) and reap it."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    @property
    def running(self) -> bool:
        """Whether the samba process we started is alive."""
        return self._proc is not None and self._proc.poll() is None

    def ldbadd(self, ldif: pathlib.Path, *, chunk: int = 500) -> None:
        """Load an LDIF straight into ``sam.ldb`` (samba must be stopped).

        Faster than LDAP adds (1,600 users and a 1,600-member group: about 2 s, against
        about 6-10 s over LDAP), and the directory's modules still run: objectGUID,
        objectSid, USNs and the member links are made as for an LDAP add. One ldbadd
        transaction grows slower with its size (5,000 users: 26 s in one, 11 s in chunks
        of 500), so the records are loaded ``chunk`` at a time.
        """
        if self.running:
            raise RuntimeError("stop samba before loading with ldbadd")
        records = [r for r in ldif.read_text(encoding="utf-8").split("\n\n") if r.strip()]
        part = ldif.with_suffix(".part.ldif")
        for start in range(0, len(records), chunk):
            part.write_text("\n\n".join(records[start : start + chunk]) + "\n\n", "utf-8")
            done = subprocess.run(
                ["ldbadd", "-H", str(self.sam_ldb), str(part)], capture_output=True, check=False
            )
            if done.returncode != 0:
                error = done.stderr.decode(errors="replace")[-2000:]
                raise RuntimeError(f"ldbadd failed: {error}")
        part.unlink(missing_ok=True)

    def snapshot(self, path: pathlib.Path) -> None:
        """Save the state directory to ``path`` (a tar file); samba must be stopped."""
        if self.running:
            raise RuntimeError("stop samba before taking a snapshot")
        with tarfile.open(path, "w") as tar:
            tar.add(self.state, arcname=".")

    def restore(self, path: pathlib.Path) -> None:
        """Replace the state directory by a snapshot; samba must be stopped."""
        if self.running:
            raise RuntimeError("stop samba before restoring a snapshot")
        shutil.rmtree(self.state)
        self.state.mkdir()
        with tarfile.open(path) as tar:
            tar.extractall(self.state, filter="tar")


# --- seeding over LDAP (python-ldap) ------------------------------------------------------

UF_NORMAL_ACCOUNT = 0x0200
UF_PASSWD_NOTREQD = 0x0020  # lets an account without a password be enabled
UF_ACCOUNTDISABLE = 0x0002
ENABLED = str(UF_NORMAL_ACCOUNT | UF_PASSWD_NOTREQD).encode()  # 544
DISABLED = str(UF_NORMAL_ACCOUNT | UF_PASSWD_NOTREQD | UF_ACCOUNTDISABLE).encode()  # 546
# accountExpires of dave: 2030-01-01T00:00:00Z as 100-ns ticks since 1601-01-01.
DAVE_EXPIRES = (1893456000 + 11644473600) * 10_000_000

# name, given, surname, uidNumber (or None), login shell, mail (or None), enabled
USERS = [
    ("alice", "Alice", "Anders", 10001, "/bin/bash", "alice@example.test", True),
    ("bob", "Bob", "Brown", 10002, "/bin/zsh", "bob@example.test", True),
    ("carol", "Carol", "Clark", 10003, "/bin/bash", "carol@example.test", False),
    ("dave", "Dave", "Davis", 10004, "/bin/sh", "dave@example.test", True),
    ("erin", "Erin", "Evans", None, "", None, False),
]
# name, gidNumber (or None), members (user names or groups, by CN)
GROUPS = [
    ("admins", 20002, ["alice", "dave"]),
    ("developers", 20001, ["alice", "bob", "carol", "admins"]),
    ("Sales Team", None, ["erin"]),
]


def user_dn(name: str) -> str:
    """The DN of a seeded user."""
    for sam, given, surname, *_ in USERS:
        if sam == name:
            return f"CN={given} {surname},{USERS_DN}"
    return f"CN={name},{USERS_DN}"


def group_dn(name: str) -> str:
    """The DN of a seeded group."""
    return f"CN={name},{USERS_DN}"


def connect(dc: SambaDC):  # type: ignore[no-untyped-def]  # python-ldap is untyped
    """An administrator connection (python-ldap) to ``dc``."""
    import ldap

    conn = ldap.initialize(dc.uri)
    conn.set_option(ldap.OPT_PROTOCOL_VERSION, 3)
    conn.set_option(ldap.OPT_REFERRALS, 0)
    conn.simple_bind_s(dc.admin_dn, dc.admin_pw)
    return conn


def user_attributes(
    sam: str, given: str, surname: str, uid: int | None, shell: str, mail: str | None, enabled: bool
) -> list[tuple[str, list[bytes]]]:
    """The add list of one user (no password: enabled through PASSWD_NOTREQD)."""
    attributes: dict[str, list[bytes]] = {
        "objectClass": [b"top", b"person", b"organizationalPerson", b"user"],
        "sAMAccountName": [sam.encode()],
        "userPrincipalName": [f"{sam}@example.test".encode()],
        "givenName": [given.encode()],
        "sn": [surname.encode()],
        "displayName": [f"{given} {surname}".encode()],
        "userAccountControl": [ENABLED if enabled else DISABLED],
    }
    if uid is not None:
        attributes |= {
            "uidNumber": [str(uid).encode()],
            "gidNumber": [b"20001"],
            "loginShell": [shell.encode()],
            "unixHomeDirectory": [f"/home/{sam}".encode()],
        }
    if mail:
        attributes["mail"] = [mail.encode()]
    return list(attributes.items())


def seed(dc: SambaDC) -> None:
    """Seed five users (two disabled, one expiring) and three groups over LDAP.

    ``developers`` holds the group ``admins`` (nesting); ``Sales Team`` needs a remapped name.
    """
    import ldap

    conn = connect(dc)
    try:
        for sam, given, surname, uid, shell, mail, enabled in USERS:
            conn.add_s(
                user_dn(sam), user_attributes(sam, given, surname, uid, shell, mail, enabled)
            )
        conn.modify_s(
            user_dn("dave"),
            [(ldap.MOD_REPLACE, "accountExpires", [str(DAVE_EXPIRES).encode()])],
        )
        for name, gid, members in GROUPS:
            attributes = [
                ("objectClass", [b"top", b"group"]),
                ("sAMAccountName", [name.encode()]),
                ("description", [f"The {name}".encode()]),
            ]
            if gid is not None:
                attributes.append(("gidNumber", [str(gid).encode()]))
            conn.add_s(group_dn(name), attributes)
            dns = [
                (group_dn(m) if any(m == g[0] for g in GROUPS) else user_dn(m)).encode()
                for m in members
            ]
            conn.modify_s(group_dn(name), [(ldap.MOD_ADD, "member", dns)])
    finally:
        conn.unbind_s()


def write_bulk_ldif(
    path: pathlib.Path,
    users: int,
    *,
    ou: str = "Bulk",
    groups: int = 0,
    members_per_group: int = 0,
    big_group: str | None = None,
) -> list[str]:
    """Write an LDIF of ``users`` users ``bulk00000``... in ``OU=<ou>`` for :meth:`SambaDC.ldbadd`.

    Args:
        path: the LDIF file to write.
        users: how many users (enabled, with mail and RFC 2307 attributes).
        ou: the OU that holds them (created too).
        groups: how many groups ``bgroup0000``... to add, each with ``members_per_group``
            users (user ``i`` is in groups ``i % groups``, ``(i + 1) % groups``, ...).
        members_per_group: the members of each such group.
        big_group: the name of one more group holding every user, if given.

    Returns:
        The users' DNs.
    """
    ou_dn = f"OU={ou},{BASE_DN}"
    prefix = ou.lower()
    dns = [f"CN={prefix}{i:05d},{ou_dn}" for i in range(users)]
    with path.open("w", encoding="utf-8") as out:
        out.write(f"dn: {ou_dn}\nobjectClass: top\nobjectClass: organizationalUnit\nou: {ou}\n\n")
        for i, dn in enumerate(dns):
            sam = f"{prefix}{i:05d}"
            out.write(
                f"dn: {dn}\nobjectClass: top\nobjectClass: person\n"
                "objectClass: organizationalPerson\nobjectClass: user\n"
                f"sAMAccountName: {sam}\nuserAccountControl: {ENABLED.decode()}\n"
                f"displayName: Bulk User {i}\nmail: {sam}@example.test\n"
                f"uidNumber: {100000 + i}\ngidNumber: 20001\nloginShell: /bin/sh\n\n"
            )
        for g in range(groups):
            out.write(
                f"dn: CN=bgroup{g:04d},{ou_dn}\nobjectClass: top\nobjectClass: group\n"
                f"sAMAccountName: bgroup{g:04d}\ngidNumber: {30000 + g}\n"
            )
            for k in range(members_per_group):
                out.write(f"member: {dns[(g * members_per_group + k) % users]}\n")
            out.write("\n")
        if big_group is not None:
            out.write(
                f"dn: CN={big_group},{ou_dn}\nobjectClass: top\nobjectClass: group\n"
                f"sAMAccountName: {big_group}\n"
            )
            out.writelines(f"member: {dn}\n" for dn in dns)
            out.write("\n")
    return dns
