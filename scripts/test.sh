#!/usr/bin/env bash
# The whole test suite from a fresh machine: venv and packages, Debian's sysdig (the Falco
# filter compiler the rule checks use), the Kafka jars from Maven Central (the broker itself
# is started and stopped by the test fixtures), Debian's etcd and a kube-apiserver built
# from the Go module proxy (cached by version under ~/.cache; ~11 min cold, instant after)
# for the e2e tier, then lint, types and pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-venv.sh dev,bench   # bench: eql (AGPL) for the benchmark tests only, never at runtime
scripts/ensure-sysdig.sh
scripts/ensure-chromium.sh        # Debian's chromium: the incident pages' browser tests
scripts/kafka/fetch.sh
scripts/kube/ensure.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
exec .venv/bin/pytest "$@"
