#!/usr/bin/env bash
# Creates every faasd topic (docs/architecture.md, Topics) once the brokers
# answer: run by the kafka-init service of deploy/compose/faas.yml inside the
# apache/kafka image. Idempotent (--if-not-exists).
#
# Environment: BOOTSTRAP (host:port,...), TOPIC_PREFIX (default faasd.),
# PARTITIONS (6), REPLICATION (3), MIN_INSYNC_REPLICAS (min(2, REPLICATION), as faasd),
# KAFKA_TOPICS (the kafka-topics command; default /opt/kafka/bin/kafka-topics.sh).
#
# The table below must create exactly what faasd itself creates when it finds a
# topic missing (kafka::faasd_topic_specs: names, partitions, cleanup policy,
# retention, min.insync.replicas = min(2, REPLICATION)):
# test/integration/deploy/topics_test.cpp runs this script and compares.
set -euo pipefail

BOOTSTRAP=${BOOTSTRAP:?BOOTSTRAP=host:port,... is required}
TOPIC_PREFIX=${TOPIC_PREFIX-faasd.}
PARTITIONS=${PARTITIONS:-6}
REPLICATION=${REPLICATION:-3}
MIN_INSYNC_REPLICAS=${MIN_INSYNC_REPLICAS:-$((REPLICATION < 2 ? REPLICATION : 2))}
read -r -a KAFKA_TOPICS <<< "${KAFKA_TOPICS:-/opt/kafka/bin/kafka-topics.sh}"

# partitions: P = $PARTITIONS; observer and observer-config have one key, one partition.
# retention.ms: - = none (compacted topics keep the last record of each key).
# name                partitions  cleanup  retention.ms
TOPICS="
jobs.at-most-once     P           delete   604800000
jobs.at-least-once    P           delete   604800000
jobs.exactly-once     P           delete   604800000
state                 P           compact  -
results               P           delete   604800000
cancel                P           delete   86400000
heartbeats            P           delete   3600000
observer              1           delete   86400000
observer-config       1           compact  -
dead-letter           P           delete   604800000
"

for attempt in $(seq 1 60); do
    if "${KAFKA_TOPICS[@]}" --bootstrap-server "$BOOTSTRAP" --list > /dev/null 2>&1; then break; fi
    [ "$attempt" = 60 ] && { echo "create-topics: brokers at $BOOTSTRAP did not answer" >&2; exit 1; }
    sleep 2
done

while read -r name partitions cleanup retention; do
    [ -n "$name" ] || continue
    [ "$partitions" = P ] && partitions=$PARTITIONS
    configs=(--config "cleanup.policy=$cleanup" --config "min.insync.replicas=$MIN_INSYNC_REPLICAS")
    [ "$retention" = - ] || configs+=(--config "retention.ms=$retention")
    "${KAFKA_TOPICS[@]}" --bootstrap-server "$BOOTSTRAP" --create --if-not-exists \
        --topic "$TOPIC_PREFIX$name" --partitions "$partitions" --replication-factor "$REPLICATION" "${configs[@]}"
done <<< "$TOPICS"
echo "create-topics: $(grep -c . <<< "$TOPICS") topics with prefix '$TOPIC_PREFIX' ready"
