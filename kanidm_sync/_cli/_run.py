"""``kanidm-sync plan`` / ``run`` / ``status``: a sync driven by a configuration file.

Owns: the options of those commands, building the :class:`~kanidm_sync.Runner` from a
:class:`~._config.RunConfig`, printing plans and reports, the status file written after
each run (``<state dir>/status.json``) and read by ``status``, the lock that lets one
``run`` at a time use a state directory (``<state dir>/status.json.lock``), and the
``--schedule`` loop (an interval, or a cron expression as the reference tools follow it).

Must not: decide anything the runner decides (plans, guards, diagnosis), or print the sync
token.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType

import attrs

from .._auth import load_client_config
from .._client import Client
from .._exceptions import AuthenticationError, DataError, KanidmSyncError
from .._files import write_atomic
from .._guards import GuardError
from .._lock import RunLock
from .._proto._state import ActiveState, SyncState
from .._report import Progress, RunReport
from .._runner import Runner
from .._schedule import CronSchedule, Schedule
from .._types import JSONObject
from ._config import CronSpec, RunConfig, load_run_config
from ._output import EXIT_FAILED, EXIT_OK, Output, UsageError

__all__ = ["add_parsers", "report_text"]

STATUS_FORMAT = "kanidm-sync status"


def _config_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c", "--config", required=True, metavar="FILE",
        help="a kanidm-sync TOML file, or a kanidm-ldap-sync / kanidm-ipa-sync file",
    )  # fmt: skip
    parser.add_argument("-H", "--url", help="Kanidm's URL, overriding the file")
    parser.add_argument("-C", "--ca", metavar="PEM", help="a CA certificate file to trust")
    parser.add_argument("--state-dir", metavar="DIR", help="where the local record and status live")
    parser.add_argument(
        "--insecure-http", action="store_true", help="allow http:// (a loopback test server)"
    )


def _load(args: argparse.Namespace, out: Output) -> RunConfig:
    config = _read_config(args)
    for warning in config.warnings:
        out.warn(warning)
    return config


def _read_config(args: argparse.Namespace) -> RunConfig:
    url, ca = args.url, args.ca
    if _is_reference_file(args.config):
        # The reference tools' files do not name Kanidm; the Kanidm client config does, as
        # for kanidm-ldap-sync / kanidm-ipa-sync (its uri and ca_path, then KANIDM_URL and
        # KANIDM_CA_PATH over it).
        client_config = load_client_config()
        url = url or client_config.uri
        ca = ca or client_config.ca_path
    elif url is None:
        url = os.environ.get("KANIDM_URL") or None
    return load_run_config(
        args.config,
        url=url,
        state_dir=args.state_dir,
        insecure_http=args.insecure_http,
        ca_path=ca,
    )


def _is_reference_file(path: str) -> bool:
    try:
        with open(path, "rb") as handle:
            head = handle.read(65536)
    except OSError:
        return False
    return b"ldap_uri" in head or b"ipa_uri" in head


class _Phases:
    """The runner's progress callback: passes events to the output, keeps the last one."""

    def __init__(self, out: Output) -> None:
        self._out = out
        self.last: Progress | None = None

    def __call__(self, event: Progress) -> None:
        self.last = event
        self._out.progress(event)


def _runner(config: RunConfig, client: Client, phases: _Phases) -> Runner:
    config.make_state_dir()
    return Runner(
        client,
        config.build_source(),
        rules=config.rules,
        state_path=config.record_path,
        guards=config.guards,
        progress=phases,
    )


@contextlib.contextmanager
def _state_lock(config: RunConfig) -> Iterator[None]:
    """One ``run`` process at a time per state directory, for as long as it runs.

    Each process adds its runs to the status file it read at start; a second process
    would overwrite the first one's entries. The runner's own lock (``record.json.lock``)
    covers each run; this one (``status.json.lock``) covers the process, sleep included.
    """
    config.make_state_dir()
    with RunLock(config.status_path):  # ConcurrentRunError, worded by _main
        yield


def _state_text(state: SyncState | None) -> str:
    if state is None:
        return "unknown"
    if isinstance(state, ActiveState):
        return f"active ({len(state.cookie)}-byte cookie)"
    return "refresh"


