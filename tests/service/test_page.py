"""The HTML status page (pure): what it shows, that it escapes everything, and no secret."""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import html.parser
import pathlib
import re
import uuid
from collections.abc import Iterator

import attrs
import pytest

from kanidm_sync import Action, ActiveState, Diagnosis, EntryChange, RefreshState, RunReport
from kanidm_sync._diagnosis import Suspect
from kanidm_sync._proto._codec import encode_cookie
from kanidm_sync._schedule import RunnerStatus
from kanidm_sync._service_model import ServiceSnapshot
from kanidm_sync._status_page import STATUS_PAGE_CSP, render_status_page

from ._page_scenario import (
    HOSTILE,
    NEW_PASSWORD_HASH,
    PASSWORD_HASH,
    SOURCE_COOKIE,
    TOTP_SECRET,
    History,
    conflict_history,
    snapshot_of,
)

NOW = _dt.datetime(2026, 11, 27, 10, 0, 0, tzinfo=_dt.UTC)
SCRIPT = '"><script>alert(1)</script>'


class Parsed(html.parser.HTMLParser):
    """The page as a browser's parser sees it: elements with attributes, and the text."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.chunks: list[str] = []
        self.styles: list[str] = []
        self._in_style = False
        self.feed(page)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        (self.styles if self._in_style else self.chunks).append(data)

    @property
    def text(self) -> str:
        """The text content, whitespace as in the document."""
        return "".join(self.chunks)

    def tags(self) -> set[str]:
        """Every element name used."""
        return {tag for tag, _ in self.elements}

    def attributes(self) -> Iterator[tuple[str, str, str | None]]:
        """Every (element, attribute, value)."""
        for tag, attributes in self.elements:
            for name, value in attributes.items():
                yield tag, name, value


@pytest.fixture
def history(tmp_path: pathlib.Path) -> Iterator[History]:
    """Two real runs over the in-memory Kanidm: applied, then a conflict with a diagnosis."""
    h = conflict_history(tmp_path / "state.json")
    yield h
    h.close()


def report(
    outcome: str = "applied",
    *,
    minutes_ago: float = 1,
    changes: tuple[EntryChange, ...] = (),
    **fields: object,
) -> RunReport:
    """A hand-made run report that finished ``minutes_ago`` before :data:`NOW`."""
    finished = NOW - _dt.timedelta(minutes=minutes_ago)
    return RunReport(
        outcome=outcome,  # type: ignore[arg-type]
        started_at=finished - _dt.timedelta(seconds=2),
        finished_at=finished,
        duration=2.0,
        changes=changes,
        **fields,  # type: ignore[arg-type]
    )


def snapshot(*runs: RunReport, **fields: object) -> ServiceSnapshot:
    """A snapshot at :data:`NOW` with ``runs`` (newest first)."""
    base = ServiceSnapshot(account="hr", kanidm_url="https://idm.example.com", now=NOW, runs=runs)
    return attrs.evolve(base, **fields)


def test_page_shows_the_service_its_runs_and_the_diagnosis(history: History) -> None:
    """Account, URL, readiness, state summary, schedule, runs, diagnosis, rules, changes."""
    snap = snapshot_of(history)
    page = Parsed(render_status_page(snap))
    text = page.text
    failed = history.reports[1]
    assert failed.diagnosis is not None
    for shown in (
        "kanidm-sync hr",
        "https://idm.example.com",
        "alive",
        "not ready",
        snap.ready_reason,
        "every 300 s",
        "in 5 min",  # the next run
        "2 finished, 1 failed (1 in a row)",
        "UniquenessError",
        failed.diagnosis.summary,
        "carol",
        failed.diagnosis.rules_toml,  # ready to paste, intact
        "nothing of it was applied: Kanidm rolled the request back",
        f'~displayname = "{HOSTILE}"',  # the attribute-level diff
    ):
        assert shown in text, shown
    assert re.search(r"Active: cookie of \d+ bytes, sha256 [0-9a-f]{12}\.\.\., carrying 2", text)
    page_text = render_status_page(snap)
    runs = page_text[page_text.index('id="runs"') : page_text.index('id="last-run"')]
    assert ["failed", "applied"] == re.findall(r'class="badge \w+">(\w+)<', runs)
    changes = page_text[page_text.index('id="last-run"') :]
    assert 1 + 2 == changes.count("<tr>")  # head, carol's create, user2's update


def test_runs_are_listed_newest_first_with_counts_and_error_type() -> None:
    """One row per run: outcome, counts, requests and bytes, the error type."""
    error = {"type": "SourceError", "message": "ldap down", "operation_id": None}
    runs = (
        report("failed", minutes_ago=1, error=error),
        report(
            "applied",
            minutes_ago=6,
            counts={"create": 3, "update": 2, "delete": 1, "unchanged": 40},
            requests_sent=2,
            requests_total=2,
            bytes_sent=5 * 1024,
            fetch_seconds=0.25,
        ),
    )
    page = Parsed(render_status_page(snapshot(*runs)))
    text = page.text
    assert text.index("SourceError") < text.index("5.0 KiB")
    assert "2 / 2" in text
    assert "250 ms" in text
    assert "6 min ago" in text
    titles = [v for tag, name, v in page.attributes() if tag == "span" and name == "title"]
    assert ["SourceError: ldap down"] == titles


HOSTILE_VALUES = (HOSTILE, SCRIPT, "</pre><img src=x onerror=alert(2)>", "' onmouseover='alert(3)")


def hostile_snapshot() -> ServiceSnapshot:
    """A snapshot whose every source-given value is markup."""
    a, b, c, d = HOSTILE_VALUES
    changes = (
        EntryChange(id=uuid.uuid4(), action=Action.CREATE, kind="person", name=a),
        EntryChange(id=uuid.uuid4(), action=Action.DELETE, kind="group", name=b),
        EntryChange(
            id=uuid.uuid4(),
            action=Action.UPDATE,
            kind="person",
            name="bob",
            external_id=c,
            patch=({"op": "replace", "path": "/displayname", "value": d},),
        ),
        EntryChange(
            id=uuid.uuid4(),
            action=Action.UPDATE,
            kind="group",
            name="staff",
            patch=({"op": "replace", "path": "/member", "value": [{"external_id": b}]},),
            values_added={"member": ({"external_id": b},)},
        ),
    )
    suspect = Suspect(
        id=uuid.uuid4(), source_id=uuid.uuid4(), kind="person", name=a, external_id=c, reason=b
    )
    diagnosis = Diagnosis(
        error=d, summary=a, suspects=(suspect,), narrowed=True, rules_toml=f"# {b}", notes=(c,)
    )
    failed = report(
        "failed",
        changes=changes,
        error={"type": b, "message": a, "operation_id": c},
        diagnosis=diagnosis,
        warnings=(f"warning: {c}",),
        base_note=d,
    )
    return snapshot(
        failed,
        account=b,
        kanidm_url=c,
        schedule=d,
        ready_reason=a,
        config_error=b,
        notes=(a, c),
        status=RunnerStatus(last_error=a),
    )


def test_markup_from_sources_is_shown_as_text_and_never_parsed() -> None:
    """Names, values, errors, notes and config errors with markup: text, no element."""
    page_text = render_status_page(hostile_snapshot())
    page = Parsed(page_text)
    assert not {"img", "script", "iframe", "svg", "object"} & page.tags()
    handlers = [(t, n) for t, n, _ in page.attributes() if n.startswith("on")]
    assert [] == handlers
    for value in HOSTILE_VALUES:
        assert value in page.text, value
    assert "<script" not in page_text.lower()
    assert "<img" not in page_text.lower()
    titles = [v for tag, name, v in page.attributes() if name == "title"]
    assert [f"{SCRIPT}: {HOSTILE} (Kanidm operation id {HOSTILE_VALUES[2]})"] == titles


def test_the_page_has_no_script_no_external_asset_and_its_style_matches_the_csp() -> None:
    """No script, no style attribute, no external URL; the one <style> has the CSP's hash."""
    page_text = render_status_page(hostile_snapshot())
    page = Parsed(page_text)
    assert "script" not in page.tags()
    assert not [n for _, n, _ in page.attributes() if n in ("style", "src", "srcset")]
    hrefs = [v for t, n, v in page.attributes() if n == "href"]
    assert ["status.json", "metrics"] == hrefs
    assert 1 == len(page.styles)
    digest = base64.b64encode(hashlib.sha256(page.styles[0].encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in STATUS_PAGE_CSP
    assert "default-src 'none'" in STATUS_PAGE_CSP
    assert "script-src" not in STATUS_PAGE_CSP  # default-src 'none' covers scripts


def test_the_page_is_made_for_phones() -> None:
    """A viewport meta, system fonts, tables that scroll inside their box."""
    page = Parsed(render_status_page(hostile_snapshot()))
    metas = [a for t, a in page.elements if t == "meta"]
    assert {"name": "viewport", "content": "width=device-width, initial-scale=1"} in metas
    css = page.styles[0]
    assert "system-ui" in css
    assert ".scroll{overflow-x:auto" in css
    scrolls = [a.get("class") for t, a in page.elements if t == "div"]
    tables = [t for t, _ in page.elements if t == "table"]
    assert len(tables) == scrolls.count("scroll")


def test_refresh_is_a_meta_tag_and_can_be_turned_off() -> None:
    """The page reloads itself by a meta refresh (no script); ``None`` turns it off."""
    assert '<meta http-equiv="refresh" content="60">' in render_status_page(snapshot())
    assert '<meta http-equiv="refresh" content="15">' in render_status_page(
        snapshot(), refresh_seconds=15
    )
    assert "refresh" not in render_status_page(snapshot(), refresh_seconds=None)


def test_no_secret_appears(tmp_path: pathlib.Path) -> None:
    """Token, password hashes, TOTP secret, cookie bytes never appear; a secret reads "changed"."""
    h = conflict_history(tmp_path / "state.json", secrets=True)
    try:
        snap = snapshot_of(h)
        page = render_status_page(snap)
    finally:
        h.close()
    assert "secret changed" in Parsed(page).text
    assert isinstance(snap.kanidm_state, ActiveState)
    kanidm_cookie = snap.kanidm_state.cookie
    forbidden = {
        "token": h.account.token,
        "password hash": PASSWORD_HASH,
        "new password hash": NEW_PASSWORD_HASH,
        "password digest": PASSWORD_HASH[9:40],
        "TOTP secret": TOTP_SECRET,
        "source cookie": SOURCE_COOKIE.decode(),
        "source cookie (wire)": encode_cookie(SOURCE_COOKIE),
        "Kanidm cookie (wire)": encode_cookie(kanidm_cookie)[:16],
        "Kanidm cookie (wire, end)": encode_cookie(kanidm_cookie)[-13:],
    }
    for what, value in forbidden.items():
        assert value not in page, what
        assert value not in html.unescape(page), what


def test_before_the_first_run() -> None:
    """No run yet: the page says so, and what it knows."""
    page = Parsed(
        render_status_page(
            snapshot(alive=True, ready_reason="no run finished yet", kanidm_state=None)
        )
    ).text
    assert "No run finished yet." in page
    assert "unknown (not read yet)" in page
    assert "not scheduled" in page
    assert "Last error" not in page


def test_not_alive_and_refresh_state() -> None:
    """A stopped loop reads "not alive"; Kanidm in Refresh reads so, with no cookie."""
    page = Parsed(render_status_page(snapshot(alive=False, kanidm_state=RefreshState()))).text
    assert "not alive" in page
    assert "Refresh (waiting for a full sync)" in page


def test_a_refused_reload_and_notes_are_shown() -> None:
    """A refused configuration reload with its error, and the notes, are on top."""
    page = render_status_page(
        snapshot(
            config_error="rules.toml: line 3: expected '='",
            notes=("stopping after the current run (SIGTERM)",),
        )
    )
    text = Parsed(page).text
    assert "Configuration reload refused" in text
    assert "rules.toml: line 3: expected '='" in text
    assert "stopping after the current run (SIGTERM)" in text
    assert page.index("config-error") < page.index('id="runs"')


def test_an_older_error_says_what_ran_since() -> None:
    """The last error stays shown after a later success, without the alarm colour."""
    error = {"type": "SourceError", "message": "ldap down"}
    page = render_status_page(
        snapshot(report("applied", minutes_ago=1), report("failed", minutes_ago=6, error=error))
    )
    assert '<section id="last-error" class="box">' in page
    assert "1 run(s) since then; the newest applied." in Parsed(page).text
    newest_failed = render_status_page(snapshot(report("failed", error=error)))
    assert '<section id="last-error" class="box bad">' in newest_failed


def test_an_error_no_longer_in_the_history_is_still_shown() -> None:
    """The runner's last error, when its run fell out of the kept history."""
    status = RunnerStatus(last_error="SourceError: ldap down", last_error_at=NOW)
    text = Parsed(render_status_page(snapshot(report("applied"), status=status))).text
    assert "SourceError: ldap down" in text
    assert "no longer in the history" in text


def test_a_templated_diagnosis_folds_the_rules_for_every_candidate() -> None:
    """Not narrowed: the template is shown, the rules for every candidate in a <details>."""
    suspects = tuple(
        Suspect(
            id=uuid.uuid4(),
            source_id=uuid.uuid4(),
            kind="person",
            name=f"p{i}",
            external_id=None,
            reason="has a mail address",
            attribute="mail",
        )
        for i in (1, 2)
    )
    diagnosis = Diagnosis(
        error="attributeuniqueness",
        summary="a value of mail is already used",
        suspects=suspects,
        rules_toml="[exclude]\nids = [1, 2]",
        rule_template="[exclude]\nids = [1]",
        narrowed=False,
    )
    error = {"type": "UniquenessError", "message": "409"}
    page = render_status_page(snapshot(report("failed", error=error, diagnosis=diagnosis)))
    assert "<details><summary>Rules for every candidate</summary>" in page
    assert "ids = [1, 2]" in Parsed(page).text


def test_changes_are_capped_with_a_count_of_the_rest() -> None:
    """At most 300 changed entries are listed; the rest are counted, unchanged never."""
    created = [
        EntryChange(id=uuid.uuid4(), action=Action.CREATE, kind="person", name=f"p{i}-x")
        for i in range(305)
    ]
    same = EntryChange(id=uuid.uuid4(), action=Action.UNCHANGED, kind="person", name="same")
    changes = (*created, same)
    page = Parsed(render_status_page(snapshot(report(changes=changes))))
    assert "... and 5 more changed entries" in page.text
    # Names end in "-x" so a name next to an id in the joined text cannot forge one.
    assert "p299-x" in page.text
    assert "p300-x" not in page.text
    assert ">same<" not in render_status_page(snapshot(report(changes=changes)))
