"""Splitting one logical change into several applies that each fit Kanidm's body limit.

Owns: measuring the encoded size of entries, ordering entries so that references resolve,
packing them into chunks under ``max_bytes``, and chaining them with intermediate "chunk
cookies" (also requests prepared elsewhere: :func:`chain_requests`, used for the first
request that releases values or deletes, ``_release``). The cookies themselves, and
parsing them back when a run resumes after a crash, are in ``_chunk_cookie``.

Must not: do I/O, log, read a clock, or talk to Kanidm. It is pure and deterministic: the
same input always gives the same chunks, which is what makes a crashed run resumable.

Why chunks are shaped this way (docs/runner.md has the long version):

* kanidmd refuses a ``POST /scim/v1/Sync`` body over 32 MiB (spec §2.1), so every request
  is measured with the codec's own bytes and packed under ``max_bytes`` (default 30 MiB,
  leaving headroom).
* Group members are resolved when the group is applied: an external id that matches no
  live entry is *silently dropped* and a UUID that matches nothing fails the apply
  (spec §3.9.1). So an entry is placed after every entry it references; entries caught in
  a reference cycle that the packing split across chunks move to the final chunk.
* Which request an entry goes in does not matter for uniqueness: kanidmd checks it against
  the database as it was before each apply, so entries that exchange a unique value fail
  even inside one request. The values they take are freed by an earlier request
  (``_release``), after which any split is safe.
* Only the final chunk carries the retention rule and the real ``to_state``; the others
  record a chunk cookie (``kanidm-sync-chunk:v1:<digest>:<i>/<n>:<base>``). The digest
  covers the final cookie and the layout of every chunk, so a resumed run can tell whether
  it is finishing the very same split (then it skips the committed chunks) or not (then
  it starts over from Kanidm's current state, which is always safe: applies replace whole
  entries and deletions happen only in the final chunk).
* Kanidm in Refresh deletes every owned entry the apply does not list (spec §4.4), before
  anything else. A first chunk that listed only some entries would recycle the others, and
  a recycled UUID cannot be created again for weeks (§4.3). So in Refresh the first chunk
  also lists every other entry of the image as a *keep-alive*: ``{"schemas": [], "id": …}``.
  With no schema an entry owns only the phantom import attributes (spec §3.6, §4.5), so a
  keep-alive purges nothing and changes nothing on an existing entry; it only keeps the
  entry out of the refresh cleanup. Entries Kanidm does not hold get an empty stub that a
  later chunk fills **[inferred: no kanidmd test sends an empty schema list]**.
"""

from __future__ import annotations

import hashlib
import heapq
import uuid
from collections.abc import Iterable, Sequence
from typing import Final

import attrs

from ._chunk_cookie import (
    CHUNK_COOKIE_PREFIX,
    DIGEST_CHARS,
    ChunkCookie,
    parse_chunk_cookie,
    root_state,
)
from ._exceptions import KanidmSyncError
from ._proto._changeset import ChangeSet
from ._proto._codec import dumps, encode_changeset_json, encode_entry, encode_retention
from ._proto._entries import Entry, GenericEntry, Group, Person
from ._proto._state import ActiveState, RefreshState, RetainIgnore, RetentionMode, SyncState

__all__ = [
    "CHUNK_COOKIE_PREFIX",
    "DEFAULT_MAX_REQUEST_BYTES",
    "KANIDM_MAX_REQUEST_BYTES",
    "ChunkCookie",
    "ChunkingError",
    "Split",
    "chain_requests",
    "empty_request_size",
    "encoded_size",
    "external_references",
    "has_references",
    "is_keep_alive",
    "keep_alive",
    "order_by_references",
    "parse_chunk_cookie",
    "root_state",
    "split_changes",
]

KANIDM_MAX_REQUEST_BYTES: Final = 32 * 1024 * 1024
"""kanidmd's body limit for ``POST /scim/v1/Sync`` (``DEFAULT_SCIM_SYNC_BYTES``, spec §2.1)."""

DEFAULT_MAX_REQUEST_BYTES: Final = 30 * 1024 * 1024
"""The runner's default limit: 2 MiB below Kanidm's, as headroom for proxies and headers."""


class ChunkingError(KanidmSyncError):
    """Raised when a change cannot be split into requests under the size limit.

    The message says which part does not fit and what to do about it.
    """


def encoded_size(entry: Entry) -> int:
    """The number of bytes ``entry`` takes in a request body.

    Args:
        entry: any entry.

    Returns:
        The length of its compact JSON, exactly as the codec writes it.
    """
    return len(dumps(encode_entry(entry)))


