"""The runner end to end, against the double and a real kanidmd (the ``kanidm_target`` fixture).

First sync, deltas, deletions, re-created entries, a conflict with a native entry and its
diagnosis, a chunked refresh, finalise and terminate: each through the public ``Client`` and
``Runner``, with what the server then holds read back through the target. The ``[kanidmd]``
variants run when a real kanidmd is given (``pytest --kanidmd PATH``).
"""

from __future__ import annotations

import base64
import pathlib
import uuid
from collections.abc import Iterator, Sequence

import attrs
import pytest

from kanidm_sync import (
    ChangeSet,
    Client,
    Entry,
    Group,
    Guards,
    Mail,
    Person,
    PosixAccount,
    PosixGroup,
    RefreshState,
    Runner,
    UniquenessError,
    _client_core,
)
from kanidm_sync._proto._encode_body import STREAM_MIN_ENTRIES, ChangeSetBody, changeset_body
from kanidm_sync.adapters import FullImage, SourceBatch
from kanidm_sync.testing import KanidmTarget, ProvisionedSyncAccount


class Directory:
    """A source: a full image of persons and groups, a new cookie whenever it changes."""

    def __init__(self) -> None:
        self.ns = uuid.uuid4()  # fresh ids per test: a real server keeps recycled ids
        self.entries: dict[str, Entry] = {}
        self.generation = 0
        self._last: tuple[Entry, ...] | None = None

    def id_of(self, key: str) -> uuid.UUID:
        return uuid.uuid5(self.ns, key)

    def person(self, name: str, *, uid: int | None = None, key: str | None = None) -> Person:
        key = key or name
        entry = Person(
            id=self.id_of(key),
            external_id=f"uid={name},ou=people,dc=example,dc=org",
            name=name,
            displayname=name.title(),
            mail=[Mail(f"{name}@example.org", primary=True)],
            posix=PosixAccount(gidnumber=uid) if uid is not None else None,
        )
        self.entries[key] = entry
        return entry

    def group(self, name: str, members: Sequence[str], *, gid: int | None = None) -> Group:
        entry = Group(
            id=self.id_of(name),
            external_id=f"cn={name},ou=groups,dc=example,dc=org",
            name=name,
            member=[f"uid={m},ou=people,dc=example,dc=org" for m in members],
            posix=PosixGroup(gidnumber=gid) if gid is not None else None,
        )
        self.entries[name] = entry
        return entry

    def fetch(self, state: object) -> SourceBatch:
        now = tuple(self.entries.values())
        if now != self._last:
            self.generation += 1
            self._last = now
        return FullImage(entries=now, cookie=b"dir-%d" % self.generation)


@pytest.fixture
def account(kanidm_target: KanidmTarget) -> ProvisionedSyncAccount:
    return kanidm_target.provision_sync_account("e2e_sync")


@pytest.fixture
def sync(kanidm_target: KanidmTarget, account: ProvisionedSyncAccount) -> Iterator[Client]:
    with Client(account.url, token=account.token, **kanidm_target.client_options()) as client:
        yield client


def runner(sync: Client, source: Directory, tmp_path: pathlib.Path, **kwargs: object) -> Runner:
    return Runner(sync, source, state_path=tmp_path / "record.json", **kwargs)  # type: ignore[arg-type]


def names_owned(target: KanidmTarget, source: Directory) -> dict[str, str]:
    """Name -> state of every entry the source ever had, as the server holds them."""
    out = {}
    for key in source.entries:
        found = target.entry(source.id_of(key))
        if found is not None:
            out[found.name or key] = found.state
    return out


def test_first_sync_then_deltas(
    kanidm_target: KanidmTarget,
    account: ProvisionedSyncAccount,
    sync: Client,
    tmp_path: pathlib.Path,
) -> None:
    """A first sync creates everything; a change sends only the changed entry."""
    d = Directory()
    d.person("alice", uid=30001)
    d.person("bob")
    d.group("staff", ["alice", "bob"], gid=30100)
    run = runner(sync, d, tmp_path)
    first = run.run_once()
    assert first.ok
    assert first.counts.get("sent") == 3
    alice = kanidm_target.entry("alice")
    assert alice is not None
    assert (30001,) == alice.get("gidnumber")
    assert ("alice@example.org",) == alice.get("mail")
    staff = kanidm_target.entry("staff")
    assert staff is not None
    assert {str(d.id_of("alice")), str(d.id_of("bob"))} == set(staff.get("member"))
    assert (30100,) == staff.get("gidnumber")

    d.entries["bob"] = Person(
        id=d.id_of("bob"),
        external_id="uid=bob,ou=people,dc=example,dc=org",
        name="bob",
        displayname="Robert",
        mail=[Mail("bob@example.org", primary=True)],
    )
    second = run.run_once()
    assert second.ok
    assert second.counts.get("update") == 1
    assert second.counts.get("sent") == 1
    bob = kanidm_target.entry("bob")
    assert bob is not None
    assert ("Robert",) == bob.get("displayname")
    with kanidm_target.http(account.token) as http:
        # The source's cookie, carrying the count of entries the account holds.
        cookie = base64.urlsafe_b64encode(b"kanidm-sync-held:v1:3:dir-2").rstrip(b"=").decode()
        assert {"Active": {"cookie": cookie}} == http.get("/scim/v1/Sync").json()


