"""Shared fixtures for the kanidm-sync test suite."""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

import pytest

FIXTURES = pathlib.Path(__file__).parent / "fixtures"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Kanidm's own sync tools, for the side-by-side comparisons (never built by this project).

    These options live in this conftest, not in the plugin, so pytest reads them after it has
    chosen its root directory: give them as ``--kanidm-ldap-sync=PATH`` (with ``=``), or a
    separate PATH is taken for a test path too.
    """
    group = parser.getgroup("kanidm-sync-reference", "Kanidm's reference sync tools")
    group.addoption(
        "--kanidm-ldap-sync",
        metavar="PATH",
        default=os.environ.get("KANIDM_SYNC_REFERENCE_LDAP_SYNC") or None,
        help="a kanidm-ldap-sync binary to compare with (env KANIDM_SYNC_REFERENCE_LDAP_SYNC)",
    )
    group.addoption(
        "--kanidm-ipa-sync",
        metavar="PATH",
        default=os.environ.get("KANIDM_SYNC_REFERENCE_IPA_SYNC") or None,
        help="a kanidm-ipa-sync binary to compare with (env KANIDM_SYNC_REFERENCE_IPA_SYNC)",
    )


@pytest.fixture
def anyio_backend() -> str:
    """Run anyio-marked async tests on asyncio only."""
    return "asyncio"


def load_fixture(relpath: str) -> Any:
    """Load a JSON fixture from tests/fixtures/."""
    return json.loads((FIXTURES / relpath).read_text(encoding="utf-8"))
