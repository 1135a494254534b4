"""When the browser is missing: a skip with the reason, a failure under CI=true."""

from __future__ import annotations

import pathlib

import pytest

from . import _browser


@pytest.fixture
def no_chromium(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    """Chromium is not where Debian installs it."""
    monkeypatch.setattr(_browser, "CHROMIUM", tmp_path / "chromium")


@pytest.mark.usefixtures("no_chromium")
def test_a_missing_browser_skips_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside CI the browser tests are skipped, naming the missing package."""
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"Debian package chromium\)"):
        _browser.require_browser()


@pytest.mark.usefixtures("no_chromium")
def test_a_missing_browser_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under CI=true a missing browser is a failure naming what is missing."""
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"chromium.*CI=true"):
        _browser.require_browser()


def test_artifacts_go_where_the_environment_says(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    """KANIDM_SYNC_ARTIFACTS names the directory (created); the default is tests/.artifacts."""
    monkeypatch.setenv("KANIDM_SYNC_ARTIFACTS", str(tmp_path / "out"))
    assert tmp_path / "out" == _browser.artifacts_dir()
    assert (tmp_path / "out").is_dir()
    assert ("tests", ".artifacts") == _browser.ARTIFACTS_DEFAULT.parts[-2:]