def report_text(report: RunReport) -> str:
    """A run report for a terminal: outcome, counts, states, warnings.

    Args:
        report: the report.

    Returns:
        A few lines.
    """
    counts = ", ".join(f"{n} {a}" for a, n in report.counts.items() if n and a != "sent")
    if report.outcome == "nothing-to-do":
        sent = "; nothing to send"
    elif report.requests_total:
        sent = f"; {report.requests_sent} of {report.requests_total} requests sent"
    else:
        sent = ""
    lines = [
        f"run {report.outcome}: {counts or 'no entries'}{sent}",
        f"  Kanidm state: {_state_text(report.state_before)} -> {_state_text(report.state_after)}",
    ]  # fmt: skip
    # Validation problems already read "warning: entries[3] ...": say it once.
    lines.extend(f"  warning: {w.removeprefix('warning: ')}" for w in report.warnings)
    return "\n".join(lines)


def _read_status(config: RunConfig) -> JSONObject | None:
    """The status file's document, or ``None`` when there is none yet."""
    try:
        saved: object = json.loads(config.status_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, RecursionError) as exc:
        # RecursionError: json's scanner on a hostile, deeply nested file.
        raise KanidmSyncError(f"{config.status_path}: unreadable status file ({exc})") from exc
    if not isinstance(saved, dict) or saved.get("format") != STATUS_FORMAT:
        raise KanidmSyncError(f"{config.status_path}: not a kanidm-sync status file")
    return saved


def _earlier(config: RunConfig) -> JSONObject:
    """The status earlier processes recorded, which this process's runs add to."""
    try:
        saved = _read_status(config)
    except KanidmSyncError:
        return {}  # an unreadable file is replaced by this process's status
    status = saved.get("status") if saved is not None else None
    return status if isinstance(status, dict) else {}


def _count(data: JSONObject, key: str) -> int:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def merge_status(earlier: JSONObject, now: JSONObject) -> JSONObject:
    """This process's status (``RunnerStatus.to_dict()``) on top of earlier processes'.

    Each CLI process starts a new runner, whose counters start at zero; a health check
    reading ``status`` needs the whole history: runs and failures add up, the consecutive
    failures carry over until a success, and the last success and last error are the
    latest known.

    Args:
        earlier: the ``status`` object the status file held when this process started.
        now: this process's status.

    Returns:
        The merged status object.
    """
    if not earlier:
        return now
    if not _count(now, "runs"):
        return {**earlier, "next_run_at": now.get("next_run_at")}
    merged = dict(now)
    merged["runs"] = _count(earlier, "runs") + _count(now, "runs")
    merged["failures"] = _count(earlier, "failures") + _count(now, "failures")
    if now.get("last_success_at") is None:
        # No success in this process: the streak started in an earlier one.
        merged["consecutive_failures"] = _count(earlier, "consecutive_failures") + _count(
            now, "consecutive_failures"
        )
        merged["last_success_at"] = earlier.get("last_success_at")
    if now.get("last_error_at") is None:
        for key in ("last_error_at", "last_error", "last_error_detail"):
            merged[key] = earlier.get(key)
    return merged


def _write_status(
    config: RunConfig,
    runner: Runner,
    schedule: Schedule | None,
    earlier: JSONObject,
    *,
    now: JSONObject | None = None,
) -> None:
    status = runner.status
    data: JSONObject = {
        "format": STATUS_FORMAT,
        "version": 1,
        "config": str(config.path),
        "schedule_interval": None
        if schedule is None or isinstance(schedule, CronSchedule)
        else schedule.interval,
        "schedule_cron": schedule.cron.source if isinstance(schedule, CronSchedule) else None,
        "status": merge_status(earlier, status.to_dict() if now is None else now),
        "last_report": None
        if status.last_report is None or now is not None
        else {k: v for k, v in status.last_report.to_dict().items() if k != "changes"},
    }
    # Like the runner's record: fsynced before the rename and 0600, since the last error
    # names entries and their data.
    write_atomic(config.status_path, json.dumps(data, indent=2, ensure_ascii=False))


def _interrupted_status(runner: Runner, phases: _Phases) -> JSONObject:
    """This process's status with the run Ctrl-C cut short counted as a failed run."""
    now = _dt.datetime.now(_dt.UTC).isoformat()
    status = runner.status.to_dict()
    status.update(
        state="interrupted",
        healthy=False,
        runs=_count(status, "runs") + 1,
        failures=_count(status, "failures") + 1,
        consecutive_failures=_count(status, "consecutive_failures") + 1,
        last_run_at=now,
        last_error_at=now,
        last_error="interrupted (Ctrl-C): the apply may have committed; the next run "
        "re-reads Kanidm's state",
        last_error_detail={
            "type": "KeyboardInterrupt",
            "phase": phases.last.phase if phases.last is not None else None,
        },
        next_run_at=None,
    )
    return status


def _interrupted_note(phases: _Phases) -> str:
    last = phases.last
    done = (
        f" ({last.done} of {last.total} requests had committed)"
        if last is not None and last.phase == "apply"
        else ""
    )
    return (
        f"interrupted during the run{done}: the apply may have committed, in whole or in "
        "part; Kanidm's state is what counts, and the next run re-reads it and converges "
        "(check with `kanidm-sync plan`)"
    )


