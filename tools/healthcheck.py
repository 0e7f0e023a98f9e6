"""Container health check: `python -m tools.healthcheck [port]` exits 0 when the local service is SERVING.

The port defaults to the one the container's service listens on (from `<SERVICE>_GRPC_PORT` or the
service's default, the service being named by CITYDATA_SERVICE or the container command)."""

from __future__ import annotations

import os
import sys

from kit.config import DEFAULT_PORTS
from tools.supervisor import health_status


def main() -> None:
    if len(sys.argv) > 1:
        port = int(sys.argv[1])
    else:
        service = os.environ.get("CITYDATA_SERVICE", "")
        port = int(os.environ.get(f"{service.upper()}_GRPC_PORT", DEFAULT_PORTS.get(service, 0)))
    status = health_status(port)
    print(status)
    sys.exit(0 if status == "SERVING" else 1)


if __name__ == "__main__":
    main()
