"""The examples of docs/api.md run (doctest) against FakeKanidm."""

from __future__ import annotations

import doctest
import pathlib

API_MD = pathlib.Path(__file__).parents[2] / "docs" / "api.md"


def test_api_md_examples_run() -> None:
    """Every >>> example in docs/api.md produces the output it shows."""
    result = doctest.testfile(
        str(API_MD), module_relative=False, optionflags=doctest.ELLIPSIS, verbose=False
    )
    assert 0 == result.failed
    assert result.attempted > 20
