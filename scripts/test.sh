#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine:
#   1. installs the Debian packages (scripts/install-deps.sh test),
#   2. configures and builds with the `ci` preset (warnings are errors), while
#      scripts/install-cue.sh builds cue (not for the unit tier),
#   3. starts real Apache Kafka (1 node and a 3-node KRaft cluster) and real
#      Keycloak as plain Java processes (test/services/services.sh),
#   4. runs the unit, integration and end-to-end tiers with ctest,
#   5. stops the services and prints one summary line with counts.
#
# Usage: scripts/test.sh [ctest -L regex]     e.g. scripts/test.sh unit
# Environment: FAASD_TEST_JOBS (ctest parallelism, default 2),
#              FAASD_KEEP_SERVICES=1 (leave Kafka/Keycloak running afterwards).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
label=${1:-}
jobs=${FAASD_TEST_JOBS:-2}
start=$(date +%s)

log() { printf '[test.sh %(%H:%M:%S)T] %s\n' -1 "$*"; }

log "installing dependencies"
scripts/install-deps.sh test
mkdir -p .state
# cue (Kumori manifest and compose checks of the integration tier): built with Go while the
# C++ build runs; a cached cue makes this a no-op. Not needed for the unit tier.
cue_pid=
if [[ $label != unit ]]; then
  scripts/install-cue.sh >.state/install-cue.log 2>&1 &
  cue_pid=$!
fi

services=test/services/services.sh
stop_services() {
  if [[ -z ${FAASD_KEEP_SERVICES:-} ]]; then
    log "stopping services"
    "$services" down all || true
  fi
}
needs_services=1
if [[ $label == unit ]]; then needs_services=0; fi
if ((needs_services)); then
  trap stop_services EXIT
  # Start Kafka and Keycloak while the build runs: both mostly wait on the JVMs.
  log "starting real Kafka (1 node + 3-node KRaft) and Keycloak in the background"
  "$services" up all >.state/services-up.log 2>&1 &
  services_pid=$!
fi

log "building (preset ci)"
cmake --preset ci >/dev/null
cmake --build build/ci

if ((needs_services)); then
  if ! wait "$services_pid"; then
    tail -n 80 .state/services-up.log
    log "services failed to start"
    exit 1
  fi
  log "services ready"
  # shellcheck disable=SC1091
  source "${FAASD_SERVICES_DIR:-$root/.state/services}/services.env"
fi

if [[ -n $cue_pid ]]; then
  if ! wait "$cue_pid"; then
    cat .state/install-cue.log
    log "scripts/install-cue.sh failed"
    exit 1
  fi
  log "cue ready: $(tail -n 1 .state/install-cue.log)"
fi

log "running tests${label:+ (label $label)}"
set +e
ctest --test-dir build/ci --output-on-failure -j "$jobs" ${label:+-L "$label"} 2>&1 | tee build/ci/ctest.log
status=${PIPESTATUS[0]}
set -e

total=$(grep -Eo 'tests passed, [0-9]+ tests failed out of [0-9]+' build/ci/ctest.log | grep -Eo '[0-9]+$' || echo 0)
failed=$(grep -Eo '[0-9]+ tests failed out of' build/ci/ctest.log | grep -Eo '^[0-9]+' || echo "?")
passed=$((total - ${failed/\?/0}))
elapsed=$(($(date +%s) - start))
echo "faasd test summary: ${passed} passed, ${failed} failed, ${total} total, ${elapsed}s (status ${status})"
exit "$status"
