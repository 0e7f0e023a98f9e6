"""The signing service's rules: algorithm policy, certificate kinds, who may sign or manage
certificates, the verification verdict (`certificates`) and the audit log's hash chain (`audit`).

Pure: no I/O, no gRPC, no SQL, no token. The crypto room turns keys and pyHanko's results into
the facts these modules decide on.
"""
