"""``kanidm-sync plan`` / ``run`` / ``status``: a sync driven by a configuration file.

Owns: the options of those commands, ``plan``, a single ``run`` (its report printed and
recorded in the status file), and ``status`` (Kanidm's state and what the runs recorded).
``run --schedule`` is the service loop of ``_serve.py``; what the commands share (loading
the configuration, the runner, the status file) is ``_runbase.py``.

Must not: decide anything the runner decides (plans, guards, diagnosis), or print the sync
token.
"""

from __future__ import annotations

import argparse

from .._client import Client
from .._exceptions import AuthenticationError, DataError
from .._guards import GuardError
from .._proto._state import ActiveState, SyncState
from .._record import _RecordStore
from .._runner import Runner
from .._types import JSONObject
from ._config import RunConfig
from ._output import EXIT_FAILED, EXIT_OK, Output
from ._runbase import (
    Phases,
    build_runner,
    config_options,
    earlier_status,
    interrupted_note,
    interrupted_status,
    load,
    merge_status,
    read_status,
    report_text,
    state_lock,
    state_text,
    write_status,
)
from ._serve import add_options, check_options, serve

__all__ = ["add_parsers", "merge_status", "report_text"]


def _plan(args: argparse.Namespace, out: Output) -> int:
    config = load(args, out)
    with config.account.client() as client:
        runner = build_runner(config, client, Phases(out))
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
    earlier = earlier_status(config)
    phases = Phases(out)
    runner = build_runner(config, client, phases)
    try:
        report = runner.run_once(allow_deletes=args.allow_deletes, dry_run=args.dry_run)
    except KeyboardInterrupt:
        if not args.dry_run:
            out.warn(interrupted_note(phases))
            write_status(config, runner, None, earlier, now=interrupted_status(runner, phases))
        raise
    except Exception as exc:
        _explain_failure(exc, runner, out)
        if not args.dry_run:
            write_status(config, runner, None, earlier)
        if runner.last_report is not None:
            out.context = {"report": runner.last_report.to_dict()}
        raise
    if not args.dry_run:
        write_status(config, runner, None, earlier)
    out.result(report_text(report), {"ok": True, "report": report.to_dict()})
    return EXIT_OK


def _run(args: argparse.Namespace, out: Output) -> int:
    check_options(args)
    config = load(args, out)
    if args.schedule is not None:
        return serve(args, config, out)
    with state_lock(config), config.account.client() as client:
        return _run_once(args, config, client, out)


def _status(args: argparse.Namespace, out: Output) -> int:
    config = load(args, out)
    saved = read_status(config)
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
            f"Kanidm state: {state_text(state)}\n"
            f"no run recorded in {config.state_dir} yet (run `kanidm-sync run -c {args.config}`)"
        )
    else:
        lines = [
            f"Kanidm state: {state_text(state)}",
            f"last run: {last.get('state')} at {last.get('last_run_at')} "
            f"({last.get('runs')} runs, {last.get('failures')} failed)",
            f"last success: {last.get('last_success_at') or 'never'}",
        ]
        if last.get("last_error"):
            lines.append(f"last error: {last['last_error']} at {last.get('last_error_at')}")
        if last.get("next_run_at"):
            lines.append(f"next run due: {last['next_run_at']}")
        text = "\n".join(lines)
    if args.entries:
        listed = _record_entries(config, state)
        data["record"] = listed[1]
        text += "\n" + listed[0]
    out.result(text, data)
    return EXIT_OK if healthy else EXIT_FAILED


def _record_entries(config: RunConfig, state: SyncState) -> tuple[str, JSONObject]:
    """``status --entries``: the local record's entries, as text and as JSON."""
    path = config.record_path
    listing = _RecordStore(path).listing()
    if listing is None:
        return f"local record {path}: none (or unreadable: see the warning)", {
            "path": str(path),
            "count": None,
            "current": False,
            "entries": None,
        }
    cookie, entries = listing
    current = isinstance(state, ActiveState) and state.cookie == cookie
    which = (
        "for Kanidm's current cookie"
        if current
        else "for another cookie than Kanidm's (the next run re-sends the whole image)"
    )
    rows = [[e.kind, e.name or "-", e.id, e.external_id or "-"] for e in entries]
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(_COLUMNS)]
    lines = [
        f"local record {path}: {len(entries)} entries, {which}",
        "  ".join(h.ljust(w) for h, w in zip(_COLUMNS, widths, strict=True)).rstrip(),
        *("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows),
    ]
    data: JSONObject = {
        "path": str(path),
        "count": len(entries),
        "current": current,
        "entries": [
            {"kind": e.kind, "name": e.name, "id": e.id, "external_id": e.external_id}
            for e in entries
        ],
    }
    return "\n".join(lines), data


_COLUMNS = ("kind", "name", "id", "external id")


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
    config_options(p)
    p.add_argument("--show-unchanged", action="store_true", help="list unchanged entries too")
    p.add_argument("--allow-deletes", action="store_true", help="plan even past the deletion guard")
    p.add_argument("--progress", action="store_true", help="print progress on stderr")
    p.set_defaults(handler=_plan)

    p = commands.add_parser(
        "run",
        help="sync once, or on a schedule",
        description="Sync the configured source into Kanidm once, or with --schedule as a "
        "service: every interval until SIGTERM, SIGHUP reloads the configuration between "
        "runs, --listen serves /healthz, /readyz, /metrics, /status.json and a status page "
        "(docs/cli.md, docs/deploy.md).",
        parents=[common],
    )
    config_options(p)
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
    add_options(p)
    p.set_defaults(handler=_run)

    p = commands.add_parser(
        "status",
        help="Kanidm's sync state and the last run's outcome",
        description="Show Kanidm's sync state and what the last run recorded. Exit 0 when "
        "the last run succeeded, 1 when it failed or no run is recorded.",
        parents=[common],
    )
    config_options(p)
    p.add_argument(
        "--entries",
        action="store_true",
        help="also list the entries of the local record (kind, name, id, external id), sorted",
    )
    p.set_defaults(handler=_status)
