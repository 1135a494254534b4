"""``python -m kanidm_sync``: the same command as the ``kanidm-sync`` console script."""

from __future__ import annotations

from ._cli import main

if __name__ == "__main__":
    raise SystemExit(main())