def test_deletion_and_membership(
    kanidm_target: KanidmTarget, sync: Client, tmp_path: pathlib.Path
) -> None:
    """An entry gone from the source is deleted, and leaves its groups."""
    d = Directory()
    d.person("carol")
    d.person("dave")
    d.group("ops", ["carol", "dave"])
    run = runner(sync, d, tmp_path)
    assert run.run_once().ok
    del d.entries["dave"]
    d.group("ops", ["carol"])
    report = run.run_once()
    assert report.ok
    assert report.counts.get("delete") == 1
    dave = kanidm_target.entry(d.id_of("dave"))
    assert dave is not None
    assert "recycled" == dave.state
    ops = kanidm_target.entry("ops")
    assert ops is not None
    assert (str(d.id_of("carol")),) == ops.get("member")


def test_recreated_entry_reusing_name_and_external_id(
    kanidm_target: KanidmTarget, sync: Client, tmp_path: pathlib.Path
) -> None:
    """Deleted and re-created at the source (new id, same name and DN): the runner converges."""
    d = Directory()
    d.person("erin", uid=30201)
    run = runner(sync, d, tmp_path)
    assert run.run_once().ok
    old = d.id_of("erin")
    del d.entries["erin"]
    d.person("erin", uid=30201, key="erin-2")
    report = run.run_once()
    assert report.ok, report.error
    erin = kanidm_target.entry("erin")
    assert erin is not None
    assert d.id_of("erin-2") == erin.uuid
    gone = kanidm_target.entry(old)
    assert gone is not None
    assert "recycled" == gone.state


def test_swap_of_names_converges(
    kanidm_target: KanidmTarget, sync: Client, tmp_path: pathlib.Path
) -> None:
    """Two entries trading their names (and mails) at the source reach Kanidm."""
    d = Directory()
    d.person("frank", key="a")
    d.person("grace", key="b")
    run = runner(sync, d, tmp_path)
    assert run.run_once().ok
    d.person("grace", key="a")
    d.person("frank", key="b")
    report = run.run_once()
    assert report.ok, report.error
    frank = kanidm_target.entry("frank")
    grace = kanidm_target.entry("grace")
    assert frank is not None
    assert grace is not None
    assert d.id_of("b") == frank.uuid
    assert d.id_of("a") == grace.uuid
    assert ("frank@example.org",) == frank.get("mail")


def test_conflict_with_native_entry_is_diagnosed_and_rolled_back(
    kanidm_target: KanidmTarget, sync: Client, tmp_path: pathlib.Path
) -> None:
    """A name held by a native person: 409, nothing applied, the diagnosis names the entry."""
    kanidm_target.add_person("heidi", displayname="Native Heidi")
    d = Directory()
    d.person("ivan")
    d.person("heidi")
    run = runner(sync, d, tmp_path)
    before = kanidm_target.fingerprint()
    with pytest.raises(UniquenessError) as caught:
        run.run_once()
    assert "name" in caught.value.conflicting_attributes
    assert before == kanidm_target.fingerprint()
    assert kanidm_target.entry("ivan") is None
    report = run.last_report
    assert report is not None
    assert report.diagnosis is not None
    assert d.id_of("heidi") in [s.source_id for s in report.diagnosis.suspects]
    assert "heidi" in report.diagnosis.rules_toml
    assert RefreshState() == sync.get_state()


