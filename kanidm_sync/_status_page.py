"""The HTML status page of a sync service (``GET /``), rendered from a snapshot.

Owns: :func:`render_status_page` and :data:`STATUS_PAGE_CSP`, the Content-Security-Policy
the page is served with. Must not: do I/O or read a clock (the snapshot carries ``now``).
Pure.

The page is one server-rendered HTML5 document: its CSS is one inline ``<style>``
element (allowed by its hash in :data:`STATUS_PAGE_CSP`), it has no script at all, no
``style`` attribute, no image and no external asset, and it reads on a phone (viewport
meta, system fonts, tables that scroll sideways inside their box).

Everything shown comes from sources and from Kanidm, so it is untrusted: every value goes
through :func:`html.escape` (the plan and diagnosis fragments reused here escape theirs).
Nothing secret appears: the snapshot holds no token, per-entry changes carry digests of
password and TOTP imports and read "secret changed", and a cookie is shown only as its
summary (length, digest prefix, carried count), never its bytes.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import html
from collections.abc import Iterable, Mapping
from typing import Final

from ._plan_model import Action, EntryChange
from ._proto._state import SyncState
from ._report import RunReport
from ._service_model import ServiceSnapshot, cookie_summary
from ._types import JSONValue

__all__ = ["STATUS_PAGE_CSP", "render_status_page"]

_CSS: Final = """
:root{color-scheme:light dark;--fg:#1b1f24;--muted:#5b6570;--bg:#fff;--panel:#f5f7f9;
--line:#d5dbe1;--ok:#116329;--okbg:#dafbe1;--bad:#a40e26;--badbg:#ffebe9;--warn:#7d4e00;
--warnbg:#fff8c5;--code:#eef1f4}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#9aa5b1;--bg:#0d1117;
--panel:#161b22;--line:#30363d;--ok:#7ee2a8;--okbg:#0f2e1c;--bad:#ff9b9b;--badbg:#3b1219;
--warn:#f2cc60;--warnbg:#3a2e05;--code:#1f2630}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);line-height:1.45;
font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
header,main,footer{max-width:84rem;margin:0 auto;padding:0 1rem}
header{padding-top:1rem}
h1{font-size:1.4rem;margin:.2rem 0;overflow-wrap:anywhere}
h2{font-size:1.1rem;margin:1.4rem 0 .5rem;border-bottom:1px solid var(--line);
padding-bottom:.2rem}
h3{font-size:1rem;margin:1rem 0 .4rem}
p{margin:.4rem 0}
.muted,footer{color:var(--muted)}
footer{font-size:.85rem;padding-top:1rem;padding-bottom:2rem}
a{color:inherit}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;
font-size:.88em;background:var(--code);border-radius:4px}
code{padding:0 .2em;overflow-wrap:anywhere}
pre{padding:.6rem .8rem;overflow-x:auto;white-space:pre;max-width:100%}
pre.wrap{white-space:pre-wrap;overflow-wrap:anywhere}
td code{white-space:nowrap;overflow-wrap:normal}
.badge{display:inline-block;padding:.1rem .6rem;border-radius:1rem;font-weight:600;
margin:0 .3rem .3rem 0;border:1px solid currentColor}
.ok{color:var(--ok);background:var(--okbg)}
.bad{color:var(--bad);background:var(--badbg)}
.warn{color:var(--warn);background:var(--warnbg)}
.neutral{color:var(--muted);background:var(--panel)}
.box{border:1px solid var(--line);border-radius:6px;padding:.4rem .9rem;margin:.6rem 0;
background:var(--panel)}
.box.bad,.box.warn{border-color:currentColor}
.box.bad *,.box.warn *{color:var(--fg)}
.box.bad h2,.box.warn h2{color:inherit;border:0}
dl{display:grid;grid-template-columns:minmax(6rem,max-content) 1fr;gap:.25rem 1rem;margin:0}
dt{color:var(--muted)}
dd{margin:0;overflow-wrap:anywhere}
.scroll{overflow-x:auto;max-width:100%;border:1px solid var(--line);border-radius:6px}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{padding:.3rem .5rem;border-bottom:1px solid var(--line);text-align:left;
vertical-align:top}
th{background:var(--panel);vertical-align:bottom}
tbody tr:last-child td{border-bottom:0}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.t{white-space:nowrap}
td.d{min-width:16rem;overflow-wrap:anywhere}
.diagnosis{border-left:4px solid var(--bad);padding-left:.8rem}
.diagnosis ul{padding-left:1.2rem}
details{margin:.5rem 0}
summary{cursor:pointer}
@media (max-width:40rem){header,main,footer{padding-left:.6rem;padding-right:.6rem}
.box{padding:.3rem .6rem}.diagnosis{padding-left:.5rem}}
"""

STATUS_PAGE_CSP: Final = (
    "default-src 'none'; "
    f"style-src 'sha256-{base64.b64encode(hashlib.sha256(_CSS.encode()).digest()).decode()}'; "
    "img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
"""The Content-Security-Policy to serve the page with: nothing but its own ``<style>``
(allowed by hash), so that even a value that escaped escaping could run nothing."""

_MAX_CHANGES: Final = 300
"""Changed entries listed for the last run; the rest are counted (``/status.json`` has them)."""

_OUTCOME_CLASS: Final = {
    "applied": "ok",
    "nothing-to-do": "neutral",
    "planned": "neutral",
    "refused": "warn",
    "failed": "bad",
}

_COUNT_COLUMNS: Final = (
    ("create", "created"),
    ("update", "updated"),
    ("delete", "deleted"),
    ("create-or-replace", "created or replaced"),
    ("unchanged", "unchanged"),
)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _when(value: _dt.datetime | None, now: _dt.datetime, *, never: str = "never") -> str:
    """A time as ``<time>``: UTC to the second, and how long ago or ahead of ``now``."""
    if value is None:
        return _e(never)
    utc = value.astimezone(_dt.UTC)
    seconds = (value - now).total_seconds()
    relative = _duration_words(abs(seconds))
    if relative != "now":
        relative = f"in {relative}" if seconds > 0 else f"{relative} ago"
    return (
        f'<time datetime="{_e(utc.isoformat())}">{_e(utc.strftime("%Y-%m-%d %H:%M:%S"))} UTC'
        f'</time> <span class="muted">({_e(relative)})</span>'
    )


def _duration_words(seconds: float) -> str:
    if seconds < 1:
        return "now"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _seconds(value: float | None) -> str:
    if value is None:
        return ""
    if value < 0.0005:
        return "<1 ms"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _bytes(value: int) -> str:
    if value < 1024:
        return f"{value} B"
    if value < 1024 * 1024:
        return f"{value / 1024:.1f} KiB"
    return f"{value / 1024 / 1024:.1f} MiB"


def _state_words(state: SyncState | None, *, unknown: str = "unknown") -> str:
    """Kanidm's state in words: a cookie only as its summary, never its bytes."""
    summary = cookie_summary(state)
    if summary is None:
        return unknown
    if summary["state"] == "refresh":
        return "Refresh (waiting for a full sync)"
    held = summary.get("held")
    carried = ""
    if isinstance(held, int):
        carried = f", carrying {held:,} entries" + (
            "" if summary.get("held_exact") else " (at least)"
        )
    return f"Active: cookie of {summary['bytes']} bytes, sha256 {summary['sha256']}...{carried}"


