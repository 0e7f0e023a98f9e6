"""OpenTelemetry tracing: OTLP export when OTEL_EXPORTER_OTLP_ENDPOINT is set, silent otherwise."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import context, trace
from opentelemetry.propagate import extract
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

_provider: TracerProvider | None = None


def setup_tracing(service: str, extra_exporter: SpanExporter | None = None) -> TracerProvider:
    """Install the process's tracer provider once; later calls may add an exporter (tests do)."""
    global _provider
    if _provider is None:
        name = os.environ.get("OTEL_SERVICE_NAME", f"citydata-{service}")
        _provider = TracerProvider(resource=Resource.create({"service.name": name}))
        if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(_provider)
    if extra_exporter is not None:
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor

        _provider.add_span_processor(SimpleSpanProcessor(extra_exporter))
    return _provider


def shutdown_tracing() -> None:
    if _provider is not None:
        _provider.shutdown()


@contextmanager
def consumer_span(topic: str, trace_headers: dict[str, str], attributes: dict[str, str | int]) -> Iterator[None]:
    """A `process <topic>` CONSUMER span, child of the producing call's trace."""
    parent = extract(trace_headers)
    token = context.attach(parent)
    try:
        tracer = trace.get_tracer("citydata.consumer")
        with tracer.start_as_current_span(f"process {topic}", kind=trace.SpanKind.CONSUMER, attributes=attributes):
            yield
    finally:
        context.detach(token)


def current_trace_id() -> str:
    span_context = trace.get_current_span().get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else ""
