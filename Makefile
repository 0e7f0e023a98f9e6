# CityData: every operator and developer command. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SITE := $(shell [ -x $(PY) ] && $(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
PROTOS := $(wildcard proto/citydata/v1/*.proto)
STAMP_VENV := $(VENV)/.installed
STAMP_PROTO := gen/.generated
BUF := npx --yes @bufbuild/buf@1.50.0
# Tools we did not write, used by tests to check our work; cached outside the clone.
TOOLS := $(HOME)/.cache/citydata/bin
HEALTH_PROBE := $(TOOLS)/grpc-health-probe
GRPCURL := $(TOOLS)/grpcurl
# EU DSS as an outside validator for the signing tests (Java 17 + Maven; ~/.m2 caches the download)
DSS_VALIDATOR := tests/tools/dss-validator/target/dss-validator.jar
DSS_VALIDATOR_SOURCES := tests/tools/dss-validator/pom.xml $(shell find tests/tools/dss-validator/src -type f 2>/dev/null)

.PHONY: help prereqs install tools proto catalogue k8s hostile chaos soak infra-up infra-down run up down status test test-unit test-integration \
        test-e2e lint fmt bench quarter chaos k8s compose-up compose-down clean dss-validator \
        docker-images test-docker docker-stop

help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(STAMP_VENV): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11+ is required"; exit 1; }
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	@touch $@

install: $(STAMP_VENV) $(STAMP_PROTO) ## Python environment in .venv + generated code

$(STAMP_PROTO): $(PROTOS) $(STAMP_VENV)
	@rm -rf gen && mkdir -p gen
	$(PY) -m grpc_tools.protoc -I proto --python_out=gen --pyi_out=gen --grpc_python_out=gen $(PROTOS)
	@# the generated package lives outside the source tree; a .pth file puts it on the venv's path
	@echo "$(CURDIR)/gen" > "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/citydata-gen.pth"
	@touch $@

proto: $(STAMP_PROTO) ## generate Python code from proto/ (never edit gen/ by hand)

prereqs: ## the Debian packages the platform needs: installed when root, otherwise the one command to run
	@deploy/local/prereqs.sh

infra-up: prereqs ## start Kafka (KRaft) and PostgreSQL as local processes (idempotent)
	@deploy/local/infra.sh up

infra-down: ## stop Kafka and PostgreSQL (data is kept under var/)
	@deploy/local/infra.sh down

run: install infra-up ## run the whole platform in the foreground; Ctrl-C stops everything
	@trap 'deploy/local/infra.sh down' EXIT; $(PY) -m tools.supervisor run

up: install infra-up ## start the platform in the background; returns when every service is SERVING
	@$(PY) -m tools.supervisor up

down: ## stop the services and the infrastructure
	@[ -x $(PY) ] && $(PY) -m tools.supervisor down || true
	@deploy/local/infra.sh down

status: ## what runs, on which port
	@deploy/local/infra.sh status
	@[ -x $(PY) ] && $(PY) -m tools.supervisor status || true

$(HEALTH_PROBE):
	@command -v go >/dev/null || { echo "Go is needed to install grpc-health-probe"; exit 1; }
	@# only the module proxy is reachable here, not the checksum database
	GOBIN=$(TOOLS) GOSUMDB=off go install github.com/grpc-ecosystem/grpc-health-probe@v0.4.62

$(GRPCURL):
	@command -v go >/dev/null || { echo "Go is needed to install grpcurl"; exit 1; }
	GOBIN=$(TOOLS) GOSUMDB=off go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.3

tools: $(HEALTH_PROBE) $(GRPCURL) ## tools we did not write, to check our work: grpc-health-probe, grpcurl, kustomize, kubeconform
	@deploy/k8s/validate.sh --tools

.PHONY: dss-validator
$(DSS_VALIDATOR): $(DSS_VALIDATOR_SOURCES)
	tests/tools/dss-validator/build.sh

dss-validator: $(DSS_VALIDATOR) ## build the EU DSS validator the signing tests check signatures with

test: install tools dss-validator infra-up ## the whole test suite against real Kafka and PostgreSQL
	PATH="$(TOOLS):$$PATH" $(PY) -m pytest

test-unit: install ## unit tests only (no infrastructure)
	$(PY) -m pytest tests/unit

lint: install ## ruff, mypy, the floor plan's import contracts (import-linter) and buf lint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	PYTHONPATH=gen:. $(VENV)/bin/lint-imports --no-cache
	cd proto && $(BUF) lint
	$(PY) -m tools.catalogue --check

catalogue: install ## regenerate docs/events.md (the event catalogue) from the protos
	$(PY) -m tools.catalogue

fmt: install ## format the code
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

hostile: install infra-up ## hostile input, malformed events, TLS and secret scans (HOSTILE_EXAMPLES=10000 for the long run)
	$(PY) -m pytest tests/hostile

SOAK_MINUTES ?= 60

chaos: install ## fault suite on a PRIVATE Kafka + PostgreSQL (never 9092/5432), 1-min soak, scale-out proof; var/chaos-report.json
	$(PY) -m pytest tests/chaos tests/scaleout

soak: install ## steady load for SOAK_MINUTES (60) at half the measured maximum, RSS + latency every 10 s; var/soak-report.json
	$(PY) -m chaos soak --minutes $(SOAK_MINUTES)

bench: install infra-up ## benchmarks (figures printed as ratios against raw baselines)
	$(PY) -m bench

QUARTER_SCALE ?= 1.0

quarter: install ## simulated Q1/2022 at QUARTER_SCALE (1.0) on a private Kafka+PostgreSQL platform; times, rates, RSS, disk, KPI check (QUARTER_ARGS=--running: make up's)
	$(PY) -m bench.quarter --scale $(QUARTER_SCALE) $(QUARTER_ARGS)

k8s: ## render and strictly validate the Kubernetes manifests (base + overlays), offline
	@deploy/k8s/validate.sh

# The container path: our own Docker engine on its own socket unless DOCKER_HOST names another.
DOCKER_HOST ?= unix:///run/citydata-docker/docker.sock
export DOCKER_HOST

docker-images: install ## build the images (Debian base via debootstrap, PostgreSQL, Kafka, services); starts a Docker engine if none answers
	deploy/docker/dockerd.sh start
	deploy/docker/build-images.sh

compose-up: docker-images ## the whole platform on Docker Compose, every container healthy (grpcurl examples: README)
	deploy/docker/compose.sh up

compose-down: ## stop the Compose stack and remove its containers, network and volumes
	deploy/docker/compose.sh down

test-docker: install tools docker-images ## the end-to-end suite against the Compose stack (pytest-docker starts and removes it)
	set -a && . deploy/docker/local-images.env && set +a && \
	  CITYDATA_TEST_INFRA=docker PATH="$(TOOLS):$$PATH" $(PY) -m pytest tests/e2e

docker-stop: ## stop the Docker engine deploy/docker/dockerd.sh started (images stay cached)
	deploy/docker/dockerd.sh stop

clean: ## remove generated code and the venv (keeps var/ data)
	rm -rf gen $(VENV)
