#!/usr/bin/env bash
# Installs the Debian 12 packages faasd needs to build, test and run: exactly the
# lists below, which docs/dependencies.md mirrors (a test compares the two).
# Idempotent: packages already installed are skipped (no apt-get at all when
# nothing is missing).
#
# Usage: scripts/install-deps.sh [build|test|all|image]   (default all = build + run + test)
#        scripts/install-deps.sh --list [build|run|test|image|all]   print the package names
set -euo pipefail

build_pkgs=(
  g++ cmake ninja-build ccache pkg-config git ca-certificates
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  librdkafka-dev libgit2-dev libssl-dev libcli11-dev catch2
)
run_pkgs=(bubblewrap git python3 curl)
# golang-go: scripts/install-cue.sh builds the cue CLI (Kumori manifest checks) from the Go
# module proxy; installed only when no Go is installed already (e.g. /usr/local/go).
test_pkgs=(kcat curl jq python3 docker-compose wrk maven golang-go openssh-server)
# scripts/image-check.sh only (not part of the test command).
image_pkgs=(podman buildah debootstrap bubblewrap jq)

group() {
  case "$1" in
    build) printf '%s\n' "${build_pkgs[@]}" "${run_pkgs[@]}" ;;
    run) printf '%s\n' "${run_pkgs[@]}" ;;
    test) printf '%s\n' "${test_pkgs[@]}" ;;
    image) printf '%s\n' "${image_pkgs[@]}" ;;
    all) group build; group test ;;
    *) echo "install-deps: unknown group '$1' (build, run, test, image, all)" >&2; exit 2 ;;
  esac
}

if [[ ${1:-} == --list ]]; then
  group "${2:-all}" | awk '!seen[$0]++'
  exit 0
fi

what=${1:-all}
case "$what" in
  build) mapfile -t pkgs < <(group build) ;;
  test | all) mapfile -t pkgs < <(group all | awk '!seen[$0]++') ;;
  image) mapfile -t pkgs < <(group image) ;;
  *) group "$what" >/dev/null ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  if [[ $p == golang-go ]] && { command -v go >/dev/null || [[ -x /usr/local/go/bin/go ]]; }; then continue; fi
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#pkgs[@]} packages present"
  exit 0
fi

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null; then SUDO=(sudo); else
    echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Packages install, they do not start: openssh-server (the tests run their own sshd on loopback)
# must not leave a system sshd listening on every address. A policy-rc.d that refuses every
# service start is put in place for the install, unless the machine has one already.
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\n# install-deps (faasd): no service starts during the install\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
  "${SUDO[@]}" chmod 0755 "$policy"
  trap '"${SUDO[@]}" rm -f "$policy"' EXIT
fi
"${SUDO[@]}" apt-get update -q
"${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
