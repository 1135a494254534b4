"""Snapshot sources, and the adapter that turns a snapshot into deltas.

Owns: the :class:`SnapshotSource` protocol (a source that can only list everything) and
:class:`SnapshotAdapter`, a :class:`~kanidm_sync.adapters.SourceAdapter` that diffs each
new snapshot against the last one Kanidm applied, kept in a local state store (one SQLite
file, ``_snapshot_db``). Must not: talk to Kanidm, or need any callback from the runner.
Everything it needs to know about what Kanidm holds is in the cookie Kanidm returns.

Theory of operation
-------------------
Every batch this adapter returns carries a cookie of the form
``kanidm-sync:snapshot:1:g<generation>:<digest>``. Each entry has a digest: SHA-256 (cut
to 128 bits) of its compact wire JSON, the canonical encoding. The cookie's digest names
the snapshot's content: for a full image, a SHA-256 of every sorted ``id=digest`` pair;
for a delta, a SHA-256 of the base cookie (which names the base content) and the sorted
changes, so it costs time in proportion to the churn only. The generation counts batches
sent from this store, so a cookie never repeats even when the content does. The runner
applies the batch with that cookie as ``to_state``, so Kanidm's cookie always names the
last snapshot it committed.

The store holds two snapshots, as maps of entry id -> entry digest (never the entries
themselves, and never a secret in clear):

* **committed**: the snapshot Kanidm is known to hold;
* **pending**: the snapshot last returned (as a change list against ``committed``),
  which Kanidm may or may not have committed.

``fetch(state)`` decides from Kanidm's state alone:

1. ``Refresh``; no store; a store that is unreadable, corrupt, of another version or
   written under another ``fingerprint``; or a cookie the store does not know:
   return a :class:`~kanidm_sync.adapters.FullImage`. The store is then rewritten with
   no committed snapshot and the full image as pending.
2. Kanidm's cookie is the **pending** one: the previous apply committed even if the
   process died before it could record that. Promote pending to committed.
3. Kanidm's cookie is the **committed** one: the previous pending (if any) never
   committed; forget it.
4. Kanidm's cookie is the pending one followed by ``#`` and anything
   (:data:`PARTIAL_COOKIE_SEPARATOR`): a runner split the pending batch into several
   applies, chained by intermediate cookies, and stopped part-way. Diff against
   committed, and also resend (or delete again) every entry the pending batch touched,
   since Kanidm may hold either version of them. A partly applied full image is
   answered with a full image.
5. Diff the new snapshot against committed: a :class:`~kanidm_sync.adapters.Delta`
   with the added and changed entries (full content) and the deleted ids, plus every
   unchanged entry naming a new entry's external id (Kanidm resolves external ids when
   the naming entry is applied, so a group naming an entry re-created under a new UUID
   must be sent again). Record it as
   pending (one SQLite transaction, only the rows that changed) *before* returning it.

A crash at any point converges: before the store write nothing changed; after it, Kanidm
either committed the pending cookie (case 2) or did not (case 3). An apply that Kanidm
refused leaves its cookie unchanged, so the next run diffs against committed again and
resends every change, including the refused ones.

When nothing changed the adapter returns an empty ``Delta`` whose cookie is Kanidm's
current cookie, and records no pending snapshot. Applying it is harmless (Kanidm accepts
an ``Active`` -> same ``Active`` apply and changes nothing) but is noise: a runner may
skip an empty delta whose cookie equals its ``from_state`` cookie.

Rules (exclude and remap) are applied by the runner *after* ``fetch``, so a change of
rules does not show as churn in the snapshot. Pass ``fingerprint=rules.fingerprint`` so
that a store written under other rules is treated as a mismatch (a full image follows,
which re-applies the new rules to every entry).
"""

from __future__ import annotations

import logging
import os
import pathlib
import sqlite3
import uuid
from collections.abc import Iterable, Mapping
from typing import Final, NoReturn, Protocol, TypeAlias, runtime_checkable

from .._chunk import external_references
from .._exceptions import KanidmSyncError, SourceError
from .._proto._entries import Entry
from .._proto._state import ActiveState, RefreshState, SyncState
from .._record_db import describe_error
from ._protocols import Delta, FullImage
from ._snapshot_db import _ForeignStoreError, _SnapshotDb
from ._snapshot_store import (
    _MAX_RETIRED,
    STORE_FORMAT,
    STORE_VERSION,
    _cookies_of,
    _CorruptStoreError,
    _delta_digest,
    _entry_digest,
    _full_digest,
    _make_cookie,
    _Pending,
    _promote,
    _Snapshot,
    _Store,
)

