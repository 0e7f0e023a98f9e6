"""deploy/otel/collector.yaml wires OTLP traces to Jaeger and the services' metrics to Prometheus.

The collector binary is not installed here, so this checks what the collector itself would refuse
at start-up (a pipeline naming an undeclared component) and where the data goes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from kit.metrics import METRICS_PORTS

COLLECTOR = Path(__file__).resolve().parents[3] / "deploy" / "otel" / "collector.yaml"


def load_collector() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(COLLECTOR.read_text())
    return config


def test_every_pipeline_component_is_declared() -> None:
    config = load_collector()

    for name, pipeline in config["service"]["pipelines"].items():
        for section in ("receivers", "processors", "exporters"):
            undeclared = set(pipeline.get(section, [])) - set(config.get(section, {}))
            assert not undeclared, f"pipeline {name}: undeclared {section} {sorted(undeclared)}"


def test_traces_arrive_over_otlp_grpc_and_go_to_jaeger() -> None:
    config = load_collector()
    traces = config["service"]["pipelines"]["traces"]

    assert config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].endswith(":4317")
    assert "otlp" in traces["receivers"]
    assert [config["exporters"][name]["endpoint"] for name in traces["exporters"]] == ["jaeger:4317"]


def test_metrics_of_every_service_are_scraped_and_exposed_for_prometheus() -> None:
    config = load_collector()
    scrape = config["receivers"]["prometheus"]["config"]["scrape_configs"][0]
    targets = set(scrape["static_configs"][0]["targets"])

    assert targets == {f"{service}:{port}" for service, port in METRICS_PORTS.items()}
    assert "prometheus" in config["service"]["pipelines"]["metrics"]["exporters"]
