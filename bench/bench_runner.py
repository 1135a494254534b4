"""Benchmark the runner: first run, 1%-churn runs and a Delta run, against the in-memory Kanidm.

For each size (``--sizes``, default 10,000, 100,000 and 200,000 entries; each in a fresh
process, so the peak RSS is that size's own), a snapshot source (98% POSIX persons with a
mail, 2% groups of 50 members, built by the source's ``snapshot()`` generator as it yields
them) is wrapped in ``SnapshotAdapter`` and synced by ``Runner`` with a local record:

* the first run (a chunked Refresh), its requests, and the process's peak RSS above the
  baseline taken just before it (the in-memory Kanidm's store is in the same process);
* the first run again, in another fresh process whose in-memory Kanidm is served over
  loopback HTTP by a child process (``python -m kanidm_sync.testing serve``): that process's
  peak RSS above its baseline is the library's own memory, the figure the target is about;
* the floor: the source alone yielding its entries (``snapshot()`` iterated in this process);
* a 1%-churn run with the garbage collector on, and another (other entries) with it paused;
  the library's own time is the run minus the time inside ``snapshot()`` and inside the
  in-memory Kanidm (its transport is timed);
* a ``Delta`` source (an LDAP/AD-style change feed) with 1,000 changed persons, run by a new
  ``Runner`` on the same record.

Targets (issue 15): the 1% run's own time < 1.0 s and the whole run < 2x the source alone;
the Delta run's own time < 0.3 s; the first run's peak RSS above baseline (the library's
process, the server elsewhere) <= 3x the largest request body.

Run: ``.venv/bin/python bench/bench_runner.py [--sizes 10000,100000,200000 | --quick]
[--churn 0.01] [--delta-changes 1000] [--repeat N]`` (``--repeat``: runs of the
source-alone floor, best taken; each run is measured once).
"""

from __future__ import annotations

import argparse
import gc
import pathlib
import random
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx

from kanidm_sync import (
    Client,
    Entry,
    Group,
    Mail,
    Person,
    PosixAccount,
    Runner,
)
from kanidm_sync.adapters import Delta
from kanidm_sync.adapters._snapshot import SnapshotAdapter
from kanidm_sync.testing import FakeKanidm

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
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
    time_both,
    verdict,
)

NS = uuid.UUID("0f3c2a1e-7d6b-4c5a-9e8f-102938475601")


def directory(n: int, generation: dict[int, int]) -> list[Entry]:
    """``n`` entries: 98% persons, 2% groups of 50 members; ``generation`` marks churned ones."""
    return list(iter_directory(n, generation))


def iter_directory(n: int, generation: dict[int, int]) -> Iterator[Entry]:
    """The entries of :func:`directory`, each built when it is asked for."""
    persons = n - n // 50
    for i in range(persons):
        g = generation.get(i, 0)
        yield (
            Person(
                id=uuid.uuid5(NS, f"p{i}"),
                external_id=f"uid=user{i},ou=people,dc=example,dc=org",
                name=f"user{i}",
                displayname=f"User {i}" + (f" v{g}" if g else ""),
                mail=[Mail(f"user{i}@example.org")],
                posix=PosixAccount(gidnumber=100000 + i, loginshell="/bin/bash"),
            )
        )
    for j in range(n - persons):
        members = [
            f"uid=user{(j * 50 + k) % persons},ou=people,dc=example,dc=org" for k in range(50)
        ]
        yield Group(
            id=uuid.uuid5(NS, f"g{j}"),
            external_id=f"cn=group{j},ou=groups,dc=example,dc=org",
            name=f"group{j}",
            member=members,
        )


class Snap:
    """A snapshot source that builds its entries as it yields them, and times itself.

    ``source_time`` accumulates the time spent inside :meth:`snapshot`'s generator, so the
    library's own time of a run is the run minus this minus the server's time.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.generation: dict[int, int] = {}
        self.source_time = 0.0

    def snapshot(self) -> Iterator[Entry]:
        """Every entry, built on demand."""
        entries = iter_directory(self.n, self.generation)
        while True:
            t0 = time.perf_counter()
            try:
                entry = next(entries)
            except StopIteration:
                self.source_time += time.perf_counter() - t0
                return
            self.source_time += time.perf_counter() - t0
            yield entry


class DeltaSource:
    """A change-feed source (LDAP, AD style): returns a prepared :class:`Delta`."""

    def __init__(self, delta: Delta) -> None:
        self.delta = delta

    def fetch(self, state: object) -> Delta:
        """The prepared delta, whatever the state."""
        return self.delta


class TimedTransport(httpx.BaseTransport):
    """Wraps the in-memory Kanidm's transport and adds up the time the server spends."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.server_time = 0.0
        self.bodies: list[int] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Forward the request, timing the server's handling of it."""
        # Read first, outside the server's time: a large body is encoded as it is read
        # (streamed, ``_encode_body``), which is the library's work.
        body = request.read()
        t0 = time.perf_counter()
        response = self.inner.handle_request(request)
        response.read()
        self.server_time += time.perf_counter() - t0
        if request.method == "POST":
            self.bodies.append(len(body))
        return response


