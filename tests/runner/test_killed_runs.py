"""Guards that never switch off: real processes, killed with SIGKILL, then a truncated export.

Each run is a separate Python process running the README's HR-export tool (a CSV through
``SnapshotAdapter``) against the in-memory Kanidm served over loopback HTTP by this test.
A run is killed with SIGKILL at a named point (Kanidm committed, the local record not yet
written), or its state directory is wiped; then the export is cut down. Kanidm must keep
every entry: the baseline the guards need survives in the cookie Kanidm stores (issue 12,
items 1 and 10).
"""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from kanidm_sync.testing import FakeKanidm, ProvisionedSyncAccount, serve

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")

TOOL = textwrap.dedent(
    """
    import os, signal, sys
    from kanidm_sync import Client, GuardError, Runner
    from kanidm_sync.adapters import SnapshotAdapter
    from kanidm_sync.adapters.files import CsvSource, FieldMapping

    url, token, state_dir, export, kill_at, record = sys.argv[1:]

    def progress(p):
        # SIGKILL once Kanidm committed, before the runner writes its record.
        if kill_at == "after-apply" and p.phase == "apply":
            os.kill(os.getpid(), signal.SIGKILL)

    source = SnapshotAdapter(
        CsvSource(export, FieldMapping(default_kind="person")),
        os.path.join(state_dir, "people.snapshot.json"),
    )
    runner = Runner(
        Client(url, token=token, allow_insecure_http=True),
        source,
        state_path=os.path.join(state_dir, "people.applied.json") if record == "yes" else None,
        progress=progress,
    )
    try:
        report = runner.run_once()
    except GuardError as exc:
        print(f"refused: {type(exc).__name__}: {exc}")
        sys.exit(3)
    print(report.outcome, dict(report.counts))
    """
)


# ``fake`` and ``account`` (the sync account "hr") come from tests/runner/conftest.py.
@pytest.fixture
def url(fake: FakeKanidm) -> Iterator[str]:
    with serve(fake) as served:
        yield served


class Tool:
    """The HR tool as a process: one call is one run."""

    def __init__(self, tmp: pathlib.Path, url: str, token: str) -> None:
        self.script = tmp / "hr_sync.py"
        self.script.write_text(TOOL, encoding="utf-8")
        self.state = tmp / "state"
        self.state.mkdir()
        self.export = tmp / "people.csv"
        self.url = url
        self.token = token

    def people(self, count: int) -> None:
        rows = [f"hr-{i},u{i},User {i}" for i in range(count)]
        self.export.write_text(
            "external_id,name,displayname\n" + "\n".join(rows) + "\n", encoding="utf-8"
        )

    def run(self, *, kill_at: str = "", record: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONPATH": str(pathlib.Path(__file__).parents[2])}
        return subprocess.run(
            [
                sys.executable,
                str(self.script),
                self.url,
                self.token,
                str(self.state),
                str(self.export),
                kill_at or "-",
                "yes" if record else "no",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )


def held(fake: FakeKanidm, account: ProvisionedSyncAccount) -> int:
    return len(fake.store.entries(owned_by=account.uuid))


def test_killed_after_commit_then_truncated_export_is_refused(
    tmp_path: pathlib.Path, fake: FakeKanidm, account: ProvisionedSyncAccount, url: str
) -> None:
    """SIGKILL after Kanidm committed; the next runs rebuild the record; 2 of 22 is refused."""
    tool = Tool(tmp_path, url, account.token)
    tool.people(21)
    assert 0 == tool.run().returncode
    tool.people(22)
    killed = tool.run(kill_at="after-apply")
    assert -signal.SIGKILL == killed.returncode
    assert 22 == held(fake, account)  # Kanidm committed; the record says 21
    again = tool.run()
    assert 0 == again.returncode, again.stderr
    tool.people(2)
    refused = tool.run()
    assert 3 == refused.returncode, refused.stdout + refused.stderr
    assert "SourceGuardError" in refused.stdout
    assert "delete 20 of the 22 entries" in refused.stdout
    assert 22 == held(fake, account)
    refused = tool.run()  # and again: the guard does not switch itself off
    assert 3 == refused.returncode
    assert 22 == held(fake, account)


def test_wiped_state_directory_then_truncated_export_is_refused(
    tmp_path: pathlib.Path, fake: FakeKanidm, account: ProvisionedSyncAccount, url: str
) -> None:
    """Every local file lost (a new host, a container without a volume), export cut to 5%."""
    tool = Tool(tmp_path, url, account.token)
    tool.people(400)
    assert 0 == tool.run().returncode
    shutil.rmtree(tool.state)
    tool.state.mkdir()
    tool.people(20)
    refused = tool.run()
    assert 3 == refused.returncode, refused.stdout + refused.stderr
    assert "down from 400 in Kanidm's last applied state" in refused.stdout
    assert 400 == held(fake, account)


def test_killed_run_without_a_record_then_truncated_export_is_refused(
    tmp_path: pathlib.Path, fake: FakeKanidm, account: ProvisionedSyncAccount, url: str
) -> None:
    """``Runner(state_path=None)`` (the default): killed once, then a truncated export."""
    tool = Tool(tmp_path, url, account.token)
    tool.people(21)
    assert 0 == tool.run(record=False).returncode
    tool.people(22)
    assert -signal.SIGKILL == tool.run(kill_at="after-apply", record=False).returncode
    nothing = tool.run(record=False)
    assert 0 == nothing.returncode, nothing.stderr
    tool.people(2)
    refused = tool.run(record=False)
    assert 3 == refused.returncode, refused.stdout + refused.stderr
    assert "delete 20 of the 22 entries" in refused.stdout
    assert 22 == held(fake, account)
