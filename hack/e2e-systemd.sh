#!/usr/bin/env bash
# hack/e2e-systemd.sh (make e2e-systemd): hack/install.sh under a real systemd (docs/install.md).
#
# Boots Debian's systemd as PID 1 in a node container (the e2e harness's node root: an imported
# empty root with the host's /usr bind-mounted read-only, the /etc/alternatives links, minimal
# passwd/group), runs install.sh there, and checks what the unit promises:
#   1. systemctl start → the agent READY (ActiveState=active, StatusText from the agent);
#   2. kill -9 of the agent → systemd restarts it (Restart=always), NRestarts goes up;
#   3. SIGSTOP of the agent (hung) → no WATCHDOG=1 → systemd kills and restarts it (WatchdogSec).
# It prints the timings and exits non-zero when a step fails. Needs: docker, the host's systemd
# (/usr/lib/systemd/systemd), bin/ from `make build`. KEEP=1 leaves the container for a look.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
name=cst-systemd-$$
keep=${KEEP:-0}
step_timeout=${STEP_TIMEOUT:-90}

die() { echo "e2e-systemd: FAIL: $*" >&2; exit 1; }
say() { echo "e2e-systemd: $*"; }

[ -x /usr/lib/systemd/systemd ] || die "no /usr/lib/systemd/systemd on this host (apt-get install systemd): the node runs the host's /usr"
if [ ! -x "$top/bin/constellation-agent" ] || [ ! -x "$top/bin/ctl" ]; then die "bin/constellation-agent and bin/ctl missing: run make build"; fi
docker info >/dev/null 2>&1 || die "docker does not answer (hack/ensure-docker.sh)"

