"""The gateway's gRPC edge: identity, admission, the generic proxy and GatewayService."""
