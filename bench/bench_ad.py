"""Active Directory source against a throwaway Samba AD DC, against a raw python-ldap floor.

For each size (``--sizes``, entries = users + groups, one group of 20 members per 10 users;
default 10,000 only, see below), the parent process loads the directory offline (``ldbadd``)
into a provisioned Samba AD DC and saves it; a **fresh process** per size then measures, for
each mode (DirSync, USN polling as the administrator, and ``usn-plain``: USN polling as an
ordinary account without access to the Deleted Objects container) restored from that copy:

* a full sync: ``AdSource.fetch()`` (directory read + mapping) and the apply of its
  ``ChangeSet`` to the in-memory Kanidm (``Client.apply``, no runner), each with the garbage
  collector on and paused (best and median of ``--repeat`` runs);
* incremental syncs after 80 changes (50 users modified, 10 disabled, 10 added, 10 groups
  given a member) and after 5 deletions: the same fetch from the same cookie, timed with the
  collector on and paused; the apply once (collector on: it moves Kanidm's cookie);
* the floor, in the same process: a raw python-ldap paged search (``SimplePagedResults``,
  pages of 1,000, a connection and bind included) reading the same objects with the same
  attributes (the whole scope for the full sync; the returned objects by ``objectGUID``,
  100 per filter, for an incremental one). Ratios are ours / floor;
* the process's peak RSS above a baseline taken before the first mode (the in-memory Kanidm
  and its store are in the same process).

Sizes: the offline load is what limits them. Measured on the shared 2-core machine (load
about 1.5): 10,000 entries load in about 55 s (the whole bench about 2.5 minutes);
100,000 and 200,000 are accepted by ``--sizes`` but the load does not scale linearly (each
500-record ``ldbadd`` chunk grows slower with the database), see docs/performance.md for the
largest size measured.

    .venv/bin/python bench/bench_ad.py [--sizes 10000[,100000,...]] [--repeat N]

Needs root, Samba (scripts/install-samba-ad) and python-ldap (the ``ldap`` extra); port
389 must be free (the test suite's fixture takes the same lock and waits for it).
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "ad"))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import httpx
import ldap
import samba_dc as samba
from _measure import (
    Timing,
    add_size_arguments,
    emit_result,
    environment,
    print_table,
    rss_now_mib,
    rss_peak_mib,
    run_sizes,
    sizes_of,
    time_both,
)
from ldap.controls.libldap import SimplePagedResultsControl

from kanidm_sync import (
    ActiveState,
    ChangeSet,
    Client,
    DeleteOnly,
    RefreshState,
    RetainIgnore,
    RetainOnly,
    RetentionMode,
)
from kanidm_sync.adapters import Delta, FullImage, SourceBatch
from kanidm_sync.adapters.ad import AdConfig, AdSource
from kanidm_sync.testing import FakeKanidm

T = TypeVar("T")
DEFAULT_AD_SIZES = "10000"
MODES = ("dirsync", "usn", "usn-plain")
PAGE_SIZE = 1000
GUID_CHUNK = 100  # as the source's own re-read by objectGUID


def timed(call: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    value = call()
    return value, time.perf_counter() - start


def shape(size: int) -> tuple[int, int]:
    """Users and groups for ``size`` entries: one group per 10 users."""
    groups = max(1, size // 11)
    return size - groups, groups


def modify(dc: samba.SambaDC, users: int, groups: int) -> None:
    """50 users modified, 10 disabled, 10 added, 10 groups' members changed."""
    conn = samba.connect(dc)
    ou = f"OU=Bulk,{samba.BASE_DN}"
    for i in range(50):
        conn.modify_s(
            f"CN=bulk{i * 97 % users:05d},{ou}", [(ldap.MOD_REPLACE, "loginShell", [b"/bin/zsh"])]
        )
    for i in range(10):
        conn.modify_s(
            f"CN=bulk{(i * 131 + 7) % users:05d},{ou}",
            [(ldap.MOD_REPLACE, "userAccountControl", [samba.DISABLED])],
        )
    for i in range(10):
        conn.add_s(
            f"CN=new{i:03d},{ou}",
            samba.user_attributes(
                f"new{i:03d}", "New", str(i), 300000 + i, "/bin/sh", f"new{i}@example.test", True
            ),
        )
    for g in range(10):
        conn.modify_s(
            f"CN=bgroup{g * 37 % groups:04d},{ou}",
            [(ldap.MOD_ADD, "member", [f"CN=new{g:03d},{ou}".encode()])],
        )
    conn.unbind_s()


