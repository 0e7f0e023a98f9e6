"""Domain errors → gRPC statuses with the rich error model (google.rpc.Status details)."""

from __future__ import annotations

import logging

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status
from sqlalchemy.exc import OperationalError

from kit import errors
from kit.telemetry import current_trace_id

log = logging.getLogger(__name__)
DOMAIN = "citydata.hcmc.gov.vn"


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def status_for(exc: BaseException) -> status_pb2.Status:
    """The google.rpc.Status a caller sees for `exc`; never a stack trace."""
    if isinstance(exc, errors.InvalidArgument):
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                for v in exc.violations
            ]
        )
        return _status(code_pb2.INVALID_ARGUMENT, exc.message, bad_request)
    if isinstance(exc, errors.NotFound):
        info = error_details_pb2.ResourceInfo(resource_type=exc.resource_type, resource_name=exc.resource_name)
        return _status(code_pb2.NOT_FOUND, exc.message, info)
    if isinstance(exc, errors.AlreadyExists):
        info = error_details_pb2.ResourceInfo(resource_type=exc.resource_type, resource_name=exc.existing_id)
        return _status(code_pb2.ALREADY_EXISTS, exc.message, info)
    if isinstance(exc, errors.FailedPrecondition):
        failure = error_details_pb2.PreconditionFailure(
            violations=[error_details_pb2.PreconditionFailure.Violation(type=exc.reason, description=exc.message)]
        )
        return _status(code_pb2.FAILED_PRECONDITION, exc.message, failure)
    if isinstance(exc, errors.Aborted):
        return _status(code_pb2.ABORTED, exc.message, error_details_pb2.ErrorInfo(reason=exc.reason, domain=DOMAIN))
    if isinstance(exc, errors.PermissionDenied):
        info = error_details_pb2.ErrorInfo(
            reason="MISSING_RIGHT", domain=DOMAIN, metadata={"right": exc.missing_right or ""}
        )
        return _status(code_pb2.PERMISSION_DENIED, exc.message, info)
    if isinstance(exc, errors.Unauthenticated):
        return _status(code_pb2.UNAUTHENTICATED, exc.message)
    if isinstance(exc, errors.ResourceExhausted):
        retry = error_details_pb2.RetryInfo(retry_delay=_duration(exc.retry_after_seconds))
        return _status(code_pb2.RESOURCE_EXHAUSTED, exc.message, retry)
    if isinstance(exc, errors.Unavailable | OperationalError):
        retry = error_details_pb2.RetryInfo(retry_delay=_duration(1.0))
        message = exc.message if isinstance(exc, errors.Unavailable) else "database unavailable, retry later"
        return _status(code_pb2.UNAVAILABLE, message, retry)
    trace_id = current_trace_id()
    log.exception("unexpected error", extra={"trace_id": trace_id})
    return _status(code_pb2.INTERNAL, f"internal error (trace id {trace_id or 'none'})")


def _status(code: int, message: str, *details: object) -> status_pb2.Status:
    return status_pb2.Status(code=code, message=message, details=[_pack(d) for d in details])


def _duration(seconds: float) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromNanoseconds(int(seconds * 1e9))
    return duration


def abort_with(context: grpc.ServicerContext, exc: BaseException) -> None:
    context.abort_with_status(rpc_status.to_status(status_for(exc)))


def violations_of(error: grpc.RpcError) -> list[tuple[str, str]]:
    """Client side: the (field, description) pairs of an INVALID_ARGUMENT error."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    found: list[tuple[str, str]] = []
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            found.extend((v.field, v.description) for v in bad_request.field_violations)
    return found
