#!/usr/bin/env bash
# Submit throughput and latency of `faasd frontend` with valid Keycloak tokens
# against the real single-node Kafka, next to the bare Beast "hello" route of
# the same binary (the ceiling), with 1 and 64 connections; then the RSS of a
# frontend that holds every submitted job, and of a fresh replica that rebuilt
# its view from the state topic. Prints numbers; asserts nothing.
#
#   test/services/services.sh up kafka keycloak
#   cmake --preset release -DFAASD_BUILD_TESTS=OFF && cmake --build build/release --target faasd
#   bench/frontend_submit.sh            # FAASD_BENCH_DURATION=20s FAASD_BENCH_THREADS=2 FAASD_BENCH_JOBS=100000
#
# The Kafka broker shares the machine's cores with the frontend and wrk: for the
# submit figures, run it with production JVM settings (C2 JIT, G1) rather than the
# test harness's quick-start ones, e.g. a second broker for the bench:
#   FAASD_SERVICES_DIR=/tmp/bench-kafka FAASD_KAFKA_HEAP="-Xms1g -Xmx1g" \
#     FAASD_KAFKA_JVM_OPTS="-XX:+UseG1GC -Djava.awt.headless=true" test/services/services.sh up kafka
#   FAASD_BENCH_KAFKA=<its address> bench/frontend_submit.sh
#
# Extra frontend flags can be passed in FAASD_BENCH_FRONTEND_ARGS (e.g.
# "--kafka-property linger.ms=5", the library default, to compare).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
faasd=${FAASD_BIN:-$root/build/release/roles/faasd}
duration=${FAASD_BENCH_DURATION:-20s}
threads=${FAASD_BENCH_THREADS:-2}
want=${FAASD_BENCH_JOBS:-100000}
bench_kafka=${FAASD_BENCH_KAFKA:-}
unset FAASD_BIN FAASD_BENCH_DURATION FAASD_BENCH_THREADS FAASD_BENCH_JOBS FAASD_BENCH_KAFKA  # not frontend options
env_file=${FAASD_SERVICES_DIR:-$root/.state/services}/services.env
[[ -x $faasd ]] || { echo "build $faasd first (release preset)" >&2; exit 2; }
[[ -f $env_file ]] || { echo "start the services first (test/services/services.sh up kafka keycloak)" >&2; exit 2; }
# shellcheck disable=SC1090
source "$env_file"
if [[ -n $bench_kafka ]]; then FAASD_TEST_KAFKA=$bench_kafka; fi
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

token() {
  curl -fsS "$FAASD_TEST_OIDC_TOKEN_URL" -d grant_type=password -d client_id=faas-cli \
    -d username="$1" -d password="$2" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p'
}
export FAASD_CREDENTIALS_KEYS="bench:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
prefix="bench-$(date +%s)-$RANDOM."

# start_frontend NAME -> sets PORT and PID
start_frontend() {
  local name=$1 log="$work/$1.log"
  # A free port chosen here: at --log-level warn the frontend does not log the one it bound.
  PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  # shellcheck disable=SC2086
  "$faasd" frontend --listen "127.0.0.1:$PORT" --oidc-issuer "$FAASD_TEST_OIDC_ISSUER" \
    --kafka-brokers "$FAASD_TEST_KAFKA" --topic-prefix "$prefix" --topic-partitions 6 --topic-replication 1 \
    --rate-limit 0 --max-unfinished 1000000000 --bench-hello --log-level warn ${FAASD_BENCH_FRONTEND_ARGS:-} \
    2>"$log" &
  PID=$!
  pids+=("$PID")
  local ready=""
  for _ in $(seq 1 600); do
    curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && { ready=1; break; }
    sleep 0.1
  done
  [[ -n $ready ]] || { cat "$log" >&2; exit 1; }
}
rss_mib() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
jobs_in_view() {
  curl -fsS "http://127.0.0.1:$1/metrics" | awk '/^faasd_jobs\{/ {s += $2} END {print s+0}'
}

start_frontend a
url="http://127.0.0.1:$PORT"
echo "faasd frontend pid=$PID port=$PORT kafka=$FAASD_TEST_KAFKA duration=$duration wrk_threads=$threads"
echo "rss_idle_mib=$(rss_mib "$PID")"
FAASD_BENCH_TOKEN=$(token alice alice-pw)
export FAASD_BENCH_TOKEN

for c in 1 64; do
  t=$((c < threads ? c : threads))
  echo "--- hello (ceiling), $c connection(s)"
  wrk -t"$t" -c"$c" -d"$duration" -s "$root/bench/wrk/hello.lua" "$url" | tail -1
  echo "--- submit, $c connection(s)"
  wrk -t"$t" -c"$c" -d"$duration" -s "$root/bench/wrk/submit.lua" "$url" | tail -1
done
# Memory with (at least) FAASD_BENCH_JOBS tracked jobs (default 100,000, the issue's figure):
# keep submitting until the view holds that many.
FAASD_BENCH_TOKEN=$(token alice alice-pw)  # a fresh one: the realm's tokens live 5 minutes
n=$(jobs_in_view "$PORT")
while ((n < want)); do
  wrk -t"$threads" -c64 -d10s -s "$root/bench/wrk/submit.lua" "$url" >/dev/null
  n=$(jobs_in_view "$PORT")
done
echo "--- memory: jobs_in_view=$n rss_mib=$(rss_mib "$PID")"
metrics=$(curl -fsS "$url/metrics")
echo "$metrics" | grep -E '^faasd_token_cache_total|^faasd_view_memory_bytes' || true

start_frontend b
echo "--- fresh replica rebuilt from the state topic: jobs_in_view=$(jobs_in_view "$PORT") rss_mib=$(rss_mib "$PID")"
