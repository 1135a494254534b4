"""Every ``python`` block of every docs/*.md page runs, and so does docs/notebook.ipynb.

Per page, the blocks run in order in one namespace (later blocks use what earlier ones
defined), in a temporary working directory. A block preceded by ``<!-- skip-test -->`` is
not run: that is only for code that needs a real Kanidm or LDAP server, and the opt-outs
are counted so they stay few. Top-level ``await`` is allowed (async examples), and a block
written as a doctest (``>>>``) runs as one. The notebook's code cells run the same way,
without Jupyter: its JSON is parsed and each cell executed in order.
"""

from __future__ import annotations

import ast
import asyncio
import doctest
import inspect
import json
import pathlib
import re

import pytest

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"
SKIP_MARK = "<!-- skip-test -->"
MAX_SKIPPED = 8
"""Blocks that need a real server; raise only with a reason in the page."""

_FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```\s*$", re.DOTALL | re.MULTILINE)


def blocks(text: str) -> list[tuple[int, str, bool]]:
    """The python blocks of a page: (line number, code, skipped)."""
    found = []
    for match in _FENCE.finditer(text):
        before = text[: match.start()].rstrip().splitlines()
        skipped = bool(before) and before[-1].strip() == SKIP_MARK
        line = text.count("\n", 0, match.start()) + 2
        found.append((line, match.group(1), skipped))
    return found


def run_code(source: str, filename: str, namespace: dict[str, object]) -> None:
    """Execute one block (top-level ``await`` allowed) in ``namespace``.

    A block written as a doctest (``>>>`` prompts) runs as one, and its shown output
    must match (``...`` elides).
    """
    if source.lstrip().startswith(">>>"):
        test = doctest.DocTestParser().get_doctest(source, namespace, filename, filename, 0)
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
        out: list[str] = []
        result = runner.run(test, out=out.append, clear_globs=False)
        namespace.update(test.globs)  # DocTest works on a copy; later blocks need its names
        if result.failed:
            raise AssertionError("".join(out))
        return
    code = compile(source, filename, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    if code.co_flags & inspect.CO_COROUTINE:
        result = eval(code, namespace)  # a coroutine: the block awaits something
        asyncio.run(result)
    else:
        exec(code, namespace)


PAGES = sorted(p for p in DOCS.glob("*.md") if any(not s for *_, s in blocks(p.read_text())))


def test_blocks_are_found() -> None:
    """The block parser finds code, its line, and the opt-out mark."""
    text = "intro\n\n```python\nx = 1\n```\n\n<!-- skip-test -->\n```python\nserver()\n```\n"
    assert [(4, "x = 1\n", False), (9, "server()\n", True)] == blocks(text)


def test_doctest_blocks_share_the_namespace_and_check_output() -> None:
    """A doctest block's names reach later blocks; a wrong shown output fails."""
    namespace: dict[str, object] = {}
    run_code(">>> x = 2\n", "first", namespace)
    run_code("y = x + 1\n", "second", namespace)
    run_code(">>> y\n3\n", "third", namespace)
    with pytest.raises(AssertionError):
        run_code(">>> y\n4\n", "fourth", namespace)


def test_top_level_await_runs() -> None:
    """A block may await at top level (async examples)."""
    namespace: dict[str, object] = {}
    run_code("import asyncio\nawait asyncio.sleep(0)\ndone = True\n", "async", namespace)
    assert True is namespace["done"]


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_page_examples_run(
    page: pathlib.Path, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every python block of the page runs, in order, in one namespace."""
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    for line, code, skipped in blocks(page.read_text(encoding="utf-8")):
        if skipped:
            continue
        try:
            run_code(code, f"{page.name}:{line}", namespace)
        except Exception as exc:
            pytest.fail(f"{page.name}, block at line {line}: {type(exc).__name__}: {exc}")


def test_opt_outs_stay_few() -> None:
    """Only a handful of blocks (those needing a real server) skip the suite."""
    skipped = [
        f"{page.name}:{line}"
        for page in sorted(DOCS.glob("*.md"))
        for line, _, skip in blocks(page.read_text(encoding="utf-8"))
        if skip
    ]
    assert len(skipped) <= MAX_SKIPPED, skipped


def test_notebook_runs(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/notebook.ipynb is a valid nbformat-4 notebook whose code cells all run in order."""
    notebook = json.loads((DOCS / "notebook.ipynb").read_text(encoding="utf-8"))
    assert 4 == notebook["nbformat"]
    cells = notebook["cells"]
    code_cells = [c for c in cells if c["cell_type"] == "code"]
    assert len(code_cells) >= 5
    assert all(c.get("outputs", []) == [] for c in code_cells), "commit the notebook cleared"
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "docs_notebook"}
    for n, cell in enumerate(code_cells, start=1):
        source = "".join(cell["source"])
        try:
            run_code(source, f"notebook.ipynb:cell{n}", namespace)
        except Exception as exc:
            pytest.fail(f"notebook code cell {n}: {type(exc).__name__}: {exc}")
