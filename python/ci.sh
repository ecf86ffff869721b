#!/usr/bin/env bash
# Creates a virtual environment, installs moat_mark (editable) with numpy and pytest from PyPI,
# and runs the test suite. Exits non-zero if any step or any test fails.
#
#   python/ci.sh [VENV_DIR]        # default: python/.venv
#   PYTHON=python3.9 python/ci.sh  # choose the interpreter (default: python3)
#
# Extra arguments after VENV_DIR are passed to pytest.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${1:-$here/.venv}"
shift || true
python="${PYTHON:-python3}"
# Absolute, since the tests run from python/.
mkdir -p "$(dirname "$venv")"
venv="$(cd "$(dirname "$venv")" && pwd)/$(basename "$venv")"

"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check numpy pytest
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$here"

cd "$here"
"$venv/bin/python" -m pytest "$@"
