"""Benchmark the in-memory Kanidm (``kanidm_sync.testing``): an image sent as the runner sends it.

For each size (``--sizes``, default 10,000, 100,000 and 200,000 entries, each in a fresh
process; ``--quick``: 10,000 only), a Refresh of that many entries (10 persons per posix
group: persons with account, person and posixaccount, a display name, a gidnumber, a primary
mail and an NT-hash ``password_import``; groups of about 20 members, every person in two
groups, members by external id) is built with the library's own types and split into the
requests the runner would send: ``split_changes`` under the runner's default 30 MiB
(``max_request_bytes``), with the refresh keep-alive list in the first request and chunk
cookies chaining the others. kanidmd (and the double) refuse a body over 32 MiB, so from
about 60,000 entries of this shape the image *cannot* be one request; measuring the double
on one oversized body would time a request no server accepts. The bodies are built and
encoded in a separate process, so the measured process holds only the bytes.

Measured in the child, against a fresh ``Store`` each time:

1. **parse + apply** of every request in order (``parse_sync_request`` then ``Store.apply``,
   as the HTTP handler does), with the garbage collector on and paused (best and median of
   ``--repeat`` runs), in wall time and in this process's CPU time (the steadier figure on
   a machine shared with other jobs), and the parse part alone (the double pauses the
   collector itself while it parses and applies, so the two figures differ little);
2. the **floor** in the same process: ``json.loads`` of the same bytes (the double must at
   least parse them), GC on and paused; the ratio is parse + apply over the floor, in CPU
   time;
3. a **late-failing** incremental apply on the full store (a 403 in phase 4, after every
   entry was examined) and a check that the store's fingerprint did not change: the cost
   of all-or-nothing on a full store;
4. the process's **peak RSS** above the baseline taken after the bodies were read and
   before the first apply (the first, GC-on apply is the peak of this process);
5. in a second fresh process per size, the same requests **POSTed through**
   ``FakeKanidm``'s ``httpx.MockTransport`` with an ``httpx.Client`` (auth, routing, the
   body limit and the JSON response included), GC on, with its own peak RSS.

Run: ``.venv/bin/python bench/bench_double.py [--sizes 10000,100000,200000 | --quick]
[--repeat N] [--no-transport]`` (``--repeat`` defaults to 1: a 200k apply takes tens of
seconds on a 2-core machine).
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import pathlib
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any

from kanidm_sync import (
    ActiveState,
    Group,
    Mail,
    Person,
    PosixAccount,
    PosixGroup,
    RefreshState,
    RetainIgnore,
)
from kanidm_sync._chunk import DEFAULT_MAX_REQUEST_BYTES, split_changes
from kanidm_sync.testing._store import Rejection, Store, parse_sync_request

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _measure import (
    MIB,
    Timing,
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

LIMIT = 32 * 1024 * 1024  # kanidmd's DEFAULT_SCIM_SYNC_BYTES, enforced by the double too
NT = "ipaNTHash: iEb36u6PsRetBr3YMLdYbA"
BODY = "request-{:03d}.json"


def person_ext(i: int) -> str:
    """The external id of person ``i``."""
    return f"uid=user{i},ou=people"


def build_bodies(size: int) -> list[bytes]:
    """The image of ``size`` entries as the runner's requests (encoded), in order."""
    groups = size // 11
    persons = size - groups
    entries: list[Person | Group] = [
        Person(
            id=uuid.UUID(int=(1 << 64) + i),
            external_id=person_ext(i),
            name=f"user{i}",
            displayname=f"User {i}",
            mail=(Mail(f"user{i}@example.org", primary=True),),
            password_import=NT,
            posix=PosixAccount(gidnumber=100000 + i),
        )
        for i in range(persons)
    ]
    per_group = (2 * persons) // max(groups, 1)
    for g in range(groups):
        first = (g * per_group) % max(persons, 1)
        entries.append(
            Group(
                id=uuid.UUID(int=(2 << 64) + g),
                external_id=f"cn=group{g},ou=groups",
                name=f"group{g}",
                member=tuple(person_ext((first + k) % persons) for k in range(per_group)),
                posix=PosixGroup(gidnumber=2_000_000 + g),
            )
        )
    split = split_changes(
        from_state=RefreshState(),
        to_state=ActiveState(b"bench-1"),
        entries=entries,
        retain=RetainIgnore(),
        max_bytes=DEFAULT_MAX_REQUEST_BYTES,
        keep_alive_ids=[e.id for e in entries],
    )
    bodies = [request.to_json() for request in split.requests]
    if list(split.sizes) != [len(b) for b in bodies]:
        raise SystemExit("split_changes measured sizes that differ from the encoded bodies")
    if any(len(b) > LIMIT for b in bodies):
        raise SystemExit("a request is over kanidmd's 32 MiB limit")
    return bodies