def _badge(text: str, kind: str) -> str:
    return f'<span class="badge {kind}">{_e(text)}</span>'


def _list(items: Iterable[str]) -> str:
    body = "".join(f"<li>{item}</li>" for item in items)
    return f"<ul>{body}</ul>" if body else ""


def _header(s: ServiceSnapshot) -> str:
    title = f"kanidm-sync {s.account}".strip()
    badges = _badge("alive", "ok") if s.alive else _badge("not alive", "bad")
    badges += _badge("ready", "ok") if s.ready else _badge("not ready", "bad")
    last = s.last_report
    if last is not None:
        badges += _badge(f"last run {last.outcome}", _OUTCOME_CLASS.get(last.outcome, "neutral"))
    url = f"<p><code>{_e(s.kanidm_url)}</code></p>" if s.kanidm_url else ""
    reason = f"<p>{_e(s.ready_reason)}</p>" if s.ready_reason else ""
    return f"<header><h1>{_e(title)}</h1>{url}<p>{badges}</p>{reason}</header>"


def _config_error(s: ServiceSnapshot) -> str:
    if s.config_error is None:
        return ""
    return (
        '<section id="config-error" class="box bad"><h2>Configuration reload refused</h2>'
        "<p>The service goes on with the configuration it had; fix the file and reload "
        f'again.</p><pre class="wrap">{_e(s.config_error)}</pre></section>'
    )


def _notes(s: ServiceSnapshot) -> str:
    if not s.notes:
        return ""
    items = _list(_e(n) for n in s.notes)
    return f'<section id="notes" class="box warn"><h2>Notes</h2>{items}</section>'


