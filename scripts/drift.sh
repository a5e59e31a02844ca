#!/usr/bin/env bash
# Drift on purpose: a throw-away venv with the NEWEST versions pyproject.toml's ranges allow
# (not the lock), then the unit tier. A failure here says which release would break us the
# day the lock is refreshed; it never touches .venv or the lock. Not part of `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=".cache/drift-venv"
rm -rf "$venv"
"${PYTHON:-python3}" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade -e ".[dev,bench]"
norm() { tr 'A-Z_' 'a-z-'; }
echo "drift.sh: versions that differ from requirements/dev.lock:" >&2
"$venv/bin/python" -m pip freeze --exclude-editable | norm |
  grep -Fxv -f <(grep -oE '^[A-Za-z0-9_.-]+==[^ ]+' requirements/dev.lock | norm) >&2 || echo "  none" >&2
# The editable install points at this checkout, so the tests import the same code.
exec "$venv/bin/python" -m pytest -q tests/unit "$@"
