"""Fixtures for the real-directory tests: OpenLDAP per session or per test, and 389-ds.

When slapd or python-ldap is missing, the tests are skipped with the reason shown by
``-ra``; when ``CI=true`` they fail instead, so CI never passes by skipping.
"""

from __future__ import annotations

import concurrent.futures
import os
import pathlib
from collections.abc import Callable, Iterator

import pytest
from ds389 import Ds389
from slapd import Slapd, find_binary

HERE = pathlib.Path(__file__).resolve().parent
LAB = HERE / "lab"


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


# -- 389 Directory Server ------------------------------------------------------------------


def _require_389() -> None:
    from ds389 import find_389

    if find_389() is None:
        _missing("389-ds is not installed (run scripts/install-system-deps as root)")
    if os.geteuid() != 0:
        # dscreate writes the instance as the current user; only root is tested (as in CI).
        _missing("the 389-ds tests run as root only (they create an instance with dscreate)")
    try:
        import ldap  # noqa: F401
    except ImportError:
        _missing("python-ldap is not installed (pip install -e '.[ldap]')")


@pytest.fixture(scope="session")
def ds389_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Ds389]]:
    """389-ds instances started side by side (about 12 s): keyed by name.

    ``"default"`` and ``"openldap"`` hold the lab seed in each content sync mode;
    ``"freeipa"`` is in the default mode (what FreeIPA ships) and holds a FreeIPA-shaped
    tree on FreeIPA's schema.
    """
    _require_389()
    from ds389 import MODES

    servers = {mode: Ds389(tmp_path_factory.mktemp(f"ds389-{mode}"), mode=mode) for mode in MODES}
    servers["freeipa"] = Ds389(
        tmp_path_factory.mktemp("ds389-freeipa"),
        mode="default",
        schema=(LAB / "ds389-openssh-lpk.ldif", LAB / "ds389-freeipa-schema.ldif"),
        seed=(LAB / "ds389-ipa-seed.ldif",),
    )
    with concurrent.futures.ThreadPoolExecutor(len(servers)) as pool:
        started = [pool.submit(server.start) for server in servers.values()]
    try:
        for future in started:
            future.result()
        yield servers
    finally:
        for server in servers.values():
            server.stop()


@pytest.fixture(params=["default", "openldap"], ids=["389-default", "389-openldap"])
def ds389(request: pytest.FixtureRequest, ds389_servers: dict[str, Ds389]) -> Ds389:
    """A seeded 389-ds in one content sync mode, its tree restored for this test."""
    server = ds389_servers[request.param]
    server.reset()
    return server


@pytest.fixture
def ds389_ipa(ds389_servers: dict[str, Ds389]) -> Ds389:
    """A 389-ds in default mode with FreeIPA's schema and tree, restored for this test."""
    server = ds389_servers["freeipa"]
    server.reset()
    return server
