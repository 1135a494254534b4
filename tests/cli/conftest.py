"""Fixtures for the command-line tests: the double over real HTTP, and the real console script.

Every test runs ``kanidm-sync`` as a subprocess (the console script installed next to the
interpreter, else ``python -m kanidm_sync``) against ``kanidm_sync.testing.serve`` on
loopback, with a private HOME so no real Kanidm configuration or token cache is read.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from kanidm_sync.testing import FakeKanidm, serve

from ._helpers import Cli, Server


@pytest.fixture
def home(tmp_path: pathlib.Path) -> pathlib.Path:
    """A private HOME directory for the command."""
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def server(tmp_path: pathlib.Path) -> Iterator[Server]:
    """The double on loopback HTTP, with an admin token in a file."""
    fake = FakeKanidm()
    token_file = tmp_path / "admin.token"
    token_file.write_text(fake.admin_token + "\n", encoding="utf-8")
    with serve(fake) as url:
        yield Server(fake=fake, url=url, admin_token_file=token_file)


@pytest.fixture
def cli(home: pathlib.Path) -> Cli:
    """Run the real console script with a private HOME."""
    return Cli(home)
