"""SnapshotAdapter: full images, deltas, and convergence after crashes."""

from __future__ import annotations

import contextlib
import logging
import pathlib
import re
import sqlite3
import uuid
from collections.abc import Iterable, Iterator

import pytest

from kanidm_sync import (
    REFRESH,
    ActiveState,
    Entry,
    Group,
    Mail,
    Person,
    SourceError,
    SyncState,
)
from kanidm_sync.adapters import (
    Delta,
    FullImage,
    SnapshotAdapter,
    SnapshotSource,
    SourceAdapter,
    SourceBatch,
)

DOCS = pathlib.Path(__file__).parents[2] / "docs"


def person(n: int, displayname: str | None = None, password: str | None = None) -> Person:
    return Person(
        id=uuid.UUID(int=0x1000 + n),
        external_id=f"uid=u{n},ou=people,dc=example,dc=org",
        name=f"u{n}",
        displayname=displayname or f"User {n}",
        mail=[Mail(f"u{n}@example.org")],
        password_import=password,
    )


class ListSource:
    """A snapshot source over a mutable list, as a test can change it."""

    def __init__(self, entries: Iterable[Entry]) -> None:
        self.entries = list(entries)

    def snapshot(self) -> list[Entry]:
        return list(self.entries)


class FakeKanidm:
    """The bare minimum of Kanidm's sync semantics: entries by id and a cookie."""

    def __init__(self) -> None:
        self.entries: dict[uuid.UUID, Entry] = {}
        self.state: SyncState = REFRESH

    def apply(self, batch: SourceBatch) -> None:
        if isinstance(batch, FullImage):
            self.entries = {e.id: e for e in batch.entries}
        else:
            assert isinstance(batch, Delta)
            self.entries.update({e.id: e for e in batch.entries})
            for entry_id in batch.deleted:
                self.entries.pop(entry_id, None)
        self.state = ActiveState(batch.cookie)


