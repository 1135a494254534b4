"""``kanidm-sync run --schedule``: the sync as a service.

Owns: the service loop (the runner's ``run_forever`` on the schedule, one line per run, the
status file after each run), its status endpoints (``--listen``, or a reference file's
``status_bind``, served by :class:`~kanidm_sync.StatusServer`), its signals (SIGTERM and
SIGINT stop after the current run, a second Ctrl-C interrupts it; SIGHUP reloads the
configuration between runs, and a broken file is refused and shown), and its exit status.

Signals are read by a watcher thread from the interpreter's wakeup file descriptor: the
Python-level handlers do nothing that takes a lock (a handler runs in the main thread,
possibly inside a lock the main thread holds), and the thread does the rest.

Must not: decide anything the runner decides, change the configuration in the middle of a
run, or print the sync token or the status token.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import math
import os
import signal
import threading
import time
from collections.abc import Iterator
from types import FrameType

import attrs

from .._client import Client
from .._exceptions import ConfigError
from .._guards import Guards
from .._rules import Rules
from .._runner import Runner
from .._schedule import CronSchedule, RunnerStatus, Schedule
from .._status_server import StatusServer
from .._types import JSONObject
from ..adapters import SourceAdapter
from ._config import RunConfig
from ._listen import Listen, parse_listen, read_status_token
from ._output import EXIT_FAILED, EXIT_OK, Output, UsageError
from ._runbase import (
    Phases,
    build_runner,
    choose_schedule,
    earlier_status,
    interrupted_note,
    interrupted_status,
    read_config,
    report_text,
    schedule_text,
    state_lock,
    write_status,
)

__all__ = ["add_options", "check_options", "serve"]

_SIGNAL_NAMES: dict[int, str] = {
    int(signal.SIGTERM): "SIGTERM",
    int(signal.SIGINT): "SIGINT",
    int(signal.SIGHUP): "SIGHUP",
}


def add_options(parser: argparse.ArgumentParser) -> None:
    """Add the service options of ``run``.

    Args:
        parser: the ``run`` parser.
    """
    group = parser.add_argument_group("service (with --schedule)")
    group.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="serve /healthz, /readyz, /metrics, /status.json and a status page there "
        "(loopback only unless --listen-public; port 0 picks a free one)",
    )
    group.add_argument(
        "--listen-public",
        action="store_true",
        help="allow a --listen (or status_bind) address other than loopback",
    )
    group.add_argument(
        "--status-token-file",
        metavar="FILE",
        help="require 'Authorization: Bearer <token>' on every endpoint, the token read from FILE",
    )
    group.add_argument(
        "--ready-intervals",
        type=float,
        default=3.0,
        metavar="N",
        help="/readyz answers 200 while the last run succeeded within N intervals (default 3)",
    )


def check_options(args: argparse.Namespace) -> None:
    """Refuse combinations that cannot work, before anything is read.

    Args:
        args: the ``run`` command line.

    Raises:
        UsageError: a service option without ``--schedule``, or a one-run option with it.
    """
    if args.schedule is None:
        given = [
            option
            for option, value in (
                ("--listen", args.listen),
                ("--listen-public", args.listen_public),
                ("--status-token-file", args.status_token_file),
                ("--max-runs", args.max_runs),
            )
            if value
        ]
        if given:
            raise UsageError(f"{given[0]} applies to a service: add --schedule")
        return
    if args.dry_run:
        raise UsageError(
            "--dry-run plans one run: use `kanidm-sync plan` or `run --dry-run` without "
            "--schedule (a scheduled run applies)"
        )
    if args.allow_deletes:
        raise UsageError(
            "--allow-deletes lets one run past the deletion guard: use it with a single "
            "`kanidm-sync run`; for a service, set [guards] max_delete_count / "
            "max_delete_fraction in the configuration"
        )
    if not (math.isfinite(args.ready_intervals) and args.ready_intervals > 0):
        raise UsageError(f"--ready-intervals must be a positive number, not {args.ready_intervals}")
    if args.max_runs is not None and args.max_runs < 1:
        raise UsageError(f"--max-runs must be at least 1, not {args.max_runs}")


def _listen_address(args: argparse.Namespace, config: RunConfig) -> Listen | None:
    """Where to serve: ``--listen``, else a reference file's ``status_bind``, else nowhere."""
    bind = config.reference.status_bind if config.reference is not None else None
    if args.listen is not None:
        listen = parse_listen(args.listen, "--listen")
    elif bind:
        listen = parse_listen(bind, f"{config.path}: status_bind")
    else:
        if args.listen_public or args.status_token_file:
            flag = "--listen-public" if args.listen_public else "--status-token-file"
            raise UsageError(f"{flag} applies to the status endpoints: add --listen HOST:PORT")
        return None
    if not listen.loopback and not args.listen_public:
        fix = (
            "pass --listen-public to serve it (with --status-token-file FILE to require a "
            "token), or --listen 127.0.0.1:PORT to serve on loopback instead"
        )
        raise ConfigError(
            f"{listen.origin} {listen.shown()} is not a loopback address: anyone who can "
            f"reach it could read the sync status; {fix}"
        )
    return listen


