"""What happened in the registry; each event carries the whole record as it now stands.

The service turns these into protobuf messages and publishes them; consumers never need
to read the registry back to learn the new state.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.registry.domain.model import Business, Citizen


@dataclass(frozen=True)
class CitizenRegistered:
    citizen: Citizen


@dataclass(frozen=True)
class CitizenUpdated:
    citizen: Citizen


@dataclass(frozen=True)
class BusinessRegistered:
    business: Business


@dataclass(frozen=True)
class BusinessUpdated:
    business: Business


RegistryEvent = CitizenRegistered | CitizenUpdated | BusinessRegistered | BusinessUpdated