@pytest.fixture
def store(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "snapshot.json"


def test_protocols() -> None:
    """A list source is a SnapshotSource and the adapter is a SourceAdapter."""
    adapter = SnapshotAdapter(ListSource([]), "unused.json")
    assert isinstance(ListSource([]), SnapshotSource)
    assert isinstance(adapter, SourceAdapter)


def test_refresh_gives_full_image(store: pathlib.Path) -> None:
    """In Refresh the adapter sends every entry and writes the store."""
    source = ListSource([person(1), person(2)])
    batch = SnapshotAdapter(source, store).fetch(REFRESH)
    assert isinstance(batch, FullImage)
    assert [person(1), person(2)] == list(batch.entries)
    assert batch.cookie.startswith(b"kanidm-sync:snapshot:1:g1:")
    assert store.exists()


def test_missing_store_gives_full_image(store: pathlib.Path) -> None:
    """Active Kanidm but no store: a full image, not a delta against nothing."""
    batch = SnapshotAdapter(ListSource([person(1)]), store).fetch(ActiveState(b"foreign"))
    assert isinstance(batch, FullImage)
    assert 1 == len(batch.entries)


@pytest.mark.parametrize(
    "content",
    [
        b"not json at all {",
        b"[]",
        b'{"format": "something else", "version": 1}',
        b'{"format": "kanidm-sync snapshot store", "version": 99, "fingerprint": ""}',
        b'{"format": "kanidm-sync snapshot store", "version": 1, "fingerprint": "",'
        b' "committed": {"cookie": 5, "generation": 1, "entries": {}}, "pending": null}',
        b'{"format": "kanidm-sync snapshot store", "version": 1, "fingerprint": "",'
        b' "committed": null, "pending": {"cookie": "eA==", "generation": 1,'
        b' "base": "eA==", "changed": {}, "deleted": []}}',
        b"\xff\xfe\x00garbage",
        # An entry key altered by hand (Kanidm holds the committed cookie "x"): once a
        # ValueError from uuid.UUID on every run until the file was deleted.
        b'{"format": "kanidm-sync snapshot store", "version": 1, "fingerprint": "",'
        b' "committed": {"cookie": "eA==", "generation": 1, "entries": {"not-a-uuid": "d"}},'
        b' "pending": null}',
        b'{"format": "kanidm-sync snapshot store", "version": 1, "fingerprint": "",'
        b' "committed": {"cookie": "eA==", "generation": 1, "entries": {}}, "pending":'
        b' {"cookie": "eQ==", "generation": 2, "base": "eA==", "changed": {},'
        b' "deleted": ["zz"]}}',
    ],
    ids=[
        "syntax",
        "array",
        "format",
        "version",
        "cookie-type",
        "dangling-base",
        "binary",
        "altered-key",
        "altered-deleted",
    ],
)
def test_corrupt_store_gives_full_image(
    store: pathlib.Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """A corrupt store is logged as a warning and answered with a full image, never a crash."""
    adapter = SnapshotAdapter(ListSource([person(1)]), store)
    first = adapter.fetch(REFRESH)
    store.write_bytes(content)
    held = b"x" if b'"eA=="' in content else first.cookie
    with caplog.at_level(logging.WARNING, logger="kanidm_sync"):
        batch = adapter.fetch(ActiveState(held))
    assert isinstance(batch, FullImage)
    assert any("snapshot store" in r.getMessage() for r in caplog.records)
    # The store was rewritten and works again.
    assert isinstance(adapter.fetch(ActiveState(batch.cookie)), Delta)


def test_mismatched_cookie_gives_full_image(store: pathlib.Path) -> None:
    """A cookie the store never wrote (another tool, an old store) means a full image."""
    adapter = SnapshotAdapter(ListSource([person(1)]), store)
    adapter.fetch(REFRESH)
    assert isinstance(adapter.fetch(ActiveState(b"kanidm-sync:snapshot:1:g7:other")), FullImage)


def test_fingerprint_change_gives_full_image(store: pathlib.Path) -> None:
    """A store written under other rules is not trusted."""
    source = ListSource([person(1)])
    first = SnapshotAdapter(source, store, fingerprint="rules-a").fetch(REFRESH)
    same = SnapshotAdapter(source, store, fingerprint="rules-a").fetch(ActiveState(first.cookie))
    other = SnapshotAdapter(source, store, fingerprint="rules-b").fetch(ActiveState(first.cookie))
    assert isinstance(same, Delta)
    assert isinstance(other, FullImage)


def test_unchanged_source_gives_empty_delta_with_same_cookie(store: pathlib.Path) -> None:
    """Nothing changed: an empty delta that keeps Kanidm's cookie."""
    adapter = SnapshotAdapter(ListSource([person(1), person(2)]), store)
    first = adapter.fetch(REFRESH)
    batch = adapter.fetch(ActiveState(first.cookie))
    assert Delta(entries=(), deleted=(), cookie=first.cookie) == batch


def test_delta_carries_only_churn(store: pathlib.Path) -> None:
    """One change, one addition, one deletion: the delta holds exactly those."""
    source = ListSource([person(n) for n in range(10)])
    adapter = SnapshotAdapter(source, store)
    first = adapter.fetch(REFRESH)
    source.entries[3] = person(3, displayname="Renamed")
    source.entries.append(person(10))
    del source.entries[5]
    batch = adapter.fetch(ActiveState(first.cookie))
    assert isinstance(batch, Delta)
    assert {person(3, displayname="Renamed"), person(10)} == set(batch.entries)
    assert (person(5).id,) == batch.deleted
    assert batch.present is None
    assert first.cookie != batch.cookie
    assert batch.cookie.startswith(b"kanidm-sync:snapshot:1:g2:")


def test_secret_change_is_churn_and_not_stored(store: pathlib.Path) -> None:
    """A new password hash is a change, and the store never holds the hash itself."""
    source = ListSource([person(1, password="{SSHA}b2xkLWhhc2gtc2FsdA==")])
    adapter = SnapshotAdapter(source, store)
    first = adapter.fetch(REFRESH)
    source.entries = [person(1, password="{SSHA}bmV3LWhhc2gtc2FsdA==")]
    batch = adapter.fetch(ActiveState(first.cookie))
    assert isinstance(batch, Delta)
    assert 1 == len(batch.entries)
    data = store.read_bytes()
    assert b"SSHA" not in data
    assert b"bmV3" not in data


def test_crash_after_apply_before_recording_converges(store: pathlib.Path) -> None:
    """Kanidm holds the pending cookie: promoted, and the next delta holds only new churn."""
    source = ListSource([person(1), person(2)])
    kanidm = FakeKanidm()
    adapter = SnapshotAdapter(source, store)
    kanidm.apply(adapter.fetch(kanidm.state))
    source.entries[0] = person(1, displayname="Changed")
    pending = adapter.fetch(kanidm.state)
    kanidm.apply(pending)  # committed; the process dies before anything else happens
    restarted = SnapshotAdapter(source, store)
    assert Delta(entries=(), cookie=pending.cookie) == restarted.fetch(kanidm.state)
    source.entries.append(person(3))
    batch = restarted.fetch(kanidm.state)
    assert isinstance(batch, Delta)
    assert [person(3)] == list(batch.entries)


def test_failed_apply_resends_its_changes(store: pathlib.Path) -> None:
    """Kanidm refused the last delta: the next one carries its changes again, plus new ones."""
    source = ListSource([person(1), person(2)])
    kanidm = FakeKanidm()
    adapter = SnapshotAdapter(source, store)
    kanidm.apply(adapter.fetch(kanidm.state))
    source.entries[0] = person(1, displayname="Changed")
    adapter.fetch(kanidm.state)  # not applied: Kanidm rolled back
    source.entries.append(person(3))
    batch = adapter.fetch(kanidm.state)
    assert isinstance(batch, Delta)
    assert {person(1, displayname="Changed"), person(3)} == set(batch.entries)


@pytest.mark.parametrize("outcomes", ["ccc", "cfc", "ffc", "cxc", "xxc", "xfc", "fxc"])
def test_any_crash_sequence_converges(store: pathlib.Path, outcomes: str) -> None:
    """Whatever each apply did (c=commit, f=fail, x=commit then crash), Kanidm converges."""
    source = ListSource([person(n) for n in range(5)])
    kanidm = FakeKanidm()
    adapter = SnapshotAdapter(source, store)
    for step, outcome in enumerate(outcomes):
        source.entries[step % 5] = person(step % 5, displayname=f"Step {step}")
        source.entries.append(person(100 + step))
        del source.entries[0]
        batch = adapter.fetch(kanidm.state)
        if outcome in "cx":
            kanidm.apply(batch)
        if outcome == "x":
            adapter = SnapshotAdapter(source, store)  # a new process
    final = adapter.fetch(kanidm.state)
    kanidm.apply(final)
    assert {e.id: e for e in source.entries} == kanidm.entries


def test_reset_forces_full_image(store: pathlib.Path) -> None:
    """reset() deletes the store, so the next batch is a full image."""
    adapter = SnapshotAdapter(ListSource([person(1)]), store)
    first = adapter.fetch(REFRESH)
    adapter.reset()
    assert not store.exists()
    assert isinstance(adapter.fetch(ActiveState(first.cookie)), FullImage)


def test_duplicate_id_is_a_source_error(store: pathlib.Path) -> None:
    """Two entries with one id: the error names both external ids."""
    twin = Group(id=person(1).id, external_id="cn=twin", name="twin")
    with pytest.raises(SourceError, match=r"twice.*uid=u1.*cn=twin") as info:
        SnapshotAdapter(ListSource([person(1), twin]), store).fetch(REFRESH)
    assert 1 == str(info.value).count(str(twin.id))  # the UUID once, then the external ids


@pytest.mark.parametrize(
    ("first", "second"),
    [("same", "same"), ("cached", "equal"), ("changed", "cached"), ("cached", "changed")],
)
def test_duplicate_id_is_a_source_error_on_a_warm_adapter(
    store: pathlib.Path, first: str, second: str
) -> None:
    """An id listed twice is refused whether each listing equals the cached entry or not."""
    cached = person(1)
    source = ListSource([cached])
    adapter = SnapshotAdapter(source, store)
    adapter.fetch(REFRESH)  # the adapter now caches ``cached``'s digest
    versions = {
        "same": cached,
        "cached": cached,
        "equal": person(1),
        "changed": person(1, displayname="Other"),
    }
    source.entries = [person(2), versions[first], versions[second]]
    with pytest.raises(SourceError, match=r"lists entry id .* twice: external id 'uid=u1,"):
        adapter.fetch(REFRESH)


def test_backend_error_becomes_source_error(store: pathlib.Path) -> None:
    """A source raising OSError surfaces as SourceError with its message and the cause kept."""

    class Broken:
        def snapshot(self) -> list[Entry]:
            raise ConnectionResetError("backend went away")

    with pytest.raises(
        SourceError, match="Broken failed after 0 entries: ConnectionResetError: backend went away"
    ) as info:
        SnapshotAdapter(Broken(), store).fetch(REFRESH)
    assert isinstance(info.value.__cause__, ConnectionResetError)


def test_source_error_names_the_missing_key_and_the_last_good_entry(store: pathlib.Path) -> None:
    """A user's generator failing mid-way: the key it missed and where it was (issue 12 #4)."""
    rows = [{"uid": "alice", "name": "alice"}, {"uid": "bob"}]

    class Export:
        def snapshot(self) -> Iterator[Entry]:
            for row in rows:
                yield Person(
                    id=uuid.uuid5(uuid.NAMESPACE_URL, row["uid"]),
                    external_id=row["uid"],
                    name=row["name"],
                    displayname=row["name"],
                )

    with pytest.raises(SourceError) as info:
        SnapshotAdapter(Export(), store).fetch(REFRESH)
    message = str(info.value)
    assert "failed after 1 entries" in message
    assert "KeyError: missing key 'name'" in message
    assert "'alice'" in message  # the last entry listed without fault


def test_a_source_yielding_a_non_entry_is_named(store: pathlib.Path) -> None:
    """A dict instead of a Person: a SourceError saying what was yielded, not AttributeError."""

    class Export:
        def snapshot(self) -> list[object]:
            return [{"name": "alice"}]

    with pytest.raises(SourceError, match="yielded dict after 0 entries, not an entry"):
        SnapshotAdapter(Export(), store).fetch(REFRESH)  # type: ignore[arg-type]


def test_unwritable_store_is_a_source_error(tmp_path: pathlib.Path) -> None:
    """The store's directory cannot be made (a file is in the way): SourceError naming it."""
    (tmp_path / "not-a-dir").write_text("x")
    path = tmp_path / "not-a-dir" / "snapshot.json"
    with pytest.raises(SourceError, match="not-a-dir"):
        SnapshotAdapter(ListSource([person(1)]), path).fetch(REFRESH)


def test_store_format_is_a_versioned_database(store: pathlib.Path) -> None:
    """The store is a SQLite database with a format and a version (see test_snapshot_db)."""
    SnapshotAdapter(ListSource([person(1)]), store).fetch(REFRESH)
    with contextlib.closing(sqlite3.connect(store)) as conn:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        assert 2 == conn.execute("PRAGMA user_version").fetchone()[0]
    assert ("kanidm-sync snapshot store", 2) == (meta["format"], meta["version"])


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_docs_adapter_example(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The custom adapter of docs/adapters.md runs and yields a full image then a delta."""
    monkeypatch.chdir(tmp_path)
    blocks = _python_blocks((DOCS / "adapters.md").read_text(encoding="utf-8"))
    namespace: dict[str, object] = {}
    exec(blocks[0], namespace)  # the adapter part of the page
    adapter = namespace["adapter"]
    assert isinstance(adapter, SnapshotAdapter)
    first = adapter.fetch(REFRESH)
    assert isinstance(first, FullImage)
    assert {"alice", "bob", "staff"} == {e.name for e in first.entries}  # type: ignore[union-attr]
    assert Delta(entries=(), cookie=first.cookie) == adapter.fetch(ActiveState(first.cookie))


def test_partly_applied_delta_resends_everything_it_touched(store: pathlib.Path) -> None:
    """Kanidm holds `<pending>#part`: every entry the pending batch touched is resent."""
    source = ListSource([person(1), person(2)])
    kanidm = FakeKanidm()
    adapter = SnapshotAdapter(source, store)
    kanidm.apply(adapter.fetch(kanidm.state))
    source.entries = [person(1, displayname="Changed"), person(3)]  # 2 deleted, 3 added
    pending = adapter.fetch(kanidm.state)
    assert isinstance(pending, Delta)
    # A runner applied the first part (the change to 1 and the new 3), then crashed.
    kanidm.apply(Delta(entries=pending.entries, cookie=pending.cookie + b"#1"))
    # Meanwhile the source went back to where it was.
    source.entries = [person(1), person(2)]
    batch = adapter.fetch(kanidm.state)
    assert isinstance(batch, Delta)
    assert {person(1), person(2)} == set(batch.entries)
    assert (person(3).id,) == batch.deleted
    kanidm.apply(batch)
    assert {e.id: e for e in source.entries} == kanidm.entries


def test_partly_applied_full_image_gives_full_image(store: pathlib.Path) -> None:
    """A full image applied in part is answered with a full image."""
    adapter = SnapshotAdapter(ListSource([person(1), person(2)]), store)
    first = adapter.fetch(REFRESH)
    assert isinstance(adapter.fetch(ActiveState(first.cookie + b"#1")), FullImage)


def test_missing_store_directory_is_created(tmp_path: pathlib.Path) -> None:
    """A store path in a directory that does not exist yet works: the directory is made."""
    path = tmp_path / "state" / "nested" / "snapshot.json"
    batch = SnapshotAdapter(ListSource([person(1)]), path).fetch(REFRESH)
    assert isinstance(batch, FullImage)
    assert path.is_file()
