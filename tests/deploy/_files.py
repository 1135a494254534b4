"""The files docs/deploy.md shows, taken out of the page, and what checking them needs.

A file is the fenced block right after a ``<!-- file: NAME -->`` line. A tool or module
the checks need (``systemd-analyze`` from Debian's systemd package, PyYAML) is a skip when
missing, naming it, except under ``CI=true``, where it is a failure (as for slapd and the
browser): CI installs them (scripts/install-system-deps, the test dependency group).
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import sys
from types import ModuleType

import pytest

DEPLOY = pathlib.Path(__file__).resolve().parents[2] / "docs" / "deploy.md"
SCRIPT = pathlib.Path(sys.executable).with_name("kanidm-sync")
_FILE = re.compile(r"^<!-- file: (\S+) -->\n```\w*\n(.*?)^```\s*$", re.DOTALL | re.MULTILINE)


def files(text: str | None = None) -> dict[str, str]:
    """The page's files by name."""
    page = DEPLOY.read_text(encoding="utf-8") if text is None else text
    return {name: body for name, body in _FILE.findall(page)}


def missing(what: str) -> None:
    """Skip (or, under CI=true, fail) because ``what`` is not installed."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} (CI=true: the deployment checks must run in CI)", pytrace=False)
    pytest.skip(what)


def systemd_analyze() -> str:
    """The path of systemd-analyze (Debian's systemd package)."""
    found = shutil.which("systemd-analyze")
    if found is None:
        missing("systemd-analyze is not installed (Debian package: systemd)")
    assert found is not None
    return found


def yaml_module() -> ModuleType:
    """PyYAML."""
    try:
        import yaml
    except ImportError:
        missing("PyYAML is not installed (pip install pyyaml)")
        raise
    return yaml
