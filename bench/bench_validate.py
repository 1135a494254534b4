"""Benchmark ChangeSet.validate() on 100,000 persons and 10,000 groups (issue 2, part 7).

Builds a valid ChangeSet shaped like a FreeIPA import (every person has a mail, a posix
facet with a gidnumber, an NT-hash password import; one in ten an SSH key; every group
has ten members by external id, half are posix groups), then times validation and
measures its peak memory with tracemalloc. Target: <= 2 s on the 2-core reference machine.

Run: ``python bench/bench_validate.py [--persons N] [--groups N] [--repeat N]``.
"""

from __future__ import annotations

import argparse
import gc
import resource
import statistics
import time
import tracemalloc
import uuid

from kanidm_sync import (
    REFRESH,
    ActiveState,
    ChangeSet,
    Group,
    Mail,
    Person,
    PosixAccount,
    PosixGroup,
    SshPublicKey,
)

SSH_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAeGW1P6Pc2rPq0XqbRaDKBcXZUPRklo0L1EyR30CwoP user@host"
)
NT_HASH = "ipaNTHash: iEb36u6PsRetBr3YMLdYbA"


def build(persons: int, groups: int) -> ChangeSet:
    """A valid ChangeSet of ``persons`` persons and ``groups`` groups."""
    entries: list[Person | Group] = []
    for i in range(persons):
        ext = f"uid=user{i},cn=users,cn=accounts,dc=example,dc=org"
        entries.append(
            Person(
                id=uuid.UUID(int=(1 << 120) + i),
                external_id=ext,
                name=f"user{i}",
                displayname=f"User Number {i}",
                mail=(Mail(f"user{i}@example.org", primary=True),),
                ssh_publickey=(SshPublicKey("laptop", SSH_KEY),) if i % 10 == 0 else (),
                password_import=NT_HASH,
                posix=PosixAccount(gidnumber=100_000 + i, loginshell="/bin/bash"),
            )
        )
    for g in range(groups):
        members = tuple(
            f"uid=user{(g * 10 + k) % max(persons, 1)},cn=users,cn=accounts,dc=example,dc=org"
            for k in range(10)
        )
        entries.append(
            Group(
                id=uuid.UUID(int=(2 << 120) + g),
                external_id=f"cn=group{g},cn=groups,cn=accounts,dc=example,dc=org",
                name=f"group{g}",
                description=f"Group number {g}",
                member=members if persons else (),
                posix=PosixGroup(gidnumber=10_000 + g) if g % 2 == 0 else None,
            )
        )
    return ChangeSet(from_state=REFRESH, to_state=ActiveState(b"bench"), entries=entries)


def main() -> None:
    """Build the ChangeSet, validate it ``--repeat`` times, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    start = time.perf_counter()
    cs = build(args.persons, args.groups)
    built = time.perf_counter() - start
    print(f"built {len(cs.entries):,} entries in {built:.2f} s")

    times, cpu_times = [], []
    report = cs.validate()  # warm-up (regex compilation, imports)
    for _ in range(args.repeat):
        gc.collect()
        start, cpu_start = time.perf_counter(), time.process_time()
        report = cs.validate()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    if report.problems:
        raise SystemExit(f"the benchmark data should be valid, got:\n{report}")

    gc.collect()
    tracemalloc.start()
    cs.validate()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    best, median = min(times), statistics.median(times)
    print(f"validate: best {best:.3f} s, median {median:.3f} s over {args.repeat} runs")
    cpu_best, cpu_median = min(cpu_times), statistics.median(cpu_times)
    print(f"          CPU time: best {cpu_best:.3f} s, median {cpu_median:.3f} s")
    print(f"          {best / len(cs.entries) * 1e6:.1f} us per entry (best)")
    print(f"peak memory allocated during validate: {peak / 2**20:.1f} MiB (tracemalloc)")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"process peak RSS (ChangeSet included): {rss:.0f} MiB")
    print(f"target <= 2 s (median wall time): {'met' if median <= 2.0 else 'NOT met'}")


if __name__ == "__main__":
    main()