def write_bodies(size: int, out: pathlib.Path) -> None:
    """Build the requests and write them to ``out`` (run in a process of its own)."""
    t0 = time.perf_counter()
    bodies = build_bodies(size)
    out.mkdir(parents=True, exist_ok=True)
    for n, body in enumerate(bodies):
        (out / BODY.format(n)).write_bytes(body)
    print(
        f"built and split {size:,} entries into {len(bodies)} request(s) in "
        f"{time.perf_counter() - t0:.1f} s (separate process)",
        flush=True,
    )


def load_bodies(size: int, cache: pathlib.Path) -> list[bytes]:
    """The requests of ``size`` entries, built by a separate process on first use."""
    where = cache / str(size)
    if not where.is_dir():
        subprocess.run(
            [sys.executable, __file__, "--build", str(size), "--bodies", str(cache)], check=True
        )
    return [p.read_bytes() for p in sorted(where.glob("request-*.json"))]


def apply_image(
    bodies: list[bytes], *, gc_paused: bool
) -> tuple[Store, uuid.UUID, dict[str, float]]:
    """Parse and apply every request to a fresh Store; wall and CPU time, and the parse part."""
    store = Store()
    account = store.create_sync_account("bench")
    gc.collect()
    if gc_paused:
        gc.disable()
    parse = 0.0
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        for body in bodies:
            p0 = time.perf_counter()
            request = parse_sync_request(body)
            parse += time.perf_counter() - p0
            store.apply(account, request)
        cpu = time.process_time() - c0
        total = time.perf_counter() - t0
    finally:
        gc.enable()
    return store, account, {"total": total, "cpu": cpu, "parse": parse}


def late_failure(store: Store, account: uuid.UUID) -> dict[str, Any]:
    """An incremental apply that fails in phase 4 (403) on the full store: nothing changes."""
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
    t0 = time.perf_counter()
    try:
        store.apply(account, parse_sync_request(failing))
    except Rejection as err:
        elapsed = time.perf_counter() - t0
        answer = err.body.decode()
    else:
        raise SystemExit("the failing apply unexpectedly succeeded")
    if store.fingerprint() != before:
        raise SystemExit("a failed apply changed the store")
    return {"seconds": elapsed, "answer": answer}


def summary(samples: list[float]) -> dict[str, float]:
    """Best and median of the samples, as :class:`Timing` reports them."""
    ordered = sorted(samples)
    mid = len(ordered) // 2
    median = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
    return Timing(ordered[0], median, len(ordered)).as_dict()


def measure_store(size: int, repeat: int, cache: pathlib.Path) -> dict[str, Any]:
    """Parse + apply GC on/paused, the json.loads floor, the late failure and peak RSS."""
    bodies = load_bodies(size, cache)
    out: dict[str, Any] = {
        "size": size,
        "bodies": [len(b) for b in bodies],
    }
    gc.collect()
    baseline = rss_now_mib()
    runs: dict[str, list[dict[str, float]]] = {"on": [], "off": []}
    store, account, first = apply_image(bodies, gc_paused=False)
    out["rss_baseline"] = baseline
    out["rss_peak_above"] = rss_peak_mib() - baseline
    out["live"] = len(store)
    runs["on"].append(first)
    out["late_failure"] = late_failure(store, account)
    print(
        f"{len(bodies)} request(s), {sum(out['bodies']) / MIB:.1f} MiB; first apply (GC on) "
        f"{first['total']:.2f} s (parse {first['parse']:.2f}); {out['live']:,} live entries; "
        f"peak RSS {out['rss_peak_above']:.0f} MiB above a {baseline:.0f} MiB baseline"
    )
    print(
        f"late-failing apply on the full store: {out['late_failure']['seconds']:.3f} s, "
        f"{out['late_failure']['answer']}; fingerprint unchanged"
    )
    del store
    for label, paused, count in (("on", False, repeat - 1), ("off", True, repeat)):
        for _ in range(count):
            gc.collect()
            store, _, run = apply_image(bodies, gc_paused=paused)
            runs[label].append(run)
            del store
    for label in ("on", "off"):
        out[f"apply_{label}"] = summary([r["total"] for r in runs[label]])
        out[f"apply_cpu_{label}"] = summary([r["cpu"] for r in runs[label]])
        out[f"parse_{label}"] = summary([r["parse"] for r in runs[label]])
    for label, paused in (("on", False), ("off", True)):
        floor = time_wall_cpu(lambda: [json.loads(b) for b in bodies], repeat, gc_paused=paused)
        out[f"floor_{label}"], out[f"floor_cpu_{label}"] = floor.wall.as_dict(), floor.cpu.as_dict()
    print(
        f"parse + apply, best s wall/CPU: {out['apply_on']['best']:.2f}/"
        f"{out['apply_cpu_on']['best']:.2f} (GC on), {out['apply_off']['best']:.2f}/"
        f"{out['apply_cpu_off']['best']:.2f} (GC paused); json.loads floor "
        f"{out['floor_on']['best']:.3f}/{out['floor_cpu_on']['best']:.3f} (GC on), "
        f"{out['floor_off']['best']:.3f}/{out['floor_cpu_off']['best']:.3f} (GC paused)"
    )
    return out


