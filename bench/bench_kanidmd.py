"""kanidm-sync against a real kanidmd, beside Kanidm's own kanidm-ldap-sync, on one slapd.

For each directory size (``--sizes``, persons; groups of 20 members, one per 50 persons;
default 10,000, see below): a full refresh, then a 1%-churn incremental run (0.8% of persons
modified, 0.1% deleted, 0.1% added), each done by three child processes, each into its own
throwaway kanidmd, from the same slapd data:

* ``kanidm-sync run`` with the kanidm-ldap-sync configuration file, the garbage collector on
  (as a user runs it);
* the same command with the collector paused: the bench starts it as
  ``python -c "import gc; gc.disable(); ..."`` calling the CLI's ``main`` (no product option);
* kanidm-ldap-sync (``--kanidm-ldap-sync``), the floor: the ratios are ours / theirs, measured
  in the same run on the same data.

The figures are wall time (interpreter start-up and kanidmd's apply included), the peak RSS
of the tool's own process (``wait4``), and for kanidm-sync the requests and bytes it sent.
Each run is measured once: a refresh cannot be repeated on the same server.

Sizes: kanidmd's apply is what limits them (docs/performance.md). A 10,000-person refresh
takes 21-117 s here for either tool (kanidmd's apply, bimodal from run to run; the bench runs
three, about 4 minutes in all); a 50,000-person one did not finish within 20 minutes for
either tool on the shared 2-core machine, so 100,000 and 200,000 (accepted by ``--sizes``)
are not practical against kanidmd 1.11 here.

A directory past kanidmd's 32 MiB request limit (``--large``, ~80k persons) shows the chunked
apply, where kanidm-ldap-sync gets HTTP 413.

    .venv/bin/python bench/bench_kanidmd.py --kanidmd PATH [--kanidm-ldap-sync PATH]
        [--sizes 10000[,20000]] [--large 80000] [--no-gc-paused]

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
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "ldap"))

import ldap
from slapd import ADMIN_DN, ADMIN_PW, BASE_DN, LAB, PEOPLE_DN, SYNC_DN, SYNC_PW, Slapd

from kanidm_sync.testing import Kanidmd, KanidmdTarget

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _measure import environment, print_table, sizes_of
from bench_ldap import write_ldif  # the same directory shape as the slapd bench

FILTER = "(|(objectclass=person)(objectclass=groupofnames))"


def churn(server: Slapd, persons: int) -> None:
    """1% of the persons: 0.8% modified, 0.1% deleted, 0.1% added."""
    conn = ldap.initialize(server.uri)
    conn.simple_bind_s(ADMIN_DN, ADMIN_PW)
    # The bulk persons' DNs as loaded (whatever bench_ldap's digits), in a stable order.
    found = conn.search_s(PEOPLE_DN, ldap.SCOPE_ONELEVEL, "(uid=user*)", ["1.1"])
    people = sorted(dn for dn, _ in found)
    if len(people) != persons:
        raise SystemExit(f"churn: expected {persons} persons in slapd, found {len(people)}")
    step = max(1, persons // 100)
    modified = int(persons * 0.008)
    for i in range(modified):
        conn.modify_s(people[i * 97 % persons], [(ldap.MOD_REPLACE, "loginShell", [b"/bin/zsh"])])
    for i in range(max(1, step // 10)):
        conn.delete_s(people[persons - 1 - i])
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


# Linux records the RSS of the process a child was forked from as the child's starting
# ru_maxrss (kept across exec), so a child of this bench (tens of MiB) could never report
# less. A small interpreter without site packages forks the tool, waits for it and passes its
# own wait4 figure back on a file descriptor: the tool's peak, floored at a few MiB only.
_RSS_PROBE = (
    "import os, sys\n"
    "fd = int(sys.argv[1])\n"
    "pid = os.fork()\n"
    "if pid == 0:\n"
    "    os.close(fd)\n"
    "    os.execvp(sys.argv[2], sys.argv[2:])\n"
    "_, status, usage = os.wait4(pid, 0)\n"
    "os.write(fd, str(usage.ru_maxrss).encode())\n"
    "sys.exit(os.waitstatus_to_exitcode(status))\n"
)


def run_child(argv: list[str], env: dict[str, str]) -> tuple[int, float, float, str, str]:
    """Exit code, wall seconds, peak RSS (MiB), stdout, stderr of one child process."""
    start = time.perf_counter()
    read_end, write_end = os.pipe()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(
                [sys.executable, "-S", "-c", _RSS_PROBE, str(write_end), *argv],
                stdout=out,
                stderr=err,
                env=env,
                pass_fds=(write_end,),
            )
            os.close(write_end)
            write_end = -1
            code = proc.wait()
            wall = time.perf_counter() - start
            with os.fdopen(read_end, "rb") as probe:
                read_end = -1
                maxrss_kib = int(probe.read() or 0)
        finally:
            for fd in (read_end, write_end):
                if fd >= 0:
                    os.close(fd)
        out.seek(0)
        err.seek(0)
        return (
            code,
            wall,
            maxrss_kib / 1024,
            out.read().decode("utf-8", "replace"),
            err.read().decode("utf-8", "replace"),
        )


def ldap_toml(server: Slapd, token: str) -> str:
    return (
        f'sync_token = "{token}"\nldap_uri = "{server.uri}"\nldap_sync_dn = "{SYNC_DN}"\n'
        f'ldap_sync_pw = "{SYNC_PW}"\nldap_sync_base_dn = "{BASE_DN}"\n'
        f'ldap_filter = "{FILTER}"\nmax_ber_size = 16777216\n'
    )


# kanidm-sync's CLI with the cyclic garbage collector paused before anything is imported.
GC_PAUSED = (
    "import gc, sys; gc.disable(); from kanidm_sync._cli import main; "
    "raise SystemExit(main(sys.argv[1:]))"
)


class Side:
    """One tool with its own kanidmd (and its own HOME, configuration and local record)."""

    def __init__(self, binary: str, work: pathlib.Path, label: str) -> None:
        self.label = label
        self.work = work
        self.server = Kanidmd(binary, workdir=work / f"kanidmd-{label}", log_level="info")
        self.server.start()
        # Not closed: closing a target terminates the sync accounts it made.
        self.token = KanidmdTarget.of(self.server).provision_sync_account("bench").token
        home = work / f"home-{label}"
        home.mkdir()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("KANIDM_")}
        self.env["HOME"] = str(home)

    def stop(self) -> None:
        """Stop this side's kanidmd."""
        self.server.stop()


