#!/usr/bin/env bash
# Installs Debian's etcd-server (3.4.x, accepted by kube-apiserver 1.35) when it is missing.
# Waits for a dpkg lock held by another install (the machine is shared) instead of failing.
set -euo pipefail
if command -v etcd >/dev/null 2>&1; then exit 0; fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
$sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends etcd-server >/dev/null
command -v etcd >/dev/null
