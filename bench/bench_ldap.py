"""Benchmark the LDAP source against a throwaway slapd: full and 1%-churn syncs at 10k-200k entries.

For each size (``--sizes``, default 10,000 and 100,000 entries, each in a fresh process;
``--quick``: 10,000 only; ``--sizes 10000,100000,200000`` adds 200,000, which takes about
6.5 minutes on the 2-core reference machine, of which loading slapd takes 7 s, against
about 3 minutes for 100,000), a throwaway slapd (``tests/ldap/slapd.py``: mdb,
syncprov with a session log of 100) is loaded offline with ``slapadd`` from a generated
LDIF: 10 users per group (users are inetOrgPerson + posixAccount + ldapPublicKey with an
SSHA password, one SSH key and one mail; groups are groupOfNames of 20 members). Then, in
that process:

1. the **floor**: the raw python-ldap RFC 4533 refreshOnly search (the same base, filter
   and ``*``/``+`` attributes) reading every message into a list, with the controls kept
   as raw bytes and nothing decoded, with the garbage collector on and paused, alternating
   with ours (below) so that a change in the machine's load hits both;
2. ours: ``LdapSource.fetch()`` of a full refresh end to end (read, Sync State decoding,
   schema, mapping, rules), GC on and paused, and its two halves apart: the LDAP read
   (``sync_refresh`` + ``outcome()``, GC on) and the mapping (``map_ldap_entries``, GC on
   and paused). The ratio is ``fetch()`` over the floor: what reading *and* mapping cost
   against reading alone;
3. the process's **peak RSS** above a baseline taken before the first read: the first
   measured call is the GC-on ``fetch()``, so the peak is the source's own (a later line
   gives the whole process's peak, which also holds the in-memory Kanidm's store);
4. a ``Runner`` first run into the in-memory Kanidm (``kanidm_sync.testing``; the image
   is split into requests under 30 MiB) and, after 1% of the entries changed in slapd
   (80% of the writes modify a ``loginShell``, 10% delete a user, 10% add one, plus one
   group membership),
   the incremental run: the LDAP read and the mapping apart, ``fetch()`` end to end, and
   the ``Runner`` run applying the change. The writes outnumber the session log, so
   slapd answers with a present phase (every live id), the expensive case.

Times are wall clock and this process's CPU time (``time.process_time``: slapd's work is
not in it, and it moves much less than wall time when other jobs share the machine); the
ratios to the floor are given in both. Each timing is one run unless ``--repeat`` says
otherwise (the machine is small and shared). Needs slapd/slapadd
(``scripts/install-system-deps``) and python-ldap (the ``ldap`` extra).

Run: ``.venv/bin/python bench/bench_ldap.py [--sizes 10000,100000,200000 | --quick]
[--repeat N]``.
"""

from __future__ import annotations

import argparse
import gc
import pathlib
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any, TypeVar

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "ldap"))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import httpx
import ldap
from _measure import (
    MIB,
    add_size_arguments,
    emit_result,
    environment,
    print_table,
    rss_now_mib,
    rss_peak_mib,
    run_sizes,
    sizes_of,
    time_wall_cpu,
)
from ldap.controls import ResponseControl
from ldap.syncrepl import SyncRequestControl
from slapd import ADMIN_DN, ADMIN_PW, BASE_DN, LAB, PEOPLE_DN, SYNC_DN, SYNC_PW, Slapd

from kanidm_sync import ActiveState, Client, RefreshState, Runner, SyncState
from kanidm_sync.adapters import Delta, SourceBatch
from kanidm_sync.adapters._ldap_client import LdapConnection, class_ancestors
from kanidm_sync.adapters._ldap_map import map_ldap_entries
from kanidm_sync.adapters.ldap import LdapConfig, LdapSource
from kanidm_sync.testing import FakeKanidm

T = TypeVar("T")
DEFAULT_SIZES = (10_000, 100_000)
KEY = (LAB / "frank.pub").read_text(encoding="utf-8").strip()
PASSWORD = "{SSHA}ONxQnCf+B6kBolzpXaN/ABPpJ381CMSs"
MEMBERS_PER_GROUP = 20
FILTER = "(|(objectClass=person)(objectClass=groupOfNames))"
SYNC_OIDS = (
    "1.3.6.1.4.1.4203.1.9.1.2",  # Sync State
    "1.3.6.1.4.1.4203.1.9.1.3",  # Sync Done
)


