"""SnapshotAdapter kept alive across fetches: the same batches as a new adapter each time.

A warm adapter keeps its rows from one listing to the next, finds them by position when
the source lists in the same order, and diffs only the rows listed anew when the store
holds exactly its last listing (issue 15). These tests pin that none of it shows: every
batch equals the one a new adapter (a new process, reading its own copy of the store)
returns for the same source and the same Kanidm state.
"""

from __future__ import annotations

import contextlib
import pathlib
import random
import sqlite3
import uuid
from collections.abc import Iterator

import pytest

from kanidm_sync import REFRESH, ActiveState, Entry, Group, Mail, Person, SourceError, SyncState
from kanidm_sync.adapters import Delta, FullImage, SnapshotAdapter, SourceBatch


def person(n: int, displayname: str | None = None, *, uid: int | None = None) -> Person:
    """Person ``n``; ``uid`` gives it another UUID (the same person re-created)."""
    return Person(
        id=uuid.UUID(int=0x1000 + (n if uid is None else uid)),
        external_id=f"uid=u{n},ou=people,dc=example,dc=org",
        name=f"u{n}",
        displayname=displayname or f"User {n}",
        mail=[Mail(f"u{n}@example.org")],
    )


def group(n: int, members: list[int]) -> Group:
    return Group(
        id=uuid.UUID(int=0x900000 + n),
        external_id=f"cn=g{n},ou=groups,dc=example,dc=org",
        name=f"g{n}",
        member=[f"uid=u{m},ou=people,dc=example,dc=org" for m in members],
    )


class Source:
    """A list source that builds new (equal) objects on each listing, and can fail."""

    def __init__(self, entries: list[Entry]) -> None:
        self.entries = entries
        self.fail_after: int | None = None

    def snapshot(self) -> Iterator[Entry]:
        for n, entry in enumerate(self.entries):
            if n == self.fail_after:
                raise ConnectionResetError("backend went away")
            # A new object each time, as a real source builds it: equal, not identical.
            yield entry if n % 3 == 0 else _copy(entry)


def _copy(entry: Entry) -> Entry:
    if isinstance(entry, Person):
        return Person(
            id=uuid.UUID(entry.id.hex),
            external_id=entry.external_id,
            name=entry.name,
            displayname=entry.displayname,
            mail=list(entry.mail),
        )
    assert isinstance(entry, Group)
    return Group(
        id=uuid.UUID(entry.id.hex),
        external_id=entry.external_id,
        name=entry.name,
        member=list(entry.member),
    )


def _cold_fetch(source: Source, path: pathlib.Path, state: SyncState) -> SourceBatch:
    return SnapshotAdapter(source, path).fetch(state)


def _mutate(rng: random.Random, entries: list[Entry], serial: list[int], gone: list[Entry]) -> None:
    """One random change of the directory (``gone``: the entries deleted so far)."""
    persons = [i for i, e in enumerate(entries) if isinstance(e, Person)]
    move = rng.randrange(10)
    if move == 0 and persons:  # rename
        i = rng.choice(persons)
        old = entries[i]
        assert isinstance(old, Person)
        serial[0] += 1
        n = int(old.name[1:])
        entries[i] = person(n, f"Renamed {serial[0]}", uid=old.id.int - 0x1000)
    elif move == 1:  # a newcomer, at a random place
        serial[0] += 1
        entries.insert(rng.randrange(len(entries) + 1), person(1000 + serial[0]))
    elif move == 2 and entries:  # gone
        gone.append(entries.pop(rng.randrange(len(entries))))
    elif move == 9 and gone:  # back, as it was (unless its id is listed again already)
        back = gone.pop(rng.randrange(len(gone)))
        if all(e.id != back.id for e in entries):
            entries.insert(rng.randrange(len(entries) + 1), back)
    elif move == 3 and persons:  # re-created under a new UUID (a group names it)
        i = rng.choice(persons)
        old = entries[i]
        assert isinstance(old, Person)
        serial[0] += 1
        entries[i] = person(int(old.name[1:]), uid=500_000 + serial[0])
    elif move == 4:  # another order
        rng.shuffle(entries)
    elif move == 5 and len(entries) > 2:  # a few swapped
        i, j = rng.sample(range(len(entries)), 2)
        entries[i], entries[j] = entries[j], entries[i]
    elif move == 6 and persons:  # changed, then changed back (equal to what Kanidm holds)
        i = rng.choice(persons)
        entries[i] = _copy(entries[i])
    elif move == 7:  # a group's members change
        names = [int(e.name[1:]) for e in entries if isinstance(e, Person)]
        serial[0] += 1
        g = group(serial[0] % 3, rng.sample(names, min(3, len(names))))
        entries[:] = [e for e in entries if e.id != g.id] + [g]
    # move 8: nothing changed


