"""What a newcomer found: an emptied CSV, wrong fetch types, plans that touch the store."""

from __future__ import annotations

import datetime as _dt
import json
import logging
import pathlib

import attrs
import pytest

from kanidm_sync import (
    APIError,
    APIStatusError,
    ChangeSet,
    Client,
    Diagnosis,
    Guards,
    Runner,
    RunnerStatus,
    Schedule,
    SourceGuardError,
    StalePlanError,
    StateConflictError,
    Suspect,
    SyncState,
    UniquenessError,
)
from kanidm_sync.adapters import Delta, FullImage, SnapshotAdapter
from kanidm_sync.adapters.files import CsvSource, FieldMapping
from kanidm_sync.testing import FakeKanidm

from .conftest import DeltaSource, ListSource, gid, group, person, pid

HEADER = "external_id,name,displayname\n"


def write_csv(path: pathlib.Path, count: int) -> None:
    """A CSV of ``count`` persons (header only for 0)."""
    rows = "".join(f"uid=u{i},u{i},User {i}\n" for i in range(count))
    path.write_text(HEADER + rows, encoding="utf-8")


def csv_runner(client: Client, tmp_path: pathlib.Path, *, record: bool) -> Runner:
    """A runner over a snapshot of a CSV, with or without its own record."""
    source = SnapshotAdapter(
        CsvSource(tmp_path / "people.csv", FieldMapping(default_kind="person")),
        tmp_path / "snapshot.json",
    )
    return Runner(client, source, state_path=tmp_path / "applied.json" if record else None)


@pytest.mark.parametrize("record", [True, False])
def test_emptied_csv_trips_the_empty_source_guard(
    fake: FakeKanidm, client: Client, tmp_path: pathlib.Path, record: bool
) -> None:
    """A CSV cut down to its header would delete all 40 persons: refused, nothing sent."""
    write_csv(tmp_path / "people.csv", 40)
    runner = csv_runner(client, tmp_path, record=record)
    assert 40 == runner.run_once().counts["sent"]
    write_csv(tmp_path / "people.csv", 0)
    before = client.get_state()
    with pytest.raises(SourceGuardError) as info:
        runner.run_once()
    assert "empty" == info.value.reason
    assert before == client.get_state()
    assert "refused" == runner.status.last_report.outcome  # type: ignore[union-attr]


def test_emptied_source_passes_when_explicitly_allowed(
    fake: FakeKanidm, client: Client, tmp_path: pathlib.Path
) -> None:
    """``allow_empty_source`` lets a deliberate wipe through."""
    write_csv(tmp_path / "people.csv", 3)
    runner = csv_runner(client, tmp_path, record=True)
    runner.run_once()
    write_csv(tmp_path / "people.csv", 0)
    wipe = Runner(
        client,
        SnapshotAdapter(
            CsvSource(tmp_path / "people.csv", FieldMapping(default_kind="person")),
            tmp_path / "snapshot.json",
        ),
        state_path=tmp_path / "applied.json",
        guards=Guards(allow_empty_source=True),
    )
    assert 3 == wipe.run_once().counts["delete"]


def test_delta_deleting_everything_is_refused_whatever_the_count(
    client: Client, tmp_path: pathlib.Path
) -> None:
    """Two of two entries deleted by a delta: 100% is never routine, even far below 50."""
    source = DeltaSource()
    runner = Runner(client, source, state_path=tmp_path / "applied.json")
    source.queue.append(FullImage(entries=[person(1), person(2)], cookie=b"c1"))
    runner.run_once()
    source.queue.append(Delta(deleted=[pid(1), pid(2)], cookie=b"c2"))
    with pytest.raises(SourceGuardError, match="every entry"):
        runner.run_once()


def test_delta_deleting_most_entries_trips_the_shrink_guard(
    client: Client, tmp_path: pathlib.Path
) -> None:
    """Three of four deleted (75%) is refused; allow_deletes acknowledges it."""
    source = DeltaSource()
    runner = Runner(client, source, state_path=tmp_path / "applied.json")
    source.queue.append(FullImage(entries=[person(i) for i in range(4)], cookie=b"c1"))
    runner.run_once()
    gone = Delta(deleted=[pid(0), pid(1), pid(2)], cookie=b"c2")
    source.queue.append(gone)
    with pytest.raises(SourceGuardError) as info:
        runner.run_once()
    assert ("shrink", 4) == (info.value.reason, info.value.previous)
    source.queue.append(gone)
    assert 3 == runner.run_once(allow_deletes=True).counts["delete"]


