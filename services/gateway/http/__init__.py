"""JSON over HTTP: the gateway's reads for systems without gRPC, and the operators' dashboard."""