def delete(dc: samba.SambaDC, users: int) -> None:
    """5 users deleted (each a member of some groups, which AD does not mark changed)."""
    conn = samba.connect(dc)
    for i in range(5):
        conn.delete_s(f"CN=bulk{users - 1 - i * 11:05d},OU=Bulk,{samba.BASE_DN}")
    conn.unbind_s()


def retain_of(delta: Delta) -> RetentionMode:
    """What the runner sends without a local record: the present list, or the deletions."""
    if delta.present is not None:
        return RetainOnly([*(e.id for e in delta.entries), *delta.present])
    return DeleteOnly(delta.deleted) if delta.deleted else RetainIgnore()


def guid_term(guid: uuid.UUID) -> str:
    """``(objectGUID=...)`` with the GUID's bytes escaped, as AD wants them."""
    return "(objectGUID=" + "".join(f"\\{b:02x}" for b in guid.bytes_le) + ")"


def raw_read(
    uri: str, bind: tuple[str, str], filters: Sequence[str], attributes: Sequence[str]
) -> int:
    """The floor: python-ldap paged searches of the same objects; how many came back."""
    conn = ldap.initialize(uri)
    conn.set_option(ldap.OPT_PROTOCOL_VERSION, 3)
    conn.set_option(ldap.OPT_REFERRALS, 0)
    conn.simple_bind_s(*bind)
    count = 0
    for search_filter in filters:
        paging = SimplePagedResultsControl(True, size=PAGE_SIZE, cookie=b"")
        while True:
            msgid = conn.search_ext(
                samba.BASE_DN,
                ldap.SCOPE_SUBTREE,
                search_filter,
                list(attributes),
                serverctrls=[paging],
            )
            _, data, _, controls = conn.result3(msgid)
            count += sum(1 for dn, _ in data if dn is not None)
            cookie = next((c.cookie for c in controls if c.controlType == paging.controlType), b"")
            if not cookie:
                break
            paging.cookie = cookie
    conn.unbind_s()
    return count


def add_reader(dc: samba.SambaDC) -> tuple[str, str]:
    """An ordinary account: no replication right, no access to the Deleted Objects container."""
    bind = ("reader@example.test", "Passw0rd!Read1")
    conn = samba.connect(dc)
    attributes = samba.user_attributes("reader", "Sync", "Reader", None, "", None, True)
    attributes.append(("unicodePwd", [f'"{bind[1]}"'.encode("utf-16-le")]))
    conn.add_s(f"CN=Sync Reader,{samba.USERS_DN}", attributes)
    conn.unbind_s()
    return bind


def figures(on: Timing, off: Timing) -> dict[str, Any]:
    return {"on": on.as_dict(), "off": off.as_dict()}


def measure_fetch(
    source: AdSource, state: ActiveState | RefreshState, repeat: int
) -> tuple[SourceBatch, dict[str, Any]]:
    """Time ``source.fetch(state)`` with the collector on and paused; keep the read/map split."""
    batches: list[SourceBatch] = []
    splits: list[tuple[float, float]] = []

    def fetch() -> None:
        batches.append(source.fetch(state))
        stats = source.last_stats
        assert stats is not None
        splits.append((stats.read_seconds, stats.map_seconds))

    on, off = time_both(fetch, repeat)
    on_splits = splits[: on.runs]
    return batches[-1], {
        **figures(on, off),
        # The split of the fastest run with the collector on.
        "read": min(on_splits, key=sum)[0],
        "map": min(on_splits, key=sum)[1],
    }


