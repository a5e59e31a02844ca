#!/usr/bin/env bash
# Installs Debian's sysdig (libsinsp: a real Falco filter compiler) when it is missing.
set -euo pipefail
if command -v sysdig >/dev/null 2>&1; then exit 0; fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq --no-install-recommends sysdig >/dev/null
command -v sysdig >/dev/null
