"""LDAP source against a throwaway slapd: 10,000 users and 1,000 groups.

Times a full and an incremental sync, split into LDAP read (the RFC 4533 search and the
buffering of every message), mapping (LDAP entries -> Kanidm entries) and apply (the
ChangeSet posted to the in-memory Kanidm, when ``kanidm_sync.testing`` is importable).

    .venv/bin/python bench/bench_ldap.py [--users 10000] [--groups 1000]

Needs slapd (scripts/install-system-deps) and python-ldap (the ``ldap`` extra).
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import time
from collections.abc import Callable
from typing import TypeVar

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "ldap"))

import ldap
from slapd import ADMIN_DN, ADMIN_PW, BASE_DN, LAB, PEOPLE_DN, SYNC_DN, SYNC_PW, Slapd

from kanidm_sync import (
    ActiveState,
    ChangeSet,
    DeleteOnly,
    RetainIgnore,
    RetainOnly,
    RetentionMode,
    SyncState,
)
from kanidm_sync.adapters import Delta, FullImage
from kanidm_sync.adapters._ldap_client import LdapConnection, class_ancestors
from kanidm_sync.adapters._ldap_map import map_ldap_entries
from kanidm_sync.adapters.ldap import LdapConfig, LdapSource

T = TypeVar("T")
KEY = (LAB / "frank.pub").read_text(encoding="utf-8").strip()
PASSWORD = "{SSHA}ONxQnCf+B6kBolzpXaN/ABPpJ381CMSs"
MEMBERS_PER_GROUP = 20


def timed(label: str, results: dict[str, float], call: Callable[[], T]) -> T:
    start = time.perf_counter()
    value = call()
    results[label] = time.perf_counter() - start
    return value


def write_ldif(path: pathlib.Path, users: int, groups: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        for i in range(users):
            out.write(
                f"dn: uid=user{i:05d},{PEOPLE_DN}\n"
                "objectClass: person\nobjectClass: organizationalPerson\n"
                "objectClass: inetOrgPerson\nobjectClass: posixAccount\n"
                "objectClass: ldapPublicKey\n"
                f"uid: user{i:05d}\ncn: User {i}\nsn: {i}\nmail: user{i:05d}@example.com\n"
                f"uidNumber: {100000 + i}\ngidNumber: {100000 + i}\n"
                f"homeDirectory: /home/user{i:05d}\nloginShell: /bin/bash\n"
                f"userPassword: {PASSWORD}\nsshPublicKey: {KEY}\n\n"
            )
        for g in range(groups):
            out.write(
                f"dn: cn=group{g:04d},ou=groups,{BASE_DN}\nobjectClass: groupOfNames\n"
                f"cn: group{g:04d}\ndescription: Group {g}\n"
            )
            for m in range(MEMBERS_PER_GROUP):
                out.write(f"member: uid=user{(g * 7 + m * 13) % users:05d},{PEOPLE_DN}\n")
            out.write("\n")


def mutate(server: Slapd, users: int) -> None:
    conn = ldap.initialize(server.uri)
    conn.simple_bind_s(ADMIN_DN, ADMIN_PW)
    for i in range(100):
        conn.modify_s(
            f"uid=user{i * 37 % users:05d},{PEOPLE_DN}",
            [(ldap.MOD_REPLACE, "loginShell", [b"/bin/zsh"])],
        )
    for i in range(10):
        conn.delete_s(f"uid=user{users - 1 - i:05d},{PEOPLE_DN}")
    for i in range(10):
        conn.add_s(
            f"uid=new{i},{PEOPLE_DN}",
            [
                ("objectClass", [b"person", b"inetOrgPerson", b"posixAccount"]),
                ("uid", [f"new{i}".encode()]),
                ("cn", [f"New {i}".encode()]),
                ("sn", [b"New"]),
                ("uidNumber", [str(300000 + i).encode()]),
                ("gidNumber", [str(300000 + i).encode()]),
                ("homeDirectory", [f"/home/new{i}".encode()]),
            ],
        )
    conn.modify_s(
        f"cn=group0000,ou=groups,{BASE_DN}",
        [(ldap.MOD_ADD, "member", [f"uid=new0,{PEOPLE_DN}".encode()])],
    )
    conn.unbind_s()


def measure(
    config: LdapConfig, cookie: bytes | None, results: dict[str, float]
) -> tuple[bytes | None, object]:
    """LDAP read and mapping, timed apart (what LdapSource.fetch does in one call)."""
    with LdapConnection(config.ldap_uri, bind_dn=SYNC_DN, bind_pw=SYNC_PW) as conn:
        ancestors = class_ancestors(conn)
        outcome = timed(
            "ldap read",
            results,
            lambda: conn.sync_refresh(BASE_DN, config.search_filter, cookie).outcome(),
        )
    mapped = timed(
        "mapping",
        results,
        lambda: map_ldap_entries(outcome.entries, config, class_ancestors=ancestors),
    )
    results["entries"] = len(outcome.entries)
    return outcome.cookie, mapped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=1_000)
    args = parser.parse_args()

    try:
        import httpx

        from kanidm_sync import Client
        from kanidm_sync.testing import FakeKanidm
    except ImportError:  # the double is optional for this benchmark
        FakeKanidm = None  # type: ignore[assignment,misc]

    with tempfile.TemporaryDirectory(prefix="bench-ldap-") as tmp:
        data = pathlib.Path(tmp) / "bulk.ldif"
        write_ldif(data, args.users, args.groups)
        server = Slapd(pathlib.Path(tmp) / "slapd", seed=(LAB / "seed.ldif", data))
        load: dict[str, float] = {}
        timed("slapadd + start", load, server.start)
        try:
            config = LdapConfig(
                sync_token="unused",
                ldap_uri=server.uri,
                ldap_sync_dn=SYNC_DN,
                ldap_sync_pw=SYNC_PW,
                ldap_sync_base_dn=BASE_DN,
                ldap_filter="(|(objectClass=person)(objectClass=groupOfNames))",
            )
            full: dict[str, float] = {}
            cookie, _ = measure(config, None, full)
            source = LdapSource(config)
            state: SyncState
            batch = timed("fetch() end to end", full, lambda: source.fetch(ActiveState(b"")))
            assert isinstance(batch, FullImage)

            client = fake = None
            if FakeKanidm is not None:
                fake = FakeKanidm()
                account = fake.provision_sync_account("bench")
                client = Client(
                    fake.url,
                    token=account.token,
                    http_client=httpx.Client(transport=fake.transport),
                    timeout=600,
                )
                state = client.get_state()
                changeset = ChangeSet(
                    from_state=state, to_state=ActiveState(batch.cookie), entries=batch.entries
                )
                timed("apply (FakeKanidm)", full, lambda: client.apply(changeset))
                cookie = batch.cookie

            timed("mutate (ldap writes)", load, lambda: mutate(server, args.users))
            incr: dict[str, float] = {}
            measure(config, cookie, incr)
            assert cookie is not None
            delta = timed("fetch() end to end", incr, lambda: source.fetch(ActiveState(cookie)))
            assert isinstance(delta, Delta)
            incr["deleted"] = len(delta.deleted)
            incr["present"] = len(delta.present or ())
            if client is not None:
                state = client.get_state()
                retain: RetentionMode = RetainIgnore()
                if delta.present is not None:
                    # More writes than the session log (100): slapd sent a present phase.
                    retain = RetainOnly([*(e.id for e in delta.entries), *delta.present])
                elif delta.deleted:
                    retain = DeleteOnly(delta.deleted)
                changeset = ChangeSet(
                    from_state=state,
                    to_state=ActiveState(delta.cookie),
                    entries=delta.entries,
                    retain=retain,
                )
                timed("apply (FakeKanidm)", incr, lambda: client.apply(changeset))
                client.close()
        finally:
            server.stop()

    print(f"LDAP source: {args.users} users, {args.groups} groups x {MEMBERS_PER_GROUP} members")
    for label, seconds in load.items():
        print(f"  setup   {label:<24} {seconds:8.3f} s")
    for name, results in (("full", full), ("incremental", incr)):
        for label, value in results.items():
            unit = "" if label in ("entries", "deleted", "present") else " s"
            shown = f"{value:8.0f}" if not unit else f"{value:8.3f}"
            print(f"  {name:<11} {label:<22} {shown}{unit}")


if __name__ == "__main__":
    main()
