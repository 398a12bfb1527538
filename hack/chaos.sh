#!/usr/bin/env bash
# hack/chaos.sh: fault injection against any running Constellation cluster that ctl can reach
# (docs/chaos.md). Each round injects one fault, then measures the seconds until the cluster is
# whole again: every node Ready and every Service with all its replicas ready (ctl get -o json).
# It ends with a summary table and exits 1 when a round did not recover within --timeout.
#
#   hack/chaos.sh [--rounds N] [--timeout SECONDS] [--faults LIST] [--seed N]
#                 [--server URL] [--token T | --token-file F] [--ctl PATH]
#                 [--docker-host NODE=URL]...
#                 [--agent-stop-cmd TPL --agent-start-cmd TPL] [--agent-down SECONDS]
#                 [--docker-restart-cmd TPL]
#                 [--allow-cut --cut-cmd TPL --heal-cmd TPL] [--cut-for SECONDS]
#
# Faults (--faults, comma-separated, default kill-replica):
#   kill-replica    docker kill of a random replica container the cluster reports, on its node's
#                   engine (--docker-host NODE=URL; else DOCKER_HOST or the local socket, which
#                   fits a single-machine cluster). The container must carry the labels
#                   constellation.service and constellation.node of a Service and a node of this
#                   cluster, or it is left alone.
#   stop-agent      runs --agent-stop-cmd, waits --agent-down seconds, runs --agent-start-cmd.
#   restart-docker  runs --docker-restart-cmd (only when given).
#   cut-node        runs --cut-cmd, waits --cut-for seconds, runs --heal-cmd (only with --allow-cut).
# Templates: {node} is the node's name, {addr} its advertise address, {api} its API address.
# Example: --agent-stop-cmd 'ssh {node} sudo systemctl stop constellation-agent'.
#
# shellcheck disable=SC2317 # the fault_* functions are called by name (fault_${fault//-/_})
set -euo pipefail

rounds=3
timeout=120
faults=kill-replica
seed=""
ctl=${CTL:-}
server=${CONSTELLATION_SERVER:-}
token=""
token_file=""
declare -A docker_hosts=()
agent_stop=""
agent_start=""
agent_down=5
docker_restart=""
allow_cut=0
cut_cmd=""
heal_cmd=""
cut_for=10
detect=15 # seconds to wait for the cluster to notice a fault before measuring recovery anyway

usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "chaos: $*" >&2; exit 2; }
note() { echo "chaos: $*" >&2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    --faults) faults=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --ctl) ctl=$2; shift 2 ;;
    --server) server=$2; shift 2 ;;
    --token) token=$2; shift 2 ;;
    --token-file) token_file=$2; shift 2 ;;
    --docker-host)
      [[ $2 == *=* ]] || die "--docker-host $2: want NODE=URL"
      docker_hosts[${2%%=*}]=${2#*=}; shift 2 ;;
    --agent-stop-cmd) agent_stop=$2; shift 2 ;;
    --agent-start-cmd) agent_start=$2; shift 2 ;;
    --agent-down) agent_down=$2; shift 2 ;;
    --docker-restart-cmd) docker_restart=$2; shift 2 ;;
    --allow-cut) allow_cut=1; shift ;;
    --cut-cmd) cut_cmd=$2; shift 2 ;;
    --heal-cmd) heal_cmd=$2; shift 2 ;;
    --cut-for) cut_for=$2; shift 2 ;;
    --detect) detect=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument $1 (--help)" ;;
  esac
done

for n in rounds timeout agent_down cut_for detect; do
  [[ ${!n} =~ ^[0-9]+$ ]] || die "--${n//_/-} ${!n}: want a whole number"
done
if [ "$rounds" -lt 1 ] || [ "$rounds" -gt 1000 ]; then die "--rounds $rounds: want 1-1000"; fi
command -v jq >/dev/null || die "jq is needed to read ctl's JSON (apt-get install jq)"
if [ -z "$ctl" ]; then
  ctl=$(command -v ctl || true)
  [ -n "$ctl" ] || ctl="$(cd "$(dirname "$0")/.." && pwd)/bin/ctl"
fi
[ -x "$ctl" ] || die "ctl not found at $ctl (--ctl PATH, or make build)"
[ -n "$seed" ] && RANDOM=$seed

