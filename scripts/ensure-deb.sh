#!/usr/bin/env bash
# ensure-deb.sh COMMAND PACKAGE... : installs the Debian PACKAGEs when COMMAND is missing,
# then fails unless COMMAND is there. Waits for a dpkg lock held by another install (the
# machine is shared) instead of failing. The ensure-*.sh scripts are its callers.
set -euo pipefail
command="$1"
shift
if command -v "$command" >/dev/null 2>&1; then exit 0; fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
apt=($sudo apt-get -o DPkg::Lock::Timeout=600)
"${apt[@]}" update -qq >/dev/null
"${apt[@]}" install -y -qq --no-install-recommends "$@" >/dev/null
command -v "$command" >/dev/null
