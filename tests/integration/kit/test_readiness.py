"""Readiness follows a dependency: the named service turns NOT_SERVING while the database is
unreachable and SERVING again when it answers, while the overall status stays SERVING."""

from __future__ import annotations

import time
from collections.abc import Callable

from kit.grpc_server import ServiceHost
from kit.net import free_port, health_status
from tests.support.test_services import SERVICE, generic_service, sleep_then_echo


def _eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_named_service_follows_its_dependency_and_liveness_stays_serving() -> None:
    database_up = True

    def database_check() -> None:
        if not database_up:
            raise ConnectionError("database unreachable")

    port = free_port()
    host = ServiceHost(
        "readiness",
        f"127.0.0.1:{port}",
        [generic_service({"Sleep": sleep_then_echo})],
        [SERVICE],
        drain_delay_seconds=0,
        readiness_checks={"database": database_check},
        readiness_interval_seconds=0.2,
    )
    host.start()
    try:
        assert health_status(port, SERVICE) == "SERVING"
        database_up = False
        assert _eventually(lambda: health_status(port, SERVICE) == "NOT_SERVING")
        assert health_status(port) == "SERVING", "liveness must not follow the database"
        database_up = True
        assert _eventually(lambda: health_status(port, SERVICE) == "SERVING")
    finally:
        host.stop()
