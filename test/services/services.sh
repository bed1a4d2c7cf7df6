#!/usr/bin/env bash
# Real Apache Kafka (KRaft) and Keycloak for faasd's tests, as plain Java processes on 127.0.0.1.
#
# Artifacts come from Maven Central (through `mvn`) and are cached under $FAASD_DOWNLOADS_DIR;
# running state (configs, data, logs, pids, services.env) lives under $FAASD_SERVICES_DIR.
# No Docker. See docs/real-services.md.
#
# Usage: services.sh up [kafka|kafka3|keycloak|all]...   start (no-op + re-verify if up)
#        services.sh down [kafka|kafka3|keycloak|all]...  stop, remove data dirs
#        services.sh status | env
#        services.sh kafka3-kill N | kafka3-start N       fault injection, N in 1..3
#        services.sh fetch [kafka|keycloak|all]           only fill the download cache
set -euo pipefail

# ---- versions: the one place to change them (env overrides for experiments) ----
KAFKA_VERSION="${FAASD_KAFKA_VERSION:-4.1.1}"
KEYCLOAK_VERSION="${FAASD_KEYCLOAK_VERSION:-26.7.3}"
DEP_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.8.1"

# ---- knobs ----
KAFKA_TIMEOUT="${FAASD_KAFKA_TIMEOUT:-180}"        # seconds until a Kafka service must be ready
KEYCLOAK_TIMEOUT="${FAASD_KEYCLOAK_TIMEOUT:-600}"  # seconds until Keycloak must be ready
STOP_TIMEOUT=30                                    # seconds between TERM and KILL
KAFKA_HEAP="${FAASD_KAFKA_HEAP:--Xms64m -Xmx512m}"
KAFKA_JVM_OPTS="${FAASD_KAFKA_JVM_OPTS:--XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true}"
KAFKA_CDS="${FAASD_KAFKA_CDS:-1}"                  # 1: build and use an AppCDS archive of the broker
KEYCLOAK_HEAP="${FAASD_KEYCLOAK_HEAP:--Xms64m -Xmx512m}"
KEYCLOAK_JVM_APPEND="${FAASD_KEYCLOAK_JVM_APPEND:--XX:TieredStopAtLevel=1}"

SELF="$(readlink -f "${BASH_SOURCE[0]}")"
REPO_ROOT="$(cd "$(dirname "$SELF")/../.." && pwd -P)"
STATE_DIR="${FAASD_SERVICES_DIR:-$REPO_ROOT/.state/services}"
CACHE_DIR="${FAASD_DOWNLOADS_DIR:-${HOME:-/root}/.cache/faasd}"
REALM_FILE="${FAASD_KEYCLOAK_REALM_FILE:-$REPO_ROOT/config/keycloak/faas-realm.json}"
READY_TOPIC="faasd-services-ready"
SERVICES=(kafka kafka3 keycloak)

log() { printf '[services %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now() { date +%s; }

usage() {
  sed -n '8,12p' "$SELF" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

abs_dirs() {
  mkdir -p "$STATE_DIR" "$CACHE_DIR"
  STATE_DIR="$(cd "$STATE_DIR" && pwd -P)"
  CACHE_DIR="$(cd "$CACHE_DIR" && pwd -P)"
  ENV_FILE="$STATE_DIR/services.env"
}

need() {
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null 2>&1 || die "'$t' not found in PATH (Debian package: $(pkg_of "$t"))"
  done
}
pkg_of() {
  case "$1" in
    kcat) echo kcat ;; curl) echo curl ;; mvn) echo maven ;; java) echo openjdk-17-jre-headless ;;
    setsid|flock) echo util-linux ;; tar) echo tar ;; gzip) echo gzip ;; *) echo "?" ;;
  esac
}

# Run "$@" holding an exclusive lock on file $1 (released on return or when the process dies).
with_lock() {
  local f="$1" fd
  shift
  exec {fd}>>"$f"
  flock -w 1800 "$fd" || die "timed out waiting for lock $f"
  "$@"
  exec {fd}>&-
}

# ---------------------------------------------------------------- processes
# All services run in their own session/process group (setsid): pid == pgid.

# 0 if pid is a live (non-zombie) process whose command line contains $2.
# (bash builtins only: this runs in polling loops on a loaded 2-core machine)
proc_alive() {
  local pid="$1" marker="$2" stat
  local -a args
  [[ -n "$pid" && -r "/proc/$pid/stat" ]] || return 1
  read -r stat 2>/dev/null <"/proc/$pid/stat" || return 1
  stat="${stat##*) }"
  [[ "${stat:0:1}" != Z ]] || return 1
  mapfile -d '' -t args 2>/dev/null <"/proc/$pid/cmdline" || return 1
  [[ "${args[*]}" == *"$marker"* ]]
}

# pids of live processes in process group $1
group_members() {
  local pg="$1" f s rest
  local -a fields
  for f in /proc/[0-9]*/stat; do
    read -r s 2>/dev/null <"$f" || continue
    rest="${s##*) }"
    read -r -a fields <<<"$rest"
    [[ "${fields[0]}" != Z && "${fields[2]}" == "$pg" ]] && echo "${f//[^0-9]/}"
  done
  return 0
}

# pids of java processes whose command line contains $1 (the orphan sweep)
java_procs_with() {
  local marker="$1" d comm
  local -a args
  for d in /proc/[0-9]*; do
    read -r comm 2>/dev/null <"$d/comm" || continue
    [[ "$comm" == java ]] || continue
    mapfile -d '' -t args 2>/dev/null <"$d/cmdline" || continue
    [[ "${args[*]}" == *"$marker"* ]] && echo "${d#/proc/}"
  done
  return 0
}

# 0 if process group $1 has live members, or the process $1 itself lives
group_alive() {
  local s
  [[ -n "$(group_members "$1")" ]] && return 0
  read -r s 2>/dev/null <"/proc/$1/stat" || return 1
  s="${s##*) }"
  [[ "${s:0:1}" != Z ]]
}