IFS=, read -r -a fault_list <<<"$faults"
for f in "${fault_list[@]}"; do
  case "$f" in
    kill-replica) ;;
    stop-agent) if [ -z "$agent_stop" ] || [ -z "$agent_start" ]; then die "fault stop-agent needs --agent-stop-cmd and --agent-start-cmd"; fi ;;
    restart-docker) [ -n "$docker_restart" ] || die "fault restart-docker needs --docker-restart-cmd" ;;
    cut-node) if [ "$allow_cut" != 1 ] || [ -z "$cut_cmd" ] || [ -z "$heal_cmd" ]; then die "fault cut-node needs --allow-cut, --cut-cmd and --heal-cmd"; fi ;;
    *) die "--faults: unknown fault $f (kill-replica, stop-agent, restart-docker, cut-node)" ;;
  esac
done

ctl_args=()
[ -n "$server" ] && ctl_args+=(--server "$server")
[ -n "$token" ] && ctl_args+=(--token "$token")
[ -n "$token_file" ] && ctl_args+=(--token-file "$token_file")
# call_timeout bounds each ctl call (a node the fault froze would hold it for the client's
# whole timeout); `timeout` is coreutils'.
call_timeout=30
c() { timeout "$call_timeout" "$ctl" "${ctl_args[@]}" "$@"; }

# docker_for NODE: docker CLI arguments reaching NODE's engine.
docker_for() {
  local h=${docker_hosts[$1]:-}
  if [ -n "$h" ]; then echo "--host=$h"; fi
}

# whole: 0 when every node is Ready and every Service has all replicas ready; prints why not.
whole() {
  local svcs nodes
  svcs=$(c get services -o json 2>&1) || { echo "ctl get services: ${svcs//$'\n'/ }"; return 1; }
  nodes=$(c get nodes -o json 2>&1) || { echo "ctl get nodes: ${nodes//$'\n'/ }"; return 1; }
  local bad
  bad=$(jq -r '.items[] | select((.status.conditions // []) | map(select(.type == "Ready" and .status == "True")) | length == 0) | "node " + .metadata.name + " not Ready"' <<<"$nodes")
  bad+=$(jq -r '.items[] | select(.spec.replicas != null and (.status.readyReplicas // 0) < .spec.replicas) | "service " + .metadata.name + " " + ((.status.readyReplicas // 0) | tostring) + "/" + (.spec.replicas | tostring) + " ready"' <<<"$svcs")
  if [ -n "$bad" ]; then echo "${bad//$'\n'/; }"; return 1; fi
}

node_field() { # node_field NODE JQPATH
  { c get nodes -o json 2>/dev/null || echo '{"items":[]}'; } | jq -r --arg n "$1" ".items[] | select(.metadata.name == \$n) | $2 // \"\""
}

