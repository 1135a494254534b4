"""The README: its two commands are what CI runs, and its Python example works."""

from __future__ import annotations

import pathlib
import re

import pytest

from kanidm_sync.testing import FakeKanidm, serve

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_opens_with_the_demo_and_the_test_command() -> None:
    """The first block holds exactly two commands: the demo, then the suite .ci/run runs."""
    first = re.search(r"```sh\n(.*?)```", README, re.DOTALL)
    assert first is not None
    commands = [line.split("#")[0].strip() for line in first.group(1).splitlines()]
    assert ["./scripts/demo", "./scripts/test"] == [c for c in commands if c]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "exec scripts/test" in ci


def test_readme_python_example_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The example syncs alice into a Kanidm reached through SyncAccount.from_env()."""
    code = re.search(r"```python\n(.*?)```", README, re.DOTALL)
    assert code is not None
    fake = FakeKanidm()
    with serve(fake) as url:
        account = fake.provision_sync_account("hr")
        monkeypatch.setenv("KANIDM_URL", url)
        monkeypatch.setenv("KANIDM_SYNC_TOKEN", account.token)
        monkeypatch.setenv("KANIDM_ALLOW_INSECURE_HTTP", "true")
        exec(compile(code.group(1), "README.md", "exec"), {})
    alice = fake.store.entry("alice")
    assert alice is not None
    assert ("Alice Example",) == alice.get("displayname")
    assert b"hr-export-2026-11-27" == fake.cookie("hr")