def run_ours(side: Side, slapd: Slapd, gc_paused: bool) -> dict[str, Any]:
    """One ``kanidm-sync run`` into ``side``'s kanidmd: wall time, peak RSS, what it sent."""
    config = side.work / f"{side.label}.toml"  # its local record: <label>.state beside it
    config.write_text(ldap_toml(slapd, side.token))
    start = ["-c", GC_PAUSED] if gc_paused else ["-m", "kanidm_sync"]
    code, wall, rss, out, err = run_child(
        [sys.executable, *start, "run", "-c", str(config), "--json", "--allow-deletes",
         "-H", side.server.url, "-C", str(side.server.ca_path)],
        side.env,
    )  # fmt: skip
    report = json.loads(out).get("report", {}) if out.strip() else {}
    figures: dict[str, Any] = {
        "ok": code == 0,
        "s": wall,
        "rss_mib": rss,
        "requests": report.get("requests_sent"),
        "mib_sent": (report.get("bytes_sent") or 0) / 2**20,
        # The run as the tool measured it (no interpreter start-up), and the LDAP read in it.
        "run_s": report.get("duration"),
        "fetch_s": report.get("fetch_seconds"),
    }
    if code != 0:
        figures["error"] = (err or out)[-400:]
    return figures


def run_theirs(side: Side, slapd: Slapd, binary: str) -> dict[str, Any]:
    """One kanidm-ldap-sync run into ``side``'s kanidmd: wall time and peak RSS."""
    client = side.work / "client-theirs.toml"
    client.write_text(f'uri = "{side.server.url}"\nca_path = "{side.server.ca_path}"\n')
    config = side.work / "theirs.toml"
    config.write_text(ldap_toml(slapd, side.token))
    code, wall, rss, _, err = run_child(
        [binary, "-c", str(client), "-l", str(config), "--skip-root-check"], side.env
    )
    figures: dict[str, Any] = {"ok": code == 0, "s": wall, "rss_mib": rss}
    if code != 0:
        figures["error"] = err[-300:].strip().splitlines()[-1:]
    return figures


