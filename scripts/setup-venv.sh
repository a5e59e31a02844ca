#!/usr/bin/env bash
# Creates .venv from the dependency lock and installs the project into it (editable).
#   scripts/setup-venv.sh             runtime only: requirements/runtime.lock (make demo)
#   scripts/setup-venv.sh dev[,bench] everything the suite needs: requirements/dev.lock
# Every package comes from the lock, hash-checked (--require-hashes), the build backend
# included (--no-build-isolation), so nothing unpinned is fetched. A stamp records which
# lock the venv was built from: the same lock is a no-op, a changed lock rebuilds the venv
# from scratch (no package left over from an older lock). pip's output goes to
# .venv/install.log and is shown only when the install fails.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
py="${PYTHON:-python3}"
lock="requirements/runtime.lock"
[ -n "$extras" ] && lock="requirements/dev.lock"
digest() { sha256sum "$1" pyproject.toml | sha256sum | cut -d' ' -f1; }
stamp=".venv/.installed-from"
have="$(cat "$stamp" 2>/dev/null || true)"
want="$lock $(digest "$lock")"
[ "$have" = "$want" ] && exit 0
# A current dev venv serves the runtime too: it holds every runtime pin at the same version.
[ -z "$extras" ] && [ "$have" = "requirements/dev.lock $(digest requirements/dev.lock)" ] && exit 0
echo "installing $lock into a new .venv ..." >&2
rm -rf .venv
"$py" -m venv .venv
pip=(.venv/bin/python -m pip --disable-pip-version-check)
if ! { "${pip[@]}" install --require-hashes --no-deps -r "$lock" &&
       "${pip[@]}" install --no-deps --no-build-isolation -e .; } >.venv/install.log 2>&1; then
  cat .venv/install.log >&2
  echo "setup-venv.sh: installing $lock failed (log above)" >&2
  exit 1
fi
echo "$want" >"$stamp"