# TERM the process groups $@ at once, wait <= STOP_TIMEOUT s, KILL survivors.
stop_groups() {
  local pg deadline left
  [[ $# -gt 0 ]] || return 0
  for pg in "$@"; do kill -TERM -- "-$pg" 2>/dev/null || kill -TERM "$pg" 2>/dev/null || true; done
  deadline=$(($(now) + STOP_TIMEOUT))
  while :; do
    left=""
    for pg in "$@"; do
      if group_alive "$pg"; then left+=" $pg"; fi
    done
    [[ -n "$left" ]] || return 0
    [[ $(now) -lt $deadline ]] || break
    sleep 0.3
  done
  log "still running after ${STOP_TIMEOUT}s, sending KILL to groups:$left"
  for pg in $left; do kill -KILL -- "-$pg" 2>/dev/null || kill -KILL "$pg" 2>/dev/null || true; done
  sleep 0.5
}

# Start "$@" detached in a new session, output appended to $1's log file. Sets STARTED_PID.
start_detached() {
  local logf="$1"
  shift
  (
    # Close every inherited descriptor above 2: lock files (a JVM holding one would block
    # the next `up`/`down`) and the caller's pipes (a test harness would wait for EOF).
    for fd in /proc/self/fd/*; do
      fd="${fd##*/}"
      if ((fd > 2)); then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    exec setsid "$@"
  ) </dev/null >>"$logf" 2>&1 &
  STARTED_PID=$!
}

fail_with_log() {
  local logf="$1"
  shift
  log "ERROR: $*"
  if [[ -f "$logf" ]]; then
    log "---- last 40 lines of $logf ----"
    tail -n 40 "$logf" >&2 || true
    log "---- end of $logf ----"
  fi
  exit 1
}

# ---------------------------------------------------------------- ports
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Claim $2 free ports for service $1 (written to $STATE_DIR/$1/ports); sets PORTS array.
claim_ports() {
  with_lock "$STATE_DIR/.ports.lock" claim_ports_locked "$@"
  read -r -a PORTS <"$STATE_DIR/$1/ports"
}
claim_ports_locked() {
  local svc="$1" n="$2" lo=20000 hi=60000 eph p tries=0 f
  local -a got=() taken=()
  # Prefer ports below the kernel's ephemeral range, so no outgoing connection holds them.
  if read -r eph _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null && ((eph - 1 - lo >= 2000)); then
    hi=$((eph - 1))
  fi
  for f in "$STATE_DIR"/*/ports; do
    [[ -f "$f" && "$f" != "$STATE_DIR/$svc/ports" ]] || continue
    read -r -a fields <"$f"
    taken+=("${fields[@]}")
  done
  while ((${#got[@]} < n)); do
    ((++tries < 500)) || die "could not find $n free ports in $lo-$hi"
    p=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo + 1)))
    [[ " ${taken[*]} ${got[*]} " != *" $p "* ]] || continue
    port_in_use "$p" && continue
    got+=("$p")
  done
  mkdir -p "$STATE_DIR/$svc"
  echo "${got[*]}" >"$STATE_DIR/$svc/ports"
}

# ---------------------------------------------------------------- env file
# `export NAME=value`, single-quoted only when needed (so simple parsers can read it too)
env_line() {
  local v="$2"
  if [[ "$v" =~ ^[A-Za-z0-9_./:,@%+=-]*$ ]]; then
    printf 'export %s=%s\n' "$1" "$v"
  else
    printf "export %s='%s'\n" "$1" "${v//\'/\'\\\'\'}"
  fi
}
# Each service writes $STATE_DIR/<svc>/env; services.env is their concatenation.
write_env() { with_lock "$STATE_DIR/.env.lock" write_env_locked; }
write_env_locked() {
  local tmp s any=0
  tmp="$(mktemp "$STATE_DIR/.services.env.XXXXXX")"
  chmod 0644 "$tmp"
  {
    echo "# Generated by $SELF - source it (all lines are exports)."
    env_line FAASD_SERVICES_DIR "$STATE_DIR"
    for s in "${SERVICES[@]}"; do
      if [[ -f "$STATE_DIR/$s/env" ]]; then cat "$STATE_DIR/$s/env"; any=1; fi
    done
  } >"$tmp"
  if ((any)) && ! cmp -s <(tail -n +2 "$tmp") <(tail -n +2 "$ENV_FILE" 2>/dev/null); then
    mv -f "$tmp" "$ENV_FILE"
  elif ((any)); then
    rm -f "$tmp"  # unchanged (a re-verified `up`): keep the file, whichever checkout wrote it
  else
    rm -f "$tmp" "$ENV_FILE"
  fi
}

# ---------------------------------------------------------------- java
java_major() {  # $1 = path to a java binary
  local home rel v
  home="$(dirname "$(dirname "$(readlink -f "$1")")")"
  rel="$home/release"
  if [[ -f "$rel" ]] && v="$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$rel")" && [[ -n "$v" ]]; then
    echo "$v"
    return
  fi
  v="$("$1" -version 2>&1 | sed -n '1s/.*version "\([0-9]*\).*/\1/p')"
  [[ "$v" == 1 ]] && v=8
  echo "${v:-0}"
}

kafka_java() {
  local j
  if [[ -n "${FAASD_KAFKA_JAVA:-}" ]]; then j="$FAASD_KAFKA_JAVA"
  elif [[ -n "${JAVA_HOME:-}" && -x "${JAVA_HOME}/bin/java" ]]; then j="$JAVA_HOME/bin/java"
  else j="$(command -v java || true)"
  fi
  [[ -n "$j" && -x "$j" ]] || die "no java found for Kafka (need JDK/JRE >= 17; Debian: openjdk-17-jre-headless)"
  (($(java_major "$j") >= 17)) || die "Kafka $KAFKA_VERSION needs Java >= 17, $j is $(java_major "$j")"
  echo "$j"
}

# JAVA_HOME for Keycloak: FAASD_KEYCLOAK_JAVA_HOME, else the newest JDK >= 21 in /usr/lib/jvm/*.
keycloak_java_home() {
  local h best="" bestv=0 v
  if [[ -n "${FAASD_KEYCLOAK_JAVA_HOME:-}" ]]; then
    [[ -x "$FAASD_KEYCLOAK_JAVA_HOME/bin/java" ]] || die "FAASD_KEYCLOAK_JAVA_HOME=$FAASD_KEYCLOAK_JAVA_HOME has no bin/java"
    v="$(java_major "$FAASD_KEYCLOAK_JAVA_HOME/bin/java")"
    ((v >= 21)) || die "Keycloak $KEYCLOAK_VERSION needs Java >= 21; $FAASD_KEYCLOAK_JAVA_HOME is $v"
    echo "$FAASD_KEYCLOAK_JAVA_HOME"
    return
  fi
  for h in /usr/lib/jvm/* ${JAVA_HOME:+"$JAVA_HOME"}; do
    [[ -x "$h/bin/java" && ! -L "$h" ]] || continue
    v="$(java_major "$h/bin/java")"
    if ((v > bestv)); then bestv=$v; best="$h"; fi
  done
  ((bestv >= 21)) || die "Keycloak $KEYCLOAK_VERSION needs a JDK >= 21 (25 recommended) and none was found in /usr/lib/jvm/* (newest: ${best:-none} = $bestv). Install one (e.g. Temurin 25 in /usr/lib/jvm/temurin-25-jdk-amd64) or set FAASD_KEYCLOAK_JAVA_HOME."
  echo "$best"
}

java_id() { "$1" -version 2>&1 | cksum | cut -d' ' -f1; }

# Quiet batch Maven; its output goes to stderr, without the colour codes 3.8 still emits.
# One Maven at a time per cache (the local repository is not safe for concurrent downloads).
# Every download is one line in $CACHE_DIR/downloads.log (time, pid, what): a cached start adds none.
run_mvn() { with_lock "$CACHE_DIR/.lock-mvn" run_mvn_locked "$@"; }
run_mvn_locked() {
  printf '%s %s mvn %s\n' "$(date -u +%FT%TZ)" "$$" "$*" >>"$CACHE_DIR/downloads.log"
  mvn -B -q -Dstyle.color=never "$@" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' | sed '/^$/d' >&2
}

# ---------------------------------------------------------------- cache: Kafka
kafka_cache() { echo "$CACHE_DIR/kafka-$KAFKA_VERSION"; }
kafka_lock() { echo "$CACHE_DIR/.lock-kafka-$KAFKA_VERSION"; }
kafka_major() { echo "${KAFKA_VERSION%%.*}"; }

ensure_kafka_lib() {
  local d
  d="$(kafka_cache)"
  [[ -f "$d/.complete" ]] && return 0
  with_lock "$(kafka_lock)" fetch_kafka_locked
}

fetch_kafka_locked() {
  local d t0 binding
  d="$(kafka_cache)"
  [[ -f "$d/.complete" ]] && return 0
  need mvn
  t0=$(now)
  mkdir -p "$d"
  if (($(kafka_major) >= 4)); then
    # Kafka 4 logs through slf4j 1.7 + log4j2; its tarball adds the binding as a "release lib".
    binding='<dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>2.24.3</version></dependency>'
  else
    # Kafka 3.x: log4j 1 API (reload4j) is needed at run time by kafka.utils.Log4jController.
    binding='<dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId><version>1.7.36</version></dependency>'
  fi
  cat >"$d/pom.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by faasd test/services/services.sh; only used to download jars. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.faasd.services</groupId>
  <artifactId>kafka-lib</artifactId>
  <version>$KAFKA_VERSION</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$KAFKA_VERSION</version>
      <exclusions>
        <exclusion><groupId>org.apache.kafka</groupId><artifactId>connect-runtime</artifactId></exclusion>
        <exclusion><groupId>com.fasterxml.jackson.jakarta.rs</groupId><artifactId>*</artifactId></exclusion>
      </exclusions>
    </dependency>
    $binding
  </dependencies>
</project>
EOF
  log "downloading Kafka $KAFKA_VERSION jars with Maven into $d/lib"
  rm -rf "$d/lib.tmp"
  run_mvn -f "$d/pom.xml" "$DEP_PLUGIN:copy-dependencies" \
    -DincludeScope=runtime -DoutputDirectory="$d/lib.tmp" ||
    die "mvn could not fetch Kafka $KAFKA_VERSION (is Maven Central reachable?)"
  ls "$d/lib.tmp"/kafka_2.13-*.jar >/dev/null 2>&1 || die "Kafka jars missing after mvn"
  rm -rf "${d:?}/lib"
  mv "$d/lib.tmp" "$d/lib"
  cat >"$d/log4j2.properties" <<'EOF'
appender.out.type=Console
appender.out.name=OUT
appender.out.layout.type=PatternLayout
appender.out.layout.pattern=[%d] %p %m (%c)%n
rootLogger.level=WARN
rootLogger.appenderRef.out.ref=OUT
logger.raft.name=kafka.server.KafkaRaftServer
logger.raft.level=INFO
EOF
  cat >"$d/log4j.properties" <<'EOF'
log4j.rootLogger=WARN, stdout
log4j.logger.kafka.server.KafkaRaftServer=INFO
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
EOF
  date -u +%FT%TZ >"$d/.complete"
  log "Kafka $KAFKA_VERSION jars cached ($(($(now) - t0)) s, $(du -sh "$d/lib" | cut -f1))"
}

kafka_log_opt() {
  local d
  d="$(kafka_cache)"
  if (($(kafka_major) >= 4)); then echo "-Dlog4j2.configurationFile=$d/log4j2.properties"
  else echo "-Dlog4j.configuration=file:$d/log4j.properties"
  fi
}

# Prepared once per Kafka version (and JVM), under the cache lock:
#  - format-template/: what `kafka-storage format` writes besides meta.properties (the binary
#    bootstrap.checkpoint, the same for every node), so `up` needs no StorageTool JVM per node;
#  - broker-<jvm>.jsa: an AppCDS archive from a training broker run (faster JVM start).
kafka_cds_file() { echo "$(kafka_cache)/broker-$(java_id "$1").jsa"; }
kafka_template() { echo "$(kafka_cache)/format-template"; }

kafka_prepared() {  # java -> 0 if nothing is left to prepare
  local jsa
  [[ -f "$(kafka_template)/.complete" || -f "$(kafka_template)/.unusable" ]] || return 1
  [[ "$KAFKA_CDS" == 1 ]] || return 0
  jsa="$(kafka_cds_file "$1")"
  [[ -f "$jsa" || -f "$jsa.failed" ]]
}

ensure_kafka_prepared() {
  kafka_prepared "$1" && return 0
  with_lock "$(kafka_lock)" prepare_kafka_locked "$1"
}

prepare_kafka_locked() {
  local java="$1" jsa tmp port cport logf pid t0 deadline ok=0 tpl f
  kafka_prepared "$java" && return 0
  t0=$(now)
  jsa="$(kafka_cds_file "$java")"
  tpl="$(kafka_template)"
  log "preparing Kafka $KAFKA_VERSION: format template and AppCDS training run (once per version and JVM)"
  tmp="$(mktemp -d "$CACHE_DIR/.kafka-prepare.XXXXXX")"
  claim_ports .prepare 2
  port=${PORTS[0]} cport=${PORTS[1]}
  write_kafka_props "$tmp/node1.properties" 1 "$port" "$cport" "1@127.0.0.1:$cport" "$tmp/data1" 1
  logf="$tmp/prepare.log"
  kafka_storage_format "$java" "$tmp/node1.properties" "$(new_cluster_id)" "$logf"
  if [[ ! -f "$tpl/.complete" && ! -f "$tpl/.unusable" ]]; then
    rm -rf "$tpl"
    mkdir -p "$tpl"
    # Use the template only if format wrote exactly meta.properties + bootstrap.checkpoint.
    if [[ "$(cd "$tmp/data1" && find . -mindepth 1 | sort | xargs)" == "./bootstrap.checkpoint ./meta.properties" ]] &&
      grep -q '^version=1$' "$tmp/data1/meta.properties"; then
      cp "$tmp/data1/bootstrap.checkpoint" "$tpl/"
      cp "$tmp/data1/meta.properties" "$tpl/meta.properties.example"
      date -u +%FT%TZ >"$tpl/.complete"
    else
      log "note: kafka-storage format output is not the expected layout; formatting with StorageTool"
      date -u +%FT%TZ >"$tpl/.unusable"
    fi
  fi
  if [[ "$KAFKA_CDS" == 1 && ! -f "$jsa" && ! -f "$jsa.failed" ]]; then
    rm -f "$jsa.tmp"
    # shellcheck disable=SC2086
    start_detached "$logf" "$java" $KAFKA_HEAP $KAFKA_JVM_OPTS "-XX:ArchiveClassesAtExit=$jsa.tmp" \
      "$(kafka_log_opt)" -cp "$(kafka_cache)/lib/*" kafka.Kafka "$tmp/node1.properties"
    pid=$STARTED_PID
    deadline=$(($(now) + KAFKA_TIMEOUT))
    while (($(now) < deadline)) && proc_alive "$pid" "$tmp/"; do
      if kafka_roundtrip "127.0.0.1:$port" >/dev/null 2>&1; then ok=1; break; fi
      sleep 0.5
    done
    # the archive is written while the JVM exits: give it time
    STOP_TIMEOUT=180 stop_groups "$pid"
    wait "$pid" 2>/dev/null || true
    # accept the archive only if a JVM maps it with -Xshare:on (fails on a bad archive)
    if ((ok)) && [[ -s "$jsa.tmp" ]] &&
      "$java" "-XX:SharedArchiveFile=$jsa.tmp" -Xshare:on -cp "$(kafka_cache)/lib/*" -version >/dev/null 2>&1; then
      chmod 0644 "$jsa.tmp"
      mv -f "$jsa.tmp" "$jsa"
      log "AppCDS archive ready: $jsa"
    else
      rm -f "$jsa.tmp"
      date >"$jsa.failed"
      cp "$logf" "$jsa.failed.log" 2>/dev/null || true
      log "warning: no AppCDS archive; Kafka starts without it (see $jsa.failed.log)"
    fi
  fi
  for f in "$tmp" "$STATE_DIR/.prepare"; do rm -rf "$f"; done
  log "Kafka $KAFKA_VERSION prepared ($(($(now) - t0)) s)"
}

# ---------------------------------------------------------------- cache: Keycloak
keycloak_cache() { echo "$CACHE_DIR/keycloak-$KEYCLOAK_VERSION"; }
keycloak_lock() { echo "$CACHE_DIR/.lock-keycloak-$KEYCLOAK_VERSION"; }

ensure_keycloak_dist() {
  [[ -f "$(keycloak_cache)/.complete" ]] && return 0
  with_lock "$(keycloak_lock)" fetch_keycloak_locked
}

fetch_keycloak_locked() {
  local d t0
  d="$(keycloak_cache)"
  [[ -f "$d/.complete" ]] && return 0
  need mvn tar gzip
  t0=$(now)
  rm -rf "$d"
  mkdir -p "$d/dl" "$d/unpack"
  log "downloading keycloak-quarkus-dist $KEYCLOAK_VERSION (tar.gz) with Maven"
  (cd "$d/dl" && run_mvn "$DEP_PLUGIN:copy" \
    -Dartifact="org.keycloak:keycloak-quarkus-dist:$KEYCLOAK_VERSION:tar.gz" \
    -DoutputDirectory="$d/dl") ||
    die "mvn could not fetch Keycloak $KEYCLOAK_VERSION (is Maven Central reachable?)"
  tar -xzf "$d/dl/keycloak-quarkus-dist-$KEYCLOAK_VERSION.tar.gz" -C "$d/unpack"
  [[ -x "$d/unpack/keycloak-$KEYCLOAK_VERSION/bin/kc.sh" ]] || die "unexpected Keycloak archive layout"
  mv "$d/unpack/keycloak-$KEYCLOAK_VERSION" "$d/dist"
  rm -rf "$d/dl" "$d/unpack"
  date -u +%FT%TZ >"$d/.complete"
  log "Keycloak $KEYCLOAK_VERSION cached in $d/dist ($(($(now) - t0)) s)"
}

# ---------------------------------------------------------------- Kafka
new_cluster_id() {  # 16 random bytes, base64url without padding (Kafka Uuid format)
  local id
  while :; do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    [[ "$id" != -* ]] && break
  done
  echo "$id"
}

# write_kafka_props FILE NODE_ID PORT CTRL_PORT VOTERS DATA_DIR NUM_BROKERS
write_kafka_props() {
  local f="$1" id="$2" port="$3" cport="$4" voters="$5" data="$6" n="$7" rf isr
  if ((n >= 3)); then rf=3 isr=2; else rf=1 isr=1; fi
  cat >"$f" <<EOF
# Generated by faasd test/services/services.sh
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$data
num.partitions=3
default.replication.factor=$rf
min.insync.replicas=$isr
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
transaction.state.log.num.partitions=3
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
delete.topic.enable=true
unclean.leader.election.enable=false
# small machine: fewer threads; fast failure detection for the fault tests
num.network.threads=2
num.io.threads=4
background.threads=4
num.recovery.threads.per.data.dir=1
num.replica.fetchers=1
broker.heartbeat.interval.ms=1000
broker.session.timeout.ms=4000
replica.lag.time.max.ms=10000
EOF
}

kafka_storage_format() {  # java props cluster_id logfile
  local java="$1" props="$2" cid="$3" logf="$4"
  local -a cds=()
  [[ -f "$(kafka_cds_file "$java")" ]] && cds=("-XX:SharedArchiveFile=$(kafka_cds_file "$java")" -Xshare:auto)
  "$java" "${cds[@]}" -XX:TieredStopAtLevel=1 -XX:+UseSerialGC "$(kafka_log_opt)" \
    -cp "$(kafka_cache)/lib/*" kafka.tools.StorageTool format -t "$cid" -c "$props" >>"$logf" 2>&1 ||
    fail_with_log "$logf" "kafka-storage format failed for $props"
}

# Format a node's log dir like `kafka-storage format` (static quorum, no flags) would.
kafka_format() {  # java props cluster_id logfile node_id data_dir
  local java="$1" props="$2" cid="$3" logf="$4" id="$5" data="$6" tpl
  tpl="$(kafka_template)"
  if [[ -f "$tpl/.complete" ]]; then
    mkdir -p "$data"
    cp "$tpl/bootstrap.checkpoint" "$data/bootstrap.checkpoint"
    printf '#\n#%s\nnode.id=%s\ndirectory.id=%s\nversion=1\ncluster.id=%s\n' \
      "$(date)" "$id" "$(new_cluster_id)" "$cid" >"$data/meta.properties"
    echo "Formatted $data from $tpl (cluster.id=$cid, node.id=$id)" >>"$logf"
  else
    kafka_storage_format "$java" "$props" "$cid" "$logf"
  fi
}

kafka_jvm_args() {  # java -> prints nothing; sets KAFKA_ARGS array
  local java="$1" jsa
  # shellcheck disable=SC2206
  KAFKA_ARGS=($KAFKA_HEAP $KAFKA_JVM_OPTS)
  if [[ "$KAFKA_CDS" == 1 ]]; then
    jsa="$(kafka_cds_file "$java")"
    [[ -f "$jsa" ]] && KAFKA_ARGS+=("-XX:SharedArchiveFile=$jsa" -Xshare:auto)
  fi
  KAFKA_ARGS+=("$(kafka_log_opt)" -cp "$(kafka_cache)/lib/*" kafka.Kafka)
}

# Start node $2 of service dir $1 (props nodeN.properties, data dataN). Sets STARTED_PID.
kafka_start_node() {
  local dir="$1" n="$2" java
  java="$(cat "$dir/java")"
  kafka_jvm_args "$java"
  echo "=== $(date -u +%FT%TZ) starting node $n" >>"$dir/node$n.log"
  start_detached "$dir/node$n.log" "$java" "${KAFKA_ARGS[@]}" "$dir/node$n.properties"
  echo "$STARTED_PID" >"$dir/node$n.pid"
}

# A restart (kafka3-start, or up with dead nodes) must use the version and cache of the first
# start, whatever the caller's environment says (tests call $FAASD_TEST_KAFKA3_CTL bare).
kafka_load_runtime() {
  local -a rt
  [[ -f "$1/runtime" ]] || return 0
  mapfile -t rt <"$1/runtime"
  KAFKA_VERSION="${rt[0]}"
  CACHE_DIR="${rt[1]}"
}

kafka_nodes() { if [[ "$1" == kafka3 ]]; then echo 1 2 3; else echo 1; fi; }

kafka_bootstrap() {  # svc -> 127.0.0.1:p1,...
  local svc="$1" dir="$STATE_DIR/$1" n port out=""
  for n in $(kafka_nodes "$svc"); do
    port="$(sed -n 's/^listeners=PLAINTEXT:\/\/127.0.0.1:\([0-9]*\),.*/\1/p' "$dir/node$n.properties")"
    out+="${out:+,}127.0.0.1:$port"
  done
  echo "$out"
}

# Number of brokers that bootstrap $1 reports, or 0.
kafka_broker_count() {
  timeout 15 kcat -b "$1" -L -m 5 2>/dev/null |
    sed -n 's/^ \([0-9]*\) brokers:$/\1/p' | head -n 1 | grep . || echo 0
}

# Produce a unique token with acks=all, consume it back in a consumer group. Echoes the token.
kafka_roundtrip() {
  local b="$1" token out
  token="ready-$$-$RANDOM-$(date +%s%N)"
  printf '%s\n' "$token" |
    timeout 30 kcat -b "$b" -P -t "$READY_TOPIC" -X acks=all -X enable.idempotence=true \
      -X message.timeout.ms=20000 -m 10 2>/dev/null || return 1
  out="$(timeout 40 kcat -b "$b" -G "faasd-ready-$$-$RANDOM" -X auto.offset.reset=earliest \
    -X session.timeout.ms=6000 -e -q -m 10 "$READY_TOPIC" 2>/dev/null || true)"
  grep -qxF -- "$token" <<<"$out" || return 1
  echo "$token"
}

# 0 when every partition's ISR equals its replica set (metadata from bootstrap $1).
kafka_isr_complete() {
  local md
  md="$(timeout 15 kcat -b "$1" -L -m 5 2>/dev/null)" || return 1
  awk '
    /^    partition / {
      r = $0; sub(/.*replicas: /, "", r); sub(/,? isrs:.*/, "", r)
      i = $0; sub(/.*isrs: /, "", i); sub(/,? *$/, "", i)
      if (split(r, a, ",") != split(i, b, ",")) bad = 1
      seen = 1
    }
    END { exit (bad || !seen) }' <<<"$md"
}

# Wait until all nodes of $1 are up, see each other, and a round trip works.
kafka_wait_ready() {
  local svc="$1" dir="$STATE_DIR/$1" want n pid deadline b cnt
  want=$(kafka_nodes "$svc" | wc -w)
  b="$(kafka_bootstrap "$svc")"
  deadline=$(($(now) + KAFKA_TIMEOUT))
  while :; do
    for n in $(kafka_nodes "$svc"); do
      pid="$(cat "$dir/node$n.pid" 2>/dev/null || true)"
      proc_alive "$pid" "$dir/node$n.properties" ||
        fail_with_log "$dir/node$n.log" "$svc node $n (pid ${pid:-?}) died during start-up"
    done
    cnt="$(kafka_broker_count "$b")"
    [[ "$cnt" == "$want" ]] && break
    (($(now) < deadline)) || fail_with_log "$dir/node1.log" "$svc: $cnt of $want brokers after ${KAFKA_TIMEOUT}s"
    sleep 0.5
  done
  while ! kafka_roundtrip "$b" >/dev/null; do
    (($(now) < deadline)) ||
      fail_with_log "$dir/node1.log" "$svc: produce (acks=all) + group consume round trip failed for ${KAFKA_TIMEOUT}s"
    sleep 1
  done
}

kafka_running_nodes() {  # svc -> node numbers with a live process
  local dir="$STATE_DIR/$1" n pid
  for n in $(kafka_nodes "$1"); do
    pid="$(cat "$dir/node$n.pid" 2>/dev/null || true)"
    proc_alive "$pid" "$dir/node$n.properties" && echo "$n"
  done
  return 0
}

kafka_write_env() {
  local svc="$1" b
  b="$(kafka_bootstrap "$svc")"
  if [[ "$svc" == kafka ]]; then
    {
      env_line FAASD_TEST_KAFKA "$b"
      env_line FAASD_TEST_KAFKA_VERSION "$KAFKA_VERSION"
    } >"$STATE_DIR/kafka/env"
  else
    {
      env_line FAASD_TEST_KAFKA3 "$b"
      env_line FAASD_TEST_KAFKA3_CTL "$SELF"
      env_line FAASD_TEST_KAFKA_VERSION "$KAFKA_VERSION"
    } >"$STATE_DIR/kafka3/env"
  fi
}

kafka_up() {  # svc
  local svc="$1" dir="$STATE_DIR/$1" java nodes n running cid voters t0 attempt
  t0=$(now)
  running="$(kafka_running_nodes "$svc" | xargs)"
  nodes="$(kafka_nodes "$svc" | xargs)"
  if [[ -n "$running" && -f "$dir/java" ]]; then
    kafka_load_runtime "$dir"
    if [[ "$running" != "$nodes" ]]; then
      for n in $nodes; do
        [[ " $running " == *" $n "* ]] || { log "$svc: restarting node $n"; kafka_start_node "$dir" "$n"; }
      done
    fi
    kafka_wait_ready "$svc"
    if [[ "$running" != "$nodes" ]]; then
      # like kafka3-start: back means every partition's ISR is complete again
      local dl=$(($(now) + KAFKA_TIMEOUT))
      until kafka_isr_complete "$(kafka_bootstrap "$svc")"; do
        (($(now) < dl)) || fail_with_log "$dir/node1.log" "$svc: ISRs incomplete after ${KAFKA_TIMEOUT}s"
        sleep 0.5
      done
    fi
    kafka_write_env "$svc"
    log "$svc already up: $(kafka_bootstrap "$svc") (re-verified)"
    return 0
  fi
  ensure_kafka_lib
  java="$(kafka_java)"
  ensure_kafka_prepared "$java"
  local live
  live="$(svc_live_groups "$svc" | xargs)"
  if [[ -n "$live" ]]; then
    log "$svc: stopping leftover processes $live"
    # shellcheck disable=SC2086
    stop_groups $live
  fi
  for attempt in 1 2 3; do
    svc_cleanup "$svc"
    mkdir -p "$dir"
    echo "$java" >"$dir/java"
    printf '%s\n' "$KAFKA_VERSION" "$CACHE_DIR" >"$dir/runtime"
    claim_ports "$svc" $((2 * $(wc -w <<<"$nodes")))
    voters=""
    for n in $nodes; do voters+="${voters:+,}$n@127.0.0.1:${PORTS[$((2 * n - 1))]}"; done
    cid="$(new_cluster_id)"
    for n in $nodes; do
      : >"$dir/node$n.log"
      write_kafka_props "$dir/node$n.properties" "$n" "${PORTS[$((2 * n - 2))]}" "${PORTS[$((2 * n - 1))]}" \
        "$voters" "$dir/data$n" "$(wc -w <<<"$nodes")"
    done
    local -a fpids=()
    for n in $nodes; do
      kafka_format "$java" "$dir/node$n.properties" "$cid" "$dir/node$n.log" "$n" "$dir/data$n" &
      fpids+=($!)
    done
    for n in "${fpids[@]}"; do wait "$n" || exit 1; done
    for n in $nodes; do kafka_start_node "$dir" "$n"; done
    # Retry with new ports if one was taken between the check and the bind.
    local rc=0
    (kafka_wait_ready "$svc") &
    wait $! || rc=$?
    ((rc == 0)) && break
    if grep -qs "Address already in use" "$dir"/node*.log && ((attempt < 3)); then
      log "$svc: a port was taken meanwhile, retrying with new ports"
      # shellcheck disable=SC2046
      stop_groups $(cat "$dir"/node*.pid 2>/dev/null)
      continue
    fi
    exit 1
  done
  kafka_write_env "$svc"
  log "$svc up: $(kafka_bootstrap "$svc") (Kafka $KAFKA_VERSION, $(($(now) - t0)) s)"
}

kafka3_node_arg() {
  [[ "${1:-}" =~ ^[123]$ ]] || die "node number must be 1, 2 or 3 (got '${1:-}')"
}

kafka3_kill() {
  local n="$1" dir="$STATE_DIR/kafka3" pid
  kafka3_node_arg "$n"
  [[ -f "$dir/node$n.properties" ]] || die "kafka3 is not up"
  pid="$(cat "$dir/node$n.pid" 2>/dev/null || true)"
  if ! proc_alive "$pid" "$dir/node$n.properties"; then
    log "kafka3 node $n is not running"
    return 0
  fi
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid"
  local i
  for i in $(seq 1 100); do
    [[ -z "$(group_members "$pid")" ]] && break
    sleep 0.1
  done
  echo "=== $(date -u +%FT%TZ) node $n killed (SIGKILL)" >>"$dir/node$n.log"
  log "kafka3 node $n (pid $pid) killed with SIGKILL"
}

kafka3_start() {
  local n="$1" dir="$STATE_DIR/kafka3" port pid deadline t0
  kafka3_node_arg "$n"
  [[ -f "$dir/node$n.properties" && -f "$dir/java" ]] || die "kafka3 is not up (no state in $dir)"
  kafka_load_runtime "$dir"
  t0=$(now)
  pid="$(cat "$dir/node$n.pid" 2>/dev/null || true)"
  if proc_alive "$pid" "$dir/node$n.properties"; then
    log "kafka3 node $n already running (pid $pid)"
  else
    kafka_start_node "$dir" "$n"
    pid=$STARTED_PID
  fi
  port="$(sed -n 's/^listeners=PLAINTEXT:\/\/127.0.0.1:\([0-9]*\),.*/\1/p' "$dir/node$n.properties")"
  deadline=$(($(now) + KAFKA_TIMEOUT))
  # back = answers metadata itself, sees 3 brokers, and every partition's ISR is complete again
  until [[ "$(kafka_broker_count "127.0.0.1:$port")" == 3 ]] && kafka_isr_complete "127.0.0.1:$port"; do
    proc_alive "$pid" "$dir/node$n.properties" || fail_with_log "$dir/node$n.log" "kafka3 node $n died while restarting"
    (($(now) < deadline)) || fail_with_log "$dir/node$n.log" "kafka3 node $n not back (ISR incomplete) after ${KAFKA_TIMEOUT}s"
    sleep 0.5
  done
  log "kafka3 node $n back on 127.0.0.1:$port, all ISRs complete ($(($(now) - t0)) s)"
}

# ---------------------------------------------------------------- Keycloak
keycloak_port() { cat "$STATE_DIR/keycloak/ports"; }

keycloak_ready() {  # port -> 0 if discovery answers 200 with the expected issuer
  local p="$1" body
  body="$(curl -fsS --max-time 5 "http://127.0.0.1:$p/realms/faas/.well-known/openid-configuration" 2>/dev/null)" || return 1
  [[ "$body" == *"\"issuer\":\"http://127.0.0.1:$p/realms/faas\""* ]]
}

keycloak_write_env() {
  local p="$1" base="http://127.0.0.1:$1"
  {
    env_line FAASD_TEST_KEYCLOAK "$base"
    env_line FAASD_TEST_OIDC_ISSUER "$base/realms/faas"
    env_line FAASD_TEST_OIDC_TOKEN_URL "$base/realms/faas/protocol/openid-connect/token"
    env_line FAASD_TEST_OIDC_JWKS_URL "$base/realms/faas/protocol/openid-connect/certs"
    env_line FAASD_TEST_OIDC_AUDIENCE "faas-frontend"
    env_line FAASD_TEST_KEYCLOAK_ADMIN admin
    env_line FAASD_TEST_KEYCLOAK_ADMIN_PASSWORD admin
    env_line FAASD_TEST_KEYCLOAK_FRONTEND_SECRET "${FAASD_FRONTEND_CLIENT_SECRET:-faas-frontend-dev-secret}"
    env_line FAASD_TEST_KEYCLOAK_VERSION "$KEYCLOAK_VERSION"
  } >"$STATE_DIR/keycloak/env"
}

# A private Keycloak home per state dir: kc.sh, conf, data and the (re-)augmented lib/quarkus
# are its own; the big jar folders are symlinks into the cached dist.
keycloak_make_home() {
  local dist="$1" home="$2" cache
  cache="$(keycloak_cache)"
  rm -rf "$home"
  mkdir -p "$home/bin" "$home/lib" "$home/data/import"
  cp "$dist/bin/kc.sh" "$home/bin/kc.sh"
  cp -R "$dist/conf" "$home/conf"
  ln -s "$dist/themes" "$home/themes"
  ln -s "$dist/providers" "$home/providers"
  ln -s "$dist/lib/app" "$home/lib/app"
  ln -s "$dist/lib/lib" "$home/lib/lib"
  # a real file: Quarkus writes its augmentation next to the real path of quarkus-run.jar
  cp "$dist/lib/quarkus-run.jar" "$home/lib/quarkus-run.jar"
  if [[ -f "$cache/augmented-dev/.complete" ]]; then
    cp -R "$cache/augmented-dev" "$home/lib/quarkus"
    rm -f "$home/lib/quarkus/.complete"
  else
    cp -R "$dist/lib/quarkus" "$home/lib/quarkus"
  fi
  cp "$REALM_FILE" "$home/data/import/faas-realm.json"
}

# Keep the dev-mode augmentation of a successful start for later homes (saves ~30 s a start).
keycloak_save_augmentation() {
  local home="$1" cache tmp
  cache="$(keycloak_cache)"
  [[ -f "$cache/augmented-dev/.complete" ]] && return 0
  tmp="$(mktemp -d "$cache/.augmented.XXXXXX")"
  chmod 0755 "$tmp"
  cp -R "$home/lib/quarkus/." "$tmp/"
  date -u +%FT%TZ >"$tmp/.complete"
  rm -rf "$cache/augmented-dev"
  mv -T "$tmp" "$cache/augmented-dev" 2>/dev/null || rm -rf "$tmp"
}

keycloak_up() {
  local dir="$STATE_DIR/keycloak" pid port jhome dist home t0 deadline attempt rc
  t0=$(now)
  pid="$(cat "$dir/pid" 2>/dev/null || true)"
  if proc_alive "$pid" "$dir/home/"; then
    port="$(keycloak_port)"
    deadline=$(($(now) + KEYCLOAK_TIMEOUT))
    until keycloak_ready "$port"; do
      proc_alive "$pid" "$dir/home/" || fail_with_log "$dir/keycloak.log" "keycloak died"
      (($(now) < deadline)) || fail_with_log "$dir/keycloak.log" "keycloak not ready after ${KEYCLOAK_TIMEOUT}s"
      sleep 1
    done
    keycloak_write_env "$port"
    log "keycloak already up: http://127.0.0.1:$port (re-verified)"
    return 0
  fi
  [[ -f "$REALM_FILE" ]] || die "realm file $REALM_FILE not found"
  need curl
  jhome="$(keycloak_java_home)"
  ensure_keycloak_dist
  dist="$(keycloak_cache)/dist"
  home="$dir/home"
  for attempt in 1 2 3; do
    svc_cleanup keycloak
    mkdir -p "$dir"
    keycloak_make_home "$dist" "$home"
    claim_ports keycloak 1
    port=${PORTS[0]}
    : >"$dir/keycloak.log"
    log "keycloak: starting on 127.0.0.1:$port (JAVA_HOME=$jhome)"
    start_detached "$dir/keycloak.log" env \
      JAVA_HOME="$jhome" \
      KC_BOOTSTRAP_ADMIN_USERNAME=admin KC_BOOTSTRAP_ADMIN_PASSWORD=admin \
      JAVA_OPTS_KC_HEAP="$KEYCLOAK_HEAP" JAVA_OPTS_APPEND="$KEYCLOAK_JVM_APPEND" \
      "$home/bin/kc.sh" start-dev --db=dev-mem \
      --http-host=127.0.0.1 --http-port="$port" --hostname="http://127.0.0.1:$port" \
      --import-realm
    pid=$STARTED_PID
    echo "$pid" >"$dir/pid"
    deadline=$(($(now) + KEYCLOAK_TIMEOUT))
    rc=0
    while ! keycloak_ready "$port"; do
      if ! proc_alive "$pid" "$dir/home/"; then rc=1; break; fi
      if (($(now) >= deadline)); then rc=2; break; fi
      sleep 1
    done
    ((rc == 0)) && break
    if ((rc == 1)) && grep -qs "Address already in use" "$dir/keycloak.log" && ((attempt < 3)); then
      log "keycloak: port $port was taken meanwhile, retrying"
      continue
    fi
    if ((rc == 1)); then fail_with_log "$dir/keycloak.log" "keycloak (pid $pid) died during start-up"; fi
    fail_with_log "$dir/keycloak.log" "keycloak not ready after ${KEYCLOAK_TIMEOUT}s"
  done
  if grep -q "Updating the configuration" "$dir/keycloak.log"; then
    with_lock "$(keycloak_lock)" keycloak_save_augmentation "$home"
  fi
  keycloak_write_env "$port"
  log "keycloak up: http://127.0.0.1:$port/realms/faas (Keycloak $KEYCLOAK_VERSION, $(($(now) - t0)) s)"
}

# ---------------------------------------------------------------- generic service ops
svc_pids() {  # recorded pids of a service (may be dead)
  local dir="$STATE_DIR/$1"
  case "$1" in
    keycloak) cat "$dir/pid" 2>/dev/null || true ;;
    *) cat "$dir"/node*.pid 2>/dev/null || true ;;
  esac
}