def _apply(kanidm: dict[str, SyncState], batch: SourceBatch, outcome: str) -> None:
    assert isinstance(batch, (FullImage, Delta))
    if outcome == "c":  # committed
        kanidm["state"] = ActiveState(batch.cookie)
    elif outcome == "p":  # a split batch applied in part
        kanidm["state"] = ActiveState(batch.cookie + b"#1")
    elif outcome == "r":  # Kanidm asks for a refresh
        kanidm["state"] = REFRESH
    # "f": refused, Kanidm keeps its cookie


@pytest.mark.parametrize("seed", range(8))
def test_a_warm_adapter_returns_what_a_new_one_returns(tmp_path: pathlib.Path, seed: int) -> None:
    """Random churn, reorders, failed and partial applies, crashes, a failing source."""
    rng = random.Random(seed)
    entries: list[Entry] = [*(person(n) for n in range(12)), group(0, [1, 2, 3])]
    warm_source, cold_source = Source(entries), Source(entries)
    warm_path, cold_path = tmp_path / "warm.db", tmp_path / "cold.db"
    warm = SnapshotAdapter(warm_source, warm_path)
    kanidm: dict[str, SyncState] = {"state": REFRESH}
    serial = [0]
    gone: list[Entry] = []
    fetches = 0
    for _ in range(40):
        for _ in range(rng.randrange(3)):
            _mutate(rng, entries, serial, gone)
        step = rng.randrange(12)
        if step == 0:
            # The source fails part-way: both adapters say so, and neither forgets a change.
            warm_source.fail_after = cold_source.fail_after = rng.randrange(len(entries) + 1)
            if warm_source.fail_after < len(entries):
                with pytest.raises(SourceError, match="failed after"):
                    warm.fetch(kanidm["state"])
                with pytest.raises(SourceError, match="failed after"):
                    _cold_fetch(cold_source, cold_path, kanidm["state"])
            warm_source.fail_after = cold_source.fail_after = None
            continue
        if step == 1:
            warm = SnapshotAdapter(warm_source, warm_path)  # the process restarted
        state = kanidm["state"]
        batch = warm.fetch(state)
        expected = _cold_fetch(cold_source, cold_path, state)
        assert expected == batch
        assert [type(e) for e in expected.entries] == [type(e) for e in batch.entries]
        fetches += 1
        _apply(kanidm, batch, rng.choice("ccccccfpr"))
    assert fetches > 20


def test_a_reordered_listing_is_not_churn(tmp_path: pathlib.Path) -> None:
    """The rows are found by position, else by id: a new order alone changes nothing."""
    entries: list[Entry] = [person(n) for n in range(6)]
    source = Source(entries)
    adapter = SnapshotAdapter(source, tmp_path / "s.db")
    first = adapter.fetch(REFRESH)
    entries.reverse()
    entries.insert(2, person(6))
    batch = adapter.fetch(ActiveState(first.cookie))
    assert isinstance(batch, Delta)
    assert (person(6),) == batch.entries
    assert () == batch.deleted
    assert 7 == batch.total


