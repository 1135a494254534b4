"""Benchmark the JSON codec: encode and decode a ChangeSet against json.dumps / json.loads.

For each size (``--sizes``, default 10,000, 100,000 and 200,000 entries: 10 persons for each
group; each size in a fresh process), times ``ChangeSet.from_json`` against ``json.loads`` of
the same bytes and ``ChangeSet.to_json`` against ``json.dumps`` of the same JSON as plain dicts
(built before timing), with the garbage collector on and paused (best and median of
``--repeat`` runs), and the peak of Python allocations (tracemalloc) of each call. Targets
(issue 15): decode <= 3x ``json.loads``, encode <= 1.3x ``json.dumps`` (GC on).

Run: ``.venv/bin/python bench/bench_codec.py [--sizes 10000,100000,200000 | --quick]
[--repeat N] [--naive]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import pathlib
import sys
import time
import tracemalloc
import uuid
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

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _measure import (
    MIB,
    add_size_arguments,
    emit_result,
    environment,
    print_table,
    run_sizes,
    sizes_of,
    time_both,
    time_call,
    verdict,
)

DECODE_TARGET = 3.0  # issue 15: decode <= 3x json.loads of the same bytes
ENCODE_TARGET = 1.3  # issue 15: encode <= 1.3x json.dumps of the same JSON as dicts

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


def measure(size: int, repeat: int, naive: bool) -> dict[str, Any]:
    """Measure encode and decode of a ``size``-entry ChangeSet (in this fresh process)."""
    groups = size // 11
    persons = size - groups
    t0 = time.perf_counter()
    cs = build_changeset(persons, groups)
    print(f"built {persons:,} persons + {groups:,} groups in {time.perf_counter() - t0:.2f} s")
    data = cs.to_json()
    if ChangeSet.from_json(data) != cs:
        raise SystemExit("round trip failed: decode(encode(x)) != x")
    # The floors: json.loads of the same bytes; json.dumps of the same JSON as plain dicts.
    prebuilt = json.loads(data)

    def dumps_floor() -> bytes:
        return json.dumps(prebuilt, separators=(",", ":"), ensure_ascii=False).encode()

    if dumps_floor() != data:
        raise SystemExit("the json.dumps floor does not produce the same bytes")
    result: dict[str, Any] = {"size": size, "body": len(data)}
    for name, ours, floor in (
        ("decode", lambda: ChangeSet.from_json(data), lambda: json.loads(data)),
        ("encode", cs.to_json, dumps_floor),
    ):
        ours_on, ours_off = time_both(ours, repeat)
        floor_on, floor_off = time_both(floor, repeat)
        result[name] = {
            "ours_on": ours_on.as_dict(),
            "ours_off": ours_off.as_dict(),
            "floor_on": floor_on.as_dict(),
            "floor_off": floor_off.as_dict(),
        }
        print(
            f"{name}: ours {ours_on.best:.3f}/{ours_on.median:.3f} s (GC on, best/median), "
            f"{ours_off.best:.3f}/{ours_off.median:.3f} s (GC paused); floor "
            f"{floor_on.best:.3f}/{floor_on.median:.3f} s (GC on), "
            f"{floor_off.best:.3f}/{floor_off.median:.3f} s (GC paused)"
        )
    if naive:
        if naive_encode(cs) != data:
            raise SystemExit("the naive reference encoder does not produce the same bytes")
        t = time_call(lambda: naive_encode(cs), repeat)
        print(f"naive asdict encode (reference): {t.best:.3f} s (GC on, best)")
    # Memory: the Python allocations of each call (tracemalloc), above what was held before.
    for name, fn in (("decode", lambda: ChangeSet.from_json(data)), ("encode", cs.to_json)):
        gc.collect()
        tracemalloc.start()
        fn()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        result[name]["traced_peak"] = peak
    return result


def main() -> None:
    """Run the benchmark for each size (a fresh process each) and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_size_arguments(parser, repeat=3)
    parser.add_argument("--naive", action="store_true", help="also time the naive reference")
    args = parser.parse_args()
    if args.one is not None:
        emit_result(measure(args.one, args.repeat, args.naive))
        return
    print(environment())
    extra = ["--repeat", str(args.repeat)] + (["--naive"] if args.naive else [])
    results = run_sizes(__file__, sizes_of(args), extra)
    rows = []
    for r in results:
        for name, limit in (("decode", DECODE_TARGET), ("encode", ENCODE_TARGET)):
            f = r[name]
            on = f["ours_on"]["best"] / f["floor_on"]["best"]
            off = f["ours_off"]["best"] / f["floor_off"]["best"]
            rows.append(
                [
                    f"{r['size']:,}",
                    name,
                    f"{f['ours_on']['best']:.3f} / {f['ours_on']['median']:.3f}",
                    f"{f['floor_on']['best']:.3f} / {f['floor_on']['median']:.3f}",
                    f"{on:.2f}",
                    f"{off:.2f}",
                    f"<= {limit} {verdict(on, limit)}",
                    f"{f['traced_peak'] / MIB:.0f} ({f['traced_peak'] / r['body']:.1f}x)",
                    f"{r['body'] / MIB:.1f}",
                ]
            )
    print_table(
        "Codec (bench/bench_codec.py)",
        [
            "entries",
            "step",
            "ours s, best / median (GC on)",
            "floor s, best / median (GC on)",
            "ratio (GC on)",
            "ratio (GC paused)",
            "target (GC on)",
            "traced peak MiB (x body)",
            "body MiB",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
