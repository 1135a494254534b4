"""The distribution: wheel and sdist build offline, carry what they must, and install cleanly.

The build runs without isolation (hatchling comes from the dev dependency group), so it
needs no network. The fresh venv gets the wheel only; its dependencies are borrowed from
the test environment's site-packages through a ``.pth`` line, so no index is needed either.
That venv never sees the source tree: every command runs from a temporary directory.
"""

from __future__ import annotations

import email.parser
import importlib.metadata
import pathlib
import re
import subprocess
import sys
import sysconfig
import tarfile
import tomllib
import zipfile

import pytest

import kanidm_sync

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """Build the wheel and the sdist once for this module."""
    pytest.importorskip("build")
    pytest.importorskip("hatchling")
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert 0 == proc.returncode, proc.stdout + proc.stderr
    return out


def _one(directory: pathlib.Path, pattern: str) -> pathlib.Path:
    found = sorted(directory.glob(pattern))
    assert 1 == len(found), found
    return found[0]


def test_wheel_contents_and_metadata(dist: pathlib.Path) -> None:
    """The wheel ships py.typed, the demo data, the console script and complete metadata."""
    wheel = _one(dist, "*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = email.parser.Parser().parsestr(zf.read(meta_name).decode())
        entry_points = zf.read(meta_name.replace("METADATA", "entry_points.txt")).decode()
    assert {"kanidm_sync/py.typed", "kanidm_sync/_cli/demo_data/directory.ldif"} <= names
    assert not any("tests/" in n or "__pycache__" in n for n in names)
    assert "kanidm-sync = kanidm_sync._cli:main" in entry_points
    assert kanidm_sync.__version__ == meta["Version"]
    # PEP 639: an SPDX expression plus the license text; pip >= 25.1 shows it in `pip show`.
    assert "MPL-2.0" == meta["License-Expression"]
    assert ["LICENSE"] == meta.get_all("License-File")
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "Mozilla Public License Version 2.0" in (ROOT / "LICENSE").read_text().splitlines()[0]
    classifiers = meta.get_all("Classifier") or []
    assert "Typing :: Typed" in classifiers
    assert "Programming Language :: Python :: 3.13" in classifiers
    urls = {u.split(",")[0] for u in meta.get_all("Project-URL") or []}
    assert {"Homepage", "Documentation", "Changelog", "Issues"} <= urls
    assert ">=3.11" == meta["Requires-Python"]
    # kanidm_sync.testing.strategies needs Hypothesis: `pip install kanidm-sync[testing]`.
    assert {"ldap", "testing"} <= set(meta.get_all("Provides-Extra") or [])
    with (ROOT / "pyproject.toml").open("rb") as f:
        test_group = tomllib.load(f)["dependency-groups"]["test"]
    hypothesis = next(r for r in test_group if isinstance(r, str) and r.startswith("hypothesis"))
    assert f"{hypothesis}; extra == 'testing'" in (meta.get_all("Requires-Dist") or [])


def test_sdist_carries_tests_docs_and_scripts(dist: pathlib.Path) -> None:
    """The sdist holds what a distribution needs to run the suite: tests, docs, scripts."""
    sdist = _one(dist, "*.tar.gz")
    with tarfile.open(sdist) as tf:
        names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
    for required in (
        "pyproject.toml",
        "LICENSE",
        "CHANGELOG.md",
        "README.md",
        "scripts/test",
        "scripts/demo",
        "tests/conftest.py",
        "tests/cli/test_demo.py",
        "docs/cli.md",
        "kanidm_sync/_cli/demo_data/directory.ldif",
        "kanidm_sync/py.typed",
    ):
        assert required in names, required
    assert not any("__pycache__" in n or n.startswith(".venv") for n in names)


def test_wheel_installs_into_a_fresh_venv(dist: pathlib.Path, tmp_path: pathlib.Path) -> None:
    """The wheel installs into a new venv, whose console script runs the demo from anywhere."""
    wheel = _one(dist, "*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # Dependencies (attrs, httpx, ...) without an index: the test environment's packages.
    # Only plain paths: the editable install of the source tree is a .pth the new venv
    # does not process.
    deps = sysconfig.get_paths()["purelib"]
    pathlib.Path(purelib, "zz_test_deps.pth").write_text(deps + "\n")
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-index", "--disable-pip-version-check", "--quiet", str(wheel)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert 0 == install.returncode, install.stdout + install.stderr
    where = subprocess.run(
        [str(python), "-c", "import kanidm_sync; print(kanidm_sync.__file__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    ).stdout.strip()
    assert pathlib.Path(where).is_relative_to(venv)
    version = subprocess.run(
        [str(venv / "bin" / "kanidm-sync"), "--version"],
        capture_output=True, text=True, cwd=tmp_path, check=True,
    )  # fmt: skip
    assert f"kanidm-sync {kanidm_sync.__version__}" == version.stdout.strip()
    show = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "show", "kanidm-sync"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120, check=True,
    )  # fmt: skip
    major, minor = re.findall(r"\d+", importlib.metadata.version("pip"))[:2]
    # Older pips know only the License field, which PEP 639 replaced: they print it empty.
    if (int(major), int(minor)) >= (25, 1):
        assert "License-Expression: MPL-2.0" in show.stdout.splitlines()
    demo = subprocess.run(
        [str(venv / "bin" / "kanidm-sync"), "demo"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120, check=False,
    )  # fmt: skip
    assert 0 == demo.returncode, demo.stderr
    assert "sync accounts left: 0" in demo.stdout
