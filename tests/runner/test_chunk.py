"""Splitting under the body limit: ordering, keep-alives, chunk cookies (pure)."""

from __future__ import annotations

import uuid

import pytest

from kanidm_sync import REFRESH, ActiveState, Entry, Group, RetainIgnore, RetainOnly
from kanidm_sync._chunk import (
    CHUNK_COOKIE_PREFIX,
    ChunkCookie,
    ChunkingError,
    order_by_references,
    parse_chunk_cookie,
    split_changes,
)
from kanidm_sync._proto._codec import encode_changeset_json

from .conftest import gid, group, person, pid

ACTIVE = ActiveState(b"base")
FINAL = ActiveState(b"final")


def test_everything_that_fits_is_one_request() -> None:
    """A small change is sent as the one ChangeSet, untouched."""
    split = split_changes(
        from_state=ACTIVE,
        to_state=FINAL,
        entries=[person(1)],
        retain=RetainIgnore(),
        max_bytes=1 << 20,
    )
    (request,) = split.requests
    assert (ACTIVE, FINAL) == (request.from_state, request.to_state)


def test_chunks_fit_chain_and_only_the_last_retains() -> None:
    """Every request is under the limit, cookies chain, and only the last carries retain."""
    entries = [person(i) for i in range(60)]
    retain = RetainOnly([pid(i) for i in range(60)])
    split = split_changes(
        from_state=ACTIVE, to_state=FINAL, entries=entries, retain=retain, max_bytes=6000
    )
    assert len(split.requests) > 2
    for request in split.requests:
        assert len(encode_changeset_json(request)) <= 6000
    assert ACTIVE == split.requests[0].from_state
    for before, after in zip(split.requests, split.requests[1:], strict=False):
        assert before.to_state == after.from_state
        assert RetainIgnore() == before.retain
    assert FINAL == split.requests[-1].to_state
    assert retain == split.requests[-1].retain
    sent = [e.id for r in split.requests for e in r.entries]
    assert sorted(pid(i) for i in range(60)) == sorted(sent)


def test_groups_come_after_the_persons_they_reference() -> None:
    """A group listed first is sent after its members (unresolved members are dropped)."""
    entries: list[Entry] = [group(1, [1, 2]), person(1), person(2), person(3)]
    order, _ = order_by_references(entries)
    position = {entries[i].id: n for n, i in enumerate(order)}
    assert position[gid(1)] > position[pid(1)]
    assert position[gid(1)] > position[pid(2)]


def test_nested_groups_are_ordered_by_reference() -> None:
    """A group that contains another group is sent after it."""
    inner = group(2, [1])
    outer = Group(id=gid(1), external_id="cn=outer", name="outer", member=[inner.external_id or ""])
    order, _ = order_by_references([outer, inner, person(1)])
    assert [2, 1, 0] == order


def test_reference_cycle_across_chunks_moves_to_the_final_chunk() -> None:
    """Entries whose references point at a later chunk are re-homed in the last request."""
    a = Group(id=gid(1), external_id="cn=a", name="a", member=["cn=b"], description="x" * 900)
    b = Group(id=gid(2), external_id="cn=b", name="b", member=["cn=a"], description="y" * 900)
    entries = [person(i) for i in range(10)] + [a, b]
    split = split_changes(
        from_state=ACTIVE, to_state=FINAL, entries=entries, retain=RetainIgnore(), max_bytes=2500
    )
    where = {e.id: n for n, r in enumerate(split.requests) for e in r.entries}
    assert where[gid(1)] == where[gid(2)] == len(split.requests) - 1


def test_refresh_first_request_keeps_every_other_entry_alive() -> None:
    """From Refresh, the first request lists every id (keep-alives have no schema)."""
    entries = [person(i) for i in range(40)]
    ids = [e.id for e in entries]
    split = split_changes(
        from_state=REFRESH,
        to_state=FINAL,
        entries=entries,
        retain=RetainIgnore(),
        max_bytes=6000,
        keep_alive_ids=ids,
    )
    assert len(split.requests) > 1
    first = split.requests[0]
    assert REFRESH == first.from_state
    assert set(ids) == {e.id for e in first.entries}
    stubs = [e for e in first.entries if getattr(e, "schemas", None) == ()]
    assert stubs, "the first request carries keep-alive stubs"
    for later in split.requests[1:]:
        assert isinstance(later.from_state, ActiveState)


