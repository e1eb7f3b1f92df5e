#!/usr/bin/env bash
# The scale-out tests (test/integration/distributed*.test.ts) start their own redis-server; this
# installs Debian's when it is missing. Run as root or with sudo available.
set -euo pipefail
command -v redis-server >/dev/null && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends redis-server >/dev/null
# The package's own service is not needed: tests start a server on a free port in a temp folder.
if command -v systemctl >/dev/null && systemctl is-active --quiet redis-server 2>/dev/null; then $SUDO systemctl stop redis-server || true; fi
command -v redis-server >/dev/null