def measure_transport(size: int, cache: pathlib.Path) -> dict[str, Any]:
    """POST every request through FakeKanidm's MockTransport (GC on), with peak RSS."""
    import httpx

    from kanidm_sync.testing import FakeKanidm

    bodies = load_bodies(size, cache)
    fake = FakeKanidm()
    sync = fake.provision_sync_account("bench")
    headers = {"authorization": f"Bearer {sync.token}", "content-type": "application/json"}
    gc.collect()
    baseline = rss_now_mib()
    with httpx.Client(transport=fake.transport, base_url=fake.url) as client:
        t0, c0 = time.perf_counter(), time.process_time()
        for n, body in enumerate(bodies, start=1):
            response = client.post("/scim/v1/Sync", content=body, headers=headers)
            if response.status_code != 200:
                raise SystemExit(
                    f"request {n} of {len(bodies)} failed: {response.status_code} {response.text}"
                )
        cpu = time.process_time() - c0
        elapsed = time.perf_counter() - t0
    out = {
        "size": size,
        "seconds": elapsed,
        "cpu": cpu,
        "rss_peak_above": rss_peak_mib() - baseline,
        "live": len(fake.store),
    }
    print(
        f"POST /scim/v1/Sync x {len(bodies)} via MockTransport: {elapsed:.2f} s wall, "
        f"{cpu:.2f} s CPU (GC on); "
        f"peak RSS {out['rss_peak_above']:.0f} MiB above a {baseline:.0f} MiB baseline"
    )
    return out


def main() -> None:
    """Run each size in a fresh process (store, then transport) and print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add_size_arguments(parser, repeat=1)
    parser.add_argument("--no-transport", action="store_true", help="skip the MockTransport pass")
    parser.add_argument("--scenario", choices=("store", "transport"), default="store",
                        help=argparse.SUPPRESS)  # fmt: skip
    parser.add_argument("--bodies", type=pathlib.Path, help=argparse.SUPPRESS)
    parser.add_argument("--build", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build is not None:
        write_bodies(args.build, args.bodies / str(args.build))
        return
    if args.one is not None:
        if args.bodies is None:
            raise SystemExit("--one is internal: run the bench without it")
        if args.scenario == "store":
            emit_result(measure_store(args.one, args.repeat, args.bodies))
        else:
            emit_result(measure_transport(args.one, args.bodies))
        return

    print(environment())
    sizes = sizes_of(args)
    with tempfile.TemporaryDirectory(prefix="bench-double-") as cache:
        extra = ["--repeat", str(args.repeat), "--bodies", cache]
        stores = run_sizes(__file__, sizes, [*extra, "--scenario", "store"])
        transports: dict[int, dict[str, Any]] = {}
        if not args.no_transport:
            print("=== the same requests through FakeKanidm's MockTransport ===")
            for r in run_sizes(__file__, sizes, [*extra, "--scenario", "transport"]):
                transports[r["size"]] = r
    rows = []
    for r in stores:
        on, off = r["apply_on"], r["apply_off"]
        cpu_on, cpu_off = r["apply_cpu_on"]["best"], r["apply_cpu_off"]["best"]
        ratio_on = cpu_on / r["floor_cpu_on"]["best"]
        ratio_off = cpu_off / r["floor_cpu_off"]["best"]
        t = transports.get(r["size"])
        rows.append(
            [
                f"{r['size']:,}",
                f"{len(r['bodies'])} ({max(r['bodies']) / MIB:.1f} / {sum(r['bodies']) / MIB:.1f})",
                f"{on['best']:.2f} / {cpu_on:.2f}",
                f"{off['best']:.2f} / {cpu_off:.2f}",
                f"{r['parse_on']['best']:.2f}",
                f"{r['floor_cpu_on']['best']:.3f} / {r['floor_cpu_off']['best']:.3f}",
                f"{ratio_on:.0f} / {ratio_off:.0f}",
                f"{r['late_failure']['seconds']:.3f}",
                f"{r['rss_peak_above']:.0f} ({r['rss_peak_above'] * MIB / sum(r['bodies']):.0f}x)",
                "-" if t is None else f"{t['seconds']:.2f} / {t['cpu']:.2f}",
                "-" if t is None else f"{t['rss_peak_above']:.0f}",
            ]
        )
    print_table(
        "The in-memory Kanidm (bench/bench_double.py)",
        [
            "entries",
            "requests (largest / total MiB)",
            "parse + apply s, wall / CPU (GC on)",
            "parse + apply s, wall / CPU (GC paused)",
            "of which parse, wall s (GC on)",
            "json.loads floor CPU s, GC on / paused",
            "ratio to floor (CPU), GC on / paused",
            "late-failing apply s (rolled back)",
            "peak RSS MiB above baseline (x total body)",
            "via MockTransport s, wall / CPU (GC on)",
            "via MockTransport peak RSS MiB",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
