"""Fixtures of the gateway tests; they live in gateway_harness so tests can import its helpers."""

from tests.integration.gateway.gateway_harness import pki, start_gateway, upstream

__all__ = ["pki", "start_gateway", "upstream"]