def keep_alive(entry_id: uuid.UUID) -> GenericEntry:
    """The entry that lists ``entry_id`` in a refresh without changing it (see module doc).

    Args:
        entry_id: the UUID to keep out of the refresh cleanup.

    Returns:
        A :class:`~kanidm_sync.GenericEntry` with no schema, no external id, no attribute.
    """
    return GenericEntry(id=entry_id, schemas=())


def is_keep_alive(entry: Entry) -> bool:
    """Whether ``entry`` is a refresh keep-alive (see :func:`keep_alive`)."""
    return isinstance(entry, GenericEntry) and not entry.schemas and not entry.attributes


_KEEP_ALIVE_SIZE: Final = len(dumps(encode_entry(keep_alive(uuid.UUID(int=0)))))


def _references(entry: Entry) -> Iterable[str]:
    # What an entry points at, in the forms Kanidm resolves (spec §3.9.1).
    if isinstance(entry, Group):
        yield from entry.member
    elif isinstance(entry, Person) and entry.oauth2 is not None:
        yield entry.oauth2.provider
    elif isinstance(entry, GenericEntry):
        members = entry.attributes.get("member")
        if isinstance(members, Sequence) and not isinstance(members, str):
            for item in members:
                if isinstance(item, dict):
                    ref = item.get("external_id")
                    if isinstance(ref, str):
                        yield ref


def external_references(entry: Entry) -> Iterable[str]:
    """The references of ``entry`` Kanidm resolves by external id, lower-cased.

    Kanidm resolves them when the entry is applied and silently drops those that match
    no live entry (spec §3.9.1): an entry referencing an external id that a new entry
    takes later must be applied again to point at it.
    """
    for ref in _references(entry):
        try:
            uuid.UUID(ref)
        except ValueError:
            yield ref.lower()


def has_references(entry: Entry) -> bool:
    """Whether ``entry`` points at other entries (group members, an OAuth2 provider)."""
    return any(True for _ in _references(entry))


def _reference_graph(entries: Sequence[Entry]) -> list[list[int]]:
    by_id = {str(e.id): i for i, e in enumerate(entries)}
    by_ext = {e.external_id.lower(): i for i, e in enumerate(entries) if e.external_id}
    deps: list[list[int]] = []
    for i, entry in enumerate(entries):
        found: list[int] = []
        for ref in _references(entry):
            try:
                j = by_id.get(str(uuid.UUID(ref)))
            except ValueError:
                j = by_ext.get(ref.lower())
            if j is not None and j != i:
                found.append(j)
        deps.append(found)
    return deps


def order_by_references(entries: Sequence[Entry]) -> tuple[list[int], list[list[int]]]:
    """Order entries so that every entry comes after the entries it references.

    Kahn's algorithm, stable: among entries that are ready, the earlier one goes first, and
    entries without references (persons) keep their relative order. Entries in a reference
    cycle go last, in their original order.

    Args:
        entries: the entries to send.

    Returns:
        ``(order, deps)``: positions into ``entries`` in sending order, and for each
        entry the positions of the entries it references.
    """
    deps = _reference_graph(entries)
    waiting = [len(d) for d in deps]
    users: list[list[int]] = [[] for _ in entries]
    for i, found in enumerate(deps):
        for j in found:
            users[j].append(i)
    ready = [i for i, n in enumerate(waiting) if n == 0]
    order: list[int] = []
    placed = [False] * len(entries)
    # A heap of positions: among ready entries the earliest in the input goes first.
    heapq.heapify(ready)
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        placed[i] = True
        for k in users[i]:
            waiting[k] -= 1
            if waiting[k] == 0:
                heapq.heappush(ready, k)
    order.extend(i for i in range(len(entries)) if not placed[i])
    return order, deps


@attrs.frozen
class Split:
    """The requests one logical change is sent as.

    Attributes:
        requests: the ChangeSets, in order; the last one carries the retention rule and
            the real ``to_state``.
        digest: identifies this split in the chunk cookies (empty for one request).
        sizes: the encoded size in bytes of each request.
    """

    requests: tuple[ChangeSet, ...]
    digest: str = ""
    sizes: tuple[int, ...] = ()


def _overhead(from_state: SyncState, to_state: SyncState) -> int:
    empty = ChangeSet(from_state=from_state, to_state=to_state, entries=(), retain=RetainIgnore())
    # "entries":[] is in the empty body; each entry adds its bytes plus one comma.
    return len(encode_changeset_json(empty))


