#!/usr/bin/env bash
# Everything the e2e tier needs from outside the repository: Debian's etcd and a
# kube-apiserver built from the Go module proxy (cached by version under ~/.cache).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
"$here/ensure-etcd.sh"
"$here/build-apiserver.sh" >/dev/null
