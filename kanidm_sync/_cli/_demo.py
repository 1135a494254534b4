"""``kanidm-sync demo``: the whole life of a sync account, offline, in a few seconds.

Owns: the story (a bundled LDIF directory synced into the in-memory Kanidm of
:mod:`kanidm_sync.testing`, served over HTTP on loopback), its narration on stdout, and the
edits it makes to its own copy of the directory.

Must not: reach beyond loopback, print a token, or print anything that changes between
runs (no ports, timestamps or random UUIDs: the test suite compares the narrative). The plan
and run steps go through the same configuration loader and runner as ``kanidm-sync run``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.resources
import logging
import pathlib
import tempfile
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Final

from .._client import Client
from .._exceptions import AuthenticationError, DataError
from .._plan import Action
from .._proto._state import ActiveState
from .._runner import Runner
from ._config import RunConfig, load_run_config
from ._output import EXIT_OK, Output
from ._run import report_text

if TYPE_CHECKING:
    from ..testing import FakeKanidm

__all__ = ["add_parser", "run_demo"]

ACCOUNT: Final = "hr_feed"
DOCS_URL: Final = "https://github.com/kanidm-sync/kanidm-sync/tree/main/docs"
"""The documentation, as pyproject's ``[project.urls] Documentation`` (the wheel has no docs)."""
_NS: Final = uuid.UUID("b1f0c0de-5eed-4d3e-9a7c-6b616e69646d")  # the bundled LDIF's namespace
_NATIVE_ID: Final = uuid.uuid5(_NS, "native rlopez")
_PEOPLE: Final = "ou=people,dc=example,dc=org"

_CONFIG: Final = """\
# kanidm-sync configuration written by `kanidm-sync demo` (see docs/cli.md).
[kanidm]
url = "{url}"
sync_token_file = "hr_feed.token"
insecure_http = true   # the demo's Kanidm listens on loopback without TLS

[source]
type = "ldif"
path = "directory.ldif"

[rules]
file = "rules.toml"

[state]
dir = "state"
"""

_NEW_HIRE: Final = """
dn: uid={uid},{people}
objectClass: top
objectClass: inetOrgPerson
objectClass: posixAccount
entryUUID: {id}
uid: {uid}
cn: {cn}
displayName: {cn}
mail: {uid}@example.org
uidNumber: {number}
gidNumber: {number}
homeDirectory: /home/{uid}
loginShell: /bin/bash
"""


class _Story:
    """The demo's state: the fake, its URL, the working directory, and the narration."""

    def __init__(self, out: Output, fake: FakeKanidm, url: str, work: pathlib.Path) -> None:
        self.out = out
        self.fake = fake
        self.url = url
        self.work = work
        self.step = 0
        self.account_id: uuid.UUID | None = None

    def say(self, text: str) -> None:
        self.out.result(text, None)

    def title(self, text: str) -> None:
        self.step += 1
        self.say(f"\n[{self.step}] {text}")

    def detail(self, text: str) -> None:
        for line in text.splitlines():
            self.say(f"    {line}" if line else "")

    def command(self, text: str) -> None:
        self.say(f"    $ {text}")

    @property
    def ldif(self) -> pathlib.Path:
        return self.work / "directory.ldif"

    def config(self) -> RunConfig:
        return load_run_config(self.work / "demo.toml")

    def runner(self, config: RunConfig, client: Client) -> Runner:
        return Runner(
            client,
            config.build_source(),
            rules=config.rules,
            state_path=config.record_path,
            guards=config.guards,
        )

    def owned(self) -> tuple[int, int]:
        assert self.account_id is not None
        entries = self.fake.store.entries(owned_by=self.account_id)
        persons = sum(1 for e in entries if "person" in e.classes)
        groups = sum(1 for e in entries if "group" in e.classes)
        return persons, groups

    def members(self, group: str) -> list[str]:
        entry = self.fake.store.entry(group)
        assert entry is not None
        names = []
        for member in entry.get("member"):
            target = self.fake.store.entry(uuid.UUID(str(member)))
            names.append(str(target.first("name")) if target is not None else str(member))
        return sorted(names)

    def edit_ldif(self, old: str, new: str) -> None:
        text = self.ldif.read_text(encoding="utf-8")
        assert old in text, old  # the bundled directory is what this story expects
        self.ldif.write_text(text.replace(old, new, 1), encoding="utf-8")

    def remove_record(self, dn: str) -> None:
        blocks = self.ldif.read_text(encoding="utf-8").split("\n\n")
        kept = [b for b in blocks if not b.lstrip().startswith(f"dn: {dn}\n")]
        assert len(kept) == len(blocks) - 1, dn
        text = "\n\n".join(kept).replace(f"member: {dn}\n", "")
        self.ldif.write_text(text, encoding="utf-8")

    def hire(self, uid: str, cn: str, number: int, group: str) -> None:
        record = _NEW_HIRE.format(
            uid=uid, cn=cn, number=number, people=_PEOPLE, id=uuid.uuid5(_NS, f"uid={uid}")
        )
        text = self.ldif.read_text(encoding="utf-8").rstrip("\n") + "\n" + record
        marker = f"cn: {group}\n"
        at = text.index(marker)
        end = text.index("\n\n", at)
        text = text[:end] + f"\nmember: uid={uid},{_PEOPLE}" + text[end:]
        self.ldif.write_text(text, encoding="utf-8")