def _request_size(
    from_state: SyncState, to_state: SyncState, sizes: Iterable[int], retain: RetentionMode
) -> int:
    # Exact: the empty request, plus each entry and the commas between them, plus the
    # retention rule's bytes beyond "Ignore".
    n, total = 0, 0
    for size in sizes:
        n, total = n + 1, total + size
    return _overhead(from_state, to_state) + total + max(n - 1, 0) + _retain_extra(retain)


def empty_request_size(
    from_state: SyncState, to_state: SyncState, retain: RetentionMode | None = None
) -> int:
    """The bytes of a request carrying no entry; each entry adds its size and one comma.

    Args:
        from_state: the request's ``from_state``.
        to_state: the request's ``to_state``.
        retain: the request's retention rule (``Ignore`` when omitted).

    Returns:
        The encoded length of the request with an empty entry list.
    """
    extra = 0 if retain is None else _retain_extra(retain)
    return _overhead(from_state, to_state) + extra


def _retain_extra(retain: RetentionMode) -> int:
    return len(dumps(encode_retention(retain))) - len(dumps(encode_retention(RetainIgnore())))


def _chunk_cookie_bound(base: SyncState, total_guess: int) -> SyncState:
    # The longest intermediate cookie this split can use, to budget the to_state.
    probe = ChunkCookie(
        digest="0" * DIGEST_CHARS, index=total_guess, total=total_guess * 10, base=base
    )
    return ActiveState(probe.encode())


def split_changes(
    *,
    from_state: SyncState,
    to_state: SyncState,
    entries: Sequence[Entry],
    retain: RetentionMode,
    max_bytes: int,
    keep_alive_ids: Sequence[uuid.UUID] = (),
    chunk_base: SyncState | None = None,
    sizes: Sequence[int] | None = None,
) -> Split:
    """Turn one logical change into the fewest requests that each fit in ``max_bytes``.

    Args:
        from_state: Kanidm's state when the first request is sent.
        to_state: the state recorded by the last request.
        entries: every entry to send (each whole).
        retain: the retention rule, carried by the last request only.
        max_bytes: the largest body allowed.
        keep_alive_ids: when ``from_state`` is Refresh and the change needs several
            requests, ids the first request must list so that the refresh cleanup keeps
            them (normally every id of the full image); ignored otherwise.
        chunk_base: the state recorded in chunk cookies as where the run started (the
            base of a chunk cookie given here is recorded instead, see ``root_state``)
            (defaults to ``from_state``).
        sizes: the encoded size of each entry, when the caller already measured them
            (see :func:`encoded_size`).

    Returns:
        The split; a single request when everything fits.

    Raises:
        ChunkingError: a single entry, the retention rule or the refresh keep-alive list
            is larger than one request can carry.
    """
    base = root_state(from_state if chunk_base is None else chunk_base)
    single = ChangeSet(from_state=from_state, to_state=to_state, entries=entries, retain=retain)
    if sizes is None:
        sizes = [encoded_size(e) for e in entries]
    elif len(sizes) != len(entries):
        raise ValueError("sizes must have one value per entry")
    plain = _request_size(from_state, to_state, sizes, retain)
    if plain <= max_bytes:
        return Split(requests=(single,), sizes=(plain,))
    return _split(
        from_state=from_state,
        to_state=to_state,
        entries=entries,
        sizes=sizes,
        retain=retain,
        max_bytes=max_bytes,
        keep_alive_ids=keep_alive_ids,
        base=base,
    )


