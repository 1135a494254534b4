"""Convergence: a stateful Hypothesis test of Runner + SnapshotAdapter against FakeKanidm.

The model is a directory (persons and groups with members) behind a snapshot source. Rules
change it (among others: entries exchanging names, mails, gidnumbers or external ids, names
rotating among three entries, chains where one entry takes what another gives up), run the
runner (sometimes chunked, sometimes crashing part-way, sometimes losing a reply), force a
refresh, delete the local record or the snapshot store, or restart the process. After every
run that returned, the live entries the sync account owns must equal the model exactly, and
Kanidm's cookie must be the one the source last reported.

The in-memory Kanidm checks uniqueness against what it holds before each request, as
kanidmd does, so values changing hands need the runner's release request. A run may fail
with a 409 only where docs/runner.md says it can: over an unknown base, when a value moves
to another entry and the local record does not describe what Kanidm holds; the test then
applies the documented remedy and checks that it converges.

Run it longer by hand with ``KANIDM_SYNC_CONVERGENCE_EXAMPLES=500`` (and optionally
``KANIDM_SYNC_CONVERGENCE_STEPS=60``).
"""

from __future__ import annotations

import os
import pathlib
import shutil
import tempfile
import uuid
from collections.abc import Iterable

import attrs
import httpx
from hypothesis import HealthCheck, Phase, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from kanidm_sync import (
    ActiveState,
    ApplyOutcomeUnknownError,
    Client,
    Entry,
    Group,
    Guards,
    Mail,
    NotAppliedError,
    Person,
    PosixAccount,
    PosixGroup,
    Progress,
    RefreshState,
    Remap,
    Rules,
    Runner,
    SyncState,
    UniquenessError,
)
from kanidm_sync._chunk import CHUNK_COOKIE_PREFIX, parse_chunk_cookie
from kanidm_sync._runner import _RecordStore
from kanidm_sync.adapters import SnapshotAdapter
from kanidm_sync.adapters._protocols import SourceBatch
from kanidm_sync.testing import FakeKanidm

from .conftest import source_cookie

EXAMPLES = int(os.environ.get("KANIDM_SYNC_CONVERGENCE_EXAMPLES", "40"))
STEPS = int(os.environ.get("KANIDM_SYNC_CONVERGENCE_STEPS", "25"))

NS = uuid.UUID("6f1d7b0e-3c2a-4e8f-9b5d-0a1c2e3f4d5b")
NAMES = [
    "alice",
    "bob",
    "carol",
    "dave",
    "erin",
    "frank",
    "grace",
    "heidi",
    "ivan",
    "judy",
    "staff",
    "ops",
]
MAILS = [f"m{i}@example.org" for i in range(8)]
GIDS = [20001 + i for i in range(6)]
# Pads every entry so that a handful of them exceed the smallest request limit (4096).
PAD = "x" * 600
TINY = 4096


class Crash(Exception):
    """Stands in for the process dying after a committed request."""


@attrs.define
class MPerson:
    """A person of the model directory."""

    ext: str
    name: str
    displayname: str
    mails: list[str]
    posix: bool
    gid: int | None


@attrs.define
class MGroup:
    """A group of the model directory; members are model UUIDs."""

    ext: str
    name: str
    members: list[uuid.UUID]
    by_uuid: bool
    posix: bool
    gid: int | None


def derived_gid(entry_id: uuid.UUID) -> int:
    """The gidnumber Kanidm derives from a UUID when none is sent (spec §3.9.3)."""
    return 0x70000000 | (int.from_bytes(entry_id.bytes[-4:], "big") & 0x0FFFFFFF)


class ModelSource:
    """The snapshot source: lists the model directory, groups first (the harder order)."""

    def __init__(self, machine: ConvergenceMachine) -> None:
        self.machine = machine

    def snapshot(self) -> list[Entry]:
        """Every entry of the model."""
        return list(self.machine.entries())


