"""The ``kanidm-sync`` command: argument parsing, dispatch, and the one place errors end.

Owns: the parser (stdlib argparse), the options every command shares, logging setup (text,
or one JSON object per line with ``--log-format json``), and turning an exception into one
error line, a hint and an exit code (docs/cli.md). A traceback is shown only with ``--debug``.

Must not: talk to Kanidm itself (the command modules do), or print a secret.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Callable, Sequence, Sized

from .._exceptions import (
    APIConnectionError,
    AuthenticationError,
    ConfigError,
    KanidmSyncError,
    LoginError,
    NotFoundError,
    PermissionDeniedError,
    SourceError,
    ValidationError,
)
from .._guards import DeletionGuardError, GuardError, SourceGuardError
from .._lock import ConcurrentRunError
from .._logjson import JsonFormatter, LogContext
from .._version import __version__
from . import _account, _demo, _run
from ._output import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_REFUSED,
    EXIT_USAGE,
    Output,
    Refused,
    UsageError,
)

__all__ = ["build_parser", "main"]

Handler = Callable[[argparse.Namespace, Output], int]


def _common(*, top: bool) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("output")
    actions = [
        group.add_argument("--json", action="store_true", help="print results as JSON on stdout"),
        group.add_argument(
            "--debug", action="store_true", help="show library logs and tracebacks on errors"
        ),
        group.add_argument("-q", "--quiet", action="store_true", help="print no notes on stderr"),
        group.add_argument(
            "--log-format",
            choices=("text", "json"),
            default="text",
            help="how lines on stderr look: text (default), or json (one JSON object per "
            "line: time, level, logger, message, run_id, account, phase, counts)",
        ),
    ]
    if not top:
        # The output options work before and after the command name. A subcommand's
        # defaults would overwrite what was given before it, so below the top level they
        # default to "not given" and the top level's defaults stand.
        for action in actions:
            action.default = argparse.SUPPRESS
    return common


def build_parser() -> argparse.ArgumentParser:
    """The whole command line, for ``main`` and for docs/cli.md's reference.

    Returns:
        The parser.
    """
    common = _common(top=False)
    parser = argparse.ArgumentParser(
        prog="kanidm-sync",
        description=(
            "Feed identity data into Kanidm through a sync account: manage sync accounts, "
            "plan and run a sync from a configuration file, or watch the whole story "
            "offline with `kanidm-sync demo`."
        ),
        parents=[_common(top=True)],
    )
    parser.add_argument("--version", action="version", version=f"kanidm-sync {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    _account.add_parser(commands, common)
    _run.add_parsers(commands, common)
    _demo.add_parser(commands, common)
    return parser


def _setup_logging(debug: bool, out: Output) -> None:
    logger = logging.getLogger("kanidm_sync")
    handler = logging.StreamHandler(sys.stderr)
    if out.log_json:
        handler.setFormatter(JsonFormatter())
        handler.addFilter(out.log_context)
    else:
        handler.setFormatter(logging.Formatter("kanidm-sync: %(levelname)s %(name)s: %(message)s"))
    if debug:
        logger.setLevel(logging.DEBUG)
    else:
        logger.setLevel(logging.WARNING)

        # The runner logs a failed run and its diagnosis, the configuration loaders what
        # they ignored, and the status server a public address without a token; the
        # command prints each itself, in its own words (its options).
        def _not_runner(record: logging.LogRecord) -> bool:
            return not record.name.startswith(
                ("kanidm_sync.runner", "kanidm_sync.config", "kanidm_sync.service")
            )

        handler.addFilter(_not_runner)
        if out.quiet:
            handler.setLevel(logging.ERROR)
    logger.addHandler(handler)
    logger.propagate = False


def guard_message(exc: GuardError) -> tuple[str, str]:
    """A refused run in the command line's words: its options and ``[guards]`` keys.

    The library's messages name Python arguments (``allow_deletes=True``); this builds
    the message from the exception's attributes instead.

    Args:
        exc: the guard's refusal.

    Returns:
        ``(message, hint)``.
    """
    if isinstance(exc, DeletionGuardError):
        synced = f"{exc.synced}" if exc.synced else "an unknown number of"
        return (
            f"the run would delete {exc.deletions} of {synced} synced entries (more "
            "than the [guards] max_delete_count and max_delete_fraction allow); nothing "
            "was sent",
            "check the deletions with `kanidm-sync plan`, then rerun with --allow-deletes",
        )
    if isinstance(exc, SourceGuardError) and exc.reason == "empty":
        held = f" ({exc.previous})" if exc.previous else ""
        return (
            "the source returned no entries: applying would delete every entry this sync "
            f"account owns{held}; nothing was sent",
            "if that is intended, set allow_empty_source = true in the configuration's "
            "[guards] table for one run",
        )
    if isinstance(exc, SourceGuardError) and exc.reason == "unknown":
        return (
            f"the source returned {exc.count} entries and nothing tells how many entries "
            "this sync account holds (no local record, and Kanidm's cookie was not written "
            "by kanidm-sync): the full image would delete every entry it does not list, an "
            "unknown number; nothing was sent",
            "check the source (`kanidm-sync plan`), then rerun once with --allow-deletes; "
            "every run after it knows the count",
        )
    if isinstance(exc, SourceGuardError):
        fix = (
            "rerun with --allow-deletes, or set allow_shrink = true in [guards]"
            if exc.plan.deletions_known
            else "set allow_shrink = true (or a larger max_shrink_fraction) in [guards] for one run"
        )
        return (
            f"the source shrank from {exc.previous} to {exc.count} entries, more than the "
            "[guards] max_shrink_fraction allows; refusing in case the source is broken; "
            "nothing was sent",
            f"if the shrink is real, {fix}",
        )
    return str(exc), ""


def _hint_for(exc: BaseException) -> str:
    if isinstance(exc, AuthenticationError):
        return (
            "the token was refused: check it is the right kind (an admin token for "
            "`account`, the sync token for plan/run) and that it was not destroyed; a "
            "finalised or terminated sync account is gone, and its token with it"
        )
    if isinstance(exc, PermissionDeniedError):
        return "the admin identity needs a read-write session in domain_admins"
    if isinstance(exc, NotFoundError):
        return "check the name with `kanidm-sync account list`"
    if isinstance(exc, APIConnectionError):
        return "is Kanidm reachable at that URL? (--url, KANIDM_URL or the client config)"
    if isinstance(exc, LoginError):
        return "check the user name and password, or run `kanidm login` first"
    if isinstance(exc, ConcurrentRunError):
        return (
            "wait for it to finish (a `run --schedule` runs until stopped); give each sync "
            "account its own state directory (--state-dir, [state] dir)"
        )
    return ""


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``kanidm-sync`` with ``argv`` (default ``sys.argv[1:]``).

    Args:
        argv: the arguments.

    Returns:
        The exit status: 0 success, 1 failure, 2 usage or configuration error, 3 refused
        (a guard, local validation, or no confirmation), 130 interrupted (Ctrl-C).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    out = Output(
        json_mode=args.json,
        # Progress lines on a terminal, or when asked (a log file, a test).
        progress=getattr(args, "progress", False)
        or (hasattr(args, "progress") and sys.stderr.isatty() and not args.quiet),
        quiet=args.quiet,
        log_json=args.log_format == "json",
        log_context=LogContext(),
    )
    _setup_logging(args.debug, out)
    handler: Handler = args.handler
    try:
        return handler(args, out)
    except KeyboardInterrupt:
        if out.log_json:
            out.event("error", "interrupted")
        else:
            print("kanidm-sync: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_FAILED
    except Exception as exc:
        if args.debug:
            # The traceback, then the usual report: the exit status (docs/cli.md) and the
            # --json document must not change because --debug was given.
            if out.log_json:
                out.event("error", "traceback", exception=traceback.format_exc())
            else:
                traceback.print_exc(file=sys.stderr)
        return _report(exc, out)


def _count(items: Sized, noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def _report(exc: Exception, out: Output) -> int:
    if isinstance(exc, ValueError) and "allow_insecure_http=True" in str(exc):
        # The client's message names its Python argument; here the option is the fix.
        text = str(exc).split(" (pass ", 1)[0]
        out.error(
            exc, message=text, hint="pass --insecure-http (only for a test server on loopback)"
        )
        return EXIT_USAGE
    if isinstance(exc, UsageError | ConfigError):
        out.error(exc)
        return EXIT_USAGE
    if isinstance(exc, Refused):
        out.error(exc)
        return EXIT_REFUSED
    if isinstance(exc, GuardError):
        message, hint = guard_message(exc)
        out.error(exc, message=message, hint=hint)
        return EXIT_REFUSED
    if isinstance(exc, ConcurrentRunError):
        # The runner's message names its Python argument (state_path); this names the
        # directory, whichever lock (the command's or the runner's) was taken.
        who = f"process {exc.holder}" if exc.holder is not None else "another process"
        out.error(
            exc,
            message=f"another kanidm-sync run ({who}) is using the state directory "
            f"{exc.lock_path.parent} (it holds {exc.lock_path}); nothing was done",
            hint=_hint_for(exc),
        )
        return EXIT_FAILED
    if isinstance(exc, ValidationError):
        # One problem per line, each with its entry and field.
        report = exc.report
        out.error(
            exc,
            message=f"the source's entries fail local validation ({_count(report.errors, 'error')}"
            f", {_count(report.warnings, 'warning')}); nothing was sent",
            details=[str(p) for p in report.problems],
            hint="fix the entries at the source, or exclude or remap them (docs/rules.md)",
        )
        return EXIT_REFUSED
    if isinstance(exc, KanidmSyncError | SourceError):
        out.error(exc, hint=_hint_for(exc))
        return EXIT_FAILED
    if isinstance(exc, ValueError | OSError):
        # Usage problems the library reports with builtins (a malformed URL, a missing
        # file): one line, like everything else.
        out.error(exc, hint="run with --debug for details")
        return EXIT_USAGE if isinstance(exc, ValueError) else EXIT_FAILED
    out.error(exc, hint="this is a bug in kanidm-sync; run with --debug and report it")
    return EXIT_FAILED
