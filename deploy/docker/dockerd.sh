#!/usr/bin/env bash
# A Docker engine for CityData's container path, on a machine that has none: Debian's docker.io
# (dockerd, containerd, runc), debootstrap and docker-compose, installed when missing (as root);
# the daemon keeps its images under /var/lib/citydata-docker so they are cached between runs, and
# listens on its own socket, so it never collides with an engine the machine already runs.
#   deploy/docker/dockerd.sh start   start it (nothing to do if an engine already answers at DOCKER_HOST)
#   deploy/docker/dockerd.sh stop    stop the daemon this script started (nothing else)
#   deploy/docker/dockerd.sh env     print the DOCKER_HOST to export
set -euo pipefail

root="${CITYDATA_DOCKER_ROOT:-/var/lib/citydata-docker}"
run="/run/citydata-docker"
own_socket="unix://$run/docker.sock"
socket="${DOCKER_HOST:-$own_socket}"
pidfile="$run/dockerd.pid"

say() { echo "dockerd: $*"; }
die() { echo "dockerd: ERROR: $*" >&2; exit 1; }

install_packages() {
  local missing=() pkg
  for pkg in docker.io debootstrap docker-compose; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return
  [ "$(id -u)" -eq 0 ] || die "missing Debian packages ${missing[*]}: run as root, or sudo apt-get install -y ${missing[*]}"
  say "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

start() {
  install_packages
  if DOCKER_HOST="$socket" docker info >/dev/null 2>&1; then say "an engine answers at $socket"; return; fi
  [ "$socket" = "$own_socket" ] || die "DOCKER_HOST=$socket does not answer; unset it to let this script start an engine"
  [ "$(id -u)" -eq 0 ] || die "dockerd needs root"
  mkdir -p "$root" "$run"
  say "starting dockerd (data $root, socket $socket)"
  nohup dockerd --data-root "$root" --exec-root "$run/exec" --host "$socket" --pidfile "$pidfile" \
    >"$run/dockerd.log" 2>&1 &
  local i
  for i in $(seq 1 60); do
    DOCKER_HOST="$own_socket" docker info >/dev/null 2>&1 && { say "ready"; return; }
    sleep 1
  done
  tail -n 20 "$run/dockerd.log" >&2
  die "dockerd did not answer within 60 s"
}

stop() {
  running || { say "not running"; return; }
  local pid
  pid="$(cat "$pidfile")"
  kill "$pid"
  for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || { say "stopped"; return; }; sleep 1; done
  kill -9 "$pid" 2>/dev/null || true
  say "killed"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  env) echo "export DOCKER_HOST=$own_socket" ;;
  *) die "usage: $0 start|stop|env" ;;
esac