def test_chunked_refresh(kanidm_target: KanidmTarget, sync: Client, tmp_path: pathlib.Path) -> None:
    """A first sync split into several requests ends with every entry and the real cookie."""
    d = Directory()
    for i in range(24):
        d.person(f"chunk{i:02d}")
    d.group("chunked", [f"chunk{i:02d}" for i in range(24)])
    run = runner(sync, d, tmp_path, max_request_bytes=4096)
    report = run.run_once()
    assert report.ok, report.error
    assert report.requests_sent > 2
    group = kanidm_target.entry("chunked")
    assert group is not None
    assert 24 == len(group.get("member"))
    assert all(kanidm_target.entry(f"chunk{i:02d}") is not None for i in range(24))


def test_a_large_request_is_streamed(
    kanidm_target: KanidmTarget,
    sync: Client,
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A request of many entries goes out in pieces with its Content-Length, and is applied."""
    bodies: list[object] = []
    real = changeset_body

    def noting(changeset: ChangeSet) -> object:
        body = real(changeset)
        bodies.append(body)
        return body

    monkeypatch.setattr(_client_core, "changeset_body", noting)
    d = Directory()
    for i in range(STREAM_MIN_ENTRIES + 50):
        d.person(f"bulk{i:04d}")
    d.group("bulk", [f"bulk{i:04d}" for i in range(0, STREAM_MIN_ENTRIES, 7)])
    report = runner(sync, d, tmp_path).run_once()
    assert report.ok, report.error
    assert [type(b) for b in bodies] == [ChangeSetBody]
    group = kanidm_target.entry("bulk")
    assert group is not None
    assert len(range(0, STREAM_MIN_ENTRIES, 7)) == len(group.get("member"))
    assert kanidm_target.entry(f"bulk{STREAM_MIN_ENTRIES + 49:04d}") is not None


def test_a_retention_list_alone_in_the_final_request(
    kanidm_target: KanidmTarget, sync: Client, tmp_path: pathlib.Path
) -> None:
    """The final request may carry the RetainOnly list and no entry; the server accepts it.

    Over an unknown base, with a big group that does not fit beside the list.
    """
    d = Directory()
    names = [f"tail{i:02d}" for i in range(39)]
    for name in names:
        d.person(name)
    d.group("tailgroup", names)
    assert runner(sync, d, tmp_path, max_request_bytes=4096).run_once().ok
    (tmp_path / "record.json").unlink()  # the base is unknown: RetainOnly of every id
    first = d.entries["tail00"]
    assert isinstance(first, Person)
    d.entries["tail00"] = attrs.evolve(first, displayname="Changed")
    again = runner(sync, d, tmp_path, max_request_bytes=4096)
    plan = again.plan()
    assert [] == list(plan.requests[-1].entries)
    assert "RetainOnly" == type(plan.requests[-1].retain).__name__
    report = again.apply(plan)
    assert report.ok, report.error
    changed = kanidm_target.entry("tail00")
    assert changed is not None
    assert ("Changed",) == changed.get("displayname")
    group = kanidm_target.entry("tailgroup")
    assert group is not None
    assert 39 == len(group.get("member"))


def test_guard_refuses_mass_deletion(
    kanidm_target: KanidmTarget, sync: Client, tmp_path: pathlib.Path
) -> None:
    """A source that shrinks past the guard deletes nothing on the server."""
    d = Directory()
    for i in range(6):
        d.person(f"guard{i}")
    run = runner(sync, d, tmp_path, guards=Guards(max_delete_count=2))
    assert run.run_once().ok
    before = kanidm_target.fingerprint()
    for i in range(5):
        del d.entries[f"guard{i}"]
    with pytest.raises(Exception, match="delet"):
        run.run_once()
    assert before == kanidm_target.fingerprint()


@pytest.mark.parametrize("action", ["finalise", "terminate"])
def test_finalise_and_terminate(
    kanidm_target: KanidmTarget,
    account: ProvisionedSyncAccount,
    sync: Client,
    tmp_path: pathlib.Path,
    action: str,
) -> None:
    """Finalise keeps the entries as Kanidm's own; terminate deletes them."""
    d = Directory()
    d.person(f"{action[:3]}user")
    d.group(f"{action[:3]}group", [f"{action[:3]}user"])
    assert runner(sync, d, tmp_path).run_once().ok
    with kanidm_target.admin_client() as admin:
        getattr(admin, action)(account.name)
        assert admin.get_sync_account(account.name) is None
    user = kanidm_target.entry(d.id_of(f"{action[:3]}user"))
    assert user is not None
    if action == "finalise":
        assert "live" == user.state
        assert "sync_object" not in user.classes
        assert () == user.get("sync_parent_uuid")
    else:
        assert "recycled" == user.state
