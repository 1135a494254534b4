"""kanidm-sync against a real kanidmd, beside Kanidm's own kanidm-ldap-sync, on one slapd.

For each directory size: a full refresh of N persons (with groups of 20 members), then a
1%-churn incremental run (1% of persons modified, deletions and additions), each done by
kanidm-ldap-sync into one throwaway kanidmd and by ``kanidm-sync run`` (the same
kanidm-ldap-sync configuration file) into another. Both tools run as child processes; the
figures are wall time, peak RSS of the tool's process (``wait4``), and for kanidm-sync the
requests and bytes it sent. Ratios are ours / theirs, measured in the same run, on the same
slapd data. A directory past kanidmd's 32 MiB request limit (``--large``, ~80k persons)
shows the chunked apply, where kanidm-ldap-sync gets HTTP 413.

    .venv/bin/python bench/bench_kanidmd.py --kanidmd PATH [--kanidm-ldap-sync PATH]
        [--sizes 10000,50000] [--large 80000]

Needs slapd and python-ldap (as the LDAP tests), a kanidmd binary (never built by this
project), and optionally Kanidm's kanidm-ldap-sync binary.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "ldap"))

import ldap
from slapd import ADMIN_DN, ADMIN_PW, BASE_DN, LAB, PEOPLE_DN, SYNC_DN, SYNC_PW, Slapd

from kanidm_sync.testing import Kanidmd, KanidmdTarget

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from bench_ldap import write_ldif  # the same directory shape as the slapd bench

FILTER = "(|(objectclass=person)(objectclass=groupofnames))"


def churn(server: Slapd, persons: int) -> None:
    """1% of the persons: 0.8% modified, 0.1% deleted, 0.1% added."""
    conn = ldap.initialize(server.uri)
    conn.simple_bind_s(ADMIN_DN, ADMIN_PW)
    step = max(1, persons // 100)
    modified = int(persons * 0.008)
    for i in range(modified):
        conn.modify_s(
            f"uid=user{i * 97 % persons:05d},{PEOPLE_DN}",
            [(ldap.MOD_REPLACE, "loginShell", [b"/bin/zsh"])],
        )
    for i in range(max(1, step // 10)):
        conn.delete_s(f"uid=user{persons - 1 - i:05d},{PEOPLE_DN}")
        conn.add_s(
            f"uid=new{i:05d},{PEOPLE_DN}",
            [
                ("objectClass", [b"person", b"inetOrgPerson", b"posixAccount"]),
                ("uid", [f"new{i:05d}".encode()]),
                ("cn", [f"New {i}".encode()]),
                ("sn", [b"New"]),
                ("uidNumber", [str(400000 + i).encode()]),
                ("gidNumber", [str(400000 + i).encode()]),
                ("homeDirectory", [f"/home/new{i:05d}".encode()]),
            ],
        )
    conn.unbind_s()


def run_child(argv: list[str], env: dict[str, str]) -> tuple[int, float, float, str, str]:
    """Exit code, wall seconds, peak RSS (MiB), stdout, stderr of one child process."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        return (
            proc.returncode,
            wall,
            usage.ru_maxrss / 1024,
            out.read().decode("utf-8", "replace"),
            err.read().decode("utf-8", "replace"),
        )


def ldap_toml(server: Slapd, token: str) -> str:
    return (
        f'sync_token = "{token}"\nldap_uri = "{server.uri}"\nldap_sync_dn = "{SYNC_DN}"\n'
        f'ldap_sync_pw = "{SYNC_PW}"\nldap_sync_base_dn = "{BASE_DN}"\n'
        f'ldap_filter = "{FILTER}"\nmax_ber_size = 16777216\n'
    )