def run_mode(
    dc: samba.SambaDC, snapshot: pathlib.Path, mode: str, users: int, groups: int, repeat: int
) -> list[dict[str, Any]]:
    dc.stop()
    dc.restore(snapshot)
    dc.start()
    bind = add_reader(dc) if mode == "usn-plain" else (dc.admin_dn, dc.admin_pw)
    source = AdSource(
        AdConfig(
            url=dc.uri,
            bind_dn=bind[0],
            bind_password=bind[1],
            base_dn=dc.base_dn,
            mode="dirsync" if mode == "dirsync" else "usn",
            page_size=PAGE_SIZE,
            range_size=1500,
        )
    )
    # The same query as the source's full read (its scope filter and attribute list).
    scope_filter = source._scope_filter
    attributes = source._read_attributes
    fake = FakeKanidm()
    account = fake.provision_sync_account("bench")
    client = Client(
        fake.url,
        token=account.token,
        http_client=httpx.Client(transport=fake.transport),
        timeout=600,
    )
    rows: list[dict[str, Any]] = []

    batch, fetched = measure_fetch(source, RefreshState(), repeat)
    assert isinstance(batch, FullImage)
    full = ChangeSet(
        from_state=RefreshState(), to_state=ActiveState(batch.cookie), entries=batch.entries
    )
    apply_on, apply_off = time_both(lambda: client.apply(full), repeat)
    floor_on, floor_off = time_both(
        lambda: raw_read(dc.uri, bind, [scope_filter], attributes), repeat
    )
    read = raw_read(dc.uri, bind, [scope_filter], attributes)
    rows.append(
        {
            "mode": mode,
            "run": "full",
            "entries": len(batch.entries),
            "deleted": 0,
            "present": 0,
            "floor_objects": read,
            "fetch": fetched,
            "apply": figures(apply_on, apply_off),
            "floor": figures(floor_on, floor_off),
        }
    )
    cookie = batch.cookie
    for label, change in (
        ("80 changes", lambda: modify(dc, users, groups)),
        ("5 deletes", lambda: delete(dc, users)),
    ):
        change()
        delta, fetched = measure_fetch(source, ActiveState(cookie), repeat)
        assert isinstance(delta, Delta), delta
        changeset = ChangeSet(
            from_state=ActiveState(cookie),
            to_state=ActiveState(delta.cookie),
            entries=delta.entries,
            retain=retain_of(delta),
        )
        _, apply_s = timed(lambda: client.apply(changeset))  # noqa: B023
        ids = sorted(e.id for e in delta.entries)
        filters = [
            f"(&{scope_filter}(|{''.join(guid_term(g) for g in ids[i : i + GUID_CHUNK])}))"
            for i in range(0, len(ids), GUID_CHUNK)
        ]
        floor_on, floor_off = time_both(
            lambda: raw_read(dc.uri, bind, filters, attributes),  # noqa: B023
            repeat,
        )
        rows.append(
            {
                "mode": mode,
                "run": label,
                "entries": len(delta.entries),
                "deleted": len(delta.deleted),
                "present": len(delta.present or ()),
                "floor_objects": raw_read(dc.uri, bind, filters, attributes),
                "fetch": fetched,
                "apply": {"on": {"best": apply_s, "median": apply_s, "runs": 1}},
                "floor": figures(floor_on, floor_off),
            }
        )
        cookie = delta.cookie
    client.close()
    return rows


def measure(size: int, snapshot: pathlib.Path, repeat: int) -> dict[str, Any]:
    """Measure every mode on the loaded directory ``snapshot`` (in this fresh process)."""
    users, groups = shape(size)
    baseline = rss_now_mib()
    rows: list[dict[str, Any]] = []
    # The state directory the snapshot was taken from: its smb.conf names that path.
    dc = samba.SambaDC(state_of(snapshot, size))
    try:
        for mode in MODES:
            for row in run_mode(dc, snapshot, mode, users, groups, repeat):
                rows.append(row)
                f, fl = row["fetch"], row["floor"]
                print(
                    f"{mode:<9} {row['run']:<10} {row['entries']:>6} entries: fetch "
                    f"{f['on']['best']:.3f}/{f['on']['median']:.3f} s (GC on, best/median), "
                    f"{f['off']['best']:.3f} s (GC paused); raw read "
                    f"{fl['on']['best']:.3f} s ({row['floor_objects']} objects); "
                    f"apply {row['apply']['on']['best']:.3f} s",
                    flush=True,
                )
    finally:
        dc.stop()
    return {
        "size": size,
        "users": users,
        "groups": groups,
        "rows": rows,
        "rss_baseline": baseline,
        "rss_peak_above": rss_peak_mib() - baseline,
    }


