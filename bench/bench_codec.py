"""Benchmark the JSON codec: encode and decode a ChangeSet of 100,000 persons and 10,000 groups.

Prints the encode time, the floor (``json.dumps`` of equivalent dicts built before timing),
their ratio (target <= 2.0, issue 2 part 7), the decode time and peak memory.

Run: ``.venv/bin/python bench/bench_codec.py [--persons N] [--groups N] [--repeat N]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import time
import tracemalloc
import uuid
from collections.abc import Callable
from typing import Any

import attrs

from kanidm_sync import (
    ActiveState,
    ChangeSet,
    Group,
    Mail,
    Person,
    PosixAccount,
    PosixGroup,
    RetainIgnore,
    SshPublicKey,
)
from kanidm_sync._proto._codec import encode_changeset

SSH_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGB1FtnsJVH3aJk9bVx2hbQmU0cYqkqQvFqK9gVvX5dA user@host"
)
PASSWORD = "ipaNTHash: iEb36u6PsRetBr3YMLdYbA"


def build_changeset(persons: int, groups: int) -> ChangeSet:
    """Build the benchmark ChangeSet (deterministic ids and names)."""
    entries: list[Person | Group] = []
    for i in range(persons):
        entries.append(
            Person(
                id=uuid.UUID(int=i + 1),
                external_id=f"uid=user{i},cn=users,cn=accounts,dc=example,dc=org",
                name=f"user{i}",
                displayname=f"User Number {i}",
                mail=(Mail(f"user{i}@example.org", primary=True),),
                ssh_publickey=(SshPublicKey("laptop", SSH_KEY),),
                password_import=PASSWORD,
                posix=PosixAccount(gidnumber=100000 + i, loginshell="/bin/bash"),
            )
        )
    for g in range(groups):
        entries.append(
            Group(
                id=uuid.UUID(int=10_000_000 + g),
                external_id=f"cn=group{g},cn=groups,cn=accounts,dc=example,dc=org",
                name=f"group{g}",
                description=f"Group number {g}",
                member=tuple(
                    f"uid=user{(g * 10 + k) % max(persons, 1)},cn=users,cn=accounts,"
                    "dc=example,dc=org"
                    for k in range(10)
                ),
                posix=PosixGroup(gidnumber=2_000_000 + g),
            )
        )
    return ChangeSet(
        from_state=ActiveState(b"cookie-1"),
        to_state=ActiveState(b"cookie-2"),
        entries=entries,
        retain=RetainIgnore(),
    )


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(value[k]) for k in sorted(value) if value[k] is not None}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def naive_encode(cs: ChangeSet) -> bytes:
    """The reference "naive" encoder: attrs.asdict per entry, then clean, rename and sort."""
    entries = []
    for entry in cs.entries:
        raw = attrs.asdict(entry)
        out: dict[str, Any] = {"schemas": list(entry.schemas), "id": str(entry.id)}
        if entry.external_id is not None:
            out["externalId"] = entry.external_id
        fields: dict[str, Any] = {}
        for key, value in raw.items():
            if key in ("id", "external_id", "schema_order", "extra"):
                continue
            if key == "posix":
                fields.update(value or {})
            elif key == "oauth2":
                fields.update({f"oauth2_account_{k}": v for k, v in (value or {}).items()})
            elif key == "member":
                fields[key] = [{"external_id": m} for m in value]
            else:
                fields[key] = value
        fields.update(entry.extra)
        fields = _clean(fields)
        out.update((k, v) for k, v in fields.items() if v != [])
        entries.append(out)
    request = {
        "from_state": {"Active": {"cookie": "Y29va2llLTE"}},
        "to_state": {"Active": {"cookie": "Y29va2llLTI"}},
        "entries": entries,
        "retain": "Ignore",
    }
    return json.dumps(request, separators=(",", ":"), ensure_ascii=False).encode()


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    """The best wall time of ``repeat`` runs (GC disabled while timing, as timeit does)."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - start)
        finally:
            gc.enable()
    return best


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    print(f"Python {platform.python_version()} on {platform.machine()}, {sys.platform}")
    t0 = time.perf_counter()
    cs = build_changeset(args.persons, args.groups)
    built = time.perf_counter() - t0
    print(f"built {args.persons} persons + {args.groups} groups in {built:.2f} s")

    # The floor: the same JSON, already as plain dicts in final key order, built before timing.
    prebuilt = json.loads(cs.to_json())

    def floor_run() -> bytes:
        return json.dumps(prebuilt, separators=(",", ":"), ensure_ascii=False).encode()

    floor = best_of(args.repeat, floor_run)
    encode = best_of(args.repeat, cs.to_json)
    to_dicts = best_of(args.repeat, lambda: encode_changeset(cs))
    naive = best_of(args.repeat, lambda: naive_encode(cs))
    if naive_encode(cs) != cs.to_json():
        raise SystemExit("the naive reference encoder does not produce the same bytes")
    data = cs.to_json()
    decode = best_of(args.repeat, lambda: ChangeSet.from_json(data))

    if ChangeSet.from_json(data) != cs:
        raise SystemExit("round trip failed: decode(encode(x)) != x")

    gc.collect()
    tracemalloc.start()
    cs.to_json()
    _, encode_peak = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    ChangeSet.from_json(data)
    _, decode_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    mib = 1024 * 1024
    print(f"payload            {len(data) / mib:8.1f} MiB")
    print(f"floor (json.dumps) {floor:8.3f} s")
    ratio = encode / floor
    print(f"encode (to_json)   {encode:8.3f} s   ratio to floor {ratio:.2f} (target <= 2.0)")
    print(f"  of which dicts   {to_dicts:8.3f} s")
    print(f"naive asdict encode{naive:8.3f} s   ratio to floor {naive / floor:.2f} (reference)")
    print(f"decode (from_json) {decode:8.3f} s")
    print(f"peak memory        encode {encode_peak / mib:.0f} MiB (traced allocations)")
    print(f"                   decode {decode_peak / mib:.0f} MiB (traced allocations)")


if __name__ == "__main__":
    main()
