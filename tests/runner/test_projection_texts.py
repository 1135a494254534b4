"""A plan keeps its projections as JSON text, and the record writes them as they are (issue 15).

``ProjectionTexts`` holds each projection as the compact text the local record stores; a
first run of 200,000 entries held them as dicts (about three times the memory) until the
record was written. These tests pin that reading one gives the projection, that a record
written from the texts is row for row the record written from dicts (digests, index and
the escaped form of a lone surrogate included), and that a plan and the record after a
full run use the texts without copying them.
"""

from __future__ import annotations

import contextlib
import pathlib
import sqlite3
import uuid

import pytest

from kanidm_sync import ActiveState, Entry, Mail, Person, PosixAccount, RefreshState, _plan
from kanidm_sync._plan import KnownState, apply_to_known, build_plan, project_entry
from kanidm_sync._projection import ProjectionTexts, projection_text
from kanidm_sync._record import _RecordStore
from kanidm_sync.adapters import FullImage

from .conftest import group, person, pid


def entries() -> list[Person]:
    out = [person(i) for i in range(20)]
    out.append(
        Person(
            id=uuid.UUID(int=2**100),
            external_id="uid=odd,dc=example",
            name="odd",
            displayname="Odd \ud800 ünïcode",  # a lone surrogate: validation off
            mail=[Mail("odd@example.org")],
            posix=PosixAccount(gidnumber=5000),
            password_import="{SSHA}c2VjcmV0c2FsdA==",
        )
    )
    return out


def texts_of(items: list[Person]) -> ProjectionTexts:
    texts = ProjectionTexts()
    for e in items:
        texts.add(e.id, project_entry(e))
    return texts


def table(path: pathlib.Path, query: str) -> list[tuple[object, ...]]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return sorted(conn.execute(query).fetchall(), key=repr)


def test_reading_gives_the_projection() -> None:
    items = entries()
    texts = texts_of(items)
    assert len(texts) == len(items)
    assert list(texts) == [e.id for e in items]
    for e in items:
        assert e.id in texts
        assert texts[e.id] == project_entry(e)
        assert texts[e.id] is not texts[e.id]  # a fresh dict: nobody changes the text
    assert dict(texts.texts())[pid(3)] == projection_text(project_entry(person(3)))
    assert uuid.uuid4() not in texts
    assert repr(texts) == "<ProjectionTexts: 21 entries>"
    assert "salted-sha256" not in repr(texts)


def test_a_record_from_texts_is_the_record_from_dicts(tmp_path: pathlib.Path) -> None:
    items = entries()
    from_dicts, from_texts = tmp_path / "dicts.sqlite", tmp_path / "texts.sqlite"
    as_dicts = {e.id: project_entry(e) for e in items}
    _RecordStore(from_dicts).save(KnownState(cookie=b"c", entries=as_dicts))
    _RecordStore(from_texts).save(KnownState(cookie=b"c", entries=texts_of(items)))
    for query in ("SELECT * FROM entries", "SELECT * FROM uniques"):
        assert table(from_texts, query) == table(from_dicts, query)
    (stored,) = table(from_texts, "SELECT projection FROM entries WHERE name = 'odd'")
    assert "\\ud800" in str(stored[0])  # escaped, as the dict path stores it
    loaded = _RecordStore(from_texts).load()
    assert loaded is not None
    assert dict(loaded.entries) == as_dicts
    loaded.entries.close()  # type: ignore[attr-defined]


def test_a_full_run_keeps_the_texts_from_plan_to_record(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_plan, "TEXT_PROJECTIONS_FROM", 10)
    items: list[Entry] = [*(person(i) for i in range(20)), group(1, [1, 2, 3])]
    batch = FullImage(entries=items, cookie=b"s1")
    plan = build_plan(state=RefreshState(), batch=batch, known=None, max_request_bytes=1 << 20)
    assert isinstance(plan.projections, ProjectionTexts)
    assert plan.projections[pid(2)] == project_entry(person(2))
    known = apply_to_known(None, plan)
    assert known is not None
    assert known.entries is plan.projections  # not decoded, not copied
    assert isinstance(plan.to_state, ActiveState)


def test_a_small_batch_keeps_its_projections_as_dicts() -> None:
    """Below TEXT_PROJECTIONS_FROM entries (an incremental run) nothing is decoded again."""
    items: list[Entry] = [person(i) for i in range(5)]
    plan = build_plan(
        state=RefreshState(),
        batch=FullImage(entries=items, cookie=b"s1"),
        known=None,
        max_request_bytes=1 << 20,
    )
    assert type(plan.projections) is dict
    assert plan.projections[pid(2)] == project_entry(person(2))