def state_of(snapshot: pathlib.Path, size: int) -> pathlib.Path:
    """The DC's state directory beside its snapshot (Samba's configuration names this path)."""
    return snapshot.parent / f"dc-{size}"


def load(size: int, root: pathlib.Path) -> tuple[pathlib.Path, dict[str, float]]:
    """Provision a DC, load ``size`` entries offline and save it; the setup times."""
    users, groups = shape(size)
    setup: dict[str, float] = {}
    snapshot = root / f"loaded-{size}.tar"
    dc = samba.SambaDC(state_of(snapshot, size))
    _, setup["provision"] = timed(dc.provision)
    ldif = root / f"bulk-{size}.ldif"
    samba.write_bulk_ldif(ldif, users, groups=groups, members_per_group=20)
    _, setup["ldbadd"] = timed(lambda: dc.ldbadd(ldif))
    _, setup["snapshot"] = timed(lambda: dc.snapshot(snapshot))
    return snapshot, setup


def row_cells(r: dict[str, Any], row: dict[str, Any]) -> list[str]:
    fetch, floor, apply = row["fetch"], row["floor"], row["apply"]
    on = fetch["on"]["best"] / floor["on"]["best"]
    off = fetch["off"]["best"] / floor["off"]["best"]
    present = f"{row['present']:,}" if row["present"] else ""
    return [
        f"{r['size']:,}",
        row["mode"],
        row["run"],
        f"{row['entries']:,}",
        f"{row['deleted']}",
        present,
        f"{fetch['read']:.3f} / {fetch['map']:.3f}",
        f"{fetch['on']['best']:.3f} / {fetch['on']['median']:.3f}",
        f"{fetch['off']['best']:.3f}",
        f"{floor['on']['best']:.3f}",
        f"{on:.2f}",
        f"{off:.2f}",
        f"{apply['on']['best']:.3f}",
    ]


def main() -> None:
    """Load each size, measure it in a fresh process and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_size_arguments(parser, repeat=3)
    parser.set_defaults(sizes=DEFAULT_AD_SIZES)
    parser.add_argument("--snapshot", type=pathlib.Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        emit_result(measure(args.one, args.snapshot, args.repeat))
        return
    reason = samba.missing_reason()
    if reason is not None:
        sys.exit(f"bench_ad: {reason}")
    print(environment())
    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    setups: dict[int, dict[str, float]] = {}
    with samba.port_lock() as locked, tempfile.TemporaryDirectory(prefix="bench-ad-") as tmp:
        if not locked:
            sys.exit("bench_ad: another process holds the Samba AD DC lock")
        print(f"port lock after {time.perf_counter() - started:.1f} s", flush=True)
        for size in sizes_of(args):
            snapshot, setups[size] = load(size, pathlib.Path(tmp))
            print(
                f"{size:,} entries loaded: "
                + ", ".join(f"{k} {v:.1f} s" for k, v in setups[size].items()),
                flush=True,
            )
            extra = ["--repeat", str(args.repeat), "--snapshot", str(snapshot)]
            results += run_sizes(__file__, [size], extra)
            snapshot.unlink()
    rows = [row_cells(r, row) for r in results for row in r["rows"]]
    print_table(
        "AD source against Samba AD (bench/bench_ad.py)",
        [
            "entries",
            "mode",
            "run",
            "sent",
            "deleted",
            "present",
            "read / map s",
            "fetch s, best / median (GC on)",
            "fetch s (GC paused)",
            "raw read s (GC on)",
            "ratio (GC on)",
            "ratio (GC paused)",
            "apply s",
        ],
        rows,
    )
    for r in results:
        setup = setups[r["size"]]
        print(
            f"{r['size']:,} entries ({r['users']:,} users, {r['groups']:,} groups): load "
            f"{setup['provision'] + setup['ldbadd']:.0f} s (ldbadd {setup['ldbadd']:.0f} s); "
            f"peak RSS {r['rss_peak_above']:.0f} MiB above a {r['rss_baseline']:.0f} MiB "
            "baseline (the in-memory Kanidm included)"
        )
    print(f"total wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
