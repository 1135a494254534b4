"""What ``plan``, ``run`` and ``status`` share: the configuration, the runner, the status file.

Owns: the options naming the configuration, reading it (a kanidm-sync file or a reference
tool's file, with the Kanidm client configuration for the latter), building the
:class:`~kanidm_sync.Runner` from a :class:`~._config.RunConfig`, the progress callback
(:class:`Phases`, which also tells the log lines the run id and phase), the lock that lets
one ``run`` at a time use a state directory (``<state dir>/status.json.lock``), the status
file written after each run (``<state dir>/status.json``) and read by ``status``, the text
of a report, and which schedule ``run --schedule`` follows.

Must not: decide anything the runner decides (plans, guards, diagnosis), or print the sync
token.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import os
import uuid
from collections.abc import Callable, Iterator

import attrs

from .._auth import load_client_config
from .._client import Client
from .._exceptions import KanidmSyncError
from .._files import write_atomic
from .._lock import RunLock
from .._proto._state import ActiveState, SyncState
from .._report import Progress, RunReport
from .._runner import Runner
from .._schedule import CronSchedule, Schedule
from .._types import JSONObject
from ._config import CronSpec, RunConfig, load_run_config
from ._output import Output, UsageError

__all__ = [
    "STATUS_FORMAT",
    "Phases",
    "build_runner",
    "choose_schedule",
    "config_options",
    "earlier_status",
    "interrupted_note",
    "interrupted_status",
    "load",
    "merge_status",
    "read_config",
    "read_status",
    "report_text",
    "schedule_text",
    "state_lock",
    "state_text",
    "write_status",
]

STATUS_FORMAT = "kanidm-sync status"


def config_options(parser: argparse.ArgumentParser) -> None:
    """Add the options naming the configuration and overriding it."""
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


def load(args: argparse.Namespace, out: Output) -> RunConfig:
    """The configuration ``-c`` names, its warnings printed; the log lines learn the account."""
    config = read_config(args)
    for warning in config.warnings:
        out.warn(warning)
    out.log_context.fields["account"] = config.account.name
    return config


def read_config(args: argparse.Namespace) -> RunConfig:
    """The configuration ``-c`` names, with the command line's overrides."""
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


class Phases:
    """The runner's progress callback: passes events to the output, keeps the last one.

    It also tells the log lines which run they belong to: a run gets an id at its first
    event (``run_id`` and ``phase`` in ``--log-format json``), until :meth:`finish`.
    """

    def __init__(self, out: Output) -> None:
        self._out = out
        self.last: Progress | None = None
        self.run_id: str | None = None
        self.on_run_start: Callable[[], None] | None = None
        """Called at a run's first event (the service shows the run in progress)."""

    def __call__(self, event: Progress) -> None:
        self.last = event
        fields = self._out.log_context.fields
        fields["phase"] = event.phase
        if self.run_id is None:
            self.run_id = uuid.uuid4().hex[:12]
            fields["run_id"] = self.run_id
            if self.on_run_start is not None:
                self.on_run_start()
        self._out.progress(event)

    def finish(self) -> str:
        """End the current run: its id (a new one when it sent no event), then forget it.

        Returns:
            The run's id, for its last log line.
        """
        run_id = self.run_id or uuid.uuid4().hex[:12]
        self.run_id = self.last = None
        fields = self._out.log_context.fields
        fields["run_id"] = fields["phase"] = None
        return run_id


def build_runner(
    config: RunConfig, client: Client, phases: Phases, kind: type[Runner] = Runner
) -> Runner:
    """The runner a configuration describes.

    Args:
        config: the configuration.
        client: the client holding the sync token.
        phases: the progress callback.
        kind: the runner class (``run --schedule`` uses one that can be reconfigured).

    Returns:
        The runner.
    """
    config.make_state_dir()
    return kind(
        client,
        config.build_source(),
        rules=config.rules,
        state_path=config.record_path,
        guards=config.guards,
        progress=phases,
    )


@contextlib.contextmanager
def state_lock(config: RunConfig) -> Iterator[None]:
    """One ``run`` process at a time per state directory, for as long as it runs.

    Each process adds its runs to the status file it read at start; a second process
    would overwrite the first one's entries. The runner's own lock (``record.sqlite.lock``)
    covers each run; this one (``status.json.lock``) covers the process, sleep included.
    """
    config.make_state_dir()
    with RunLock(config.status_path):  # ConcurrentRunError, worded by _main
        yield


def state_text(state: SyncState | None) -> str:
    """Kanidm's state in a few words (never the cookie's bytes)."""
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
        f"  Kanidm state: {state_text(report.state_before)} -> {state_text(report.state_after)}",
    ]  # fmt: skip
    # Validation problems already read "warning: entries[3] ...": say it once.
    lines.extend(f"  warning: {w.removeprefix('warning: ')}" for w in report.warnings)
    return "\n".join(lines)


def read_status(config: RunConfig) -> JSONObject | None:
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


def earlier_status(config: RunConfig) -> JSONObject:
    """The status earlier processes recorded, which this process's runs add to."""
    try:
        saved = read_status(config)
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


def write_status(
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


def interrupted_status(runner: Runner, phases: Phases) -> JSONObject:
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


def interrupted_note(phases: Phases) -> str:
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


def _utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


def choose_schedule(args: argparse.Namespace, config: RunConfig) -> Schedule:
    """What ``--schedule`` follows: its SECONDS, else the file's interval or cron.

    Args:
        args: the command line (``--schedule SECONDS`` overrides the file).
        config: the configuration.

    Returns:
        The schedule.

    Raises:
        UsageError: neither gives an interval or a cron expression.
        ConfigError: the cron expression has no time left.
    """
    if args.schedule:
        # SECONDS overrides the file's interval (its jitter and backoff stay) or cron.
        if isinstance(config.schedule, Schedule):
            return attrs.evolve(config.schedule, interval=args.schedule)
        return Schedule(interval=args.schedule)
    if isinstance(config.schedule, CronSpec):
        return config.schedule.build(_utcnow)
    if isinstance(config.schedule, Schedule):
        return config.schedule
    raise UsageError(
        "--schedule needs an interval: give seconds (--schedule 300) or set "
        "[schedule] interval (or cron) in the configuration"
    )


def schedule_text(schedule: Schedule) -> str:
    """A schedule in words, for notes and the status page.

    Args:
        schedule: the schedule.

    Returns:
        ``"every 300 s"`` or ``"cron '0 */5 * * * *' (UTC)"``.
    """
    if isinstance(schedule, CronSchedule):
        return f"cron {schedule.cron.source!r} (UTC)"
    return f"every {schedule.interval:g} s"
