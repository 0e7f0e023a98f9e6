"""A ServiceHost with one slow RPC, run as a real process for the SIGTERM test.

python -m tests.support.slow_server PORT
"""

from __future__ import annotations

import sys

from kit.grpc_server import ServiceHost
from kit.logs import setup_logging
from tests.support.test_services import SERVICE, generic_service, sleep_then_echo

if __name__ == "__main__":
    setup_logging("slow-server")
    host = ServiceHost(
        "slow",
        f"127.0.0.1:{sys.argv[1]}",
        [generic_service({"Sleep": sleep_then_echo})],
        [SERVICE],
        grace_seconds=10,
        drain_delay_seconds=1.0,
    )
    host.run_until_signal()
