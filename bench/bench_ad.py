"""Active Directory source against a throwaway Samba AD DC: 5,000 users and 500 groups.

Times a full sync and incremental syncs, by DirSync and by USN polling, split into
directory read (rootDSE, change search, paged and ranged re-reads), mapping (AD objects ->
Kanidm entries) and apply (the ChangeSet posted to the in-memory Kanidm).

    .venv/bin/python bench/bench_ad.py [--users 5000] [--groups 500] [--members 20]

Needs root, Samba (scripts/install-samba-ad) and python-ldap (the ``ldap`` extra); port
389 must be free (the test suite's fixture takes the same lock and waits for it).
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import time
from collections.abc import Callable
from typing import TypeVar

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "ad"))

import httpx
import ldap
import samba_dc as samba

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
from kanidm_sync.adapters import Delta, FullImage
from kanidm_sync.adapters.ad import AdConfig, AdSource
from kanidm_sync.testing import FakeKanidm

T = TypeVar("T")


def timed(call: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    value = call()
    return value, time.perf_counter() - start


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


def run_mode(
    dc: samba.SambaDC, snapshot: pathlib.Path, mode: str, users: int, groups: int
) -> list[tuple[str, dict[str, float]]]:
    dc.stop()
    dc.restore(snapshot)
    dc.start()
    bind_dn, bind_pw = dc.admin_dn, dc.admin_pw
    if mode == "usn-plain":
        # An ordinary account: no replication right, no access to the Deleted Objects
        # container, so every delta lists every id in scope (a present list).
        bind_dn, bind_pw = "reader@example.test", "Passw0rd!Read1"
        conn = samba.connect(dc)
        attributes = samba.user_attributes("reader", "Sync", "Reader", None, "", None, True)
        attributes.append(("unicodePwd", [f'"{bind_pw}"'.encode("utf-16-le")]))
        conn.add_s(f"CN=Sync Reader,{samba.USERS_DN}", attributes)
        conn.unbind_s()
    source = AdSource(
        AdConfig(
            url=dc.uri,
            bind_dn=bind_dn,
            bind_password=bind_pw,
            base_dn=dc.base_dn,
            mode="dirsync" if mode == "dirsync" else "usn",
            page_size=1000,
            range_size=1500,
        )
    )
    fake = FakeKanidm()
    account = fake.provision_sync_account("bench")
    client = Client(
        fake.url,
        token=account.token,
        http_client=httpx.Client(transport=fake.transport),
        timeout=600,
    )
    rows: list[tuple[str, dict[str, float]]] = []

    batch, total = timed(lambda: source.fetch(RefreshState()))
    assert isinstance(batch, FullImage)
    stats = source.last_stats
    assert stats is not None
    changeset = ChangeSet(
        from_state=RefreshState(), to_state=ActiveState(batch.cookie), entries=batch.entries
    )
    _, apply_s = timed(lambda: client.apply(changeset))
    rows.append(
        (
            "full",
            {
                "read": stats.read_seconds,
                "map": stats.map_seconds,
                "fetch": total,
                "apply": apply_s,
                "entries": len(batch.entries),
                "deleted": 0,
                "present": 0,
            },
        )
    )
    cookie = batch.cookie
    for label, change in (
        ("incremental: 80 changes", lambda: modify(dc, users, groups)),
        ("incremental: 5 deletes", lambda: delete(dc, users)),
    ):
        change()
        delta, total = timed(lambda: source.fetch(ActiveState(cookie)))  # noqa: B023
        assert isinstance(delta, Delta), delta
        stats = source.last_stats
        assert stats is not None
        changeset = ChangeSet(
            from_state=ActiveState(cookie),
            to_state=ActiveState(delta.cookie),
            entries=delta.entries,
            retain=retain_of(delta),
        )
        _, apply_s = timed(lambda: client.apply(changeset))  # noqa: B023
        rows.append(
            (
                label,
                {
                    "read": stats.read_seconds,
                    "map": stats.map_seconds,
                    "fetch": total,
                    "apply": apply_s,
                    "entries": len(delta.entries),
                    "deleted": len(delta.deleted),
                    "present": len(delta.present or ()),
                },
            )
        )
        cookie = delta.cookie
    client.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=5_000)
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--members", type=int, default=20, help="members per group")
    args = parser.parse_args()
    reason = samba.missing_reason()
    if reason is not None:
        sys.exit(f"bench_ad: {reason}")

    setup: dict[str, float] = {}
    results: dict[str, list[tuple[str, dict[str, float]]]] = {}
    started = time.perf_counter()
    with samba.port_lock() as locked, tempfile.TemporaryDirectory(prefix="bench-ad-") as tmp:
        if not locked:
            sys.exit("bench_ad: another process holds the Samba AD DC lock")
        setup["waiting for the port lock"] = time.perf_counter() - started
        root = pathlib.Path(tmp)
        dc = samba.SambaDC(root / "dc")
        try:
            _, setup["provision"] = timed(dc.provision)
            ldif = root / "bulk.ldif"
            samba.write_bulk_ldif(
                ldif, args.users, groups=args.groups, members_per_group=args.members
            )
            _, setup["ldbadd (offline bulk load)"] = timed(lambda: dc.ldbadd(ldif))
            snapshot = root / "loaded.tar"
            _, setup["snapshot"] = timed(lambda: dc.snapshot(snapshot))
            _, setup["first start (TLS keys)"] = timed(dc.start)
            for mode in ("dirsync", "usn", "usn-plain"):
                results[mode] = run_mode(dc, snapshot, mode, args.users, args.groups)
        finally:
            dc.stop()

    print(
        f"AD source: {args.users} users, {args.groups} groups x {args.members} members "
        "(Samba AD DC on loopback, FakeKanidm in process)"
    )
    for label, seconds in setup.items():
        print(f"  setup  {label:<28} {seconds:7.2f} s")
    print(f"  {'mode':<10} {'run':<24} {'entries':>7} {'deleted':>7} {'present':>7} "
          f"{'read':>8} {'map':>8} {'fetch':>8} {'apply':>8}")  # fmt: skip
    for mode, rows in results.items():
        for label, row in rows:
            print(
                f"  {mode:<10} {label:<24} {row['entries']:7.0f} {row['deleted']:7.0f} "
                f"{row['present']:7.0f} {row['read']:7.3f}s {row['map']:7.3f}s "
                f"{row['fetch']:7.3f}s {row['apply']:7.3f}s"
            )
    print(f"  total wall time {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