class WrongSource:
    """A source whose fetch returns whatever it was given."""

    def __init__(self, answer: object) -> None:
        self.answer = answer

    def fetch(self, state: SyncState) -> object:
        return self.answer


@pytest.mark.parametrize("answer", [None, ChangeSet])
def test_fetch_returning_a_wrong_type_is_a_clear_type_error(client: Client, answer: object) -> None:
    """The error names the adapter's class, what it returned and what is allowed."""
    if answer is ChangeSet:
        state = client.get_state()
        answer = ChangeSet(from_state=state, to_state=state, entries=[])
    runner = Runner(client, WrongSource(answer))  # type: ignore[arg-type]
    with pytest.raises(TypeError) as info:
        runner.run_once()
    message = str(info.value)
    assert "WrongSource.fetch() returned" in message
    assert type(answer).__name__ in message
    assert "FullImage, Delta or RefreshRequired" in message


def test_plan_with_new_rules_leaves_no_stranger_cookie(
    client: Client, tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A plan under a new fingerprint, then a run: no warning, and the run applies."""
    write_csv(tmp_path / "people.csv", 2)
    path = tmp_path / "people.csv"

    def runner(fingerprint: str) -> Runner:
        adapter = SnapshotAdapter(
            CsvSource(path, FieldMapping(default_kind="person")),
            tmp_path / "snapshot.json",
            fingerprint=fingerprint,
        )
        return Runner(client, adapter, state_path=tmp_path / "applied.json")

    runner("v1").run_once()
    write_csv(path, 3)  # what the new rules make of the source differs
    runner("v2").plan()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="kanidm_sync"):
        report = runner("v2").run_once()
    assert "applied" == report.outcome
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert [] == warnings
    assert any("earlier snapshot of this store" in r.getMessage() for r in caplog.records)
    assert "nothing-to-do" == runner("v2").run_once().outcome


def test_stale_plan_error_is_no_status_error(
    fake: FakeKanidm, client: Client, tmp_path: pathlib.Path
) -> None:
    """StalePlanError is an APIError, but neither an APIStatusError nor a StateConflictError."""
    runner = Runner(client, ListSource([person(1)]), state_path=tmp_path / "applied.json")
    plan = runner.plan()
    Runner(client, ListSource([person(2)])).run_once()
    with pytest.raises(StalePlanError) as info:
        runner.apply(plan)
    assert isinstance(info.value, APIError)
    assert not isinstance(info.value, APIStatusError | StateConflictError)
    assert not hasattr(info.value, "status_code")


def test_run_forever_clears_next_run_at(client: Client) -> None:
    """When the loop returns no run is due, so next_run_at is None."""
    runner = Runner(client, ListSource([person(1)]))
    seen: list[object] = []

    def sleep(seconds: float) -> None:
        seen.append(runner.status.next_run_at)

    status = runner.run_forever(Schedule(interval=60), max_runs=2, sleep=sleep)
    assert 2 == status.runs
    assert seen
    assert seen[0] is not None
    assert status.next_run_at is None
    assert runner.status.next_run_at is None


def test_to_json_is_text_and_to_dict_is_a_dict(client: Client) -> None:
    """Plan, RunReport, RunnerStatus, Diagnosis, Suspect and EntryChange: one shape."""
    runner = Runner(client, ListSource([person(1)]))
    plan = runner.plan()
    report = runner.run_once()
    suspect = Suspect(
        id=pid(1), source_id=pid(1), kind="person", name="a", external_id=None, reason="r"
    )
    diagnosis = Diagnosis(error="x", summary="y", suspects=(suspect,))
    values = (plan, report, runner.status, diagnosis, suspect, plan.changes[0])
    for value in values:
        assert isinstance(value.to_dict(), dict)
        assert value.to_dict() == json.loads(value.to_json())
    assert "<b>run applied</b>" in report._repr_html_()
    assert "RunReport(outcome='applied'" in repr(report)
    assert 1 == plan.counts["create-or-replace"]  # a property, like RunReport.counts
    assert plan.counts["create-or-replace"] == report.counts["create-or-replace"]


def test_reprs_are_short_and_html_is_escaped() -> None:
    """Diagnosis shows counts and the first suspect, not the TOML; HTML escapes names."""
    suspect = Suspect(
        id=pid(1),
        source_id=pid(1),
        kind="person",
        name="<b>alice</b>",
        external_id=None,
        reason="name may be held",
    )
    rules = "[exclude]\nids = [" + ", ".join(f'"{pid(i)}"' for i in range(20)) + "]"
    diagnosis = Diagnosis(
        error="attributeuniqueness", summary="s", suspects=(suspect, suspect), rules_toml=rules
    )
    text = repr(diagnosis)
    assert "\\n" not in text
    assert "[exclude]" not in text
    assert "2 suspects" in text
    assert "<b>alice</b>" in text
    assert "&lt;b&gt;alice&lt;/b&gt;" in diagnosis._repr_html_()
    status = RunnerStatus(
        state="failing",
        runs=3,
        failures=1,
        last_success_at=_dt.datetime(2026, 1, 2, tzinfo=_dt.UTC),
        last_error="X: <script>",
    )
    assert "runs=3" in repr(status)
    assert "2026-01-02" in repr(status)
    assert "<script>" not in status._repr_html_()
    assert "&lt;script&gt;" in status._repr_html_()
    assert attrs.evolve(status, runs=4) != status


def test_first_sync_conflict_with_a_native_entry_is_diagnosed_as_such(
    fake: FakeKanidm, client: Client, tmp_path: pathlib.Path
) -> None:
    """Refresh, no record, a native alice: the narrative leads with the native holder."""
    fake.store.add_person("user1")
    runner = Runner(
        client, ListSource([person(1), person(2)]), state_path=tmp_path / "applied.json"
    )
    with pytest.raises(UniquenessError):
        runner.run_once()
    report = runner.last_report
    assert report is not None
    assert report.diagnosis is not None
    d = report.diagnosis
    assert (
        "a value of name, spn is already held by another entry. Kanidm is in Refresh and "
        "this runner has no record of the account, so the holder is most likely an entry "
        "outside this sync account (a native Kanidm entry, or one of another sync account: "
        "on a first sync, an account that already exists in Kanidm); less likely, an entry "
        "of this account deleted and re-created at the source, or entries of this account "
        "exchanging values (a swap, a chain of renames)"
    ) == d.summary
    assert 2 == len(d.notes)  # the remedy once, the unknown base once
    assert d.notes[0].startswith(
        "this runner keeps a record (state_path) but has none for this account yet"
    )
    assert "With a state_path record" not in d.to_text()
    assert "with a state_path record" not in d.to_text()
    assert not d.narrowed
    assert [
        "name 'user1' may be held by another entry (Kanidm does not say which value collided)",
        "name 'user2' may be held by another entry (Kanidm does not say which value collided)",
    ] == sorted(s.reason for s in d.suspects)


def test_new_values_are_possibilities_when_several_entries_carry_one(
    fake: FakeKanidm, client: Client, tmp_path: pathlib.Path
) -> None:
    """A new group nobody holds and a new person a native holds: both 'may', not narrowed."""
    source = ListSource([person(1)])
    runner = Runner(client, source, state_path=tmp_path / "applied.json")
    runner.run_once()
    fake.store.add_person("carol")
    source.entries = [person(1), person(2, name="carol"), group(1, [1])]
    with pytest.raises(UniquenessError):
        runner.run_once()
    d = runner.last_report.diagnosis  # type: ignore[union-attr]
    assert d is not None
    assert not d.narrowed
    assert {pid(2), gid(1)} == {s.id for s in d.suspects}
    assert all("may hold it" in s.reason for s in d.suspects)
    assert any(n.startswith("2 entries carry values new to this sync account") for n in d.notes)


def test_a_lone_new_value_is_named_with_certainty(
    fake: FakeKanidm, client: Client, tmp_path: pathlib.Path
) -> None:
    """Over an exact record, the only new value is the collision: narrowed, stated."""
    source = ListSource([person(1)])
    runner = Runner(client, source, state_path=tmp_path / "applied.json")
    runner.run_once()
    fake.store.add_person("carol")
    source.entries = [person(1), person(2, name="carol")]
    with pytest.raises(UniquenessError):
        runner.run_once()
    d = runner.last_report.diagnosis  # type: ignore[union-attr]
    assert d is not None
    assert d.narrowed
    assert [pid(2)] == [s.id for s in d.suspects]
    assert "holds it (the only value of the request new to this account)" in d.suspects[0].reason
