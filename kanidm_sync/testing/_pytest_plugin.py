"""pytest fixtures for testing sync tools against the in-memory Kanidm.

Registered through the ``pytest11`` entry point ``kanidm_sync``, so installing kanidm-sync
makes these fixtures available everywhere; nothing else imports this module, which keeps
``kanidm_sync.testing`` free of pytest.

Fixtures:
    kanidm_fake: a fresh :class:`~kanidm_sync.testing.FakeKanidm` per test.
    kanidm_sync_account: a sync account named ``test_sync`` on ``kanidm_fake``, with its token
        (a :class:`~kanidm_sync.testing.ProvisionedSyncAccount`).
    kanidm_http_url: ``kanidm_fake`` served over real HTTP on loopback for the test; the
        base URL (``http://127.0.0.1:<port>``).
    kanidm_target: a :class:`~kanidm_sync.testing.KanidmTarget`, parametrised: ``[fake]`` is
        a fresh double, ``[kanidmd]`` a real kanidmd (skipped, with the reason, unless one is
        given). Tests written against it run against both.
    kanidmd_server: the session's real kanidmd (:class:`~kanidm_sync.testing.Kanidmd`), or
        skips the test when none is given.

Options (and environment variables) that give a real kanidmd:
    ``--kanidmd PATH`` (``KANIDM_SYNC_KANIDMD``): a ``kanidmd`` binary; one throwaway server
        is started on loopback for the session, in a temporary directory.
    ``--kanidm-url URL`` (``KANIDM_SYNC_TEST_URL``) with ``--kanidm-admin-password``
        (``KANIDM_SYNC_TEST_ADMIN_PASSWORD``), ``--kanidm-idm-admin-password``
        (``KANIDM_SYNC_TEST_IDM_ADMIN_PASSWORD``) and optionally ``--kanidm-ca PATH``
        (``KANIDM_SYNC_TEST_CA``): an existing *test* server. The tests are destructive, so
        they refuse to run when that server holds a sync account.

A real server that was asked for but cannot be used (it did not start, it holds sync accounts,
a password is missing) fails the ``[kanidmd]`` tests with the reason; with none asked for they
skip.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from kanidm_sync.testing import FakeKanidm, Kanidmd, KanidmTarget, ProvisionedSyncAccount

# kanidm_sync.testing is imported inside the fixtures, not here: pytest loads this plugin in
# every session of every project that has kanidm-sync installed, and only the tests that use
# a fixture should pay for (or be broken by) importing the double.

__all__ = [
    "OPTIONS",
    "kanidm_fake",
    "kanidm_http_url",
    "kanidm_sync_account",
    "kanidm_target",
    "kanidmd_server",
    "pytest_addoption",
]


OPTIONS: tuple[tuple[str, str, str, str], ...] = (
    (
        "--kanidmd",
        "PATH",
        "KANIDM_SYNC_KANIDMD",
        "a kanidmd binary: start a throwaway server for the session",
    ),
    (
        "--kanidm-url",
        "URL",
        "KANIDM_SYNC_TEST_URL",
        "an existing test server holding no sync account",
    ),
    (
        "--kanidm-admin-password",
        "PASSWORD",
        "KANIDM_SYNC_TEST_ADMIN_PASSWORD",
        "admin's password on --kanidm-url",
    ),
    (
        "--kanidm-idm-admin-password",
        "PASSWORD",
        "KANIDM_SYNC_TEST_IDM_ADMIN_PASSWORD",
        "idm_admin's password on --kanidm-url",
    ),
    (
        "--kanidm-ca",
        "PATH",
        "KANIDM_SYNC_TEST_CA",
        "a PEM CA file to trust for --kanidm-url",
    ),
)
"""The real-server options: (option, metavar, environment variable, help)."""


def pytest_addoption(parser: pytest.Parser) -> None:
    """The options that point the ``[kanidmd]`` tests at a real Kanidm."""
    group = parser.getgroup("kanidm-sync", "kanidm-sync: tests against a real kanidmd")
    for option, metavar, env, text in OPTIONS:
        group.addoption(
            option,
            metavar=metavar,
            default=os.environ.get(env) or None,
            help=f"{text} (env {env})",
        )


_NO_SERVER = "no real kanidmd: give --kanidmd PATH or --kanidm-url (docs/testing.md)"


class _RealServer:
    """What the session knows about its real Kanidm: how to reach it, or why it cannot."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.process: Kanidmd | None = None
        self.url: str | None = None
        self.ca_path: str | None = None
        self.passwords: dict[str, str] = {}
        self.error: str | None = None
        self.configured = False
        self.started = False

    def ensure(self) -> None:
        if self.started:
            return
        self.started = True
        binary = self.config.getoption("--kanidmd")
        url = self.config.getoption("--kanidm-url")
        self.configured = bool(binary or url)
        if binary:
            from kanidm_sync.testing import Kanidmd, KanidmdError

            process = Kanidmd(binary)
            try:
                process.start()
                self.passwords = {
                    "admin": process.admin_password,
                    "idm_admin": process.idm_admin_password,
                }
            except KanidmdError as exc:
                process.stop()
                self.error = f"the kanidmd at {binary} did not start: {exc}"
                return
            self.process = process
            self.url, self.ca_path = process.url, str(process.ca_path)
        elif url:
            admin = self.config.getoption("--kanidm-admin-password")
            idm_admin = self.config.getoption("--kanidm-idm-admin-password")
            if not admin or not idm_admin:
                self.error = (
                    "--kanidm-url needs --kanidm-admin-password and --kanidm-idm-admin-password"
                )
                return
            self.url, self.ca_path = url, self.config.getoption("--kanidm-ca")
            self.passwords = {"admin": admin, "idm_admin": idm_admin}
            self.error = self._refuse_if_in_use()
        else:
            self.error = _NO_SERVER

    def _refuse_if_in_use(self) -> str | None:
        target = self.target()
        try:
            with target.admin_client() as admin:
                held = [a.name for a in admin.list_sync_accounts()]
        finally:
            target.close()
        if held:
            return (
                f"refusing to run the destructive [kanidmd] tests: {self.url} holds sync "
                f"accounts this session did not create ({', '.join(held)}); use a throwaway "
                "test server"
            )
        return None

    def target(self) -> KanidmTarget:
        from kanidm_sync.testing import KanidmdTarget

        assert self.url is not None
        return KanidmdTarget(
            self.url,
            admin_password=self.passwords["admin"],
            idm_admin_password=self.passwords["idm_admin"],
            ca_path=self.ca_path,
            kanidmd=self.process,
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None


_SERVER_KEY = pytest.StashKey[_RealServer]()


def _require(server: _RealServer) -> None:
    """Skip without a real server; fail when one was asked for but cannot be used."""
    server.ensure()
    if server.error is None:
        return
    if server.configured:
        # A real server was asked for: a run that quietly skipped it would look green.
        pytest.fail(server.error, pytrace=False)
    pytest.skip(server.error)


def _real_server(config: pytest.Config) -> _RealServer:
    if _SERVER_KEY not in config.stash:
        config.stash[_SERVER_KEY] = _RealServer(config)
    return config.stash[_SERVER_KEY]


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop the session's throwaway kanidmd, if one was started."""
    if _SERVER_KEY in config.stash:
        config.stash[_SERVER_KEY].stop()


@pytest.fixture(scope="session")
def kanidmd_server(request: pytest.FixtureRequest) -> Kanidmd:
    """The session's throwaway kanidmd (``--kanidmd``); skips the test without one."""
    server = _real_server(request.config)
    _require(server)
    if server.process is None:
        pytest.skip("this test needs a kanidmd binary (--kanidmd), not only --kanidm-url")
    return server.process


@pytest.fixture(params=["fake", "kanidmd"])
def kanidm_target(request: pytest.FixtureRequest) -> Iterator[KanidmTarget]:
    """A Kanidm to test against: ``[fake]`` the double, ``[kanidmd]`` a real server.

    The ``[kanidmd]`` variant skips with the reason unless a real kanidmd is given
    (``--kanidmd PATH`` or ``--kanidm-url``). Whatever the test creates on a real server
    is removed when it ends.
    """
    if request.param == "fake":
        from kanidm_sync.testing import FakeTarget

        yield FakeTarget()
        return
    server = _real_server(request.config)
    _require(server)
    target = server.target()
    try:
        yield target
    finally:
        target.close()


@pytest.fixture
def kanidm_fake() -> FakeKanidm:
    """A fresh in-memory Kanidm for one test."""
    from kanidm_sync.testing import FakeKanidm

    return FakeKanidm()


@pytest.fixture
def kanidm_sync_account(kanidm_fake: FakeKanidm) -> ProvisionedSyncAccount:
    """A sync account named ``test_sync`` on ``kanidm_fake``, with its token."""
    return kanidm_fake.provision_sync_account("test_sync")


@pytest.fixture
def kanidm_http_url(kanidm_fake: FakeKanidm) -> Iterator[str]:
    """``kanidm_fake`` served over real HTTP on loopback; yields the base URL."""
    from kanidm_sync.testing import serve

    with serve(kanidm_fake) as url:
        yield url
