"""Without Hypothesis, the strategies module says which extra to install (issue 12)."""

from __future__ import annotations

import subprocess
import sys


def test_missing_hypothesis_names_the_testing_extra() -> None:
    code = (
        "import sys; sys.modules['hypothesis'] = None\n"
        "try:\n"
        "    import kanidm_sync.testing.strategies\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "pip install kanidm-sync[testing]" in result.stdout
