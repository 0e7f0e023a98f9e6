"""Loopback helpers for tests (the shared ones live in kit.net)."""

from __future__ import annotations

from kit.net import free_port, health_status, wait_serving

health = health_status

__all__ = ["free_port", "health", "health_status", "wait_serving"]
