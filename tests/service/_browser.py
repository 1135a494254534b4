"""A real browser for the status page tests: Debian's headless Chromium driven by Selenium.

Chromium and its driver come from Debian's packages (``chromium``, ``chromium-driver``,
installed as root by ``scripts/install-system-deps``); Selenium from PyPI (the ``test``
dependency group). When one of them is missing the tests are skipped with the reason,
except under ``CI=true``, where they fail naming what is missing (as the slapd tests do).

Screenshots go to the directory named by ``KANIDM_SYNC_ARTIFACTS`` (default
``tests/.artifacts/``, ignored by git).
"""

from __future__ import annotations

import os
import pathlib
import shutil
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

CHROMIUM = pathlib.Path("/usr/bin/chromium")
CHROMEDRIVER = pathlib.Path("/usr/bin/chromedriver")
ARTIFACTS_DEFAULT = pathlib.Path(__file__).resolve().parent.parent / ".artifacts"

# The machine's network is closed: without the background-networking flags Chromium
# waits on the network it tries to reach at start (updates, sync, field trials).
FLAGS = (
    "--headless",
    "--no-sandbox",  # runs as root, in CI too
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-features=Translate,OptimizationHints,MediaRouter",
    "--hide-scrollbars",
)


def missing_browser() -> list[str]:
    """What the browser tests need and this machine lacks, in words (empty: nothing)."""
    missing = []
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(f"{CHROMIUM} (Debian package chromium)")
    if not os.access(CHROMEDRIVER, os.X_OK):
        missing.append(f"{CHROMEDRIVER} (Debian package chromium-driver)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the Python package selenium (pip install --group test)")
    return missing


def require_browser() -> None:
    """Skip the test when the browser is missing; fail instead under ``CI=true``."""
    missing = missing_browser()
    if not missing:
        return
    reason = (
        "the real-browser tests need "
        + ", ".join(missing)
        + " (run scripts/install-system-deps as root)"
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the browser tests must run in CI)", pytrace=False)
    pytest.skip(reason)


def start_chromium(profile: pathlib.Path) -> WebDriver:
    """A headless Chromium with a fresh profile in ``profile``, driven by chromedriver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument("--window-size=1280,900")
    # Given both paths, Selenium never starts Selenium Manager (which would go online).
    service = Service(executable_path=str(CHROMEDRIVER))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    return driver


def artifacts_dir() -> pathlib.Path:
    """Where test artifacts go (``KANIDM_SYNC_ARTIFACTS``, default ``tests/.artifacts``)."""
    path = pathlib.Path(os.environ.get("KANIDM_SYNC_ARTIFACTS") or ARTIFACTS_DEFAULT)
    path.mkdir(parents=True, exist_ok=True)
    return path


def full_page_screenshot(driver: WebDriver, path: pathlib.Path, *, width: int) -> None:
    """Save the whole page, ``width`` CSS pixels wide, as a PNG at ``path``."""
    driver.set_window_size(width, 900)
    # The window's size includes the browser's frame: add it, so the page fits exactly.
    height, frame = driver.execute_script(
        "return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight]"
    )
    driver.set_window_size(width, min(max(int(height), 600), 6000) + int(frame))
    tmp = path.with_suffix(".tmp.png")
    if not driver.save_screenshot(str(tmp)):
        raise AssertionError(f"Chromium could not save a screenshot to {tmp}")
    shutil.move(tmp, path)
