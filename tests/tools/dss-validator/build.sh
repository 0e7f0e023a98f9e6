#!/usr/bin/env bash
# Build target/dss-validator.jar (+ target/lib/) unless it is newer than pom.xml and every source.
# Maven keeps what it downloads in ~/.m2, so only a fresh machine pays for the download (~2 min).
set -euo pipefail
cd "$(dirname "$0")"
jar=target/dss-validator.jar
if [ -f "$jar" ] && [ -z "$(find pom.xml src -newer "$jar" -print -quit)" ]; then
  exit 0
fi
command -v mvn >/dev/null || { echo "dss-validator: Maven (mvn) and a Java 17 JDK are needed" >&2; exit 1; }
echo "dss-validator: building $jar with Maven" >&2
rm -rf target/lib  # no stale dependency jars after a version change
mvn -q -B package >&2
touch "$jar"
