"""The python examples of docs/testing.md and docs/quickstart.md pass ``mypy --strict``.

Users copy these examples into typed test suites (issue 12: ``fake.store.entry("alice").x``
failed there, as ``entry()`` returns ``StoredEntry | None``). The blocks a page runs in one
namespace are checked as one module; each pytest example is a module of its own.
"""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
PAGES = ("testing.md", "quickstart.md")


def _modules(tmp_path: pathlib.Path) -> list[pathlib.Path]:
    written = []
    for page in PAGES:
        blocks = BLOCK.findall((ROOT / "docs" / page).read_text(encoding="utf-8"))
        stem = "docs_" + page.replace(".", "_")
        shared = [b for b in blocks if "def test_" not in b]
        tests = [b for b in blocks if "def test_" in b]
        assert shared or tests, page
        if shared:
            written.append(tmp_path / f"{stem}.py")
            written[-1].write_text("\n\n".join(shared), encoding="utf-8")
        for number, block in enumerate(tests):
            written.append(tmp_path / f"{stem}_test_{number}.py")
            written[-1].write_text(block, encoding="utf-8")
    return written


def test_doc_examples_pass_mypy_strict(tmp_path: pathlib.Path) -> None:
    """``mypy --strict`` finds nothing in the examples."""
    pytest.importorskip("mypy")
    modules = _modules(tmp_path)
    result = subprocess.run(
        [
            sys.executable, "-m", "mypy", "--strict", "--warn-unreachable",
            "--no-error-summary", "--hide-error-context", "--no-pretty",
            "--cache-dir", str(tmp_path / ".mypy_cache"),
            *[m.name for m in modules],
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip
    errors = [line for line in result.stdout.splitlines() if ": error: " in line]
    assert result.returncode in (0, 1), result.stdout + result.stderr
    assert [] == errors
