"""CityData platform kit: the cross-cutting code every service shares.

Pure modules (no I/O) that a service's `domain` may import: `kit.errors`, `kit.clock`, `kit.hashchain`.
Everything else here is infrastructure (database, outbox, Kafka, gRPC, telemetry).
"""