def shape(size: int) -> tuple[int, int]:
    """``(users, groups)`` for ``size`` entries: 10 users per group."""
    groups = size // 11
    return size - groups, groups


def uid(i: int) -> str:
    """The uid of user ``i``."""
    return f"user{i:06d}"


def write_ldif(path: pathlib.Path, users: int, groups: int) -> None:
    """The bulk LDIF loaded with slapadd."""
    with path.open("w", encoding="utf-8") as out:
        for i in range(users):
            out.write(
                f"dn: uid={uid(i)},{PEOPLE_DN}\n"
                "objectClass: person\nobjectClass: organizationalPerson\n"
                "objectClass: inetOrgPerson\nobjectClass: posixAccount\n"
                "objectClass: ldapPublicKey\n"
                f"uid: {uid(i)}\ncn: User {i}\nsn: {i}\nmail: {uid(i)}@example.com\n"
                f"uidNumber: {100000 + i}\ngidNumber: {100000 + i}\n"
                f"homeDirectory: /home/{uid(i)}\nloginShell: /bin/bash\n"
                f"userPassword: {PASSWORD}\nsshPublicKey: {KEY}\n\n"
            )
        for g in range(groups):
            out.write(
                f"dn: cn=group{g:06d},ou=groups,{BASE_DN}\nobjectClass: groupOfNames\n"
                f"cn: group{g:06d}\ndescription: Group {g}\n"
            )
            for m in range(MEMBERS_PER_GROUP):
                out.write(f"member: uid={uid((g * 7 + m * 13) % users)},{PEOPLE_DN}\n")
            out.write("\n")


