"""``kanidm-sync demo``: the offline story runs, says what it should, and says it the same way."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys
import tomllib

from ._helpers import Cli

ROOT = pathlib.Path(__file__).resolve().parents[2]
URL = re.compile(r"https?://\S+")


def test_demo_tells_the_whole_story(cli: Cli) -> None:
    """The demo exits 0 and narrates each step: plan, apply, delta, conflict, fix, finalise."""
    result = cli("demo", timeout=120)
    assert 0 == result.code, result.stderr
    out = result.stdout
    for line in (
        "[1] Start an in-memory Kanidm, served over HTTP on 127.0.0.1.",
        "    account hr_feed: token issued, state refresh",
        "    Plan: full source, 37 create-or-replace",
        "    run applied: 37 create-or-replace; 1 of 1 requests sent",
        "    Kanidm now holds 30 persons and 7 groups owned by hr_feed",
        "    Plan: delta source, 1 create, 3 update, 1 delete",
        "    only the changes travelled; lars is in Kanidm's recycle bin",
        "    run failed: UniquenessError: HTTP 409",
        "    Rollback: nothing in Kanidm changed and the cookie is unchanged",
        '      name = "rlopez-sync"',
        "    run applied: 1 create, 1 update, 36 unchanged",
        "    Kanidm keeps both: rlopez (native) and rlopez-sync (synced, Rafael Lopez)",
        "    entries still owned by a sync account: 0",
        "the old sync token now gets 401; sync accounts left: 0",
    ):
        assert line in out, line
    assert "" == result.stderr


def test_demo_is_deterministic_and_python_m_works(cli: Cli) -> None:
    """`python -m kanidm_sync demo` prints exactly what the console script prints."""
    first = cli("demo", timeout=120)
    second = subprocess.run(
        [sys.executable, "-m", "kanidm_sync", "demo"],
        capture_output=True,
        text=True,
        env=cli.env(),
        timeout=120,
        check=False,
    )
    assert 0 == second.returncode, second.stderr
    assert first.stdout == second.stdout


def test_demo_points_at_the_documentation_url_not_at_files_outside_the_wheel(cli: Cli) -> None:
    """Every page the demo names is a URL under pyproject's Documentation URL that exists.

    The wheel ships no docs/ (issue 12): a bare ``docs/quickstart.md`` means nothing to someone
    who ran ``pip install kanidm-sync``.
    """
    result = cli("demo", timeout=120)
    assert 0 == result.code, result.stderr
    with (ROOT / "pyproject.toml").open("rb") as f:
        documentation = tomllib.load(f)["project"]["urls"]["Documentation"]
    urls = URL.findall(result.stdout)
    assert urls, "the demo should say where to read on"
    for url in urls:
        assert url.startswith(documentation + "/"), url
        page = url.removeprefix(documentation + "/")
        assert (ROOT / "docs" / page).is_file(), url
    rest = URL.sub("", result.stdout)
    assert [] == re.findall(r"[\w./-]+\.(?:md|ipynb)\b", rest)
