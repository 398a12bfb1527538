#!/usr/bin/env bash
# Installs constellation-agent and ctl as a systemd service (docs/install.md).
#
#   first node:   sudo hack/install.sh [--node-name N] [--advertise IP]
#   other nodes:  sudo hack/install.sh --join https://n1:7480 --token-file admin.token
#   remove:       sudo hack/install.sh --uninstall [--purge]   (--purge also deletes the data dir)
#
# DESTDIR (or --destdir) stages everything under another root and starts nothing, which is how
# it is tested; --prefix (default /usr/local) is where the binaries go.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
destdir=${DESTDIR:-}
prefix=/usr/local
confdir=/etc/constellation
datadir=/var/lib/constellation
unitdir=/etc/systemd/system
bindir_src="$top/bin"
node_name=""
advertise=""
api_address="0.0.0.0:7480"
join=""
token_file=""
labels=""
start=auto
mode=install
purge=0

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
  case $1 in
    --destdir) destdir=$2; shift ;;
    --prefix) prefix=$2; shift ;;
    --data-dir) datadir=$2; shift ;;
    --from) bindir_src=$2; shift ;;
    --node-name) node_name=$2; shift ;;
    --advertise) advertise=$2; shift ;;
    --api-address) api_address=$2; shift ;;
    --join) join=$2; shift ;;
    --token-file) token_file=$2; shift ;;
    --labels) labels=$2; shift ;;
    --no-start) start=no ;;
    --uninstall) mode=uninstall ;;
    --purge) purge=1 ;;
    -h|--help) usage ;;
    *) echo "install.sh: unknown option $1" >&2; usage 2 >&2 ;;
  esac
  shift
done
[ -n "$destdir" ] && [ "$start" = auto ] && start=no
if [ "$start" = auto ]; then
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then start=yes; else start=no; fi
fi
D() { printf '%s%s' "$destdir" "$1"; }
say() { echo "install.sh: $*"; }

if [ "$mode" = uninstall ]; then
  if [ "$start" = yes ]; then systemctl disable --now constellation-agent.service 2>/dev/null || true; fi
  rm -f "$(D "$unitdir")/constellation-agent.service" "$(D "$prefix")/bin/constellation-agent" "$(D "$prefix")/bin/ctl"
  [ "$start" = yes ] && systemctl daemon-reload
  if [ "$purge" = 1 ]; then
    rm -rf "$(D "$confdir")" "$(D "$datadir")"
    say "removed the agent, ctl, the unit, $confdir and $datadir"
  else
    say "removed the agent, ctl and the unit; kept $confdir and $datadir (--purge deletes them). Containers keep running."
  fi
  exit 0
fi

if [ -n "$join" ] && [ -z "$token_file" ]; then
  echo "install.sh: --join needs --token-file (a file holding an admin token of the cluster)" >&2; exit 2
fi
if [ -n "$token_file" ] && [ ! -s "$token_file" ]; then
  echo "install.sh: --token-file $token_file: missing or empty" >&2; exit 2
fi
for b in constellation-agent ctl; do
  if [ ! -x "$bindir_src/$b" ]; then
    echo "install.sh: $bindir_src/$b not built (run make build, or give --from DIR)" >&2; exit 2
  fi
done
[ -n "$node_name" ] || node_name=$(hostname | tr 'A-Z' 'a-z')
if [ -z "$advertise" ]; then
  advertise=$(ip -4 route get 1.1.1.1 2>/dev/null | awk '{for (i=1;i<NF;i++) if ($i=="src") {print $(i+1); exit}}' || true)
  [ -n "$advertise" ] || advertise=127.0.0.1
fi

umask 022
install -d -m 0755 "$(D "$prefix")/bin" "$(D "$unitdir")"
install -d -m 0700 "$(D "$confdir")" "$(D "$datadir")"
chmod 0700 "$(D "$datadir")"
install -m 0755 "$bindir_src/constellation-agent" "$(D "$prefix")/bin/constellation-agent"
install -m 0755 "$bindir_src/ctl" "$(D "$prefix")/bin/ctl"
sed -e "s|@BINDIR@|$prefix/bin|g" -e "s|@CONFDIR@|$confdir|g" -e "s|@DATADIR@|$datadir|g" \
  "$top/hack/systemd/constellation-agent.service" >"$(D "$unitdir")/constellation-agent.service"
chmod 0644 "$(D "$unitdir")/constellation-agent.service"

# API tokens: generated on the first node (an admin token for ctl and joiners, a provider
# token for Traefik); a joining node gets the admin token it was given. Kept when present.
tokens="$(D "$confdir")/tokens"
umask 077
if [ ! -s "$tokens" ]; then
  if [ -n "$token_file" ]; then
    cp "$token_file" "$tokens"
  else
    admin=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
    provider=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
    printf '# NAME SCOPE TOKEN (docs/security.md)\nadmin admin %s\ntraefik provider %s\n' "$admin" "$provider" >"$tokens"
  fi
  chmod 0600 "$tokens"
fi
admin_token="$(D "$confdir")/admin.token"
if [ ! -s "$admin_token" ]; then
  awk 'NF == 1 {print $1; exit} $2 == "admin" {print $3; exit}' "$tokens" >"$admin_token"
  chmod 0600 "$admin_token"
fi

conf="$(D "$confdir")/agent.toml"
if [ -f "$conf" ]; then
  say "kept the existing $confdir/agent.toml"
else
  {
    echo "# constellation-agent configuration (docs/install.md). CONSTELLATION_* variables and flags override it."
    echo "dataDir = \"$datadir\""
    [ -n "$join" ] && echo "join = [\"$join\"]"
    echo ""
    echo "[node]"
    echo "  name = \"$node_name\""
    echo "  advertiseAddress = \"$advertise\""
    if [ -n "$labels" ]; then
      echo "  [node.labels]"
      IFS=, read -ra kvs <<<"$labels"
      for kv in "${kvs[@]}"; do echo "    ${kv%%=*} = \"${kv#*=}\""; done
    fi
    echo ""
    echo "[api]"
    echo "  address = \"$api_address\""
    echo "  tokenFile = \"$confdir/tokens\""
  } >"$conf"
  chmod 0600 "$conf"
fi
umask 022

if [ "$start" = yes ]; then
  systemctl daemon-reload
  systemctl enable --now constellation-agent.service
  say "started constellation-agent.service (journalctl -u constellation-agent -f)"
fi
scheme=https
case $api_address in 127.*|localhost:*) scheme=http ;; esac
say "installed into ${destdir:-/}: $prefix/bin/{constellation-agent,ctl}, $unitdir/constellation-agent.service, $confdir/agent.toml, data in $datadir"
say "use ctl with: export CONSTELLATION_SERVER=$scheme://127.0.0.1:${api_address##*:} CONSTELLATION_TOKEN_FILE=$confdir/admin.token"
