"""A tiny OTLP/gRPC trace receiver: which events each process ran a consumer handler for.

kit.consumer wraps every handled event in a CONSUMER span carrying the event id and the consumer
group; a process started with OTEL_EXPORTER_OTLP_ENDPOINT pointing here and its own
OTEL_SERVICE_NAME therefore reports, by itself, the events IT applied.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable
from concurrent import futures

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

GROUP_ATTRIBUTE = "messaging.consumer.group.name"
EVENT_ATTRIBUTE = "messaging.message.id"
BATCH_ATTRIBUTE = "messaging.batch.message_ids"  # a batch span names every event it applied


class ConsumerSpanSink(trace_service_pb2_grpc.TraceServiceServicer):
    """Collects, per `service.name`, the ids of the events handled in consumer group `group`."""

    def __init__(self, group: str) -> None:
        self.group = group
        self._lock = threading.Lock()
        self._handled: dict[str, set[str]] = defaultdict(set)
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self, self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop(grace=None)

    def environment(self, service_name: str) -> dict[str, str]:
        """What a process needs to report its spans here, under `service_name`, within 0.2 s."""
        return {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{self.port}",
            "OTEL_SERVICE_NAME": service_name,
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }

    def handled_by(self, service_name: str) -> set[str]:
        with self._lock:
            return set(self._handled.get(service_name, ()))

    def Export(  # noqa: N802 - the gRPC method name
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        for resource_spans in request.resource_spans:
            service = _string_attributes(resource_spans.resource.attributes).get("service.name", "")
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self._note(service, span)
        return trace_service_pb2.ExportTraceServiceResponse()

    def _note(self, service: str, span: Span) -> None:
        attributes = _string_attributes(span.attributes)
        if span.kind == Span.SPAN_KIND_CONSUMER and attributes.get(GROUP_ATTRIBUTE) == self.group:
            batch = [
                value.string_value
                for attribute in span.attributes
                if attribute.key == BATCH_ATTRIBUTE
                for value in attribute.value.array_value.values
            ]
            with self._lock:
                self._handled[service].update(batch or [attributes.get(EVENT_ATTRIBUTE, "")])


def _string_attributes(attributes: Iterable[KeyValue]) -> dict[str, str]:
    return {attribute.key: attribute.value.string_value for attribute in attributes}
