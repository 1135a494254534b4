"""``kanidm-sync account ...``: the sync-account admin verbs of ``kanidm system sync``.

Owns: the admin options (``--url``, ``--token`` / ``--token-file``, ``-D`` with the
``kanidm login`` token cache or a password, ``--ca``, ``--insecure-http``), building the
admin :class:`~kanidm_sync.Client` from them, each verb, and the confirmation that
``finalise`` and ``terminate`` ask for.

Must not: print a token, except the one ``generate-token`` was asked for; guess what the
admin API cannot tell (it cannot list the entries an account owns, so ``finalise`` and
``terminate`` say what they know and where the numbers come from).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import getpass
import os
import pathlib
import stat
import sys
from typing import Final

import attrs

from .._auth import KanidmAuth, load_client_config
from .._client import Client
from .._exceptions import ConfigError, KanidmSyncError
from .._proto._admin import SyncAccountInfo
from .._types import JSONObject
from ._output import EXIT_OK, Output, Refused, UsageError

__all__ = ["add_admin_options", "add_parser", "admin_client", "info_json"]

_STORE_TOKEN_NOTE: Final = (
    "this token can create, change and delete every entry the account owns: "
    "store it like a password"
)


def add_admin_options(parser: argparse.ArgumentParser) -> None:
    """Add the options that say where Kanidm is and who the administrator is.

    Args:
        parser: a subcommand's parser.
    """
    group = parser.add_argument_group(
        "Kanidm admin connection",
        "Without --token/--token-file the session of `kanidm login` is used (choose it "
        "with -D); if there is none, -D NAME logs in with a password (KANIDM_PASSWORD or "
        "a prompt). The URL comes from --url, KANIDM_URL or the Kanidm client config.",
    )
    group.add_argument("-H", "--url", help="Kanidm's URL (default: KANIDM_URL, client config)")
    group.add_argument(
        "--token-file", metavar="FILE", help="a file holding an admin bearer (API) token"
    )
    group.add_argument(
        "--token",
        help="an admin bearer token (visible to other local users in the process list: "
        "prefer --token-file)",
    )
    group.add_argument(
        "-D",
        "--name",
        "--username",
        dest="username",
        metavar="NAME",
        help="the administrator: picks the cached `kanidm login` session, or logs in",
    )
    group.add_argument(
        "--instance", help="the Kanidm client instance (default: KANIDM_INSTANCE or the default)"
    )
    group.add_argument("-C", "--ca", metavar="PEM", help="a CA certificate file to trust")
    group.add_argument(
        "--insecure-http",
        action="store_true",
        help="allow http:// (only for a test server on loopback)",
    )


def _read_secret_file(path: str, what: str) -> str:
    try:
        raw = pathlib.Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {what} ({exc.strerror})") from exc
    try:
        value: str | None = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        value = None
    if value is None:
        # Raised outside the handler: the decode error's .object is the secret's bytes,
        # and would stay reachable as __context__.
        raise ConfigError(f"{path}: the {what} file is not UTF-8 text")
    if not value:
        raise ConfigError(f"{path}: the {what} file is empty")
    return value


def _prompt_secret(prompt: str) -> str:
    if not sys.stdin.isatty():
        raise UsageError(f"{prompt.rstrip(': ')} needed but stdin is not a terminal")
    return getpass.getpass(prompt)


def _admin_auth(args: argparse.Namespace, url: str) -> KanidmAuth:
    if args.token is not None and args.token_file is not None:
        raise UsageError("pass --token or --token-file, not both")
    if args.token_file is not None:
        return KanidmAuth.from_token(_read_secret_file(args.token_file, "admin token"))
    if args.token is not None:
        if not args.token.strip():
            raise UsageError("--token is empty")
        return KanidmAuth.from_token(args.token.strip())
    try:
        return KanidmAuth.from_token_cache(args.username, url=url, instance=args.instance)
    except ConfigError as exc:
        if args.username is None:
            raise ConfigError(
                f"no admin credentials: {exc} (hint: pass --token-file, run `kanidm login`, "
                "or give -D NAME to log in with a password)"
            ) from exc
    password = os.environ.get("KANIDM_PASSWORD") or _prompt_secret(
        f"password for {args.username}: "
    )
    return KanidmAuth.password(
        args.username,
        password,
        totp=lambda: _prompt_secret("TOTP code: "),
    )


def admin_client(args: argparse.Namespace) -> Client:
    """The admin client the options describe.

    Args:
        args: parsed options of :func:`add_admin_options`.

    Returns:
        A client; the caller closes it.

    Raises:
        UsageError: no URL, or contradictory options.
        ConfigError: a token file or the client configuration cannot be read.
    """
    config = load_client_config(args.instance)
    if args.url:
        config = attrs.evolve(config, uri=args.url)
    if args.ca:
        config = attrs.evolve(config, ca_path=args.ca)
    if not config.uri:
        raise UsageError(
            "where is Kanidm? pass --url, set KANIDM_URL, or set uri in ~/.config/kanidm"
        )
    auth = _admin_auth(args, config.uri)
    return Client.from_config(config, auth=auth, allow_insecure_http=args.insecure_http)


def info_json(info: SyncAccountInfo) -> JSONObject:
    """A sync account as JSON (what ``list`` and ``get`` print with ``--json``).

    Args:
        info: the account.

    Returns:
        The JSON object; ``state`` is ``"refresh"`` without a cookie, else ``"active"``.
    """
    return {
        "name": info.name,
        "uuid": str(info.uuid),
        "description": info.description,
        "has_token": info.has_token,
        "state": "active" if info.has_cookie else "refresh",
        "yield_attributes": sorted(info.yield_attributes),
        "credential_portal": info.credential_portal,
    }


def _info_text(info: SyncAccountInfo) -> str:
    data = info_json(info)
    return "\n".join(
        [
            f"name:              {data['name']}",
            f"uuid:              {data['uuid']}",
            f"description:       {info.description or '-'}",
            f"sync token:        {'issued' if info.has_token else 'none'}",
            f"state:             {data['state']}"
            + ("" if info.has_cookie else " (the next sync sends a full image)"),
            f"yield attributes:  {', '.join(sorted(info.yield_attributes)) or '-'}",
            f"credential portal: {info.credential_portal or '-'}",
        ]
    )


def _require(client: Client, name: str) -> SyncAccountInfo:
    info = client.get_sync_account(name)
    if info is None:
        raise UsageError(
            f"no sync account {name!r} is visible to this administrator "
            "(see `kanidm-sync account list`)"
        )
    return info


# --- the verbs ----------------------------------------------------------------------------


def _list(args: argparse.Namespace, out: Output) -> int:
    with admin_client(args) as client:
        accounts = sorted(client.list_sync_accounts(), key=lambda i: i.name)
    rows = [("NAME", "UUID", "TOKEN", "STATE", "DESCRIPTION")]
    rows += [
        (
            a.name,
            str(a.uuid),
            "yes" if a.has_token else "no",
            "active" if a.has_cookie else "refresh",
            a.description or "",
        )
        for a in accounts
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True)) + "  " + row[4]
        for row in rows
    ]
    text = "\n".join(line.rstrip() for line in lines) if accounts else ""
    if not accounts:
        out.note("no sync accounts (create one with `kanidm-sync account create NAME`)")
    out.result(text, [info_json(a) for a in accounts])
    return EXIT_OK


def _get(args: argparse.Namespace, out: Output) -> int:
    with admin_client(args) as client:
        info = _require(client, args.account)
    out.result(_info_text(info), info_json(info))
    return EXIT_OK


def _create(args: argparse.Namespace, out: Output) -> int:
    with admin_client(args) as client:
        client.create_sync_account(args.account, description=args.description)
        info = _require(client, args.account)
    out.note(
        f"created sync account {info.name}; next: "
        f"`kanidm-sync account generate-token {info.name} LABEL --output FILE`"
    )
    out.result("", info_json(info))
    return EXIT_OK


class _PrivateFile:
    """The ``-o`` file of ``generate-token``: opened before the token exists, 0600.

    Opened first, so a path that cannot take the token fails before Kanidm issues one
    (a token issued and then lost would have to be destroyed). Never through a symbolic
    link (``O_NOFOLLOW``: ``-o`` pointing at a link to another file would overwrite that
    file with the token), and only a regular file with one name.
    """

    def __init__(self, path: str) -> None:
        self.path = pathlib.Path(path).expanduser()
        # O_NONBLOCK: opening a pipe must not wait for a reader (it is refused below).
        flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
        not_plain = UsageError(
            f"{self.path} is not a plain file (a device, a pipe, or a file with several "
            "names): refusing to write the token into it"
        )
        try:
            try:
                self.fd, self.created = os.open(self.path, flags | os.O_EXCL, 0o600), True
            except FileExistsError:
                self.fd, self.created = os.open(self.path, flags, 0o600), False
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UsageError(
                    f"{self.path} is a symbolic link: refusing to write the token through it "
                    "(give the path of the file itself)"
                ) from None
            if exc.errno == errno.ENXIO:  # a pipe without a reader
                raise not_plain from None
            raise
        info = os.fstat(self.fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink > 1:
            self.discard()
            raise not_plain
        os.set_blocking(self.fd, True)
        os.fchmod(self.fd, 0o600)  # also when the file existed with wider rights

    def write(self, value: str) -> None:
        """Replace the file's content with ``value`` and a newline, and close it."""
        try:
            os.ftruncate(self.fd, 0)
            data = (value + "\n").encode("utf-8")
            while data:
                data = data[os.write(self.fd, data) :]
            os.fsync(self.fd)
        finally:
            os.close(self.fd)

    def discard(self) -> None:
        """Close the file, and remove it if this command created it."""
        os.close(self.fd)
        if self.created:
            with contextlib.suppress(OSError):
                self.path.unlink()


