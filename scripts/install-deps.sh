#!/usr/bin/env bash
# Installs the Debian 12 packages faasd needs to build, test and run.
# Idempotent: packages already installed are skipped (no apt-get at all when
# nothing is missing). Usage: scripts/install-deps.sh [build|test|all]
set -euo pipefail

what=${1:-all}

build_pkgs=(
  g++ cmake ninja-build ccache pkg-config git ca-certificates
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  librdkafka-dev libgit2-dev libssl-dev libcli11-dev catch2
)
run_pkgs=(bubblewrap git python3 curl)
test_pkgs=(kcat curl jq python3 procps iproute2 docker-compose wrk maven)
# scripts/install-cue.sh builds the cue CLI (Kumori manifest checks) with Go from the module proxy:
# Debian's Go only when no Go is installed already.
if ! command -v go >/dev/null && [[ ! -x /usr/local/go/bin/go ]]; then test_pkgs+=(golang-go); fi

pkgs=("${build_pkgs[@]}" "${run_pkgs[@]}")
if [[ $what == test || $what == all ]]; then pkgs+=("${test_pkgs[@]}"); fi

missing=()
for p in "${pkgs[@]}"; do
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
"${SUDO[@]}" apt-get update -q
"${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
