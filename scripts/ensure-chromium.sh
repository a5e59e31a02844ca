#!/usr/bin/env bash
# Installs Debian's chromium (and its chromedriver) when missing: the incident pages'
# tests drive this system browser through playwright's client (never a browser download).
exec "$(dirname "$0")/ensure-deb.sh" chromium chromium chromium-driver