__all__ = [
    "PARTIAL_COOKIE_SEPARATOR",
    "STORE_FORMAT",
    "STORE_VERSION",
    "SnapshotAdapter",
    "SnapshotSource",
]

_log = logging.getLogger("kanidm_sync.adapters")


PARTIAL_COOKIE_SEPARATOR: Final = b"#"
"""A runner that applies one batch in several parts may record ``<cookie>#<anything>``
after each part but the last; the adapter then knows the batch was applied in part."""


@runtime_checkable
class SnapshotSource(Protocol):
    """A source that can only list everything it holds (a CSV export, an HR API).

    Wrap it in :class:`SnapshotAdapter` to get a :class:`~kanidm_sync.adapters.SourceAdapter`
    that sends Kanidm only what changed.
    """

    def snapshot(self) -> Iterable[Entry]:
        """Return every entry the source holds now, each with its full content.

        Returns:
            The entries, in any order; each id at most once.

        Raises:
            SourceError: reading the source failed.
        """
        ...


_MAX_MESSAGE = 300


class _Row:
    """One listed entry, kept from one listing to the next: most rows outlive many fetches.

    Attributes:
        entry: the entry as last listed (an equal entry listed later does not replace it).
        digest: ``entry``'s digest.
        key: ``entry.id.hex``, the store's key.
        num: ``entry.id.int``, the cache's key.
        seen: the listing that last listed it (``SnapshotAdapter._stamp``): a row seen
            twice in one listing is an id listed twice.
    """

    __slots__ = ("digest", "entry", "key", "num", "seen")

    def __init__(self, entry: Entry, digest: str, num: int, seen: int) -> None:
        self.entry = entry
        self.digest = digest
        self.key = entry.id.hex
        self.num = num
        self.seen = seen


_Listed: TypeAlias = list[_Row]
"""A listed snapshot: its rows, in the order the source listed them."""


def _exception_text(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, KeyError) and exc.args:
        text = f"missing key {exc.args[0]!r}"
    text = text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _after(entry: object, current: _Listed) -> str:
    # The last entry listed without fault: the failing one is the next in the source.
    if not isinstance(entry, Entry) or not current or current[-1].num != entry.id.int:
        return ""
    return f" (the last one: {entry.id}, {_describe(entry)})"


def _listed_twice(entry: Entry, other: Entry) -> NoReturn:
    raise SourceError(
        f"the snapshot lists entry id {entry.id} twice: {_describe(other)} and {_describe(entry)}"
    )


def _describe(entry: Entry) -> str:
    # The UUID is already in the message: tell the duplicates apart by what the
    # source calls them.
    if entry.external_id:
        return f"external id {entry.external_id!r}"
    return f"a {type(entry).__name__} with no external id"


