# Sourced by scripts/test and scripts/demo: make a virtualenv hold kanidm-sync and its tools.
# Works as root on a fresh machine (CI) and as a normal user with python3 >= 3.11.
#   PYTHON          the interpreter to build the venv with (default python3)
#   VENV            the venv folder (default .venv)
#   BOOTSTRAP_LDAP  1 (default) to also install the ldap extra (python-ldap) when missing
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
pip_install() {
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
}
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.kanidm-sync-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    pip_install --upgrade "pip>=25.1"
    pip_install -e . --group dev
    touch "$stamp"
fi
# python-ldap ships no wheels: it compiles against the libldap and libsasl2 headers, which
# scripts/install-system-deps installs as root. Try whenever it is missing, so that a venv made
# before the headers were there picks it up later.
if [ "${BOOTSTRAP_LDAP:-1}" = 1 ] && ! "$VENV/bin/python" -c "import ldap" 2>/dev/null; then
    if ! pip_install -e ".[ldap]" >"$VENV/ldap-extra.log" 2>&1; then
        echo "note: the ldap extra (python-ldap) did not build, so the LDAP and AD tests will" \
             "be skipped; install libldap2-dev and libsasl2-dev (see $VENV/ldap-extra.log)" >&2
    fi
fi
