#!/usr/bin/env bash
# Makes sure Debian's chromium is installed: the status page's test (pkg/ui) loads /ui/ in headless
# Chromium. Installs it with apt-get when missing and says clearly what is missing when it cannot.
# Prints the path of the browser on success.
set -euo pipefail

find_chromium() {
  for b in chromium chromium-browser; do
    if command -v "$b" >/dev/null 2>&1; then command -v "$b"; return 0; fi
  done
  return 1
}

if path=$(find_chromium); then
  echo "$path"
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "hack/chromium.sh: chromium is missing; install Debian's chromium (apt-get install chromium, as root)" >&2
  exit 1
fi
echo "hack/chromium.sh: installing chromium from Debian (about 100 MB, first time only)..." >&2
export DEBIAN_FRONTEND=noninteractive
install() { apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core >/dev/null; }
install || { apt-get update -q >/dev/null && install; } || {
  echo "hack/chromium.sh: apt-get could not install chromium" >&2
  exit 1
}
path=$(find_chromium) || { echo "hack/chromium.sh: chromium still missing after install" >&2; exit 1; }
"$path" --version >&2 || { echo "hack/chromium.sh: $path does not run" >&2; exit 1; }
echo "$path"
