"""Dossier events written to Kafka the way the dossier service's outbox relay writes them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from citydata.v1 import dossier_pb2 as pb
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from kafka import KafkaProducer

from kit.events import encode_outbox_row

RECEIVED_AT = datetime(2022, 3, 1, 2, 0, tzinfo=UTC)  # 09:00 in Ho Chi Minh City


def stamp(value: datetime) -> Timestamp:
    result = Timestamp()
    result.FromDatetime(value)
    return result


def header(dossier_id: str, state: int, minutes: int = 0, number: str | None = None) -> pb.DossierEventHeader:
    return pb.DossierEventHeader(
        dossier_id=dossier_id,
        number=number or f"000.00.SXD.H29-220301-{dossier_id[-4:]}",
        procedure_code="1.000002",
        agency_code="SXD",
        state=state,  # type: ignore[arg-type]
        occurred_at=stamp(RECEIVED_AT + timedelta(minutes=minutes)),
        received_at=stamp(RECEIVED_AT),
        due_at=stamp(RECEIVED_AT + timedelta(days=20)),
        applicant_registry_id="citizen-1",
    )


def life_of(dossier_id: str, number: str | None = None) -> list[tuple[str, Message]]:
    """received → accepted → resolved → returned, as the service publishes them."""
    return [
        (
            "dossier.received",
            pb.DossierReceived(
                header=header(dossier_id, pb.DOSSIER_STATE_RECEIVED, 0, number),
                channel=pb.DOSSIER_CHANNEL_ONLINE,
                applicant_kind=pb.DOSSIER_APPLICANT_KIND_CITIZEN,
            ),
        ),
        ("dossier.accepted", pb.DossierAccepted(header=header(dossier_id, pb.DOSSIER_STATE_IN_PROGRESS, 30, number))),
        (
            "dossier.resolved",
            pb.DossierResolved(header=header(dossier_id, pb.DOSSIER_STATE_RESOLVED, 600, number), on_time=True),
        ),
        ("dossier.returned", pb.DossierReturned(header=header(dossier_id, pb.DOSSIER_STATE_RETURNED, 900, number))),
    ]


def send(
    producer: KafkaProducer, topic: str, event_type: str, payload: Message, key: str, event_id: str | None = None
) -> str:
    """Sends one CloudEvent; returns its ce_id."""
    ce_id = event_id or str(uuid.uuid4())
    message = encode_outbox_row(
        {
            "id": ce_id,
            "type": event_type,
            "aggregateid": key,
            "topic": topic,
            "payload": payload.SerializeToString(),
            "headers": {
                "source": "/citydata/dossier",
                "time": datetime.now(UTC).isoformat(),
                "dataschema": f"proto:{payload.DESCRIPTOR.full_name}",
            },
        }
    )
    producer.send(topic, key=message.key, value=message.value, headers=list(message.headers.items()))
    return ce_id
