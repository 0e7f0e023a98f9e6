#!/usr/bin/env bash
# Local infrastructure without a Docker engine: Apache Kafka (KRaft, from Maven Central jars)
# and PostgreSQL (Debian packages), as plain processes whose state and logs live under var/.
#
#   infra.sh up | down | status      (all idempotent)
#
# Environment: CITYDATA_VAR (default <repo>/var), KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (9093),
# PG_PORT (5432), CITYDATA_DB_PASSWORD (citydata), KAFKA_HEAP (1g).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
var="${CITYDATA_VAR:-$repo/var}"
kafka_port="${KAFKA_PORT:-9092}"
controller_port="${KAFKA_CONTROLLER_PORT:-9093}"
pg_port="${PG_PORT:-5432}"
db_password="${CITYDATA_DB_PASSWORD:-citydata}"
databases=(citydata_registry citydata_dossier citydata_signing citydata_gateway citydata_tasks)

kafka_dir="$var/kafka"
log_dir="$var/log"

say() { echo "infra: $*"; }
die() { echo "infra: ERROR: $*" >&2; exit 1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

require() {
  command -v "$1" >/dev/null 2>&1 || die "$1 not found: $2 (or run deploy/local/prereqs.sh as root)"
}

# ---------------------------------------------------------------- Kafka

kafka_classpath() {
  local cp_file="$kafka_dir/classpath"
  if [ ! -s "$cp_file" ] || [ "$here/kafka/pom.xml" -nt "$cp_file" ]; then
    require mvn "install Maven (Debian package maven)"
    say "resolving the Kafka broker from Maven Central into ~/.m2 (once)" >&2
    mvn -q -B -f "$here/kafka/pom.xml" dependency:build-classpath -Dmdep.outputFile="$cp_file" \
      >"$log_dir/kafka-maven.log" 2>&1 ||
      die "Maven could not resolve org.apache.kafka:kafka_2.13; see $log_dir/kafka-maven.log"
  fi
  cat "$cp_file"
}

java_17_or_newer() {
  require java "install Java 17 (Debian package openjdk-17-jre-headless)"
  local version
  version="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)"
  [ "${version:-0}" -ge 17 ] || die "Kafka 4 needs Java 17 or newer, found Java ${version:-unknown}"
}

write_kafka_config() {
  cat >"$kafka_dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$kafka_port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$kafka_port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$kafka_dir/data
num.partitions=3
auto.create.topics.enable=true
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=-1
EOF
  cat >"$kafka_dir/log4j2.properties" <<'EOF'
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
EOF
}

kafka_up() {
  mkdir -p "$kafka_dir" "$log_dir"
  if pid_alive "$kafka_dir/pid"; then say "Kafka already running (pid $(cat "$kafka_dir/pid")) on 127.0.0.1:$kafka_port"; return; fi
  port_open "$kafka_port" && die "port $kafka_port is busy with another process; set KAFKA_PORT or stop it"
  port_open "$controller_port" && die "port $controller_port is busy; set KAFKA_CONTROLLER_PORT or stop it"
  java_17_or_newer
  local cp
  cp="$(kafka_classpath)"
  write_kafka_config
  if [ ! -f "$kafka_dir/data/meta.properties" ]; then
    say "formatting Kafka storage (KRaft) in $kafka_dir/data"
    local cluster_id
    cluster_id="$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)"
    java -Dlog4j2.configurationFile="$kafka_dir/log4j2.properties" -cp "$cp" kafka.tools.StorageTool format \
      -t "$cluster_id" -c "$kafka_dir/server.properties" >>"$log_dir/kafka.log" 2>&1 ||
      die "Kafka storage format failed; see $log_dir/kafka.log"
  fi
  say "starting Kafka on 127.0.0.1:$kafka_port"
  nohup java -Xms256m -Xmx"${KAFKA_HEAP:-1g}" -XX:+UseG1GC \
    -Dlog4j2.configurationFile="$kafka_dir/log4j2.properties" \
    -cp "$cp" kafka.Kafka "$kafka_dir/server.properties" >>"$log_dir/kafka.log" 2>&1 &
  echo $! >"$kafka_dir/pid"
  wait_for "Kafka" 90 kafka_ready "$kafka_dir/pid" "$log_dir/kafka.log"
}

kafka_ready() {
  port_open "$kafka_port" && grep -q "Kafka Server started" "$log_dir/kafka.log"
}

kafka_down() { stop_pidfile "Kafka" "$kafka_dir/pid" 60; }

# ---------------------------------------------------------------- PostgreSQL

pg_bin() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)"
  [ -n "$dir" ] && [ -x "$dir/pg_ctl" ] || die "PostgreSQL server not found: install the Debian package postgresql"
  echo "$dir"
}

# PostgreSQL refuses to run as root: as root we run it as the 'postgres' user, with its data in a
# folder that user can reach (a fresh clone may sit under a private temporary folder).
pg_home() {
  if [ "$(id -u)" -eq 0 ]; then
    local key
    key="$(echo -n "$var" | sha1sum | cut -c1-12)"
    echo "/var/lib/citydata/postgres-$key"
  else
    echo "$var/postgres"
  fi
}

as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