def mutate(server: Slapd, users: int, changes: int) -> dict[str, int]:
    """``changes`` LDAP writes: 80% modified users, 10% deleted, 10% added; one membership."""
    deleted = added = max(1, changes // 10)
    modified = max(1, changes - deleted - added)
    conn = ldap.initialize(server.uri)
    conn.simple_bind_s(ADMIN_DN, ADMIN_PW)
    for i in range(modified):
        conn.modify_s(
            f"uid={uid(i * 37 % (users - deleted))},{PEOPLE_DN}",
            [(ldap.MOD_REPLACE, "loginShell", [b"/bin/zsh"])],
        )
    for i in range(deleted):
        conn.delete_s(f"uid={uid(users - 1 - i)},{PEOPLE_DN}")
    for i in range(added):
        conn.add_s(
            f"uid=new{i},{PEOPLE_DN}",
            [
                ("objectClass", [b"person", b"inetOrgPerson", b"posixAccount"]),
                ("uid", [f"new{i}".encode()]),
                ("cn", [f"New {i}".encode()]),
                ("sn", [b"New"]),
                ("uidNumber", [str(900000 + i).encode()]),
                ("gidNumber", [str(900000 + i).encode()]),
                ("homeDirectory", [f"/home/new{i}".encode()]),
            ],
        )
    conn.modify_s(
        f"cn=group000000,ou=groups,{BASE_DN}",
        [(ldap.MOD_ADD, "member", [f"uid=new0,{PEOPLE_DN}".encode()])],
    )
    conn.unbind_s()
    return {"modified": modified, "deleted": deleted, "added": added, "memberships": 1}


class RawControl(ResponseControl):  # type: ignore[misc]
    """A response control kept as its raw bytes (the floor decodes nothing)."""

    def decodeControlValue(self, encodedControlValue: bytes) -> None:
        """Keep the bytes."""
        self.value = encodedControlValue


def raw_refresh(uri: str) -> int:
    """The floor: a refreshOnly sync search reading every message; the entry count."""
    conn = ldap.initialize(uri)
    conn.set_option(ldap.OPT_PROTOCOL_VERSION, ldap.VERSION3)
    conn.simple_bind_s(SYNC_DN, SYNC_PW)
    msgid = conn.search_ext(
        BASE_DN,
        ldap.SCOPE_SUBTREE,
        FILTER,
        attrlist=["*", "+"],
        serverctrls=[SyncRequestControl(criticality=True, mode="refreshOnly")],
        sizelimit=0,
    )
    classes = dict.fromkeys(SYNC_OIDS, RawControl)
    messages: list[object] = []
    entries = 0
    while True:
        rtype, data, _, controls, _, _ = conn.result4(
            msgid, all=0, add_ctrls=1, add_intermediates=1, resp_ctrl_classes=classes
        )
        messages.append((data, controls))
        if rtype == ldap.RES_SEARCH_ENTRY:
            entries += len(data)
        elif rtype == ldap.RES_SEARCH_RESULT:
            break
    conn.unbind_s()
    return entries


def wc(timing: dict[str, dict[str, float]], digits: int = 2) -> str:
    """``wall/cpu`` (best of each) of a :class:`WallCpu` dict."""
    return f"{timing['wall']['best']:.{digits}f}/{timing['cpu']['best']:.{digits}f}"


def once(call: Callable[[], T]) -> tuple[T, float]:
    """Run ``call`` once (GC on, after a collection); its result and wall time."""
    gc.collect()
    start = time.perf_counter()
    value = call()
    return value, time.perf_counter() - start


def read_and_map(
    config: LdapConfig, cookie: bytes | None, repeat: int, out: dict[str, Any]
) -> None:
    """The LDAP read (GC on) and the mapping (GC on and paused), timed apart."""
    outcomes = []
    with LdapConnection(config.ldap_uri, bind_dn=SYNC_DN, bind_pw=SYNC_PW) as conn:
        ancestors = class_ancestors(conn)
        out["read"] = time_wall_cpu(
            lambda: outcomes.append(
                conn.sync_refresh(BASE_DN, config.search_filter, cookie).outcome()
            ),
            1,
        ).as_dict()
    outcome = outcomes.pop()

    def mapping() -> object:
        return map_ldap_entries(outcome.entries, config, class_ancestors=ancestors)

    out["map_on"] = time_wall_cpu(mapping, repeat).as_dict()
    out["map_off"] = time_wall_cpu(mapping, repeat, gc_paused=True).as_dict()
    out["entries"] = len(outcome.entries)
    out["present"] = None if outcome.present is None else len(outcome.present)


class TimedSource:
    """Wraps the source: adds up the time spent in its ``fetch()``."""

    def __init__(self, inner: LdapSource) -> None:
        self.inner = inner
        self.seconds = 0.0

    def fetch(self, state: SyncState) -> SourceBatch:
        """The inner source's batch, timed."""
        start = time.perf_counter()
        try:
            return self.inner.fetch(state)
        finally:
            self.seconds += time.perf_counter() - start


class TimedTransport(httpx.BaseTransport):
    """Wraps the in-memory Kanidm's transport: adds up the time the server spends."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.seconds = 0.0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Forward the request, timing the server's handling of it."""
        start = time.perf_counter()
        request.read()
        response = self.inner.handle_request(request)
        response.read()
        self.seconds += time.perf_counter() - start
        return response


def runner_run(runner: Runner, source: TimedSource, server: TimedTransport) -> dict[str, Any]:
    """One ``Runner.run_once`` (GC on): wall time, its fetch and server parts, what it sent."""
    source.seconds = server.seconds = 0.0
    report, seconds = once(runner.run_once)
    if report.outcome != "applied":
        raise SystemExit(f"the run ended {report.outcome!r}, not 'applied'")
    return {
        "seconds": seconds,
        "fetch": source.seconds,
        "server": server.seconds,
        "ours": seconds - source.seconds - server.seconds,
        "requests": report.requests_total,
        "bytes": report.bytes_sent,
    }


def measure(size: int, repeat: int) -> dict[str, Any]:
    """Load slapd with ``size`` entries and measure everything, in this fresh process."""
    users, groups = shape(size)
    out: dict[str, Any] = {"size": size, "users": users, "groups": groups}
    with tempfile.TemporaryDirectory(prefix="bench-ldap-") as tmp:
        data = pathlib.Path(tmp) / "bulk.ldif"
        _, out["ldif"] = once(lambda: write_ldif(data, users, groups))
        # LMDB's map is a sparse file: size it generously (the fixture's default is 100 MiB).
        server = Slapd(
            pathlib.Path(tmp) / "slapd",
            seed=(LAB / "seed.ldif", data),
            max_size=max(100 * MIB, size * 32 * 1024),
        )
        _, out["load"] = once(server.start)
        print(
            f"{users:,} users + {groups:,} groups: LDIF {data.stat().st_size / MIB:.0f} MiB "
            f"written in {out['ldif']:.1f} s; slapadd + start {out['load']:.1f} s",
            flush=True,
        )
        try:
            measure_loaded(server, size, repeat, pathlib.Path(tmp), out)
        finally:
            server.stop()
    return out


def measure_loaded(
    server: Slapd, size: int, repeat: int, tmp: pathlib.Path, out: dict[str, Any]
) -> None:
    """The measurements against a loaded, running slapd."""
    config = LdapConfig(
        sync_token="unused",
        ldap_uri=server.uri,
        ldap_sync_dn=SYNC_DN,
        ldap_sync_pw=SYNC_PW,
        ldap_sync_base_dn=BASE_DN,
        ldap_filter=FILTER,
    )
    source = LdapSource(config)
    gc.collect()
    baseline = rss_now_mib()
    out["rss_baseline"] = baseline
    # Ours and the floor alternate, so a change in the machine's load hits both alike.
    for paused in (False, True):
        key = "off" if paused else "on"
        fetched = time_wall_cpu(lambda: source.fetch(RefreshState()), repeat, gc_paused=paused)
        if not paused:  # the first heavy call of this process: its peak is the source's own
            out["rss_fetch_above"] = rss_peak_mib() - baseline
        floor = time_wall_cpu(lambda: raw_refresh(server.uri), repeat, gc_paused=paused)
        out[f"fetch_{key}"], out[f"floor_{key}"] = fetched.as_dict(), floor.as_dict()
    full: dict[str, Any] = {}
    read_and_map(config, None, repeat, full)
    out["full"] = full
    print(
        f"full, best s wall/CPU: raw read {wc(out['floor_on'])} (GC on), "
        f"{wc(out['floor_off'])} (GC paused); fetch() {wc(out['fetch_on'])} (GC on), "
        f"{wc(out['fetch_off'])} (GC paused); of which read {wc(full['read'])}, mapping "
        f"{wc(full['map_on'])} (GC on) {wc(full['map_off'])} (GC paused); "
        f"{full['entries']:,} entries; fetch() peak RSS {out['rss_fetch_above']:.0f} MiB "
        f"above a {baseline:.0f} MiB baseline",
        flush=True,
    )

    fake = FakeKanidm()
    account = fake.provision_sync_account("bench")
    transport = TimedTransport(fake.transport)
    timed_source = TimedSource(source)
    with Client(
        fake.url, token=account.token, http_client=httpx.Client(transport=transport), timeout=600
    ) as client:
        runner = Runner(client, timed_source, state_path=tmp / "record.sqlite")
        out["runner_first"] = first = runner_run(runner, timed_source, transport)
        state = client.get_state()
        assert isinstance(state, ActiveState), state
        cookie = state.cookie
        print(
            f"Runner first run: {first['seconds']:.2f} s (fetch {first['fetch']:.2f}, "
            f"in-memory Kanidm {first['server']:.2f}, the rest {first['ours']:.2f}); "
            f"{first['requests']} request(s), {first['bytes'] / MIB:.1f} MiB",
            flush=True,
        )
        changes = max(10, size // 100)
        out["writes"], out["mutate"] = once(lambda: mutate(server, out["users"], changes))
        incr: dict[str, Any] = {}
        read_and_map(config, cookie, repeat, incr)
        batches: list[object] = []
        incr["fetch"] = time_wall_cpu(
            lambda: batches.append(source.fetch(ActiveState(cookie))), 1
        ).as_dict()
        delta = batches.pop()
        assert isinstance(delta, Delta), delta
        incr["mapped"] = len(delta.entries)
        out["incr"] = incr
        out["runner_incr"] = runner_run(runner, timed_source, transport)
    out["rss_process_above"] = rss_peak_mib() - out["rss_baseline"]
    print(
        f"incremental after {sum(out['writes'].values()):,} writes ({out['mutate']:.1f} s): "
        f"read {wc(incr['read'])}, mapping {wc(incr['map_on'], 3)}, fetch() "
        f"{wc(incr['fetch'])} s wall/CPU ({incr['entries']:,} entries, present phase "
        f"{incr['present']} ids); Runner run {out['runner_incr']['seconds']:.2f} s; whole "
        f"process peak RSS {out['rss_process_above']:.0f} MiB above baseline",
        flush=True,
    )


def runner_cell(run: dict[str, Any]) -> str:
    """A Runner run's figures for the table."""
    return (
        f"{run['seconds']:.1f} ({run['fetch']:.1f} / {run['server']:.1f} / {run['ours']:.1f}), "
        f"{run['requests']} req."
    )


def main() -> None:
    """Run each size in a fresh process and print the tables."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add_size_arguments(parser, repeat=1)
    # 200,000 entries take about 6.5 minutes here (see the docstring): asked for explicitly.
    parser.set_defaults(sizes=",".join(str(s) for s in DEFAULT_SIZES))
    args = parser.parse_args()
    if args.one is not None:
        emit_result(measure(args.one, args.repeat))
        return
    print(environment())
    results = run_sizes(__file__, sizes_of(args), ["--repeat", str(args.repeat)])
    full_rows, incr_rows = [], []
    for r in results:
        f = r["full"]

        def ratio(kind: str, key: str, r: dict[str, Any] = r) -> str:
            return f"{r[f'fetch_{key}'][kind]['best'] / r[f'floor_{key}'][kind]['best']:.1f}"

        full_rows.append(
            [
                f"{r['size']:,} ({r['users']:,} + {r['groups']:,})",
                f"{r['load']:.1f}",
                wc(r["floor_on"]),
                wc(r["fetch_on"]),
                wc(r["fetch_off"]),
                f"{ratio('cpu', 'on')} / {ratio('cpu', 'off')}",
                f"{ratio('wall', 'on')} / {ratio('wall', 'off')}",
                f"{f['read']['cpu']['best']:.2f}",
                f"{f['map_on']['cpu']['best']:.2f} / {f['map_off']['cpu']['best']:.2f}",
                f"{r['rss_fetch_above']:.0f}",
                runner_cell(r["runner_first"]),
            ]
        )
        i = r["incr"]
        incr_rows.append(
            [
                f"{r['size']:,}",
                f"{sum(r['writes'].values()):,}",
                f"{i['entries']:,} / {i['present'] or 0:,}",
                wc(i["read"]),
                f"{i['map_on']['cpu']['best']:.3f} / {i['map_off']['cpu']['best']:.3f}",
                wc(i["fetch"]),
                runner_cell(r["runner_incr"]),
                f"{r['rss_process_above']:.0f}",
            ]
        )
    print_table(
        "LDAP source, full refresh (bench/bench_ldap.py)",
        [
            "entries (users + groups)",
            "slapadd + start s",
            "raw read floor s, wall/CPU (GC on)",
            "fetch() s, wall/CPU (GC on)",
            "fetch() s, wall/CPU (GC paused)",
            "fetch() / floor, CPU: GC on / paused",
            "fetch() / floor, wall: GC on / paused",
            "of which LDAP read CPU s (GC on)",
            "of which mapping CPU s, GC on / paused",
            "fetch() peak RSS MiB above baseline",
            "Runner first run wall s: total (fetch / in-memory Kanidm / rest)",
        ],
        full_rows,
    )
    print_table(
        "LDAP source, incremental after 1% churn (bench/bench_ldap.py)",
        [
            "entries",
            "LDAP writes",
            "entries sent / present ids",
            "LDAP read s, wall/CPU",
            "mapping CPU s, GC on / paused",
            "fetch() s, wall/CPU",
            "Runner run wall s: total (fetch / in-memory Kanidm / rest)",
            "whole process peak RSS MiB above baseline",
        ],
        incr_rows,
    )
    print(
        "fetch() = read + Sync State decoding + schema + mapping + rules; floor = python-ldap "
        "reading every message of the same sync search, nothing decoded; CPU = this "
        "process's CPU time (slapd's is not in it); the Runner runs include the in-memory "
        "Kanidm (same process)."
    )


if __name__ == "__main__":
    main()