def test_refresh_keep_alive_list_too_large_is_refused_with_a_remedy() -> None:
    """When even the keep-alive list cannot fit, the split says what to do."""
    ids = [uuid.UUID(int=i + 1) for i in range(200)]
    with pytest.raises(ChunkingError, match="sync a subset first"):
        split_changes(
            from_state=REFRESH,
            to_state=FINAL,
            entries=[person(i) for i in range(30)],
            retain=RetainIgnore(),
            max_bytes=5000,
            keep_alive_ids=ids,
        )


def test_entry_larger_than_a_request_is_refused() -> None:
    """A single entry over the limit cannot be sent at all."""
    big = Group(id=gid(1), external_id="cn=big", name="big", description="z" * 9000)
    with pytest.raises(ChunkingError, match="alone takes"):
        split_changes(
            from_state=ACTIVE,
            to_state=FINAL,
            entries=[big, person(1)],
            retain=RetainIgnore(),
            max_bytes=5000,
        )


def test_split_is_deterministic() -> None:
    """The same input gives the same split (what makes a crashed run resumable)."""
    entries = [person(i) for i in range(50)]

    def run() -> tuple[object, ...]:
        return split_changes(
            from_state=ACTIVE,
            to_state=FINAL,
            entries=entries,
            retain=RetainIgnore(),
            max_bytes=5000,
        ).requests

    assert run() == run()


def test_chunk_cookie_round_trips() -> None:
    """An intermediate cookie parses back to its digest, position and base state."""
    for base in (REFRESH, ActiveState(b"\x00\xffsource-cookie")):
        cookie = ChunkCookie(digest="a" * 32, index=2, total=5, base=base)
        encoded = cookie.encode()
        assert encoded.startswith(CHUNK_COOKIE_PREFIX)
        assert cookie == parse_chunk_cookie(ActiveState(encoded))


def test_ordinary_and_malformed_cookies_are_not_chunk_cookies() -> None:
    """Source cookies and damaged chunk cookies are not mistaken for a chunked run."""
    assert parse_chunk_cookie(ActiveState(b"list-1")) is None
    assert parse_chunk_cookie(REFRESH) is None
    assert parse_chunk_cookie(ActiveState(CHUNK_COOKIE_PREFIX + b"zz:1/2:R")) is None
    assert parse_chunk_cookie(ActiveState(CHUNK_COOKIE_PREFIX + b"a" * 32 + b":3/2:R")) is None


def test_measured_sizes_are_the_encoded_lengths() -> None:
    """The sizes a split reports are exactly the bytes the codec writes for each request."""
    entries = [group(1, range(30))] + [person(i) for i in range(30)]
    ids = [e.id for e in entries]
    for state in (REFRESH, ACTIVE):
        split = split_changes(
            from_state=state,
            to_state=FINAL,
            entries=entries,
            retain=RetainOnly(ids),
            max_bytes=7000,
            keep_alive_ids=ids,
        )
        assert [len(encode_changeset_json(r)) for r in split.requests] == list(split.sizes)


def test_a_split_from_a_chunk_cookie_records_its_base_not_the_cookie() -> None:
    """Starting over (or retrying) from a chunk cookie does not nest it in the new cookies."""
    inner = ActiveState(ChunkCookie(digest="a" * 32, index=1, total=3, base=ACTIVE).encode())
    entries: list[Entry] = [person(i) for i in range(30)]
    split = split_changes(
        from_state=inner, to_state=FINAL, entries=entries, retain=RetainIgnore(), max_bytes=4096
    )
    assert len(split.requests) > 2
    for request in split.requests[:-1]:
        cookie = parse_chunk_cookie(request.to_state)
        assert cookie is not None
        assert ACTIVE == cookie.base
    assert inner == split.requests[0].from_state


def test_a_last_entry_that_does_not_fit_beside_the_retention_list_leaves_it_alone() -> None:
    """The final request may carry the retention list and no entry.

    Issue 12: a run killed mid-chunk with a tiny limit then failed with ChunkingError on
    every later run.
    """
    entries = [*(person(i) for i in range(39)), group(1, range(39))]
    retain = RetainOnly([e.id for e in entries])
    split = split_changes(
        from_state=ACTIVE, to_state=FINAL, entries=entries, retain=retain, max_bytes=4096
    )
    for request, size in zip(split.requests, split.sizes, strict=True):
        assert len(encode_changeset_json(request)) == size <= 4096
    assert retain == split.requests[-1].retain
    assert [] == list(split.requests[-1].entries)
    sent = [e.id for r in split.requests for e in r.entries]
    assert sorted(e.id for e in entries) == sorted(sent)
    assert gid(1) == split.requests[-2].entries[-1].id  # the group after its members
