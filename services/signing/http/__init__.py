"""The signing service's plain-HTTP room: CRLs and the RFC 3161 time-stamping unit (`server`).

Not part of `api/`: it speaks no `citydata.v1` contract, has no callers to identify and nothing to
audit; it serves the PKI's public artefacts to any relying party at the URLs our certificates
name, straight from the crypto room. Like the gateway's `http/`, a room of its own.
"""