class _ServiceRunner(Runner):
    """A runner whose source, rules, guards and client a reload can replace, between runs."""

    def reconfigure(
        self, *, client: Client, source: SourceAdapter, rules: Rules, guards: Guards
    ) -> None:
        """Use these from the next run on (the old source is closed when it can be).

        Args:
            client: the client (a new URL or token).
            source: the source adapter.
            rules: the rules.
            guards: the guards.

        Raises:
            RuntimeError: a run is in progress.
        """
        if self.status.state == "running":
            raise RuntimeError("the configuration can only change between runs")
        old = self._source
        self._client = client
        self._source = source
        self._rules = rules
        self._guards = guards
        close = getattr(old, "close", None)  # a directory source may hold a connection
        if callable(close):
            with contextlib.suppress(Exception):
                close()


def _schedule_key(schedule: Schedule) -> object:
    """What makes two schedules the same (a cron schedule's unit depends on when it was made)."""
    if isinstance(schedule, CronSchedule):
        return ("cron", schedule.cron.source, schedule.backoff_factor, schedule.backoff_max)
    return attrs.evolve(schedule, run_immediately=True)


def _now_text() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Service:
    """One ``run --schedule`` process: the loop, its signals, its reloads."""

    def __init__(
        self,
        args: argparse.Namespace,
        config: RunConfig,
        schedule: Schedule,
        client: Client,
        out: Output,
        server: StatusServer | None,
    ) -> None:
        self.args = args
        self.config = config
        self.schedule = schedule
        self.client = client
        self.out = out
        self.server = server
        self.phases = Phases(out)
        self.runner = build_runner(config, client, self.phases, _ServiceRunner)
        assert isinstance(self.runner, _ServiceRunner)
        if server is not None:
            # The page shows a run in progress (the runner's state "running").
            self.phases.on_run_start = lambda: server.observe(self.runner.status)
        self.earlier = earlier_status(config)
        if server is not None and self.earlier.get("state") == "interrupted":
            # The last process was cut short during a run (a second Ctrl-C): say so on the
            # page; this process's first run re-reads Kanidm's state.
            server.add_note(
                f"the run at {self.earlier.get('last_run_at')} was interrupted: its apply "
                "may have committed, in whole or in part; the next run re-reads Kanidm's "
                "state and converges"
            )
        self.seen = 0
        self.loaded_at = _now_text()
        # Set by the signal watcher thread, read by the loop.
        self.stopped_by: str | None = None
        self.reload_pending = False
        self.restart = False  # a reload changed the schedule: run_forever starts again
        self.wake = threading.Event()
        self.sigints = 0
        self.interrupted = False

    # --- the loop ----------------------------------------------------------------------------

    def loop(self) -> RunnerStatus:
        """Run until stopped (a signal, or ``--max-runs``); the runner's final status.

        The loop feeds the status server itself rather than through ``run_forever``'s
        ``status_server=``: a reload that changes the schedule starts ``run_forever`` again,
        and the server must not see the loop stop and start in between.
        """
        if self.server is not None:
            self.server.loop_started(self.schedule)
        remaining = self.args.max_runs
        schedule = self.schedule
        try:
            while True:
                before = self.runner.status.runs
                status = self.runner.run_forever(
                    schedule, stop=self._should_stop, max_runs=remaining, sleep=self._sleep
                )
                if not self.restart or self.stopped_by is not None:
                    break
                self.restart = False
                if remaining is not None:
                    remaining -= status.runs - before
                    if remaining <= 0:
                        break
                # The new schedule counts its first interval from the reload.
                schedule = attrs.evolve(self.schedule, run_immediately=False)
                if self.server is not None:
                    # Readiness follows the new interval; the loop did not restart.
                    self.server.set_schedule(self.schedule)
        except KeyboardInterrupt:
            self._interrupted()
            raise
        finally:
            if not self.interrupted:
                self._after_run()
                # Always rewrite at the end: the loop stopped, so no run is due any more.
                write_status(self.config, self.runner, self.schedule, self.earlier)
            if self.server is not None:
                self.server.observe(self.runner.status)
                self.server.loop_stopped()
        return status

    def _should_stop(self) -> bool:
        return self.stopped_by is not None or self.restart

    def _sleep(self, seconds: float) -> None:
        if self.runner.status.runs == 0:
            # Before the first run (a cron schedule waits for its time): the status says
            # when it is due.
            write_status(self.config, self.runner, self.schedule, self.earlier)
        self._after_run()
        if self.server is not None:
            self.server.observe(self.runner.status)  # the next run moved
        deadline = time.monotonic() + seconds
        while not self._should_stop():
            if self.reload_pending:
                self.reload_pending = False
                self._reload()
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.wake.wait(left)
            self.wake.clear()

    def _after_run(self) -> None:
        """Print and record the run that just finished (once per run)."""
        status = self.runner.status
        if status.runs == self.seen or status.last_report is None:
            return
        self.seen = status.runs
        write_status(self.config, self.runner, self.schedule, self.earlier)
        if self.server is not None:
            self.server.observe(status)
        report = status.last_report
        run_id = self.phases.finish()
        when = report.finished_at.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        fields: dict[str, object] = {
            "run_id": run_id,
            "phase": "done",
            "outcome": report.outcome,
            "counts": {k: v for k, v in report.counts.items() if v},
            "duration": round(report.duration, 3),
            "requests_sent": report.requests_sent,
            "bytes_sent": report.bytes_sent,
        }
        if report.ok:
            text = report_text(report).splitlines()[0]
            self.out.event("info", text if self.out.log_json else f"{when} {text}", **fields)
            return
        error = report.error or {}
        text = f"run {report.outcome}: {error.get('type')}: {error.get('message')}"
        level = "warning" if report.outcome == "refused" else "error"
        if self.out.log_json:
            diagnosis = report.diagnosis.to_dict() if report.diagnosis is not None else None
            self.out.event(level, text, error=error, diagnosis=diagnosis, **fields)
            return
        # Text: the line is a note (a failed run does not end the service), as before.
        self.out.note(f"{when} {text}")
        if report.diagnosis is not None:
            self.out.note(report.diagnosis.to_text())

    def _interrupted(self) -> None:
        """A second Ctrl-C cut a run short: say so, and record it as a failed run."""
        if self.runner.status.state != "running":
            return
        self.interrupted = True
        self.out.warn(interrupted_note(self.phases))
        now = interrupted_status(self.runner, self.phases)
        write_status(self.config, self.runner, self.schedule, self.earlier, now=now)

    # --- reloading ---------------------------------------------------------------------------

    def _reload(self) -> None:
        """SIGHUP, between runs: read the configuration again, or keep the old one."""
        try:
            config = read_config(self.args)
            if config.state_dir.resolve() != self.config.state_dir.resolve():
                raise ConfigError(
                    f"{config.path}: the state directory changed ({self.config.state_dir} -> "
                    f"{config.state_dir}); a reload cannot move it: restart kanidm-sync"
                )
            schedule = choose_schedule(self.args, config)
            source = config.build_source()
            client = config.account.client()
        except Exception as exc:  # whatever is wrong with the new files, the service goes on
            message = " ".join(str(exc).split()) or type(exc).__name__
            error = (
                f"SIGHUP at {_now_text()}: the configuration was not reloaded: {message}; "
                f"still running with the one loaded at {self.loaded_at}"
            )
            if self.server is not None:
                self.server.set_config_error(error)
            self.out.event("error", error, reload="refused", error_type=type(exc).__name__)
            return
        for warning in config.warnings:
            self.out.warn(warning)
        assert isinstance(self.runner, _ServiceRunner)
        self.runner.reconfigure(
            client=client, source=source, rules=config.rules, guards=config.guards
        )
        self.client.close()
        self.client = client
        changed = _schedule_key(schedule) != _schedule_key(self.schedule)
        self.config, self.schedule, self.loaded_at = config, schedule, _now_text()
        self.restart = self.restart or changed
        self.out.log_context.fields["account"] = config.account.name
        what = f"; the schedule is now {schedule_text(schedule)}" if changed else ""
        note = f"configuration reloaded from {config.path} at {self.loaded_at}{what}"
        if self.server is not None:
            self.server.set_config_error(None)
            self.server.add_note(note)
        self.out.event("info", f"SIGHUP: {note}", reload="done")

    # --- signals -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def signals(self) -> Iterator[None]:
        """Handle SIGTERM, SIGINT and SIGHUP while the loop runs; restore them after."""
        read_end, write_end = os.pipe()
        os.set_blocking(write_end, False)
        previous = {signum: signal.getsignal(signum) for signum in _SIGNAL_NAMES}
        old_fd = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        watcher = threading.Thread(
            target=self._watch, args=(read_end,), name="kanidm-sync-signals", daemon=True
        )
        watcher.start()
        for signum in _SIGNAL_NAMES:
            signal.signal(signum, self._on_signal)
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            signal.set_wakeup_fd(old_fd)
            os.close(write_end)  # the watcher reads the end of the pipe and returns
            watcher.join(timeout=5)
            os.close(read_end)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # The main thread, between two bytecodes: no locks here (the watcher thread acts).
        # A second Ctrl-C during a run interrupts it, as a terminal user expects.
        if signum == signal.SIGINT:
            self.sigints += 1
            if self.sigints > 1 and self.runner.status.state == "running":
                raise KeyboardInterrupt

    def _watch(self, read_end: int) -> None:
        while True:
            try:
                data = os.read(read_end, 64)
            except OSError:
                return
            if not data:
                return
            for signum in data:
                name = _SIGNAL_NAMES.get(signum)
                if name is not None:
                    self._signalled(name)

    def _signalled(self, name: str) -> None:
        running = self.runner.status.state == "running"
        if name == "SIGHUP":
            self.reload_pending = True
            if running:
                self.out.note("SIGHUP: reloading the configuration after the current run")
        elif self.stopped_by is None:
            self.stopped_by = name
            note = f"{name} at {_now_text()}: " + (
                "stopping after the current run" if running else "stopping"
            )
            if self.server is not None:
                self.server.add_note(note)
            again = "; Ctrl-C again interrupts it" if running and name == "SIGINT" else ""
            self.out.event("info", note + again, signal=name)
        self.wake.set()