def _plan_lines(text: str, limit: int) -> str:
    lines = text.splitlines()
    head = [line for line in lines[:3]]
    body = [line for line in lines[3:] if not line.startswith("  ")]
    shown = "\n".join(head + body[:limit])
    if len(body) > limit:
        shown += f"\n... and {len(body) - limit} more entries"
    return shown


def _story(story: _Story) -> None:
    fake = story.fake
    admin = Client(story.url, token=fake.admin_token, allow_insecure_http=True)

    story.title(f"An administrator creates the sync account {ACCOUNT!r} and issues its token.")
    story.command(f'kanidm-sync account create {ACCOUNT} "HR directory feed"')
    story.command(f"kanidm-sync account generate-token {ACCOUNT} demo --output hr_feed.token")
    admin.create_sync_account(ACCOUNT, description="HR directory feed")
    token = admin.generate_sync_token(ACCOUNT, label="demo")
    (story.work / "hr_feed.token").write_text(token + "\n", encoding="utf-8")
    (story.work / "hr_feed.token").chmod(0o600)
    info = admin.get_sync_account(ACCOUNT)
    assert info is not None
    story.account_id = info.uuid
    story.detail(
        f"account {info.name}: token {'issued' if info.has_token else 'missing'}, state "
        f"{'active' if info.has_cookie else 'refresh'} (Kanidm holds no cookie yet, so the "
        "first sync must send everything)"
    )

    story.title("The source: a small company directory exported as LDIF (30 people, 7 groups).")
    story.detail(
        "demo.toml names Kanidm, the token file, the source and the rules file:\n"
        '  [source] type = "ldif", path = "directory.ldif"; [rules] file = "rules.toml"'
    )
    config = story.config()
    client = config.account.client()

    story.title("Plan the first sync. Nothing is sent: this is what Kanidm would receive.")
    story.command("kanidm-sync plan -c demo.toml")
    runner = story.runner(config, client)
    plan = runner.plan()
    story.detail(_plan_lines(plan.to_text(), 6))

    story.title("Apply it: one all-or-nothing request; Kanidm stores the source's cookie.")
    story.command("kanidm-sync run -c demo.toml")
    report = runner.apply(plan)
    story.detail(report_text(report))
    persons, groups = story.owned()
    story.detail(
        f"Kanidm now holds {persons} persons and {groups} groups owned by {ACCOUNT}; "
        f"managers = {', '.join(story.members('managers'))}"
    )

    story.title("The directory changes: one rename, one leaver, one new hire.")
    story.edit_ldif("displayName: Mei Chen\n", "displayName: Mei Chen-Wright\n")
    story.remove_record(f"uid=lars,{_PEOPLE}")
    story.hire("nadia", "Nadia Haddad", 12031, "engineering")
    story.detail(
        "Mei Chen is now Mei Chen-Wright; Lars Jensen left; Nadia Haddad joined engineering."
    )
    story.command("kanidm-sync run -c demo.toml")
    plan = runner.plan()
    story.detail(_plan_lines(plan.to_text(), 10))
    report = runner.apply(plan)
    story.detail(report_text(report))
    lars = fake.store.entry(uuid.uuid5(_NS, f"uid=lars,{_PEOPLE}"))
    story.detail(
        "only the changes travelled; lars is "
        + ("in Kanidm's recycle bin" if lars is not None and lars.state == "recycled" else "gone")
        + f"; engineering has {len(story.members('engineering'))} members"
    )

    story.title("A conflict: Kanidm already has an 'rlopez' that no sync account owns.")
    fake.store.add_person("rlopez", uuid=_NATIVE_ID, displayname="R. Lopez (created by hand)")
    story.hire("rlopez", "Rafael Lopez", 12032, "sales")
    story.detail(
        "An administrator created rlopez by hand last year; today HR hires Rafael Lopez, "
        "uid rlopez."
    )
    story.command("kanidm-sync run -c demo.toml")
    before_cookie = fake.cookie(ACCOUNT)
    before_state = fake.store.fingerprint()
    try:
        runner.run_once()
    except DataError as exc:
        story.detail(f"run failed: {type(exc).__name__}: {exc}")
    else:  # pragma: no cover - the double refuses the clash; if not, the story is wrong
        raise AssertionError("the clashing name was accepted")
    unchanged = before_state == fake.store.fingerprint()
    same_cookie = before_cookie == fake.cookie(ACCOUNT)
    story.detail(
        "Rollback: "
        + ("nothing in Kanidm changed" if unchanged else "KANIDM CHANGED")
        + " and the cookie is "
        + ("unchanged" if same_cookie else "DIFFERENT")
        + "; the next run starts from the same place."
    )
    diagnosis = runner.last_report.diagnosis if runner.last_report is not None else None
    assert diagnosis is not None
    story.detail("The runner's diagnosis (Kanidm names no entry; local knowledge does):")
    story.detail("  " + diagnosis.to_text().replace("\n", "\n  "))

    story.title("Apply the fix: paste the suggested remap into rules.toml, and run again.")
    story.detail(
        "New rules change what the source means, so the source re-sends a full image; "
        "the plan still sends only what differs from what Kanidm holds."
    )
    remap = diagnosis.rules_toml.split("# Or remap them:\n", 1)[-1].strip()
    (story.work / "rules.toml").write_text(remap + "\n", encoding="utf-8")
    story.detail("rules.toml:\n  " + remap.replace("\n", "\n  "))
    story.command("kanidm-sync run -c demo.toml")
    config = story.config()
    runner = story.runner(config, client)
    report = runner.run_once()
    story.detail(report_text(report))
    native = fake.store.entry("rlopez")
    synced = fake.store.entry("rlopez-sync")
    story.detail(
        "Kanidm keeps both: rlopez ("
        + ("native" if native is not None and "sync_object" not in native.classes else "?")
        + ") and rlopez-sync ("
        + (f"synced, {synced.first('displayname')}" if synced is not None else "missing")
        + ")"
    )

    story.title("Migration done: finalise, and Kanidm takes over every synced entry.")
    story.command(f"kanidm-sync account finalise {ACCOUNT}")
    persons, groups = story.owned()
    story.detail(
        f"finalise keeps all {persons + groups} entries ({persons} persons, {groups} groups) "
        "with their names, memberships and credentials, and deletes the sync account"
    )
    admin.finalise(ACCOUNT)
    still_synced = [e for e in fake.store.entries() if "sync_object" in e.classes]
    mei = fake.store.entry("mei")
    try:
        client.get_state()
        token_line = "the old sync token STILL WORKS"
    except AuthenticationError:
        token_line = "the old sync token now gets 401"
    story.detail(
        f"entries still owned by a sync account: {len(still_synced)}; "
        f"mei is a native entry ({mei.first('displayname') if mei else '?'}); {token_line}; "
        f"sync accounts left: {len(admin.list_sync_accounts())}"
    )
    client.close()
    admin.close()
    assert isinstance(report.state_after, ActiveState)
    assert Action.CREATE.value in report.counts


