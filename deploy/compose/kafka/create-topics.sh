#!/usr/bin/env bash
# Creates every faasd topic (docs/architecture.md, Topics) once the brokers
# answer: run by the kafka-init service of deploy/compose/faas.yml inside the
# apache/kafka image. Idempotent (--if-not-exists).
#
# Environment: BOOTSTRAP (host:port,...), TOPIC_PREFIX (default faasd.),
# PARTITIONS (6), REPLICATION (3), MIN_INSYNC_REPLICAS (2),
# KAFKA_TOPICS (the kafka-topics command; default /opt/kafka/bin/kafka-topics.sh).
#
# The table below must list exactly faasd::jobs::topic_names::all() with the
# compacted ones marked compact: test/integration/deploy checks it.
set -euo pipefail

BOOTSTRAP=${BOOTSTRAP:?BOOTSTRAP=host:port,... is required}
TOPIC_PREFIX=${TOPIC_PREFIX-faasd.}
PARTITIONS=${PARTITIONS:-6}
REPLICATION=${REPLICATION:-3}
MIN_INSYNC_REPLICAS=${MIN_INSYNC_REPLICAS:-2}
read -r -a KAFKA_TOPICS <<< "${KAFKA_TOPICS:-/opt/kafka/bin/kafka-topics.sh}"

# name                cleanup  retention.ms
TOPICS="
jobs.at-most-once     delete   604800000
jobs.at-least-once    delete   604800000
jobs.exactly-once     delete   604800000
state                 compact  -1
results               delete   604800000
cancel                delete   86400000
heartbeats            delete   3600000
observer              delete   86400000
observer-config       compact  -1
dead-letter           delete   604800000
"

for attempt in $(seq 1 60); do
    if "${KAFKA_TOPICS[@]}" --bootstrap-server "$BOOTSTRAP" --list > /dev/null 2>&1; then break; fi
    [ "$attempt" = 60 ] && { echo "create-topics: brokers at $BOOTSTRAP did not answer" >&2; exit 1; }
    sleep 2
done

while read -r name cleanup retention; do
    [ -n "$name" ] || continue
    "${KAFKA_TOPICS[@]}" --bootstrap-server "$BOOTSTRAP" --create --if-not-exists \
        --topic "$TOPIC_PREFIX$name" --partitions "$PARTITIONS" --replication-factor "$REPLICATION" \
        --config "min.insync.replicas=$MIN_INSYNC_REPLICAS" --config "cleanup.policy=$cleanup" \
        --config "retention.ms=$retention"
done <<< "$TOPICS"
echo "create-topics: $(grep -c . <<< "$TOPICS") topics with prefix '$TOPIC_PREFIX' ready"
