# Sourced by scripts/test and scripts/demo: make .venv hold kanidm-sync and its tools.
# Works as root on a fresh machine (CI) and as a normal user with python3 >= 3.11.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.kanidm-sync-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=25.1"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[ldap]" --group dev \
        || .venv/bin/python -m pip install --quiet --disable-pip-version-check -e . --group dev
    touch "$stamp"
fi
