"""The signing service's gRPC API (`citydata.v1.SigningService`): the servicer, who is calling,
request checks and the proto mapping."""