class SnapshotAdapter:
    """A :class:`~kanidm_sync.adapters.SourceAdapter` over a :class:`SnapshotSource`.

    Each :meth:`fetch` lists the whole source, and returns either a full image or only
    the churn since the snapshot Kanidm holds, which it recognises by the cookie. See the
    module documentation for the store and why a crash at any point converges.

    Use one store file per sync account, and one process at a time per store.

    Args:
        source: the snapshot source.
        state_path: the store file (created on first use, with mode 0600). Its directory
            must exist and be writable.
        fingerprint: any text that identifies the rules applied after the source (for
            example :attr:`kanidm_sync.Rules.fingerprint`); a store written under another
            fingerprint is not trusted, and the next batch is a full image.
    """

    def __init__(
        self,
        source: SnapshotSource,
        state_path: str | os.PathLike[str],
        *,
        fingerprint: str = "",
    ) -> None:
        self._source = source
        self._path = pathlib.Path(state_path)
        self._fingerprint = fingerprint
        self._db = _SnapshotDb(self._path)
        # Every row this object listed, by ``entry.id.int``. An equal entry in the next
        # snapshot reuses its row (and digest), so a long-running process only encodes
        # what changed. After a listing that completed, exactly its rows.
        self._cache: dict[int, _Row] = {}
        # The rows of the last listing that completed, in order: a source that lists in
        # the same order as last time finds each row here, without a lookup.
        self._order: _Listed = []
        self._stamp = 0  # counts listings (see ``_Row.seen``)
        # Once a fetch returned its listing: the store object this object then held and
        # the cookie naming the listing in it. When the next fetch gets that very store
        # object and diffs against that cookie, the base holds exactly the last listing's
        # digests, and only the rows listed anew need a look (``_diff``'s ``since_last``).
        self._listed_as: tuple[_Store, bytes] | None = None
        # Every cookie the store file last read had recorded, even one written under
        # other rules: a full image keeps them as ``retired``.
        self._known_cookies: tuple[bytes, ...] = ()

    @property
    def source(self) -> SnapshotSource:
        """The wrapped snapshot source."""
        return self._source

    @property
    def state_path(self) -> pathlib.Path:
        """The store file."""
        return self._path

    def __repr__(self) -> str:
        return f"SnapshotAdapter({self._source!r}, state_path={str(self._path)!r})"

    def reset(self) -> None:
        """Delete the store: the next :meth:`fetch` returns a full image.

        Raises:
            SourceError: the file exists but could not be removed.
        """
        self._listed_as = None
        try:
            self._db.remove()
        except OSError as exc:
            raise SourceError(f"{self._path}: cannot remove the snapshot store") from exc

    def fetch(self, state: SyncState) -> FullImage | Delta:
        """List the source and return what Kanidm does not hold yet.

        Args:
            state: Kanidm's current sync state.

        Returns:
            A :class:`~kanidm_sync.adapters.FullImage` (first run, ``Refresh``, a missing,
            corrupt or mismatched store) or a :class:`~kanidm_sync.adapters.Delta`.

        Raises:
            SourceError: the source failed, listed an id twice, or the store could not
                be written.
        """
        listed_as, self._listed_as = self._listed_as, None
        current, fresh = self._read_source()
        self._known_cookies = ()
        store = self._load()
        base = self._base_for(state, store)
        if base is None:
            return self._full_image(current, store)
        assert isinstance(state, ActiveState)  # _base_for returns None otherwise
        assert store is not None  # likewise
        committed, promoted, uncertain = base
        retired = store.retired
        since_last = (
            fresh
            if listed_as is not None
            and listed_as[0] is store
            and listed_as[1] == committed.cookie
            and not uncertain
            else None
        )
        entries, changed, deleted = self._diff(current, committed.digests, uncertain, since_last)
        if not changed and not deleted:
            if promoted or store.pending is not None:
                store = _Store(self._fingerprint, committed, None, retired)
                self._write(store)
            _log.info("snapshot unchanged since %r", committed.cookie.decode("ascii", "replace"))
            self._listed_as = (store, committed.cookie)
            return Delta(entries=(), deleted=(), cookie=state.cookie)
        previous = store.pending if not promoted else None
        if (
            previous is not None
            and previous.base == committed.cookie
            and previous.changed == changed
            and set(previous.deleted) == set(deleted)
        ):
            # The same churn as the batch returned last time, which Kanidm did not
            # commit (yet): the same cookie, so a runner that split that batch into
            # several requests and stopped part-way recognises its split and resumes.
            cookie = previous.cookie
        else:
            generation = committed.generation + 1
            cookie = _make_cookie(generation, _delta_digest(committed.cookie, changed, deleted))
            pending = _Pending(
                cookie=cookie,
                generation=generation,
                base=committed.cookie,
                changed=changed,
                deleted=tuple(deleted),
            )
            store = _Store(self._fingerprint, committed, pending, retired)
            self._write(store)
        self._listed_as = (store, cookie)
        _log.info(
            "snapshot delta: %d added or changed, %d deleted, of %d entries",
            len(entries),
            len(deleted),
            len(current),
        )
        return Delta(
            entries=entries,
            deleted=[uuid.UUID(hex=k) for k in deleted],
            # An emptied source says so with an empty present list, so the runner's
            # empty-source guard sees it even without a record of its own (40 deletions
            # alone pass the deletion guard's counts).
            present=() if not current else None,
            cookie=cookie,
            # How many entries the source holds now: the runner's guards use it when
            # there is no other count of what the account holds.
            total=len(current),
        )

    # --- steps ---------------------------------------------------------------------------

    def _read_source(self) -> tuple[_Listed, _Listed]:
        """List the source: its rows in order, and those not in the last listing as they were.

        Returns:
            Every row, in the order listed; and the rows added or changed since the
            last listing (a subset, in the same order).
        """
        current: _Listed = []
        fresh: _Listed = []
        entry: object = None
        cache = self._cache
        self._stamp = stamp = self._stamp + 1
        # The per-entry path is hot (every entry of every run), and an unchanged entry
        # costs: its row (at the same position as in the last listing, else one dict
        # lookup by the UUID's int), an identity or equality test, and two stores into
        # the row and the listing. Nothing is allocated for it: it keeps its row, whose
        # ``seen`` mark catches an id listed twice.
        cached_row = cache.get
        order = self._order
        size = len(order)
        add = current.append
        try:
            listed = iter(self._source.snapshot())
            for entry in listed:
                if not isinstance(entry, Entry):
                    raise SourceError(
                        f"the snapshot source {type(self._source).__name__} yielded "
                        f"{type(entry).__name__} after {len(current)} entries, not an entry "
                        "(Person, Group, ServiceAccount, GenericEntry)"
                    )
                key = entry.id.int
                position = len(current)
                row = order[position] if position < size else None
                if row is None or row.num != key:
                    row = cached_row(key)
                if row is None:
                    row = _Row(entry, _entry_digest(entry), key, stamp)
                    cache[key] = row
                    fresh.append(row)
                else:
                    if row.seen == stamp:
                        _listed_twice(entry, row.entry)
                    old = row.entry
                    # ``==`` rather than ``!=``: attrs' ``__ne__`` is one more call.
                    if not (old is entry or old == entry):
                        row.digest = _entry_digest(entry)
                        row.entry = entry
                        fresh.append(row)
                    row.seen = stamp
                add(row)
        except KanidmSyncError:
            raise
        except Exception as exc:
            # Backend errors become SourceError with the exception's own message (cut
            # short) and where in the listing it happened; the exception is __cause__.
            raise SourceError(
                f"the snapshot source {type(self._source).__name__} failed after "
                f"{len(current)} entries{_after(entry, current)}: {_exception_text(exc)}"
            ) from exc
        if len(cache) != len(current):
            # Rows the source no longer lists (or that a listing which failed added).
            for gone in [num for num, row in cache.items() if row.seen != stamp]:
                del cache[gone]
        self._order = current
        return current, fresh

    def _load(self) -> _Store | None:
        try:
            store = self._db.load()
        except OSError as exc:
            _log.warning(
                "%s: cannot read the snapshot store (%s); sending a full image",
                self._path,
                describe_error(exc),
            )
            return None
        except _CorruptStoreError as exc:
            _log.warning(
                "%s: the snapshot store is corrupt (%s); sending a full image", self._path, exc
            )
            return None
        if store is None:
            _log.info("%s: no snapshot store yet; sending a full image", self._path)
            return None
        self._known_cookies = _cookies_of(store)
        if store.fingerprint != self._fingerprint:
            # Expected after a change of rules (the documented remedy for a conflict is
            # adding one): not a warning.
            _log.info(
                "%s: the snapshot store was written under other rules (fingerprint %r, "
                "now %r); sending a full image",
                self._path,
                store.fingerprint,
                self._fingerprint,
            )
            return None
        return store

    def _base_for(
        self, state: SyncState, store: _Store | None
    ) -> tuple[_Snapshot, bool, frozenset[str]] | None:
        """What Kanidm holds, or None for a full image.

        Returns:
            The snapshot to diff against, whether it was just promoted, and the keys
            whose content in Kanidm is unknown (a batch applied in part).
        """
        if isinstance(state, RefreshState):
            _log.info("Kanidm is in Refresh; sending a full image")
            return None
        if store is None:
            return None
        cookie = state.cookie
        if store.pending is not None and store.pending.cookie == cookie:
            # The previous apply committed although its outcome was never recorded here.
            _log.info("Kanidm committed the pending snapshot; promoting it")
            return _promote(store), True, frozenset()
        if store.committed is not None and store.committed.cookie == cookie:
            return store.committed, False, frozenset()
        pending = store.pending
        if pending is not None and cookie.startswith(pending.cookie + PARTIAL_COOKIE_SEPARATOR):
            # A runner split the pending batch into several applies and stopped part-way:
            # Kanidm holds committed plus an unknown part of pending's changes.
            if pending.base is None or store.committed is None:
                _log.info("Kanidm holds part of a full image; sending a full image")
                return None
            _log.info("Kanidm holds part of the pending batch; resending all of it")
            return store.committed, False, frozenset(pending.changed) | frozenset(pending.deleted)
        if cookie in store.retired:
            # A full image replaced the snapshot Kanidm holds, and was never applied
            # (a plan fetched it, or the run failed): expected, and harmless.
            _log.info(
                "%s: Kanidm holds an earlier snapshot of this store; sending a full image",
                self._path,
            )
            return None
        _log.warning(
            "%s: Kanidm holds a cookie this store did not record; sending a full image",
            self._path,
        )
        return None

    def _full_image(self, current: _Listed, store: _Store | None) -> FullImage:
        digests = {row.key: row.digest for row in current}
        pending = store.pending if store is not None else None
        if (
            store is not None
            and pending is not None
            and pending.base is None
            and pending.changed == digests
        ):
            # The same image as last time, not committed (yet): the same cookie, so a
            # split of it that stopped part-way resumes (see the delta case).
            _log.info(
                "snapshot full image: %d entries (unchanged since the last fetch)", len(current)
            )
            self._listed_as = (store, pending.cookie)
            return FullImage(entries=[row.entry for row in current], cookie=pending.cookie)
        previous = 0
        if store is not None:
            generations = [s.generation for s in (store.committed, store.pending) if s]
            previous = max(generations, default=0)
        generation = previous + 1
        cookie = _make_cookie(generation, _full_digest(digests))
        pending = _Pending(
            cookie=cookie, generation=generation, base=None, changed=digests, deleted=()
        )
        retired = tuple(c for c in self._known_cookies if c != cookie)[-_MAX_RETIRED:]
        written = _Store(self._fingerprint, None, pending, retired)
        self._write(written)
        self._listed_as = (written, cookie)
        _log.info("snapshot full image: %d entries", len(current))
        return FullImage(entries=[row.entry for row in current], cookie=cookie)

    @staticmethod
    def _diff(
        current: _Listed,
        committed: Mapping[str, str],
        uncertain: frozenset[str],
        since_last: _Listed | None = None,
    ) -> tuple[list[Entry], dict[str, str], list[str]]:
        """The entries to send, their digests, and the ids to delete.

        ``since_last``: when ``committed`` holds exactly the last listing's digests, the
        rows added or changed since; every other row is in ``committed`` as it is, and
        is not looked at. ``uncertain``: ids whose content in Kanidm is unknown.
        """
        entries: list[Entry] = []
        changed: dict[str, str] = {}
        created: set[str] = set()
        known = committed.get
        listed = 0  # committed ids the source still lists
        if since_last is not None:
            # The rows not listed anew are in ``committed`` with their digest.
            listed = len(current) - len(since_last)
            current_or_new = since_last
        else:
            current_or_new = current
        for row in current_or_new:
            key = row.key
            base = known(key)
            if base is None:
                entry = row.entry
                entries.append(entry)
                changed[key] = row.digest
                # Kanidm resolves a member's external id when the group is applied (spec
                # §3.9.1): a group naming an entry that is new here (re-created under a
                # new UUID, or named before it existed) points at its old self or at
                # nothing until it is sent again.
                if entry.external_id:
                    created.add(entry.external_id.lower())
            else:
                listed += 1
                if base != row.digest or key in uncertain:
                    entries.append(row.entry)
                    changed[key] = row.digest
        if created:
            for row in current:
                if row.key not in changed and any(
                    r in created for r in external_references(row.entry)
                ):
                    entries.append(row.entry)
                    changed[row.key] = row.digest
        # Deleted: committed ids the source no longer lists (none when it lists them all).
        deleted: list[str] = []
        if listed < len(committed):
            present = {row.key for row in current}
            deleted = [key for key in committed if key not in present]
        if uncertain:
            present = {row.key for row in current}
            deleted += [key for key in uncertain if key not in present and key not in committed]
        return entries, changed, deleted

    def _write(self, store: _Store) -> None:
        try:
            # Like the runner's record, the store's directory is created on first use.
            self._db.write(store)
        except _ForeignStoreError as exc:
            raise SourceError(
                f"{self._path}: not writing the snapshot store over {exc}; give the "
                "SnapshotAdapter another state_path"
            ) from None
        except (sqlite3.Error, OSError) as exc:
            raise SourceError(
                f"{self._path}: cannot write the snapshot store ({describe_error(exc)}); the "
                "previous store is intact"
            ) from exc
