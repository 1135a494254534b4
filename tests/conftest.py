"""Shared fixtures for the kanidm-sync test suite."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

FIXTURES = pathlib.Path(__file__).parent / "fixtures"


@pytest.fixture
def anyio_backend() -> str:
    """Run anyio-marked async tests on asyncio only."""
    return "asyncio"


def load_fixture(relpath: str) -> Any:
    """Load a JSON fixture from tests/fixtures/."""
    return json.loads((FIXTURES / relpath).read_text(encoding="utf-8"))