def _overview(s: ServiceSnapshot) -> str:
    st = s.status
    runs = f"{st.runs:,} finished, {st.failures:,} failed"
    if st.consecutive_failures:
        runs += f" ({st.consecutive_failures:,} in a row)"
    if st.state == "running":
        runs += "; a run is in progress"
    schedule = _e(s.schedule or "none (runs are started by the caller)")
    rows = [
        ("Kanidm", f"<code>{_e(s.kanidm_url)}</code>" if s.kanidm_url else "not set"),
        ("Kanidm state", _e(_state_words(s.kanidm_state, unknown="unknown (not read yet)"))),
        ("Schedule", schedule),
        ("Next run", _when(st.next_run_at, s.now, never="not scheduled")),
        ("Started", _when(s.started_at, s.now, never="not started")),
        ("Runs", _e(runs)),
        ("Last success", _when(st.last_success_at, s.now)),
        ("Last failure", _when(st.last_error_at, s.now)),
    ]
    body = "".join(f"<dt>{_e(k)}</dt><dd>{v}</dd>" for k, v in rows)
    return f'<section id="overview"><h2>Service</h2><dl>{body}</dl></section>'


def _error_text(error: Mapping[str, JSONValue]) -> str:
    text = f"{error.get('type')}: {error.get('message')}"
    operation = error.get("operation_id")
    return text + (f" (Kanidm operation id {operation})" if operation else "")


def _diagnosis(report: RunReport) -> str:
    d = report.diagnosis
    if d is None:
        return ""
    # Diagnosis._repr_html_ escapes every value; when it could not narrow the cause down
    # it shows one rule as a template, so the rules for every candidate follow, folded.
    every = ""
    if d.rules_toml and d.rule_template and not d.narrowed:
        every = (
            "<details><summary>Rules for every candidate</summary>"
            f"<pre>{_e(d.rules_toml)}</pre></details>"
        )
    return f'<div class="diagnosis">{d._repr_html_()}{every}</div>'


def _last_error(s: ServiceSnapshot) -> str:
    failed = next((r for r in s.runs if r.error is not None), None)
    if failed is None:
        if s.status.last_error is None:
            return ""
        return (
            '<section id="last-error"><h2>Last error</h2>'
            f"<p>{_when(s.status.last_error_at, s.now)}</p>"
            f'<pre class="wrap">{_e(s.status.last_error)}</pre>'
            '<p class="muted">That run is no longer in the history kept here.</p></section>'
        )
    assert failed.error is not None
    since, box = "", "box bad"
    if failed is not s.runs[0]:
        later = s.runs.index(failed)
        since = (
            f'<p class="muted">{later} run(s) since then; the newest {_e(s.runs[0].outcome)}.</p>'
        )
        box = "box"
    return (
        f'<section id="last-error" class="{box}"><h2>Last error</h2>'
        f"<p>Run {_e(failed.outcome)}, {_when(failed.finished_at, s.now)}</p>"
        f'<pre class="wrap">{_e(_error_text(failed.error))}</pre>{since}{_diagnosis(failed)}'
        "</section>"
    )


def _run_row(r: RunReport, now: _dt.datetime) -> str:
    counts = "".join(f'<td class="n">{r.counts.get(key, 0):,}</td>' for key, _ in _COUNT_COLUMNS)
    requests = f"{r.requests_sent} / {r.requests_total}" if r.requests_total else "0"
    error = ""
    if r.error is not None:
        error = f'<span title="{_e(_error_text(r.error))}">{_e(r.error.get("type"))}</span>'
    outcome = _OUTCOME_CLASS.get(r.outcome, "neutral")
    return (
        f'<tr><td class="t">{_when(r.started_at, now)}</td>'
        f'<td><span class="badge {outcome}">{_e(r.outcome)}</span></td>{counts}'
        f'<td class="n">{_e(_seconds(r.duration))}</td>'
        f'<td class="n">{_e(_seconds(r.fetch_seconds))}</td>'
        f'<td class="n">{_e(requests)}</td><td class="n">{_e(_bytes(r.bytes_sent))}</td>'
        f"<td>{error}</td></tr>"
    )


def _runs(s: ServiceSnapshot) -> str:
    if not s.runs:
        return '<section id="runs"><h2>Recent runs</h2><p>No run finished yet.</p></section>'
    head = "".join(
        f"<th>{_e(h)}</th>"
        for h in (
            "started",
            "outcome",
            *(label for _, label in _COUNT_COLUMNS),
            "duration",
            "source fetch",
            "requests",
            "bytes sent",
            "error",
        )
    )
    rows = "".join(_run_row(r, s.now) for r in s.runs)
    return (
        f'<section id="runs"><h2>Recent runs <span class="muted">(last {len(s.runs)}, newest '
        f'first)</span></h2><div class="scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{rows}</tbody></table></div></section>"
    )


