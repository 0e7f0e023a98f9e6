# Apache Kafka 4 (KRaft) from the Maven Central jars the native path uses, on Debian's Java 17.
# Reads the same KAFKA_* variables as the apache/kafka image (KAFKA_NODE_ID → node.id, ...).
ARG BASE_IMAGE=citydata/debian:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless >/dev/null \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /var/lib/kafka/data
COPY var/docker/kafka/libs /opt/kafka/libs
COPY deploy/docker/kafka-entrypoint.sh deploy/docker/kafka-ready.sh /opt/kafka/bin/
EXPOSE 9092
ENTRYPOINT ["/opt/kafka/bin/kafka-entrypoint.sh"]