# The node image: the harness's recipe (test/e2e/harness/build.go), plus what systemd wants of
# /etc (os-release, an empty machine-id it fills in).
image_of() {
  local h
  h=$({ echo systemd-node-v1; for l in /etc/alternatives/*; do [ -L "$l" ] && printf '%s %s\n' "$(basename "$l")" "$(readlink "$l")"; done; } | sha256sum | cut -c1-12)
  echo "constellation-e2e/systemd-node:$h"
}
image=$(image_of)
if ! docker image inspect "$image" >/dev/null 2>&1; then
  say "building $image"
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  mkdir -p "$root"/{etc/alternatives,etc/constellation,etc/systemd/system,var/lib/docker,var/lib/constellation,var/log,run,tmp,proc,sys,dev,root,usr,opt/constellation}
  ln -s usr/bin "$root/bin"; ln -s usr/sbin "$root/sbin"; ln -s usr/lib "$root/lib"; ln -s usr/lib64 "$root/lib64"; ln -s ../run "$root/var/run"
  for l in /etc/alternatives/*; do
    t=$(readlink "$l" || true)
    case "$t" in /usr/*) ln -s "$t" "$root/etc/alternatives/$(basename "$l")" ;; esac
  done
  [ -L "$root/etc/alternatives/awk" ] || die "the host has no /etc/alternatives/awk under /usr: install.sh needs awk"
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
  printf 'root:x:0:\ndocker:x:999:\nsystemd-journal:x:998:\n' >"$root/etc/group"
  printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
  : >"$root/etc/hosts"; : >"$root/etc/resolv.conf"; : >"$root/etc/machine-id"
  echo node >"$root/etc/hostname"
  ln -s ../usr/lib/os-release "$root/etc/os-release"
  tar -C "$root" -c . | docker import -c 'ENV container=docker' -c 'LABEL constellation.e2e.image=1' - "$image" >/dev/null
  rm -rf "$root"
  trap - EXIT
fi

cleanup() {
  if [ "$keep" = 1 ]; then say "kept container $name (docker rm -f $name)"; return; fi
  docker rm -f "$name" >/dev/null 2>&1 || true
}
trap cleanup EXIT

say "booting systemd in $name"
docker run -d --name "$name" --hostname node \
  --cgroupns=private --cap-add ALL --cap-drop SYS_RESOURCE \
  --security-opt seccomp=unconfined --security-opt apparmor=unconfined --security-opt systempaths=unconfined \
  --tmpfs /run --tmpfs /run/lock --tmpfs /tmp \
  -v /usr:/usr:ro -v "$top/bin:/opt/constellation/bin:ro" -v "$top/hack:/opt/constellation/hack:ro" \
  --stop-signal SIGRTMIN+3 \
  "$image" /usr/lib/systemd/systemd >/dev/null

x() { docker exec "$name" "$@"; }
ms() { echo $(($(date +%s%N) / 1000000)); }
secs() { local d=$(($(ms) - $1)); printf '%d.%d' $((d / 1000)) $((d % 1000 / 100)); }

# wait_for WHAT CMD...: polls CMD every 0.2 s until it succeeds or step_timeout passes.
wait_for() {
  local what=$1; shift
  local start; start=$(ms)
  until "$@" >/dev/null 2>&1; do
    if (($(ms) - start > step_timeout * 1000)); then
      x systemctl status constellation-agent --no-pager 2>&1 | tail -20 >&2 || true
      x journalctl -u constellation-agent --no-pager -n 30 2>&1 >&2 || true
      die "timed out after ${step_timeout}s waiting for $what"
    fi
    sleep 0.2
  done
}

boot=$(ms)
booted() { state=$(x systemctl is-system-running 2>/dev/null || true); [ "$state" = running ] || [ "$state" = degraded ]; }
wait_for "systemd to boot" booted
say "systemd $(x systemctl --version | head -1 | awk '{print $2}') is PID 1, booted in $(secs "$boot")s ($(x systemctl is-system-running || true))"

say "install.sh (prefix /opt/local: /usr is the host's, read-only)"
x /opt/constellation/hack/install.sh --from /opt/constellation/bin --prefix /opt/local \
  --node-name node --advertise 127.0.0.1 --api-address 127.0.0.1:7480 --no-start | sed 's/^/    /'
# Docker is not in this node: the agent runs without it (the unit only Wants docker.service).
x sh -c 'grep -q "^\[docker\]" /etc/constellation/agent.toml || printf "\n[docker]\n  disabled = true\n" >>/etc/constellation/agent.toml'
x systemctl daemon-reload

prop() { x systemctl show -p "$1" --value constellation-agent; }
ready() { [ "$(prop ActiveState)" = active ] && [ -n "$(prop StatusText)" ]; }

start=$(ms)
x systemctl start constellation-agent
wait_for "READY (ActiveState=active with a StatusText)" ready
t_ready=$(secs "$start")
say "1. READY after ${t_ready}s: ActiveState=$(prop ActiveState) StatusText=\"$(prop StatusText)\""

# restarted_after N: the unit is active again with NRestarts > N and a new main PID.
restarted() { [ "$(prop NRestarts)" -gt "$1" ] && [ "$(prop MainPID)" != "$2" ] && ready; }

pid=$(prop MainPID); n=$(prop NRestarts)
start=$(ms)
x kill -9 "$pid"
wait_for "a restart after kill -9" restarted "$n" "$pid"
t_kill=$(secs "$start")
say "2. kill -9 $pid → restarted as $(prop MainPID) in ${t_kill}s (NRestarts=$(prop NRestarts))"

pid=$(prop MainPID); n=$(prop NRestarts)
wd=$(prop WatchdogUSec)
start=$(ms)
x kill -STOP "$pid"
wait_for "the watchdog to restart a stopped agent" restarted "$n" "$pid"
t_wd=$(secs "$start")
journal=$(x journalctl -u constellation-agent --no-pager -o cat 2>/dev/null || true)
result="Failed with result 'watchdog'"
grep -qF "$result" <<<"$journal" || die "restarted, but the journal does not say the watchdog did it"
say "3. SIGSTOP $pid → $result, restarted as $(prop MainPID) in ${t_wd}s (WatchdogSec=$wd, NRestarts=$(prop NRestarts))"

printf '\n%-30s %s\n' STEP SECONDS
printf '%-30s %s\n' "start -> READY" "$t_ready" "kill -9 -> restarted" "$t_kill" "SIGSTOP -> watchdog restart" "$t_wd"