class Side:
    """One tool with its own kanidmd."""

    def __init__(self, binary: str, work: pathlib.Path, label: str) -> None:
        self.label = label
        self.work = work
        self.server = Kanidmd(binary, workdir=work / f"kanidmd-{label}", log_level="info")
        self.server.start()
        # Not closed: closing a target terminates the sync accounts it made.
        self.token = KanidmdTarget.of(self.server).provision_sync_account("bench").token
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("KANIDM_")}
        self.env["HOME"] = str(work)

    def stop(self) -> None:
        """Stop this side's kanidmd."""
        self.server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kanidmd", required=True)
    parser.add_argument("--kanidm-ldap-sync", default=None)
    parser.add_argument("--sizes", default="10000,50000")
    parser.add_argument("--large", type=int, default=0, help="persons past the 32 MiB limit")
    args = parser.parse_args()
    kanidmd = Kanidmd(args.kanidmd)
    print(f"kanidmd: {kanidmd.version()}")
    sizes = [int(s) for s in args.sizes.split(",") if s] + ([args.large] if args.large else [])
    rows: list[dict[str, object]] = []
    for persons in sizes:
        groups = max(1, persons // 50)
        with tempfile.TemporaryDirectory(prefix="bench-kanidmd-") as tmp:
            work = pathlib.Path(tmp)
            data = work / "data.ldif"
            write_ldif(data, persons, groups)
            slapd = Slapd(work / "slapd", seed=(LAB / "seed.ldif", data), max_size=2**31)
            slapd.start()
            ours = Side(args.kanidmd, work, "ours")
            theirs = Side(args.kanidmd, work, "theirs") if args.kanidm_ldap_sync else None
            try:
                (work / "ours.toml").write_text(ldap_toml(slapd, ours.token))
                for phase in ("full", "churn 1%"):
                    if phase != "full":
                        churn(slapd, persons)
                    row: dict[str, object] = {"persons": persons, "groups": groups, "phase": phase}
                    code, wall, rss, out, err = run_child(
                        [sys.executable, "-m", "kanidm_sync", "run", "-c",
                         str(work / "ours.toml"), "--json", "--allow-deletes",
                         "-H", ours.server.url, "-C", str(ours.server.ca_path)],
                        ours.env,
                    )  # fmt: skip
                    report = json.loads(out).get("report", {}) if out.strip() else {}
                    row.update(
                        ours_ok=code == 0,
                        ours_s=round(wall, 1),
                        ours_rss_mib=round(rss),
                        requests=report.get("requests_sent"),
                        mib_sent=round((report.get("bytes_sent") or 0) / 2**20, 1),
                    )
                    if code != 0:
                        row["ours_error"] = (err or out)[-400:]
                    if theirs is not None:
                        client = work / "client-theirs.toml"
                        client.write_text(
                            f'uri = "{theirs.server.url}"\nca_path = "{theirs.server.ca_path}"\n'
                        )
                        (work / "theirs.toml").write_text(ldap_toml(slapd, theirs.token))
                        code, wall, rss, out, err = run_child(
                            [args.kanidm_ldap_sync, "-c", str(client), "-l",
                             str(work / "theirs.toml"), "--skip-root-check"],
                            theirs.env,
                        )  # fmt: skip
                        row.update(
                            theirs_ok=code == 0,
                            theirs_s=round(wall, 1),
                            theirs_rss_mib=round(rss),
                        )
                        if code != 0:
                            row["theirs_error"] = err[-300:].strip().splitlines()[-1:]
                        elif row["ours_ok"]:
                            row["time_ratio"] = round(float(row["ours_s"]) / max(wall, 0.01), 2)  # type: ignore[arg-type]
                            row["rss_ratio"] = round(float(row["ours_rss_mib"]) / max(rss, 1), 2)  # type: ignore[arg-type]
                    rows.append(row)
                    print(json.dumps(row), flush=True)
            finally:
                ours.stop()
                if theirs is not None:
                    theirs.stop()
                slapd.stop()
    print()
    columns = ["persons", "phase", "ours s", "theirs s", "ratio", "ours RSS MiB"]
    columns += ["theirs RSS MiB", "requests", "MiB sent"]
    print("| " + " | ".join(columns) + " |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['persons']} | {r['phase']} | {r['ours_s'] if r['ours_ok'] else 'failed'} | "
            f"{r.get('theirs_s', '-') if r.get('theirs_ok', True) else 'failed'} | "
            f"{r.get('time_ratio', '-')} | {r['ours_rss_mib']} | {r.get('theirs_rss_mib', '-')} | "
            f"{r['requests']} | {r['mib_sent']} |"
        )


if __name__ == "__main__":
    main()