def _generate_token(args: argparse.Namespace, out: Output) -> int:
    target = _PrivateFile(args.output) if args.output else None
    try:
        with admin_client(args) as client:
            if _require(client, args.account).has_token:
                # Kanidm would answer a bare schema violation (the session is single-valued).
                # The arguments are right; the account's state is in the way: a failure (1).
                raise KanidmSyncError(
                    f"{args.account} already has a sync token and Kanidm allows one; revoke "
                    f"it first with `kanidm-sync account destroy-token {args.account}`"
                )
            token = client.generate_sync_token(args.account, label=args.label)
    except BaseException:
        if target is not None:
            target.discard()
        raise
    if target is not None:
        target.write(token)
        out.note(f"wrote the sync token of {args.account} to {args.output} (mode 0600)")
        out.result("", {"name": args.account, "label": args.label, "token_file": args.output})
    elif out.json_mode:
        out.result("", {"name": args.account, "label": args.label, "token": token})
    else:
        out.secret(token)
    out.note(_STORE_TOKEN_NOTE)
    return EXIT_OK


def _destroy_token(args: argparse.Namespace, out: Output) -> int:
    with admin_client(args) as client:
        _require(client, args.account)
        client.destroy_sync_token(args.account)
    out.note(
        f"destroyed the sync token of {args.account}: its tool gets 401 from now on; "
        "entries and state are unchanged (a new token continues where the old one stopped)"
    )
    out.result("", {"name": args.account, "has_token": False})
    return EXIT_OK