postgres_up() {
  mkdir -p "$log_dir"
  local bin home
  bin="$(pg_bin)"
  home="$(pg_home)"
  if [ "$(id -u)" -eq 0 ]; then
    mkdir -p "$home"
    chown postgres:postgres "$home"
    [ "$home" = "$var/postgres" ] || ln -sfn "$home" "$var/postgres"
  fi
  if [ ! -f "$home/data/PG_VERSION" ]; then
    say "initialising PostgreSQL in $home/data"
    as_pg "$bin/initdb" -D "$home/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
      -E UTF8 --locale=C.UTF-8 >"$log_dir/postgres-initdb.log" 2>&1 ||
      die "initdb failed; see $log_dir/postgres-initdb.log"
  fi
  if as_pg "$bin/pg_ctl" -D "$home/data" status >/dev/null 2>&1; then
    say "PostgreSQL already running on 127.0.0.1:$pg_port"
  else
    port_open "$pg_port" && die "port $pg_port is busy with another process; set PG_PORT or stop it"
    say "starting PostgreSQL on 127.0.0.1:$pg_port"
    as_pg "$bin/pg_ctl" -D "$home/data" -l "$home/postgres.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $home -c max_connections=300 -c fsync=on" start \
      >/dev/null || die "PostgreSQL did not start; see $home/postgres.log"
    ln -sfn "$home/postgres.log" "$log_dir/postgres.log"
  fi
  create_databases "$bin" "$home"
}

create_databases() {
  local bin="$1" home="$2"
  local psql=("$bin/psql" -h "$home" -p "$pg_port" -U postgres -v ON_ERROR_STOP=1 -qAt)
  as_pg "${psql[@]}" -d postgres -c "DO \$\$ BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'citydata') THEN
        CREATE ROLE citydata LOGIN CREATEDB PASSWORD '$db_password';
      END IF; END \$\$;" >/dev/null
  # DROP DATABASE ... WITH (FORCE) of a scratch database must also end an autovacuum worker on it,
  # which belongs to no role: only pg_signal_backend lets citydata do that (tools/scratch.py).
  as_pg "${psql[@]}" -d postgres -c "GRANT pg_signal_backend TO citydata" >/dev/null
  local db
  for db in "${databases[@]}"; do
    if [ -z "$(as_pg "${psql[@]}" -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$db'")" ]; then
      as_pg "${psql[@]}" -d postgres -c "CREATE DATABASE $db OWNER citydata" >/dev/null
      say "created database $db"
    fi
    as_pg "${psql[@]}" -d "$db" -c "CREATE EXTENSION IF NOT EXISTS pg_trgm" >/dev/null 2>&1
  done
  # Test databases are created from template1, so give it the extensions the services use.
  as_pg "${psql[@]}" -d template1 -c "CREATE EXTENSION IF NOT EXISTS pg_trgm" >/dev/null 2>&1
}

postgres_down() {
  local bin home
  bin="$(pg_bin)"
  home="$(pg_home)"
  if [ -f "$home/data/PG_VERSION" ] && as_pg "$bin/pg_ctl" -D "$home/data" status >/dev/null 2>&1; then
    say "stopping PostgreSQL"
    as_pg "$bin/pg_ctl" -D "$home/data" -m fast -w -t 60 stop >/dev/null
  else
    say "PostgreSQL not running"
  fi
}

postgres_status() {
  local bin home
  bin="$(pg_bin)"
  home="$(pg_home)"
  if [ -f "$home/data/PG_VERSION" ] && as_pg "$bin/pg_ctl" -D "$home/data" status >/dev/null 2>&1; then
    echo "postgres  running   127.0.0.1:$pg_port  data $home/data"
  else
    echo "postgres  stopped"
  fi
}

# ---------------------------------------------------------------- helpers

wait_for() {
  local name="$1" seconds="$2" probe="$3" pidfile="$4" log="$5"
  local waited=0
  until "$probe"; do
    if ! pid_alive "$pidfile"; then
      tail -n 20 "$log" >&2 || true
      die "$name exited during start-up; see $log"
    fi
    [ "$waited" -ge "$seconds" ] && die "$name did not answer within ${seconds}s; see $log"
    sleep 1
    waited=$((waited + 1))
  done
  say "$name is up"
}

stop_pidfile() {
  local name="$1" pidfile="$2" seconds="$3"
  if ! pid_alive "$pidfile"; then say "$name not running"; rm -f "$pidfile"; return; fi
  local pid
  pid="$(cat "$pidfile")"
  say "stopping $name (pid $pid)"
  kill "$pid"
  local waited=0
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$waited" -ge "$seconds" ]; then say "$name did not stop in ${seconds}s: killing"; kill -9 "$pid"; fi
    sleep 1
    waited=$((waited + 1))
  done
  rm -f "$pidfile"
}

kafka_status() {
  if pid_alive "$kafka_dir/pid"; then
    echo "kafka     running   127.0.0.1:$kafka_port  pid $(cat "$kafka_dir/pid")"
  else
    echo "kafka     stopped"
  fi
}

case "${1:-}" in
  up) postgres_up; kafka_up ;;
  down) kafka_down; postgres_down ;;
  status) postgres_status; kafka_status ;;
  kafka-up) kafka_up ;;
  kafka-down) kafka_down ;;
  postgres-up) postgres_up ;;
  postgres-down) postgres_down ;;
  *) echo "usage: $0 up|down|status|kafka-up|kafka-down|postgres-up|postgres-down" >&2; exit 2 ;;
esac
