#!/usr/bin/env bash
# Builds a real Traefik v3 from its Go module for the integration tests and links it into bin/traefik.
#
# Traefik's go.mod carries replace directives, so `go install` refuses it; building inside the
# downloaded module directory works. The binary is cached outside the clone
# (~/.cache/constellation/traefik-VERSION) so a fresh CI clone on the same machine reuses it.
# The first build takes about 9 minutes on 2 cores.
set -euo pipefail

version=${TRAEFIK_VERSION:-v3.6.12}
cache=${CONSTELLATION_CACHE:-$HOME/.cache/constellation}
out="$cache/traefik-$version"
top=$(cd "$(dirname "$0")/.." && pwd)

mkdir -p "$cache" "$top/bin"
if [ ! -x "$out" ]; then
  echo "hack/traefik.sh: building Traefik $version (first time only, ~9 min on 2 cores)..." >&2
  dir=$(GOFLAGS=-mod=mod go mod download -json "github.com/traefik/traefik/v3@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  if [ -z "$dir" ] || [ ! -d "$dir" ]; then
    echo "hack/traefik.sh: cannot download github.com/traefik/traefik/v3@$version from the Go module proxy" >&2
    exit 1
  fi
  # The module cache is read-only; build from there with a writable output path.
  (cd "$dir" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -o "$out.tmp" ./cmd/traefik)
  mv "$out.tmp" "$out"
fi
ln -sf "$out" "$top/bin/traefik"
"$top/bin/traefik" version >/dev/null 2>&1 || { echo "hack/traefik.sh: $out does not run" >&2; exit 1; }
echo "$top/bin/traefik"
