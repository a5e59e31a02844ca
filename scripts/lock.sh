#!/usr/bin/env bash
# Refreshes the dependency locks from pyproject.toml (the ranges live there, the pins here):
#   requirements/runtime.lock  what `pip install .` needs (the demo, the container image)
#   requirements/dev.lock      runtime + the dev and bench extras + the build backend (make test)
# Every pin carries its hashes; set-up installs with --require-hashes. The resolver is uv's
# `pip compile`, run from a tool venv of its own at a pinned version (see the README).
# Pass `--upgrade` to move every pin to the newest version the ranges allow.
set -euo pipefail
cd "$(dirname "$0")/.."
uv_version="0.13.9"
tools=".cache/lock-tools"
if [ ! -x "$tools/bin/uv" ] || [ "$("$tools/bin/uv" --version | cut -d' ' -f2)" != "$uv_version" ]; then
  python3 -m venv "$tools"
  "$tools/bin/python" -m pip install --quiet "uv==$uv_version"
fi
compile=("$tools/bin/uv" pip compile --quiet --universal --python-version 3.11 --generate-hashes
  --no-header --annotation-style line "$@")
"${compile[@]}" pyproject.toml --extra dev --extra bench requirements/build.in -o requirements/dev.lock
# The runtime lock is the dev lock's subset: same versions, so the demo runs what CI tested.
"${compile[@]}" pyproject.toml requirements/build.in --constraint requirements/dev.lock \
  -o requirements/runtime.lock
echo "lock.sh: $(grep -c '==' requirements/dev.lock) pins in dev.lock, $(grep -c '==' requirements/runtime.lock) in runtime.lock" >&2
