"""Pure rules of the analytics service: no I/O, no Kafka, no SQL."""
