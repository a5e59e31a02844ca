#!/usr/bin/env bash
# The main job on the embedded default: install, then replay the bundled attack scenario
# (with the demo cluster's allowlist of known-good actors) and print the confirmed chains:
# JSON lines on stdout, a summary on stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-venv.sh >&2
exec .venv/bin/detector replay --allowlist examples/attack-scenario/allowlist.yaml \
  examples/attack-scenario/*.jsonl "$@"
