"""The pytest plugin (entry point ``pytest11``) and its fixtures, run through pytester."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

from kanidm_sync.testing._pytest_plugin import OPTIONS

pytest_plugins = ["pytester"]


def test_fixtures_work_in_a_user_project(pytester: pytest.Pytester) -> None:
    """A user's test module gets kanidm_fake, kanidm_sync_account and kanidm_http_url."""
    pytester.makepyfile(
        """
        import httpx

        def test_transport(kanidm_fake, kanidm_sync_account):
            assert kanidm_sync_account.url == kanidm_fake.url
            assert kanidm_sync_account.token not in repr(kanidm_sync_account)
            http = httpx.Client(transport=kanidm_fake.transport, base_url=kanidm_fake.url)
            auth = {"authorization": "Bearer " + kanidm_sync_account.token}
            assert http.get("/scim/v1/Sync", headers=auth).json() == "Refresh"

        def test_real_http(kanidm_fake, kanidm_sync_account, kanidm_http_url):
            auth = {"authorization": "Bearer " + kanidm_sync_account.token}
            assert httpx.get(kanidm_http_url + "/scim/v1/Sync", headers=auth).json() == "Refresh"
            assert kanidm_fake.history[-1].path == "/scim/v1/Sync"

        def test_fresh_fake_per_test(kanidm_fake):
            assert kanidm_fake.history == []
            assert kanidm_fake.store.sync_accounts() == []
        """
    )
    result = pytester.runpytest("-W", "error")
    result.assert_outcomes(passed=3)


def test_fixtures_are_listed(pytester: pytest.Pytester) -> None:
    """``pytest --fixtures`` shows the three fixtures from the installed entry point."""
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("--fixtures")
    result.stdout.fnmatch_lines(["*kanidm_fake*", "*kanidm_sync_account*", "*kanidm_http_url*"])


def test_testing_package_does_not_import_pytest() -> None:
    """Importing kanidm_sync.testing (and serving) never pulls pytest in."""
    code = (
        "import sys, kanidm_sync.testing as t; t.FakeKanidm(); "
        "assert 'pytest' not in sys.modules and '_pytest' not in sys.modules, 'pytest imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.fixture
def no_server_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The options' environment variables would point the inner run at a real server."""
    for _option, _metavar, name, _help in OPTIONS:
        monkeypatch.delenv(name, raising=False)


TARGET_TEST = """
def test_on_any_kanidm(kanidm_target):
    account = kanidm_target.provision_sync_account("plugin_sync")
    assert account.token
"""


@pytest.mark.usefixtures("no_server_env")
def test_kanidm_target_skips_without_a_server(pytester: pytest.Pytester) -> None:
    """[fake] runs; [kanidmd] skips with the reason when no real server is asked for."""
    pytester.makepyfile(TARGET_TEST)
    result = pytester.runpytest("-W", "error", "-ra", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*no real kanidmd: give --kanidmd PATH*"])


@pytest.mark.usefixtures("no_server_env")
def test_kanidm_target_fails_when_the_asked_server_cannot_start(
    pytester: pytest.Pytester, tmp_path: pathlib.Path
) -> None:
    """A kanidmd that was asked for but is not there fails [kanidmd]: no silent green run."""
    pytester.makepyfile(TARGET_TEST)
    missing = tmp_path / "no-such-kanidmd"
    result = pytester.runpytest("-W", "error", "-p", "no:cacheprovider", "--kanidmd", str(missing))
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*is not an executable file*"])


@pytest.mark.usefixtures("no_server_env")
def test_kanidm_url_needs_both_passwords(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(TARGET_TEST)
    result = pytester.runpytest(
        "-W", "error", "-p", "no:cacheprovider", "--kanidm-url", "https://idm.invalid"
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*--kanidm-url needs --kanidm-admin-password*"])