expand() { # expand TEMPLATE NODE
  local t=$1 n=$2 addr api
  addr=$(node_field "$n" .status.addresses.advertise)
  api=$(node_field "$n" .status.addresses.api)
  t=${t//\{node\}/$n}; t=${t//\{addr\}/$addr}; t=${t//\{api\}/$api}
  echo "$t"
}

pick() { # pick WORDS...: one at random
  local a=("$@")
  echo "${a[RANDOM % ${#a[@]}]}"
}

# Fault injectors: each prints its target and returns 1 when there was nothing to do.
target="" killed_id="" killed_node="" killed_svc="" killed_idx="" cut_heal=""
fault_kill_replica() {
  local svcs cands cand node cid svc idx labels
  svcs=$(c get services -o json)
  nodes=$(c get nodes -o json | jq -r '.items[].metadata.name')
  mapfile -t cands < <(jq -r '.items[] | .metadata.name as $s | (.status.replicaStatuses // [])[] | select(.state == "running" and .containerID != null and .containerID != "") | [$s, (.index | tostring), .node, .containerID] | join(" ")' <<<"$svcs")
  [ ${#cands[@]} -gt 0 ] || { target="(no running replica)"; return 1; }
  cand=$(pick "${cands[@]}")
  read -r svc idx node cid <<<"$cand"
  grep -qxF "$node" <<<"$nodes" || { target="$svc-$idx on unknown node $node"; return 1; }
  # Only a container carrying this cluster's labels for that Service and node is touched.
  # shellcheck disable=SC2046
  labels=$(docker $(docker_for "$node") inspect --format '{{index .Config.Labels "constellation.service"}} {{index .Config.Labels "constellation.node"}} {{index .Config.Labels "constellation.replica"}}' "$cid" 2>/dev/null) ||
    { target="$svc-$idx: container ${cid:0:12} not found on $node's engine (--docker-host $node=URL?)"; return 1; }
  [ "$labels" = "$svc $node $idx" ] || { target="$svc-$idx: container ${cid:0:12} labels '$labels' are not this cluster's"; return 1; }
  # shellcheck disable=SC2046
  docker $(docker_for "$node") kill "$cid" >/dev/null
  target="$svc-$idx@$node (${cid:0:12})"
  killed_id=$cid killed_node=$node killed_svc=$svc killed_idx=$idx
}

random_node() {
  local ns
  mapfile -t ns < <(c get nodes -o json | jq -r '.items[].metadata.name')
  [ ${#ns[@]} -gt 0 ] || die "the cluster lists no node"
  pick "${ns[@]}"
}

# hold SECONDS: the fault lasts that long; meanwhile the cluster is watched, so a fault noticed
# only while it lasts (an agent stopped, a node cut off) counts as seen.
hold() {
  local until=$(($(ms) + $1 * 1000))
  while (($(ms) < until)); do
    if [ "$seen" = 0 ] && ! call_timeout=3 whole >/dev/null; then seen=1; fi
    sleep 0.5
  done
}

fault_stop_agent() {
  local n stop start; n=$(random_node); target=$n
  # Both expanded while the API still answers: the node may be the one ctl talks to.
  stop=$(expand "$agent_stop" "$n")
  start=$(expand "$agent_start" "$n")
  bash -c "$stop"
  hold "$agent_down"
  bash -c "$start"
}

fault_restart_docker() {
  local n; n=$(random_node); target=$n
  bash -c "$(expand "$docker_restart" "$n")"
}

fault_cut_node() {
  local n; n=$(random_node); target=$n
  cut_heal=$(expand "$heal_cmd" "$n")
  # The heal runs even when the script is interrupted while the node is cut off.
  trap 'bash -c "$cut_heal" || true' EXIT
  bash -c "$(expand "$cut_cmd" "$n")"
  hold "$cut_for"
  bash -c "$cut_heal"
  trap - EXIT
}

# replaced: for a killed replica, a running container of the same replica on its node.
replaced() {
  [ -z "$killed_id" ] && return 0
  local ids id
  # shellcheck disable=SC2046
  ids=$(docker $(docker_for "$killed_node") ps -q --no-trunc --filter "label=constellation.service=$killed_svc" --filter "label=constellation.replica=$killed_idx" --filter "label=constellation.node=$killed_node")
  for id in $ids; do
    # shellcheck disable=SC2046
    [ "$(docker $(docker_for "$killed_node") inspect --format '{{.State.Running}}' "$id" 2>/dev/null)" = true ] && return 0
  done
  return 1
}

ms() { echo $(($(date +%s%N) / 1000000)); }

why=$(whole) || die "the cluster is not whole before the first round: $why"
note "cluster is whole; $rounds round(s) of: ${fault_list[*]}"

declare -a rows=()
failed=0
for ((r = 1; r <= rounds; r++)); do
  fault=$(pick "${fault_list[@]}")
  target="" killed_id="" seen=0
  start=$(ms)
  if ! "fault_${fault//-/_}"; then
    rows+=("$r|$fault|$target|-|skipped")
    note "round $r: $fault skipped: $target"
    continue
  fi
  note "round $r: $fault $target"
  # Wait until the cluster notices (or --detect passes), then until it is whole again.
  while [ "$seen" = 0 ] && (($(ms) - start < detect * 1000)); do
    if ! whole >/dev/null || ! replaced; then seen=1; break; fi
    sleep 0.2
  done
  result=timeout
  last=""
  while (($(ms) - start < timeout * 1000)); do
    if last=$(whole) && replaced; then result=ok; break; fi
    sleep 0.5
  done
  el=$(($(ms) - start))
  secs=$(printf '%d.%d' $((el / 1000)) $((el % 1000 / 100)))
  [ "$seen" = 1 ] || result="$result (fault unseen)"
  if [[ $result == timeout* ]]; then
    failed=1
    note "round $r: not whole after ${timeout}s: $last"
  fi
  rows+=("$r|$fault|$target|$secs|$result")
done

printf '%-6s %-15s %-40s %-10s %s\n' ROUND FAULT TARGET RECOVERY RESULT
for row in "${rows[@]}"; do
  IFS='|' read -r a b t s res <<<"$row"
  [ "$s" = - ] || s="${s}s"
  printf '%-6s %-15s %-40s %-10s %s\n' "$a" "$b" "$t" "$s" "$res"
done
exit "$failed"
