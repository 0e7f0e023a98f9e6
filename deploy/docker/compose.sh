#!/usr/bin/env bash
# `make compose-up` / `make compose-down`: the Compose stack with whichever Compose this machine
# has (the v2 plugin, else Debian's docker-compose v1), on local images when
# deploy/docker/build-images.sh built them (no registry reachable), else the official ones.
# `up` returns when every container reports healthy, or fails naming the ones that do not.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
file="$here/../docker-compose.yml"
project="${COMPOSE_PROJECT_NAME:-citydata}"

if docker compose version >/dev/null 2>&1; then compose=(docker compose); else compose=(docker-compose); fi
args=(-p "$project" -f "$file")
if [ -z "${CITYDATA_SERVICE_IMAGE:-}" ] && docker image inspect citydata/service:local >/dev/null 2>&1; then
  set -a; source "$here/local-images.env"; set +a
  echo "compose: using the images built here (deploy/docker/local-images.env)"
fi

wait_healthy() {
  local deadline=$((SECONDS + ${COMPOSE_WAIT_SECONDS:-300})) pending
  while :; do
    pending="$(docker ps -a --filter "label=com.docker.compose.project=$project" --format '{{.Names}} {{.Status}}' |
      grep -v '(healthy)' || true)"
    [ -z "$pending" ] && { echo "compose: every container healthy"; return; }
    [ "$SECONDS" -ge "$deadline" ] && { echo "compose: not healthy in time:" >&2; echo "$pending" >&2; return 1; }
    sleep 3
  done
}

case "${1:-}" in
  up)
    if [[ "${CITYDATA_SERVICE_IMAGE:-}" == *:local ]]; then "${compose[@]}" "${args[@]}" up -d
    else "${compose[@]}" "${args[@]}" up -d --build; fi
    wait_healthy ;;
  down) "${compose[@]}" "${args[@]}" down -v --remove-orphans ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