def _applied_words(r: RunReport) -> str:
    if r.outcome == "applied":
        return f"applied: {r.requests_sent} request(s), {_bytes(r.bytes_sent)}"
    if r.outcome == "nothing-to-do":
        return "nothing to send: Kanidm already holds every entry"
    if r.outcome == "planned":
        return "planned only (a dry run): nothing was sent"
    if r.requests_sent == 0:
        return "nothing of it was applied" + (
            ": Kanidm rolled the request back" if r.outcome == "failed" else ""
        )
    return (
        f"{r.requests_sent} of {r.requests_total} requests committed before the failure; "
        "the next run continues from what Kanidm holds"
    )


def _change_row(c: EntryChange) -> str:
    # EntryChange.describe: attribute-level diffs, secrets read "secret changed".
    ops = "<br>".join(_e(line) for line in c.describe())
    return (
        f"<tr><td>{_e(c.action.value)}</td><td>{_e(c.kind)}</td><td>{_e(c.label())}</td>"
        f'<td class="d">{ops}</td><td><code>{_e(c.id)}</code></td></tr>'
    )


def _last_run(s: ServiceSnapshot) -> str:
    r = s.last_report
    if r is None:
        return ""
    counts = ", ".join(f"{n:,} {a}" for a, n in r.counts.items() if n and a != "sent")
    facts = [
        f"Run {_e(r.outcome)}, {_when(r.finished_at, s.now)}, took {_e(_seconds(r.duration))}",
        _e(f"Entries: {counts or 'none'}; {_applied_words(r)}"),
        _e(f"Kanidm state before: {_state_words(r.state_before)}"),
    ]
    if r.state_after is not None:
        facts.append(_e(f"Kanidm state after: {_state_words(r.state_after)}"))
    if r.base_note:
        facts.append(_e(f"Diff base: {r.base_note}"))
    facts.extend(_e(f"Warning: {w.removeprefix('warning: ')}") for w in r.warnings)
    changed = [c for c in r.changes if c.action is not Action.UNCHANGED]
    if changed:
        rows = "".join(_change_row(c) for c in changed[:_MAX_CHANGES])
        more = len(changed) - _MAX_CHANGES
        rest = (
            f'<p class="muted">... and {more:,} more changed entries, not listed here '
            "(status.json has more).</p>"
            if more > 0
            else ""
        )
        table = (
            '<h3>Changes</h3><div class="scroll"><table><thead><tr><th>action</th>'
            "<th>kind</th><th>entry</th><th>attribute changes</th><th>id</th></tr></thead>"
            f"<tbody>{rows}</tbody></table></div>{rest}"
        )
    else:
        table = "<p>No entry changed.</p>"
    return f'<section id="last-run"><h2>Last run</h2>{_list(facts)}{table}</section>'


def render_status_page(snapshot: ServiceSnapshot, *, refresh_seconds: int | None = 60) -> str:
    """The whole status page, as text: UTF-8 HTML5, no script, no external asset.

    Shows the account, Kanidm's URL, alive and ready with the reason, Kanidm's state
    (a cookie only as its summary), the schedule and the next run, the recent runs
    (outcome, counts, duration, requests and bytes, error type), the last run's
    attribute-level changes, the last error with its diagnosis and the rules to paste,
    a refused configuration reload and the notes. Every value is escaped.

    Args:
        snapshot: what to show.
        refresh_seconds: reload the page every this many seconds (a ``<meta
            http-equiv="refresh">``, no script); ``None`` for never.

    Returns:
        The document; serve it as ``text/html; charset=utf-8`` with
        :data:`STATUS_PAGE_CSP`.
    """
    s = snapshot
    state = "ready" if s.ready else ("not ready" if s.alive else "not alive")
    title = f"{state} - kanidm-sync {s.account}".strip()
    refresh = (
        f'<meta http-equiv="refresh" content="{int(refresh_seconds)}">'
        if refresh_seconds is not None
        else ""
    )
    taken = _e(s.now.astimezone(_dt.UTC).strftime("%Y-%m-%d %H:%M:%S"))
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="robots" content="noindex">{refresh}<title>{_e(title)}</title>'
        f"<style>{_CSS}</style></head><body>"
        f"{_header(s)}<main>{_config_error(s)}{_notes(s)}{_overview(s)}{_last_error(s)}"
        f"{_runs(s)}{_last_run(s)}</main>"
        f'<footer>Snapshot taken {taken} UTC. The same data for scripts: <a href="status.json">'
        'status.json</a>; metrics: <a href="metrics">metrics</a>.</footer></body></html>\n'
    )
