#!/usr/bin/env bash
# Makes sure a Docker engine answers: uses the running one, starts dockerd if it is installed but
# stopped, installs Debian's docker.io if it is missing. Says clearly what is missing when it can't.
set -euo pipefail

if docker info >/dev/null 2>&1; then
  exit 0
fi
if ! command -v dockerd >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "hack/ensure-docker.sh: installing docker.io from Debian..." >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io >/dev/null || {
      apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io >/dev/null; }
  else
    echo "hack/ensure-docker.sh: no Docker engine and no dockerd to start; install docker.io (apt-get install docker.io)" >&2
    exit 1
  fi
fi
echo "hack/ensure-docker.sh: starting dockerd (log: /tmp/constellation-dockerd.log)..." >&2
nohup dockerd >/tmp/constellation-dockerd.log 2>&1 &
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    exit 0
  fi
  sleep 1
done
echo "hack/ensure-docker.sh: dockerd did not answer within 60s; see /tmp/constellation-dockerd.log" >&2
exit 1
