"""Kafka handlers and background loops that publish through the outbox: the apology letters, the deadline watcher."""
