"""The registry's gRPC API (`citydata.v1.RegistryService`)."""

from services.registry.api.servicer import TOPIC, RegistryServicer

__all__ = ["TOPIC", "RegistryServicer"]