class Recording:
    """A SourceAdapter that remembers the cookie of the last batch it returned."""

    def __init__(self, inner: SnapshotAdapter, machine: ConvergenceMachine) -> None:
        self.inner = inner
        self.machine = machine

    def fetch(self, state: SyncState) -> SourceBatch:
        """Delegate, remembering the cookie (on the machine: it outlives a restart)."""
        batch = self.inner.fetch(state)
        self.machine.last_cookie = batch.cookie
        return batch


class ConvergenceMachine(RuleBasedStateMachine):
    """Model directory -> SnapshotAdapter -> Runner -> FakeKanidm, checked after each run."""

    def __init__(self) -> None:
        super().__init__()
        self.tmp = pathlib.Path(tempfile.mkdtemp(prefix="kanidm-sync-conv-"))
        self.fake = FakeKanidm()
        self.account = self.fake.provision_sync_account("hr")
        self.http = httpx.Client(transport=self.fake.transport)
        self.client = Client(self.fake.url, token=self.account.token, http_client=self.http)
        self.admin = Client(self.fake.url, token=self.fake.admin_token, http_client=self.http)
        self.persons: dict[uuid.UUID, MPerson] = {}
        self.groups: dict[uuid.UUID, MGroup] = {}
        self.graveyard: list[MPerson] = []  # deleted persons, for re-creation
        self.counter = 0
        self.last_cookie: bytes | None = None  # the cookie the source last reported
        self.crash_after: int | None = None
        self.drop_at: int | None = None
        self.synced = False  # the last run converged and nothing broke since
        self.log: list[str] = []
        self.restart()

    # --- plumbing ----------------------------------------------------------------------

    def fresh_uuid(self) -> uuid.UUID:
        self.counter += 1
        return uuid.uuid5(NS, f"entry-{self.counter}")

    def restart(self) -> None:
        self.adapter = Recording(
            SnapshotAdapter(ModelSource(self), self.tmp / "snapshot.json"), self
        )
        self.runners = {
            chunked: Runner(
                self.client,
                self.adapter,
                state_path=self.tmp / "applied.json",
                guards=Guards(allow_shrink=True, allow_empty_source=True),
                max_request_bytes=TINY if chunked else 30 * 1024 * 1024,
                progress=self.on_progress,
            )
            for chunked in (False, True)
        }

    def on_progress(self, p: Progress) -> None:
        if p.phase != "apply":
            return
        if self.crash_after is not None and p.done == self.crash_after:
            self.crash_after = None
            raise Crash
        if self.drop_at is not None and p.done == self.drop_at:
            self.drop_at = None
            self.fake.drop_next_response()

    def teardown(self) -> None:
        try:
            if not self.synced:
                # A run that raised must leave Kanidm in a state the next run converges from.
                self.log.append("final run")
                self.attempt(False)
        finally:
            self.client.close()
            self.admin.close()
            self.http.close()
            shutil.rmtree(self.tmp, ignore_errors=True)

    def entries(self) -> Iterable[Entry]:
        for gid, g in self.groups.items():
            member = [
                str(m)
                if g.by_uuid
                else (self.persons[m].ext if m in self.persons else self.groups[m].ext)
                for m in g.members
            ]
            yield Group(
                id=gid,
                external_id=g.ext,
                name=g.name,
                description=PAD,
                member=member,
                posix=PosixGroup(gidnumber=g.gid) if g.posix else None,
            )
        for pid, p in self.persons.items():
            yield Person(
                id=pid,
                external_id=p.ext,
                name=p.name,
                displayname=p.displayname,
                legalname=PAD,
                mail=[Mail(m) for m in p.mails],
                posix=PosixAccount(gidnumber=p.gid) if p.posix else None,
            )

    def used_names(self) -> set[str]:
        return {p.name for p in self.persons.values()} | {g.name for g in self.groups.values()}

    def used_mails(self) -> set[str]:
        return {m for p in self.persons.values() for m in p.mails}

    def used_gids(self) -> set[int]:
        out = {p.gid for p in self.persons.values() if p.posix and p.gid is not None}
        return out | {g.gid for g in self.groups.values() if g.posix and g.gid is not None}

    def used_exts(self) -> set[str]:
        return {p.ext for p in self.persons.values()} | {g.ext for g in self.groups.values()}

    def expected(self) -> dict[uuid.UUID, tuple[object, ...]]:
        out: dict[uuid.UUID, tuple[object, ...]] = {}
        for pid, p in self.persons.items():
            gid = (p.gid if p.gid is not None else derived_gid(pid)) if p.posix else None
            out[pid] = ("person", p.ext, p.name, p.displayname, tuple(sorted(p.mails)), gid, ())
        for gid_, g in self.groups.items():
            gid = (g.gid if g.gid is not None else derived_gid(gid_)) if g.posix else None
            members = tuple(sorted(str(m) for m in set(g.members)))
            out[gid_] = ("group", g.ext, g.name, None, (), gid, members)
        return out

    def actual(self) -> dict[uuid.UUID, tuple[object, ...]]:
        out: dict[uuid.UUID, tuple[object, ...]] = {}
        for e in self.fake.store.entries(owned_by=self.account.uuid):
            kind = "person" if "person" in e.classes else "group"
            out[e.uuid] = (
                kind,
                e.first("sync_external_id"),
                e.first("name"),
                e.first("displayname"),
                tuple(sorted(str(m) for m in e.get("mail"))),
                e.first("gidnumber"),
                tuple(sorted(str(m) for m in e.get("member"))),
            )
        return out

    def check(self) -> None:
        assert self.expected() == self.actual(), "\n".join(self.log)
        assert self.last_cookie == source_cookie(self.fake.cookie("hr"))

    # --- directory rules -----------------------------------------------------------------

    @initialize(n=st.integers(0, 6))
    def seed(self, n: int) -> None:
        for i in range(n):
            self.persons[self.fresh_uuid()] = MPerson(
                ext=f"uid=seed{i},ou=people",
                name=NAMES[i],
                displayname=f"Seed {i}",
                mails=[MAILS[i]],
                posix=i % 2 == 0,
                gid=None,
            )

    @rule(data=st.data())
    def add_person(self, data: st.DataObject) -> None:
        free = [n for n in NAMES if n not in self.used_names()]
        if not free:
            return
        name = data.draw(st.sampled_from(free))
        mails = data.draw(
            st.lists(
                st.sampled_from([m for m in MAILS if m not in self.used_mails()] or ["-"]),
                max_size=2,
                unique=True,
            )
        )
        mails = [m for m in mails if m != "-"]
        posix = data.draw(st.booleans())
        gid = (
            data.draw(st.sampled_from([None, *sorted(set(GIDS) - self.used_gids())]))
            if posix
            else None
        )
        self.counter += 1
        pid = self.fresh_uuid()
        self.persons[pid] = MPerson(
            ext=f"uid=p{self.counter},ou=people",
            name=name,
            displayname=data.draw(st.sampled_from(["Ann", "Bo", "Cy", "Di Ü"])),
            mails=mails,
            posix=posix,
            gid=gid,
        )
        self.log.append(f"add person {pid} {self.persons[pid]}")

    @precondition(lambda self: self.persons)
    @rule(data=st.data())
    def modify_person(self, data: st.DataObject) -> None:
        pid = data.draw(st.sampled_from(sorted(self.persons)))
        p = self.persons[pid]
        field = data.draw(st.sampled_from(["displayname", "mail", "posix", "gid"]))
        if field == "displayname":
            p.displayname = data.draw(st.sampled_from(["Ann", "Bo", "Cy", "Di Ü", "Eve"]))
        elif field == "mail":
            free = [m for m in MAILS if m not in self.used_mails() or m in p.mails]
            p.mails = (
                data.draw(st.lists(st.sampled_from(free), max_size=2, unique=True)) if free else []
            )
        elif field == "posix":
            # Kanidm never removes a class (spec §4.5 step 3), so a posix facet, once sent,
            # keeps its last gidnumber when left out: the model only ever adds it.
            p.posix = True
        else:
            p.posix = True
            p.gid = data.draw(st.sampled_from([None, *sorted(set(GIDS) - self.used_gids())]))
        self.log.append(f"modify person {pid} {field} -> {p}")

    def drop_member(self, target: uuid.UUID) -> None:
        for g in self.groups.values():
            g.members = [m for m in g.members if m != target]

    @precondition(lambda self: self.persons)
    @rule(data=st.data())
    def delete_person(self, data: st.DataObject) -> None:
        pid = data.draw(st.sampled_from(sorted(self.persons)))
        self.graveyard.append(self.persons.pop(pid))
        self.drop_member(pid)
        self.log.append(f"delete person {pid}")

    @precondition(lambda self: self.graveyard)
    @rule(data=st.data())
    def recreate_person(self, data: st.DataObject) -> None:
        old = data.draw(st.sampled_from(self.graveyard))
        if old.ext in self.used_exts() or old.name in self.used_names():
            return
        if set(old.mails) & self.used_mails() or (
            old.gid is not None and old.gid in self.used_gids()
        ):
            return
        self.graveyard.remove(old)
        pid = self.fresh_uuid()
        self.persons[pid] = attrs.evolve(old, mails=list(old.mails))
        self.log.append(f"re-create person {pid} {old}")

    @precondition(lambda self: self.persons)
    @rule(data=st.data())
    def reseed_person(self, data: st.DataObject) -> None:
        """Deleted and re-created at the source in one go: a new UUID, same everything."""
        old_id = data.draw(st.sampled_from(sorted(self.persons)))
        new_id = self.fresh_uuid()
        self.persons[new_id] = self.persons.pop(old_id)
        for g in self.groups.values():
            g.members = [new_id if m == old_id else m for m in g.members]
        self.log.append(f"re-seed person {old_id} -> {new_id}")

    @precondition(lambda self: self.groups)
    @rule(data=st.data())
    def reseed_group(self, data: st.DataObject) -> None:
        """A group deleted and re-created at the source in one go: a new UUID, same content."""
        old_id = data.draw(st.sampled_from(sorted(self.groups)))
        new_id = self.fresh_uuid()
        self.groups[new_id] = self.groups.pop(old_id)
        for g in self.groups.values():
            g.members = [new_id if m == old_id else m for m in g.members]
        self.log.append(f"re-seed group {old_id} -> {new_id}")

    @precondition(lambda self: self.persons or self.groups)
    @rule(data=st.data())
    def rename(self, data: st.DataObject) -> None:
        free = [n for n in NAMES if n not in self.used_names()]
        if not free:
            return
        target = data.draw(st.sampled_from(sorted([*self.persons, *self.groups])))
        entry = self.persons.get(target) or self.groups[target]
        entry.name = data.draw(st.sampled_from(free))
        self.log.append(f"rename {target} -> {entry.name}")

    def named(self) -> list[uuid.UUID]:
        return sorted([*self.persons, *self.groups])

    def entry(self, target: uuid.UUID) -> MPerson | MGroup:
        return self.persons.get(target) or self.groups[target]

    @precondition(lambda self: len(self.persons) + len(self.groups) >= 2)
    @rule(data=st.data(), what=st.sampled_from(["name", "ext", "mail", "gid"]))
    def swap(self, data: st.DataObject, what: str) -> None:
        """Two entries exchange a unique value (a swap)."""
        if what == "mail":
            pool = sorted(self.persons)
        elif what == "gid":
            pool = sorted(u for u in self.named() if self.entry(u).posix)
        elif what == "ext":
            pool = sorted(self.persons) if data.draw(st.booleans()) else sorted(self.groups)
        else:
            pool = self.named()
        if len(pool) < 2:
            return
        a, b = data.draw(st.lists(st.sampled_from(pool), min_size=2, max_size=2, unique=True))
        ea, eb = self.entry(a), self.entry(b)
        if what == "name":
            ea.name, eb.name = eb.name, ea.name
        elif what == "ext":
            ea.ext, eb.ext = eb.ext, ea.ext
        elif what == "mail":
            pa, pb = self.persons[a], self.persons[b]
            pa.mails, pb.mails = pb.mails, pa.mails
        else:
            ea.gid, eb.gid = eb.gid, ea.gid
        self.log.append(f"swap {what} {a} {b}")

    @precondition(lambda self: len(self.persons) + len(self.groups) >= 3)
    @rule(data=st.data())
    def rotate_names(self, data: st.DataObject) -> None:
        """Three entries pass their names round (a 3-cycle)."""
        a, b, c = data.draw(
            st.lists(st.sampled_from(self.named()), min_size=3, max_size=3, unique=True)
        )
        ea, eb, ec = self.entry(a), self.entry(b), self.entry(c)
        ea.name, eb.name, ec.name = eb.name, ec.name, ea.name
        self.log.append(f"rotate names {a} {b} {c}")

    @precondition(lambda self: len(self.persons) + len(self.groups) >= 2)
    @rule(data=st.data())
    def chain_rename(self, data: st.DataObject) -> None:
        """A takes the name B gives up, B takes a free name (a chain)."""
        free = [n for n in NAMES if n not in self.used_names()]
        if not free:
            return
        a, b = data.draw(
            st.lists(st.sampled_from(self.named()), min_size=2, max_size=2, unique=True)
        )
        ea, eb = self.entry(a), self.entry(b)
        ea.name, eb.name = eb.name, data.draw(st.sampled_from(free))
        self.log.append(f"chain rename {a} <- {b} <- {eb.name}")

    @precondition(lambda self: len(self.persons) >= 2)
    @rule(data=st.data())
    def pass_mail(self, data: st.DataObject) -> None:
        """A person's mail moves to another person, who keeps their own (a chain)."""
        givers = sorted(u for u, p in self.persons.items() if p.mails)
        if not givers:
            return
        a = data.draw(st.sampled_from(givers))
        b = data.draw(st.sampled_from(sorted(set(self.persons) - {a})))
        pa, pb = self.persons[a], self.persons[b]
        moved = pa.mails.pop(0)
        pb.mails = [*pb.mails, moved][:2]
        self.log.append(f"pass mail {moved} {a} -> {b}")

    @rule(data=st.data())
    def add_group(self, data: st.DataObject) -> None:
        free = [n for n in NAMES if n not in self.used_names()]
        if not free:
            return
        candidates = sorted([*self.persons, *self.groups])
        members = (
            data.draw(st.lists(st.sampled_from(candidates), max_size=4, unique=True))
            if candidates
            else []
        )
        posix = data.draw(st.booleans())
        gid = (
            data.draw(st.sampled_from([None, *sorted(set(GIDS) - self.used_gids())]))
            if posix
            else None
        )
        self.counter += 1
        gid_ = self.fresh_uuid()
        self.groups[gid_] = MGroup(
            ext=f"cn=g{self.counter},ou=groups",
            name=data.draw(st.sampled_from(free)),
            members=members,
            by_uuid=data.draw(st.booleans()),
            posix=posix,
            gid=gid,
        )
        self.log.append(f"add group {gid_} {self.groups[gid_]}")

    @precondition(lambda self: self.groups)
    @rule(data=st.data())
    def modify_group(self, data: st.DataObject) -> None:
        target = data.draw(st.sampled_from(sorted(self.groups)))
        g = self.groups[target]
        candidates = sorted([*self.persons, *self.groups])
        what = data.draw(st.sampled_from(["add", "remove", "gid", "form"]))
        if what == "add" and candidates:
            m = data.draw(st.sampled_from(candidates))
            if m not in g.members:
                g.members.append(m)
        elif what == "remove" and g.members:
            g.members.remove(data.draw(st.sampled_from(g.members)))
        elif what == "gid":
            g.posix = g.posix or data.draw(st.booleans())  # never removed (spec §4.5)
            g.gid = (
                data.draw(st.sampled_from([None, *sorted(set(GIDS) - self.used_gids())]))
                if g.posix
                else None
            )
        elif what == "form":
            g.by_uuid = not g.by_uuid
        self.log.append(f"modify group {target} {what} -> {g}")

    @precondition(lambda self: self.groups)
    @rule(data=st.data())
    def delete_group(self, data: st.DataObject) -> None:
        target = data.draw(st.sampled_from(sorted(self.groups)))
        del self.groups[target]
        self.drop_member(target)
        self.log.append(f"delete group {target}")

    # --- run rules --------------------------------------------------------------------------

    def unique_values(self, table: dict[uuid.UUID, tuple[object, ...]]) -> dict[object, uuid.UUID]:
        out: dict[object, uuid.UUID] = {}
        for uid, (_, ext, name, _, mails, gid, _) in table.items():
            out[("ext", str(ext).lower())] = uid
            out[("name", name)] = uid
            for m in mails:  # type: ignore[attr-defined]
                out[("mail", m)] = uid
            if gid is not None:
                out[("gid", gid)] = uid
        return out

    def takers(self) -> dict[uuid.UUID, set[str]]:
        """Entries of the model taking a value another entry holds in Kanidm now."""
        held = self.unique_values(self.actual())
        out: dict[uuid.UUID, set[str]] = {}
        for value, uid in self.unique_values(self.expected()).items():
            holder = held.get(value)
            if holder is not None and holder != uid:
                out.setdefault(uid, set()).add(str(value[0]))  # type: ignore[index]
        return out

    def record_exact(self) -> bool:
        """Whether the local record, whatever its cookie, shows the values Kanidm holds."""
        known = _RecordStore(self.tmp / "applied.json").load()
        if known is None:
            return False
        table: dict[uuid.UUID, tuple[object, ...]] = {}
        for uid, proj in known.entries.items():
            schemas = proj.get("schemas")
            posix = isinstance(schemas, list) and any(
                str(u).endswith((":posixaccount", ":posixgroup")) for u in schemas
            )
            gid = proj.get("gidnumber", derived_gid(uid) if posix else None)
            mail = proj.get("mail")
            mails = (
                [m["value"] for m in mail if isinstance(m, dict)] if isinstance(mail, list) else []
            )
            table[uid] = ("", proj.get("externalId"), proj.get("name"), None, mails, gid, ())
        return self.unique_values(table) == self.unique_values(self.actual())

    def refresh_based(self) -> bool:
        cookie = self.fake.cookie("hr")
        if cookie is None:
            return True
        chunk = parse_chunk_cookie(ActiveState(cookie))
        return chunk is not None and isinstance(chunk.base, RefreshState)

    def attempt(self, chunked: bool, *, expect: tuple[type[BaseException], ...] = ()) -> bool:
        """One run; True when it returned (and converged), False when it raised as allowed."""
        moving = bool(self.takers())
        exact = self.record_exact()
        refresh = self.refresh_based()
        try:
            self.runners[chunked].run_once(allow_deletes=True)
        except expect as exc:
            event(f"run raised {type(exc).__name__}")
            self.synced = False
            return False
        except UniquenessError:
            report = self.runners[chunked].last_report
            assert report is not None
            unknown = report.base_note.startswith("unknown")
            # The documented limit (docs/runner.md, "Swaps"): over an unknown base, a value
            # that moves to another entry collides unless the local record (whatever its
            # cookie) shows where the values are. With a known base, or a record that
            # describes what Kanidm holds, the runner must release the values itself.
            legit = unknown and moving and not exact
            assert legit, "\n".join(self.log)
            had_record = (self.tmp / "applied.json").exists()
            event(f"documented 409 ({'stale' if had_record else 'no'} record), remedied")
            self.crash_after = self.drop_at = None  # the remedy runs undisturbed
            self.log.append(f"  legit 409 (refresh={refresh}, takers={self.takers()})")
            self.remedy()
            return True
        report = self.runners[chunked].last_report
        assert report is not None
        event(f"run {report.outcome}, {min(report.requests_sent, 3)} requests (3 = 3 or more)")
        if report.counts.get("create-or-replace"):
            event("run over an unknown base")
        if moving:
            event("values changed hands" + (" over an unknown base" if not exact else ""))
        self.check()
        return True

    def remedy(self) -> None:
        """What docs/runner.md tells an operator to do after a documented 409.

        Remap, for one run, each entry that takes a value another entry holds in Kanidm to
        a value nobody holds; then remove the rules and run again.
        """
        remap_ids: dict[uuid.UUID, Remap] = {}
        remap_exts: dict[str, Remap] = {}
        for n, (uid, what) in enumerate(sorted(self.takers().items(), key=lambda t: str(t[0]))):
            entry = self.entry(uid)
            remap = Remap(
                name=f"{entry.name}-sync" if "name" in what else None,
                gidnumber=40001 + n if "gid" in what else None,
                patch=[{"op": "remove", "path": "/mail"}] if "mail" in what else [],
            )
            if "ext" in what:  # one table per entry; a new external id needs this one
                remap_exts[entry.ext] = attrs.evolve(remap, external_id=f"{entry.ext}-sync")
            else:
                remap_ids[uid] = remap
        self.log.append(f"  remedy: remap {sorted(map(str, remap_ids))} {sorted(remap_exts)}")
        rules = Rules(remap_ids=remap_ids, remap_external_ids=remap_exts)
        adapter = SnapshotAdapter(
            ModelSource(self), self.tmp / "snapshot.json", fingerprint=rules.fingerprint
        )
        Runner(
            self.client,
            adapter,
            rules=rules,
            state_path=self.tmp / "applied.json",
            guards=Guards(allow_shrink=True, allow_empty_source=True),
        ).run_once(allow_deletes=True)
        self.restart()
        self.runners[False].run_once(allow_deletes=True)
        self.check()

    def converged(self) -> None:
        self.synced = True

    @rule(chunked=st.booleans())
    def run(self, chunked: bool) -> None:
        self.log.append(f"run chunked={chunked}")
        if self.attempt(chunked):
            self.converged()

    @rule(chunked=st.booleans())
    def run_crashing(self, chunked: bool) -> None:
        self.log.append(f"run crashing chunked={chunked}")
        self.crash_after = 1
        try:
            if self.attempt(chunked, expect=(Crash,)):
                self.converged()  # nothing to apply: no request, no crash
        finally:
            self.crash_after = None

    @rule(chunked=st.booleans(), at=st.integers(0, 2))
    def run_losing_a_reply(self, chunked: bool, at: int) -> None:
        self.log.append(f"run losing reply {at} chunked={chunked}")
        if at == 0:
            self.fake.drop_next_response()
        else:
            self.drop_at = at
        try:
            # A lost reply of a request Kanidm refused cannot be told from one never sent:
            # the run stops with NotAppliedError, and the next run must converge.
            if self.attempt(chunked, expect=(NotAppliedError, ApplyOutcomeUnknownError)):
                self.converged()
        finally:
            self.drop_at = None
            # A drop that no request consumed must not leak into the next rule.
            self.fake._drops.clear()

    @rule()
    def force_refresh(self) -> None:
        self.log.append("force refresh")
        self.admin.force_refresh("hr")
        self.synced = False

    @rule()
    def delete_record(self) -> None:
        self.log.append("delete record")
        (self.tmp / "applied.json").unlink(missing_ok=True)

    @rule()
    def delete_snapshot_store(self) -> None:
        self.log.append("delete snapshot store")
        (self.tmp / "snapshot.json").unlink(missing_ok=True)

    @rule()
    def restart_process(self) -> None:
        self.log.append("restart")
        self.restart()

    @invariant()
    def converged_runs_leave_the_source_cookie(self) -> None:
        """After a converged run Kanidm holds the source's cookie, never a chunk cookie."""
        if self.synced:
            assert self.last_cookie == source_cookie(self.fake.cookie("hr"))
            assert not (self.last_cookie or b"").startswith(CHUNK_COOKIE_PREFIX)


ConvergenceMachine.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


TestConvergence = ConvergenceMachine.TestCase
TestConvergence.__doc__ = "The runner converges whatever happens between and during runs."
