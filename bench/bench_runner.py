"""Benchmark the runner: snapshot diff + plan at 100k entries / 1% churn, and a chunked refresh.

Run: .venv/bin/python bench/bench_runner.py [--entries 100000] [--churn 0.01]

Prints the end-to-end time of a first (Refresh) run of a 100,000-entry image against the
in-memory Kanidm, which needs several requests under the 32 MiB limit (chunked, with
keep-alives), then, when 1% of the entries change:

* the snapshot adapter's diff (list + digest + compare against its store),
* the runner's plan of that delta against its local record (diff + attribute patches +
  split), and the validation of the delta,
* the size of the request that carries the churn,
* a whole ``Runner.plan()`` (state read, record load, fetch, validate, plan),
* the run that applies the churn.
"""

from __future__ import annotations

import argparse
import pathlib
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable

import httpx

from kanidm_sync import (
    ActiveState,
    ChangeSet,
    Client,
    Entry,
    Group,
    Mail,
    Person,
    PosixAccount,
    Runner,
)
from kanidm_sync._plan import KnownState, build_plan
from kanidm_sync._proto._codec import encode_changeset_json
from kanidm_sync.adapters import Delta
from kanidm_sync.adapters._snapshot import SnapshotAdapter
from kanidm_sync.testing import FakeKanidm

NS = uuid.UUID("0f3c2a1e-7d6b-4c5a-9e8f-102938475601")


def directory(n: int, generation: dict[int, int]) -> list[Entry]:
    """``n`` entries: 98% persons, 2% groups of 50 members; ``generation`` marks churned ones."""
    persons = n - n // 50
    out: list[Entry] = []
    for i in range(persons):
        g = generation.get(i, 0)
        out.append(
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
        out.append(
            Group(
                id=uuid.uuid5(NS, f"g{j}"),
                external_id=f"cn=group{j},ou=groups,dc=example,dc=org",
                name=f"group{j}",
                member=members,
            )
        )
    return out


class Snap:
    """A snapshot source over a list."""

    def __init__(self, entries: Iterable[Entry]) -> None:
        self.entries = list(entries)

    def snapshot(self) -> list[Entry]:
        """Every entry."""
        return self.entries


def timed(label: str, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    value = fn(*args, **kwargs)
    elapsed = time.perf_counter() - t0
    print(f"  {label:<48} {elapsed:8.3f} s")
    return value, elapsed


def bench_churn(n: int, churn: float) -> None:
    print(f"Snapshot source of {n} entries, {churn:.0%} churn")
    with tempfile.TemporaryDirectory() as tmp:
        fake = FakeKanidm()
        account = fake.provision_sync_account("bench")
        http = httpx.Client(transport=fake.transport)
        client = Client(fake.url, token=account.token, http_client=http)
        snap = Snap(directory(n, {}))
        adapter = SnapshotAdapter(snap, pathlib.Path(tmp) / "snapshot.json")
        record = pathlib.Path(tmp) / "applied.json"
        runner = Runner(client, adapter, state_path=record)
        report, elapsed = timed("first run: Refresh of the whole image (chunked)", runner.run_once)
        posts = [r for r in fake.history if r.method == "POST"]
        sizes = [len(r.body or b"") for r in posts]
        print(
            f"  {report.requests_sent} requests, largest body {max(sizes) / 1024 / 1024:.2f} MiB, "
            f"total {sum(sizes) / 1024 / 1024:.1f} MiB, {n / elapsed:,.0f} entries/s; "
            f"Kanidm holds {len(fake.store.entries(owned_by=account.uuid))} synced entries"
        )
        state = client.get_state()
        assert isinstance(state, ActiveState)

        rng = random.Random(7)
        persons = n - n // 50
        changed = rng.sample(range(persons), int(n * churn))
        snap.entries = directory(n, dict.fromkeys(changed, 1))

        batch, t_diff = timed("snapshot diff (adapter.fetch)", adapter.fetch, state)
        assert isinstance(batch, Delta)
        known = runner._store.load()  # the bench measures the plan alone
        assert isinstance(known, KnownState)
        cs = ChangeSet(from_state=state, to_state=ActiveState(batch.cookie), entries=batch.entries)
        _, t_validate = timed("validate the delta", cs.validate)
        plan, t_plan = timed(
            "plan the delta (diff + patches + split)",
            build_plan,
            state=state,
            batch=batch,
            known=known,
            max_request_bytes=30 * 1024 * 1024,
        )
        print(f"  {'diff + validate + plan':<48} {t_diff + t_validate + t_plan:8.3f} s")
        body = encode_changeset_json(plan.requests[0])
        print(
            f"  payload: {len(plan.requests)} request, {len(plan.requests[0].entries)} entries, "
            f"{len(body) / 1024:.1f} KiB (the full image: {sum(sizes) / 1024 / 1024:.1f} MiB)"
        )
        print(f"  plan: {plan.counts}")
        # The whole planning step of a run, as a user calls it (reads the record from disk).
        adapter_again = SnapshotAdapter(snap, pathlib.Path(tmp) / "snapshot.json")
        whole = Runner(client, adapter_again, state_path=record)
        timed("Runner.plan() (state, record load, fetch, validate, plan)", whole.plan)
        report, _ = timed("Runner.run_once() applying the churn", runner.run_once)
        print(f"  applied: {report!r}")
        client.close()
        http.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--churn", type=float, default=0.01)
    args = parser.parse_args(argv)
    bench_churn(args.entries, args.churn)
    return 0


if __name__ == "__main__":
    sys.exit(main())