def _plan(args: argparse.Namespace, out: Output) -> int:
    config = _load(args, out)
    with config.account.client() as client:
        runner = _runner(config, client, _Phases(out))
        plan = runner.plan(allow_deletes=args.allow_deletes)
    out.result(plan.to_text(show_unchanged=args.show_unchanged), plan.to_dict())
    return EXIT_OK


def _explain_failure(exc: Exception, runner: Runner, out: Output) -> None:
    """Notes on stderr after a failed run: the diagnosis, or the refused plan."""
    report = runner.last_report
    if report is not None and report.diagnosis is not None and not out.json_mode:
        out.note(report.diagnosis.to_text())
    if isinstance(exc, DataError):
        out.note("nothing was applied: Kanidm rolled the whole request back")
    if isinstance(exc, GuardError) and not out.json_mode:
        out.note(exc.plan.to_text())


def _run_once(args: argparse.Namespace, config: RunConfig, client: Client, out: Output) -> int:
    earlier = _earlier(config)
    phases = _Phases(out)
    runner = _runner(config, client, phases)
    try:
        report = runner.run_once(allow_deletes=args.allow_deletes, dry_run=args.dry_run)
    except KeyboardInterrupt:
        if not args.dry_run:
            out.warn(_interrupted_note(phases))
            _write_status(config, runner, None, earlier, now=_interrupted_status(runner, phases))
        raise
    except Exception as exc:
        _explain_failure(exc, runner, out)
        if not args.dry_run:
            _write_status(config, runner, None, earlier)
        if runner.last_report is not None:
            out.context = {"report": runner.last_report.to_dict()}
        raise
    if not args.dry_run:
        _write_status(config, runner, None, earlier)
    out.result(report_text(report), {"ok": True, "report": report.to_dict()})
    return EXIT_OK


def _utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


def _schedule(args: argparse.Namespace, config: RunConfig, out: Output) -> Schedule:
    """What ``--schedule`` follows: its SECONDS, else the file's interval or cron."""
    if args.schedule:
        # SECONDS overrides the file's interval (its jitter and backoff stay) or cron.
        if isinstance(config.schedule, Schedule):
            return attrs.evolve(config.schedule, interval=args.schedule)
        return Schedule(interval=args.schedule)
    if isinstance(config.schedule, CronSpec):
        schedule = config.schedule.build(_utcnow)
        out.note(
            f"following the schedule {schedule.cron.source!r} (UTC); first run at "
            f"{schedule.next_fire(0):%Y-%m-%dT%H:%M:%SZ}"
        )
        return schedule
    if isinstance(config.schedule, Schedule):
        return config.schedule
    raise UsageError(
        "--schedule needs an interval: give seconds (--schedule 300) or set "
        "[schedule] interval (or cron) in the configuration"
    )


def _run(args: argparse.Namespace, out: Output) -> int:
    config = _load(args, out)
    if args.schedule is None:
        with _state_lock(config), config.account.client() as client:
            return _run_once(args, config, client, out)
    schedule = _schedule(args, config, out)
    bind = config.reference.status_bind if config.reference is not None else None
    if bind:
        out.warn(
            f"{config.path}: status_bind = {bind!r} is not served: kanidm-sync has no "
            f"status listener yet; `kanidm-sync status -c {config.path}` reads the status "
            f"({config.status_path}) and exits 0 only when the last run succeeded"
        )
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    with _state_lock(config), config.account.client() as client:
        earlier = _earlier(config)
        runner = _runner(config, client, _Phases(out))
        seen = 0

        def _sleep(seconds: float) -> None:
            nonlocal seen
            if runner.status.runs == 0:
                # Before the first run (a cron schedule waits for its time): the status
                # says when it is due.
                _write_status(config, runner, schedule, earlier)
            _after_run(config, runner, schedule, out, seen, earlier)
            seen = runner.status.runs
            stop.wait(seconds)

        status = runner.run_forever(
            schedule, stop=stop.is_set, max_runs=args.max_runs, sleep=_sleep
        )
        _after_run(config, runner, schedule, out, seen, earlier)
        # Always rewrite at the end: the loop stopped, so no run is due any more.
        _write_status(config, runner, schedule, earlier)
    out.note(f"stopped after {status.runs} runs ({status.failures} failed)")
    # Stopped before the first run (a cron schedule waits for its time): nothing failed.
    ok = status.healthy or status.runs == 0
    out.result("", {"ok": ok, "status": status.to_dict()})
    return EXIT_OK if ok else EXIT_FAILED