def timed_run(
    runner: Runner, snap: Snap | None, transport: TimedTransport, *, gc_paused: bool = False
) -> dict[str, float]:
    """One ``run_once``: total, source and server time, and the library's own time."""
    gc.collect()
    if snap is not None:
        snap.source_time = 0.0
    transport.server_time = 0.0
    if gc_paused:
        gc.disable()
    try:
        t0 = time.perf_counter()
        runner.run_once()
        total = time.perf_counter() - t0
    finally:
        gc.enable()
    source = snap.source_time if snap is not None else 0.0
    return {
        "total": total,
        "source": source,
        "server": transport.server_time,
        "ours": total - source - transport.server_time,
    }


def churn(snap: Snap, n: int, fraction: float, seed: int, generation: int) -> None:
    """Change the display name of ``fraction`` of the persons."""
    persons = n - n // 50
    for i in random.Random(seed).sample(range(persons), int(n * fraction)):
        snap.generation[i] = generation


def measure(n: int, fraction: float, delta_changes: int, repeat: int) -> dict[str, Any]:
    """First run, two churn runs (GC on, GC paused) and a Delta run, in this fresh process."""
    out: dict[str, Any] = {"size": n}
    with tempfile.TemporaryDirectory() as tmp:
        fake = FakeKanidm()
        account = fake.provision_sync_account("bench")
        transport = TimedTransport(fake.transport)
        http = httpx.Client(transport=transport)
        client = Client(fake.url, token=account.token, http_client=http)
        snap = Snap(n)
        record = pathlib.Path(tmp) / "applied.json"
        adapter = SnapshotAdapter(snap, pathlib.Path(tmp) / "snapshot.json")
        runner = Runner(client, adapter, state_path=record)
        gc.collect()
        baseline = rss_now_mib()
        first = timed_run(runner, snap, transport)
        out["rss_baseline"] = baseline
        out["rss_peak_above"] = rss_peak_mib() - baseline
        out["first"] = first
        out["bodies"] = list(transport.bodies)
        print(
            f"first run: {first['total']:.2f} s (source {first['source']:.2f}, server "
            f"{first['server']:.2f}, ours {first['ours']:.2f}); {len(transport.bodies)} "
            f"requests, largest {max(transport.bodies) / MIB:.1f} MiB; peak RSS "
            f"{out['rss_peak_above']:.0f} MiB above a {baseline:.0f} MiB baseline "
            "(the in-memory Kanidm's store included)"
        )
        # The floor: the source alone yielding its entries, in this process.
        floor_on, floor_off = time_both(lambda: sum(1 for _ in snap.snapshot()), repeat)
        out["floor_on"], out["floor_off"] = floor_on.as_dict(), floor_off.as_dict()
        print(f"source alone: {floor_on.best:.2f} s (GC on), {floor_off.best:.2f} s (GC paused)")
        churn(snap, n, fraction, seed=7, generation=1)
        out["churn_on"] = timed_run(runner, snap, transport)
        churn(snap, n, fraction, seed=8, generation=2)
        out["churn_off"] = timed_run(runner, snap, transport, gc_paused=True)
        for key, label in (("churn_on", "GC on"), ("churn_off", "GC paused")):
            r = out[key]
            print(
                f"{fraction:.0%} churn run ({label}): {r['total']:.2f} s (source "
                f"{r['source']:.2f}, server {r['server']:.2f}, ours {r['ours']:.2f})"
            )
        # A change feed: ``delta_changes`` changed persons against the whole record.
        persons = n - n // 50
        changed = random.Random(9).sample(range(persons), min(delta_changes, persons))
        generation = dict.fromkeys(changed, 3)
        everyone = directory(n, generation)
        delta = Delta(entries=[everyone[i] for i in changed], cookie=b"delta-1")
        del everyone
        delta_runner = Runner(client, DeltaSource(delta), state_path=record)
        out["delta"] = timed_run(delta_runner, None, transport)
        out["delta_changes"] = len(changed)
        r = out["delta"]
        print(
            f"Delta of {len(changed):,} changes: {r['total']:.3f} s (server {r['server']:.3f}, "
            f"ours {r['ours']:.3f})"
        )
        client.close()
        http.close()
    return out


