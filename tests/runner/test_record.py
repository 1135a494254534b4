"""The runner's local record of what it last applied."""

from __future__ import annotations

import pathlib
import stat

import pytest

from kanidm_sync._plan import KnownState, project_entry
from kanidm_sync._runner import _RecordStore

from .conftest import person, pid


def test_record_round_trips(tmp_path: pathlib.Path) -> None:
    """What is saved loads back equal, in a private file (created with its directory)."""
    path = tmp_path / "sub" / "applied.json"
    known = KnownState(
        cookie=b"\x00c", entries={pid(1): project_entry(person(1))}, deleted=(pid(2),)
    )
    _RecordStore(path).save(known)
    loaded = _RecordStore(path).load()
    assert loaded is not None
    assert (known.cookie, dict(known.entries), known.deleted) == (
        loaded.cookie,
        dict(loaded.entries),
        loaded.deleted,
    )
    assert 0o600 == stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(
    "content",
    ["{not json", "[]", '{"format": "other"}', '{"format": "kanidm-sync applied record"}'],
)
def test_corrupt_record_means_unknown_base(tmp_path: pathlib.Path, content: str) -> None:
    """An unreadable or foreign record is ignored (the next plan is create-or-replace)."""
    path = tmp_path / "applied.json"
    path.write_text(content)
    assert _RecordStore(path).load() is None


def test_saving_none_removes_the_record(tmp_path: pathlib.Path) -> None:
    """An unknowable result removes the stale record rather than keep it."""
    path = tmp_path / "applied.json"
    _RecordStore(path).save(KnownState(cookie=b"c"))
    _RecordStore(path).save(None)
    assert not path.exists()
