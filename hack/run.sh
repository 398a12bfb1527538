#!/usr/bin/env bash
# `make run`: a one-node Constellation cluster on loopback with the local Docker and a real
# Traefik, the example stack applied, its status shown. `hack/run.sh stop` undoes it.
#
#   agent API   http://127.0.0.1:7480   (ctl's default --server; loopback, so plain HTTP)
#   tokens      _data/run/tokens        (the agent's: "ops" admin, "traefik" provider-only)
#               _data/run/admin.token   (ctl's: export CONSTELLATION_TOKEN_FILE=_data/run/admin.token)
#   Traefik     http://127.0.0.1:8000   (entry point "web"), dashboard API on 127.0.0.1:8001
#   data        _data/run/ (store, logs, Traefik's static config)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
run="$top/_data/run"
ctl="$top/bin/ctl"
export CONSTELLATION_SERVER=http://127.0.0.1:7480
export CONSTELLATION_TOKEN_FILE="$run/admin.token"

# stop sends SIGTERM to what `make run` started and waits (up to 30 s each) until it has exited,
# so that a following `make run` finds the ports free.
stop() {
  for p in agent traefik; do
    if [ -f "$run/$p.pid" ] && pid=$(cat "$run/$p.pid") && kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      if kill -0 "$pid" 2>/dev/null; then echo "$p (pid $pid) still running after 30s" >&2; else echo "stopped $p"; fi
    fi
    rm -f "$run/$p.pid"
  done
}

if [ "${1:-}" = stop ]; then
  if [ -x "$ctl" ] && [ -f "$CONSTELLATION_TOKEN_FILE" ] && curl -fsS "$CONSTELLATION_SERVER/healthz" >/dev/null 2>&1; then
    # ctl delete waits until the objects are gone and no node reports a container of them
    # (the agent drains a replica for 5 s, then removes it): only then may the agent stop.
    "$ctl" delete -f "$top/specs/hello" --ignore-not-found --timeout 1m ||
      echo "ctl delete did not finish; containers may be left (docker ps -a --filter label=constellation.service)" >&2
  fi
  stop
  left=$(docker ps -aq --filter label=constellation.node=local 2>/dev/null || true)
  if [ -n "$left" ]; then
    echo "containers of node local are left (Services applied besides specs/hello?):" >&2
    docker ps -a --filter label=constellation.node=local --format '  {{.Names}} ({{.Status}})' >&2
  fi
  exit 0
fi

mkdir -p "$run"
stop

# API tokens, made once: ctl gets the admin token, Traefik a provider token that can read the
# provider path and nothing else (docs/security.md).
if [ ! -f "$run/tokens" ]; then
  umask 077
  admin=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
  provider=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
  printf '# NAME SCOPE TOKEN (docs/security.md)\nops admin %s\ntraefik provider %s\n' "$admin" "$provider" >"$run/tokens"
  printf '%s\n' "$admin" >"$run/admin.token"
  umask 022
fi
provider_token=$(awk '$2 == "provider" {print $3; exit}' "$run/tokens")

echo "== preparing: Docker engine, example image, Traefik"
"$top/hack/ensure-docker.sh"
"$top/hack/build-test-images.sh" >/dev/null
traefik=$("$top/hack/traefik.sh")

echo "== starting constellation-agent (node "local", data in _data/run)"
"$top/bin/constellation-agent" \
  --node.name=local --dataDir="$run/data" \
  --api.address=127.0.0.1:7480 --raft.address=127.0.0.1:7481 --gossip.address=127.0.0.1:7482 \
  --node.advertiseAddress=127.0.0.1 --node.labels.role=lb --api.tokenFile="$run/tokens" \
  ${CONSTELLATION_RUN_FLAGS:-} >"$run/agent.log" 2>&1 &
echo $! >"$run/agent.pid"
for i in $(seq 1 60); do
  curl -fsS "$CONSTELLATION_SERVER/readyz" >/dev/null 2>&1 && break
  if ! kill -0 "$(cat "$run/agent.pid")" 2>/dev/null; then
    echo "constellation-agent exited; its log:" >&2; tail -20 "$run/agent.log" >&2; exit 1
  fi
  sleep 0.5
done
grep -m1 "NOTHING IS PERSISTED" "$run/agent.log" >/dev/null && echo "   (in-memory store: nothing is persisted)"

echo "== starting Traefik on 127.0.0.1:8000 (HTTP provider: the agent)"
cat >"$run/traefik.toml" <<TOML
[entryPoints.web]
  address = "127.0.0.1:8000"
[entryPoints.traefik]
  address = "127.0.0.1:8001"
[api]
  insecure = true
[providers]
  providersThrottleDuration = "200ms"
[providers.http]
  endpoint = "$CONSTELLATION_SERVER/api/providers/traefik"
  pollInterval = "2s"
  # A provider-scoped token: it reads this path and nothing else of the API.
  [providers.http.headers]
    Authorization = "Bearer $provider_token"
[log]
  level = "WARN"
TOML
"$traefik" --configFile="$run/traefik.toml" >"$run/traefik.log" 2>&1 &
echo $! >"$run/traefik.pid"

echo "== ctl apply -f specs/hello --wait"
"$ctl" apply -f "$top/specs/hello" --wait --timeout 2m

echo "== ctl get services -o wide"
"$ctl" get services -o wide
echo
echo "== ctl get nodes"
"$ctl" get nodes

echo
echo "== the example through Traefik"
for i in $(seq 1 20); do
  if out=$(curl -fsS -H 'Host: hello.localhost' http://127.0.0.1:8000/ 2>/dev/null); then
    echo "   $out"
    break
  fi
  sleep 1
done
cat <<MSG

hello answers at   http://hello.localhost:8000/   (or: curl -H 'Host: hello.localhost' http://127.0.0.1:8000/)
ctl's token       export CONSTELLATION_TOKEN_FILE=$run/admin.token
try                bin/ctl get svc -w     bin/ctl describe svc hello     bin/ctl routes
logs               _data/run/agent.log    _data/run/traefik.log
stop it all        make stop
MSG
