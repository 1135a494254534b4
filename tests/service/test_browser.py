"""The status page in a real browser: headless Chromium (Debian's) driven by Selenium.

A :class:`~kanidm_sync.StatusServer` is fed by a runner over the in-memory Kanidm: a run
that applied, then a name conflict with its diagnosis; the second run renames a person's
displayname to ``<img src=x onerror=alert(1)>``. The page must load, show the runs and
the diagnosis, show that name as text and run nothing. Screenshots (desktop and phone)
are saved as test artifacts (see ``_browser.py``). One browser for the whole module.
"""

from __future__ import annotations

import datetime as _dt
import pathlib
import struct
from collections.abc import Iterator
from typing import TYPE_CHECKING

import attrs
import pytest

from kanidm_sync import Schedule, StatusServer

from ._browser import artifacts_dir, full_page_screenshot, require_browser, start_chromium
from ._page_scenario import HOSTILE, History, conflict_history

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """One headless Chromium for the module, with a fresh profile."""
    require_browser()
    browser = start_chromium(tmp_path_factory.mktemp("chromium-profile"))
    yield browser
    browser.quit()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StatusServer, History]]:
    """A status server on loopback, fed by two real runs (the second a conflict)."""
    state_path = tmp_path_factory.mktemp("runner") / "state.json"
    with StatusServer(account="hr", kanidm_url="https://idm.example.com") as server:
        server.loop_started(Schedule(interval=300))
        history = conflict_history(state_path, observe=server.observe)
        try:
            next_run = _dt.datetime.now(_dt.UTC) + _dt.timedelta(seconds=300)
            server.observe(attrs.evolve(history.status, next_run_at=next_run))
            yield server, history
        finally:
            history.close()


@pytest.fixture(scope="module")
def page(driver: WebDriver, served: tuple[StatusServer, History]) -> WebDriver:
    """The browser, showing the status page."""
    server, _ = served
    driver.get(server.url + "/")
    return driver


def body_text(driver: WebDriver) -> str:
    """The page's visible text."""
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.TAG_NAME, "body").text)


def test_the_page_loads_with_the_runs_and_the_diagnosis(
    page: WebDriver, served: tuple[StatusServer, History]
) -> None:
    """The page shows the account, readiness, both runs, the diagnosis and its rules."""
    from selenium.webdriver.common.by import By

    _, history = served
    diagnosis = history.reports[1].diagnosis
    assert diagnosis is not None
    assert "not ready - kanidm-sync hr" == page.title
    text = body_text(page)
    for shown in ("kanidm-sync hr", "https://idm.example.com", "alive", "every 300 s"):
        assert shown in text, shown
    outcomes = [e.text for e in page.find_elements(By.CSS_SELECTOR, "#runs tbody .badge")]
    assert ["failed", "applied"] == outcomes
    diagnosis_text = page.find_element(By.CSS_SELECTOR, "#last-error .diagnosis").text
    assert diagnosis.summary in diagnosis_text
    assert "carol" in diagnosis_text
    rules = page.find_element(By.CSS_SELECTOR, "#last-error .diagnosis pre").text
    assert diagnosis.rules_toml == rules


def test_the_style_sheet_is_allowed_by_the_content_security_policy(page: WebDriver) -> None:
    """The inline style applies: its hash in the CSP header matches (else Chromium blocks it)."""
    from selenium.webdriver.common.by import By

    badge = page.find_element(By.CSS_SELECTOR, "header .badge")
    assert "inline-block" == badge.value_of_css_property("display")
    assert "0px" != badge.value_of_css_property("border-top-left-radius")


def test_a_hostile_name_is_text_and_runs_nothing(page: WebDriver) -> None:
    """``<img src=x onerror=alert(1)>`` as a displayname: shown as text, no element, no alert."""
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    assert HOSTILE in body_text(page)
    cell = page.find_element(By.CSS_SELECTOR, "#last-run tbody tr:nth-child(2) td.d")
    assert f'~displayname = "{HOSTILE}"' == cell.text
    assert [] == page.find_elements(By.TAG_NAME, "img")
    assert [] == page.find_elements(By.CSS_SELECTOR, "[src='x'], [onerror]")
    assert [] == page.find_elements(By.TAG_NAME, "script")
    with pytest.raises(NoAlertPresentException):
        page.switch_to.alert  # noqa: B018 (the property raises when there is no alert)


def png_size(path: pathlib.Path) -> tuple[int, int]:
    """Width and height of a PNG file, from its header."""
    data = path.read_bytes()[:24]
    assert b"\x89PNG\r\n\x1a\n" == data[:8], f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.mark.parametrize(("name", "width"), [("desktop", 1280), ("phone", 390)])
def test_screenshots_and_the_page_fits_the_window(page: WebDriver, name: str, width: int) -> None:
    """Saved as artifacts; the page never scrolls sideways (its tables scroll inside)."""
    path = artifacts_dir() / f"status-page-{name}.png"
    full_page_screenshot(page, path, width=width)
    assert width == png_size(path)[0]
    scroll_width, inner_width = page.execute_script(
        "return [document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert scroll_width <= inner_width