svc_live_groups() {  # live process groups/pids belonging to a service, incl. orphans
  local svc="$1" dir="$STATE_DIR/$1" p
  {
    for p in $(svc_pids "$svc"); do
      if group_alive "$p"; then echo "$p"; fi
    done
    java_procs_with "$dir/"
  } | sort -u
}

# Remove everything of a stopped service except its logs.
svc_cleanup() {
  local dir="$STATE_DIR/$1"
  [[ -d "$dir" ]] || return 0
  rm -rf "${dir:?}"/data[0-9]* "${dir:?}/home" "$dir"/*.pid "$dir/pid" "$dir/ports" "$dir/env" \
    "$dir"/node*.properties "$dir/java" "$dir/runtime"
}

svc_up() {  # run the start in a subshell so a failure can be cleaned up here
  local svc="$1" rc=0
  (
    case "$svc" in
      kafka | kafka3) kafka_up "$svc" ;;
      keycloak) keycloak_up ;;
    esac
  ) &
  wait $! || rc=$?
  if ((rc != 0)); then
    log "$svc: start failed, cleaning up"
    svc_down "$svc" || true
    return "$rc"
  fi
}

svc_down() {
  local -a groups=()
  local s
  for s in "$@"; do
    # shellcheck disable=SC2207
    groups+=($(svc_live_groups "$s"))
  done
  if ((${#groups[@]})); then
    log "stopping $* (process groups: ${groups[*]})"
    stop_groups "${groups[@]}"
  fi
  for s in "$@"; do svc_cleanup "$s"; done
  write_env
  for s in "$@"; do
    local left
    left="$(svc_live_groups "$s" | xargs)"
    [[ -z "$left" ]] || die "$s: processes still alive after KILL: $left"
  done
  log "down: $*"
}

expand_services() {  # args -> service names (all if empty or 'all')
  local a
  local -a out=()
  [[ $# -gt 0 ]] || set -- all
  for a in "$@"; do
    case "$a" in
      all) out+=("${SERVICES[@]}") ;;
      kafka | kafka3 | keycloak) out+=("$a") ;;
      *) die "unknown service '$a' (kafka, kafka3, keycloak, all)" ;;
    esac
  done
  printf '%s\n' "${out[@]}" | awk '!seen[$0]++'
}

cmd_up() {
  local -a svcs pids=()
  local s i rc=0 t0
  expand_services "$@" >/dev/null  # validates (dies here, not in the process substitution)
  mapfile -t svcs < <(expand_services "$@")
  need kcat timeout setsid flock
  t0=$(now)
  if ((${#svcs[@]} == 1)); then
    with_lock "$STATE_DIR/.${svcs[0]}.lock" svc_up "${svcs[0]}"
    write_env
    return 0
  fi
  # Several: all in parallel, Keycloak first because it is the slowest. Each fills its own
  # cache entry (per-artifact locks; Maven runs one at a time), so Keycloak's download and
  # start overlap Kafka's download and preparation on a first run.
  for s in keycloak kafka kafka3; do
    [[ " ${svcs[*]} " == *" $s "* ]] || continue
    with_lock "$STATE_DIR/.$s.lock" svc_up "$s" &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || rc=1; done
  write_env
  ((rc == 0)) || die "up ${svcs[*]}: at least one service failed (see above)"
  log "up ${svcs[*]}: all ready in $(($(now) - t0)) s; env: $ENV_FILE"
}

cmd_down() {
  local -a svcs
  expand_services "$@" >/dev/null  # validates (dies here, not in the process substitution)
  mapfile -t svcs < <(expand_services "$@")
  svc_down "${svcs[@]}"
  if [[ " ${svcs[*]} " == *" kafka "* && " ${svcs[*]} " == *" kafka3 "* && " ${svcs[*]} " == *" keycloak "* ]]; then
    local stray
    stray="$(java_procs_with "$STATE_DIR/" | xargs)"
    if [[ -n "$stray" ]]; then
      log "killing stray JVMs of $STATE_DIR: $stray"
      # shellcheck disable=SC2086
      kill -KILL $stray 2>/dev/null || true
    fi
  fi
}

cmd_status() {
  local s n pid dir state any=0
  for s in "${SERVICES[@]}"; do
    dir="$STATE_DIR/$s"
    case "$s" in
      kafka | kafka3)
        if [[ ! -f "$dir/node1.properties" ]]; then echo "$s: down"; continue; fi
        state=""
        for n in $(kafka_nodes "$s"); do
          pid="$(cat "$dir/node$n.pid" 2>/dev/null || true)"
          if proc_alive "$pid" "$dir/node$n.properties"; then state+=" node$n=up(pid $pid)"; any=1
          else state+=" node$n=DOWN"; fi
        done
        echo "$s: $(kafka_bootstrap "$s")$state"
        ;;
      keycloak)
        pid="$(cat "$dir/pid" 2>/dev/null || true)"
        if proc_alive "$pid" "$dir/home/"; then
          any=1
          if keycloak_ready "$(keycloak_port)"; then state=ready; else state=starting; fi
          echo "keycloak: http://127.0.0.1:$(keycloak_port) $state (pid $pid)"
        else
          echo "keycloak: down"
        fi
        ;;
    esac
  done
  echo "state: $STATE_DIR"
  echo "cache: $CACHE_DIR"
  [[ -f "$ENV_FILE" ]] && echo "env:   $ENV_FILE"
  ((any)) || true
}

cmd_env() {
  [[ -f "$ENV_FILE" ]] || die "no services are up ($ENV_FILE does not exist)"
  cat "$ENV_FILE"
}

cmd_fetch() {
  local a java
  [[ $# -gt 0 ]] || set -- all
  for a in "$@"; do
    case "$a" in
      kafka) ensure_kafka_lib; java="$(kafka_java)"; ensure_kafka_prepared "$java" ;;
      keycloak) ensure_keycloak_dist ;;
      all) ensure_kafka_lib; java="$(kafka_java)"; ensure_kafka_prepared "$java"; ensure_keycloak_dist ;;
      *) die "fetch: unknown '$a'" ;;
    esac
  done
}

main() {
  [[ $# -ge 1 ]] || usage
  local cmd="$1"
  shift
  abs_dirs
  case "$cmd" in
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    status) cmd_status ;;
    env) cmd_env ;;
    fetch) cmd_fetch "$@" ;;
    kafka3-kill) [[ $# -eq 1 ]] || usage; with_lock "$STATE_DIR/.kafka3.lock" kafka3_kill "$1" ;;
    kafka3-start) [[ $# -eq 1 ]] || usage; need kcat timeout setsid flock; with_lock "$STATE_DIR/.kafka3.lock" kafka3_start "$1" ;;
    -h | --help | help) usage ;;
    *) usage ;;
  esac
}

main "$@"