def _split(
    *,
    from_state: SyncState,
    to_state: SyncState,
    entries: Sequence[Entry],
    sizes: Sequence[int],
    retain: RetentionMode,
    max_bytes: int,
    keep_alive_ids: Sequence[uuid.UUID],
    base: SyncState,
) -> Split:
    refresh = isinstance(from_state, RefreshState)
    cookie_bound = _chunk_cookie_bound(base, 1 + sum(sizes) // max(max_bytes // 2, 1))
    overhead = max(
        _overhead(from_state, cookie_bound),
        _overhead(cookie_bound, cookie_bound),
        _overhead(cookie_bound, to_state),
    )
    budget = max_bytes - overhead
    order, deps = order_by_references(entries)
    for i in order:
        if sizes[i] + 1 > budget:
            raise ChunkingError(
                f"entry {entries[i].id} alone takes {sizes[i]} bytes, more than one request "
                f"may carry ({max_bytes} bytes): shorten it (for example split a huge "
                "member list into nested groups) or exclude it"
            )
    # Refresh: the first request also lists every other id as a keep-alive.
    alive = sorted(set(keep_alive_ids), key=str) if refresh else []
    first_budget = budget - len(alive) * (_KEEP_ALIVE_SIZE + 1)
    if refresh and first_budget <= 0:
        raise ChunkingError(
            f"Kanidm is in Refresh and the image has {len(alive)} entries: listing them all "
            f"in the first request needs {len(alive) * (_KEEP_ALIVE_SIZE + 1)} bytes, more "
            f"than one request may carry ({max_bytes} bytes). Remedy: sync a subset first "
            "(exclude rules), so Kanidm becomes Active, then widen the rules: in Active "
            "state any size is split safely"
        )
    chunks: list[list[int]] = [[]]
    rest = order
    if refresh:
        # The first request's room is what the keep-alives leave: take, in order, every
        # entry that fits and whose references are already in it (an entry that does not
        # fit does not block smaller ones after it).
        first: list[int] = []
        taken: set[int] = set()
        used = 0
        for i in order:
            if used + sizes[i] + 1 <= first_budget and all(j in taken for j in deps[i]):
                first.append(i)
                taken.add(i)
                used += sizes[i] + 1
        if not any(entries[i].external_id for i in first):
            raise ChunkingError(
                f"Kanidm is in Refresh and the keep-alive list for {len(alive)} entries leaves "
                "no room in the first request for an entry with an external id (Kanidm "
                "refuses a request where none has one). Remedy: sync a subset first "
                "(exclude rules), so Kanidm becomes Active, then widen the rules"
            )
        chunks = [first, []]
        rest = [i for i in order if i not in taken]
    used = 0
    for i in rest:
        cost = sizes[i] + 1
        if chunks[-1] and used + cost > budget:
            chunks.append([])
            used = 0
        chunks[-1].append(i)
        used += cost
    chunks = [c for c in chunks if c]
    # Move entries that reference an entry of a later chunk (reference cycles) to the end.
    where = {i: c for c, members in enumerate(chunks) for i in members}
    last = len(chunks) - 1
    late = [i for i in order if any(where[j] > where[i] for j in deps[i]) and where[i] < last]
    if late:
        moved = set(late)
        chunks = [[i for i in members if i not in moved] for members in chunks]
        chunks[-1].extend(late)
    retain_cost = _retain_extra(retain)
    if retain_cost > budget:
        raise ChunkingError(
            f"the retention list alone takes {retain_cost} bytes, more than one request may "
            f"carry ({max_bytes} bytes)"
        )
    if sum(sizes[i] + 1 for i in chunks[-1]) + retain_cost > budget:
        # Peel entries off the final chunk (keeping moved cycle entries in it) until it
        # fits; the peeled ones go into a chunk of their own just before it.
        final = chunks.pop()
        moved_set = set(late)
        keep: list[int] = [i for i in final if i in moved_set]
        spare: list[int] = [i for i in final if i not in moved_set]
        room = budget - retain_cost - sum(sizes[i] + 1 for i in keep)
        if room < 0:
            raise ChunkingError(
                "entries in a reference cycle spanning chunks, plus the retention list, do "
                "not fit in one request: break the cycle or sync fewer entries at once"
            )
        # The tail is a suffix of the final chunk, so the reference order holds. It may
        # be empty (the last entry alone does not fit beside the retention list): the
        # final request then carries the retention list and no entry. Dropping it as an
        # empty chunk sent the retention list with entries it did not fit beside: a
        # request over the limit on every later run.
        tail: list[int] = []
        while spare and sum(sizes[i] + 1 for i in tail) + sizes[spare[-1]] + 1 <= room:
            tail.insert(0, spare.pop())
        if spare:
            chunks.append(spare)
        chunks.append(tail + keep)
    chunks = [c for c in chunks[:-1] if c] + chunks[-1:] if chunks else [[]]
    total = len(chunks)
    if total == 1:
        single = ChangeSet(from_state=from_state, to_state=to_state, entries=entries, retain=retain)
        return Split(
            requests=(single,), sizes=(_request_size(from_state, to_state, sizes, retain),)
        )
    digest = _digest(to_state, [[entries[i].id for i in c] for c in chunks], alive, retain)
    requests: list[ChangeSet] = []
    measured: list[int] = []
    state = from_state
    for n, members in enumerate(chunks, start=1):
        chunk_entries: list[Entry] = [entries[i] for i in members]
        chunk_sizes = [sizes[i] for i in members]
        if n == 1 and refresh:
            listed = {e.id for e in chunk_entries}
            stubs = [keep_alive(u) for u in alive if u not in listed]
            chunk_entries.extend(stubs)
            chunk_sizes.extend(_KEEP_ALIVE_SIZE for _ in stubs)
        is_last = n == total
        nxt = (
            to_state
            if is_last
            else ActiveState(ChunkCookie(digest=digest, index=n, total=total, base=base).encode())
        )
        chunk_retain = retain if is_last else RetainIgnore()
        requests.append(
            ChangeSet(from_state=state, to_state=nxt, entries=chunk_entries, retain=chunk_retain)
        )
        size = _request_size(state, nxt, chunk_sizes, chunk_retain)
        if size > max_bytes:  # pragma: no cover - the budget arithmetic above prevents it
            raise ChunkingError(f"request {n} of {total} measures {size} bytes > {max_bytes}")
        measured.append(size)
        state = nxt
    return Split(requests=tuple(requests), digest=digest, sizes=tuple(measured))


def _digest(
    to_state: SyncState,
    layout: Sequence[Sequence[uuid.UUID]],
    alive: Sequence[uuid.UUID],
    retain: RetentionMode,
) -> str:
    h = hashlib.sha256()
    h.update(to_state.cookie if isinstance(to_state, ActiveState) else b"\x00refresh")
    for chunk in layout:
        h.update(b"\x01")
        for u in chunk:
            h.update(u.bytes)
    h.update(b"\x02")
    for u in alive:
        h.update(u.bytes)
    h.update(dumps(encode_retention(retain)))
    return h.hexdigest()[:DIGEST_CHARS]


def chain_requests(
    *,
    from_state: SyncState,
    to_state: SyncState,
    parts: Sequence[tuple[Sequence[Entry], RetentionMode]],
    max_bytes: int,
    base: SyncState | None = None,
) -> Split:
    """Chain prepared requests with chunk cookies (used for the first request that frees values).

    The caller decides what each request carries; this only threads the states: the
    first request goes from ``from_state``, each later one from the chunk cookie the
    previous one recorded, and the last records ``to_state``. The digest covers every
    request's entry ids and retention rule, so a resumed run recognises the chain.

    Args:
        from_state: Kanidm's state when the first request is sent.
        to_state: the state the last request records.
        parts: ``(entries, retain)`` of each request, in order.
        max_bytes: the largest body allowed.
        base: the state recorded in chunk cookies as where the run started (defaults
            to ``from_state``; the base of a chunk cookie is recorded instead).

    Returns:
        The split (a single request when ``parts`` has one element).

    Raises:
        ChunkingError: a request measures more than ``max_bytes``.
    """
    if not parts:
        raise ValueError("parts must not be empty")
    base = root_state(from_state if base is None else base)
    total = len(parts)
    digest = "" if total == 1 else _chain_digest(to_state, parts)
    requests: list[ChangeSet] = []
    sizes: list[int] = []
    state = from_state
    for n, (entries, retain) in enumerate(parts, start=1):
        nxt = (
            to_state
            if n == total
            else ActiveState(ChunkCookie(digest=digest, index=n, total=total, base=base).encode())
        )
        request = ChangeSet(from_state=state, to_state=nxt, entries=entries, retain=retain)
        size = len(encode_changeset_json(request))
        if size > max_bytes:
            raise ChunkingError(
                f"request {n} of {total} measures {size} bytes, over the limit ({max_bytes} "
                "bytes): raise max_request_bytes or sync fewer entries at once"
            )
        requests.append(request)
        sizes.append(size)
        state = nxt
    return Split(requests=tuple(requests), digest=digest, sizes=tuple(sizes))


def _chain_digest(
    to_state: SyncState, parts: Sequence[tuple[Sequence[Entry], RetentionMode]]
) -> str:
    h = hashlib.sha256(b"kanidm-sync chain\x00")
    h.update(to_state.cookie if isinstance(to_state, ActiveState) else b"\x00refresh")
    for entries, retain in parts:
        h.update(b"\x01")
        for entry in entries:
            h.update(entry.id.bytes)
            h.update(b"k" if is_keep_alive(entry) else b"e")
        h.update(b"\x02")
        h.update(dumps(encode_retention(retain)))
    return h.hexdigest()[:DIGEST_CHARS]