def measure(args: argparse.Namespace, persons: int) -> list[dict[str, Any]]:
    """The full refresh and the 1%-churn run of ``persons`` persons, by every tool."""
    groups = max(1, persons // 50)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-kanidmd-") as tmp:
        work = pathlib.Path(tmp)
        data = work / "data.ldif"
        write_ldif(data, persons, groups)
        slapd = Slapd(work / "slapd", seed=(LAB / "seed.ldif", data), max_size=2**31)
        slapd.start()
        sides: list[Side] = []
        try:
            ours = Side(args.kanidmd, work, "ours")
            sides.append(ours)
            paused = Side(args.kanidmd, work, "paused") if args.gc_paused else None
            theirs = Side(args.kanidmd, work, "theirs") if args.kanidm_ldap_sync else None
            sides += [s for s in (paused, theirs) if s is not None]
            for phase in ("full refresh", "1% churn"):
                if phase != "full refresh":
                    churn(slapd, persons)
                row: dict[str, Any] = {"persons": persons, "groups": groups, "phase": phase}
                row["ours"] = run_ours(ours, slapd, gc_paused=False)
                if paused is not None:
                    row["paused"] = run_ours(paused, slapd, gc_paused=True)
                if theirs is not None:
                    row["theirs"] = run_theirs(theirs, slapd, args.kanidm_ldap_sync)
                rows.append(row)
                print(json.dumps(row), flush=True)
        finally:
            for side in sides:
                side.stop()
            slapd.stop()
    return rows


def ratio(row: dict[str, Any], side: str, key: str) -> str:
    """``side``'s figure over kanidm-ldap-sync's, when both runs succeeded."""
    ours, theirs = row.get(side), row.get("theirs")
    if not ours or not theirs or not ours["ok"] or not theirs["ok"]:
        return "-"
    return f"{ours[key] / max(theirs[key], 0.01):.2f}"


def cell(row: dict[str, Any], side: str, key: str, unit: str, digits: int) -> str:
    """A figure of one tool's run, ``failed`` when it failed, ``-`` when not run."""
    figures = row.get(side)
    if not figures:
        return "-"
    if not figures["ok"]:
        return "failed"
    return f"{figures[key]:,.{digits}f}{unit}"


def main() -> None:
    """Run every size and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kanidmd", required=True)
    parser.add_argument("--kanidm-ldap-sync", default=None)
    parser.add_argument(
        "--sizes", default="10000", help="comma-separated person counts (default: %(default)s)"
    )
    parser.add_argument("--quick", action="store_true", help="10,000 persons only")
    parser.add_argument("--large", type=int, default=0, help="persons past the 32 MiB limit")
    parser.add_argument(
        "--no-gc-paused",
        dest="gc_paused",
        action="store_false",
        help="skip the kanidm-sync run with the garbage collector paused",
    )
    args = parser.parse_args()
    kanidmd = Kanidmd(args.kanidmd)
    print(f"kanidmd: {kanidmd.version()}")
    print(environment())
    sizes = sizes_of(args) + ([args.large] if args.large else [])
    rows: list[dict[str, Any]] = []
    for persons in sizes:
        started = time.perf_counter()
        rows += measure(args, persons)
        print(f"({time.perf_counter() - started:.0f} s for {persons:,} persons)", flush=True)
    print(environment())
    print_table(
        "Against a real kanidmd, beside kanidm-ldap-sync (bench/bench_kanidmd.py)",
        [
            "persons",
            "run",
            "kanidm-sync (GC on)",
            "kanidm-sync (GC paused)",
            "kanidm-ldap-sync",
            "ratio (GC on)",
            "ratio (GC paused)",
            "kanidm-sync RSS",
            "kanidm-ldap-sync RSS",
            "RSS ratio",
            "requests",
            "sent",
        ],
        [
            [
                f"{r['persons']:,}",
                r["phase"],
                cell(r, "ours", "s", " s", 1),
                cell(r, "paused", "s", " s", 1),
                cell(r, "theirs", "s", " s", 1),
                ratio(r, "ours", "s"),
                ratio(r, "paused", "s"),
                cell(r, "ours", "rss_mib", " MiB", 0),
                cell(r, "theirs", "rss_mib", " MiB", 0),
                ratio(r, "ours", "rss_mib"),
                str(r["ours"].get("requests")),
                f"{r['ours']['mib_sent']:.1f} MiB",
            ]
            for r in rows
        ],
    )


if __name__ == "__main__":
    main()
