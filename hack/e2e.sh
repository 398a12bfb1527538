#!/usr/bin/env bash
# End-to-end suite in docker-in-docker (see docs/e2e.md). Needs only a Docker engine: the
# harness builds the agent, ctl, the node image, the test images and (first time, ~9 min) Traefik.
#
#   hack/e2e.sh short    harness test + scenarios 1-3, 10-15 and 18 (the `make test` subset)
#   hack/e2e.sh all      every scenario once (`make e2e`)
#   hack/e2e.sh chaos    every scenario, repeated CHAOS_COUNT times (default 3) (`make chaos`)
#
# Extra arguments go to `go test` (e.g. -run TestScenario5). CONSTELLATION_E2E_KEEP_LOGS=1 keeps
# the node logs of passing runs too (failing runs always keep them and print where).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
"$top/hack/ensure-docker.sh"
mode=${1:-short}
[ $# -gt 0 ] && shift
export CONSTELLATION_E2E=1
case "$mode" in
  short) exec go test -count=1 -timeout 40m -v -run 'TestHarness$|TestScenario(1|2|3|1[0-5]|18)[A-Z]' "$@" ./test/e2e/ ;;
  all)   exec go test -count=1 -timeout 60m -v -run 'TestHarness$|TestScenario' "$@" ./test/e2e/ ;;
  chaos) exec go test -count="${CHAOS_COUNT:-3}" -timeout 180m -v -run 'TestScenario' "$@" ./test/e2e/ ;;
  *) echo "usage: hack/e2e.sh short|all|chaos [go test flags]" >&2; exit 2 ;;
esac
