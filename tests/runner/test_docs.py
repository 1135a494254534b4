"""The runner half of docs/adapters.md runs as written against the in-memory Kanidm."""

from __future__ import annotations

import contextlib
import io
import pathlib
import re

import pytest

DOCS = pathlib.Path(__file__).parents[2] / "docs"


def test_adapter_page_syncs_into_the_double(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A newcomer's adapter from docs/adapters.md syncs into FakeKanidm, then sends only churn."""
    monkeypatch.chdir(tmp_path)
    text = (DOCS / "adapters.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    runner_block = next(b for b in blocks if "Runner(" in b)
    namespace: dict[str, object] = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(blocks[0], namespace)
        exec(runner_block, namespace)
    assert ["applied 3", "Alice Liddell", "1 0"] == out.getvalue().splitlines()
    assert (tmp_path / "hr.record.sqlite").exists()
