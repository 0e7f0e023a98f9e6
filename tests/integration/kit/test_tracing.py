"""One trace from a gRPC call, through the outbox and Kafka, into a consumer's span."""

from __future__ import annotations

import time
import uuid
from typing import Any

import grpc
from google.protobuf import wrappers_pb2
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import MetaData
from sqlalchemy.orm import Session, sessionmaker

from kit.consumer import ConsumerRunner
from kit.db import UnitOfWork, make_engine, platform_tables
from kit.events import InboundEvent, OutboundEvent
from kit.grpc_server import ServiceHost, Worker
from kit.kafka import make_consumer, make_producer
from kit.outbox import OutboxRelay
from kit.telemetry import current_trace_id, setup_tracing
from tests.support.kafka_tools import header, read_topic
from tests.support.net import free_port
from tests.support.test_services import SERVICE, call, generic_service


def test_trace_id_flows_from_grpc_call_to_kafka_header_to_consumer_span(
    pg_database: str, kafka_bootstrap: str, topic: str
) -> None:
    spans = InMemorySpanExporter()
    setup_tracing("tracing-test", extra_exporter=spans)
    metadata = MetaData()
    tables = platform_tables(metadata)
    engine = make_engine(pg_database)
    metadata.create_all(engine)
    sessions = sessionmaker(engine)
    seen_in_handler: list[str] = []

    def publish(request: wrappers_pb2.StringValue, _context: Any) -> wrappers_pb2.StringValue:
        seen_in_handler.append(current_trace_id())
        with UnitOfWork(sessions, tables, "/citydata/test") as uow:
            uow.publish(OutboundEvent(topic, "thing", request.value, "thing.created", request))
            uow.commit()
        return request

    producer = make_producer(kafka_bootstrap)
    relay = OutboxRelay(engine, tables, producer)
    consumed: list[str] = []

    def handle(_session: Session, event: InboundEvent) -> None:
        consumed.append(current_trace_id())

    runner = ConsumerRunner(
        "tracing-test",
        make_consumer(kafka_bootstrap, f"g-{uuid.uuid4().hex[:6]}", [topic]),
        producer,
        sessions,
        tables,
        handle,
    )
    port = free_port()
    host = ServiceHost(
        "tracing",
        f"127.0.0.1:{port}",
        [generic_service({"Publish": publish})],
        [SERVICE],
        workers=[Worker("relay", relay.run), Worker("consumer", runner.run)],
        drain_delay_seconds=0,
    )
    host.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            call(channel, "Publish", "agg-42")
        deadline = time.monotonic() + 30
        while not consumed and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        host.stop()
        producer.close()

    trace_id = seen_in_handler[0]
    assert trace_id and trace_id != "0" * 32
    record = read_topic(kafka_bootstrap, topic, 1)[0]
    traceparent = header(record, "traceparent") or ""
    assert traceparent.split("-")[1] == trace_id, "the Kafka message carries the call's trace"
    assert consumed == [trace_id], "the consumer ran inside the same trace"
    consumer_spans = [s for s in spans.get_finished_spans() if s.name == f"process {topic}"]
    assert len(consumer_spans) == 1
    assert format(consumer_spans[0].context.trace_id, "032x") == trace_id
    assert consumer_spans[0].kind.name == "CONSUMER"
    server_spans = [s for s in spans.get_finished_spans() if s.name.endswith("/Publish")]
    assert format(server_spans[0].context.trace_id, "032x") == trace_id
