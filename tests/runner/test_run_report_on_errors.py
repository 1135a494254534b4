"""A failed or refused run's exception carries the run's report (issue 12, item 8)."""

from __future__ import annotations

import pathlib

import pytest

from kanidm_sync import Client, DeletionGuardError, Runner, UniquenessError
from kanidm_sync.testing import FakeKanidm

from .conftest import ListSource, person, pid


def test_a_rejected_run_raises_with_its_report_and_diagnosis(
    fake: FakeKanidm, client: Client, tmp_path: pathlib.Path
) -> None:
    """The exception's run_report is the failed report, with the diagnosis."""
    fake.store.add_person("carol")
    source = ListSource([person(1)])
    Runner(client, source, state_path=tmp_path / "a.json").run_once()
    source.entries = [person(1), person(3, name="carol")]
    runner = Runner(client, source, state_path=tmp_path / "a.json")
    with pytest.raises(UniquenessError) as caught:
        runner.run_once()
    report = caught.value.run_report
    assert report is not None
    assert report is runner.last_report
    assert "failed" == report.outcome
    assert report.diagnosis is not None
    assert [pid(3)] == [s.id for s in report.diagnosis.suspects]
    assert "nothing was applied" in report.to_text()


def test_a_refused_run_raises_with_its_report(client: Client, tmp_path: pathlib.Path) -> None:
    """A guard's refusal carries the refused report."""
    source = ListSource([person(i) for i in range(100)])
    runner = Runner(client, source, state_path=tmp_path / "a.json")
    runner.run_once()
    source.entries = source.entries[:30]
    with pytest.raises(DeletionGuardError) as caught:
        runner.run_once()
    report = caught.value.run_report
    assert report is not None
    assert "refused" == report.outcome
    assert "nothing was sent" in report.to_text()


def test_a_source_error_and_a_concurrent_run_carry_their_report(
    client: Client, tmp_path: pathlib.Path
) -> None:
    """Any failure of the library's own raises with the report, also the lock's refusal."""
    from kanidm_sync import ConcurrentRunError, Progress, SourceError
    from kanidm_sync.adapters import SourceBatch

    class Broken:
        def fetch(self, state: object) -> SourceBatch:
            raise SourceError("the HR API is down")

    runner = Runner(client, Broken())
    with pytest.raises(SourceError) as caught:
        runner.run_once()
    assert caught.value.run_report is runner.last_report
    assert caught.value.run_report is not None
    assert "failed" == caught.value.run_report.outcome

    record = tmp_path / "b.json"
    refused: list[ConcurrentRunError] = []
    other = Runner(client, ListSource([person(2)]), state_path=record)

    def progress(p: Progress) -> None:
        if p.phase == "plan":
            try:
                other.run_once()
            except ConcurrentRunError as exc:
                refused.append(exc)

    Runner(client, ListSource([person(1)]), state_path=record, progress=progress).run_once()
    assert refused
    assert refused[0].run_report is other.last_report


def test_the_report_times_the_source_s_fetch(client: Client) -> None:
    """RunReport.fetch_seconds: the time spent in the source (for the fetch metric)."""
    import time

    class Slow(ListSource):
        def fetch(self, state: object) -> object:  # type: ignore[override]
            time.sleep(0.05)
            return super().fetch(state)  # type: ignore[arg-type]

    report = Runner(client, Slow([person(1)])).run_once()
    assert report.fetch_seconds is not None
    assert 0.05 <= report.fetch_seconds < report.duration
    assert report.to_dict()["fetch_seconds"] == round(report.fetch_seconds, 6)