@contextlib.contextmanager
def _workdir(keep: str | None) -> Iterator[pathlib.Path]:
    if keep is not None:
        path = pathlib.Path(keep)
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="kanidm-sync-demo-") as tmp:
        yield pathlib.Path(tmp)


def run_demo(out: Output, *, workdir: str | None = None, debug: bool = False) -> int:
    """Tell the story on ``out`` (stdout), against a fresh in-memory Kanidm.

    Args:
        out: where the narrative goes.
        workdir: keep the demo's files (configuration, directory, rules, state) here
            instead of a temporary directory.
        debug: keep the library's log messages.

    Returns:
        The exit status (0).
    """
    # Imported here: the double is only needed by this command (keeps the others fast).
    from ..testing import FakeKanidm, serve

    if not debug:
        # The story narrates what the library would log (the full image after the rules
        # changed, the rejected run); its warnings would only repeat it on stderr.
        logging.getLogger("kanidm_sync").setLevel(logging.ERROR)
    data = importlib.resources.files("kanidm_sync._cli").joinpath("demo_data/directory.ldif")
    out.result("kanidm-sync demo: the life of a sync account, offline.", None)
    with _workdir(workdir) as work:
        (work / "directory.ldif").write_text(data.read_text(encoding="utf-8"), encoding="utf-8")
        (work / "rules.toml").write_text("# no rules yet\n", encoding="utf-8")
        for stale in ("record", "snapshot"):
            for suffix in (".sqlite", ".sqlite-wal", ".sqlite-shm", ".json"):
                (work / "state" / f"{stale}{suffix}").unlink(missing_ok=True)
        (work / "state" / "status.json").unlink(missing_ok=True)
        fake = FakeKanidm()
        with serve(fake) as url:
            (work / "demo.toml").write_text(_CONFIG.format(url=url), encoding="utf-8")
            story = _Story(out, fake, url, work)
            story.title("Start an in-memory Kanidm, served over HTTP on 127.0.0.1.")
            story.detail(
                "kanidm_sync.testing.FakeKanidm answers the sync-account API as kanidmd does; "
                "it vanishes when the demo ends."
            )
            _story(story)
    out.result(
        "\nDone: the whole story ran against the in-memory Kanidm over real HTTP.\n"
        "Next:\n"
        f"  {DOCS_URL}/quickstart.md (your own source)\n"
        f"  {DOCS_URL}/operations.md (conflicts, finalise vs terminate)",
        None,
    )
    return EXIT_OK


def _demo(args: argparse.Namespace, out: Output) -> int:
    if out.json_mode:
        out.warn("demo tells a story; --json is ignored")
        out.json_mode = False
    return run_demo(out, workdir=args.workdir, debug=args.debug)


def add_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    """Add ``demo``.

    Args:
        commands: the top-level subcommands.
        common: the parent parser holding the output options.
    """
    p = commands.add_parser(
        "demo",
        help="the whole story of a sync account, offline, in a few seconds",
        description="Start an in-memory Kanidm, sync a bundled directory into it, change "
        "it, provoke a conflict, fix it and finalise, narrating each step.",
        parents=[common],
    )
    p.add_argument(
        "--workdir", metavar="DIR", help="keep the demo's files in DIR (default: a temporary one)"
    )
    p.set_defaults(handler=_demo)
