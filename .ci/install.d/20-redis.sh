#!/usr/bin/env bash
# redis-server for tests/fleet.rs (shared cooldowns). The tests start their own server on a free
# loopback port; no system service is started here.
set -euo pipefail
if command -v redis-server >/dev/null; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
# Keep the package's init script from starting a system-wide Redis (policy-rc.d exit 101 =
# "action forbidden"); only when no policy is in place already.
added_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  added_policy=1
fi
trap '[ "$added_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends redis-server >/dev/null
command -v redis-server >/dev/null
redis-server --version
