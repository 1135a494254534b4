"""How a run's report and progress read (issue 12, parts of items 5 and 8).

* A validation warning reads "warning: ..." once, in the HTML view and the text.
* A failed or refused run's report renders the error, what happened to Kanidm's state
  and the diagnosis (``RunReport.to_text()``).
* Progress messages are words, not reprs, and count real entries, not keep-alives.
"""

from __future__ import annotations

import pathlib
import re

import attrs
import pytest

from kanidm_sync import (
    Client,
    DeletionGuardError,
    Group,
    Progress,
    Runner,
    UniquenessError,
)
from kanidm_sync.testing import FakeKanidm

from .conftest import ListSource, person, pid


def test_a_validation_warning_reads_warning_once(client: Client) -> None:
    """A C1 control character is a warning: 'warning: warning:' appears nowhere."""
    odd = person(1, displayname="User\x85One")
    report = Runner(client, ListSource([odd, person(2)])).run_once()
    assert report.warnings
    assert any(w.startswith("warning: ") for w in report.warnings)  # as validation words it
    html = report._repr_html_()
    assert "warning: warning:" not in html
    assert "<li>warning: entries[0]" in html
    text = report.to_text()
    assert "warning: warning:" not in text
    assert "\n  warning: entries[0]" in text


def test_a_failed_report_renders_the_error_the_state_and_the_diagnosis(
    fake: FakeKanidm, client: Client, tmp_path: pathlib.Path
) -> None:
    """A native carol: the text says what failed, that nothing applied, and what to do."""
    source = ListSource([person(1)])
    Runner(client, source, state_path=tmp_path / "a.json").run_once()
    fake.store.add_person("carol")
    source.entries = [person(1), person(3, name="carol")]
    runner = Runner(client, source, state_path=tmp_path / "a.json")
    with pytest.raises(UniquenessError):
        runner.run_once()
    report = runner.last_report
    assert report is not None
    text = report.to_text()
    lines = text.splitlines()
    assert lines[0].startswith("run failed: 1 create, 1 unchanged; 0 of 1 requests committed")
    assert lines[1].startswith("  error: UniquenessError: HTTP 409")
    assert re.match(
        r"  Kanidm state: Active \(cookie .*\), unchanged \(nothing was applied: Kanidm "
        r"rolled the failing request back\)$",
        lines[2],
    )
    assert "  Kanidm rejected the change (attributeuniqueness)" in text
    assert f'  [remap.id."{pid(3)}"]' in text
    html = report._repr_html_()
    assert "error: UniquenessError: HTTP 409" in html
    assert "nothing was applied" in html
    assert "carol-sync" in html


def test_a_run_failing_after_committed_requests_says_how_far_it_got(
    fake: FakeKanidm, client: Client, tmp_path: pathlib.Path
) -> None:
    """A split whose later request is refused: the committed ones are counted."""
    fake.store.add_person("taken")
    persons = [person(i) for i in range(1, 41)]
    # A group goes after the persons it names, so the clash comes in a later request.
    clash = Group(
        id=pid(99),
        external_id="cn=taken",
        name="taken",
        member=[str(p.external_id) for p in persons],
    )
    source = ListSource([*persons, clash])
    runner = Runner(client, source, state_path=tmp_path / "a.json", max_request_bytes=5000)
    with pytest.raises(UniquenessError):
        runner.run_once()
    report = runner.last_report
    assert report is not None
    assert 0 < report.requests_sent < report.requests_total
    assert (
        f"-> an intermediate cookie: {report.requests_sent} of {report.requests_total} "
        "requests committed before the failure"
    ) in report.to_text()


def test_a_refused_report_says_nothing_was_sent(client: Client, tmp_path: pathlib.Path) -> None:
    """A deletion guard: refused, the guard's message, nothing sent."""
    source = ListSource([person(i) for i in range(100)])
    runner = Runner(client, source, state_path=tmp_path / "a.json")
    runner.run_once()
    source.entries = source.entries[:30]
    with pytest.raises(DeletionGuardError):
        runner.run_once()
    report = runner.last_report
    assert report is not None
    text = report.to_text()
    assert text.startswith("run refused: ")
    assert "  error: DeletionGuardError: " in text
    assert "unchanged (nothing was sent)" in text


def test_progress_is_worded_and_counts_entries_not_keep_alives(
    client: Client, tmp_path: pathlib.Path
) -> None:
    """A first sync in several requests: entries end at the image's size; no repr.

    The first request of a split from Refresh carries keep-alives of every other entry.
    """
    events: list[Progress] = []
    entries = [person(i) for i in range(60)]
    runner = Runner(
        client,
        ListSource(entries),
        state_path=tmp_path / "a.json",
        max_request_bytes=6000,
        progress=events.append,
    )
    report = runner.run_once()
    applies = [p for p in events if p.phase == "apply"]
    assert report.requests_sent == len(applies) > 1
    assert [p.entries for p in applies] == sorted(p.entries for p in applies)
    assert len(entries) == applies[-1].entries
    for p in events:
        assert not re.search(r"\b(ActiveState|RefreshState|FullImage|Delta|Plan)\(", p.message)
        assert "<" not in p.message
    assert attrs.evolve(applies[-1], message="") != applies[-1]


def test_every_phase_reports_its_own_units(client: Client, tmp_path: pathlib.Path) -> None:
    """Not "1/1" everywhere: fetch counts entries, plan and done count requests."""
    events: list[Progress] = []
    runner = Runner(
        client,
        ListSource([person(i) for i in range(60)]),
        state_path=tmp_path / "a.json",
        max_request_bytes=6000,
        progress=events.append,
    )
    report = runner.run_once()
    by_phase = {p.phase: p for p in events}
    assert 60 == by_phase["fetch"].entries
    assert (0, report.requests_total, 60) == (
        by_phase["plan"].done,
        by_phase["plan"].total,
        by_phase["plan"].entries,
    )
    assert (report.requests_sent, report.requests_total, 60) == (
        by_phase["done"].done,
        by_phase["done"].total,
        by_phase["done"].entries,
    )
    assert report.requests_total > 1