@pytest.mark.parametrize(
    "listing",
    [[2, 2], [1, 1], [2, 1, 2], [1, 2, 1], [3, 3], [2, 3, 3]],
    ids=["at-its-place", "by-id", "after-a-move", "after-its-place", "new-twice", "new-later"],
)
def test_an_id_listed_twice_on_a_warm_adapter(tmp_path: pathlib.Path, listing: list[int]) -> None:
    """Found at its old position or by its id, new or cached: an id twice is refused."""
    entries: list[Entry] = [person(1), person(2)]
    source = Source(entries)
    adapter = SnapshotAdapter(source, tmp_path / "s.db")
    first = adapter.fetch(REFRESH)
    adapter.fetch(ActiveState(first.cookie))
    source.entries = [person(n) for n in listing]
    with pytest.raises(SourceError, match=r"lists entry id .* twice: external id 'uid=u"):
        adapter.fetch(ActiveState(first.cookie))
    # The adapter is not confused by the refused listing.
    source.entries = [person(2), person(1, "Changed")]
    batch = adapter.fetch(ActiveState(first.cookie))
    assert isinstance(batch, Delta)
    assert (person(1, "Changed"),) == batch.entries


def test_an_entry_deleted_then_listed_again_is_sent(tmp_path: pathlib.Path) -> None:
    """Deleted (and committed), then back as it was: an addition, not an unchanged row."""
    entries: list[Entry] = [person(n) for n in range(4)]
    source = Source(entries)
    adapter = SnapshotAdapter(source, tmp_path / "s.db")
    state = ActiveState(adapter.fetch(REFRESH).cookie)
    removed = entries.pop(2)
    batch = adapter.fetch(state)
    assert isinstance(batch, Delta)
    assert (removed.id,) == batch.deleted
    state = ActiveState(batch.cookie)
    entries.insert(2, removed)
    batch = adapter.fetch(state)
    assert isinstance(batch, Delta)
    assert (removed,) == batch.entries


def test_a_store_changed_behind_the_adapter_is_believed(tmp_path: pathlib.Path) -> None:
    """A store whose rows changed since this adapter wrote it is read and diffed in full."""
    path = tmp_path / "s.db"
    entries: list[Entry] = [person(n) for n in range(4)]
    source = Source(entries)
    adapter = SnapshotAdapter(source, path)
    state = ActiveState(adapter.fetch(REFRESH).cookie)
    state = ActiveState(adapter.fetch(state).cookie)  # promoted: the store is the listing
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("UPDATE committed SET digest = 'edited' WHERE id = ?", (person(1).id.hex,))
        conn.execute("UPDATE meta SET value = 'by hand' WHERE key = 'written'")
    batch = adapter.fetch(state)
    assert isinstance(batch, Delta)
    assert (person(1),) == batch.entries


def test_a_failed_listing_does_not_hide_its_changes(tmp_path: pathlib.Path) -> None:
    """A change listed before the source failed is still sent by the next fetch."""
    entries: list[Entry] = [person(n) for n in range(4)]
    source = Source(entries)
    adapter = SnapshotAdapter(source, tmp_path / "s.db")
    state = ActiveState(adapter.fetch(REFRESH).cookie)
    state = ActiveState(adapter.fetch(state).cookie)  # promoted: warm, nothing changed
    entries[0] = person(0, "Changed")
    entries.insert(1, person(9))
    source.fail_after = 3
    with pytest.raises(SourceError, match=r"failed after 3 entries \(the last one: .*'uid=u1,"):
        adapter.fetch(state)
    source.fail_after = None
    del entries[1]  # the newcomer is gone again before the next listing
    batch = adapter.fetch(state)
    assert isinstance(batch, Delta)
    assert (person(0, "Changed"),) == batch.entries
    assert () == batch.deleted


def test_a_store_another_process_wrote_is_diffed_in_full(tmp_path: pathlib.Path) -> None:
    """Another adapter on the same store in between: the warm one reads the store again."""
    path = tmp_path / "s.db"
    entries: list[Entry] = [person(n) for n in range(4)]
    source = Source(entries)
    adapter = SnapshotAdapter(source, path)
    state = ActiveState(adapter.fetch(REFRESH).cookie)
    state = ActiveState(adapter.fetch(state).cookie)
    entries[1] = person(1, "By the other")
    state = ActiveState(SnapshotAdapter(source, path).fetch(state).cookie)  # committed
    entries[2] = person(2, "Changed")
    batch = adapter.fetch(state)
    assert isinstance(batch, Delta)
    assert (person(2, "Changed"),) == batch.entries
    assert not isinstance(batch, FullImage)
