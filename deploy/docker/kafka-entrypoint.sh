#!/bin/bash
# KAFKA_FOO_BAR=x becomes foo.bar=x in server.properties, as in the apache/kafka image; storage is
# formatted (KRaft) on the first start.
set -euo pipefail
config=/opt/kafka/server.properties
: >"$config"
while IFS='=' read -r name value; do
  case "$name" in KAFKA_HEAP_OPTS | KAFKA_CLUSTER_ID) continue ;; esac
  key="$(echo "${name#KAFKA_}" | tr '[:upper:]' '[:lower:]' | tr '_' '.')"
  echo "$key=$value" >>"$config"
done < <(env | grep '^KAFKA_' | sort)
grep -q '^log.dirs=' "$config" || echo "log.dirs=/var/lib/kafka/data" >>"$config"
cp=/opt/kafka/libs/*
if [ ! -f /var/lib/kafka/data/meta.properties ]; then
  cluster_id="${KAFKA_CLUSTER_ID:-$(java -cp "$cp" kafka.tools.StorageTool random-uuid | tail -n1)}"
  java -cp "$cp" kafka.tools.StorageTool format -t "$cluster_id" -c "$config" >/dev/null
fi
exec java ${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m} -XX:+UseG1GC -cp "$cp" kafka.Kafka "$config"
