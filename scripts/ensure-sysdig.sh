#!/usr/bin/env bash
# Installs Debian's sysdig (libsinsp: a real Falco filter compiler) when it is missing.
exec "$(dirname "$0")/ensure-deb.sh" sysdig sysdig
