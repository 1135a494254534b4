"""docs/testing.md: its python examples run, in order, as the documentation promises."""

from __future__ import annotations

import pathlib
import re

import pytest

pytest_plugins = ["pytester"]

DOC = pathlib.Path(__file__).parent.parent.parent / "docs" / "testing.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks() -> list[str]:
    return BLOCK.findall(DOC.read_text(encoding="utf-8"))


def test_docs_have_examples() -> None:
    """The page has the ten-line example, fault injection, fixtures and serve blocks."""
    found = blocks()
    assert len(found) >= 5
    assert any("def test_" in b for b in found)
    assert any("serve(fake)" in b for b in found)


def test_docs_examples_run() -> None:
    """Every non-fixture python block executes in one namespace without error."""
    namespace: dict[str, object] = {"__name__": "docs_testing"}
    for block in blocks():
        if "def test_" in block:
            continue
        exec(compile(block, str(DOC), "exec"), namespace)
    fake = namespace["fake"]
    assert 0 < len(fake.history)  # type: ignore[attr-defined]


def test_docs_fixture_example_passes(pytester: pytest.Pytester) -> None:
    """The pytest-fixture block passes as a user's test module."""
    fixture_block, _ = [b for b in blocks() if "def test_" in b]
    pytester.makepyfile(fixture_block)
    result = pytester.runpytest("-W", "error")
    result.assert_outcomes(passed=fixture_block.count("def test_"))


def test_docs_target_example_runs_on_both(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kanidm_target block passes on the double; [kanidmd] skips without a server."""
    for name in ("KANIDM_SYNC_KANIDMD", "KANIDM_SYNC_TEST_URL"):
        monkeypatch.delenv(name, raising=False)
    _, target_block = [b for b in blocks() if "def test_" in b]
    pytester.makepyfile(target_block)
    result = pytester.runpytest("-W", "error", "-ra", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*no real kanidmd*"])
