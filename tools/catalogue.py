"""The event catalogue, generated from the protos: `python -m tools.catalogue [--check]`.

Every message with the `(citydata.v1.event)` option is an event. The catalogue lists, per topic,
each event type, its key, its payload and the payload's fields with their comments, and the
guarantees every topic shares. `--check` fails when docs/events.md differs from the protos, which
CI runs so the document never drifts from the code.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2

from kit.config import REPO_ROOT

PROTO_ROOT = REPO_ROOT / "proto"
CATALOGUE = REPO_ROOT / "docs" / "events.md"
EVENT_OPTION_NUMBER = 50001  # citydata.v1.event in options.proto
RETENTION = "unlimited on the local broker; production: see deploy/k8s topics (KafkaTopic retention.ms)"

_TYPE_NAMES = {
    descriptor_pb2.FieldDescriptorProto.TYPE_STRING: "string",
    descriptor_pb2.FieldDescriptorProto.TYPE_BOOL: "bool",
    descriptor_pb2.FieldDescriptorProto.TYPE_INT32: "int32",
    descriptor_pb2.FieldDescriptorProto.TYPE_INT64: "int64",
    descriptor_pb2.FieldDescriptorProto.TYPE_UINT32: "uint32",
    descriptor_pb2.FieldDescriptorProto.TYPE_UINT64: "uint64",
    descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE: "double",
    descriptor_pb2.FieldDescriptorProto.TYPE_FLOAT: "float",
    descriptor_pb2.FieldDescriptorProto.TYPE_BYTES: "bytes",
}


@dataclass(frozen=True)
class EventEntry:
    topic: str
    type: str
    aggregate: str
    key: str
    message: str
    comment: str
    fields: tuple[tuple[str, str, str], ...]


def _descriptor_set() -> descriptor_pb2.FileDescriptorSet:
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.glob("citydata/v1/*.proto"))
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "set.pb"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "grpc_tools.protoc",
                f"-I{PROTO_ROOT}",
                "--include_source_info",
                f"--descriptor_set_out={out}",
                *protos,
            ],
            check=True,
        )
        return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


def _comments(file: descriptor_pb2.FileDescriptorProto) -> dict[tuple[int, ...], str]:
    return {
        tuple(location.path): " ".join(location.leading_comments.split())
        for location in file.source_code_info.location
        if location.leading_comments
    }


def _event_option(message: descriptor_pb2.DescriptorProto) -> dict[str, str] | None:
    """Reads the option from its unknown-field bytes, so this works without the generated code."""
    raw = message.options.SerializeToString()
    from citydata.v1 import options_pb2

    options = descriptor_pb2.MessageOptions.FromString(raw)
    extension: Any = options_pb2.event
    if not options.HasExtension(extension):
        return None
    event = options.Extensions[extension]
    return {"topic": event.topic, "type": event.type, "aggregate": event.aggregate, "key": event.key}


def collect_events() -> list[EventEntry]:
    entries: list[EventEntry] = []
    for file in _descriptor_set().file:
        comments = _comments(file)
        for index, message in enumerate(file.message_type):
            option = _event_option(message)
            if option is None:
                continue
            fields = tuple(
                (
                    field.name,
                    _TYPE_NAMES.get(field.type, field.type_name.lstrip(".")),
                    comments.get((4, index, 2, number), ""),
                )
                for number, field in enumerate(message.field)
            )
            entries.append(
                EventEntry(
                    option["topic"],
                    option["type"],
                    option["aggregate"],
                    option["key"],
                    f"{file.package}.{message.name}",
                    comments.get((4, index), ""),
                    fields,
                )
            )
    return sorted(entries, key=lambda e: (e.topic, e.type))


def render(entries: list[EventEntry]) -> str:
    by_topic: dict[str, list[EventEntry]] = defaultdict(list)
    for entry in entries:
        by_topic[entry.topic].append(entry)
    lines = [
        "# Event catalogue",
        "",
        "Generated from `proto/citydata/v1/*.proto` by `python -m tools.catalogue`; do not edit by hand",
        "(CI fails when this file and the protos disagree).",
        "",
        "## What every topic guarantees",
        "",
        "* **Format:** CloudEvents 1.0, Kafka binary mode. Headers `ce_id`, `ce_source`, `ce_type`,",
        "  `ce_specversion`, `ce_time`, `ce_subject` (= the key), `ce_dataschema`",
        "  (`proto:<payload message>`), `content-type: application/protobuf`, W3C `traceparent`.",
        "* **Key:** the aggregate id; all events of one aggregate go to one partition, **in commit order**.",
        "* **Delivery:** at-least-once (transactional outbox, `acks=all`, idempotent producer). A",
        "  redelivered event carries the same `ce_id`: consumers store processed ids with their effect.",
        "* **Dead letters:** each topic has `<topic>.dlq`, where consumers park what they cannot process,",
        "  with `dlq_error`, `dlq_error_type`, `dlq_consumer`, `dlq_original_topic/partition/offset` headers.",
        f"* **Retention:** {RETENTION}.",
        "",
        "| topic | event type (`ce_type`) | key | payload |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| `{e.topic}` | `{e.type}` | `{e.key}` | `{e.message}` |" for e in entries]
    for topic, events in by_topic.items():
        lines += ["", f"## `{topic}`"]
        for event in events:
            lines += ["", f"### `{event.type}`", ""]
            if event.comment:
                lines += [event.comment, ""]
            lines += [
                f"Payload `{event.message}`, aggregate `{event.aggregate}`, key `{event.key}`.",
                "",
                "| field | type | meaning |",
                "| --- | --- | --- |",
            ]
            lines += [f"| `{name}` | `{kind}` | {comment} |" for name, kind, comment in event.fields]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description="generate the event catalogue from the protos")
    parser.add_argument("--check", action="store_true", help="fail if docs/events.md is out of date")
    args = parser.parse_args()
    text = render(collect_events())
    if args.check:
        current = CATALOGUE.read_text() if CATALOGUE.exists() else ""
        if current != text:
            print("docs/events.md is out of date: run `make catalogue`", file=sys.stderr)
            sys.exit(1)
        print("event catalogue up to date")
        return
    CATALOGUE.write_text(text)
    print(f"wrote {CATALOGUE.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()
