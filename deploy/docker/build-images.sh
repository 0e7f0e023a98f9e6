#!/usr/bin/env bash
# Builds CityData's container images on a machine that reaches Debian's packages, PyPI and Maven
# Central but no image registry (and whose TLS is re-signed by a local CA the containers do not
# trust): a Debian bookworm root file system from debootstrap, imported as the base image, then
# PostgreSQL, Kafka and the services on it. Python wheels and Kafka's jars are fetched on the host
# and copied in, so nothing inside a build talks TLS.
#
# Cached: the base image and the staged wheels/jars are reused while their inputs are unchanged;
# docker's layer cache does the rest. Prints each image's size at the end.
#   deploy/docker/build-images.sh            build what is missing or stale
#   deploy/docker/build-images.sh --rebuild  start again from debootstrap
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
stage="$repo/var/docker"          # inside the build context (see .dockerignore)
cache="${CITYDATA_DOCKER_CACHE:-$HOME/.cache/citydata/docker}"
base_image="citydata/debian:bookworm"
python="${PYTHON:-$repo/.venv/bin/python}"

say() { echo "images: $*"; }
die() { echo "images: ERROR: $*" >&2; exit 1; }

command -v docker >/dev/null || die "no docker client: deploy/docker/dockerd.sh start installs and starts one (as root)"
docker info >/dev/null 2>&1 || die "no Docker engine answers at ${DOCKER_HOST:-the default socket}: deploy/docker/dockerd.sh start"

if [ "${1:-}" = "--rebuild" ]; then
  docker image rm -f "$base_image" citydata/postgres:local citydata/kafka:local citydata/service:local >/dev/null 2>&1 || true
  rm -rf "$stage"
fi

build_base() {
  if docker image inspect "$base_image" >/dev/null 2>&1; then say "$base_image cached"; return; fi
  command -v debootstrap >/dev/null || die "debootstrap is missing (Debian package debootstrap)"
  [ "$(id -u)" -eq 0 ] || die "debootstrap needs root"
  local rootfs="$cache/rootfs-bookworm"
  rm -rf "$rootfs" && mkdir -p "$rootfs"
  say "debootstrap bookworm (minbase) into $rootfs (a few minutes, once)"
  debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" http://deb.debian.org/debian \
    >"$cache/debootstrap.log" 2>&1 || die "debootstrap failed; see $cache/debootstrap.log"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | docker import -c 'CMD ["/bin/bash"]' - "$base_image" >/dev/null
  rm -rf "$rootfs"
  say "$base_image imported"
}

stage_wheels() {
  local stamp="$stage/wheels/.pyproject.sha1" sum
  sum="$(sha1sum "$repo/pyproject.toml" | cut -c1-40)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ]; then say "wheels cached"; return; fi
  rm -rf "$stage/wheels" && mkdir -p "$stage/wheels"
  "$python" - "$repo/pyproject.toml" >"$stage/requirements.txt" <<'PY'
import sys, tomllib
print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]))
PY
  say "building wheels of the runtime dependencies on the host"
  "$python" -m pip wheel -q --wheel-dir "$stage/wheels" -r "$stage/requirements.txt" || die "pip wheel failed"
  echo "$sum" >"$stamp"
}

stage_kafka() {
  local pom="$repo/deploy/local/kafka/pom.xml" stamp="$stage/kafka/.pom.sha1" sum
  sum="$(sha1sum "$pom" | cut -c1-40)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ]; then say "Kafka jars cached"; return; fi
  rm -rf "$stage/kafka" && mkdir -p "$stage/kafka/libs"
  say "copying the Kafka broker's jars from Maven Central (the native path's pom)"
  mvn -q -B -f "$pom" dependency:copy-dependencies -DoutputDirectory="$stage/kafka/libs" -DincludeScope=runtime \
    >"$stage/kafka-maven.log" 2>&1 || die "Maven failed; see $stage/kafka-maven.log"
  echo "$sum" >"$stamp"
}

build() {  # name dockerfile
  say "building $1"
  local log="$stage/build-$(echo "$1" | tr "/:" "--").log"
  docker build --build-arg BASE_IMAGE="$base_image" -t "$1" -f "$2" "$repo" >"$log" 2>&1 || die "building $1 failed; see $log"
}

mkdir -p "$cache" "$stage"
build_base
stage_wheels
stage_kafka
build citydata/postgres:local "$here/postgres.Dockerfile"
build citydata/kafka:local "$here/kafka.Dockerfile"
build citydata/service:local "$here/service.Dockerfile"
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep '^citydata/' | sed 's/^/images: /'
