#!/usr/bin/env bash
# The main job on the embedded default: install, then replay the bundled attack scenario
# and print the confirmed chains (JSON lines on stdout, a summary on stderr).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-venv.sh >&2
exec .venv/bin/detector replay examples/attack-scenario/*.jsonl "$@"
