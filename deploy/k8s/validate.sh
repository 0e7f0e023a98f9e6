#!/usr/bin/env bash
# Renders deploy/k8s/base and every overlay with kustomize and validates each rendering strictly
# with kubeconform against the Kubernetes JSON schemas, offline. Exit status 0 only if all pass.
#
#   deploy/k8s/validate.sh            # everything
#   deploy/k8s/validate.sh --render production > out.yaml   # just print one rendering
#   deploy/k8s/validate.sh --tools    # only install the tools (make tools)
#
# Tools we did not write, installed once into ~/.cache/citydata (outside the clone):
#   kustomize    go install sigs.k8s.io/kustomize/kustomize/v5@v5.4.3 (else `kubectl kustomize`)
#   kubeconform  go install github.com/yannh/kubeconform/cmd/kubeconform@v0.6.7
#   schemas      the Kubernetes JSON schemas shipped in the PyPI wheel kubernetes-validate; their
#                $refs point at a web address, so they are rewritten to the local _definitions.json
#                (kubeconform would otherwise download schemas from GitHub, unreachable here).
# Strimzi's KafkaTopic/KafkaUser have no schema there: they are skipped by kind (-skip), so any
# OTHER kind without a schema still fails; tests/unit/deploy checks their content.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="${CITYDATA_TOOLS_CACHE:-$HOME/.cache/citydata}"
bin="$cache/bin"
kustomize_version=v5.4.3
kubeconform_version=v0.6.7
k8s_version=1.32.0
schemas_wheel="kubernetes-validate==1.32.0"
schemas="$cache/k8s-schemas/v$k8s_version-standalone-strict"
skipped_kinds="KafkaTopic,KafkaUser"

say() { echo "validate: $*" >&2; }
die() { echo "validate: ERROR: $*" >&2; exit 1; }

go_install() { # module@version
  command -v go >/dev/null || die "Go is needed to install $1 (or put the tool in $bin)"
  say "installing $1 into $bin"
  # only the module proxy is reachable here, not the checksum database
  GOBIN="$bin" GOSUMDB=off go install "$1" >&2
}

ensure_kubeconform() {
  [ -x "$bin/kubeconform" ] || go_install "github.com/yannh/kubeconform/cmd/kubeconform@$kubeconform_version"
}

ensure_kustomize() { # a pinned kustomize when Go can build it; kubectl's embedded one otherwise
  [ -x "$bin/kustomize" ] && return
  if command -v go >/dev/null; then
    go_install "sigs.k8s.io/kustomize/kustomize/v5@$kustomize_version"
  elif ! command -v kubectl >/dev/null; then
    die "neither kustomize, Go (to install it) nor kubectl found"
  fi
}

render() { # directory
  ensure_kustomize
  if [ -x "$bin/kustomize" ]; then
    "$bin/kustomize" build "$1"
  else
    kubectl kustomize "$1"
  fi
}

python_with_pip() {
  for candidate in "$repo/.venv/bin/python" python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -m pip --version >/dev/null 2>&1; then
      echo "$candidate"
      return
    fi
  done
  die "a Python with pip is needed to fetch the Kubernetes schemas ($schemas_wheel)"
}

ensure_schemas() {
  [ -s "$schemas/deployment-apps-v1.json" ] && return
  local python download
  python="$(python_with_pip)"
  download="$(mktemp -d)"
  say "fetching the Kubernetes $k8s_version JSON schemas ($schemas_wheel, PyPI) into $schemas"
  "$python" -m pip download -q --no-deps --only-binary=:all: -d "$download" "$schemas_wheel" >&2
  rm -rf "$schemas" && mkdir -p "$schemas"
  "$python" - "$download"/*.whl "v$k8s_version-local-strict" "$schemas" <<'EOF'
import sys, zipfile
from pathlib import Path

wheel, variant, target = sys.argv[1], sys.argv[2], Path(sys.argv[3])
prefix = f"kubernetes_validate/kubernetes-json-schema/{variant}/"
definitions = (target / "_definitions.json").as_uri()
with zipfile.ZipFile(wheel) as archive:
    members = [name for name in archive.namelist() if name.startswith(prefix) and name.endswith(".json")]
    if not members:
        sys.exit(f"{wheel} has no {prefix}")
    for name in members:
        text = archive.read(name).decode()
        # "/api/_definitions.json#..." resolves against the schema's https $id: make it a local file
        (target / name[len(prefix):]).write_text(text.replace('"/api/_definitions.json', f'"{definitions}'))
EOF
  rm -rf "$download"
}

targets() {
  echo "$here/base"
  for overlay in "$here"/overlays/*/; do
    echo "${overlay%/}"
  done
}

validate_all() {
  ensure_kubeconform
  ensure_schemas
  local failed=0 target rendered name
  rendered="$(mktemp -d)"
  trap 'rm -rf "$rendered"' RETURN
  while read -r target; do
    name="$(basename "$target")"
    if ! render "$target" >"$rendered/$name.yaml"; then
      say "$name: kustomize could not render it"
      failed=1
      continue
    fi
    if "$bin/kubeconform" -strict -summary -kubernetes-version "$k8s_version" \
      -schema-location "$schemas/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
      -skip "$skipped_kinds" "$rendered/$name.yaml"; then
      say "$name: valid"
    else
      say "$name: INVALID"
      failed=1
    fi
  done < <(targets)
  return "$failed"
}

case "${1:-}" in
  --render)
    [ -n "${2:-}" ] || die "usage: $0 --render base|<overlay>"
    if [ "$2" = base ]; then render "$here/base"; else render "$here/overlays/$2"; fi
    ;;
  --tools)
    ensure_kustomize
    ensure_kubeconform
    ensure_schemas
    ;;
  "") validate_all ;;
  *) die "usage: $0 [--render base|<overlay>] [--tools]" ;;
esac
