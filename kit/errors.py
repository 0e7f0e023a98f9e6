"""Domain errors shared by every service.

Pure: no gRPC here. `kit.grpc_server` maps each class to its gRPC status code and the
rich error details (google.rpc.BadRequest, ErrorInfo, ResourceInfo, RetryInfo).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FieldViolation:
    """One bad field: `field` is the request field path (e.g. `address.ward_code`)."""

    field: str
    description: str


class DomainError(Exception):
    """Base of every error a caller may see. Its message must never hold secrets."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(DomainError):
    """Bad input: one `FieldViolation` per bad field."""

    def __init__(self, violations: list[FieldViolation], message: str | None = None) -> None:
        self.violations = list(violations)
        summary = "; ".join(f"{v.field}: {v.description}" for v in self.violations)
        super().__init__(message or f"invalid request: {summary}")


@dataclass
class ViolationCollector:
    """Gathers field violations so a request reports every bad field at once."""

    violations: list[FieldViolation] = field(default_factory=list)

    def add(self, field_path: str, description: str) -> None:
        self.violations.append(FieldViolation(field_path, description))

    def raise_if_any(self) -> None:
        if self.violations:
            raise InvalidArgument(self.violations)


class NotFound(DomainError):
    def __init__(self, resource_type: str, resource_name: str) -> None:
        super().__init__(f"{resource_type} {resource_name!r} not found")
        self.resource_type = resource_type
        self.resource_name = resource_name


class AlreadyExists(DomainError):
    """A unique key is taken; `existing_id` names the record that holds it."""

    def __init__(self, resource_type: str, existing_id: str, message: str | None = None) -> None:
        super().__init__(message or f"{resource_type} already exists as {existing_id!r}")
        self.resource_type = resource_type
        self.existing_id = existing_id


class FailedPrecondition(DomainError):
    """The request is valid but the system is not in a state that allows it."""

    def __init__(self, message: str, reason: str = "FAILED_PRECONDITION") -> None:
        super().__init__(message)
        self.reason = reason


class Aborted(DomainError):
    """Concurrency conflict (stale version): the caller should re-read and retry."""

    def __init__(self, message: str, reason: str = "STALE_VERSION") -> None:
        super().__init__(message)
        self.reason = reason


class PermissionDenied(DomainError):
    def __init__(self, message: str, missing_right: str | None = None) -> None:
        super().__init__(message)
        self.missing_right = missing_right


class Unauthenticated(DomainError):
    pass


class ResourceExhausted(DomainError):
    def __init__(self, message: str, retry_after_seconds: float) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class Unavailable(DomainError):
    """A dependency is down; the caller may retry later."""