def _force_refresh(args: argparse.Namespace, out: Output) -> int:
    with admin_client(args) as client:
        _require(client, args.account)
        client.force_refresh(args.account)
    out.note(
        f"{args.account} is in Refresh: its next sync must send a full image, and Kanidm "
        "then deletes the owned entries that image leaves out (no entry changed now)"
    )
    out.result("", {"name": args.account, "state": "refresh"})
    return EXIT_OK


def _set_yield(args: argparse.Namespace, out: Output) -> int:
    with admin_client(args) as client:
        _require(client, args.account)
        client.set_yield_attributes(args.account, args.attributes)
        now = client.get_yield_attributes(args.account)
    if now:
        out.note(
            f"{args.account} yields {', '.join(sorted(now))}: Kanidm now owns these attributes "
            "of its entries, and the sync tool can no longer set them"
        )
    else:
        out.note(f"{args.account} yields no attribute: the sync tool owns every synced attribute")
    out.result("", {"name": args.account, "yield_attributes": sorted(now)})
    return EXIT_OK


def _set_portal(args: argparse.Namespace, out: Output) -> int:
    with admin_client(args) as client:
        _require(client, args.account)
        client.set_credential_portal(args.account, args.url_value)
        now = client.get_credential_portal(args.account)
    out.note(f"credential portal of {args.account}: {now}" if now else "credential portal cleared")
    out.result("", {"name": args.account, "credential_portal": now})
    return EXIT_OK


def _record_count(config_path: str | None, out: Output) -> int | None:
    """How many entries the local record of a run configuration says the account owns."""
    if config_path is None:
        return None
    from .._runner import _RecordStore  # the runner's record; no public reader exists
    from ._config import load_run_config

    config = load_run_config(config_path, url="https://unused.invalid")
    known = _RecordStore(config.record_path).load()
    if known is None:
        out.warn(f"{config.record_path}: no readable local record; cannot count entries")
        return None
    return len(known.entries)


