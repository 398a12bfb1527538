#!/usr/bin/env bash
# Builds the Docker runtime's test images FROM scratch from the static Go programs in
# test/images/ (no registry needed). Idempotent: an image is rebuilt only when its binary changed
# (the image carries the binary's sha256 as a label).
#
#   constellation-test/echo:1       echo server, ECHO_VERSION=1
#   constellation-test/echo:2       the same binary, ECHO_VERSION=2 (for update tests)
#   constellation-test/echo:hc      echo:1 with a Docker HEALTHCHECK (bench baseline)
#   constellation-test/crasher:1    exits 3 after printing a few lines
#   constellation-test/slowstart:1  healthy only after START_DELAY
#   constellation-test/tool:1       logs, exec and volume test tool (test/images/tool)
#   constellation-test/tool:top     the same, for ctl top's tests (tool burn)
#   constellation-test/fakewarp:1   fake WARP gateway (docs/egress.md)
#   constellation-test/fakenet:1    fake internet answering /cdn-cgi/trace
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

build() { # name tag env...
  local name=$1 tag=$2; shift 2
  local dir="$work/$name-$tag"
  mkdir -p "$dir"
  (cd "$top" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$dir/app" "./test/images/$name")
  local sum
  sum=$(sha256sum "$dir/app" | cut -c1-16)
  local image="constellation-test/$name:$tag"
  if [ "$(docker image inspect -f '{{index .Config.Labels "constellation.test.sum"}}' "$image" 2>/dev/null || true)" = "$sum" ]; then
    echo "$image up to date"
    return
  fi
  {
    echo "FROM scratch"
    echo "COPY app /app"
    for e in "$@"; do
      case $e in
        HEALTHCHECK*) echo "$e" ;;
        *) echo "ENV $e" ;;
      esac
    done
    echo "LABEL constellation.test.sum=$sum"
    echo 'ENTRYPOINT ["/app"]'
  } >"$dir/Dockerfile"
  DOCKER_BUILDKIT=0 docker build -q -t "$image" "$dir" >/dev/null 2>&1
  echo "$image built"
}

build echo 1 ECHO_VERSION=1
build echo 2 ECHO_VERSION=2
# The same server with a Docker HEALTHCHECK in exec form (FROM scratch has no shell, so
# `docker run --health-cmd`, which is CMD-SHELL, cannot be used): the plain-Docker baseline
# of hack/bench-apply.
build echo hc ECHO_VERSION=1 'HEALTHCHECK --interval=500ms --retries=2 --timeout=1s CMD ["/app", "-probe", "http://127.0.0.1:8080/healthz"]'
build crasher 1
build slowstart 1
build tool 1
# The same binary under its own tag for ctl top's tests (tool burn): a worktree whose tool lacks a
# command rebuilds tool:1 without it, and tests running at the same time must not lose theirs.
build tool top

# constellation-test/redis:7   Debian's redis-server, redis-sentinel and redis-cli with their
# shared libraries (from ldd), FROM scratch, with an empty writable /etc/redis/sentinel.conf
# (Sentinel needs one) — for the ReplicaSet redis e2e scenario. Needs hack/redis.sh first.
build_redis() {
  local image=constellation-test/redis:7
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "$image skipped: redis-server not installed (hack/redis.sh)" >&2
    return
  fi
  local dir="$work/redis"
  mkdir -p "$dir/root/usr/bin" "$dir/root/etc/redis" "$dir/root/data" "$dir/root/tmp"
  local bin
  bin=$(readlink -f "$(command -v redis-server)")
  # One binary: redis-server, and redis-sentinel by argv[0].
  cp "$bin" "$dir/root/usr/bin/redis-server"
  ln -sf redis-server "$dir/root/usr/bin/redis-sentinel"
  cp "$(readlink -f "$(command -v redis-cli)")" "$dir/root/usr/bin/redis-cli"
  for f in "$bin" "$(readlink -f "$(command -v redis-cli)")"; do
    ldd "$f" | awk '/=>/ {print $3} /^[ \t]*\// {print $1}' | while read -r lib; do
      [ -e "$lib" ] || continue
      mkdir -p "$dir/root$(dirname "$lib")"
      cp -L "$lib" "$dir/root$lib"
    done
  done
  : >"$dir/root/etc/redis/sentinel.conf"
  local sum
  sum=$(cd "$dir/root" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
  if [ "$(docker image inspect -f '{{index .Config.Labels "constellation.test.sum"}}' "$image" 2>/dev/null || true)" = "$sum" ]; then
    echo "$image up to date"
    return
  fi
  {
    echo "FROM scratch"
    echo "COPY root/ /"
    echo "WORKDIR /data"
    echo "LABEL constellation.test.sum=$sum"
    echo 'ENTRYPOINT ["/usr/bin/redis-server"]'
    echo 'CMD ["--protected-mode", "no", "--dir", "/data"]'
  } >"$dir/Dockerfile"
  DOCKER_BUILDKIT=0 docker build -q -t "$image" "$dir" >/dev/null 2>&1
  echo "$image built"
}
build_redis
# The egress tests' fake WARP gateway (SOCKS5/HTTP proxy whose tunnel a control endpoint breaks)
# and fake internet (/cdn-cgi/trace, records the source of every request): docs/egress.md.
build fakewarp 1
build fakenet 1
