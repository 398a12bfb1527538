#!/usr/bin/env bash
# Makes sure Debian's redis-server and redis-sentinel are installed (the ReplicaSet redis engine's
# integration tests and the e2e Redis image use them). Installs them with apt-get when missing and
# says clearly what is missing when it cannot. Debian's redis-sentinel service is stopped and
# disabled after install: tests start their own processes on loopback ports.
set -euo pipefail

missing=()
for b in redis-server redis-sentinel redis-cli; do
  command -v "$b" >/dev/null 2>&1 || missing+=("$b")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "hack/redis.sh: missing ${missing[*]}; install Debian's redis-server and redis-sentinel (apt-get install redis-server redis-sentinel tools as root)" >&2
  exit 1
fi
echo "hack/redis.sh: installing redis-server and redis-sentinel from Debian (missing: ${missing[*]})..." >&2
export DEBIAN_FRONTEND=noninteractive
# policy-rc.d 101: the packages' services are not started at install time (no systemd here anyway).
created_policy=
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && created_policy=1
fi
install() { apt-get install -y -q --no-install-recommends redis-server redis-sentinel redis-tools >/dev/null; }
install || { apt-get update -q >/dev/null && install; } || {
  [ -n "$created_policy" ] && rm -f /usr/sbin/policy-rc.d
  echo "hack/redis.sh: apt-get could not install redis-server redis-sentinel redis-tools" >&2
  exit 1
}
[ -n "$created_policy" ] && rm -f /usr/sbin/policy-rc.d
for b in redis-server redis-sentinel redis-cli; do
  command -v "$b" >/dev/null 2>&1 || { echo "hack/redis.sh: $b still missing after install" >&2; exit 1; }
done
redis-server --version >&2
