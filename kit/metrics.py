"""OpenTelemetry metrics, exposed on a Prometheus-compatible endpoint per service.

Ports: gateway 9450, registry 9451, dossier 9452, signing 9453, tasks 9454 (`<SERVICE>_METRICS_PORT`; 0 turns
the endpoint off). Instruments shared by every service: RPC count and latency (gRPC interceptor),
outbox backlog, consumer lag. Services add their own (overdue dossiers, apology coverage).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from kit.config import env_int, env_str

log = logging.getLogger(__name__)

METRICS_PORTS = {"gateway": 9450, "registry": 9451, "dossier": 9452, "signing": 9453, "tasks": 9454}
_started = False


def setup_metrics(service: str) -> int:
    """Install the meter provider and start the scrape endpoint; returns its port (0 = off)."""
    global _started
    port = env_int(f"{service.upper()}_METRICS_PORT", METRICS_PORTS.get(service, 0))
    if _started or port == 0:
        return 0
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource
    from prometheus_client import start_http_server

    provider = MeterProvider(
        resource=Resource.create({"service.name": f"citydata-{service}"}),
        metric_readers=[PrometheusMetricReader()],
    )
    metrics.set_meter_provider(provider)
    host = env_str("METRICS_HOST", env_str("GRPC_HOST", "127.0.0.1"))
    try:
        start_http_server(port, addr=host)
    except OSError as exc:
        log.warning("metrics endpoint not started", extra={"port": port, "error": str(exc)})
        return 0
    _started = True
    log.info("metrics endpoint", extra={"url": f"http://{host}:{port}/metrics"})
    return port


def meter() -> metrics.Meter:
    return metrics.get_meter("citydata")


def gauge(name: str, description: str, read: Callable[[], Iterable[tuple[float, dict[str, str]]]]) -> None:
    """An observable gauge read at scrape time; a failing read reports nothing rather than crashing."""

    def callback(_options: CallbackOptions) -> Iterable[Observation]:
        try:
            return [Observation(value, attributes) for value, attributes in read()]
        except Exception as exc:
            log.debug("gauge read failed", extra={"gauge": name, "error": str(exc)})
            return []

    meter().create_observable_gauge(name, callbacks=[callback], description=description)
