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
def _ds389_starting(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, tuple[Ds389, concurrent.futures.Future[None]]]]:
    """Every 389-ds instance, started side by side in threads (about 12-25 s in all).

    ``"default"`` and ``"openldap"`` hold the lab seed in each content sync mode;
    ``"freeipa"`` is in the default mode (what FreeIPA ships) and holds a FreeIPA-shaped
    tree on FreeIPA's schema. Each fixture below waits for its own instances only, so a
    failure to start one is reported by the tests that use it.
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
    pool = concurrent.futures.ThreadPoolExecutor(len(servers))
    try:
        yield {name: (server, pool.submit(server.start)) for name, server in servers.items()}
    finally:
        pool.shutdown(wait=True)
        for server in servers.values():
            server.stop()


def _started(
    starting: dict[str, tuple[Ds389, concurrent.futures.Future[None]]], name: str
) -> Ds389:
    server, future = starting[name]
    future.result()
    return server


@pytest.fixture(params=["default", "openldap"], ids=["389-default", "389-openldap"])
def ds389(
    request: pytest.FixtureRequest,
    _ds389_starting: dict[str, tuple[Ds389, concurrent.futures.Future[None]]],
) -> Ds389:
    """A seeded 389-ds in one content sync mode, its tree restored for this test."""
    server = _started(_ds389_starting, request.param)
    server.reset()
    return server


@pytest.fixture
def ds389_servers(
    _ds389_starting: dict[str, tuple[Ds389, concurrent.futures.Future[None]]],
) -> dict[str, Ds389]:
    """Both content sync mode instances (for tests that use two servers), not reset."""
    return {name: _started(_ds389_starting, name) for name in ("default", "openldap")}


@pytest.fixture
def ds389_ipa(
    _ds389_starting: dict[str, tuple[Ds389, concurrent.futures.Future[None]]],
) -> Ds389:
    """A 389-ds in default mode with FreeIPA's schema and tree, restored for this test."""
    server = _started(_ds389_starting, "freeipa")
    server.reset()
    return server


@pytest.fixture
def pyasn1_specs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ASN.1 types the LDAP client decodes with pyasn1 during the test, in order.

    A Sync State control in the plain form ``_ldap_ber`` reads never gets here.
    """
    from kanidm_sync.adapters import _ldap_client

    real = _ldap_client._ber_decoder.decode
    specs: list[str] = []

    def watching(data: bytes, **kwargs: object) -> object:
        specs.append(type(kwargs.get("asn1Spec")).__name__)
        return real(data, **kwargs)

    monkeypatch.setattr(_ldap_client._ber_decoder, "decode", watching)
    return specs
