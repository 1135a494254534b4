"""Benchmark the in-memory Kanidm: the largest refresh that fits under kanidmd's 32 MiB limit.

Builds, as raw JSON bytes, a Refresh ChangeSet of 60,000 persons and 6,000 groups with
memberships (every person in two groups), asserts that the body is below 32 MiB, then:

1. parses and applies it to a fresh ``Store`` directly;
2. sends it through ``FakeKanidm``'s ``httpx.MockTransport`` with an ``httpx.Client``;
3. sends a second, incremental apply that fails late (phase 4) and checks the store is
   unchanged (the cost of all-or-nothing on a full store).

Each scenario runs in its own process; it prints wall time (untraced) and the process's peak
resident memory (targets: <= 10 s, <= 1 GiB; issue 3 part 9).

Run: ``.venv/bin/python bench/bench_double.py [--persons N] [--groups N]``.
"""

from __future__ import annotations

import argparse
import base64
import json
import platform
import resource
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from kanidm_sync.testing._store import Rejection, Store, parse_sync_request

LIMIT = 32 * 1024 * 1024
URN = "urn:ietf:params:scim:schemas:kanidm:sync:1:"
NT = "ipaNTHash: iEb36u6PsRetBr3YMLdYbA"
T = TypeVar("T")


def person_ext(i: int) -> str:
    return f"uid=user{i},ou=people"


def build(persons: int, groups: int) -> bytes:
    """The refresh body, compact JSON as the Rust client sends it."""
    entries: list[dict[str, Any]] = []
    for i in range(persons):
        entries.append(
            {
                "schemas": [URN + "person", URN + "account", URN + "posixaccount"],
                "id": str(uuid.UUID(int=(1 << 64) + i)),
                "externalId": person_ext(i),
                "displayname": f"User {i}",
                "gidnumber": 100000 + i,
                "mail": [{"primary": True, "value": f"user{i}@example.org"}],
                "name": f"user{i}",
                "password_import": NT,
            }
        )
    per_group = (2 * persons) // max(groups, 1)
    for g in range(groups):
        first = (g * per_group) % max(persons, 1)
        members = [{"external_id": person_ext((first + k) % persons)} for k in range(per_group)]
        entry: dict[str, Any] = {
            "schemas": [URN + "group", URN + "posixgroup"],
            "id": str(uuid.UUID(int=(2 << 64) + g)),
            "externalId": f"cn=group{g},ou=groups",
            "gidnumber": 200000 + g,
            "name": f"group{g}",
        }
        if members:
            entry["member"] = members
        entries.append(entry)
    cookie = base64.urlsafe_b64encode(b"bench-1").decode().rstrip("=")
    request = {
        "from_state": "Refresh",
        "to_state": {"Active": {"cookie": cookie}},
        "entries": entries,
        "retain": "Ignore",
    }
    return json.dumps(request, separators=(",", ":"), ensure_ascii=False).encode()


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024 if sys.platform != "darwin" else rss / 2**20


def timed(label: str, fn: Callable[[], T]) -> tuple[T, float]:
    """Run ``fn`` once; print and return its result and wall time."""
    start = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - start
    print(f"  {label:<44} {elapsed:7.2f} s")
    return result, elapsed


def direct(raw: bytes) -> float:
    """Parse and apply to a fresh Store; then a late-failing apply must change nothing."""
    store = Store()
    account = store.create_sync_account("bench")

    def run() -> None:
        store.apply(account, parse_sync_request(raw))

    _, elapsed = timed("parse + apply to a fresh Store", run)
    print(f"  live entries: {len(store):,}")
    cookie = store.get_cookie(account) or b""
    native = store.add_group("native-target")
    failing = json.dumps(
        {
            "from_state": {"Active": {"cookie": base64.urlsafe_b64encode(cookie).decode()}},
            "to_state": {"Active": {"cookie": "Ag"}},
            "entries": [],
            "retain": {"Delete": [str(native)]},
        }
    ).encode()
    before = store.fingerprint()

    def fail() -> str:
        try:
            store.apply(account, parse_sync_request(failing))
        except Rejection as err:
            return err.body.decode()
        raise SystemExit("the failing apply unexpectedly succeeded")

    body, _ = timed("late-failing apply on the full store", fail)
    assert before == store.fingerprint(), "a failed apply changed the store"
    print(f"  rolled back with {body}; fingerprint unchanged")
    timed("second refresh over the full store", run)
    return elapsed


def through_transport(raw: bytes) -> float:
    """POST the body through FakeKanidm's MockTransport with an httpx.Client."""
    import httpx

    from kanidm_sync.testing import FakeKanidm

    fake = FakeKanidm()
    sync = fake.provision_sync_account("bench")
    headers = {"authorization": f"Bearer {sync.token}", "content-type": "application/json"}
    with httpx.Client(transport=fake.transport, base_url=fake.url) as client:
        response, elapsed = timed(
            "POST /scim/v1/Sync via MockTransport",
            lambda: client.post("/scim/v1/Sync", content=raw, headers=headers),
        )
    if response.status_code != 200:
        raise SystemExit(f"apply through the transport failed: {response.status_code}")
    print(f"  live entries: {len(fake.store):,}")
    return elapsed


SCENARIOS: dict[str, Callable[[bytes], float]] = {
    "direct": direct,
    "transport": through_transport,
}


def child(scenario: str, persons: int, groups: int) -> None:
    raw = build(persons, groups)
    baseline = peak_rss_mib()
    elapsed = SCENARIOS[scenario](raw)
    peak = peak_rss_mib()
    print(f"  peak RSS {peak:.0f} MiB (of which body + interpreter before the run {baseline:.0f})")
    print(f"RESULT {scenario} {elapsed:.3f} {peak:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--persons", type=int, default=60_000)
    parser.add_argument("--groups", type=int, default=6_000)
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scenario:
        child(args.scenario, args.persons, args.groups)
        return

    print(f"python {sys.version.split()[0]} on {platform.machine()} ({platform.system()})")
    start = time.perf_counter()
    raw = build(args.persons, args.groups)
    print(f"build body: {time.perf_counter() - start:.2f} s")
    size = len(raw)
    print(f"body: {size:,} bytes = {size / 2**20:.2f} MiB "
          f"({args.persons:,} persons, {args.groups:,} groups)")  # fmt: skip
    assert size < LIMIT, f"the body must stay under kanidmd's 32 MiB limit, got {size:,}"
    del raw

    results: dict[str, tuple[float, float]] = {}
    for scenario in SCENARIOS:
        # One process per scenario, so each peak RSS is its own.
        print(f"[{scenario}]")
        proc = subprocess.run(
            [sys.executable, __file__, "--scenario", scenario,
             "--persons", str(args.persons), "--groups", str(args.groups)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        for line in proc.stdout.splitlines():
            if line.startswith("RESULT "):
                _, name, secs, mib = line.split()
                results[name] = (float(secs), float(mib))
            else:
                print(line)
    worst_t = max(t for t, _ in results.values())
    worst_m = max(m for _, m in results.values())
    verdict = "OK" if worst_t <= 10 and worst_m <= 1024 else "OVER TARGET"
    print(f"target <= 10 s and <= 1 GiB: {verdict} (worst {worst_t:.2f} s, {worst_m:.0f} MiB)")


if __name__ == "__main__":
    main()