def _explain(action: str, info: SyncAccountInfo, count: int | None) -> str:
    owned = (
        f"The local record of the last run says it owns {count} entries."
        if count is not None
        else "Kanidm's admin API cannot list or count the entries it owns (pass --config "
        "with the run configuration to count them from the local record)."
    )
    state = (
        "It has synced (Kanidm holds its cookie)."
        if info.has_cookie
        else "It is in Refresh (no cookie): it never synced, or was force-refreshed; "
        "it may still own entries."
    )
    token = "Its sync token will stop working." if info.has_token else "It has no sync token."
    head = f"Sync account {info.name} ({info.uuid}). {state} {owned}"
    if action == "finalise":
        what = (
            "FINALISE: every live entry it owns KEEPS its name, memberships, credentials and "
            "POSIX data, and becomes an ordinary Kanidm entry that administrators manage "
            "from now on; entries already in the recycle bin stay there, unlinked. The sync "
            "account is deleted. "
            + token
            + " A new sync account cannot take these entries over later."
        )
    else:
        what = (
            "TERMINATE: every live entry it owns is DELETED (moved to the recycle bin); "
            "memberships that name them are removed; entries already in the recycle bin "
            "stay there, unlinked. The sync account is deleted. "
            + token
            + " Re-importing the same UUIDs fails until Kanidm purges them (about 14 days)."
        )
    return f"{head}\n{what}"


def _confirm(action: str, name: str, out: Output) -> None:
    if not sys.stdin.isatty():
        raise Refused(
            f"{action} needs confirmation and stdin is not a terminal; pass --yes to confirm"
        )
    print(f"Type the account name ({name}) to {action} it: ", end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline().strip()
    if not sys.stderr.isatty():
        print(file=sys.stderr)  # the terminal echoed the answer; a log file did not
    if answer.lower() != name.lower():
        raise Refused(f"not confirmed; {name} was not changed")


def _end(args: argparse.Namespace, out: Output) -> int:
    action = args.action
    with admin_client(args) as client:
        info = _require(client, args.account)
        count = _record_count(args.config, out)
        explanation = _explain(action, info, count)
        if not args.yes:
            print(explanation, file=sys.stderr)
            _confirm(action, info.name, out)
        else:
            out.note(explanation)
        if action == "finalise":
            client.finalise(info.name)
        else:
            client.terminate(info.name)
    done = "finalised" if action == "finalise" else "terminated"
    out.note(f"{info.name} {done}")
    out.result("", {"name": info.name, "uuid": str(info.uuid), "action": action, "done": True})
    return EXIT_OK


def add_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    """Add ``account`` and its verbs.

    Args:
        commands: the top-level subcommands.
        common: the parent parser holding the output options.
    """
    account = commands.add_parser(
        "account",
        help="manage sync accounts (like `kanidm system sync`)",
        description="Manage Kanidm sync accounts with an administrator's session.",
        parents=[common],
    )
    verbs = account.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    def verb(name: str, help_text: str) -> argparse.ArgumentParser:
        parser = verbs.add_parser(name, help=help_text, description=help_text, parents=[common])
        add_admin_options(parser)
        return parser

    verb("list", "list the sync accounts").set_defaults(handler=_list)
    p = verb("get", "show one sync account")
    p.add_argument("account", metavar="NAME")
    p.set_defaults(handler=_get)
    p = verb("create", "create a sync account (it starts in Refresh, without a token)")
    p.add_argument("account", metavar="NAME")
    p.add_argument("description", nargs="?", help="a free-text description")
    p.set_defaults(handler=_create)
    p = verb("generate-token", "issue the account's sync token (one per account)")
    p.add_argument("account", metavar="NAME")
    p.add_argument("label", nargs="?", default="kanidm-sync", help="a label for the token")
    p.add_argument(
        "-o", "--output", metavar="FILE", help="write the token to FILE (mode 0600), not stdout"
    )
    p.set_defaults(handler=_generate_token)
    p = verb("destroy-token", "revoke the account's sync token (entries are kept)")
    p.add_argument("account", metavar="NAME")
    p.set_defaults(handler=_destroy_token)
    p = verb("force-refresh", "forget the cookie: the next sync sends a full image")
    p.add_argument("account", metavar="NAME")
    p.set_defaults(handler=_force_refresh)
    p = verb("set-yield-attributes", "hand authority over attributes to Kanidm (none: clear)")
    p.add_argument("account", metavar="NAME")
    p.add_argument("attributes", nargs="*", metavar="ATTR")
    p.set_defaults(handler=_set_yield)
    p = verb("set-credential-portal", "set (or, without URL, clear) the credential portal")
    p.add_argument("account", metavar="NAME")
    p.add_argument("url_value", nargs="?", metavar="URL")
    p.set_defaults(handler=_set_portal)
    for action, help_text in (
        ("finalise", "end the sync: Kanidm takes over every entry the account owns"),
        ("terminate", "end the sync and delete every entry the account owns"),
    ):
        p = verb(action, help_text)
        p.add_argument("account", metavar="NAME")
        p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
        p.add_argument(
            "--config",
            metavar="FILE",
            help="a run configuration: count the owned entries from its local record",
        )
        p.set_defaults(handler=_end, action=action)
