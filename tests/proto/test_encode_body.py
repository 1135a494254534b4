"""A large ChangeSet streamed into the HTTP body is the bytes of ``to_json()`` (issue 15).

``_encode_body.ChangeSetBody`` measures the body (one encode, sizes only), then writes it
in pieces each time httpx iterates it. These tests pin: the pieces joined are exactly
``to_json()``, for generated ChangeSets and any piece size; ``length`` is their count;
every iteration is a fresh, identical pass (a retried request re-reads it); a ChangeSet
the fast writers cannot encode raises ``to_json()``'s own error before anything is sent;
and a body that would come out at another length than it announced is refused.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kanidm_sync import (
    ActiveState,
    ChangeSet,
    EncodeError,
    GenericEntry,
    Group,
    Mail,
    Person,
    RefreshState,
)
from kanidm_sync._proto import _encode_body, _encode_text
from kanidm_sync._proto._encode_body import (
    STREAM_MIN_ENTRIES,
    AsyncChangeSetBody,
    ChangeSetBody,
    changeset_body,
)
from kanidm_sync.testing.strategies import changesets

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def persons(n: int, *, display: str = "Ünïcode ✓") -> list[Person]:
    return [
        Person(
            id=uuid.UUID(int=i + 1),
            name=f"p{i}",
            displayname=f"{display} {i}",
            mail=[Mail(f"p{i}@example.org")],
        )
        for i in range(n)
    ]


def joined(body: ChangeSetBody) -> bytes:
    return b"".join(body)


@SETTINGS
@given(changesets(extra=True, generic=True), st.integers(1, 300))
def test_pieces_are_the_bytes_of_to_json(cs: ChangeSet, piece: int) -> None:
    try:
        body = ChangeSetBody(cs, piece_bytes=piece)
    except _encode_text.TEXT_ERRORS:
        return  # the fast writers cannot encode it: changeset_body sends to_json() whole
    expected = cs.to_json()
    assert body.length == len(expected)
    assert joined(body) == expected
    assert joined(body) == expected  # a second pass (a retry) is the same


def test_non_ascii_is_measured_in_bytes() -> None:
    cs = ChangeSet(from_state=RefreshState(), to_state=ActiveState(b"c"), entries=persons(50))
    body = ChangeSetBody(cs, piece_bytes=1000)
    pieces = list(body)
    assert len(pieces) > 3
    assert all(len(p) >= 1000 for p in pieces[:-1])
    assert b"".join(pieces) == cs.to_json()
    assert body.length == len(cs.to_json())


def test_no_entries() -> None:
    cs = ChangeSet(from_state=RefreshState(), to_state=ActiveState(b"c"), entries=[])
    body = ChangeSetBody(cs)
    assert joined(body) == cs.to_json()
    assert body.length == len(cs.to_json())


def test_small_changesets_are_sent_as_bytes() -> None:
    cs = ChangeSet(
        from_state=RefreshState(),
        to_state=ActiveState(b"c"),
        entries=persons(STREAM_MIN_ENTRIES - 1),
    )
    assert changeset_body(cs) == cs.to_json()


def test_large_changesets_are_streamed() -> None:
    cs = ChangeSet(
        from_state=RefreshState(), to_state=ActiveState(b"c"), entries=persons(STREAM_MIN_ENTRIES)
    )
    body = changeset_body(cs)
    assert isinstance(body, ChangeSetBody)
    assert joined(body) == cs.to_json()
    assert "entries" in repr(body)
    assert "Ünïcode" not in repr(body)


def test_unencodable_large_changeset_raises_to_jsons_error() -> None:
    entries: list[Person | GenericEntry] = list(persons(STREAM_MIN_ENTRIES))
    entries.insert(7, Person(id=uuid.UUID(int=10**9), name="bad", displayname="x\ud800"))
    cs = ChangeSet(from_state=RefreshState(), to_state=ActiveState(b"c"), entries=entries)
    with pytest.raises(EncodeError) as streamed:
        changeset_body(cs)
    with pytest.raises(EncodeError) as whole:
        cs.to_json()
    assert str(streamed.value) == str(whole.value)
    assert "$.entries[7]" in str(streamed.value)


def test_a_body_that_changes_length_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    cs = ChangeSet(from_state=RefreshState(), to_state=ActiveState(b"c"), entries=persons(3))
    body = ChangeSetBody(cs)
    real = _encode_body.entry_text
    monkeypatch.setattr(_encode_body, "entry_text", lambda e: real(e) + " ")
    with pytest.raises(RuntimeError, match=r"not the .* measured"):
        joined(body)


def test_async_body_yields_the_same_pieces() -> None:
    cs = ChangeSet(from_state=RefreshState(), to_state=ActiveState(b"c"), entries=persons(40))
    body = ChangeSetBody(cs, piece_bytes=500)

    async def collect() -> list[bytes]:
        return [piece async for piece in AsyncChangeSetBody(body)]

    assert asyncio.run(collect()) == list(body)
    assert repr(AsyncChangeSetBody(body)).startswith("<AsyncChangeSetBody 40 entries")


def test_groups_and_members() -> None:
    group = Group(id=uuid.UUID(int=99), name="g", member=[f"p{i}" for i in range(30)])
    cs = ChangeSet(
        from_state=ActiveState(b"a"), to_state=ActiveState(b"b"), entries=[*persons(30), group]
    )
    assert joined(ChangeSetBody(cs, piece_bytes=64)) == cs.to_json()
