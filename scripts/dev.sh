#!/usr/bin/env bash
# The first try, from a fresh Debian 12 machine: installs the build and run
# packages, builds faasd (release preset), and starts `faasd dev` — every role
# in one process on an embedded broker with a development identity provider.
# Extra arguments go to `faasd dev` (e.g. --listen 127.0.0.1:9000).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
scripts/install-deps.sh build
cmake --preset release >/dev/null
cmake --build build/release --target faasd
exec build/release/roles/faasd dev "$@"
