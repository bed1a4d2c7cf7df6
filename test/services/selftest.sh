#!/usr/bin/env bash
# End-to-end check of services.sh itself: up all, Kafka round trips (single node and 3 nodes,
# cooperative-sticky group), a broker SIGKILL + restart while producing with acks=all,
# the Keycloak checks, idempotent `up`, and `down all` leaving no JVM behind.
# Usage: selftest.sh [--keep]   (--keep: leave the services up at the end)
# Needs: what services.sh needs, plus jq (check-keycloak.sh).
set -euo pipefail

HERE="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd -P)"
S="$HERE/services.sh"
KEEP=0
[[ "${1:-}" == --keep ]] && KEEP=1
ok=0
step() { echo "== $*"; }
pass() { ok=$((ok + 1)); echo "ok   $*"; }
fail() { echo "FAIL $*" >&2; exit 1; }

t0=$(date +%s)
step "services.sh up all"
"$S" up all
pass "up all ($(($(date +%s) - t0)) s)"

# shellcheck disable=SC1090
source <("$S" env)
for v in FAASD_TEST_KAFKA FAASD_TEST_KAFKA3 FAASD_TEST_KAFKA3_CTL FAASD_TEST_KEYCLOAK FAASD_TEST_OIDC_ISSUER \
  FAASD_TEST_KEYCLOAK_ADMIN FAASD_TEST_KEYCLOAK_ADMIN_PASSWORD; do
  [[ -n "${!v:-}" ]] || fail "$v missing from services.env"
done
pass "services.env has all FAASD_TEST_* variables"

step "Kafka single node"
topic="selftest-$$-$RANDOM"
seq 1 50 | kcat -b "$FAASD_TEST_KAFKA" -P -t "$topic" -X acks=all -X enable.idempotence=true
n="$(timeout 60 kcat -b "$FAASD_TEST_KAFKA" -G "g-$topic" -X partition.assignment.strategy=cooperative-sticky \
  -X auto.offset.reset=earliest -e -q "$topic" | sort -un | wc -l)"
[[ "$n" == 50 ]] || fail "single node: consumed $n of 50"
pass "single node: 50 produced (idempotent, acks=all), 50 consumed by a cooperative-sticky group"

step "Kafka 3 nodes: SIGKILL node 2 while producing with acks=all, then restart it"
topic="selftest3-$$-$RANDOM"
md="$(kcat -b "$FAASD_TEST_KAFKA3" -L 2>/dev/null)"
[[ "$md" == *$'\n 3 brokers:'* ]] || fail "kafka3: not 3 brokers"
errf="$(mktemp)"
(for i in $(seq 1 300); do echo "m-$i"; sleep 0.1; done) |
  kcat -b "$FAASD_TEST_KAFKA3" -P -t "$topic" -X acks=all -X enable.idempotence=true \
    -X message.timeout.ms=120000 2>"$errf" &
prod=$!
sleep 5
"$FAASD_TEST_KAFKA3_CTL" kafka3-kill 2
st="$("$S" status)"
[[ "$st" == *"node2=DOWN"* ]] || fail "status does not show node2 down: $st"
sleep 10
"$FAASD_TEST_KAFKA3_CTL" kafka3-start 2
wait "$prod" || fail "producer failed: $(tail -n 5 "$errf")"
n="$(timeout 60 kcat -b "$FAASD_TEST_KAFKA3" -C -t "$topic" -o beginning -e -q | sort -u | wc -l)"
m="$(timeout 60 kcat -b "$FAASD_TEST_KAFKA3" -C -t "$topic" -o beginning -e -q | wc -l)"
rm -f "$errf"
[[ "$n" == 300 && "$m" == 300 ]] || fail "kafka3: $n unique / $m total of 300 after kill+restart"
pass "kafka3: 300 of 300 messages, no duplicates, across SIGKILL + restart of node 2"

step "Keycloak"
"$HERE/check-keycloak.sh"
pass "check-keycloak.sh"

step "idempotent up"
t1=$(date +%s)
"$S" up all
pass "up all again: no-op + re-verify ($(($(date +%s) - t1)) s)"

if [[ "$KEEP" == 1 ]]; then
  echo "services selftest: all $ok steps OK (services left up)"
  exit 0
fi
step "down all"
"$S" down all
left=""
for d in /proc/[0-9]*; do
  [[ "$(cat "$d/comm" 2>/dev/null)" == java ]] || continue
  if tr '\0' ' ' <"$d/cmdline" 2>/dev/null | grep -qF -- "$FAASD_SERVICES_DIR/"; then left+=" ${d#/proc/}"; fi
done
[[ -z "$left" ]] || fail "JVMs left after down all:$left"
"$S" env >/dev/null 2>&1 && fail "services.env still exists after down all"
pass "down all: no JVM of $FAASD_SERVICES_DIR left, services.env removed"
echo "services selftest: all $ok steps OK ($(($(date +%s) - t0)) s)"
