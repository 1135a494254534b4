"""The ``kanidm-sync`` command line (docs/cli.md). Private: the command is the interface.

Owns nothing itself: :func:`main` lives in ``_main.py``; each command group has a module
(``_account.py``, ``_run.py``, ``_demo.py``) and ``_output.py`` decides what goes to stdout
and stderr.
"""

from __future__ import annotations

from ._main import main

__all__ = ["main"]