def measure_first_run_memory(n: int) -> dict[str, Any]:
    """The first run alone, its in-memory Kanidm in a child process: the library's own RSS."""
    command = [sys.executable, "-m", "kanidm_sync.testing", "serve", "--port", "0"]
    server = subprocess.Popen(
        [*command, "--sync-account", "bench"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = token = None
        while url is None or token is None:
            line = server.stdout.readline()
            if not line:
                raise RuntimeError("the in-memory Kanidm did not start")
            if line.startswith("url: "):
                url = line.split(" ", 1)[1].strip()
            found = re.match(r"sync account bench token: (\S+)", line)
            if found:
                token = found.group(1)
        bodies: list[int] = []

        def note(request: httpx.Request) -> None:
            if request.method == "POST":
                bodies.append(int(request.headers["Content-Length"]))

        http = httpx.Client(event_hooks={"request": [note]}, timeout=600)
        client = Client(url, token=token, http_client=http, allow_insecure_http=True)
        with tempfile.TemporaryDirectory() as tmp:
            snap = Snap(n)
            adapter = SnapshotAdapter(snap, pathlib.Path(tmp) / "snapshot.sqlite")
            runner = Runner(client, adapter, state_path=pathlib.Path(tmp) / "record.sqlite")
            gc.collect()
            baseline = rss_now_mib()
            t0 = time.perf_counter()
            runner.run_once()
            total = time.perf_counter() - t0
            peak = rss_peak_mib() - baseline
        client.close()
        http.close()
    finally:
        server.terminate()
        server.wait()
    print(
        f"first run, server in another process: {total:.1f} s; {len(bodies)} requests, "
        f"largest {max(bodies) / MIB:.1f} MiB; peak RSS {peak:.0f} MiB above a "
        f"{baseline:.0f} MiB baseline"
    )
    return {"size": n, "rss_peak_above": peak, "bodies": bodies, "total": total}


def main(argv: list[str] | None = None) -> int:
    """Run each size in a fresh process and print the table with the issue's targets."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_size_arguments(parser, repeat=2)  # runs of the source-alone floor
    parser.add_argument("--churn", type=float, default=0.01)
    parser.add_argument("--delta-changes", type=int, default=1_000)
    parser.add_argument("--first-run-memory", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one is not None and args.first_run_memory:
        emit_result(measure_first_run_memory(args.one))
        return 0
    if args.one is not None:
        emit_result(measure(args.one, args.churn, args.delta_changes, args.repeat))
        return 0
    print(environment())
    extra = [
        "--churn",
        str(args.churn),
        "--delta-changes",
        str(args.delta_changes),
        "--repeat",
        str(args.repeat),
    ]
    rows = []
    alone = {
        r["size"]: r for r in run_sizes(__file__, sizes_of(args), [*extra, "--first-run-memory"])
    }
    for r in run_sizes(__file__, sizes_of(args), extra):
        on, off, delta = r["churn_on"], r["churn_off"], r["delta"]
        whole_ratio = on["total"] / r["floor_on"]["best"]
        whole_ratio_off = off["total"] / r["floor_off"]["best"]
        largest = max(r["bodies"]) / MIB
        own = alone[r["size"]]
        own_largest = max(own["bodies"]) / MIB
        rss_ratio = own["rss_peak_above"] / own_largest
        rows.append(
            [
                f"{r['size']:,}",
                f"{on['total']:.2f} / {off['total']:.2f}",
                f"{r['floor_on']['best']:.2f}",
                f"{whole_ratio:.1f} / {whole_ratio_off:.1f} ({verdict(whole_ratio, 2.0)})",
                f"{on['ours']:.2f} / {off['ours']:.2f} ({verdict(on['ours'], 1.0)})",
                f"{delta['ours']:.3f} ({verdict(delta['ours'], 0.3)})",
                f"{r['first']['total']:.1f} (ours {r['first']['ours']:.1f})",
                f"{own['rss_peak_above']:.0f} ({rss_ratio:.1f}x, {verdict(rss_ratio, 3.0)})",
                f"{r['rss_peak_above']:.0f}",
                f"{largest:.1f} ({len(r['bodies'])} req.)",
            ]
        )
    pct = f"{args.churn:.0%}"
    print_table(
        "Runner (bench/bench_runner.py)",
        [
            "entries",
            f"{pct}-churn run s, GC on / paused",
            "source alone s (GC on)",
            "run / source, GC on / paused (target < 2)",
            f"ours s in the {pct} run, GC on / paused (target < 1.0)",
            f"ours s, Delta of {args.delta_changes:,} (target < 0.3)",
            "first run s (GC on)",
            "first run peak RSS MiB above baseline, server in another process (x largest "
            "body; target <= 3)",
            "same, in-memory Kanidm in the process",
            "largest body MiB (first run)",
        ],
        rows,
    )
    print(
        "ours = run time - time inside the source's snapshot() generator - time inside the "
        "in-memory Kanidm; the target's peak RSS is the library's process alone."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