def _after_run(
    config: RunConfig,
    runner: Runner,
    schedule: Schedule,
    out: Output,
    seen: int,
    earlier: JSONObject,
) -> None:
    """Print and record the run that just finished (once per run)."""
    status = runner.status
    if status.runs == seen or status.last_report is None:
        return
    _write_status(config, runner, schedule, earlier)
    report = status.last_report
    when = report.finished_at.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if report.ok:
        out.note(f"{when} {report_text(report).splitlines()[0]}")
    else:
        error = report.error or {}
        out.note(f"{when} run {report.outcome}: {error.get('type')}: {error.get('message')}")
        if report.diagnosis is not None:
            out.note(report.diagnosis.to_text())


def _status(args: argparse.Namespace, out: Output) -> int:
    config = _load(args, out)
    saved = _read_status(config)
    with config.account.client() as client:
        try:
            state = client.get_state()
        except AuthenticationError as exc:
            # After a finalise or terminate the account is gone and its token with it;
            # Kanidm cannot say more than 401.
            raise AuthenticationError(
                "the sync token was refused: the sync account may have been finalised or "
                "terminated, or its token destroyed or replaced (check with `kanidm-sync "
                "account list` as an administrator)",
                status_code=exc.status_code,
                variant=exc.variant,
                detail=exc.detail,
                operation_id=exc.operation_id,
                body=exc.body,
                method=exc.method,
                url=exc.url,
            ) from exc
    raw_last = saved.get("status") if saved is not None else None
    last: JSONObject = raw_last if isinstance(raw_last, dict) else {}
    healthy = bool(last.get("healthy")) if last else False
    data: JSONObject = {
        "kanidm_state": "active" if isinstance(state, ActiveState) else "refresh",
        "status": last or None,
        "last_report": saved.get("last_report") if isinstance(saved, dict) else None,
    }
    if not last:
        text = (
            f"Kanidm state: {_state_text(state)}\n"
            f"no run recorded in {config.state_dir} yet (run `kanidm-sync run -c {args.config}`)"
        )
    else:
        lines = [
            f"Kanidm state: {_state_text(state)}",
            f"last run: {last.get('state')} at {last.get('last_run_at')} "
            f"({last.get('runs')} runs, {last.get('failures')} failed)",
            f"last success: {last.get('last_success_at') or 'never'}",
        ]
        if last.get("last_error"):
            lines.append(f"last error: {last['last_error']} at {last.get('last_error_at')}")
        if last.get("next_run_at"):
            lines.append(f"next run due: {last['next_run_at']}")
        text = "\n".join(lines)
    out.result(text, data)
    return EXIT_OK if healthy else EXIT_FAILED


def add_parsers(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    """Add ``plan``, ``run`` and ``status``.

    Args:
        commands: the top-level subcommands.
        common: the parent parser holding the output options.
    """
    p = commands.add_parser(
        "plan",
        help="show what a run would change, without applying it",
        description="Read Kanidm's state and the source, and print the plan. Sends nothing.",
        parents=[common],
    )
    _config_options(p)
    p.add_argument("--show-unchanged", action="store_true", help="list unchanged entries too")
    p.add_argument("--allow-deletes", action="store_true", help="plan even past the deletion guard")
    p.add_argument("--progress", action="store_true", help="print progress on stderr")
    p.set_defaults(handler=_plan)

    p = commands.add_parser(
        "run",
        help="sync once, or on a schedule",
        description="Sync the configured source into Kanidm once (or with --schedule, "
        "every interval until SIGTERM). Exit 0 only when the (last) run succeeded.",
        parents=[common],
    )
    _config_options(p)
    p.add_argument("--dry-run", action="store_true", help="plan and report; apply nothing")
    p.add_argument(
        "--allow-deletes", action="store_true", help="accept more deletions than the guard"
    )
    p.add_argument(
        "--schedule",
        nargs="?",
        const=0.0,
        type=float,
        metavar="SECONDS",
        help="keep running every SECONDS (default: [schedule] interval), with jitter "
        "and backoff after failures",
    )
    p.add_argument("--max-runs", type=int, metavar="N", help="with --schedule: stop after N runs")
    p.add_argument("--progress", action="store_true", help="print progress on stderr")
    p.set_defaults(handler=_run)

    p = commands.add_parser(
        "status",
        help="Kanidm's sync state and the last run's outcome",
        description="Show Kanidm's sync state and what the last run recorded. Exit 0 when "
        "the last run succeeded, 1 when it failed or no run is recorded.",
        parents=[common],
    )
    _config_options(p)
    p.set_defaults(handler=_status)