def serve(args: argparse.Namespace, config: RunConfig, out: Output) -> int:
    """``run --schedule``: run until a signal (or ``--max-runs``); the exit status.

    Args:
        args: the command line.
        config: the configuration, loaded.
        out: the output.

    Returns:
        0 when stopped by a signal (whatever the last run did), or when the last run
        succeeded or none ran; 1 when ``--max-runs`` ended the loop on a failed run.
    """
    schedule = choose_schedule(args, config)
    if isinstance(schedule, CronSchedule):
        out.note(
            f"following the schedule {schedule.cron.source!r} (UTC); first run at "
            f"{schedule.next_fire(0):%Y-%m-%dT%H:%M:%SZ}"
        )
    listen = _listen_address(args, config)
    token = read_status_token(args.status_token_file) if args.status_token_file else None
    with contextlib.ExitStack() as stack:
        stack.enter_context(state_lock(config))
        server = None
        if listen is not None:
            server = StatusServer(
                host=listen.host,
                port=listen.port,
                allow_public=args.listen_public,
                token=token,
                account=config.account.name or "",
                kanidm_url=config.account.url,
                ready_intervals=args.ready_intervals,
            )
            stack.enter_context(server)
            out.event(
                "info",
                f"serving the status on {server.url}/ (/healthz, /readyz, /metrics, /status.json)",
                url=server.url,
            )
            if token is None and not listen.loopback:
                out.warn(
                    f"{listen.origin} {listen.shown()} serves the sync status to anyone who "
                    "can reach it: add --status-token-file FILE"
                )
        client = config.account.client()
        service = _Service(args, config, schedule, client, out, server)
        stack.callback(lambda: service.client.close())
        with service.signals():
            status = service.loop()
    out.note(f"stopped after {status.runs} runs ({status.failures} failed)")
    # Stopped before the first run (a cron schedule waits for its time): nothing failed.
    ok = status.healthy or status.runs == 0
    data: JSONObject = {"ok": ok, "stopped_by": service.stopped_by, "status": status.to_dict()}
    out.result("", data)
    return EXIT_OK if ok or service.stopped_by is not None else EXIT_FAILED
