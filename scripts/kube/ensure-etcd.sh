#!/usr/bin/env bash
# Installs Debian's etcd-server (3.4.x, accepted by kube-apiserver 1.35) when it is missing.
exec "$(dirname "$0")/../ensure-deb.sh" etcd etcd-server
