"""Fixtures for the real-slapd tests: a throwaway OpenLDAP per session or per test.

When slapd or python-ldap is missing, the tests are skipped with the reason shown by
``-ra``; when ``CI=true`` they fail instead, so CI never passes by skipping.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable, Iterator

import pytest
from slapd import Slapd, find_binary

HERE = pathlib.Path(__file__).resolve().parent


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the slapd tests must run in CI)", pytrace=False)
    pytest.skip(reason)


def _require_slapd() -> None:
    if find_binary("slapd") is None or find_binary("slapadd") is None:
        _missing("slapd is not installed (run scripts/install-system-deps as root)")
    try:
        import ldap  # noqa: F401
    except ImportError:
        _missing("python-ldap is not installed (pip install -e '.[ldap]')")


@pytest.fixture(scope="session")
def slapd_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    """One seeded slapd for the whole session; tests using it must not write to it."""
    _require_slapd()
    server = Slapd(tmp_path_factory.mktemp("slapd-session"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


SlapdFactory = Callable[..., Slapd]


@pytest.fixture
def new_slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlapdFactory]:
    """A factory of fresh seeded slapd instances (about 0.1 s each), stopped after the test.

    Call it with ``sessionlog=0`` for a server without a session log (present phase).
    """
    _require_slapd()
    started: list[Slapd] = []

    def start(**options: object) -> Slapd:
        server = Slapd(tmp_path_factory.mktemp("slapd"), **options)  # type: ignore[arg-type]
        started.append(server)
        server.start()
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()
